//! `?`: every key and what it does, from the same table that handles keys.

use crate::tui::app::App;
use crate::tui::keymap::key_name;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let mut lines: Vec<Line> = app
        .keymap
        .bindings()
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(format!("{:>7}  ", key_name(b.key, b.modifiers)), t.key()),
                Span::styled(b.help, t.text()),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "  mouse: click an instance to select it, wheel scrolls the log · any key closes",
        t.dim(),
    )));
    let size = (86, lines.len() as u16 + 2);
    let inner = super::open_popup(frame, app, area, size, " Keys (? closes) ".into());
    frame.render_widget(Paragraph::new(lines), inner);
}
