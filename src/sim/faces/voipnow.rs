//! The simulator's VoipNow face: Call Event callbacks sent from the ground truth to the URLs the
//! extensions registered (by GET or POST, form or JSON), with drops, duplicates, reordering and
//! slow sends; and the UnifiedAPI endpoints Callboard uses (OAuth token, PhoneCallEvents,
//! PhoneCalls) backed by the simulated PBX.
//!
//! Every extension leg of the simulated PBX is a VoipNow call at that extension with its own
//! `CallID`; the simulated call's id is its `CallAPIID`. Extensions appear in the extended
//! form `0001*<number>`.

use crate::connectors::voipnow::wire::{CallEventType, CallParams};
use crate::connectors::voipnow::{end_cause, leg_state};
use crate::model::{
    Action, CallId, Command, EndCause, Event, EventKind, ExtensionId, LegId, LegReport, LegState, LiveState, Timestamp,
};
use crate::sim::faults::{http_faults, Fault, Faults};
use crate::sim::harness::Picture;
use crate::sim::runner::{SimError, SimHandle};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The organisation prefix of the face's extended extension numbers.
pub const ORGANISATION: &str = "0001";
/// Callbacks waiting to be sent; past this the oldest are dropped (and counted as drops).
const OUTBOX_KEEP: usize = 100_000;
/// Ended calls remembered for the pictures.
const ENDED_KEEP: usize = 50_000;

/// How an extension's Call Event calls its script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookMethod {
    Get,
    PostForm,
    PostJson,
}

/// One registered Call Event.
#[derive(Debug, Clone)]
struct Registration {
    id: String,
    event: CallEventType,
    method: HookMethod,
    url: String,
}

/// One VoipNow call at one extension: a leg of the simulated PBX.
struct Channel {
    call_id: String,
    extension: String,
    leg: LegId,
    inbound: bool,
    /// The last state rendered (what a callback was queued for).
    rendered: LegState,
    remote: Option<String>,
    /// How far delivered callbacks took it (rank 1 dialling, 2 answered, 3 ended), and the
    /// Hangup's cause: what a receiver that lost nothing delivered must show.
    delivered: Option<(u8, Option<EndCause>, bool)>,
    /// A callback of this channel was dropped on the way.
    lost: bool,
}

#[derive(Clone)]
struct Callback {
    unique: String,
    event: CallEventType,
    params: CallParams,
}

#[derive(Default)]
struct FaceState {
    channels: HashMap<String, Channel>,
    by_leg: HashMap<LegId, String>,
    /// Calls with a channel, until they end: a call's first channel is the one that placed it
    /// unless the call came in from outside.
    open_calls: HashSet<CallId>,
    ended: VecDeque<String>,
    registrations: BTreeMap<String, Vec<Registration>>,
    outbox: VecDeque<Callback>,
    in_flight: bool,
    next_unique: u64,
    next_id: u64,
    tokens: HashSet<String>,
    /// Refresh tokens still good: each for one refresh.
    refresh_tokens: HashSet<String>,
    /// Refreshes granted.
    refreshes: u64,
    delivered: u64,
    failed: u64,
}

/// The face; cheap to clone.
#[derive(Clone)]
pub struct VoipNowFace {
    state: Arc<Mutex<FaceState>>,
    wake: Arc<Notify>,
    faults: Arc<Faults>,
    client: reqwest::Client,
    /// The OAuth app the face accepts.
    client_id: String,
    client_secret: String,
    pbx: (String, String),
    sim: Option<SimHandle>,
}

/// The extended form of a simulated extension number.
pub fn extended(number: &str) -> String {
    format!("{ORGANISATION}*{number}")
}

/// How far a leg has come as callbacks tell it: 0 not yet, 1 dialling or ringing, 2 answered,
/// 3 ended.
fn rank(state: LegState) -> u8 {
    match state {
        LegState::Unknown => 0,
        LegState::Ended => 3,
        state if state.is_answered() => 2,
        _ => 1,
    }
}

