//! The Versature connector: every literal message of the seed through the real hook route,
//! refused deliveries that change nothing, a long round trip from the simulator's face with
//! drops, duplicates, reordering and a flaky proxy in front of Callboard, a week of
//! subscription time on a fast clock, and call control against the face.
#![cfg(feature = "ssr")]

use callboard::clock::Clock;
use callboard::connectors::versature::{VersatureConfig, VersatureConnector};
use callboard::connectors::{CommandError, Connector, Connectors};
use callboard::hub::{now_ms, Hub, HubSettings};
use callboard::model::*;
use callboard::server::router::router;
use callboard::sim::faces::versature::VersatureFace;
use callboard::sim::faults::{http_faults, Fault, FaultRates, Faults};
use callboard::sim::harness::{all_history, app_state, hub_snapshot, wait_until};
use callboard::sim::{runner, Pbx, Scenario};
use callboard::store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "v3rs4tur3s3cr3t0k";
const NAME: &str = "vs";
const DAY_S: i64 = 86_400;

struct App {
    base: String,
    connector: Arc<VersatureConnector>,
    keeper: tokio::task::JoinHandle<()>,
    hub: Hub,
    store: Store,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

/// How a test's Callboard is set up.
#[derive(Default)]
struct Setup<'a> {
    users: &'a [&'a str],
    /// The face's URL: Callboard keeps the subscription and places calls there.
    api: Option<&'a str>,
    clock: Option<Clock>,
    expires_in: Option<i64>,
    /// Faults of a proxy in front of Callboard (503s the face must retry).
    front: Option<Arc<Faults>>,
    /// Subscribe to CDRs too (off by default: Integrate calls them BETA).
    cdrs: bool,
}

/// Callboard's whole router on loopback with one Versature provider.
async fn app(setup: Setup<'_>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("versature.db")).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut table = toml::Table::new();
    table.insert("public_url".into(), base.clone().into());
    table.insert("webhook_secret".into(), SECRET.into());
    table.insert("users".into(), toml::Value::Array(setup.users.iter().map(|e| (*e).into()).collect()));
    if let Some(api) = setup.api {
        table.insert("base_url".into(), format!("{api}/api").into());
        table.insert("client_id".into(), "app".into());
        table.insert("client_secret".into(), "app-secret".into());
        table.insert("delete_on_shutdown".into(), true.into());
    }
    if let Some(expires_in) = setup.expires_in {
        table.insert("expires_in".into(), expires_in.into());
    }
    if setup.cdrs {
        table.insert("cdrs".into(), true.into());
    }
    let config = VersatureConfig::from_table(&table).unwrap();
    let clock = setup.clock.unwrap_or_else(Clock::wall);
    let (connector, keeper) = VersatureConnector::start_on(NAME, config, hub.clone(), shutdown.clone(), clock).await;
    let mut connectors = Connectors::default();
    connectors.insert(connector.clone());
    connectors.insert_hook(connector.clone());
    let state = app_state(&hub, &store, connectors, &shutdown);
    let mut app = router(state);
    if let Some(front) = setup.front {
        app = app.layer(axum::middleware::from_fn_with_state(front, http_faults));
    }
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    App { base, connector, keeper, hub, store, shutdown, _dir: dir }
}

