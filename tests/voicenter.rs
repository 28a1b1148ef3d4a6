//! The Voicenter connector: every literal event of the seed through a bare Engine.IO 3 server,
//! then round trips against the simulator's Voicenter face over both transports, with drops,
//! a dead primary server and token expiry, and an accelerated hour on Engine.IO 3.
#![cfg(feature = "ssr")]

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use callboard::connectors::voicenter::{VoicenterConfig, VoicenterConnector};
use callboard::connectors::Connector;
use callboard::hub::{Hub, HubSettings};
use callboard::model::*;
use callboard::sim::harness::{all_history, hub_snapshot, wait_until};
use callboard::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

const SEED_EVENTS: [&str; 14] = [
    "login_status",
    "all_extensions_status",
    "queue_join",
    "queue_exit",
    "queue_abandoned",
    "incoming_newcall",
    "incoming_answer",
    "incoming_hangup",
    "c2c_leg1_newcall",
    "c2c_leg1_answer",
    "c2c_leg2_newcall",
    "c2c_leg2_answer",
    "c2c_leg2_hangup",
    "user_status_update",
];

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/voicenter/{name}.json", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn hub(dir: &tempfile::TempDir) -> (Hub, Store, CancellationToken) {
    let store = Store::open(&dir.path().join("voicenter.db")).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await.unwrap();
    (hub, store, shutdown)
}

fn token_config(servers: Vec<String>, protocol: &str) -> VoicenterConfig {
    let mut table = toml::Table::new();
    table.insert("token".into(), "seed-token".into());
    table.insert("protocol".into(), protocol.into());
    table.insert("servers".into(), toml::Value::Array(servers.into_iter().map(Into::into).collect()));
    VoicenterConfig::from_table(&table).unwrap()
}

/// A bare Engine.IO 3 server: OPEN with short ping settings, `40`, then each frame given,
/// verbatim, as `42…`; counts the client's pings and records what else it says.
#[derive(Clone, Default)]
struct BareServer {
    frames: Arc<Vec<String>>,
    pings: Arc<Mutex<u32>>,
    said: Arc<Mutex<Vec<String>>>,
    queries: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

async fn bare_upgrade(
    State(server): State<BareServer>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    server.queries.lock().unwrap().push(query);
    upgrade.on_upgrade(move |socket| bare_session(server, socket))
}

async fn bare_session(server: BareServer, mut socket: WebSocket) {
    let open = r#"0{"sid":"WF-eNmG0VbGkSn1wbD3n","upgrades":[],"pingInterval":200,"pingTimeout":500}"#;
    if socket.send(WsMessage::Text(open.into())).await.is_err()
        || socket.send(WsMessage::Text("40".into())).await.is_err()
    {
        return;
    }
    for frame in server.frames.iter() {
        if socket.send(WsMessage::Text(format!("42{frame}").into())).await.is_err() {
            return;
        }
    }
    while let Some(Ok(message)) = socket.recv().await {
        let WsMessage::Text(text) = message else { continue };
        if text.as_str() == "2" {
            *server.pings.lock().unwrap() += 1;
            if socket.send(WsMessage::Text("3".into())).await.is_err() {
                return;
            }
        } else {
            server.said.lock().unwrap().push(text.to_string());
        }
    }
}

#[tokio::test]
async fn every_literal_event_of_the_seed_through_engine_io_3() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let seed =
        std::fs::read_to_string(format!("{}/../shared/seeds/003_34c0b860a2214987.txt", env!("CARGO_MANIFEST_DIR")));
    let frames: Vec<String> = SEED_EVENTS.iter().map(|name| fixture(name)).collect();
    if let Ok(seed) = seed {
        for (name, frame) in SEED_EVENTS.iter().zip(&frames) {
            assert!(seed.contains(frame.trim_end()), "fixture {name} is not verbatim in the seed");
        }
    }
    let server = BareServer { frames: Arc::new(frames), ..BareServer::default() };
    let base = serve(Router::new().route("/socket.io/", get(bare_upgrade)).with_state(server.clone())).await;
    let connector =
        VoicenterConnector::start("vc", token_config(vec![base], "eio3"), hub.clone(), shutdown.clone()).await;

