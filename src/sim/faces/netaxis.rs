//! The simulator's Netaxis face: the Call Service REST API of the seed over loopback, backed by
//! the simulated PBX. Each configured user's calls are the extension legs of the ground truth,
//! each with its own `callhalf-N:0` id and its conversation's `externalTrackingId`; commands go
//! to the PBX, and the face enforces the state rules with the seed's 59 sub-errors (hold of a
//! held call, transfer of a detached call, recording that is not active...). It also holds
//! what the PBX has no notion of: recording states with their allowed controls, detached calls
//! and call retrieve, IMRN resources, bearer tokens and the login API.

use crate::connectors::netaxis::wire::{controls_name, Modify};
use crate::model::{
    Action, CallId, Command, Event, EventKind, ExtensionId, LegId, LegState, Origin, Party, RecordingState, Timestamp,
};
use crate::sim::faults::{http_faults, Faults};
use crate::sim::harness::Picture;
use crate::sim::runner::{SimError, SimHandle};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Ended legs remembered for the pictures.
const ENDED_KEEP: usize = 50_000;
/// IMRN resources the face can hand out.
const IMRN_POOL: u32 = 100;
/// How long a command waits for the PBX's new call to show, for the reply's callId.
const NEW_CALL_WAIT: Duration = Duration::from_secs(2);
/// The sub-error code of every refused call operation.
const INVALID_CALL_OPERATION: u16 = 59;

/// One user's half of a call.
#[derive(Debug, Clone)]
struct Half {
    user: String,
    call_id: String,
    /// The PBX's leg and call.
    leg: LegId,
    call: CallId,
    tracking: String,
    personality: &'static str,
    state: LegState,
    remote: Party,
    start: Timestamp,
    answer: Option<Timestamp>,
    appearance: u32,
    detached: bool,
    /// Shown in a list with details at least once.
    shown: bool,
}

/// A call's recording as BroadWorks holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Recorder {
    state: RecordingState,
}

impl Recorder {
    fn controls(self) -> Vec<Action> {
        match self.state {
            RecordingState::Off => vec![Action::RecordStart],
            RecordingState::Pending => vec![Action::RecordStop],
            RecordingState::Started => vec![Action::RecordPause, Action::RecordStop],
            RecordingState::Paused => vec![Action::RecordResume, Action::RecordStop],
            RecordingState::Failed => Vec::new(),
        }
    }
}

#[derive(Default)]
struct FaceState {
    halves: HashMap<LegId, Half>,
    /// Ended halves that a list had shown: the picture says they ended.
    ended: BTreeMap<String, ()>,
    ended_order: VecDeque<String>,
    recorders: HashMap<CallId, Recorder>,
    /// Consultations started by a call to a colleague while another was held: held half → new half.
    consults: HashMap<LegId, LegId>,
    tokens: HashSet<String>,
    next_half: u64,
    imrns: u32,
    /// Call lists served per user.
    served: HashMap<String, u64>,
    requests: u64,
}

/// Who the face serves and how.
#[derive(Debug, Clone)]
pub struct NetaxisSetup {
    pub tenant: String,
    pub group: String,
    /// (user id, extension number) of every user.
    pub users: Vec<(String, String)>,
    /// A token that is always accepted.
    pub token: String,
    /// The login API's credentials.
    pub login: (String, String),
    /// Like some deployments: `includeDetails` is only read from the GET's JSON body.
    pub details_in_body_only: bool,
}

/// The face; cheap to clone.
#[derive(Clone)]
pub struct NetaxisFace {
    state: Arc<Mutex<FaceState>>,
    setup: Arc<NetaxisSetup>,
    faults: Arc<Faults>,
    pbx: (String, String),
    sim: Option<SimHandle>,
}

/// Why a request was not admitted.
enum Refusal {
    Token,
    User,
    NoCall,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Token => details_error(StatusCode::UNAUTHORIZED, "error invalid or expired token"),
            Refusal::User => details_error(StatusCode::FORBIDDEN, "error invalid calling user"),
            Refusal::NoCall => details_error(StatusCode::NOT_FOUND, "error call not found"),
        }
    }
}

