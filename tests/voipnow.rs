//! The VoipNow connector: every Call Event type and CallStatus by GET and POST (form and JSON)
//! through the real hook route, refused deliveries that change nothing, a long round trip from
//! the simulator's face with drops, duplicates and reordering, and UnifiedAPI registration and
//! call control against the face.
#![cfg(feature = "ssr")]

use callboard::connectors::voipnow::wire::CallEventType;
use callboard::connectors::voipnow::{VoipNowConfig, VoipNowConnector};
use callboard::connectors::{CommandError, Connector, Connectors};
use callboard::hub::{Hub, HubSettings};
use callboard::model::*;
use callboard::server::router::router;
use callboard::sim::faces::voipnow::{extended, HookMethod, VoipNowFace};
use callboard::sim::faults::{Fault, FaultRates, Faults};
use callboard::sim::harness::{all_history, app_state, hub_snapshot, wait_until};
use callboard::sim::{runner, Pbx, Scenario};
use callboard::store::Store;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "k3yk3yk3yk3yk3yk3yk3y";
const NAME: &str = "vn";

struct App {
    base: String,
    connector: Arc<VoipNowConnector>,
    hub: Hub,
    store: Store,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

/// Callboard's whole router on loopback with one VoipNow provider; `uapi` is the face's URL.
async fn app(extensions: &[&str], uapi: Option<&str>) -> App {
    app_in(tempfile::tempdir().unwrap(), extensions, uapi).await
}

/// As [`app`], on the store in `dir` (a restart when an earlier app used it).
async fn app_in(dir: tempfile::TempDir, extensions: &[&str], uapi: Option<&str>) -> App {
    app_with(dir, extensions, uapi, "first-refresh").await
}

/// As [`app_in`], with `refresh_token` configured for UnifiedAPI.
async fn app_with(dir: tempfile::TempDir, extensions: &[&str], uapi: Option<&str>, refresh_token: &str) -> App {
    let store = Store::open(&dir.path().join("voipnow.db")).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut table = toml::Table::new();
    table.insert("public_url".into(), base.clone().into());
    table.insert("webhook_secret".into(), SECRET.into());
    table.insert("extensions".into(), toml::Value::Array(extensions.iter().map(|e| (*e).into()).collect()));
    if let Some(uapi) = uapi {
        table.insert("uapi_url".into(), uapi.into());
        table.insert("client_id".into(), "app".into());
        table.insert("client_secret".into(), "app-secret".into());
        table.insert("refresh_token".into(), refresh_token.into());
    }
    let config = VoipNowConfig::from_table(&table).unwrap();
    let connector = VoipNowConnector::start(NAME, config, hub.clone(), store.clone(), shutdown.clone()).await;
    let mut connectors = Connectors::default();
    connectors.insert(connector.clone());
    connectors.insert_hook(connector.clone());
    let state = app_state(&hub, &store, connectors, &shutdown);
    let app = router(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    App { base, connector, hub, store, shutdown, _dir: dir }
}

#[derive(Clone, Copy, Debug)]
enum Transport {
    Get,
    Form,
    Json,
}

async fn send(base: &str, event: &str, transport: Transport, params: &[(&str, &str)]) -> reqwest::StatusCode {
    let url = format!("{base}/hooks/{NAME}/{SECRET}/{event}");
    let client = callboard::connectors::http_client();
    let request = match transport {
        Transport::Get => client.get(url).query(params),
        Transport::Form => client.post(url).form(params),
        Transport::Json => {
            let object: serde_json::Map<String, serde_json::Value> =
                params.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v))).collect();
            client.post(url).json(&object)
        }
    };
    request.send().await.unwrap().status()
}

async fn leg(store: &Store, native: &str) -> Option<Leg> {
    let calls = all_history(store).await.unwrap();
    calls.into_iter().flat_map(|call| call.legs).find(|leg| leg.id.native() == native)
}

