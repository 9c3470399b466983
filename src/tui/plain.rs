//! What a limited terminal gets instead of Unicode: the frame is drawn as
//! always, then its cells are rewritten — borders in ASCII, emoji as their
//! two-column stand-ins (`text::plain`), and, where the locale is not UTF-8,
//! every other symbol as the nearest ASCII. Widths do not change, so no
//! layout does.

use super::terminal::Glyphs;
use ratatui::buffer::Buffer;

/// Rewrites `buf` for `glyphs` (nothing to do for `Unicode`).
pub fn downgrade(buf: &mut Buffer, glyphs: Glyphs) {
    if glyphs == Glyphs::Unicode {
        return;
    }
    let area = buf.area;
    for y in area.top()..area.bottom() {
        let mut x = area.left();
        while x < area.right() {
            let symbol = buf[(x, y)].symbol().to_string();
            let width = unicode_width::UnicodeWidthStr::width(symbol.as_str()).max(1);
            if let Some(plain) = replace(&symbol, glyphs) {
                let style = buf[(x, y)].style();
                let mut chars = plain.chars();
                for dx in 0..width as u16 {
                    if x + dx >= area.right() {
                        break;
                    }
                    let c = chars.next().unwrap_or(' ');
                    buf[(x + dx, y)].set_char(c).set_style(style);
                }
            }
            x += width as u16;
        }
    }
}

/// The plain form of one cell's symbol, if it needs one.
fn replace(symbol: &str, glyphs: Glyphs) -> Option<String> {
    if symbol.is_ascii() {
        return None;
    }
    let c = symbol.chars().next()?;
    if let Some(a) = border(c) {
        return Some(a.to_string());
    }
    let braille = matches!(u32::from(c), 0x2800..=0x28FF);
    if glyphs == Glyphs::Limited {
        // The console font has blocks, arrows and bullets; not braille, emoji, ⚑ or ✓.
        if braille || matches!(c, '⚑' | '✓') {
            return ascii(c).map(String::from);
        }
        return crate::text::plain::emoji(c).map(String::from);
    }
    let plain = ascii(c)
        .map(String::from)
        .or_else(|| crate::text::plain::emoji(c).map(String::from));
    Some(plain.unwrap_or_else(|| {
        "?".repeat(
            unicode_width::UnicodeWidthChar::width(c)
                .unwrap_or(1)
                .max(1),
        )
    }))
}

/// Box drawing as `+`, `-` and `|`.
fn border(c: char) -> Option<char> {
    Some(match c {
        '─' | '━' | '═' | '┄' | '┅' | '╌' | '╍' => '-',
        '│' | '┃' | '║' | '┆' | '┇' | '╎' | '╏' => '|',
        '╭' | '╮' | '╰' | '╯' | '┌' | '┐' | '└' | '┘' | '┏' | '┓' | '┗' | '┛' | '╔' | '╗' | '╚'
        | '╝' | '├' | '┤' | '┬' | '┴' | '┼' | '┣' | '┫' | '┳' | '┻' | '╋' => {
            '+'
        }
        _ => return None,
    })
}

/// The nearest ASCII of the other symbols the dashboard draws.
fn ascii(c: char) -> Option<char> {
    Some(match c {
        '█' | '▉' | '▊' | '▋' | '▌' | '▍' | '▎' => '#',
        '▄' | '▀' | '▖' | '▗' | '▘' | '▝' => '.',
        '•' => 'o',
        '●' => '*',
        '○' => 'o',
        '·' => '.',
        '⚑' => '!',
        '→' | '▶' | '⇒' => '>',
        '←' => '<',
        '↑' => '^',
        '↓' => 'v',
        '↔' => '-',
        '↻' => '~',
        '✓' => '+',
        '…' => '.',
        '×' => 'x',
        '▏' => '|',
        '—' | '–' => '-',
        '⢸' | '⡇' => '|',
        _ if matches!(u32::from(c), 0x2800..=0x28FF) => '.',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    fn line(buf: &Buffer) -> String {
        (0..buf.area.width).map(|x| buf[(x, 0)].symbol()).collect()
    }

    #[test]
    fn borders_and_emoji_go_plain_and_widths_stay() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 20, 1));
        buf.set_string(0, 0, "╭ ✅ 实 ⚑ → ─╮", Style::new());
        let mut limited = buf.clone();
        downgrade(&mut limited, Glyphs::Limited);
        // A wide character's second cell reads as a space here.
        assert_eq!(line(&limited), "+ ok 实  ! → -+      ");
        downgrade(&mut buf, Glyphs::Ascii);
        assert_eq!(line(&buf), "+ ok ?? ! > -+      ");
        assert!(line(&buf).is_ascii());
    }
}
