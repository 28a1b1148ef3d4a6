//! The `subscribe` long-poll loop: sequence continuity, resume, resync and reconcile, backoff.
//!
//! Each response's `seq` is the next request's `lastSequenceNumber` ("to guarantee that you
//! don't miss any events between calls to subscribe", as the seed says), and it is journaled
//! with the events that response brought: so a restart resumes from the last `seq` journaled
//! for this provider, and a call that rang and ended while Callboard was down reaches history
//! with its real end. An outage, however long, keeps the cursor too. Only with no journaled
//! `seq`, or when the PBX signals a reset (a `seq` below the one we asked with: it restarted
//! its numbering, or no longer knows ours), is the current state asked for with 0; channels we
//! hold as live that are missing from it ended while we were away, and are ended here (cause
//! unknown), so nothing stays stuck and nothing is counted twice.
//!
//! Every response to `lastSequenceNumber=0` is such a full statement, whatever the reason 0 was
//! asked (a resync, or a freshly restarted PBX that answered a resync with `seq` 0 and is asked
//! from 0 again): it is reconciled the same way, and a `Hungup` in it for a channel we do not
//! hold as live is history (recorded already, or never seen live), not news.

use super::mapping;
use super::wire::{self, Subscribe};
use super::{Channels, NoojeeConfig, ACCOUNT};
use crate::hub::{now_ms, Hub};
use crate::model::{CallId, ConnectorHealth, EndCause, Event, EventKind, Timestamp};
use crate::store::Store;
use rand::Rng;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The HTTP read timeout is the poll's own timeout plus this.
const READ_MARGIN: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const MIN_POLL_PERIOD: Duration = Duration::from_millis(100);
/// A poll that asked to wait but came back at once with nothing new (a server that does not
/// wait, or a freshly restarted PBX that answers `seq` 0 to everything) makes the next one wait
/// this long, doubling up to `QUIET_MAX`: such a server is not polled ten times a second, and
/// news still arrives within seconds.
const QUIET_FIRST: Duration = Duration::from_millis(500);
const QUIET_MAX: Duration = Duration::from_secs(5);
/// Channels remembered as ended, so that a late status for one is known to be stale.
const ENDED_KEEP: usize = 10_000;
/// A live channel nothing has been heard of for this long is forgotten (its `Hungup` was
/// missed): the same figure as the hub's `STALE_LIVE_MS` for talking legs (src/hub/mod.rs),
/// whose `close_stale` has ended such a leg on the board by then. Keep the two in step.
const LIVE_FORGET_MS: i64 = 12 * 3_600_000;
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
    /// The journal, for the `seq` a restart resumes from; `None` (the demo) starts from the
    /// PBX's current state.
    store: Option<Store>,
    time_zone: jiff::tz::TimeZone,
    health: ConnectorHealth,
    /// Live channels: uniqueCallId to what was last reported of them.
    live: HashMap<String, Reported>,
    /// Channels reported ended (or ended before we looked), the most recent ones.
    ended: Ended,
    reported: Instant,
}

/// What was last reported of a live channel.
#[derive(Debug, Clone, Copy)]
struct Reported {
    /// The time of its last event: event times only rise per channel.
    at: Timestamp,
    /// The highest [`mapping::rank`] reported for it: a status of a lower one is stale.
    rank: u8,
    /// When it was last mentioned by the PBX (our clock): one silent for [`LIVE_FORGET_MS`]
    /// is forgotten.
    heard: Timestamp,
}

/// The live channels silent for longer than [`LIVE_FORGET_MS`] at `now`: their end was missed,
/// and the hub has ended them as stale.
fn silent_channels(live: &HashMap<String, Reported>, now: Timestamp) -> Vec<String> {
    live.iter()
        .filter(|(_, seen)| now.saturating_sub(seen.heard) > LIVE_FORGET_MS)
        .map(|(channel, _)| channel.clone())
        .collect()
}

/// The channels most recently reported ended, oldest first: any status for one of them is
/// stale (a channel never comes back from `Hungup`, and a repeated `Hungup` is no news).
#[derive(Default)]
struct Ended {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Ended {
    fn contains(&self, channel: &str) -> bool {
        self.set.contains(channel)
    }

