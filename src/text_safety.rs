//! Text from outside (stored keys and values, worker output, a server's
//! reasons) made safe to put on a terminal: every control character is shown
//! escaped (`\x1b`, `\x07`, `\r`, `\t`, `\u{9b}`), never written raw, so
//! nothing stored or printed by a worker can retitle, clear or move the
//! terminal.
//!
//! A leaf module (no imports from the crate), so every printer can use it.

use std::borrow::Cow;

/// True for the characters a terminal may act on: C0 (U+0000–U+001F), DEL
/// and C1 (U+0080–U+009F) — exactly `char::is_control`.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
}

/// `s` on one line with every control character escaped (newlines too).
/// Borrows when there is nothing to escape.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Like [`escape_controls`] but keeps `\n` as a line break: for multi-line
/// text built by the program itself around values from outside.
pub fn escape_controls_keep_newlines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\n' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 && is_unsafe(c) => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_unsafe(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(
            escape_controls("step_42 ünïcödé ✓"),
            Cow::Borrowed("step_42 ünïcödé ✓")
        ));
        assert!(matches!(
            escape_controls_keep_newlines("a\nb"),
            Cow::Borrowed("a\nb")
        ));
    }

    #[test]
    fn every_control_character_is_escaped() {
        assert_eq!(
            escape_controls("k\x1b]0;pwned\x07\x1b[2J\r\x08\t\n\x7f\u{9b}31m\0"),
            "k\\x1b]0;pwned\\x07\\x1b[2J\\r\\x08\\t\\n\\x7f\\u{9b}31m\\x00"
        );
        assert_eq!(
            escape_controls_keep_newlines("a\x1b[2J\nb\r"),
            "a\\x1b[2J\nb\\r"
        );
    }

    #[test]
    fn nothing_unsafe_survives_any_input() {
        let all: String = (0u32..0x200).filter_map(char::from_u32).collect();
        let out = escape_controls(&all);
        assert!(!out.chars().any(is_unsafe), "{out:?}");
        let out = escape_controls_keep_newlines(&all);
        assert!(!out.chars().any(|c| c != '\n' && is_unsafe(c)), "{out:?}");
    }
}
