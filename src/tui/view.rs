//! The screen layout: which pane goes where at which size. Side-effect free.

use super::app::{App, Drawn, Mode, Shown};
use super::panes::{self, flag};
use crate::text::{labels, panes::timeline_title, timeline, Msg};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use ratatui::Frame;

/// Below this the full layout gives way to the compact one.
pub const COMPACT_WIDTH: u16 = 60;
pub const COMPACT_HEIGHT: u16 = 16;
/// Below this even the presenter layout gives way to the compact one.
pub const PRESENTER_MIN_WIDTH: u16 = 40;
pub const PRESENTER_MIN_HEIGHT: u16 = 12;

pub use super::app::ScreenLayout;

/// The full layout's chart needs this many columns and data rows, else the
/// namespace takes its place (a one-row chart says nothing).
const CHART_MIN_WIDTH: u16 = 24;
const CHART_MIN_ROWS: u16 = 3;
/// Rows the full layout's lower panes need between them, else it gives way.
const FULL_MIN_BODY: u16 = 8;

/// Draws the dashboard and says where it put what a click can hit.
pub fn draw(frame: &mut Frame, app: &App) -> Drawn {
    let area = frame.area();
    let small = area.width < COMPACT_WIDTH || area.height < COMPACT_HEIGHT;
    let presenter_fits = area.width >= PRESENTER_MIN_WIDTH && area.height >= PRESENTER_MIN_HEIGHT;
    let shown = match app.layout {
        ScreenLayout::Presenter if presenter_fits => Shown::Presenter,
        _ if small => Shown::Compact,
        ScreenLayout::Presenter => Shown::Presenter,
        ScreenLayout::Full if app.full_anyway || full_fits(area, app) => Shown::Full,
        ScreenLayout::Full => Shown::PresenterForSize,
    };
    let mut drawn = match shown {
        Shown::Full => full(frame, area, app),
        Shown::Presenter => presenter(frame, area, app, false),
        Shown::PresenterForSize => presenter(frame, area, app, true),
        Shown::Compact => compact(frame, area, app),
    };
    drawn.shown = shown;
    match &app.mode {
        Mode::Help { scroll } => {
            drawn.help_scroll_max = panes::help::draw(frame, area, app, *scroll);
        }
        Mode::SignalMenu { selected } => panes::popups::signal_menu(frame, area, app, *selected),
        _ => {}
    }
    // Popups and panes may have covered half a wide character: clear it.
    super::cells::clear_covered_wide(frame.buffer_mut());
    super::plain::downgrade(frame.buffer_mut(), app.glyphs);
    drawn
}

