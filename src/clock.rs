//! Wall-clock text for event lines (`14:03:07.250`), in the local time zone.

/// The local UTC offset now, in seconds (0 if the zone cannot be read).
pub fn local_offset_secs() -> i32 {
    jiff::tz::TimeZone::system()
        .to_offset(jiff::Timestamp::now())
        .seconds()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        assert_eq!(hms_millis(3_661_250, 0), "01:01:01.250");
        assert_eq!(hms(0, -3600), "23:00:00");
    }
}
