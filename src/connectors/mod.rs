//! Connectors: one per configured provider. Each turns its provider's wire messages into model
//! events for the hub, and model commands into provider requests. The command router only
//! knows this interface.

pub mod noojee;

use crate::model::{Action, Command};
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// The running connectors, by provider name.
#[derive(Clone, Default)]
pub struct Connectors {
    by_name: BTreeMap<String, Arc<dyn Connector>>,
}

impl Connectors {
    pub fn insert(&mut self, connector: Arc<dyn Connector>) {
        self.by_name.insert(connector.name().to_owned(), connector);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Connector>> {
        self.by_name.get(name)
    }
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

/// Starts the connector a `[[provider]]` table configures; the error names what is wrong.
pub fn start(
    provider: &crate::server::config::ProviderConfig,
    hub: crate::hub::Hub,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<Arc<dyn Connector>, String> {
    use crate::server::config::ProviderKind;
    let invalid = |message: String| format!("provider {:?}: {message}", provider.name);
    match provider.kind {
        ProviderKind::Noojee => {
            let config = noojee::NoojeeConfig::from_table(&provider.settings).map_err(invalid)?;
            Ok(noojee::NoojeeConnector::start(&provider.name, config, hub, shutdown))
        }
        other => Err(invalid(format!("the {other:?} connector is not available yet"))),
    }
}
