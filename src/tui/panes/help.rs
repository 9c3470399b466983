//! `?`: every key and what it does, from the same table that handles keys.
//!
//! A description too long for the box wraps under itself, beside its key. When
//! the lines are still taller than the screen (80×24), the help scrolls with its
//! own keys (`KeyMode::Help` in the table) and its bottom border says so.

use crate::text::{self, Msg};
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::{key_name, KeyMode};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// The box's width when the screen has it.
const WIDTH: u16 = 86;

/// One entry: what goes in the key column (`    ↓/j  `) and its description.
struct Entry {
    keys: String,
    keys_style: Style,
    text: String,
    text_style: Style,
}

/// Draws the help, `scroll` lines down; returns how far it can scroll (0 when
/// every line shows), for the keys that move it.
pub fn draw(frame: &mut Frame, area: Rect, app: &App, scroll: usize) -> usize {
    let t = &app.theme;
    let l = app.lang;
    let inner_width = usize::from(WIDTH.min(area.width).saturating_sub(2));
    let lines: Vec<Line> = entries(app)
        .iter()
        .flat_map(|e| entry_lines(e, inner_width))
        .collect();
    let room = usize::from(area.height.saturating_sub(2));
    let max_scroll = lines.len().saturating_sub(room);
    let scroll = scroll.min(max_scroll);
    let footer = (max_scroll > 0).then(|| {
        let arrows = match (scroll > 0, scroll < max_scroll) {
            (true, true) => "↑↓",
            (true, false) => "↑",
            _ => "↓",
        };
        let keys = app.keymap.mode_hints(KeyMode::Help, l).join(" · ");
        Line::from(Span::styled(
            format!(" {arrows} {} · {keys} ", Msg::HelpMore.text(l)),
            t.title(),
        ))
    });
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let inner = super::open_popup_with_footer(
        frame,
        app,
        area,
        (WIDTH, height),
        Msg::HelpTitle.text(l).into(),
        footer,
    );
    let shown: Vec<Line> = lines.into_iter().skip(scroll).collect();
    frame.render_widget(Paragraph::new(shown), inner);
    max_scroll
}

/// One entry per action on the dashboard (`↓/j`), then one per dialog, then
/// the mouse.
fn entries(app: &App) -> Vec<Entry> {
    let t = &app.theme;
    let l = app.lang;
    let mut rows: Vec<(Action, Vec<String>, Option<Msg>)> = Vec::new();
    for b in app
        .keymap
        .bindings()
        .iter()
        .filter(|b| matches!(b.mode, KeyMode::Normal | KeyMode::Any))
    {
        let name = key_name(b.key, b.modifiers);
        match rows
            .iter_mut()
            .find(|(a, _, help)| *a == b.action && *help == b.help)
        {
            Some((_, keys, _)) => keys.push(name),
            None => rows.push((b.action, vec![name], b.help)),
        }
    }
    let mut entries: Vec<Entry> = rows
        .into_iter()
        .map(|(_, keys, help)| Entry {
            keys: format!("{:>7}  ", keys.join("/")),
            keys_style: t.key(),
            text: help.map_or("", |h| h.text(l)).to_string(),
            text_style: t.text(),
        })
        .collect();
    let menu = app.signal_menu().len();
    for (name, mode, extra) in [
        (
            Msg::HelpMenu,
            KeyMode::SignalMenu,
            format!(" · 1-{menu} {}", Msg::HelpByNumber.text(l)),
        ),
        (
            Msg::HelpResetMode,
            KeyMode::Confirm,
            format!(" · {}", Msg::HelpOtherKeyNo.text(l)),
        ),
        (
            Msg::HelpSearchMode,
            KeyMode::Search,
            format!(" · {}", Msg::HelpOtherKeysType.text(l)),
        ),
        (Msg::HelpFoundMode, KeyMode::Found, String::new()),
    ] {
        // Right-aligned by display width (a Chinese word is two columns a character).
        let name = name.text(l);
        let pad = " ".repeat(7usize.saturating_sub(text::width(name)));
        entries.push(Entry {
            keys: format!("{pad}{name}  "),
            keys_style: t.key(),
            text: format!("{}{extra}", app.keymap.mode_hints(mode, l).join(" · ")),
            text_style: t.dim(),
        });
    }
    entries.push(Entry {
        keys: String::new(),
        keys_style: t.dim(),
        text: String::new(),
        text_style: t.dim(),
    });
    // The mouse line is indented by its own text; it wraps under itself too.
    let mouse = Msg::HelpMouse.text(l);
    let text = mouse.trim_start();
    entries.push(Entry {
        keys: mouse.strip_suffix(text).unwrap_or_default().to_string(),
        keys_style: t.dim(),
        text: text.to_string(),
        text_style: t.dim(),
    });
    entries
}

/// An entry's screen lines in `width` columns: the description wraps, each
/// further line indented as far as the first line's key column.
fn entry_lines(e: &Entry, width: usize) -> Vec<Line<'static>> {
    let indent = text::width(&e.keys);
    wrap(&e.text, width.saturating_sub(indent).max(1))
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let keys = if i == 0 {
                e.keys.clone()
            } else {
                " ".repeat(indent)
            };
            Line::from(vec![
                Span::styled(keys, e.keys_style),
                Span::styled(part, e.text_style),
            ])
        })
        .collect()
}

/// `text` in lines of at most `width` display columns, broken after spaces and
/// around wide (Chinese) characters, never before closing punctuation nor after
/// an opening one (`（SIGKILL、` stays whole); a piece wider than a line breaks
/// between characters. Always at least one line.
fn wrap(text: &str, width: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthChar;
    let wide = |c: char| c.width().unwrap_or(0) > 1;
    let closer = |c: char| ")）」』，。、：；！？,.:;!?".contains(c);
    let opener = |c: char| "(（「『".contains(c);
    // The pieces a line may break between.
    let mut pieces: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for c in text.chars() {
        let breaks = prev.is_some_and(|p| {
            c != ' ' && !closer(c) && !opener(p) && (p == ' ' || wide(c) || wide(p))
        });
        match pieces.last_mut() {
            Some(piece) if !breaks => piece.push(c),
            _ => pieces.push(c.to_string()),
        }
        prev = Some(c);
    }
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for piece in pieces {
        if used > 0 && used + text::width(piece.trim_end()) > width {
            lines.push(line.trim_end().to_string());
            line.clear();
            used = 0;
        }
        for c in piece.chars() {
            let w = c.width().unwrap_or(0);
            if used > 0 && used + w > width && c != ' ' {
                lines.push(line.trim_end().to_string());
                line.clear();
                used = 0;
            }
            line.push(c);
            used += w;
        }
    }
    lines.push(line.trim_end().to_string());
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_breaks_after_spaces_and_inside_words_too_wide() {
        assert_eq!(wrap("", 10), vec![""]);
        assert_eq!(wrap("one two three", 13), vec!["one two three"]);
        assert_eq!(wrap("one two three", 8), vec!["one two", "three"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        // Two columns a character: three fit in 6, never half of one.
        assert_eq!(
            wrap("向选中的实例发送", 7),
            vec!["向选中", "的实例", "发送"]
        );
        assert_eq!(wrap("SIGKILL, SIGCONT)", 9), vec!["SIGKILL,", "SIGCONT)"]);
        // Never an orphan `）`, never a line ending in `（`.
        assert_eq!(
            wrap("信号（SIGKILL、SIGCONT）", 12),
            vec!["信号", "（SIGKILL、", "SIGCONT）"]
        );
        assert_eq!(wrap("模式下：退出", 8), vec!["模式下：", "退出"]);
    }
}
