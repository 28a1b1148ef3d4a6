//! `callboard bench`: measures the hub and the websocket fan-out and prints the figures.
//!
//! A real server (router, hub, SQLite journal) runs in this process over loopback; its
//! websocket clients run in a child process (`--hold-clients`), as browsers would be apart from
//! it. Both still share the machine's cores, as they would not in production, so the figures
//! are a floor. A bare tokio-tungstenite broadcast server runs in this process under the same
//! clients, as the ceiling the hub's fan-out is compared with.

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
    /// each has its first frame, then answer `count` and `probes` on stdin until it closes
    /// (see `ClientProcess`). Clients run this way, in a child process, so the server's memory
    /// and the server's runtime are its own.
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

/// CPU time this process has used (all its threads, user and system), for the server's cost
/// per delivered frame.
#[cfg(unix)]
fn cpu_time() -> Duration {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into `usage`, which outlives the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

#[cfg(not(unix))]
fn cpu_time() -> Duration {
    Duration::ZERO
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
    let mut text = String::new();
    for _ in 0..10 {
        let started = Instant::now();
        let (extensions, calls, queues) = state.views_all();
        let frame = Frame::Snapshot {
            seq: 1,
            snapshot: Snapshot { extensions, calls, queues, connectors: vec![], server_time: now, epoch: 1 },
        };
        text = serde_json::to_string(&frame).unwrap_or_default();
        times.push(started.elapsed());
    }
    times.sort();
    // What a browser does with it first (natively here; wasm is slower by a steady factor).
    let mut reads = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let read = serde_json::from_str::<Frame>(&text).map(|frame| frame.seq());
        reads.push(started.elapsed());
        if let Err(error) = read {
            println!("snapshot does not read back: {error}");
            return;
        }
    }
    reads.sort();
    println!(
        "snapshot ({} extensions, {} queues): median {:.1} ms, max {:.1} ms, {} KB; read back (as a browser does): median {:.1} ms",
        args.extensions,
        args.queues,
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 1.0).as_secs_f64() * 1e3,
        text.len() / 1024,
        percentile(&reads, 0.5).as_secs_f64() * 1e3,
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

/// Nanoseconds on the machine's monotonic clock, which this process and the client process
/// read alike, so a send noted here and an arrival noted there can be subtracted.
#[cfg(unix)]
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the time into `now`, which outlives the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[cfg(not(unix))]
fn monotonic_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64)
}

/// Where probe clients note when each delta (by `seq`) arrived, in `monotonic_ns`.
type Probe = Arc<std::sync::Mutex<Vec<(u64, u64)>>>;

/// Receives frames on one client; probes also note when each delta arrived.
async fn client(
    url: String,
    frames: Arc<AtomicU64>,
    snapshots: Arc<AtomicU64>,
    probe: Option<Probe>,
    stop: CancellationToken,
    connected: Arc<tokio::sync::Semaphore>,
) {
    // tungstenite zeroes its whole read buffer before every read: 128 KiB by default, which
    // made the clients' memset a tenth of the machine's time. A browser has no such cost.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 * 1024);
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async_with_config(&url, Some(config), false).await else {
        return;
    };
    connected.add_permits(1);
    // Made once: a fresh `cancelled()` per frame was a tenth of the clients' own work.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
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
                            seen.push((seq, monotonic_ns()));
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
            () = &mut stopped => break,
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

/// The child side of `ClientProcess`: connects, says `ready` once every client has its first
/// frame, then answers each line on stdin (`count`: frames and snapshots received so far;
/// `probes`: the probes' arrivals since the last `probes`, then `end`) until stdin closes.
async fn hold_clients(url: &str, count: usize) -> Result<(), BenchError> {
    use std::io::{BufRead, Write};
    let probe: Probe = Arc::default();
    let clients = connect_clients(url, count, Some(&probe)).await?;
    while clients.snapshots.load(Ordering::Relaxed) < count as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let say = |text: &str| {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
    };
    say("ready\n");
    let (commands, mut received) = tokio::sync::mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if commands.blocking_send(line).is_err() {
                break;
            }
        }
    });
    while let Some(command) = received.recv().await {
        match command.trim() {
            "count" => say(&format!(
                "{} {}\n",
                clients.frames.load(Ordering::Relaxed),
                clients.snapshots.load(Ordering::Relaxed)
            )),
            "probes" => {
                let seen = probe.lock().map(|mut seen| std::mem::take(&mut *seen)).unwrap_or_default();
                let mut text = String::with_capacity(seen.len() * 24 + 4);
                for (seq, at) in seen {
                    text.push_str(&format!("{seq} {at}\n"));
                }
                text.push_str("end\n");
                say(&text);
            }
            _ => say("?\n"),
        }
    }
    clients.stop.cancel();
    Ok(())
}

