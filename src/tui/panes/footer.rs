//! Bottom line: key hints generated from the keymap, or a flash message
//! (what was sent to which pid) while one is showing.

use crate::tui::app::{App, Mode};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    if let Some(flash) = app.active_flash() {
        let style = if flash.error { t.bad() } else { t.alarm() };
        let line = Line::from(Span::styled(
            format!(" {} ", crate::text_safety::escape_controls(&flash.text)),
            style,
        ));
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let line = match &app.mode {
        Mode::Search { .. } => Line::from(vec![
            Span::styled(" search: ", t.key()),
            Span::styled("type, Enter to find, Esc to clear", t.dim()),
        ]),
        Mode::ConfirmReset => Line::from(Span::styled(
            " reset the namespace? y = yes, any other key = no ",
            t.alarm(),
        )),
        _ => {
            let mut spans = Vec::new();
            for (key, hint) in app.keymap.hints() {
                spans.push(Span::styled(format!(" {key}"), t.key()));
                spans.push(Span::styled(format!(" {hint} "), t.dim()));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}
