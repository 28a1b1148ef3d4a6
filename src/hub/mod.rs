//! The hub: the only writer of live state.
//!
//! One task owns the state. It takes events in batches, applies each through the model's
//! transition function, journals the applied ones in one transaction, and only then publishes
//! them as deltas numbered by `seq`. Subscribing happens inside the same task, so a new client's
//! snapshot and the first delta it receives can never overlap or leave a gap.

mod day;

pub use day::day_start;

use crate::model::{
    Change, ConnectorHealth, Event, EventKind, Frame, LiveState, Outcome, QueueSettings, Snapshot, Timestamp,
};
use crate::store::{JournalEntry, Store, StoreError};
use axum::extract::ws::Utf8Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Frames a websocket may fall behind before it is sent a fresh snapshot instead.
pub const BROADCAST_CAPACITY: usize = 4096;
/// Frames kept for `?since=` resumes; older gaps are filled with a snapshot.
const RESUME_FRAMES: usize = 8192;
/// Bytes kept for resumes, whichever limit is reached first.
const RESUME_BYTES: usize = 32 * 1024 * 1024;
/// Inputs waiting for the hub; producers wait (backpressure) rather than grow memory.
const INPUT_CAPACITY: usize = 16_384;
/// Events applied, journaled and published together: one transaction, one delta.
const MAX_BATCH: usize = 512;
/// Under load, a delta goes out at most this often, carrying every change since the last one;
/// a lone event after a quiet spell goes out at once. Keeps frames per client bounded: every
/// delta costs a write per websocket, so at 2,000 sockets the frame count, not the events,
/// sets the latency (the bench measured p99 about 100 ms at 5 ms, about 75 ms at 10 ms). Ten
/// milliseconds is still far below what anyone sees on a board.
const LINGER: Duration = Duration::from_millis(10);
/// A snapshot built this long ago is sent again as it is (a reconnecting wall of browsers costs
/// one build); an older one is built afresh even when nothing changed, because its
/// `server_time` sets every browser's clock: a quiet morning's stale copy would put an agent
/// who opens the desk at 08:00 half an hour behind on every timer.
const SNAPSHOT_REUSE: Duration = Duration::from_millis(250);
/// A leg still dialling or ringing this long after its provider last said anything is ended
/// (cause unknown): no PBX rings for ten minutes, so its end was lost.
const STALE_RINGING_MS: i64 = 10 * 60_000;
/// Likewise for a leg in any other live state, talking or held: no call lasts twelve hours
/// without a word from its provider.
const STALE_LIVE_MS: i64 = 12 * 3_600_000;
/// A caller listed as waiting this long after their provider last said anything of them has
/// left (outcome `other`): nobody waits four hours in a queue, so the leaving was lost.
const STALE_WAITING_MS: i64 = 4 * 3_600_000;
/// On start the journal is replayed from this long before the day began, then the day is
/// started: a call up across the reset, or a caller waiting across it, survives a restart.
const REPLAY_BEFORE_DAY_MS: i64 = 12 * 3_600_000;
/// Ended calls stay on the live board this long, then only in history.
const RETIRE_AFTER_MS: i64 = 60_000;

/// One published frame, serialized once and shared by every websocket.
#[derive(Debug, Clone)]
pub struct Published {
    pub seq: u64,
    pub text: Utf8Bytes,
}

/// What a websocket starts from: frames to send first (a snapshot, or the missed deltas), then
/// every frame published after them.
pub struct Subscription {
    pub first: Vec<Utf8Bytes>,
    pub last_seq: u64,
    pub frames: broadcast::Receiver<Published>,
}

/// Why the hub did not take an event.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("the hub has stopped")]
    Stopped,
    #[error("refused: {0}")]
    Refused(String),
}

/// What became of an event the hub took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Applied and journaled under this sequence number.
    Applied(u64),
    /// Nothing changed (a duplicate or late event); nothing to journal.
    Unchanged,
}

