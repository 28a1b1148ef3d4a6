//! Voicenter's events onto the model (providers.md section 7).
//!
//! Voicenter sends whole statements: every ExtensionEvent carries the extension with all its
//! live calls and names the call it is about; AllExtensionsStatus and loginStatus (sent on every
//! connection and after `resync`) state everything monitored. The tracker turns them into leg,
//! agent-status and queue events, and after a full statement ends what it no longer lists, so a
//! reconnect to another server loses nothing that is still true.
//!
//! Ids: a call is its `ivrid`; a leg is `{ivrid}/{extension}` (a click-to-call's two legs are one
//! extension's one leg moving on), and `{ivrid}/{extension}~2`, `~3`... when the same call
//! rings the same extension again after its leg there ended (a queue offering it once more);
//! a queue is its `QueueID`.

use super::wire::{CallView, ExtensionEvent, ExtensionView, Message, QueueEvent, QueueView};
use crate::model::{
    AgentStatus, BreakReason, CallId, Direction, EndCause, Event, EventKind, ExtensionId, ExtensionReport, HeldBy,
    LegId, LegReport, LegState, Origin, Party, QueueId, QueueOutcome, Timestamp,
};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};

/// Calls remembered with their queue, so a leg that rings after the JOIN names the queue.
const QUEUE_OF_KEEP: usize = 10_000;
/// Ended legs remembered, so a repeated HANGUP adds nothing and a new ring is a new leg.
const ENDED_KEEP: usize = 10_000;

/// `representativeStatus` to agent status (Voicenter's Login/Logout API codes; names can be
/// customized per account, the codes cannot).
pub fn agent_status(code: u64) -> AgentStatus {
    match code {
        1 => AgentStatus::Available,
        2 => AgentStatus::LoggedOut,
        3 => AgentStatus::Break(BreakReason::Lunch),
        5 => AgentStatus::Break(BreakReason::Admin),
        7 => AgentStatus::Break(BreakReason::Private),
        9 => AgentStatus::Break(BreakReason::Other("Other".into())),
        11 => AgentStatus::Break(BreakReason::Training),
        12 => AgentStatus::Break(BreakReason::Meeting),
        13 => AgentStatus::Break(BreakReason::Brief),
        _ => AgentStatus::Unknown,
    }
}

/// A HANGUP's `cause` to end cause; whether the leg was answered tells a normal end from an
/// unanswered ring.
pub fn end_cause(cause: Option<&str>, answered: bool) -> EndCause {
    match cause.map(str::trim) {
        Some("Answered elsewhere") => EndCause::AnsweredElsewhere,
        Some("Call Rejected") => EndCause::Rejected,
        Some("Normal hangup") | None if answered => EndCause::Normal,
        Some("Normal hangup") => EndCause::NoAnswer,
        _ => EndCause::Unknown,
    }
}

/// A call's `callstatus` (with its click-to-call leg) to leg state. Click-to-call rings the
/// agent first (leg 1, "Dialing", still ours to set up once picked up), then the far end
/// (leg 2, "Talking" on our side while it rings, answered when it answers).
pub fn leg_state(call: &CallView) -> LegState {
    match (call.status.trim(), call.c2c) {
        ("Dialing", _) => LegState::Initiating,
        (_, Some(1)) => LegState::Initiating,
        ("Talking", Some(2)) if !call.answered => LegState::RemoteRinging,
        ("Ringing", _) => LegState::Ringing,
        ("Talking" | "Spying", _) => LegState::Active,
        ("Hold" | "Held" | "OnHold", _) => LegState::Held,
        _ => LegState::Unknown,
    }
}

fn direction(call: &CallView) -> Direction {
    match call.direction.trim().to_ascii_lowercase().as_str() {
        "incoming" => Direction::Inbound,
        "outgoing" | "click2call" => Direction::Outbound,
        _ => Direction::Unknown,
    }
}

fn origin(call: &CallView, campaign: Option<&str>) -> Origin {
    if let Some(campaign) = campaign {
        return Origin::Dialer { campaign: campaign.to_owned() };
    }
    match call.direction.trim().to_ascii_lowercase().as_str() {
        "click2call" => Origin::ClickToCall,
        "spy" => Origin::Spy,
        _ if call.status == "Spying" => Origin::Spy,
        _ => Origin::Normal,
    }
}