async fn post(base: &str, secret: &str, body: impl Into<reqwest::Body>) -> reqwest::StatusCode {
    let url = format!("{base}/hooks/{NAME}/{secret}");
    let client = callboard::connectors::http_client();
    client.post(url).header("content-type", "application/json").body(body).send().await.unwrap().status()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/versature/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn utc(text: &str) -> Timestamp {
    callboard::connectors::versature::wire::parse_time(text).unwrap()
}

#[tokio::test]
async fn every_literal_message_of_the_seed_ingests_to_the_expected_state_and_history() {
    let app = app(Setup { users: &["100", "101", "126"], ..Setup::default() }).await;
    assert_eq!(app.connector.health().state, "starting");
    assert_eq!(post(&app.base, SECRET, fixture("init_preparing.txt")).await, 200);
    assert_eq!(app.connector.health().state, "preparing");
    assert_eq!(post(&app.base, SECRET, fixture("init_ready.txt")).await, 200);
    assert_eq!(app.connector.health().state, "ready");

    // The call message: an outside caller ringing user 126.
    assert_eq!(post(&app.base, SECRET, fixture("call_ringing.txt")).await, 200);
    let snapshot = hub_snapshot(&app.hub).await.unwrap();
    let call = snapshot.calls.iter().find(|c| c.id.native() == "e351b3325aa18832e3aa36948d012424").expect("the call");
    let [leg] = call.legs.as_slice() else { panic!("one leg, the user's: {call:?}") };
    assert_eq!(leg.id.native(), "abcdb3325aa18832e3aa36948d012424");
    assert_eq!(leg.extension.as_ref().map(|e| e.native()), Some("126"));
    assert_eq!((leg.state, leg.direction), (LegState::Ringing, Direction::Inbound));
    assert_eq!(leg.remote.number.as_deref(), Some("+16133246100"));
    assert_eq!(leg.remote.name.as_deref(), Some("David Ward"));
    assert_eq!(leg.local.number.as_deref(), Some("+16132379329"));
    assert_eq!(leg.ringing_at, Some(utc("2016-11-24 15:53:12")));
    let tile = snapshot.extensions.iter().find(|e| e.id.native() == "126").unwrap();
    assert_eq!(tile.presence, Presence::Ringing);

    // The CDR list, dates unquoted as in the seed: two calls of user 100 into history, keyed
    // on the ids without their timestamp prefix, as call messages give them.
    assert_eq!(post(&app.base, SECRET, fixture("cdrs.txt")).await, 200);
    let history = all_history(&app.store).await.unwrap();
    let first = history.iter().find(|c| c.id.native() == "a5ce697165aca204d39dde1a4446c1a0").unwrap();
    assert_eq!(first.legs.len(), 2, "100 called 101: both are users");
    for leg in &first.legs {
        assert_eq!(leg.state, LegState::Ended);
        assert_eq!(leg.direction, Direction::Internal);
        assert_eq!(leg.end_cause, Some(EndCause::Normal));
        assert_eq!(leg.answered_at, Some(utc("Fri, 03 Mar 2017 18:47:50 +0000")));
        assert_eq!(leg.ended_at, Some(utc("Fri, 03 Mar 2017 18:48:26 +0000")));
    }
    assert_eq!(first.started_at, utc("Fri, 03 Mar 2017 18:47:39 +0000"));
    let second = history.iter().find(|c| c.id.native() == "7ac5d753bddb15fb2f5900018ca06e24").unwrap();
    let [leg] = second.legs.as_slice() else { panic!("Jane Doe's leg only: {second:?}") };
    assert_eq!(leg.extension.as_ref().map(|e| e.native()), Some("100"));
    assert_eq!((leg.direction, leg.state), (Direction::Outbound, LegState::Ended));
    assert_eq!(leg.local.name.as_deref(), Some("Jane Doe"));
    assert_eq!(leg.remote.number.as_deref(), Some("+16132379329"));
    assert_eq!(leg.ended_at, Some(utc("Fri, 03 Mar 2017 18:49:49 +0000")));

    // Redelivered, every message changes nothing.
    let before = (hub_snapshot(&app.hub).await.unwrap().calls, all_history(&app.store).await.unwrap());
    for name in ["call_ringing.txt", "cdrs.txt", "init_ready.txt"] {
        assert_eq!(post(&app.base, SECRET, fixture(name)).await, 200);
    }
    let after = (hub_snapshot(&app.hub).await.unwrap().calls, all_history(&app.store).await.unwrap());
    assert_eq!(before, after);
    let health = app.connector.health();
    assert_eq!((health.events, health.errors), (7, 0), "{:?}", health.last_error);
    app.shutdown.cancel();
}

#[tokio::test]
async fn a_call_message_and_its_cdr_with_prefixed_ids_are_one_call() {
    let app = app(Setup { users: &["126"], ..Setup::default() }).await;
    assert_eq!(post(&app.base, SECRET, fixture("call_ringing.txt")).await, 200);
    // The CDR of that call, its endpoint ids prefixed with a timestamp as seed 001's CDRs show.
    let cdr = r#"[
{
    "to": {
        "call_id": "20161124155312000000-abcdb3325aa18832e3aa36948d012424",
        "domain": "versature.com",
        "id": "+16132379329",
        "user": "126"
    },
    "from": {
        "call_id": "20161124155312000000-e351b3325aa18832e3aa36948d012424",
        "domain": null,
        "name": "David Ward",
        "id": "+16133246100",
        "user": null
    },
    "answer_time": Thu, 24 Nov 2016 15:53:20 +0000,
    "start_time": Thu, 24 Nov 2016 15:53:12 +0000,
    "end_time": Thu, 24 Nov 2016 15:54:20 +0000,
    "duration": 60
}
]"#;
    assert_eq!(post(&app.base, SECRET, cdr).await, 200);
    let history = all_history(&app.store).await.unwrap();
    let [call] = history.as_slice() else { panic!("one call, not two: {history:?}") };
    assert_eq!(call.id.native(), "e351b3325aa18832e3aa36948d012424");
    let [leg] = call.legs.as_slice() else { panic!("126's leg only: {call:?}") };
    assert_eq!(leg.id.native(), "abcdb3325aa18832e3aa36948d012424");
    assert_eq!((leg.state, leg.end_cause), (LegState::Ended, Some(EndCause::Normal)));
    assert_eq!(leg.ended_at, Some(utc("Thu, 24 Nov 2016 15:54:20 +0000")));
    let live = hub_snapshot(&app.hub).await.unwrap().calls;
    assert!(live.iter().all(|c| c.ended_at.is_some()), "nothing left ringing: {live:?}");
    let health = app.connector.health();
    assert_eq!(health.errors, 0, "{:?}", health.last_error);
    app.shutdown.cancel();
}