/// The full layout's rows, top to bottom: header, tour, instances (and
/// nodes), gauges, body, footer.
fn full_rows(area: Rect, app: &App) -> [Rect; 6] {
    let nodes_height = panes::nodes::height(app);
    Layout::vertical([
        Constraint::Length(panes::header::height(app)),
        Constraint::Length(panes::tour::height(app, area.width)),
        Constraint::Length(panes::instances::height(app.instances.len()).max(nodes_height)),
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// The instances table's width in the full layout (the nodes pane beside it).
fn instances_width(area: Rect, app: &App) -> u16 {
    if panes::nodes::height(app) > 0 {
        area.width.saturating_sub(panes::nodes::WIDTH)
    } else {
        area.width
    }
}

/// Whether the full layout shows what a room reads uncut at this size: every
/// state word, the flag box and the progress label side by side, and room
/// for the panes below.
pub fn full_fits(area: Rect, app: &App) -> bool {
    let [.., body, _] = full_rows(area, app);
    let gauges = panes::flag::width_needed(app, app.lang) + panes::progress::width_needed(app);
    gauges <= area.width
        && panes::instances::states_fit(instances_width(area, app), app)
        && body.height >= FULL_MIN_BODY
}

fn full(frame: &mut Frame, area: Rect, app: &App) -> Drawn {
    let [header, tour, instances, gauges, body, footer] = full_rows(area, app);
    panes::header::draw(frame, header, app);
    panes::tour::draw(frame, tour, app);
    // Nodes beside the instances, when there are any.
    let instances = if panes::nodes::height(app) > 0 {
        let [instances, nodes] = Layout::horizontal([
            Constraint::Length(instances_width(area, app)),
            Constraint::Fill(1),
        ])
        .areas(instances);
        panes::nodes::draw(frame, nodes, app);
        instances
    } else {
        instances
    };
    let drawn = panes::instances::draw(frame, instances, app);

    // The flag box as wide as its longest text, when the progress label keeps
    // its own; otherwise the usual shares.
    let share = gauges.width * 45 / 100;
    let want = panes::flag::width_needed(app, app.lang).max(share);
    let flag_width = if want + panes::progress::width_needed(app) <= gauges.width {
        want
    } else {
        share
    };
    let [progress, flag_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(flag_width)]).areas(gauges);
    panes::progress::draw(frame, progress, app);
    panes::flag::draw(frame, flag_area, app);

    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(body);
    // The namespace's keys whole, taking room from the chart; no chart at all
    // when what is left could not show one.
    let chart_width = (top.width * 45 / 100).min(
        top.width
            .saturating_sub(panes::namespace::width_needed(app, top.height)),
    );
    if chart_width >= CHART_MIN_WIDTH && top.height.saturating_sub(4) >= CHART_MIN_ROWS {
        let [chart, namespace] =
            Layout::horizontal([Constraint::Length(chart_width), Constraint::Fill(1)]).areas(top);
        panes::chart::draw(frame, chart, app);
        panes::namespace::draw(frame, namespace, app);
    } else {
        panes::namespace::draw(frame, top, app);
    }
    let [timeline, log] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    panes::timeline::draw(frame, timeline, app);
    panes::logs::draw(frame, log, app);
    panes::footer::draw(frame, footer, app);
    drawn
}

/// The presenter layout, top to bottom: the header, the tour's captions (in a
/// tour), the selected instance's state word in a thick box, a tall progress
/// gauge, the crash flag, the newest timeline lines, and a short key line.
fn presenter(frame: &mut Frame, area: Rect, app: &App, for_size: bool) -> Drawn {
    let t = &app.theme;
    let l = app.lang;
    // Roomier boxes when the screen allows (80×24 and up).
    let tall = area.height >= 24;
    let [header, tour, state, gauge, flag_area, timeline, footer] = Layout::vertical([
        Constraint::Length(panes::header::height(app)),
        Constraint::Length(panes::tour::height(app, area.width).min(5)),
        Constraint::Length(if tall { 5 } else { 3 }),
        Constraint::Length(if tall { 5 } else { 3 }),
        Constraint::Length(3),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    panes::header::draw(frame, header, app);
    panes::tour::draw(frame, tour, app);

    // The state word, bold and centred; a Chinese gloss after it, never instead.
    let line = match app.selected_instance() {
        Some(row) => {
            let s = &row.status;
            let id = app.id_label(&s.id, 11);
            let pid = s.pid.map_or("-".into(), |p| p.to_string());
            let gloss = labels::gloss(&s.phase, l);
            let mut spans = vec![
                Span::styled(format!("{id} · pid {pid} · "), t.text()),
                Span::styled(
                    s.phase.to_string(),
                    t.phase(&s.phase).add_modifier(Modifier::BOLD),
                ),
            ];
            if !gloss.is_empty() {
                spans.push(Span::styled(format!(" {gloss}"), t.phase(&s.phase)));
            }
            Line::from(spans)
        }
        None => Line::from(Span::styled(Msg::NoInstance.text(l), t.dim())),
    };
    let state_block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Thick)
        .border_style(t.border(true))
        .title(Span::styled(format!(" {} ", Msg::State.text(l)), t.title()));
    let inner = state_block.inner(state);
    frame.render_widget(state_block, state);
    let [middle] = Layout::vertical([Constraint::Length(1)])
        .flex(ratatui::layout::Flex::Center)
        .areas(inner);
    frame.render_widget(Paragraph::new(line).alignment(Alignment::Center), middle);

    // The gauge: the percentage large enough to read from the back of the room.
    let task = app.tracker().task();
    let progress = task.progress.unwrap_or(0).clamp(0, 100);
    let label = panes::progress::label(app);
    let block = panes::block(app, Msg::Progress.text(l), None);
    panes::progress::gauge(frame, gauge, app, block, progress as u16, label);
    panes::flag::draw(frame, flag_area, app);

    let room = usize::from(timeline.height.saturating_sub(2));
    let mut lines = panes::timeline::event_lines(app, room, 0);
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(Msg::NoEvents.text(l), t.dim())));
    }
    let title = timeline_title(app.board.cycle_count(), l);
    frame.render_widget(
        Paragraph::new(lines).block(panes::block(app, &title, None)),
        timeline,
    );
    // Prompts and flashes as in the full layout; otherwise the short key line.
    if app.active_flash().is_some() || !matches!(app.mode, Mode::Normal | Mode::Help { .. }) {
        panes::footer::draw(frame, footer, app);
    } else {
        frame.render_widget(
            Paragraph::new(panes::footer::presenter_hints(app, for_size)),
            footer,
        );
    }
    // One instance shows, and it is not a row to click.
    Drawn::default()
}

/// Small terminals: one line each for the essentials, then the timeline.
fn compact(frame: &mut Frame, area: Rect, app: &App) -> Drawn {
    let t = &app.theme;
    let task = app.tracker().task();
    let mut lines: Vec<Line> = Vec::new();
    let feed = if app.tracker().feed_error().is_some() {
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
        ..Drawn::default()
    };
    for row in app.instances.iter().skip(first).take(shown) {
        let head = format!(
            "{} {} ",
            row.status.id,
            row.status.pid.map_or("-".into(), |p| p.to_string())
        );
        let room = usize::from(area.width).saturating_sub(head.chars().count());
        let mut spans = vec![Span::raw(head)];
        spans.extend(panes::instances::state_line(app, row, room).spans);
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(Span::styled(
        format!(
            "{}% {} #{}",
            match (task.progress, task.progress_unreadable()) {
                (Some(p), _) => p.to_string(),
                (None, Some(_)) => "?".into(),
                (None, None) => "0".into(),
            },
            // Where the task stands in its pattern's terms.
            match app.tracker().pattern() {
                Some(crate::recovery::Pattern::TxLog) => task.txlog.last.as_deref(),
                Some(crate::recovery::Pattern::Fsm) => task.fsm.state.as_deref(),
                _ => task.checkpoint.as_deref(),
            }
            .unwrap_or("-"),
            task.counter.map_or("-".into(), |c| c.to_string())
        ),
        t.good(),
    )));
    lines.extend(panes::tour::compact_line(app));
    let state = flag::state(app);
    lines.push(Line::from(Span::styled(
        flag::text(app, state, app.lang),
        flag::style(app, state),
    )));
    if let Some(flash) = app.active_flash() {
        lines.push(Line::from(Span::styled(
            crate::text_safety::escape_controls(&flash.text).into_owned(),
            panes::footer::flash_style(app, flash),
        )));
    }
    let room = (area.height as usize).saturating_sub(lines.len() + 1);
    for ev in app.board.latest(room, 0) {
        let text = timeline::event(ev, app.lang);
        lines.push(Line::from(Span::styled(
            crate::text_safety::escape_controls(&text).into_owned(),
            t.dim(),
        )));
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
