//! `?`: every key and what it does, from the same table that handles keys.

use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::i18n::{self, Msg};
use crate::tui::keymap::{key_name, KeyMode};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    // One line per action on the dashboard (`↓/j`), then one per dialog.
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
    let mut lines: Vec<Line> = rows
        .into_iter()
        .map(|(_, keys, help)| {
            Line::from(vec![
                Span::styled(format!("{:>7}  ", keys.join("/")), t.key()),
                Span::styled(help.map_or("", |h| h.text(l)), t.text()),
            ])
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
    ] {
        // Right-aligned by display width (a Chinese word is two columns a character).
        let name = name.text(l);
        let pad = " ".repeat(7usize.saturating_sub(i18n::width(name)));
        lines.push(Line::from(vec![
            Span::styled(format!("{pad}{name}  "), t.key()),
            Span::styled(
                format!("{}{extra}", app.keymap.mode_hints(mode, l).join(" · ")),
                t.dim(),
            ),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(Msg::HelpMouse.text(l), t.dim())));
    let size = (86, lines.len() as u16 + 2);
    let inner = super::open_popup(frame, app, area, size, Msg::HelpTitle.text(l).into());
    frame.render_widget(Paragraph::new(lines), inner);
}
