//! Demo mode: with no provider configured, a simulated call center feeds the board, so the
//! first run shows a live wallboard and every button has something to act on.

use super::direct::{feed_hub, SimConnector, WallTime};
use super::faces::noojee::{NoojeeFace, BASE_PATH};
use super::faults::Faults;
use super::harness::hub_snapshot;
use super::pbx::Pbx;
use super::runner;
use super::scenario::{Scenario, ScenarioError};
use crate::clock::Clock;
use crate::connectors::noojee::{NoojeeConfig, NoojeeConnector};
use crate::connectors::Connector;
use crate::hub::{day_start, now_ms, Hub};
use crate::model::{EndCause, Event, EventKind, QueueOutcome, QueueSettings};
use crate::server::config::DemoConfig;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The provider name of the demo call center; its ids start with it.
pub const DEMO_PROVIDER: &str = "demo";
/// The account the demo's ids carry.
const DEMO_ACCOUNT: &str = "callcenter";
/// Event batches on their way to the hub; the simulation waits when the hub is behind.
const EVENT_BUFFER: usize = 256;

/// Why demo mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("demo face {0:?} is not available (faces: direct, noojee)")]
    UnknownFace(String),
    /// A provider face's wire carries the simulation's own times, which the connector reads as
    /// wall-clock times: faster, they would run ahead of the wall (ended calls never retire,
    /// timers count below zero), slower, behind the daily reset. Only the direct face maps them.
    #[error(
        "[demo] time_scale must be a positive number, and 1 with a provider face (its wire carries \
         the simulation's times), not {0}; accelerated runs through a face belong to `callboard sim --time-scale N`"
    )]
    TimeScale(f64),
    #[error("the hub did not answer: {0}")]
    Hub(String),
    #[error("cannot open the demo's loopback face: {0}")]
    Face(std::io::Error),
}

/// Starts the demo call center feeding `hub`, and returns its connector for commands.
pub async fn start(
    config: &DemoConfig,
    hub: &Hub,
    shutdown: CancellationToken,
) -> Result<Arc<dyn Connector>, DemoError> {
    if !["direct", "noojee"].contains(&config.face.as_str()) {
        return Err(DemoError::UnknownFace(config.face.clone()));
    }
    // Checked here, as the configuration's check of its own: the server reports it at start.
    let scale = config.time_scale;
    if !(scale.is_finite() && scale > 0.0) || (config.face != "direct" && scale != 1.0) {
        return Err(DemoError::TimeScale(scale));
    }
    let mut scenario =
        if config.scenario.is_empty() { Scenario::demo() } else { Scenario::load(Path::new(&config.scenario))? };
    scenario.seed = config.seed;
    scenario.validate()?;

    let earlier_run = forget_earlier_run(hub).await?;
    let now = now_ms();
    let settings = QueueSettings::default();
    let warmup = if earlier_run { 0 } else { i64::from(config.warmup_minutes) * 60_000 };
    let start = (now - warmup).max(day_start(now, &settings.reset_time, &settings.time_zone));
    let face = config.face.as_str();
    // Behind a face, the simulated PBX keeps ids of its own; the connector names what it sees.
    let provider = if face == "direct" { DEMO_PROVIDER } else { "sim" };
    let mut pbx = Pbx::new(scenario, provider, DEMO_ACCOUNT, start);
    pbx.advance_to(now);
    tracing::info!(seed = config.seed, warmup_s = (now - start) / 1000, face, "demo call center open");
    let extensions = pbx.extension_numbers();
    let (events, mut receiver) = mpsc::channel(EVENT_BUFFER);
    let clock = Clock::new(now, scale);
    let (sim, _task) = runner::spawn(pbx, clock, events, shutdown.clone());
    if face == "direct" {
        let wall = WallTime { start: now, scale };
        tokio::spawn(feed_hub(DEMO_PROVIDER.to_owned(), receiver, hub.clone(), Faults::none(), wall));
        return Ok(Arc::new(SimConnector::new(DEMO_PROVIDER, sim)));
    }
    let key = format!("{:032x}", rand::random::<u128>());
    let face = NoojeeFace::new(&key, (provider, DEMO_ACCOUNT), Faults::none(), Some(sim));
    let absorbing = face.clone();
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            absorbing.absorb(&batch);
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(DemoError::Face)?;
    let addr = listener.local_addr().map_err(DemoError::Face)?;
    let router = face.router();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let served = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await;
        if let Err(error) = served {
            tracing::error!(%error, "the demo's Noojee face stopped");
        }
    });
    tracing::info!(%addr, "demo runs through the simulated Noojee API on loopback");
    let config = NoojeeConfig {
        base_url: format!("http://{addr}{BASE_PATH}"),
        api_key: key,
        extensions,
        poll_timeout_s: 30,
        phone_type: "yealink".into(),
        time_zone: "UTC".into(),
        dial_technology: "SIP".into(),
    };
    // A fresh face each run: nothing to resume from its numbering.
    Ok(NoojeeConnector::start(DEMO_PROVIDER, config, hub.clone(), None, shutdown))
}

/// Ends what an earlier demo run left live (its calls and waiting callers died with it), as a
/// connector's resync would. Says whether an earlier run's figures are already on today's board.
async fn forget_earlier_run(hub: &Hub) -> Result<bool, DemoError> {
    let snapshot = hub_snapshot(hub).await.map_err(DemoError::Hub)?;
    let now = now_ms();
    let ours = |provider: &str| provider == DEMO_PROVIDER;
    let mut stale = Vec::new();
    for call in snapshot.calls.iter().filter(|call| ours(call.id.provider()) && call.ended_at.is_none()) {
        let kind = EventKind::CallEnded {
            call: call.id.clone(),
            cause: EndCause::Unknown,
            raw_cause: Some("the demo restarted".into()),
        };
        stale.push(Event::new(DEMO_PROVIDER, DEMO_ACCOUNT, now, kind));
    }
    for queue in snapshot.queues.iter().filter(|queue| ours(queue.id.provider())) {
        for entry in &queue.waiting {
            let kind = EventKind::QueueLeft {
                queue: queue.id.clone(),
                call: entry.call.clone(),
                outcome: QueueOutcome::Other,
            };
            stale.push(Event::new(DEMO_PROVIDER, DEMO_ACCOUNT, now, kind));
        }
    }
    if !stale.is_empty() {
        tracing::info!(events = stale.len(), "ending what the previous demo run left live");
    }
    for event in stale {
        hub.feed(event).await.map_err(|error| DemoError::Hub(error.to_string()))?;
    }
    Ok(snapshot.queues.iter().any(|queue| ours(queue.id.provider()) && queue.figures.offered > 0))
}