    wait_until("the seed's user status update to arrive", async || {
        let snapshot = hub_snapshot(&hub).await.unwrap();
        snapshot
            .extensions
            .iter()
            .any(|e| e.number == "1234567" && e.agent_status == AgentStatus::Break(BreakReason::Lunch))
    })
    .await;
    let snapshot = hub_snapshot(&hub).await.unwrap();
    let extension = |number: &str| snapshot.extensions.iter().find(|e| e.number == number).unwrap().clone();
    // AllExtensionsStatus: Clark Kent logged out (2), Lois Lane available (1) since the
    // millisecond `representativeUpdated`.
    let clark = extension("9876543");
    assert_eq!((clark.name.as_deref(), clark.sip_user.as_deref()), (Some("Clark Kent"), Some("SIPSIP1")));
    assert_eq!(clark.agent_status, AgentStatus::LoggedOut);
    let lois = extension("9876542");
    assert_eq!((lois.agent_status.clone(), lois.status_since), (AgentStatus::Available, 1_597_944_933_000));
    assert_eq!(lois.raw_status.as_deref(), Some("1"));
    // userStatusUpdate, with its fields beside `data`: Lunch since 1606917164000.
    let desk = extension("1234567");
    assert_eq!(
        (desk.agent_status.clone(), desk.status_since),
        (AgentStatus::Break(BreakReason::Lunch), 1_606_917_164_000)
    );
    assert_eq!(desk.online_user.as_deref(), Some("Clark Kent"));

    let health = hub.connectors().await.unwrap().into_iter().find(|h| h.name == "vc").unwrap();
    assert_eq!(health.state, "ready");
    // The JOIN example closes a name with a typographic quote; it is read all the same.
    assert_eq!(health.errors, 0, "{health:?}");
    assert!(connector.capabilities().is_empty(), "the Real Time API has no call control");

    let calls: HashMap<String, Call> =
        all_history(&store).await.unwrap().into_iter().map(|call| (call.id.native().to_owned(), call)).collect();
    // The incoming call: rang at 1606908124, answered at callAnswered 1606908134, ended normally.
    let incoming = &calls["202012021122010135330b4f77"];
    assert_eq!(incoming.legs.len(), 1);
    let leg = &incoming.legs[0];
    assert_eq!(leg.id.native(), "202012021122010135330b4f77/1234567");
    assert_eq!((incoming.direction, incoming.origin.clone()), (Direction::Inbound, Origin::Normal));
    assert_eq!((incoming.answered_at, incoming.ended_at), (Some(1_606_908_134_000), Some(1_606_908_139_000)));
    assert_eq!((incoming.end_cause, leg.raw_cause.as_deref()), (Some(EndCause::Normal), Some("Normal hangup")));
    assert_eq!(
        (incoming.caller.number.as_deref(), incoming.caller.name.as_deref()),
        (Some("0501234567"), Some("Test Voicenter"))
    );
    assert_eq!(leg.ringing_at, Some(1_606_908_124_000));
    // The click-to-call: leg 1 rings the agent, leg 2 the far end, which answers at 1606913090.
    let c2c = &calls["20201200013quvnhxku5v"];
    assert_eq!(c2c.legs.len(), 1, "one extension, one leg moving on");
    assert_eq!((c2c.origin.clone(), c2c.direction), (Origin::ClickToCall, Direction::Outbound));
    assert_eq!((c2c.answered_at, c2c.ended_at), (Some(1_606_913_090_000), Some(1_606_913_094_000)));
    assert_eq!(c2c.end_cause, Some(EndCause::Normal));
    assert_eq!(c2c.legs[0].raw_state, "Talking (click-to-call leg 2)");

    // The client pinged (Engine.IO 3: the client pings), with the token in the query.
    wait_until("two pings", async || *server.pings.lock().unwrap() >= 2).await;
    let query = server.queries.lock().unwrap()[0].clone();
    assert_eq!(
        (query["EIO"].as_str(), query["transport"].as_str(), query["token"].as_str()),
        ("3", "websocket", "seed-token")
    );
    assert!(
        server.said.lock().unwrap().iter().all(|said| !said.starts_with("40")),
        "the client must not send 40 on EIO3"
    );
    shutdown.cancel();
}

/// The seed's events, read and tracked without a transport, into a state without a figures
/// day (the hub counts queue figures from today, and the seed's examples are of 2020).
fn seed_state(names: &[&str]) -> LiveState {
    use callboard::connectors::voicenter::{mapping::Tracker, wire};
    let mut tracker = Tracker::new("vc", "rt");
    let mut state = LiveState::new(QueueSettings::default(), Default::default());
    for name in names {
        let frame = wire::lenient_json(&fixture(name)).unwrap();
        let message = wire::parse(frame[0].as_str().unwrap(), &frame[1]).unwrap();
        for event in tracker.take(&message, &frame[1], callboard::hub::now_ms()) {
            state.apply(&event);
        }
    }
    state
}

