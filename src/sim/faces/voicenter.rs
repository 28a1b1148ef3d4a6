//! The simulator's Voicenter face: the Real Time API served from the ground truth.
//!
//! A login API hands out socket tokens and the monitor URLs; each monitor server is a
//! socket.io server (protocol v4 over Engine.IO 3 and v5 over Engine.IO 4 on one endpoint) that
//! checks the query `token`, sends `loginSuccess`, `loginStatus` and `AllExtensionsStatus`, then
//! pushes `ExtensionEvent` and `QueueEvent` as the simulated PBX moves.
//!
//! One simulated call is one Voicenter call with one `ivrid`; a leg of it is that call as seen at
//! one extension (`{ivrid}/{number}` to the connector). The wire is written here with
//! `serde_json::json!` from the seed's examples, never with the connector's types, so a
//! misreading on either side fails a test instead of cancelling out. An ivrid is the call's
//! first time (`YYYYMMDDhhmmss`, UTC), a six-digit counter and six hex digits of a hash of its
//! model id; `userID` is 7000000 plus the extension's position, `QueueID` 1000001 plus the
//! queue's.
//!
//! Two things the seed does not show are inferred: a held call's `callstatus` is `"Hold"` (HOLD
//! and UNHOLD exist as reasons, and a resync must be able to tell a held call from a talking
//! one), and a leg first reported already answered (the target of a completed transfer) gets a
//! NEWCALL and an ANSWER at the same time.

use crate::hub::now_ms;
use crate::model::{
    AgentStatus, BreakReason, Call, CallId, Direction, EndCause, Event, EventKind, Extension, LegId, LegReport,
    LegState, LiveState, Origin, Presence, Queue, QueueId, QueueOutcome, Timestamp,
};
use crate::sim::faults::{Fault, Faults};
use crate::sim::harness::Picture;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError, SocketIo};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tower::ServiceExt;

/// The domain of the simulated users' e-mail addresses: user `{extension}@` this logs in as that
/// extension's user.
pub const EMAIL_DOMAIN: &str = "sim.voicenter.test";
/// Minutes east of UTC, as Voicenter's Israeli servers give it.
const SERVER_TIME_OFFSET: i64 = 120;
/// Ended calls remembered (their ivrids and legs, for the pictures); older ones are forgotten.
const ENDED_KEEP: usize = 10_000;
/// Tokens and refresh tokens remembered; the oldest beyond this stop working.
const TOKENS_KEEP: usize = 10_000;
/// Packets one socket may have waiting to be written; a client that falls this far behind is
/// disconnected.
const SOCKET_BUFFER: usize = 65_536;
/// How often a disconnect blocked by a full socket buffer is tried again (every 20 ms).
const CLOSE_RETRIES: u32 = 500;
const FIRST_USER_ID: u64 = 7_000_000;
const FIRST_QUEUE_ID: u64 = 1_000_001;
/// `PersonID` of an account (or account token) login.
const ACCOUNT_PERSON_ID: u64 = 6_000_001;
/// `Client` of every login: the simulated organisation.
const CLIENT_ID: u64 = 100_001;

/// How the face logs clients in and keeps their sockets: the secrets it accepts and the
/// Engine.IO timing it advertises and enforces.
#[derive(Clone)]
pub struct VoicenterSetup {
    /// Engine.IO `pingInterval`: for EIO3 the client must ping this often.
    pub ping_interval: Duration,
    /// Engine.IO `pingTimeout`: a socket silent for interval + timeout is closed.
    pub ping_timeout: Duration,
    /// A socket token works this long after it is issued (wall clock); `TokenExpiry` says when.
    pub token_lifetime: Duration,
    /// The username `Login/Account` accepts.
    pub account_username: String,
    /// The password `Login/Account` accepts with it.
    pub account_password: String,
    /// What `Login/Token` accepts.
    pub account_token: String,
    /// The pin of every user: `Login/User` takes `{extension}@sim.voicenter.test` with it.
    pub user_pin: String,
}

/// Counters for tests, so they can tell what the connector did and what the face did to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoicenterStats {
    /// Per server: sockets that passed the token check and were sent the login snapshot.
    pub accepted: Vec<u64>,
    /// Connections turned away: a handshake to a killed server (503), a handshake without a
    /// live token (401), or a socket whose token died between handshake and connect.
    pub refused: u64,
    /// Accepted sockets the face closed: drop faults, kills, dropped connections, expired or
    /// revoked tokens, clients too far behind.
    pub disconnects: u64,
    /// `keepalive` messages received.
    pub keepalives: u64,
    /// `resync` messages received.
    pub resyncs: u64,
    /// Successful logins (user, account or token).
    pub logins: u64,
    /// Login and refresh requests refused (wrong credentials or refresh token, malformed body).
    pub login_failures: u64,
    /// Successful `RefreshIdentityToken` calls.
    pub refreshes: u64,
    /// Per server: the socket.io protocol of the last accepted socket, 4 (over Engine.IO 3) or 5
    /// (over Engine.IO 4).
    pub protocols: Vec<Option<u8>>,
    /// Per server: sockets connected now.
    pub live: Vec<usize>,
}

/// Whose events a login sees.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    Account,
    /// A user login: that extension only, its queues in `loginStatus`, no `QueueEvent`.
    User(String),
}

struct TokenRecord {
    scope: Scope,
    expiry_ms: Timestamp,
}

/// An accepted socket.
struct Client {
    socket: SocketRef,
    scope: Scope,
    expiry_ms: Timestamp,
}

/// One monitor server: its socket.io instance and the router serving it. Dropping every
/// connection replaces both (the old instance closes its transports), so new connections never
/// meet a half-closed server.
struct Server {
    io: SocketIo,
    inner: Router,
    generation: u64,
    dead: bool,
    clients: Vec<Client>,
    accepted: u64,
    protocol: Option<u8>,
}

struct ExtensionRecord {
    number: String,
    user_id: u64,
    name: String,
    online: Option<String>,
    status: AgentStatus,
    status_ms: Timestamp,
    last_call_s: i64,
    last_answered_s: i64,
    last_hangup_s: i64,
    /// Live legs here, oldest first: the `calls` array.
    live: Vec<LegId>,
}

/// One leg as the wire has shown it so far.
struct LegRecord {
    ivrid: String,
    number: String,
    click: bool,
    incoming: bool,
    /// How far the wire has taken it: plain calls 1 alerting, 2 answered; click-to-call 1 leg 1
    /// dialling, 2 leg 2 ringing, 3 leg 2 answered.
    phase: u8,
    /// `c2cdirection`: 0 for plain calls.
    c2c: u8,
    held: bool,
    started_s: i64,
    answered: bool,
    answered_s: i64,
    callstatus: &'static str,
    remote_name: String,
    remote_number: String,
    did: String,
    queue: Option<usize>,
    /// Set by its HANGUP: the end cause a connector makes of what the HANGUP said.
    ended: Option<EndCause>,
}

struct CallRecord {
    ivrid: String,
    legs: Vec<LegId>,
    ended: bool,
}

struct Waiting {
    call: CallId,
    ivrid: String,
    caller_id: String,
    caller_name: String,
    join_s: i64,
}

struct QueueRecord {
    queue_id: u64,
    name: String,
    members: Vec<String>,
    waiting: Vec<Waiting>,
}

/// Who an event goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Audience {
    Extension(String),
    /// Account logins only.
    Queues,
    Everyone,
}

impl Audience {
    fn reaches(&self, scope: &Scope) -> bool {
        match (self, scope) {
            (Audience::Everyone, _) | (_, Scope::Account) => true,
            (Audience::Queues, Scope::User(_)) => false,
            (Audience::Extension(number), Scope::User(user)) => number == user,
        }
    }
}

/// An event on its way to the sockets.
struct Outgoing {
    event: &'static str,
    payload: Value,
    audience: Audience,
}

