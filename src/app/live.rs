//! The browser's live store: the server's snapshot and deltas as fine-grained signals.
//!
//! Each extension, call, queue and connector has its own signal inside a keyed map, so a delta
//! that changes one call re-renders the one tile showing it; the map's own signal changes only
//! when an object appears or goes.

use crate::model::{Call, CallId, Change, ConnectorHealth, Extension, ExtensionId, Frame, Queue, QueueId, Timestamp};
use leptos::prelude::*;
use std::collections::BTreeMap;

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
    /// Server clock minus browser clock, from the last snapshot, so timers agree with the server.
    pub clock_offset_ms: RwSignal<Timestamp>,
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
        }
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
                replace_all(self.calls, snapshot.calls.into_iter().map(|c| (c.id.clone(), c)));
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
                        Change::Call(call) => upsert(self.calls, call.id.clone(), call),
                        Change::CallRemoved { id } => remove(self.calls, &id),
                        Change::Extension(extension) => upsert(self.extensions, extension.id.clone(), extension),
                        Change::Queue(queue) => upsert(self.queues, queue.id.clone(), queue),
                        Change::Connector(health) => upsert(self.connectors, health.name.clone(), health),
                    }
                }
                self.seq.set_value(Some((seq, epoch)));
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
        map.update(|objects| {
            objects.remove(key);
        });
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
        map.update(|objects| objects.retain(|key, _| items.contains_key(key)));
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

        let skipped = Frame::Delta { seq: 8, changes: vec![] };
        assert_eq!(store.apply(skipped, 0), Err(Gap { expected: 7, received: 8 }));
        assert_eq!(store.seq(), Some(6), "a gap applies nothing");

        // A fresh snapshot drops what is gone and keeps what stays.
        store.apply(snapshot(9, vec![extension("101", Presence::Busy)]), 0).unwrap();
        assert_eq!(store.extensions.with_untracked(|map| map.len()), 1);
        assert_eq!(tile_101.get_untracked().presence, Presence::Busy);
    }
}
