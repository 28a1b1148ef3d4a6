//! The simulator's Versature face: Integrate's OAuth token endpoint, subscriptions with real
//! expiry (on the face's clock), call control backed by the simulated PBX, and webhook delivery
//! from the ground truth to every live subscription: the two init messages (Python-dict text,
//! as the seed shows them), a call message on every change, and a CDR list (dates unquoted and
//! endpoint ids prefixed with the call's start, as in the seed) after each call. Deliveries are
//! retried on non-2xx; drops, duplicates, reordering and slow sends are injected.
//!
//! Every extension leg of the simulated PBX is an endpoint with its own `call_id`. A call's
//! `from` is the extension that placed it (a click-to-call too), or else the outside caller.

use crate::clock::Clock;
use crate::connectors::versature::wire::{format_cdr_time, format_time};
use crate::model::{Action, CallId, Command, Event, EventKind, ExtensionId, LegId, LegState, Party, Timestamp};
use crate::sim::faults::{http_faults, Fault, Faults};
use crate::sim::harness::Picture;
use crate::sim::runner::{SimError, SimHandle};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The domain of the face's users.
pub const DOMAIN: &str = "sim.versature.test";
/// Messages waiting to be sent; past this the oldest are dropped.
const OUTBOX_KEEP: usize = 100_000;
/// Ended calls remembered for the pictures.
const ENDED_KEEP: usize = 50_000;
/// Tries per delivery, the first waiting this long before the second and doubling.
const DELIVERY_TRIES: u32 = 7;
const RETRY_FIRST: Duration = Duration::from_millis(10);
/// Access tokens live an hour less a second, as Integrate's do.
const TOKEN_LIFETIME_S: i64 = 3_599;

/// One subscription as the face holds it.
#[derive(Debug, Clone)]
struct Subscription {
    id: String,
    post_uri: String,
    calls: bool,
    cdrs: bool,
    users: Vec<String>,
    expires: Timestamp,
}

/// How the face's subscriptions have fared: what a week-long test checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriptionBook {
    pub created: u64,
    pub renewed: u64,
    /// Renewals that came after the subscription had already expired.
    pub lapsed: u64,
    pub deleted: u64,
    /// Reads of a subscription Integrate no longer had (404).
    pub gone: u64,
}

/// One extension leg as an Integrate endpoint.
struct Endpoint {
    call_id: String,
    call: CallId,
    extension: String,
    name: Option<String>,
    state: LegState,
    answered_at: Option<Timestamp>,
    ended_at: Option<Timestamp>,
    /// How far delivered messages took it: (rank, answered).
    delivered: Option<(u8, bool)>,
}

/// Where a call came from.
#[derive(Clone)]
enum Origin {
    /// An extension dialled out: this leg is `from`.
    Extension(LegId),
    /// An outside caller: `from` is not a user.
    Outside { call_id: String, party: Party },
}

struct CallTrack {
    origin: Origin,
    /// Legs that are `to` endpoints, oldest first.
    callees: Vec<LegId>,
    /// The outside party an extension dialled (the `to` when no extension is called).
    far: Party,
    far_call_id: String,
    started_at: Timestamp,
    cdr_delivered: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Init,
    Call,
    Cdr,
}

#[derive(Clone)]
struct Outgoing {
    kind: Kind,
    body: String,
    /// For init messages: the one subscription they are about.
    subscription: Option<String>,
    users: Vec<String>,
    /// The legs it carries with the (rank, answered) it shows; the call for a CDR list.
    legs: Vec<(LegId, u8, bool)>,
    call: Option<CallId>,
}

#[derive(Default)]
struct FaceState {
    endpoints: HashMap<LegId, Endpoint>,
    calls: HashMap<CallId, CallTrack>,
    ended: VecDeque<CallId>,
    subscriptions: BTreeMap<String, Subscription>,
    book: SubscriptionBook,
    outbox: VecDeque<Outgoing>,
    in_flight: bool,
    next_id: u64,
    tokens: HashMap<String, Timestamp>,
    delivered: u64,
    retried: u64,
    failed: u64,
}

/// The face; cheap to clone.
#[derive(Clone)]
pub struct VersatureFace {
    state: Arc<Mutex<FaceState>>,
    wake: Arc<Notify>,
    faults: Arc<Faults>,
    client: reqwest::Client,
    client_id: String,
    client_secret: String,
    pbx: (String, String),
    sim: Option<SimHandle>,
    clock: Clock,
}

