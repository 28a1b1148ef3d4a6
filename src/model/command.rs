//! Call-control requests from the UI, routed by the hub to the connector that owns the call.

use super::ids::{CallId, ExtensionId, LegId};
use serde::{Deserialize, Serialize};

/// What a user asks the PBX to do (the `action` of `POST /api/v1/commands`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Dial,
    Answer,
    Hangup,
    Hold,
    Resume,
    BlindTransfer,
    Consult,
    CompleteTransfer,
    RecordStart,
    RecordPause,
    RecordResume,
    RecordStop,
}

/// The body of `POST /api/v1/commands`; which fields matter depends on the action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leg: Option<LegId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<ExtensionId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}