/// Netaxis's error with the sub-error list shape: `[{"code": 59, "name", "message"}]`.
fn sub_error(message: &str) -> Response {
    let body = json!([{ "code": INVALID_CALL_OPERATION, "name": "INVALID_CALL_OPERATION", "message": message }]);
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Netaxis's error with the `details` shape.
fn details_error(status: StatusCode, details: &str) -> Response {
    (status, Json(json!({ "details": details }))).into_response()
}

fn time_text(at: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(at).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string()).unwrap_or_default()
}

/// A stable external tracking id for a PBX call, shaped as the seed's (a UUID).
fn tracking_id(call: &CallId) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(call.as_str(), &mut hasher);
    let high = std::hash::Hasher::finish(&hasher);
    let low = high.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xfff,
        0x8000 | (low >> 48 & 0x3fff),
        low & 0xffff_ffff_ffff
    )
}

impl NetaxisFace {
    /// A face for the simulated PBX named `pbx`; commands go to `sim`.
    pub fn new(setup: NetaxisSetup, pbx: (&str, &str), faults: Arc<Faults>, sim: Option<SimHandle>) -> Self {
        Self {
            state: Arc::new(Mutex::new(FaceState { next_half: 1_595_866, ..FaceState::default() })),
            setup: Arc::new(setup),
            faults,
            pbx: (pbx.0.to_owned(), pbx.1.to_owned()),
            sim,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaceState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn user_of_extension(&self, number: &str) -> Option<&str> {
        self.setup.users.iter().find(|(_, extension)| extension == number).map(|(user, _)| user.as_str())
    }

    fn extension_of(&self, user: &str) -> Option<&str> {
        self.setup.users.iter().find(|(id, _)| id == user).map(|(_, extension)| extension.as_str())
    }

    /// Takes in ground-truth events: every extension leg of a configured user is a call half.
    pub fn absorb(&self, events: &[Event]) {
        let mut state = self.lock();
        for event in events {
            let EventKind::Leg(report) = &event.kind else { continue };
            let Some(user) = report.extension.as_ref().and_then(|e| self.user_of_extension(e.native())) else {
                continue;
            };
            let user = user.to_owned();
            if !state.halves.contains_key(&report.leg) {
                if report.state.is_ended() {
                    continue;
                }
                state.next_half += 1;
                // The user's own phone rings first in a click-to-call: that half is Click-to-Dial.
                let first_of_call = !state.halves.values().any(|half| half.call == report.call);
                let personality = match (report.state, &report.origin) {
                    (_, Origin::ClickToCall) if first_of_call => "Click-to-Dial",
                    (LegState::Initiating | LegState::RemoteRinging, _) => "Originator",
                    _ => "Terminator",
                };
                let appearance = state.halves.values().filter(|half| half.user == user).count() as u32 + 1;
                let half = Half {
                    user: user.clone(),
                    call_id: format!("callhalf-{}:0", state.next_half),
                    leg: report.leg.clone(),
                    call: report.call.clone(),
                    tracking: tracking_id(&report.call),
                    personality,
                    state: report.state,
                    remote: report.remote.clone(),
                    start: event.at,
                    answer: None,
                    appearance,
                    detached: false,
                    shown: false,
                };
                state.halves.insert(report.leg.clone(), half);
            }
            let Some(half) = state.halves.get_mut(&report.leg) else { continue };
            half.state = report.state;
            if report.remote != Party::default() {
                half.remote = report.remote.clone();
            }
            if report.state.is_answered() && half.answer.is_none() {
                half.answer = Some(event.at);
            }
            let call = half.call.clone();
            if report.state.is_ended() {
                let Some(half) = state.halves.remove(&report.leg) else { continue };
                if half.shown {
                    let key = format!("leg {}/{}", half.user, half.call_id);
                    state.ended.insert(key.clone(), ());
                    state.ended_order.push_back(key);
                }
                if !state.halves.values().any(|other| other.call == call) {
                    state.recorders.remove(&call);
                }
                let leg = report.leg.clone();
                state.consults.retain(|held, consult| *held != leg && *consult != leg);
            } else if report.state == LegState::Active {
                if let Some(recorder) = state.recorders.get_mut(&call) {
                    if recorder.state == RecordingState::Pending {
                        recorder.state = RecordingState::Started;
                    }
                }
            }
        }
        while state.ended_order.len() > ENDED_KEEP {
            if let Some(old) = state.ended_order.pop_front() {
                state.ended.remove(&old);
            }
        }
    }

    /// Call lists served to `user` so far: a poll that came after a change saw it.
    pub fn served(&self, user: &str) -> u64 {
        self.lock().served.get(user).copied().unwrap_or(0)
    }

    /// Requests answered by the handlers (not by a fault).
    pub fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// Detaches the answered call of `extension` from its phone, as BroadWorks does when the
    /// call is parked on the network; call retrieve attaches it again.
    pub fn detach(&self, extension: &str) -> bool {
        let Some(user) = self.user_of_extension(extension).map(str::to_owned) else { return false };
        let mut state = self.lock();
        let half = state.halves.values_mut().find(|half| half.user == user && half.state.is_answered());
        half.map(|half| half.detached = true).is_some()
    }

    /// Makes the recording of `extension`'s call fail, as a recorder outage would.
    pub fn fail_recording(&self, extension: &str) -> bool {
        let Some(user) = self.user_of_extension(extension).map(str::to_owned) else { return false };
        let mut state = self.lock();
        let Some(call) = state.halves.values().find(|half| half.user == user).map(|half| half.call.clone()) else {
            return false;
        };
        state.recorders.insert(call, Recorder { state: RecordingState::Failed });
        true
    }

    /// How the state Netaxis shows for a half, in the board's words: every half a list has
    /// shown, live or ended.
    pub fn truth_picture(&self) -> Picture {
        let state = self.lock();
        let mut lines: BTreeMap<String, String> =
            state.ended.keys().map(|key| (key.clone(), "ended".to_owned())).collect();
        for half in state.halves.values().filter(|half| half.shown) {
            let (shown, _) = shown_state(&state, half);
            let line = match shown {
                "Alerting/Ringing" if half.personality == "Terminator" => "ringing",
                "Alerting/Ringing" => "remoteringing",
                "Active" => "active",
                "Held" => "held by local",
                "Remote Held" => "held by remote",
                "Detached" => "detached",
                _ => "unknown",
            };
            lines.insert(format!("leg {}/{}", half.user, half.call_id), line.to_owned());
        }
        Picture::from_lines(lines)
    }

    /// What a hub's call history shows of a Netaxis connector's legs.
    pub fn observed_picture(calls: &[crate::model::Call]) -> Picture {
        let mut lines = BTreeMap::new();
        for leg in calls.iter().flat_map(|call| &call.legs) {
            let line = match (leg.state, leg.held_by) {
                (LegState::Held, Some(by)) => format!("held by {by:?}").to_lowercase(),
                (state, _) => format!("{state:?}").to_lowercase(),
            };
            lines.insert(format!("leg {}", leg.id.native()), line);
        }
        Picture::from_lines(lines)
    }

    /// The Call Service under `/api/v1/tenants/...`, the login API under `/api/v01/auth/login`,
    /// with the faults as middleware.
    pub fn router(&self) -> Router {
        let calls = "/api/v1/tenants/{tenant}/groups/{group}/users/{user}/services/calls";
        Router::new()
            .route("/api/v01/auth/login", post(login))
            .route(&format!("{calls}/"), get(list).post(dial))
            .route(&format!("{calls}/retrieve/"), post(retrieve))
            .route(&format!("{calls}/imrn/"), post(imrn))
            .route(&format!("{calls}/{{call}}/"), get(details).put(modify).delete(release))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(self.faults.clone(), http_faults))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
    }

    /// Checks the token, tenant, group and user of a request; `Err` is the refusal.
    fn admit(&self, headers: &HeaderMap, path: &UserPath) -> Result<String, Refusal> {
        self.lock().requests += 1;
        let token = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        let known = token == self.setup.token || self.lock().tokens.contains(token);
        if token.is_empty() || !known {
            return Err(Refusal::Token);
        }
        let in_group = path.tenant == self.setup.tenant && path.group == self.setup.group;
        match self.extension_of(&path.user) {
            Some(_) if in_group => Ok(path.user.clone()),
            _ => Err(Refusal::User),
        }
    }

    /// Admits a request about one call and finds the user's live half of it.
    fn admit_call(&self, headers: &HeaderMap, path: &CallPath) -> Result<(String, Half), Refusal> {
        let user = self.admit(headers, &path.user_path())?;
        let half = self.half(&user, &path.call).ok_or(Refusal::NoCall)?;
        Ok((user, half))
    }

    fn command(&self, action: Action, half: Option<&Half>, user: &str, number: Option<String>) -> Command {
        let extension = self.extension_of(user).map(|number| ExtensionId::new(&self.pbx.0, &self.pbx.1, number));
        Command {
            action,
            call: half.map(|half| half.call.clone()),
            leg: half.map(|half| half.leg.clone()),
            extension,
            number,
        }
    }

    async fn run(&self, command: Command) -> Result<String, String> {
        let Some(sim) = &self.sim else { return Err("this face has no simulated PBX to command".into()) };
        match sim.command(command).await {
            Ok(done) => Ok(done),
            Err(SimError::Refused(words)) => Err(words),
            Err(SimError::Stopped) => Err("the simulated PBX has stopped".into()),
        }
    }

    /// The user's live half whose id is `call_id`.
    fn half(&self, user: &str, call_id: &str) -> Option<Half> {
        self.lock().halves.values().find(|half| half.user == user && half.call_id == call_id).cloned()
    }

    /// Waits for a half of `user` that was not there `before`, for a created call's reply.
    async fn new_half(&self, user: &str, before: &HashSet<LegId>) -> Option<Half> {
        let deadline = tokio::time::Instant::now() + NEW_CALL_WAIT;
        while tokio::time::Instant::now() < deadline {
            let found =
                self.lock().halves.values().find(|half| half.user == user && !before.contains(&half.leg)).cloned();
            if found.is_some() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }

    fn halves_of(&self, user: &str) -> Vec<Half> {
        self.lock().halves.values().filter(|half| half.user == user).cloned().collect()
    }
}

/// The state a half shows, and whether the other side holds it.
fn shown_state(state: &FaceState, half: &Half) -> (&'static str, bool) {
    if half.detached {
        return ("Detached", false);
    }
    match half.state {
        LegState::Initiating | LegState::RemoteRinging | LegState::Ringing => ("Alerting/Ringing", false),
        LegState::Held => ("Held", false),
        LegState::Ended => ("Released", false),
        _ => {
            let held_elsewhere = state
                .halves
                .values()
                .any(|other| other.call == half.call && other.leg != half.leg && other.state == LegState::Held);
            if held_elsewhere {
                ("Remote Held", true)
            } else {
                ("Active", false)
            }
        }
    }
}

/// A half as the list with details (or, with `recording`, the call details) gives it.
fn render(state: &FaceState, half: &Half, recording: bool, detailed: bool) -> Value {
    let mut entry = json!({ "callId": half.call_id, "inConference": false });
    if !detailed {
        entry["uri"] = json!(format!("{}/", half.call_id));
        return entry;
    }
    let (shown, _) = shown_state(state, half);
    let (address, call_type) = match (&half.remote.extension, &half.remote.number) {
        (Some(extension), _) => (extension.clone(), "Group"),
        (None, Some(number)) => (number.clone(), "Unknown"),
        (None, None) => (String::new(), "Unknown"),
    };
    entry["externalTrackingId"] = json!(half.tracking);
    entry["personality"] = json!(half.personality);
    entry["state"] = json!(shown);
    entry["remoteParty"] = json!({ "address": address, "callType": call_type });
    entry["endpoint"] = json!({ "addressOfRecord": format!("LP_{}@sim.netaxis.test", half.user) });
    entry["appearance"] = json!(half.appearance);
    entry["startTime"] = json!(time_text(half.start));
    if let Some(answer) = half.answer {
        entry["answerTime"] = json!(time_text(answer));
    }
    if recording {
        let recorder = state.recorders.get(&half.call).copied().unwrap_or(Recorder { state: RecordingState::Off });
        let answered = half.answer.is_some() && !half.detached;
        entry["recorded"] = json!(matches!(recorder.state, RecordingState::Started));
        if recorder.state != RecordingState::Off {
            let name = match recorder.state {
                RecordingState::Pending => "Pending",
                RecordingState::Started => "Started",
                RecordingState::Paused => "Paused",
                _ => "Failed",
            };
            entry["recordingState"] = json!(name);
        }
        let controls = if answered { recorder.controls() } else { Vec::new() };
        entry["allowedRecordingControls"] = json!(controls_name(&controls));
    }
    entry
}

#[derive(serde::Deserialize)]
struct UserPath {
    tenant: String,
    group: String,
    user: String,
}

#[derive(serde::Deserialize)]
struct CallPath {
    tenant: String,
    group: String,
    user: String,
    call: String,
}

impl CallPath {
    fn user_path(&self) -> UserPath {
        UserPath { tenant: self.tenant.clone(), group: self.group.clone(), user: self.user.clone() }
    }
}

fn json_body(body: &Bytes) -> Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return json!({});
    }
    crate::connectors::rest::lenient_json(body).unwrap_or(Value::Null)
}

