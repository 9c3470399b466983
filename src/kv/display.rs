//! How entries read to a person: shared by the `kv` CLI and the dashboard.
//! Everything here is safe to print: control characters come out escaped.

use super::model::{preview, Entry};
use super::watch::FeedTrouble;
use crate::text_safety::escape_controls;

/// A key (or any stored name) as it may be printed: control characters escaped.
pub fn display_key(key: &str) -> String {
    escape_controls(key).into_owned()
}

/// A value as a person wants to read it: bytes as length + hex preview.
pub fn display_value(e: &Entry) -> String {
    match e.bytes() {
        Some(bytes) => {
            let hex: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            let more = if bytes.len() > 8 { "…" } else { "" };
            format!("{} bytes {hex}{more}", bytes.len())
        }
        None => preview(&escape_controls(&e.value)),
    }
}

/// What a misbehaving controller's feed did, on one line (the CLI's words):
/// `12 malformed events skipped, …, 2 entries unreadable (a, b); last: …`.
pub fn trouble_counts(t: &FeedTrouble) -> String {
    let mut parts = Vec::new();
    if t.skipped > 0 {
        parts.push(format!(
            "{} malformed event{} skipped",
            t.skipped,
            plural(t.skipped)
        ));
    }
    if t.dropped > 0 {
        parts.push(format!(
            "{} dropped as another namespace's or out of order",
            t.dropped
        ));
    }
    if !t.unreadable.is_empty() {
        let n = t.unreadable.len();
        let mut keys: Vec<&str> = t.unreadable.iter().take(3).map(|u| u.key_text()).collect();
        if n > 3 {
            keys.push("…");
        }
        parts.push(format!(
            "{n} entr{} unreadable ({})",
            if n == 1 { "y" } else { "ies" },
            keys.join(", ")
        ));
    }
    let mut line = parts.join(", ");
    if let Some(last) = &t.last {
        line.push_str(&format!("; last: {}", preview_long(last)));
    }
    escape_controls(&line).into_owned()
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A reason cut to a line's worth.
fn preview_long(s: &str) -> String {
    const MAX: usize = 120;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().count() > MAX {
        out.push('…');
    }
    out
}

/// A short age: `3s`, `5m`, `2h`, `4d`; `-` for an entry without a time
/// (the controller sent none, or 0), `?` for one over 999 days old (a time
/// no write of this system has: a broken clock or a bad value), never 57
/// years.
pub fn age(updated_at: i64, now: i64) -> String {
    if updated_at <= 0 {
        return "-".into();
    }
    let secs = now.saturating_sub(updated_at).max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s if s < 1000 * 86_400 => format!("{}d", s / 86_400),
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trouble_reads_on_one_escaped_line() {
        let t = FeedTrouble {
            unreadable: ["a", "b\x1b[2J", "c", "d"]
                .map(|k| crate::kv::Unreadable {
                    key: Some(k.into()),
                    reason: "r".into(),
                })
                .to_vec(),
            skipped: 1,
            dropped: 2,
            last: Some("bad\nline".into()),
            ..FeedTrouble::default()
        };
        assert_eq!(
            trouble_counts(&t),
            "1 malformed event skipped, 2 dropped as another namespace's or out of order, \
             4 entries unreadable (a, b\\x1b[2J, c, …); last: bad\\nline"
        );
    }

    #[test]
    fn ages_are_short() {
        let t = 1_800_000_000;
        assert_eq!(age(t, t + 59), "59s");
        assert_eq!(age(t, t + 3599), "59m");
        assert_eq!(age(t, t + 7200), "2h");
        assert_eq!(age(t, t + 86_400 * 3), "3d");
        assert_eq!(age(t + 10, t), "0s");
        // No time, or one no write here has: said so, not 20,000 days.
        assert_eq!(age(0, t), "-");
        assert_eq!(age(-5, t), "-");
        assert_eq!(age(5, t), "?");
    }
}
