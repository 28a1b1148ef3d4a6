//! The command line.

use clap::Parser;
use std::path::PathBuf;

/// Callboard: a live wallboard and agent desk for call centers on hosted PBXs.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// TOML configuration file; without one Callboard runs its demo call center.
    #[arg(long, env = "CALLBOARD_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log JSON lines instead of human-readable text.
    #[arg(long, env = "CALLBOARD_LOG_JSON")]
    pub log_json: bool,
    /// What to run; without one, serve Callboard.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Callboard's subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the web app (the default).
    Serve,
    /// Measure the hub and the websocket fan-out over loopback and print the figures.
    Bench(crate::bench::BenchArgs),
    /// Run the simulated call center on its own and print what it served and produced.
    Sim(crate::sim::cli::SimArgs),
    /// Print the webhook URLs to enter at each provider that calls Callboard (secrets included:
    /// this is for the admin's eyes, never for a log).
    Hooks,
}