enum Input {
    Event { event: Box<Event>, reply: Option<oneshot::Sender<Result<Accepted, HubError>>> },
    Subscribe { resume: Option<Resume>, reply: oneshot::Sender<Subscription> },
    Snapshot { reply: oneshot::Sender<(u64, Utf8Bytes)> },
    Health { health: ConnectorHealth },
    Connectors { reply: oneshot::Sender<Vec<ConnectorHealth>> },
    QueueDay { queue: crate::model::QueueId, reply: oneshot::Sender<Option<crate::model::QueueDay>> },
    Call { id: crate::model::CallId, reply: oneshot::Sender<Option<crate::model::Call>> },
}

/// Where a reconnecting client left off: its last `seq`, and the epoch that numbered it when
/// the client knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    pub since: u64,
    pub epoch: Option<u64>,
}

/// Rebuilds live state from the journal. The day starts where it started live, between the
/// last event received before the reset and the first after it: what ended before it is
/// forgotten, what is still up is kept, and news after it finds the state it found live.
fn replay(state: &mut LiveState, journal: &[JournalEntry], day_start: Timestamp) {
    let (before, after) = journal.split_at(journal.partition_point(|entry| entry.event.received_at < day_start));
    for entry in before {
        state.apply(&entry.event);
    }
    state.start_day(day_start);
    for entry in after {
        state.apply(&entry.event);
    }
}

/// Deletes, beside the hub, the journal no replay reads any more (it would grow by every
/// event of every day, and a start would read past all of it).
fn forget_old_journal(store: &Store, day_start: Timestamp) {
    let store = store.clone();
    tokio::spawn(async move {
        match store.forget_journal_before(day_start - REPLAY_BEFORE_DAY_MS).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "journal rows older than any replay deleted"),
            Err(error) => tracing::warn!(%error, "could not delete old journal rows; trying again at the next day"),
        }
    });
}

/// A cheap handle to the hub task, shared by request handlers and connectors.
#[derive(Clone)]
pub struct Hub {
    inputs: mpsc::Sender<Input>,
    /// Cancelled once the task has journaled what it was handed and stopped.
    stopped: CancellationToken,
}

/// Settings of the figures day.
#[derive(Debug, Clone, Default)]
pub struct HubSettings {
    pub default_queue: QueueSettings,
    pub queues: BTreeMap<crate::model::QueueId, QueueSettings>,
    /// Who serves each queue, for providers that do not say (`[queues.by_id."<id>"] members`).
    pub members: BTreeMap<crate::model::QueueId, Vec<crate::model::ExtensionId>>,
}

impl Hub {
    /// Replays today's journal into a fresh state, then starts the hub task.
    pub async fn start(store: Store, settings: HubSettings, shutdown: CancellationToken) -> Result<Self, StoreError> {
        let now = now_ms();
        let start = day_start(now, &settings.default_queue.reset_time, &settings.default_queue.time_zone);
        let mut state = LiveState::new(settings.default_queue.clone(), settings.queues.clone())
            .with_members(settings.members.clone());
        let journal = store.journal_since(start - REPLAY_BEFORE_DAY_MS).await?;
        let replayed = journal.len();
        replay(&mut state, &journal, start);
        forget_old_journal(&store, start);
        state.retire_ended(now - RETIRE_AFTER_MS);
        let seq = store.last_seq().await?;
        tracing::info!(replayed, seq, "hub state rebuilt from today's journal");
        let (inputs, receiver) = mpsc::channel(INPUT_CAPACITY);
        let (frames, _) = broadcast::channel(BROADCAST_CAPACITY);
        let task = HubTask {
            state,
            seq,
            epoch: now.max(1) as u64,
            store,
            settings,
            frames,
            resume: VecDeque::new(),
            resume_bytes: 0,
            snapshot: None,
            connectors: BTreeMap::new(),
        };
        let stopped = CancellationToken::new();
        tokio::spawn(task.run(receiver, shutdown, stopped.clone()));
        Ok(Self { inputs, stopped })
    }

    /// Waits until the hub has stopped, after shutdown, with every event it was handed
    /// journaled: a server that exits before then loses what connectors already moved past.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }

