//! The Netaxis (APIO, BroadWorks) Call Service replies as the seed shows them: call lists with
//! and without details, call details, the created-call reply, and the names of the modify
//! actions, recording states and recording controls. Read leniently (numbers or strings,
//! `Pause:` for `Paused`), bounded, and refused with a reason when a call cannot be used.

use crate::connectors::rest::text;
use crate::connectors::time::parse_time;
use crate::model::{Action, RecordingState, Timestamp};
use serde_json::Value;

/// Calls read from one user's list; a user has a handful, so more is refused as nonsense.
pub const MAX_CALLS_PER_USER: usize = 64;
/// Longest id or text kept from a reply.
const MAX_TEXT: usize = 256;

/// One call of a user, from the list with details or from the call's details.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallEntry {
    /// `callhalf-1595867:0`: this user's half of the call.
    pub call_id: String,
    pub in_conference: Option<bool>,
    /// The same on every half of one conversation.
    pub external_tracking_id: Option<String>,
    /// `Originator`, `Click-to-Dial` (and BroadWorks's `Terminator`).
    pub personality: Option<String>,
    /// `Alerting/Ringing`, `Active`, `Answered`, `Released`, `Detached`, `Held`, `Remote Held`;
    /// absent in a list without details.
    pub state: Option<String>,
    pub remote_address: Option<String>,
    /// `Group` (inside the group) or `Unknown`.
    pub remote_call_type: Option<String>,
    pub address_of_record: Option<String>,
    pub appearance: Option<u64>,
    pub start_time: Option<Timestamp>,
    pub answer_time: Option<Timestamp>,
    pub recorded: Option<bool>,
    pub recording_state: Option<RecordingState>,
    /// The recording actions allowed now; `Some(vec![])` for `none`.
    pub recording_controls: Option<Vec<Action>>,
}

/// One entry of a list that could not be used: the call it names (if any) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub call_id: Option<String>,
    pub reason: String,
}

/// The reply to click-to-call and call retrieve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub call_id: String,
    pub external_tracking_id: Option<String>,
}

/// `User Call Modify Actions`: what a `PUT` on a call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modify {
    Hold,
    /// Retrieves a held call and releases the user's other calls.
    Reconnect,
    BlindTransfer {
        phone_number: String,
    },
    /// Joins this call with the consulted call `transfer_call_id`.
    ConsultativeTransfer {
        transfer_call_id: String,
    },
    StartRecording,
    PauseRecording,
    ResumeRecording,
    StopRecording,
}

impl Modify {
    /// The request body, as the seed writes it.
    pub fn body(&self) -> Value {
        match self {
            Modify::Hold => serde_json::json!({ "action": "hold" }),
            Modify::Reconnect => serde_json::json!({ "action": "reconnect" }),
            Modify::BlindTransfer { phone_number } => {
                serde_json::json!({ "action": "blindTransfer", "phoneNumber": phone_number })
            }
            Modify::ConsultativeTransfer { transfer_call_id } => {
                serde_json::json!({ "action": "consultativeTransfer", "transferCallId": transfer_call_id })
            }
            Modify::StartRecording => serde_json::json!({ "action": "startRecording" }),
            Modify::PauseRecording => serde_json::json!({ "action": "pauseRecording" }),
            Modify::ResumeRecording => serde_json::json!({ "action": "resumeRecording" }),
            Modify::StopRecording => serde_json::json!({ "action": "stopRecording" }),
        }
    }

    /// Reads a request body back (the simulator's face does).
    pub fn from_body(body: &Value) -> Result<Self, String> {
        let field = |key: &str| bounded(body.get(key)).ok_or_else(|| format!("{key} is required for this action"));
        match body.get("action").and_then(Value::as_str) {
            Some("hold") => Ok(Modify::Hold),
            Some("reconnect") => Ok(Modify::Reconnect),
            Some("blindTransfer") => Ok(Modify::BlindTransfer { phone_number: field("phoneNumber")? }),
            Some("consultativeTransfer") => {
                Ok(Modify::ConsultativeTransfer { transfer_call_id: field("transferCallId")? })
            }
            Some("startRecording") => Ok(Modify::StartRecording),
            Some("pauseRecording") => Ok(Modify::PauseRecording),
            Some("resumeRecording") => Ok(Modify::ResumeRecording),
            Some("stopRecording") => Ok(Modify::StopRecording),
            Some(other) => Err(format!("unknown action {:?}", shown(other))),
            None => Err("action is required".into()),
        }
    }
}