fn phone_number(text: Option<&Value>) -> Option<String> {
    let text = text?.as_str()?.trim();
    let digits = text.strip_prefix('+').unwrap_or(text);
    ((2..=20).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())).then(|| text.to_owned())
}

async fn login(State(face): State<NetaxisFace>, Json(body): Json<Value>) -> Response {
    let field = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    if (field("username"), field("password")) != face.setup.login {
        return details_error(StatusCode::UNAUTHORIZED, "bad credentials");
    }
    let token = format!("nx.{:016x}.{:016x}", rand::random::<u64>(), rand::random::<u64>());
    face.lock().tokens.insert(token.clone());
    Json(json!({ "access_token": token, "refresh_token": format!("r{token}") })).into_response()
}

async fn list(
    State(face): State<NetaxisFace>,
    Path(path): Path<UserPath>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match face.admit(&headers, &path) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let in_body = json_body(&body).get("includeDetails").and_then(Value::as_bool).unwrap_or(false);
    let in_query = query.get("includeDetails").is_some_and(|value| value == "true");
    let detailed = in_body || (in_query && !face.setup.details_in_body_only);
    let mut state = face.lock();
    let mut halves: Vec<Half> = state.halves.values().filter(|half| half.user == user).cloned().collect();
    halves.sort_by_key(|half| half.appearance);
    let calls: Vec<Value> = halves.iter().map(|half| render(&state, half, false, detailed)).collect();
    if detailed {
        for half in &halves {
            if let Some(live) = state.halves.get_mut(&half.leg) {
                live.shown = true;
            }
        }
    }
    *state.served.entry(user).or_default() += 1;
    Json(json!({ "calls": calls })).into_response()
}