#[test]
fn the_seed_queue_events_yield_waiting_calls_and_outcomes() {
    // The seed's examples are separate moments that share one call id: loginStatus has the
    // call waiting in queue 12345678 on 20 August, the QueueEvents have it join 1234567 on the
    // 23rd. Read together, the later join would rightly say it left 12345678 for 1234567.
    let (_, _, at_login) = seed_state(&["login_status"]).views_all();
    let (_, _, queues) = seed_state(&SEED_EVENTS).views_all();
    let find = |from: &[Queue], id: &str| from.iter().find(|q| q.id.native() == id).unwrap().clone();
    let queue = |id: &str| find(&at_login, id);
    // loginStatus: Queue1 with John Doe waiting since 1597941709; Queue2 empty.
    let queue1 = queue("12345678");
    assert_eq!(queue1.name, "Queue1");
    assert_eq!(queue1.waiting.len(), 1);
    let waiting = &queue1.waiting[0];
    assert_eq!(waiting.call.native(), "2020082015645675456434324949c071d");
    assert_eq!(
        (waiting.caller.number.as_deref(), waiting.caller.name.as_deref()),
        (Some("0501234567"), Some("John Doe"))
    );
    assert_eq!(waiting.joined_at, Some(1_597_941_709_000));
    assert_eq!((queue("12345679").name.as_str(), queue("12345679").waiting.len()), ("Queue2", 0));
    // QueueEvents: JOIN then EXIT (answered) of one call in queue 1234567, waiting 14 s; the
    // ABANDONED example is about another call, whose JOIN was never sent: offered and
    // abandoned all the same.
    let events = find(&queues, "1234567");
    assert_eq!(events.name, "Queue1");
    assert!(events.waiting.is_empty(), "{:?}", events.waiting);
    let figures = &events.figures;
    assert_eq!((figures.offered, figures.answered, figures.abandoned), (2, 1, 1), "{figures:?}");
    assert_eq!(figures.avg_wait_ms, Some(14_000));
}

use callboard::clock::Clock;
use callboard::sim::faces::voicenter::{VoicenterFace, VoicenterSetup};
use callboard::sim::faults::{FaultRates, Faults};
use callboard::sim::{runner, Pbx, Scenario};
use std::time::Duration;

const USERNAME: &str = "supervisor";
const PASSWORD: &str = "sekrit-pw";

fn setup(ping_interval_ms: u64, ping_timeout_ms: u64, token_lifetime: Duration) -> VoicenterSetup {
    VoicenterSetup {
        ping_interval: Duration::from_millis(ping_interval_ms),
        ping_timeout: Duration::from_millis(ping_timeout_ms),
        token_lifetime,
        account_username: USERNAME.into(),
        account_password: PASSWORD.into(),
        account_token: "account-token".into(),
        user_pin: "1234".into(),
    }
}

/// The face's login API and two monitor servers on loopback; returns the login URL.
async fn serve_face(face: &VoicenterFace) -> String {
    let login = serve(face.login_router()).await;
    let mut urls = Vec::new();
    for index in 0..2 {
        urls.push(serve(face.monitor_router(index)).await);
    }
    face.set_urls(urls);
    format!("{login}/monitorAPI")
}

fn account_config(login_url: &str, protocol: &str) -> VoicenterConfig {
    let mut table = toml::Table::new();
    table.insert("login_url".into(), login_url.into());
    table.insert("login_type".into(), "account".into());
    table.insert("username".into(), USERNAME.into());
    table.insert("password".into(), PASSWORD.into());
    table.insert("protocol".into(), protocol.into());
    VoicenterConfig::from_table(&table).unwrap()
}

