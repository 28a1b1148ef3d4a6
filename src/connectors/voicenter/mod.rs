//! The Voicenter Real Time API connector: socket.io events pushed by Voicenter's monitor
//! servers, turned into extensions, agent status, calls and queue waits.
//!
//! The login API gives a socket token and the monitor servers in priority order. The connector
//! joins one server with the token in the query and hears `loginSuccess`, `loginStatus` (queues
//! with their waiting calls) and `AllExtensionsStatus` (every extension with its calls), then
//! ExtensionEvent and QueueEvent as things happen. It keeps the link alive as the SDKs do: an
//! application `keepalive` every minute, a move to the next server after two minutes without a
//! word (or when the link closes), back to the primary after six minutes elsewhere, and a token
//! refresh just before the token expires (retried with a doubling wait when the login API
//! fails). Every (re)connection starts with a full statement, and the tracker ends what that no
//! longer lists, so nothing stays stuck across a failover. A user login, which Voicenter sends
//! no QueueEvent, asks for the statement again every [`USER_RESYNC_MS`], so its queues' waiting
//! callers come and go within that time.
//!
//! The Real Time API only reports: it has no call control, so this connector offers no buttons.

mod eio3;
mod handover;
pub mod link;
pub mod login;
pub mod mapping;
pub mod wire;

pub use eio3::{decode as decode_eio3, Open as Eio3Open, Packet as Eio3Packet};
pub use link::{Heard, Link, Protocol};

use super::{CommandError, Connector, HealthBook};
use crate::clock::Clock;
use crate::hub::Hub;
use crate::model::{Action, Command, ConnectorHealth, Timestamp};
use futures::future::BoxFuture;
use login::{Credentials, Session};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The account part of Voicenter ids: one connector is one Voicenter login.
pub const ACCOUNT: &str = "rt";
/// The public login API.
pub const DEFAULT_LOGIN_URL: &str = "https://loginapi.voicenter.co.il/monitorAPI";
/// An application `keepalive` this often, ms (both SDKs).
pub const KEEPALIVE_MS: Timestamp = 60_000;
/// Without any event for this long the server is taken for dead, ms (both SDKs).
pub const SILENCE_MS: Timestamp = 120_000;
/// On a server other than the primary for this long, try the primary again, ms (.NET SDK).
pub const PRIMARY_AFTER_MS: Timestamp = 6 * 60_000;
/// Refresh the token this long before it expires, ms (JS SDK), but never sooner than
/// [`REFRESH_FLOOR_MS`] from now.
pub const REFRESH_BEFORE_MS: Timestamp = 5_000;
const REFRESH_FLOOR_MS: Timestamp = 2_000;
/// After a failed refresh (and the login that follows it), the next try waits this long,
/// doubling with each failure up to [`REFRESH_RETRY_MAX_MS`] and back to this after a success:
/// a login API that is down is not sent the password every two seconds (wall clock, as the
/// token's expiry is).
pub const REFRESH_RETRY_FIRST_MS: Timestamp = REFRESH_FLOOR_MS;
pub const REFRESH_RETRY_MAX_MS: Timestamp = 5 * 60_000;
/// A user login is sent no QueueEvent (the seed: "If the login connection type is by user
/// credentials, this type of event will not be sent"), so who waits in its queues is known
/// from `loginStatus` alone: it asks for that again (`resync`) this often, and a caller who
/// left is off the board within this time (ms, on the connector's clock).
pub const USER_RESYNC_MS: Timestamp = 15_000;
/// After every server failed in a row, wait this long (doubling, on the connector's clock).
const BACKOFF_FIRST_MS: Timestamp = 1_000;
const BACKOFF_MAX_MS: Timestamp = 30_000;

/// `login_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginType {
    /// One user's extension and queues (email + pin).
    User,
    /// The whole account (username + password).
    Account,
    /// The whole account, by the token Voicenter provides.
    #[default]
    Token,
}