async fn details(State(face): State<NetaxisFace>, Path(path): Path<CallPath>, headers: HeaderMap) -> Response {
    let (_, half) = match face.admit_call(&headers, &path) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let state = face.lock();
    Json(render(&state, &half, true, true)).into_response()
}

async fn dial(
    State(face): State<NetaxisFace>,
    Path(path): Path<UserPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match face.admit(&headers, &path) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let Some(number) = phone_number(json_body(&body).get("phoneNumber")) else {
        return details_error(StatusCode::BAD_REQUEST, "error invalid phone number");
    };
    let halves = face.halves_of(&user);
    let before: HashSet<LegId> = halves.iter().map(|half| half.leg.clone()).collect();
    // A call to a colleague's extension while the only other call is held is a consultation,
    // as on the phone. Any other number is a new call of its own beside the held one (the PBX
    // consults extensions only; such a pair cannot be joined by consultativeTransfer).
    let held: Vec<&Half> = halves.iter().filter(|half| half.state == LegState::Held && !half.detached).collect();
    let colleague = face.user_of_extension(&number).is_some();
    let consulted = match (held.as_slice(), halves.len()) {
        ([held], 1) if colleague => Some((*held).clone()),
        _ => None,
    };
    let command = match &consulted {
        Some(held) => face.command(Action::Consult, Some(held), &user, Some(number)),
        None => face.command(Action::Dial, None, &user, Some(number)),
    };
    if let Err(words) = face.run(command).await {
        // 403 is the seed's word for a calling user who cannot call (logged out, on a call); a
        // colleague who cannot be consulted (busy, logged out) is a refused call operation.
        return match consulted {
            Some(_) => sub_error(&words),
            None => details_error(StatusCode::FORBIDDEN, &format!("error invalid calling user: {words}")),
        };
    }
    match face.new_half(&user, &before).await {
        Some(half) => {
            if let Some(held) = consulted {
                face.lock().consults.insert(held.leg, half.leg.clone());
            }
            (StatusCode::CREATED, Json(json!({ "callId": half.call_id, "externalTrackingId": half.tracking })))
                .into_response()
        }
        None => details_error(StatusCode::INTERNAL_SERVER_ERROR, "the call was placed but did not show"),
    }
}

