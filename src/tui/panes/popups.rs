//! Small dialogs: the signal menu (`x`).

use crate::tui::action::{Action, SignalChoice};
use crate::tui::app::App;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn signal_menu(frame: &mut Frame, area: Rect, app: &App, selected: usize) {
    let t = &app.theme;
    let who = app.selected_instance().map_or(String::new(), |r| {
        let under = r
            .under
            .as_deref()
            .map_or(String::new(), |u| format!(" under {u}"));
        format!(
            " to {} (pid {}{}) ",
            app.id_label(&r.status.id, 11),
            r.status.pid.map_or("-".into(), |p| p.to_string()),
            crate::text_safety::escape_controls(&under)
        )
    });
    let menu: &[SignalChoice] = app.signal_menu();
    let lines: Vec<Line> = menu
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
                Span::styled(
                    format!("{:<8} {}", s.name(), s.describe().text(app.lang)),
                    style,
                ),
            ])
        })
        .collect();
    let size = (if menu.len() > 6 { 76 } else { 66 }, lines.len() as u16 + 2);
    let title = format!(
        " {}{who}· {}/1-{}, {} ",
        crate::text::Msg::SendSignal.text(app.lang),
        app.keymap.key_for(Action::MenuChoose),
        menu.len(),
        app.keymap.key_for(Action::MenuClose)
    );
    let inner = super::open_popup(frame, app, area, size, title);
    frame.render_widget(Paragraph::new(lines), inner);
}
