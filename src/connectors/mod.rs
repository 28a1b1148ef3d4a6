//! Connectors: one per configured provider. Each turns its provider's wire messages into model
//! events for the hub, and model commands into provider requests. The command router only
//! knows this interface.

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