async fn modify(
    State(face): State<NetaxisFace>,
    Path(path): Path<CallPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match face.admit(&headers, &path.user_path()) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let action = match Modify::from_body(&json_body(&body)) {
        Ok(action) => action,
        Err(reason) => return details_error(StatusCode::BAD_REQUEST, &reason),
    };
    let Some(half) = face.half(&user, &path.call) else {
        return details_error(StatusCode::NOT_FOUND, "error call not found");
    };
    if half.detached {
        return sub_error("The call is in the detached state.");
    }
    let answered = half.state.is_answered();
    let (shown, _) = shown_state(&face.lock(), &half);
    match action {
        Modify::Hold => match shown {
            "Active" | "Remote Held" => {
                let held = pbx(&face, face.command(Action::Hold, Some(&half), &user, None)).await;
                if held.status().is_success() {
                    // Shown at once: the PBX's own event follows through the runner.
                    if let Some(live) = face.lock().halves.get_mut(&half.leg) {
                        live.state = LegState::Held;
                    }
                }
                held
            }
            "Held" => sub_error("The state of the call is not valid."),
            _ => sub_error("The endpoint state of the call is not valid."),
        },
        Modify::Reconnect => {
            if half.state != LegState::Held {
                return sub_error("The state of the call is not valid.");
            }
            // BroadWorks releases the user's other calls and reconnects this one. The others go
            // first: resumed beside a call that still rings or talks, the user would be on two
            // calls at once (and the PBX refuses to resume beside a ringing one).
            let others: Vec<Half> = face.halves_of(&user).into_iter().filter(|other| other.leg != half.leg).collect();
            for other in &others {
                let _ = face.run(face.command(Action::Hangup, Some(other), &user, None)).await;
            }
            match face.run(face.command(Action::Resume, Some(&half), &user, None)).await {
                Ok(_) => Json(json!({})).into_response(),
                // Releasing a consultation hands its held caller back by itself.
                Err(words) if !others.is_empty() && words.contains("not on hold") => Json(json!({})).into_response(),
                Err(_) => sub_error("The state of the call is not valid."),
            }
        }
        Modify::BlindTransfer { phone_number } => {
            if !answered {
                return sub_error("The endpoint state of the call is not valid.");
            }
            match face.run(face.command(Action::BlindTransfer, Some(&half), &user, Some(phone_number))).await {
                Ok(_) => Json(json!({})).into_response(),
                Err(_) => sub_error("Transfer has failed."),
            }
        }
        Modify::ConsultativeTransfer { transfer_call_id } => {
            // Only the consultation of this held call can take it over.
            let consultation = face.half(&user, &transfer_call_id).map(|other| other.leg);
            let linked = face.lock().consults.get(&half.leg).cloned();
            if half.state != LegState::Held || consultation.is_none() || consultation != linked {
                return sub_error("Transfer has failed.");
            }
            match face.run(face.command(Action::CompleteTransfer, Some(&half), &user, None)).await {
                Ok(_) => Json(json!({})).into_response(),
                Err(words) if words.contains("already") => sub_error("Consultative transfer already in progress,"),
                Err(_) => sub_error("Transfer has failed."),
            }
        }
        recording => {
            if !answered {
                return sub_error("The endpoint state of the call is not valid.");
            }
            let now = face.lock().recorders.get(&half.call).map_or(RecordingState::Off, |recorder| recorder.state);
            let held = half.state == LegState::Held;
            let (action, next) = match (&recording, now) {
                (_, RecordingState::Failed) => return sub_error("Recording has failed for this call."),
                (Modify::StartRecording, RecordingState::Off) => {
                    (Action::RecordStart, if held { RecordingState::Pending } else { RecordingState::Started })
                }
                (Modify::PauseRecording, RecordingState::Started) => (Action::RecordPause, RecordingState::Paused),
                (Modify::ResumeRecording, RecordingState::Paused) => (Action::RecordResume, RecordingState::Started),
                (Modify::StopRecording, RecordingState::Started | RecordingState::Paused | RecordingState::Pending) => {
                    (Action::RecordStop, RecordingState::Off)
                }
                (Modify::StartRecording, _) => return sub_error("The state of the call is not valid."),
                (_, RecordingState::Off | RecordingState::Pending) => return sub_error("Recording is not active."),
                _ => return sub_error("The state of the call is not valid."),
            };
            let done = pbx(&face, face.command(action, Some(&half), &user, None)).await;
            if done.status().is_success() {
                face.lock().recorders.insert(half.call.clone(), Recorder { state: next });
            }
            done
        }
    }
}