#[tokio::test]
async fn every_event_type_and_call_status_by_get_and_post_form_and_json() {
    let app = app(&["0003*210"], None).await;
    let statuses = [
        ("ANSWER", EndCause::Normal),
        ("BUSY", EndCause::Busy),
        ("NOANSWER", EndCause::NoAnswer),
        ("CANCEL", EndCause::Cancelled),
        ("CONGESTION", EndCause::Congestion),
        ("CHANUNAVAIL", EndCause::Unavailable),
        ("UNKNOWN", EndCause::Unknown),
    ];
    let mut n = 0;
    for transport in [Transport::Get, Transport::Form, Transport::Json] {
        for (status, cause) in statuses {
            for inbound in [true, false] {
                n += 1;
                let call_id = format!("17000{n}.{n}");
                let (flow, dial, answer) =
                    if inbound { ("IN", "dial-in", "answer-in") } else { ("OUT", "dial-out", "answer-out") };
                let mut params = vec![
                    ("CallID", call_id.as_str()),
                    ("CallerIDNum", "0722111222"),
                    ("CallerIDName", "Ann Lee"),
                    ("CalledDID", "0219990000"),
                    ("CallFlow", flow),
                    ("CalledNumber", "0733444555"),
                    ("CallAPIID", "api-1"),
                ];
                params.push(if inbound { ("CalledExtension", "0003*210") } else { ("CallerExtension", "0003*210") });
                let with = |status: &'static str| {
                    let mut all = params.clone();
                    all.push(("CallStatus", status));
                    all
                };
                let native = format!("{call_id}@0003*210");
                assert_eq!(send(&app.base, dial, transport, &with("CALLING")).await, 200);
                let seen = leg(&app.store, &native).await.unwrap();
                let expected = if inbound { LegState::Ringing } else { LegState::Initiating };
                assert_eq!(seen.state, expected, "{transport:?} {dial}");
                if status == "ANSWER" {
                    assert_eq!(send(&app.base, answer, transport, &with("ANSWER")).await, 200);
                    assert_eq!(
                        leg(&app.store, &native).await.unwrap().state,
                        LegState::Active,
                        "{transport:?} {answer}"
                    );
                }
                assert_eq!(send(&app.base, "hangup", transport, &with(status)).await, 200);
                let ended = leg(&app.store, &native).await.unwrap();
                assert_eq!(
                    (ended.state, ended.end_cause),
                    (LegState::Ended, Some(cause)),
                    "{transport:?} {flow} hangup {status}"
                );
                assert_eq!(ended.answered_at.is_some(), status == "ANSWER", "{transport:?} {flow} {status}");
                if inbound {
                    assert_eq!(ended.remote.number.as_deref(), Some("0722111222"));
                    assert_eq!(ended.remote.name.as_deref(), Some("Ann Lee"));
                } else {
                    assert_eq!(ended.remote.number.as_deref(), Some("0733444555"));
                }
                assert_eq!(ended.direction, if inbound { Direction::Inbound } else { Direction::Outbound });
            }
        }
    }
    let health = app.connector.health();
    assert_eq!(health.errors, 0, "{:?}", health.last_error);
    app.shutdown.cancel();
}

