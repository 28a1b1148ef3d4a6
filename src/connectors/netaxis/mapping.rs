//! Netaxis calls onto the model: one leg per user's call half (`{user}/{callId}`), in the
//! conversation of its `externalTrackingId`, and the diff of successive polls into stamped
//! statements.
//!
//! Netaxis gives times only for the start and the answer of a call. A statement is stamped with
//! when its state began: the provider's `startTime` for a ringing leg, `answerTime` for the
//! first answer, and otherwise the time the poll first saw it, never before the state it
//! follows. A later change of the details alone (recording, appearance) keeps the stamp and
//! takes a higher revision, so the time in state stays true and the newest details still win.

use super::wire::CallEntry;
use crate::model::{
    Action, CallId, Direction, EndCause, ExtensionId, HeldBy, Leg, LegId, LegReport, LegState, Origin, Party,
    Recording, RecordingState, Timestamp,
};
use std::collections::{HashMap, HashSet};

/// Where ids of one connector live.
pub struct Ids<'a> {
    pub provider: &'a str,
    pub account: &'a str,
}

/// A configured Netaxis user and the extension it is on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub extension: String,
}

impl Ids<'_> {
    pub fn leg(&self, user: &str, call_id: &str) -> LegId {
        LegId::new(self.provider, self.account, &format!("{user}/{call_id}"))
    }

    pub fn extension(&self, user: &User) -> ExtensionId {
        ExtensionId::new(self.provider, self.account, &user.extension)
    }
}

/// The user and Netaxis call id of a leg id's native part.
pub fn split_leg(native: &str) -> Option<(&str, &str)> {
    native.split_once('/').filter(|(user, call)| !user.is_empty() && !call.is_empty())
}

/// The model state of a Netaxis call state. The originating side of an alerting call hears
/// the far end ring; the terminating side is the one ringing.
pub fn leg_state(entry: &CallEntry) -> Result<(LegState, Option<HeldBy>), String> {
    let state = entry.state.as_deref().ok_or("a call without its state (the list came without details)")?;
    let originating = matches!(entry.personality.as_deref(), Some("Originator" | "Click-to-Dial"));
    Ok(match state {
        "Alerting/Ringing" | "Alerting" | "Ringing" if originating => (LegState::RemoteRinging, None),
        "Alerting/Ringing" | "Alerting" | "Ringing" => (LegState::Ringing, None),
        "Active" | "Answered" => (LegState::Active, None),
        "Held" => (LegState::Held, Some(HeldBy::Local)),
        "Remote Held" => (LegState::Held, Some(HeldBy::Remote)),
        "Released" => (LegState::Ended, None),
        "Detached" => (LegState::Detached, None),
        _ => (LegState::Unknown, None),
    })
}

/// The other end from `remoteParty`: `tel:` and `sip:` forms are reduced to the number; a
/// `Group` party is an extension of the same group.
pub fn party(address: Option<&str>, call_type: Option<&str>) -> Party {
    let Some(address) = address else { return Party::default() };
    let bare = address.strip_prefix("tel:").or_else(|| address.strip_prefix("sip:")).unwrap_or(address);
    let bare = bare.split('@').next().unwrap_or(bare).trim().to_owned();
    if bare.is_empty() {
        return Party::default();
    }
    let extension = (call_type == Some("Group")).then(|| bare.clone());
    Party { number: Some(bare), name: None, extension }
}

/// The recording an entry reports, if it says anything of recording. The seed marks
/// `allowedRecordingControls` conditional (only `recorded` is always sent): when Netaxis leaves
/// it out, the controls are the ones the recording state permits ([`controls_for`]), so the desk
/// still offers the buttons that work; the list Netaxis sends, when it sends one, wins.
pub fn recording(entry: &CallEntry) -> Option<Recording> {
    let state = match (entry.recording_state, entry.recorded) {
        (Some(state), _) => state,
        (None, Some(false)) => RecordingState::Off,
        (None, Some(true)) => RecordingState::Started,
        (None, None) if entry.recording_controls.is_some() => RecordingState::Off,
        (None, None) => return None,
    };
    let controls = match &entry.recording_controls {
        Some(sent) => sent.clone(),
        None => controls_for(state),
    };
    Some(Recording { state, controls })
}

