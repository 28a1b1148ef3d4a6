//! A VoipNow callback mapped onto the model (providers.md section 7).
//!
//! A callback is one extension's view of one call: the leg is `CallID` at that extension, the
//! call is `CallAPIID` (which survives transfers) or else `CallID`. Callbacks carry no time and
//! no sequence, so the connector orders them by how far the leg has come.

use super::wire::{short_extension, CallEventType, CallParams};
use crate::model::{Direction, EndCause, LegState, Party};

/// `CallStatus` of a Hangup to end cause; `ANSWER` is a normal end of an answered call.
pub fn end_cause(call_status: Option<&str>) -> EndCause {
    match call_status.map(|status| status.trim().to_ascii_uppercase()).as_deref() {
        Some("ANSWER") => EndCause::Normal,
        Some("BUSY") => EndCause::Busy,
        Some("NOANSWER") => EndCause::NoAnswer,
        Some("CANCEL") => EndCause::Cancelled,
        Some("CONGESTION") => EndCause::Congestion,
        Some("CHANUNAVAIL") => EndCause::Unavailable,
        _ => EndCause::Unknown,
    }
}

/// The leg state an event type reports.
pub fn leg_state(event: CallEventType) -> LegState {
    match event {
        CallEventType::DialIn => LegState::Ringing,
        CallEventType::DialOut => LegState::Initiating,
        CallEventType::AnswerIn | CallEventType::AnswerOut => LegState::Active,
        CallEventType::Hangup => LegState::Ended,
    }
}

/// Which side of the call the callback is about, from its event type or, on Hangup, `CallFlow`.
/// `None` when a Hangup does not say (the connector then looks for a leg it knows).
pub fn flow_in(event: CallEventType, params: &CallParams) -> Option<bool> {
    match event {
        CallEventType::DialIn | CallEventType::AnswerIn => Some(true),
        CallEventType::DialOut | CallEventType::AnswerOut => Some(false),
        CallEventType::Hangup => match params.call_flow.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("IN") => Some(true),
            Some("OUT") => Some(false),
            _ => None,
        },
    }
}

/// What one callback says about one leg, before the connector gives it ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// `CallID`: the leg is this at `extension`.
    pub call_id: String,
    /// `CallAPIID` when given.
    pub conversation: Option<String>,
    /// The extended extension number the leg is at.
    pub extension: String,
    pub state: LegState,
    pub end_cause: Option<EndCause>,
    /// Whether a Hangup says the call was answered (`ANSWER`), though no Answer event came.
    pub answered: bool,
    pub direction: Direction,
    pub local: Party,
    pub remote: Party,
    pub raw_state: String,
    /// `CallStatus` as sent, kept as the raw cause of an ended leg.
    pub call_status: Option<String>,
}

/// Reads one callback; `inbound` is the side when the callback did not say (see [`flow_in`]).
/// An error says what is missing: without `CallID` or the extension there is nothing to key.
pub fn observe(event: CallEventType, params: &CallParams, inbound: bool) -> Result<Observation, String> {
    let Some(call_id) = params.call_id.clone() else {
        return Err(format!("a {} callback without CallID", event.path()));
    };
    let (ours, theirs) = if inbound {
        (&params.called_extension, &params.caller_extension)
    } else {
        (&params.caller_extension, &params.called_extension)
    };
    let Some(extension) = ours.clone() else {
        let name = if inbound { "CalledExtension" } else { "CallerExtension" };
        return Err(format!("a {} callback for call {call_id} without {name}", event.path()));
    };
    let state = leg_state(event);
    let direction = match (inbound, theirs.is_some()) {
        (_, true) => Direction::Internal,
        (true, false) => Direction::Inbound,
        (false, false) => Direction::Outbound,
    };
    let remote_extension = theirs.as_deref().map(|e| short_extension(e).to_owned());
    let remote = if inbound {
        Party {
            number: params.caller_id_num.clone().or_else(|| remote_extension.clone()),
            name: params.caller_id_name.clone(),
            extension: remote_extension,
        }
    } else {
        Party {
            number: params.called_number.clone().or_else(|| remote_extension.clone()),
            name: None,
            extension: remote_extension,
        }
    };
    let short = short_extension(&extension).to_owned();
    let local = Party { number: Some(short.clone()), name: None, extension: Some(short) };
    let status = params.call_status.clone().unwrap_or_default();
    Ok(Observation {
        call_id,
        conversation: params.call_api_id.clone(),
        extension,
        state,
        end_cause: state.is_ended().then(|| end_cause(Some(&status))),
        answered: state.is_ended() && status.trim().eq_ignore_ascii_case("ANSWER"),
        direction,
        local,
        remote,
        raw_state: if status.is_empty() { event.path().to_owned() } else { format!("{} {status}", event.path()) },
        call_status: params.call_status.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_call_status_maps() {
        assert_eq!(end_cause(Some("ANSWER")), EndCause::Normal);
        assert_eq!(end_cause(Some("BUSY")), EndCause::Busy);
        assert_eq!(end_cause(Some("NOANSWER")), EndCause::NoAnswer);
        assert_eq!(end_cause(Some("CANCEL")), EndCause::Cancelled);
        assert_eq!(end_cause(Some("CONGESTION")), EndCause::Congestion);
        assert_eq!(end_cause(Some("CHANUNAVAIL")), EndCause::Unavailable);
        assert_eq!(end_cause(Some("UNKNOWN")), EndCause::Unknown);
        assert_eq!(end_cause(Some("SOMETHING_NEW")), EndCause::Unknown);
        assert_eq!(end_cause(None), EndCause::Unknown);
    }

    #[test]
    fn the_side_comes_from_the_event_or_the_flow() {
        let mut params = CallParams { call_id: Some("1".into()), ..CallParams::default() };
        assert_eq!(flow_in(CallEventType::DialIn, &params), Some(true));
        assert_eq!(flow_in(CallEventType::AnswerOut, &params), Some(false));
        assert_eq!(flow_in(CallEventType::Hangup, &params), None);
        params.call_flow = Some("out".into());
        assert_eq!(flow_in(CallEventType::Hangup, &params), Some(false));
        let error = observe(CallEventType::Hangup, &params, false).unwrap_err();
        assert!(error.contains("CallerExtension"), "{error}");
        params.call_id = None;
        assert!(observe(CallEventType::DialIn, &params, true).unwrap_err().contains("CallID"));
    }
}