/// Websocket clients in a child process (this binary with `--hold-clients`): the server's
/// runtime schedules only the server, and the server's memory is its own.
struct ClientProcess {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: tokio::sync::mpsc::Receiver<String>,
}

impl ClientProcess {
    /// Starts `clients` clients on `url` and waits until each has its first frame.
    async fn start(url: &str, clients: usize) -> Result<Self, BenchError> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["bench", "--clients", &clients.to_string(), "--hold-clients", url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err("the client process has no stdin or stdout".into());
        };
        let (sender, lines) = tokio::sync::mpsc::channel(1024);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Self { child, stdin, lines };
        match process.line(Duration::from_secs(120)).await {
            Ok(line) if line == "ready" => Ok(process),
            Ok(line) => Err(format!("the client process said {line:?} instead of ready").into()),
            Err(error) => Err(error),
        }
    }

    /// The next line the clients say, within `wait`.
    async fn line(&mut self, wait: Duration) -> Result<String, BenchError> {
        match tokio::time::timeout(wait, self.lines.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err("the client process ended".into()),
            Err(_) => Err("the client process did not answer".into()),
        }
    }

    fn ask(&mut self, command: &str) -> Result<(), BenchError> {
        use std::io::Write;
        self.stdin.write_all(format!("{command}\n").as_bytes())?;
        Ok(self.stdin.flush()?)
    }

    /// Delta frames and snapshots the clients have received so far.
    async fn count(&mut self) -> Result<(u64, u64), BenchError> {
        self.ask("count")?;
        let line = self.line(Duration::from_secs(10)).await?;
        let mut numbers = line.split_whitespace().map(str::parse::<u64>);
        match (numbers.next(), numbers.next()) {
            (Some(Ok(frames)), Some(Ok(snapshots))) => Ok((frames, snapshots)),
            _ => Err(format!("the client process said {line:?} instead of a count").into()),
        }
    }

    /// The probes' arrivals since the last call: `(seq, monotonic_ns)`.
    async fn probes(&mut self) -> Result<Vec<(u64, u64)>, BenchError> {
        self.ask("probes")?;
        let mut seen = Vec::new();
        loop {
            let line = self.line(Duration::from_secs(10)).await?;
            if line == "end" {
                return Ok(seen);
            }
            let mut numbers = line.split_whitespace().map(str::parse::<u64>);
            if let (Some(Ok(seq)), Some(Ok(at))) = (numbers.next(), numbers.next()) {
                seen.push((seq, at));
            }
        }
    }

    /// Closes the clients and waits for the process to end.
    async fn finish(self) {
        let Self { mut child, stdin, .. } = self;
        drop(stdin);
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
    }
}

/// The server's share of a run: the cores it kept busy, its CPU time per delivered frame, and
/// the frames per second one core of its own would deliver at that cost. The clients share the
/// machine here; in production they are browsers elsewhere, and this is what the server needs.
fn cpu_per_frame(cpu: Duration, elapsed: Duration, frames: u64) -> String {
    let per_frame = cpu.as_secs_f64() / frames.max(1) as f64;
    format!(
        "{:.2} cores busy, {:.1} µs per delivered frame ({:.0} frames/s per core of its own)",
        cpu.as_secs_f64() / elapsed.as_secs_f64(),
        per_frame * 1e6,
        if per_frame > 0.0 { 1.0 / per_frame } else { 0.0 }
    )
}

