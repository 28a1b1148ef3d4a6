//! The Netaxis connector: every request and reply of the seed through the client (against a
//! server that answers the seed's literal replies, trailing commas and all), the seed's error
//! list in both body shapes, a long polling round trip from the simulator's face with 503s,
//! 429s and slow answers, and every command against the face and the simulated PBX, each change
//! coming back through polling within two intervals.
#![cfg(feature = "ssr")]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use callboard::clock::Clock;
use callboard::connectors::netaxis::api::NetaxisApi;
use callboard::connectors::netaxis::wire::Modify;
use callboard::connectors::netaxis::{NetaxisConfig, NetaxisConnector};
use callboard::connectors::rest::RestError;
use callboard::connectors::{CommandError, Connector};
use callboard::hub::{now_ms, Hub, HubSettings};
use callboard::model::*;
use callboard::sim::faces::netaxis::{NetaxisFace, NetaxisSetup};
use callboard::sim::faults::{Fault, FaultRates, Faults};
use callboard::sim::harness::{all_history, hub_snapshot, wait_until};
use callboard::sim::{runner, Pbx, Scenario};
use callboard::store::Store;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const NAME: &str = "nx";
const TOKEN: &str = "seed-bearer-token";
const CALLS: &str = "/api/v1/tenants/foo/groups/foogroup/users/foouser/services/calls/";
const CALL: &str = "/api/v1/tenants/foo/groups/foogroup/users/foouser/services/calls/callhalf-1595867%3A0/";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/netaxis/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// One request as a server saw it: method, path and query, bearer, JSON body.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: Method,
    uri: String,
    bearer: Option<String>,
    body: Value,
}

/// A server that answers each request with the next scripted (status, body) and keeps what
/// it was sent.
#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<VecDeque<(u16, String)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn scripted(
    State(script): State<Script>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let bearer =
        headers.get("authorization").and_then(|v| v.to_str().ok()).map(|v| v.trim_start_matches("Bearer ").to_owned());
    let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(json!("unreadable")) };
    script.seen.lock().unwrap().push(Seen { method, uri: uri.to_string(), bearer, body });
    let (status, text) = script.replies.lock().unwrap().pop_front().unwrap_or((500, "{}".into()));
    (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], text).into_response()
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

fn config(base: &str, tenant: &str, group: &str, users: Value, extra: &[(&str, toml::Value)]) -> NetaxisConfig {
    let mut table = toml::Table::new();
    table.insert("base_url".into(), base.into());
    table.insert("tenant".into(), tenant.into());
    table.insert("group".into(), group.into());
    table.insert("users".into(), toml::Value::try_from(users).unwrap());
    for (key, value) in extra {
        table.insert((*key).into(), value.clone());
    }
    if !table.contains_key("username") {
        table.insert("token".into(), TOKEN.into());
    }
    NetaxisConfig::from_table(&table).unwrap()
}