    /// Hands an event to the hub without waiting: for connectors whose provider can resend.
    pub async fn feed(&self, event: Event) -> Result<(), HubError> {
        self.inputs.send(Input::Event { event: Box::new(event), reply: None }).await.map_err(|_| HubError::Stopped)
    }

    /// Applies an event and waits until it is journaled; webhooks answer 2xx only after this.
    pub async fn submit(&self, event: Event) -> Result<Accepted, HubError> {
        let (reply, answer) = oneshot::channel();
        self.inputs
            .send(Input::Event { event: Box::new(event), reply: Some(reply) })
            .await
            .map_err(|_| HubError::Stopped)?;
        answer.await.map_err(|_| HubError::Stopped)?
    }

    /// A snapshot (or the missed deltas after a resume point) and every later frame.
    pub async fn subscribe(&self, resume: Option<Resume>) -> Result<Subscription, HubError> {
        let (reply, answer) = oneshot::channel();
        self.inputs.send(Input::Subscribe { resume, reply }).await.map_err(|_| HubError::Stopped)?;
        answer.await.map_err(|_| HubError::Stopped)
    }

    /// The current snapshot frame as JSON text, and its `seq`.
    pub async fn snapshot(&self) -> Result<(u64, Utf8Bytes), HubError> {
        let (reply, answer) = oneshot::channel();
        self.inputs.send(Input::Snapshot { reply }).await.map_err(|_| HubError::Stopped)?;
        answer.await.map_err(|_| HubError::Stopped)
    }

    /// The live state as objects rather than text: what a restarted connector diffs what it
    /// hears next against. `None` when the hub has stopped.
    pub async fn live_state(&self) -> Option<Snapshot> {
        let (_, text) = self.snapshot().await.ok()?;
        match serde_json::from_str(text.as_str()).ok()? {
            Frame::Snapshot { snapshot, .. } => Some(snapshot),
            Frame::Delta { .. } | Frame::Pong { .. } => None,
        }
    }

    /// Reports a connector's health; published to browsers as a delta.
    pub async fn report_health(&self, health: ConnectorHealth) -> Result<(), HubError> {
        self.inputs.send(Input::Health { health }).await.map_err(|_| HubError::Stopped)
    }

    /// A queue's day so far (per hour, and who abandoned); `None` for an unknown queue.
    pub async fn queue_day(&self, queue: crate::model::QueueId) -> Result<Option<crate::model::QueueDay>, HubError> {
        let (reply, answer) = oneshot::channel();
        self.inputs.send(Input::QueueDay { queue, reply }).await.map_err(|_| HubError::Stopped)?;
        answer.await.map_err(|_| HubError::Stopped)
    }

    /// A call as the board shows it now; `None` when it is not on the board (unknown, or ended
    /// a while ago). What a command about a call is checked against.
    pub async fn call(&self, id: crate::model::CallId) -> Result<Option<crate::model::Call>, HubError> {
        let (reply, answer) = oneshot::channel();
        self.inputs.send(Input::Call { id, reply }).await.map_err(|_| HubError::Stopped)?;
        answer.await.map_err(|_| HubError::Stopped)
    }

    pub async fn connectors(&self) -> Result<Vec<ConnectorHealth>, HubError> {
        let (reply, answer) = oneshot::channel();
        self.inputs.send(Input::Connectors { reply }).await.map_err(|_| HubError::Stopped)?;
        answer.await.map_err(|_| HubError::Stopped)
    }
}

/// Which object a change is about: within one delta only the latest change per object is sent.
fn change_key(change: &Change) -> (u8, String) {
    match change {
        Change::Call(call) => (0, call.id.to_string()),
        Change::CallRemoved { id } => (0, id.to_string()),
        Change::Extension(extension) => (1, extension.id.to_string()),
        Change::Queue(queue) => (2, queue.id.to_string()),
        Change::Connector(health) => (3, health.name.clone()),
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as Timestamp)
        .unwrap_or(0)
}

struct HubTask {
    state: LiveState,
    seq: u64,
    /// This process's numbering; a restart starts a new epoch.
    epoch: u64,
    store: Store,
    settings: HubSettings,
    frames: broadcast::Sender<Published>,
    resume: VecDeque<Published>,
    resume_bytes: usize,
    /// The last snapshot built: its seq, when, and its text.
    snapshot: Option<(u64, Instant, Utf8Bytes)>,
    connectors: BTreeMap<String, ConnectorHealth>,
}

