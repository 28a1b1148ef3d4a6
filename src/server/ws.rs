//! The `/ws` endpoint: a snapshot (or the missed deltas after `?since=`), then every delta in
//! order. A client too slow to keep up is sent a fresh snapshot instead of an ever-growing
//! backlog: the server never buffers more for it than the hub's shared broadcast ring.

use super::AppState;
use crate::hub::{Hub, Resume, Subscription};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// Largest frame a browser may send us; it only ever sends small control messages.
const MAX_INCOMING_MESSAGE: usize = 4 * 1024;

/// `?since=SEQ` asks to resume after the last frame the client applied; `&epoch=` names the
/// snapshot's epoch so a resume across a server restart gets a fresh snapshot instead.
#[derive(Debug, Deserialize)]
pub struct ResumeQuery {
    pub since: Option<u64>,
    pub epoch: Option<u64>,
}

/// Upgrades the HTTP request and runs the session until either side closes or we shut down.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    Query(query): Query<ResumeQuery>,
    State(state): State<AppState>,
) -> Response {
    ws.max_message_size(MAX_INCOMING_MESSAGE).max_frame_size(MAX_INCOMING_MESSAGE).on_upgrade(move |socket| {
        let (sink, stream) = socket.split();
        let resume = query.since.map(|since| Resume { since, epoch: query.epoch });
        session(sink, stream, state.hub, resume, state.shutdown)
    })
}

/// One client's session; generic over the socket halves so tests can drive it with channels.
pub async fn session<W, R, E>(mut sink: W, mut stream: R, hub: Hub, resume: Option<Resume>, shutdown: CancellationToken)
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
{
    let Ok(subscription) = hub.subscribe(resume).await else { return };
    let Some(mut live) = start(&mut sink, subscription).await else { return };
    loop {
        tokio::select! {
            received = live.frames.recv() => match received {
                Ok(published) => {
                    if published.seq <= live.last_seq {
                        continue;
                    }
                    live.last_seq = published.seq;
                    if sink.send(Message::Text(published.text)).await.is_err() {
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
            incoming = stream.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            () = shutdown.cancelled() => return going_away(&mut sink).await,
        }
    }
}

/// Tells the browser we are going away, so it reconnects to the next server.
async fn going_away<W: Sink<Message> + Unpin>(sink: &mut W) {
    let close = CloseFrame {
        code: axum::extract::ws::close_code::AWAY,
        reason: Utf8Bytes::from_static("server shutting down"),
    };
    let _ = sink.send(Message::Close(Some(close))).await;
}

/// Sends a subscription's first frames; `None` when the client has gone.
async fn start<W: Sink<Message> + Unpin>(sink: &mut W, subscription: Subscription) -> Option<Subscription> {
    for text in &subscription.first {
        sink.send(Message::Text(text.clone())).await.ok()?;
    }
    Some(Subscription { first: Vec::new(), ..subscription })
}