#[tokio::test]
async fn every_request_and_reply_of_the_seed_round_trips_through_the_client() {
    let script = Script::default();
    let base = serve(axum::Router::new().fallback(scripted).with_state(script.clone())).await;
    let users = json!([{ "id": "foouser", "extension": "101" }]);
    let config = Arc::new(config(&base, "foo", "foogroup", users, &[]));
    let api = NetaxisApi::new(config, callboard::connectors::http_client());
    let replies = [
        (201, fixture("created.json")),
        (200, fixture("list.json")),
        (200, fixture("list_details.json")),
        (200, fixture("details.json")),
    ];
    script.replies.lock().unwrap().extend(replies);
    let created = api.dial("foouser", "+3212345678").await.unwrap();
    assert_eq!(created.call_id, "callhalf-1595867:0");
    assert_eq!(created.external_tracking_id.as_deref(), Some("6d435f94-9ef8-4949-b9c3-1bccd5df1c1f"));
    let listed = api.list("foouser").await.unwrap();
    let entry = listed[0].1.clone().unwrap();
    assert_eq!((entry.call_id.as_str(), entry.in_conference, entry.state), ("callhalf-1595867:0", Some(false), None));
    let detailed = api.list_with_details("foouser").await.unwrap();
    let entry = detailed[0].1.clone().unwrap();
    assert_eq!(entry.state.as_deref(), Some("Active"));
    assert_eq!(entry.address_of_record.as_deref(), Some("LP_foouser@sip.netaxis.be"));
    assert_eq!(entry.answer_time, callboard::connectors::time::parse_time("2021-10-29T11:45:16.722"));
    let details = api.details("foouser", "callhalf-1595867:0").await.unwrap();
    assert_eq!(details.recording_state, Some(RecordingState::Started));
    assert_eq!(details.recording_controls, Some(vec![Action::RecordStart]));
    assert_eq!(details.recorded, Some(true));

    let actions = [
        Modify::Hold,
        Modify::Reconnect,
        Modify::BlindTransfer { phone_number: "+3212345765".into() },
        Modify::ConsultativeTransfer { transfer_call_id: "callhalf-1595875:0".into() },
        Modify::StartRecording,
        Modify::PauseRecording,
        Modify::ResumeRecording,
        Modify::StopRecording,
    ];
    script.replies.lock().unwrap().extend(actions.iter().map(|_| (200, fixture("empty.json"))));
    for action in &actions {
        api.modify("foouser", "callhalf-1595867:0", action).await.unwrap();
    }
    script.replies.lock().unwrap().extend([
        (200, fixture("empty.json")),
        (201, fixture("created.json")),
        (201, fixture("imrn.json")),
    ]);
    api.release("foouser", "callhalf-1595867:0").await.unwrap();
    assert_eq!(api.retrieve("foouser").await.unwrap().call_id, "callhalf-1595867:0");
    assert_eq!(api.imrn("foouser", "+3225126778", "+3225126780").await.unwrap(), "+3236548297");

    // What was sent is what the seed's example requests show, call ids percent-encoded.
    let seen = script.seen.lock().unwrap().clone();
    let expected: Vec<(Method, String, Value)> = [
        (Method::POST, CALLS.to_owned(), json!({"phoneNumber": "+3212345678"})),
        (Method::GET, CALLS.to_owned(), json!({})),
        (Method::GET, format!("{CALLS}?includeDetails=true"), Value::Null),
        (Method::GET, CALL.to_owned(), json!({})),
    ]
    .into_iter()
    .chain(actions.iter().map(|action| (Method::PUT, CALL.to_owned(), action.body())))
    .chain([
        (Method::DELETE, CALL.to_owned(), json!({})),
        (Method::POST, format!("{CALLS}retrieve/"), json!({})),
        (
            Method::POST,
            format!("{CALLS}imrn/"),
            json!({"phoneNumber": "+3225126778", "callingPhoneNumber": "+3225126780"}),
        ),
    ])
    .collect();
    assert_eq!(seen.len(), expected.len());
    for (seen, (method, uri, body)) in seen.iter().zip(&expected) {
        assert_eq!((&seen.method, &seen.uri, &seen.body), (method, uri, body));
        assert_eq!(seen.bearer.as_deref(), Some(TOKEN));
    }
    let bodies: Vec<&Value> = seen.iter().filter(|s| s.method == Method::PUT).map(|s| &s.body).collect();
    assert_eq!(bodies[2], &json!({"action": "blindTransfer", "phoneNumber": "+3212345765"}));
    assert_eq!(bodies[3], &json!({"action": "consultativeTransfer", "transferCallId": "callhalf-1595875:0"}));
}

