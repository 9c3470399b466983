//! Small dialogs: the signal menu (`x`).

use crate::tui::action::SignalChoice;
use crate::tui::app::App;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph};
use ratatui::Frame;

pub fn signal_menu(frame: &mut Frame, area: Rect, app: &App, selected: usize) {
    let t = &app.theme;
    let who = app.selected_instance().map_or(String::new(), |r| {
        format!(
            " to {} (pid {}) ",
            r.id,
            r.pid.map_or("-".into(), |p| p.to_string())
        )
    });
    let lines: Vec<Line> = SignalChoice::MENU
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let style = if i == selected {
                t.selected()
            } else {
                t.text()
            };
            Line::from(vec![
                Span::styled(format!(" {} ", i + 1), t.key()),
                Span::styled(format!("{:<8} {}", s.name(), s.describe()), style),
            ])
        })
        .collect();
    let height = (lines.len() as u16 + 2).min(area.height);
    let [popup] = Layout::vertical([Constraint::Length(height)])
        .flex(Flex::Center)
        .areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(66.min(area.width))])
        .flex(Flex::Center)
        .areas(popup);
    frame.render_widget(Clear, popup);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(t.border(true))
        .title(Span::styled(
            format!(" Send a signal{who}· Enter/1-6, Esc "),
            t.title(),
        ));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
