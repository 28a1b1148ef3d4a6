//! Versature messages mapped onto the model (providers.md section 7).
//!
//! Every endpoint that is one of our users is a leg, keyed by its own `call_id`; the call is the
//! originating endpoint's `call_id` (`from`). Messages carry no sequence but carry times, so each
//! report is stamped with the provider's time for its state (`time_start` while it rings,
//! `time_answer` once answered) and the hub's last-writer-wins by time puts duplicates and late
//! messages in their place. An end has no time in a call message: it is stamped when received
//! (never before the times the message gives); a CDR's `end_time` is earlier and wins.

use super::wire::{CallMessage, Cdr, Endpoint};
use crate::model::{CallId, Direction, EndCause, ExtensionId, LegId, LegReport, LegState, Party, Timestamp};

/// The leg state of an endpoint. `progressing` is our side waiting on the other: dialling, or
/// (when the other end rings) the far end ringing.
pub fn leg_state(state: Option<&str>, other_state: Option<&str>) -> LegState {
    match state {
        Some("progressing") if other_state == Some("ringing") => LegState::RemoteRinging,
        Some("progressing") => LegState::Initiating,
        Some("ringing") => LegState::Ringing,
        Some("active") => LegState::Active,
        Some("ended") => LegState::Ended,
        _ => LegState::Unknown,
    }
}

fn party(endpoint: &Endpoint) -> Party {
    Party { number: endpoint.id.clone(), name: endpoint.name.clone(), extension: endpoint.user.clone() }
}

/// Names what a report is about; ids are namespaced by provider and account.
pub struct Ids<'a> {
    pub provider: &'a str,
    pub account: &'a str,
}

impl Ids<'_> {
    fn report(
        &self,
        call: &str,
        side: (&Endpoint, &Endpoint),
        outward: bool,
        on_net: bool,
        state: LegState,
    ) -> Option<LegReport> {
        let (endpoint, other) = side;
        let user = endpoint.user.as_deref()?;
        let leg = endpoint.call_id.as_deref()?;
        let direction = match (on_net || other.user.is_some(), outward) {
            (true, _) => Direction::Internal,
            (false, true) => Direction::Outbound,
            (false, false) => Direction::Inbound,
        };
        Some(LegReport {
            leg: LegId::new(self.provider, self.account, leg),
            call: CallId::new(self.provider, self.account, call),
            extension: Some(ExtensionId::new(self.provider, self.account, user)),
            state,
            held_by: None,
            direction,
            origin: crate::model::Origin::Normal,
            local: party(endpoint),
            remote: party(other),
            queue: None,
            end_cause: None,
            raw_cause: None,
            raw_state: endpoint.state.clone().unwrap_or_default(),
            recording: None,
            revision: 0,
        })
    }
}

/// Checks that every user endpoint can be a leg and names the call.
fn call_key<'a>(from: &'a Endpoint, to: &'a Endpoint) -> Result<&'a str, String> {
    for (side, endpoint) in [("from", from), ("to", to)] {
        if endpoint.user.is_some() && endpoint.call_id.is_none() {
            return Err(format!(
                "the {side} endpoint is user {:?} but has no call_id",
                endpoint.user.as_deref().unwrap_or("")
            ));
        }
    }
    from.call_id.as_deref().or(to.call_id.as_deref()).ok_or_else(|| "neither endpoint has a call_id".to_owned())
}

/// The reports a call message makes, each with its time: one per endpoint that is our user.
/// None when neither endpoint is a user: a well-formed message about nobody we show, which
/// Integrate still expects a 200 for.
pub fn call_reports(
    ids: &Ids,
    message: &CallMessage,
    received: Timestamp,
) -> Result<Vec<(LegReport, Timestamp)>, String> {
    if message.from.user.is_none() && message.to.user.is_none() {
        return Ok(Vec::new());
    }
    let call = call_key(&message.from, &message.to)?;
    let start = message.time_start;
    let latest = message.time_answer.or(start);
    let mut reports = Vec::new();
    for (endpoint, other, outward) in [(&message.from, &message.to, true), (&message.to, &message.from, false)] {
        let state = leg_state(endpoint.state.as_deref(), other.state.as_deref());
        let at = match state {
            LegState::Ended => received.max(latest.map_or(0, |t| t + 1)),
            LegState::Active => message.time_answer.or(start).unwrap_or(received),
            _ => start.unwrap_or(received),
        };
        let Some(mut report) = ids.report(call, (endpoint, other), outward, message.on_net == Some(true), state) else {
            continue;
        };
        if state.is_ended() {
            report.end_cause = Some(if message.time_answer.is_some() { EndCause::Normal } else { EndCause::Unknown });
        }
        reports.push((report, at));
    }
    Ok(reports)
}

