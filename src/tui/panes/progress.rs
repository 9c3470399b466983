//! The task's progress: a gauge with %, checkpoint and counter.

use super::block;
use crate::recovery::Pattern;
use crate::text::panes::{fsm_label, progress_unreadable, txlog_label};
use crate::text::Msg;
use crate::tui::app::App;
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Gauge};
use ratatui::Frame;

/// The gauge's label: `50% · step_5 · counter 5`, ` · completed` at the end,
/// or what is torn; the values in it (a checkpoint, a state) as they were
/// stored, control characters escaped (ratatui would drop them silently).
pub fn label(app: &App) -> String {
    crate::text_safety::escape_controls(&raw_label(app)).into_owned()
}

fn raw_label(app: &App) -> String {
    let task = app.tracker().task();
    let progress = task.progress.unwrap_or(0).clamp(0, 100);
    let l = app.lang;
    // Nothing read yet: nothing to draw, not 0 %.
    if !app.tracker().namespace_read() {
        return Msg::NotReadYet.text(l).to_string();
    }
    // There but unreadable: said so, never drawn as 0 %.
    if let Some(why) = unreadable(app) {
        return progress_unreadable(why, l);
    }
    if let Some(torn) = app.tracker().torn() {
        return format!("TORN: {torn}");
    }
    // The other two patterns say where they stand in their own terms.
    match app.tracker().pattern() {
        Some(Pattern::TxLog) => {
            let tx = &task.txlog;
            return txlog_label(progress, tx.last.as_deref(), tx.applied, tx.logged, l);
        }
        Some(Pattern::Fsm) => return fsm_label(progress, task.fsm.state.as_deref(), l),
        _ => {}
    }
    // Read, but no progress written (yet): `-`, as the counter, not 0 %.
    let progress = match task.progress {
        Some(_) => format!("{progress}%"),
        None => "-".to_string(),
    };
    let mut label = format!(
        "{progress} · {} · {} {}",
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
    label
}

/// Why the progress does not read, when its key is there but unreadable.
fn unreadable(app: &App) -> Option<&str> {
    let task = app.tracker().task();
    task.progress
        .is_none()
        .then(|| task.progress_unreadable())
        .flatten()
}

/// Most columns the label asks for: a checkpoint is a stored value, as long
/// as whoever wrote it liked; past this it is cut in the pane rather than
/// turning a wide screen into the presenter layout (and back, as it changes).
const LABEL_WIDTH_CAP: usize = 64;

/// Columns the pane needs for its label whole (up to [`LABEL_WIDTH_CAP`]),
/// the completion note counted before it comes (so the layout does not
/// change at the end).
pub fn width_needed(app: &App) -> u16 {
    let mut width = crate::text::width(&label(app));
    let task = app.tracker().task();
    if task.progress.is_some() && !task.is_completed() {
        width += crate::text::width(Msg::CompletedNote.text(app.lang)) + 3;
    }
    u16::try_from(width.min(LABEL_WIDTH_CAP) + 2).unwrap_or(u16::MAX)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let progress = app.tracker().task().progress.unwrap_or(0).clamp(0, 100);
    // The controller unreachable: what shows is what was read, not now.
    let title = if app.tracker().namespace_read() && app.tracker().feed_error().is_some() {
        format!(
            "{} ({})",
            Msg::Progress.text(app.lang),
            Msg::AsLastRead.text(app.lang)
        )
    } else {
        Msg::Progress.text(app.lang).to_string()
    };
    let block = block(app, &title, None);
    gauge(frame, area, app, block, progress as u16, label(app));
}

/// A gauge whose label reads on both sides of the fill's edge: over the fill
/// in the fill's own text colour, beside it in the terminal's (ratatui's
/// Gauge draws the part beside the fill in the fill colour, which on a
/// background of the other brightness does not read).
pub fn gauge(frame: &mut Frame, area: Rect, app: &App, block: Block, percent: u16, label: String) {
    let style = app
        .theme
        .gauge(app.tracker().torn().is_some() || unreadable(app).is_some());
    let inner = block.inner(area);
    let width = ratatui::text::Line::raw(label.as_str()).width();
    let widget = Gauge::default()
        .block(block)
        .gauge_style(style.fill)
        .percent(percent.min(100))
        .label(label);
    frame.render_widget(widget, area);
    if inner.is_empty() || !app.theme.color() {
        return;
    }
    // Where Gauge put the label (centred) and where its fill ends.
    let shown = inner.width.min(u16::try_from(width).unwrap_or(u16::MAX));
    let x0 = inner.left() + (inner.width - shown) / 2;
    let y = inner.top() + inner.height / 2;
    let end = inner.left()
        + (f64::from(inner.width) * f64::from(percent.min(100)) / 100.0).round() as u16;
    let buf = frame.buffer_mut();
    for x in x0..x0 + shown {
        let cell = &mut buf[(x, y)];
        cell.set_style(ratatui::style::Style::reset());
        cell.set_style(if x < end {
            style.on_fill
        } else {
            style.off_fill
        });
    }
}