/// Bytes and count of the deltas the hub published, for the average frame a run sent.
#[derive(Default)]
struct FrameSizes {
    bytes: usize,
    frames: usize,
}

impl FrameSizes {
    /// Counts every frame waiting in `published` (those it fell too far behind to keep are
    /// skipped: the average only needs a sample).
    fn take(&mut self, published: &mut tokio::sync::broadcast::Receiver<crate::hub::Published>) {
        use tokio::sync::broadcast::error::TryRecvError;
        loop {
            match published.try_recv() {
                Ok(frame) => {
                    self.bytes += frame.text.len();
                    self.frames += 1;
                }
                Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    fn average(&self) -> usize {
        self.bytes.checked_div(self.frames).unwrap_or(0)
    }
}

/// What the hub's fan-out achieved, to set beside the ceiling.
struct FanOut {
    frame_bytes: usize,
    frames_per_second: f64,
}

/// Memory per client, latency at a steady rate and saturation throughput, through the real
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

    // Memory: what the idle connections cost once each has had its snapshot.
    let (heap_before, rss_before) = (heap_bytes(), rss_bytes());
    let mut clients = ClientProcess::start(&url, args.clients).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (heap_after, rss_after) = (heap_bytes(), rss_bytes());
    let per_client = |before: u64, after: u64| after.saturating_sub(before) as f64 / args.clients as f64 / 1024.0;
    println!(
        "memory per connected client: {:.1} KB of heap, {:.1} KB resident, on the server (idle after the snapshot; clients in another process)",
        per_client(heap_before, heap_after),
        per_client(rss_before, rss_after)
    );

    // Steady rate: when was each event sent, which delta carried it, when did it arrive.
    let sends: Arc<Mutex<Vec<(u64, u64, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let total = args.rate * args.seconds;
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / args.rate.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    clients.probes().await?;
    let mut sizes_rx = hub.subscribe(None).await?.frames;
    let (frames_before, snapshots_before) = clients.count().await?;
    let (started, cpu_before) = (Instant::now(), cpu_time());
    let mut acks = Vec::with_capacity(total as usize);
    for _ in 0..total {
        ticker.tick().await;
        let event = traffic.event(now_ms());
        let hub = hub.clone();
        let sends = sends.clone();
        acks.push(tokio::spawn(async move {
            let sent = monotonic_ns();
            if let Ok(Accepted::Applied(seq)) = hub.submit(event).await {
                sends.lock().await.push((seq, sent, monotonic_ns()));
            }
        }));
    }
    for ack in acks {
        let _ = ack.await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (elapsed, cpu) = (started.elapsed(), cpu_time() - cpu_before);
    let (frames_after, snapshots_after) = clients.count().await?;
    let mut steady_sizes = FrameSizes::default();
    steady_sizes.take(&mut sizes_rx);
    drop(sizes_rx);
    let sends = std::mem::take(&mut *sends.lock().await);
    let mut first_sent = std::collections::HashMap::new();
    for &(seq, sent, _) in &sends {
        first_sent.entry(seq).and_modify(|t: &mut u64| *t = (*t).min(sent)).or_insert(sent);
    }
    let probes = clients.probes().await?;
    let mut latencies: Vec<Duration> = probes
        .iter()
        .filter_map(|(seq, received)| {
            first_sent.get(seq).map(|sent| Duration::from_nanos(received.saturating_sub(*sent)))
        })
        .collect();
    latencies.sort();
    println!(
        "event to websocket frame at {} events/s, {} clients: p50 {:.1} ms, p99 {:.1} ms ({} samples, {:.0} deltas/s per client, {} B average frame, {} snapshots for slow clients)",
        args.rate,
        args.clients,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.len(),
        (frames_after - frames_before) as f64 / elapsed.as_secs_f64() / args.clients as f64,
        steady_sizes.average(),
        snapshots_after - snapshots_before
    );
    // Where that time goes: in the hub (taken, applied, journaled, published), and in the
    // fan-out (a delta's first probe to its last).
    let mut in_hub: Vec<Duration> =
        sends.iter().map(|&(_, sent, acked)| Duration::from_nanos(acked.saturating_sub(sent))).collect();
    in_hub.sort();
    let mut arrivals: std::collections::HashMap<u64, (u64, u64)> = std::collections::HashMap::new();
    for &(seq, at) in probes.iter().filter(|(seq, _)| first_sent.contains_key(seq)) {
        arrivals
            .entry(seq)
            .and_modify(|(first, last)| (*first, *last) = ((*first).min(at), (*last).max(at)))
            .or_insert((at, at));
    }
    let mut spreads: Vec<Duration> =
        arrivals.values().map(|(first, last)| Duration::from_nanos(last - first)).collect();
    spreads.sort();
    println!(
        "  of which event to published (hub): p50 {:.1} ms, p99 {:.1} ms; first to last probe of a delta (fan-out): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&in_hub, 0.5).as_secs_f64() * 1e3,
        percentile(&in_hub, 0.99).as_secs_f64() * 1e3,
        percentile(&spreads, 0.5).as_secs_f64() * 1e3,
        percentile(&spreads, 0.99).as_secs_f64() * 1e3,
    );
    println!("  server CPU: {}", cpu_per_frame(cpu, elapsed, frames_after - frames_before));

    // Saturation: events as fast as the hub takes them; count frames delivered.
    let (frames_before, snapshots_before) = clients.count().await?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (started, cpu_before) = (Instant::now(), cpu_time());
    let mut sizes = FrameSizes::default();
    let mut sizes_rx = hub.subscribe(None).await?.frames;
    while Instant::now() < deadline {
        for _ in 0..64 {
            hub.feed(traffic.event(now_ms())).await?;
        }
        sizes.take(&mut sizes_rx);
        tokio::task::yield_now().await;
    }
    let (frames_after, snapshots_after) = clients.count().await?;
    let (elapsed, cpu) = (started.elapsed(), cpu_time() - cpu_before);
    // With no delta seen (a stalled hub), the ceiling still runs, with 1 KiB frames.
    let frame_bytes = if sizes.frames == 0 { 1024 } else { sizes.average() };
    let rate = (frames_after - frames_before) as f64 / elapsed.as_secs_f64();
    println!(
        "hub fan-out at saturation: {:.0} delta frames/s delivered to {} clients ({} B average frame, {} snapshots for slow clients)",
        rate,
        args.clients,
        frame_bytes,
        snapshots_after - snapshots_before
    );
    println!("  server CPU: {}", cpu_per_frame(cpu, elapsed, frames_after - frames_before));
    clients.finish().await;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(FanOut { frame_bytes, frames_per_second: rate })
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
    let mut clients = ClientProcess::start(&url, args.clients).await?;
    let payload: axum::extract::ws::Utf8Bytes =
        format!("{{\"type\":\"delta\",\"seq\":1,\"changes\":\"{}\"}}", "x".repeat(frame_bytes.saturating_sub(40)))
            .into();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let (before, _) = clients.count().await?;
    let (started, cpu_before) = (Instant::now(), cpu_time());
    // Publish at the pace the slowest reader allows, as the hub's delta stream would.
    while Instant::now() < deadline {
        let _ = sender.send(payload.clone());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (after, _) = clients.count().await?;
    let (elapsed, cpu) = (started.elapsed(), cpu_time() - cpu_before);
    let rate = (after - before) as f64 / elapsed.as_secs_f64();
    clients.finish().await;
    println!(
        "bare tokio-tungstenite broadcast ceiling: {:.0} frames/s ({} B frames); hub reaches {:.0}% of it",
        rate,
        frame_bytes,
        if rate > 0.0 { 100.0 * hub.frames_per_second / rate } else { 0.0 }
    );
    println!("  server CPU: {}", cpu_per_frame(cpu, elapsed, after - before));
    stop.cancel();
    Ok(())
}
