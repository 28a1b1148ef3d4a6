//! One socket.io connection to one Voicenter monitor server, over either transport: the
//! Engine.IO 3 client written for Voicenter's servers, or `rust_socketio` for servers that
//! speak Engine.IO 4. The connector sees only this.

use futures::FutureExt;
use serde_json::Value;
use tokio::sync::mpsc;

/// What a link hears, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// Joined to `/`: events follow.
    Joined,
    Event {
        name: String,
        payload: Value,
    },
    /// A packet that could not be decoded; the link goes on.
    Unreadable(String),
    /// The link is over, and why (never with the token in it).
    Closed(String),
}

/// Which Engine.IO the servers speak: Voicenter's speak 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Eio3,
    Eio4,
}

/// Events heard and not yet taken: a connector that falls this far behind holds the server back.
const HEARD_BOUND: usize = 1024;
/// Events to send not yet sent.
const SAY_BOUND: usize = 64;

enum Say {
    Eio3(mpsc::Sender<String>),
    Eio4(rust_socketio::asynchronous::Client),
}

/// An open link.
pub struct Link {
    heard: mpsc::Receiver<Heard>,
    say: Say,
    closed: bool,
}

impl Link {
    /// Connects to `server` (`https://monitorN…`) with the login token in the query, as the
    /// Voicenter SDKs do.
    pub async fn open(protocol: Protocol, server: &str, token: &str) -> Result<Link, String> {
        let (heard_tx, heard) = mpsc::channel(HEARD_BOUND);
        match protocol {
            Protocol::Eio3 => {
                let (say_tx, say_rx) = mpsc::channel(SAY_BOUND);
                super::eio3::connect(server, token, heard_tx, say_rx).await?;
                Ok(Link { heard, say: Say::Eio3(say_tx), closed: false })
            }
            Protocol::Eio4 => {
                let client = open_eio4(server, token, heard_tx).await?;
                Ok(Link { heard, say: Say::Eio4(client), closed: false })
            }
        }
    }

    /// A link to nowhere, for tests of what is built on links.
    #[doc(hidden)]
    pub fn detached() -> Link {
        let (_, heard) = mpsc::channel(1);
        let (say, _) = mpsc::channel(1);
        Link { heard, say: Say::Eio3(say), closed: false }
    }

    /// The next thing heard; `Closed` once the link is over (and ever after).
    pub async fn next(&mut self) -> Heard {
        self.heard.recv().await.unwrap_or_else(|| Heard::Closed("the link stopped".into()))
    }

    /// Sends an event with one argument (none when `payload` is null).
    pub async fn emit(&self, name: &str, payload: Value) -> Result<(), String> {
        let arguments = if payload.is_null() { vec![Value::from(name)] } else { vec![Value::from(name), payload] };
        match &self.say {
            Say::Eio3(say) => {
                say.send(Value::Array(arguments).to_string()).await.map_err(|_| "the link is closed".to_owned())
            }
            Say::Eio4(client) => {
                let payload = rust_socketio::Payload::Text(arguments.into_iter().skip(1).collect());
                client.emit(name, payload).await.map_err(|error| format!("could not send {name}: {error}"))
            }
        }
    }

    /// Leaves the server politely.
    pub async fn close(mut self) {
        if let Say::Eio4(client) = &self.say {
            let _ = client.disconnect().await;
        }
        // The Engine.IO 3 task leaves when its sender is dropped, with the link.
        self.closed = true;
    }
}

impl Drop for Link {
    /// A link let go without `close` still leaves: rust_socketio's task holds its own client,
    /// which would otherwise stay connected.
    fn drop(&mut self) {
        if let (Say::Eio4(client), false) = (&self.say, self.closed) {
            let client = client.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = client.disconnect().await;
                });
            }
        }
    }
}

async fn open_eio4(
    server: &str,
    token: &str,
    heard: mpsc::Sender<Heard>,
) -> Result<rust_socketio::asynchronous::Client, String> {
    use rust_socketio::asynchronous::ClientBuilder;
    use rust_socketio::{Event, Payload, TransportType};
    let server = server.trim().trim_end_matches('/');
    let address = format!("{server}/?token={}", crate::connectors::rest::encode(token));
    let on_event = heard.clone();
    let on_connect = heard.clone();
    let on_close = heard.clone();
    let on_error = heard;
    let connecting = ClientBuilder::new(address)
        .transport_type(TransportType::Websocket)
        .reconnect(false)
        .reconnect_on_disconnect(false)
        .on_any(move |event, payload, _| {
            let heard = on_event.clone();
            async move {
                let Event::Custom(name) = event else { return };
                let payload = match payload {
                    Payload::Text(mut values) if !values.is_empty() => values.swap_remove(0),
                    Payload::Text(_) => Value::Null,
                    _ => {
                        let _ = heard.send(Heard::Unreadable(format!("{name}: a binary payload"))).await;
                        return;
                    }
                };
                let _ = heard.send(Heard::Event { name, payload }).await;
            }
            .boxed()
        })
        .on(Event::Connect, move |_, _| {
            let heard = on_connect.clone();
            async move {
                let _ = heard.send(Heard::Joined).await;
            }
            .boxed()
        })
        .on(Event::Close, move |_, _| {
            let heard = on_close.clone();
            async move {
                let _ = heard.send(Heard::Closed("the server closed the socket".into())).await;
            }
            .boxed()
        })
        .on(Event::Error, move |payload, _| {
            let heard = on_error.clone();
            async move {
                let words = match payload {
                    Payload::Text(values) => values.first().and_then(Value::as_str).unwrap_or("an error").to_owned(),
                    _ => "an error".to_owned(),
                };
                let _ = heard
                    .send(Heard::Unreadable(format!("socket.io: {}", words.chars().take(160).collect::<String>())))
                    .await;
            }
            .boxed()
        })
        .connect();
    tokio::time::timeout(std::time::Duration::from_secs(10), connecting)
        .await
        .map_err(|_| "the socket did not open in time".to_owned())?
        // rust_socketio's errors may carry the URL, and the URL the token: name the kind only.
        .map_err(|error| format!("the socket did not open: {}", eio4_error(&error)))
}

fn eio4_error(error: &rust_socketio::Error) -> String {
    let text = error.to_string();
    match text.find("token=") {
        Some(at) => format!("{}(token withheld)", &text[..at]),
        None => text,
    }
}
