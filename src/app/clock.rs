//! One ticking clock for every live timer on the page, aligned with the server's clock.

use super::live::LiveStore;
use crate::model::Timestamp;
use leptos::prelude::*;

/// The page's `now` in server time (ms), ticking once a second in the browser.
#[derive(Clone, Copy)]
pub struct Clock {
    pub now: RwSignal<Timestamp>,
}

/// Milliseconds since the epoch on this machine.
pub fn local_now() -> Timestamp {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as Timestamp
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as Timestamp)
    }
}

/// Creates the clock context; in the browser it ticks every second, corrected by the offset the
/// last snapshot measured.
pub fn provide_clock(store: LiveStore) -> Clock {
    let clock = Clock { now: RwSignal::new(local_now()) };
    provide_context(clock);
    Effect::new(move |_| {
        let tick = move || clock.now.set(local_now() + store.clock_offset_ms.get_untracked());
        tick();
        if let Ok(handle) = set_interval_with_handle(tick, std::time::Duration::from_secs(1)) {
            on_cleanup(move || handle.clear());
        }
    });
    clock
}

/// `m:ss`, or `h:mm:ss` from an hour; negative spans (clock skew) show as 0:00.
pub fn duration_text(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_stopwatch() {
        assert_eq!(duration_text(0), "0:00");
        assert_eq!(duration_text(59_999), "0:59");
        assert_eq!(duration_text(61_000), "1:01");
        assert_eq!(duration_text(3_723_000), "1:02:03");
        assert_eq!(duration_text(-5_000), "0:00");
    }
}
