//! Noojee's per-extension channel view mapped onto the model (providers.md section 7).
//!
//! Noojee reports each monitored extension's channels, keyed by `uniqueCallId`, with no
//! conversation id that is present from the first event; so every channel is a leg and its own
//! call, with the same native id. The other party's number is on the leg.

use super::wire::{CallData, Entry};
use crate::model::{
    CallId, Direction, EndCause, Event, EventKind, ExtensionId, LegId, LegReport, LegState, Origin, Party, Timestamp,
};

/// `status` to leg state: `Dialing Out` is our side initiating (Noojee cannot tell when the far
/// end rings), `Connected` covers held calls too (Noojee has no hold).
pub fn leg_state(status: &str) -> LegState {
    match status.trim() {
        "Dialing Out" => LegState::Initiating,
        "Ringing" => LegState::Ringing,
        "Connected" => LegState::Active,
        "Hungup" => LegState::Ended,
        _ => LegState::Unknown,
    }
}

/// How far a channel has got, as Noojee's statuses can tell it: 1 before an answer (`Dialing Out`
/// and `Ringing` may follow each other: a click-to-call rings our phone, then dials out), 2
/// answered, 3 ended; 0 for a status we cannot read, which says nothing of progress. A status
/// of a lower rank than one already reported for the channel is stale (a late `Ringing` after
/// `Connected`), and is not passed on.
pub fn rank(state: LegState) -> u8 {
    match state {
        LegState::Unknown => 0,
        LegState::Ended => 3,
        state if state.is_answered() || state == LegState::Detached => 2,
        _ => 1,
    }
}

/// `hangupCause` to end cause. No cause after the call connected is a normal hang-up; no cause
/// on a call that never connected says nothing.
pub fn end_cause(hangup_cause: Option<&str>, connected: bool) -> EndCause {
    match hangup_cause.map(str::trim) {
        Some("NO_ANSWER") => EndCause::NoAnswer,
        Some("BUSY") => EndCause::Busy,
        Some("CONGESTION") => EndCause::Congestion,
        Some("DISCONNECTED") => EndCause::Cancelled,
        Some("") | None if connected => EndCause::Normal,
        _ => EndCause::Unknown,
    }
}

/// The other party's number: `callerId`, else the extra fields some servers add.
fn other_party(data: &CallData) -> Party {
    let number = [
        Some(&data.caller_id),
        data.other_party_caller_id.as_ref(),
        data.connected_caller_id_num.as_ref(),
        data.outbound_destination.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|number| number.trim())
    .find(|number| !number.is_empty())
    .map(str::to_owned);
    Party { number, ..Party::default() }
}

/// Parses `callStartTime` (`yyyy/MM/dd HH:mm:ss`, the PBX's local time) into ms since the
/// epoch; `None` while it is empty or when it cannot be read.
pub fn start_time(text: &str, time_zone: &jiff::tz::TimeZone) -> Option<Timestamp> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let civil = jiff::civil::DateTime::strptime("%Y/%m/%d %H:%M:%S", text).ok()?;
    let zoned = civil.to_zoned(time_zone.clone()).ok()?;
    Some(zoned.timestamp().as_millisecond())
}

/// The model event for one entry of a subscribe response.
pub fn event(provider: &str, account: &str, extension: &str, entry: &Entry, at: Timestamp) -> Event {
    let data = &entry.call_data;
    let state = leg_state(&data.status);
    let connected = !data.call_start_time.trim().is_empty();
    let native = data.unique_call_id.as_str();
    let report = LegReport {
        leg: LegId::new(provider, account, native),
        call: CallId::new(provider, account, native),
        extension: Some(ExtensionId::new(provider, account, extension)),
        state,
        held_by: None,
        direction: if data.inbound { Direction::Inbound } else { Direction::Outbound },
        origin: if data.is_click_to_dial_call { Origin::ClickToCall } else { Origin::Normal },
        local: Party { number: Some(extension.to_owned()), extension: Some(extension.to_owned()), name: None },
        remote: other_party(data),
        queue: None,
        end_cause: state.is_ended().then(|| end_cause(data.hangup_cause.as_deref(), connected)),
        raw_cause: data.hangup_cause.clone(),
        raw_state: data.status.clone(),
        recording: None,
        revision: 0,
    };
    Event::new(provider, account, at, EventKind::Leg(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_and_cause_maps() {
        assert_eq!(leg_state("Dialing Out"), LegState::Initiating);
        assert_eq!(leg_state("Ringing"), LegState::Ringing);
        assert_eq!(leg_state("Connected"), LegState::Active);
        assert_eq!(leg_state("Hungup"), LegState::Ended);
        assert_eq!(leg_state("Parked?"), LegState::Unknown);
        assert_eq!(end_cause(Some("NO_ANSWER"), false), EndCause::NoAnswer);
        assert_eq!(end_cause(Some("BUSY"), false), EndCause::Busy);
        assert_eq!(end_cause(Some("CONGESTION"), false), EndCause::Congestion);
        assert_eq!(end_cause(Some("DISCONNECTED"), false), EndCause::Cancelled);
        assert_eq!(end_cause(None, true), EndCause::Normal);
        assert_eq!(end_cause(None, false), EndCause::Unknown);
        assert_eq!(end_cause(Some("SOMETHING_NEW"), true), EndCause::Unknown);
    }

    #[test]
    fn a_status_ranks_by_how_far_the_channel_got() {
        let of = |status: &str| rank(leg_state(status));
        assert_eq!(of("Dialing Out"), of("Ringing"), "a click-to-call rings, then dials out");
        assert!(of("Ringing") < of("Connected") && of("Connected") < of("Hungup"));
        assert_eq!(of("Parked?"), 0);
    }

    #[test]
    fn the_seed_timestamp_format_is_read_in_the_pbx_time_zone() {
        let sydney = jiff::tz::TimeZone::get("Australia/Sydney").unwrap();
        // 2014-10-08 17:25:18 in Sydney (AEDT, +11:00) is 06:25:18 UTC.
        assert_eq!(start_time("2014/10/08 17:25:18", &sydney), Some(1_412_749_518_000));
        assert_eq!(start_time("2014/10/08 17:25:18", &jiff::tz::TimeZone::UTC), Some(1_412_789_118_000));
        assert_eq!(start_time("", &sydney), None);
        assert_eq!(start_time("08/10/2014", &sydney), None);
    }
}
