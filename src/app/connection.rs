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

/// Creates the connection context and, in the browser, starts the link that feeds `store`.
pub fn provide_connection(store: super::live::LiveStore) {
    let connection = Connection { status: RwSignal::new(ConnectionStatus::Offline) };
    provide_context(connection);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(browser::run(connection, store));
        #[cfg(not(feature = "hydrate"))]
        let _ = store;
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

/// How often the browser asks whether the link is alive. A socket a NAT or a dead server
/// dropped silently reports nothing, and a wall screen never hides to trigger a resume: a ping
/// unanswered by the next one ends the link, so the badge and the board never show a frozen
/// state as live for more than two intervals. (A hidden tab's timers are slowed by the
/// browser; this only stretches the interval, it never ends a link that answers.)
pub const PING_INTERVAL_MS: u32 = 20_000;

/// The shortest time between two renders of live changes. Every render of the board costs the
/// main thread about the same (style, layout, paint and layerizing 200 tiles) however little
/// changed, and at 100 events/s frames arrive about 40 times a second; a tenth of a second is
/// quicker than anyone watching a wall screen or a screen pop can tell.
pub const RENDER_INTERVAL_MS: f64 = 100.0;

/// How long frames that arrive at `now` wait before they are shown, given when the page last
/// showed frames: nothing on a quiet link, up to `RENDER_INTERVAL_MS` on a busy one.
pub fn render_delay_ms(last_render: f64, now: f64) -> f64 {
    (last_render + RENDER_INTERVAL_MS - now).max(0.0)
}

#[cfg(feature = "hydrate")]
mod browser {
    use super::{backoff_ms, render_delay_ms, Connection, ConnectionStatus, PING_INTERVAL_MS};
    use crate::app::live::LiveStore;
    use crate::model::Frame;
    use futures::channel::mpsc;
    use futures::future::{select, Either};
    use futures::StreamExt;
    use gloo_net::websocket::{futures::WebSocket, Message};
    use leptos::prelude::*;
    use wasm_bindgen::{closure::Closure, JsCast};

    /// Why a websocket session ended.
    enum Ended {
        /// The link dropped, went quiet, or sent what this page cannot read (a server of
        /// another version): back off, then reconnect. Never at once: a failure that repeats
        /// must not become a reconnect loop against the server.
        Dropped,
        /// We chose to reconnect at once and resume (a gap, or the tab became visible).
        Resume,
        /// The server sent a frame this page cannot read (a server of another version): back
        /// off as for a drop, longer each time, however many good frames came in between.
        Unreadable,
    }

    fn ws_url(resume: &str) -> Option<String> {
        let location = web_sys::window()?.location();
        let scheme = if location.protocol().ok()? == "https:" { "wss" } else { "ws" };
        Some(format!("{scheme}://{}/ws{resume}", location.host().ok()?))
    }

    fn browser_online() -> bool {
        web_sys::window().map(|window| window.navigator().on_line()).unwrap_or(true)
    }

    /// Wakes the link when a hidden tab becomes visible: timers were throttled while hidden,
    /// so resume rather than trust the socket. One wake is kept at most: however often the tab
    /// was shown while the link was down, one resume answers them all.
    fn watch_visibility(mut wake: mpsc::Sender<()>) {
        let Some(document) = web_sys::window().and_then(|window| window.document()) else { return };
        let watched = document.clone();
        let listener = Closure::<dyn FnMut()>::new(move || {
            if watched.visibility_state() == web_sys::VisibilityState::Visible {
                // Full means a wake is already waiting: that one will do.
                let _ = wake.try_send(());
            }
        });
        let _ = document.add_event_listener_with_callback("visibilitychange", listener.as_ref().unchecked_ref());
        // The page lives as long as the listener must.
        listener.forget();
    }

    /// Runs for the life of the page: one websocket at a time, resumed from the last `seq`.
    pub async fn run(connection: Connection, store: LiveStore) {
        let (wake, mut woken) = mpsc::channel::<()>(0);
        // Held here too, so `woken` never ends (which would read as a wake on every poll) even
        // on a page that gives the listener no document to watch.
        watch_visibility(wake.clone());
        let mut attempt = 0u32;
        // Unreadable frames this page has met: a snapshot read between two of them does not
        // make the next retry quick, or a bad delta would cost a snapshot every 250 ms.
        let mut unreadable = 0u32;
        loop {
            let ended = match ws_url(&store.resume_query()).map(|url| WebSocket::open(&url)) {
                Some(Ok(socket)) => session(socket, &connection, &store, &mut woken, &mut attempt).await,
                _ => Ended::Dropped,
            };
            if let Ended::Unreadable = ended {
                unreadable = unreadable.saturating_add(1);
                attempt = attempt.max(unreadable);
            }
            if let Ended::Dropped | Ended::Unreadable = ended {
                connection.status.set(if browser_online() {
                    ConnectionStatus::Reconnecting
                } else {
                    ConnectionStatus::Offline
                });
                attempt += 1;
                // Someone looking at the tab again is worth an attempt now, not after the backoff.
                let backoff = gloo_timers::future::TimeoutFuture::new(backoff_ms(attempt, js_sys::Math::random()));
                let _ = select(backoff, woken.next()).await;
            }
        }
    }

    async fn session(
        socket: WebSocket,
        connection: &Connection,
        store: &LiveStore,
        woken: &mut mpsc::Receiver<()>,
        attempt: &mut u32,
    ) -> Ended {
        // Resolves once the socket is open or has failed (gloo wakes it on both). An up-to-date
        // resume gets no frame at first, so for a resume the open socket itself is the sign of
        // a live link; a fresh link is live once its snapshot has arrived.
        let mut socket = socket;
        let _ = futures::future::poll_fn(|cx| futures::Sink::poll_ready(std::pin::Pin::new(&mut socket), cx)).await;
        if !matches!(socket.state(), gloo_net::websocket::State::Open) {
            return Ended::Dropped;
        }
        if store.seq().is_some() {
            connection.status.set(ConnectionStatus::Connected);
        }
        // This socket is itself a resume: a wake from before it opened has been answered.
        while woken.try_recv().is_ok() {}
        let (mut write, mut read) = socket.split();
        // Whether the last ping is still unanswered (nothing at all heard since it went out).
        let mut ping_unanswered = false;
        let mut ping_due = gloo_timers::future::TimeoutFuture::new(PING_INTERVAL_MS);
        // Frames read but not yet shown, with the browser time each arrived; shown together
        // when `render` fires (see `render_delay_ms`).
        let mut pending: Vec<(Frame, i64)> = Vec::new();
        let mut render: Option<gloo_timers::future::TimeoutFuture> = None;
        let mut last_render = f64::NEG_INFINITY;
        loop {
            let woke = {
                let due = async {
                    match render.as_mut() {
                        Some(timer) => timer.await,
                        None => futures::future::pending().await,
                    }
                };
                match select(select(read.next(), woken.next()), select(std::pin::pin!(due), &mut ping_due)).await {
                    Either::Left((Either::Left((message, _)), _)) => Woke::Message(message),
                    Either::Left((Either::Right(_), _)) => Woke::Visible,
                    Either::Right((Either::Left(_), _)) => Woke::RenderDue,
                    Either::Right((Either::Right(_), _)) => Woke::PingDue,
                }
            };
            if matches!(woke, Woke::Message(Some(Ok(_)))) {
                ping_unanswered = false;
            }
            let show_now = match woke {
                Woke::Message(Some(Ok(Message::Text(text)))) => {
                    let now = js_sys::Date::now();
                    match serde_json::from_str::<Frame>(&text) {
                        Ok(frame) => pending.push((frame, now as i64)),
                        Err(error) => {
                            leptos::logging::warn!("unreadable frame ({error}); asking for a fresh snapshot");
                            store.forget_seq();
                            return Ended::Unreadable;
                        }
                    }
                    // Live once there is something to show: a resume's deltas, or the snapshot.
                    if connection.status.get_untracked() != ConnectionStatus::Connected {
                        connection.status.set(ConnectionStatus::Connected);
                    }
                    // Only a frame read proves the link works: a server that opens the socket
                    // and drops it at once is retried with a growing backoff.
                    *attempt = 0;
                    // With a render already due, the frame waits for it.
                    let delay = render_delay_ms(last_render, now);
                    if render.is_none() && delay > 0.0 {
                        render = Some(gloo_timers::future::TimeoutFuture::new(delay.ceil() as u32));
                    }
                    render.is_none()
                }
                Woke::RenderDue => {
                    render = None;
                    true
                }
                Woke::Message(Some(Ok(Message::Bytes(_)))) => false,
                // Frames still pending were not applied, so the resume asks for them again.
                Woke::Message(Some(Err(_)) | None) => return Ended::Dropped,
                Woke::Visible => return Ended::Resume,
                Woke::PingDue => {
                    if ping_unanswered {
                        leptos::logging::warn!(
                            "the server has not answered for {} s; reconnecting",
                            PING_INTERVAL_MS / 500
                        );
                        return Ended::Dropped;
                    }
                    if futures::SinkExt::send(&mut write, Message::Text(crate::model::PING.into())).await.is_err() {
                        return Ended::Dropped;
                    }
                    ping_unanswered = true;
                    ping_due = gloo_timers::future::TimeoutFuture::new(PING_INTERVAL_MS);
                    false
                }
            };
            if show_now {
                last_render = js_sys::Date::now();
                if let Err(gap) = show(store, &mut pending) {
                    leptos::logging::warn!("missed deltas {}..{}; resuming", gap.expected, gap.received);
                    return Ended::Resume;
                }
            }
        }
    }

    /// What the session loop woke up for.
    enum Woke {
        Message(Option<Result<Message, gloo_net::websocket::WebSocketError>>),
        Visible,
        RenderDue,
        PingDue,
    }

    /// Applies the pending frames in order, in one go, so the page renders once for all of them.
    fn show(store: &LiveStore, pending: &mut Vec<(Frame, i64)>) -> Result<(), crate::app::live::Gap> {
        for (frame, arrived) in pending.drain(..) {
            store.apply(frame, arrived)?;
        }
        Ok(())
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

    #[test]
    fn a_quiet_link_renders_at_once_and_a_busy_one_at_most_every_interval() {
        assert_eq!(render_delay_ms(f64::NEG_INFINITY, 1_000.0), 0.0);
        assert_eq!(render_delay_ms(1_000.0, 1_000.0 + RENDER_INTERVAL_MS + 1.0), 0.0);
        assert_eq!(render_delay_ms(1_000.0, 1_030.0), RENDER_INTERVAL_MS - 30.0);
        assert_eq!(render_delay_ms(1_000.0, 1_000.0), RENDER_INTERVAL_MS);
    }
}
