//! The Netaxis Call Service connector (APIO on BroadWorks): call state by polling each user's
//! call list with details, diffed into leg statements; the call's details read where the list
//! says nothing of recording; and full call control (click-to-call, release, hold, reconnect,
//! blind and consultative transfer, the four recording controls).
//!
//! Polls go one at a time, spread over the interval, so they never pile up; a 429, a 5xx or a
//! lost connection backs every poll off (as long as `Retry-After` asks, when it does). A leg is
//! ended only by a list that was read whole and no longer shows it.

pub mod api;
pub mod mapping;
pub mod wire;

use super::{CommandError, Connector};
use crate::connectors::rest::RestError;
use crate::hub::{now_ms, Hub, HubError};
use crate::model::{Action, Command, ConnectorHealth, Event, EventKind, LegId, LegState, Recording, RecordingState};
use futures::future::BoxFuture;
use mapping::{Ids, Legs, User};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use wire::Modify;

/// What the Call Service lets us do from the desk: everything but answering, which BroadWorks
/// leaves to the phone.
pub const CAPABILITIES: [Action; 11] = [
    Action::Dial,
    Action::Hangup,
    Action::Hold,
    Action::Resume,
    Action::BlindTransfer,
    Action::Consult,
    Action::CompleteTransfer,
    Action::RecordStart,
    Action::RecordPause,
    Action::RecordResume,
    Action::RecordStop,
];
/// Answered calls have their details read at least every this many rounds, so a recording
/// started from the phone shows within a few seconds.
const DETAILS_EVERY: u64 = 10;
/// Details read per user per poll at most, so one busy user cannot stall the round.
const DETAILS_PER_USER: usize = 4;
/// The longest backoff after failed polls.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// `[[provider]] kind = "netaxis"` keys.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetaxisConfig {
    /// The APIO host, e.g. `https://apio.example.com`; `/api/v1/tenants/...` is added.
    pub base_url: String,
    pub tenant: String,
    pub group: String,
    /// The users to watch: `"foouser"` (its extension is the same text) or
    /// `{ id = "foouser", extension = "101" }`.
    pub users: Vec<UserEntry>,
    /// A bearer token. Best given by environment.
    #[serde(default)]
    pub token: String,
    /// With `password` and `login_url`: a token is fetched from the login API instead.
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub login_url: String,
    /// How often each user's calls are read, milliseconds.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: u64,
}

/// One `users` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum UserEntry {
    Same(String),
    Bound(UserBinding),
}

/// A user bound to the extension it shows as.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserBinding {
    pub id: String,
    pub extension: String,
}

fn default_poll_interval() -> u64 {
    1_000
}

impl std::fmt::Debug for NetaxisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetaxisConfig")
            .field("base_url", &self.base_url)
            .field("tenant", &self.tenant)
            .field("group", &self.group)
            .field("users", &self.users)
            .field("token", &"(secret)")
            .field("username", &self.username)
            .field("password", &"(secret)")
            .field("login_url", &self.login_url)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .finish()
    }
}

impl NetaxisConfig {
    /// Reads and checks a provider table.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let config: NetaxisConfig = table.clone().try_into().map_err(|error: toml::de::Error| error.to_string())?;
        let is_url = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        if !is_url(&config.base_url) {
            return Err(format!("base_url {:?} must start with http:// or https://", config.base_url));
        }
        for (key, value) in [("tenant", &config.tenant), ("group", &config.group)] {
            if value.trim().is_empty() || value.contains('/') {
                return Err(format!("{key} must be the Netaxis {key} id, not empty and without '/'"));
            }
        }
        let users = config.users();
        if users.is_empty() {
            return Err("users must name at least one Netaxis user to watch".into());
        }
        let mut extensions = HashSet::new();
        let mut ids = HashSet::new();
        for user in &users {
            if !ids.insert(user.id.clone()) {
                return Err(format!("user {:?} is listed twice", user.id));
            }
            if user.id.trim().is_empty() || user.id.contains('/') || user.extension.trim().is_empty() {
                return Err(format!("user {:?}: ids and extensions must not be empty, ids without '/'", user.id));
            }
            if !extensions.insert(user.extension.clone()) {
                return Err(format!("extension {:?} is bound to two users", user.extension));
            }
        }
        let login = !config.username.is_empty() || !config.password.is_empty() || !config.login_url.is_empty();
        match (config.token.is_empty(), login) {
            (false, false) => {}
            (true, true) if !config.username.is_empty() && !config.password.is_empty() && is_url(&config.login_url) => {
            }
            (true, true) => return Err("username, password and login_url (an http(s) URL) go together".into()),
            (true, false) => return Err("give a token, or username, password and login_url".into()),
            (false, true) => return Err("give a token or a username and password, not both".into()),
        }
        if !(50..=60_000).contains(&config.poll_interval_ms) {
            return Err("poll_interval_ms must be between 50 and 60000".into());
        }
        Ok(config)
    }

    /// The users, each with its extension.
    pub fn users(&self) -> Vec<User> {
        self.users
            .iter()
            .map(|entry| match entry {
                UserEntry::Same(id) => User { id: id.trim().to_owned(), extension: id.trim().to_owned() },
                UserEntry::Bound(binding) => {
                    User { id: binding.id.trim().to_owned(), extension: binding.extension.trim().to_owned() }
                }
            })
            .collect()
    }
}