#[tokio::test]
async fn a_cdr_without_answer_time_ends_its_legs_with_an_unknown_cause_not_no_answer() {
    let app = app(Setup { users: &["100", "101"], ..Setup::default() }).await;
    // The seed's first record, never answered: it may have rung out, been busy or cancelled.
    let list = fixture("cdrs.txt").replacen("\"answer_time\": Fri, 03 Mar 2017 18:47:50 +0000,", "", 1);
    assert_ne!(list, fixture("cdrs.txt"), "the fixture's answer_time was taken out");
    assert_eq!(post(&app.base, SECRET, list).await, 200);
    let history = all_history(&app.store).await.unwrap();
    let call = history.iter().find(|c| c.id.native() == "a5ce697165aca204d39dde1a4446c1a0").unwrap();
    assert_eq!(call.legs.len(), 2, "{call:?}");
    for leg in &call.legs {
        assert_eq!((leg.state, leg.end_cause), (LegState::Ended, Some(EndCause::Unknown)), "{leg:?}");
        assert_eq!(leg.answered_at, None);
        assert_eq!(leg.ended_at, Some(utc("Fri, 03 Mar 2017 18:48:26 +0000")));
    }
    let health = app.connector.health();
    assert_eq!(health.errors, 0, "{:?}", health.last_error);
    app.shutdown.cancel();
}

#[tokio::test]
async fn well_formed_messages_about_no_user_or_an_unknown_state_are_acknowledged_and_no_error() {
    let app = app(Setup { users: &["126"], ..Setup::default() }).await;
    // The seed: the endpoint must "provide a successful response (200, 204 response)".
    let nobody = r#"{"calls":{"from":{"user":null,"call_id":"a"},"to":{"user":null,"call_id":"b"}}}"#;
    assert_eq!(post(&app.base, SECRET, nobody).await, 200);
    assert_eq!(post(&app.base, SECRET, "{'msg': 'Something new', 'state': 'paused'}").await, 200);
    let health = app.connector.health();
    assert_eq!(health.errors, 0, "{:?}", health.last_error);
    assert_eq!(health.state, "starting", "an unknown state moves nothing");
    assert!(all_history(&app.store).await.unwrap().is_empty(), "nothing was ingested");
    // A body that cannot be read is still refused and counted.
    assert_eq!(post(&app.base, SECRET, "{\"calls\": {\"from\": ").await, 400);
    assert_eq!(app.connector.health().errors, 1);
    app.shutdown.cancel();
}