fn shown(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Text trimmed and bounded; empty is none.
fn bounded(value: Option<&Value>) -> Option<String> {
    let text = text(value)?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().filter(|c| !c.is_control()).take(MAX_TEXT).collect())
}

fn flag(value: Option<&Value>) -> Result<Option<bool>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(Value::String(text)) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(format!("{:?} is not true or false", shown(text))),
        },
        Some(other) => Err(format!("{} is not true or false", shown(&other.to_string()))),
    }
}

fn time(entry: &Value, key: &str) -> Result<Option<Timestamp>, String> {
    match bounded(entry.get(key)) {
        None => Ok(None),
        Some(value) => parse_time(&value).map(Some).ok_or_else(|| format!("{key} {:?} is not a time", shown(&value))),
    }
}

/// `Started`, `Paused` (the seed's other table spells it `Pause:`), `Pending`, `Failed`.
pub fn recording_state(text: &str) -> Option<RecordingState> {
    match text.trim().trim_end_matches([':', ',']).to_ascii_lowercase().as_str() {
        "pending" => Some(RecordingState::Pending),
        "started" => Some(RecordingState::Started),
        "paused" | "pause" => Some(RecordingState::Paused),
        "failed" => Some(RecordingState::Failed),
        _ => None,
    }
}

/// `none`, `record`, `pause`, `pause-stop`, `resume`, `resume-stop`, `stop`.
pub fn recording_controls(text: &str) -> Option<Vec<Action>> {
    let text = text.trim().to_ascii_lowercase();
    if text == "none" {
        return Some(Vec::new());
    }
    text.split('-')
        .map(|word| match word {
            "record" => Some(Action::RecordStart),
            "pause" => Some(Action::RecordPause),
            "resume" => Some(Action::RecordResume),
            "stop" => Some(Action::RecordStop),
            _ => None,
        })
        .collect()
}

/// The wire name of recording controls, for the simulator's face.
pub fn controls_name(controls: &[Action]) -> &'static str {
    match controls {
        [] => "none",
        [Action::RecordStart] => "record",
        [Action::RecordPause] => "pause",
        [Action::RecordPause, Action::RecordStop] => "pause-stop",
        [Action::RecordResume] => "resume",
        [Action::RecordResume, Action::RecordStop] => "resume-stop",
        _ => "stop",
    }
}

/// One call of a list or a details reply.
pub fn call_entry(entry: &Value) -> Result<CallEntry, Unusable> {
    let call_id = bounded(entry.get("callId"));
    let unusable = |reason: String| Unusable { call_id: call_id.clone(), reason };
    let Some(id) = call_id.clone() else {
        return Err(unusable("a call without callId".into()));
    };
    let remote = entry.get("remoteParty").filter(|remote| remote.is_object());
    let recording_state = match bounded(entry.get("recordingState")) {
        None => None,
        Some(text) => Some(
            recording_state(&text)
                .ok_or_else(|| unusable(format!("recordingState {:?} is not one Netaxis lists", shown(&text))))?,
        ),
    };
    let recording_controls = match bounded(entry.get("allowedRecordingControls")) {
        None => None,
        Some(text) => Some(recording_controls(&text).ok_or_else(|| {
            unusable(format!("allowedRecordingControls {:?} is not one Netaxis lists", shown(&text)))
        })?),
    };
    let appearance = match entry.get("appearance") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            crate::connectors::rest::lenient_u64(value)
                .ok_or_else(|| unusable(format!("appearance {} is not a number", shown(&value.to_string()))))?,
        ),
    };
    Ok(CallEntry {
        call_id: id,
        in_conference: flag(entry.get("inConference")).map_err(|reason| unusable(format!("inConference: {reason}")))?,
        external_tracking_id: bounded(entry.get("externalTrackingId")),
        personality: bounded(entry.get("personality")),
        state: bounded(entry.get("state")),
        remote_address: remote.and_then(|remote| bounded(remote.get("address"))),
        remote_call_type: remote.and_then(|remote| bounded(remote.get("callType"))),
        address_of_record: entry.get("endpoint").and_then(|endpoint| bounded(endpoint.get("addressOfRecord"))),
        appearance,
        start_time: time(entry, "startTime").map_err(&unusable)?,
        answer_time: time(entry, "answerTime").map_err(&unusable)?,
        recorded: flag(entry.get("recorded")).map_err(|reason| unusable(format!("recorded: {reason}")))?,
        recording_state,
        recording_controls,
    })
}

