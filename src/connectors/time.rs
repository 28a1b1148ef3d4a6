//! Provider times, read once at the edge into [`Timestamp`]s.

use crate::model::Timestamp;

/// A provider's time as ms since the epoch: `2016-11-24 15:53:12` or `2021-10-29T11:45:14.535000`
/// (UTC when no offset is given, as Versature's and Netaxis's are), ISO 8601 with an offset, or
/// RFC 2822 (`Fri, 03 Mar 2017 18:47:50 +0000`).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(instant) = text.parse::<jiff::Timestamp>() {
        return Some(instant.as_millisecond());
    }
    if let Ok(civil) = text.parse::<jiff::civil::DateTime>() {
        return civil.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|zoned| zoned.timestamp().as_millisecond());
    }
    jiff::fmt::rfc2822::parse(text).ok().map(|zoned| zoned.timestamp().as_millisecond())
}
