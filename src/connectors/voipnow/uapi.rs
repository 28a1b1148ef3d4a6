//! VoipNow UnifiedAPI: OAuth token refresh, the PhoneCallEvents service (so each extension's
//! Call Events point at our hook paths) and PhoneCalls (click-to-call, hang up).
//!
//! Shapes follow providers.md 3.2 to 3.4. What the documentation leaves open is read leniently:
//! a list may be a bare array or an object with `entry`, ids may be numbers or strings.

use super::kept::KeptRefresh;
use super::wire::CallEventType;
use super::VoipNowConfig;
use crate::connectors::rest::{self, encode, lenient_u64, text, RestError};
use crate::connectors::CommandError;
use crate::model::{Action, Command};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What UnifiedAPI lets us do from the desk. Not hold: UnifiedAPI has `OnHold` but documents no
/// way back, and no Call Event reports hold or resume (seed 002), so a caller held from the desk
/// would stay held with the tile never showing it.
pub const CAPABILITIES: [Action; 2] = [Action::Dial, Action::Hangup];
/// Requests give up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// A token is refreshed this long before it would expire.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// The longest token lifetime believed, seconds.
const MAX_TOKEN_LIFETIME_S: u64 = 86_400;
/// Calls placed by click-to-call remembered, to mark their events as click-to-call.
const PLACED_KEEP: usize = 1_000;

/// Why a UnifiedAPI request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UapiError {
    /// VoipNow answered 4xx: its own words.
    #[error("VoipNow refused: {0}")]
    Refused(String),
    #[error("VoipNow could not be reached: {0}")]
    Unreachable(String),
    #[error("VoipNow answered something unreadable: {0}")]
    Unreadable(String),
}

impl From<UapiError> for CommandError {
    fn from(error: UapiError) -> Self {
        match error {
            UapiError::Refused(words) => CommandError::Refused(words),
            other => CommandError::Unreachable(other.to_string()),
        }
    }
}

/// What registering the Call Events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registered {
    pub created: usize,
    pub present: usize,
    /// Answer Call Events VoipNow would not take.
    pub refused: usize,
}

struct Token {
    access: String,
    until: Instant,
}

/// The OAuth state, under one lock so that two refreshes never race (each may end the refresh
/// token the other sends).
struct Tokens {
    access: Option<Token>,
    /// The refresh token to send next; `None` until the first refresh reads the kept one.
    refresh: Option<String>,
    /// Where a rotated refresh token is kept across restarts.
    kept: KeptRefresh,
}

/// A UnifiedAPI client with its token.
pub struct UnifiedApi {
    config: Arc<VoipNowConfig>,
    client: reqwest::Client,
    tokens: tokio::sync::Mutex<Tokens>,
    placed: Mutex<VecDeque<String>>,
}

