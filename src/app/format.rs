//! How numbers, parties and statuses read on screen.

use crate::model::{AgentStatus, BreakReason, Direction, Party};

/// A phone number grouped for reading: Australian numbers in their usual blocks, others as
/// given.
pub fn phone_number(number: &str) -> String {
    let digits: String = number.chars().filter(|c| c.is_ascii_digit()).collect();
    if let Some(rest) = number.strip_prefix("+61").map(|_| &digits[2..]) {
        return match rest.len() {
            9 if rest.starts_with('4') => format!("+61 {} {} {}", &rest[..3], &rest[3..6], &rest[6..]),
            9 => format!("+61 {} {} {}", &rest[..1], &rest[1..5], &rest[5..]),
            _ => number.to_owned(),
        };
    }
    number.to_owned()
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
    }
}