/// Waits until the hub shows what the ground truth shows, as Voicenter can show it.
async fn converge(face: &VoicenterFace, hub: &Hub, store: &Store, truth: &LiveState, with_ended: bool, what: &str) {
    let mut last = String::new();
    for _ in 0..600 {
        let snapshot = hub_snapshot(hub).await.unwrap();
        let calls = if with_ended { all_history(store).await.unwrap() } else { snapshot.calls.clone() };
        let observed = VoicenterFace::observed_picture(&snapshot.extensions, &calls, &snapshot.queues, with_ended);
        match face.truth_picture(truth, with_ended).compare(&observed, "hub") {
            Ok(()) => return,
            Err(diff) => last = diff,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: the hub did not come to show the ground truth within 30 s:\n{last}");
}

/// The scenario through the face and a connector on `protocol`, stepped 5 simulated seconds at
/// a time, with drop faults, a dead primary, revoked tokens and an *Updated event; the live
/// picture must come back to the truth at every checkpoint.
async fn round_trip(protocol: &str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let faults = Faults::new(seed, FaultRates { drop: 0.002, ..FaultRates::default() });
    let face = VoicenterFace::new(setup(400, 800, Duration::from_secs(3600)), ("sim", "cc"), 2, faults.clone());
    let login_url = serve_face(&face).await;
    let start = callboard::hub::now_ms();
    let mut pbx = Pbx::new(Scenario { seed, ..Scenario::demo() }, "sim", "cc", start);
    let mut truth = LiveState::new(QueueSettings::default(), Default::default());
    let absorb = |pbx: &mut Pbx, truth: &mut LiveState| {
        let events = pbx.take_events();
        for event in &events {
            truth.apply(event);
        }
        face.absorb(&events);
    };
    // The call center exists before Callboard connects, as a real account does.
    absorb(&mut pbx, &mut truth);
    // The connector's schedules run 60 times as fast: 6 minutes on a backup take 6 s.
    let clock = Clock::new(callboard::hub::now_ms(), 60.0);
    let connector = VoicenterConnector::start_with_clock(
        "vc",
        account_config(&login_url, protocol),
        hub.clone(),
        shutdown.clone(),
        clock,
    )
    .await;
    converge(&face, &hub, &store, &truth, false, "at the start").await;
    let mut checkpoints = 0;
    let mut steps = 0u32;
    let mut killed_at = None;
    while pbx.tallies().iter().map(|(_, _, tally)| tally.offered).sum::<u32>() < 300 {
        steps += 1;
        let next = pbx.now() + 5_000;
        pbx.advance_to(next);
        absorb(&mut pbx, &mut truth);
        tokio::time::sleep(Duration::from_millis(5)).await;
        match steps {
            40 => {
                face.kill(0);
                killed_at = Some(connector.stats());
            }
            100 => face.expire_tokens(),
            140 => face.announce_updated(),
            180 => face.drop_connections(),
            _ => {}
        }
        if steps.is_multiple_of(20) {
            converge(&face, &hub, &store, &truth, false, &format!("checkpoint {checkpoints}")).await;
            checkpoints += 1;
        }
        if steps == 60 {
            // Moved to the backup; the primary comes back, and the connector returns to it
            // after six (accelerated) minutes there.
            assert_eq!(connector.stats().server, 1, "{:?}", connector.stats());
            face.revive(0);
            wait_until("the return to the primary", async || connector.stats().returns_to_primary >= 1).await;
            assert_eq!(connector.stats().server, 0);
        }
    }
    converge(&face, &hub, &store, &truth, false, "at the end").await;
    let stats = connector.stats();
    let face_stats = face.stats();
    assert!(killed_at.is_some());
    assert!(stats.refreshes + stats.logins >= 2, "the revoked token was renewed: {stats:?}");
    assert!(face_stats.resyncs >= 1, "ExtensionsUpdated was answered with resync: {face_stats:?}");
    assert!(face_stats.accepted[1] >= 1, "the backup took over: {face_stats:?}");
    let expected_protocol = if protocol == "eio3" { 4 } else { 5 };
    assert_eq!(face_stats.protocols[0], Some(expected_protocol), "{face_stats:?}");
    let (_, calls, _) = truth.views_all();
    let health = hub.connectors().await.unwrap().into_iter().find(|h| h.name == "vc").unwrap();
    println!(
        "voicenter {protocol} round trip: {} calls, {steps} steps, {checkpoints} checkpoints, connector {stats:?}, face {face_stats:?}, drops {}, connector errors {}",
        calls.len(),
        faults.count(callboard::sim::faults::Fault::Drop),
        health.errors
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_engine_io_3_with_drops_a_dead_primary_and_token_expiry() {
    round_trip("eio3", 31).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_engine_io_4_with_drops_a_dead_primary_and_token_expiry() {
    round_trip("eio4", 32).await;
}

/// An hour of the call center on the simulator's clock at 60 times real time, on Engine.IO 3
/// with Voicenter's own timing scaled alike (pings every simulated minute, keepalives, token
/// refreshes every ten simulated minutes): no link may drop, and at the end every leg ever
/// shown, live or ended, and every queue's waiting list equal the ground truth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accelerated_hour_on_engine_io_3_without_a_spurious_disconnect() {
    const SPEED: f64 = 60.0;
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let face = VoicenterFace::new(setup(1_000, 3_000, Duration::from_secs(10)), ("sim", "cc"), 2, Faults::none());
    let login_url = serve_face(&face).await;
    let start = callboard::hub::now_ms();
    let clock = Clock::new(start, SPEED);
    let pbx = Pbx::new(Scenario { seed: 33, ..Scenario::demo() }, "sim", "cc", start);
    let (events, mut receiver) = tokio::sync::mpsc::channel::<Vec<Event>>(1024);
    let sim_stop = CancellationToken::new();
    let (_sim, _task) = runner::spawn(pbx, clock, events, sim_stop.clone());
    let truth = Arc::new(Mutex::new(LiveState::new(QueueSettings::default(), Default::default())));
    let absorbing = (face.clone(), truth.clone());
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            let mut truth = absorbing.1.lock().unwrap();
            for event in &batch {
                truth.apply(event);
            }
            absorbing.0.absorb(&batch);
        }
    });
    wait_until("the call center to exist", async || !truth.lock().unwrap().views_all().0.is_empty()).await;
    let connector = VoicenterConnector::start_with_clock(
        "vc",
        account_config(&login_url, "eio3"),
        hub.clone(),
        shutdown.clone(),
        clock,
    )
    .await;
    wait_until("the first connection", async || face.stats().accepted.iter().sum::<u64>() >= 1).await;
    clock.sleep_until(start + 3_600_000).await;
    sim_stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let truth =
        std::mem::replace(&mut *truth.lock().unwrap(), LiveState::new(QueueSettings::default(), Default::default()));
    converge(&face, &hub, &store, &truth, true, "after the hour").await;
    let stats = connector.stats();
    let face_stats = face.stats();
    let (_, calls, _) = truth.views_all();
    println!("voicenter hour on eio3: {} calls, connector {stats:?}, face {face_stats:?}", calls.len());
    assert_eq!((stats.closed_by_server, stats.silent_failovers, stats.open_failures), (0, 0, 0), "{stats:?}");
    assert_eq!(face_stats.disconnects, 0, "{face_stats:?}");
    assert!(stats.keepalives_sent >= 55, "a keepalive every simulated minute: {stats:?}");
    assert!(face_stats.keepalives >= 55, "{face_stats:?}");
    assert!(stats.refreshes >= 5, "the token was refreshed before each expiry: {stats:?}");
    assert_eq!(
        (stats.logins, face_stats.logins, face_stats.login_failures),
        (1, 1, 0),
        "refreshed, not logged in again"
    );
    assert_eq!(stats.server, 0);
    assert!(calls.len() >= 100, "{} calls", calls.len());
    shutdown.cancel();
}

#[tokio::test]
async fn wrong_provider_data_is_counted_and_the_stream_goes_on() {
    let frames = vec![
        // No extension number: refused, named.
        r#"["ExtensionEvent",{"data":{"eventName":"extension","reason":"NEWCALL","calls":[]}}]"#.to_owned(),
        // Not an object.
        r#"["QueueEvent","nonsense"]"#.to_owned(),
        // Not JSON at all.
        "{not json".to_owned(),
        // A statement with a call that has no id: refused whole, so nothing is ended by it.
        r#"["AllExtensionsStatus",{"extensions":[{"number":500,"calls":[{"callstatus":"Talking"}]}]}]"#.to_owned(),
        // Strings for numbers, an unknown field, an unknown event: all fine.
        r#"["ExtensionEvent",{"data":{"eventName":"extension","reason":"NEWCALL","servertime":"1700000000","number":"500","userName":"Ann","futureField":{"x":1},"calls":[{"ivrid":"ok-1","callstatus":"Ringing","direction":"Incoming","callerphone":"0299990000","callStarted":"1700000000","answered":"0"}],"currentCall":{"ivrid":"ok-1","callstatus":"Ringing","direction":"Incoming","callerphone":"0299990000","callStarted":"1700000000","answered":"0"}}}]"#.to_owned(),
        r#"["somethingNew",{"x":1}]"#.to_owned(),
        r#"["ExtensionEvent",{"data":{"eventName":"extension","reason":"HANGUP","cause":"Normal hangup","ivruniqueid":"ok-1","servertime":1700000009,"number":500,"calls":[],"currentCall":{"ivrid":"ok-1","callstatus":"Ringing","direction":"Incoming","callerphone":"0299990000","answered":0}}}]"#.to_owned(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let server = BareServer { frames: Arc::new(frames), ..BareServer::default() };
    let base = serve(Router::new().route("/socket.io/", get(bare_upgrade)).with_state(server.clone())).await;
    let _connector =
        VoicenterConnector::start("vc", token_config(vec![base], "eio3"), hub.clone(), shutdown.clone()).await;
    wait_until("the call to end", async || {
        all_history(&store).await.unwrap().iter().any(|call| call.end_cause.is_some())
    })
    .await;
    let calls = all_history(&store).await.unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0].end_cause, calls[0].started_at), (Some(EndCause::NoAnswer), 1_700_000_000_000));
    assert_eq!(calls[0].caller.number.as_deref(), Some("0299990000"));
    // Published within a second of the count changing, though nothing else happens.
    let mut health = None;
    wait_until("the errors to be published", async || {
        health = hub.connectors().await.unwrap().into_iter().find(|h| h.name == "vc" && h.errors > 0);
        health.as_ref().is_some_and(|h| h.events >= 2)
    })
    .await;
    let health = health.unwrap();
    assert_eq!(health.errors, 4, "{health:?}");
    assert!(
        health
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("HANGUP") || error.contains("not JSON") || error.contains("ivrid")),
        "{health:?}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_user_login_sees_its_own_extension() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _store, shutdown) = hub(&dir).await;
    let face = VoicenterFace::new(setup(400, 800, Duration::from_secs(3600)), ("sim", "cc"), 2, Faults::none());
    let login_url = serve_face(&face).await;
    let mut pbx = Pbx::new(Scenario { seed: 5, ..Scenario::demo() }, "sim", "cc", callboard::hub::now_ms());
    face.absorb(&pbx.take_events());
    let number = pbx.extension_numbers()[3].clone();
    let mut table = toml::Table::new();
    table.insert("login_url".into(), login_url.into());
    table.insert("login_type".into(), "user".into());
    table.insert("email".into(), format!("{number}@sim.voicenter.test").into());
    table.insert("pin".into(), "1234".into());
    let _connector =
        VoicenterConnector::start("vc", VoicenterConfig::from_table(&table).unwrap(), hub.clone(), shutdown.clone())
            .await;
    wait_until("the user's extension", async || !hub_snapshot(&hub).await.unwrap().extensions.is_empty()).await;
    let snapshot = hub_snapshot(&hub).await.unwrap();
    let numbers: Vec<&str> = snapshot.extensions.iter().map(|e| e.number.as_str()).collect();
    assert_eq!(numbers, [number.as_str()]);
    let stats = face.stats();
    assert_eq!((stats.logins, stats.login_failures), (1, 0));
    shutdown.cancel();
}