#[tokio::test]
async fn callbacks_are_idempotent_upserts_in_any_order_with_parameters_missing() {
    let app = app(&["0003*210", "0003*211"], None).await;
    // A Hangup before its Dial-In ends the leg, and the late Dial-In changes nothing.
    let hangup = [("CallID", "9.1"), ("CalledExtension", "0003*210"), ("CallFlow", "IN"), ("CallStatus", "NOANSWER")];
    assert_eq!(send(&app.base, "hangup", Transport::Form, &hangup).await, 200);
    let dial = [("CallID", "9.1"), ("CalledExtension", "0003*210"), ("CallStatus", "CALLING")];
    assert_eq!(send(&app.base, "dial-in", Transport::Get, &dial).await, 200);
    let ended = leg(&app.store, "9.1@0003*210").await.unwrap();
    assert_eq!((ended.state, ended.end_cause), (LegState::Ended, Some(EndCause::NoAnswer)));

    // Answer before Dial-In, twice; the misspelt CallerIDNam names the caller.
    let answer = [("CallID", "9.2"), ("CalledExtension", "0003*211"), ("CallerIDNam", "Bo"), ("CallerIDNum", "0799")];
    for _ in 0..2 {
        assert_eq!(send(&app.base, "answer-in", Transport::Json, &answer).await, 200);
    }
    assert_eq!(send(&app.base, "dial-in", Transport::Json, &answer).await, 200);
    let live = leg(&app.store, "9.2@0003*211").await.unwrap();
    assert_eq!(live.state, LegState::Active);
    assert_eq!(live.remote.name.as_deref(), Some("Bo"));
    let snapshot = hub_snapshot(&app.hub).await.unwrap();
    let tile = snapshot.extensions.iter().find(|e| e.id.native() == "0003*211").unwrap();
    assert_eq!(tile.presence, Presence::Busy);

    // A Hangup without CallFlow (or anything but its call and extension) ends the known leg.
    let bare = [("CallID", "9.2"), ("CalledExtension", "0003*211"), ("CallerExtension", "0003*299")];
    assert_eq!(send(&app.base, "hangup", Transport::Get, &bare).await, 200);
    let ended = leg(&app.store, "9.2@0003*211").await.unwrap();
    assert_eq!((ended.state, ended.end_cause), (LegState::Ended, Some(EndCause::Unknown)));
    // A Hangup saying ANSWER of a leg never seen answered counts as answered.
    let both = [("CallID", "9.3"), ("CalledExtension", "0003*210"), ("CallFlow", "IN")];
    assert_eq!(send(&app.base, "dial-in", Transport::Form, &both).await, 200);
    let mut answered = both.to_vec();
    answered.push(("CallStatus", "ANSWER"));
    assert_eq!(send(&app.base, "hangup", Transport::Form, &answered).await, 200);
    let call = all_history(&app.store).await.unwrap().into_iter().find(|c| c.id.native() == "9.3").unwrap();
    assert!(call.answered_at.is_some(), "{call:?}");
    assert_eq!(app.connector.health().errors, 0);
    app.shutdown.cancel();
}