/// Runs a command on the PBX: `{}` when done, else a 59 with the PBX's words.
async fn pbx(face: &NetaxisFace, command: Command) -> Response {
    match face.run(command).await {
        Ok(_) => Json(json!({})).into_response(),
        Err(_) => sub_error("The state of the call is not valid."),
    }
}

async fn release(State(face): State<NetaxisFace>, Path(path): Path<CallPath>, headers: HeaderMap) -> Response {
    let (user, half) = match face.admit_call(&headers, &path) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    match face.run(face.command(Action::Hangup, Some(&half), &user, None)).await {
        Ok(_) => Json(json!({})).into_response(),
        Err(_) => details_error(StatusCode::NOT_FOUND, "error call not found"),
    }
}

async fn retrieve(State(face): State<NetaxisFace>, Path(path): Path<UserPath>, headers: HeaderMap) -> Response {
    let user = match face.admit(&headers, &path) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let mut state = face.lock();
    let Some(half) = state.halves.values_mut().find(|half| half.user == user && half.detached) else {
        return details_error(StatusCode::NOT_FOUND, "no call to retrieve");
    };
    half.detached = false;
    (StatusCode::CREATED, Json(json!({ "callId": half.call_id, "externalTrackingId": half.tracking }))).into_response()
}

async fn imrn(
    State(face): State<NetaxisFace>,
    Path(path): Path<UserPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = face.admit(&headers, &path) {
        return refusal.into_response();
    }
    let body = json_body(&body);
    let (Some(_called), Some(calling)) =
        (phone_number(body.get("phoneNumber")), phone_number(body.get("callingPhoneNumber")))
    else {
        return details_error(StatusCode::BAD_REQUEST, "error invalid phone number");
    };
    if face.user_of_extension(&calling).is_none() {
        return details_error(StatusCode::NOT_FOUND, "callingPhoneNumber not found");
    }
    let mut state = face.lock();
    if state.imrns >= IMRN_POOL {
        drop(state);
        let body = json!([{ "code": INVALID_CALL_OPERATION, "message": "IMRN allocation failed." }]);
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    state.imrns += 1;
    (StatusCode::CREATED, Json(json!({ "imrn": format!("+32365482{:02}", state.imrns - 1) }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_ids_are_stable_and_shaped_as_the_seeds() {
        let call = CallId::new("sim", "cc", "c-1");
        let id = tracking_id(&call);
        assert_eq!(id, tracking_id(&call));
        assert_eq!(id.len(), "6d435f94-9ef8-4949-b9c3-1bccd5df1c1f".len());
        assert_ne!(id, tracking_id(&CallId::new("sim", "cc", "c-2")));
    }
}