/// `[[provider]] kind = "voicenter"` keys.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VoicenterConfig {
    #[serde(default = "default_login_url")]
    pub login_url: String,
    #[serde(default)]
    pub login_type: LoginType,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub pin: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub token: String,
    /// `eio3` (Voicenter's servers) or `eio4`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Monitor servers to use with `token` directly, most preferred first, bypassing the
    /// login API.
    #[serde(default)]
    pub servers: Vec<String>,
}

fn default_login_url() -> String {
    DEFAULT_LOGIN_URL.into()
}

impl std::fmt::Debug for VoicenterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |value: &str| if value.is_empty() { "" } else { "(secret)" };
        f.debug_struct("VoicenterConfig")
            .field("login_url", &self.login_url)
            .field("login_type", &self.login_type)
            .field("email", &self.email)
            .field("pin", &secret(&self.pin))
            .field("username", &self.username)
            .field("password", &secret(&self.password))
            .field("token", &secret(&self.token))
            .field("protocol", &self.protocol)
            .field("servers", &self.servers)
            .finish()
    }
}

impl VoicenterConfig {
    /// Reads and checks a provider table.
    pub fn from_table(table: &toml::Table) -> Result<Self, String> {
        let config: VoicenterConfig = table.clone().try_into().map_err(|error: toml::de::Error| error.to_string())?;
        let is_url = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        if !is_url(&config.login_url) {
            return Err(format!("login_url {:?} must start with http:// or https://", config.login_url));
        }
        let given = |value: &str| !value.trim().is_empty();
        type Keys<'a> = &'a [(&'a str, &'a str)];
        let (needed, extra): (Keys, Keys) = match config.login_type {
            LoginType::User => (
                &[("email", &config.email), ("pin", &config.pin)],
                &[("username", &config.username), ("password", &config.password), ("token", &config.token)],
            ),
            LoginType::Account => (
                &[("username", &config.username), ("password", &config.password)],
                &[("email", &config.email), ("pin", &config.pin), ("token", &config.token)],
            ),
            LoginType::Token => (
                &[("token", &config.token)],
                &[
                    ("email", &config.email),
                    ("pin", &config.pin),
                    ("username", &config.username),
                    ("password", &config.password),
                ],
            ),
        };
        let kind = format!("{:?}", config.login_type).to_lowercase();
        if let Some((key, _)) = needed.iter().find(|(_, value)| !given(value)) {
            return Err(format!(
                "login_type {kind} needs {key} (it may come from CALLBOARD_PROVIDER_<NAME>_{})",
                key.to_uppercase()
            ));
        }
        if let Some((key, _)) = extra.iter().find(|(_, value)| given(value)) {
            return Err(format!("{key} is not used with login_type {kind}: give only that login's keys"));
        }
        if !config.servers.is_empty() {
            if config.login_type != LoginType::Token {
                return Err("servers bypass the login API, so they need login_type token (the socket token)".into());
            }
            if let Some(bad) = config.servers.iter().find(|server| !is_url(server)) {
                return Err(format!("server {bad:?} must start with http:// or https://"));
            }
        }
        Ok(config)
    }

    fn credentials(&self) -> Credentials {
        match self.login_type {
            LoginType::User => Credentials::User { email: self.email.clone(), pin: self.pin.clone() },
            LoginType::Account => {
                Credentials::Account { username: self.username.clone(), password: self.password.clone() }
            }
            LoginType::Token => Credentials::Token(self.token.clone()),
        }
    }
}

/// Counts of what the link did, for the health page's reader and for tests.
#[derive(Debug, Default)]
struct Counters {
    logins: AtomicU64,
    refreshes: AtomicU64,
    links_opened: AtomicU64,
    open_failures: AtomicU64,
    closed_by_server: AtomicU64,
    silent_failovers: AtomicU64,
    returns_to_primary: AtomicU64,
    keepalives_sent: AtomicU64,
    resyncs_sent: AtomicU64,
    server: AtomicUsize,
}