/// An applied event waiting for its journal write.
struct Pending {
    entry: JournalEntry,
    changes: Vec<Change>,
    reply: Option<oneshot::Sender<Result<Accepted, HubError>>>,
}

impl HubTask {
    async fn run(
        mut self,
        mut receiver: mpsc::Receiver<Input>,
        shutdown: CancellationToken,
        stopped: CancellationToken,
    ) {
        let _stopped = stopped.drop_guard();
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_flush = Instant::now() - LINGER;
        loop {
            let first = tokio::select! {
                input = receiver.recv() => match input {
                    Some(input) => input,
                    None => break,
                },
                _ = housekeeping.tick() => {
                    self.housekeeping().await;
                    continue;
                }
                () = shutdown.cancelled() => break,
            };
            let mut batch = vec![first];
            // Busy: gather until the linger since the last delta is over. Quiet: go at once.
            let until = tokio::time::Instant::from_std(last_flush + LINGER);
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(input) => batch.push(input),
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        match tokio::time::timeout_at(until, receiver.recv()).await {
                            Ok(Some(input)) => batch.push(input),
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
            }
            self.process(batch).await;
            last_flush = Instant::now();
        }
        // What was handed over before the end is journaled before the hub stops: a connector
        // that fed it may already have moved its cursor past it.
        receiver.close();
        let mut batch = Vec::new();
        while let Some(input) = receiver.recv().await {
            batch.push(input);
            if batch.len() == MAX_BATCH {
                self.process(std::mem::take(&mut batch)).await;
            }
        }
        self.process(batch).await;
        tracing::info!(seq = self.seq, "hub stopped");
    }

    async fn process(&mut self, batch: Vec<Input>) {
        let mut pending: Vec<Pending> = Vec::new();
        for input in batch {
            match input {
                Input::Event { event, reply } => self.apply(*event, reply, &mut pending),
                other => {
                    self.flush(&mut pending).await;
                    self.answer(other);
                }
            }
        }
        self.flush(&mut pending).await;
    }