/// The Hangup `CallStatus` VoipNow gives for an end cause.
pub fn call_status_of(cause: EndCause, answered: bool) -> &'static str {
    match cause {
        EndCause::Normal if answered => "ANSWER",
        EndCause::Normal | EndCause::Cancelled | EndCause::QueueAbandoned | EndCause::AnsweredElsewhere => "CANCEL",
        EndCause::NoAnswer => "NOANSWER",
        EndCause::Busy | EndCause::Rejected => "BUSY",
        EndCause::Congestion => "CONGESTION",
        EndCause::Unavailable => "CHANUNAVAIL",
        _ => "UNKNOWN",
    }
}

impl VoipNowFace {
    /// A face for the simulated PBX named `pbx`; commands go to `sim`. Starts its sender.
    pub fn new(
        oauth: (&str, &str),
        refresh_token: &str,
        pbx: (&str, &str),
        faults: Arc<Faults>,
        sim: Option<SimHandle>,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let state = FaceState {
            next_unique: 500,
            refresh_tokens: HashSet::from([refresh_token.to_owned()]),
            ..FaceState::default()
        };
        let face = Self {
            state: Arc::new(Mutex::new(state)),
            wake: Arc::new(Notify::new()),
            faults,
            client: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default(),
            client_id: oauth.0.to_owned(),
            client_secret: oauth.1.to_owned(),
            pbx: (pbx.0.to_owned(), pbx.1.to_owned()),
            sim,
        };
        tokio::spawn(face.clone().send_loop());
        face
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaceState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a Call Event as an administrator would in the VoipNow panel.
    pub fn register(&self, extension: &str, event: CallEventType, method: HookMethod, url: &str) {
        let mut state = self.lock();
        state.next_id += 1;
        let id = format!("pce{}", state.next_id);
        state.registrations.entry(extension.to_owned()).or_default().push(Registration {
            id,
            event,
            method,
            url: url.to_owned(),
        });
    }

    /// Ends every access token now, as their hour running out would.
    pub fn expire_access_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// Accepts `refresh_token` as well, as an admin authorising the app anew would be given:
    /// the refresh tokens issued before stay as they were.
    pub fn issue_refresh_token(&self, refresh_token: &str) {
        self.lock().refresh_tokens.insert(refresh_token.to_owned());
    }

    /// How many refreshes the face granted, each rotating the refresh token (the one sent is
    /// refused from then on), so tests can tell a rotation happened.
    pub fn refreshes(&self) -> u64 {
        self.lock().refreshes
    }

    /// How many Call Events are registered at `extension`, by event type.
    pub fn registrations(&self, extension: &str) -> Vec<(CallEventType, String)> {
        let state = self.lock();
        state.registrations.get(extension).into_iter().flatten().map(|r| (r.event, r.url.clone())).collect()
    }

    /// True when every callback so far has been sent.
    pub fn idle(&self) -> bool {
        let state = self.lock();
        state.outbox.is_empty() && !state.in_flight
    }

    /// Callbacks answered 2xx, and those that were not.
    pub fn sent(&self) -> (u64, u64) {
        let state = self.lock();
        (state.delivered, state.failed)
    }

    /// Takes in ground-truth events: each extension leg's changes become callbacks.
    pub fn absorb(&self, events: &[Event]) {
        let mut state = self.lock();
        for event in events {
            match &event.kind {
                EventKind::Leg(report) => {
                    let Some(extension) = &report.extension else { continue };
                    absorb_leg(&mut state, report, extension.native(), event.at);
                }
                EventKind::CallEnded { call, .. } => {
                    state.open_calls.remove(call);
                }
                _ => {}
            }
        }
        while state.outbox.len() > OUTBOX_KEEP {
            if let Some(callback) = state.outbox.pop_front() {
                if let Some(channel) = state.channels.get_mut(&callback.unique) {
                    channel.lost = true;
                }
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    async fn send_loop(self) {
        // Stops with the runtime; a face lives as long as its test or sim process.
        loop {
            let next = {
                let mut state = self.lock();
                let next = state.outbox.pop_front();
                state.in_flight = next.is_some();
                next
            };
            let Some(callback) = next else {
                self.wake.notified().await;
                continue;
            };
            let unique = callback.unique.clone();
            let applicable = [Fault::Drop, Fault::Duplicate, Fault::Reorder, Fault::Slow];
            let schedule = self.faults.schedule(&applicable, callback, || self.lock().outbox.pop_front());
            if schedule.fault == Some(Fault::Drop) {
                if let Some(channel) = self.lock().channels.get_mut(&unique) {
                    channel.lost = true;
                }
            }
            tokio::time::sleep(schedule.delay).await;
            for callback in &schedule.sends {
                self.send(callback).await;
            }
            self.lock().in_flight = false;
        }
    }

    /// Sends one callback to every script registered for its event at its extension.
    async fn send(&self, callback: &Callback) {
        let extension = callback.params.called_extension.clone();
        let extension = match callback.event {
            CallEventType::DialIn | CallEventType::AnswerIn => extension,
            CallEventType::DialOut | CallEventType::AnswerOut => callback.params.caller_extension.clone(),
            CallEventType::Hangup if callback.params.call_flow.as_deref() == Some("IN") => extension,
            CallEventType::Hangup => callback.params.caller_extension.clone(),
        };
        let registrations: Vec<Registration> = {
            let state = self.lock();
            let registered = extension.and_then(|extension| state.registrations.get(&extension).cloned());
            registered.into_iter().flatten().filter(|r| r.event == callback.event).collect()
        };
        for registration in registrations {
            let request = match registration.method {
                HookMethod::Get => self.client.get(format!("{}?{}", registration.url, callback.params.to_form())),
                HookMethod::PostForm => self
                    .client
                    .post(&registration.url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(callback.params.to_form()),
                HookMethod::PostJson => self.client.post(&registration.url).json(&callback.params.to_json()),
            };
            let ok = matches!(request.send().await, Ok(response) if response.status().is_success());
            let mut state = self.lock();
            if ok {
                state.delivered += 1;
                if let Some(channel) = state.channels.get_mut(&callback.unique) {
                    let state_now = leg_state(callback.event);
                    let answered = callback.params.call_status.as_deref() == Some("ANSWER");
                    let cause = state_now.is_ended().then(|| end_cause(callback.params.call_status.as_deref()));
                    let was = channel.delivered.unwrap_or((0, None, false));
                    if rank(state_now) > was.0 {
                        channel.delivered = Some((rank(state_now), cause, was.2 || answered));
                    }
                }
            } else {
                state.failed += 1;
                if let Some(channel) = state.channels.get_mut(&callback.unique) {
                    channel.lost = true;
                }
            }
        }
    }

    /// The ground truth as VoipNow callbacks can convey it, for comparison with
    /// [`VoipNowFace::observed_picture`]. A channel that lost a callback on the way is expected
    /// as far as its delivered callbacks took it (callbacks are never resent), and the
    /// presence of its extension is not compared.
    pub fn truth_picture(&self, truth: &LiveState) -> Picture {
        let state = self.lock();
        let (extensions, calls, _) = truth.views_all();
        let mut lines = BTreeMap::new();
        let mut lossy = HashSet::new();
        for leg in calls.iter().flat_map(|call| &call.legs) {
            let (Some(extension), Some(unique)) = (&leg.extension, state.by_leg.get(&leg.id)) else { continue };
            let Some(channel) = state.channels.get(unique) else { continue };
            let key = format!("channel {unique}@{}", extended(extension.native()));
            if channel.lost {
                lossy.insert(extension.native().to_owned());
                if let Some((rank, cause, answered)) = channel.delivered {
                    lines.insert(key, line(rank, cause, answered));
                }
                continue;
            }
            let answered = leg.answered_at.is_some();
            let cause = leg.end_cause.map(|cause| end_cause(Some(call_status_of(cause, answered))));
            lines.insert(key, line(rank(leg.state), cause, answered));
        }
        for extension in &extensions {
            if !lossy.contains(extension.id.native()) {
                lines.insert(
                    format!("extension {}", extended(extension.id.native())),
                    super::presence_name(extension.presence).to_owned(),
                );
            }
        }
        Picture::from_lines(lines)
    }

    /// What a hub shows of a VoipNow connector's provider: extensions from its snapshot (those
    /// `truth` still compares), every leg from its call history.
    pub fn observed_picture(
        truth: &Picture,
        extensions: &[crate::model::Extension],
        calls: &[crate::model::Call],
    ) -> Picture {
        let mut lines = BTreeMap::new();
        for extension in extensions {
            let key = format!("extension {}", extension.id.native());
            if truth.contains(&key) {
                lines.insert(key, super::presence_name(extension.presence).to_owned());
            }
        }
        for leg in calls.iter().flat_map(|call| &call.legs) {
            lines.insert(
                format!("channel {}", leg.id.native()),
                line(rank(leg.state), leg.end_cause, leg.answered_at.is_some()),
            );
        }
        Picture::from_lines(lines)
    }

    /// The UnifiedAPI endpoints, with the faults as middleware.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/oauth/token.php", post(token))
            .route("/uapi/extensions/@me/{extension}/phoneCallEvents", get(list_events).post(create_event))
            .route("/uapi/extensions/@me/{extension}/phoneCallEvents/", post(create_event))
            .route("/uapi/phoneCalls/@me/simple", post(make_call))
            .route("/uapi/phoneCalls/@me/{extension}", get(list_calls).delete(hang_up))
            .route("/uapi/phoneCalls/@me/{extension}/{call}", put(update_call))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(self.faults.clone(), http_faults))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
    }
}

fn line(rank: u8, cause: Option<EndCause>, answered: bool) -> String {
    let state = ["unknown", "dialling", "answered", "ended"][usize::from(rank.min(3))];
    match cause {
        Some(cause) if rank == 3 => {
            format!("{state} ({cause:?}), {}", if answered { "answered" } else { "not answered" }).to_lowercase()
        }
        _ => state.to_owned(),
    }
}

fn absorb_leg(state: &mut FaceState, report: &LegReport, number: &str, at: Timestamp) {
    let extension = extended(number);
    let unique = match state.by_leg.get(&report.leg) {
        Some(unique) => unique.clone(),
        None => {
            state.next_unique += 1;
            let unique = format!("{}.{}", at.div_euclid(1000), state.next_unique);
            state.by_leg.insert(report.leg.clone(), unique.clone());
            // Seed 002: CallFlow OUT is a call made by the extension. The first channel of a call
            // that did not come in from outside made it (a click-to-call rings its own extension
            // first); a later one (a transfer, a consultation's callee) was made to it unless it
            // begins by dialling out.
            let first_of_call = state.open_calls.insert(report.call.clone());
            let inbound = if first_of_call {
                !super::dials_out(report)
            } else {
                !matches!(report.state, LegState::Initiating | LegState::RemoteRinging)
            };
            let channel = Channel {
                call_id: unique.clone(),
                extension: extension.clone(),
                leg: report.leg.clone(),
                inbound,
                rendered: LegState::Unknown,
                remote: report.remote.number.clone(),
                delivered: None,
                lost: false,
            };
            state.channels.insert(unique.clone(), channel);
            unique
        }
    };
    let Some(channel) = state.channels.get_mut(&unique) else { return };
    let before = rank(channel.rendered);
    let now = rank(report.state);
    if now <= before {
        return;
    }
    channel.rendered = report.state;
    let mut params = CallParams {
        call_id: Some(channel.call_id.clone()),
        call_api_id: Some(report.call.native().to_owned()),
        call_flow: Some(if channel.inbound { "IN" } else { "OUT" }.to_owned()),
        ..CallParams::default()
    };
    let remote_extension = report.remote.extension.as_deref().map(extended);
    if channel.inbound {
        params.called_extension = Some(extension.clone());
        params.caller_extension = remote_extension;
        params.caller_id_num = report.remote.number.clone();
        params.caller_id_name = report.remote.name.clone();
    } else {
        params.caller_extension = Some(extension.clone());
        params.called_extension = remote_extension;
        params.called_number = report.remote.number.clone();
    }
    let (dial, answer) = if channel.inbound {
        (CallEventType::DialIn, CallEventType::AnswerIn)
    } else {
        (CallEventType::DialOut, CallEventType::AnswerOut)
    };
    let mut events = Vec::new();
    if before == 0 {
        events.push((dial, "CALLING".to_owned()));
    }
    if before < 2 && report.state.is_answered() {
        events.push((answer, "ANSWER".to_owned()));
    }
    if now == 3 {
        let answered = before >= 2;
        events.push((
            CallEventType::Hangup,
            call_status_of(report.end_cause.unwrap_or(EndCause::Unknown), answered).to_owned(),
        ));
        state.ended.push_back(unique.clone());
    }
    for (event, status) in events {
        let params = CallParams { call_status: Some(status), ..params.clone() };
        state.outbox.push_back(Callback { unique: unique.clone(), event, params });
    }
    while state.ended.len() > ENDED_KEEP {
        let Some(old) = state.ended.pop_front() else { break };
        if let Some(channel) = state.channels.remove(&old) {
            state.by_leg.remove(&channel.leg);
        }
    }
}

fn uapi_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// Checks the bearer token; `Some` is the 401 to answer.
fn unauthorised(face: &VoipNowFace, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    (!face.lock().tokens.contains(token))
        .then(|| uapi_error(StatusCode::UNAUTHORIZED, "invalid_token", "The access token is missing or not valid"))
}

async fn token(State(face): State<VoipNowFace>, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("client_id") != face.client_id || field("client_secret") != face.client_secret {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" }))).into_response();
    }
    let mut state = face.lock();
    // Refresh tokens rotate: each is good for one refresh, as VoipNow's may be.
    if field("grant_type") != "refresh_token" || !state.refresh_tokens.remove(field("refresh_token")) {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_grant" }))).into_response();
    }
    state.next_id += 1;
    state.refreshes += 1;
    let access = format!("at{}x{}", state.next_id, rand::random::<u64>());
    let refresh = format!("rt{}x{}", state.next_id, rand::random::<u64>());
    state.tokens.insert(access.clone());
    state.refresh_tokens.insert(refresh.clone());
    Json(json!({ "access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": refresh }))
        .into_response()
}

async fn list_events(State(face): State<VoipNowFace>, Path(extension): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorised(&face, &headers) {
        return refused;
    }
    let state = face.lock();
    let entries: Vec<Value> = state
        .registrations
        .get(&extension)
        .into_iter()
        .flatten()
        .map(|r| {
            let method = if r.method == HookMethod::Get { "0" } else { "1" };
            json!({ "id": r.id, "type": r.event.type_code(), "method": method, "url": r.url, "status": "1" })
        })
        .collect();
    Json(json!({ "paging": { "total": entries.len() }, "entry": entries })).into_response()
}

async fn create_event(
    State(face): State<VoipNowFace>,
    Path(extension): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = unauthorised(&face, &headers) {
        return refused;
    }
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let Some(event) = CallEventType::from_type_code(&field("type")) else {
        return uapi_error(StatusCode::BAD_REQUEST, "pcet_type_invalid", "Invalid phone call event type");
    };
    let method = match field("method").as_str() {
        "0" => HookMethod::Get,
        "1" => HookMethod::PostForm,
        _ => return uapi_error(StatusCode::BAD_REQUEST, "pce_method_invalid", "Invalid request method"),
    };
    let url = field("url");
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return uapi_error(StatusCode::BAD_REQUEST, "pce_url_invalid", "Invalid script URL");
    }
    face.register(&extension, event, method, &url);
    let id = face.lock().registrations[&extension].last().map(|r| r.id.clone()).unwrap_or_default();
    Json(json!({ "id": id })).into_response()
}

/// The live channel at `extension` whose other party is `remote` (or the only live one).
fn live_channel(face: &VoipNowFace, extension: &str, remote: Option<&str>) -> Option<(String, LegId)> {
    let state = face.lock();
    let live: Vec<&Channel> =
        state.channels.values().filter(|c| c.extension == extension && c.rendered != LegState::Ended).collect();
    let found: Vec<&&Channel> =
        live.iter().filter(|c| remote.is_none_or(|remote| c.remote.as_deref() == Some(remote))).collect();
    (found.len() == 1).then(|| (found[0].call_id.clone(), found[0].leg.clone()))
}

async fn to_pbx(face: &VoipNowFace, command: Command) -> Response {
    match pbx_reply(face, command).await {
        Ok(message) => Json(json!({ "status": message })).into_response(),
        Err(refused) => refused,
    }
}

/// The engine's reply to a command, or the UnifiedAPI error that says why there is none.
async fn pbx_reply(face: &VoipNowFace, command: Command) -> Result<String, Response> {
    let Some(sim) = &face.sim else {
        return Err(uapi_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the simulated PBX takes no commands"));
    };
    sim.command(command).await.map_err(|error| match error {
        SimError::Refused(reason) => uapi_error(StatusCode::BAD_REQUEST, "pc_action_invalid", &reason),
        SimError::Stopped => uapi_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the PBX has stopped"),
    })
}

fn sim_command(face: &VoipNowFace, action: Action, leg: Option<LegId>, extension: Option<&str>) -> Command {
    Command {
        action,
        call: None,
        leg,
        extension: extension.map(|e| ExtensionId::new(&face.pbx.0, &face.pbx.1, e.rsplit('*').next().unwrap_or(e))),
        number: None,
    }
}

async fn make_call(State(face): State<VoipNowFace>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(refused) = unauthorised(&face, &headers) {
        return refused;
    }
    let extension = body.get("extension").and_then(Value::as_str).unwrap_or_default().to_owned();
    let view = body.get("phoneCallView").and_then(|views| views.get(0));
    let destination = view.and_then(|v| v.get("destination")).and_then(|d| d.get(0)).and_then(Value::as_str);
    let (false, Some(destination)) = (extension.is_empty(), destination) else {
        return uapi_error(StatusCode::BAD_REQUEST, "pc_destination_invalid", "extension and destination are required");
    };
    let mut command = sim_command(&face, Action::Dial, None, Some(&extension));
    command.number = Some(destination.to_owned());
    let placed = match pbx_reply(&face, command).await {
        Ok(message) => message,
        Err(refused) => return refused,
    };
    // The phone call's id is the `CallAPIID` its Call Events carry (the simulated call's own
    // id, which the engine's dial reply ends with), so the connector can tell its own calls.
    let Some(id) = placed.rsplit_once(": ").map(|(_, call)| call.rsplit('/').next().unwrap_or(call).to_owned()) else {
        return uapi_error(StatusCode::INTERNAL_SERVER_ERROR, "unavailable", "the PBX did not name the call it placed");
    };
    Json(json!([{ "id": id, "extension": extension, "phoneCallView": [{ "id": "00", "source": [extension], "destination": [destination], "status": 2 }] }]))
        .into_response()
}

async fn list_calls(State(face): State<VoipNowFace>, Path(extension): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = unauthorised(&face, &headers) {
        return refused;
    }
    let state = face.lock();
    let entries: Vec<Value> = state
        .channels
        .values()
        .filter(|c| c.extension == extension && c.rendered != LegState::Ended)
        .map(|c| {
            let (source, destination) = if c.inbound {
                (c.remote.clone().unwrap_or_default(), extension.clone())
            } else {
                (extension.clone(), c.remote.clone().unwrap_or_default())
            };
            let status = if c.rendered.is_answered() { 5 } else { 3 };
            json!({ "id": c.call_id, "extension": extension, "phoneCallView": [{
                "id": "00", "source": [source], "destination": [destination], "status": status,
                "flow": if c.inbound { 8 } else { 4 },
            }] })
        })
        .collect();
    Json(json!({ "entry": entries })).into_response()
}

async fn hang_up(
    State(face): State<VoipNowFace>,
    Path(extension): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = unauthorised(&face, &headers) {
        return refused;
    }
    let Some((_, leg)) = live_channel(&face, &extension, query.get("phoneNumber").map(String::as_str)) else {
        return uapi_error(StatusCode::NOT_FOUND, "pc_not_found", "No such phone call");
    };
    to_pbx(&face, sim_command(&face, Action::Hangup, Some(leg), None)).await
}

async fn update_call(
    State(face): State<VoipNowFace>,
    Path((extension, call)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refused) = unauthorised(&face, &headers) {
        return refused;
    }
    let leg = face.lock().channels.get(&call).filter(|c| c.extension == extension).map(|c| c.leg.clone());
    let Some(leg) = leg else { return uapi_error(StatusCode::NOT_FOUND, "pc_not_found", "No such phone call") };
    match body.get("action").and_then(Value::as_str) {
        Some("OnHold") => to_pbx(&face, sim_command(&face, Action::Hold, Some(leg), None)).await,
        _ => uapi_error(StatusCode::BAD_REQUEST, "pc_action_invalid", "Unknown action"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::voipnow::{flow_in, observe};
    use crate::model::{Direction, Origin, Party};

    use crate::sim::faces::click_to_call_report as click_to_call;

    #[test]
    fn a_click_to_call_is_a_call_made_by_the_extension_though_its_phone_rings_first() {
        let mut state = FaceState::default();
        let at = 1_790_000_000_000;
        for (now, after) in [(LegState::Ringing, 0), (LegState::RemoteRinging, 2_000), (LegState::Active, 9_000)] {
            absorb_leg(&mut state, &click_to_call(now), "101", at + after);
        }
        let sent: Vec<Callback> = state.outbox.drain(..).collect();
        let events: Vec<CallEventType> = sent.iter().map(|callback| callback.event).collect();
        assert_eq!(events, [CallEventType::DialOut, CallEventType::AnswerOut]);
        let dial = &sent[0].params;
        assert_eq!(dial.call_flow.as_deref(), Some("OUT"));
        assert_eq!(dial.caller_extension.as_deref(), Some("0001*101"));
        assert_eq!(dial.called_number.as_deref(), Some("+61299990000"));
        // The connector reads 101's call out to the number dialled.
        for callback in &sent {
            let inbound = flow_in(callback.event, &callback.params).expect("Dial and Answer say their side");
            let seen = observe(callback.event, &callback.params, inbound).unwrap();
            assert_eq!(seen.extension, "0001*101");
            assert_eq!(seen.direction, Direction::Outbound, "{:?}", callback.params);
            assert_eq!(seen.remote.number.as_deref(), Some("+61299990000"));
        }

        // Transferred to 102 later, the call rings 102: a call 102 received.
        let transferred = LegReport {
            leg: LegId::new("sim", "cc", "r-1-1"),
            extension: Some(ExtensionId::new("sim", "cc", "102")),
            ..click_to_call(LegState::Ringing)
        };
        absorb_leg(&mut state, &transferred, "102", at + 20_000);
        let rung = state.outbox.pop_front().expect("a Dial-In at 102");
        assert_eq!((rung.event, rung.params.call_flow.as_deref()), (CallEventType::DialIn, Some("IN")));
        assert_eq!(rung.params.called_extension.as_deref(), Some("0001*102"));
    }

    #[test]
    fn an_outside_caller_rings_the_extension_as_a_call_it_receives() {
        let mut state = FaceState::default();
        let caller = Party { number: Some("+61355550123".into()), ..Party::default() };
        let report = LegReport {
            direction: Direction::Inbound,
            origin: Origin::Normal,
            remote: caller,
            ..click_to_call(LegState::Ringing)
        };
        absorb_leg(&mut state, &report, "101", 1_790_000_000_000);
        let rung = state.outbox.pop_front().expect("a Dial-In");
        assert_eq!((rung.event, rung.params.call_flow.as_deref()), (CallEventType::DialIn, Some("IN")));
        let seen = observe(rung.event, &rung.params, true).unwrap();
        assert_eq!(seen.direction, Direction::Inbound);
        assert_eq!(seen.remote.number.as_deref(), Some("+61355550123"));
    }
}