/// One call of a list: as received (kept as the event's raw payload) and as read.
pub type Listed = (Value, Result<CallEntry, Unusable>);

/// A call list reply: `{"calls": [...]}`. The whole reply is refused when it is not one; each
/// call is read on its own, so one odd call does not hide the others.
pub fn call_list(reply: &Value) -> Result<Vec<Listed>, String> {
    let calls = reply.get("calls").and_then(Value::as_array).ok_or("a call list without a calls array")?;
    if calls.len() > MAX_CALLS_PER_USER {
        return Err(format!("a call list of {} calls (at most {MAX_CALLS_PER_USER} are read)", calls.len()));
    }
    Ok(calls.iter().map(|call| (call.clone(), call_entry(call))).collect())
}

/// The reply to click-to-call and call retrieve: `{"callId", "externalTrackingId"}`.
pub fn created(reply: &Value) -> Result<Created, String> {
    let call_id = bounded(reply.get("callId")).ok_or("the reply has no callId")?;
    Ok(Created { call_id, external_tracking_id: bounded(reply.get("externalTrackingId")) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recording_words_read_in_both_spellings() {
        assert_eq!(recording_state("Pause:"), Some(RecordingState::Paused));
        assert_eq!(recording_state("Paused"), Some(RecordingState::Paused));
        assert_eq!(recording_state("Recording"), None);
        assert_eq!(recording_controls("pause-stop"), Some(vec![Action::RecordPause, Action::RecordStop]));
        assert_eq!(recording_controls("none"), Some(vec![]));
        assert_eq!(recording_controls("pause-go"), None);
        for name in ["none", "record", "pause", "pause-stop", "resume", "resume-stop", "stop"] {
            assert_eq!(controls_name(&recording_controls(name).unwrap()), name);
        }
    }

    #[test]
    fn odd_values_are_read_or_refused_with_the_call_named() {
        let entry = json!({"callId": " callhalf-1:0 ", "inConference": "false", "appearance": "2", "state": "Held"});
        let entry = call_entry(&entry).unwrap();
        assert_eq!(
            (entry.call_id.as_str(), entry.in_conference, entry.appearance),
            ("callhalf-1:0", Some(false), Some(2))
        );
        let bad = call_entry(&json!({"callId": "callhalf-2:0", "startTime": "yesterday"})).unwrap_err();
        assert_eq!(bad.call_id.as_deref(), Some("callhalf-2:0"));
        assert!(bad.reason.contains("startTime"), "{}", bad.reason);
        assert!(call_entry(&json!({"state": "Active"})).unwrap_err().call_id.is_none());
        assert!(call_list(&json!({"calls": "none"})).is_err());
        let many: Vec<Value> = (0..65).map(|n| json!({"callId": format!("c{n}")})).collect();
        assert!(call_list(&json!({ "calls": many })).is_err());
        assert!(Modify::from_body(&json!({"action": "blindTransfer"})).unwrap_err().contains("phoneNumber"));
    }
}