impl UnifiedApi {
    /// A client for provider `provider`. The newest refresh token is kept in `store` and read
    /// back at the next start: VoipNow may rotate refresh tokens, and the configured one would
    /// then be refused after a restart.
    pub fn new(
        config: Arc<VoipNowConfig>,
        client: reqwest::Client,
        store: crate::store::Store,
        provider: &str,
    ) -> Self {
        let kept = KeptRefresh::new(store, provider, &config.refresh_token);
        let tokens = Tokens { access: None, refresh: None, kept };
        Self { config, client, tokens: tokio::sync::Mutex::new(tokens), placed: Mutex::new(VecDeque::new()) }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.uapi_url.trim_end_matches('/'))
    }

    /// Sends one request with our secrets taken out of VoipNow's words before they are cut: a
    /// refusal may echo the hook URL it was sent, which carries the webhook secret.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Value, UapiError> {
        let secrets = [
            self.config.webhook_secret.as_str(),
            self.config.client_secret.as_str(),
            self.config.refresh_token.as_str(),
        ];
        send(request, &secrets).await
    }

    /// Whether `call_api_id` is a call we placed by click-to-call.
    pub fn placed(&self, call_api_id: &str) -> bool {
        self.placed.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|id| id == call_api_id)
    }

    /// A valid access token, refreshed with the refresh token when due (1 h lifetime). The
    /// first refresh sends the newest kept refresh token, else the configured one; a new refresh
    /// token in the reply is kept before anything else, since VoipNow may have ended the one sent.
    async fn access_token(&self) -> Result<String, UapiError> {
        let mut tokens = self.tokens.lock().await;
        if let Some(current) = tokens.access.as_ref().filter(|t| t.until > Instant::now()) {
            return Ok(current.access.clone());
        }
        let refresh = match tokens.refresh.clone() {
            Some(refresh) => refresh,
            None => {
                match tokens.kept.newest().await {
                    Ok(kept) => {
                        let refresh = kept.unwrap_or_else(|| self.config.refresh_token.clone());
                        tokens.refresh = Some(refresh.clone());
                        refresh
                    }
                    // Read again at the next refresh; the configured one may still be good.
                    Err(error) => {
                        tracing::warn!(%error, "VoipNow's kept refresh token could not be read; sending the configured one");
                        self.config.refresh_token.clone()
                    }
                }
            }
        };
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.as_str()),
        ];
        let request = self.client.post(self.url("/oauth/token.php")).form(&form);
        // The refresh token sent may be a kept one, not the configured one: hidden too.
        let secrets = [
            self.config.webhook_secret.as_str(),
            self.config.client_secret.as_str(),
            self.config.refresh_token.as_str(),
            refresh.as_str(),
        ];
        let reply = send(request, &secrets).await?;
        let access = reply.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
        let Some(access) = access else {
            return Err(UapiError::Unreadable("the token reply has no access_token".into()));
        };
        // Bounded: a day at most, whatever the reply says.
        let lifetime = reply.get("expires_in").and_then(lenient_u64).unwrap_or(3_600).min(MAX_TOKEN_LIFETIME_S);
        let renewed = reply.get("refresh_token").and_then(Value::as_str).filter(|t| !t.is_empty());
        if let Some(renewed) = renewed.filter(|renewed| *renewed != refresh) {
            if let Err(error) = tokens.kept.keep(renewed).await {
                // Still good until the next refresh, which keeps its own new one.
                tracing::warn!(%error, "VoipNow's new refresh token could not be kept; a restart before the next refresh would send the old one");
            }
            tokens.refresh = Some(renewed.to_owned());
        } else {
            tokens.refresh = Some(refresh.clone());
        }
        let until = Instant::now() + Duration::from_secs(lifetime).saturating_sub(EXPIRY_MARGIN);
        tokens.access = Some(Token { access: access.to_owned(), until });
        Ok(access.to_owned())
    }

    /// Sends an authorised request; a 401 drops the token and tries once more with a new one.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, UapiError> {
        for attempt in 0..2 {
            let token = self.access_token().await?;
            let mut request = self.client.request(method.clone(), self.url(path)).bearer_auth(token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            match self.exchange(request).await {
                Err(UapiError::Refused(words)) if attempt == 0 && words.starts_with("HTTP 401") => {
                    // Expired early: refresh, keeping the newest refresh token.
                    if let Some(token) = self.tokens.lock().await.access.as_mut() {
                        token.until = Instant::now();
                    }
                }
                outcome => return outcome,
            }
        }
        Err(UapiError::Refused("HTTP 401: the token was refused twice".into()))
    }

    /// Makes sure every configured extension has a Call Event of each type pointing at our hook
    /// path; creates the missing ones and leaves every other Call Event alone. One failure
    /// does not stop the rest; the first is returned (to retry later). An Answer type VoipNow
    /// refuses (their codes are inferred) is counted as refused, not retried.
    pub async fn register_call_events(&self, provider: &str) -> Result<Registered, UapiError> {
        let method = if self.config.event_method == "get" { "0" } else { "1" };
        let mut registered = Registered::default();
        let mut first_error = None;
        for extension in &self.config.extensions {
            let path = format!("/uapi/extensions/@me/{}/phoneCallEvents", encode(extension.trim()));
            let existing = match self.call(reqwest::Method::GET, &path, None).await {
                Ok(reply) => entries(&reply),
                Err(error) => {
                    first_error.get_or_insert(error);
                    continue;
                }
            };
            for event in CallEventType::ALL {
                let url = self.config.hook_url(provider, event);
                let present = existing.iter().any(|entry| {
                    text(entry.get("type")).as_deref() == Some(event.type_code())
                        && entry.get("url").and_then(Value::as_str) == Some(url.as_str())
                });
                if present {
                    registered.present += 1;
                    continue;
                }
                let body = json!({
                    "type": event.type_code(),
                    "method": method,
                    "url": url,
                    "status": "1",
                    "note": "Callboard",
                });
                match self.call(reqwest::Method::POST, &format!("{path}/"), Some(body)).await {
                    Ok(_) => registered.created += 1,
                    Err(UapiError::Refused(words))
                        if matches!(event, CallEventType::AnswerIn | CallEventType::AnswerOut) =>
                    {
                        let words = crate::connectors::without_secret(words, &self.config.webhook_secret);
                        tracing::warn!(%extension, event = event.path(), %words, "VoipNow refused an Answer Call Event; Hangup ANSWER still counts calls answered");
                        registered.refused += 1;
                    }
                    Err(error) => {
                        first_error.get_or_insert(error);
                    }
                }
            }
        }
        first_error.map_or(Ok(registered), Err)
    }

    /// Carries out a command; `leg` is the extension and remote number of the live leg it names.
    pub async fn control(&self, command: Command, leg: Option<LegAt>) -> Result<String, CommandError> {
        match command.action {
            Action::Dial => {
                let extension = command
                    .extension
                    .as_ref()
                    .map(|e| e.native().to_owned())
                    .ok_or_else(|| CommandError::Refused("dialling needs the extension to call from".into()))?;
                let number = command
                    .number
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .ok_or_else(|| CommandError::Refused("dialling needs a number".into()))?;
                let body = json!({
                    "extension": extension,
                    "phoneCallView": [{ "source": [extension], "destination": [number.trim()] }],
                });
                let reply = self.call(reqwest::Method::POST, "/uapi/phoneCalls/@me/simple", Some(body)).await?;
                let ids: Vec<String> = entries(&reply).iter().filter_map(|call| text(call.get("id"))).collect();
                let mut placed = self.placed.lock().unwrap_or_else(|p| p.into_inner());
                for id in &ids {
                    placed.push_back(id.clone());
                }
                while placed.len() > PLACED_KEEP {
                    placed.pop_front();
                }
                Ok(format!("calling {} from {extension}", number.trim()))
            }
            Action::Hangup => {
                let leg = leg.ok_or_else(|| CommandError::Refused("there is no live call there".into()))?;
                // Without the other party, the DELETE would end every call at the extension.
                let remote = leg.remote.as_ref().ok_or_else(|| {
                    CommandError::Refused(
                        "the other party of this call is unknown, so VoipNow cannot tell which call to end".into(),
                    )
                })?;
                let path = format!("/uapi/phoneCalls/@me/{}?phoneNumber={}", encode(&leg.extension), encode(remote));
                self.call(reqwest::Method::DELETE, &path, None).await?;
                Ok("hung up".into())
            }
            Action::Hold | Action::Resume => Err(CommandError::Refused(
                "hold is left to the phone with VoipNow: its Call Events never say a call was held or \
                 resumed, and UnifiedAPI documents no resume, so the board could neither show nor undo it"
                    .into(),
            )),
            other => Err(CommandError::Refused(format!("VoipNow's UnifiedAPI offers no {other:?}"))),
        }
    }
}

