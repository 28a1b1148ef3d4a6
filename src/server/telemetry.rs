//! Logging setup: human-readable by default, JSON lines for log collectors.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber; `RUST_LOG` refines the default `info` level.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let result = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
    if let Err(error) = result {
        eprintln!("logging was already set up: {error}");
    }
}
