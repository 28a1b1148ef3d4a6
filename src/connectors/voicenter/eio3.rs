//! An Engine.IO 3 client over a websocket, speaking socket.io protocol v4, as Voicenter's
//! servers (socket.io 2.x) do and `rust_socketio` cannot (providers.md section 6).
//!
//! Engine.IO 3 differs from 4 where it matters: the *client* pings (`2`) every `pingInterval`
//! and the server answers (`3`); a server that hears no ping within interval + timeout drops
//! the link, and a client that hears no pong within `pingTimeout` must assume the same. The
//! server joins the client to `/` by itself (it sends `40`; the client must not). Events are
//! `42["name", payload]`. Only the websocket transport is used, as Voicenter's own SDKs do.

use super::link::Heard;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as Frame;

/// The largest frame accepted: a full AllExtensionsStatus of a big account fits many times.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// The OPEN packet must come this soon after the websocket is up.
const OPEN_WITHIN: Duration = Duration::from_secs(10);

/// The engine.io OPEN packet (the seed's "initial message").
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Open {
    pub sid: String,
    #[serde(default)]
    pub upgrades: Vec<String>,
    pub ping_interval: u64,
    pub ping_timeout: u64,
}

/// One engine.io + socket.io packet from the server, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Packet {
    Open(Open),
    /// `1`: the server closes the engine.io session.
    Close,
    Ping,
    Pong,
    /// `40`: joined to `/`.
    Connected,
    /// `41`: dropped from `/`.
    Disconnected,
    /// `42[...]`: an event and its first argument.
    Event(String, Value),
    /// `44...`: the server refused the namespace (a bad token, for example), in its words.
    Refused(String),
    /// `6` (noop) and socket.io packets this client has no use for (acks, binary).
    Other,
}

/// Decodes one text frame; the error says what was wrong without repeating the payload.
pub fn decode(text: &str) -> Result<Packet, String> {
    let mut chars = text.chars();
    match chars.next() {
        Some('0') => serde_json::from_str(&text[1..])
            .map(Packet::Open)
            .map_err(|error| format!("an OPEN packet that is not readable: {error}")),
        Some('1') => Ok(Packet::Close),
        Some('2') => Ok(Packet::Ping),
        Some('3') => Ok(Packet::Pong),
        Some('6') => Ok(Packet::Other),
        Some('4') => decode_socket(&text[1..]),
        _ => Err(format!("an engine.io packet of unknown type {:?}", text.chars().next())),
    }
}

fn decode_socket(text: &str) -> Result<Packet, String> {
    let kind = text.chars().next();
    let mut rest = text.get(1..).unwrap_or_default();
    // A packet names its namespace first (`/admin,`) unless it is `/`. Only `/` is ours: an
    // event of another namespace is not a Voicenter event, and leaving (`41/admin,`) or being
    // refused (`44/admin,`) another namespace says nothing about the link.
    if rest.starts_with('/') {
        let (namespace, after) = rest.split_once(',').unwrap_or((rest, ""));
        if namespace != "/" {
            return Ok(Packet::Other);
        }
        rest = after;
    }
    match kind {
        Some('0') => Ok(Packet::Connected),
        Some('1') => Ok(Packet::Disconnected),
        Some('2') => {
            // An ack id may precede the array.
            let array = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            let value =
                super::wire::lenient_json(array).map_err(|error| format!("an event that is not JSON: {error}"))?;
            let Value::Array(mut items) = value else { return Err("an event that is not a JSON array".into()) };
            if items.is_empty() {
                return Err("an event without a name".into());
            }
            let name = match items.remove(0) {
                Value::String(name) => name,
                _ => return Err("an event whose name is not a string".into()),
            };
            let payload = if items.is_empty() { Value::Null } else { items.swap_remove(0) };
            Ok(Packet::Event(name, payload))
        }
        Some('4') => {
            let words = serde_json::from_str::<Value>(rest)
                .ok()
                .and_then(|value| {
                    value
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .or_else(|| value.as_str().map(str::to_owned))
                })
                .unwrap_or_else(|| rest.chars().take(160).collect());
            Ok(Packet::Refused(words))
        }
        _ => Ok(Packet::Other),
    }
}