/// The recording controls a recording state permits, for a reply without
/// `allowedRecordingControls`: what BroadWorks allows in that state (the seed's list of
/// controls), so "Netaxis did not say" is never read as "nothing is allowed".
pub fn controls_for(state: RecordingState) -> Vec<Action> {
    match state {
        RecordingState::Off => vec![Action::RecordStart],
        RecordingState::Pending => vec![Action::RecordStop],
        RecordingState::Started => vec![Action::RecordPause, Action::RecordStop],
        RecordingState::Paused => vec![Action::RecordResume, Action::RecordStop],
        RecordingState::Failed => Vec::new(),
    }
}

/// What one call of `user` says of its leg, unstamped.
pub fn report(ids: &Ids, user: &User, entry: &CallEntry) -> Result<LegReport, String> {
    let (state, held_by) = leg_state(entry)?;
    let conversation = entry.external_tracking_id.as_deref().unwrap_or(&entry.call_id);
    let remote = party(entry.remote_address.as_deref(), entry.remote_call_type.as_deref());
    let originating = matches!(entry.personality.as_deref(), Some("Originator" | "Click-to-Dial"));
    let direction = match (entry.remote_call_type.as_deref(), originating) {
        (Some("Group"), _) => Direction::Internal,
        (_, true) => Direction::Outbound,
        (_, false) => Direction::Inbound,
    };
    let origin =
        if entry.personality.as_deref() == Some("Click-to-Dial") { Origin::ClickToCall } else { Origin::Normal };
    let local = Party { number: Some(user.extension.clone()), name: None, extension: Some(user.extension.clone()) };
    let end_cause =
        state.is_ended().then(|| if entry.answer_time.is_some() { EndCause::Normal } else { EndCause::Unknown });
    Ok(LegReport {
        leg: ids.leg(&user.id, &entry.call_id),
        call: CallId::new(ids.provider, ids.account, conversation),
        extension: Some(ids.extension(user)),
        state,
        held_by,
        direction,
        origin,
        local,
        remote,
        queue: None,
        end_cause,
        raw_cause: None,
        raw_state: entry.state.clone().unwrap_or_default(),
        recording: recording(entry),
        revision: 0,
    })
}

/// What the connector remembers of one leg between polls.
#[derive(Debug, Clone)]
pub struct Memory {
    pub user: String,
    /// The last statement made, revision cleared.
    pub report: LegReport,
    /// When its state began (the stamp of its statements).
    pub since: Timestamp,
    /// An answered statement was made.
    pub answered: bool,
    /// The recording last known (from the list or the call's details), for lists that carry
    /// none.
    pub recording: Option<Recording>,
    /// Reads of the call's details asked for (it changed, or a command went to it) and not
    /// yet done: a count, so an ask made while a read is under way is not lost with it.
    pub details_due: u32,
}

/// Every leg the polls have seen and not yet seen go: the diff of one poll against the last.
#[derive(Debug, Default)]
pub struct Legs {
    legs: HashMap<LegId, Memory>,
    /// Legs already stated ended, newest last: a list that still shows one `Released` states
    /// nothing more.
    ended: std::collections::VecDeque<LegId>,
    /// The same legs, looked up on every polled call.
    ended_set: HashSet<LegId>,
    last_revision: u64,
}

/// Ended legs remembered so a lingering `Released` call is not stated again.
const ENDED_KEEP: usize = 4_096;

/// A statement to make, with its stamp.
pub type Stamped = (LegReport, Timestamp);

