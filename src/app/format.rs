//! How numbers, parties and statuses read on screen.

use crate::model::{Action, AgentStatus, BreakReason, Direction, EndCause, LegState, Party, RecordingState};

/// A phone number grouped for reading: Australian numbers, however written (`0299990000`,
/// `+61 2 9999 0000`), in their usual international blocks, so one caller always reads the
/// same; others as given.
pub fn phone_number(number: &str) -> String {
    let international = crate::model::e164(number).unwrap_or_default();
    match international.strip_prefix("+61") {
        Some(rest) if rest.len() == 9 && rest.starts_with('4') => {
            format!("+61 {} {} {}", &rest[..3], &rest[3..6], &rest[6..])
        }
        Some(rest) if rest.len() == 9 => format!("+61 {} {} {}", &rest[..1], &rest[1..5], &rest[5..]),
        _ => number.to_owned(),
    }
}

/// The other party as one short line: name when known, else the number.
pub fn party(party: &Party) -> String {
    match (&party.name, &party.number) {
        (Some(name), _) if !name.trim().is_empty() => name.clone(),
        (_, Some(number)) => phone_number(number),
        _ => party.extension.clone().unwrap_or_else(|| "unknown".into()),
    }
}

pub fn direction_arrow(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "↘",
        Direction::Outbound => "↗",
        Direction::Internal => "↔",
        Direction::Unknown => "•",
    }
}

/// The direction in words, beside its arrow.
pub fn direction(direction: Direction) -> &'static str {
    match direction {
        Direction::Inbound => "Inbound",
        Direction::Outbound => "Outbound",
        Direction::Internal => "Internal",
        Direction::Unknown => "",
    }
}

/// Where the agent's own leg stands, as an agent would say it.
pub fn leg_state(state: LegState) -> &'static str {
    match state {
        LegState::Initiating => "Dialling",
        LegState::Ringing => "Ringing",
        LegState::RemoteRinging => "Ringing out",
        LegState::Queued => "Queued",
        LegState::Active => "Talking",
        LegState::Held => "On hold",
        LegState::Parked => "Parked",
        LegState::Detached => "Detached",
        LegState::Ended => "Ended",
        LegState::Unknown => "",
    }
}

/// How a call ended, for the list of earlier calls.
pub fn end_cause(cause: EndCause) -> &'static str {
    match cause {
        EndCause::Normal => "ended normally",
        EndCause::NoAnswer => "no answer",
        EndCause::Busy => "busy",
        EndCause::Cancelled => "cancelled",
        EndCause::Rejected => "rejected",
        EndCause::AnsweredElsewhere => "answered elsewhere",
        EndCause::Congestion => "network busy",
        EndCause::Unavailable => "unavailable",
        EndCause::Failed => "failed",
        EndCause::NotAllowed => "not allowed",
        EndCause::QueueAbandoned => "abandoned in queue",
        EndCause::Unknown => "ended",
    }
}

/// Where the call's recording stands.
pub fn recording(state: RecordingState) -> &'static str {
    match state {
        RecordingState::Off => "Not recording",
        RecordingState::Pending => "Recording starts…",
        RecordingState::Started => "Recording",
        RecordingState::Paused => "Recording paused",
        RecordingState::Failed => "Recording failed",
    }
}

/// A command while it is under way, as its button's progress line says it.
pub fn action_in_progress(action: Action) -> &'static str {
    match action {
        Action::Dial => "Dialling…",
        Action::Answer => "Answering…",
        Action::Hangup => "Hanging up…",
        Action::Hold => "Holding…",
        Action::Resume => "Resuming…",
        Action::BlindTransfer => "Transferring…",
        Action::Consult => "Calling the colleague…",
        Action::CompleteTransfer => "Completing the transfer…",
        Action::RecordStart => "Starting the recording…",
        Action::RecordPause => "Pausing the recording…",
        Action::RecordResume => "Resuming the recording…",
        Action::RecordStop => "Stopping the recording…",
    }
}

pub fn break_reason(reason: &BreakReason) -> String {
    match reason {
        BreakReason::Lunch => "Lunch".into(),
        BreakReason::Admin => "Admin".into(),
        BreakReason::Private => "Private".into(),
        BreakReason::Training => "Training".into(),
        BreakReason::Meeting => "Meeting".into(),
        BreakReason::Brief => "Brief".into(),
        BreakReason::Other(other) => other.clone(),
    }
}

pub fn agent_status(status: &AgentStatus) -> String {
    match status {
        AgentStatus::Available => "Available".into(),
        AgentStatus::LoggedOut => "Logged out".into(),
        AgentStatus::Break(reason) => format!("Break · {}", break_reason(reason)),
        AgentStatus::Unknown => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_in_blocks() {
        assert_eq!(phone_number("+61299990000"), "+61 2 9999 0000");
        assert_eq!(phone_number("+61412345678"), "+61 412 345 678");
        assert_eq!(phone_number("201"), "201");
        assert_eq!(phone_number("0299990077"), "+61 2 9999 0077");
        assert_eq!(phone_number("02 9999 5678"), "+61 2 9999 5678");
        assert_eq!(phone_number("0412 345 678"), "+61 412 345 678");
        assert_eq!(phone_number("+1 212 555 0100"), "+1 212 555 0100");
        assert_eq!(phone_number("+6129999"), "+6129999");
    }

    #[test]
    fn states_and_causes_read_as_words_not_variant_names() {
        assert_eq!(leg_state(LegState::RemoteRinging), "Ringing out");
        assert_eq!(leg_state(LegState::Active), "Talking");
        assert_eq!(leg_state(LegState::Held), "On hold");
        assert_eq!(end_cause(EndCause::AnsweredElsewhere), "answered elsewhere");
        assert_eq!(end_cause(EndCause::NoAnswer), "no answer");
        assert_eq!(recording(RecordingState::Paused), "Recording paused");
        assert_eq!(action_in_progress(Action::BlindTransfer), "Transferring…");
        assert_eq!(direction(Direction::Outbound), "Outbound");
    }
}
