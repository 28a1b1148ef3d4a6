//! `callboard bench`: measures the hub and the websocket fan-out and prints the figures.
//!
//! Everything runs in this process over loopback: a real server (router, hub, SQLite journal)
//! and real websocket clients. Clients and server share the machine's cores, as they would not
//! in production, so the figures are a floor. A bare tokio-tungstenite broadcast server runs in
//! the same process under the same load, as the ceiling the hub's fan-out is compared with.

use crate::hub::{now_ms, Accepted, Hub, HubSettings};
use crate::model::*;
use crate::server::{config::Config, router::router, AppState};
use crate::store::Store;
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Options of `callboard bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Websocket clients connected during the latency and saturation runs.
    #[arg(long, default_value_t = 2000)]
    pub clients: usize,
    /// Events per second during the latency run.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Length of the latency and saturation runs, seconds.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Extensions in the simulated call center.
    #[arg(long, default_value_t = 1000)]
    pub extensions: u32,
    /// Queues in the simulated call center.
    #[arg(long, default_value_t = 50)]
    pub queues: u32,
    /// Internal: connect `--clients` websocket clients to this URL, say `ready` on stdout once
    /// each has its first frame, and hold them until stdin closes. The memory figure runs its
    /// clients this way, in a child process, so only the server's memory is counted.
    #[arg(long, hide = true)]
    pub hold_clients: Option<String>,
}

type BenchError = Box<dyn std::error::Error + Send + Sync>;

const PROVIDER: &str = "bench";
/// A morning's traffic: 2,000 calls through the queues and a few hundred still in progress.
const MORNING_EVENTS: usize = 6 * 2000 + 3 * 300;

/// A busy call center's event stream: call `n` rings, is answered and ends at an extension,
/// through a queue, with agent status changes mixed in.
struct Traffic {
    extensions: u32,
    queues: u32,
    next: u64,
}

impl Traffic {
    fn event(&mut self, at: Timestamp) -> Event {
        let n = self.next;
        self.next += 1;
        let call_number = n / 6;
        let call = CallId::new(PROVIDER, "a", &format!("c{call_number}"));
        let extension =
            ExtensionId::new(PROVIDER, "a", &format!("{}", 1000 + call_number % u64::from(self.extensions)));
        let queue = QueueId::new(PROVIDER, "a", &format!("q{}", call_number % u64::from(self.queues)));
        let leg = |state: LegState| {
            EventKind::Leg(LegReport {
                leg: LegId::new(PROVIDER, "a", &format!("l{call_number}")),
                call: call.clone(),
                extension: Some(extension.clone()),
                state,
                held_by: None,
                direction: Direction::Inbound,
                origin: Origin::Normal,
                local: Party::default(),
                remote: Party { number: Some(format!("+6140{call_number:07}")), ..Party::default() },
                queue: Some(queue.clone()),
                end_cause: state.is_ended().then_some(EndCause::Normal),
                raw_cause: None,
                raw_state: format!("{state:?}"),
                recording: None,
                revision: 0,
            })
        };
        let kind = match n % 6 {
            0 => EventKind::QueueJoined { queue: queue.clone(), call: call.clone(), caller: Party::default() },
            1 => leg(LegState::Ringing),
            2 => leg(LegState::Active),
            3 => EventKind::QueueLeft { queue: queue.clone(), call: call.clone(), outcome: QueueOutcome::Answered },
            4 => leg(LegState::Ended),
            _ => EventKind::AgentStatus {
                extension: extension.clone(),
                status: if call_number.is_multiple_of(2) {
                    AgentStatus::Available
                } else {
                    AgentStatus::Break(BreakReason::Admin)
                },
                raw_status: None,
            },
        };
        Event { received_at: at, ..Event::new(PROVIDER, "a", at + n as i64, kind) }
    }

    /// The call center's shape: every extension named, every queue with its members.
    fn setup(&self, at: Timestamp) -> Vec<Event> {
        let event = |kind| Event::new(PROVIDER, "a", at, kind);
        let mut events: Vec<Event> = (0..self.extensions)
            .map(|i| {
                event(EventKind::Extension(ExtensionReport {
                    extension: ExtensionId::new(PROVIDER, "a", &format!("{}", 1000 + i)),
                    name: Some(format!("Agent {i}")),
                    sip_user: None,
                    online_user: None,
                }))
            })
            .collect();
        let per_queue = (self.extensions / self.queues).max(1);
        events.extend((0..self.queues).map(|q| {
            let members = (0..per_queue)
                .map(|i| ExtensionId::new(PROVIDER, "a", &format!("{}", 1000 + (q * per_queue + i) % self.extensions)))
                .collect();
            event(EventKind::Queue {
                queue: QueueId::new(PROVIDER, "a", &format!("q{q}")),
                name: format!("Queue {q}"),
                members,
            })
        }));
        events
    }
}

/// Resident memory of this process, from /proc.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find(|line| line.starts_with("VmRSS:")).and_then(|line| {
                line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).map(|kb| kb * 1024)
            })
        })
        .unwrap_or(0)
}

/// Bytes the allocator has handed out and not had back (glibc's heap and its mmapped blocks).
/// Unlike resident memory, this does not hide new allocations in pages an earlier phase freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_bytes() -> u64 {
    // SAFETY: mallinfo2 only reads the allocator's counters; it has no preconditions.
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks + info.hblkhd) as u64
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_bytes() -> u64 {
    rss_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Runs every measurement and prints one line per figure.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    if let Some(url) = &args.hold_clients {
        return hold_clients(url, args.clients).await;
    }
    println!("callboard bench: {} extensions, {} queues, {} clients", args.extensions, args.queues, args.clients);
    apply_rate(&args);
    snapshot_time(&args);
    let dir = tempfile_dir()?;
    hub_rate(&args, &dir).await?;
    let hub = fan_out(&args, &dir).await?;
    ceiling(&args, hub).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A scratch folder for the bench's SQLite files, removed at the end.
fn tempfile_dir() -> Result<std::path::PathBuf, BenchError> {
    let dir = std::env::temp_dir().join(format!("callboard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A call center with its extensions and queues set up, and the traffic that continues it.
fn set_up(args: &BenchArgs, now: Timestamp) -> (LiveState, Traffic) {
    let traffic = Traffic { extensions: args.extensions, queues: args.queues, next: 0 };
    let mut state = LiveState::default();
    for event in traffic.setup(now) {
        state.apply(&event);
    }
    (state, traffic)
}

/// The pure transition function alone.
fn apply_rate(args: &BenchArgs) {
    let now = now_ms();
    let (mut state, mut traffic) = set_up(args, now);
    let events: Vec<Event> = (0..60_000).map(|_| traffic.event(now)).collect();
    let started = Instant::now();
    for event in &events {
        state.apply(event);
    }
    let elapsed = started.elapsed();
    println!("apply (pure transition function): {:.0} events/s", events.len() as f64 / elapsed.as_secs_f64());
}

/// Building and serializing a snapshot of the whole call center.
fn snapshot_time(args: &BenchArgs) {
    let now = now_ms();
    let (mut state, mut traffic) = set_up(args, now);
    for _ in 0..MORNING_EVENTS {
        state.apply(&traffic.event(now));
    }
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..10 {
        let started = Instant::now();
        let (extensions, calls, queues) = state.views_all();
        let frame = Frame::Snapshot {
            seq: 1,
            snapshot: Snapshot { extensions, calls, queues, connectors: vec![], server_time: now, epoch: 1 },
        };
        bytes = serde_json::to_string(&frame).map(|text| text.len()).unwrap_or(0);
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "snapshot ({} extensions, {} queues): median {:.1} ms, max {:.1} ms, {} KB",
        args.extensions,
        args.queues,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 1.0).as_secs_f64() * 1e3,
        bytes / 1024
    );
}

async fn start_hub(dir: &std::path::Path, name: &str) -> Result<(Hub, Store, CancellationToken), BenchError> {
    let store = Store::open(&dir.join(name)).await?;
    let shutdown = CancellationToken::new();
    let hub = Hub::start(store.clone(), HubSettings::default(), shutdown.clone()).await?;
    Ok((hub, store, shutdown))
}

/// The hub with its journal: events in, journaled and published.
async fn hub_rate(args: &BenchArgs, dir: &std::path::Path) -> Result<(), BenchError> {
    let (hub, _store, shutdown) = start_hub(dir, "rate.db").await?;
    let mut traffic = Traffic { extensions: args.extensions, queues: args.queues, next: 0 };
    let now = now_ms();
    for event in traffic.setup(now) {
        hub.feed(event).await?;
    }
    let count = 60_000;
    let started = Instant::now();
    for _ in 0..count {
        hub.feed(traffic.event(now)).await?;
    }
    // The hub works in order: once this one is journaled, all before it are.
    hub.submit(traffic.event(now)).await?;
    let elapsed = started.elapsed();
    println!("hub apply + journal + publish: {:.0} events/s", count as f64 / elapsed.as_secs_f64());
    shutdown.cancel();
    Ok(())
}

/// Where a delta frame's `seq` is, without parsing the whole frame.
fn frame_seq(text: &str) -> Option<u64> {
    let start = text.find("\"seq\":")? + 6;
    let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Where probe clients note when each delta (by `seq`) arrived.
type Probe = Arc<std::sync::Mutex<Vec<(u64, Instant)>>>;

/// Receives frames on one client; probes also note when each delta arrived.
async fn client(
    url: String,
    frames: Arc<AtomicU64>,
    snapshots: Arc<AtomicU64>,
    probe: Option<Probe>,
    stop: CancellationToken,
    connected: Arc<tokio::sync::Semaphore>,
) {
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(&url).await else { return };
    connected.add_permits(1);
    loop {
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if text.starts_with("{\"type\":\"snapshot\"") {
                        snapshots.fetch_add(1, Ordering::Relaxed);
                    } else {
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                    if let (Some(probe), Some(seq)) = (&probe, frame_seq(&text)) {
                        if let Ok(mut seen) = probe.lock() {
                            seen.push((seq, Instant::now()));
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
            () = stop.cancelled() => break,
        }
    }
    let _ = socket.close(None).await;
}

/// Websocket clients counting what they receive, until `stop`.
struct Clients {
    frames: Arc<AtomicU64>,
    snapshots: Arc<AtomicU64>,
    stop: CancellationToken,
}

/// Connects `count` clients to `url` (every 20th a latency probe when `probe` is given) and
/// waits until all are connected.
async fn connect_clients(url: &str, count: usize, probe: Option<&Probe>) -> Result<Clients, BenchError> {
    let clients = Clients { frames: Arc::default(), snapshots: Arc::default(), stop: CancellationToken::new() };
    let connected = Arc::new(tokio::sync::Semaphore::new(0));
    for i in 0..count {
        let probe = probe.filter(|_| i % 20 == 0).cloned();
        tokio::spawn(client(
            url.to_owned(),
            clients.frames.clone(),
            clients.snapshots.clone(),
            probe,
            clients.stop.clone(),
            connected.clone(),
        ));
        // Connect in waves so the listener's accept backlog is not overrun.
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    tokio::time::timeout(Duration::from_secs(60), connected.acquire_many(u32::try_from(count)?)).await??.forget();
    Ok(clients)
}

/// What the hub's fan-out achieved, to set beside the ceiling.
struct FanOut {
    frame_bytes: usize,
    frames_per_second: f64,
}

/// Latency at a steady rate, saturation throughput and memory per client, through the real
/// router and websocket endpoint.
async fn fan_out(args: &BenchArgs, dir: &std::path::Path) -> Result<FanOut, BenchError> {
    let (hub, store, shutdown) = start_hub(dir, "fanout.db").await?;
    let mut traffic = Traffic { extensions: args.extensions, queues: args.queues, next: 0 };
    let now = now_ms();
    for event in traffic.setup(now) {
        hub.feed(event).await?;
    }
    // The same morning as the snapshot figure: clients connect to a busy call center.
    for _ in 0..MORNING_EVENTS {
        hub.feed(traffic.event(now)).await?;
    }
    let state = AppState {
        leptos_options: leptos::config::LeptosOptions::builder().output_name("callboard").build(),
        hub: hub.clone(),
        store,
        connectors: Arc::default(),
        config: Arc::new(Config::default()),
        shutdown: shutdown.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/ws", listener.local_addr()?);
    let app = router(state);
    let server_stop = shutdown.clone();
    tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(server_stop.cancelled_owned()).await });

    server_memory(&url, args.clients).await?;

    let probe: Probe = Arc::default();
    let Clients { frames, snapshots, stop } = connect_clients(&url, args.clients, Some(&probe)).await?;
    while snapshots.load(Ordering::Relaxed) < args.clients as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Steady rate: when was each event sent, which delta carried it, when did it arrive.
    let sends: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let total = args.rate * args.seconds;
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / args.rate.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let frames_before = frames.load(Ordering::Relaxed);
    let snapshots_before = snapshots.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut acks = Vec::with_capacity(total as usize);
    for _ in 0..total {
        ticker.tick().await;
        let event = traffic.event(now_ms());
        let hub = hub.clone();
        let sends = sends.clone();
        acks.push(tokio::spawn(async move {
            let sent = Instant::now();
            if let Ok(Accepted::Applied(seq)) = hub.submit(event).await {
                sends.lock().await.push((seq, sent));
            }
        }));
    }
    for ack in acks {
        let _ = ack.await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let elapsed = started.elapsed();
    let delivered = frames.load(Ordering::Relaxed) - frames_before;
    let mut first_sent = std::collections::HashMap::new();
    for (seq, sent) in sends.lock().await.iter() {
        first_sent.entry(*seq).and_modify(|t: &mut Instant| *t = (*t).min(*sent)).or_insert(*sent);
    }
    let seen = probe.lock().map(|seen| seen.clone()).unwrap_or_default();
    let mut latencies: Vec<Duration> = seen
        .iter()
        .filter_map(|(seq, received)| first_sent.get(seq).map(|sent| received.saturating_duration_since(*sent)))
        .collect();
    latencies.sort();
    println!(
        "event to websocket frame at {} events/s, {} clients: p50 {:.1} ms, p99 {:.1} ms ({} samples, {} deltas/s per client, {} snapshots for slow clients)",
        args.rate,
        args.clients,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len(),
        delivered as f64 / elapsed.as_secs_f64() / args.clients as f64,
        snapshots.load(Ordering::Relaxed) - snapshots_before
    );

    // Saturation: events as fast as the hub takes them; count frames delivered.
    let frames_before = frames.load(Ordering::Relaxed);
    let snapshots_before = snapshots.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut sizes = (0usize, 0usize);
    let mut sizes_rx = hub.subscribe(None).await?.frames;
    while Instant::now() < deadline {
        for _ in 0..64 {
            hub.feed(traffic.event(now_ms())).await?;
        }
        while let Ok(published) = sizes_rx.try_recv() {
            sizes = (sizes.0 + published.text.len(), sizes.1 + 1);
        }
        tokio::task::yield_now().await;
    }
    let elapsed = started.elapsed();
    let delivered = frames.load(Ordering::Relaxed) - frames_before;
    let frame_bytes = sizes.0.checked_div(sizes.1).unwrap_or(1024);
    let rate = delivered as f64 / elapsed.as_secs_f64();
    println!(
        "hub fan-out at saturation: {:.0} delta frames/s delivered to {} clients ({} B average frame, {} snapshots for slow clients)",
        rate,
        args.clients,
        frame_bytes,
        snapshots.load(Ordering::Relaxed) - snapshots_before
    );
    stop.cancel();
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(FanOut { frame_bytes, frames_per_second: rate })
}

/// What each idle connection costs the server: clients in a child process connect and take
/// their snapshot, and this process's resident memory is read before and after.
async fn server_memory(url: &str, clients: usize) -> Result<(), BenchError> {
    use std::io::BufRead;
    let (heap_before, rss_before) = (heap_bytes(), rss_bytes());
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["bench", "--clients", &clients.to_string(), "--hold-clients", url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("the client process has no stdout")?;
    // The child's line arrives while this runtime keeps serving its connections.
    let ready = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let ready = tokio::time::timeout(Duration::from_secs(120), ready).await;
    let ready = match ready {
        Ok(Ok(Ok(line))) => line,
        _ => {
            let _ = child.kill();
            return Err("the client process did not get ready".into());
        }
    };
    if ready.trim() != "ready" {
        let _ = child.kill();
        return Err(format!("the client process said {ready:?} instead of ready").into());
    }
    // Let the sessions settle after their snapshots.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (heap_after, rss_after) = (heap_bytes(), rss_bytes());
    drop(child.stdin.take());
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    let per_client = |before: u64, after: u64| after.saturating_sub(before) as f64 / clients as f64 / 1024.0;
    println!(
        "memory per connected client: {:.1} KB of heap, {:.1} KB resident, on the server (idle after the snapshot; clients in another process)",
        per_client(heap_before, heap_after),
        per_client(rss_before, rss_after)
    );
    Ok(())
}

/// The child side of `server_memory`: connects, says `ready` once every client has its first
/// frame, and holds the connections (reading whatever comes) until stdin closes.
async fn hold_clients(url: &str, count: usize) -> Result<(), BenchError> {
    let clients = connect_clients(url, count, None).await?;
    while clients.snapshots.load(Ordering::Relaxed) < count as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("ready");
    let _ = tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink())).await;
    clients.stop.cancel();
    Ok(())
}

/// The same fan-out with nothing but a tokio broadcast and tokio-tungstenite: the ceiling.
async fn ceiling(args: &BenchArgs, hub: FanOut) -> Result<(), BenchError> {
    let frame_bytes = hub.frame_bytes;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/", listener.local_addr()?);
    let (sender, _) = tokio::sync::broadcast::channel::<axum::extract::ws::Utf8Bytes>(crate::hub::BROADCAST_CAPACITY);
    let stop = CancellationToken::new();
    let accept_sender = sender.clone();
    let accept_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = accept_stop.cancelled() => break,
            };
            let Ok((stream, _)) = accepted else { continue };
            let mut receiver = accept_sender.subscribe();
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else { return };
                let _ = socket.send(Message::text("{\"type\":\"snapshot\"}")).await;
                loop {
                    match receiver.recv().await {
                        Ok(text) => {
                            if socket.send(Message::text(text.as_str())).await.is_err() {
                                break;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    }
                }
            });
        }
    });
    let clients = connect_clients(&url, args.clients, None).await?;
    let frames = clients.frames.clone();
    let payload: axum::extract::ws::Utf8Bytes =
        format!("{{\"type\":\"delta\",\"seq\":1,\"changes\":\"{}\"}}", "x".repeat(frame_bytes.saturating_sub(40)))
            .into();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let before = frames.load(Ordering::Relaxed);
    let started = Instant::now();
    // Publish at the pace the slowest reader allows, as the hub's delta stream would.
    while Instant::now() < deadline {
        let _ = sender.send(payload.clone());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = (frames.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    clients.stop.cancel();
    println!(
        "bare tokio-tungstenite broadcast ceiling: {:.0} frames/s ({} B frames); hub reaches {:.0}% of it",
        rate,
        frame_bytes,
        if rate > 0.0 { 100.0 * hub.frames_per_second / rate } else { 0.0 }
    );
    stop.cancel();
    Ok(())
}
