//! Time that can run faster than the wall clock: the simulator runs a day in minutes on it, and
//! a connector's long schedules (a week-long subscription) are tested on it in seconds.

use crate::model::Timestamp;
use std::time::Duration;
use tokio::time::Instant;

/// Maps a virtual clock onto the wall clock: `time_scale` virtual ms per real ms.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin_virtual: Timestamp,
    origin: Instant,
    time_scale: f64,
}

impl Clock {
    /// A clock reading `at` now and running `time_scale` times as fast as the wall clock.
    pub fn new(at: Timestamp, time_scale: f64) -> Self {
        Self { origin_virtual: at, origin: Instant::now(), time_scale: time_scale.max(f64::MIN_POSITIVE) }
    }

    /// The wall clock itself, for a connector in service.
    pub fn wall() -> Self {
        Self::new(crate::hub::now_ms(), 1.0)
    }

    pub fn now(&self) -> Timestamp {
        self.origin_virtual + (self.origin.elapsed().as_secs_f64() * 1000.0 * self.time_scale) as Timestamp
    }

    /// The wall-clock instant at which this clock reads `at`.
    pub fn instant_of(&self, at: Timestamp) -> Instant {
        let real_ms = ((at - self.origin_virtual).max(0) as f64 / self.time_scale).min(1e12);
        self.origin + Duration::from_secs_f64(real_ms / 1000.0)
    }

    /// Waits until this clock reads `at`.
    pub async fn sleep_until(&self, at: Timestamp) {
        tokio::time::sleep_until(self.instant_of(at)).await;
    }
}