/// What the tracker remembers of a live leg.
#[derive(Debug, Clone)]
struct Memo {
    /// 0 for the first leg of this call at this extension, 1 for the next...
    generation: u32,
    state: LegState,
    at: Timestamp,
    answered: bool,
    report: LegReport,
}

/// Turns Voicenter messages into model events, remembering what is live to tell news from
/// repetition and to end what a full statement no longer lists.
pub struct Tracker {
    provider: String,
    account: String,
    /// Live legs by (ivrid, extension).
    legs: HashMap<(String, String), Memo>,
    /// The generation of the last ended leg by (ivrid, extension), oldest end first in `ended_order`.
    ended: HashMap<(String, String), u32>,
    ended_order: VecDeque<(String, String)>,
    /// Waiting calls by queue id: ivrid to when it joined.
    waiting: HashMap<String, HashMap<String, Timestamp>>,
    queue_of: HashMap<String, String>,
    queue_order: VecDeque<String>,
    queue_names: HashMap<String, Option<String>>,
    /// The last status code and names reported per extension.
    statuses: HashMap<String, u64>,
    names: HashMap<String, ExtensionReport>,
    /// Orders reports stamped with the same second (Voicenter's times are whole seconds).
    revision: u64,
}

impl Tracker {
    pub fn new(provider: &str, account: &str) -> Self {
        Self {
            provider: provider.to_owned(),
            account: account.to_owned(),
            legs: HashMap::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            waiting: HashMap::new(),
            queue_of: HashMap::new(),
            queue_order: VecDeque::new(),
            queue_names: HashMap::new(),
            statuses: HashMap::new(),
            names: HashMap::new(),
            revision: 0,
        }
    }

    /// Live legs the tracker holds, for commands and tests.
    pub fn live_legs(&self) -> usize {
        self.legs.len()
    }

    /// Remembers a leg the hub still holds as live (after a restart), so the first full
    /// statement ends it if it went away meanwhile, and stamps its changes after the journal's.
    pub fn remember(&mut self, leg: &crate::model::Leg, origin: Origin, queue: Option<QueueId>) {
        let Some((ivrid, extension)) = leg.id.native().rsplit_once('/') else { return };
        let (extension, generation) = match extension.split_once('~') {
            Some((extension, nth)) => (extension, nth.parse::<u32>().map_or(0, |nth| nth.saturating_sub(1))),
            None => (extension, 0),
        };
        let report = LegReport::restating(leg, origin, queue);
        let memo =
            Memo { generation, state: leg.state, at: leg.state_since, answered: leg.answered_at.is_some(), report };
        self.legs.insert((ivrid.to_owned(), extension.to_owned()), memo);
    }

    /// Remembers a call the hub still holds as waiting in a queue (after a restart), so the
    /// first loginStatus says how it stands.
    pub fn remember_waiting(&mut self, queue: &QueueId, call: &CallId, joined_at: Option<Timestamp>) {
        let (queue, ivrid) = (queue.native().to_owned(), call.native().to_owned());
        self.queue_names.entry(queue.clone()).or_insert(None);
        self.waiting.entry(queue.clone()).or_default().insert(ivrid.clone(), joined_at.unwrap_or_default());
        if self.queue_of.insert(ivrid.clone(), queue).is_none() {
            self.queue_order.push_back(ivrid);
        }
    }

    /// The events one message means, stamped no later than `now`.
    pub fn take(&mut self, message: &Message, raw: &Value, now: Timestamp) -> Vec<Event> {
        let mut events = Vec::new();
        match message {
            Message::AllExtensions { servertime, extensions } => {
                let at = servertime.unwrap_or(now).min(now);
                for extension in extensions {
                    self.extension(extension, at, &mut events);
                    let listed: HashSet<&str> = extension.calls.iter().map(|call| call.ivrid.as_str()).collect();
                    for call in &extension.calls {
                        self.listed_call(extension, call, at, true, &mut events);
                    }
                    self.end_unlisted(&extension.number, &listed, at, &mut events);
                }
            }
            Message::LoginStatus { servertime, queues } => {
                let at = servertime.unwrap_or(now).min(now);
                for queue in queues {
                    self.queue(queue, at, true, None, &mut events);
                }
            }
            Message::Extension(event) => self.extension_event(event, now, &mut events),
            Message::Queue(event) => self.queue_event(event, now, &mut events),
            _ => {}
        }
        // A full statement's payload is not copied into each of its events (that would grow as
        // the square of the account): their legs keep their own call objects.
        if !matches!(message, Message::AllExtensions { .. } | Message::LoginStatus { .. }) {
            for event in &mut events {
                if event.raw.is_null() {
                    event.raw = raw.clone();
                }
            }
        }
        events
    }

