//! Connectors: one per configured provider. Each turns its provider's wire messages into model
//! events for the hub, and model commands into provider requests. The command router only
//! knows this interface.

pub mod netaxis;
pub mod noojee;
pub mod rest;
pub mod time;
pub mod versature;
pub mod voicenter;
pub mod voipnow;

use crate::model::{Action, Command};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A transport failure in words an admin can act on: reqwest's own ("error sending request")
/// and then its causes ("tcp connect error: Connection refused"), each said once. Never the
/// URL, whose query can carry an API key.
pub fn transport_words(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut words = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !words.contains(&said) {
            words.push_str(": ");
            words.push_str(&said);
        }
        cause = inner.source();
    }
    words
}

/// Why a command did not happen, in words the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The provider said no; its own words.
    #[error("{0}")]
    Refused(String),
    /// The provider could not be reached or answered nonsense.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
}

/// One running connector, as the command router sees it.
pub trait Connector: Send + Sync {
    /// The configured provider name; ids of this provider start with it.
    fn name(&self) -> &str;
    /// What this provider lets us do: the UI shows only these buttons, the router refuses others.
    fn capabilities(&self) -> &[Action];
    /// Carries out a command; `Ok` holds the provider's outcome. The resulting state change
    /// arrives separately, as an event through the hub.
    fn control(&self, command: Command) -> BoxFuture<'static, Result<String, CommandError>>;
}

/// What a webhook route hands to its provider: the path after the secret, and the request.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The path segment after the secret (VoipNow's event type), if any.
    pub event: Option<String>,
    pub method: axum::http::Method,
    pub content_type: Option<String>,
    /// The raw query string, empty when there is none.
    pub query: String,
    pub body: axum::body::Bytes,
}

/// Why a delivery was not taken in; each maps to its own HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookRefusal {
    /// A path this provider does not serve: 404, as for a wrong secret.
    #[error("no such webhook: {0}")]
    UnknownEvent(String),
    /// Unreadable or unusable parameters: 400.
    #[error("{0}")]
    Malformed(String),
    /// The hub could not journal it: 503, so a sender that retries will.
    #[error("the live state is not available right now")]
    Unavailable,
}

/// A connector whose provider calls us. The webhook route checks the secret (in constant time)
/// and the body size for every receiver, so each receiver only parses and maps.
pub trait WebhookReceiver: Send + Sync {
    /// The configured provider name: the `{provider}` of the hook path.
    fn name(&self) -> &str;
    /// The path secret. Never logged.
    fn secret(&self) -> &str;
    /// Takes in one delivery; answers only once what it carried is journaled.
    fn receive(&self, delivery: Delivery) -> BoxFuture<'static, Result<(), HookRefusal>>;
    /// Counts, as an error with `reason`, a delivery the route refused before `receive` although
    /// its secret was right (a method other than GET or POST, an oversized body): only the
    /// provider knows the secret, so this is the provider's mistake.
    fn refused(&self, reason: &str);
    /// Counts a delivery with a wrong secret apart from the errors: anyone who can reach
    /// `/hooks/` can send one, and it must not hide the provider's own last error.
    fn turned_away(&self);
}

/// The running connectors, by provider name, and those of them that receive webhooks.
#[derive(Clone, Default)]
pub struct Connectors {
    by_name: BTreeMap<String, Arc<dyn Connector>>,
    hooks: BTreeMap<String, Arc<dyn WebhookReceiver>>,
}

impl Connectors {
    pub fn insert(&mut self, connector: Arc<dyn Connector>) {
        self.by_name.insert(connector.name().to_owned(), connector);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Connector>> {
        self.by_name.get(name)
    }

    /// Registers a provider's webhook receiver under its name.
    pub fn insert_hook(&mut self, receiver: Arc<dyn WebhookReceiver>) {
        self.hooks.insert(receiver.name().to_owned(), receiver);
    }

    pub fn hook(&self, name: &str) -> Option<&Arc<dyn WebhookReceiver>> {
        self.hooks.get(name)
    }
}

/// A started connector, and its webhook receiver when its provider calls us.
pub struct Started {
    pub connector: Arc<dyn Connector>,
    pub hook: Option<Arc<dyn WebhookReceiver>>,
    /// Work the connector does after shutdown (deleting a subscription), to wait for.
    pub finishing: Option<tokio::task::JoinHandle<()>>,
}

/// The HTTP client every connector uses: rustls (ring) with the system's roots, bounded
/// connection set-up, and a user agent that names us.
pub fn http_client() -> reqwest::Client {
    // Installing twice is harmless; the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("callboard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .build()
        .expect("a client with these settings always builds")
}

/// A connector's health as it counts it, published to browsers at most once a second while
/// all is well, so a flood of deliveries or of bad requests cannot flood them.
pub struct HealthBook {
    pub health: crate::model::ConnectorHealth,
    reported: std::time::Instant,
}

impl HealthBook {
    /// How often health is published while nothing calls for it at once.
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    pub fn new(health: crate::model::ConnectorHealth) -> Self {
        Self { health, reported: std::time::Instant::now() }
    }

