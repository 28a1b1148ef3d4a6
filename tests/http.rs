//! The router exercised in-process (tower `oneshot`) and, for the websocket, over loopback.
#![cfg(feature = "ssr")]

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use callboard::hub::{Hub, HubSettings};
use callboard::server::{config::Config, router::router, AppState};
use callboard::store::Store;
use futures::StreamExt;
use http_body_util::BodyExt;
use leptos::config::LeptosOptions;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

async fn state() -> AppState {
    let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
    let store = Store::open(&dir.path().join("test.db")).await.unwrap();
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await.unwrap();
    AppState {
        leptos_options: LeptosOptions::builder().output_name("callboard").build(),
        hub,
        store,
        connectors: Arc::default(),
        config: Arc::new(Config::default()),
        shutdown,
    }
}

async fn get(uri: &str) -> (StatusCode, String) {
    let response = router(state().await).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn healthz_answers_ok() {
    let (status, body) = get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, r#"{"status":"ok"}"#);
}

#[tokio::test]
async fn pages_render_with_shell_and_offline_badge() {
    for (path, marker) in [("/", "wallboard"), ("/queues", "queues"), ("/desk", "desk")] {
        let (status, body) = get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains(&format!("data-page=\"{marker}\"")), "{path}: {body}");
        assert!(body.contains("data-connection=\"offline\""), "{path}: the server renders the badge offline");
        assert!(body.contains("/pkg/callboard.css"), "{path}: stylesheet linked");
        assert!(body.contains("favicon.svg"), "{path}: icon linked");
    }
}