/// Where a live leg is: its extended extension and the other party's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegAt {
    pub extension: String,
    pub remote: Option<String>,
}

/// The items of a list reply: a bare array, or an object's `entry` (or a single object).
pub fn entries(reply: &Value) -> Vec<Value> {
    match reply {
        Value::Array(items) => items.clone(),
        Value::Object(object) => match object.get("entry") {
            Some(Value::Array(items)) => items.clone(),
            Some(item @ Value::Object(_)) => vec![item.clone()],
            _ if object.contains_key("id") => vec![reply.clone()],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// A string or number as text.
/// Sends and sorts the outcome: 2xx is the JSON (or null when empty), 4xx is VoipNow's words,
/// anything else is unreachable.
async fn send(request: reqwest::RequestBuilder, secrets: &[&str]) -> Result<Value, UapiError> {
    match rest::exchange_hiding(request, REQUEST_TIMEOUT, secrets).await {
        Ok(reply) => Ok(reply),
        Err(refused @ RestError::Status { status: 400..=499, .. }) => Err(UapiError::Refused(refused.to_string())),
        Err(RestError::Status { status, .. }) => Err(UapiError::Unreachable(format!("HTTP {status}"))),
        Err(RestError::Transport(error)) => Err(UapiError::Unreachable(error)),
        Err(RestError::Unreadable(error)) => Err(UapiError::Unreadable(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_come_bare_or_in_entry() {
        assert_eq!(entries(&json!([{"id": 1}])).len(), 1);
        assert_eq!(entries(&json!({"entry": [{"id": 1}, {"id": 2}]})).len(), 2);
        assert_eq!(entries(&json!({"id": "5"})).len(), 1);
        assert!(entries(&json!({"paging": {}})).is_empty());
    }

    #[test]
    fn hold_is_not_offered_since_nothing_reports_it_or_undoes_it() {
        assert_eq!(CAPABILITIES, [Action::Dial, Action::Hangup]);
        assert!(!CAPABILITIES.contains(&Action::Hold) && !CAPABILITIES.contains(&Action::Resume));
    }
}