/// Callboard stops while calls go on; after a restart the journal gives back what it knew, and
/// the first statement on the new connection ends what went away meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_rebuilds_the_state_and_ends_what_went_away() {
    let dir = tempfile::tempdir().unwrap();
    let face = VoicenterFace::new(setup(400, 800, Duration::from_secs(3600)), ("sim", "cc"), 2, Faults::none());
    let login_url = serve_face(&face).await;
    let mut pbx = Pbx::new(Scenario { seed: 7, ..Scenario::demo() }, "sim", "cc", callboard::hub::now_ms());
    let mut truth = LiveState::new(QueueSettings::default(), Default::default());
    let step = |pbx: &mut Pbx, truth: &mut LiveState, ms: i64| {
        let next = pbx.now() + ms;
        pbx.advance_to(next);
        let events = pbx.take_events();
        for event in &events {
            truth.apply(event);
        }
        face.absorb(&events);
    };
    step(&mut pbx, &mut truth, 0);
    let (hub_a, store_a, stop_a) = hub(&dir).await;
    let _first =
        VoicenterConnector::start("vc", account_config(&login_url, "eio3"), hub_a.clone(), stop_a.clone()).await;
    for _ in 0..60 {
        step(&mut pbx, &mut truth, 5_000);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    converge(&face, &hub_a, &store_a, &truth, false, "before the stop").await;
    let live_before = hub_snapshot(&hub_a).await.unwrap().calls.len();
    stop_a.cancel();
    drop((hub_a, store_a));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Ten simulated minutes pass with nobody listening: every call live at the stop ends.
    for _ in 0..120 {
        step(&mut pbx, &mut truth, 5_000);
    }
    let (hub_b, store_b, stop_b) = hub(&dir).await;
    let journaled = hub_snapshot(&hub_b).await.unwrap().calls.len();
    assert!(journaled >= live_before.min(1), "the journal gave back the live calls ({journaled} of {live_before})");
    let _second =
        VoicenterConnector::start("vc", account_config(&login_url, "eio3"), hub_b.clone(), stop_b.clone()).await;
    converge(&face, &hub_b, &store_b, &truth, false, "after the restart").await;
    println!("voicenter restart: {live_before} calls live at the stop, {journaled} back from the journal");
    stop_b.cancel();
}

