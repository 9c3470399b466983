//! Bottom line: key hints generated from the keymap, or a flash message
//! (what was sent to which pid) while one is showing. The compact layout's
//! shorter line comes from the same table (`compact_hints`).

use crate::tui::action::Action;
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
            Span::styled(
                format!(
                    "type, {} to find, {} to clear",
                    app.keymap.key_for(Action::SearchAccept),
                    app.keymap.key_for(Action::SearchCancel)
                ),
                t.dim(),
            ),
        ]),
        Mode::ConfirmReset => Line::from(Span::styled(
            format!(
                " reset the namespace? {} = yes, any other key = no ",
                app.keymap.key_for(Action::ConfirmYes)
            ),
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

/// The compact layout's hints: kill, help and quit, as bound now.
pub fn compact_hints(app: &App) -> Line<'static> {
    let t = &app.theme;
    let mut spans = Vec::new();
    for (i, (action, label)) in [
        (Action::Kill, "kill"),
        (Action::ToggleHelp, "help"),
        (Action::Quit, "quit"),
    ]
    .into_iter()
    .enumerate()
    {
        spans.push(Span::styled(app.keymap.key_for(action), t.key()));
        let gap = if i < 2 { " " } else { "" };
        spans.push(Span::styled(format!(" {label}{gap}"), t.dim()));
    }
    Line::from(spans)
}
