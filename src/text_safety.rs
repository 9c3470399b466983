//! Text from outside (stored keys and values, worker output, a server's
//! reasons) made safe to put on a terminal: every control character is shown
//! escaped (`\x1b`, `\x07`, `\r`, `\t`, `\u{9b}`), never written raw, so
//! nothing stored or printed by a worker can retitle, clear or move the
//! terminal; bidirectional and other invisible format characters too
//! (`\u{202e}`), so none can reorder or hide what is shown.
//!
//! A leaf module (no imports from the crate), so every printer can use it.

use std::borrow::Cow;

/// True for the characters a terminal may act on: C0 (U+0000–U+001F), DEL
/// and C1 (U+0080–U+009F) — `char::is_control` — and the invisible format
/// characters that reorder or hide text around them (bidirectional controls,
/// as in "Trojan Source"; zero-width and invisible operators; BOM; tags).
/// The joiners U+200C and U+200D stay: scripts and emoji need them, and they
/// move nothing.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// Format characters (Unicode category Cf) that change how text around them
/// reads without showing themselves.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'                       // soft hyphen
        | '\u{61c}'                    // Arabic letter mark
        | '\u{180e}'                   // Mongolian vowel separator
        | '\u{200b}'                   // zero width space
        | '\u{200e}'..='\u{200f}'      // LRM, RLM
        | '\u{2028}'..='\u{2029}'      // line and paragraph separators
        | '\u{202a}'..='\u{202e}'      // LRE, RLE, PDF, LRO, RLO
        | '\u{2060}'..='\u{2064}'      // word joiner, invisible operators
        | '\u{2066}'..='\u{206f}'      // LRI, RLI, FSI, PDI, deprecated formats
        | '\u{feff}'                   // BOM / zero width no-break space
        | '\u{fff9}'..='\u{fffb}'      // interlinear annotations
        | '\u{e0000}'..='\u{e007f}'    // tags
    )
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

/// JSON text safe for a terminal: serde_json escapes C0 (ESC is `\u001b`) but
/// writes DEL and C1 (U+0080–U+009F) raw; this escapes those as `\u007f`,
/// `\u009b`. They can only occur inside JSON strings, so the result is the
/// same JSON value.
pub fn escape_json_controls(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe) {
        return Cow::Borrowed(json);
    }
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if is_unsafe(c) && c != '\n' {
            // Beyond the BMP (tags), JSON writes the UTF-16 surrogate pair.
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{:04x}", unit);
            }
        } else {
            out.push(c);
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
    fn json_keeps_its_value_and_loses_its_raw_controls() {
        let value = "\x1b]0;t\x07\u{9b}2J\x7f\u{85}é";
        let json = serde_json::to_string(&serde_json::json!({ "v": value })).unwrap();
        assert!(
            json.contains("\\u001b") && json.contains('\u{9b}'),
            "{json}"
        );
        let safe = escape_json_controls(&json);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["v"], value);
        // Pretty output keeps its line breaks.
        let pretty = serde_json::to_string_pretty(&serde_json::json!({ "v": 1 })).unwrap();
        assert_eq!(escape_json_controls(&pretty), pretty);
    }

    #[test]
    fn bidi_and_invisible_format_characters_are_escaped() {
        assert_eq!(
            escape_controls("a\u{202e}b\u{2066}c\u{2069}\u{200e}\u{200f}\u{61c}\u{200b}\u{feff}"),
            "a\\u{202e}b\\u{2066}c\\u{2069}\\u{200e}\\u{200f}\\u{61c}\\u{200b}\\u{feff}"
        );
        // Joiners stay: emoji and scripts need them.
        assert!(matches!(escape_controls("👩\u{200d}💻"), Cow::Borrowed(_)));
        let json =
            serde_json::to_string(&serde_json::json!({ "v": "x\u{202e}\u{e0041}" })).unwrap();
        let safe = escape_json_controls(&json);
        assert_eq!(safe, r#"{"v":"x\u202e\udb40\udc41"}"#);
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["v"], "x\u{202e}\u{e0041}");
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
