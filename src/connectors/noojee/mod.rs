//! The Noojee CallManagementAPI connector: a `subscribe` long-poll for the monitored extensions'
//! channels, and `answer`, `hangup`, `dial` and recording `start`/`stop` for call control.
//!
//! Every method is a POST (GET for recording, as the reference client does) with its
//! parameters in the query, the API key among them: so no URL is ever logged, and transport
//! errors are stripped of theirs.

mod mapping;
mod subscribe;
pub mod wire;

pub use mapping::{end_cause, leg_state, start_time};

use super::{CommandError, Connector};
use crate::hub::Hub;
use crate::model::{Action, Command};
use crate::store::Store;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wire::WireError;

/// The account part of Noojee ids: one connector is one PBX.
pub const ACCOUNT: &str = "pbx";
/// A command's reply larger than this is refused unread.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Call-control requests give up after this long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// `[[provider]] kind = "noojee"` keys.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoojeeConfig {
    /// Up to and including `/servicemanager/rest`.
    pub base_url: String,
    /// A global API key (a user key cannot subscribe). Best given by environment.
    pub api_key: String,
    /// The extensions to monitor, without technology prefix.
    pub extensions: Vec<String>,
    /// How long one long-poll may wait for events, seconds.
    #[serde(default = "default_poll_timeout")]
    pub poll_timeout_s: u32,
    /// Handset family, for the auto-answer header: yealink, grandstream, snom, aastra, linksys,
    /// polycom or none.
    #[serde(default = "default_phone_type")]
    pub phone_type: String,
    /// The PBX's time zone, for `callStartTime` (which carries none).
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The channel technology `dial` names the calling extension with (`SIP/400`, `PJSIP/400`):
    /// Noojee's `extenOrUniqueId` must include it, and it is whatever the PBX's extensions use.
    #[serde(default = "default_dial_technology")]
    pub dial_technology: String,
}

fn default_poll_timeout() -> u32 {
    30
}

fn default_phone_type() -> String {
    "yealink".into()
}

fn default_time_zone() -> String {
    "UTC".into()
}

/// The technology `dial` uses unless told otherwise.
pub fn default_dial_technology() -> String {
    "SIP".into()
}

impl std::fmt::Debug for NoojeeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoojeeConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"(secret)")
            .field("extensions", &self.extensions)
            .field("poll_timeout_s", &self.poll_timeout_s)
            .field("phone_type", &self.phone_type)
            .field("time_zone", &self.time_zone)
            .field("dial_technology", &self.dial_technology)
            .finish()
    }
}

impl NoojeeConfig {
    /// Reads and checks a provider table.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let config: NoojeeConfig = table.clone().try_into().map_err(|error: toml::de::Error| error.to_string())?;
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(format!("base_url {:?} must start with http:// or https://", config.base_url));
        }
        if config.api_key.trim().is_empty() {
            return Err("api_key is empty (set it, or CALLBOARD_PROVIDER_<NAME>_API_KEY)".into());
        }
        if config.extensions.is_empty() || config.extensions.iter().any(|e| e.trim().is_empty() || e.contains(',')) {
            return Err("extensions must list at least one extension number, none empty".into());
        }
        if auto_answer_header(&config.phone_type).is_none() {
            return Err(format!(
                "phone_type {:?} is not one of yealink, grandstream, snom, aastra, linksys, polycom, none",
                config.phone_type
            ));
        }
        if jiff::tz::TimeZone::get(&config.time_zone).is_err() {
            return Err(format!("time_zone {:?} is not a known IANA time zone", config.time_zone));
        }
        if !(1..=300).contains(&config.poll_timeout_s) {
            return Err("poll_timeout_s must be 1..=300".into());
        }
        if config.dial_technology.is_empty() || !config.dial_technology.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "dial_technology {:?} must be a channel technology such as SIP or PJSIP (letters and digits, no '/')",
                config.dial_technology
            ));
        }
        Ok(config)
    }

    /// What `dial` names the calling extension with: its technology, a slash, its number.
    fn dial_channel(&self, extension: &str) -> String {
        format!("{}/{}", self.dial_technology, extension.trim())
    }

    fn url(&self, method: &str) -> String {
        format!("{}/CallManagementAPI/{method}", self.base_url.trim_end_matches('/'))
    }
}

/// The SIP header a handset needs to pick up by itself (from Noojee's reference client).
pub fn auto_answer_header(phone_type: &str) -> Option<&'static str> {
    match phone_type.to_ascii_lowercase().as_str() {
        "yealink" => Some("Call-info:answer-after=0"),
        "grandstream" | "snom" | "aastra" | "linksys" => Some("Call-Info:\\; answer-after=0"),
        "polycom" => Some("Alert-Info: Ring Answer"),
        "none" => Some(""),
        _ => None,
    }
}

