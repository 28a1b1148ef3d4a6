//! When today's figures start: the daily reset time in the call center's time zone.

use crate::model::Timestamp;

/// The most recent reset at or before `now` (`reset` is local `HH:MM` in `time_zone`).
/// A bad setting falls back to midnight UTC rather than stopping the figures.
pub fn day_start(now: Timestamp, reset: &str, time_zone: &str) -> Timestamp {
    compute(now, reset, time_zone).unwrap_or_else(|| {
        tracing::warn!(reset, time_zone, "bad daily reset setting; using midnight UTC");
        compute(now, "00:00", "UTC").unwrap_or(0)
    })
}

fn compute(now: Timestamp, reset: &str, time_zone: &str) -> Option<Timestamp> {
    let (hour, minute) = reset.split_once(':')?;
    let (hour, minute): (i8, i8) = (hour.trim().parse().ok()?, minute.trim().parse().ok()?);
    // `Date::at` panics on a time out of range ("25:00"); `Time::new` says so instead.
    let reset = jiff::civil::Time::new(hour, minute, 0, 0).ok()?;
    let zone = jiff::tz::TimeZone::get(time_zone).ok()?;
    let now = jiff::Timestamp::from_millisecond(now).ok()?;
    let local = now.to_zoned(zone.clone());
    let today = local.date().to_datetime(reset).to_zoned(zone.clone()).ok()?;
    let start = if today.timestamp() <= now {
        today
    } else {
        local.date().yesterday().ok()?.to_datetime(reset).to_zoned(zone).ok()?
    };
    Some(start.timestamp().as_millisecond())
}

/// The local hour `at` falls in, in `time_zone` (UTC when the zone is unknown): when it started,
/// and its hour on the clock (0-23), which the hourly chart labels it with.
pub fn local_hour(at: Timestamp, time_zone: &str) -> (Timestamp, u8) {
    let utc_hour = || (at - at.rem_euclid(3_600_000), (at.div_euclid(3_600_000).rem_euclid(24)) as u8);
    let zone = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let Ok(instant) = jiff::Timestamp::from_millisecond(at) else { return utc_hour() };
    let local = instant.to_zoned(zone.clone());
    let start = local.date().at(local.hour(), 0, 0, 0).to_zoned(zone).ok();
    start.map_or_else(utc_hour, |start| (start.timestamp().as_millisecond(), local.hour() as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_23_2026_10H_UTC: Timestamp = 1_795_428_000_000;

    #[test]
    fn a_reset_time_out_of_range_falls_back_to_midnight_utc_in_a_known_zone_too() {
        for reset in ["25:00", "10:75", "-1:00"] {
            let start = day_start(NOV_23_2026_10H_UTC, reset, "Australia/Sydney");
            assert_eq!(start, NOV_23_2026_10H_UTC - 10 * 3_600_000, "{reset}");
        }
    }

    #[test]
    fn midnight_utc_by_default() {
        assert_eq!(day_start(NOV_23_2026_10H_UTC, "00:00", "UTC"), NOV_23_2026_10H_UTC - 10 * 3_600_000);
    }

    #[test]
    fn reset_later_today_means_yesterdays_reset() {
        // 10:00 UTC is 21:00 in Sydney (UTC+11 in November): the 22:00 reset is yesterday's.
        let start = day_start(NOV_23_2026_10H_UTC, "22:00", "Australia/Sydney");
        assert_eq!(start, NOV_23_2026_10H_UTC - 23 * 3_600_000);
    }

    #[test]
    fn hours_start_on_the_local_hour() {
        let at = NOV_23_2026_10H_UTC + 25 * 60_000;
        assert_eq!(local_hour(at, "UTC"), (NOV_23_2026_10H_UTC, 10));
        // India is UTC+5:30: its hours start at half past UTC hours.
        assert_eq!(local_hour(at, "Asia/Kolkata"), (NOV_23_2026_10H_UTC - 30 * 60_000, 15));
        assert_eq!(local_hour(at + 10 * 60_000, "Asia/Kolkata"), (NOV_23_2026_10H_UTC + 30 * 60_000, 16));
        assert_eq!(local_hour(at, "Australia/Sydney"), (NOV_23_2026_10H_UTC, 21));
    }

    #[test]
    fn bad_settings_fall_back() {
        assert_eq!(day_start(NOV_23_2026_10H_UTC, "25:99", "Mars/Olympus"), NOV_23_2026_10H_UTC - 10 * 3_600_000);
    }
}