#[tokio::test]
async fn an_unusable_cdr_is_counted_and_skipped_and_the_rest_of_its_list_is_taken() {
    let app = app(Setup { users: &["100", "101"], ..Setup::default() }).await;
    // The first record ends before it starts; the second is the seed's.
    let list = fixture("cdrs.txt").replacen(
        "\"end_time\": Fri, 03 Mar 2017 18:48:26",
        "\"end_time\": Fri, 03 Mar 2017 18:40:26",
        1,
    );
    assert_eq!(post(&app.base, SECRET, list).await, 200, "acknowledged: sending it again would not help");
    let history = all_history(&app.store).await.unwrap();
    let ids: Vec<&str> = history.iter().map(|call| call.id.native()).collect();
    assert_eq!(ids, vec!["7ac5d753bddb15fb2f5900018ca06e24"], "only the usable record");
    let health = app.connector.health();
    assert_eq!(health.errors, 1);
    assert!(
        health.last_error.as_deref().unwrap_or("").contains("CDR 0: a CDR that ends before it starts"),
        "{health:?}"
    );
    app.shutdown.cancel();
}

#[tokio::test]
async fn a_wrong_secret_an_oversized_body_and_garbage_leave_state_untouched_and_are_counted() {
    let app = app(Setup { users: &["126"], ..Setup::default() }).await;
    let client = callboard::connectors::http_client();
    let good = fixture("call_ringing.txt");
    assert_eq!(post(&app.base, "wrong-secret-00000000", good.clone()).await, 404);
    assert_eq!(post(&app.base, SECRET, vec![b' '; 17 * 1024]).await, 413);
    assert_eq!(post(&app.base, SECRET, "{\"calls\": {\"from\": ").await, 400);
    assert_eq!(
        post(&app.base, SECRET, good.replace("\"call_id\": \"abcdb3325aa18832e3aa36948d012424\"", "\"call\": 1")).await,
        400
    );
    assert_eq!(post(&app.base, SECRET, good.replace("2016-11-24 15:53:12", "the day before")).await, 400);
    let url = format!("{}/hooks/{NAME}/{SECRET}", app.base);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 400);
    assert_eq!(client.post(format!("{url}/calls")).body(good.clone()).send().await.unwrap().status(), 404);
    // Counted where the admin looks: /api/v1/connectors; the wrong secret apart from the errors.
    wait_until("the errors to reach /api/v1/connectors", async || {
        let reply: serde_json::Value =
            client.get(format!("{}/api/v1/connectors", app.base)).send().await.unwrap().json().await.unwrap();
        let counts = reply
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == NAME)
            .map(|c| (c["errors"].as_u64(), c["turned_away"].as_u64()));
        counts == Some((Some(6), Some(1)))
    })
    .await;
    // A stranger's wrong secret does not hide the provider's last error.
    let before = app.connector.health();
    assert_eq!(post(&app.base, "wrong-secret-00000001", good.clone()).await, 404);
    let health = app.connector.health();
    assert_eq!((health.errors, health.turned_away), (6, 2), "{health:?}");
    assert_eq!(health.last_error, before.last_error);
    assert!(
        !format!("{health:?}").contains(SECRET) && !format!("{health:?}").contains("wrong-secret"),
        "no secret in health"
    );
    assert!(all_history(&app.store).await.unwrap().is_empty(), "nothing was ingested");
    // And the stream goes on.
    assert_eq!(post(&app.base, SECRET, good).await, 200);
    assert_eq!(all_history(&app.store).await.unwrap().len(), 1);
    app.shutdown.cancel();
}