/// What the subscribe loop and the commands share: the live channels, for commands that name
/// a call but need its extension.
#[derive(Default)]
struct Channels {
    extension_of: HashMap<String, String>,
    /// The live channels Noojee says cannot be answered from the API (`canAnswer` false: a
    /// queue call, or one already answered), so Answer is refused in words, not by the PBX.
    unanswerable: HashSet<String>,
}

/// The running Noojee connector.
pub struct NoojeeConnector {
    name: String,
    requests: Arc<Requests>,
}

/// What a command needs, shared with the futures that carry commands out.
struct Requests {
    config: Arc<NoojeeConfig>,
    client: reqwest::Client,
    channels: Arc<Mutex<Channels>>,
}

const CAPABILITIES: [Action; 5] =
    [Action::Dial, Action::Answer, Action::Hangup, Action::RecordStart, Action::RecordStop];

impl NoojeeConnector {
    /// Starts the subscribe loop feeding `hub`; it runs until `shutdown`. With `store` (the
    /// journal `hub` writes) it resumes from the last `seq` journaled for `name`, so nothing the
    /// PBX reported while Callboard was down is missed; without, it starts from the PBX's
    /// current state.
    pub fn start(
        name: &str,
        config: NoojeeConfig,
        hub: Hub,
        store: Option<Store>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let requests =
            Arc::new(Requests { config: Arc::new(config), client: super::http_client(), channels: Arc::default() });
        let subscriber = subscribe::Subscriber::new(
            name,
            requests.config.clone(),
            requests.client.clone(),
            requests.channels.clone(),
            hub,
            store,
        );
        tokio::spawn(subscriber.run(shutdown));
        Arc::new(Self { name: name.to_owned(), requests })
    }
}

