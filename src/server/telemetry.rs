//! Logging setup: human-readable by default, JSON lines for log collectors.
//!
//! Some libraries log what they were given to connect with: tungstenite writes the whole
//! handshake request at trace level, and a Voicenter monitor URL carries the socket token in
//! its query (`?token=`). tracing-subscriber passes the `log` crate's records through, so
//! `RUST_LOG=trace` alone would put the token in the log. Those libraries are therefore held
//! at `info` by a filter of its own that `RUST_LOG` cannot loosen (a cap added to the same
//! `EnvFilter` would lose to a more specific `RUST_LOG` directive such as
//! `tungstenite::handshake=trace`, or to a span directive; this one is a separate layer, and a
//! record it refuses is refused for every layer).

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{self, FilterFn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

/// Crates whose debug and trace output can repeat a URL, header or query with a secret in it:
/// the websocket clients (tungstenite through tokio-tungstenite and rust_socketio's engine.io)
/// and the socket.io server the simulator's Voicenter face runs on.
const CAPPED: [&str; 6] =
    ["tungstenite", "tokio_tungstenite", "rust_socketio", "rust_engineio", "socketioxide", "engineioxide"];

/// Installs the global subscriber; `RUST_LOG` refines the default `info` level, except that the
/// crates in [`CAPPED`] never log below `info`.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let builder = fmt().with_env_filter(filter).with_target(true);
    let result = if json {
        builder.json().flatten_event(true).finish().with(secret_safe()).try_init()
    } else {
        builder.finish().with(secret_safe()).try_init()
    };
    if let Err(error) = result {
        eprintln!("logging was already set up: {error}");
    }
}

/// The filter that holds the [`CAPPED`] crates at `info`, whatever else is enabled.
pub fn secret_safe() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter::filter_fn(within_cap as fn(&Metadata<'_>) -> bool)
}

/// False for a record below `info` from one of the [`CAPPED`] crates (by target: the crate, or
/// one of its modules; a `log` record's target is its module path).
fn within_cap(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    let capped = CAPPED
        .iter()
        .any(|name| target.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")));
    !capped || *metadata.level() <= Level::INFO
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Collects what the formatter writes.
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl Write for Written {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_handshake_traced_by_tungstenite_stays_out_whatever_rust_log_says() {
        let written = Written::default();
        let writer = written.clone();
        // What RUST_LOG=trace,tungstenite=trace would give.
        let filter = EnvFilter::new("trace,tungstenite=trace,tokio_tungstenite=trace");
        let subscriber = fmt()
            .with_env_filter(filter)
            .with_target(true)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
            .with(secret_safe());
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "tungstenite::handshake::client", "Request: GET /socket.io/?token=sekrit-one");
            tracing::debug!(target: "tokio_tungstenite", "connecting with token=sekrit-two");
            tracing::info!(target: "tungstenite::protocol", "an info line still shows");
            tracing::trace!(target: "tungstenite_lookalike", "another crate's trace still shows");
            tracing::trace!(target: "callboard::connectors", "our own trace still shows");
        });
        let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("sekrit"), "{text}");
        assert!(text.contains("an info line still shows"), "{text}");
        assert!(text.contains("another crate's trace still shows"), "{text}");
        assert!(text.contains("our own trace still shows"), "{text}");
    }
}
