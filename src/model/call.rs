//! Calls and their legs: what is ringing, talking, held and ended.

use super::command::Action;
use super::ids::{CallId, ExtensionId, LegId, QueueId, Timestamp};
use serde::{Deserialize, Serialize};

/// Where one party's channel is. `Ended` is terminal: nothing moves a leg out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegState {
    /// Dialing out, trying, off-hook: our side is starting a call.
    Initiating,
    /// This endpoint is alerting.
    Ringing,
    /// The far end is alerting (outbound).
    RemoteRinging,
    /// Waiting in a queue.
    Queued,
    /// Talking.
    Active,
    /// On hold; `Leg::held_by` says which side holds.
    Held,
    Parked,
    /// The call exists but is attached to no endpoint (BroadWorks).
    Detached,
    Ended,
    /// A provider state we have no mapping for; the raw state is kept on the leg.
    Unknown,
}

impl LegState {
    pub fn is_ended(self) -> bool {
        self == LegState::Ended
    }

    /// Talking or held: the call was answered.
    pub fn is_answered(self) -> bool {
        matches!(self, LegState::Active | LegState::Held | LegState::Parked)
    }

    /// Order of progress, used only to break ties between reports carrying the same time.
    pub fn progress(self) -> u8 {
        match self {
            LegState::Unknown => 0,
            LegState::Initiating => 1,
            LegState::Queued => 2,
            LegState::Ringing => 3,
            LegState::RemoteRinging => 4,
            LegState::Detached => 5,
            LegState::Active => 6,
            LegState::Held => 7,
            LegState::Parked => 8,
            LegState::Ended => 9,
        }
    }
}

/// Why a leg or call ended, normalized; the provider's own words stay in `raw_cause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    Normal,
    NoAnswer,
    Busy,
    /// The caller gave up before anyone answered.
    Cancelled,
    Rejected,
    AnsweredElsewhere,
    Congestion,
    /// Channel unavailable, phone not registered.
    Unavailable,
    Failed,
    NotAllowed,
    QueueAbandoned,
    Unknown,
}

/// Who holds a held leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldBy {
    Local,
    Remote,
}

/// Seen from the extension (or, for a call, from the PBX).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
    Internal,
    #[default]
    Unknown,
}

/// How the call came to be; agents treat a click-to-call or a dialer call differently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Origin {
    #[default]
    Normal,
    ClickToCall,
    Dialer {
        campaign: String,
    },
    /// Someone listening in (Voicenter's Spy).
    Spy,
}

/// Where a call's recording stands, as providers that control recording report it (Netaxis).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    Off,
    /// Asked for while the call was held; starts when it is resumed.
    Pending,
    Started,
    Paused,
    /// Started and failed: it cannot be started again.
    Failed,
}

/// A leg's recording and the recording commands the provider allows on it right now, so the
/// desk shows only the buttons that will work.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Recording {
    pub state: RecordingState,
    /// Only recording actions (`record_start`, `record_pause`, `record_resume`, `record_stop`).
    pub controls: Vec<Action>,
}

/// One end of a call as the provider describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Party {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// One party's channel in a call, as the live state holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    pub id: LegId,
    pub call: CallId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<ExtensionId>,
    pub state: LegState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<HeldBy>,
    pub direction: Direction,
    pub local: Party,
    pub remote: Party,
    /// First time any report about this leg was made.
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ringing_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_cause: Option<EndCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_cause: Option<String>,
    /// The provider's own name for the current state.
    pub raw_state: String,
    /// Absent where the provider says nothing of recording; then the connector's capabilities
    /// alone decide the recording buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<Recording>,
    /// Time of the report the current state comes from; the browser's "time in state" timer.
    pub state_since: Timestamp,
}

/// A conversation as the wallboard and history show it, derived from its legs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    /// Oldest first.
    pub legs: Vec<Leg>,
    pub direction: Direction,
    pub origin: Origin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueId>,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_cause: Option<EndCause>,
    /// The outside party, for screen pops and history search.
    pub caller: Party,
}