/// What the connector's link has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoicenterStats {
    pub logins: u64,
    pub refreshes: u64,
    pub links_opened: u64,
    pub open_failures: u64,
    /// Links that ended without Callboard asking: the server or the network closed them.
    pub closed_by_server: u64,
    /// Servers left because nothing was heard for two minutes.
    pub silent_failovers: u64,
    pub returns_to_primary: u64,
    pub keepalives_sent: u64,
    pub resyncs_sent: u64,
    /// The index (in priority order) of the server in use.
    pub server: usize,
}

/// The running Voicenter connector.
pub struct VoicenterConnector {
    name: String,
    counters: Arc<Counters>,
}

impl VoicenterConnector {
    /// Starts the connector on the wall clock; it runs until `shutdown`.
    pub async fn start(name: &str, config: VoicenterConfig, hub: Hub, shutdown: CancellationToken) -> Arc<Self> {
        Self::start_with_clock(name, config, hub, shutdown, Clock::wall()).await
    }

    /// Starts the connector with its keepalive, failover, primary and refresh schedules on
    /// `clock` (a faster one lets a test live through an hour in a minute).
    pub async fn start_with_clock(
        name: &str,
        config: VoicenterConfig,
        hub: Hub,
        shutdown: CancellationToken,
        clock: Clock,
    ) -> Arc<Self> {
        let counters = Arc::new(Counters::default());
        let health = ConnectorHealth {
            name: name.to_owned(),
            provider_kind: "voicenter".into(),
            state: "starting".into(),
            ..Default::default()
        };
        let runner = Runner {
            name: name.to_owned(),
            tracker: mapping::Tracker::new(name, ACCOUNT),
            config,
            client: super::http_client(),
            hub,
            clock,
            health: HealthBook::new(health),
            counters: counters.clone(),
            session: None,
            published: None,
            heard: false,
            stale: false,
            server: 0,
            refresh_retry: REFRESH_RETRY_FIRST_MS,
            refresh_not_before: 0,
        };
        tokio::spawn(runner.run(shutdown));
        Arc::new(Self { name: name.to_owned(), counters })
    }

    pub fn stats(&self) -> VoicenterStats {
        let c = &self.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        VoicenterStats {
            logins: get(&c.logins),
            refreshes: get(&c.refreshes),
            links_opened: get(&c.links_opened),
            open_failures: get(&c.open_failures),
            closed_by_server: get(&c.closed_by_server),
            silent_failovers: get(&c.silent_failovers),
            returns_to_primary: get(&c.returns_to_primary),
            keepalives_sent: get(&c.keepalives_sent),
            resyncs_sent: get(&c.resyncs_sent),
            server: c.server.load(Ordering::Relaxed),
        }
    }
}

impl Connector for VoicenterConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> &[Action] {
        &[]
    }

    fn control(&self, command: Command) -> BoxFuture<'static, Result<String, CommandError>> {
        let action = command.action;
        Box::pin(async move {
            Err(CommandError::Refused(format!("Voicenter's Real Time API only reports calls; it cannot {action:?}")))
        })
    }
}

/// Why a link was left.
enum Leave {
    /// Go on to the next server.
    Next,
    /// Log in again first (the token was refused).
    Relogin,
    Shutdown,
}

struct Runner {
    name: String,
    config: VoicenterConfig,
    client: reqwest::Client,
    hub: Hub,
    clock: Clock,
    tracker: mapping::Tracker,
    health: HealthBook,
    counters: Arc<Counters>,
    session: Option<Session>,
    /// Whether the link being served has given a full statement: only then does it count as a
    /// working link (a refusal or an instant drop does not reset the backoff).
    heard: bool,
    /// What browsers were last told, so counts that changed since are published within a second.
    published: Option<ConnectorHealth>,
    /// The session's token may no longer be good: refresh (or log in) before the next link.
    stale: bool,
    /// Index of the server to use next, in priority order.
    server: usize,
    /// How long to wait after the next failed refresh on a live link (doubles per failure).
    refresh_retry: Timestamp,
    /// No refresh on a live link before this (wall clock, ms): kept across links, so a new
    /// link does not retry a failing login API at once.
    refresh_not_before: Timestamp,
}

