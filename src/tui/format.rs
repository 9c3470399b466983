//! Small text formatters shared by the panes.

use crate::recovery::TsMs;

/// How times are written: wall clock, or seconds since start (recordings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockStyle {
    /// Wall-clock time in `zone`, at the offset each timestamp had (a run
    /// across a DST change keeps every line right).
    Wall {
        zone: crate::clock::Zone,
    },
    Relative,
}

/// `850ms`, `12.3s`, `4m05s`, `2h03m` (written by `crate::clock`).
pub fn duration_ms(ms: u64) -> String {
    crate::clock::short_ms(ms)
}

/// Whole seconds, for uptimes: `45s`, `3m12s`, `1h04m`.
pub fn uptime(ms: u64) -> String {
    crate::clock::uptime_ms(ms)
}

/// `12.3M`, `980K`.
pub fn bytes(n: u64) -> String {
    match n {
        n if n < 1024 * 1024 => format!("{}K", n / 1024),
        n if n < 1024 * 1024 * 1024 => format!("{:.1}M", n as f64 / (1024.0 * 1024.0)),
        n => format!("{:.1}G", n as f64 / (1024.0 * 1024.0 * 1024.0)),
    }
}

/// A point in time as the clock style writes it: `14:03:07` or `+12.3s`.
pub fn clock(at: TsMs, origin: TsMs, style: ClockStyle) -> String {
    match style {
        ClockStyle::Relative => format!("+{:.1}s", at.saturating_sub(origin) as f64 / 1000.0),
        ClockStyle::Wall { zone } => zone.hms(at),
    }
}

/// Cuts `s` to `width` characters, ending with `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Cuts an id to `width` characters keeping its end, where instance ids differ:
/// Plum's are `<deployment, 32 hex>-<8 hex>`, so `3f…0a1b2c3d`, not `3f2a9c1b…`.
pub fn fit_id(id: &str, width: usize) -> String {
    let n = id.chars().count();
    if n <= width {
        return id.to_string();
    }
    let tail = (width.saturating_sub(1) * 4 / 5).min(n);
    let head = width.saturating_sub(1 + tail);
    let mut out: String = id.chars().take(head).collect();
    out.push('…');
    out.extend(id.chars().skip(n - tail));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_short_and_stable() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(12_345), "12.3s");
        assert_eq!(duration_ms(245_000), "4m05s");
        assert_eq!(uptime(3_723_000), "1h02m");
        assert_eq!(bytes(5 * 1024 * 1024 + 300_000), "5.3M");
        assert_eq!(clock(12_300, 0, ClockStyle::Relative), "+12.3s");
        assert_eq!(
            clock(
                3_600_000 + 61_000,
                0,
                ClockStyle::Wall {
                    zone: crate::clock::Zone::Fixed(3600)
                }
            ),
            "02:01:01"
        );
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(
            fit_id("3f2a9c1b4d5e6f708192a3b4c5d6e7f8-0a1b2c3d", 11),
            "3f…0a1b2c3d"
        );
        assert_eq!(fit_id("kv-demo-001", 11), "kv-demo-001");
    }
}
