//! The harness the connector tests stand on: run a scenario into a hub, then compare what the
//! hub shows with the ground truth, object by object, and print a readable diff when they differ.
//!
//! The comparison is of a [`Picture`]: one line per extension, live call, leg, queue and waiting
//! caller, keyed by the provider's native ids and saying only what a provider can convey (no
//! timestamps, no raw payloads), so a wire face and its connector can be held to it exactly.

use super::faults::Faults;
use super::pbx::Pbx;
use super::scenario::Scenario;
use crate::hub::{now_ms, Hub, HubSettings};
use crate::model::{Call, Extension, LiveState, Queue, QueueSettings, Snapshot, Timestamp};
use crate::store::{CallQuery, Store, StoreError, MAX_CALLS_PER_QUERY};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// At most this many differing lines are printed; the count says how many there were.
const DIFF_LINES: usize = 40;

/// What a comparison looks at, one line per object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picture(BTreeMap<String, String>);

impl Picture {
    /// The live picture: extensions, calls in progress with their legs, queues and their figures.
    pub fn live(extensions: &[Extension], calls: &[Call], queues: &[Queue]) -> Self {
        let mut lines = BTreeMap::new();
        for extension in extensions {
            let status = format!("{:?}", extension.agent_status).to_lowercase();
            lines.insert(
                format!("extension {}", extension.id.native()),
                format!("{}, {status}, name {:?}", extension.presence.as_str(), extension.name),
            );
        }
        for call in calls.iter().filter(|call| call.ended_at.is_none()) {
            let queue = call.queue.as_ref().map_or("-", |queue| queue.native());
            lines.insert(
                format!("call {}", call.id.native()),
                format!("{:?} {:?}, queue {queue}", call.direction, call.origin).to_lowercase(),
            );
            for leg in &call.legs {
                let at = leg.extension.as_ref().map_or("-", |extension| extension.native());
                let cause = leg.end_cause.map(|cause| format!(" ({cause:?})")).unwrap_or_default();
                let held = leg.held_by.map(|by| format!(" by {by:?}")).unwrap_or_default();
                lines.insert(
                    format!("call {} leg {}", call.id.native(), leg.id.native()),
                    format!("{:?}{held}{cause} at {at}", leg.state).to_lowercase(),
                );
            }
        }
        for queue in queues {
            let figures = &queue.figures;
            lines.insert(
                format!("queue {}", queue.id.native()),
                format!(
                    "{}: waiting {}, offered {}, answered {} ({} within SL), abandoned {} ({} short), other {}, \
                     members {}, agents {}/{}/{}/{}",
                    queue.name,
                    figures.waiting,
                    figures.offered,
                    figures.answered,
                    figures.answered_within_sl,
                    figures.abandoned,
                    figures.abandoned_short,
                    figures.other,
                    queue.members.len(),
                    figures.agents.available,
                    figures.agents.busy,
                    figures.agents.on_break,
                    figures.agents.logged_out,
                ),
            );
            for entry in &queue.waiting {
                lines.insert(
                    format!("queue {} waiting {}", queue.id.native(), entry.call.native()),
                    format!("caller {:?}", entry.caller.number),
                );
            }
        }
        Picture(lines)
    }

