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
}