/// Voicenter events read and tracked without a transport, into a fresh state.
fn tracked_state(frames: &[(&str, serde_json::Value)]) -> LiveState {
    use callboard::connectors::voicenter::{mapping::Tracker, wire};
    let mut tracker = Tracker::new("vc", "rt");
    let mut state = LiveState::new(QueueSettings::default(), Default::default());
    for (name, payload) in frames {
        let message = wire::parse(name, payload).unwrap();
        for event in tracker.take(&message, payload, callboard::hub::now_ms()) {
            state.apply(&event);
        }
    }
    state
}

/// An ExtensionEvent at extension 500 about call `ivrid`, at epoch second `second`.
fn extension_event(
    reason: &str,
    ivrid: &str,
    status: &str,
    answered_at: Option<i64>,
    second: i64,
) -> serde_json::Value {
    let call = serde_json::json!({
        "ivrid": ivrid, "callstatus": status, "direction": "Incoming", "callStarted": second,
        "answered": u8::from(answered_at.is_some()), "callAnswered": answered_at.unwrap_or(0),
        "callerphone": "0501234567", "callername": "John Doe",
    });
    let (calls, cause): (Vec<serde_json::Value>, Option<&str>) =
        if reason == "HANGUP" { (vec![], Some("Normal hangup")) } else { (vec![call.clone()], None) };
    let mut data = serde_json::json!({
        "eventName": "extension", "reason": reason, "servertime": second, "servertimeoffset": 120,
        "number": 500, "userName": "Ann", "calls": calls, "currentCall": call,
    });
    if let Some(cause) = cause {
        data["cause"] = cause.into();
        data["ivruniqueid"] = ivrid.into();
    }
    serde_json::json!({ "data": data })
}