struct FaceState {
    servers: Vec<Server>,
    urls: Vec<String>,
    tokens: HashMap<String, TokenRecord>,
    token_order: VecDeque<String>,
    refresh_tokens: HashMap<String, Scope>,
    refresh_order: VecDeque<String>,
    rng: ChaCha8Rng,
    extensions: HashMap<String, ExtensionRecord>,
    /// Extension numbers in the order first seen: `userID` order and `AllExtensionsStatus` order.
    extension_order: Vec<String>,
    legs: HashMap<LegId, LegRecord>,
    calls: HashMap<CallId, CallRecord>,
    /// Ended calls, oldest end first, for forgetting them in order.
    ended: VecDeque<CallId>,
    queues: Vec<QueueRecord>,
    queue_index: HashMap<QueueId, usize>,
    next_ivrid: u64,
    /// The latest event time absorbed: the face's `servertime`.
    clock_ms: Timestamp,
    refused: u64,
    disconnects: u64,
    keepalives: u64,
    resyncs: u64,
    logins: u64,
    login_failures: u64,
    refreshes: u64,
    /// The login API is down: every login and refresh is answered 500.
    login_outage: bool,
}

struct Inner {
    state: Mutex<FaceState>,
    setup: VoicenterSetup,
    faults: Arc<Faults>,
    /// The simulated PBX's provider name: events of any other are not this face's.
    provider: String,
}

/// The face; cheap to clone (handlers share it).
#[derive(Clone)]
pub struct VoicenterFace {
    inner: Arc<Inner>,
}

/// Axum state of one monitor server's router.
#[derive(Clone)]
struct MonitorRoute {
    face: VoicenterFace,
    index: usize,
}