#[tokio::test]
async fn the_seeds_error_list_reaches_the_user_in_the_providers_words() {
    let script = Script::default();
    let base = serve(axum::Router::new().fallback(scripted).with_state(script.clone())).await;
    let config = Arc::new(config(&base, "foo", "foogroup", json!(["foouser"]), &[]));
    let api = NetaxisApi::new(config, callboard::connectors::http_client());
    let texts = [
        "The endpoint state of the call is not valid.",
        "The state of the call is not valid.",
        "The call is in the detached state.",
        "Transfer has failed.",
        "Consultative transfer already in progress,",
        "User has no charge address. The User must have at least the phone number or the extension.",
        "Recording is disabled for this call.",
        "Recording has failed for this call.",
        "User recording mode does not support stop.",
        "Recording is not active.",
    ];
    for (index, text) in texts.iter().enumerate() {
        // Both body shapes: a bare list of errors, and the list under `errors`.
        let error = json!({"code": 59, "name": "INVALID_CALL_OPERATION", "message": text});
        let body = if index % 2 == 0 { json!([error]) } else { json!({ "errors": [error] }) };
        script.replies.lock().unwrap().push_back((400, body.to_string()));
        let refused = api.modify("foouser", "callhalf-1595867:0", &Modify::Hold).await.unwrap_err();
        assert_eq!(
            refused,
            RestError::Status { status: 400, words: format!("{text} (59 INVALID_CALL_OPERATION)"), retry_after: None }
        );
    }
    for (status, details) in
        [(400, "error invalid phone number"), (403, "error invalid calling user"), (404, "error call not found")]
    {
        script.replies.lock().unwrap().push_back((status, json!({ "details": details }).to_string()));
        let refused = api.release("foouser", "callhalf-1595867:0").await.unwrap_err();
        assert_eq!(refused.to_string(), format!("HTTP {status}: {details}"));
    }
    script
        .replies
        .lock()
        .unwrap()
        .push_back((400, json!([{"code": 59, "message": "IMRN allocation failed."}]).to_string()));
    let refused = api.imrn("foouser", "+3225126778", "+3225126780").await.unwrap_err();
    assert_eq!(refused.to_string(), "HTTP 400: IMRN allocation failed. (59)");
}

struct App {
    connector: Arc<NetaxisConnector>,
    hub: Hub,
    store: Store,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn app(config: NetaxisConfig) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("netaxis.db")).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await.unwrap();
    let connector = NetaxisConnector::start(NAME, config, hub.clone(), shutdown.clone()).await;
    App { connector, hub, store, shutdown, _dir: dir }
}

async fn legs(hub: &Hub) -> Vec<Leg> {
    hub_snapshot(hub).await.unwrap().calls.into_iter().flat_map(|call| call.legs).collect()
}

#[tokio::test]
async fn the_seeds_call_list_and_details_become_an_answered_recorded_leg() {
    // The seed's list with details for the user, and the seed's details for its call.
    let seed_pbx = async |method: Method, uri: Uri| {
        let name = match (method, uri.path()) {
            (Method::GET, CALLS) => "list_details.json",
            (Method::GET, CALL) => "details.json",
            _ => return (StatusCode::NOT_FOUND, String::new()),
        };
        (StatusCode::OK, fixture(name))
    };
    let base = serve(axum::Router::new().fallback(seed_pbx)).await;
    let users = json!([{ "id": "foouser", "extension": "101" }]);
    let app = app(config(&base, "foo", "foogroup", users, &[("poll_interval_ms", 50.into())])).await;
    wait_until("the seed's call to show", async || !legs(&app.hub).await.is_empty()).await;
    wait_until("a few rounds", async || app.connector.rounds() >= 3).await;
    let legs = legs(&app.hub).await;
    assert_eq!(legs.len(), 1, "{legs:?}");
    let leg = &legs[0];
    assert_eq!(leg.id.as_str(), "nx/foogroup/foouser/callhalf-1595867:0");
    assert_eq!(leg.call.native(), "6d435f94-9ef8-4949-b9c3-1bccd5df1c1f");
    assert_eq!(leg.extension, Some(ExtensionId::new(NAME, "foogroup", "101")));
    assert_eq!((leg.state, leg.direction), (LegState::Active, Direction::Internal));
    assert_eq!(leg.remote.extension.as_deref(), Some("+3212345678"));
    let answered = callboard::connectors::time::parse_time("2021-10-29T11:45:16.722000").unwrap();
    assert_eq!((leg.answered_at, leg.state_since), (Some(answered), answered));
    let recording = leg.recording.clone().unwrap();
    assert_eq!((recording.state, recording.controls), (RecordingState::Started, vec![Action::RecordStart]));
    let health = app.connector.health();
    assert_eq!((health.state.as_str(), health.errors), ("ready", 0), "{:?}", health.last_error);
    assert_eq!(health.events, 1, "repeated lists state nothing new");
    // The connector allows only what `allowedRecordingControls` says.
    let pause =
        Command { action: Action::RecordPause, call: None, leg: Some(leg.id.clone()), extension: None, number: None };
    let refused = app.connector.control(pause).await.unwrap_err();
    assert_eq!(
        refused,
        CommandError::Refused(
            "Netaxis does not allow that on this call now (recording Started; allowed: record_start)".into()
        )
    );
    app.shutdown.cancel();
}

