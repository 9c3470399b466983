//! What stands in for an emoji where the terminal cannot be trusted with one
//! (the Linux console, a vt100, a non-UTF-8 locale): two plain columns each,
//! as wide as the emoji, so nothing else on the line moves. The sentences
//! around them already say what happened; these only keep the mark.

/// An emoji's plain stand-in, two columns wide; `None` for anything else.
pub fn emoji(c: char) -> Option<&'static str> {
    let plain = match c {
        '🆕' => "++",
        '📊' => "==",
        '💥' => "!!",
        '🔄' => "<>",
        '🛑' => "[]",
        '✅' => "ok",
        '📋' => "::",
        '⚠' => "!!",
        '❌' => "xx",
        '🚀' => ">>",
        '💾' => "[]",
        _ if is_emoji(c) => "??",
        _ => return None,
    };
    Some(plain)
}

/// The pictographic blocks (the symbols a terminal may draw one or two
/// columns wide, or not at all).
pub fn is_emoji(c: char) -> bool {
    matches!(u32::from(c), 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stand_in_is_two_plain_columns() {
        for c in ['🆕', '📊', '💥', '🔄', '🛑', '✅', '📋', '⚠', '🎉'] {
            let plain = emoji(c).unwrap_or_default();
            assert_eq!(plain.len(), 2, "{c}");
            assert!(plain.is_ascii(), "{c}");
        }
        assert_eq!(emoji('a'), None);
        assert_eq!(emoji('实'), None);
    }
}