/// The websocket URL for a monitor server: `https://host` becomes
/// `wss://host/socket.io/?EIO=3&transport=websocket&token=…`. The path is always
/// `/socket.io/`, as socket.io-client's default is: a path in a monitor URL would name a
/// namespace to socket.io-client, not where to connect, and Voicenter's `URLList` names bare
/// hosts (`https://monitor5.voicenter.co.il`), whose events come on `/`. Any path, query or
/// fragment of `server` is therefore left out.
pub fn socket_url(server: &str, token: &str, eio: u8) -> Result<String, String> {
    let server = server.trim();
    let (scheme, rest) = server.split_once("://").unwrap_or(("https", server));
    let scheme = match scheme {
        "https" | "wss" => "wss",
        "http" | "ws" => "ws",
        other => return Err(format!("a monitor server with scheme {other:?}")),
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err("a monitor server without a host".into());
    }
    let token = crate::connectors::rest::encode(token);
    Ok(format!("{scheme}://{host}/socket.io/?EIO={eio}&transport=websocket&token={token}"))
}

/// Connects and runs the link until it closes; what it hears goes to `heard`, what arrives on
/// `say` (already-encoded event arrays) is sent. Returns once the OPEN packet is read, with
/// the link running in its own task.
pub async fn connect(
    server: &str,
    token: &str,
    heard: mpsc::Sender<Heard>,
    say: mpsc::Receiver<String>,
) -> Result<Open, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = socket_url(server, token, 3)?;
    let config =
        WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE_BYTES)).max_frame_size(Some(MAX_MESSAGE_BYTES));
    let (mut socket, _) =
        tokio::time::timeout(OPEN_WITHIN, tokio_tungstenite::connect_async_with_config(url, Some(config), true))
            .await
            .map_err(|_| "the websocket did not open in time".to_owned())?
            // The URL carries the token: never repeat it.
            .map_err(|error| format!("the websocket did not open: {}", without_url(&error)))?;
    let open = loop {
        let frame = tokio::time::timeout(OPEN_WITHIN, socket.next())
            .await
            .map_err(|_| "no engine.io OPEN packet".to_owned())?
            .ok_or_else(|| "closed before the OPEN packet".to_owned())?
            .map_err(|error| format!("while opening: {}", without_url(&error)))?;
        if let Frame::Text(text) = frame {
            match decode(text.as_str())? {
                Packet::Open(open) => break open,
                other => return Err(format!("expected OPEN, got {other:?}")),
            }
        }
    };
    let ping_every = Duration::from_millis(open.ping_interval.clamp(100, 600_000));
    let pong_within = Duration::from_millis(open.ping_timeout.clamp(100, 600_000));
    tokio::spawn(run(socket, heard, say, ping_every, pong_within));
    Ok(open)
}

fn without_url(error: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match error {
        Error::Http(response) => format!("HTTP {}", response.status()),
        Error::Url(_) => "the monitor URL is not usable".into(),
        other => other.to_string(),
    }
}

async fn run<S>(
    socket: tokio_tungstenite::WebSocketStream<S>,
    heard: mpsc::Sender<Heard>,
    mut say: mpsc::Receiver<String>,
    ping_every: Duration,
    pong_within: Duration,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = socket.split();
    let mut pinger = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    pinger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When the ping now unanswered was sent.
    let mut awaiting_pong: Option<tokio::time::Instant> = None;
    let why = loop {
        let pong_deadline = awaiting_pong.map(|sent| sent + pong_within);
        tokio::select! {
            frame = stream.next() => {
                let text = match frame {
                    None => break "the server closed the websocket".to_owned(),
                    Some(Err(error)) => break format!("the websocket failed: {}", without_url(&error)),
                    Some(Ok(Frame::Text(text))) => text,
                    Some(Ok(Frame::Close(_))) => break "the server closed the websocket".to_owned(),
                    Some(Ok(_)) => continue,
                };
                let heard_now = match decode(text.as_str()) {
                    Ok(Packet::Pong) => {
                        awaiting_pong = None;
                        None
                    }
                    Ok(Packet::Ping) => {
                        // A server that pings (Engine.IO 4 habits) gets its pong.
                        if sink.send(Frame::text("3")).await.is_err() {
                            break "the websocket failed while answering a ping".to_owned();
                        }
                        None
                    }
                    Ok(Packet::Close) => break "the server closed the engine.io session".to_owned(),
                    Ok(Packet::Disconnected) => break "the server dropped the socket".to_owned(),
                    Ok(Packet::Refused(words)) => break format!("the server refused the socket: {words}"),
                    Ok(Packet::Connected) => Some(Heard::Joined),
                    Ok(Packet::Event(name, payload)) => Some(Heard::Event { name, payload }),
                    Ok(Packet::Open(_) | Packet::Other) => None,
                    Err(problem) => Some(Heard::Unreadable(problem)),
                };
                if let Some(what) = heard_now {
                    match deliver(&heard, what, &mut say, &mut sink).await {
                        Ok(()) => {}
                        Err(Undelivered::ConnectorGone) => return,
                        Err(Undelivered::ConnectorLeft) => return leave(&mut sink).await,
                        Err(Undelivered::SendFailed) => break "the websocket failed while sending".to_owned(),
                    }
                }
            }
            _ = pinger.tick() => {
                if awaiting_pong.is_none() {
                    awaiting_pong = Some(tokio::time::Instant::now());
                }
                if sink.send(Frame::text("2")).await.is_err() {
                    break "the websocket failed while pinging".to_owned();
                }
            }
            _ = async { tokio::time::sleep_until(pong_deadline.unwrap_or_else(tokio::time::Instant::now)).await }, if pong_deadline.is_some() => {
                break format!("no pong within {} ms", pong_within.as_millis());
            }
            said = say.recv() => {
                let Some(array) = said else {
                    return leave(&mut sink).await;
                };
                if sink.send(event_frame(&array)).await.is_err() {
                    break "the websocket failed while sending".to_owned();
                }
            }
        }
    };
    let _ = heard.send(Heard::Closed(why)).await;
}