impl Runner {
    async fn run(mut self, shutdown: CancellationToken) {
        self.remember_live_legs().await;
        self.publish().await;
        let mut failed_in_a_row = 0usize;
        let mut backoff = BACKOFF_FIRST_MS;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let session = match self.session().await {
                Ok(session) => session,
                Err(error) => {
                    let refused = error.is_refusal();
                    self.fault(if refused { "down" } else { "degraded" }, format!("login: {error}")).await;
                    if !self.pause(&shutdown, &mut backoff).await {
                        return;
                    }
                    continue;
                }
            };
            let servers = session.servers.len().max(1);
            self.server %= servers;
            self.counters.server.store(self.server, Ordering::Relaxed);
            let server = session.servers[self.server].clone();
            let opened = tokio::select! {
                _ = shutdown.cancelled() => return,
                opened = Link::open(self.config.protocol, &server, &session.token) => opened,
            };
            match opened {
                Ok(link) => {
                    self.counters.links_opened.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(provider = %self.name, %server, "joined a Voicenter monitor server");
                    self.heard = false;
                    match self.serve(link, session, &shutdown).await {
                        Leave::Shutdown => return,
                        Leave::Relogin => self.stale = true,
                        Leave::Next => self.server += 1,
                    }
                    if self.heard {
                        failed_in_a_row = 0;
                        backoff = BACKOFF_FIRST_MS;
                    } else {
                        // A link that said nothing counts as a failed one.
                        failed_in_a_row += 1;
                    }
                }
                Err(error) => {
                    self.counters.open_failures.fetch_add(1, Ordering::Relaxed);
                    self.fault("degraded", format!("{server}: {error}")).await;
                    self.server += 1;
                    failed_in_a_row += 1;
                }
            }
            // Every server failed in a row: perhaps the token is the trouble; wait, then renew it.
            if failed_in_a_row >= servers {
                failed_in_a_row = 0;
                self.stale = true;
                if !self.pause(&shutdown, &mut backoff).await {
                    return;
                }
            }
        }
    }

    /// Waits out a backoff on the connector's clock; false on shutdown.
    async fn pause(&self, shutdown: &CancellationToken, backoff: &mut Timestamp) -> bool {
        let until = self.clock.now() + *backoff;
        *backoff = (*backoff * 2).min(BACKOFF_MAX_MS);
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = self.clock.sleep_until(until) => true,
        }
    }

    /// The session to connect with: configured servers and token, or the login API's, renewed
    /// when stale or about to expire.
    async fn session(&mut self) -> Result<Session, crate::connectors::rest::RestError> {
        if !self.config.servers.is_empty() {
            return Ok(Session {
                token: self.config.token.clone(),
                refresh_token: None,
                expires_at: None,
                servers: self.config.servers.clone(),
            });
        }
        // Token expiry is the login API's wall-clock time, whatever clock the schedules run on.
        let now = crate::hub::now_ms();
        let expiring = |session: &Session| session.expires_at.is_some_and(|at| at - REFRESH_BEFORE_MS <= now);
        match self.session.clone() {
            Some(session) if !self.stale && !expiring(&session) => Ok(session),
            Some(session) => {
                let renewed = match &session.refresh_token {
                    Some(refresh) => match self.renew(refresh).await {
                        Ok(session) => Ok(session),
                        Err(_) => self.login().await,
                    },
                    None => self.login().await,
                };
                self.keep(renewed)
            }
            None => {
                let session = self.login().await;
                self.keep(session)
            }
        }
    }

    fn keep(
        &mut self,
        session: Result<Session, crate::connectors::rest::RestError>,
    ) -> Result<Session, crate::connectors::rest::RestError> {
        let session = session?;
        if self.session.as_ref().is_none_or(|old| old.servers != session.servers) {
            self.server = 0;
        }
        self.session = Some(session.clone());
        self.stale = false;
        // A token in hand: the next failed refresh starts the backoff afresh.
        self.refresh_retry = REFRESH_RETRY_FIRST_MS;
        self.refresh_not_before = 0;
        Ok(session)
    }

    async fn login(&self) -> Result<Session, crate::connectors::rest::RestError> {
        self.counters.logins.fetch_add(1, Ordering::Relaxed);
        login::login(&self.client, &self.config.login_url, &self.config.credentials()).await
    }

    async fn renew(&self, refresh_token: &str) -> Result<Session, crate::connectors::rest::RestError> {
        self.counters.refreshes.fetch_add(1, Ordering::Relaxed);
        let renewed = login::refresh(&self.client, &self.config.login_url, refresh_token).await;
        if let Err(error) = &renewed {
            tracing::warn!(provider = %self.name, %error, "token refresh failed; logging in again");
        }
        renewed
    }

    /// Hears one link until it is to be left.
    async fn serve(&mut self, mut link: Link, mut session: Session, shutdown: &CancellationToken) -> Leave {
        let mut joined_at = self.clock.now();
        let mut last_heard = joined_at;
        // A refresh is never due sooner than this (wall clock), so a failing one is not hammered:
        // two seconds on a new link, and after a failure the backoff (`refresh_retry`).
        let mut refresh_floor = (crate::hub::now_ms() + REFRESH_FLOOR_MS).max(self.refresh_not_before);
        let mut next_keepalive = joined_at + KEEPALIVE_MS;
        // Only a user login needs to ask for its state again (see USER_RESYNC_MS).
        let user_login = self.config.login_type == LoginType::User;
        let mut next_resync = joined_at + USER_RESYNC_MS;
        let mut heard_anything = false;
        // A second link being taken over (after a token refresh, or back on the primary).
        let mut handover: Option<handover::Handover> = None;
        // After a handover: what the new link will still say that the old one already gave.
        let mut skip: std::collections::VecDeque<(String, Value)> = std::collections::VecDeque::new();
        let mut handover_tick = tokio::time::interval(std::time::Duration::from_millis(250));
        handover_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut health_tick = tokio::time::interval(std::time::Duration::from_secs(1));
        health_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let servers = session.servers.len().max(1);
            let on_primary = self.server.is_multiple_of(servers);
            // On the wall clock, as the login API's expiry is.
            let refresh_in = session.expires_at.map(|at| {
                let due = (at - REFRESH_BEFORE_MS).max(refresh_floor);
                std::time::Duration::from_millis((due - crate::hub::now_ms()).max(0) as u64)
            });
            let primary_at = (!on_primary).then_some(joined_at + PRIMARY_AFTER_MS);
            tokio::select! {
                _ = shutdown.cancelled() => {
                    link.close().await;
                    return Leave::Shutdown;
                }
                heard = link.next() => match heard {
                    Heard::Joined => {}
                    Heard::Event { name, payload } => {
                        last_heard = self.clock.now();
                        heard_anything = true;
                        if skip.front().is_some_and(|(first, first_payload)| *first == name && *first_payload == payload) {
                            skip.pop_front();
                            continue;
                        }
                        let aligned = handover.as_mut().is_some_and(|taking| taking.old_heard(&name, &payload));
                        if let Some(leave) = self.take(&link, &name, payload).await {
                            link.close().await;
                            return leave;
                        }
                        if aligned {
                            if let Some(taking) = handover.take() {
                                if let Some(leave) = self.finish(&mut link, taking.aligned(), &mut skip).await {
                                    return leave;
                                }
                            }
                        }
                    }
                    Heard::Unreadable(problem) => self.error(format!("an unreadable packet: {problem}")).await,
                    Heard::Closed(why) => {
                        self.counters.closed_by_server.fetch_add(1, Ordering::Relaxed);
                        if let Some(taking) = handover.take() {
                            // The new link is already up: it carries on from its statement.
                            tracing::info!(provider = %self.name, %why, "the old link closed during a handover");
                            if let Some(leave) = self.finish(&mut link, taking.restated(), &mut skip).await {
                                return leave;
                            }
                            last_heard = self.clock.now();
                            continue;
                        }
                        self.fault("degraded", format!("link closed: {why}")).await;
                        // Closed before a word: the token is the likeliest reason.
                        return if heard_anything { Leave::Next } else { Leave::Relogin };
                    }
                },
                heard = async {
                    match handover.as_mut() {
                        Some(taking) => taking.fresh.next().await,
                        None => std::future::pending().await,
                    }
                }, if handover.is_some() => {
                    match heard {
                        Heard::Event { name, payload } => {
                            if let Some(taking) = handover.as_mut() {
                                taking.fresh_heard(name, payload);
                            }
                            if handover.as_ref().is_some_and(|taking| taking.in_step()) {
                                if let Some(taking) = handover.take() {
                                    if let Some(leave) = self.finish(&mut link, taking.settled(), &mut skip).await {
                                        return leave;
                                    }
                                    last_heard = self.clock.now();
                                }
                            }
                        }
                        Heard::Closed(why) => {
                            self.error(format!("the new link closed before taking over: {why}")).await;
                            handover = None;
                        }
                        Heard::Joined | Heard::Unreadable(_) => {}
                    }
                }
                _ = handover_tick.tick(), if handover.is_some() => {
                    if handover.as_ref().is_some_and(|taking| taking.stalled()) {
                        if let Some(taking) = handover.take() {
                            if taking.stated() {
                                // Never aligned (nothing in common heard): take over as it stands.
                                if let Some(leave) = self.finish(&mut link, taking.settled(), &mut skip).await {
                                    return leave;
                                }
                                last_heard = self.clock.now();
                            } else {
                                self.error("the new link gave no statement: kept the old one".into()).await;
                                taking.fresh.close().await;
                            }
                        }
                        continue;
                    }
                    let ready = handover.as_ref().is_some_and(|taking| taking.quiet() || taking.overflowed());
                    if ready {
                        if let Some(taking) = handover.take() {
                            let finish = if taking.overflowed() { taking.restated() } else { taking.settled() };
                            if let Some(leave) = self.finish(&mut link, finish, &mut skip).await {
                                return leave;
                            }
                            last_heard = self.clock.now();
                        }
                    }
                }
                _ = health_tick.tick() => self.publish_changes().await,
                _ = self.clock.sleep_until(next_keepalive) => {
                    next_keepalive = self.clock.now() + KEEPALIVE_MS;
                    self.counters.keepalives_sent.fetch_add(1, Ordering::Relaxed);
                    if let Err(error) = link.emit("keepalive", Value::from(session.token.clone())).await {
                        self.error(format!("keepalive: {error}")).await;
                    }
                }
                // Not during a handover: the answer comes on this link only, and the new link
                // gives its own statement.
                _ = self.clock.sleep_until(next_resync), if user_login && handover.is_none() => {
                    next_resync = self.clock.now() + USER_RESYNC_MS;
                    self.counters.resyncs_sent.fetch_add(1, Ordering::Relaxed);
                    if let Err(error) = link.emit("resync", json!({ "cache": false })).await {
                        self.error(format!("resync: {error}")).await;
                    }
                }
                _ = self.clock.sleep_until(last_heard + SILENCE_MS) => {
                    self.counters.silent_failovers.fetch_add(1, Ordering::Relaxed);
                    self.fault("degraded", format!("nothing heard for {} s: trying the next server", SILENCE_MS / 1000)).await;
                    link.close().await;
                    return Leave::Next;
                }
                _ = tokio::time::sleep(refresh_in.unwrap_or_default()), if refresh_in.is_some() && handover.is_none() => {
                    let tried_at = crate::hub::now_ms();
                    refresh_floor = tried_at + REFRESH_FLOOR_MS;
                    // Renew, then move to a link on the new token before letting go of the old.
                    let renewed = match session.refresh_token.clone() {
                        Some(refresh) => match self.renew(&refresh).await {
                            Ok(renewed) => Ok(renewed),
                            Err(_) => self.login().await,
                        },
                        None => self.login().await,
                    };
                    match self.keep(renewed) {
                        Ok(renewed) => {
                            session = renewed;
                            let Some(server) = session.servers.get(self.server % session.servers.len().max(1)).cloned()
                            else {
                                self.error("the renewed session names no monitor server".into()).await;
                                continue;
                            };
                            match Link::open(self.config.protocol, &server, &session.token).await {
                                Ok(fresh) => {
                                    self.counters.links_opened.fetch_add(1, Ordering::Relaxed);
                                    handover = Some(handover::Handover::new(fresh));
                                }
                                Err(error) => self.error(format!("{server} with the renewed token: {error}")).await,
                            }
                        }
                        Err(error) => {
                            // Back off: the next try (refresh, then login with the password)
                            // waits twice as long as this one did, up to a few minutes.
                            refresh_floor = tried_at + self.refresh_retry;
                            self.refresh_not_before = refresh_floor;
                            self.refresh_retry = (self.refresh_retry * 2).min(REFRESH_RETRY_MAX_MS);
                            self.error(format!(
                                "token refresh: {error} (next try in {} s)",
                                (refresh_floor - tried_at) / 1000
                            ))
                            .await;
                        }
                    }
                }
                _ = async { self.clock.sleep_until(primary_at.unwrap_or_default()).await }, if primary_at.is_some() && handover.is_none() => {
                    let primary = session.servers[0].clone();
                    match Link::open(self.config.protocol, &primary, &session.token).await {
                        Ok(fresh) => {
                            self.counters.links_opened.fetch_add(1, Ordering::Relaxed);
                            self.counters.returns_to_primary.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(provider = %self.name, server = %primary, "back on the primary monitor server");
                            handover = Some(handover::Handover::new(fresh));
                            self.server = 0;
                            self.counters.server.store(0, Ordering::Relaxed);
                        }
                        Err(error) => {
                            self.counters.open_failures.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(provider = %self.name, %error, "the primary monitor server is still away");
                        }
                    }
                    joined_at = self.clock.now();
                }
            }
        }
    }

    /// Lets go of the old link for the new one, taking in what the new one heard that the old
    /// one did not.
    async fn finish(
        &mut self,
        link: &mut Link,
        finish: handover::Finish,
        skip: &mut std::collections::VecDeque<(String, Value)>,
    ) -> Option<Leave> {
        std::mem::replace(link, finish.link).close().await;
        *skip = finish.skip;
        for (name, payload) in finish.replay {
            if let Some(leave) = self.take(link, &name, payload).await {
                return Some(leave);
            }
        }
        None
    }

    /// Takes in one event; says when the link is to be left.
    async fn take(&mut self, link: &Link, name: &str, payload: Value) -> Option<Leave> {
        // The connector's clock: the wall clock in service, the simulation's in accelerated tests.
        let now = self.clock.now();
        let message = match wire::parse(name, &payload) {
            Ok(message) => message,
            Err(error) => {
                self.error(error.to_string()).await;
                return None;
            }
        };
        match &message {
            wire::Message::Updated(what) => {
                tracing::info!(provider = %self.name, %what, "monitored set changed: resyncing");
                self.counters.resyncs_sent.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = link.emit("resync", json!({ "cache": false })).await {
                    self.error(format!("resync: {error}")).await;
                }
                return None;
            }
            wire::Message::KeepaliveResponse { ok: false } => {
                self.fault("degraded", "keepalive refused: reconnecting".into()).await;
                return Some(Leave::Next);
            }
            wire::Message::LoginRefused(words) => {
                self.fault("degraded", words.clone()).await;
                return Some(Leave::Relogin);
            }
            wire::Message::LoginStatus { .. } | wire::Message::AllExtensions { .. }
                if self.health.health.state != "ready" =>
            {
                self.health.health.state = "ready".into();
                self.health.health.last_error = None;
                self.publish().await;
            }
            wire::Message::LoginStatus { .. } | wire::Message::AllExtensions { .. } => self.heard = true,
            _ => {}
        }
        let events = self.tracker.take(&message, &payload, now);
        let count = events.len();
        for mut event in events {
            event.received_at = now;
            if self.hub.feed(event).await.is_err() {
                return Some(Leave::Shutdown);
            }
        }
        if count > 0 {
            if let Some(health) = self.health.event(now) {
                self.published = Some(health.clone());
                let _ = self.hub.report_health(health).await;
            }
        }
        None
    }

    async fn publish(&mut self) {
        let health = self.health.publish();
        self.published = Some(health.clone());
        let _ = self.hub.report_health(health).await;
    }

    /// Publishes counts that changed since browsers were last told.
    async fn publish_changes(&mut self) {
        if self.published.as_ref() != Some(&self.health.health) {
            self.publish().await;
        }
    }

    /// Counts and logs an error in the stream, which goes on.
    async fn error(&mut self, text: String) {
        tracing::warn!(provider = %self.name, error = %text, "Voicenter");
        if let Some(health) = self.health.error(text) {
            self.published = Some(health.clone());
            let _ = self.hub.report_health(health).await;
        }
    }

    /// Counts an error that changes the connector's state, and publishes it at once.
    async fn fault(&mut self, state: &str, text: String) {
        tracing::warn!(provider = %self.name, error = %text, "Voicenter link");
        self.health.health.errors += 1;
        self.health.health.last_error = Some(text);
        self.health.health.state = state.into();
        self.publish().await;
    }

    /// After a restart: the live legs the journal holds, so the first full statement ends what
    /// went away meanwhile.
    async fn remember_live_legs(&mut self) {
        let Some(snapshot) = self.hub.live_state().await else { return };
        let prefix = format!("{}/{ACCOUNT}/", self.name);
        for call in &snapshot.calls {
            for leg in call.legs.iter().filter(|leg| !leg.state.is_ended() && leg.id.as_str().starts_with(&prefix)) {
                self.tracker.remember(leg, call.origin.clone(), call.queue.clone());
            }
        }
        for queue in snapshot.queues.iter().filter(|queue| queue.id.as_str().starts_with(&prefix)) {
            for entry in &queue.waiting {
                self.tracker.remember_waiting(&queue.id, &entry.call, entry.joined_at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn config_is_checked_and_secrets_never_printed() {
        let config = VoicenterConfig::from_table(&table("token = \"sekrit-tok\"")).unwrap();
        assert_eq!((config.login_type, config.protocol), (LoginType::Token, Protocol::Eio3));
        assert_eq!(config.login_url, DEFAULT_LOGIN_URL);
        assert!(!format!("{config:?}").contains("sekrit"));
        let user = VoicenterConfig::from_table(&table(
            "login_type = \"user\"\nemail = \"a@b.c\"\npin = \"p1n-sekrit\"\nprotocol = \"eio4\"",
        ))
        .unwrap();
        assert_eq!(user.protocol, Protocol::Eio4);
        assert!(!format!("{user:?}").contains("sekrit"));
        let bad = |text: &str, words: &str| {
            let error = VoicenterConfig::from_table(&table(text)).unwrap_err();
            assert!(error.contains(words), "{error:?} should say {words:?}");
        };
        bad("login_type = \"account\"\nusername = \"u\"", "needs password");
        bad("login_type = \"user\"\nemail = \"e\"\npin = \"p\"\ntoken = \"t\"", "token is not used");
        bad("token = \"t\"\nprotocol = \"eio5\"", "protocol");
        bad("token = \"t\"\nlogin_url = \"loginapi\"", "login_url");
        bad(
            "login_type = \"account\"\nusername = \"u\"\npassword = \"p\"\nservers = [\"https://m\"]",
            "need login_type token",
        );
        bad("token = \"t\"\nservers = [\"monitor5\"]", "must start with http");
        bad("token = \"t\"\nport = 1", "unknown field");
    }
}
