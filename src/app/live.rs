//! The browser's live store: the server's snapshot and deltas as fine-grained signals.
//!
//! Each extension, call, queue and connector has its own signal inside a keyed map, so a delta
//! that changes one call re-renders the one tile showing it; the map's own signal changes only
//! when an object appears or goes.

use crate::model::{
    Action, Call, CallId, Change, ConnectorHealth, Extension, ExtensionId, Frame, Queue, QueueId, Timestamp,
};
use leptos::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A keyed collection of per-object signals.
pub type Signals<K, V> = RwSignal<BTreeMap<K, RwSignal<V>>>;

/// Everything live the screens show; provided as context by the app root.
#[derive(Clone, Copy)]
pub struct LiveStore {
    pub extensions: Signals<ExtensionId, Extension>,
    pub calls: Signals<CallId, Call>,
    pub queues: Signals<QueueId, Queue>,
    pub connectors: Signals<String, ConnectorHealth>,
    /// The `seq` of the last frame applied and the epoch that numbered it; `None` until the
    /// first snapshot.
    seq: StoredValue<Option<(u64, u64)>>,
    /// Server clock minus browser clock, from the last snapshot or pong, so timers agree with the
    /// server even after the browser's clock is corrected under a page open for days.
    pub clock_offset_ms: RwSignal<Timestamp>,
    /// The live call each extension is on, one signal per extension, kept up to date as calls
    /// change: a tile follows only its own, not every call.
    /// Reference-counted rather than owned by whichever component first asked, so a slot
    /// outlives the tile or memo that created it.
    current: StoredValue<HashMap<ExtensionId, ArcRwSignal<Option<CallId>>>>,
    /// Which calls have legs at which extension, and back: what a call change can affect.
    calls_at: StoredValue<HashMap<ExtensionId, BTreeSet<CallId>>>,
    extensions_of: StoredValue<HashMap<CallId, Vec<ExtensionId>>>,
}

/// A delta that does not follow the last applied one: the store is stale until it resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub expected: u64,
    pub received: u64,
}

impl LiveStore {
    pub fn new() -> Self {
        Self {
            extensions: RwSignal::new(BTreeMap::new()),
            calls: RwSignal::new(BTreeMap::new()),
            queues: RwSignal::new(BTreeMap::new()),
            connectors: RwSignal::new(BTreeMap::new()),
            seq: StoredValue::new(None),
            clock_offset_ms: RwSignal::new(0),
            current: StoredValue::new(HashMap::new()),
            calls_at: StoredValue::new(HashMap::new()),
            extensions_of: StoredValue::new(HashMap::new()),
        }
    }

    /// The call `extension` is on now (its latest live leg), as a signal that changes only
    /// when that answer changes.
    pub fn current_call(&self, extension: &ExtensionId) -> Signal<Option<RwSignal<Call>>> {
        let slot = self.current_slot(extension);
        let calls = self.calls;
        Signal::derive(move || slot.get().and_then(|id| calls.with_untracked(|calls| calls.get(&id).copied())))
    }

    /// Whether `provider`'s connector can carry out `action`: the desk offers only what will
    /// work. Tracked, so buttons follow a connector that comes up after the page.
    pub fn can(&self, provider: &str, action: Action) -> bool {
        self.connectors.with(|connectors| {
            connectors.get(provider).is_some_and(|health| health.with(|health| health.capabilities.contains(&action)))
        })
    }

    /// Every call with a live leg at `extension` now (the desk looks for the one the agent put
    /// on hold to consult). Not tracked itself: read it again when the current call changes.
    pub fn calls_at(&self, extension: &ExtensionId) -> Vec<RwSignal<Call>> {
        let ids = self.calls_at.with_value(|at| at.get(extension).cloned()).unwrap_or_default();
        self.calls.with_untracked(|calls| ids.iter().filter_map(|id| calls.get(id).copied()).collect())
    }

    fn current_slot(&self, extension: &ExtensionId) -> ArcRwSignal<Option<CallId>> {
        if let Some(slot) = self.current.with_value(|slots| slots.get(extension).cloned()) {
            return slot;
        }
        let slot = ArcRwSignal::new(self.best_call(extension));
        self.current.update_value(|slots| {
            slots.insert(extension.clone(), slot.clone());
        });
        slot
    }