/// The running Netaxis connector.
pub struct NetaxisConnector {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    config: Arc<NetaxisConfig>,
    users: Vec<User>,
    hub: Hub,
    api: api::NetaxisApi,
    inner: Mutex<Inner>,
}

struct Inner {
    book: super::HealthBook,
    legs: Legs,
    /// Consultations started from the desk: the held call's leg, and the consultation's.
    consults: HashMap<LegId, LegId>,
    /// Whole rounds polled.
    rounds: u64,
}

/// Why a poll of one user did not give its list.
enum PollError {
    /// Worth waiting out: 429, 5xx, no answer.
    Busy(RestError),
    /// The provider said no (401, 403, 404...) or answered nonsense.
    Refused(String),
    Stopped,
}

impl NetaxisConnector {
    /// Starts polling on the wall clock until `shutdown`.
    pub async fn start(name: &str, config: NetaxisConfig, hub: Hub, shutdown: CancellationToken) -> Arc<Self> {
        let config = Arc::new(config);
        let users = config.users();
        let health = ConnectorHealth {
            name: name.to_owned(),
            provider_kind: "netaxis".into(),
            state: "starting".into(),
            capabilities: CAPABILITIES.to_vec(),
            ..ConnectorHealth::default()
        };
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            config: config.clone(),
            users: users.clone(),
            hub,
            api: api::NetaxisApi::new(config.clone(), super::http_client()),
            inner: Mutex::new(Inner {
                book: super::HealthBook::new(health),
                legs: Legs::default(),
                consults: HashMap::new(),
                rounds: 0,
            }),
        });
        let extensions: Vec<String> = users.iter().map(|user| user.extension.clone()).collect();
        super::announce_extensions(&shared.hub, name, &config.group, &extensions).await;
        shared.remember_live_legs().await;
        shared.publish_health().await;
        tokio::spawn(shared.clone().poll(shutdown));
        Arc::new(Self { shared })
    }

    pub fn health(&self) -> ConnectorHealth {
        self.shared.lock().book.health.clone()
    }

    /// Whole rounds polled so far: every user's list read (or tried) once per round.
    pub fn rounds(&self) -> u64 {
        self.shared.lock().rounds
    }

    /// The client, for the operations the desk has no button for (call retrieve, IMRN).
    pub fn api(&self) -> &api::NetaxisApi {
        &self.shared.api
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn ids(&self) -> Ids<'_> {
        Ids { provider: &self.name, account: &self.config.group }
    }

    async fn publish_health(&self) {
        let health = self.lock().book.publish();
        let _ = self.hub.report_health(health).await;
    }

    async fn set_state(&self, state: &str) {
        let health = {
            let mut inner = self.lock();
            if inner.book.health.state == state {
                return;
            }
            inner.book.health.state = state.to_owned();
            inner.book.publish()
        };
        let _ = self.hub.report_health(health).await;
    }

    async fn count_error(&self, text: String) {
        tracing::warn!(provider = %self.name, error = %text, "Netaxis");
        let health = self.lock().book.error(text);
        if let Some(health) = health {
            let _ = self.hub.report_health(health).await;
        }
    }

    /// After a restart: the live legs the journal holds, so the first poll ends what is gone
    /// and stamps what changed after what the journal says.
    async fn remember_live_legs(&self) {
        let Some(snapshot) = self.hub.live_state().await else { return };
        let users: HashSet<&str> = self.users.iter().map(|user| user.id.as_str()).collect();
        let prefix = format!("{}/{}/", self.name, self.config.group);
        let mut inner = self.lock();
        for leg in snapshot.calls.iter().flat_map(|call| &call.legs) {
            if leg.state.is_ended() || !leg.id.as_str().starts_with(&prefix) {
                continue;
            }
            if let Some((user, _)) = mapping::split_leg(leg.id.native()).filter(|(user, _)| users.contains(user)) {
                inner.legs.seed(user, leg);
            }
        }
    }

    /// Polls every user in turn, spread over the interval, until `shutdown`.
    async fn poll(self: Arc<Self>, shutdown: CancellationToken) {
        let interval = Duration::from_millis(self.config.poll_interval_ms);
        let spacing = interval / self.users.len().max(1) as u32;
        let mut ticks = tokio::time::interval(spacing);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = interval;
        loop {
            let mut all_read = true;
            for user in &self.users {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                match self.poll_user(user).await {
                    Ok(()) => backoff = interval,
                    Err(PollError::Stopped) => return,
                    Err(failure @ (PollError::Busy(_) | PollError::Refused(_))) => {
                        // Refusals back off too: a failing login is not retried at poll rate.
                        all_read = false;
                        let (text, asked) = match failure {
                            PollError::Busy(error) => {
                                let asked = match &error {
                                    RestError::Status { retry_after: Some(seconds), .. } => {
                                        Duration::from_secs(*seconds)
                                    }
                                    _ => Duration::ZERO,
                                };
                                (error.to_string(), asked)
                            }
                            PollError::Refused(reason) => (reason, Duration::ZERO),
                            PollError::Stopped => return,
                        };
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        let wait = backoff.max(asked.min(Duration::from_secs(300)));
                        let text = format!("user {}: {text}; polling again in {} ms", user.id, wait.as_millis());
                        self.count_error(text).await;
                        self.set_state("degraded").await;
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(wait) => {}
                        }
                        ticks.reset();
                    }
                }
            }
            let health = {
                let mut inner = self.lock();
                inner.rounds += 1;
                let live: HashSet<LegId> = inner.legs.iter().map(|(id, _)| id.clone()).collect();
                // The consultation may not be polled yet; the pair lasts as long as the held call.
                inner.consults.retain(|held, _| live.contains(held));
                inner.book.due()
            };
            if let Some(health) = health {
                let _ = self.hub.report_health(health).await;
            }
            if all_read {
                self.set_state("ready").await;
            }
        }
    }

    /// Reads one user's calls and states what changed.
    async fn poll_user(&self, user: &User) -> Result<(), PollError> {
        let listed = match self.api.list_with_details(&user.id).await {
            Ok(listed) => listed,
            Err(error @ (RestError::Transport(_) | RestError::Status { status: 429 | 500..=599, .. })) => {
                return Err(PollError::Busy(error))
            }
            Err(error) => return Err(PollError::Refused(error.to_string())),
        };
        let now = now_ms();
        let round = self.lock().rounds;
        let ids = self.ids();
        let mut seen = HashSet::new();
        let mut unreadable = HashSet::new();
        let mut budget = DETAILS_PER_USER;
        let mut statements = Vec::new();
        // An entry without its callId could be any of the user's legs: none is ended then.
        let mut anonymous = false;
        for (raw, entry) in listed {
            let entry = match entry {
                Ok(entry) => entry,
                Err(unusable) => {
                    match &unusable.call_id {
                        Some(call_id) => {
                            unreadable.insert(ids.leg(&user.id, call_id));
                        }
                        None => anonymous = true,
                    }
                    self.count_error(format!("user {}: {}", user.id, unusable.reason)).await;
                    continue;
                }
            };
            let mut report = match mapping::report(&ids, user, &entry) {
                Ok(report) => report,
                Err(reason) => {
                    unreadable.insert(ids.leg(&user.id, &entry.call_id));
                    self.count_error(format!("user {} call {}: {reason}", user.id, entry.call_id)).await;
                    continue;
                }
            };
            seen.insert(report.leg.clone());
            let (changed, due) = {
                let inner = self.lock();
                match inner.legs.get(&report.leg) {
                    Some(memory) => (
                        (memory.report.state, memory.report.held_by) != (report.state, report.held_by),
                        memory.details_due,
                    ),
                    None => (true, 0),
                }
            };
            let wants_details = report.recording.is_none()
                && (report.state.is_answered() || report.state == LegState::Detached)
                && (changed || due > 0 || round.is_multiple_of(DETAILS_EVERY));
            let mut fetched = false;
            if wants_details && budget > 0 {
                budget -= 1;
                match self.api.details(&user.id, &entry.call_id).await {
                    Ok(details) => {
                        // Details that say nothing of recording: not recording, with what that permits.
                        report.recording = Some(mapping::recording(&details).unwrap_or_else(|| Recording {
                            state: RecordingState::Off,
                            controls: mapping::controls_for(RecordingState::Off),
                        }));
                        fetched = true;
                    }
                    // Gone meanwhile: the next list says so.
                    Err(error) if error.status() == Some(404) => {}
                    Err(error) => {
                        self.count_error(format!("user {} call {} details: {error}", user.id, entry.call_id)).await
                    }
                }
            }
            let mut inner = self.lock();
            let leg = report.leg.clone();
            let made = inner.legs.observe(&user.id, &entry, report, now);
            if let Some(memory) = inner.legs.get_mut(&leg) {
                memory.details_due = if fetched {
                    memory.details_due.saturating_sub(due)
                } else {
                    memory.details_due.max(u32::from(wants_details))
                };
            }
            statements.extend(made.into_iter().map(|(report, at)| (report, at, raw.clone())));
        }
        let gone = if anonymous { Vec::new() } else { self.lock().legs.vanish(&user.id, &seen, &unreadable, now) };
        statements.extend(gone.into_iter().map(|(report, at)| (report, at, serde_json::Value::Null)));
        for (report, at, raw) in statements {
            let mut event = Event::new(&self.name, &self.config.group, at, EventKind::Leg(report));
            event.received_at = now;
            event.raw = raw;
            match self.hub.submit(event).await {
                Ok(_) => {
                    let health = self.lock().book.event(now);
                    if let Some(health) = health {
                        let _ = self.hub.report_health(health).await;
                    }
                }
                Err(HubError::Stopped) => return Err(PollError::Stopped),
                Err(HubError::Refused(reason)) => self.count_error(reason).await,
            }
        }
        Ok(())
    }

    fn user_of_extension(&self, command: &Command) -> Result<&User, CommandError> {
        let extension = command
            .extension
            .as_ref()
            .ok_or_else(|| CommandError::Refused("this needs the extension that places the call".into()))?;
        self.users.iter().find(|user| user.extension == extension.native()).ok_or_else(|| {
            CommandError::Refused(format!("extension {} is not a configured Netaxis user", extension.native()))
        })
    }

    /// The leg a command is about: the one named, or our one live leg of the named call (at
    /// the named extension, when given).
    fn target(&self, command: &Command) -> Result<(LegId, String, String), CommandError> {
        let inner = self.lock();
        let leg = match (&command.leg, &command.call) {
            (Some(leg), _) => leg.clone(),
            (None, Some(call)) => {
                let mut ours = inner.legs.iter().filter(|(_, memory)| {
                    &memory.report.call == call
                        && command.extension.as_ref().is_none_or(|e| memory.report.extension.as_ref() == Some(e))
                });
                match (ours.next(), ours.next()) {
                    (Some((leg, _)), None) => leg.clone(),
                    (None, _) => return Err(CommandError::Refused("there is no live call there".into())),
                    (Some(_), Some(_)) => {
                        return Err(CommandError::Refused("that call has more than one of our legs: say which".into()))
                    }
                }
            }
            (None, None) => return Err(CommandError::Refused("the command names no call".into())),
        };
        let Some((user, call_id)) = mapping::split_leg(leg.native()) else {
            return Err(CommandError::Refused(format!("{leg} is not a Netaxis leg")));
        };
        if leg.provider() != self.name || !self.users.iter().any(|known| known.id == user) {
            return Err(CommandError::Refused(format!("{leg} is not a leg of a configured Netaxis user")));
        }
        Ok((leg.clone(), user.to_owned(), call_id.to_owned()))
    }

    /// The held call and the consultation of a complete-transfer: as the desk started them, or
    /// else the user's one held call and one other.
    fn consultation(&self, leg: &LegId, user: &str) -> Result<(String, String), CommandError> {
        let inner = self.lock();
        let call_of = |leg: &LegId| mapping::split_leg(leg.native()).map(|(_, call)| call.to_owned());
        let pair = inner.consults.get(leg).map(|consult| (leg.clone(), consult.clone())).or_else(|| {
            inner
                .consults
                .iter()
                .find(|(_, consult)| *consult == leg)
                .map(|(held, consult)| (held.clone(), consult.clone()))
        });
        let pair = pair.or_else(|| {
            // Held by us, and one other call that is answered or ringing out: the consultation.
            let mine: Vec<(&LegId, &crate::model::LegReport)> = inner
                .legs
                .iter()
                .filter(|(_, memory)| memory.user == user)
                .map(|(id, memory)| (id, &memory.report))
                .collect();
            let held: Vec<&LegId> = mine
                .iter()
                .filter(|(_, report)| report.held_by == Some(crate::model::HeldBy::Local))
                .map(|(id, _)| *id)
                .collect();
            let others: Vec<&LegId> = mine
                .iter()
                .filter(|(_, report)| matches!(report.state, LegState::Active | LegState::RemoteRinging))
                .map(|(id, _)| *id)
                .collect();
            match (held.as_slice(), others.as_slice()) {
                ([held], [other]) => Some(((*held).clone(), (*other).clone())),
                _ => None,
            }
        });
        match pair.and_then(|(held, consult)| Some((call_of(&held)?, call_of(&consult)?))) {
            Some(pair) => Ok(pair),
            None => Err(CommandError::Refused("there is no consultation to complete on this extension".into())),
        }
    }

    /// The user's calls besides `leg`, each with the other party: what a `reconnect` of `leg`
    /// would release ("retrieve the specified held call and release all other calls", seed
    /// 004). As the last poll saw them; ordered, so the words are stable.
    fn other_calls(&self, user: &str, leg: &LegId) -> Vec<(LegId, String)> {
        let inner = self.lock();
        let mut others: Vec<(LegId, String)> = inner
            .legs
            .iter()
            .filter(|(id, memory)| memory.user == user && *id != leg)
            .map(|(id, memory)| (id.clone(), party_name(&memory.report.remote)))
            .collect();
        others.sort();
        others
    }

    fn mark_details_due(&self, leg: &LegId) {
        if let Some(memory) = self.lock().legs.get_mut(leg) {
            memory.details_due = memory.details_due.saturating_add(1);
        }
    }

    async fn control(self: Arc<Self>, command: Command) -> Result<String, CommandError> {
        let words = |error: RestError| match error {
            RestError::Status { status: 429, .. } => CommandError::Unreachable(format!("Netaxis is busy: {error}")),
            refused @ RestError::Status { status: 400..=499, .. } => {
                CommandError::Refused(format!("Netaxis refused: {refused}"))
            }
            other => CommandError::Unreachable(other.to_string()),
        };
        let number = || {
            command
                .number
                .as_deref()
                .map(str::trim)
                .filter(|number| !number.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| CommandError::Refused("this needs a number".into()))
        };
        match command.action {
            Action::Dial => {
                let user = self.user_of_extension(&command)?;
                let number = number()?;
                let created = self.api.dial(&user.id, &number).await.map_err(words)?;
                Ok(format!("calling {number} from {}: {}", user.extension, created.call_id))
            }
            Action::Answer => {
                Err(CommandError::Refused("Netaxis's Call Service cannot answer a call: answer it on the phone".into()))
            }
            Action::Hangup => {
                let (_, user, call_id) = self.target(&command)?;
                self.api.release(&user, &call_id).await.map_err(words)?;
                Ok("released".into())
            }
            Action::Consult => {
                let (leg, user, call_id) = self.target(&command)?;
                let number = number()?;
                let held_by_us = self.lock().legs.get(&leg).and_then(|memory| memory.report.held_by)
                    == Some(crate::model::HeldBy::Local);
                if !held_by_us {
                    self.api.modify(&user, &call_id, &Modify::Hold).await.map_err(words)?;
                }
                let created = match self.api.dial(&user, &number).await {
                    Ok(created) => created,
                    Err(error) if held_by_us => return Err(words(error)),
                    Err(error) => {
                        // Back to the caller rather than leaving them on hold, unless `reconnect`
                        // would also release the user's other calls: then the caller stays held.
                        let others = self.other_calls(&user, &leg);
                        if others.is_empty() {
                            let _ = self.api.modify(&user, &call_id, &Modify::Reconnect).await;
                            return Err(words(error));
                        }
                        let note = format!(
                            "the caller stays on hold, since resuming from here would hang up {}: resume it on \
                             the phone",
                            your_other_calls(&others)
                        );
                        return Err(noted(words(error), &note));
                    }
                };
                let consult = self.ids().leg(&user, &created.call_id);
                self.lock().consults.insert(leg, consult);
                Ok(format!("consulting {number}; the caller is on hold"))
            }
            Action::Resume => {
                let (leg, user, call_id) = self.target(&command)?;
                // `reconnect`, the Call Service's only way back to a held call, releases every
                // other call of the user: refused while there are any, but for the consultation the
                // desk started from this call, which going back to the caller is meant to end.
                let consultation = self.lock().consults.get(&leg).cloned();
                let (ended, kept): (Vec<_>, Vec<_>) = self
                    .other_calls(&user, &leg)
                    .into_iter()
                    .partition(|(other, _)| Some(other) == consultation.as_ref());
                if !kept.is_empty() {
                    return Err(CommandError::Refused(format!(
                        "resuming from here would hang up {}: Netaxis resumes a held call only by releasing \
                         all the user's other calls. Resume it on the phone, or end the other calls first",
                        your_other_calls(&kept)
                    )));
                }
                self.api.modify(&user, &call_id, &Modify::Reconnect).await.map_err(words)?;
                self.mark_details_due(&leg);
                Ok(match ended.first() {
                    Some((_, party)) => format!("resumed; the consultation with {party} was hung up"),
                    None => "resumed".into(),
                })
            }
            Action::CompleteTransfer => {
                let (leg, user, _) = self.target(&command)?;
                let (held, consult) = self.consultation(&leg, &user)?;
                let transfer = Modify::ConsultativeTransfer { transfer_call_id: consult };
                self.api.modify(&user, &held, &transfer).await.map_err(words)?;
                Ok("transferred".into())
            }
            action => {
                let (leg, user, call_id) = self.target(&command)?;
                let (modify, done) = match action {
                    Action::Hold => (Modify::Hold, "on hold"),
                    Action::BlindTransfer => (Modify::BlindTransfer { phone_number: number()? }, "transferred"),
                    Action::RecordStart => (Modify::StartRecording, "recording"),
                    Action::RecordPause => (Modify::PauseRecording, "recording paused"),
                    Action::RecordResume => (Modify::ResumeRecording, "recording resumed"),
                    _ => (Modify::StopRecording, "recording stopped"),
                };
                // Decided on the call's details as they are now, not as the last poll saw them,
                // and refused here only on the list Netaxis sent: without one, Netaxis decides.
                let details = match is_recording_action(action) {
                    true => self.api.details(&user, &call_id).await.ok(),
                    false => None,
                };
                if let Some((details, allowed)) =
                    details.as_ref().and_then(|details| Some((details, details.recording_controls.as_ref()?)))
                {
                    if !allowed.contains(&action) {
                        let state = mapping::recording(details).map_or(RecordingState::Off, |shown| shown.state);
                        let allowed: Vec<String> = allowed.iter().map(|a| action_name(*a)).collect();
                        return Err(CommandError::Refused(format!(
                            "Netaxis does not allow that on this call now (recording {state:?}; allowed: {})",
                            if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") }
                        )));
                    }
                }
                self.api.modify(&user, &call_id, &modify).await.map_err(words)?;
                self.mark_details_due(&leg);
                Ok(done.into())
            }
        }
    }
}

