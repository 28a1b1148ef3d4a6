//! The `/ws` endpoint: a snapshot (or the missed deltas after `?since=`), then every delta in
//! order. A client too slow to keep up is sent a fresh snapshot instead of an ever-growing
//! backlog: the server never buffers more for it than the hub's shared broadcast ring.
//!
//! The socket is tokio-tungstenite's own rather than axum's wrapper, because only tungstenite
//! lets us send a frame at a time: a websocket keeps its largest outgoing frame's buffer for
//! life, so a megabyte snapshot sent whole would pin a megabyte to every idle browser. Sent in
//! fragments, every connection keeps a few kilobytes, however large the call center.

use super::AppState;
use crate::hub::{now_ms, Hub, Resume, Subscription};
use axum::body::{Body, Bytes};
use axum::extract::ws::Utf8Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt, Stream, StreamExt};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// Largest frame a browser may send us; it only ever sends small control messages.
const MAX_INCOMING_MESSAGE: usize = 4 * 1024;
/// Largest frame we send: bigger frames (snapshots, bursts) go out as fragments of this size,
/// which bounds the write buffer every connection keeps.
pub const FRAGMENT_BYTES: usize = 16 * 1024;

pub use crate::model::PING;
/// How long one frame may take to go out. A client that stops reading (a laptop lid shut, a
/// dead link) would otherwise hold its session, and the shutdown it waits on, for as long as
/// TCP takes to give up.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `?since=SEQ` asks to resume after the last frame the client applied; `&epoch=` names the
/// snapshot's epoch so a resume across a server restart gets a fresh snapshot instead.
#[derive(Debug, Deserialize)]
pub struct ResumeQuery {
    pub since: Option<u64>,
    pub epoch: Option<u64>,
}

/// Answers the websocket handshake (RFC 6455, section 4.2) and runs the session on the
/// upgraded connection until either side closes or we shut down.
pub async fn upgrade(
    Query(query): Query<ResumeQuery>,
    State(state): State<AppState>,
    mut request: Request,
) -> Response {
    let Some(accept) = accept_key(request.headers()) else {
        return (StatusCode::BAD_REQUEST, "expected a websocket upgrade (version 13)").into_response();
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    let resume = query.since.map(|since| Resume { since, epoch: query.epoch });
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        let config = WebSocketConfig::default()
            .read_buffer_size(MAX_INCOMING_MESSAGE)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_INCOMING_MESSAGE))
            .max_frame_size(Some(MAX_INCOMING_MESSAGE));
        let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        let (sink, stream) = socket.split();
        session(sink, stream, state.hub, resume, state.shutdown).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The `Sec-WebSocket-Accept` answer to a well-formed upgrade request; `None` for anything else.
fn accept_key(headers: &HeaderMap) -> Option<String> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
    };
    let version = headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|value| value.to_str().ok());
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") || version != Some("13") {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    Some(derive_accept_key(key.as_bytes()))
}

/// One client's session; generic over the socket halves so tests can drive it with channels.
///
/// Sending is this task's only work. The browser never sends us anything but a close, so a
/// second task waits on the read side (and on shutdown): each delta then costs one wake-up and
/// one write per client, without also polling a read side that has nothing to say.
pub async fn session<W, R, E>(mut sink: W, stream: R, hub: Hub, resume: Option<Resume>, shutdown: CancellationToken)
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin + Send + 'static,
    E: Send + 'static,
{
    let (ended, mut end) = tokio::sync::oneshot::channel();
    // One ping waiting is enough: however many came meanwhile, one pong answers them.
    let (pinged, mut pings) = tokio::sync::mpsc::channel(1);
    // A set, so the watcher is aborted when this session ends, however it ends.
    let mut watcher = tokio::task::JoinSet::new();
    watcher.spawn(watch_incoming(stream, shutdown, ended, pinged));
    let Ok(subscription) = hub.subscribe(resume).await else { return going_away(&mut sink).await };
    let Some(mut live) = start(&mut sink, subscription).await else { return };
    loop {
        tokio::select! {
            received = live.frames.recv() => match received {
                Ok(published) => {
                    if published.seq <= live.last_seq {
                        continue;
                    }
                    live.last_seq = published.seq;
                    if send_within(&mut sink, published.text).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Too slow: start over from a fresh snapshot rather than replaying a backlog.
                    let Ok(subscription) = hub.subscribe(None).await else { return };
                    let Some(restarted) = start(&mut sink, subscription).await else { return };
                    live = restarted;
                }
                // The hub stopped: the server is shutting down.
                Err(RecvError::Closed) => return going_away(&mut sink).await,
            },
            Some(()) = pings.recv() => {
                let pong = crate::model::Frame::Pong { server_time: now_ms() };
                let text = serde_json::to_string(&pong).unwrap_or_default();
                if send_within(&mut sink, text.into()).await.is_err() {
                    return;
                }
            }
            why = &mut end => match why {
                Ok(Ended::ShuttingDown) => return going_away(&mut sink).await,
                Ok(Ended::Closed) | Err(_) => return,
            },
        }
    }
}

