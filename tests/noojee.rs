//! The Noojee connector: every literal response of the seed, provider data that is wrong, a
//! long round trip through the simulator's face with every fault, and commands that reach the
//! simulated PBX with the parameters Noojee expects.
#![cfg(feature = "ssr")]

use axum::extract::{Query, State};
use axum::routing::post;
use axum::Router;
use callboard::connectors::noojee::{NoojeeConfig, NoojeeConnector};
use callboard::connectors::{CommandError, Connector};
use callboard::hub::{Hub, HubSettings};
use callboard::model::*;
use callboard::sim::faces::noojee::NoojeeFace;
use callboard::sim::faults::{Fault, FaultRates, Faults};
use callboard::sim::harness::{all_history, hub_snapshot, wait_until};
use callboard::sim::{runner, Pbx, Scenario};
use callboard::store::Store;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const KEY: &str = "f863246a-973e-11e6-8784-08002718f5b5";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/noojee/{name}.txt", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn config(base_url: String, extensions: Vec<String>, poll_timeout_s: u32) -> NoojeeConfig {
    let mut table = toml::Table::new();
    table.insert("base_url".into(), base_url.into());
    table.insert("api_key".into(), KEY.into());
    table.insert("extensions".into(), toml::Value::Array(extensions.into_iter().map(Into::into).collect()));
    table.insert("poll_timeout_s".into(), i64::from(poll_timeout_s).into());
    table.insert("time_zone".into(), "Australia/Sydney".into());
    NoojeeConfig::from_table(&table).unwrap()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/servicemanager/rest")
}

async fn hub(dir: &tempfile::TempDir) -> (Hub, Store, CancellationToken) {
    let store = Store::open(&dir.path().join("noojee.db")).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await.unwrap();
    (hub, store, shutdown)
}