    fn event(&self, at: Timestamp, kind: EventKind) -> Event {
        Event::new(&self.provider, &self.account, at, kind)
    }

    fn extension_id(&self, number: &str) -> ExtensionId {
        ExtensionId::new(&self.provider, &self.account, number)
    }

    fn queue_id(&self, id: &str) -> QueueId {
        QueueId::new(&self.provider, &self.account, id)
    }

    /// Who the extension is and its agent status, when either changed.
    fn extension(&mut self, extension: &ExtensionView, at: Timestamp, events: &mut Vec<Event>) {
        let report = ExtensionReport {
            extension: self.extension_id(&extension.number),
            name: extension.user_name.clone(),
            sip_user: extension.exten_user.clone(),
            online_user: extension.representative_name.clone(),
        };
        if self.names.get(&extension.number) != Some(&report) {
            self.names.insert(extension.number.clone(), report.clone());
            events.push(self.event(at, EventKind::Extension(report)));
        }
        if let Some(code) = extension.status {
            if self.statuses.get(&extension.number) != Some(&code) {
                self.statuses.insert(extension.number.clone(), code);
                let since = extension.status_updated.filter(|since| *since <= at).unwrap_or(at);
                let kind = EventKind::AgentStatus {
                    extension: self.extension_id(&extension.number),
                    status: agent_status(code),
                    raw_status: Some(code.to_string()),
                };
                events.push(self.event(since, kind));
            }
        }
    }

    fn extension_event(&mut self, event: &ExtensionEvent, now: Timestamp, events: &mut Vec<Event>) {
        let at = event.servertime.unwrap_or(now).min(now);
        self.extension(&event.extension, at, events);
        let view = &event.extension;
        if event.reason == "userStatusUpdate" {
            return;
        }
        // The call the event is about, as it stands after the event.
        let current = event.current.clone().or_else(|| {
            let ivrid = event.ivrid.as_deref()?;
            view.calls.iter().find(|call| call.ivrid == ivrid).cloned()
        });
        if let Some(call) = &current {
            let (state, held) = match event.reason.as_str() {
                "HANGUP" => (LegState::Ended, None),
                "HOLD" => (LegState::Held, Some(HeldBy::Local)),
                "UNHOLD" => (LegState::Active, None),
                _ => (leg_state(call), None),
            };
            let stamp = match (event.reason.as_str(), call.answered_at) {
                ("ANSWER", Some(answered)) if state == LegState::Active => answered.min(now),
                _ => at,
            };
            self.report(
                view,
                call,
                state,
                held,
                stamp,
                event.cause.as_deref(),
                event.campaign_id.as_deref(),
                event.queue_id.as_deref(),
                events,
            );
        } else if event.reason == "HANGUP" {
            // Without its currentCall, a HANGUP still names the call by `ivruniqueid`: a leg
            // we hold there ends now rather than at the next full statement.
            if let Some(ivrid) = event.ivrid.as_deref() {
                let key = (ivrid.to_owned(), view.number.clone());
                let cause = event.cause.as_deref();
                let ending = |memo: &Memo| (end_cause(cause, memo.answered), cause.map(str::to_owned), "HANGUP".into());
                self.end_leg(key, at, ending, events);
            }
        }
        // Calls the extension lists that the tracker has not seen yet (a NEWCALL missed).
        for call in &view.calls {
            if current.as_ref().is_none_or(|current| current.ivrid != call.ivrid) {
                self.listed_call(view, call, at, false, events);
            }
        }
    }