    fn remember(&mut self, channel: String) {
        if self.set.insert(channel.clone()) {
            self.order.push_back(channel);
        }
        while self.order.len() > ENDED_KEEP {
            let Some(oldest) = self.order.pop_front() else { break };
            self.set.remove(&oldest);
        }
    }
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
        store: Option<Store>,
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
            store,
            time_zone,
            health,
            live: HashMap::new(),
            ended: Ended::default(),
            reported,
        }
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        crate::connectors::announce_extensions(&self.hub, &self.name, ACCOUNT, &self.config.extensions).await;
        self.remember_live_channels().await;
        // The `lastSequenceNumber` of the next poll; `None` while the whole current state must
        // be asked for (with 0). Its own state, not `seq == 0`: a quiet, freshly restarted PBX
        // may well answer `"seq":0`, and that is a place to wait from (with the poll's timeout),
        // not a reason to resync; though every answer to 0 is read as the whole current state.
        let mut cursor: Option<u64> = self.resume_point().await;
        // The first poll of a run waits for nothing, a resume included: it catches up at once.
        let mut catching_up = true;
        let mut backoff = BACKOFF_FIRST;
        let mut quiet = QUIET_FIRST;
        // The next poll waits until this long after this instant: Noojee's minimum poll period
        // after any poll, longer after a poll that asked to wait and came back early without
        // moving its `seq`.
        let mut pace: Option<(Instant, Duration)> = None;
        loop {
            if let Some(wait) = pace.take().map(|(from, period)| period.saturating_sub(from.elapsed())) {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            let started = Instant::now();
            // Whatever comes of this poll, the next one starts no sooner than this.
            pace = Some((started, MIN_POLL_PERIOD));
            let resync = cursor.is_none();
            let asked = cursor.unwrap_or(0);
            // Asked with 0, for whatever reason, the answer is the whole current state.
            let full_state = asked == 0;
            let timeout = if resync || catching_up { 0 } else { self.config.poll_timeout_s };
            let poll = tokio::select! {
                _ = shutdown.cancelled() => return,
                poll = self.poll(asked, timeout) => poll,
            };
            match poll {
                Ok(response) if response.seq < asked => {
                    tracing::warn!(provider = %self.name, was = asked, now = response.seq, "Noojee restarted its sequence numbering (or no longer knows ours): resyncing");
                    cursor = None;
                }
                Ok(response) => {
                    backoff = BACKOFF_FIRST;
                    catching_up = false;
                    // A poll that asked to wait, came back early and did not move the `seq` made
                    // no progress, whatever its entries (a PBX at `seq` 0 answers every poll at
                    // once with the whole state): the next one waits, doubling.
                    let asked_to_wait = Duration::from_secs(u64::from(timeout));
                    let no_progress = response.seq == asked;
                    if timeout > 0 && no_progress && started.elapsed() < asked_to_wait / 2 {
                        pace = Some((started, quiet));
                        quiet = (quiet * 2).min(QUIET_MAX);
                    } else {
                        quiet = QUIET_FIRST;
                    }
                    cursor = Some(response.seq);
                    if self.absorb(response, full_state, resync, asked).await.is_err() {
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

    /// Where a restart picks up: the `seq` journaled last for this provider, so whatever the
    /// PBX reported while we were down is asked for and nothing is skipped. `None` (ask with 0
    /// for the current state) when none is journaled, when the last one journaled is 0 (a
    /// resync whose end was not journaled), or when the journal cannot be read.
    async fn resume_point(&self) -> Option<u64> {
        let store = self.store.as_ref()?;
        match store.last_provider_seq(&self.name).await {
            Ok(Some(seq)) if seq > 0 => {
                tracing::info!(provider = %self.name, seq, "resuming from the last journaled seq");
                Some(seq)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(provider = %self.name, %error, "cannot read the last journaled seq: asking for the current state");
                None
            }
        }
    }

    /// After a restart: the live channels today's journal holds, so what is heard of them next
    /// (resumed, or in a resync, which ends the ones no longer listed) keeps event times rising
    /// after the journal's and progress forward; and the ended ones, so a late status for one
    /// is known stale.
    async fn remember_live_channels(&mut self) {
        let Some(snapshot) = self.hub.live_state().await else { return };
        let prefix = format!("{}/{ACCOUNT}/", self.name);
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for leg in snapshot.calls.iter().flat_map(|call| &call.legs) {
            if !leg.id.as_str().starts_with(&prefix) {
                continue;
            }
            let channel = leg.id.native().to_owned();
            if leg.state.is_ended() {
                self.ended.remember(channel);
                continue;
            }
            // When it was last heard of is not in the snapshot: as if now, so it is forgotten
            // [`LIVE_FORGET_MS`] after this start at the latest.
            let reported = Reported { at: leg.state_since, rank: mapping::rank(leg.state), heard: now_ms() };
            self.live.insert(channel.clone(), reported);
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

    /// Turns a response to a poll that asked with `asked` into events for the hub; when it is
    /// the whole current state (`full_state`: asked with 0) and every entry was read, ends the
    /// channels it no longer lists. In a first look (`first_look`: a start or a resync after a
    /// reset), a `Hungup` of a channel we never held is history, not news. Fails only when the
    /// hub has stopped.
    ///
    /// Each event carries the `lastSequenceNumber` a restart may resume from once that event is
    /// journaled: the response's `seq` on its last event, `asked` on the others. So a crash
    /// between journaling two events of one response asks for that response again (events are
    /// full statements: a repeat changes nothing) rather than skipping the rest of it.
    async fn absorb(&mut self, response: Subscribe, full_state: bool, first_look: bool, asked: u64) -> Result<(), ()> {
        let received_at = now_ms();
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
        let mut stale = 0u64;
        for (extension, entry, raw) in &response.entries {
            if !self.config.extensions.iter().any(|monitored| monitored.trim() == extension) {
                unmonitored += 1;
                continue;
            }
            let channel = entry.call_data.unique_call_id.clone();
            listed.insert(channel.clone());
            let previous = self.live.get(&channel).copied();
            let state = mapping::leg_state(&entry.call_data.status);
            if state.is_ended() && previous.is_none() && (first_look || self.ended.contains(&channel)) {
                // A `Hungup` for a channel we do not hold as live, listed in a first look (a
                // start, or a resync after a reset), is history: recorded already, or ended
                // before we ever saw it live; not news now. Nor is one repeated for a channel
                // already ended. Later, a short call that rang and ended between two polls of a
                // PBX stuck at `seq` 0 is news, and is recorded.
                self.ended.remember(channel);
                continue;
            }
            // A channel never comes back from `Hungup`: any other status for one remembered as
            // ended is stale, an unreadable one included. A status behind what was already
            // reported of a live channel (a `Ringing` listed after its `Connected`, in one
            // response or the next) is stale too: the hub orders by time first, so passed on it
            // would put an answered call back to ringing. An unreadable status (rank 0) says
            // nothing of progress and is not behind a live one.
            let rank = mapping::rank(state);
            let behind = previous.is_some_and(|seen| rank > 0 && rank < seen.rank);
            if !state.is_ended() && (self.ended.contains(&channel) || behind) {
                stale += 1;
                continue;
            }
            // Event times only rise per channel; a connect time from the PBX is used when it
            // keeps that order, so answer times are the PBX's own.
            let floor = previous.map_or(i64::MIN, |seen| seen.at + 1);
            let started = (state == crate::model::LegState::Active)
                .then(|| mapping::start_time(&entry.call_data.call_start_time, &self.time_zone))
                .flatten()
                .filter(|at| *at <= received_at);
            let at = started.unwrap_or(received_at).max(floor);
            let mut event = mapping::event(&self.name, ACCOUNT, extension, entry, at);
            event.received_at = received_at;
            event.raw = raw.clone();
            events.push(event);
            let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if state.is_ended() {
                self.live.remove(&channel);
                channels.extension_of.remove(&channel);
                channels.unanswerable.remove(&channel);
                self.ended.remember(channel);
            } else {
                let rank = previous.map_or(rank, |seen| seen.rank.max(rank));
                self.live.insert(channel.clone(), Reported { at, rank, heard: received_at });
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
        if stale > 0 {
            tracing::debug!(provider = %self.name, stale, "late statuses behind what was already reported skipped");
        }
        // An entry that could not be read may be one of the live channels: nothing is ended then.
        if full_state && response.rejected.is_empty() {
            let gone: Vec<String> = self.live.keys().filter(|channel| !listed.contains(*channel)).cloned().collect();
            if !gone.is_empty() {
                tracing::info!(provider = %self.name, channels = gone.len(), "ended while we were away");
            }
            for channel in gone {
                let at = self.live.remove(&channel).map_or(received_at, |seen| (seen.at + 1).max(received_at));
                let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                channels.extension_of.remove(&channel);
                channels.unanswerable.remove(&channel);
                drop(channels);
                self.ended.remember(channel.clone());
                let kind = EventKind::CallEnded {
                    call: CallId::new(&self.name, ACCOUNT, &channel),
                    cause: EndCause::Unknown,
                    raw_cause: Some("not in the PBX's state after a resync".into()),
                };
                events.push(Event::new(&self.name, ACCOUNT, at, kind));
            }
        }
        // A channel whose `Hungup` was missed (and that no full state has listed since) would
        // stay live here forever: forgotten once silent as long as the hub lets a talking leg
        // be, so the map stays bounded. Not remembered as ended: it may yet be heard of.
        let silent = silent_channels(&self.live, received_at);
        if !silent.is_empty() {
            tracing::info!(provider = %self.name, channels = silent.len(), "live channels silent for 12 h forgotten");
            let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            for channel in silent {
                self.live.remove(&channel);
                channels.extension_of.remove(&channel);
                channels.unanswerable.remove(&channel);
            }
        }
        let last = events.len().checked_sub(1);
        for (index, event) in events.iter_mut().enumerate() {
            event.seq = Some(if Some(index) == last { response.seq } else { asked });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_channel_silent_as_long_as_the_hub_lets_a_talking_leg_be_is_forgotten() {
        let now: Timestamp = 1_800_000_000_000;
        let heard = |ago: i64| Reported { at: now - ago, rank: 2, heard: now - ago };
        let live: HashMap<String, Reported> = [
            ("talking".to_owned(), heard(60_000)),
            ("almost".to_owned(), heard(LIVE_FORGET_MS)),
            ("lost".to_owned(), heard(LIVE_FORGET_MS + 1)),
        ]
        .into_iter()
        .collect();
        assert_eq!(silent_channels(&live, now), vec!["lost".to_owned()]);
    }
}
