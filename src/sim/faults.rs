//! Fault injection for the provider faces: the failures real providers show (lost and repeated
//! messages, 5xx, timeouts, sequence resets, slow answers), named, seeded and counted, so a
//! connector test can say which faults it survived.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One kind of failure a face can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// A message is never delivered.
    Drop,
    /// A request is answered 503.
    ServerError,
    /// A request is held past the client's patience, then answered 504.
    Timeout,
    /// A message is delivered twice.
    Duplicate,
    /// A message swaps places with the one before it.
    Reorder,
    /// The provider forgets its sequence numbering (Noojee after a restart).
    SequenceReset,
    /// A request is answered, but late.
    Slow,
    /// A request is answered 429 with `Retry-After: 1`, as a rate-limited API does.
    RateLimited,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Drop,
        Fault::ServerError,
        Fault::Timeout,
        Fault::Duplicate,
        Fault::Reorder,
        Fault::SequenceReset,
        Fault::Slow,
        Fault::RateLimited,
    ];

    /// The fault's name in settings and reports.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Drop => "drop",
            Fault::ServerError => "server_error",
            Fault::Timeout => "timeout",
            Fault::Duplicate => "duplicate",
            Fault::Reorder => "reorder",
            Fault::SequenceReset => "sequence_reset",
            Fault::Slow => "slow",
            Fault::RateLimited => "rate_limited",
        }
    }
}

/// How often each fault happens (a probability per message or request) and how bad it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRates {
    pub drop: f64,
    pub server_error: f64,
    pub timeout: f64,
    pub duplicate: f64,
    pub reorder: f64,
    pub sequence_reset: f64,
    pub slow: f64,
    pub rate_limited: f64,
    /// How late a slow answer is.
    pub slow_ms: u64,
    /// How long a timed-out request is held before its 504.
    pub timeout_ms: u64,
}

impl Default for FaultRates {
    fn default() -> Self {
        Self {
            drop: 0.0,
            server_error: 0.0,
            timeout: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            sequence_reset: 0.0,
            slow: 0.0,
            rate_limited: 0.0,
            slow_ms: 1500,
            timeout_ms: 40_000,
        }
    }
}

impl FaultRates {
    fn rate(&self, fault: Fault) -> f64 {
        match fault {
            Fault::Drop => self.drop,
            Fault::ServerError => self.server_error,
            Fault::Timeout => self.timeout,
            Fault::Duplicate => self.duplicate,
            Fault::Reorder => self.reorder,
            Fault::SequenceReset => self.sequence_reset,
            Fault::Slow => self.slow,
            Fault::RateLimited => self.rate_limited,
        }
    }

    /// Parses `name=rate,...` (e.g. `duplicate=0.05,reorder=0.1`), as the command line gives it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rates = FaultRates::default();
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| format!("{part:?} is not name=rate"))?;
            let value: f64 = value.trim().parse().map_err(|_| format!("{part:?}: the rate is not a number"))?;
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{part:?}: a rate is between 0 and 1"));
            }
            let slot = match name.trim() {
                "drop" => &mut rates.drop,
                "server_error" => &mut rates.server_error,
                "timeout" => &mut rates.timeout,
                "duplicate" => &mut rates.duplicate,
                "reorder" => &mut rates.reorder,
                "sequence_reset" => &mut rates.sequence_reset,
                "slow" => &mut rates.slow,
                "rate_limited" => &mut rates.rate_limited,
                other => {
                    let names: Vec<&str> = Fault::ALL.iter().map(|fault| fault.name()).collect();
                    return Err(format!("no fault is named {other:?} (faults: {})", names.join(", ")));
                }
            };
            *slot = value;
        }
        Ok(rates)
    }
}

/// A seeded source of faults shared by a face's handlers, with a count per fault.
pub struct Faults {
    rates: FaultRates,
    rng: Mutex<ChaCha8Rng>,
    counts: [AtomicU64; Fault::ALL.len()],
}