    /// A call from a list (not the one an event is about): news only when the tracker did not
    /// know it, or its state moved on. The seed shows no `callstatus` for hold, so within a
    /// connection a held leg listed as talking stays held (HOLD and UNHOLD say when it
    /// changes); in a `full` statement after a (re)connection, which may follow a missed
    /// UNHOLD, the list's word is taken.
    fn listed_call(
        &mut self,
        view: &ExtensionView,
        call: &CallView,
        at: Timestamp,
        full: bool,
        events: &mut Vec<Event>,
    ) {
        let state = leg_state(call);
        let known = self.legs.get(&(call.ivrid.clone(), view.number.clone())).map(|memo| memo.state);
        let news = match known {
            None => true,
            Some(LegState::Held) if !full => !matches!(state, LegState::Active | LegState::Held),
            Some(known) => known != state,
        };
        if news {
            self.report(view, call, state, None, at, None, None, None, events);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        view: &ExtensionView,
        call: &CallView,
        state: LegState,
        held_by: Option<HeldBy>,
        at: Timestamp,
        cause: Option<&str>,
        campaign: Option<&str>,
        queue: Option<&str>,
        events: &mut Vec<Event>,
    ) {
        let key = (call.ivrid.clone(), view.number.clone());
        let previous = self.legs.get(&key);
        let ended_before = self.ended.get(&key).copied();
        let generation = match (previous, ended_before) {
            (Some(memo), _) => memo.generation,
            // A repeated end of a leg that already ended says nothing new.
            (None, Some(_)) if state.is_ended() => return,
            (None, Some(generation)) => generation + 1,
            (None, None) => 0,
        };
        let native = match generation {
            0 => format!("{}/{}", call.ivrid, view.number),
            nth => format!("{}/{}~{}", call.ivrid, view.number, nth + 1),
        };
        let at = previous.map_or(at, |memo| at.max(memo.at));
        // Click-to-call leg 1 is "answered" when the agent picks up their own phone: the call
        // itself is answered only when leg 2's far end does, so a far end that never picks up
        // ends as no answer.
        let own_answer = call.answered && call.c2c != Some(1);
        let answered = own_answer || previous.is_some_and(|memo| memo.answered) || state.is_answered();
        let queue = queue.map(str::to_owned).or_else(|| self.queue_of.get(&call.ivrid).cloned());
        self.revision += 1;
        let report = LegReport {
            leg: LegId::new(&self.provider, &self.account, &native),
            call: CallId::new(&self.provider, &self.account, &call.ivrid),
            extension: Some(self.extension_id(&view.number)),
            state,
            held_by,
            direction: direction(call),
            origin: origin(call, campaign),
            local: Party {
                number: Some(view.number.clone()),
                name: view.representative_name.clone().or_else(|| view.user_name.clone()),
                extension: Some(view.number.clone()),
            },
            remote: Party { number: call.caller_phone.clone(), name: call.caller_name.clone(), extension: None },
            queue: queue.map(|queue| self.queue_id(&queue)),
            end_cause: state.is_ended().then(|| end_cause(cause, answered)),
            raw_cause: cause.map(str::to_owned),
            raw_state: match call.c2c {
                Some(leg) => format!("{} (click-to-call leg {leg})", call.status),
                None => call.status.clone(),
            },
            recording: None,
            revision: self.revision,
        };
        if state.is_ended() {
            self.legs.remove(&key);
            self.ended_leg(key, generation);
        } else {
            self.legs.insert(key, Memo { generation, state, at, answered, report: report.clone() });
        }
        let mut event = self.event(at, EventKind::Leg(report));
        event.raw = call.raw.clone();
        events.push(event);
    }

    /// Ends the legs at `extension` that a full statement no longer lists.
    fn end_unlisted(&mut self, extension: &str, listed: &HashSet<&str>, at: Timestamp, events: &mut Vec<Event>) {
        let gone: Vec<(String, String)> = self
            .legs
            .keys()
            .filter(|(ivrid, number)| number == extension && !listed.contains(ivrid.as_str()))
            .cloned()
            .collect();
        for key in gone {
            let ending = |_: &Memo| {
                (EndCause::Unknown, Some("not in Voicenter's state after a reconnect".into()), "gone".into())
            };
            self.end_leg(key, at, ending, events);
        }
    }

    /// Ends a live leg we hold, with the end cause, raw cause and raw state `ending` gives it;
    /// nothing when the leg is not live.
    fn end_leg(
        &mut self,
        key: (String, String),
        at: Timestamp,
        ending: impl FnOnce(&Memo) -> (EndCause, Option<String>, String),
        events: &mut Vec<Event>,
    ) {
        let Some(memo) = self.legs.remove(&key) else { return };
        self.ended_leg(key, memo.generation);
        self.revision += 1;
        let (end_cause, raw_cause, raw_state) = ending(&memo);
        let report = LegReport {
            state: LegState::Ended,
            held_by: None,
            end_cause: Some(end_cause),
            raw_cause,
            raw_state,
            revision: self.revision,
            ..memo.report
        };
        events.push(self.event(at.max(memo.at), EventKind::Leg(report)));
    }

    fn ended_leg(&mut self, key: (String, String), generation: u32) {
        if self.ended.insert(key.clone(), generation).is_none() {
            self.ended_order.push_back(key);
            while self.ended_order.len() > ENDED_KEEP {
                if let Some(old) = self.ended_order.pop_front() {
                    self.ended.remove(&old);
                }
            }
        }
    }

    fn queue_event(&mut self, event: &QueueEvent, now: Timestamp, events: &mut Vec<Event>) {
        let at = event.servertime.unwrap_or(now).min(now);
        let subject = event.ivrid.clone();
        self.queue(&event.queue, at, false, subject.as_deref(), events);
        let (Some(ivrid), queue) = (subject, &event.queue.id) else { return };
        let outcome = match event.reason.as_str() {
            "JOIN" => {
                if !self.waiting.get(queue).is_some_and(|waiting| waiting.contains_key(&ivrid)) {
                    let entry = event.queue.waiting.iter().find(|waiting| waiting.ivrid == ivrid);
                    let joined = entry.and_then(|entry| entry.joined).filter(|joined| *joined <= at).unwrap_or(at);
                    let caller = entry.map(caller_of).unwrap_or_default();
                    self.join(queue, &ivrid, joined, caller, events);
                }
                return;
            }
            "EXIT" => QueueOutcome::Answered,
            // The caller left this queue unanswered, by hanging up or by reaching the queue's
            // maximum wait (the seed: "Either the caller chose to end the call or the call
            // waiting time in the queue had reached the maximum waiting time"). In the second
            // case the call goes on (to an overflow extension or queue), so this ends the wait
            // only, never the call: the legs' HANGUPs end it, and the model calls a call whose
            // caller left a queue abandoned, with no leg answered, a `QueueAbandoned` end.
            "ABANDONED" => QueueOutcome::Abandoned,
            _ => return,
        };
        self.leave(queue, &ivrid, outcome, at, events);
    }

    /// A queue's name and waiting list. Calls listed that were not known to wait joined; with
    /// `full` (loginStatus), known ones no longer listed left while we were away.
    fn queue(&mut self, queue: &QueueView, at: Timestamp, full: bool, subject: Option<&str>, events: &mut Vec<Event>) {
        if self.queue_names.get(&queue.id) != Some(&queue.name) {
            self.queue_names.insert(queue.id.clone(), queue.name.clone());
            let name = queue.name.clone().unwrap_or_else(|| format!("Queue {}", queue.id));
            events
                .push(self.event(at, EventKind::Queue { queue: self.queue_id(&queue.id), name, members: Vec::new() }));
        }
        for entry in &queue.waiting {
            let known = self.waiting.get(&queue.id).is_some_and(|waiting| waiting.contains_key(&entry.ivrid));
            if !known && subject != Some(entry.ivrid.as_str()) {
                let joined = entry.joined.filter(|joined| *joined <= at).unwrap_or(at);
                self.join(&queue.id, &entry.ivrid, joined, caller_of(entry), events);
            }
        }
        if full {
            let listed: HashSet<&str> = queue.waiting.iter().map(|entry| entry.ivrid.as_str()).collect();
            let gone: Vec<String> = self
                .waiting
                .get(&queue.id)
                .map(|waiting| waiting.keys().filter(|ivrid| !listed.contains(ivrid.as_str())).cloned().collect())
                .unwrap_or_default();
            for ivrid in gone {
                // Answered if one of our legs answered it; otherwise nobody can say how it left.
                let answered = self.legs.iter().any(|((call, _), memo)| *call == ivrid && memo.answered);
                let outcome = if answered { QueueOutcome::Answered } else { QueueOutcome::Other };
                self.leave(&queue.id, &ivrid, outcome, at, events);
            }
        }
    }

    fn join(&mut self, queue: &str, ivrid: &str, at: Timestamp, caller: Party, events: &mut Vec<Event>) {
        self.waiting.entry(queue.to_owned()).or_default().insert(ivrid.to_owned(), at);
        if self.queue_of.insert(ivrid.to_owned(), queue.to_owned()).is_none() {
            self.queue_order.push_back(ivrid.to_owned());
            while self.queue_order.len() > QUEUE_OF_KEEP {
                if let Some(old) = self.queue_order.pop_front() {
                    self.queue_of.remove(&old);
                }
            }
        }
        let kind = EventKind::QueueJoined {
            queue: self.queue_id(queue),
            call: CallId::new(&self.provider, &self.account, ivrid),
            caller,
        };
        events.push(self.event(at, kind));
    }

    fn leave(&mut self, queue: &str, ivrid: &str, outcome: QueueOutcome, at: Timestamp, events: &mut Vec<Event>) {
        if let Some(waiting) = self.waiting.get_mut(queue) {
            waiting.remove(ivrid);
        }
        let kind = EventKind::QueueLeft {
            queue: self.queue_id(queue),
            call: CallId::new(&self.provider, &self.account, ivrid),
            outcome,
        };
        events.push(self.event(at, kind));
    }
}

fn caller_of(entry: &super::wire::Waiting) -> Party {
    Party { number: entry.caller_id.clone(), name: entry.caller_name.clone(), extension: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(status: &str, c2c: Option<u8>, answered: bool) -> CallView {
        CallView {
            ivrid: "x".into(),
            status: status.into(),
            direction: "Click2Call".into(),
            c2c,
            started: None,
            answered_at: None,
            answered,
            caller_name: None,
            caller_phone: None,
            did: None,
            raw: Value::Null,
        }
    }

    /// One Voicenter `ExtensionEvent` at extension 500, as the socket delivers it.
    fn extension_event(data: serde_json::Value) -> Message {
        let payload = serde_json::json!({ "data": data });
        super::super::wire::parse("ExtensionEvent", &payload).expect("a well-formed ExtensionEvent")
    }

    #[test]
    fn a_hangup_without_its_current_call_ends_the_leg_it_names() {
        let mut tracker = Tracker::new("vc", "a");
        let ring = extension_event(serde_json::json!({
            "reason": "NEWCALL", "servertime": 1_700_000_000, "number": 500,
            "calls": [{ "ivrid": "x-1", "callstatus": "Ringing", "direction": "Incoming", "answered": 0 }],
            "currentCall": { "ivrid": "x-1", "callstatus": "Ringing", "direction": "Incoming", "answered": 0 },
        }));
        tracker.take(&ring, &Value::Null, 1_700_000_000_000);
        assert_eq!(tracker.live_legs(), 1);
        let hangup = extension_event(serde_json::json!({
            "reason": "HANGUP", "cause": "Call Rejected", "ivruniqueid": "x-1", "servertime": 1_700_000_004,
            "number": 500, "calls": [],
        }));
        let events = tracker.take(&hangup, &Value::Null, 1_700_000_005_000);
        let ended: Vec<&LegReport> = events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::Leg(report) => Some(report),
                _ => None,
            })
            .collect();
        assert_eq!(ended.len(), 1, "{events:?}");
        assert_eq!(ended[0].state, LegState::Ended);
        assert_eq!(ended[0].end_cause, Some(EndCause::Rejected));
        assert_eq!(ended[0].raw_cause.as_deref(), Some("Call Rejected"));
        assert_eq!(ended[0].leg.native(), "x-1/500");
        assert_eq!(tracker.live_legs(), 0);
        assert!(tracker.take(&hangup, &Value::Null, 1_700_000_006_000).is_empty(), "a repeated HANGUP adds nothing");
    }