    fn apply(
        &mut self,
        event: Event,
        reply: Option<oneshot::Sender<Result<Accepted, HubError>>>,
        pending: &mut Vec<Pending>,
    ) {
        let outcome = self.state.apply(&event);
        let health = self.connectors.entry(event.provider.clone()).or_insert_with(|| ConnectorHealth {
            name: event.provider.clone(),
            provider_kind: "unknown".into(),
            state: "ready".into(),
            ..ConnectorHealth::default()
        });
        health.events += 1;
        health.last_event_at = Some(event.received_at);
        match outcome {
            Outcome::Applied(changes) => {
                // Every event of one batch goes out in the same delta, numbered `seq + 1`.
                pending.push(Pending { entry: JournalEntry { seq: self.seq + 1, event }, changes, reply });
            }
            Outcome::Unchanged => {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(Accepted::Unchanged));
                }
            }
            Outcome::Refused(reason) => {
                tracing::warn!(provider = %event.provider, %reason, "event refused");
                health.errors += 1;
                health.last_error = Some(reason.clone());
                if let Some(reply) = reply {
                    let _ = reply.send(Err(HubError::Refused(reason)));
                }
            }
        }
    }

    /// Journals the pending events, then publishes them. A journal failure is retried: what
    /// was not journaled is neither published nor acknowledged.
    async fn flush(&mut self, pending: &mut Vec<Pending>) {
        if pending.is_empty() {
            return;
        }
        // One delta per batch, with the latest view of each object; history takes the calls.
        let mut entries = Vec::with_capacity(pending.len());
        let mut replies = Vec::with_capacity(pending.len());
        let mut merged = BTreeMap::new();
        for Pending { entry, changes, reply } in pending.drain(..) {
            entries.push(entry);
            for change in changes {
                merged.insert(change_key(&change), change);
            }
            replies.extend(reply);
        }
        let calls: Vec<_> = merged
            .values()
            .filter_map(|change| match change {
                Change::Call(call) => Some(call.clone()),
                _ => None,
            })
            .collect();
        let mut delay = Duration::from_millis(50);
        while let Err(error) = self.store.append(&entries, &calls).await {
            tracing::error!(%error, "journal write failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        let seq = self.publish(merged.into_values().collect());
        for reply in replies {
            let _ = reply.send(Ok(Accepted::Applied(seq)));
        }
    }

    /// Publishes one delta with the next `seq` and returns that `seq`.
    fn publish(&mut self, changes: Vec<Change>) -> u64 {
        if changes.is_empty() {
            return self.seq;
        }
        self.seq += 1;
        let seq = self.seq;
        let frame = Frame::Delta { seq, changes };
        let text: Utf8Bytes = serde_json::to_string(&frame).unwrap_or_default().into();
        let published = Published { seq, text };
        self.resume_bytes += published.text.len();
        self.resume.push_back(published.clone());
        while self.resume.len() > RESUME_FRAMES || self.resume_bytes > RESUME_BYTES {
            if let Some(old) = self.resume.pop_front() {
                self.resume_bytes -= old.text.len();
            }
        }
        self.snapshot = None;
        // No receivers is fine: nobody is watching.
        let _ = self.frames.send(published);
        seq
    }

    fn snapshot_text(&mut self) -> Utf8Bytes {
        if let Some((seq, built, text)) = &self.snapshot {
            if *seq == self.seq && built.elapsed() < SNAPSHOT_REUSE {
                return text.clone();
            }
        }
        let (extensions, calls, queues) = self.state.views_all();
        let snapshot = Snapshot {
            extensions,
            calls,
            queues,
            connectors: self.connectors.values().cloned().collect(),
            server_time: now_ms(),
            epoch: self.epoch,
        };
        let text: Utf8Bytes =
            serde_json::to_string(&Frame::Snapshot { seq: self.seq, snapshot }).unwrap_or_default().into();
        self.snapshot = Some((self.seq, Instant::now(), text.clone()));
        text
    }

    fn answer(&mut self, input: Input) {
        match input {
            Input::Event { .. } => {}
            Input::Subscribe { resume, reply } => {
                let frames = self.frames.subscribe();
                let oldest = self.resume.front().map(|frame| frame.seq);
                // A client that names another epoch numbered its seq against another process.
                let since = resume.filter(|r| r.epoch.is_none_or(|epoch| epoch == self.epoch)).map(|r| r.since);
                let first = match (since, oldest) {
                    (Some(since), _) if since == self.seq => Vec::new(),
                    (Some(since), Some(oldest)) if since < self.seq && since + 1 >= oldest => {
                        self.resume.iter().filter(|frame| frame.seq > since).map(|frame| frame.text.clone()).collect()
                    }
                    _ => vec![self.snapshot_text()],
                };
                let _ = reply.send(Subscription { first, last_seq: self.seq, frames });
            }
            Input::Snapshot { reply } => {
                let text = self.snapshot_text();
                let _ = reply.send((self.seq, text));
            }
            Input::Health { health } => {
                if self.connectors.get(&health.name) != Some(&health) {
                    self.connectors.insert(health.name.clone(), health.clone());
                    self.publish(vec![Change::Connector(health)]);
                }
            }
            Input::Connectors { reply } => {
                let _ = reply.send(self.connectors.values().cloned().collect());
            }
            Input::QueueDay { queue, reply } => {
                let day_start = self.state.day_start();
                let day = self.state.queue_entries(&queue).map(|(entries, settings)| {
                    crate::model::QueueDay::compute(queue, &entries, &settings, day_start, |at| {
                        day::local_hour(at, &settings.time_zone)
                    })
                });
                let _ = reply.send(day);
            }
            Input::Call { id, reply } => {
                let _ = reply.send(self.state.call(&id));
            }
        }
    }

    /// Time-driven changes: legs and queue entries whose end was lost are closed, ended calls
    /// leave the live board, and a new figures day starts.
    async fn housekeeping(&mut self) {
        let now = now_ms();
        self.close_stale(now).await;
        let queue = &self.settings.default_queue;
        let day_before = self.state.day_start();
        let mut changes = self.state.start_day(day_start(now, &queue.reset_time, &queue.time_zone));
        changes.extend(self.state.retire_ended(now - RETIRE_AFTER_MS));
        self.publish(changes);
        if self.state.day_start() > day_before {
            forget_old_journal(&self.store, self.state.day_start());
        }
    }

    /// Ends the legs, and closes the queue entries, no provider has said anything of for too
    /// long, as events of their provider that are journaled and published like any other (so
    /// history and a restart see them too), but without counting as news from that provider in
    /// its health.
    async fn close_stale(&mut self, now: Timestamp) {
        let legs = self.state.stale_legs(now, STALE_RINGING_MS, STALE_LIVE_MS);
        let entries = self.state.stale_entries(now, STALE_WAITING_MS);
        if legs.is_empty() && entries.is_empty() {
            return;
        }
        let mut events = Vec::new();
        for report in legs {
            tracing::warn!(leg = %report.leg, cause = ?report.raw_cause, "ending a leg its provider went silent about");
            let (provider, account) = (report.leg.provider().to_owned(), report.leg.account().to_owned());
            events.push(Event::new(&provider, &account, now, EventKind::Leg(report)));
        }
        for (queue, call) in entries {
            tracing::warn!(%queue, %call, "closing a queue entry its provider went silent about");
            let (provider, account) = (queue.provider().to_owned(), queue.account().to_owned());
            let kind = EventKind::QueueLeft { queue, call, outcome: crate::model::QueueOutcome::Other };
            events.push(Event::new(&provider, &account, now, kind));
        }
        let mut pending = Vec::new();
        for mut event in events {
            event.raw = serde_json::json!({ "callboard": "its provider went silent about it" });
            if let Outcome::Applied(changes) = self.state.apply(&event) {
                pending.push(Pending { entry: JournalEntry { seq: self.seq + 1, event }, changes, reply: None });
            }
        }
        self.flush(&mut pending).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CallId, Direction, EndCause, ExtensionId, LegId, LegReport, LegState, Origin, Party};

    fn leg(at: Timestamp, leg: &str, extension: &str, state: LegState) -> Event {
        let report = LegReport {
            leg: LegId::new("p", "a", leg),
            call: CallId::new("p", "a", "c"),
            extension: Some(ExtensionId::new("p", "a", extension)),
            state,
            held_by: None,
            direction: Direction::Inbound,
            origin: Origin::Normal,
            local: Party::default(),
            remote: Party { number: Some("+61400000000".into()), ..Party::default() },
            queue: None,
            end_cause: state.is_ended().then_some(EndCause::NoAnswer),
            raw_cause: None,
            raw_state: format!("{state:?}"),
            recording: None,
            revision: 0,
        };
        Event::new("p", "a", at, EventKind::Leg(report))
    }

    fn board(state: &LiveState) -> String {
        serde_json::to_string(&state.views_all()).unwrap_or_default()
    }

    #[test]
    fn a_replay_starts_the_day_where_it_started_live() {
        // A ring to 201 timed out just before the reset; the call rang on at 202 just after.
        let events = [
            leg(90_000, "l1", "201", LegState::Ringing),
            leg(99_500, "l1", "201", LegState::Ended),
            leg(101_000, "l2", "202", LegState::Ringing),
        ];
        let mut live = LiveState::default();
        live.apply(&events[0]);
        live.apply(&events[1]);
        live.start_day(100_000);
        live.apply(&events[2]);
        let journal: Vec<JournalEntry> =
            events.into_iter().enumerate().map(|(seq, event)| JournalEntry { seq: seq as u64 + 1, event }).collect();
        let mut replayed = LiveState::default();
        replay(&mut replayed, &journal, 100_000);
        assert_eq!(board(&replayed), board(&live));
        // Live, the reset forgot the first ring: the call is 202's alone.
        assert_eq!(replayed.views_all().1[0].legs.len(), 1);
    }
}