/// How far a leg has come as Versature shows it: 1 setting up, 2 answered, 3 ended.
fn rank(state: LegState) -> u8 {
    match state {
        LegState::Unknown => 0,
        LegState::Ended => 3,
        state if state.is_answered() => 2,
        _ => 1,
    }
}

/// The Integrate endpoint state of a leg state.
fn versature_state(state: LegState) -> &'static str {
    match state {
        LegState::Ringing => "ringing",
        state if state.is_answered() => "active",
        LegState::Ended => "ended",
        _ => "progressing",
    }
}

fn line(rank: u8, answered: bool) -> String {
    let state = ["unknown", "setting up", "answered", "ended"][usize::from(rank.min(3))];
    if rank == 3 {
        format!("{state}, {}", if answered { "answered" } else { "not answered" })
    } else {
        state.to_owned()
    }
}

impl VersatureFace {
    /// A face for the simulated PBX named `pbx` accepting the OAuth app `oauth`, keeping time on
    /// `clock`; commands go to `sim`. Starts its sender.
    pub fn new(
        oauth: (&str, &str),
        pbx: (&str, &str),
        faults: Arc<Faults>,
        sim: Option<SimHandle>,
        clock: Clock,
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let face = Self {
            state: Arc::new(Mutex::new(FaceState { next_id: 5_754_713_652_854_784, ..FaceState::default() })),
            wake: Arc::new(Notify::new()),
            faults,
            client: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default(),
            client_id: oauth.0.to_owned(),
            client_secret: oauth.1.to_owned(),
            pbx: (pbx.0.to_owned(), pbx.1.to_owned()),
            sim,
            clock,
        };
        tokio::spawn(face.clone().send_loop());
        face
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaceState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True when every message so far has been sent (or given up on).
    pub fn idle(&self) -> bool {
        let state = self.lock();
        state.outbox.is_empty() && !state.in_flight
    }

    /// Deliveries answered 2xx, retries after a non-2xx, and deliveries given up.
    pub fn sent(&self) -> (u64, u64, u64) {
        let state = self.lock();
        (state.delivered, state.retried, state.failed)
    }

    pub fn subscriptions(&self) -> SubscriptionBook {
        self.lock().book
    }

    /// The live subscriptions: (id, expires).
    pub fn live_subscriptions(&self) -> Vec<(String, Timestamp)> {
        let now = self.clock.now();
        self.lock().subscriptions.values().filter(|s| s.expires > now).map(|s| (s.id.clone(), s.expires)).collect()
    }

    /// Forgets every subscription, as Integrate losing them would.
    pub fn forget_subscriptions(&self) {
        self.lock().subscriptions.clear();
    }

    /// Takes in ground-truth events: each extension leg's change becomes a call message, each
    /// ended call a CDR list.
    pub fn absorb(&self, events: &[Event]) {
        let mut state = self.lock();
        for event in events {
            match &event.kind {
                EventKind::Leg(report) => {
                    let Some(extension) = &report.extension else { continue };
                    absorb_leg(&mut state, report, extension.native(), event.at);
                }
                EventKind::CallEnded { call, .. } => {
                    if let Some(cdr) = cdr_list(&state, call) {
                        state.outbox.push_back(cdr);
                        state.ended.push_back(call.clone());
                    }
                }
                _ => {}
            }
        }
        while state.outbox.len() > OUTBOX_KEEP {
            state.outbox.pop_front();
        }
        while state.ended.len() > ENDED_KEEP {
            let Some(old) = state.ended.pop_front() else { break };
            if let Some(track) = state.calls.remove(&old) {
                let mut legs = track.callees;
                if let Origin::Extension(leg) = track.origin {
                    legs.push(leg);
                }
                for leg in legs {
                    state.endpoints.remove(&leg);
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
            let Some(message) = next else {
                self.wake.notified().await;
                continue;
            };
            // Call messages may be lost; a CDR list or init message is retried until taken.
            let applicable: &[Fault] = if message.kind == Kind::Call {
                &[Fault::Drop, Fault::Duplicate, Fault::Reorder, Fault::Slow]
            } else {
                &[Fault::Duplicate, Fault::Reorder, Fault::Slow]
            };
            let schedule = self.faults.schedule(applicable, message, || self.lock().outbox.pop_front());
            tokio::time::sleep(schedule.delay).await;
            for message in &schedule.sends {
                self.deliver(message).await;
            }
            self.lock().in_flight = false;
        }
    }

    /// Posts one message to every live subscription that wants it, retrying on non-2xx.
    async fn deliver(&self, message: &Outgoing) {
        let now = self.clock.now();
        let targets: Vec<String> = {
            let state = self.lock();
            state
                .subscriptions
                .values()
                .filter(|s| s.expires > now)
                .filter(|s| match message.kind {
                    Kind::Init => message.subscription.as_deref() == Some(s.id.as_str()),
                    Kind::Call => s.calls,
                    Kind::Cdr => s.cdrs,
                })
                .filter(|s| {
                    message.kind == Kind::Init
                        || s.users.is_empty()
                        || message.users.iter().any(|u| s.users.contains(u))
                })
                .map(|s| s.post_uri.clone())
                .collect()
        };
        for target in targets {
            let mut wait = RETRY_FIRST;
            let mut taken = false;
            for attempt in 0..DELIVERY_TRIES {
                if attempt > 0 {
                    self.lock().retried += 1;
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                let request =
                    self.client.post(&target).header("content-type", "application/json").body(message.body.clone());
                if matches!(request.send().await, Ok(response) if response.status().is_success()) {
                    taken = true;
                    break;
                }
            }
            let mut state = self.lock();
            if !taken {
                state.failed += 1;
                continue;
            }
            state.delivered += 1;
            for (leg, rank, answered) in &message.legs {
                if let Some(endpoint) = state.endpoints.get_mut(leg) {
                    let was = endpoint.delivered.unwrap_or((0, false));
                    endpoint.delivered = Some((was.0.max(*rank), was.1 || *answered));
                }
            }
            if let Some(track) = message.call.as_ref().and_then(|call| state.calls.get_mut(call)) {
                track.cdr_delivered = true;
            }
        }
    }

    /// The ground truth as delivered messages can convey it, one line per extension leg: a
    /// call whose CDRs arrived is expected exactly as it went; a call still going as far as
    /// its delivered messages took each leg (a lost message is not resent).
    pub fn truth_picture(&self) -> Picture {
        let state = self.lock();
        let mut lines = BTreeMap::new();
        for endpoint in state.endpoints.values() {
            let key = format!("leg {}@{}", endpoint.call_id, endpoint.extension);
            let complete = state.calls.get(&endpoint.call).is_some_and(|track| track.cdr_delivered);
            if complete {
                lines.insert(key, line(rank(endpoint.state), endpoint.answered_at.is_some()));
            } else if let Some((rank, answered)) = endpoint.delivered {
                lines.insert(key, line(rank, answered));
            }
        }
        Picture::from_lines(lines)
    }

    /// What a hub's call history shows of a Versature connector's legs.
    pub fn observed_picture(calls: &[crate::model::Call]) -> Picture {
        let mut lines = BTreeMap::new();
        for leg in calls.iter().flat_map(|call| &call.legs) {
            let at = leg.extension.as_ref().map_or("-", |e| e.native());
            lines.insert(format!("leg {}@{at}", leg.id.native()), line(rank(leg.state), leg.answered_at.is_some()));
        }
        Picture::from_lines(lines)
    }

    /// Integrate's REST endpoints under `/api`, with the faults as middleware.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/oauth/token/", post(token))
            .route("/api/subscriptions/", post(subscribe))
            .route("/api/subscriptions/{id}/", axum::routing::get(read_subscription).delete(delete_subscription))
            .route("/api/calls/", post(place_call))
            .route("/api/calls/{call_id}/answer/", put(answer_call))
            .route("/api/calls/{call_id}/", axum::routing::delete(hang_up))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(self.faults.clone(), http_faults))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
    }

    fn next_id(&self) -> u64 {
        let mut state = self.lock();
        state.next_id += 1;
        state.next_id
    }
}

fn new_endpoint_id(state: &mut FaceState) -> String {
    state.next_id += 1;
    format!("{:032x}", u128::from(state.next_id) * 0x9e37_79b9_7f4a_7c15)
}

fn absorb_leg(state: &mut FaceState, report: &crate::model::LegReport, number: &str, at: Timestamp) {
    if !state.calls.contains_key(&report.call) {
        // Seed 001: `from` is the originator, so a click-to-call's extension is `from` though
        // its phone rings first.
        let origin = if super::dials_out(report) {
            Origin::Extension(report.leg.clone())
        } else {
            Origin::Outside { call_id: new_endpoint_id(state), party: report.remote.clone() }
        };
        let far_call_id = new_endpoint_id(state);
        let track = CallTrack {
            origin,
            callees: Vec::new(),
            far: report.remote.clone(),
            far_call_id,
            started_at: at,
            cdr_delivered: false,
        };
        state.calls.insert(report.call.clone(), track);
    }
    if !state.endpoints.contains_key(&report.leg) {
        let call_id = new_endpoint_id(state);
        let endpoint = Endpoint {
            call_id,
            call: report.call.clone(),
            extension: number.to_owned(),
            name: report.local.name.clone(),
            state: LegState::Unknown,
            answered_at: None,
            ended_at: None,
            delivered: None,
        };
        state.endpoints.insert(report.leg.clone(), endpoint);
        if let Some(track) = state.calls.get_mut(&report.call) {
            if !matches!(&track.origin, Origin::Extension(leg) if *leg == report.leg) {
                track.callees.push(report.leg.clone());
            }
        }
    }
    let Some(endpoint) = state.endpoints.get_mut(&report.leg) else { return };
    let shown_before = versature_state(endpoint.state);
    if endpoint.state.is_ended() {
        return;
    }
    endpoint.state = report.state;
    if report.state.is_answered() && endpoint.answered_at.is_none() {
        endpoint.answered_at = Some(at);
    }
    if report.state.is_ended() {
        endpoint.ended_at = Some(at);
    }
    if shown_before == versature_state(report.state) {
        return; // Hold and resume look the same to Integrate.
    }
    let Some(track) = state.calls.get(&report.call) else { return };
    let pairs: Vec<(Option<LegId>, Option<LegId>)> = match &track.origin {
        Origin::Extension(origin) if *origin == report.leg && track.callees.is_empty() => {
            vec![(Some(origin.clone()), None)]
        }
        Origin::Extension(origin) if *origin == report.leg => {
            track.callees.iter().map(|callee| (Some(origin.clone()), Some(callee.clone()))).collect()
        }
        Origin::Extension(origin) => vec![(Some(origin.clone()), Some(report.leg.clone()))],
        Origin::Outside { .. } => vec![(None, Some(report.leg.clone()))],
    };
    for (from, to) in pairs {
        let message = call_message(state, &report.call, from.as_ref(), to.as_ref());
        state.outbox.push_back(message);
    }
}

/// An endpoint object for a user leg, as the seed's call message shows one.
fn user_endpoint(endpoint: &Endpoint) -> Value {
    json!({
        "user": endpoint.extension,
        "state": versature_state(endpoint.state),
        "name": endpoint.name,
        "domain": DOMAIN,
        "id": Value::Null,
        "call_id": endpoint.call_id,
        "is_human": true,
    })
}

fn outside_endpoint(call_id: &str, party: &Party, state: &str) -> Value {
    json!({ "user": Value::Null, "state": state, "name": party.name, "domain": Value::Null, "id": party.number, "call_id": call_id })
}

/// The call message for the pair `from` (an extension leg, or the outside caller when none)
/// and `to` (an extension leg, or the dialled outside number when none).
fn call_message(state: &FaceState, call: &CallId, from: Option<&LegId>, to: Option<&LegId>) -> Outgoing {
    let track = &state.calls[call];
    let from_endpoint = from.and_then(|leg| state.endpoints.get(leg));
    let to_endpoint = to.and_then(|leg| state.endpoints.get(leg));
    // The outside end follows the extension it talks to.
    let mirrored = |endpoint: Option<&Endpoint>, calling: bool| match endpoint.map(|e| e.state) {
        Some(LegState::RemoteRinging) if !calling => "ringing",
        Some(state) if state.is_answered() => "active",
        Some(LegState::Ended) => "ended",
        _ => "progressing",
    };
    let from_json = match (from_endpoint, &track.origin) {
        (Some(endpoint), _) => user_endpoint(endpoint),
        (None, Origin::Outside { call_id, party }) => outside_endpoint(call_id, party, mirrored(to_endpoint, true)),
        (None, Origin::Extension(_)) => outside_endpoint(&track.far_call_id, &track.far, "progressing"),
    };
    let to_json = match to_endpoint {
        Some(endpoint) => user_endpoint(endpoint),
        None => outside_endpoint(&track.far_call_id, &track.far, mirrored(from_endpoint, false)),
    };
    let answered_at = to_endpoint.or(from_endpoint).and_then(|e| e.answered_at);
    let body = json!({ "calls": {
        "on_net": from_endpoint.is_some() && to_endpoint.is_some(),
        "from": from_json,
        "to": to_json,
        "time_answer": answered_at.map(format_time),
        "time_start": format_time(track.started_at),
        "by_call_id": Value::Null,
    }});
    let mut legs = Vec::new();
    let mut users = Vec::new();
    for (leg, endpoint) in [(from, from_endpoint), (to, to_endpoint)] {
        if let (Some(leg), Some(endpoint)) = (leg, endpoint) {
            legs.push((leg.clone(), rank(endpoint.state), endpoint.state.is_answered()));
            users.push(endpoint.extension.clone());
        }
    }
    Outgoing { kind: Kind::Call, body: body.to_string(), subscription: None, users, legs, call: None }
}

/// An endpoint id as seed 001's CDRs give it: the call's start (`yyyymmddHHMMSS` and six
/// digits of microseconds) and a dash before the id call messages carry bare
/// (`20150304190127063799-a5ce697165aca204d39dde1a4446c1a0`).
fn cdr_call_id(started_at: Timestamp, call_id: &str) -> String {
    let stamp = jiff::Timestamp::from_millisecond(started_at)
        .map(|t| t.strftime("%Y%m%d%H%M%S").to_string())
        .unwrap_or_else(|_| "19700101000000".to_owned());
    format!("{stamp}{:06}-{call_id}", started_at.rem_euclid(1_000) * 1_000)
}

/// The CDR list of an ended call: a record per pair of endpoints, dates unquoted and endpoint
/// ids prefixed with the call's start, as in the seed.
fn cdr_list(state: &FaceState, call: &CallId) -> Option<Outgoing> {
    let track = state.calls.get(call)?;
    let cdr_id = |call_id: &str| cdr_call_id(track.started_at, call_id);
    let cdr_endpoint = |endpoint: &Endpoint| json!({ "call_id": cdr_id(endpoint.call_id.as_str()), "domain": DOMAIN, "id": Value::Null, "user": endpoint.extension, "name": endpoint.name });
    let mut records = Vec::new();
    let mut users = Vec::new();
    let mut pair = |from: Value, to: Value, legs: [Option<&Endpoint>; 2], answered_at: Option<Timestamp>| {
        let end = legs.iter().flatten().filter_map(|e| e.ended_at).max().unwrap_or(track.started_at);
        for endpoint in legs.iter().flatten() {
            users.push(endpoint.extension.clone());
        }
        let duration = answered_at.map_or(0, |answered| (end - answered).max(0) / 1000);
        records.push((from, to, answered_at, end, duration));
    };
    let origin = match &track.origin {
        Origin::Extension(leg) => state.endpoints.get(leg),
        Origin::Outside { .. } => None,
    };
    if let Some(origin) = origin {
        let far = json!({
            "call_id": cdr_id(track.far_call_id.as_str()), "domain": Value::Null, "id": track.far.number, "user": Value::Null,
        });
        pair(cdr_endpoint(origin), far, [Some(origin), None], origin.answered_at);
    }
    for callee in track.callees.iter().filter_map(|leg| state.endpoints.get(leg)) {
        let from = match (&track.origin, origin) {
            (_, Some(origin)) => cdr_endpoint(origin),
            (Origin::Outside { call_id, party }, None) => {
                json!({ "call_id": cdr_id(call_id.as_str()), "domain": Value::Null, "id": party.number, "name": party.name, "user": Value::Null })
            }
            (Origin::Extension(_), None) => continue,
        };
        pair(from, cdr_endpoint(callee), [origin, Some(callee)], callee.answered_at);
    }
    if records.is_empty() {
        return None;
    }
    let mut legs = Vec::new();
    for leg in track.callees.iter().chain(match &track.origin {
        Origin::Extension(leg) => Some(leg),
        Origin::Outside { .. } => None,
    }) {
        if let Some(endpoint) = state.endpoints.get(leg) {
            legs.push((leg.clone(), 3, endpoint.answered_at.is_some()));
        }
    }
    // Written by hand: the seed's CDR dates are bare RFC 2822 text, not JSON strings.
    let bare = |at: Option<Timestamp>| at.map_or_else(|| "null".to_owned(), format_cdr_time);
    let texts: Vec<String> = records
        .iter()
        .map(|(from, to, answered, end, duration)| {
            format!(
                "{{\n    \"to\": {to},\n    \"from\": {from},\n    \"answer_time\": {},\n    \"start_time\": {},\n    \"end_time\": {},\n    \"duration\": {duration}\n}}",
                bare(*answered),
                bare(Some(track.started_at)),
                bare(Some(*end)),
            )
        })
        .collect();
    Some(Outgoing {
        kind: Kind::Cdr,
        body: format!("[\n{}\n]", texts.join(",\n")),
        subscription: None,
        users,
        legs,
        call: Some(call.clone()),
    })
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": { "code": status.as_u16(), "message": message } }))).into_response()
}

/// Checks the Accept header and the bearer token; `Some` is the refusal to answer.
fn refused(face: &VersatureFace, headers: &HeaderMap) -> Option<Response> {
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !accept.starts_with("application/vnd.integrate.v") {
        return Some(api_error(StatusCode::NOT_ACCEPTABLE, "Accept must name the API version"));
    }
    let token = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let now = face.clock.now();
    let valid = face.lock().tokens.get(token).is_some_and(|until| *until > now);
    (!valid)
        .then(|| api_error(StatusCode::UNAUTHORIZED, "Authentication credentials were not provided or have expired"))
}

async fn token(State(face): State<VersatureFace>, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "unsupported_grant_type" }))).into_response();
    }
    if field("client_id") != face.client_id || field("client_secret") != face.client_secret {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" }))).into_response();
    }
    let access = format!("{:x}{:x}", face.next_id(), rand::random::<u64>());
    let until = face.clock.now() + TOKEN_LIFETIME_S * 1000;
    let now = face.clock.now();
    let mut state = face.lock();
    state.tokens.retain(|_, until| *until > now);
    state.tokens.insert(access.clone(), until);
    drop(state);
    let expires = jiff::Timestamp::from_millisecond(until).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string());
    Json(json!({ "access_token": access, "scope": "Office Manager", "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S, "expires": expires.unwrap_or_default() }))
        .into_response()
}

fn iso(at: Timestamp) -> String {
    jiff::Timestamp::from_millisecond(at).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.6f").to_string()).unwrap_or_default()
}

fn flag(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text.eq_ignore_ascii_case("true") || text == "1",
        _ => false,
    }
}

async fn subscribe(State(face): State<VersatureFace>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(refusal) = refused(&face, &headers) {
        return refusal;
    }
    let post_uri = body.get("post_uri").and_then(Value::as_str).unwrap_or_default().to_owned();
    if !(post_uri.starts_with("http://") || post_uri.starts_with("https://")) {
        return api_error(StatusCode::BAD_REQUEST, "post_uri must be an http(s) URL");
    }
    let expires_in = body.get("expires_in").and_then(crate::connectors::rest::lenient_u64).unwrap_or(7_200);
    if expires_in == 0 || expires_in > 604_800 {
        return api_error(StatusCode::BAD_REQUEST, "expires_in must be between 1 and 604800");
    }
    let users: Vec<String> = match body.get("user") {
        Some(Value::Array(users)) => users.iter().filter_map(|u| crate::connectors::rest::text(Some(u))).collect(),
        Some(user) => crate::connectors::rest::text(Some(user)).into_iter().collect(),
        None => Vec::new(),
    };
    let now = face.clock.now();
    let expires = now + expires_in as Timestamp * 1000;
    let (id, created) = {
        let mut state = face.lock();
        let existing = state.subscriptions.values().find(|s| s.post_uri == post_uri).map(|s| (s.id.clone(), s.expires));
        let (id, created) = match existing {
            Some((id, was)) if was > now => {
                state.book.renewed += 1;
                (id, false)
            }
            lapsed => {
                if let Some((id, _)) = lapsed {
                    state.book.lapsed += 1;
                    state.subscriptions.remove(&id);
                }
                state.book.created += 1;
                state.next_id += 1;
                (state.next_id.to_string(), true)
            }
        };
        let subscription = Subscription {
            id: id.clone(),
            post_uri: post_uri.clone(),
            calls: flag(body.get("calls")),
            cdrs: flag(body.get("cdrs")),
            users,
            expires,
        };
        state.subscriptions.insert(id.clone(), subscription);
        (id, created)
    };
    if created {
        let kinds = if flag(body.get("cdrs")) { "calls, cdrs" } else { "calls" };
        let messages = [
            format!("{{'msg': 'Preparing subscription for: {kinds}', 'state': 'preparing'}}"),
            "{'msg': 'You have been subscribed to your requested subscriptions.', 'state': 'ready'}".to_owned(),
        ];
        let mut state = face.lock();
        for body in messages {
            state.outbox.push_back(Outgoing {
                kind: Kind::Init,
                body,
                subscription: Some(id.clone()),
                users: Vec::new(),
                legs: Vec::new(),
                call: None,
            });
        }
        drop(state);
        face.wake.notify_one();
    }
    Json(json!({ "id": id, "post_uri": post_uri, "expires": iso(expires), "events": { "type": "calls" } }))
        .into_response()
}

async fn read_subscription(State(face): State<VersatureFace>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&face, &headers) {
        return refusal;
    }
    let now = face.clock.now();
    let mut state = face.lock();
    let Some(subscription) = state.subscriptions.get(&id).filter(|s| s.expires > now).cloned() else {
        state.book.gone += 1;
        return api_error(StatusCode::NOT_FOUND, "Subscription not found");
    };
    let user = if subscription.users.is_empty() { "*".to_owned() } else { subscription.users.join(",") };
    // The seed's read reply gives the id as a number.
    let numeric: Value = id.parse::<u64>().map_or_else(|_| Value::from(id.clone()), Value::from);
    Json(json!({ "events": [{ "type": "calls", "user": user }], "expires": iso(subscription.expires), "id": numeric, "post_uri": subscription.post_uri }))
        .into_response()
}