/// Plays recorded responses in order, each only to the request that carries the previous
/// response's `seq` (the first to `lastSequenceNumber=0`); records every request.
#[derive(Clone, Default)]
struct Replay {
    bodies: Arc<Vec<String>>,
    requests: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

async fn replay_subscribe(State(replay): State<Replay>, Query(params): Query<HashMap<String, String>>) -> String {
    replay.requests.lock().unwrap().push(params.clone());
    let asked: u64 = params.get("lastSequenceNumber").and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    let seq_of = |body: &str| -> u64 {
        let at = body.rfind("\"seq\":").unwrap() + 6;
        body[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap()
    };
    let next = if asked == 0 {
        Some(0)
    } else {
        replay.bodies.iter().position(|body| seq_of(body) == asked).map(|index| index + 1)
    };
    match next.and_then(|index| replay.bodies.get(index)) {
        Some(body) => body.clone(),
        None => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            format!("{{\"Data\":{{}},\"seq\":{asked},\"Code\":0}}")
        }
    }
}

/// Runs one of the seed's sequences through the connector; returns the calls, by channel.
async fn run_seed(names: &[&str]) -> (HashMap<String, Call>, Vec<HashMap<String, String>>, ConnectorHealth) {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let replay = Replay { bodies: Arc::new(names.iter().map(|name| fixture(name)).collect()), ..Replay::default() };
    let base = serve(
        Router::new()
            .route("/servicemanager/rest/CallManagementAPI/subscribe", post(replay_subscribe))
            .with_state(replay.clone()),
    )
    .await;
    let extensions = vec!["400".into(), "410".into()];
    let _connector =
        NoojeeConnector::start("nj", config(base, extensions, 1), hub.clone(), Some(store.clone()), shutdown.clone());
    let last_body = fixture(names[names.len() - 1]);
    let last_seq = last_body[last_body.rfind("\"seq\":").unwrap() + 6..].split(',').next().unwrap().to_owned();
    wait_until("the connector to read every response", async || {
        replay.requests.lock().unwrap().iter().any(|params| params["lastSequenceNumber"] == last_seq)
    })
    .await;
    hub_snapshot(&hub).await.unwrap();
    let calls =
        all_history(&store).await.unwrap().into_iter().map(|call| (call.id.native().to_owned(), call)).collect();
    let health = hub.connectors().await.unwrap().into_iter().find(|health| health.name == "nj").unwrap();
    let requests = replay.requests.lock().unwrap().clone();
    shutdown.cancel();
    (calls, requests, health)
}

fn summary(call: &Call) -> (String, Option<EndCause>, bool, Direction) {
    let extension = call.legs[0].extension.as_ref().unwrap().native().to_owned();
    (extension, call.end_cause, call.answered_at.is_some(), call.direction)
}

#[tokio::test]
async fn the_two_simultaneous_calls_of_the_seed() {
    let (calls, requests, health) = run_seed(&["simultaneous_1", "simultaneous_2", "simultaneous_3"]).await;
    assert_eq!(health.errors, 0, "{health:?}");
    let expect = |unique: &str, extension: &str, direction: Direction| {
        assert_eq!(
            summary(&calls[unique]),
            (extension.to_owned(), Some(EndCause::NoAnswer), false, direction),
            "{unique}"
        );
    };
    expect("1412750652.496", "410", Direction::Inbound);
    expect("1412750658.498", "410", Direction::Inbound);
    expect("1412750656.497", "400", Direction::Outbound);
    expect("1412750661.499", "400", Direction::Outbound);
    assert_eq!(calls.len(), 4);
    assert_eq!(calls["1412750652.496"].caller.number.as_deref(), Some("400"));
    // Sequence continuity: 0 first, then each response's seq, with the parameters in the query.
    let asked: Vec<&str> = requests.iter().map(|params| params["lastSequenceNumber"].as_str()).collect();
    assert_eq!(&asked[..4], ["0", "32", "36", "40"]);
    assert_eq!(requests[0]["timeOut"], "0");
    assert_eq!(requests[1]["timeOut"], "1");
    assert_eq!((requests[1]["exten"].as_str(), requests[1]["apiKey"].as_str()), ("400,410", KEY));
}

#[tokio::test]
async fn the_answered_call_of_the_seed_including_its_truncated_first_response() {
    let (calls, _, health) = run_seed(&["answered_1", "answered_2", "answered_3"]).await;
    assert_eq!(health.errors, 0, "{health:?}");
    assert_eq!(summary(&calls["1412749510.488"]), ("410".into(), Some(EndCause::Normal), true, Direction::Inbound));
    assert_eq!(summary(&calls["1412749517.489"]), ("400".into(), Some(EndCause::Normal), true, Direction::Outbound));
    assert!(calls["1412749510.488"].answered_at >= Some(calls["1412749510.488"].started_at));
    assert_eq!(calls["1412749517.489"].caller.number.as_deref(), Some("410"));
}

#[tokio::test]
async fn the_busy_call_of_the_seed() {
    let (calls, _, _) = run_seed(&["busy_1", "busy_2"]).await;
    assert_eq!(summary(&calls["1412749905.490"]), ("410".into(), Some(EndCause::Busy), false, Direction::Inbound));
    assert_eq!(summary(&calls["1412749908.491"]), ("400".into(), Some(EndCause::Busy), false, Direction::Outbound));
    assert_eq!(calls["1412749905.490"].legs[0].raw_cause.as_deref(), Some("BUSY"));
}

#[tokio::test]
async fn wrong_provider_data_is_counted_and_the_stream_goes_on() {
    let good = |unique: &str, status: &str| {
        format!(
            r#"{{"CallData":{{"canAnswer":false,"callerId":"0299990000","uniqueCallId":"{unique}","callStartTime":"","isQueueCall":true,"isClickToDialCall":false,"inbound":true,"status":"{status}","futureField":{{"x":1}}}},"CallID":"7","Code":0}}"#
        )
    };
    let bodies = vec![
        format!(
            r#"{{"Data":{{"500":[{},"not an entry",{{"CallData":{{"status":"Ringing"}}}}]}},"seq":3,"Code":0}}"#,
            good("1.1", "Ringing")
        ),
        "<html>502 Bad Gateway</html>".to_owned(),
        r#"{"Message":"Expired TimeStamp","Code":-1}"#.to_owned(),
        format!(r#"{{"Data":{{"500":[{}],"501":"nonsense"}},"seq":"9","Code":0}}"#, good("1.1", "Sideways")),
        format!(r#"{{"Data":{{"500":[{}]}},"seq":12,"Code":0}}"#, good("1.1", "Hungup")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let (_connector, served) = connector_on(bodies.clone(), 12, &hub, &store, &shutdown).await;
    wait_until("every body to be served", async || *served.lock().unwrap() > bodies.len()).await;
    hub_snapshot(&hub).await.unwrap();
    let calls = all_history(&store).await.unwrap();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let leg = &calls[0].legs[0];
    assert_eq!((leg.state, calls[0].end_cause), (LegState::Ended, Some(EndCause::Unknown)));
    assert_eq!(calls[0].caller.number.as_deref(), Some("0299990000"));
    let health = hub.connectors().await.unwrap().into_iter().find(|health| health.name == "nj").unwrap();
    assert!(health.capabilities.contains(&Action::Answer) && !health.capabilities.contains(&Action::Hold));
    // Two bad entries, an unreadable body, a refusal, a non-list: five errors, none fatal.
    assert_eq!(health.errors, 5, "{health:?}");
    assert_eq!(health.state, "ready");
    shutdown.cancel();
}

/// A connector for extension 500 (1 s polls) on the Noojee API at `base`.
fn connector_at(base: String, hub: &Hub, store: &Store, shutdown: &CancellationToken) -> Arc<NoojeeConnector> {
    NoojeeConnector::start(
        "nj",
        config(base, vec!["500".into()], 1),
        hub.clone(),
        Some(store.clone()),
        shutdown.clone(),
    )
}

/// `connector_at` a server serving `bodies` as `serve_in_order` does; the connector, and how
/// many requests were answered.
async fn connector_on(
    bodies: Vec<String>,
    idle_seq: u64,
    hub: &Hub,
    store: &Store,
    shutdown: &CancellationToken,
) -> (Arc<NoojeeConnector>, Arc<Mutex<usize>>) {
    let (base, served) = serve_in_order(bodies, idle_seq).await;
    (connector_at(base, hub, store, shutdown), served)
}

/// Every call in history, by its native id.
async fn history_by_id(store: &Store) -> HashMap<String, Call> {
    all_history(store).await.unwrap().into_iter().map(|call| (call.id.native().to_owned(), call)).collect()
}

/// Answer on call `call`, naming no extension: the connector must know it from the channel.
fn answer(call: &str) -> Command {
    Command {
        action: Action::Answer,
        call: Some(CallId::new("nj", "pbx", call)),
        leg: None,
        extension: None,
        number: None,
    }
}

/// Serves `bodies` to successive subscribe requests whatever they ask, then empty responses
/// with `idle_seq`; returns the base URL and how many requests were answered.
async fn serve_in_order(bodies: Vec<String>, idle_seq: u64) -> (String, Arc<Mutex<usize>>) {
    let served = Arc::new(Mutex::new(0usize));
    let bodies = Arc::new(bodies);
    let handler = {
        let served = served.clone();
        move || {
            let (served, bodies) = (served.clone(), bodies.clone());
            async move {
                let body = {
                    let mut index = served.lock().unwrap();
                    *index += 1;
                    bodies.get(*index - 1).cloned()
                };
                match body {
                    Some(body) => body,
                    None => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        format!(r#"{{"Data":{{}},"seq":{idle_seq},"Code":0}}"#)
                    }
                }
            }
        }
    };
    let base = serve(Router::new().route("/servicemanager/rest/CallManagementAPI/subscribe", post(handler))).await;
    (base, served)
}

fn ringing(unique: &str) -> String {
    format!(
        r#"{{"CallData":{{"canAnswer":true,"callerId":"0299990000","uniqueCallId":"{unique}","callStartTime":"","isQueueCall":false,"isClickToDialCall":false,"inbound":true,"status":"Ringing"}},"CallID":1,"Code":0}}"#
    )
}

#[tokio::test]
async fn a_pbx_that_restarts_its_numbering_is_resynced_and_reconciled() {
    let bodies = vec![
        format!(r#"{{"Data":{{"500":[{}]}},"seq":10,"Code":0}}"#, ringing("1.1")),
        // The PBX restarted: its seq is below ours. What it says now cannot be trusted...
        format!(r#"{{"Data":{{"500":[{}]}},"seq":3,"Code":0}}"#, ringing("9.9")),
        // ...so the connector asks again with 0, and 1.1 is gone from the current state.
        format!(r#"{{"Data":{{"500":[{}]}},"seq":4,"Code":0}}"#, ringing("2.2")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let (_connector, served) = connector_on(bodies, 4, &hub, &store, &shutdown).await;
    wait_until("every body to be served", async || *served.lock().unwrap() > 3).await;
    hub_snapshot(&hub).await.unwrap();
    let calls = history_by_id(&store).await;
    assert_eq!(calls["1.1"].end_cause, Some(EndCause::Unknown), "ended while we were away");
    assert_eq!(calls["2.2"].legs[0].state, LegState::Ringing);
    assert!(!calls.contains_key("9.9"), "the response that showed the restart is not trusted");
    shutdown.cancel();
}

#[tokio::test]
async fn a_restart_ends_the_calls_that_hung_up_while_callboard_was_down() {
    let dir = tempfile::tempdir().unwrap();
    let connected = |unique: &str| ringing(unique).replace("\"Ringing\"", "\"Connected\"");
    // Before the restart: two channels connected.
    {
        let (first, first_store, shutdown) = hub(&dir).await;
        let (base, served) = serve_in_order(
            vec![format!(r#"{{"Data":{{"500":[{},{}]}},"seq":5,"Code":0}}"#, connected("1.1"), connected("2.2"))],
            5,
        )
        .await;
        let extensions = vec!["500".into()];
        let _connector = NoojeeConnector::start(
            "nj",
            config(base, extensions, 1),
            first.clone(),
            Some(first_store),
            shutdown.clone(),
        );
        wait_until("the first state to be served", async || *served.lock().unwrap() > 1).await;
        hub_snapshot(&first).await.unwrap();
        shutdown.cancel();
    }

    // While Callboard was down, 1.1 hung up: asked from the journaled seq, the PBX says so.
    let (hub, store, shutdown) = hub(&dir).await;
    let hungup = ringing("1.1").replace("\"Ringing\"", "\"Hungup\"");
    let (base, served) =
        serve_in_order(vec![format!(r#"{{"Data":{{"500":[{},{}]}},"seq":9,"Code":0}}"#, hungup, connected("2.2"))], 9)
            .await;
    let _connector = connector_at(base, &hub, &store, &shutdown);
    wait_until("the state after the restart to be served", async || *served.lock().unwrap() > 1).await;
    let snapshot = hub_snapshot(&hub).await.unwrap();
    let live: Vec<&str> =
        snapshot.calls.iter().filter(|call| call.ended_at.is_none()).map(|call| call.id.native()).collect();
    assert_eq!(live, vec!["2.2"], "1.1 hung up while we were down");
    let calls = history_by_id(&store).await;
    assert!(calls["1.1"].ended_at.is_some());
    assert_eq!(calls["2.2"].legs[0].state, LegState::Active);
    shutdown.cancel();
}

/// A report of leg `call` at extension 500 of the simulated PBX, for the face to absorb.
fn leg_at_500(call: &str, caller: &str, state: LegState, end_cause: Option<EndCause>) -> Event {
    let report = LegReport {
        leg: LegId::new("sim", "cc", call),
        call: CallId::new("sim", "cc", call),
        extension: Some(ExtensionId::new("sim", "cc", "500")),
        state,
        held_by: None,
        direction: Direction::Inbound,
        origin: Origin::Normal,
        local: Party::default(),
        remote: Party { number: Some(caller.to_owned()), ..Party::default() },
        queue: None,
        end_cause,
        raw_cause: None,
        raw_state: String::new(),
        recording: None,
        revision: 0,
    };
    Event::new("sim", "cc", callboard::hub::now_ms(), EventKind::Leg(report))
}

/// The call in `store`'s history whose caller is `number`.
async fn call_from(store: &Store, number: &str) -> Option<Call> {
    all_history(store).await.unwrap().into_iter().find(|call| call.caller.number.as_deref() == Some(number))
}

#[tokio::test]
async fn a_restart_resumes_from_the_journaled_seq_and_hears_the_calls_that_came_and_went_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let face = NoojeeFace::new(KEY, ("sim", "cc"), Faults::none(), None);
    let base = serve(face.router()).await;
    let (a, b) = ("0299990001", "0299990002");
    // Before the restart: A rings at 500 and is answered, journaled with Noojee's seq.
    {
        let (first, first_store, shutdown) = hub(&dir).await;
        let _connector = NoojeeConnector::start(
            "nj",
            config(base.clone(), vec!["500".into()], 1),
            first.clone(),
            Some(first_store),
            shutdown.clone(),
        );
        face.absorb(&[leg_at_500("a", a, LegState::Ringing, None)]);
        face.absorb(&[leg_at_500("a", a, LegState::Active, None)]);
        wait_until("A to be answered on the board", async || {
            let snapshot = hub_snapshot(&first).await.unwrap();
            snapshot.calls.iter().any(|call| call.caller.number.as_deref() == Some(a) && call.answered_at.is_some())
        })
        .await;
        shutdown.cancel();
        first.stopped().await;
    }

    // While Callboard is down (a deploy): B rings and nobody answers, and A hangs up.
    face.absorb(&[leg_at_500("b", b, LegState::Ringing, None)]);
    face.absorb(&[leg_at_500("b", b, LegState::Ended, Some(EndCause::NoAnswer))]);
    face.absorb(&[leg_at_500("a", a, LegState::Ended, Some(EndCause::Normal))]);

    // Restarted on the same journal, the connector asks from where it left off.
    let (hub, store, shutdown) = hub(&dir).await;
    let _connector = connector_at(base, &hub, &store, &shutdown);
    wait_until("B and A to have ended in history", async || {
        let ended = |call: Option<Call>| call.is_some_and(|call| call.ended_at.is_some());
        ended(call_from(&store, b).await) && ended(call_from(&store, a).await)
    })
    .await;
    let missed = call_from(&store, b).await.unwrap();
    assert_eq!(missed.end_cause, Some(EndCause::NoAnswer), "B rang and ended while we were down: {missed:?}");
    assert_eq!(missed.legs[0].raw_cause.as_deref(), Some("NO_ANSWER"));
    assert!(missed.answered_at.is_none());
    let held = call_from(&store, a).await.unwrap();
    assert_eq!(held.end_cause, Some(EndCause::Normal), "A's real end, not a resync's unknown: {held:?}");
    assert!(held.answered_at.is_some());
    shutdown.cancel();
}

/// One `subscribe` to the face at `base` for extension 500, asking at once from `last`.
async fn ask_face(base: &str, last: u64) -> callboard::connectors::noojee::wire::Subscribe {
    let query = [
        ("exten", "500".to_owned()),
        ("lastSequenceNumber", last.to_string()),
        ("timeOut", "0".to_owned()),
        ("apiKey", KEY.to_owned()),
    ];
    let url = format!("{base}/CallManagementAPI/subscribe");
    let response = callboard::connectors::http_client().post(url).query(&query).send().await.unwrap();
    callboard::connectors::noojee::wire::parse_subscribe(&response.text().await.unwrap()).unwrap()
}

#[tokio::test]
async fn the_face_answers_a_seq_older_than_it_holds_with_the_full_state_and_a_reset() {
    let face = NoojeeFace::new(KEY, ("sim", "cc"), Faults::none(), None);
    let base = serve(face.router()).await;
    // More changes than the face's log keeps: one channel going back and forth.
    let changes: Vec<Event> = (0..50_010)
        .map(|n| leg_at_500("x", "0299990003", if n % 2 == 0 { LegState::Ringing } else { LegState::Active }, None))
        .collect();
    face.absorb(&changes);
    let latest = face.seq();
    let recent = ask_face(&base, latest - 10).await;
    assert_eq!((recent.seq, recent.entries.len()), (latest, 1), "a number it holds: what changed since");
    let too_old = ask_face(&base, 2).await;
    assert_eq!(too_old.seq, 0, "a number older than its log: a seq below it, so the client resyncs");
    assert_eq!(too_old.entries.len(), 1, "with the full state");
}

#[tokio::test]
async fn a_pbx_that_answers_seq_0_at_once_is_not_polled_ten_times_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    // A quiet, freshly restarted PBX: seq 0, nothing to say, and no waiting.
    let timeouts: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler = {
        let timeouts = timeouts.clone();
        move |Query(params): Query<HashMap<String, String>>| {
            let timeouts = timeouts.clone();
            async move {
                let asked = (params.get("lastSequenceNumber"), params.get("timeOut"));
                let shown = format!("{}/{}", asked.0.map_or("-", String::as_str), asked.1.map_or("-", String::as_str));
                timeouts.lock().unwrap().push(shown);
                r#"{"Data":{},"seq":0,"Code":0}"#
            }
        }
    };
    let base = serve(Router::new().route("/servicemanager/rest/CallManagementAPI/subscribe", post(handler))).await;
    let _connector = connector_at(base, &hub, &store, &shutdown);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = timeouts.lock().unwrap().clone();
    shutdown.cancel();
    // lastSequenceNumber/timeOut of each request: the current state at once, then waits.
    assert!((2..=6).contains(&asked.len()), "{} requests in 3 s: {asked:?}", asked.len());
    assert_eq!(asked[0], "0/0", "{asked:?}");
    assert!(asked[1..].iter().all(|request| request == "0/1"), "{asked:?}");
}

#[tokio::test]
async fn a_pbx_at_seq_0_with_a_call_up_is_not_polled_in_a_hot_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    // A freshly restarted PBX with one call up: every poll gets the whole state at once, seq 0.
    let body = format!(
        r#"{{"Data":{{"500":[{}]}},"seq":0,"Code":0}}"#,
        ringing("1.1").replace("\"Ringing\"", "\"Connected\"")
    );
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler = {
        let asked = asked.clone();
        move |Query(params): Query<HashMap<String, String>>| {
            let (asked, body) = (asked.clone(), body.clone());
            async move {
                asked.lock().unwrap().push(params.get("lastSequenceNumber").cloned().unwrap_or_default());
                body
            }
        }
    };
    let base = serve(Router::new().route("/servicemanager/rest/CallManagementAPI/subscribe", post(handler))).await;
    let _connector = connector_at(base, &hub, &store, &shutdown);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = asked.lock().unwrap().clone();
    // Entries that do not move the seq are no progress: waited on like silence.
    assert!((2..=6).contains(&asked.len()), "{} requests in 3 s", asked.len());
    assert!(asked.iter().all(|last| last == "0"), "{asked:?}");
    // Each answer is the whole state, and it lists the call: still up, and only once.
    let snapshot = hub_snapshot(&hub).await.unwrap();
    let calls: Vec<(&str, bool)> =
        snapshot.calls.iter().map(|call| (call.id.native(), call.ended_at.is_none())).collect();
    assert_eq!(calls, vec![("1.1", true)]);
    shutdown.cancel();
}

#[tokio::test]
async fn a_reset_after_a_resume_takes_no_hungup_of_the_full_state_as_news() {
    let dir = tempfile::tempdir().unwrap();
    let connected = |unique: &str| ringing(unique).replace("\"Ringing\"", "\"Connected\"");
    let hungup = |unique: &str| {
        ringing(unique)
            .replace("\"Ringing\"", "\"Hungup\"")
            .replace("\"status\"", "\"hangupCause\":\"NO_ANSWER\",\"status\"")
    };
    // Before the restart: 1.1 is up, 2.2 rang and ended; seq 5 is journaled.
    {
        let (first, first_store, shutdown) = hub(&dir).await;
        let bodies = vec![
            format!(r#"{{"Data":{{"500":[{},{}]}},"seq":4,"Code":0}}"#, connected("1.1"), ringing("2.2")),
            format!(r#"{{"Data":{{"500":[{}]}},"seq":5,"Code":0}}"#, hungup("2.2")),
        ];
        let (base, served) = serve_in_order(bodies, 5).await;
        let extensions = vec!["500".into()];
        let _connector = NoojeeConnector::start(
            "nj",
            config(base, extensions, 1),
            first.clone(),
            Some(first_store),
            shutdown.clone(),
        );
        wait_until("both bodies to be served", async || *served.lock().unwrap() > 2).await;
        hub_snapshot(&first).await.unwrap();
        shutdown.cancel();
        first.stopped().await;
    }

    // Restarted, the connector resumes from 5; then the PBX signals a reset, and its full
    // state lists 1.1, 2.2's end again, and 8.8, a call that ended long ago, never seen live.
    let (hub, store, shutdown) = hub(&dir).await;
    let bodies = vec![
        r#"{"Data":{},"seq":7,"Code":0}"#.to_owned(),
        r#"{"Data":{},"seq":2,"Code":0}"#.to_owned(),
        format!(r#"{{"Data":{{"500":[{},{},{}]}},"seq":3,"Code":0}}"#, connected("1.1"), hungup("2.2"), hungup("8.8")),
    ];
    let (_connector, served) = connector_on(bodies, 3, &hub, &store, &shutdown).await;
    wait_until("the full state after the reset to be served", async || *served.lock().unwrap() > 3).await;
    let snapshot = hub_snapshot(&hub).await.unwrap();
    assert!(!snapshot.calls.iter().any(|call| call.id.native() == "8.8"), "{:?}", snapshot.calls);
    let live: Vec<&str> =
        snapshot.calls.iter().filter(|call| call.ended_at.is_none()).map(|call| call.id.native()).collect();
    assert_eq!(live, vec!["1.1"]);
    let calls = history_by_id(&store).await;
    assert!(!calls.contains_key("8.8"), "an old Hungup of a full state is not a new call: {:?}", calls.get("8.8"));
    shutdown.cancel();
}

#[tokio::test]
async fn an_unreadable_status_after_hungup_does_not_bring_the_channel_back() {
    let bodies = vec![
        format!(r#"{{"Data":{{"500":[{}]}},"seq":5,"Code":0}}"#, ringing("1.1")),
        format!(r#"{{"Data":{{"500":[{}]}},"seq":6,"Code":0}}"#, ringing("1.1").replace("\"Ringing\"", "\"Hungup\"")),
        // A status nobody can read, for the channel that hung up: stale, not a comeback.
        format!(r#"{{"Data":{{"500":[{}]}},"seq":7,"Code":0}}"#, ringing("1.1").replace("\"Ringing\"", "\"Parked?\"")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let (connector, served) = connector_on(bodies, 7, &hub, &store, &shutdown).await;
    wait_until("every body to be served", async || *served.lock().unwrap() > 3).await;
    let snapshot = hub_snapshot(&hub).await.unwrap();
    let call = snapshot.calls.iter().find(|call| call.id.native() == "1.1").unwrap();
    assert_eq!(call.legs[0].state, LegState::Ended, "{call:?}");
    // Not live again for commands either: Answer no longer knows its extension, and the PBX
    // (which serves no answer here) is not asked.
    let refused = connector.control(answer("1.1")).await;
    assert!(
        matches!(&refused, Err(CommandError::Refused(words)) if words.contains("needs the extension")),
        "{refused:?}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_late_ringing_does_not_put_an_answered_call_back() {
    let connected = |unique: &str| {
        ringing(unique).replace("\"Ringing\"", "\"Connected\"").replace("\"canAnswer\":true", "\"canAnswer\":false")
    };
    let bodies = vec![
        // Connected, then a stale Ringing for the same channel, in one response...
        format!(r#"{{"Data":{{"500":[{},{}]}},"seq":5,"Code":0}}"#, connected("1.1"), ringing("1.1")),
        // ...and another in the next.
        format!(r#"{{"Data":{{"500":[{}]}},"seq":6,"Code":0}}"#, ringing("1.1")),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let (connector, served) = connector_on(bodies, 6, &hub, &store, &shutdown).await;
    wait_until("both bodies to be served", async || *served.lock().unwrap() > 2).await;
    let snapshot = hub_snapshot(&hub).await.unwrap();
    let call = snapshot.calls.iter().find(|call| call.id.native() == "1.1").unwrap();
    assert_eq!(call.legs[0].state, LegState::Active, "{call:?}");
    assert!(call.answered_at.is_some());
    // Still answered as far as commands go: Answer is refused without asking the PBX.
    let refused = connector.control(answer("1.1")).await;
    assert!(
        matches!(&refused, Err(CommandError::Refused(words)) if words.contains("pick it up on the phone")),
        "{refused:?}"
    );
    shutdown.cancel();
}

/// The demo's call center, busy, with everyone on one PBX.
fn busy_center(seed: u64) -> Scenario {
    Scenario { seed, ..Scenario::demo() }
}

#[tokio::test]
async fn round_trip_through_the_face_with_every_fault_matches_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let rates = FaultRates {
        drop: 0.01,
        server_error: 0.01,
        timeout: 0.01,
        duplicate: 0.05,
        reorder: 0.05,
        sequence_reset: 0.02,
        slow: 0.03,
        rate_limited: 0.005,
        slow_ms: 50,
        timeout_ms: 300,
    };
    let faults = Faults::new(21, rates);
    let face = NoojeeFace::new(KEY, ("sim", "cc"), faults.clone(), None);
    let base = serve(face.router()).await;
    let start = callboard::hub::now_ms();
    let mut pbx = Pbx::new(busy_center(21), "sim", "cc", start);
    let extensions = pbx.extension_numbers();
    let _connector =
        NoojeeConnector::start("nj", config(base, extensions, 2), hub.clone(), Some(store.clone()), shutdown.clone());
    let mut truth = LiveState::new(QueueSettings::default(), Default::default());
    let absorb = |pbx: &mut Pbx, truth: &mut LiveState| {
        let events = pbx.take_events();
        for event in &events {
            truth.apply(event);
        }
        face.absorb(&events);
    };
    absorb(&mut pbx, &mut truth);
    let mut checkpoints = 0;
    while pbx.tallies().iter().map(|(_, _, tally)| tally.offered).sum::<u32>() < 520 {
        for _ in 0..120 {
            let next = pbx.now() + 5_000;
            pbx.advance_to(next);
            absorb(&mut pbx, &mut truth);
            // As in real time: the connector takes in each moment's changes before the next.
            let mut waited = 0;
            while !face.caught_up() {
                tokio::time::sleep(Duration::from_millis(1)).await;
                waited += 1;
                assert!(
                    waited < 20_000,
                    "the connector did not catch up within 20 s (face at seq {}, waiting {:?})",
                    face.seq(),
                    face.waiting()
                );
            }
        }
        // A checkpoint every 10 simulated minutes.
        let snapshot = hub_snapshot(&hub).await.unwrap();
        let history = all_history(&store).await.unwrap();
        let observed = NoojeeFace::observed_picture(&snapshot.extensions, &history);
        face.truth_picture(&truth)
            .compare(&observed, "hub")
            .unwrap_or_else(|diff| panic!("checkpoint {checkpoints}: {diff}"));
        checkpoints += 1;
    }
    for fault in Fault::ALL {
        assert!(faults.count(fault) > 0, "{fault:?} was never injected: {:?}", faults.counts());
    }
    let (_, calls, _) = truth.views_all();
    assert!(calls.len() >= 500, "at least 500 calls went through the face, got {}", calls.len());
    println!("noojee round trip: {} calls, {checkpoints} checkpoints, faults {:?}", calls.len(), faults.counts());
    shutdown.cancel();
}

/// Nobody calls in and nobody answers by themselves: calls happen when a test makes them.

#[tokio::test]
async fn commands_reach_the_face_with_noojee_parameters_and_move_the_pbx() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, store, shutdown) = hub(&dir).await;
    let pbx = Pbx::new(Scenario::for_commands(), "sim", "cc", callboard::hub::now_ms());
    let (events, mut receiver) = tokio::sync::mpsc::channel::<Vec<Event>>(64);
    let (sim, _task) =
        runner::spawn(pbx, callboard::clock::Clock::new(callboard::hub::now_ms(), 4.0), events, shutdown.clone());
    let face = NoojeeFace::new(KEY, ("sim", "cc"), Faults::none(), Some(sim));
    let absorbing = face.clone();
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            absorbing.absorb(&batch);
        }
    });
    let base = serve(face.router()).await;
    let extensions = vec!["101".into(), "102".into(), "103".into()];
    let connector =
        NoojeeConnector::start("nj", config(base, extensions, 2), hub.clone(), Some(store), shutdown.clone());
    let at_101 = ExtensionId::new("nj", "pbx", "101");
    let command = |action: Action| Command { action, call: None, leg: None, extension: None, number: None };

    let dialled = connector
        .control(Command {
            extension: Some(at_101.clone()),
            number: Some("+61299990000".into()),
            ..command(Action::Dial)
        })
        .await
        .unwrap();
    assert_eq!(dialled, "Dialling");
    let (method, params) = face.commands().pop().unwrap();
    assert_eq!(method, "dial");
    assert_eq!(params["number"], "+61299990000");
    assert_eq!(params["extenOrUniqueId"], "SIP/101");
    assert_eq!(params["autoAnswer"], "Call-info:answer-after=0");
    assert_eq!(params["monitored"], "yes");
    assert!(!params.contains_key("apiKey"));

    // The click-to-call rings extension 101 first; answer it from Callboard.
    let mut channel = None;
    wait_until("the click-to-call to ring at 101", async || {
        let snapshot = hub_snapshot(&hub).await.unwrap();
        channel = snapshot
            .calls
            .iter()
            .find(|call| call.origin == Origin::ClickToCall && call.legs[0].state == LegState::Ringing)
            .map(|call| call.id.clone());
        channel.is_some()
    })
    .await;
    let call = channel.unwrap();
    connector.control(Command { call: Some(call.clone()), ..command(Action::Answer) }).await.unwrap();
    let (method, params) = face.commands().pop().unwrap();
    assert_eq!(
        (method.as_str(), params["uniqueId"].as_str(), params["exten"].as_str()),
        ("answer", call.native(), "101")
    );
    assert_eq!(params["answerString"], "Call-info:answer-after=0");
    wait_until("the far end to answer", async || {
        let snapshot = hub_snapshot(&hub).await.unwrap();
        snapshot.calls.iter().any(|view| view.id == call && view.legs[0].state == LegState::Active)
    })
    .await;
    // Answered now, so Noojee says `canAnswer: false`: Answer is refused in words, and the PBX
    // is not asked.
    let asked = face.commands().len();
    let again = connector.control(Command { call: Some(call.clone()), ..command(Action::Answer) }).await;
    assert!(
        matches!(&again, Err(CommandError::Refused(words)) if words.contains("pick it up on the phone")),
        "{again:?}"
    );
    assert_eq!(face.commands().len(), asked);

    connector.control(Command { call: Some(call.clone()), ..command(Action::RecordStart) }).await.unwrap();
    let refused = connector.control(Command { call: Some(call.clone()), ..command(Action::RecordStart) }).await;
    assert_eq!(refused, Err(CommandError::Refused("the call is already being recorded".into())));
    let (method, params) = face.commands().pop().unwrap();
    assert_eq!((method.as_str(), params["extenOrUniqueId"].as_str()), ("start", call.native()));

    connector.control(Command { call: Some(call.clone()), ..command(Action::Hangup) }).await.unwrap();
    wait_until("the hang-up to come back", async || {
        let snapshot = hub_snapshot(&hub).await.unwrap();
        snapshot.calls.iter().any(|view| view.id == call && view.end_cause == Some(EndCause::Normal))
    })
    .await;
    let gone = connector.control(Command { call: Some(call.clone()), ..command(Action::Hangup) }).await;
    assert!(matches!(gone, Err(CommandError::Refused(_))), "{gone:?}");
    let hold = connector.capabilities().contains(&Action::Hold);
    assert!(!hold, "Noojee has no hold, so the button must not show");
    shutdown.cancel();
}
