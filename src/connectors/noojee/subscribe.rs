//! The `subscribe` long-poll loop: sequence continuity, resync and reconcile, backoff.
//!
//! Each response's `seq` is the next request's `lastSequenceNumber`. The first request, and any
//! after an outage long enough that the PBX may have forgotten our place (or after the PBX
//! restarted its numbering), asks with 0 for the current state; channels we hold as live that
//! are missing from it ended while we were away, and are ended here (cause unknown), so nothing
//! stays stuck and nothing is counted twice.

use super::mapping;
use super::wire::{self, Subscribe};
use super::{Channels, NoojeeConfig, ACCOUNT};
use crate::hub::{now_ms, Hub};
use crate::model::{CallId, ConnectorHealth, EndCause, Event, EventKind, Timestamp};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Without a successful poll for this long, the PBX may have dropped our sequence: resync.
const RESYNC_AFTER: Duration = Duration::from_secs(60);
/// The HTTP read timeout is the poll's own timeout plus this.
const READ_MARGIN: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const MIN_POLL_PERIOD: Duration = Duration::from_millis(100);
/// Health goes to browsers at most this often while all is well.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// A body larger than this is refused unread.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

pub(super) struct Subscriber {
    name: String,
    config: Arc<NoojeeConfig>,
    client: reqwest::Client,
    channels: Arc<Mutex<Channels>>,
    hub: Hub,
    time_zone: jiff::tz::TimeZone,
    health: ConnectorHealth,
    /// Live channels: uniqueCallId to the time of their last event (event times only rise).
    live: HashMap<String, Timestamp>,
    reported: Instant,
    /// False until the first state arrives: channels that had already ended then are old news.
    synced_once: bool,
}

/// Why one poll failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("{0}")]
    Transport(String),
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error("the response is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
}