impl VoicenterFace {
    /// A face for the simulated PBX named `pbx` (provider, account) with `servers` monitor
    /// servers, which drop sockets as `faults` says (only [`Fault::Drop`] applies).
    pub fn new(setup: VoicenterSetup, pbx: (&str, &str), servers: usize, faults: Arc<Faults>) -> Self {
        let seed = now_ms() as u64 ^ (std::process::id() as u64).rotate_left(32);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let servers = (0..servers)
                .map(|index| {
                    let (io, inner) = build_server(weak, &setup, index, 0);
                    Server { io, inner, generation: 0, dead: false, clients: Vec::new(), accepted: 0, protocol: None }
                })
                .collect();
            let state = FaceState {
                servers,
                urls: Vec::new(),
                tokens: HashMap::new(),
                token_order: VecDeque::new(),
                refresh_tokens: HashMap::new(),
                refresh_order: VecDeque::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                extensions: HashMap::new(),
                extension_order: Vec::new(),
                legs: HashMap::new(),
                calls: HashMap::new(),
                ended: VecDeque::new(),
                queues: Vec::new(),
                queue_index: HashMap::new(),
                next_ivrid: 0,
                clock_ms: 0,
                refused: 0,
                disconnects: 0,
                keepalives: 0,
                resyncs: 0,
                logins: 0,
                login_failures: 0,
                refreshes: 0,
                login_outage: false,
            };
            Inner { state: Mutex::new(state), setup: setup.clone(), faults, provider: pbx.0.to_owned() }
        });
        Self { inner }
    }

    fn lock(&self) -> MutexGuard<'_, FaceState> {
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The login API as on `https://loginapi.voicenter.co.il`: `POST /monitorAPI/Login/User`
    /// `{"email","pin"}`, `/Login/Account` `{"username","password"}`, `/Login/Token` `{"token"}`,
    /// and `GET /monitorAPI/RefreshIdentityToken` with `Authorization: Bearer <RefreshToken>`.
    /// Success is `{"Status":1,"Data":{"Socket":{..}}}` with a fresh token pair and the URLs set
    /// by [`VoicenterFace::set_urls`]; wrong credentials are 401 `{"error"}`, a body that is not
    /// JSON is 500 "Unexpected token", as the seed says. A refresh does not revoke the refresh
    /// token it used.
    pub fn login_router(&self) -> Router {
        Router::new()
            .route("/monitorAPI/Login/User", post(login_user))
            .route("/monitorAPI/Login/Account", post(login_account))
            .route("/monitorAPI/Login/Token", post(login_token))
            .route("/monitorAPI/RefreshIdentityToken", get(refresh_identity))
            .with_state(self.clone())
            .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
    }

    /// Monitor server `index` (0 is the primary) at `/socket.io/`. A handshake needs a live
    /// token from the login API in the query (`token=`), else it is answered 401; a killed
    /// server answers 503 to every request, as close as a test listener gets to a dead host.
    pub fn monitor_router(&self, index: usize) -> Router {
        Router::new().fallback(monitor).with_state(MonitorRoute { face: self.clone(), index })
    }

    /// The monitor URLs the login API hands out (`URLList`, and `URL` = the first), in priority
    /// order; tests bind their listeners first, then say where they are.
    pub fn set_urls(&self, urls: Vec<String>) {
        self.lock().urls = urls;
    }

    /// Takes in ground-truth events and pushes the Voicenter events they cause to every socket
    /// that may see them. Events of another PBX are ignored.
    pub fn absorb(&self, events: &[Event]) {
        let mut state = self.lock();
        let mut out = Vec::new();
        for event in events.iter().filter(|event| event.provider == self.inner.provider) {
            state.absorb(event, &mut out);
        }
        if !out.is_empty() {
            self.deliver(&mut state, &out);
        }
    }

    /// Kills monitor server `index`: its sockets lose their connections, new ones are refused
    /// and it sends nothing until revived.
    pub fn kill(&self, index: usize) {
        let mut state = self.lock();
        if let Some(server) = state.servers.get_mut(index) {
            server.dead = true;
        }
        self.restart_server(&mut state, index);
    }

    /// Brings a killed monitor server back (with no sockets: clients must reconnect).
    pub fn revive(&self, index: usize) {
        if let Some(server) = self.lock().servers.get_mut(index) {
            server.dead = false;
        }
    }

    /// Every token issued so far stops working now and the sockets using one are disconnected;
    /// refresh tokens keep working, so a client can get a new token without logging in again.
    pub fn expire_tokens(&self) {
        let mut state = self.lock();
        state.tokens.clear();
        state.token_order.clear();
        let mut closed = 0;
        for server in &mut state.servers {
            for client in server.clients.drain(..) {
                if client.socket.connected() {
                    close_socket(&client.socket);
                    closed += 1;
                }
            }
        }
        state.disconnects += closed;
    }

    /// Takes the login API down (`true`: every login and refresh is answered 500 and counted in
    /// `login_failures`) or brings it back. Issued tokens and live sockets are left alone.
    pub fn set_login_outage(&self, down: bool) {
        self.lock().login_outage = down;
    }

    /// A network drop: every server closes the connections of all its sockets at once.
    pub fn drop_connections(&self) {
        let mut state = self.lock();
        for index in 0..state.servers.len() {
            self.restart_server(&mut state, index);
        }
    }

    /// Says the extension configuration changed (`ExtensionsUpdated {}` to every socket); a
    /// client should answer with `resync`.
    pub fn announce_updated(&self) {
        let mut state = self.lock();
        let out = [Outgoing { event: "ExtensionsUpdated", payload: json!({}), audience: Audience::Everyone }];
        self.deliver(&mut state, &out);
    }

    /// The counters, for tests to check what happened on the wire.
    pub fn stats(&self) -> VoicenterStats {
        let state = self.lock();
        VoicenterStats {
            accepted: state.servers.iter().map(|server| server.accepted).collect(),
            refused: state.refused,
            disconnects: state.disconnects,
            keepalives: state.keepalives,
            resyncs: state.resyncs,
            logins: state.logins,
            login_failures: state.login_failures,
            refreshes: state.refreshes,
            protocols: state.servers.iter().map(|server| server.protocol).collect(),
            live: state
                .servers
                .iter()
                .map(|server| server.clients.iter().filter(|client| client.socket.connected()).count())
                .collect(),
        }
    }

    /// The ground truth as Voicenter can show it, keyed by the connector's native ids, for
    /// comparison with [`VoicenterFace::observed_picture`]:
    /// * `extension {number}` → `"{presence} {agent status}"`: presence as the wire shows it
    ///   (ringing when a leg says "Ringing", busy when any other leg is live, else idle) and the
    ///   agent status as its `representativeStatus` code means it;
    /// * `leg {ivrid}/{number}` → the leg's status: `Ringing`, `Dialing` (our side dialling, or
    ///   leg 1 of a click-to-call), `Dialing 2` (click-to-call leg 2 ringing), `Talking`, `Held`;
    ///   with `with_ended`, ended legs as `Ended {cause}` with the end cause the HANGUP's words
    ///   mean (Normal hangup answered → Normal, unanswered → NoAnswer, Answered elsewhere,
    ///   Call Rejected → Rejected). Two legs of one call at one extension share a key (a queue
    ///   call offered to the same agent again); the live one, else the latest, is shown;
    /// * `queue {QueueID}` → `waiting [ivrid, ...]`, sorted.
    pub fn truth_picture(&self, truth: &LiveState, with_ended: bool) -> Picture {
        let state = self.lock();
        let (extensions, calls, queues) = truth.views_all();
        let mut shown = ShownLegs::default();
        for call in calls.iter().filter(|call| call.id.provider() == self.inner.provider) {
            for leg in &call.legs {
                let Some(record) = state.legs.get(&leg.id) else { continue };
                let line = if leg.state.is_ended() {
                    let cause =
                        record.ended.unwrap_or_else(|| fallback_cause(leg.end_cause, leg.answered_at.is_some()));
                    format!("Ended {cause:?}")
                } else {
                    leg_label(leg.state, &call.origin).to_owned()
                };
                shown.offer(
                    format!("{}/{}", record.ivrid, record.number),
                    &record.number,
                    leg.state,
                    leg.created_at,
                    line,
                );
            }
        }
        let mut lines = shown.lines(with_ended);
        let presences = shown.presences();
        for extension in extensions.iter().filter(|extension| extension.id.provider() == self.inner.provider) {
            let number = extension.id.native();
            let presence = presences.get(number).copied().unwrap_or(Presence::Idle);
            let status = status_of_code(status_code(&extension.agent_status));
            lines.insert(
                format!("extension {number}"),
                format!("{} {}", super::presence_name(presence), status_label(&status)),
            );
        }
        for queue in queues.iter().filter(|queue| queue.id.provider() == self.inner.provider) {
            let Some(record) = state.queue_index.get(&queue.id).and_then(|index| state.queues.get(*index)) else {
                continue;
            };
            let mut waiting: Vec<String> = queue
                .waiting
                .iter()
                .map(|entry| {
                    state.calls.get(&entry.call).map_or_else(|| format!("?{}", entry.call), |c| c.ivrid.clone())
                })
                .collect();
            waiting.sort();
            lines.insert(format!("queue {}", record.queue_id), format!("waiting [{}]", waiting.join(", ")));
        }
        Picture::from_lines(lines)
    }

    /// What a hub shows of a Voicenter connector's provider, in the lines of
    /// [`VoicenterFace::truth_picture`]: extensions and queues from its snapshot, legs from the
    /// calls given (the snapshot's live calls, and the history's ended ones for `with_ended`).
    pub fn observed_picture(extensions: &[Extension], calls: &[Call], queues: &[Queue], with_ended: bool) -> Picture {
        let mut shown = ShownLegs::default();
        for call in calls {
            for leg in &call.legs {
                let Some(extension) = &leg.extension else { continue };
                let line = if leg.state.is_ended() {
                    format!("Ended {:?}", leg.end_cause.unwrap_or(EndCause::Unknown))
                } else {
                    leg_label(leg.state, &call.origin).to_owned()
                };
                // A call that rang this extension again is the connector's `{ivrid}/{number}~2`.
                let key = leg.id.native().split('~').next().unwrap_or_default().to_owned();
                shown.offer(key, extension.native(), leg.state, leg.created_at, line);
            }
        }
        let mut lines = shown.lines(with_ended);
        let presences = shown.presences();
        for extension in extensions {
            let number = extension.id.native();
            let presence = presences.get(number).copied().unwrap_or(Presence::Idle);
            lines.insert(
                format!("extension {number}"),
                format!("{} {}", super::presence_name(presence), status_label(&extension.agent_status)),
            );
        }
        for queue in queues {
            let mut waiting: Vec<&str> = queue.waiting.iter().map(|entry| entry.call.native()).collect();
            waiting.sort_unstable();
            lines.insert(format!("queue {}", queue.id.native()), format!("waiting [{}]", waiting.join(", ")));
        }
        Picture::from_lines(lines)
    }

    /// Sends `out` to every live socket it concerns, in order. Each event pushed may strike a
    /// drop fault: that socket is disconnected right after it.
    fn deliver(&self, state: &mut FaceState, out: &[Outgoing]) {
        let now = now_ms();
        let faults = &self.inner.faults;
        let mut closed = 0;
        for server in state.servers.iter_mut().filter(|server| !server.dead) {
            server.clients.retain(|client| {
                if !client.socket.connected() {
                    return false;
                }
                if client.expiry_ms <= now {
                    close_socket(&client.socket);
                    closed += 1;
                    return false;
                }
                for message in out.iter().filter(|message| message.audience.reaches(&client.scope)) {
                    match client.socket.emit(message.event, &message.payload) {
                        Ok(()) => {}
                        Err(SendError::Socket(SocketError::Closed)) => return false,
                        Err(_) => {
                            // Too far behind (or unserializable): it cannot be kept consistent.
                            close_socket(&client.socket);
                            closed += 1;
                            return false;
                        }
                    }
                    if faults.roll(&[Fault::Drop]) == Some(Fault::Drop) {
                        close_socket(&client.socket);
                        closed += 1;
                        return false;
                    }
                }
                true
            });
        }
        state.disconnects += closed;
    }

    /// Replaces server `index`'s socket.io instance with a fresh one and closes the old one's
    /// transports: every socket on it loses its connection, and new connections go to the new
    /// instance at once.
    fn restart_server(&self, state: &mut FaceState, index: usize) {
        let weak = Arc::downgrade(&self.inner);
        let Some(server) = state.servers.get_mut(index) else { return };
        let clients: Vec<Client> = server.clients.drain(..).collect();
        let generation = server.generation + 1;
        let (io, inner) = build_server(&weak, &self.inner.setup, index, generation);
        let old = std::mem::replace(&mut server.io, io);
        server.inner = inner;
        server.generation = generation;
        let live: Vec<Client> = clients.into_iter().filter(|client| client.socket.connected()).collect();
        state.disconnects += live.len() as u64;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { old.close().await });
            }
            // Without a runtime nothing is serving these sockets; a namespace disconnect is the
            // most that can be done.
            Err(_) => live.iter().for_each(|client| close_socket(&client.socket)),
        }
    }

    /// A socket has connected to server `index` (instance `generation`): checks its token and
    /// sends the login snapshot, or turns it away.
    fn on_connect(&self, index: usize, generation: u64, socket: SocketRef) {
        let token = query_param(socket.req_parts().uri.query(), "token");
        let now = now_ms();
        let mut state = self.lock();
        let grant = token
            .as_deref()
            .and_then(|token| state.tokens.get(token))
            .filter(|record| record.expiry_ms > now)
            .map(|record| (record.scope.clone(), record.expiry_ms));
        let current = state.servers.get(index).is_some_and(|server| !server.dead && server.generation == generation);
        let (Some((scope, expiry_ms)), true) = (grant, current) else {
            state.refused += 1;
            drop(state);
            close_socket(&socket);
            return;
        };
        self.listen(&socket);
        let servertime = state.servertime_s();
        let welcome = json!({
            "errorCode": 0,
            "errorDesc": "OK",
            "servertime": servertime,
            "servertimeoffset": SERVER_TIME_OFFSET,
        });
        let snapshot = [
            ("loginSuccess", welcome),
            ("loginStatus", state.login_status(&scope)),
            ("AllExtensionsStatus", state.all_extensions_status(&scope)),
        ];
        if let Some(server) = state.servers.get_mut(index) {
            server.accepted += 1;
            server.protocol = Some(socket.protocol() as u8);
        }
        for (event, payload) in &snapshot {
            if socket.emit(*event, payload).is_err() {
                state.disconnects += 1;
                drop(state);
                close_socket(&socket);
                return;
            }
        }
        if let Some(server) = state.servers.get_mut(index) {
            server.clients.retain(|client| client.socket.connected());
            server.clients.push(Client { socket, scope, expiry_ms });
        }
    }

    /// Registers the socket's message handlers; they hold the face weakly, as the face holds
    /// the socket.
    fn listen(&self, socket: &SocketRef) {
        let weak = Arc::downgrade(&self.inner);
        let keepalive = weak.clone();
        socket.on("keepalive", move |socket: SocketRef| {
            let face = keepalive.clone();
            async move {
                if let Some(inner) = face.upgrade() {
                    VoicenterFace { inner }.keepalive(&socket);
                }
            }
        });
        socket.on("resync", move |socket: SocketRef| {
            let face = weak.clone();
            async move {
                if let Some(inner) = face.upgrade() {
                    VoicenterFace { inner }.resync(&socket);
                }
            }
        });
    }

    /// Answers `keepalive` (with or without the token as payload) with `keepaliveResponse`; a
    /// socket whose token has run out is disconnected instead.
    fn keepalive(&self, socket: &SocketRef) {
        let now = now_ms();
        let mut state = self.lock();
        state.keepalives += 1;
        let expired = state
            .servers
            .iter()
            .flat_map(|server| &server.clients)
            .any(|client| client.socket == *socket && client.expiry_ms <= now);
        if expired {
            for server in &mut state.servers {
                server.clients.retain(|client| client.socket != *socket);
            }
            state.disconnects += 1;
            drop(state);
            close_socket(socket);
            return;
        }
        let _ = socket.emit("keepaliveResponse", &json!({ "errorCode": 0 }));
    }

    /// Answers `resync` (`{cache:bool}`) with the socket's `loginStatus` and
    /// `AllExtensionsStatus` again.
    fn resync(&self, socket: &SocketRef) {
        let mut state = self.lock();
        state.resyncs += 1;
        let scope = state
            .servers
            .iter()
            .flat_map(|server| &server.clients)
            .find(|client| client.socket == *socket)
            .map(|c| c.scope.clone());
        let Some(scope) = scope else { return };
        let status = state.login_status(&scope);
        let extensions = state.all_extensions_status(&scope);
        let _ = socket.emit("loginStatus", &status);
        let _ = socket.emit("AllExtensionsStatus", &extensions);
    }

    /// Issues a token pair for `scope` and answers with the login API's success shape.
    fn issue(&self, scope: Scope, refresh: bool) -> Response {
        let lifetime_ms = i64::try_from(self.inner.setup.token_lifetime.as_millis()).unwrap_or(i64::MAX);
        let mut state = self.lock();
        let token = state.secret();
        let refresh_token = state.secret();
        let expiry_s = now_ms().saturating_add(lifetime_ms) / 1000;
        let expiry_ms = expiry_s.saturating_mul(1000);
        let person = match &scope {
            Scope::Account => ACCOUNT_PERSON_ID,
            Scope::User(number) => state.extensions.get(number).map_or(0, |extension| extension.user_id),
        };
        state.tokens.insert(token.clone(), TokenRecord { scope: scope.clone(), expiry_ms });
        state.token_order.push_back(token.clone());
        while state.token_order.len() > TOKENS_KEEP {
            if let Some(old) = state.token_order.pop_front() {
                state.tokens.remove(&old);
            }
        }
        state.refresh_tokens.insert(refresh_token.clone(), scope);
        state.refresh_order.push_back(refresh_token.clone());
        while state.refresh_order.len() > TOKENS_KEEP {
            if let Some(old) = state.refresh_order.pop_front() {
                state.refresh_tokens.remove(&old);
            }
        }
        if refresh {
            state.refreshes += 1;
        } else {
            state.logins += 1;
        }
        let body = json!({
            "Status": 1,
            "Data": {
                "Socket": {
                    "Token": token,
                    "RefreshToken": refresh_token,
                    "TokenExpiry": expiry_s,
                    "URL": state.urls.first().cloned().unwrap_or_default(),
                    "URLList": state.urls,
                    "PersonID": person,
                    "Client": CLIENT_ID,
                }
            }
        });
        Json(body).into_response()
    }

    /// While the login API is down: the 500 every request gets.
    fn outage(&self) -> Option<Response> {
        let mut state = self.lock();
        if !state.login_outage {
            return None;
        }
        state.login_failures += 1;
        Some((StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "Internal Server Error" }))).into_response())
    }

    fn unauthorized(&self, message: &str) -> Response {
        self.lock().login_failures += 1;
        (StatusCode::UNAUTHORIZED, Json(json!({ "error": message }))).into_response()
    }

    /// The request's JSON body, or the 500 a malformed one gets.
    fn body(&self, body: &[u8]) -> Result<Value, Box<Response>> {
        serde_json::from_slice::<Value>(body).map_err(|error| {
            self.lock().login_failures += 1;
            let message = format!("Unexpected token in JSON at position {}", error.column().saturating_sub(1));
            Box::new((StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": message }))).into_response())
        })
    }
}

/// A socket.io instance for server `index`, whose connections report to the face, and the
/// router that serves it.
fn build_server(face: &Weak<Inner>, setup: &VoicenterSetup, index: usize, generation: u64) -> (SocketIo, Router) {
    let (layer, io) = SocketIo::builder()
        .ping_interval(setup.ping_interval)
        .ping_timeout(setup.ping_timeout)
        .max_buffer_size(SOCKET_BUFFER)
        .build_layer();
    let face = face.clone();
    io.ns("/", move |socket: SocketRef| {
        let face = face.clone();
        async move {
            if let Some(inner) = face.upgrade() {
                VoicenterFace { inner }.on_connect(index, generation, socket);
            }
        }
    });
    let router = Router::new().fallback(|| async { StatusCode::NOT_FOUND }).layer(layer);
    (io, router)
}

/// Disconnects a socket from the server side (a socket.io DISCONNECT). When its buffer is too
/// full to take even that, tries again for a while.
fn close_socket(socket: &SocketRef) {
    if let Err(SocketError::InternalChannelFull) = socket.clone().disconnect() {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let socket = socket.clone();
            runtime.spawn(async move {
                for _ in 0..CLOSE_RETRIES {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if !matches!(socket.clone().disconnect(), Err(SocketError::InternalChannelFull)) {
                        return;
                    }
                }
            });
        }
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

/// Every request to a monitor server: refused when the server is dead or a handshake has no
/// live token, otherwise served by the server's current socket.io instance.
async fn monitor(State(route): State<MonitorRoute>, request: Request) -> Response {
    let query = request.uri().query();
    let handshake = request.uri().path().starts_with("/socket.io") && query_param(query, "sid").is_none();
    let token = query_param(query, "token");
    let inner = {
        let mut state = route.face.lock();
        let Some((dead, inner)) = state.servers.get(route.index).map(|server| (server.dead, server.inner.clone()))
        else {
            return StatusCode::NOT_FOUND.into_response();
        };
        if dead {
            state.refused += u64::from(handshake);
            return (StatusCode::SERVICE_UNAVAILABLE, "the monitor server is down").into_response();
        }
        let now = now_ms();
        let live =
            token.as_deref().and_then(|token| state.tokens.get(token)).is_some_and(|record| record.expiry_ms > now);
        if handshake && !live {
            state.refused += 1;
            return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "Unauthorized" }))).into_response();
        }
        inner
    };
    match inner.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// A string field of a login body (numbers accepted as their text).
