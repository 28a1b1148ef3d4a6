//! The live state and the one transition function every event goes through.
//!
//! Every field is merged so that the result does not depend on the order events arrive in:
//! first times are minima, last times maxima, current values are last-writer-wins registers
//! ordered by (ended, provider time, progress, content hash), and `Ended` absorbs everything.
//! Applying a set of events in any order, with any duplicates, gives the same state.

use super::call::{Call, Direction, EndCause, Leg, LegState, Origin, Party};
use super::event::{Event, EventKind, ExtensionReport, LegReport, QueueOutcome};
use super::extension::{AgentStatus, Extension, Presence};
use super::frame::Change;
use super::ids::{CallId, ExtensionId, LegId, QueueId, Timestamp};
use super::queue::{AgentCounts, Contribution, Queue, QueueEntry, QueueSettings, Tally};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Provider times outside [1970, 2100) are a provider bug, not a call.
const LATEST_PLAUSIBLE: Timestamp = 4_102_444_800_000;

/// What applying one event did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The state changed; these are the new views of what changed, to publish as a delta.
    Applied(Vec<Change>),
    /// A duplicate or late event: nothing visible changed.
    Unchanged,
    /// The event makes no sense; the reason is logged and counted, the state is untouched.
    Refused(String),
}

/// The order of register writes: an ended report beats any other, then later provider time,
/// then further progress, then the connector's revision, then a content hash so ties still
/// resolve the same way everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    ended: bool,
    at: Timestamp,
    progress: u8,
    revision: u64,
    content: u64,
}

impl Key {
    fn of(at: Timestamp, value: &impl Hash) -> Self {
        Key { ended: false, at, progress: 0, revision: 0, content: content_hash(value) }
    }
}