/// Sends one text message within `SEND_TIMEOUT`; an error means the client is gone.
async fn send_within<W: Sink<Message> + Unpin>(sink: &mut W, text: Utf8Bytes) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, send_text(sink, text)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(()),
    }
}

/// Why a session's read side ended.
enum Ended {
    /// The browser closed the socket or the connection broke.
    Closed,
    /// The server is shutting down.
    ShuttingDown,
}

/// Reads what the browser sends until it closes, or until shutdown: a `ping` is passed on to
/// be answered, anything else is dropped.
async fn watch_incoming<R, E>(
    mut stream: R,
    shutdown: CancellationToken,
    ended: tokio::sync::oneshot::Sender<Ended>,
    pinged: tokio::sync::mpsc::Sender<()>,
) where
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let why = loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break Ended::Closed,
                Some(Ok(Message::Text(text))) if text.as_str() == PING => {
                    // Full means a pong is already on its way.
                    let _ = pinged.try_send(());
                }
                Some(Ok(_)) => {}
            },
            () = shutdown.cancelled() => break Ended::ShuttingDown,
        }
    };
    let _ = ended.send(why);
}

/// Sends one text message, in fragments of at most `FRAGMENT_BYTES` cut at character
/// boundaries. The hub's text is already valid UTF-8 and shared by every client, so it goes out
/// as frames over the same bytes: no copy and no second validation per client.
pub async fn send_text<W: Sink<Message> + Unpin>(sink: &mut W, text: Utf8Bytes) -> Result<(), W::Error> {
    let cuts = fragment_ends(text.as_str(), FRAGMENT_BYTES);
    // The last (usually the only) fragment takes the bytes themselves: every clone of shared
    // bytes is an atomic on one cache line that all sessions' cores contend for.
    let mut rest = Bytes::from(text);
    let mut start = 0;
    for (i, &end) in cuts.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let last = i + 1 == cuts.len();
        let payload = if last { std::mem::take(&mut rest) } else { rest.split_to(end - start) };
        sink.send(Message::Frame(Frame::message(payload, OpCode::Data(opcode), last))).await?;
        start = end;
    }
    Ok(())
}

/// Where each fragment of `text` ends: at most `limit` bytes each (more only when one
/// character is longer than the limit), never inside a character; one empty fragment for "".
fn fragment_ends(text: &str, limit: usize) -> Vec<usize> {
    let mut ends = Vec::with_capacity(text.len() / limit.max(1) + 1);
    let mut start = 0;
    loop {
        let mut end = (start + limit.max(1)).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        if end == start {
            end = text[start..].chars().next().map_or(text.len(), |c| start + c.len_utf8());
        }
        ends.push(end);
        if end >= text.len() {
            return ends;
        }
        start = end;
    }
}

/// Tells the browser we are going away, so it reconnects to the next server.
async fn going_away<W: Sink<Message> + Unpin>(sink: &mut W) {
    let close = CloseFrame { code: CloseCode::Away, reason: "server shutting down".into() };
    let _ = sink.send(Message::Close(Some(close))).await;
}

/// Sends a subscription's first frames; `None` when the client has gone.
async fn start<W: Sink<Message> + Unpin>(sink: &mut W, subscription: Subscription) -> Option<Subscription> {
    for text in &subscription.first {
        send_within(sink, text.clone()).await.ok()?;
    }
    Some(Subscription { first: Vec::new(), ..subscription })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_cover_the_text_within_the_limit_and_on_character_boundaries() {
        assert_eq!(fragment_ends("", 4), vec![0]);
        assert_eq!(fragment_ends("abcd", 4), vec![4]);
        assert_eq!(fragment_ends("abcdefghij", 4), vec![4, 8, 10]);
        // "é" is two bytes: a cut never falls inside it.
        let text = "abcé€fg";
        let ends = fragment_ends(text, 4);
        assert_eq!(ends, vec![3, 5, 9, 10]);
        assert!(ends.iter().all(|&end| text.is_char_boundary(end)));
        // A character longer than the limit still goes out whole.
        assert_eq!(fragment_ends("€", 1), vec![3]);
    }

    #[test]
    fn only_a_version_13_upgrade_is_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        headers.insert(header::UPGRADE, "websocket".parse().unwrap());
        headers.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        headers.insert(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap());
        // The example of RFC 6455, section 1.3.
        assert_eq!(accept_key(&headers).as_deref(), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        headers.insert(header::SEC_WEBSOCKET_VERSION, "8".parse().unwrap());
        assert_eq!(accept_key(&headers), None);
        headers.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        headers.remove(header::UPGRADE);
        assert_eq!(accept_key(&headers), None);
    }
}