#[tokio::test]
async fn after_a_restart_a_late_callback_still_cannot_take_a_leg_back() {
    let first = app(&["0003*210"], None).await;
    let dial = [("CallID", "8.1"), ("CalledExtension", "0003*210"), ("CallStatus", "CALLING")];
    assert_eq!(send(&first.base, "dial-in", Transport::Form, &dial).await, 200);
    assert_eq!(send(&first.base, "answer-in", Transport::Form, &dial).await, 200);
    first.shutdown.cancel();
    let App { _dir: dir, .. } = first;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let second = app_in(dir, &["0003*210"], None).await;
    wait_until("the restarted hub to show the live call", async || {
        let snapshot = hub_snapshot(&second.hub).await.unwrap();
        snapshot.calls.iter().any(|call| call.legs.iter().any(|leg| leg.state == LegState::Active))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(send(&second.base, "dial-in", Transport::Form, &dial).await, 200, "a late duplicate is fine");
    let snapshot = hub_snapshot(&second.hub).await.unwrap();
    let leg = snapshot.calls.iter().flat_map(|call| &call.legs).find(|leg| leg.id.native() == "8.1@0003*210").unwrap();
    assert_eq!(leg.state, LegState::Active);
    second.shutdown.cancel();
}

#[tokio::test]
async fn a_wrong_secret_an_oversized_body_and_garbage_leave_state_untouched_and_are_counted() {
    let app = app(&["0003*210"], None).await;
    let client = callboard::connectors::http_client();
    let before = hub_snapshot(&app.hub).await.unwrap();
    let good = [("CallID", "5.5"), ("CalledExtension", "0003*210"), ("CallStatus", "CALLING")];
    let wrong = client
        .post(format!("{}/hooks/{NAME}/wrong-secret-0000000/dial-in", app.base))
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    let unknown_provider =
        client.post(format!("{}/hooks/nobody/{SECRET}/dial-in", app.base)).form(&good).send().await.unwrap();
    assert_eq!(unknown_provider.status(), 404);
    let huge = format!("CallID=5.6&CalledExtension=0003*210&Padding={}", "x".repeat(40_000));
    let oversized = client
        .post(format!("{}/hooks/{NAME}/{SECRET}/dial-in", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    assert_eq!(send(&app.base, "transfer", Transport::Form, &good).await, 404, "an event path VoipNow has not");
    assert_eq!(send(&app.base, "dial-in", Transport::Form, &[("CallerIDNum", "1")]).await, 400, "no CallID");
    assert_eq!(send(&app.base, "dial-in", Transport::Get, &[("CallID", "5.7")]).await, 400, "no extension");
    let not_json = client
        .post(format!("{}/hooks/{NAME}/{SECRET}/hangup", app.base))
        .header("content-type", "application/json")
        .body("{\"CallID\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let put = client.put(format!("{}/hooks/{NAME}/{SECRET}/dial-in", app.base)).send().await.unwrap();
    assert_eq!(put.status(), 405);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = hub_snapshot(&app.hub).await.unwrap();
    assert_eq!(after.calls, before.calls, "nothing was ingested");
    assert!(all_history(&app.store).await.unwrap().is_empty());
    let health = app.connector.health();
    assert_eq!(health.errors, 6, "each refusal is counted: {health:?}");
    assert_eq!(health.turned_away, 1, "the wrong secret apart from the errors: {health:?}");
    assert!(!format!("{health:?}").contains("wrong-secret-0000000"), "no secret, right or wrong, in health");
    // A stranger's wrong secret does not hide the provider's last error.
    let again = client
        .post(format!("{}/hooks/{NAME}/wrong-secret-0000001/dial-in", app.base))
        .form(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    let after_wrong = app.connector.health();
    assert_eq!((after_wrong.errors, after_wrong.turned_away), (6, 2), "{after_wrong:?}");
    assert_eq!(after_wrong.last_error, health.last_error);
    // And the stream goes on.
    assert_eq!(send(&app.base, "dial-in", Transport::Form, &good).await, 200);
    assert_eq!(leg(&app.store, "5.5@0003*210").await.unwrap().state, LegState::Ringing);
    app.shutdown.cancel();
}

fn busy_center(seed: u64) -> Scenario {
    Scenario { seed, ..Scenario::demo() }
}

#[tokio::test]
async fn round_trip_from_the_face_with_drops_duplicates_and_reordering_matches_the_ground_truth() {
    let rates =
        FaultRates { drop: 0.01, duplicate: 0.05, reorder: 0.05, slow: 0.01, slow_ms: 20, ..FaultRates::default() };
    let faults = Faults::new(33, rates);
    let face = VoipNowFace::new(("app", "app-secret"), "first-refresh", ("sim", "cc"), faults.clone(), None);
    let start = callboard::hub::now_ms();
    let mut pbx = Pbx::new(busy_center(33), "sim", "cc", start);
    let extensions: Vec<String> = pbx.extension_numbers().iter().map(|n| extended(n)).collect();
    let names: Vec<&str> = extensions.iter().map(String::as_str).collect();
    let app = app(&names, None).await;
    // Each extension's Call Events as an administrator set them, methods varying.
    for (index, extension) in extensions.iter().enumerate() {
        let method = [HookMethod::Get, HookMethod::PostForm, HookMethod::PostJson][index % 3];
        for event in CallEventType::ALL {
            face.register(extension, event, method, &app.connector.hook_url(event));
        }
    }
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
            let mut waited = 0;
            while !face.idle() {
                tokio::time::sleep(Duration::from_millis(1)).await;
                waited += 1;
                assert!(waited < 20_000, "the face could not send its callbacks within 20 s");
            }
        }
        let snapshot = hub_snapshot(&app.hub).await.unwrap();
        let history = all_history(&app.store).await.unwrap();
        let expected = face.truth_picture(&truth);
        let observed = VoipNowFace::observed_picture(&expected, &snapshot.extensions, &history);
        expected.compare(&observed, "hub").unwrap_or_else(|diff| {
            panic!("checkpoint {checkpoints}: {diff}\nsent {:?}, connector {:?}", face.sent(), app.connector.health())
        });
        checkpoints += 1;
    }
    for fault in [Fault::Drop, Fault::Duplicate, Fault::Reorder, Fault::Slow] {
        assert!(faults.count(fault) > 0, "{fault:?} was never injected: {:?}", faults.counts());
    }
    let (_, calls, _) = truth.views_all();
    let (delivered, failed) = face.sent();
    assert_eq!(failed, 0, "every callback sent was taken");
    assert!(calls.len() >= 500, "at least 500 calls, got {}", calls.len());
    let health = app.connector.health();
    assert_eq!(health.errors, 0, "{:?}", health.last_error);
    println!(
        "voipnow round trip: {} calls, {delivered} callbacks delivered, {checkpoints} checkpoints, faults {:?}",
        calls.len(),
        faults.counts()
    );
    app.shutdown.cancel();
}

#[tokio::test]
async fn unified_api_registers_the_call_events_and_dials_and_hangs_up_but_does_not_hold() {
    let shutdown = CancellationToken::new();
    let pbx = Pbx::new(Scenario::for_commands(), "sim", "cc", callboard::hub::now_ms());
    let (events, mut receiver) = tokio::sync::mpsc::channel::<Vec<Event>>(64);
    let (sim, _task) =
        runner::spawn(pbx, callboard::clock::Clock::new(callboard::hub::now_ms(), 4.0), events, shutdown.clone());
    let face = VoipNowFace::new(("app", "app-secret"), "first-refresh", ("sim", "cc"), Faults::none(), Some(sim));
    let truth = Arc::new(Mutex::new(LiveState::new(QueueSettings::default(), Default::default())));
    let (absorbing, truth_in) = (face.clone(), truth.clone());
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            for event in &batch {
                truth_in.lock().unwrap().apply(event);
            }
            absorbing.absorb(&batch);
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uapi = format!("http://{}", listener.local_addr().unwrap());
    let router = face.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    // One Call Event an administrator made by hand, which must stay.
    face.register("0001*101", CallEventType::Hangup, HookMethod::Get, "https://crm.example.com/hangup");

    let app = app(&["0001*101", "0001*102", "0001*103"], Some(&uapi)).await;
    wait_until("the Call Events to be registered", async || {
        ["0001*101", "0001*102", "0001*103"]
            .iter()
            .all(|e| face.registrations(e).iter().filter(|(_, url)| url.starts_with(&app.base)).count() == 5)
    })
    .await;
    let at_101 = face.registrations("0001*101");
    assert_eq!(at_101.len(), 6, "ours added, the CRM's kept: {at_101:?}");
    for event in CallEventType::ALL {
        assert!(at_101.contains(&(event, app.connector.hook_url(event))), "{event:?}");
    }
    // No Call Event reports hold and no resume is documented: hold is not offered.
    assert_eq!(app.connector.capabilities(), [Action::Dial, Action::Hangup]);

    let command = |action: Action| Command { action, call: None, leg: None, extension: None, number: None };
    let dialled = app
        .connector
        .control(Command {
            extension: Some(ExtensionId::new(NAME, "pbx", "0001*101")),
            number: Some("0299990000".into()),
            ..command(Action::Dial)
        })
        .await
        .unwrap();
    assert!(dialled.contains("0299990000"), "{dialled}");
    // The click-to-call rings 101 first, then calls out; 101 answers by itself here. It is a
    // call made by 101 all along (Dial-Out, CallFlow OUT) to the number dialled.
    let mut placed = None;
    wait_until("the click-to-call to reach the board", async || {
        let snapshot = hub_snapshot(&app.hub).await.unwrap();
        placed = snapshot.calls.iter().find(|c| c.ended_at.is_none()).and_then(|c| c.legs.first().cloned());
        placed.is_some()
    })
    .await;
    let placed = placed.unwrap();
    assert_eq!(placed.extension.as_ref().map(|e| e.native()), Some("0001*101"), "{placed:?}");
    assert_eq!(placed.direction, Direction::Outbound, "{placed:?}");
    assert_eq!(placed.remote.number.as_deref(), Some("0299990000"), "{placed:?}");
    // MakeCall named the call by the CallAPIID its events carry, so it is known as ours.
    let snapshot = hub_snapshot(&app.hub).await.unwrap();
    let origin = snapshot.calls.iter().find(|c| c.id == placed.call).map(|c| c.origin.clone());
    assert_eq!(origin, Some(Origin::ClickToCall), "{placed:?}");
    let call = placed.call.clone();
    let leg_101 = || {
        let truth = truth.lock().unwrap();
        let (_, calls, _) = truth.views_all();
        calls
            .iter()
            .flat_map(|c| c.legs.clone())
            .find(|l| l.extension.as_ref().is_some_and(|e| e.native() == "101") && l.ended_at.is_none())
    };
    wait_until("101 to be answered", async || leg_101().is_some_and(|l| l.state == LegState::Active)).await;
    // Asked anyway, hold is refused in words and the caller is not put on hold.
    let hold = app.connector.control(Command { call: Some(call.clone()), ..command(Action::Hold) }).await;
    assert!(
        matches!(&hold, Err(CommandError::Refused(words)) if words.starts_with("hold is left to the phone")),
        "{hold:?}"
    );
    assert_eq!(leg_101().map(|l| l.state), Some(LegState::Active));

    // The hour is up: the connector is refused once, refreshes with the rotated refresh token.
    face.expire_access_tokens();
    app.connector.control(Command { call: Some(call.clone()), ..command(Action::Hangup) }).await.unwrap();
    wait_until("the Hangup callback to end the call", async || {
        let snapshot = hub_snapshot(&app.hub).await.unwrap();
        snapshot.calls.iter().all(|c| c.id != call || c.ended_at.is_some())
    })
    .await;
    let gone = app.connector.control(Command { call: Some(call.clone()), ..command(Action::Hangup) }).await;
    assert!(matches!(gone, Err(CommandError::Refused(_))), "{gone:?}");
    assert_eq!(app.connector.health().errors, 0, "{:?}", app.connector.health().last_error);
    shutdown.cancel();
    app.shutdown.cancel();
}

/// The face serving UnifiedAPI on loopback in front of a simulated PBX that takes commands;
/// its URL, and the token that stops the PBX.
async fn commanded_face() -> (VoipNowFace, String, CancellationToken) {
    let shutdown = CancellationToken::new();
    let pbx = Pbx::new(Scenario::for_commands(), "sim", "cc", callboard::hub::now_ms());
    let (events, mut receiver) = tokio::sync::mpsc::channel::<Vec<Event>>(64);
    let (sim, _task) =
        runner::spawn(pbx, callboard::clock::Clock::new(callboard::hub::now_ms(), 4.0), events, shutdown.clone());
    let face = VoipNowFace::new(("app", "app-secret"), "first-refresh", ("sim", "cc"), Faults::none(), Some(sim));
    let absorbing = face.clone();
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            absorbing.absorb(&batch);
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uapi = format!("http://{}", listener.local_addr().unwrap());
    let router = face.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (face, uapi, shutdown)
}

/// Waits until `app`'s five Call Events are registered at `extension`.
async fn registered_at(face: &VoipNowFace, app: &App, extension: &str) {
    wait_until("the Call Events to be registered", async || {
        face.registrations(extension).iter().filter(|(_, url)| url.starts_with(&app.base)).count() == 5
    })
    .await;
}

fn dial_from(extension: &str) -> Command {
    Command {
        action: Action::Dial,
        call: None,
        leg: None,
        extension: Some(ExtensionId::new(NAME, "pbx", extension)),
        number: Some("0299990000".into()),
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_is_kept_so_after_a_restart_registering_and_dialling_still_work() {
    let (face, uapi, sim_shutdown) = commanded_face().await;
    let first = app(&["0001*101"], Some(&uapi)).await;
    // Registering refreshed once ("first-refresh" is spent); a dial after the hour refreshes
    // again: two rotations, each refresh token good for one refresh.
    registered_at(&face, &first, "0001*101").await;
    face.expire_access_tokens();
    first.connector.control(dial_from("0001*101")).await.unwrap();
    assert_eq!(face.refreshes(), 2);
    first.shutdown.cancel();
    let App { _dir: dir, .. } = first;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Restarted with the same config and store: the newest refresh token, not the configured
    // (spent) one, so VoipNow still takes the registration and the call.
    let second = app_in(dir, &["0001*101", "0001*102"], Some(&uapi)).await;
    registered_at(&face, &second, "0001*102").await;
    let dialled = second.connector.control(dial_from("0001*102")).await;
    assert!(matches!(&dialled, Ok(words) if words.contains("0299990000")), "{dialled:?}");
    assert_eq!(face.refreshes(), 3, "one refresh after the restart, with the kept token");
    assert_eq!(second.connector.health().errors, 0, "{:?}", second.connector.health().last_error);
    second.shutdown.cancel();
    sim_shutdown.cancel();
}

#[tokio::test]
async fn a_newly_configured_refresh_token_wins_over_the_one_kept_for_the_old() {
    let (face, uapi, sim_shutdown) = commanded_face().await;
    let first = app(&["0001*101"], Some(&uapi)).await;
    registered_at(&face, &first, "0001*101").await;
    first.shutdown.cancel();
    let App { _dir: dir, .. } = first;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The admin authorised the app anew and configured its refresh token; the one kept for the
    // old authorisation is still good at VoipNow, but the configured one is what must be used.
    face.issue_refresh_token("second-refresh");
    let second = app_with(dir, &["0001*102"], Some(&uapi), "second-refresh").await;
    registered_at(&face, &second, "0001*102").await;
    second.connector.control(dial_from("0001*102")).await.unwrap();
    // Spent by the restart: had the kept token been sent instead, this one would still be good.
    let spent = callboard::connectors::http_client()
        .post(format!("{uapi}/oauth/token.php"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "second-refresh"),
            ("client_id", "app"),
            ("client_secret", "app-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(spent.status(), 400, "the configured refresh token was the one sent");
    second.shutdown.cancel();
    sim_shutdown.cancel();
}

#[tokio::test]
async fn a_refusal_that_echoes_the_hook_url_never_shows_the_webhook_secret() {
    use axum::routing::{get, post};
    // A UnifiedAPI that takes the token, lists no Call Events, and refuses each new one with a
    // message quoting the URL it was given.
    let uapi = axum::Router::new()
        .route(
            "/oauth/token.php",
            post(|| async { axum::Json(serde_json::json!({"access_token": "t", "expires_in": 3600})) }),
        )
        .route("/uapi/extensions/@me/{extension}/phoneCallEvents", get(|| async { axum::Json(serde_json::json!([])) }))
        .route(
            "/uapi/extensions/@me/{extension}/phoneCallEvents/",
            post(|axum::Json(body): axum::Json<serde_json::Value>| async move {
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    format!("url {} is not reachable", body["url"].as_str().unwrap_or("")),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, uapi).await.unwrap() });
    let app = app(&["0001*101"], Some(&url)).await;
    wait_until("the refusal to be counted", async || app.connector.health().errors > 0).await;
    let shown = app.connector.health().last_error.unwrap();
    assert!(shown.contains("is not reachable") && shown.contains("(secret)"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
    // Browsers read the same health through the hub.
    let published = serde_json::to_string(&app.hub.connectors().await.unwrap()).unwrap();
    assert!(!published.contains(SECRET));
    app.shutdown.cancel();
}
