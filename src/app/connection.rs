//! The browser's link to `/ws`: connects, reconnects with backoff, and says how it is doing.

use leptos::prelude::*;

/// How the live link is doing, as the badge's `data-connection` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// The snapshot arrived and deltas are flowing.
    Connected,
    /// The link dropped (or never came up) and we are retrying.
    Reconnecting,
    /// Not connected and not trying yet: server-rendered, or the browser reports no network.
    Offline,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Reconnecting => "reconnecting",
            Self::Offline => "offline",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Connected => "Live",
            Self::Reconnecting => "Reconnecting…",
            Self::Offline => "Offline",
        }
    }
}

/// Shared with every component that wants to know whether what it shows is live.
#[derive(Clone, Copy)]
pub struct Connection {
    pub status: RwSignal<ConnectionStatus>,
}

/// Creates the connection context and, in the browser, starts the link once hydrated.
pub fn provide_connection() {
    let connection = Connection { status: RwSignal::new(ConnectionStatus::Offline) };
    provide_context(connection);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(browser::run(connection));
    });
}

/// A small pill in the top bar; tests read its `data-connection`.
#[component]
pub fn ConnectionBadge() -> impl IntoView {
    let status = expect_context::<Connection>().status;
    let class = move || {
        let colour = match status.get() {
            ConnectionStatus::Connected => "bg-emerald-500/15 text-emerald-300 ring-emerald-500/40",
            ConnectionStatus::Reconnecting => "bg-amber-500/15 text-amber-300 ring-amber-500/40",
            ConnectionStatus::Offline => "bg-rose-500/15 text-rose-300 ring-rose-500/40",
        };
        format!("inline-flex items-center gap-1.5 rounded-full px-2.5 py-0.5 text-xs font-medium ring-1 {colour}")
    };
    view! {
        <span data-connection=move || status.get().as_str() class=class role="status" aria-live="polite">
            <span class="h-2 w-2 rounded-full bg-current"></span>
            {move || status.get().label()}
        </span>
    }
}

/// Backoff before reconnect attempt `attempt` (1-based): doubling from 250 ms to 10 s, with
/// jitter so a restarted server is not hit by every wall screen at the same instant.
pub fn backoff_ms(attempt: u32, jitter: f64) -> u32 {
    let base = 250u32.saturating_mul(1 << attempt.saturating_sub(1).min(6)).min(10_000);
    let jitter = jitter.clamp(0.0, 1.0);
    (f64::from(base) * (0.5 + jitter / 2.0)) as u32
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::{backoff_ms, Connection, ConnectionStatus};
    use futures::StreamExt;
    use gloo_net::websocket::{futures::WebSocket, Message};
    use leptos::prelude::*;

    fn ws_url() -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" { "wss" } else { "ws" };
        Some(format!("{scheme}://{}/ws", location.host().ok()?))
    }

    fn browser_online() -> bool {
        web_sys::window().map(|window| window.navigator().on_line()).unwrap_or(true)
    }

    /// Runs for the life of the page: one websocket at a time, retried forever.
    pub async fn run(connection: Connection) {
        let mut attempt = 0u32;
        loop {
            if let Some(url) = ws_url() {
                if let Ok(socket) = WebSocket::open(&url) {
                    let (_write, mut read) = socket.split();
                    while let Some(message) = read.next().await {
                        match message {
                            Ok(Message::Text(_frame)) => {
                                if connection.status.get_untracked() != ConnectionStatus::Connected {
                                    connection.status.set(ConnectionStatus::Connected);
                                }
                                attempt = 0;
                            }
                            Ok(Message::Bytes(_)) => {}
                            Err(_) => break,
                        }
                    }
                }
            }
            connection.status.set(if browser_online() {
                ConnectionStatus::Reconnecting
            } else {
                ConnectionStatus::Offline
            });
            attempt += 1;
            gloo_timers::future::TimeoutFuture::new(backoff_ms(attempt, js_sys::Math::random())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1, 1.0), 250);
        assert_eq!(backoff_ms(2, 1.0), 500);
        assert_eq!(backoff_ms(3, 1.0), 1000);
        assert_eq!(backoff_ms(50, 1.0), 10_000);
        assert_eq!(backoff_ms(1, 0.0), 125);
        assert!(backoff_ms(u32::MAX, 0.5) <= 10_000);
    }
}