async fn delete_subscription(
    State(face): State<VersatureFace>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refused(&face, &headers) {
        return refusal;
    }
    let mut state = face.lock();
    if state.subscriptions.remove(&id).is_none() {
        return api_error(StatusCode::NOT_FOUND, "Subscription not found");
    }
    state.book.deleted += 1;
    StatusCode::NO_CONTENT.into_response()
}

async fn to_pbx(face: &VersatureFace, command: Command) -> Response {
    let Some(sim) = &face.sim else {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "the simulated PBX takes no commands");
    };
    match sim.command(command).await {
        Ok(message) => Json(json!({ "status": message })).into_response(),
        Err(SimError::Refused(reason)) => api_error(StatusCode::UNPROCESSABLE_ENTITY, &reason),
        Err(SimError::Stopped) => api_error(StatusCode::SERVICE_UNAVAILABLE, "the PBX has stopped"),
    }
}

fn command(face: &VersatureFace, action: Action, leg: Option<LegId>, extension: Option<&str>) -> Command {
    Command {
        action,
        call: None,
        leg,
        extension: extension.map(|e| ExtensionId::new(&face.pbx.0, &face.pbx.1, e)),
        number: None,
    }
}

/// The live leg whose endpoint is `call_id`.
fn leg_of(face: &VersatureFace, call_id: &str) -> Option<LegId> {
    let state = face.lock();
    state.endpoints.iter().find(|(_, e)| e.call_id == call_id && !e.state.is_ended()).map(|(leg, _)| leg.clone())
}