#[tokio::test]
async fn unknown_page_is_404() {
    let (status, _) = get("/no-such-page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oversized_body_is_refused_before_it_is_read() {
    let limit = Config::default().server.body_limit_bytes;
    let request = Request::post("/healthz")
        .header(header::CONTENT_LENGTH, limit + 1)
        .body(Body::from(vec![b'x'; limit + 1]))
        .unwrap();
    let response = router(state().await).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn responses_are_compressed_when_asked() {
    let request = Request::get("/").header(header::ACCEPT_ENCODING, "gzip").body(Body::empty()).unwrap();
    let response = router(state().await).oneshot(request).await.unwrap();
    assert_eq!(response.headers().get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap()), Some("gzip"));
}

#[tokio::test]
async fn websocket_sends_snapshot_first_and_closes_on_shutdown() {
    let state = state().await;
    let shutdown = state.shutdown.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state);
    let stop = shutdown.clone();
    let server =
        tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await });

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.unwrap();
    let first = socket.next().await.unwrap().unwrap();
    let frame: serde_json::Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(frame["type"], "snapshot");
    assert_eq!(frame["seq"], 0);
    assert!(frame["extensions"].is_array() && frame["calls"].is_array() && frame["queues"].is_array());

    shutdown.cancel();
    let closing = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next()).await.unwrap();
    assert!(matches!(closing, Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | None));
    tokio::time::timeout(std::time::Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn websocket_session_ends_when_the_browser_closes_or_goes() {
    use callboard::server::ws::session;
    use std::time::Duration;
    use tokio_tungstenite::tungstenite::Message;
    let state = state().await;
    for goes in [false, true] {
        let (sink, mut sent) = futures::channel::mpsc::unbounded::<Message>();
        let (browser, stream) = futures::channel::mpsc::unbounded::<Result<Message, ()>>();
        let running = tokio::spawn(session(sink, stream, state.hub.clone(), None, state.shutdown.clone()));
        assert!(matches!(sent.next().await, Some(Message::Frame(_))), "the snapshot goes out first");
        // Anything but a close is read and dropped; the session goes on.
        browser.unbounded_send(Ok(Message::text("hello"))).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!running.is_finished());
        if goes {
            drop(browser);
        } else {
            browser.unbounded_send(Ok(Message::Close(None))).unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), running).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn websocket_frames_larger_than_a_fragment_arrive_whole() {
    use callboard::model::{Event, EventKind, ExtensionId, ExtensionReport, QueueId};
    use callboard::server::ws::FRAGMENT_BYTES;
    let state = state().await;
    let hub = state.hub.clone();
    let extension = |i: usize| ExtensionId::new("p", "a", &format!("{i}"));
    for i in 0..600 {
        // Multi-byte names, so fragments must be cut between characters.
        let name = Some(format!("Agent {i} — Zoë ✓"));
        let report = ExtensionReport { extension: extension(i), name, sip_user: None, online_user: None };
        hub.submit(Event::new("p", "a", 1_000 + i as i64, EventKind::Extension(report))).await.unwrap();
    }
    let (_, expected) = hub.snapshot().await.unwrap();
    assert!(expected.len() > 3 * FRAGMENT_BYTES, "snapshot of {} bytes", expected.len());

    let shutdown = state.shutdown.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state);
    tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await });
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.unwrap();
    let first = socket.next().await.unwrap().unwrap();
    assert_eq!(first.to_text().unwrap(), expected.as_str());

    // One event naming 2,000 new members: a delta of many fragments, whole and in order.
    let members: Vec<ExtensionId> = (600..2_600).map(extension).collect();
    let queue = EventKind::Queue { queue: QueueId::new("p", "a", "big"), name: "Big".into(), members };
    hub.submit(Event::new("p", "a", 5_000, queue)).await.unwrap();
    let delta = socket.next().await.unwrap().unwrap();
    let delta: serde_json::Value = serde_json::from_str(delta.to_text().unwrap()).unwrap();
    assert_eq!(delta["type"], "delta");
    assert_eq!(delta["seq"], 601);
    let changes = delta["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2_001, "2,000 extensions and the queue");

    // A plain request to the endpoint is not an upgrade.
    let (status, _) = get("/ws").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn post_json(uri: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let request =
        Request::post(uri).header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_owned())).unwrap();
    let response = router(state().await).oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn api_serves_snapshot_history_and_connectors() {
    let (status, body) = get("/api/v1/snapshot").await;
    assert_eq!(status, StatusCode::OK);
    let snapshot: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["seq"], 0);
    for key in ["extensions", "calls", "queues", "connectors"] {
        assert!(snapshot[key].is_array(), "{key}");
    }
    let (status, body) = get("/api/v1/calls?since=0&number=%2B61400000000").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
    let (status, body) = get("/api/v1/connectors").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
    let (status, _) = get("/api/v1/calls?since=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn commands_never_report_success_that_did_not_happen() {
    let (status, body) = post_json("/api/v1/commands", r#"{"action":"hangup","call":"main-pbx/a/123"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("main-pbx"), "{body}");
    let (status, body) = post_json("/api/v1/commands", r#"{"action":"hangup"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("names a call"), "{body}");
    let (status, body) = post_json("/api/v1/commands", r#"{"action":"explode","call":"x/y/z"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("explode"), "{body}");
}

/// A connector that dials and hangs up but refuses to hang up call `no`: the router's view of
/// a provider.
struct Switchboard;

impl callboard::connectors::Connector for Switchboard {
    fn name(&self) -> &str {
        "pbx"
    }
    fn capabilities(&self) -> &[callboard::model::Action] {
        &[callboard::model::Action::Hangup, callboard::model::Action::Dial]
    }
    fn control(
        &self,
        command: callboard::model::Command,
    ) -> futures::future::BoxFuture<'static, Result<String, callboard::connectors::CommandError>> {
        Box::pin(async move {
            if let Some(number) = command.number {
                return Ok(format!("dialling {number}"));
            }
            match command.call.as_ref().map(|call| call.native().to_owned()).as_deref() {
                Some("no") => Err(callboard::connectors::CommandError::Refused("Channel not found".into())),
                _ => Ok("Channel Hungup".into()),
            }
        })
    }
}

#[tokio::test]
async fn commands_are_routed_by_provider_and_capability() {
    use callboard::model::*;
    let mut state = state().await;
    let mut connectors = callboard::connectors::Connectors::default();
    connectors.insert(Arc::new(Switchboard));
    state.connectors = Arc::new(connectors);
    let send = |body: &'static str| {
        let app = router(state.clone());
        async move {
            let request = Request::post("/api/v1/commands")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        }
    };
    // Two calls talking at 201 on the board; a third ended.
    for (call, leg_state) in [("yes", LegState::Active), ("no", LegState::Active), ("over", LegState::Ended)] {
        let report = LegReport {
            leg: LegId::new("pbx", "a", &format!("{call}-1")),
            call: CallId::new("pbx", "a", call),
            extension: Some(ExtensionId::new("pbx", "a", "201")),
            state: leg_state,
            held_by: None,
            direction: Direction::Inbound,
            origin: Origin::Normal,
            local: Party::default(),
            remote: Party::default(),
            queue: None,
            end_cause: leg_state.is_ended().then_some(EndCause::Normal),
            raw_cause: None,
            raw_state: String::new(),
            recording: None,
            revision: 0,
        };
        let at = callboard::hub::now_ms();
        state.hub.submit(Event::new("pbx", "a", at, EventKind::Leg(report))).await.unwrap();
    }
    let (status, body) = send(r#"{"action":"hangup","call":"pbx/a/yes","extension":"pbx/a/201"}"#).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("Channel Hungup")));
    // Not through an extension the call is not at, nor about a call no longer on the board.
    let (status, body) = send(r#"{"action":"hangup","call":"pbx/a/yes","extension":"pbx/a/202"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("not at extension"), "{body}");
    let (status, body) = send(r#"{"action":"hangup","call":"pbx/a/over"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("not live"), "{body}");
    let (status, body) = send(r#"{"action":"hangup","call":"pbx/a/no"}"#).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("Channel not found")));
    let (status, body) = send(r#"{"action":"hold","call":"pbx/a/yes"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("does not allow"), "{body}");
    // The provider gets a number's digits, however a person or a contact list wrote it.
    let (status, body) = send(r#"{"action":"dial","extension":"pbx/a/201","number":"(02) 9999-5678"}"#).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("dialling 0299995678")));
    let (status, body) = send(r#"{"action":"dial","extension":"pbx/a/201","number":"call Ann"}"#).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("\"call Ann\" is not a number to dial"))
    );
}

#[tokio::test]
async fn contacts_import_look_up_by_any_spelling_and_delete() {
    let app = router(state().await);
    let send = |request: Request<Body>| {
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap_or(serde_json::Value::Null))
        }
    };
    let import = |content_type: &str, csv: &'static str| {
        Request::post("/api/v1/contacts/import")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(csv))
            .unwrap()
    };
    let csv = "name,number\nJane Citizen,(02) 9999 0000\nNobody,xx\n";
    // Only as CSV: a page elsewhere can post text/plain without the browser asking first.
    let (status, body) = send(import("text/plain", csv)).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(body["error"].as_str().unwrap().contains("text/csv"), "{body}");
    let (status, body) = send(import("text/csv; charset=utf-8", csv)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["imported"], 1);
    assert_eq!(body["skipped"][0], "line 3: \"xx\" is not a phone number");
    // The same file again, and the same contact written another way, add nothing.
    let again = "name,number\nJane Citizen,(02) 9999 0000\njane citizen,+61 2 9999 0000\nJohn Citizen,(02) 9999 0000\n";
    let (status, body) = send(import("text/csv", again)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["imported"], 1, "only John, who shares Jane's number: {body}");
    assert_eq!(body["skipped"][0], "line 2: Jane Citizen ((02) 9999 0000) is already a contact");
    assert_eq!(body["skipped"][1], "line 3: jane citizen (+61 2 9999 0000) is already a contact");
    let (_, all) = send(Request::get("/api/v1/contacts").body(Body::empty()).unwrap()).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2));
    let (_, found) = send(Request::get("/api/v1/contacts?number=%2B61299990000").body(Body::empty()).unwrap()).await;
    assert_eq!(found[0]["name"], "Jane Citizen");
    assert_eq!(found[1]["name"], "John Citizen");
    let (_, none) = send(Request::get("/api/v1/contacts?number=0299990001").body(Body::empty()).unwrap()).await;
    assert_eq!(none, serde_json::json!([]));
    let id = found[0]["id"].as_i64().unwrap();
    let delete = || Request::delete(format!("/api/v1/contacts/{id}")).body(Body::empty()).unwrap();
    assert_eq!(send(delete()).await.0, StatusCode::OK);
    assert_eq!(send(delete()).await.0, StatusCode::NOT_FOUND);
    let bad = Request::post("/api/v1/contacts").header(header::CONTENT_TYPE, "application/json");
    let (status, body) = send(bad.body(Body::from(r#"{"name":"","number":"0299990000"}"#)).unwrap()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("a contact needs a name of at most 200 characters"))
    );
}

#[tokio::test]
async fn foreign_pages_and_rebound_names_are_turned_away_from_the_api_and_the_websocket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let send = |request: Request<Body>| async {
        let response = router(state().await).oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default())
    };
    // A page on another site posting a command (a "simple" request the browser sends as is).
    let command = r#"{"action":"dial","extension":"demo/callcenter/201","number":"+19005550100"}"#;
    let foreign = Request::post("/api/v1/commands")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(command))
        .unwrap();
    let (status, body) = send(foreign).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("evil.example"), "{body}");
    // ...and planting contacts.
    let planted = Request::post("/api/v1/contacts/import")
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("name,number\nBank,+61299990000\n"))
        .unwrap();
    assert_eq!(send(planted).await.0, StatusCode::FORBIDDEN);
    // A rebinding page: its own name in Host, so same-origin to the browser.
    let rebound = Request::get("/api/v1/snapshot")
        .header(header::HOST, "evil.example:3000")
        .header("sec-fetch-site", "same-origin")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(rebound).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("allowed_hosts"), "{body}");
    // Our own page, and tools that are not browsers, go through.
    let own = Request::get("/api/v1/snapshot").header(header::HOST, "127.0.0.1:3000").body(Body::empty()).unwrap();
    assert_eq!(send(own).await.0, StatusCode::OK);
    // Pages and webhooks are not gated here.
    let page = Request::get("/").header(header::HOST, "evil.example").body(Body::empty()).unwrap();
    assert_eq!(send(page).await.0, StatusCode::OK);

    // A real websocket handshake from a foreign page is refused; from our own page it opens.
    let state = state().await;
    let shutdown = state.shutdown.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state);
    tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await });
    let with_origin = |origin: String| {
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        request.headers_mut().insert(header::ORIGIN, origin.parse().unwrap());
        request
    };
    let refused = tokio_tungstenite::connect_async(with_origin("https://evil.example".into())).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(response)) if response.status() == StatusCode::FORBIDDEN),
        "{refused:?}"
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(with_origin(format!("http://{addr}"))).await.unwrap();
    let first = socket.next().await.unwrap().unwrap();
    let frame: serde_json::Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(frame["type"], "snapshot");
}

