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

impl Action {
    /// Every action, in the order the API lists them.
    pub const ALL: [Action; 12] = [
        Action::Dial,
        Action::Answer,
        Action::Hangup,
        Action::Hold,
        Action::Resume,
        Action::BlindTransfer,
        Action::Consult,
        Action::CompleteTransfer,
        Action::RecordStart,
        Action::RecordPause,
        Action::RecordResume,
        Action::RecordStop,
    ];

    /// The name the API reads (`record_start`), which the desk's `data-action` hooks use too,
    /// so a test or a script names a button as it names the command.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Dial => "dial",
            Action::Answer => "answer",
            Action::Hangup => "hangup",
            Action::Hold => "hold",
            Action::Resume => "resume",
            Action::BlindTransfer => "blind_transfer",
            Action::Consult => "consult",
            Action::CompleteTransfer => "complete_transfer",
            Action::RecordStart => "record_start",
            Action::RecordPause => "record_pause",
            Action::RecordResume => "record_resume",
            Action::RecordStop => "record_stop",
        }
    }
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

impl Command {
    /// A call from `extension` to `number`: what the dial pad, contacts and every call-back
    /// button send.
    pub fn dial(extension: ExtensionId, number: String) -> Self {
        Command { action: Action::Dial, call: None, leg: None, extension: Some(extension), number: Some(number) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_is_named_as_the_api_reads_it() {
        for action in Action::ALL {
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
        }
    }
}