/// A QueueEvent of queue 1234567 about call `ivrid`, with `waiting` still waiting after it.
fn queue_event(reason: &str, ivrid: &str, waiting: &[(&str, i64)], second: i64) -> serde_json::Value {
    let calls: Vec<serde_json::Value> = waiting
        .iter()
        .map(|(ivrid, joined)| {
            serde_json::json!({ "CallerID": "0501234567", "CallerName": "John Doe", "IvrUniqueID": ivrid,
                "JoinTimeStamp": joined, "ivrid": ivrid })
        })
        .collect();
    serde_json::json!({
        "data": { "QueueID": 1234567, "Calls": calls, "QueueName": "Queue1" },
        "eventName": "queue", "reason": reason, "servertime": second, "servertimeoffset": 180,
        "ivruniqueid": ivrid,
    })
}

/// ABANDONED is also what a caller who reached the queue's maximum wait gets, and the call
/// rings on elsewhere: it ends the wait, never the call. A call whose caller hung up in the
/// queue still ends as abandoned, once its legs are over.
#[test]
fn an_abandoned_queue_wait_does_not_end_a_call_that_rings_on() {
    let s = callboard::hub::now_ms() / 1000 - 120;
    let state = tracked_state(&[
        ("QueueEvent", queue_event("JOIN", "over-1", &[("over-1", s)], s)),
        // Timed out of the queue, the call overflows to extension 500, which answers.
        ("QueueEvent", queue_event("ABANDONED", "over-1", &[], s + 30)),
        ("ExtensionEvent", extension_event("NEWCALL", "over-1", "Ringing", None, s + 31)),
        ("ExtensionEvent", extension_event("ANSWER", "over-1", "Talking", Some(s + 35), s + 35)),
        // Another caller is offered to 500 while waiting, and hangs up before anyone answers.
        ("QueueEvent", queue_event("JOIN", "gone-1", &[("gone-1", s + 40)], s + 40)),
        ("ExtensionEvent", extension_event("NEWCALL", "gone-1", "Ringing", None, s + 41)),
        ("QueueEvent", queue_event("ABANDONED", "gone-1", &[], s + 50)),
        ("ExtensionEvent", extension_event("HANGUP", "gone-1", "Ringing", None, s + 50)),
    ]);
    let (_, calls, queues) = state.views_all();
    let call = |ivrid: &str| calls.iter().find(|call| call.id.native() == ivrid).cloned();
    let overflow = call("over-1").expect("the overflowed call is on the board");
    assert_eq!((overflow.ended_at, overflow.end_cause), (None, None), "{overflow:?}");
    assert_eq!(overflow.legs.len(), 1, "{overflow:?}");
    assert_eq!(overflow.legs[0].state, LegState::Active, "{overflow:?}");
    assert_eq!(overflow.answered_at, Some((s + 35) * 1000));
    let gone = state.call(&CallId::new("vc", "rt", "gone-1")).expect("the abandoned call");
    assert_eq!((gone.ended_at, gone.end_cause), (Some((s + 50) * 1000), Some(EndCause::QueueAbandoned)), "{gone:?}");
    let queue = queues.iter().find(|queue| queue.id.native() == "1234567").unwrap();
    assert!(queue.waiting.is_empty(), "{:?}", queue.waiting);
    assert_eq!(queue.figures.abandoned, 2, "{:?}", queue.figures);
}

async fn waiting_callers(hub: &Hub) -> Vec<String> {
    let snapshot = hub_snapshot(hub).await.unwrap();
    snapshot.queues.iter().flat_map(|queue| queue.waiting.iter().map(|entry| entry.call.native().to_owned())).collect()
}