    /// The health to publish now regardless (a change of state, an error on the provider side).
    pub fn publish(&mut self) -> crate::model::ConnectorHealth {
        self.reported = std::time::Instant::now();
        self.health.clone()
    }

    /// The health to publish, when a second has passed since it last was.
    pub fn due(&mut self) -> Option<crate::model::ConnectorHealth> {
        (self.reported.elapsed() >= Self::EVERY).then(|| self.publish())
    }

    /// Counts one message taken in at `at`.
    pub fn event(&mut self, at: crate::model::Timestamp) -> Option<crate::model::ConnectorHealth> {
        self.health.events += 1;
        self.health.last_event_at = Some(at);
        self.due()
    }

    /// Counts one error with its text (never a secret).
    pub fn error(&mut self, text: String) -> Option<crate::model::ConnectorHealth> {
        self.health.errors += 1;
        self.health.last_error = Some(text);
        self.due()
    }

    /// Counts one webhook delivery with a wrong secret; `errors` and `last_error` stay the
    /// provider's.
    pub fn turned_away(&mut self) -> Option<crate::model::ConnectorHealth> {
        self.health.turned_away += 1;
        self.due()
    }
}

/// Publishes health from where waiting is not possible (the webhook route's `refused` and
/// `turned_away`).
pub fn publish_soon(hub: &crate::hub::Hub, health: Option<crate::model::ConnectorHealth>) {
    if let Some(health) = health {
        let hub = hub.clone();
        tokio::spawn(async move {
            let _ = hub.report_health(health).await;
        });
    }
}

/// Starts the connector a `[[provider]]` table configures; the error names what is wrong.
pub async fn start(
    provider: &crate::server::config::ProviderConfig,
    hub: crate::hub::Hub,
    store: &crate::store::Store,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<Started, String> {
    use crate::server::config::ProviderKind;
    let invalid = |message: String| format!("provider {:?}: {message}", provider.name);
    match provider.kind {
        ProviderKind::Noojee => {
            let config = noojee::NoojeeConfig::from_table(&provider.settings).map_err(invalid)?;
            Ok(Started {
                connector: noojee::NoojeeConnector::start(&provider.name, config, hub, Some(store.clone()), shutdown),
                hook: None,
                finishing: None,
            })
        }
        ProviderKind::Voipnow => {
            let mut config = voipnow::VoipNowConfig::from_table(&provider.settings).map_err(invalid)?;
            if config.webhook_secret.is_empty() {
                config.resolve_secret(store, &provider.name).await.map_err(invalid)?;
                tracing::info!(provider = %provider.name, "using the webhook secret Callboard generated and stored (run `callboard hooks` to see the URLs)");
            }
            let connector =
                voipnow::VoipNowConnector::start(&provider.name, config, hub, store.clone(), shutdown).await;
            Ok(Started { connector: connector.clone(), hook: Some(connector), finishing: None })
        }
        ProviderKind::Versature => {
            let mut config = versature::VersatureConfig::from_table(&provider.settings).map_err(invalid)?;
            if config.webhook_secret.is_empty() {
                config.resolve_secret(store, &provider.name).await.map_err(invalid)?;
                tracing::info!(provider = %provider.name, "using the webhook secret Callboard generated and stored (run `callboard hooks` to see the URL)");
            }
            let (connector, task) = versature::VersatureConnector::start(&provider.name, config, hub, shutdown).await;
            Ok(Started { connector: connector.clone(), hook: Some(connector), finishing: Some(task) })
        }
        ProviderKind::Netaxis => {
            let config = netaxis::NetaxisConfig::from_table(&provider.settings).map_err(invalid)?;
            let connector = netaxis::NetaxisConnector::start(&provider.name, config, hub, shutdown).await;
            Ok(Started { connector, hook: None, finishing: None })
        }
        ProviderKind::Voicenter => {
            let config = voicenter::VoicenterConfig::from_table(&provider.settings).map_err(invalid)?;
            let connector = voicenter::VoicenterConnector::start(&provider.name, config, hub, shutdown).await;
            Ok(Started { connector, hook: None, finishing: None })
        }
    }
}

/// Every key a provider kind reads, each with a placeholder value of its type, so that an
/// environment override of a key the file leaves out is typed as the connector reads it:
/// `poll_timeout_s` a number, `extensions` a list, and a numeric-looking `api_key` still text.
/// Taken from the kind's own config type, so a key added there is known here too.
pub fn setting_types(kind: crate::server::config::ProviderKind) -> toml::Table {
    use crate::server::config::ProviderKind;
    /// The keys of `T` read from `required` (its keys without a default), serialized back.
    fn keys_of<T: serde::de::DeserializeOwned + serde::Serialize>(required: &str) -> Option<toml::Table> {
        let config: T = toml::from_str(required).ok()?;
        toml::Table::try_from(&config).ok()
    }
    let keys = match kind {
        ProviderKind::Noojee => keys_of::<noojee::NoojeeConfig>("base_url = \"\"\napi_key = \"\"\nextensions = []\n"),
        ProviderKind::Voipnow => keys_of::<voipnow::VoipNowConfig>("public_url = \"\"\n"),
        ProviderKind::Versature => keys_of::<versature::VersatureConfig>("public_url = \"\"\n"),
        ProviderKind::Netaxis => {
            keys_of::<netaxis::NetaxisConfig>("base_url = \"\"\ntenant = \"\"\ngroup = \"\"\nusers = []\n")
        }
        ProviderKind::Voicenter => keys_of::<voicenter::VoicenterConfig>(""),
    };
    // Empty only if a kind's required keys above fall behind its type (a test guards that);
    // its overrides are then taken as text, as the file's own types say.
    keys.unwrap_or_default()
}

/// Gives every configured extension a tile from the start, not only once it has a call.
pub async fn announce_extensions(hub: &crate::hub::Hub, provider: &str, account: &str, extensions: &[String]) {
    use crate::model::{Event, EventKind, ExtensionId, ExtensionReport};
    let now = crate::hub::now_ms();
    for extension in extensions {
        let report = ExtensionReport {
            extension: ExtensionId::new(provider, account, extension.trim()),
            name: None,
            sip_user: None,
            online_user: None,
        };
        let _ = hub.feed(Event::new(provider, account, now, EventKind::Extension(report))).await;
    }
}

/// A fresh webhook path secret: 32 random bytes from the OS-seeded CSPRNG, as hex.
pub fn generate_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Checks a configured webhook path secret; empty means "generate one".
pub fn check_webhook_secret(secret: &str) -> Result<(), String> {
    if !secret.is_empty() && (secret.len() < 16 || !secret.chars().all(|c| c.is_ascii_alphanumeric())) {
        return Err("webhook_secret must be at least 16 letters and digits (or left out to generate one)".into());
    }
    Ok(())
}

/// Fills in an empty webhook secret: the one generated and stored for provider `name` earlier,
/// or a new one stored now, so the URL registered at the provider survives restarts.
pub async fn resolve_secret(secret: &mut String, store: &crate::store::Store, name: &str) -> Result<(), String> {
    if secret.is_empty() {
        *secret = store
            .provider_secret(name, "webhook_secret", generate_secret())
            .await
            .map_err(|error| format!("cannot keep its generated webhook secret: {error}"))?;
    }
    Ok(())
}

/// Provider text (an error, a refusal) with our webhook secret taken out, before it is logged
/// or shown: a provider may echo the hook URL it was sent, and that URL carries the secret.
pub fn without_secret(text: String, secret: &str) -> String {
    if secret.is_empty() {
        return text;
    }
    text.replace(secret, "(secret)")
}

/// Whether `given` is `expected`, in time that does not depend on where they differ.
pub fn secret_matches(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_said_with_its_cause_and_without_the_key() {
        // A port nobody listens on: bound, then let go.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let error = http_client()
            .get(format!("http://127.0.0.1:{port}/servicemanager/rest/subscribe"))
            .query(&[("apiKey", "s3cret-key")])
            .send()
            .await
            .unwrap_err();
        let words = transport_words(error);
        assert!(words.starts_with("error sending request"), "{words}");
        assert!(words.to_lowercase().contains("connection refused"), "{words}");
        assert!(!words.contains("s3cret-key") && !words.contains("127.0.0.1"), "{words}");
    }

    #[test]
    fn every_kind_shows_its_keys_with_the_types_it_reads() {
        use crate::server::config::ProviderKind;
        let kinds = [
            ProviderKind::Noojee,
            ProviderKind::Voipnow,
            ProviderKind::Versature,
            ProviderKind::Netaxis,
            ProviderKind::Voicenter,
        ];
        for kind in kinds {
            assert!(!setting_types(kind).is_empty(), "{kind:?}: its required keys are out of date");
        }
        let noojee = setting_types(ProviderKind::Noojee);
        assert!(noojee["poll_timeout_s"].is_integer() && noojee["api_key"].is_str() && noojee["extensions"].is_array());
        let versature = setting_types(ProviderKind::Versature);
        assert!(versature["expires_in"].is_integer() && versature["delete_on_shutdown"].is_bool());
        assert!(versature["client_secret"].is_str());
        assert!(setting_types(ProviderKind::Netaxis)["users"].is_array());
        assert!(setting_types(ProviderKind::Voicenter)["login_type"].is_str());
    }

    #[test]
    fn a_wrong_secret_is_counted_apart_and_keeps_the_providers_last_error() {
        let mut book = HealthBook::new(crate::model::ConnectorHealth::default());
        book.error("HTTP 503: Integrate is down".into());
        book.turned_away();
        book.turned_away();
        let health = book.publish();
        assert_eq!((health.errors, health.turned_away), (1, 2));
        assert_eq!(health.last_error.as_deref(), Some("HTTP 503: Integrate is down"));
    }
}
