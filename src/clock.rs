//! Times and durations as text, written in one place: wall-clock times for event
//! lines (`14:03:07.250`) in the local zone, whose UTC offset is looked up for
//! each timestamp (a run across a daylight-saving change shows both sides right);
//! durations for panes (`850ms`, `12.3s`, `4m05s`) and for messages (humantime's
//! `1s 500ms`); whole milliseconds for JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A duration in whole milliseconds, saturating (for JSON and figures).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the UNIX epoch; 0 for times before it.
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// Now, in milliseconds since the UNIX epoch: the time every fact and
/// stored change is stamped with.
pub fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// Whole seconds since the UNIX epoch; 0 for times before it.
pub fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A duration for messages, to the millisecond: `1s 500ms`, `2m 3s`.
pub fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(millis(d)))
}

/// A duration for a pane, in three or four figures: `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub fn short_ms(ms: u64) -> String {
    match ms {
        m if m < 1_000 => format!("{m}ms"),
        m if m < 60_000 => format!("{:.1}s", m as f64 / 1000.0),
        m if m < 3_600_000 => format!("{}m{:02}s", m / 60_000, (m / 1000) % 60),
        m => format!("{}h{:02}m", m / 3_600_000, (m / 60_000) % 60),
    }
}

/// Whole seconds, for uptimes: `45s`, `3m12s`, `1h04m`.
pub fn uptime_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}

/// Where wall-clock times are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The system's zone, at the offset it had at each timestamp.
    Local,
    /// A fixed offset from UTC in seconds (stable text for tests and reports).
    Fixed(i32),
}

impl Zone {
    pub const UTC: Zone = Zone::Fixed(0);

    /// The offset from UTC in seconds at unix-millisecond time `ms`.
    pub fn offset_at(self, ms: u64) -> i32 {
        match self {
            Zone::Fixed(secs) => secs,
            // jiff caches the system zone, so this is a lookup, not a file read.
            Zone::Local => offset_in(&jiff::tz::TimeZone::system(), ms),
        }
    }

    /// `HH:MM:SS`.
    pub fn hms(self, ms: u64) -> String {
        hms(ms, self.offset_at(ms))
    }

    /// `HH:MM:SS.mmm`.
    pub fn hms_millis(self, ms: u64) -> String {
        hms_millis(ms, self.offset_at(ms))
    }
}

/// `zone`'s offset from UTC in seconds at unix-millisecond time `ms`.
fn offset_in(zone: &jiff::tz::TimeZone, ms: u64) -> i32 {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or(0, |at| zone.to_offset(at).seconds())
}

/// `HH:MM:SS` of a unix-millisecond time at `offset_secs` from UTC.
pub fn hms(ms: u64, offset_secs: i32) -> String {
    let secs = (ms / 1000) as i64 + offset_secs as i64;
    let day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day / 3600, (day / 60) % 60, day % 60)
}

/// `HH:MM:SS.mmm`.
pub fn hms_millis(ms: u64, offset_secs: i32) -> String {
    format!("{}.{:03}", hms(ms, offset_secs), ms % 1000)
}

/// A unix-millisecond time in UTC with a jiff `strftime` pattern; `None` when it
/// is out of jiff's range.
pub fn utc(ms: u64, pattern: &str) -> Option<String> {
    let at = jiff::Timestamp::from_millisecond(i64::try_from(ms).ok()?).ok()?;
    Some(at.strftime(pattern).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        assert_eq!(hms_millis(3_661_250, 0), "01:01:01.250");
        assert_eq!(hms(0, -3600), "23:00:00");
        assert_eq!(Zone::Fixed(3600).hms_millis(3_661_250), "02:01:01.250");
        assert_eq!(
            utc(1_764_655_204_239, "%Y-%m-%d %H:%M:%S%.3f UTC").as_deref(),
            Some("2025-12-02 06:00:04.239 UTC")
        );
    }

    /// The offset is the zone's at that moment, not at start: Berlin is +1 h in
    /// January and +2 h in July.
    #[test]
    fn the_offset_follows_the_timestamp() {
        let Ok(berlin) = jiff::tz::TimeZone::get("Europe/Berlin") else {
            panic!("jiff's zone database (tzdb-zoneinfo) has no Europe/Berlin");
        };
        assert_eq!(offset_in(&berlin, 1_767_225_600_000), 3600); // 2026-01-01
        assert_eq!(offset_in(&berlin, 1_782_864_000_000), 7200); // 2026-07-01
        assert_eq!(offset_in(&berlin, u64::MAX), 0);
    }

    #[test]
    fn durations() {
        assert_eq!(short_ms(850), "850ms");
        assert_eq!(short_ms(12_345), "12.3s");
        assert_eq!(uptime_ms(192_000), "3m12s");
        assert_eq!(
            human(Duration::from_micros(1_500_700)).to_string(),
            "1s 500ms"
        );
        assert_eq!(millis(Duration::MAX), u64::MAX);
        assert_eq!(unix_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
