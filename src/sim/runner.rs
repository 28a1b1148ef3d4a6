//! Runs a simulated PBX against the wall clock (or faster), hands its events on as they happen,
//! and takes call-control commands from whoever holds a handle.

use super::pbx::{Pbx, QueueTally};
use crate::clock::Clock;
use crate::model::{Command, Event, QueueId};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Commands waiting for the PBX; a caller beyond this waits its turn.
const REQUEST_CAPACITY: usize = 64;

enum Request {
    Command { command: Command, reply: oneshot::Sender<Result<String, String>> },
    Tallies { reply: oneshot::Sender<Vec<(QueueId, String, QueueTally)>> },
}

/// A cheap handle to a running simulation.
#[derive(Clone)]
pub struct SimHandle {
    requests: mpsc::Sender<Request>,
}

/// Why the simulation could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("the simulated PBX refused: {0}")]
    Refused(String),
    #[error("the simulation has stopped")]
    Stopped,
}

impl SimHandle {
    /// Has the simulated PBX carry out a command now; `Ok` holds what it did.
    pub async fn command(&self, command: Command) -> Result<String, SimError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Command { command, reply }).await.map_err(|_| SimError::Stopped)?;
        answer.await.map_err(|_| SimError::Stopped)?.map_err(SimError::Refused)
    }

    /// The scenario's own queue counts so far.
    pub async fn tallies(&self) -> Result<Vec<(QueueId, String, QueueTally)>, SimError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request::Tallies { reply }).await.map_err(|_| SimError::Stopped)?;
        answer.await.map_err(|_| SimError::Stopped)
    }
}

/// Starts the PBX on `clock`, sending each batch of events to `sink` as it happens (waiting when
/// the sink is full, so nothing is lost and nothing buffers without bound). Stops on `shutdown`
/// or when the sink closes, and hands the PBX back.
pub fn spawn(
    mut pbx: Pbx,
    clock: Clock,
    sink: mpsc::Sender<Vec<Event>>,
    shutdown: CancellationToken,
) -> (SimHandle, JoinHandle<Pbx>) {
    let (requests, mut incoming) = mpsc::channel(REQUEST_CAPACITY);
    let task = tokio::spawn(async move {
        let mut handles_alive = true;
        loop {
            pbx.advance_to(clock.now());
            let events = pbx.take_events();
            if !events.is_empty() && sink.send(events).await.is_err() {
                break;
            }
            let wake =
                pbx.next_due().map_or_else(|| Instant::now() + Duration::from_secs(3600), |at| clock.instant_of(at));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                request = incoming.recv(), if handles_alive => match request {
                    Some(Request::Command { command, reply }) => {
                        pbx.advance_to(clock.now());
                        let _ = reply.send(pbx.command(&command));
                    }
                    Some(Request::Tallies { reply }) => {
                        let _ = reply.send(pbx.tallies());
                    }
                    None => handles_alive = false,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        pbx
    });
    (SimHandle { requests }, task)
}