    /// The history picture: every ended call, how it ended and who was on it.
    pub fn history<'a>(calls: impl IntoIterator<Item = &'a Call>) -> Self {
        let mut lines = BTreeMap::new();
        for call in calls.into_iter().filter(|call| call.ended_at.is_some()) {
            let extensions: Vec<&str> =
                call.legs.iter().filter_map(|leg| leg.extension.as_ref().map(|e| e.native())).collect();
            let queue = call.queue.as_ref().map_or("-", |queue| queue.native());
            lines.insert(
                format!("history {}", call.id.native()),
                format!(
                    "{:?}, {}, queue {queue}, caller {:?}, extensions {extensions:?}",
                    call.end_cause.unwrap_or(crate::model::EndCause::Unknown),
                    if call.answered_at.is_some() { "answered" } else { "not answered" },
                    call.caller.number,
                )
                .to_lowercase(),
            );
        }
        Picture(lines)
    }

    /// A picture from ready-made lines, for faces that compare through their own lens.
    pub fn from_lines(lines: BTreeMap<String, String>) -> Self {
        Picture(lines)
    }

    pub fn of_snapshot(snapshot: &Snapshot) -> Self {
        Self::live(&snapshot.extensions, &snapshot.calls, &snapshot.queues)
    }

    pub fn of_state(state: &LiveState) -> Self {
        let (extensions, calls, queues) = state.views_all();
        Self::live(&extensions, &calls, &queues)
    }

    /// Whether the picture has a line for `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when `observed` equals this picture (the truth); otherwise the differing lines.
    pub fn compare(&self, observed: &Picture, observed_name: &str) -> Result<(), String> {
        let mut differences = Vec::new();
        for (key, truth) in &self.0 {
            match observed.0.get(key) {
                Some(seen) if seen == truth => {}
                Some(seen) => differences.push(format!("  {key}:\n    truth: {truth}\n    {observed_name}: {seen}")),
                None => differences.push(format!("  {key}:\n    truth: {truth}\n    {observed_name}: (missing)")),
            }
        }
        for (key, seen) in &observed.0 {
            if !self.0.contains_key(key) {
                differences.push(format!("  {key}:\n    truth: (missing)\n    {observed_name}: {seen}"));
            }
        }
        if differences.is_empty() {
            return Ok(());
        }
        let mut report = format!(
            "{} of {} lines differ between the ground truth and the {observed_name}:\n",
            differences.len(),
            self.0.len().max(observed.0.len())
        );
        for line in differences.iter().take(DIFF_LINES) {
            let _ = writeln!(report, "{line}");
        }
        if differences.len() > DIFF_LINES {
            let _ = writeln!(report, "  ... and {} more", differences.len() - DIFF_LINES);
        }
        Err(report)
    }
}

/// The state Callboard's router serves a test from: default configuration and Leptos options,
/// with `connectors` registered.
pub fn app_state(
    hub: &Hub,
    store: &Store,
    connectors: crate::connectors::Connectors,
    shutdown: &tokio_util::sync::CancellationToken,
) -> crate::server::AppState {
    crate::server::AppState {
        leptos_options: leptos::config::LeptosOptions::builder().output_name("callboard").build(),
        hub: hub.clone(),
        store: store.clone(),
        connectors: std::sync::Arc::new(connectors),
        config: std::sync::Arc::new(crate::server::config::Config::default()),
        shutdown: shutdown.clone(),
    }
}

/// Reads a hub's current snapshot.
pub async fn hub_snapshot(hub: &Hub) -> Result<Snapshot, String> {
    hub.live_state().await.ok_or_else(|| "the hub has stopped".to_owned())
}

/// Polls `done` every 25 ms until it holds, for at most 10 s; then fails the test naming `what`.
pub async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Reads every call of a store's history, page by page. Pages overlap at their boundary time
/// (calls can share a start time), so each page starts at the last one's oldest time,
/// inclusive, and repeats are dropped.
pub async fn all_history(store: &Store) -> Result<Vec<Call>, StoreError> {
    let mut calls: BTreeMap<String, Call> = BTreeMap::new();
    let mut until = None;
    loop {
        let page = store.calls(&CallQuery { until, limit: Some(MAX_CALLS_PER_QUERY), ..CallQuery::default() }).await?;
        let full = page.len() == MAX_CALLS_PER_QUERY as usize;
        let oldest = page.last().map(|call| call.started_at);
        let before = calls.len();
        for call in page {
            calls.insert(call.id.to_string(), call);
        }
        match oldest {
            Some(oldest) if full && calls.len() > before => until = Some(oldest),
            _ => break,
        }
    }
    Ok(calls.into_values().collect())
}

/// A scenario fed straight into a hub on a virtual clock, with the ground truth alongside: the
/// reference run, and the check that the model, hub and history keep up with the simulation.
pub struct DirectRun {
    pub pbx: Pbx,
    /// The ground truth as the model sees it; never retires calls, so it holds all history.
    truth: LiveState,
    pub hub: Hub,
    pub store: Store,
    faults: Arc<Faults>,
    shutdown: CancellationToken,
}