#[tokio::test]
async fn round_trip_from_the_face_with_faults_matches_the_ground_truth() {
    let rates =
        FaultRates { drop: 0.02, duplicate: 0.05, reorder: 0.05, slow: 0.01, slow_ms: 20, ..FaultRates::default() };
    let faults = Faults::new(41, rates);
    let front = Faults::new(42, FaultRates { server_error: 0.03, ..FaultRates::default() });
    let face = VersatureFace::new(("app", "app-secret"), ("sim", "cc"), faults.clone(), None, Clock::wall());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let face_router = face.router();
    tokio::spawn(async move { axum::serve(listener, face_router).await.unwrap() });
    // The provider's times trail the wall clock, as a real call's times do by the time we hear.
    let start = now_ms() - 3 * 3_600_000;
    let mut pbx = Pbx::new(Scenario { seed: 41, ..Scenario::demo() }, "sim", "cc", start);
    let numbers = pbx.extension_numbers();
    let users: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let app =
        app(Setup { users: &users, api: Some(&api), front: Some(front.clone()), cdrs: true, ..Setup::default() }).await;
    wait_until("the subscription to be ready", async || app.connector.health().state == "ready").await;

    let mut checkpoints = 0;
    let offered = |pbx: &Pbx| pbx.tallies().iter().map(|(_, _, tally)| tally.offered).sum::<u32>();
    face.absorb(&pbx.take_events());
    while offered(&pbx) < 520 {
        for _ in 0..120 {
            let next = pbx.now() + 5_000;
            pbx.advance_to(next);
            face.absorb(&pbx.take_events());
            let mut waited = 0;
            while !face.idle() {
                tokio::time::sleep(Duration::from_millis(1)).await;
                waited += 1;
                assert!(waited < 20_000, "the face could not deliver within 20 s");
            }
        }
        let history = all_history(&app.store).await.unwrap();
        let expected = face.truth_picture();
        let observed = VersatureFace::observed_picture(&history);
        expected.compare(&observed, "hub").unwrap_or_else(|diff| {
            panic!("checkpoint {checkpoints}: {diff}\nsent {:?}, connector {:?}", face.sent(), app.connector.health())
        });
        checkpoints += 1;
    }
    for fault in [Fault::Drop, Fault::Duplicate, Fault::Reorder, Fault::Slow] {
        assert!(faults.count(fault) > 0, "{fault:?} was never injected: {:?}", faults.counts());
    }
    let (delivered, retried, failed) = face.sent();
    assert!(retried > 0 && front.count(Fault::ServerError) > 0, "the proxy's 503s were retried");
    assert_eq!(failed, 0, "every delivery was taken in the end");
    let health = app.connector.health();
    assert_eq!(health.errors, 0, "{:?}", health.last_error);
    let legs = face.truth_picture().len();
    assert!(legs >= 500, "at least 500 legs compared, got {legs}");
    println!(
        "versature round trip: {} calls offered, {legs} legs, {delivered} deliveries ({retried} retries after a 503), \
         {checkpoints} checkpoints, faults {:?}, proxy 503s {}",
        offered(&pbx),
        faults.counts(),
        front.count(Fault::ServerError)
    );
    app.shutdown.cancel();
}

#[tokio::test]
async fn a_week_of_subscription_time_renews_before_expiry_and_never_lapses() {
    // 25,000 times the wall clock: a week in about 24 s.
    let clock = Clock::new(now_ms(), 25_000.0);
    let face = VersatureFace::new(("app", "app-secret"), ("sim", "cc"), Faults::none(), None, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let face_router = face.router();
    tokio::spawn(async move { axum::serve(listener, face_router).await.unwrap() });
    let app = app(Setup {
        users: &["101"],
        api: Some(&api),
        clock: Some(clock),
        expires_in: Some(DAY_S),
        ..Setup::default()
    })
    .await;
    let began = clock.now();
    wait_until("the subscription to be ready", async || app.connector.health().state == "ready").await;
    let mut forgot = None;
    let mut shortest_left = i64::MAX;
    while clock.now() < began + 7 * DAY_S * 1000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = clock.now();
        match face.live_subscriptions().as_slice() {
            [(_, expires)] => shortest_left = shortest_left.min(expires - now),
            // Only until the hourly read-back notices and creates it again.
            [] if forgot.is_some_and(|at| now < at + 2 * 3_600_000) => {}
            other => panic!("one live subscription at a time, found {other:?}"),
        }
        if forgot.is_none() && now > began + 3 * DAY_S * 1000 + 7 * 3_600_000 {
            face.forget_subscriptions(); // Integrate loses it mid-week.
            forgot = Some(now);
        }
    }
    let book = face.subscriptions();
    assert_eq!(book.lapsed, 0, "never lapsed: {book:?}");
    assert!(book.renewed >= 6, "renewed each day: {book:?}");
    assert_eq!(book.created, 2, "created at start and once more after it was lost: {book:?}");
    assert!(book.gone >= 1, "the loss was noticed by reading it back: {book:?}");
    assert!(shortest_left > DAY_S * 1000 / 10, "renewed with time to spare, {shortest_left} ms left at worst");
    assert_eq!(app.connector.health().state, "ready");
    // Deleted on shutdown, as configured.
    app.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), app.keeper).await.unwrap().unwrap();
    assert_eq!(face.subscriptions().deleted, 1);
    assert!(face.live_subscriptions().is_empty());
    println!("versature week: {book:?}, at worst {:.1} h left before expiry", shortest_left as f64 / 3_600_000.0);
}