fn field(body: &Value, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

async fn login_user(State(face): State<VoicenterFace>, body: Bytes) -> Response {
    if let Some(response) = face.outage() {
        return response;
    }
    let body = match face.body(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let (Some(email), Some(pin)) = (field(&body, "email"), field(&body, "pin")) else {
        return face.unauthorized("email and pin are required");
    };
    let number = email
        .rsplit_once('@')
        .filter(|(_, domain)| domain.eq_ignore_ascii_case(EMAIL_DOMAIN))
        .map(|(user, _)| user.to_owned());
    let known = number.as_ref().is_some_and(|number| face.lock().extensions.contains_key(number));
    match number {
        Some(number) if known && pin == face.inner.setup.user_pin => face.issue(Scope::User(number), false),
        _ => face.unauthorized("Wrong email or pin"),
    }
}

async fn login_account(State(face): State<VoicenterFace>, body: Bytes) -> Response {
    if let Some(response) = face.outage() {
        return response;
    }
    let body = match face.body(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let setup = &face.inner.setup;
    let right = field(&body, "username").is_some_and(|username| username == setup.account_username)
        && field(&body, "password").is_some_and(|password| password == setup.account_password);
    if right {
        face.issue(Scope::Account, false)
    } else {
        face.unauthorized("Wrong username or password")
    }
}

async fn login_token(State(face): State<VoicenterFace>, body: Bytes) -> Response {
    if let Some(response) = face.outage() {
        return response;
    }
    let body = match face.body(&body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    if field(&body, "token").is_some_and(|token| token == face.inner.setup.account_token) {
        face.issue(Scope::Account, false)
    } else {
        face.unauthorized("Wrong token")
    }
}

async fn refresh_identity(State(face): State<VoicenterFace>, headers: HeaderMap) -> Response {
    if let Some(response) = face.outage() {
        return response;
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let scope = bearer.and_then(|token| face.lock().refresh_tokens.get(&token).cloned());
    match scope {
        Some(scope) => face.issue(scope, true),
        None => face.unauthorized("Invalid refresh token"),
    }
}

impl FaceState {
    fn secret(&mut self) -> String {
        format!("{:016x}{:016x}", self.rng.random::<u64>(), self.rng.random::<u64>())
    }

    /// `servertime` of the login snapshot: the simulated clock as far as absorbed.
    fn servertime_s(&self) -> i64 {
        if self.clock_ms > 0 { self.clock_ms } else { now_ms() }.div_euclid(1000)
    }

    fn absorb(&mut self, event: &Event, out: &mut Vec<Outgoing>) {
        self.clock_ms = self.clock_ms.max(event.at);
        let at = event.at;
        match &event.kind {
            EventKind::Leg(report) => self.absorb_leg(report, at, out),
            EventKind::CallEnded { call, cause, .. } => self.call_ended(call, *cause, at, out),
            EventKind::Extension(report) => {
                let number = report.extension.native();
                self.ensure_extension(number);
                if let Some(extension) = self.extensions.get_mut(number) {
                    if let Some(name) = &report.name {
                        extension.name = name.clone();
                    }
                    extension.online = report.online_user.clone();
                }
            }
            EventKind::AgentStatus { extension, status, .. } => {
                let number = extension.native();
                self.ensure_extension(number);
                let Some(record) = self.extensions.get_mut(number) else { return };
                record.status = status.clone();
                record.status_ms = at;
                let Some(record) = self.extensions.get(number) else { return };
                let data = self.extension_json(record);
                out.push(Outgoing {
                    event: "ExtensionEvent",
                    payload: json!({
                        "eventName": "extension",
                        "reason": "userStatusUpdate",
                        "servertime": at.div_euclid(1000),
                        "servertimeoffset": SERVER_TIME_OFFSET,
                        "data": data,
                    }),
                    audience: Audience::Extension(number.to_owned()),
                });
            }
            EventKind::Queue { queue, name, members } => {
                let index = self.ensure_queue(queue);
                let members: Vec<String> = members.iter().map(|member| member.native().to_owned()).collect();
                for member in &members {
                    self.ensure_extension(member);
                }
                if let Some(record) = self.queues.get_mut(index) {
                    record.name = name.clone();
                    record.members = members;
                }
            }
            EventKind::QueueJoined { queue, call, caller } => {
                let index = self.ensure_queue(queue);
                let ivrid = self.ivrid_for(call, at);
                let Some(record) = self.queues.get_mut(index) else { return };
                if record.waiting.iter().any(|waiting| &waiting.call == call) {
                    return;
                }
                record.waiting.push(Waiting {
                    call: call.clone(),
                    ivrid: ivrid.clone(),
                    caller_id: caller.number.clone().unwrap_or_default(),
                    caller_name: caller.name.clone().unwrap_or_default(),
                    join_s: at.div_euclid(1000),
                });
                out.push(queue_event(record, "JOIN", &ivrid, at));
            }
            EventKind::QueueLeft { queue, call, outcome } => {
                let Some(record) = self.queue_index.get(queue).and_then(|index| self.queues.get_mut(*index)) else {
                    return;
                };
                let Some(position) = record.waiting.iter().position(|waiting| &waiting.call == call) else { return };
                let left = record.waiting.remove(position);
                let reason = if *outcome == QueueOutcome::Abandoned { "ABANDONED" } else { "EXIT" };
                out.push(queue_event(record, reason, &left.ivrid, at));
            }
        }
    }

    fn ensure_extension(&mut self, number: &str) {
        if self.extensions.contains_key(number) {
            return;
        }
        let user_id = FIRST_USER_ID + self.extension_order.len() as u64;
        self.extension_order.push(number.to_owned());
        self.extensions.insert(
            number.to_owned(),
            ExtensionRecord {
                number: number.to_owned(),
                user_id,
                name: number.to_owned(),
                online: None,
                status: AgentStatus::Unknown,
                status_ms: 0,
                last_call_s: 0,
                last_answered_s: 0,
                last_hangup_s: 0,
                live: Vec::new(),
            },
        );
    }

    fn ensure_queue(&mut self, queue: &QueueId) -> usize {
        if let Some(index) = self.queue_index.get(queue) {
            return *index;
        }
        let index = self.queues.len();
        self.queues.push(QueueRecord {
            queue_id: FIRST_QUEUE_ID + index as u64,
            name: queue.native().to_owned(),
            members: Vec::new(),
            waiting: Vec::new(),
        });
        self.queue_index.insert(queue.clone(), index);
        index
    }

    /// The call's ivrid, made on first sight: the date and time, a counter and a short hash.
    fn ivrid_for(&mut self, call: &CallId, at: Timestamp) -> String {
        if let Some(record) = self.calls.get(call) {
            return record.ivrid.clone();
        }
        self.next_ivrid += 1;
        let stamp = jiff::Timestamp::from_millisecond(at)
            .map(|time| time.strftime("%Y%m%d%H%M%S").to_string())
            .unwrap_or_else(|_| "19700101000000".to_owned());
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        call.as_str().hash(&mut hasher);
        let ivrid = format!("{stamp}{:06}{:06x}", self.next_ivrid % 1_000_000, hasher.finish() & 0xff_ffff);
        self.calls.insert(call.clone(), CallRecord { ivrid: ivrid.clone(), legs: Vec::new(), ended: false });
        ivrid
    }

    fn absorb_leg(&mut self, report: &LegReport, at: Timestamp, out: &mut Vec<Outgoing>) {
        let Some(extension) = &report.extension else { return };
        let at_s = at.div_euclid(1000);
        if !self.legs.contains_key(&report.leg) {
            if matches!(report.state, LegState::Ended | LegState::Unknown) {
                return;
            }
            let number = extension.native().to_owned();
            self.ensure_extension(&number);
            let ivrid = self.ivrid_for(&report.call, at);
            let click = report.origin == Origin::ClickToCall;
            let incoming = match report.state {
                LegState::Ringing | LegState::Queued => true,
                LegState::Initiating | LegState::RemoteRinging => false,
                _ => report.direction == Direction::Inbound,
            };
            let queue = report.queue.as_ref().and_then(|queue| self.queue_index.get(queue).copied());
            let did = match queue {
                Some(index) if incoming && !click => format!("039000{:04}", index + 1),
                _ => String::new(),
            };
            let remote = &report.remote;
            let remote_number = remote.number.clone().or_else(|| remote.extension.clone()).unwrap_or_default();
            let record = LegRecord {
                ivrid,
                number: number.clone(),
                click,
                incoming,
                phase: 0,
                c2c: 0,
                held: false,
                started_s: at_s,
                answered: false,
                answered_s: 0,
                callstatus: "Dialing",
                remote_name: remote.name.clone().unwrap_or_else(|| remote_number.clone()),
                remote_number,
                did,
                queue,
                ended: None,
            };
            self.legs.insert(report.leg.clone(), record);
            if let Some(call) = self.calls.get_mut(&report.call) {
                call.legs.push(report.leg.clone());
            }
            if let Some(extension) = self.extensions.get_mut(&number) {
                extension.live.push(report.leg.clone());
            }
        }
        let Some(record) = self.legs.get(&report.leg) else { return };
        if record.ended.is_some() {
            return;
        }
        if report.state.is_ended() {
            self.hang_up(&report.leg, report.end_cause, at, out);
            return;
        }
        let click = record.click;
        let Some(target) = target_phase(report.state, click) else { return };
        while let Some(record) = self.legs.get_mut(&report.leg) {
            if record.phase >= target {
                break;
            }
            match (click, record.phase) {
                (false, 0) => {
                    record.phase = 1;
                    record.callstatus = if record.incoming { "Ringing" } else { "Dialing" };
                    self.call_event(&report.leg, "NEWCALL", at_s, None, out);
                }
                (false, _) => {
                    record.phase = 2;
                    record.answered = true;
                    record.answered_s = at_s;
                    record.callstatus = "Talking";
                    self.call_event(&report.leg, "ANSWER", at_s, None, out);
                }
                (true, 0) => {
                    record.phase = 1;
                    record.c2c = 1;
                    record.callstatus = "Dialing";
                    self.call_event(&report.leg, "NEWCALL", at_s, None, out);
                }
                (true, 1) => {
                    // The agent picked up leg 1; leg 2 to the far end starts, already "Talking"
                    // but not answered, as the seed shows.
                    record.answered = true;
                    record.answered_s = at_s;
                    record.callstatus = "Talking";
                    self.call_event(&report.leg, "ANSWER", at_s, None, out);
                    if let Some(record) = self.legs.get_mut(&report.leg) {
                        record.phase = 2;
                        record.c2c = 2;
                        record.answered = false;
                        record.answered_s = 0;
                    }
                    self.call_event(&report.leg, "NEWCALL", at_s, None, out);
                }
                (true, _) => {
                    record.phase = 3;
                    record.answered = true;
                    record.answered_s = at_s;
                    record.callstatus = "Talking";
                    self.call_event(&report.leg, "ANSWER", at_s, None, out);
                }
            }
        }
        let want_held = matches!(report.state, LegState::Held | LegState::Parked);
        let Some(record) = self.legs.get_mut(&report.leg) else { return };
        if record.phase >= answered_phase(click) && record.held != want_held {
            record.held = want_held;
            record.callstatus = if want_held { "Hold" } else { "Talking" };
            self.call_event(&report.leg, if want_held { "HOLD" } else { "UNHOLD" }, at_s, None, out);
        }
    }

    /// Ends a leg with a HANGUP, in the words Voicenter has for how it ended.
    fn hang_up(&mut self, leg: &LegId, cause: Option<EndCause>, at: Timestamp, out: &mut Vec<Outgoing>) {
        let at_s = at.div_euclid(1000);
        let Some(record) = self.legs.get_mut(leg) else { return };
        if record.ended.is_some() {
            return;
        }
        let words = if cause == Some(EndCause::AnsweredElsewhere) {
            "Answered elsewhere"
        } else if record.click && record.phase <= 1 {
            "Call Rejected"
        } else {
            "Normal hangup"
        };
        record.ended = Some(wire_end_cause(words, record.answered));
        let number = record.number.clone();
        if let Some(extension) = self.extensions.get_mut(&number) {
            extension.live.retain(|live| live != leg);
            extension.last_hangup_s = at_s;
        }
        self.call_event(leg, "HANGUP", at_s, Some(words), out);
    }

    fn call_ended(&mut self, call: &CallId, cause: EndCause, at: Timestamp, out: &mut Vec<Outgoing>) {
        let legs = self.calls.get(call).map(|record| record.legs.clone()).unwrap_or_default();
        for leg in &legs {
            self.hang_up(leg, Some(cause), at, out);
        }
        let Some(record) = self.calls.get_mut(call) else { return };
        if record.ended {
            return;
        }
        record.ended = true;
        self.ended.push_back(call.clone());
        while self.ended.len() > ENDED_KEEP {
            let Some(old) = self.ended.pop_front() else { break };
            let Some(record) = self.calls.remove(&old) else { continue };
            for leg in &record.legs {
                if let Some(leg_record) = self.legs.remove(leg) {
                    if let Some(extension) = self.extensions.get_mut(&leg_record.number) {
                        extension.live.retain(|live| live != leg);
                    }
                }
            }
            for queue in &mut self.queues {
                queue.waiting.retain(|waiting| waiting.call != old);
            }
        }
    }

    /// Queues an `ExtensionEvent` about a leg: the extension as it is now, its live calls, and
    /// the leg as `currentCall`.
    fn call_event(&mut self, leg: &LegId, reason: &str, at_s: i64, cause: Option<&str>, out: &mut Vec<Outgoing>) {
        let Some(record) = self.legs.get(leg) else { return };
        let number = record.number.clone();
        if let Some(extension) = self.extensions.get_mut(&number) {
            extension.last_call_s = at_s;
            if reason == "ANSWER" {
                extension.last_answered_s = at_s;
            }
        }
        let (Some(record), Some(extension)) = (self.legs.get(leg), self.extensions.get(&number)) else { return };
        let mut data = Map::new();
        data.insert("eventName".into(), json!("extension"));
        data.insert("reason".into(), json!(reason));
        if let Some(cause) = cause {
            data.insert("cause".into(), json!(cause));
            data.insert("callerID".into(), json!(record.remote_number));
            data.insert("ivruniqueid".into(), json!(record.ivrid));
        }
        data.insert("servertime".into(), json!(at_s));
        data.insert("servertimeoffset".into(), json!(SERVER_TIME_OFFSET));
        if let Some(queue) = record.queue.and_then(|index| self.queues.get(index)) {
            data.insert("queueID".into(), json!(queue.queue_id));
        }
        data.extend(self.extension_json(extension));
        data.insert("currentCall".into(), call_json(record));
        out.push(Outgoing {
            event: "ExtensionEvent",
            payload: json!({ "data": data }),
            audience: Audience::Extension(number),
        });
    }

    /// An extension in the shape every Voicenter event gives it, with its live calls.
    fn extension_json(&self, extension: &ExtensionRecord) -> Map<String, Value> {
        let calls: Vec<Value> = extension.live.iter().filter_map(|leg| self.legs.get(leg)).map(call_json).collect();
        let code = status_code(&extension.status);
        let representative = if code == 2 { 0 } else { extension.user_id };
        let shown_name = extension.online.clone().unwrap_or_else(|| extension.name.clone());
        let mut map = Map::new();
        map.insert("calls".into(), Value::Array(calls));
        map.insert("userID".into(), json!(extension.user_id));
        map.insert("userName".into(), json!(extension.name));
        map.insert("number".into(), number_json(&extension.number));
        map.insert("extenUser".into(), json!(format!("SIP{}", extension.number)));
        map.insert("summery".into(), json!({ "representative": shown_name }));
        map.insert("onlineUserID".into(), json!(extension.user_id));
        map.insert("representative".into(), json!(representative));
        map.insert("representativeStatus".into(), json!(code));
        map.insert("representativeUpdated".into(), json!(extension.status_ms));
        map.insert("lastCallEventEpoch".into(), json!(extension.last_call_s));
        map.insert("lastAnsweredCallEventEpoch".into(), json!(extension.last_answered_s));
        map.insert("lastHangupCallEpoch".into(), json!(extension.last_hangup_s));
        map
    }

    /// `loginStatus`: every queue (a user's: those its extension serves) with its waiting calls.
    fn login_status(&self, scope: &Scope) -> Value {
        let queues: Vec<Value> = self
            .queues
            .iter()
            .filter(|queue| match scope {
                Scope::Account => true,
                Scope::User(number) => queue.members.contains(number),
            })
            .map(|queue| json!({ "Calls": waiting_json(queue), "QueueID": queue.queue_id, "QueueName": queue.name }))
            .collect();
        json!({
            "servertime": self.servertime_s(),
            "servertimeoffset": SERVER_TIME_OFFSET,
            "queues": queues,
            "errorCode": 0,
            "errorDesc": "OK",
        })
    }

    /// `AllExtensionsStatus`: every extension (a user's own only) with its live calls.
    fn all_extensions_status(&self, scope: &Scope) -> Value {
        let extensions: Vec<Value> = self
            .extension_order
            .iter()
            .filter(|number| match scope {
                Scope::Account => true,
                Scope::User(user) => *number == user,
            })
            .filter_map(|number| self.extensions.get(number))
            .map(|extension| {
                let mut map = self.extension_json(extension);
                map.insert("peerStatus".into(), json!("OK"));
                Value::Object(map)
            })
            .collect();
        json!({
            "servertime": self.servertime_s(),
            "servertimeoffset": SERVER_TIME_OFFSET,
            "extensions": extensions,
            "errorCode": 0,
            "errorDesc": "OK",
        })
    }
}

/// A leg as a call object (`calls[]`, `currentCall`).
fn call_json(leg: &LegRecord) -> Value {
    let direction = if leg.click {
        "Click2Call"
    } else if leg.incoming {
        "Incoming"
    } else {
        "Outgoing"
    };
    let date = leg.ivrid.get(..8).unwrap_or_default();
    let far = if leg.did.is_empty() { format!("SIP{}", leg.number) } else { leg.did.clone() };
    let mut call = json!({
        "callStarted": leg.started_s,
        "calldurationinterval": leg.started_s,
        "callAnswered": if leg.answered { leg.answered_s } else { 0 },
        "answered": u8::from(leg.answered),
        "callername": leg.remote_name,
        "callerphone": leg.remote_number,
        "callstatus": leg.callstatus,
        "customdata": {},
        "direction": direction,
        "ivrid": leg.ivrid,
        "recording": { "Filename": format!("{date}-sim-{}-{far}.mp3", leg.remote_number), "IsMuted": 0 },
        "did": leg.did,
    });
    if leg.c2c > 0 {
        if let Value::Object(map) = &mut call {
            map.insert("c2cdirection".into(), json!(leg.c2c.to_string()));
        }
    }
    call
}

fn waiting_json(queue: &QueueRecord) -> Vec<Value> {
    queue
        .waiting
        .iter()
        .map(|waiting| {
            json!({
                "CallerID": waiting.caller_id,
                "CallerName": waiting.caller_name,
                "IvrUniqueID": waiting.ivrid,
                "JoinTimeStamp": waiting.join_s,
                "calldurationinterval": waiting.join_s,
                "ivrid": waiting.ivrid,
            })
        })
        .collect()
}

fn queue_event(queue: &QueueRecord, reason: &str, ivrid: &str, at: Timestamp) -> Outgoing {
    let at_s = at.div_euclid(1000);
    Outgoing {
        event: "QueueEvent",
        payload: json!({
            "data": { "QueueID": queue.queue_id, "Calls": waiting_json(queue), "QueueName": queue.name },
            "eventName": "queue",
            "reason": reason,
            "servertime": at_s,
            "servertimeoffset": SERVER_TIME_OFFSET,
            "telephonyservertime": at_s,
            "ivruniqueid": ivrid,
        }),
        audience: Audience::Queues,
    }
}

/// An extension number as Voicenter gives it: an integer when it is one.
fn number_json(number: &str) -> Value {
    number.parse::<u64>().map_or_else(|_| json!(number), |value| json!(value))
}

/// How far the wire must take a leg for a model state; `None` leaves it as it is.
fn target_phase(state: LegState, click: bool) -> Option<u8> {
    match (state, click) {
        (LegState::Ringing | LegState::Queued | LegState::Initiating, _) => Some(1),
        (LegState::RemoteRinging, true) => Some(2),
        (LegState::RemoteRinging, false) => Some(1),
        (LegState::Active | LegState::Held | LegState::Parked | LegState::Detached, _) => Some(answered_phase(click)),
        (LegState::Ended | LegState::Unknown, _) => None,
    }
}

fn answered_phase(click: bool) -> u8 {
    if click {
        3
    } else {
        2
    }
}

/// The end cause a HANGUP's words mean, given whether its `currentCall` was answered.
fn wire_end_cause(words: &str, answered: bool) -> EndCause {
    match words {
        "Answered elsewhere" => EndCause::AnsweredElsewhere,
        "Call Rejected" => EndCause::Rejected,
        _ if answered => EndCause::Normal,
        _ => EndCause::NoAnswer,
    }
}

/// For a leg the face never ended itself (it cannot happen with the simulated PBX): what a
/// plain HANGUP would have said.
fn fallback_cause(cause: Option<EndCause>, answered: bool) -> EndCause {
    if cause == Some(EndCause::AnsweredElsewhere) {
        EndCause::AnsweredElsewhere
    } else {
        wire_end_cause("Normal hangup", answered)
    }
}

/// A live leg's status in the pictures.
fn leg_label(state: LegState, origin: &Origin) -> &'static str {
    let click = *origin == Origin::ClickToCall;
    match state {
        LegState::Ringing | LegState::Queued | LegState::Initiating if click => "Dialing",
        LegState::RemoteRinging if click => "Dialing 2",
        LegState::Ringing | LegState::Queued => "Ringing",
        LegState::Initiating | LegState::RemoteRinging => "Dialing",
        LegState::Active | LegState::Detached => "Talking",
        LegState::Held | LegState::Parked => "Held",
        LegState::Ended => "Ended",
        LegState::Unknown => "Unknown",
    }
}

/// `representativeStatus` for an agent status (an unknown one shows as logged in).
fn status_code(status: &AgentStatus) -> u8 {
    match status {
        AgentStatus::Available | AgentStatus::Unknown => 1,
        AgentStatus::LoggedOut => 2,
        AgentStatus::Break(BreakReason::Lunch) => 3,
        AgentStatus::Break(BreakReason::Admin) => 5,
        AgentStatus::Break(BreakReason::Private) => 7,
        AgentStatus::Break(BreakReason::Other(_)) => 9,
        AgentStatus::Break(BreakReason::Training) => 11,
        AgentStatus::Break(BreakReason::Meeting) => 12,
        AgentStatus::Break(BreakReason::Brief) => 13,
    }
}

/// What a `representativeStatus` code means in the model.
fn status_of_code(code: u8) -> AgentStatus {
    match code {
        1 => AgentStatus::Available,
        2 => AgentStatus::LoggedOut,
        3 => AgentStatus::Break(BreakReason::Lunch),
        5 => AgentStatus::Break(BreakReason::Admin),
        7 => AgentStatus::Break(BreakReason::Private),
        9 => AgentStatus::Break(BreakReason::Other(code.to_string())),
        11 => AgentStatus::Break(BreakReason::Training),
        12 => AgentStatus::Break(BreakReason::Meeting),
        13 => AgentStatus::Break(BreakReason::Brief),
        _ => AgentStatus::Unknown,
    }
}

/// An agent status in the pictures (an `Other` break by its kind only: its text is the
/// connector's choice).
fn status_label(status: &AgentStatus) -> String {
    match status {
        AgentStatus::Available => "available".into(),
        AgentStatus::LoggedOut => "logged_out".into(),
        AgentStatus::Break(BreakReason::Other(_)) => "break:other".into(),
        AgentStatus::Break(reason) => format!("break:{reason:?}").to_lowercase(),
        AgentStatus::Unknown => "unknown".into(),
    }
}

/// Leg lines being gathered for a picture: per key the live leg, else the latest one.
#[derive(Default)]
struct ShownLegs(BTreeMap<String, ShownLeg>);

struct ShownLeg {
    number: String,
    live: bool,
    created_at: Timestamp,
    line: String,
}

impl ShownLegs {
    fn offer(&mut self, key: String, number: &str, state: LegState, created_at: Timestamp, line: String) {
        let live = !state.is_ended();
        let better = self.0.get(&key).is_none_or(|shown| (live, created_at) >= (shown.live, shown.created_at));
        if better {
            self.0.insert(key, ShownLeg { number: number.to_owned(), live, created_at, line });
        }
    }

    fn lines(&self, with_ended: bool) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(_, shown)| shown.live || with_ended)
            .map(|(key, shown)| (format!("leg {key}"), shown.line.clone()))
            .collect()
    }

    /// Presence per extension as the wire shows it: ringing when a live leg says "Ringing",
    /// busy when any other is live.
    fn presences(&self) -> HashMap<String, Presence> {
        let mut presences: HashMap<String, Presence> = HashMap::new();
        for shown in self.0.values().filter(|shown| shown.live) {
            let presence = presences.entry(shown.number.clone()).or_insert(Presence::Busy);
            if shown.line == "Ringing" {
                *presence = Presence::Ringing;
            }
        }
        presences
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ExtensionId, ExtensionReport, Party, QueueSettings};

    fn face() -> VoicenterFace {
        let setup = VoicenterSetup {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            token_lifetime: Duration::from_secs(3600),
            account_username: "acct".into(),
            account_password: "secret".into(),
            account_token: "account-token".into(),
            user_pin: "1234".into(),
        };
        VoicenterFace::new(setup, ("sim", "cc"), 2, Faults::none())
    }

    fn leg(call: &str, index: usize, number: &str, state: LegState, origin: Origin) -> EventKind {
        EventKind::Leg(LegReport {
            leg: LegId::new("sim", "cc", &format!("{call}-{index}")),
            call: CallId::new("sim", "cc", call),
            extension: Some(ExtensionId::new("sim", "cc", number)),
            state,
            held_by: None,
            direction: if origin == Origin::ClickToCall { Direction::Outbound } else { Direction::Inbound },
            origin,
            local: Party::default(),
            remote: Party { number: Some("+61299990000".into()), name: None, extension: None },
            queue: None,
            end_cause: (state == LegState::Ended).then_some(EndCause::Normal),
            raw_cause: None,
            raw_state: String::new(),
            recording: None,
            revision: 0,
        })
    }

    /// Feeds events to the face and the truth; returns what the face would push.
    fn run(face: &VoicenterFace, truth: &mut LiveState, kinds: Vec<EventKind>) -> Vec<(String, Value)> {
        let mut pushed = Vec::new();
        let start = face.lock().clock_ms.max(1_700_000_000_000);
        for (step, kind) in kinds.into_iter().enumerate() {
            let event = Event::new("sim", "cc", start + (step as i64 + 1) * 1000, kind);
            truth.apply(&event);
            let mut out = Vec::new();
            face.lock().absorb(&event, &mut out);
            pushed.extend(out.into_iter().map(|message| (message.event.to_owned(), message.payload)));
        }
        pushed
    }

    #[test]
    fn a_click_to_call_goes_through_both_legs_on_the_wire() {
        let face = face();
        let mut truth = LiveState::new(QueueSettings::default(), BTreeMap::new());
        let extension = ExtensionId::new("sim", "cc", "201");
        let setup = vec![
            EventKind::Extension(ExtensionReport {
                extension: extension.clone(),
                name: Some("Ava Nguyen".into()),
                sip_user: None,
                online_user: Some("Ava Nguyen".into()),
            }),
            EventKind::AgentStatus { extension, status: AgentStatus::Break(BreakReason::Lunch), raw_status: None },
        ];
        let pushed = run(&face, &mut truth, setup);
        assert_eq!(pushed[0].1["reason"], "userStatusUpdate");
        assert_eq!(pushed[0].1["data"]["representativeStatus"], 3);
        assert_eq!(pushed[0].1["data"]["number"], 201);

        let click = Origin::ClickToCall;
        let pushed = run(
            &face,
            &mut truth,
            vec![
                leg("c1", 0, "201", LegState::Ringing, click.clone()),
                leg("c1", 0, "201", LegState::RemoteRinging, click.clone()),
            ],
        );
        let steps: Vec<(String, String, String)> = pushed
            .iter()
            .map(|(_, payload)| {
                let data = &payload["data"];
                (
                    data["reason"].as_str().unwrap_or("").to_owned(),
                    data["currentCall"]["c2cdirection"].as_str().unwrap_or("").to_owned(),
                    data["currentCall"]["callstatus"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let expected = [("NEWCALL", "1", "Dialing"), ("ANSWER", "1", "Talking"), ("NEWCALL", "2", "Talking")];
        let expected: Vec<(String, String, String)> =
            expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
        assert_eq!(steps, expected);
        assert_eq!(pushed[2].1["data"]["currentCall"]["answered"], 0);

        let ivrid = face.lock().calls.values().next().map(|call| call.ivrid.clone()).unwrap_or_default();
        let picture = face.truth_picture(&truth, true);
        let observed_key = format!("leg {ivrid}/201");
        assert!(picture.contains(&observed_key), "{picture:?}");
        let expected = Picture::from_lines(BTreeMap::from([
            (observed_key.clone(), "Dialing 2".to_owned()),
            ("extension 201".to_owned(), "busy break:lunch".to_owned()),
        ]));
        assert_eq!(picture, expected);

        let pushed = run(&face, &mut truth, vec![leg("c1", 0, "201", LegState::Ended, click)]);
        assert_eq!(pushed[0].1["data"]["cause"], "Normal hangup");
        assert_eq!(pushed[0].1["data"]["calls"], json!([]));
        let picture = face.truth_picture(&truth, true);
        let expected = Picture::from_lines(BTreeMap::from([
            (observed_key, "Ended NoAnswer".to_owned()),
            ("extension 201".to_owned(), "idle break:lunch".to_owned()),
        ]));
        assert_eq!(picture, expected);
    }

    #[test]
    fn a_click_to_call_dropped_at_leg_one_is_rejected_and_queues_report_their_callers() {
        let face = face();
        let mut truth = LiveState::new(QueueSettings::default(), BTreeMap::new());
        let queue = QueueId::new("sim", "cc", "sales");
        let pushed = run(
            &face,
            &mut truth,
            vec![
                EventKind::Queue { queue: queue.clone(), name: "Sales".into(), members: vec![] },
                EventKind::QueueJoined {
                    queue: queue.clone(),
                    call: CallId::new("sim", "cc", "q1"),
                    caller: Party { number: Some("0501234567".into()), name: Some("John".into()), extension: None },
                },
                leg("c2", 0, "202", LegState::Ringing, Origin::ClickToCall),
                leg("c2", 0, "202", LegState::Ended, Origin::ClickToCall),
            ],
        );
        assert_eq!(pushed[0].0, "QueueEvent");
        assert_eq!(pushed[0].1["reason"], "JOIN");
        assert_eq!(pushed[0].1["data"]["QueueID"], FIRST_QUEUE_ID);
        assert_eq!(pushed[0].1["data"]["Calls"][0]["CallerID"], "0501234567");
        assert_eq!(pushed[2].1["data"]["cause"], "Call Rejected");
        let state = face.lock();
        let waiting = state.calls.get(&CallId::new("sim", "cc", "q1")).map(|call| call.ivrid.clone());
        let status = state.login_status(&Scope::Account);
        assert_eq!(status["queues"][0]["Calls"][0]["ivrid"], json!(waiting));
        drop(state);
        let picture = face.truth_picture(&truth, true);
        assert_eq!(picture.len(), 3, "{picture:?}");
        assert!(picture.contains(&format!("queue {FIRST_QUEUE_ID}")));
    }

    #[test]
    fn status_codes_keep_their_meaning() {
        for code in [1, 2, 3, 5, 7, 9, 11, 12, 13] {
            assert_eq!(status_code(&status_of_code(code)), code);
        }
        assert_eq!(status_of_code(4), AgentStatus::Unknown);
    }

    #[tokio::test]
    async fn the_login_api_answers_as_the_seed_says() {
        use axum::body::Body;
        use http_body_util::BodyExt;
        let face = face();
        face.set_urls(vec!["http://127.0.0.1:1".into(), "http://127.0.0.1:2".into()]);
        let post = |path: &str, body: &str| {
            axum::http::Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_owned()))
                .unwrap()
        };
        let response = face.login_router().oneshot(post("/monitorAPI/Login/Account", "{not json")).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = face
            .login_router()
            .oneshot(post("/monitorAPI/Login/Account", r#"{"username":"acct","password":"wrong"}"#))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response =
            face.login_router().oneshot(post("/monitorAPI/Login/Token", r#"{"token":"account-token"}"#)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["Status"], 1);
        assert_eq!(body["Data"]["Socket"]["URL"], "http://127.0.0.1:1");
        assert_eq!(body["Data"]["Socket"]["URLList"][1], "http://127.0.0.1:2");
        let refresh = body["Data"]["Socket"]["RefreshToken"].as_str().unwrap().to_owned();
        face.expire_tokens();
        let request = axum::http::Request::get("/monitorAPI/RefreshIdentityToken")
            .header("authorization", format!("Bearer {refresh}"))
            .body(Body::empty())
            .unwrap();
        let response = face.login_router().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let stats = face.stats();
        assert_eq!((stats.logins, stats.refreshes, stats.login_failures), (1, 1, 2));
        assert_eq!(stats.accepted, vec![0, 0]);
    }
}