impl Legs {
    pub fn get(&self, leg: &LegId) -> Option<&Memory> {
        self.legs.get(leg)
    }

    pub fn get_mut(&mut self, leg: &LegId) -> Option<&mut Memory> {
        self.legs.get_mut(leg)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&LegId, &Memory)> {
        self.legs.iter()
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// Remembers a live leg the hub already holds (after a restart), so the first poll states
    /// only what changed, stamped after what the journal says.
    pub fn seed(&mut self, user: &str, leg: &Leg) {
        let report = LegReport::restating(leg, Origin::Normal, None);
        let memory = Memory {
            user: user.to_owned(),
            report,
            since: leg.state_since,
            answered: leg.answered_at.is_some(),
            recording: leg.recording.clone(),
            details_due: 1,
        };
        self.legs.insert(leg.id.clone(), memory);
    }

    fn revision(&mut self, now: Timestamp) -> u64 {
        self.last_revision = (self.last_revision + 1).max(now.max(0) as u64);
        self.last_revision
    }

    /// The statements a polled call calls for: none when nothing changed; the answer first
    /// when the poll missed it; then the leg as it is now.
    pub fn observe(&mut self, user: &str, entry: &CallEntry, mut report: LegReport, now: Timestamp) -> Vec<Stamped> {
        if self.ended_set.contains(&report.leg) {
            return Vec::new();
        }
        let previous = self.legs.get(&report.leg);
        if report.recording.is_none() {
            report.recording = previous.and_then(|memory| memory.recording.clone());
        }
        if previous.is_some_and(|memory| memory.report == report) {
            return Vec::new();
        }
        let details_due = previous.map_or(0, |memory| memory.details_due);
        let (since, answered, previous_state) = match previous {
            Some(memory) => (Some(memory.since), memory.answered, Some((memory.report.state, memory.report.held_by))),
            None => (None, false, None),
        };
        let after = |at: Timestamp| since.map_or(at, |since| at.max(since + 1));
        let mut out = Vec::new();
        let mut answered_now = answered;
        let mut last = since;
        let answered_state = report.state.is_answered() || report.state == LegState::Detached;
        if let (false, Some(answer), true) = (answered, entry.answer_time, answered_state || report.state.is_ended()) {
            answered_now = true;
            if report.state != LegState::Active {
                // The poll missed the answer: say it, at its own time.
                let at = after(answer.min(now));
                let active = LegReport {
                    state: LegState::Active,
                    held_by: None,
                    end_cause: None,
                    raw_state: "Active".into(),
                    revision: self.revision(now),
                    ..report.clone()
                };
                out.push((active, at));
                last = Some(at);
            }
        }
        let state = (report.state, report.held_by);
        let at = if previous_state == Some(state) {
            since.unwrap_or(now)
        } else {
            let provider_time = match report.state {
                LegState::Ringing | LegState::RemoteRinging if previous_state.is_none() => entry.start_time,
                LegState::Active if !answered => entry.answer_time,
                _ => None,
            };
            // Never in the future: a provider clock ahead of ours (or local time read as UTC)
            // would push every later stamp past it.
            let at = provider_time.map_or(now, |time| time.min(now));
            last.map_or(at, |last| at.max(last + 1))
        };
        let memory = Memory {
            user: user.to_owned(),
            report: report.clone(),
            since: at,
            answered: answered_now || report.state.is_answered(),
            recording: report.recording.clone(),
            details_due,
        };
        out.push((LegReport { revision: self.revision(now), ..report.clone() }, at));
        if report.state.is_ended() {
            self.legs.remove(&report.leg);
            self.remember_ended(report.leg.clone());
        } else {
            self.legs.insert(report.leg.clone(), memory);
        }
        out
    }

    fn remember_ended(&mut self, leg: LegId) {
        if self.ended_set.insert(leg.clone()) {
            self.ended.push_back(leg);
        }
        while self.ended.len() > ENDED_KEEP {
            if let Some(old) = self.ended.pop_front() {
                self.ended_set.remove(&old);
            }
        }
    }

    /// Ends each leg of `user` that a complete list no longer shows (`seen`), except those
    /// whose entries could not be read (`unreadable`).
    pub fn vanish(
        &mut self,
        user: &str,
        seen: &HashSet<LegId>,
        unreadable: &HashSet<LegId>,
        now: Timestamp,
    ) -> Vec<Stamped> {
        let gone: Vec<LegId> = self
            .legs
            .iter()
            .filter(|(id, memory)| memory.user == user && !seen.contains(*id) && !unreadable.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for id in gone {
            let Some(memory) = self.legs.remove(&id) else { continue };
            let cause = if memory.answered { EndCause::Normal } else { EndCause::Unknown };
            let ended = LegReport {
                state: LegState::Ended,
                held_by: None,
                end_cause: Some(cause),
                raw_state: "gone from the call list".into(),
                revision: self.revision(now),
                ..memory.report
            };
            out.push((ended, now.max(memory.since + 1)));
            self.remember_ended(id);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::netaxis::wire::call_entry;
    use serde_json::json;

    const IDS: Ids = Ids { provider: "nx", account: "foogroup" };

    fn user() -> User {
        User { id: "foouser".into(), extension: "101".into() }
    }

    fn entry(state: &str, answer: Option<&str>) -> CallEntry {
        let mut value = json!({
            "callId": "callhalf-1:0", "externalTrackingId": "t-1", "personality": "Terminator", "state": state,
            "remoteParty": {"address": "tel:+3212345678", "callType": "Unknown"},
            "startTime": "2021-10-29T11:45:14.535000",
        });
        if let Some(answer) = answer {
            value["answerTime"] = json!(answer);
        }
        call_entry(&value).unwrap()
    }

    fn observe(legs: &mut Legs, entry: &CallEntry, now: Timestamp) -> Vec<(LegState, Timestamp)> {
        let report = report(&IDS, &user(), entry).unwrap();
        legs.observe("foouser", entry, report, now).into_iter().map(|(r, at)| (r.state, at)).collect()
    }

    #[test]
    fn states_are_stamped_with_when_they_began_and_repeats_say_nothing() {
        let start = crate::connectors::time::parse_time("2021-10-29T11:45:14.535").unwrap();
        let answer = crate::connectors::time::parse_time("2021-10-29T11:45:16.722").unwrap();
        let mut legs = Legs::default();
        let ringing = entry("Alerting/Ringing", None);
        assert_eq!(observe(&mut legs, &ringing, start + 500), [(LegState::Ringing, start)]);
        assert!(observe(&mut legs, &ringing, start + 1_500).is_empty());
        let active = entry("Active", Some("2021-10-29T11:45:16.722000"));
        assert_eq!(observe(&mut legs, &active, answer + 900), [(LegState::Active, answer)]);
        // Held, then back: each at the poll that saw it, never before what came first.
        assert_eq!(
            observe(&mut legs, &entry("Held", Some("2021-10-29T11:45:16.722000")), answer + 5_000),
            [(LegState::Held, answer + 5_000)]
        );
        assert_eq!(observe(&mut legs, &active, answer - 60_000), [(LegState::Active, answer + 5_001)]);
        let gone = legs.vanish("foouser", &HashSet::new(), &HashSet::new(), answer + 9_000);
        assert_eq!(gone.len(), 1);
        assert_eq!(
            (gone[0].0.state, gone[0].0.end_cause, gone[0].1),
            (LegState::Ended, Some(EndCause::Normal), answer + 9_000)
        );
        assert!(legs.is_empty());
    }

    #[test]
    fn a_missed_answer_is_stated_first_and_details_keep_the_stamp() {
        let answer = crate::connectors::time::parse_time("2021-10-29T11:45:16.722").unwrap();
        let mut legs = Legs::default();
        let held = entry("Remote Held", Some("2021-10-29T11:45:16.722000"));
        assert_eq!(
            observe(&mut legs, &held, answer + 3_000),
            [(LegState::Active, answer), (LegState::Held, answer + 3_000)]
        );
        let report = report(&IDS, &user(), &held).unwrap();
        assert_eq!(report.held_by, Some(HeldBy::Remote));
        let mut recorded = held.clone();
        recorded.recording_state = Some(RecordingState::Started);
        recorded.recording_controls = Some(vec![crate::model::Action::RecordPause, crate::model::Action::RecordStop]);
        let statements =
            legs.observe("foouser", &recorded, super::report(&IDS, &user(), &recorded).unwrap(), answer + 4_000);
        assert_eq!(statements.len(), 1);
        let (statement, at) = &statements[0];
        assert_eq!(*at, answer + 3_000, "a change of details keeps the time in state");
        assert!(statement.revision >= (answer + 4_000) as u64);
        assert_eq!(statement.recording.as_ref().unwrap().state, RecordingState::Started);
    }

    #[test]
    fn recording_controls_left_out_are_those_the_state_permits_and_a_sent_list_wins() {
        let details = |value: serde_json::Value| recording(&call_entry(&value).unwrap());
        // Seed 004: `recorded` is always sent, `allowedRecordingControls` only conditionally.
        let off = details(json!({"callId": "c:0", "state": "Active", "recorded": false}));
        assert_eq!(off, Some(Recording { state: RecordingState::Off, controls: vec![Action::RecordStart] }));
        let on = details(json!({"callId": "c:0", "state": "Active", "recorded": true}));
        assert_eq!(
            on,
            Some(Recording { state: RecordingState::Started, controls: vec![Action::RecordPause, Action::RecordStop] })
        );
        let paused = details(json!({"callId": "c:0", "recorded": true, "recordingState": "Pause:"}));
        assert_eq!(paused.unwrap().controls, vec![Action::RecordResume, Action::RecordStop]);
        let pending = details(json!({"callId": "c:0", "recorded": false, "recordingState": "Pending"}));
        assert_eq!(pending.unwrap().controls, vec![Action::RecordStop]);
        let failed = details(json!({"callId": "c:0", "recorded": false, "recordingState": "Failed"}));
        assert_eq!(failed.unwrap().controls, Vec::<Action>::new());
        // What Netaxis sends is what is allowed, "none" included.
        let none = details(json!({"callId": "c:0", "recorded": false, "allowedRecordingControls": "none"}));
        assert_eq!(none, Some(Recording { state: RecordingState::Off, controls: Vec::new() }));
        let seed = details(json!({
            "callId": "c:0", "recorded": true, "recordingState": "Started", "allowedRecordingControls": "record",
        }));
        assert_eq!(seed.unwrap().controls, vec![Action::RecordStart]);
        assert_eq!(details(json!({"callId": "c:0", "state": "Active"})), None);
    }

    #[test]
    fn parties_and_directions_read_from_the_remote_party_and_personality() {
        assert_eq!(party(Some("tel:+3212345678"), Some("Unknown")).number.as_deref(), Some("+3212345678"));
        assert_eq!(party(Some("sip:102@sip.netaxis.be"), Some("Group")).extension.as_deref(), Some("102"));
        let mut outgoing = entry("Alerting/Ringing", None);
        outgoing.personality = Some("Click-to-Dial".into());
        let report = report(&IDS, &user(), &outgoing).unwrap();
        assert_eq!(
            (report.state, report.direction, report.origin),
            (LegState::RemoteRinging, Direction::Outbound, Origin::ClickToCall)
        );
        assert_eq!(report.leg.native(), "foouser/callhalf-1:0");
        assert_eq!(report.call.native(), "t-1");
        assert_eq!(split_leg(report.leg.native()), Some(("foouser", "callhalf-1:0")));
    }
}