    /// The live call with the most recent live leg at `extension`.
    fn best_call(&self, extension: &ExtensionId) -> Option<CallId> {
        let candidates = self.calls_at.with_value(|at| at.get(extension).cloned()).unwrap_or_default();
        self.calls.with_untracked(|calls| {
            candidates
                .into_iter()
                .filter_map(|id| {
                    let signal = calls.get(&id)?;
                    signal.with_untracked(|call| {
                        if call.ended_at.is_some() {
                            return None;
                        }
                        let newest = call
                            .legs
                            .iter()
                            .filter(|leg| leg.extension.as_ref() == Some(extension) && !leg.state.is_ended())
                            .map(|leg| leg.created_at)
                            .max()?;
                        Some((newest, id.clone()))
                    })
                })
                .max()
                .map(|(_, id)| id)
        })
    }

    /// Records which extensions `call` touches now (none when it is gone) and refreshes the
    /// current call of every extension it touched before or touches now.
    fn reindex(&self, id: &CallId, extensions: Vec<ExtensionId>) {
        let before = self.extensions_of.try_update_value(|of| {
            if extensions.is_empty() {
                of.remove(id).unwrap_or_default()
            } else {
                of.insert(id.clone(), extensions.clone()).unwrap_or_default()
            }
        });
        let before = before.unwrap_or_default();
        self.calls_at.update_value(|at| {
            for extension in &before {
                if let Some(calls) = at.get_mut(extension) {
                    calls.remove(id);
                    if calls.is_empty() {
                        at.remove(extension);
                    }
                }
            }
            for extension in &extensions {
                at.entry(extension.clone()).or_default().insert(id.clone());
            }
        });
        let touched: BTreeSet<&ExtensionId> = before.iter().chain(extensions.iter()).collect();
        for extension in touched {
            if let Some(slot) = self.current.with_value(|slots| slots.get(extension).cloned()) {
                let best = self.best_call(extension);
                if slot.with_untracked(|current| *current != best) {
                    slot.set(best);
                }
            }
        }
    }

    fn leg_extensions(call: &Call) -> Vec<ExtensionId> {
        let mut extensions: Vec<ExtensionId> = call.legs.iter().filter_map(|leg| leg.extension.clone()).collect();
        extensions.sort();
        extensions.dedup();
        extensions
    }

    /// The sequence to resume from after a reconnect.
    pub fn seq(&self) -> Option<u64> {
        self.seq.get_value().map(|(seq, _)| seq)
    }

    /// The websocket query that resumes where this store left off (empty: send a snapshot).
    pub fn resume_query(&self) -> String {
        self.seq.get_value().map(|(seq, epoch)| format!("?since={seq}&epoch={epoch}")).unwrap_or_default()
    }

    /// Forgets the sequence so the next connection asks for a fresh snapshot.
    pub fn forget_seq(&self) {
        self.seq.set_value(None);
    }

    /// Applies one frame. A snapshot replaces everything; a delta must carry the next `seq`.
    /// `now` is the browser's clock, used to align timers with the server's.
    pub fn apply(&self, frame: Frame, now: Timestamp) -> Result<(), Gap> {
        match frame {
            Frame::Snapshot { seq, snapshot } => {
                replace_all(self.extensions, snapshot.extensions.into_iter().map(|e| (e.id.clone(), e)));
                let indexed: Vec<(CallId, Vec<ExtensionId>)> =
                    snapshot.calls.iter().map(|call| (call.id.clone(), Self::leg_extensions(call))).collect();
                replace_all(self.calls, snapshot.calls.into_iter().map(|c| (c.id.clone(), c)));
                let gone: Vec<CallId> = self.extensions_of.with_value(|of| {
                    of.keys().filter(|id| !indexed.iter().any(|(kept, _)| kept == *id)).cloned().collect()
                });
                for id in gone {
                    self.reindex(&id, Vec::new());
                }
                for (id, extensions) in indexed {
                    self.reindex(&id, extensions);
                }
                replace_all(self.queues, snapshot.queues.into_iter().map(|q| (q.id.clone(), q)));
                replace_all(self.connectors, snapshot.connectors.into_iter().map(|c| (c.name.clone(), c)));
                if snapshot.server_time > 0 {
                    self.clock_offset_ms.set(snapshot.server_time - now);
                }
                self.seq.set_value(Some((seq, snapshot.epoch)));
                Ok(())
            }
            Frame::Delta { seq, changes } => {
                let Some((last, epoch)) = self.seq.get_value() else {
                    // Deltas before any snapshot cannot be applied to anything.
                    return Err(Gap { expected: 0, received: seq });
                };
                let expected = last + 1;
                if seq != expected {
                    return Err(Gap { expected, received: seq });
                }
                for change in changes {
                    match change {
                        Change::Call(call) => {
                            let (id, extensions) = (call.id.clone(), Self::leg_extensions(&call));
                            upsert(self.calls, id.clone(), call);
                            self.reindex(&id, extensions);
                        }
                        Change::CallRemoved { id } => {
                            remove(self.calls, &id);
                            self.reindex(&id, Vec::new());
                        }
                        Change::Extension(extension) => upsert(self.extensions, extension.id.clone(), extension),
                        Change::Queue(queue) => upsert(self.queues, queue.id.clone(), queue),
                        Change::Connector(health) => upsert(self.connectors, health.name.clone(), health),
                    }
                }
                self.seq.set_value(Some((seq, epoch)));
                Ok(())
            }
            Frame::Pong { server_time } => {
                if server_time > 0 {
                    self.clock_offset_ms.set(server_time - now);
                }
                Ok(())
            }
        }
    }
}