/// A Call Service for `foouser` whose call list (with details) and call details the test sets;
/// every PUT, POST and DELETE is kept, click-to-call answered with `dialled`, the rest with `{}`.
#[derive(Clone)]
struct Fake {
    calls: Arc<Mutex<Value>>,
    details: Arc<Mutex<Value>>,
    dialled: Arc<Mutex<(u16, Value)>>,
    changes: Arc<Mutex<Vec<(Method, String, Value)>>>,
}

impl Fake {
    fn new(calls: Value, details: Value) -> Self {
        Self {
            calls: Arc::new(Mutex::new(calls)),
            details: Arc::new(Mutex::new(details)),
            dialled: Arc::new(Mutex::new((500, json!({ "details": "the fake places no calls" })))),
            changes: Arc::default(),
        }
    }

    fn changes(&self) -> Vec<(Method, String, Value)> {
        self.changes.lock().unwrap().clone()
    }
}

async fn fake_call_service(
    State(fake): State<Fake>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> axum::response::Response {
    let body = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
    let (status, reply) = match (method.clone(), uri.path()) {
        (Method::GET, CALLS) => (200, json!({ "calls": fake.calls.lock().unwrap().clone() })),
        (Method::GET, _) => (200, fake.details.lock().unwrap().clone()),
        (Method::POST, CALLS) => {
            fake.changes.lock().unwrap().push((method, uri.path().to_owned(), body));
            fake.dialled.lock().unwrap().clone()
        }
        _ => {
            fake.changes.lock().unwrap().push((method, uri.path().to_owned(), body));
            (200, json!({}))
        }
    };
    (StatusCode::from_u16(status).unwrap(), axum::Json(reply)).into_response()
}

/// An answered call of `foouser` as the list with details shows it.
fn listed(call_id: &str, state: &str, remote: &str) -> Value {
    json!({
        "callId": call_id, "externalTrackingId": format!("t-{call_id}"), "personality": "Terminator",
        "state": state, "remoteParty": { "address": format!("tel:{remote}"), "callType": "Unknown" },
        "startTime": "2021-10-29T11:45:14.535000", "answerTime": "2021-10-29T11:45:16.722000",
    })
}

/// A command on `foouser`'s call `call_id`.
fn on_call(call_id: &str, action: Action) -> Command {
    let leg = LegId::new(NAME, "foogroup", &format!("foouser/{call_id}"));
    Command { action, call: None, leg: Some(leg), extension: None, number: None }
}

async fn live_legs(hub: &Hub) -> Vec<Leg> {
    legs(hub).await.into_iter().filter(|leg| !leg.state.is_ended()).collect()
}

async fn fake_app(fake: &Fake) -> App {
    let base = serve(axum::Router::new().fallback(fake_call_service).with_state(fake.clone())).await;
    let users = json!([{ "id": "foouser", "extension": "101" }]);
    app(config(&base, "foo", "foogroup", users, &[("poll_interval_ms", 50.into())])).await
}

#[tokio::test]
async fn details_without_allowed_recording_controls_allow_what_the_recording_state_permits() {
    // Seed 004: `recorded` always comes, `allowedRecordingControls` only conditionally.
    let fake = Fake::new(json!([]), json!({"callId": "c:0", "state": "Active", "recorded": false}));
    let app = fake_app(&fake).await;
    assert_eq!(app.connector.control(on_call("c:0", Action::RecordStart)).await, Ok("recording".into()));
    assert_eq!(fake.changes(), vec![(Method::PUT, format!("{CALLS}c%3A0/"), json!({"action": "startRecording"}))]);

    // On the leg, the desk offers what the state permits: not recording, so record.
    *fake.calls.lock().unwrap() = json!([listed("c:0", "Active", "+3212345678")]);
    let expected = Recording { state: RecordingState::Off, controls: vec![Action::RecordStart] };
    wait_until("the call with its recording", async || {
        live_legs(&app.hub).await.iter().any(|leg| leg.recording.as_ref() == Some(&expected))
    })
    .await;

    // A list Netaxis does send still decides, "none" included.
    *fake.details.lock().unwrap() =
        json!({"callId": "c:0", "state": "Active", "recorded": false, "allowedRecordingControls": "none"});
    assert_eq!(
        app.connector.control(on_call("c:0", Action::RecordStart)).await,
        Err(CommandError::Refused(
            "Netaxis does not allow that on this call now (recording Off; allowed: none)".into()
        ))
    );
    assert_eq!(fake.changes().len(), 1, "nothing more was sent: {:?}", fake.changes());
    let health = app.connector.health();
    assert_eq!(health.errors, 0, "{:?}", health.last_error);
    app.shutdown.cancel();
}

#[tokio::test]
async fn resume_is_refused_while_reconnect_would_hang_up_the_users_other_calls() {
    // Call A on hold, and an unrelated call B answered since: `reconnect` of A would release B.
    let fake = Fake::new(
        json!([listed("a:0", "Held", "+3211111111"), listed("b:0", "Active", "+3222222222")]),
        json!({"callId": "a:0", "state": "Active", "recorded": false}),
    );
    let app = fake_app(&fake).await;
    wait_until("both calls to show", async || live_legs(&app.hub).await.len() == 2).await;
    assert_eq!(
        app.connector.control(on_call("a:0", Action::Resume)).await,
        Err(CommandError::Refused(
            "resuming from here would hang up your other call with +3222222222: Netaxis resumes a held call only \
             by releasing all the user's other calls. Resume it on the phone, or end the other calls first"
                .into()
        ))
    );
    assert!(fake.changes().is_empty(), "nothing was sent: {:?}", fake.changes());
    let b = live_legs(&app.hub).await.into_iter().find(|leg| leg.id.native() == "foouser/b:0");
    assert_eq!(b.map(|leg| leg.state), Some(LegState::Active), "B stays up");

    // A consultation from B that cannot be placed leaves B on hold: resuming it would release A.
    let consult = Command { number: Some("102".into()), ..on_call("b:0", Action::Consult) };
    let failed = app.connector.control(consult).await.unwrap_err();
    let note = "the caller stays on hold, since resuming from here would hang up your other call with \
                +3211111111: resume it on the phone";
    assert!(matches!(&failed, CommandError::Unreachable(words) if words.ends_with(note)), "{failed:?}");
    assert_eq!(
        fake.changes(),
        vec![
            (Method::PUT, format!("{CALLS}b%3A0/"), json!({"action": "hold"})),
            (Method::POST, CALLS.to_owned(), json!({"phoneNumber": "102"})),
        ],
        "no reconnect"
    );
    app.shutdown.cancel();
}

#[tokio::test]
async fn resume_during_a_consultation_from_the_desk_ends_the_consultation_and_says_so() {
    let fake = Fake::new(json!([listed("a:0", "Active", "+3211111111")]), json!({"callId": "a:0", "recorded": false}));
    *fake.dialled.lock().unwrap() = (201, json!({"callId": "c:0", "externalTrackingId": "t-c:0"}));
    let app = fake_app(&fake).await;
    wait_until("the call to show", async || live_legs(&app.hub).await.len() == 1).await;
    let consult = Command { number: Some("102".into()), ..on_call("a:0", Action::Consult) };
    assert_eq!(app.connector.control(consult).await, Ok("consulting 102; the caller is on hold".into()));
    *fake.calls.lock().unwrap() = json!([listed("a:0", "Held", "+3211111111"), listed("c:0", "Active", "102")]);
    wait_until("the consultation to show", async || live_legs(&app.hub).await.len() == 2).await;
    assert_eq!(
        app.connector.control(on_call("a:0", Action::Resume)).await,
        Ok("resumed; the consultation with 102 was hung up".into())
    );
    assert_eq!(fake.changes().last(), Some(&(Method::PUT, format!("{CALLS}a%3A0/"), json!({"action": "reconnect"}))));
    app.shutdown.cancel();
}

fn face_setup(users: &[(String, String)], details_in_body_only: bool) -> NetaxisSetup {
    NetaxisSetup {
        tenant: "sim-tenant".into(),
        group: "sim-group".into(),
        users: users.to_vec(),
        token: TOKEN.into(),
        login: ("supervisor".into(), "pa55word".into()),
        details_in_body_only,
    }
}

fn bindings(users: &[(String, String)]) -> Value {
    Value::Array(users.iter().map(|(id, extension)| json!({ "id": id, "extension": extension })).collect())
}

#[tokio::test]
async fn round_trip_from_the_face_with_faults_matches_the_ground_truth() {
    let rates =
        FaultRates { server_error: 0.01, slow: 0.01, slow_ms: 20, rate_limited: 0.001, ..FaultRates::default() };
    let faults = Faults::new(43, rates);
    let start = now_ms() - 3 * 3_600_000;
    let mut pbx = Pbx::new(Scenario { seed: 43, ..Scenario::demo() }, "sim", "cc", start);
    let users: Vec<(String, String)> =
        pbx.extension_numbers().into_iter().map(|number| (format!("u{number}@sim.netaxis.test"), number)).collect();
    let face = NetaxisFace::new(face_setup(&users, true), ("sim", "cc"), faults.clone(), None);
    let base = serve(face.router()).await;
    let interval: i64 = 100;
    let app =
        app(config(&base, "sim-tenant", "sim-group", bindings(&users), &[("poll_interval_ms", interval.into())])).await;

    let offered = |pbx: &Pbx| pbx.tallies().iter().map(|(_, _, tally)| tally.offered).sum::<u32>();
    let mut checkpoints = 0;
    let mut steps = 0;
    face.absorb(&pbx.take_events());
    while offered(&pbx) < 280 {
        let next = pbx.now() + 20_000;
        pbx.advance_to(next);
        face.absorb(&pbx.take_events());
        steps += 1;
        // Every user polled at least once since the change, then the hub holds what was shown.
        let served: Vec<u64> = users.iter().map(|(id, _)| face.served(id)).collect();
        wait_until("every user to be polled", async || {
            users.iter().zip(&served).all(|((id, _), before)| face.served(id) > *before)
        })
        .await;
        if steps % 4 != 0 {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let history = all_history(&app.store).await.unwrap();
            let expected = face.truth_picture();
            match expected.compare(&NetaxisFace::observed_picture(&history), "hub") {
                Ok(()) => break,
                Err(diff) if Instant::now() > deadline => {
                    panic!("checkpoint {checkpoints}: {diff}\nconnector {:?}", app.connector.health())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        checkpoints += 1;
    }
    for fault in [Fault::ServerError, Fault::Slow, Fault::RateLimited] {
        assert!(faults.count(fault) > 0, "{fault:?} was never injected: {:?}", faults.counts());
    }
    let legs = face.truth_picture().len();
    assert!(legs >= 250, "at least 250 legs compared, got {legs}");
    let health = app.connector.health();
    let injected = faults.count(Fault::ServerError) + faults.count(Fault::RateLimited);
    assert!(health.errors <= injected, "only the injected faults were errors: {health:?}");
    println!(
        "netaxis round trip: {} calls offered, {legs} legs, {steps} steps, {checkpoints} checkpoints, {} requests \
         answered, {} rounds, faults {:?}, connector errors {}",
        offered(&pbx),
        face.requests(),
        app.connector.rounds(),
        faults.counts(),
        health.errors
    );
    app.shutdown.cancel();
}

/// How long the hub took to show what `done` looks for, in polling intervals.
async fn comes_back(hub: &Hub, interval_ms: i64, what: &str, done: impl Fn(&[Leg]) -> bool) -> f64 {
    let began = Instant::now();
    loop {
        if done(&legs(hub).await) {
            return began.elapsed().as_secs_f64() * 1000.0 / interval_ms as f64;
        }
        assert!(began.elapsed() < Duration::from_secs(10), "{what} never came back: {:?}", legs(hub).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn every_command_moves_the_simulated_call_and_comes_back_within_two_intervals() {
    let shutdown = CancellationToken::new();
    // 20 times the wall clock: the agent's phone answers its click-to-call in about 1.5 s.
    let clock = Clock::new(now_ms(), 20.0);
    let pbx = Pbx::new(Scenario::for_commands(), "sim", "cc", now_ms());
    let (events, mut receiver) = tokio::sync::mpsc::channel::<Vec<Event>>(64);
    let (sim, _task) = runner::spawn(pbx, clock, events, shutdown.clone());
    let users: Vec<(String, String)> =
        ["101", "102", "103"].iter().map(|n| (format!("u{n}"), (*n).to_owned())).collect();
    let face = NetaxisFace::new(face_setup(&users, false), ("sim", "cc"), Faults::none(), Some(sim));
    let absorbing = face.clone();
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            absorbing.absorb(&batch);
        }
    });
    let base = serve(face.router()).await;
    let interval: i64 = 250;
    let login: [(&str, toml::Value); 4] = [
        ("username", "supervisor".into()),
        ("password", "pa55word".into()),
        ("login_url", format!("{base}/api/v01/auth/login").into()),
        ("poll_interval_ms", interval.into()),
    ];
    let app = app(config(&base, "sim-tenant", "sim-group", bindings(&users), &login)).await;
    wait_until("the first round", async || app.connector.health().state == "ready").await;
    let ext = |n: &str| Some(ExtensionId::new(NAME, "sim-group", n));
    let command = |action: Action| Command { action, call: None, leg: None, extension: None, number: None };
    let at = |legs: &[Leg], n: &str| {
        legs.iter().filter(|l| l.extension == ext(n) && !l.state.is_ended()).cloned().collect::<Vec<_>>()
    };
    let mut worst: f64 = 0.0;

    // Click-to-call: the agent's phone rings, then the far end, then it is answered.
    let dialled = app
        .connector
        .control(Command { extension: ext("101"), number: Some("+3212345678".into()), ..command(Action::Dial) })
        .await
        .unwrap();
    assert!(dialled.starts_with("calling +3212345678 from 101: callhalf-"), "{dialled}");
    worst = worst.max(comes_back(&app.hub, interval, "the click-to-call", |legs| !at(legs, "101").is_empty()).await);
    wait_until("the far end to answer", async || {
        at(&legs(&app.hub).await, "101").iter().any(|l| l.state == LegState::Active)
    })
    .await;
    let original = at(&legs(&app.hub).await, "101").remove(0);
    assert_eq!(original.call.native().len(), 36, "the conversation is the externalTrackingId");
    let on = |action: Action| Command { leg: Some(original.id.clone()), ..command(action) };

    // Hold, a second hold refused with the seed's words, reconnect.
    assert_eq!(app.connector.control(on(Action::Hold)).await, Ok("on hold".into()));
    worst = worst
        .max(comes_back(&app.hub, interval, "hold", |legs| at(legs, "101")[0].held_by == Some(HeldBy::Local)).await);
    assert_eq!(
        app.connector.control(on(Action::Hold)).await,
        Err(CommandError::Refused(
            "Netaxis refused: HTTP 400: The state of the call is not valid. (59 INVALID_CALL_OPERATION)".into()
        ))
    );
    assert_eq!(app.connector.control(on(Action::Resume)).await, Ok("resumed".into()));
    worst = worst
        .max(comes_back(&app.hub, interval, "reconnect", |legs| at(legs, "101")[0].state == LegState::Active).await);

    // Recording: each control moves the recording, and only the allowed ones are offered.
    let recording = |legs: &[Leg]| at(legs, "101")[0].recording.clone();
    let steps = [
        (Action::RecordStart, RecordingState::Started, vec![Action::RecordPause, Action::RecordStop]),
        (Action::RecordPause, RecordingState::Paused, vec![Action::RecordResume, Action::RecordStop]),
        (Action::RecordResume, RecordingState::Started, vec![Action::RecordPause, Action::RecordStop]),
        (Action::RecordStop, RecordingState::Off, vec![Action::RecordStart]),
    ];
    for (action, state, controls) in steps {
        app.connector.control(on(action)).await.unwrap();
        let expected = Recording { state, controls };
        worst = worst
            .max(comes_back(&app.hub, interval, "recording", |legs| recording(legs).as_ref() == Some(&expected)).await);
    }
    let refused = app.connector.control(on(Action::RecordPause)).await.unwrap_err();
    assert!(matches!(&refused, CommandError::Refused(words) if words.contains("allowed: record_start")), "{refused:?}");

    // Consult 102 (the caller is held), 102 answers on the phone, complete the transfer.
    let consulting =
        app.connector.control(Command { number: Some("102".into()), ..on(Action::Consult) }).await.unwrap();
    assert_eq!(consulting, "consulting 102; the caller is on hold");
    worst = worst.max(
        comes_back(&app.hub, interval, "the consultation", |legs| {
            at(legs, "102").len() == 1 && at(legs, "101").len() == 2
        })
        .await,
    );
    wait_until("102 to answer", async || at(&legs(&app.hub).await, "102").iter().any(|l| l.state == LegState::Active))
        .await;
    assert_eq!(app.connector.control(on(Action::CompleteTransfer)).await, Ok("transferred".into()));
    worst = worst.max(
        comes_back(&app.hub, interval, "the transfer", |legs| {
            at(legs, "101").is_empty()
                && at(legs, "102").iter().any(|l| l.call == original.call && l.state == LegState::Active)
        })
        .await,
    );

    // Detached on the network: commands refused in the seed's words until call retrieve.
    assert!(face.detach("102"));
    worst = worst.max(
        comes_back(&app.hub, interval, "detached", |legs| {
            at(legs, "102").iter().any(|l| l.state == LegState::Detached)
        })
        .await,
    );
    let transferred = at(&legs(&app.hub).await, "102").remove(0);
    let blind =
        Command { leg: Some(transferred.id.clone()), number: Some("103".into()), ..command(Action::BlindTransfer) };
    assert_eq!(
        app.connector.control(blind.clone()).await,
        Err(CommandError::Refused(
            "Netaxis refused: HTTP 400: The call is in the detached state. (59 INVALID_CALL_OPERATION)".into()
        ))
    );
    let retrieved = app.connector.api().retrieve("u102").await.unwrap();
    assert_eq!(Some(retrieved.call_id.as_str()), transferred.id.native().split('/').nth(1));
    assert_eq!(app.connector.api().retrieve("u102").await.unwrap_err().to_string(), "HTTP 404: no call to retrieve");
    worst = worst.max(
        comes_back(&app.hub, interval, "retrieved", |legs| at(legs, "102").iter().any(|l| l.state == LegState::Active))
            .await,
    );

    // Blind transfer to 103, then release.
    assert_eq!(app.connector.control(blind).await, Ok("transferred".into()));
    worst = worst.max(
        comes_back(&app.hub, interval, "the blind transfer", |legs| {
            at(legs, "102").is_empty() && !at(legs, "103").is_empty()
        })
        .await,
    );
    wait_until("103 to answer", async || at(&legs(&app.hub).await, "103").iter().any(|l| l.state == LegState::Active))
        .await;
    let last = at(&legs(&app.hub).await, "103").remove(0);
    assert_eq!(
        app.connector.control(Command { leg: Some(last.id.clone()), ..command(Action::Hangup) }).await,
        Ok("released".into())
    );
    worst = worst.max(comes_back(&app.hub, interval, "the release", |legs| at(legs, "103").is_empty()).await);
    let history = all_history(&app.store).await.unwrap();
    let call = history.iter().find(|call| call.id == original.call).unwrap();
    assert!(call.ended_at.is_some() && call.legs.len() == 3, "101, 102 and 103 each had the caller: {call:?}");

    // IMRN from the pool; an unknown calling number is a 404; the plain list has no details.
    assert_eq!(app.connector.api().imrn("u101", "+3225126778", "101").await.unwrap(), "+3236548200");
    assert_eq!(
        app.connector.api().imrn("u101", "+3225126778", "+3225126780").await.unwrap_err().to_string(),
        "HTTP 404: callingPhoneNumber not found"
    );
    assert!(app.connector.api().list("u101").await.unwrap().is_empty());
    assert_eq!(
        app.connector.control(Command { leg: Some(last.id), ..command(Action::Answer) }).await.unwrap_err(),
        CommandError::Refused("Netaxis's Call Service cannot answer a call: answer it on the phone".into())
    );
    assert!(worst <= 2.0, "a change came back after {worst:.2} intervals");
    let health = app.connector.health();
    assert_eq!(health.errors, 0, "{:?}", health.last_error);
    println!("netaxis commands: the slowest change came back after {worst:.2} polling intervals of {interval} ms");
    shutdown.cancel();
    app.shutdown.cancel();
}
