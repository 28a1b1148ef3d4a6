//! Identifiers, namespaced by provider and account so two PBXs can never collide.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch, UTC. Providers disagree (seconds, milliseconds, local
/// time without a zone); connectors convert to this once, at the edge.
pub type Timestamp = i64;

macro_rules! namespaced_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// `provider/account/native`: the provider's own id, made unique across providers.
            pub fn new(provider: &str, account: &str, native: &str) -> Self {
                Self(format!("{provider}/{account}/{native}"))
            }

            /// The provider's own id, as it appears on its wire.
            pub fn native(&self) -> &str {
                self.0.splitn(3, '/').nth(2).unwrap_or(&self.0)
            }

            /// The configured provider name this id belongs to.
            pub fn provider(&self) -> &str {
                self.0.split('/').next().unwrap_or("")
            }

            /// The provider's account this id belongs to.
            pub fn account(&self) -> &str {
                self.0.split('/').nth(1).unwrap_or("")
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

namespaced_id!(
    /// A conversation: every leg of one call, across transfers where the provider allows it.
    CallId
);
namespaced_id!(
    /// One party's channel (call half) within a conversation.
    LegId
);
namespaced_id!(
    /// A phone extension; its native part is the number users dial.
    ExtensionId
);
namespaced_id!(
    /// A call queue (ACD group, hunt group).
    QueueId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_part_keeps_slashes_and_colons() {
        let id = CallId::new("main-pbx", "acct", "callhalf-1:0/x");
        assert_eq!(id.as_str(), "main-pbx/acct/callhalf-1:0/x");
        assert_eq!(id.native(), "callhalf-1:0/x");
        assert_eq!(id.provider(), "main-pbx");
    }
}