/// Who is on a call, for words to the user: the number, else the extension or the name.
fn party_name(party: &crate::model::Party) -> String {
    party
        .number
        .as_deref()
        .or(party.extension.as_deref())
        .or(party.name.as_deref())
        .map_or_else(|| "an unknown number".to_owned(), str::to_owned)
}

/// "your other call with +32..." or "your 2 other calls (with +32..., 102)".
fn your_other_calls(others: &[(LegId, String)]) -> String {
    let parties: Vec<&str> = others.iter().map(|(_, party)| party.as_str()).collect();
    match parties.as_slice() {
        [one] => format!("your other call with {one}"),
        many => format!("your {} other calls (with {})", many.len(), many.join(", ")),
    }
}

/// The same refusal with a note after the provider's words.
fn noted(error: CommandError, note: &str) -> CommandError {
    match error {
        CommandError::Refused(words) => CommandError::Refused(format!("{words}; {note}")),
        CommandError::Unreachable(words) => CommandError::Unreachable(format!("{words}; {note}")),
    }
}

/// An action as the commands API names it (`record_start`).
fn action_name(action: Action) -> String {
    serde_json::to_value(action).ok().and_then(|name| name.as_str().map(str::to_owned)).unwrap_or_default()
}

fn is_recording_action(action: Action) -> bool {
    matches!(action, Action::RecordStart | Action::RecordPause | Action::RecordResume | Action::RecordStop)
}

impl Connector for NetaxisConnector {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn capabilities(&self) -> &[Action] {
        &CAPABILITIES
    }

    fn control(&self, command: Command) -> BoxFuture<'static, Result<String, CommandError>> {
        Box::pin(self.shared.clone().control(command))
    }
}