    #[test]
    fn a_click_to_call_whose_far_end_never_answers_ends_as_no_answer() {
        let mut tracker = Tracker::new("vc", "a");
        let at = |second: i64| 1_700_000_000_000 + second * 1000;
        let leg = |reason: &str, status: &str, c2c: u8, answered: u8, second: i64| {
            let call = serde_json::json!({ "ivrid": "c-1", "callstatus": status, "direction": "Click2Call",
                "c2cdirection": c2c, "answered": answered, "callerphone": "0722111222" });
            extension_event(serde_json::json!({
                "reason": reason, "servertime": 1_700_000_000 + second, "number": 500,
                "calls": [call.clone()], "currentCall": call,
            }))
        };
        // The agent's phone rings and is picked up (leg 1), then the far end rings (leg 2).
        for (i, message) in
            [leg("NEWCALL", "Dialing", 1, 0, 0), leg("ANSWER", "Talking", 1, 1, 3), leg("NEWCALL", "Talking", 2, 0, 4)]
                .iter()
                .enumerate()
        {
            tracker.take(message, &Value::Null, at(i as i64 * 3 + 1));
        }
        let hangup = extension_event(serde_json::json!({
            "reason": "HANGUP", "cause": "Normal hangup", "ivruniqueid": "c-1", "servertime": 1_700_000_030,
            "number": 500, "calls": [],
            "currentCall": { "ivrid": "c-1", "callstatus": "Talking", "direction": "Click2Call", "c2cdirection": 2, "answered": 0 },
        }));
        let events = tracker.take(&hangup, &Value::Null, at(31));
        let ended: Vec<&LegReport> = events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::Leg(report) if report.state == LegState::Ended => Some(report),
                _ => None,
            })
            .collect();
        assert_eq!(ended.len(), 1, "{events:?}");
        assert_eq!(ended[0].end_cause, Some(EndCause::NoAnswer));
    }

    #[test]
    fn states_causes_and_statuses_map_as_documented() {
        assert_eq!(leg_state(&call("Ringing", None, false)), LegState::Ringing);
        assert_eq!(leg_state(&call("Dialing", None, false)), LegState::Initiating);
        assert_eq!(leg_state(&call("Talking", None, true)), LegState::Active);
        assert_eq!(leg_state(&call("Spying", None, true)), LegState::Active);
        assert_eq!(leg_state(&call("Dialing", Some(1), false)), LegState::Initiating);
        assert_eq!(
            leg_state(&call("Talking", Some(1), true)),
            LegState::Initiating,
            "the agent is up, nothing dialled yet"
        );
        assert_eq!(leg_state(&call("Talking", Some(2), false)), LegState::RemoteRinging);
        assert_eq!(leg_state(&call("Talking", Some(2), true)), LegState::Active);
        assert_eq!(leg_state(&call("Parked", None, true)), LegState::Unknown);
        assert_eq!(end_cause(Some("Normal hangup"), true), EndCause::Normal);
        assert_eq!(end_cause(Some("Normal hangup"), false), EndCause::NoAnswer);
        assert_eq!(end_cause(Some("Answered elsewhere"), false), EndCause::AnsweredElsewhere);
        assert_eq!(end_cause(Some("Call Rejected"), false), EndCause::Rejected);
        assert_eq!(end_cause(Some("Mystery"), true), EndCause::Unknown);
        let codes: Vec<AgentStatus> = (1..=13).map(agent_status).collect();
        assert_eq!(codes[0], AgentStatus::Available);
        assert_eq!(codes[1], AgentStatus::LoggedOut);
        assert_eq!(codes[2], AgentStatus::Break(BreakReason::Lunch));
        assert_eq!(codes[4], AgentStatus::Break(BreakReason::Admin));
        assert_eq!(codes[6], AgentStatus::Break(BreakReason::Private));
        assert_eq!(codes[8], AgentStatus::Break(BreakReason::Other("Other".into())));
        assert_eq!(codes[10], AgentStatus::Break(BreakReason::Training));
        assert_eq!(codes[11], AgentStatus::Break(BreakReason::Meeting));
        assert_eq!(codes[12], AgentStatus::Break(BreakReason::Brief));
        assert_eq!(codes[3], AgentStatus::Unknown, "4 is not a documented code");
    }
}
