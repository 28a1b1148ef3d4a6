//! `callboard sim`: runs the simulated call center on its own, for manual testing and load
//! runs, and prints what it serves and what the day produced next to what a hub made of it.

use super::faults::{FaultRates, Faults};
use super::harness::{hub_snapshot, DirectRun};
use super::scenario::Scenario;
use crate::model::QueueSettings;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Options of `callboard sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Scenario TOML file; without one, the demo call center (40 agents, 4 queues).
    #[arg(long, value_name = "PATH")]
    pub scenario: Option<PathBuf>,
    /// Seed of every random choice (overrides the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Simulated minutes to run.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Simulated seconds per real second; 0 runs as fast as the machine can.
    #[arg(long, default_value_t = 0.0)]
    pub time_scale: f64,
    /// Message faults between the simulation and the hub, as name=rate,... (the direct face
    /// applies duplicate and reorder; a drop cannot be recovered without a provider to resync from).
    #[arg(long, default_value = "", value_name = "FAULTS")]
    pub faults: String,
    /// Print every ground-truth event as a JSON line.
    #[arg(long)]
    pub events: bool,
    /// Serve a provider face instead of feeding an in-process hub, as KIND=ADDRESS (e.g.
    /// noojee=127.0.0.1:8101); the simulation then runs in real time (or --time-scale) for a
    /// Callboard (or anything else) to connect to. Faces: noojee, voipnow (its UnifiedAPI at
    /// ADDRESS; a Callboard that registers its Call Events there gets the callbacks), voicenter
    /// (its login API and one monitor server at ADDRESS).
    #[arg(long = "face", value_name = "KIND=ADDRESS")]
    pub faces: Vec<String>,
    /// The API key the faces expect.
    #[arg(long, default_value = "callboard-sim-key")]
    pub api_key: String,
}

/// Runs the simulation and prints its figures beside the hub's; fails when they disagree.
pub async fn run(args: SimArgs) -> Result<(), String> {
    let mut scenario = match &args.scenario {
        Some(path) => Scenario::load(path).map_err(|error| error.to_string())?,
        None => Scenario::demo(),
    };
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    scenario.validate().map_err(|error| error.to_string())?;
    let valid_minutes = args.minutes.is_finite() && args.minutes > 0.0;
    let valid_scale = args.time_scale.is_finite() && args.time_scale >= 0.0;
    if !(valid_minutes && valid_scale) {
        return Err("--minutes must be positive and --time-scale 0 or more".into());
    }
    // A paced run (a time scale, or faces, which run in real time without one) must fit a
    // timer: said now rather than found out mid-run.
    if args.time_scale > 0.0 || !args.faces.is_empty() {
        real_time(args.minutes, if args.time_scale > 0.0 { args.time_scale } else { 1.0 })?;
    }
    let rates = FaultRates::parse(&args.faults)?;
    if rates.drop > 0.0 && args.faces.is_empty() {
        return Err("the direct face cannot recover a dropped event; use duplicate and reorder".into());
    }
    if !args.faces.is_empty() {
        return serve_faces(&args, scenario, rates).await;
    }
    let name = args.scenario.as_ref().map_or("demo".to_owned(), |path| path.display().to_string());
    println!(
        "callboard sim: scenario {name} ({} agents, {} queues), seed {}, {} simulated minutes at {}",
        scenario.agents,
        scenario.queues.len(),
        scenario.seed,
        args.minutes,
        if args.time_scale == 0.0 { "full speed".to_owned() } else { format!("time scale {}", args.time_scale) },
    );
    println!("serving: the direct face, into an in-process hub (provider faces arrive with their connectors)");

    let db = std::env::temp_dir().join(format!("callboard-sim-{}.db", std::process::id()));
    let faults = Faults::new(scenario.seed ^ 0xFA17, rates);
    let result = simulate(&args, scenario, &db, faults).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    result
}

async fn simulate(
    args: &SimArgs,
    scenario: Scenario,
    db: &std::path::Path,
    faults: std::sync::Arc<Faults>,
) -> Result<(), String> {
    let started = Instant::now();
    let mut run = DirectRun::start(scenario, db, faults.clone()).await.map_err(|error| error.to_string())?;
    let total_ms = (args.minutes * 60_000.0) as i64;
    let step_ms = 60_000.min(total_ms);
    let (mut simulated, mut events) = (0, 0usize);
    while simulated < total_ms {
        let step = step_ms.min(total_ms - simulated);
        run.pbx.advance_to(run.pbx.now() + step);
        let batch = run.pbx.take_events();
        events += batch.len();
        if args.events {
            for event in &batch {
                println!("{}", serde_json::to_string(event).unwrap_or_default());
            }
        }
        run.carry_events(batch).await;
        simulated += step;
        if args.time_scale > 0.0 {
            let due = Duration::try_from_secs_f64(simulated as f64 / 1000.0 / args.time_scale).unwrap_or(Duration::MAX);
            tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
        }
        let waiting: u32 = run.pbx.tallies().iter().map(|(_, _, tally)| tally.waiting).sum();
        println!(
            "  t+{:02}:{:02}  events {events:>6}  live calls {:>3}  waiting {waiting:>3}",
            simulated / 60_000,
            simulated / 1000 % 60,
            run.pbx.live_calls()
        );
    }
    let snapshot = hub_snapshot(&run.hub).await?;
    let elapsed = started.elapsed();
    println!(
        "\n{events} events in {:.1} s real ({:.0} events/s)\n",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let settings = QueueSettings::default();
    println!(
        "{:<10} {:>7} {:>8} {:>9} {:>5} {:>7} {:>6}   | hub: {:>7} {:>8} {:>9} {:>6}",
        "queue",
        "offered",
        "answered",
        "abandoned",
        "short",
        "waiting",
        "SL %",
        "offered",
        "answered",
        "abandoned",
        "SL %"
    );
    let percent = |value: Option<f64>| value.map_or("-".to_owned(), |value| format!("{value:.1}"));
    for (id, name, tally) in run.pbx.tallies() {
        let hub = snapshot.queues.iter().find(|queue| queue.id == id).map(|queue| queue.figures.clone());
        let hub = hub.unwrap_or_default();
        println!(
            "{:<10} {:>7} {:>8} {:>9} {:>5} {:>7} {:>6}   |      {:>7} {:>8} {:>9} {:>6}",
            name,
            tally.offered,
            tally.answered(),
            tally.abandoned(),
            tally.abandoned_short(&settings),
            tally.waiting,
            percent(tally.service_level_pct(&settings)),
            hub.offered,
            hub.answered,
            hub.abandoned,
            percent(hub.service_level_pct),
        );
    }
    let counts = faults.counts();
    if !counts.is_empty() {
        let list: Vec<String> = counts.iter().map(|(name, count)| format!("{name} {count}")).collect();
        println!("\nfaults injected: {}", list.join(", "));
    }
    match run.check().await {
        Ok(()) => {
            println!("\nthe hub's state and history equal the ground truth");
            Ok(())
        }
        Err(diff) => Err(format!("the hub disagrees with the ground truth:\n{diff}")),
    }
}

/// Serves the chosen provider faces from a real-time simulation until the simulated time is up
/// (or Ctrl-C), then prints the scenario's figures.
async fn serve_faces(args: &SimArgs, scenario: Scenario, rates: FaultRates) -> Result<(), String> {
    use super::faces::noojee::{NoojeeFace, BASE_PATH};
    use super::faces::voipnow::{extended, VoipNowFace};
    use super::runner;
    use crate::clock::Clock;
    let time_scale = if args.time_scale > 0.0 { args.time_scale } else { 1.0 };
    let real = real_time(args.minutes, time_scale)?;
    let start = crate::hub::now_ms();
    let pbx = super::Pbx::new(scenario.clone(), "sim", "callcenter", start);
    let numbers = pbx.extension_numbers();
    let extensions = numbers.join(",");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (events, mut receiver) = tokio::sync::mpsc::channel::<Vec<crate::model::Event>>(256);
    let (sim, task) = runner::spawn(pbx, Clock::new(start, time_scale), events, shutdown.clone());
    let faults = Faults::new(scenario.seed ^ 0xFA17, rates);
    type Absorb = Box<dyn Fn(&[crate::model::Event]) + Send + Sync>;
    let mut absorbers: Vec<Absorb> = Vec::new();
    println!(
        "callboard sim: {} agents, {} queues, seed {}, {} simulated minutes at time scale {time_scale}",
        scenario.agents,
        scenario.queues.len(),
        scenario.seed,
        args.minutes
    );
    for face in &args.faces {
        let (kind, address) = face.split_once('=').ok_or_else(|| format!("--face {face:?} is not KIND=ADDRESS"))?;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| format!("cannot listen on {address}: {error}"))?;
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        let router = match kind {
            "noojee" => {
                let face = NoojeeFace::new(&args.api_key, ("sim", "callcenter"), faults.clone(), Some(sim.clone()));
                let absorbing = face.clone();
                absorbers.push(Box::new(move |batch| absorbing.absorb(batch)));
                println!(
                    "serving: Noojee CallManagementAPI at http://{address}{BASE_PATH} (apiKey {:?})",
                    args.api_key
                );
                println!("         extensions {extensions}");
                face.router()
            }
            "voipnow" => {
                let oauth = ("callboard-sim", args.api_key.as_str());
                let face =
                    VoipNowFace::new(oauth, &args.api_key, ("sim", "callcenter"), faults.clone(), Some(sim.clone()));
                let absorbing = face.clone();
                absorbers.push(Box::new(move |batch| absorbing.absorb(batch)));
                let extended: Vec<String> = numbers.iter().map(|n| format!("{:?}", extended(n))).collect();
                println!(
                    "serving: VoipNow UnifiedAPI at http://{address} (Call Events go where extensions register them)"
                );
                println!(
                    "         uapi_url = \"http://{address}\", client_id = \"callboard-sim\", client_secret and refresh_token {:?}",
                    args.api_key
                );
                println!("         extensions = [{}]", extended.join(", "));
                face.router()
            }
            "voicenter" => {
                use super::faces::voicenter::{VoicenterFace, VoicenterSetup};
                let setup = VoicenterSetup {
                    ping_interval: std::time::Duration::from_secs(60),
                    ping_timeout: std::time::Duration::from_secs(180),
                    token_lifetime: std::time::Duration::from_secs(3600),
                    account_username: "callboard-sim".into(),
                    account_password: args.api_key.clone(),
                    account_token: args.api_key.clone(),
                    user_pin: args.api_key.clone(),
                };
                let face = VoicenterFace::new(setup, ("sim", "callcenter"), 1, faults.clone());
                face.set_urls(vec![format!("http://{address}")]);
                let absorbing = face.clone();
                absorbers.push(Box::new(move |batch| absorbing.absorb(batch)));
                println!("serving: Voicenter login API at http://{address}/monitorAPI and its monitor server (Engine.IO 3 and 4) at http://{address}/socket.io/");
                println!("         login_url = \"http://{address}/monitorAPI\", token {:?}", args.api_key);
                face.login_router().merge(face.monitor_router(0))
            }
            other => return Err(format!("no face for {other:?} yet (faces: noojee, voipnow, voicenter)")),
        };
        let stop = shutdown.clone();
        tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await });
    }
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            for absorb in &absorbers {
                absorb(&batch);
            }
        }
    });
    tokio::select! {
        _ = tokio::time::sleep(real) => {}
        _ = tokio::signal::ctrl_c() => println!("interrupted"),
    }
    let tallies = sim.tallies().await.map_err(|error| error.to_string())?;
    shutdown.cancel();
    let _ = task.await;
    let settings = QueueSettings::default();
    for (_, name, tally) in tallies {
        println!(
            "{name:<10} offered {:>5}  answered {:>5}  abandoned {:>4}  SL {}",
            tally.offered,
            tally.answered(),
            tally.abandoned(),
            tally.service_level_pct(&settings).map_or("-".into(), |value| format!("{value:.1}%"))
        );
    }
    let counts = faults.counts();
    if !counts.is_empty() {
        println!("faults injected: {counts:?}");
    }
    Ok(())
}

/// The real time `minutes` simulated minutes take at `time_scale`, or why no timer can wait that
/// long (a huge `--minutes` or a tiny `--time-scale`), instead of a panic.
fn real_time(minutes: f64, time_scale: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(minutes * 60.0 / time_scale).map_err(|_| {
        format!(
            "--minutes {minutes} at --time-scale {time_scale} is longer than this machine can wait; \
             run fewer minutes or a larger time scale"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_longer_than_a_timer_can_hold_is_an_error() {
        assert_eq!(real_time(10.0, 60.0), Ok(Duration::from_secs(10)));
        for (minutes, time_scale) in [(1e300, 1.0), (10.0, 1e-300), (f64::MAX, f64::MIN_POSITIVE)] {
            let error = real_time(minutes, time_scale).unwrap_err();
            assert!(error.contains("--minutes") && error.contains("longer than"), "{error}");
        }
    }
}