fn content_hash(value: &impl Hash) -> u64 {
    // DefaultHasher::new() has fixed keys: the same value hashes the same in every process.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// A last-writer-wins register under `Key`.
#[derive(Debug, Clone, Default)]
struct Lww<T> {
    key: Option<Key>,
    value: T,
}

impl<T> Lww<T> {
    fn new(key: Key, value: T) -> Self {
        Self { key: Some(key), value }
    }

    fn offer(&mut self, key: Key, value: T) {
        if self.key.is_none_or(|current| key > current) {
            self.key = Some(key);
            self.value = value;
        }
    }

    fn since(&self) -> Option<Timestamp> {
        self.key.map(|key| key.at)
    }
}

fn min_opt(current: Option<Timestamp>, new: Timestamp) -> Option<Timestamp> {
    Some(current.map_or(new, |current| current.min(new)))
}

/// The first ending seen (by time, then cause): an ending is a fact and the earliest wins.
type Ending = (Timestamp, EndCause, Option<String>);

fn merge_ending(current: &mut Option<Ending>, new: Ending) {
    if current.as_ref().is_none_or(|existing| new < *existing) {
        *current = Some(new);
    }
}

#[derive(Debug, Clone)]
struct LegRecord {
    call: CallId,
    created_at: Timestamp,
    ringing_at: Option<Timestamp>,
    answered_at: Option<Timestamp>,
    ended: Option<Ending>,
    /// When we last heard of this leg (the latest `received_at`), whatever time the provider
    /// stamped: how long a provider has been silent about it.
    heard_at: Timestamp,
    current: Lww<LegReport>,
    extension: Lww<Option<ExtensionId>>,
    direction: Lww<Direction>,
    local: Lww<Party>,
    remote: Lww<Party>,
}

impl LegRecord {
    fn view(&self, id: &LegId) -> Leg {
        let report = &self.current.value;
        let (state, state_since) = match &self.ended {
            Some((at, _, _)) => (LegState::Ended, *at),
            None => (report.state, self.current.since().unwrap_or(self.created_at)),
        };
        Leg {
            id: id.clone(),
            call: self.call.clone(),
            extension: self.extension.value.clone(),
            state,
            held_by: if state == LegState::Held { report.held_by } else { None },
            direction: self.direction.value,
            local: self.local.value.clone(),
            remote: self.remote.value.clone(),
            created_at: self.created_at,
            ringing_at: self.ringing_at,
            answered_at: self.answered_at(),
            ended_at: self.ended.as_ref().map(|(at, _, _)| *at),
            end_cause: self.ended.as_ref().map(|(_, cause, _)| *cause),
            raw_cause: self.ended.as_ref().and_then(|(_, _, raw)| raw.clone()),
            raw_state: report.raw_state.clone(),
            recording: if state.is_ended() { None } else { report.recording.clone() },
            state_since,
        }
    }

    fn merge_ended(&mut self, ending: Ending) {
        merge_ending(&mut self.ended, ending);
    }

    /// When the leg was answered, if before it ended: a late report that it was talking,
    /// stamped after its end, does not make an unanswered leg answered (in either order).
    fn answered_at(&self) -> Option<Timestamp> {
        let ended = self.ended.as_ref().map(|(at, _, _)| *at);
        self.answered_at.filter(|answered| ended.is_none_or(|ended| *answered <= ended))
    }
}

#[derive(Debug, Clone, Default)]
struct CallRecord {
    legs: BTreeSet<LegId>,
    origin: Lww<Origin>,
    queue: Lww<Option<QueueId>>,
    explicit_end: Option<Ending>,
    /// Hidden from the live view (ended a while ago); kept so late events cannot revive it.
    retired: bool,
}

#[derive(Debug, Clone)]
struct ExtensionRecord {
    number: String,
    first_seen: Timestamp,
    name: Lww<Option<String>>,
    sip_user: Lww<Option<String>>,
    online_user: Lww<Option<String>>,
    status: Lww<(AgentStatus, Option<String>)>,
    /// Every leg at this extension today, for the times of its last call.
    legs: BTreeSet<LegId>,
    /// Its legs that have not ended: presence reads only these, so a queue's agent counts do
    /// not cost more as its members' days fill up.
    live: BTreeSet<LegId>,
}

impl ExtensionRecord {
    fn new(id: &ExtensionId, at: Timestamp) -> Self {
        Self {
            number: id.native().to_owned(),
            first_seen: at,
            name: Lww::default(),
            sip_user: Lww::default(),
            online_user: Lww::default(),
            status: Lww::default(),
            legs: BTreeSet::new(),
            live: BTreeSet::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct EntryRecord {
    caller: Lww<Party>,
    joined_at: Option<Timestamp>,
    left: Option<(Timestamp, QueueOutcome)>,
    /// When we last heard of this entry (the latest `received_at`): how long its provider has
    /// been silent about a caller still listed as waiting.
    heard_at: Timestamp,
    /// What this entry adds to its queue's tally now, and the join time it is listed under
    /// while waiting: none when it is not counted today.
    counted: Option<(Contribution, Option<Timestamp>)>,
}

impl EntryRecord {
    fn view(&self, call: &CallId, talk_ms: Option<i64>) -> QueueEntry {
        QueueEntry {
            call: call.clone(),
            caller: self.caller.value.clone(),
            joined_at: self.joined_at,
            left_at: self.left.map(|(at, _)| at),
            outcome: self.left.map(|(_, outcome)| outcome),
            talk_ms,
        }
    }
}

#[derive(Debug, Clone)]
struct QueueRecord {
    /// Empty until a provider names the queue; the view falls back to the native id.
    name: Lww<Option<String>>,
    members: Lww<Vec<ExtensionId>>,
    entries: BTreeMap<CallId, EntryRecord>,
    settings: QueueSettings,
    /// Today's figures so far, kept entry by entry rather than recounted on every event.
    tally: Tally,
    /// Callers counted today and still waiting, longest-waiting first.
    waiting: BTreeSet<(Option<Timestamp>, CallId)>,
}

/// Everything the hub knows now. Only the hub writes it; the browser gets views of it.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    legs: BTreeMap<LegId, LegRecord>,
    calls: BTreeMap<CallId, CallRecord>,
    extensions: BTreeMap<ExtensionId, ExtensionRecord>,
    queues: BTreeMap<QueueId, QueueRecord>,
    /// The queues each extension is a member of: the agent counts its changes can move.
    member_of: HashMap<ExtensionId, BTreeSet<QueueId>>,
    /// The queues holding an entry for each call: the queue views an event on it can change.
    /// Kept with the entries, which can outlive the call's record at a new day.
    entry_queues: HashMap<CallId, BTreeSet<QueueId>>,
    queue_settings: BTreeMap<QueueId, QueueSettings>,
    default_settings: QueueSettings,
    day_start: Timestamp,
    /// The calls the last new day forgot (they had ended before it began): a late or repeated
    /// report of one, a webhook retried after midnight, is old news and must not bring it back
    /// live. One day's worth, replaced at the next reset.
    forgotten_calls: HashSet<CallId>,
    /// The queue entries the last new day forgot (the caller had left before it began), for
    /// the same reason: a retried join from before the reset must not list them waiting again.
    forgotten_entries: HashSet<(QueueId, CallId)>,
    /// Who serves each queue by the configuration, for providers that never say (all but the
    /// simulator): without it every queue's agent counts would read 0 · 0 · 0 · 0.
    configured_members: BTreeMap<QueueId, Vec<ExtensionId>>,
    published: Published,
}

/// The last view of each object that went out in a change: an event's new views are compared
/// with these, so each touched view is built once per event.
#[derive(Debug, Clone, Default)]
struct Published {
    calls: HashMap<CallId, Call>,
    extensions: HashMap<ExtensionId, Extension>,
    queues: HashMap<QueueId, Queue>,
}

impl Published {
    /// Records `view` and returns it when it differs from what went out last.
    fn update<K: Hash + Eq + Clone, V: PartialEq + Clone>(
        map: &mut HashMap<K, V>,
        key: &K,
        view: Option<V>,
    ) -> Option<V> {
        match view {
            Some(view) if map.get(key) != Some(&view) => {
                map.insert(key.clone(), view.clone());
                Some(view)
            }
            Some(_) => None,
            None => {
                map.remove(key);
                None
            }
        }
    }
}

/// The objects an event can change, found before and after applying it.
#[derive(Debug, Default)]
struct Touched {
    calls: BTreeSet<CallId>,
    extensions: BTreeSet<ExtensionId>,
    queues: BTreeSet<QueueId>,
}

impl LiveState {
    pub fn new(default_settings: QueueSettings, queue_settings: BTreeMap<QueueId, QueueSettings>) -> Self {
        Self { default_settings, queue_settings, ..Self::default() }
    }

    /// Names who serves each queue, for providers that do not list members; a provider's own
    /// list, where it gives one, wins.
    pub fn with_members(mut self, members: BTreeMap<QueueId, Vec<ExtensionId>>) -> Self {
        for (queue, list) in &members {
            for member in list {
                self.member_of.entry(member.clone()).or_default().insert(queue.clone());
            }
        }
        self.configured_members = members;
        self
    }

    /// Start of the current figures day; entries before it are not counted.
    pub fn day_start(&self) -> Timestamp {
        self.day_start
    }

    /// Applies one event: the only way live state changes.
    pub fn apply(&mut self, event: &Event) -> Outcome {
        if let Err(reason) = self.check(event) {
            return Outcome::Refused(reason);
        }
        if self.about_forgotten(event) {
            return Outcome::Unchanged;
        }
        // Before and after: a leg that moves extension touches the one it left.
        let mut touched = self.touched(event);
        self.merge(event);
        let after_touched = self.touched(event);
        touched.calls.extend(after_touched.calls);
        touched.extensions.extend(after_touched.extensions);
        touched.queues.extend(after_touched.queues);
        // A hidden call that is on again (a new ring after every leg had ended) is shown again:
        // late news of its old legs cannot revive it, a live leg can.
        for id in &touched.calls {
            if self.calls.get(id).is_some_and(|record| record.retired)
                && self.call_view_even_retired(id).is_some_and(|call| call.ended_at.is_none())
            {
                if let Some(record) = self.calls.get_mut(id) {
                    record.retired = false;
                }
            }
        }
        for queue in &touched.queues {
            for call in &touched.calls {
                self.recount_entry(queue, call);
            }
        }
        let changes = self.changes(&touched);
        if changes.is_empty() {
            Outcome::Unchanged
        } else {
            Outcome::Applied(changes)
        }
    }

    /// Why an event cannot be applied, checked before anything is touched.
    fn check(&self, event: &Event) -> Result<(), String> {
        if event.provider.is_empty() {
            return Err("event names no provider".into());
        }
        if !(0..LATEST_PLAUSIBLE).contains(&event.at) {
            return Err(format!("event time {} ms is outside 1970..2100", event.at));
        }
        let owned = |id: &str, what: &str| -> Result<(), String> {
            let native = id.splitn(3, '/').nth(2).unwrap_or("");
            if id.split('/').next() != Some(event.provider.as_str()) || native.is_empty() {
                return Err(format!("{what} id {id:?} is not a non-empty id of provider {:?}", event.provider));
            }
            Ok(())
        };
        match &event.kind {
            EventKind::Leg(report) => {
                owned(report.leg.as_str(), "leg")?;
                owned(report.call.as_str(), "call")?;
                if let Some(extension) = &report.extension {
                    owned(extension.as_str(), "extension")?;
                }
                if let Some(queue) = &report.queue {
                    owned(queue.as_str(), "queue")?;
                }
                if let Some(existing) = self.legs.get(&report.leg) {
                    if existing.call != report.call {
                        return Err(format!(
                            "leg {} belongs to call {}, not {}",
                            report.leg, existing.call, report.call
                        ));
                    }
                }
                if report.state != LegState::Ended && report.end_cause.is_some() {
                    return Err(format!("leg {} has an end cause but is {:?}", report.leg, report.state));
                }
            }
            EventKind::CallEnded { call, .. } => owned(call.as_str(), "call")?,
            EventKind::Extension(report) => owned(report.extension.as_str(), "extension")?,
            EventKind::AgentStatus { extension, .. } => owned(extension.as_str(), "extension")?,
            EventKind::Queue { queue, members, .. } => {
                owned(queue.as_str(), "queue")?;
                for member in members {
                    owned(member.as_str(), "extension")?;
                }
            }
            EventKind::QueueJoined { queue, call, .. } | EventKind::QueueLeft { queue, call, .. } => {
                owned(queue.as_str(), "queue")?;
                owned(call.as_str(), "call")?;
            }
        }
        Ok(())
    }

    /// Whether `event` is old news about something the last new day forgot: a call that had
    /// ended, or a queue entry, reported as of before the reset. News from after it (a call
    /// that went quiet a moment before midnight and rings on after it) is today's.
    fn about_forgotten(&self, event: &Event) -> bool {
        if event.at >= self.day_start || (self.forgotten_calls.is_empty() && self.forgotten_entries.is_empty()) {
            return false;
        }
        let call = match &event.kind {
            EventKind::Leg(report) => &report.call,
            EventKind::CallEnded { call, .. } => call,
            EventKind::QueueJoined { queue, call, .. } | EventKind::QueueLeft { queue, call, .. } => {
                if self.forgotten_entries.contains(&(queue.clone(), call.clone())) {
                    return true;
                }
                call
            }
            EventKind::Extension(_) | EventKind::AgentStatus { .. } | EventKind::Queue { .. } => return false,
        };
        self.forgotten_calls.contains(call)
    }

    fn touched(&self, event: &Event) -> Touched {
        let mut touched = Touched::default();
        let add_call = |touched: &mut Touched, call: &CallId| {
            touched.calls.insert(call.clone());
            if let Some(record) = self.calls.get(call) {
                for leg in &record.legs {
                    if let Some(extension) = self.legs.get(leg).and_then(|leg| leg.extension.value.clone()) {
                        touched.extensions.insert(extension);
                    }
                }
            }
        };
        match &event.kind {
            EventKind::Leg(report) => {
                add_call(&mut touched, &report.call);
                touched.extensions.extend(report.extension.clone());
                touched.queues.extend(report.queue.clone());
            }
            EventKind::CallEnded { call, .. } => add_call(&mut touched, call),
            EventKind::Extension(ExtensionReport { extension, .. }) | EventKind::AgentStatus { extension, .. } => {
                touched.extensions.insert(extension.clone());
            }
            EventKind::Queue { queue, members, .. } => {
                touched.queues.insert(queue.clone());
                touched.extensions.extend(members.iter().cloned());
            }
            EventKind::QueueJoined { queue, call, .. } | EventKind::QueueLeft { queue, call, .. } => {
                touched.queues.insert(queue.clone());
                add_call(&mut touched, call);
            }
        }
        // Queue views depend on their calls (talk time) and their members (agent counts).
        for call in &touched.calls {
            if let Some(queues) = self.entry_queues.get(call) {
                touched.queues.extend(queues.iter().cloned());
            }
        }
        for extension in &touched.extensions {
            if let Some(queues) = self.member_of.get(extension) {
                touched.queues.extend(queues.iter().cloned());
            }
        }
        touched
    }

    /// The touched objects whose view differs from the one last sent.
    fn changes(&mut self, touched: &Touched) -> Vec<Change> {
        let mut changes = Vec::new();
        for id in &touched.calls {
            let view = self.call_view(id);
            changes.extend(Published::update(&mut self.published.calls, id, view).map(Change::Call));
        }
        for id in &touched.extensions {
            let view = self.extension_view(id);
            changes.extend(Published::update(&mut self.published.extensions, id, view).map(Change::Extension));
        }
        for id in &touched.queues {
            let view = self.queue_view(id);
            changes.extend(Published::update(&mut self.published.queues, id, view).map(Change::Queue));
        }
        changes
    }

    fn merge(&mut self, event: &Event) {
        let at = event.at;
        match &event.kind {
            EventKind::Leg(report) => self.merge_leg(report, at, event.received_at),
            EventKind::CallEnded { call, cause, raw_cause } => {
                let ending = (at, *cause, raw_cause.clone());
                let record = self.calls.entry(call.clone()).or_default();
                merge_ending(&mut record.explicit_end, ending.clone());
                for id in record.legs.clone() {
                    if let Some(leg) = self.legs.get_mut(&id) {
                        leg.merge_ended(ending.clone());
                        if let Some(extension) = leg.extension.value.as_ref().and_then(|e| self.extensions.get_mut(e)) {
                            extension.live.remove(&id);
                        }
                    }
                }
            }
            EventKind::Extension(report) => {
                let record = self.extension_mut(&report.extension, at);
                let key = Key::of(at, report);
                if report.name.is_some() {
                    record.name.offer(key, report.name.clone());
                }
                if report.sip_user.is_some() {
                    record.sip_user.offer(key, report.sip_user.clone());
                }
                // The online user is offered even when absent: nobody logged in is news too.
                record.online_user.offer(key, report.online_user.clone());
            }
            EventKind::AgentStatus { extension, status, raw_status } => {
                let value = (status.clone(), raw_status.clone());
                let key = Key::of(at, &value);
                self.extension_mut(extension, at).status.offer(key, value);
            }
            EventKind::Queue { queue, name, members } => {
                for member in members {
                    self.extension_mut(member, at);
                }
                let mut members = members.clone();
                members.sort();
                members.dedup();
                let before = self.members_of(queue).to_vec();
                let record = self.queue_mut(queue);
                record.name.offer(Key::of(at, name), Some(name.clone()));
                // Only the simulator lists members: a provider's empty list means it does not
                // say who serves the queue, not that nobody does.
                if !members.is_empty() {
                    record.members.offer(Key::of(at, &members), members);
                }
                let after = self.members_of(queue).to_vec();
                if before != after {
                    for left in before.iter().filter(|member| !after.contains(member)) {
                        if let Some(queues) = self.member_of.get_mut(left) {
                            queues.remove(queue);
                            if queues.is_empty() {
                                self.member_of.remove(left);
                            }
                        }
                    }
                    for member in after {
                        self.member_of.entry(member).or_default().insert(queue.clone());
                    }
                }
            }
            EventKind::QueueJoined { queue, call, caller } => {
                let entry = self.queue_mut(queue).entries.entry(call.clone()).or_default();
                entry.heard_at = entry.heard_at.max(event.received_at);
                entry.joined_at = min_opt(entry.joined_at, at);
                if *caller != Party::default() {
                    entry.caller.offer(Key::of(at, caller), caller.clone());
                }
                self.entry_queues.entry(call.clone()).or_default().insert(queue.clone());
                self.calls.entry(call.clone()).or_default().queue.offer(Key::of(at, queue), Some(queue.clone()));
            }
            EventKind::QueueLeft { queue, call, outcome } => {
                let entry = self.queue_mut(queue).entries.entry(call.clone()).or_default();
                entry.heard_at = entry.heard_at.max(event.received_at);
                if entry.left.is_none_or(|left| (at, *outcome) < left) {
                    entry.left = Some((at, *outcome));
                }
                self.entry_queues.entry(call.clone()).or_default().insert(queue.clone());
                self.calls.entry(call.clone()).or_default().queue.offer(Key::of(at, queue), Some(queue.clone()));
            }
        }
    }

    fn merge_leg(&mut self, report: &LegReport, at: Timestamp, heard_at: Timestamp) {
        let key = Key {
            ended: report.state.is_ended(),
            at,
            progress: report.state.progress(),
            revision: report.revision,
            content: content_hash(report),
        };
        let call_record = self.calls.entry(report.call.clone()).or_default();
        call_record.legs.insert(report.leg.clone());
        if report.origin != Origin::Normal {
            call_record.origin.offer(key, report.origin.clone());
        }
        if report.queue.is_some() {
            call_record.queue.offer(key, report.queue.clone());
        }
        let explicit_end = call_record.explicit_end.clone();

        let record = self.legs.entry(report.leg.clone()).or_insert_with(|| LegRecord {
            call: report.call.clone(),
            created_at: at,
            ringing_at: None,
            answered_at: None,
            ended: None,
            heard_at,
            current: Lww::new(key, report.clone()),
            extension: Lww::default(),
            direction: Lww::default(),
            local: Lww::default(),
            remote: Lww::default(),
        });
        record.created_at = record.created_at.min(at);
        record.heard_at = record.heard_at.max(heard_at);
        record.current.offer(key, report.clone());
        if report.state == LegState::Ringing {
            record.ringing_at = min_opt(record.ringing_at, at);
        }
        if report.state.is_answered() {
            record.answered_at = min_opt(record.answered_at, at);
        }
        if report.state.is_ended() {
            record.merge_ended((at, report.end_cause.unwrap_or(EndCause::Unknown), report.raw_cause.clone()));
        }
        if let Some(ending) = explicit_end {
            record.merge_ended(ending);
        }
        let old_extension = record.extension.value.clone();
        if report.extension.is_some() {
            record.extension.offer(key, report.extension.clone());
        }
        if report.direction != Direction::Unknown {
            record.direction.offer(key, report.direction);
        }
        if report.local != Party::default() {
            record.local.offer(key, report.local.clone());
        }
        if report.remote != Party::default() {
            record.remote.offer(key, report.remote.clone());
        }
        let new_extension = record.extension.value.clone();
        let live = record.ended.is_none();
        // Every mention counts toward first_seen, whichever report wins the register.
        if let Some(mentioned) = &report.extension {
            self.extension_mut(mentioned, at);
        }
        if old_extension != new_extension {
            if let Some(old) = old_extension.and_then(|old| self.extensions.get_mut(&old)) {
                old.legs.remove(&report.leg);
                old.live.remove(&report.leg);
            }
        }
        // The register's winner was mentioned by some report, so its record exists.
        if let Some(extension) = new_extension.and_then(|extension| self.extensions.get_mut(&extension)) {
            extension.legs.insert(report.leg.clone());
            if live {
                extension.live.insert(report.leg.clone());
            } else {
                extension.live.remove(&report.leg);
            }
        }
    }

    /// Who serves a queue: the members its provider lists, else the configured ones.
    fn members_of(&self, queue: &QueueId) -> &[ExtensionId] {
        match self.queues.get(queue) {
            Some(record) if !record.members.value.is_empty() => &record.members.value,
            _ => self.configured_members.get(queue).map_or(&[], Vec::as_slice),
        }
    }

    fn extension_mut(&mut self, id: &ExtensionId, at: Timestamp) -> &mut ExtensionRecord {
        let record = self.extensions.entry(id.clone()).or_insert_with(|| ExtensionRecord::new(id, at));
        record.first_seen = record.first_seen.min(at);
        record
    }

    fn queue_mut(&mut self, id: &QueueId) -> &mut QueueRecord {
        let settings = self.queue_settings.get(id).unwrap_or(&self.default_settings).clone();
        self.queues.entry(id.clone()).or_insert_with(|| QueueRecord {
            name: Lww::default(),
            members: Lww::default(),
            entries: BTreeMap::new(),
            settings,
            tally: Tally::default(),
            waiting: BTreeSet::new(),
        })
    }

    /// Brings a queue's tally and waiting list up to date with one of its entries, after an
    /// event touched that entry or its call (talk time comes from the call's legs).
    fn recount_entry(&mut self, queue: &QueueId, call: &CallId) {
        // Most (queue, call) pairs an event touches have no entry: skip them before the legs.
        if !self.queues.get(queue).is_some_and(|record| record.entries.contains_key(call)) {
            return;
        }
        let Some(entry) = self.queues.get(queue).and_then(|record| record.entries.get(call)) else { return };
        let view = self.entry_view(queue, call, entry);
        let day_start = self.day_start;
        let Some(record) = self.queues.get_mut(queue) else { return };
        let Some(entry) = record.entries.get_mut(call) else { return };
        let counted = view.counts_in_day(day_start).then(|| (Contribution::of(&view), view.joined_at));
        if entry.counted == counted {
            return;
        }
        if let Some((old, joined_at)) = entry.counted.take() {
            record.tally.remove(&old, &record.settings);
            record.waiting.remove(&(joined_at, call.clone()));
        }
        if let Some((new, joined_at)) = &counted {
            record.tally.add(new, &record.settings);
            if new.outcome.is_none() {
                record.waiting.insert((*joined_at, call.clone()));
            }
        }
        entry.counted = counted;
    }

    /// Recounts every queue from its entries, when the day they are counted in changes.
    fn recount_all(&mut self) {
        let mut entries = Vec::new();
        for (queue, record) in &mut self.queues {
            record.tally = Tally::default();
            record.waiting.clear();
            for (call, entry) in &mut record.entries {
                entry.counted = None;
                entries.push((queue.clone(), call.clone()));
            }
        }
        for (queue, call) in entries {
            self.recount_entry(&queue, &call);
        }
    }

    fn call_view(&self, id: &CallId) -> Option<Call> {
        if self.calls.get(id)?.retired {
            return None;
        }
        self.call_view_even_retired(id)
    }

    fn call_view_even_retired(&self, id: &CallId) -> Option<Call> {
        let record = self.calls.get(id)?;
        let mut legs: Vec<Leg> =
            record.legs.iter().filter_map(|leg| self.legs.get(leg).map(|record| record.view(leg))).collect();
        if legs.is_empty() {
            return None;
        }
        legs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let all_ended = legs.iter().all(|leg| leg.state.is_ended());
        let answered_at = legs.iter().filter_map(|leg| leg.answered_at).min();
        // A caller waiting in a queue is on the line, whatever rings have ended; one who left
        // the queue was on it until then.
        let (leaves, waits) = self.queue_visits(id);
        let ended_at = match &record.explicit_end {
            Some((at, _, _)) => Some(*at),
            None if all_ended && !waits => {
                legs.iter().filter_map(|leg| leg.ended_at).chain(leaves.iter().map(|(at, _)| *at)).max()
            }
            None => None,
        };
        let end_cause = ended_at.map(|_| match &record.explicit_end {
            Some((_, cause, _)) => *cause,
            None if answered_at.is_some() => EndCause::Normal,
            None if leaves.iter().any(|(_, outcome)| *outcome == QueueOutcome::Abandoned) => EndCause::QueueAbandoned,
            None => legs
                .iter()
                .filter_map(|leg| leg.ended_at.zip(leg.end_cause).map(|(at, cause)| (at, cause, &leg.id)))
                .min()
                .map_or(EndCause::Unknown, |(_, cause, _)| cause),
        });
        let caller =
            legs.iter().map(|leg| &leg.remote).find(|party| party.number.is_some()).cloned().unwrap_or_default();
        Some(Call {
            id: id.clone(),
            direction: legs.iter().map(|leg| leg.direction).find(|d| *d != Direction::Unknown).unwrap_or_default(),
            origin: record.origin.value.clone(),
            queue: record.queue.value.clone(),
            started_at: legs.iter().map(|leg| leg.created_at).min().unwrap_or_default(),
            answered_at,
            ended_at,
            end_cause,
            caller,
            legs,
        })
    }

    fn presence(&self, record: &ExtensionRecord) -> Presence {
        let (mut any, mut ringing, mut all_held) = (false, false, true);
        let live = record.live.iter().filter_map(|leg| self.legs.get(leg)).filter(|leg| leg.ended.is_none());
        for state in live.map(|leg| leg.current.value.state) {
            any = true;
            ringing |= state == LegState::Ringing;
            all_held &= state == LegState::Held;
        }
        match (any, ringing, all_held) {
            (false, _, _) => Presence::Idle,
            (true, true, _) => Presence::Ringing,
            (true, false, true) => Presence::OnHold,
            (true, false, false) => Presence::Busy,
        }
    }

    fn extension_view(&self, id: &ExtensionId) -> Option<Extension> {
        let record = self.extensions.get(id)?;
        let legs = record.legs.iter().filter_map(|leg| self.legs.get(leg));
        let (mut last_call, mut last_answered, mut last_hangup) = (None, None, None);
        for leg in legs {
            last_call = last_call.max(Some(leg.created_at));
            last_answered = last_answered.max(leg.answered_at());
            last_hangup = last_hangup.max(leg.ended.as_ref().map(|(at, _, _)| *at));
        }
        Some(Extension {
            id: id.clone(),
            number: record.number.clone(),
            name: record.name.value.clone(),
            sip_user: record.sip_user.value.clone(),
            online_user: record.online_user.value.clone(),
            agent_status: record.status.value.0.clone(),
            raw_status: record.status.value.1.clone(),
            status_since: record.status.since().unwrap_or(record.first_seen),
            presence: self.presence(record),
            last_call_at: last_call,
            last_answered_at: last_answered,
            last_hangup_at: last_hangup,
        })
    }

    fn queue_view(&self, id: &QueueId) -> Option<Queue> {
        let record = self.queues.get(id)?;
        let waiting: Vec<QueueEntry> = record
            .waiting
            .iter()
            // Listed as waiting by `recount_entry`, so no leave and no talk to read: the plain
            // view, since every event on the queue rebuilds this list.
            .filter_map(|(_, call)| record.entries.get(call).map(|entry| entry.view(call, None)))
            .collect();
        let mut agents = AgentCounts::default();
        let members = self.members_of(id);
        for member in members {
            let Some(extension) = self.extensions.get(member) else { continue };
            match (&extension.status.value.0, self.presence(extension)) {
                (AgentStatus::LoggedOut, _) => agents.logged_out += 1,
                (_, Presence::Ringing | Presence::Busy | Presence::OnHold) => agents.busy += 1,
                (AgentStatus::Break(_), Presence::Idle) => agents.on_break += 1,
                (AgentStatus::Available | AgentStatus::Unknown, Presence::Idle) => agents.available += 1,
            }
        }
        let longest_waiting_since = record.waiting.iter().find_map(|(joined_at, _)| *joined_at);
        Some(Queue {
            id: id.clone(),
            name: record.name.value.clone().unwrap_or_else(|| id.native().to_owned()),
            members: members.to_vec(),
            waiting,
            figures: record.tally.figures(longest_waiting_since, agents),
            settings: record.settings.clone(),
        })
    }

    /// A call as the board shows it; `None` when it is not on the board.
    pub fn call(&self, id: &CallId) -> Option<Call> {
        self.call_view(id)
    }

    /// A queue's entries counted today (waiting and left), with its settings.
    pub fn queue_entries(&self, id: &QueueId) -> Option<(Vec<QueueEntry>, QueueSettings)> {
        let record = self.queues.get(id)?;
        let entries = record
            .entries
            .iter()
            .map(|(call, entry)| self.entry_view(id, call, entry))
            .filter(|entry| entry.counts_in_day(self.day_start))
            .collect();
        Some((entries, record.settings.clone()))
    }

    /// When a call's legs were all over: its explicit end, else when the last of its legs
    /// ended; `None` while any leg is up (or no leg is known). A caller can still be waiting in
    /// a queue then (the agent's ring timed out): see `queue_visits`.
    fn legs_ended_at(&self, call: &CallId) -> Option<Timestamp> {
        let record = self.calls.get(call)?;
        if let Some((at, _, _)) = &record.explicit_end {
            return Some(*at);
        }
        let mut ended = None;
        for leg in &record.legs {
            let (at, _, _) = self.legs.get(leg)?.ended.as_ref()?;
            ended = ended.max(Some(*at));
        }
        ended
    }

    /// How the caller of this call left each queue it has left (`entry_leave`), and whether
    /// it still waits in one: the call is not over then, however many rings have ended.
    fn queue_visits(&self, call: &CallId) -> (Vec<(Timestamp, QueueOutcome)>, bool) {
        let (mut leaves, mut waits) = (Vec::new(), false);
        for queue in self.entry_queues.get(call).into_iter().flatten() {
            let Some(entry) = self.queues.get(queue).and_then(|record| record.entries.get(call)) else { continue };
            match self.entry_leave(queue, call, entry) {
                Some(leave) => leaves.push(leave),
                None => waits = true,
            }
        }
        (leaves, waits)
    }

    /// The earliest time this call joined a queue other than `queue` after `after`.
    fn next_join_elsewhere(&self, queue: &QueueId, call: &CallId, after: Option<Timestamp>) -> Option<Timestamp> {
        self.entry_queues
            .get(call)
            .into_iter()
            .flatten()
            .filter(|other| *other != queue)
            .filter_map(|other| self.queues.get(other)?.entries.get(call)?.joined_at)
            .filter(|joined| after.is_none_or(|after| *joined > after))
            .min()
    }

    /// When and how a caller left a queue: the provider's report or, when that never came,
    /// what the call tells, so a lost leave cannot keep a caller waiting until the stale sweep:
    /// answered at the first pickup by an agent after the join (and before the call moved on
    /// to another queue); else gone on to that other queue (`other`) at its join; else
    /// abandoned when the call ended. `None`: still waiting.
    fn entry_leave(&self, queue: &QueueId, call: &CallId, entry: &EntryRecord) -> Option<(Timestamp, QueueOutcome)> {
        if let Some(left) = entry.left {
            return Some(left);
        }
        let record = self.calls.get(call)?;
        let joined = entry.joined_at;
        let next_join = self.next_join_elsewhere(queue, call, joined);
        let pickup = record
            .legs
            .iter()
            .filter_map(|leg| self.legs.get(leg)?.answered_at())
            .filter(|answered| joined.is_none_or(|joined| *answered >= joined))
            .filter(|answered| next_join.is_none_or(|next| *answered < next))
            .min();
        if let Some(answered) = pickup {
            return Some((answered, QueueOutcome::Answered));
        }
        if let Some(next) = next_join {
            return Some((next, QueueOutcome::Other));
        }
        record.explicit_end.as_ref().map(|(at, _, _)| (*at, QueueOutcome::Abandoned))
    }

    /// One queue entry as the figures count it: its leave from `entry_leave`, and its talk from
    /// the answer that ended the wait to the end of the call or to the call's next queue,
    /// whichever came first: a call transferred on to another queue counts its first
    /// conversation here and its second there, not both in both.
    fn entry_view(&self, queue: &QueueId, call: &CallId, entry: &EntryRecord) -> QueueEntry {
        let mut view = entry.view(call, None);
        if let Some((at, outcome)) = self.entry_leave(queue, call, entry) {
            view.left_at = Some(at);
            view.outcome = Some(outcome);
        }
        if let (Some(QueueOutcome::Answered), Some(answered)) = (view.outcome, view.left_at) {
            let talk_ended = match (self.legs_ended_at(call), self.next_join_elsewhere(queue, call, Some(answered))) {
                (Some(ended), Some(next)) => Some(ended.min(next)),
                (ended, next) => ended.or(next),
            };
            view.talk_ms = talk_ended.map(|ended| (ended - answered).max(0));
        }
        view
    }

    /// Every live object, as the snapshot sends it.
    pub fn views_all(&self) -> (Vec<Extension>, Vec<Call>, Vec<Queue>) {
        let extensions = self.extensions.keys().filter_map(|id| self.extension_view(id)).collect();
        let calls = self.calls.keys().filter_map(|id| self.call_view(id)).collect();
        let queues = self.queues.keys().filter_map(|id| self.queue_view(id)).collect();
        (extensions, calls, queues)
    }

    /// The live legs their provider has said nothing of for too long to still be up at `now`
    /// (by when we heard of them, not the provider's own times, which may be old news replayed):
    /// dialling, ringing or ringing out for over `ringing_ms`, or in any other live state for
    /// over `quiet_ms`. Each comes back as the report that ends it (cause unknown, the reason in
    /// `raw_cause`), for the hub to apply and journal like a provider's report: a hang-up that
    /// never arrived (a lost webhook) cannot keep a tile busy for ever.
    pub fn stale_legs(&self, now: Timestamp, ringing_ms: i64, quiet_ms: i64) -> Vec<LegReport> {
        self.legs
            .values()
            .filter(|record| record.ended.is_none())
            .filter_map(|record| {
                let report = &record.current.value;
                let silent_ms = now - record.heard_at;
                let setting_up =
                    matches!(report.state, LegState::Initiating | LegState::Ringing | LegState::RemoteRinging);
                let limit = if setting_up { ringing_ms } else { quiet_ms };
                (silent_ms > limit).then(|| LegReport {
                    state: LegState::Ended,
                    end_cause: Some(EndCause::Unknown),
                    raw_cause: Some(format!(
                        "no news from the provider for {} min while {:?}",
                        silent_ms / 60_000,
                        report.state
                    )),
                    raw_state: "stale".into(),
                    recording: None,
                    revision: report.revision + 1,
                    ..report.clone()
                })
            })
            .collect()
    }

    /// The callers still listed as waiting whose provider has said nothing of them for over
    /// `waiting_ms` at `now` (their leaving was lost): each as the queue and call to close with
    /// outcome `other`, so a lost leave cannot keep a caller waiting, and red, for days.
    pub fn stale_entries(&self, now: Timestamp, waiting_ms: i64) -> Vec<(QueueId, CallId)> {
        self.queues
            .iter()
            .flat_map(|(queue, record)| {
                record
                    .entries
                    .iter()
                    .filter(move |(_, entry)| entry.left.is_none() && now - entry.heard_at > waiting_ms)
                    .filter(move |(call, entry)| self.entry_leave(queue, call, entry).is_none())
                    .map(move |(call, _)| (queue.clone(), call.clone()))
            })
            .collect()
    }

    /// Hides calls that ended before `before` from the live view; they stay in history.
    pub fn retire_ended(&mut self, before: Timestamp) -> Vec<Change> {
        let ids: Vec<CallId> = self
            .calls
            .keys()
            .filter(|id| !self.calls[*id].retired)
            .filter(|id| self.call_view(id).and_then(|call| call.ended_at).is_some_and(|at| at < before))
            .cloned()
            .collect();
        for id in &ids {
            if let Some(record) = self.calls.get_mut(id) {
                record.retired = true;
            }
            self.published.calls.remove(id);
        }
        ids.into_iter().map(|id| Change::CallRemoved { id }).collect()
    }

    /// Starts a new figures day: counts restart from `day_start`, and everything that ended
    /// before it is forgotten (history keeps it).
    pub fn start_day(&mut self, day_start: Timestamp) -> Vec<Change> {
        if day_start <= self.day_start {
            return Vec::new();
        }
        self.day_start = day_start;
        // Every entry's leave, read once while all it reads from is still here: those before
        // the new day are forgotten; a kept one read from the call rather than reported may
        // need writing down (below).
        let mut left_before = HashSet::new();
        let mut read_leaves = Vec::new();
        for (queue, record) in &self.queues {
            for (call, entry) in &record.entries {
                let Some(leave) = self.entry_leave(queue, call, entry) else { continue };
                if leave.0 < day_start {
                    left_before.insert((queue.clone(), call.clone()));
                } else if entry.left.is_none() {
                    read_leaves.push((queue.clone(), call.clone(), leave));
                }
            }
        }
        let mut changes = self.retire_ended(day_start);
        let finished: Vec<CallId> =
            self.calls.iter().filter(|(_, record)| record.retired).map(|(id, _)| id.clone()).collect();
        // A kept entry whose leave is read from a call, or another entry, about to be forgotten
        // has it written down: what the new day keeps must not change because of what it
        // forgets. Others keep reading theirs, so later news still moves them as it would have.
        let losing: HashSet<&CallId> = finished.iter().chain(left_before.iter().map(|(_, call)| call)).collect();
        for (queue, call, leave) in read_leaves.into_iter().filter(|(_, call, _)| losing.contains(call)) {
            if let Some(entry) = self.queues.get_mut(&queue).and_then(|record| record.entries.get_mut(&call)) {
                entry.left = Some(leave);
            }
        }
        self.forgotten_calls = finished.iter().cloned().collect();
        // Their times of last call may have been among the forgotten legs.
        let mut lost_legs = BTreeSet::new();
        for id in finished {
            if let Some(record) = self.calls.remove(&id) {
                for leg in record.legs {
                    let Some(id) = self.legs.remove(&leg).and_then(|record| record.extension.value) else {
                        continue;
                    };
                    if let Some(extension) = self.extensions.get_mut(&id) {
                        extension.legs.remove(&leg);
                        extension.live.remove(&leg);
                        lost_legs.insert(id);
                    }
                }
            }
        }
        for (queue, record) in &mut self.queues {
            record.entries.retain(|call, _| {
                let keep = !left_before.contains(&(queue.clone(), call.clone()));
                if !keep {
                    if let Some(queues) = self.entry_queues.get_mut(call) {
                        queues.remove(queue);
                        if queues.is_empty() {
                            self.entry_queues.remove(call);
                        }
                    }
                }
                keep
            });
        }
        // A kept call whose forgotten queue visit told how it ended is shown without it now.
        let revisited: BTreeSet<CallId> = left_before.iter().map(|(_, call)| call.clone()).collect();
        for id in &revisited {
            if self.calls.contains_key(id) {
                let view = self.call_view(id);
                changes.extend(Published::update(&mut self.published.calls, id, view).map(Change::Call));
            }
        }
        self.forgotten_entries = left_before;
        self.recount_all();
        for id in &lost_legs {
            let view = self.extension_view(id);
            changes.extend(Published::update(&mut self.published.extensions, id, view).map(Change::Extension));
        }
        let queues: Vec<QueueId> = self.queues.keys().cloned().collect();
        for id in &queues {
            let view = self.queue_view(id);
            changes.extend(Published::update(&mut self.published.queues, id, view).map(Change::Queue));
        }
        changes
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        (self.extensions.len(), self.calls.len(), self.queues.len())
    }
}