impl Subscriber {
    pub(super) fn new(
        name: &str,
        config: Arc<NoojeeConfig>,
        client: reqwest::Client,
        channels: Arc<Mutex<Channels>>,
        hub: Hub,
    ) -> Self {
        let time_zone = jiff::tz::TimeZone::get(&config.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let health = ConnectorHealth {
            name: name.to_owned(),
            provider_kind: "noojee".into(),
            state: "starting".into(),
            capabilities: super::CAPABILITIES.to_vec(),
            ..Default::default()
        };
        let reported = Instant::now();
        Self {
            name: name.to_owned(),
            config,
            client,
            channels,
            hub,
            time_zone,
            health,
            live: HashMap::new(),
            reported,
            synced_once: false,
        }
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        crate::connectors::announce_extensions(&self.hub, &self.name, ACCOUNT, &self.config.extensions).await;
        self.remember_live_channels().await;
        let mut last_seq = 0u64;
        let mut last_ok: Option<Instant> = None;
        let mut backoff = BACKOFF_FIRST;
        // When the last poll came back at once with nothing (or was a resync), the next waits
        // out Noojee's minimum poll period, so a PBX that answers at once is not hammered.
        let mut pace_from: Option<Instant> = None;
        loop {
            if let Some(wait) = pace_from.take().map(|at| MIN_POLL_PERIOD.saturating_sub(at.elapsed())) {
                tokio::time::sleep(wait).await;
            }
            let started = Instant::now();
            let resync = last_seq == 0 || last_ok.is_none_or(|at| at.elapsed() > RESYNC_AFTER);
            let asked = if resync { 0 } else { last_seq };
            let timeout = if resync { 0 } else { self.config.poll_timeout_s };
            let poll = tokio::select! {
                _ = shutdown.cancelled() => return,
                poll = self.poll(asked, timeout) => poll,
            };
            match poll {
                Ok(response) if !resync && response.seq < last_seq => {
                    tracing::warn!(provider = %self.name, was = last_seq, now = response.seq, "Noojee restarted its sequence numbering: resyncing");
                    last_seq = 0;
                }
                Ok(response) => {
                    backoff = BACKOFF_FIRST;
                    last_ok = Some(Instant::now());
                    last_seq = response.seq;
                    if resync || response.entries.is_empty() {
                        pace_from = Some(started);
                    }
                    if self.absorb(response, resync).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    self.health.errors += 1;
                    self.health.state = "degraded".into();
                    self.health.last_error = Some(error.to_string());
                    let _ = self.hub.report_health(self.health.clone()).await;
                    tracing::warn!(provider = %self.name, %error, "subscribe failed; retrying");
                    let jitter = rand::rng().random_range(0.5..1.5);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff.mul_f64(jitter)) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// After a restart: the live channels today's journal holds, so the first resync ends the
    /// ones that hung up while we were down (a `Hungup` for a channel we did not hold is skipped
    /// on a first sync) and keeps event times rising after the journal's.
    async fn remember_live_channels(&mut self) {
        let Some(snapshot) = self.hub.live_state().await else { return };
        let prefix = format!("{}/{ACCOUNT}/", self.name);
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for leg in snapshot.calls.iter().flat_map(|call| &call.legs) {
            if leg.state.is_ended() || !leg.id.as_str().starts_with(&prefix) {
                continue;
            }
            let channel = leg.id.native().to_owned();
            self.live.insert(channel.clone(), leg.state_since);
            if let Some(extension) = &leg.extension {
                channels.extension_of.insert(channel, extension.native().to_owned());
            }
        }
        if !self.live.is_empty() {
            tracing::info!(provider = %self.name, channels = self.live.len(), "live channels from today's journal");
        }
    }

    async fn poll(&self, last_seq: u64, timeout_s: u32) -> Result<Subscribe, PollError> {
        let extensions: Vec<&str> = self.config.extensions.iter().map(|e| e.trim()).collect();
        let query = [
            ("exten", extensions.join(",")),
            ("lastSequenceNumber", last_seq.to_string()),
            ("timeOut", timeout_s.to_string()),
            ("instanceId", "1".to_owned()),
            ("apiKey", self.config.api_key.clone()),
        ];
        let read_timeout = Duration::from_secs(u64::from(timeout_s)) + READ_MARGIN;
        let transport = |error: reqwest::Error| PollError::Transport(crate::connectors::transport_words(error));
        let mut response = self
            .client
            .post(self.config.url("subscribe"))
            .query(&query)
            .timeout(read_timeout)
            .send()
            .await
            .map_err(transport)?;
        if !response.status().is_success() {
            return Err(PollError::Status(response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(PollError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(wire::parse_subscribe(&String::from_utf8_lossy(&body))?)
    }

    /// Turns a response into events for the hub; on a resync, ends the channels it no longer
    /// lists. Fails only when the hub has stopped.
    async fn absorb(&mut self, response: Subscribe, resync: bool) -> Result<(), ()> {
        let received_at = now_ms();
        let first_sync = !self.synced_once;
        self.synced_once = true;
        if response.repaired {
            tracing::info!(provider = %self.name, "read a subscribe response without its Data envelope");
        }
        if let Some(first) = response.rejected.first() {
            self.health.errors += response.rejected.len() as u64;
            self.health.last_error = Some(first.clone());
            tracing::warn!(provider = %self.name, skipped = response.rejected.len(), first = %first, "subscribe entries skipped");
        }
        let mut events = Vec::with_capacity(response.entries.len());
        let mut listed = HashSet::new();
        let mut unmonitored = 0u64;
        for (extension, entry, raw) in &response.entries {
            if !self.config.extensions.iter().any(|monitored| monitored.trim() == extension) {
                unmonitored += 1;
                continue;
            }
            let channel = entry.call_data.unique_call_id.clone();
            listed.insert(channel.clone());
            let previous = self.live.get(&channel).copied();
            let state = mapping::leg_state(&entry.call_data.status);
            if first_sync && state.is_ended() && previous.is_none() {
                // Calls that ended before we ever looked: history elsewhere, not news now.
                continue;
            }
            // Event times only rise per channel; a connect time from the PBX is used when it
            // keeps that order, so answer times are the PBX's own.
            let floor = previous.map_or(i64::MIN, |at| at + 1);
            let started = (state == crate::model::LegState::Active)
                .then(|| mapping::start_time(&entry.call_data.call_start_time, &self.time_zone))
                .flatten()
                .filter(|at| *at <= received_at);
            let at = started.unwrap_or(received_at).max(floor);
            let mut event = mapping::event(&self.name, ACCOUNT, extension, entry, at);
            event.seq = Some(response.seq);
            event.received_at = received_at;
            event.raw = raw.clone();
            events.push(event);
            let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if state.is_ended() {
                self.live.remove(&channel);
                channels.extension_of.remove(&channel);
                channels.unanswerable.remove(&channel);
            } else {
                self.live.insert(channel.clone(), at);
                if entry.call_data.can_answer == Some(false) {
                    channels.unanswerable.insert(channel.clone());
                } else {
                    channels.unanswerable.remove(&channel);
                }
                channels.extension_of.insert(channel, extension.clone());
            }
        }
        if unmonitored > 0 {
            self.health.errors += unmonitored;
            self.health.last_error = Some(format!("{unmonitored} entries for extensions not configured"));
            tracing::warn!(provider = %self.name, unmonitored, "entries for extensions we do not monitor skipped");
        }
        if resync {
            let gone: Vec<String> = self.live.keys().filter(|channel| !listed.contains(*channel)).cloned().collect();
            if !gone.is_empty() {
                tracing::info!(provider = %self.name, channels = gone.len(), "ended while we were away");
            }
            for channel in gone {
                let at = self.live.remove(&channel).map_or(received_at, |at| (at + 1).max(received_at));
                let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                channels.extension_of.remove(&channel);
                channels.unanswerable.remove(&channel);
                let kind = EventKind::CallEnded {
                    call: CallId::new(&self.name, ACCOUNT, &channel),
                    cause: EndCause::Unknown,
                    raw_cause: Some("not in the PBX's state after a resync".into()),
                };
                events.push(Event::new(&self.name, ACCOUNT, at, kind));
            }
        }
        self.health.events += events.len() as u64;
        if !events.is_empty() {
            self.health.last_event_at = Some(received_at);
        }
        for event in events {
            self.hub.feed(event).await.map_err(|_| ())?;
        }
        if self.health.state != "ready" || self.reported.elapsed() >= HEALTH_EVERY {
            self.health.state = "ready".into();
            self.reported = Instant::now();
            self.hub.report_health(self.health.clone()).await.map_err(|_| ())?;
        }
        Ok(())
    }
}