/// Why a packet did not reach the connector.
#[derive(Debug, PartialEq)]
enum Undelivered {
    /// The connector stopped listening.
    ConnectorGone,
    /// The connector let go of the link (its half of `say` is gone) while the packet waited.
    ConnectorLeft,
    /// Saying what the connector said failed: the websocket is broken.
    SendFailed,
}

/// Hands one packet to the connector. While the connector has no room for it, what the
/// connector says still goes out: the connector may itself be waiting for room to say
/// something (it answers each `*Updated` with a resync), and if each side waited for the other
/// both would stop for good.
async fn deliver<W>(
    heard: &mpsc::Sender<Heard>,
    what: Heard,
    say: &mut mpsc::Receiver<String>,
    sink: &mut W,
) -> Result<(), Undelivered>
where
    W: futures::Sink<Frame> + Unpin,
{
    loop {
        tokio::select! {
            permit = heard.reserve() => {
                permit.map_err(|_| Undelivered::ConnectorGone)?.send(what);
                return Ok(());
            }
            said = say.recv() => {
                let array = said.ok_or(Undelivered::ConnectorLeft)?;
                sink.send(event_frame(&array)).await.map_err(|_| Undelivered::SendFailed)?;
            }
        }
    }
}

/// The frame that sends one event (`[name, argument]`) to the root namespace.
fn event_frame(array: &str) -> Frame {
    Frame::text(format!("42{array}"))
}