impl Requests {
    async fn request(&self, method: &str, query: Vec<(&str, String)>, get: bool) -> Result<String, CommandError> {
        let url = self.config.url(method);
        let mut query = query;
        query.push(("apiKey", self.config.api_key.clone()));
        let request = if get { self.client.get(&url) } else { self.client.post(&url) };
        let response = request
            .query(&query)
            .timeout(COMMAND_TIMEOUT)
            .send()
            .await
            .map_err(|error| CommandError::Unreachable(crate::connectors::transport_words(error)))?;
        let status = response.status();
        let mut response = response;
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| CommandError::Unreachable(crate::connectors::transport_words(error)))?
        {
            if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(CommandError::Unreachable(format!("{method} answered more than {MAX_REPLY_BYTES} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            return Err(CommandError::Unreachable(format!("{method} answered HTTP {status}")));
        }
        match wire::parse_reply(&body) {
            Ok(reply) if reply.message.is_empty() => Ok(format!("{method}: done")),
            Ok(reply) => Ok(reply.message),
            Err(WireError::Refused { message, code }) => {
                Err(CommandError::Refused(if message.is_empty() { format!("refused (Code {code})") } else { message }))
            }
            Err(error) => Err(CommandError::Unreachable(format!("{method}: {error}"))),
        }
    }

    /// The channel a command is about (`uniqueCallId`), from its leg or call id.
    fn channel(&self, command: &Command) -> Option<String> {
        command
            .leg
            .as_ref()
            .map(|leg| leg.native().to_owned())
            .or_else(|| command.call.as_ref().map(|call| call.native().to_owned()))
    }

    fn extension(&self, command: &Command, channel: Option<&str>) -> Option<String> {
        command.extension.as_ref().map(|extension| extension.native().to_owned()).or_else(|| {
            let channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            channel.and_then(|channel| channels.extension_of.get(channel).cloned())
        })
    }

    async fn carry_out(&self, command: Command) -> Result<String, CommandError> {
        let channel = self.channel(&command);
        let extension = self.extension(&command, channel.as_deref());
        let header = auto_answer_header(&self.config.phone_type).unwrap_or_default().to_owned();
        let need = |what: &str| CommandError::Refused(format!("{:?} needs {what}", command.action));
        match command.action {
            Action::Answer => {
                let channel = channel.clone().ok_or_else(|| need("the call"))?;
                let unanswerable = {
                    let channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    channels.unanswerable.contains(&channel)
                };
                if unanswerable {
                    return Err(CommandError::Refused(
                        "Noojee does not answer this call from the API (a call through a queue, or one already \
                         answered): pick it up on the phone"
                            .into(),
                    ));
                }
                let extension = extension.ok_or_else(|| need("the extension"))?;
                let query = vec![("answerString", header), ("exten", extension), ("uniqueId", channel)];
                self.request("answer", query, false).await
            }
            Action::Hangup => {
                let target = channel.or(extension).ok_or_else(|| need("a call or an extension"))?;
                self.request("hangup", vec![("extenOrUniqueId", target)], false).await
            }
            Action::Dial => {
                let extension = extension.ok_or_else(|| need("the extension that places the call"))?;
                let number = command.number.clone().ok_or_else(|| need("a number"))?;
                let query = vec![
                    ("number", number),
                    ("extenOrUniqueId", self.config.dial_channel(&extension)),
                    ("autoAnswer", header),
                    ("monitored", "yes".into()),
                ];
                self.request("dial", query, false).await
            }
            Action::RecordStart | Action::RecordStop => {
                let target = channel.or(extension).ok_or_else(|| need("a call or an extension"))?;
                let method = if command.action == Action::RecordStart { "start" } else { "stop" };
                self.request(method, vec![("extenOrUniqueId", target), ("tag", "callboard".into())], true).await
            }
            other => Err(CommandError::Refused(format!("Noojee cannot {other:?}"))),
        }
    }
}

impl Connector for NoojeeConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> &[Action] {
        &CAPABILITIES
    }

    fn control(&self, command: Command) -> BoxFuture<'static, Result<String, CommandError>> {
        let requests = self.requests.clone();
        Box::pin(async move { requests.carry_out(command).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn config_is_checked_and_the_key_never_printed() {
        let good = "base_url = \"https://pbx/servicemanager/rest\"\napi_key = \"sekrit-123\"\nextensions = [\"400\"]";
        let config = NoojeeConfig::from_table(&table(good)).unwrap();
        assert_eq!((config.poll_timeout_s, config.phone_type.as_str()), (30, "yealink"));
        assert!(!format!("{config:?}").contains("sekrit"));
        assert_eq!(config.url("subscribe"), "https://pbx/servicemanager/rest/CallManagementAPI/subscribe");
        let bad = |text: &str, words: &str| {
            let error = NoojeeConfig::from_table(&table(text)).unwrap_err();
            assert!(error.contains(words), "{error:?} should say {words:?}");
        };
        bad("base_url = \"pbx\"\napi_key = \"k\"\nextensions = [\"1\"]", "must start with http");
        bad("base_url = \"http://pbx\"\napi_key = \"\"\nextensions = [\"1\"]", "api_key is empty");
        bad("base_url = \"http://pbx\"\napi_key = \"k\"\nextensions = []", "at least one extension");
        bad("base_url = \"http://pbx\"\napi_key = \"k\"\nextensions = [\"1\"]\nphone_type = \"nokia\"", "phone_type");
        bad("base_url = \"http://pbx\"\napi_key = \"k\"\nextensions = [\"1\"]\ntime_zone = \"Mars/Base\"", "time_zone");
        bad("base_url = \"http://pbx\"\napi_key = \"k\"\nextensions = [\"1\"]\npolling = 3", "unknown field");
        assert_eq!(auto_answer_header("Polycom"), Some("Alert-Info: Ring Answer"));
        let technology = |value: &str| {
            format!("base_url = \"http://pbx\"\napi_key = \"k\"\nextensions = [\"1\"]\ndial_technology = \"{value}\"")
        };
        bad(technology("SIP/").as_str(), "dial_technology");
        bad(technology("").as_str(), "dial_technology");
        assert_eq!(NoojeeConfig::from_table(&table(&technology("PJSIP"))).unwrap().dial_channel(" 400 "), "PJSIP/400");
    }

    /// Serves `dial` on loopback, recording each request's query; returns the base URL.
    async fn dial_server(seen: Arc<Mutex<Vec<HashMap<String, String>>>>) -> String {
        let handler = move |axum::extract::Query(params): axum::extract::Query<HashMap<String, String>>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(params);
                r#"{"SessionID":7,"Message":"Dialling","Code":0}"#
            }
        };
        let router =
            axum::Router::new().route("/servicemanager/rest/CallManagementAPI/dial", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}/servicemanager/rest")
    }

    #[tokio::test]
    async fn dial_names_the_extension_with_the_configured_technology() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let base = dial_server(seen.clone()).await;
        for (setting, expected) in [("", "SIP/101"), ("dial_technology = \"PJSIP\"\n", "PJSIP/101")] {
            let text = format!("base_url = \"{base}\"\napi_key = \"k\"\nextensions = [\"101\"]\n{setting}");
            let config = NoojeeConfig::from_table(&table(&text)).unwrap();
            let client = crate::connectors::http_client();
            let requests = Requests { config: Arc::new(config), client, channels: Arc::default() };
            let dial = Command {
                action: Action::Dial,
                call: None,
                leg: None,
                extension: Some(crate::model::ExtensionId::new("nj", ACCOUNT, "101")),
                number: Some("0299990000".into()),
            };
            assert_eq!(requests.carry_out(dial).await.unwrap(), "Dialling");
            let params = seen.lock().unwrap().pop().unwrap();
            assert_eq!(params["extenOrUniqueId"], expected, "{setting:?}");
            assert_eq!(params["number"], "0299990000");
        }
    }
}
