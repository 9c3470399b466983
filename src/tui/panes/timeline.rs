//! The recovery timeline: each cycle's figures, then every event with its time.

use super::block;
use crate::recovery::TimelineKind;
use crate::text::{panes, timeline};
use crate::text_safety::escape_controls;
use crate::tui::app::{App, Focus};
use crate::tui::format;
use crate::tui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let pct = |p: Option<i64>| p.map_or("?".to_string(), |p| format!("{p}%"));
    let ms = |m: Option<u64>| m.map_or("…".to_string(), format::duration_ms);
    let mut lines: Vec<Line> = Vec::new();
    // The newest three only: the board keeps them in order.
    let cycles = app.board.latest_cycles(3);
    let inner_width = usize::from(area.width.saturating_sub(2));
    let visible = area.height.saturating_sub(2) as usize;
    for &(i, c) in &cycles {
        let lost_style = match c.all_lost() {
            Some(0) => t.good(),
            Some(_) => t.bad(),
            None => t.dim(),
        };
        let [killed, lost, times] = panes::cycle_parts(
            &panes::cycle_end(&c.how, app.lang),
            &pct(c.progress_at_kill),
            &timeline::resumed_pct(c),
            &timeline::lost_steps(c).unwrap_or_else(|| "…".into()),
            &ms(c.kill_to_restart_ms()),
            &ms(c.kill_to_checkpoint_ms()),
            app.lang,
        );
        // Each namespace its own: whose cycle it is.
        let whose = if app.board.per_instance() {
            format!("{} ", app.id_label(&c.killed_instance, 11))
        } else {
            String::new()
        };
        // The figures in pieces, packed into as many lines as they need so
        // none is cut: `#1 killed at 50% → resumed from 50% lost 0`, then the times.
        let mut pieces: Vec<(&str, Vec<Span<'static>>)> = vec![
            (
                "",
                vec![
                    Span::styled(format!("#{} ", i + 1), t.key()),
                    Span::raw(format!("{whose}{}", killed.trim_end())),
                ],
            ),
            (" ", vec![Span::styled(lost, lost_style)]),
        ];
        // What was recovered, in the pattern's words.
        if let Some(r) = &c.recovered {
            let said = panes::cycle_recovered(r, app.lang);
            pieces.push((" · ", vec![Span::styled(said, t.good())]));
        }
        for part in times.split(" · ").map(str::trim).filter(|p| !p.is_empty()) {
            pieces.push((" · ", vec![Span::styled(part.to_string(), t.dim())]));
        }
        // Cycles take half the pane at most (the newest always shows): the
        // events below them are what just happened.
        let group = pack(pieces, inner_width, t);
        if !lines.is_empty() && lines.len() + group.len() > visible.div_ceil(2) {
            break;
        }
        lines.extend(group);
    }
    let room = visible.saturating_sub(lines.len());
    lines.extend(event_lines(app, room, app.timeline_scroll));
    let n = app.board.cycle_count();
    let title = panes::timeline_title(n, app.lang);
    let para = Paragraph::new(lines).block(block(app, &title, Some(Focus::Timeline)));
    frame.render_widget(para, area);
}

/// Pieces (each with the separator before it) on as few lines as `width`
/// allows without cutting one; a line after the first is indented.
fn pack(pieces: Vec<(&str, Vec<Span<'static>>)>, width: usize, t: &Theme) -> Vec<Line<'static>> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    let mut line = Line::default();
    for (sep, spans) in pieces {
        let piece = Line::from(spans.clone()).width();
        if !line.spans.is_empty() && line.width() + crate::text::width(sep) + piece > width {
            lines.push(std::mem::take(&mut line));
            line.spans.push(Span::raw("   "));
        } else if !line.spans.is_empty() {
            line.spans.push(Span::styled(sep.to_string(), t.dim()));
        }
        line.spans.extend(spans);
    }
    lines.push(line);
    lines
}

/// The last `room` events before the newest `back` ones, oldest first, each with
/// its time and coloured by what it says.
pub fn event_lines(app: &App, room: usize, back: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    // Newest at the bottom; scrolling moves back in time.
    let mut lines = Vec::new();
    for ev in app.board.latest(room, back) {
        let style = event_style(&ev.kind, t);
        lines.push(Line::from(vec![
            Span::styled(
                format!("{} ", format::clock(ev.at, app.started_at, app.clock)),
                t.dim(),
            ),
            Span::styled(escape_controls(&short_ids(ev, app)).into_owned(), style),
        ]));
    }
    lines
}

/// An event's colour says what happened: red for a crash or a loss, the
/// theme's "ended" colour for an end that is not one (a clean exit, a stop
/// asked for, a completion's exit), green for a recovery or a completion.
pub fn event_style(kind: &TimelineKind, t: &Theme) -> Style {
    match kind {
        TimelineKind::Exited { crashed: true, .. }
        | TimelineKind::Failed { .. }
        | TimelineKind::Torn(_)
        | TimelineKind::WentBack { .. }
        | TimelineKind::NotRestarted { .. }
        | TimelineKind::NodeDown { .. }
        | TimelineKind::FeedDown { .. } => t.bad(),
        TimelineKind::Exited { crashed: false, .. }
        | TimelineKind::Stopped
        | TimelineKind::Superseded { .. } => t.ended(),
        TimelineKind::Resumed { .. } | TimelineKind::Completed | TimelineKind::FailedOver(_) => {
            t.good()
        }
        TimelineKind::Recovering
        | TimelineKind::RecoveryUnread
        | TimelineKind::RestartScheduled { .. }
        | TimelineKind::TakingOver { .. }
        | TimelineKind::Frozen { .. }
        | TimelineKind::Migrated { .. }
        | TimelineKind::Fenced { .. } => t.warn(),
        // A pattern's rule broken (applied twice, restored wrongly, a step
        // lost) reads as a loss; a replay that skipped, a restore in place, as a recovery.
        TimelineKind::Pattern(news) if news.breaks().is_some() => t.bad(),
        TimelineKind::Pattern(_) => t.good(),
        _ => t.text(),
    }
}

/// The event's text with a long instance id cut as the instances table cuts it
/// (Plum's ids are 41 characters; their end tells them apart).
/// Under nodes its alias comes first (`A1 57…b7fbb`).
fn short_ids(ev: &crate::recovery::TimelineEvent, app: &App) -> String {
    let text = timeline::event(ev, app.lang);
    match ev.instance.as_deref() {
        Some(id) if text.starts_with(id) => {
            format!("{}{}", app.id_label(id, 11), &text[id.len()..])
        }
        _ => text,
    }
}