/// A CDR's endpoint id as call messages carry it. Seed 001's CDRs put a timestamp and a dash
/// before the endpoint's id (`20150304190127063799-a5ce697165aca204d39dde1a4446c1a0`) where
/// call messages give the bare id (`e351b3325aa18832e3aa36948d012424`); without the prefix the
/// CDR's legs and call are the ones the call messages made, not a second copy of the call.
pub fn cdr_endpoint_id(id: &str) -> &str {
    match id.split_once('-') {
        Some((stamp, bare)) if !stamp.is_empty() && !bare.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit()) => {
            bare
        }
        _ => id,
    }
}

/// The reports a CDR makes for each endpoint that is our user: set up at `start_time`, answered
/// at `answer_time` when there is one, ended at `end_time` (or start plus `duration`), so the
/// history gets the provider's own times. Keyed on the endpoint ids without the CDR's timestamp
/// prefix ([`cdr_endpoint_id`]). The end is normal when answered, else unknown: a CDR has no
/// cause, and a call never answered may have rung out, been busy or been cancelled
/// (providers.md 7.4), so "no answer" would often be wrong.
pub fn cdr_reports(ids: &Ids, cdr: &Cdr) -> Result<Vec<(LegReport, Timestamp)>, String> {
    let bare = |endpoint: &Endpoint| Endpoint {
        call_id: endpoint.call_id.as_deref().map(|id| cdr_endpoint_id(id).to_owned()),
        ..endpoint.clone()
    };
    let (from, to) = (bare(&cdr.from), bare(&cdr.to));
    let call = call_key(&from, &to)?;
    let start = cdr.start_time.ok_or("a CDR without start_time")?;
    let end = match (cdr.end_time, cdr.duration) {
        (Some(end), _) => end,
        (None, Some(seconds)) => Timestamp::try_from(seconds)
            .ok()
            .and_then(|seconds| seconds.checked_mul(1000))
            .and_then(|ms| cdr.answer_time.unwrap_or(start).checked_add(ms))
            .ok_or("a CDR whose duration is out of range")?,
        (None, None) => return Err("a CDR with neither end_time nor duration".into()),
    };
    if end < start {
        return Err("a CDR that ends before it starts".into());
    }
    let mut reports = Vec::new();
    for (endpoint, other, outward) in [(&from, &to, true), (&to, &from, false)] {
        let setup = if outward { LegState::Initiating } else { LegState::Ringing };
        let Some(report) = ids.report(call, (endpoint, other), outward, false, setup) else { continue };
        reports.push((LegReport { raw_state: "cdr".into(), ..report.clone() }, start));
        if let Some(answered) = cdr.answer_time {
            reports.push((
                LegReport { state: LegState::Active, raw_state: "cdr".into(), ..report.clone() },
                answered.clamp(start, end),
            ));
        }
        let cause = if cdr.answer_time.is_some() { EndCause::Normal } else { EndCause::Unknown };
        let ended = LegReport {
            state: LegState::Ended,
            end_cause: Some(cause),
            raw_cause: Some("cdr".into()),
            raw_state: "cdr".into(),
            ..report
        };
        reports.push((ended, end));
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progressing_is_the_far_end_ringing_when_it_rings() {
        assert_eq!(leg_state(Some("progressing"), Some("ringing")), LegState::RemoteRinging);
        assert_eq!(leg_state(Some("progressing"), Some("progressing")), LegState::Initiating);
        assert_eq!(leg_state(Some("on fire"), None), LegState::Unknown);
    }

    #[test]
    fn cdr_ids_lose_their_timestamp_prefix_and_join_the_call_messages_legs() {
        assert_eq!(
            cdr_endpoint_id("20150304190127063799-a5ce697165aca204d39dde1a4446c1a0"),
            "a5ce697165aca204d39dde1a4446c1a0"
        );
        assert_eq!(cdr_endpoint_id("e351b3325aa18832e3aa36948d012424"), "e351b3325aa18832e3aa36948d012424");
        for kept in ["-abc", "123-", "12a-abc", "abc-def", ""] {
            assert_eq!(cdr_endpoint_id(kept), kept);
        }
        let ids = Ids { provider: "v", account: "a" };
        let endpoint = |user: Option<&str>, call_id: &str| Endpoint {
            user: user.map(str::to_owned),
            call_id: Some(call_id.to_owned()),
            ..Endpoint::default()
        };
        let message = CallMessage {
            from: endpoint(None, "e351b3325aa18832e3aa36948d012424"),
            to: endpoint(Some("126"), "abcdb3325aa18832e3aa36948d012424"),
            time_start: Some(10_000),
            ..CallMessage::default()
        };
        let live = call_reports(&ids, &message, 20_000).unwrap();
        let cdr = Cdr {
            from: endpoint(None, "20161124155312000000-e351b3325aa18832e3aa36948d012424"),
            to: endpoint(Some("126"), "20161124155312000000-abcdb3325aa18832e3aa36948d012424"),
            start_time: Some(10_000),
            end_time: Some(30_000),
            ..Cdr::default()
        };
        let history = cdr_reports(&ids, &cdr).unwrap();
        assert_eq!(history.len(), 2, "set up and ended");
        for (report, _) in &history {
            assert_eq!((&report.leg, &report.call), (&live[0].0.leg, &live[0].0.call));
        }
    }

    #[test]
    fn a_message_about_no_user_makes_no_report_and_no_error() {
        let ids = Ids { provider: "v", account: "a" };
        let nobody = |call_id: Option<&str>| Endpoint { call_id: call_id.map(str::to_owned), ..Endpoint::default() };
        for (from, to) in [(nobody(Some("a")), nobody(Some("b"))), (nobody(None), nobody(None))] {
            let message = CallMessage { from, to, ..CallMessage::default() };
            assert_eq!(call_reports(&ids, &message, 1_000), Ok(Vec::new()));
        }
        let user_without_id =
            CallMessage { to: Endpoint { user: Some("126".into()), ..Endpoint::default() }, ..CallMessage::default() };
        assert!(call_reports(&ids, &user_without_id, 1_000).unwrap_err().contains("no call_id"));
    }

    #[test]
    fn a_cdr_without_answer_time_ends_with_an_unknown_cause_not_no_answer() {
        let ids = Ids { provider: "v", account: "a" };
        let user = Endpoint { user: Some("100".into()), call_id: Some("c".into()), ..Endpoint::default() };
        let far = Endpoint { id: Some("+16132379329".into()), call_id: Some("d".into()), ..Endpoint::default() };
        let unanswered =
            Cdr { from: user, to: far, start_time: Some(10_000), end_time: Some(30_000), ..Cdr::default() };
        let ends: Vec<Option<EndCause>> = cdr_reports(&ids, &unanswered)
            .unwrap()
            .into_iter()
            .filter(|(report, _)| report.state == LegState::Ended)
            .map(|(report, _)| report.end_cause)
            .collect();
        // Busy, cancelled or rung out: the CDR does not say which.
        assert_eq!(ends, [Some(EndCause::Unknown)]);
        let answered = Cdr { answer_time: Some(12_000), ..unanswered };
        let ended = cdr_reports(&ids, &answered).unwrap().into_iter().find(|(r, _)| r.state == LegState::Ended);
        assert_eq!(ended.map(|(report, _)| report.end_cause), Some(Some(EndCause::Normal)));
    }

    #[test]
    fn a_cdr_without_a_start_or_an_end_is_refused() {
        let ids = Ids { provider: "v", account: "a" };
        let user = Endpoint { user: Some("100".into()), call_id: Some("c".into()), ..Endpoint::default() };
        let cdr = Cdr { from: user.clone(), ..Cdr::default() };
        assert!(cdr_reports(&ids, &cdr).unwrap_err().contains("start_time"));
        let cdr = Cdr { from: user, start_time: Some(10_000), ..Cdr::default() };
        assert!(cdr_reports(&ids, &cdr).unwrap_err().contains("end_time"));
        let cdr = Cdr { duration: Some(u64::MAX / 2), ..cdr };
        assert!(cdr_reports(&ids, &cdr).unwrap_err().contains("out of range"));
    }
}