async fn place_call(
    State(face): State<VersatureFace>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = refused(&face, &headers) {
        return refusal;
    }
    let (Some(from), Some(to)) = (query.get("from"), query.get("to")) else {
        return api_error(StatusCode::BAD_REQUEST, "from and to are required");
    };
    let mut dial = command(&face, Action::Dial, None, Some(from));
    dial.number = Some(to.clone());
    to_pbx(&face, dial).await
}

async fn answer_call(
    State(face): State<VersatureFace>,
    Path(call_id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(refusal) = refused(&face, &headers) {
        return refusal;
    }
    let Some(leg) = leg_of(&face, &call_id) else { return api_error(StatusCode::NOT_FOUND, "Call not found") };
    let to = body.get("to").and_then(Value::as_str).unwrap_or_default();
    if face.lock().endpoints.get(&leg).is_some_and(|e| e.extension != to) {
        return api_error(StatusCode::BAD_REQUEST, "to is not the user this call rings");
    }
    to_pbx(&face, command(&face, Action::Answer, Some(leg), None)).await
}

async fn hang_up(State(face): State<VersatureFace>, Path(call_id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refused(&face, &headers) {
        return refusal;
    }
    let Some(leg) = leg_of(&face, &call_id) else { return api_error(StatusCode::NOT_FOUND, "Call not found") };
    let response = to_pbx(&face, command(&face, Action::Hangup, Some(leg), None)).await;
    if response.status().is_success() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::versature::wire::{parse, Message};
    use crate::connectors::versature::{call_reports, cdr_reports, Ids};
    use crate::model::{Direction, LegReport};

    use crate::sim::faces::click_to_call_report as click_to_call;

    /// What the connector makes of the next call message the face would send.
    fn next_reports(state: &mut FaceState, at: Timestamp) -> (Value, Vec<LegReport>) {
        let message = state.outbox.pop_front().expect("a call message");
        let body: Value = serde_json::from_str(&message.body).unwrap();
        let Ok((Message::Call(call), _)) = parse(message.body.as_bytes()) else { panic!("not a call message: {body}") };
        let ids = Ids { provider: "vs", account: "domain" };
        let reports = call_reports(&ids, &call, at).unwrap().into_iter().map(|(report, _)| report).collect();
        (body, reports)
    }

    #[test]
    fn a_click_to_call_is_the_extensions_outbound_call_though_its_phone_rings_first() {
        let mut state = FaceState::default();
        let at = 1_790_000_000_000;
        absorb_leg(&mut state, &click_to_call(LegState::Ringing), "101", at);
        let (body, reports) = next_reports(&mut state, at);
        assert_eq!(body["calls"]["from"]["user"], "101", "101 placed it: {body}");
        assert_eq!(body["calls"]["to"]["user"], Value::Null, "{body}");
        assert_eq!(body["calls"]["to"]["id"], "+61299990000", "{body}");
        let [report] = reports.as_slice() else { panic!("one leg, 101's: {reports:?}") };
        assert_eq!(report.extension.as_ref().map(|e| e.native()), Some("101"));
        assert_eq!((report.state, report.direction), (LegState::Ringing, Direction::Outbound));
        assert_eq!(report.remote.number.as_deref(), Some("+61299990000"));

        // 101 picks up; the far end rings, then answers: still 101's call out.
        for leg_state in [LegState::RemoteRinging, LegState::Active] {
            absorb_leg(&mut state, &click_to_call(leg_state), "101", at + 5_000);
            let (body, reports) = next_reports(&mut state, at + 5_000);
            let [report] = reports.as_slice() else { panic!("one leg, 101's: {body}") };
            assert_eq!((report.state, report.direction), (leg_state, Direction::Outbound), "{body}");
            assert_eq!(report.remote.number.as_deref(), Some("+61299990000"), "{body}");
        }
    }

    #[test]
    fn an_outside_caller_is_from_and_the_extension_rung_is_to() {
        let mut state = FaceState::default();
        let at = 1_790_000_000_000;
        let caller = Party { number: Some("+61355550123".into()), name: Some("J CITIZEN".into()), extension: None };
        let report = LegReport {
            direction: Direction::Inbound,
            origin: crate::model::Origin::Normal,
            remote: caller,
            ..click_to_call(LegState::Ringing)
        };
        absorb_leg(&mut state, &report, "101", at);
        let (body, reports) = next_reports(&mut state, at);
        assert_eq!(body["calls"]["from"]["id"], "+61355550123", "{body}");
        assert_eq!(body["calls"]["to"]["user"], "101", "{body}");
        let [report] = reports.as_slice() else { panic!("one leg, 101's: {reports:?}") };
        assert_eq!((report.state, report.direction), (LegState::Ringing, Direction::Inbound));
        assert_eq!(report.remote.number.as_deref(), Some("+61355550123"));
    }

    #[test]
    fn cdr_ids_carry_the_seeds_timestamp_prefix_and_join_the_call_messages_legs() {
        let mut state = FaceState::default();
        let at = 1_790_000_000_123;
        let caller = Party { number: Some("+61355550123".into()), name: None, extension: None };
        let ringing = LegReport {
            direction: Direction::Inbound,
            origin: crate::model::Origin::Normal,
            remote: caller,
            ..click_to_call(LegState::Ringing)
        };
        absorb_leg(&mut state, &ringing, "101", at);
        let (_, live) = next_reports(&mut state, at);
        absorb_leg(&mut state, &LegReport { state: LegState::Ended, ..ringing.clone() }, "101", at + 9_000);
        let list = cdr_list(&state, &ringing.call).expect("a CDR list");
        let Ok((Message::Cdrs(cdrs), _)) = parse(list.body.as_bytes()) else { panic!("not a CDR list: {}", list.body) };
        let [cdr] = cdrs.as_slice() else { panic!("one record: {}", list.body) };
        for id in [&cdr.from.call_id, &cdr.to.call_id] {
            let id = id.as_deref().unwrap_or_default();
            let (stamp, bare) = id.split_once('-').unwrap_or_default();
            assert!(stamp.len() == 20 && stamp.bytes().all(|b| b.is_ascii_digit()), "{id}");
            assert!(stamp.ends_with("123000") && bare.len() == 32, "{id}");
        }
        let ids = Ids { provider: "vs", account: "domain" };
        let history = cdr_reports(&ids, cdr).unwrap();
        assert!(!history.is_empty());
        for (report, _) in &history {
            assert_eq!((&report.leg, &report.call), (&live[0].leg, &live[0].call), "the live leg, not a second one");
        }
    }
}