/// Simulated time carried per step: events of one step reach the hub as one batch (which the
/// faults may reorder within).
const STEP_MS: Timestamp = 5_000;

impl DirectRun {
    /// Opens the call center now (wall clock) with a fresh hub on the store at `db`.
    pub async fn start(scenario: Scenario, db: &Path, faults: Arc<Faults>) -> Result<Self, StoreError> {
        let store = Store::open(db).await?;
        let shutdown = CancellationToken::new();
        let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await?;
        let pbx = Pbx::new(scenario, "sim", "callcenter", now_ms());
        let truth = LiveState::new(QueueSettings::default(), BTreeMap::new());
        let mut run = Self { pbx, truth, hub, store, faults, shutdown };
        run.carry().await;
        Ok(run)
    }

    /// Runs the simulation `ms` further, in steps, carrying every step's events to the hub.
    pub async fn run_for(&mut self, ms: Timestamp) {
        let until = self.pbx.now() + ms;
        while self.pbx.now() < until {
            let step = (self.pbx.now() + STEP_MS).min(until);
            self.pbx.advance_to(step);
            self.carry().await;
        }
    }

    /// Carries the events produced so far (by time passing or by a command) to the hub.
    pub async fn carry(&mut self) {
        let events = self.pbx.take_events();
        self.carry_events(events).await;
    }

    /// Carries events already taken from the PBX to the truth and (through the faults) the hub.
    pub async fn carry_events(&mut self, events: Vec<crate::model::Event>) {
        for event in &events {
            self.truth.apply(event);
        }
        for event in self.faults.perturb(events) {
            if self.hub.feed(event).await.is_err() {
                return;
            }
        }
    }

    /// The ground truth's state, for figures a picture does not carry.
    pub fn truth(&self) -> &LiveState {
        &self.truth
    }

    pub fn truth_picture(&self) -> Picture {
        Picture::of_state(&self.truth)
    }

    pub async fn hub_picture(&self) -> Result<Picture, String> {
        Ok(Picture::of_snapshot(&hub_snapshot(&self.hub).await?))
    }

    /// Compares the hub's live state and the stored history with the ground truth, and the
    /// hub's queue figures with the scenario's own tally.
    pub async fn check(&self) -> Result<(), String> {
        let snapshot = hub_snapshot(&self.hub).await?;
        self.truth_picture().compare(&Picture::of_snapshot(&snapshot), "hub")?;
        let settings = QueueSettings::default();
        let mut tally_lines = BTreeMap::new();
        for (id, name, tally) in self.pbx.tallies() {
            let line = format!(
                "{name}: offered {}, answered {} ({} within SL), abandoned {} ({} short), other {}, waiting {}",
                tally.offered,
                tally.answered(),
                tally.answered_within(&settings),
                tally.abandoned(),
                tally.abandoned_short(&settings),
                tally.other,
                tally.waiting
            );
            tally_lines.insert(format!("figures {}", id.native()), line);
        }
        let mut hub_lines = BTreeMap::new();
        for queue in &snapshot.queues {
            let figures = &queue.figures;
            let line = format!(
                "{}: offered {}, answered {} ({} within SL), abandoned {} ({} short), other {}, waiting {}",
                queue.name,
                figures.offered,
                figures.answered,
                figures.answered_within_sl,
                figures.abandoned,
                figures.abandoned_short,
                figures.other,
                figures.waiting
            );
            hub_lines.insert(format!("figures {}", queue.id.native()), line);
        }
        Picture(tally_lines).compare(&Picture(hub_lines), "hub")?;
        // The snapshot above is taken after every event fed so far, so history is written too.
        let stored = all_history(&self.store).await.map_err(|error| error.to_string())?;
        let (_, truth_calls, _) = self.truth.views_all();
        Picture::history(&truth_calls).compare(&Picture::history(&stored), "history")
    }
}

impl Drop for DirectRun {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