impl Faults {
    pub fn new(seed: u64, rates: FaultRates) -> Arc<Self> {
        Arc::new(Self { rates, rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)), counts: Default::default() })
    }

    /// No faults at all.
    pub fn none() -> Arc<Self> {
        Self::new(0, FaultRates::default())
    }

    pub fn rates(&self) -> &FaultRates {
        &self.rates
    }

    /// Decides whether one of the `applicable` faults strikes here, and counts it if so.
    pub fn roll(&self, applicable: &[Fault]) -> Option<Fault> {
        let total: f64 = applicable.iter().map(|fault| self.rates.rate(*fault)).sum();
        if total <= 0.0 {
            return None;
        }
        let mut draw = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).random::<f64>();
        for fault in applicable {
            draw -= self.rates.rate(*fault);
            if draw < 0.0 {
                self.counts[*fault as usize].fetch_add(1, Ordering::Relaxed);
                return Some(*fault);
            }
        }
        None
    }

    /// Applies message faults (drop, duplicate, reorder) to a batch on its way out.
    pub fn perturb<T: Clone>(&self, batch: Vec<T>) -> Vec<T> {
        let mut out: Vec<T> = Vec::with_capacity(batch.len());
        for message in batch {
            match self.roll(&[Fault::Drop, Fault::Duplicate, Fault::Reorder]) {
                Some(Fault::Drop) => {}
                Some(Fault::Duplicate) => {
                    out.push(message.clone());
                    out.push(message);
                }
                Some(Fault::Reorder) if !out.is_empty() => {
                    let last = out.len() - 1;
                    out.insert(last, message);
                }
                _ => out.push(message),
            }
        }
        out
    }

    /// How many times each fault struck, by name (faults that never did are left out).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        Fault::ALL
            .iter()
            .map(|fault| (fault.name(), self.counts[*fault as usize].load(Ordering::Relaxed)))
            .filter(|(_, count)| *count > 0)
            .collect()
    }

    pub fn count(&self, fault: Fault) -> u64 {
        self.counts[fault as usize].load(Ordering::Relaxed)
    }
}

/// What a roll does to one message a face sends.
pub struct Schedule<T> {
    pub fault: Option<Fault>,
    /// How long to wait before sending (a slow send).
    pub delay: Duration,
    /// What to send, in order: nothing when dropped, it twice when duplicated, the one that
    /// overtakes it first when reordered.
    pub sends: Vec<T>,
}

impl Faults {
    /// Rolls for `item` among `applicable`; `overtaking` takes the next message from the
    /// sender's queue when it is to overtake this one.
    pub fn schedule<T: Clone>(
        &self,
        applicable: &[Fault],
        item: T,
        overtaking: impl FnOnce() -> Option<T>,
    ) -> Schedule<T> {
        let fault = self.roll(applicable);
        let (delay, sends) = match fault {
            Some(Fault::Drop) => (Duration::ZERO, Vec::new()),
            Some(Fault::Duplicate) => (Duration::ZERO, vec![item.clone(), item]),
            Some(Fault::Reorder) => (Duration::ZERO, overtaking().into_iter().chain([item]).collect()),
            Some(Fault::Slow) => (Duration::from_millis(self.rates.slow_ms), vec![item]),
            _ => (Duration::ZERO, vec![item]),
        };
        Schedule { fault, delay, sends }
    }
}

/// Middleware for a face's HTTP routes: answers 503 or 429, holds a request into a timeout, or
/// answers late, as the rates say.
pub async fn http_faults(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    match faults.roll(&[Fault::ServerError, Fault::Timeout, Fault::Slow, Fault::RateLimited]) {
        Some(Fault::ServerError) => (StatusCode::SERVICE_UNAVAILABLE, "simulated fault: server_error").into_response(),
        Some(Fault::RateLimited) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "simulated fault: rate_limited").into_response()
        }
        Some(Fault::Timeout) => {
            tokio::time::sleep(Duration::from_millis(faults.rates.timeout_ms)).await;
            (StatusCode::GATEWAY_TIMEOUT, "simulated fault: timeout").into_response()
        }
        Some(Fault::Slow) => {
            tokio::time::sleep(Duration::from_millis(faults.rates.slow_ms)).await;
            next.run(request).await
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_strikes_the_same_messages() {
        let rates = FaultRates { drop: 0.1, duplicate: 0.1, reorder: 0.1, ..FaultRates::default() };
        let run = |seed| Faults::new(seed, rates.clone()).perturb((0..500).collect::<Vec<u32>>());
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn perturbing_counts_what_it_did() {
        let rates = FaultRates { drop: 0.1, duplicate: 0.1, reorder: 0.1, ..FaultRates::default() };
        let faults = Faults::new(3, rates);
        let out = faults.perturb((0..1000).collect::<Vec<u32>>());
        let (drops, duplicates) = (faults.count(Fault::Drop), faults.count(Fault::Duplicate));
        assert!(drops > 50 && duplicates > 50 && faults.count(Fault::Reorder) > 50, "{:?}", faults.counts());
        assert_eq!(out.len() as u64, 1000 - drops + duplicates);
        assert!(out.windows(2).any(|pair| pair[0] > pair[1]), "something was reordered");
    }

    #[test]
    fn rates_parse_from_the_command_line_form() {
        let rates = FaultRates::parse("duplicate=0.05, reorder=0.1").unwrap();
        assert_eq!((rates.duplicate, rates.reorder, rates.drop), (0.05, 0.1, 0.0));
        assert!(FaultRates::parse("dup=0.1").unwrap_err().contains("no fault is named"));
        assert!(FaultRates::parse("drop=2").unwrap_err().contains("between 0 and 1"));
    }
}
