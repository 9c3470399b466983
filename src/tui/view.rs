//! The screen layout: which pane goes where at which size. Side-effect free.

use super::app::{App, Drawn, Mode};
use super::panes::{self, flag};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Below this the compact layout is used.
pub const COMPACT_WIDTH: u16 = 60;
pub const COMPACT_HEIGHT: u16 = 16;

/// Draws the dashboard and says where it put what a click can hit.
pub fn draw(frame: &mut Frame, app: &App) -> Drawn {
    let area = frame.area();
    let drawn = if area.width < COMPACT_WIDTH || area.height < COMPACT_HEIGHT {
        compact(frame, area, app)
    } else {
        full(frame, area, app)
    };
    match &app.mode {
        Mode::Help => panes::help::draw(frame, area, app),
        Mode::SignalMenu { selected } => panes::popups::signal_menu(frame, area, app, *selected),
        _ => {}
    }
    drawn
}

fn full(frame: &mut Frame, area: Rect, app: &App) -> Drawn {
    let [header, tour, instances, gauges, body, footer] = Layout::vertical([
        Constraint::Length(panes::header::height(app)),
        Constraint::Length(panes::tour::height(app, area.width)),
        Constraint::Length(panes::instances::height(app.instances.len())),
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    panes::header::draw(frame, header, app);
    panes::tour::draw(frame, tour, app);
    let drawn = panes::instances::draw(frame, instances, app);

    let [progress, flag_area] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(gauges);
    panes::progress::draw(frame, progress, app);
    panes::flag::draw(frame, flag_area, app);

    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body);
    let [chart, namespace] =
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(top);
    let [timeline, log] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    panes::chart::draw(frame, chart, app);
    panes::namespace::draw(frame, namespace, app);
    panes::timeline::draw(frame, timeline, app);
    panes::logs::draw(frame, log, app);
    panes::footer::draw(frame, footer, app);
    drawn
}

/// Small terminals: one line each for the essentials, then the timeline.
fn compact(frame: &mut Frame, area: Rect, app: &App) -> Drawn {
    let t = &app.theme;
    let task = app.tracker.task();
    let mut lines: Vec<Line> = Vec::new();
    let feed = if app.tracker.feed_error().is_some() {
        Span::styled("controller DOWN", t.bad())
    } else {
        Span::styled(app.header.controller_url.clone(), t.dim())
    };
    lines.push(Line::from(vec![Span::styled("plumdash ", t.title()), feed]));
    // A third of the screen for instances at most, scrolled to keep the selected one.
    let shown = usize::from(area.height / 3).max(1);
    let first = (app.selected + 1).saturating_sub(shown);
    let drawn = Drawn {
        instance_rows: Rect {
            y: area.y + 1,
            height: u16::try_from(app.instances.len().saturating_sub(first).min(shown))
                .unwrap_or(0)
                .min(area.height.saturating_sub(1)),
            ..area
        },
        first_instance: first,
    };
    for row in app.instances.iter().skip(first).take(shown) {
        let head = format!(
            "{} {} ",
            row.id,
            row.pid.map_or("-".into(), |p| p.to_string())
        );
        let room = usize::from(area.width).saturating_sub(head.chars().count());
        let mut spans = vec![Span::raw(head)];
        spans.extend(panes::instances::state_line(app, row, room).spans);
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(Span::styled(
        format!(
            "{}% {} #{}",
            task.progress.unwrap_or(0),
            task.checkpoint.as_deref().unwrap_or("-"),
            task.counter.map_or("-".into(), |c| c.to_string())
        ),
        t.good(),
    )));
    lines.extend(panes::tour::compact_line(app));
    let state = flag::state(app);
    lines.push(Line::from(Span::styled(
        flag::text(state),
        flag::style(app, state),
    )));
    if let Some(flash) = app.active_flash() {
        lines.push(Line::from(Span::styled(
            crate::text_safety::escape_controls(&flash.text).into_owned(),
            t.alarm(),
        )));
    }
    let room = (area.height as usize).saturating_sub(lines.len() + 1);
    let events: Vec<_> = app.tracker.timeline().collect();
    for ev in &events[events.len().saturating_sub(room)..] {
        lines.push(Line::from(Span::styled(ev.to_string(), t.dim())));
    }
    frame.render_widget(Paragraph::new(lines), area);
    if area.height > 1 {
        let footer = Rect {
            y: area.y + area.height - 1,
            height: 1,
            ..area
        };
        let hint = panes::footer::compact_hints(app);
        frame.render_widget(Paragraph::new(hint), footer);
    }
    drawn
}
