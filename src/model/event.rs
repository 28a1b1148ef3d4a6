//! What connectors report: observations of the PBX, each applied by the hub in one place.

use super::call::{Direction, EndCause, HeldBy, LegState, Origin, Party, Recording};
use super::extension::AgentStatus;
use super::ids::{CallId, ExtensionId, LegId, QueueId, Timestamp};
use serde::{Deserialize, Serialize};

/// One observation from one provider. Events may arrive twice, late or out of order; the
/// transition function makes the result independent of that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The configured provider name (`[[provider]] name`).
    pub provider: String,
    pub account: String,
    /// The provider's own sequence number, where it has one (Noojee `seq`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// When it happened, by the provider's clock (or the receive time when it gives none).
    pub at: Timestamp,
    pub received_at: Timestamp,
    pub kind: EventKind,
    /// The provider's message as received, kept so nothing is lost to the mapping.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub raw: serde_json::Value,
}

impl Event {
    /// An observation made at `at` and received then, with no provider sequence or raw payload;
    /// connectors add those when their wire has them.
    pub fn new(provider: &str, account: &str, at: Timestamp, kind: EventKind) -> Self {
        Event {
            provider: provider.to_owned(),
            account: account.to_owned(),
            seq: None,
            at,
            received_at: at,
            kind,
            raw: serde_json::Value::Null,
        }
    }
}

/// The kinds of observation; each is a full statement, not a diff, so it can be re-applied.
// Leg reports are most events; boxing them would cost an allocation each for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// One leg is in `state` as of the event's time.
    Leg(LegReport),
    /// The whole conversation ended (every leg with it).
    CallEnded {
        call: CallId,
        cause: EndCause,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw_cause: Option<String>,
    },
    /// Who an extension belongs to.
    Extension(ExtensionReport),
    AgentStatus {
        extension: ExtensionId,
        status: AgentStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        raw_status: Option<String>,
    },
    /// A queue's name and the extensions that serve it.
    Queue {
        queue: QueueId,
        name: String,
        members: Vec<ExtensionId>,
    },
    QueueJoined {
        queue: QueueId,
        call: CallId,
        #[serde(default)]
        caller: Party,
    },
    QueueLeft {
        queue: QueueId,
        call: CallId,
        outcome: QueueOutcome,
    },
}

/// The state of one leg as a provider reported it at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LegReport {
    pub leg: LegId,
    pub call: CallId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<ExtensionId>,
    pub state: LegState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<HeldBy>,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub origin: Origin,
    #[serde(default)]
    pub local: Party,
    #[serde(default)]
    pub remote: Party,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueId>,
    /// With `state: ended`; absent means the provider did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_cause: Option<EndCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_cause: Option<String>,
    /// The provider's own name for the state.
    #[serde(default)]
    pub raw_state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
    /// Orders reports stamped with the same time: a connector that stamps a state with when it
    /// began (so time in state stays true) gives a later change of its details a higher
    /// revision. Zero for connectors whose every report has its own time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revision: u64,
}

impl LegReport {
    /// The report that restates a leg as the live state holds it: a connector restarted with
    /// the journal's state diffs what it hears next against this.
    pub fn restating(leg: &super::call::Leg, origin: Origin, queue: Option<QueueId>) -> Self {
        LegReport {
            leg: leg.id.clone(),
            call: leg.call.clone(),
            extension: leg.extension.clone(),
            state: leg.state,
            held_by: leg.held_by,
            direction: leg.direction,
            origin,
            local: leg.local.clone(),
            remote: leg.remote.clone(),
            queue,
            end_cause: None,
            raw_cause: None,
            raw_state: leg.raw_state.clone(),
            recording: leg.recording.clone(),
            revision: 0,
        }
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Names and identities of an extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExtensionReport {
    pub extension: ExtensionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_user: Option<String>,
}

/// How a call left a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueOutcome {
    Answered,
    /// The caller hung up while waiting.
    Abandoned,
    /// Overflowed, timed out to voicemail, transferred out: neither answered nor abandoned.
    Other,
}