#[tokio::test]
async fn a_ping_gets_a_pong_with_the_server_clock_outside_the_numbering() {
    use callboard::server::ws::{session, PING};
    use tokio_tungstenite::tungstenite::Message;
    let state = state().await;
    let (sink, mut sent) = futures::channel::mpsc::unbounded::<Message>();
    let (browser, stream) = futures::channel::mpsc::unbounded::<Result<Message, ()>>();
    tokio::spawn(session(sink, stream, state.hub.clone(), None, state.shutdown.clone()));
    let text = |message: Option<Message>| match message {
        Some(Message::Frame(frame)) => String::from_utf8(frame.payload().to_vec()).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    };
    let snapshot: serde_json::Value = serde_json::from_str(&text(sent.next().await)).unwrap();
    assert_eq!(snapshot["type"], "snapshot");
    let before = callboard::hub::now_ms();
    browser.unbounded_send(Ok(Message::text(PING))).unwrap();
    let pong: serde_json::Value = serde_json::from_str(&text(sent.next().await)).unwrap();
    assert_eq!(pong["type"], "pong");
    assert!(pong["server_time"].as_i64().unwrap() >= before, "{pong}");
    assert!(pong.get("seq").is_none(), "{pong}");
    // Other text is still read and dropped.
    browser.unbounded_send(Ok(Message::text("hello"))).unwrap();
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(100), sent.next()).await;
    assert!(quiet.is_err(), "nothing answers anything but a ping");
}