impl Default for LiveStore {
    fn default() -> Self {
        Self::new()
    }
}

/// Sets one object's signal, or adds it; an unchanged value notifies nobody.
fn upsert<K, V>(map: Signals<K, V>, key: K, value: V)
where
    K: Ord + Send + Sync + 'static,
    V: PartialEq + Send + Sync + 'static,
{
    match map.with_untracked(|objects| objects.get(&key).copied()) {
        Some(signal) => {
            if signal.with_untracked(|current| *current != value) {
                signal.set(value);
            }
        }
        None => map.update(|objects| {
            objects.insert(key, RwSignal::new(value));
        }),
    }
}

fn remove<K, V>(map: Signals<K, V>, key: &K)
where
    K: Ord + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    if map.with_untracked(|objects| objects.contains_key(key)) {
        let mut removed = None;
        map.update(|objects| removed = objects.remove(key));
        // Arena signals live until disposed: a board that runs all day must free what it drops.
        if let Some(signal) = removed {
            signal.dispose();
        }
    }
}

/// Makes the map hold exactly `items`, touching only the signals whose value changed.
fn replace_all<K, V>(map: Signals<K, V>, items: impl IntoIterator<Item = (K, V)>)
where
    K: Ord + Clone + Send + Sync + 'static,
    V: PartialEq + Send + Sync + 'static,
{
    let items: BTreeMap<K, V> = items.into_iter().collect();
    let stale: Vec<K> =
        map.with_untracked(|objects| objects.keys().filter(|key| !items.contains_key(*key)).cloned().collect());
    if !stale.is_empty() {
        let mut dropped = Vec::new();
        map.update(|objects| {
            for key in &stale {
                dropped.extend(objects.remove(key));
            }
        });
        for signal in dropped {
            signal.dispose();
        }
    }
    for (key, value) in items {
        upsert(map, key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentStatus, Presence, Snapshot};

    fn extension(number: &str, presence: Presence) -> Extension {
        Extension {
            id: ExtensionId::new("p", "a", number),
            number: number.into(),
            name: None,
            sip_user: None,
            online_user: None,
            agent_status: AgentStatus::Available,
            raw_status: None,
            status_since: 0,
            presence,
            last_call_at: None,
            last_answered_at: None,
            last_hangup_at: None,
        }
    }

    fn snapshot(seq: u64, extensions: Vec<Extension>) -> Frame {
        Frame::Snapshot { seq, snapshot: Snapshot { extensions, server_time: 1_000, ..Snapshot::default() } }
    }

    #[test]
    fn deltas_update_one_object_signal_and_detect_gaps() {
        // Signals live in an owner's arena, as they do inside the app.
        Owner::new().with(deltas_update_one_object_signal_and_detect_gaps_in_owner);
    }

    fn deltas_update_one_object_signal_and_detect_gaps_in_owner() {
        let store = LiveStore::new();
        store
            .apply(snapshot(5, vec![extension("100", Presence::Idle), extension("101", Presence::Idle)]), 400)
            .unwrap();
        assert_eq!(store.seq(), Some(5));
        assert_eq!(store.clock_offset_ms.get_untracked(), 600);
        let tile_100 = store.extensions.with_untracked(|map| map[&ExtensionId::new("p", "a", "100")]);
        let tile_101 = store.extensions.with_untracked(|map| map[&ExtensionId::new("p", "a", "101")]);

        let delta = Frame::Delta { seq: 6, changes: vec![Change::Extension(extension("101", Presence::Ringing))] };
        store.apply(delta, 0).unwrap();
        // The same signal objects, one of them updated.
        assert_eq!(tile_101.get_untracked().presence, Presence::Ringing);
        assert_eq!(tile_100.get_untracked().presence, Presence::Idle);
        assert_eq!(store.extensions.with_untracked(|map| map[&ExtensionId::new("p", "a", "101")]), tile_101);

        // A pong corrects the clock (the browser's was set right under the page) and nothing else.
        store.apply(Frame::Pong { server_time: 90_000 }, 89_000).unwrap();
        assert_eq!(store.clock_offset_ms.get_untracked(), 1_000);
        assert_eq!(store.seq(), Some(6), "a pong is not numbered");

        let skipped = Frame::Delta { seq: 8, changes: vec![] };
        assert_eq!(store.apply(skipped, 0), Err(Gap { expected: 7, received: 8 }));
        assert_eq!(store.seq(), Some(6), "a gap applies nothing");

        // A fresh snapshot drops what is gone and keeps what stays.
        store.apply(snapshot(9, vec![extension("101", Presence::Busy)]), 0).unwrap();
        assert_eq!(store.extensions.with_untracked(|map| map.len()), 1);
        assert_eq!(tile_101.get_untracked().presence, Presence::Busy);
    }

    fn call(id: &str, extension: &str, created_at: i64, ended: bool) -> Call {
        use crate::model::{Direction, Leg, LegId, LegState, Origin, Party};
        let state = if ended { LegState::Ended } else { LegState::Active };
        Call {
            id: CallId::new("p", "a", id),
            legs: vec![Leg {
                id: LegId::new("p", "a", id),
                call: CallId::new("p", "a", id),
                extension: Some(ExtensionId::new("p", "a", extension)),
                state,
                held_by: None,
                direction: Direction::Inbound,
                local: Party::default(),
                remote: Party::default(),
                created_at,
                ringing_at: None,
                answered_at: None,
                ended_at: ended.then_some(created_at + 1),
                end_cause: None,
                raw_cause: None,
                raw_state: String::new(),
                recording: None,
                state_since: created_at,
            }],
            direction: Direction::Inbound,
            origin: Origin::Normal,
            queue: None,
            started_at: created_at,
            answered_at: None,
            ended_at: ended.then_some(created_at + 1),
            end_cause: None,
            caller: Party::default(),
        }
    }

    #[test]
    fn each_extension_follows_its_own_current_call() {
        Owner::new().with(|| {
            let store = LiveStore::new();
            let first = Frame::Snapshot {
                seq: 1,
                snapshot: Snapshot { calls: vec![call("c1", "100", 10, false)], ..Snapshot::default() },
            };
            store.apply(first, 0).unwrap();
            let at_100 = store.current_call(&ExtensionId::new("p", "a", "100"));
            let at_101 = store.current_call(&ExtensionId::new("p", "a", "101"));
            let id =
                |signal: Signal<Option<RwSignal<Call>>>| signal.get_untracked().map(|call| call.get_untracked().id);
            assert_eq!(id(at_100), Some(CallId::new("p", "a", "c1")));
            assert_eq!(id(at_101), None);
            // A newer call at 100 wins; a call at 101 shows there; ending one falls back.
            let changes = vec![Change::Call(call("c2", "100", 20, false)), Change::Call(call("c3", "101", 30, false))];
            store.apply(Frame::Delta { seq: 2, changes }, 0).unwrap();
            assert_eq!(id(at_100), Some(CallId::new("p", "a", "c2")));
            assert_eq!(id(at_101), Some(CallId::new("p", "a", "c3")));
            store.apply(Frame::Delta { seq: 3, changes: vec![Change::Call(call("c2", "100", 20, true))] }, 0).unwrap();
            assert_eq!(id(at_100), Some(CallId::new("p", "a", "c1")));
            store
                .apply(
                    Frame::Delta { seq: 4, changes: vec![Change::CallRemoved { id: CallId::new("p", "a", "c1") }] },
                    0,
                )
                .unwrap();
            assert_eq!(id(at_100), None);
            // A snapshot without c3 clears 101.
            store.apply(Frame::Snapshot { seq: 5, snapshot: Snapshot::default() }, 0).unwrap();
            assert_eq!(id(at_101), None);
        });
    }
}