/// A user login hears no QueueEvent, only `loginStatus`: a caller who abandons one of the
/// user's queues leaves the board at the next timed resync, not hours later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_login_sees_a_caller_leave_its_queue_without_queue_events() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _store, shutdown) = hub(&dir).await;
    let face = VoicenterFace::new(setup(400, 800, Duration::from_secs(3600)), ("sim", "cc"), 2, Faults::none());
    let login_url = serve_face(&face).await;
    let now = callboard::hub::now_ms();
    let agent = ExtensionId::new("sim", "cc", "201");
    let queue = QueueId::new("sim", "cc", "sales");
    let caller = CallId::new("sim", "cc", "waiting-1");
    let event = |at: Timestamp, kind: EventKind| Event::new("sim", "cc", at, kind);
    face.absorb(&[
        event(
            now - 3_000,
            EventKind::Extension(ExtensionReport {
                extension: agent.clone(),
                name: Some("Ava".into()),
                sip_user: None,
                online_user: None,
            }),
        ),
        event(now - 3_000, EventKind::Queue { queue: queue.clone(), name: "Sales".into(), members: vec![agent] }),
        event(
            now - 2_000,
            EventKind::QueueJoined {
                queue: queue.clone(),
                call: caller.clone(),
                caller: Party { number: Some("0501234567".into()), name: Some("John".into()), extension: None },
            },
        ),
    ]);
    let mut table = toml::Table::new();
    table.insert("login_url".into(), login_url.into());
    table.insert("login_type".into(), "user".into());
    table.insert("email".into(), "201@sim.voicenter.test".into());
    table.insert("pin".into(), "1234".into());
    // The connector's schedules at 60 times real time: a resync every 15 s is one every 0.25 s.
    let clock = Clock::new(callboard::hub::now_ms(), 60.0);
    let connector = VoicenterConnector::start_with_clock(
        "vc",
        VoicenterConfig::from_table(&table).unwrap(),
        hub.clone(),
        shutdown.clone(),
        clock,
    )
    .await;
    wait_until("the caller waiting in the user's queue", async || waiting_callers(&hub).await.len() == 1).await;
    // The caller abandons; the face sends its QueueEvent to account logins only.
    face.absorb(&[event(
        callboard::hub::now_ms(),
        EventKind::QueueLeft { queue, call: caller, outcome: QueueOutcome::Abandoned },
    )]);
    wait_until("the caller to leave the board", async || waiting_callers(&hub).await.is_empty()).await;
    assert!(connector.stats().resyncs_sent >= 1, "{:?}", connector.stats());
    assert!(face.stats().resyncs >= 1, "{:?}", face.stats());
    shutdown.cancel();
}

/// A login API that is down is not sent the password every two seconds: each failed refresh
/// (and the login after it) waits twice as long as the last, and a success resets that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_token_refresh_is_retried_less_and_less_often() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, _store, shutdown) = hub(&dir).await;
    // Tokens last 10 s: the refresh is due 5 s before, some 4 to 5 s after the login.
    let face = VoicenterFace::new(setup(400, 800, Duration::from_secs(10)), ("sim", "cc"), 2, Faults::none());
    let login_url = serve_face(&face).await;
    // On the wall clock: the refresh schedule follows the token's (wall-clock) expiry.
    let connector =
        VoicenterConnector::start("vc", account_config(&login_url, "eio3"), hub.clone(), shutdown.clone()).await;
    wait_until("the first connection", async || face.stats().accepted.iter().sum::<u64>() >= 1).await;
    face.set_login_outage(true);
    let logins_before = connector.stats().logins;
    assert_eq!(logins_before, 1);
    wait_until("the first refresh", async || connector.stats().refreshes >= 1).await;
    // Tries at 0, 2 and 6 s (the next at 14 s); every 2 s before the fix: 0, 2, 4, 6, 8, 10 s.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let stats = connector.stats();
    let logins = stats.logins - logins_before;
    assert!((2..=3).contains(&logins), "logins while the login API was down: {logins}, {stats:?}");
    assert!(stats.refreshes <= 3, "{stats:?}");
    assert!(face.stats().login_failures <= 6, "{:?}", face.stats());
    let health = hub.connectors().await.unwrap().into_iter().find(|h| h.name == "vc").unwrap();
    assert!(health.last_error.as_deref().is_some_and(|error| error.contains("token refresh")), "{health:?}");
    // Back up: the next try succeeds, and the link moves to the new token.
    face.set_login_outage(false);
    wait_until("a refresh to succeed", async || face.stats().refreshes >= 1).await;
    shutdown.cancel();
}

/// A login API that echoes the token it was sent in its refusal: the health page and the log
/// show its words without the token.
#[tokio::test]
async fn a_login_refusal_that_echoes_the_token_does_not_show_it() {
    const TOKEN: &str = "tok-sekrit-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let (hub, _store, shutdown) = hub(&dir).await;
    let refuse = axum::routing::post(|| async {
        (axum::http::StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({ "error": format!("bad token {TOKEN}") })))
    });
    let base = serve(Router::new().route("/monitorAPI/Login/Token", refuse)).await;
    let mut table = toml::Table::new();
    table.insert("login_url".into(), format!("{base}/monitorAPI").into());
    table.insert("token".into(), TOKEN.into());
    let _connector =
        VoicenterConnector::start("vc", VoicenterConfig::from_table(&table).unwrap(), hub.clone(), shutdown.clone())
            .await;
    let mut health = None;
    wait_until("the refusal on the health page", async || {
        health = hub.connectors().await.unwrap().into_iter().find(|h| h.name == "vc" && h.last_error.is_some());
        health.is_some()
    })
    .await;
    let error = health.and_then(|h| h.last_error).unwrap_or_default();
    assert!(error.contains("bad token"), "{error}");
    assert!(!error.contains(TOKEN), "{error}");
    shutdown.cancel();
}