#[tokio::test]
async fn click_to_call_answer_and_hang_up_go_through_integrate() {
    let shutdown = CancellationToken::new();
    let clock = Clock::new(now_ms(), 4.0);
    let pbx = Pbx::new(Scenario::for_commands(), "sim", "cc", now_ms());
    let (events, mut receiver) = tokio::sync::mpsc::channel::<Vec<Event>>(64);
    let (sim, _task) = runner::spawn(pbx, clock, events, shutdown.clone());
    let face = VersatureFace::new(("app", "app-secret"), ("sim", "cc"), Faults::none(), Some(sim), Clock::wall());
    let absorbing = face.clone();
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            absorbing.absorb(&batch);
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let face_router = face.router();
    tokio::spawn(async move { axum::serve(listener, face_router).await.unwrap() });
    let app = app(Setup { users: &["101", "102", "103"], api: Some(&api), ..Setup::default() }).await;
    wait_until("the subscription to be ready", async || app.connector.health().state == "ready").await;
    assert_eq!(app.connector.capabilities(), [Action::Dial, Action::Answer, Action::Hangup]);

    let at_101 = Some(ExtensionId::new(NAME, "domain", "101"));
    let command = |action: Action| Command { action, call: None, leg: None, extension: None, number: None };
    let dialled = app
        .connector
        .control(Command { extension: at_101.clone(), number: Some("+15145550100".into()), ..command(Action::Dial) })
        .await;
    assert_eq!(dialled, Ok("calling +15145550100 from 101".into()));
    // Integrate rings 101 first.
    let leg_at_101 = async |state: LegState| {
        let snapshot = hub_snapshot(&app.hub).await.unwrap();
        snapshot.calls.iter().flat_map(|c| c.legs.clone()).find(|l| l.extension == at_101 && l.state == state)
    };
    wait_until("101 to ring", async || leg_at_101(LegState::Ringing).await.is_some()).await;
    let ringing = leg_at_101(LegState::Ringing).await.unwrap();
    // Integrate's `from` is the originator: 101 placed the call, though its own phone rings first.
    assert_eq!(ringing.direction, Direction::Outbound, "{ringing:?}");
    assert_eq!(ringing.remote.number.as_deref(), Some("+15145550100"), "{ringing:?}");
    let busy = app
        .connector
        .control(Command { extension: at_101.clone(), number: Some("+15145550101".into()), ..command(Action::Dial) })
        .await;
    assert_eq!(
        busy,
        Err(CommandError::Refused("Versature refused: HTTP 422: extension 101 is on a call (422)".into()))
    );

    let answered = app
        .connector
        .control(Command { call: Some(ringing.call.clone()), extension: at_101.clone(), ..command(Action::Answer) })
        .await;
    assert_eq!(answered, Ok("answered at 101".into()));
    wait_until("the answer to come back as a call message", async || {
        let snapshot = hub_snapshot(&app.hub).await.unwrap();
        snapshot.calls.iter().flat_map(|c| &c.legs).any(|l| l.id == ringing.id && l.state.is_answered())
    })
    .await;
    let snapshot = hub_snapshot(&app.hub).await.unwrap();
    let talking = snapshot.calls.iter().flat_map(|c| &c.legs).find(|l| l.id == ringing.id).unwrap();
    assert_eq!(talking.direction, Direction::Outbound, "{talking:?}");
    assert_eq!(talking.remote.number.as_deref(), Some("+15145550100"), "{talking:?}");
    app.connector.control(Command { leg: Some(ringing.id.clone()), ..command(Action::Hangup) }).await.unwrap();
    wait_until("the hang-up to end the call", async || {
        let history = all_history(&app.store).await.unwrap();
        history.iter().flat_map(|c| &c.legs).any(|l| l.id == ringing.id && l.state.is_ended())
    })
    .await;
    let gone = app.connector.control(Command { leg: Some(ringing.id.clone()), ..command(Action::Hangup) }).await;
    assert_eq!(gone, Err(CommandError::Refused("there is no live call there".into())));
    assert_eq!(app.connector.health().errors, 0, "{:?}", app.connector.health().last_error);
    shutdown.cancel();
    app.shutdown.cancel();
}