/// Leaves the server politely: the namespace, then the engine.io session.
async fn leave<W: futures::Sink<Frame> + Unpin>(sink: &mut W) {
    let _ = sink.send(Frame::text("41")).await;
    let _ = sink.send(Frame::text("1")).await;
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seed_initial_message_is_the_open_packet() {
        let open = r#"0{"sid":"WF-eNmG0VbGkSn1wbD3n","upgrades":[],"pingInterval":60000,"pingTimeout":180000}"#;
        assert_eq!(
            decode(open).unwrap(),
            Packet::Open(Open {
                sid: "WF-eNmG0VbGkSn1wbD3n".into(),
                upgrades: vec![],
                ping_interval: 60000,
                ping_timeout: 180000
            })
        );
    }

    #[test]
    fn packets_decode_as_engine_io_3_frames_them() {
        assert_eq!(decode("40").unwrap(), Packet::Connected);
        assert_eq!(decode("3").unwrap(), Packet::Pong);
        assert_eq!(decode("41").unwrap(), Packet::Disconnected);
        assert_eq!(decode("1").unwrap(), Packet::Close);
        assert_eq!(
            decode(r#"42["keepaliveResponse",{"errorCode":0}]"#).unwrap(),
            Packet::Event("keepaliveResponse".into(), json!({"errorCode": 0}))
        );
        assert_eq!(
            decode(r#"4212["ExtensionsUpdated"]"#).unwrap(),
            Packet::Event("ExtensionsUpdated".into(), Value::Null)
        );
        assert_eq!(decode(r#"44{"message":"Invalid token"}"#).unwrap(), Packet::Refused("Invalid token".into()));
        assert_eq!(decode(r#"44"Invalid token""#).unwrap(), Packet::Refused("Invalid token".into()));
        assert!(decode("42{}").is_err());
        assert!(decode("42[1]").is_err());
        assert!(decode("9").is_err());
        assert!(decode("0{").is_err());
    }

    #[tokio::test]
    async fn what_the_connector_says_goes_out_while_it_has_no_room_for_what_is_heard() {
        let (heard_tx, mut heard) = mpsc::channel(1);
        heard_tx.send(Heard::Joined).await.unwrap();
        let (say, said) = mpsc::channel(4);
        say.send(r#"["resync",{"cache":false}]"#.to_owned()).await.unwrap();
        let (sink, mut sent) = futures::channel::mpsc::unbounded::<Frame>();
        let updated = Heard::Event { name: "ExtensionsUpdated".into(), payload: Value::Null };
        let delivery = tokio::spawn(async move {
            let (mut said, mut sink) = (said, sink);
            deliver(&heard_tx, updated, &mut said, &mut sink).await
        });
        // The connector's resync goes out although what was heard still waits for room.
        let frame = tokio::time::timeout(Duration::from_secs(5), sent.next()).await.unwrap();
        assert_eq!(frame, Some(Frame::text(r#"42["resync",{"cache":false}]"#)));
        assert!(!delivery.is_finished());
        // Once the connector takes what was waiting, the packet is handed over.
        assert!(matches!(heard.recv().await, Some(Heard::Joined)));
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), delivery).await.unwrap().unwrap(), Ok(()));
        assert!(matches!(heard.recv().await, Some(Heard::Event { name, .. }) if name == "ExtensionsUpdated"));
        drop(say);
    }

    #[tokio::test]
    async fn a_connector_that_lets_go_while_a_packet_waits_ends_the_delivery() {
        let (heard_tx, _heard) = mpsc::channel(1);
        heard_tx.send(Heard::Joined).await.unwrap();
        let (say, mut said) = mpsc::channel::<String>(1);
        drop(say);
        let (mut sink, _sent) = futures::channel::mpsc::unbounded::<Frame>();
        let delivery = deliver(&heard_tx, Heard::Joined, &mut said, &mut sink);
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), delivery).await.unwrap(),
            Err(Undelivered::ConnectorLeft)
        );
    }

    #[test]
    fn monitor_urls_become_engine_io_urls_with_the_token_encoded() {
        assert_eq!(
            socket_url("https://monitor5.voicenter.co.il", "a+b/c", 3).unwrap(),
            "wss://monitor5.voicenter.co.il/socket.io/?EIO=3&transport=websocket&token=a%2Bb%2Fc"
        );
        assert_eq!(
            socket_url("http://127.0.0.1:4000/", "t", 4).unwrap(),
            "ws://127.0.0.1:4000/socket.io/?EIO=4&transport=websocket&token=t"
        );
        assert!(socket_url("ftp://x", "t", 3).is_err());
        assert!(socket_url("https:///path", "t", 3).is_err());
    }

    #[test]
    fn a_monitor_url_with_a_path_still_connects_at_socket_io() {
        assert_eq!(
            socket_url("https://host/some/path", "t", 3).unwrap(),
            "wss://host/socket.io/?EIO=3&transport=websocket&token=t"
        );
        assert_eq!(
            socket_url("http://127.0.0.1:4000/ns/?x=1", "t", 3).unwrap(),
            "ws://127.0.0.1:4000/socket.io/?EIO=3&transport=websocket&token=t"
        );
    }

    #[test]
    fn packets_of_another_namespace_are_not_ours() {
        assert_eq!(decode("41/admin,").unwrap(), Packet::Other, "leaving /admin does not close the link");
        assert_eq!(decode("41/admin").unwrap(), Packet::Other);
        assert_eq!(decode(r#"42/admin,["x",{}]"#).unwrap(), Packet::Other, "not a main-namespace event");
        assert_eq!(decode(r#"42/admin,7["x",{}]"#).unwrap(), Packet::Other);
        assert_eq!(decode("40/admin,").unwrap(), Packet::Other);
        assert_eq!(decode(r#"44/admin,{"message":"Invalid namespace"}"#).unwrap(), Packet::Other);
        // `/` named explicitly is still the main namespace.
        assert_eq!(decode(r#"42/,["x",{}]"#).unwrap(), Packet::Event("x".into(), json!({})));
        assert_eq!(decode("41/,").unwrap(), Packet::Disconnected);
    }
}
