//! `?`: every key and what it does, from the same table that handles keys.

use crate::tui::app::App;
use crate::tui::keymap::key_name;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};
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
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = 86.min(area.width);
    let [popup] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(popup);
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(t.border(true))
        .title(Span::styled(" Keys (? closes) ", t.title()));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
