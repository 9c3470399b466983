//! The task's progress: a gauge with %, checkpoint and counter.

use super::block;
use crate::text::panes::progress_unreadable;
use crate::text::Msg;
use crate::tui::app::App;
use ratatui::layout::Rect;
use ratatui::widgets::Gauge;
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let task = app.tracker().task();
    let progress = task.progress.unwrap_or(0).clamp(0, 100);
    let l = app.lang;
    let mut label = format!(
        "{progress}% · {} · {} {}",
        task.checkpoint
            .as_deref()
            .unwrap_or(Msg::NoCheckpoint.text(l)),
        Msg::Counter.text(l),
        task.counter.map_or("-".into(), |c| c.to_string())
    );
    if task.is_completed() {
        label.push_str(" · ");
        label.push_str(Msg::CompletedNote.text(l));
    }
    if let Some(torn) = app.tracker().torn() {
        label = format!("TORN: {torn}");
    }
    // There but unreadable: said so, never drawn as 0 %.
    let unreadable = task
        .progress
        .is_none()
        .then(|| task.progress_unreadable())
        .flatten();
    if let Some(why) = unreadable {
        label = progress_unreadable(&crate::text_safety::escape_controls(why), l);
    }
    let style = if unreadable.is_some() {
        t.warn()
    } else if app.tracker().torn().is_some() {
        t.bad()
    } else {
        t.good()
    };
    let gauge = Gauge::default()
        .block(block(app, Msg::Progress.text(l), None))
        .gauge_style(style)
        .percent(progress as u16)
        .label(label);
    frame.render_widget(gauge, area);
}
