//! `?`: every key and what it does, from the same table that handles keys.

use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::keymap::{key_name, KeyMode};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    // One line per action on the dashboard (`↓/j`), then one per dialog.
    let mut rows: Vec<(Action, Vec<String>, &str)> = Vec::new();
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
                Span::styled(help.to_string(), t.text()),
            ])
        })
        .collect();
    let menu = app.signal_menu().len();
    for (name, mode, extra) in [
        (
            "menu",
            KeyMode::SignalMenu,
            format!(" · 1-{menu} by number"),
        ),
        ("reset", KeyMode::Confirm, " · any other key no".to_string()),
        ("search", KeyMode::Search, " · other keys type".to_string()),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("{name:>7}  "), t.key()),
            Span::styled(
                format!("{}{extra}", app.keymap.mode_hints(mode).join(" · ")),
                t.dim(),
            ),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "  mouse: click an instance to select it, wheel scrolls the log · any key closes",
        t.dim(),
    )));
    let size = (86, lines.len() as u16 + 2);
    let inner = super::open_popup(frame, app, area, size, " Keys (? closes) ".into());
    frame.render_widget(Paragraph::new(lines), inner);
}
