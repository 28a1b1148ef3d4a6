//! The direct face: ground truth handed to the hub in-process, with no provider wire between.
//! Demo mode uses it until a configured face is chosen, and it is the reference the wire faces
//! are measured against (a connector is right when it gets the hub where this gets it).

use super::faults::Faults;
use super::runner::{SimError, SimHandle};
use crate::connectors::{CommandError, Connector};
use crate::hub::{now_ms, Hub};
use crate::model::{Action, Command, ConnectorHealth, Event, Timestamp};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Health goes to browsers at most this often; it is a figure, not an event stream.
const HEALTH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Forwards the simulation's events to the hub (through the message faults, when any are set:
/// duplicates and reordering only make sense here, as there is no resync to recover a drop),
/// and keeps the connector's health current. Returns when the simulation stops.
pub async fn feed_hub(
    name: String,
    mut events: mpsc::Receiver<Vec<Event>>,
    hub: Hub,
    faults: Arc<Faults>,
    wall: WallTime,
) {
    let mut health = ConnectorHealth {
        name,
        provider_kind: "demo".into(),
        state: "ready".into(),
        capabilities: Action::ALL.to_vec(),
        ..ConnectorHealth::default()
    };
    let _ = hub.report_health(health.clone()).await;
    let mut reported = std::time::Instant::now();
    while let Some(batch) = events.recv().await {
        let received_at = now_ms();
        let count = batch.len() as u64;
        let last_at = batch.iter().map(|event| wall.of(event.at)).max();
        for mut event in faults.perturb(batch) {
            event.at = wall.of(event.at);
            event.received_at = received_at;
            if hub.feed(event).await.is_err() {
                return;
            }
        }
        health.events += count;
        health.last_event_at = last_at.or(health.last_event_at);
        if reported.elapsed() >= HEALTH_EVERY {
            reported = std::time::Instant::now();
            let _ = hub.report_health(health.clone()).await;
        }
    }
    health.state = "down".into();
    let _ = hub.report_health(health).await;
}

/// Where a simulated moment falls on the wall clock the hub and browsers run on: the simulation
/// clock started at `start` and runs `scale` times as fast, so a moment after the start shows
/// at `start + (at − start) / scale` (an accelerated demo is a day that passes faster, not one
/// that runs ahead of the wall); the warm-up before the start stays where it was.
#[derive(Debug, Clone, Copy)]
pub struct WallTime {
    pub start: Timestamp,
    pub scale: f64,
}

impl WallTime {
    pub fn of(&self, at: Timestamp) -> Timestamp {
        if at <= self.start || self.scale == 1.0 {
            return at;
        }
        self.start.saturating_add(((at - self.start) as f64 / self.scale) as Timestamp)
    }
}

/// The direct face's connector: commands go straight to the simulated PBX.
pub struct SimConnector {
    name: String,
    sim: SimHandle,
}

impl SimConnector {
    pub fn new(name: &str, sim: SimHandle) -> Self {
        Self { name: name.to_owned(), sim }
    }
}

impl Connector for SimConnector {
    fn name(&self) -> &str {
        &self.name
    }

    /// The simulated PBX can do every action (and refuses what makes no sense).
    fn capabilities(&self) -> &[Action] {
        &Action::ALL
    }

    fn control(&self, command: Command) -> BoxFuture<'static, Result<String, CommandError>> {
        let sim = self.sim.clone();
        Box::pin(async move {
            sim.command(command).await.map_err(|error| match error {
                SimError::Refused(reason) => CommandError::Refused(reason),
                SimError::Stopped => CommandError::Unreachable("the simulated PBX has stopped".into()),
            })
        })
    }
}
