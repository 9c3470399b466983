//! `plumdash tour`: the caption box under the header. Its title says which
//! of the six steps we are at; the first line explains what just happened,
//! the second what to do next.

use crate::text::{panes::tour_title, Msg};
use crate::tui::app::App;
use crate::tui::tour::{Step, Tour, Worker};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph, Wrap};
use ratatui::Frame;

/// Most rows the box takes (borders included).
const MAX_HEIGHT: u16 = 6;

/// Rows the box needs at this width (0 without a tour).
pub fn height(app: &App, width: u16) -> u16 {
    let Some(tour) = &app.tour else {
        return 0;
    };
    let inner = width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines(app, tour)
        .iter()
        .map(|l| l.width().max(1).div_ceil(inner))
        .sum();
    (rows as u16 + 2).min(MAX_HEIGHT)
}

fn lines(app: &App, tour: &Tour) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut lines = Vec::new();
    if let Some(story) = &tour.story {
        lines.push(Line::from(vec![
            Span::styled("✓ ", t.good()),
            Span::styled(story.text(app.lang), t.text()),
        ]));
    }
    let next = if tour.step == Step::Done {
        "▶ "
    } else {
        Msg::TourNext.text(app.lang)
    };
    lines.push(Line::from(vec![
        Span::styled(next, t.key()),
        Span::styled(
            tour.todo(app.tracker(), worker(app)).text(app.lang),
            t.warn(),
        ),
    ]));
    lines
}

/// The tour's worker now, from the rows of the namespace shown.
pub fn worker(app: &App) -> Worker {
    let mut rows = app.namespace_rows().peekable();
    if rows.peek().is_none() {
        return Worker::Coming;
    }
    let mut coming = false;
    for row in rows {
        if row.status.pid.is_some() {
            return Worker::Running;
        }
        coming |= row.status.restart_at.is_some_and(|at| at > app.now);
    }
    if coming {
        Worker::Coming
    } else {
        Worker::Down
    }
}

/// `●●●○○○`: steps done and to come.
fn dots(step: Step) -> String {
    let done = if step == Step::Done {
        Step::COUNT
    } else {
        step.number() - 1
    };
    "●".repeat(done) + &"○".repeat(Step::COUNT - done)
}

/// The one-line form for the compact layout.
pub fn compact_line(app: &App) -> Option<Line<'static>> {
    let tour = app.tour.as_ref()?;
    Some(Line::from(vec![
        Span::styled(
            format!(
                "{} {}/{} ",
                Msg::TourShort.text(app.lang),
                tour.step.number(),
                Step::COUNT
            ),
            app.theme.key(),
        ),
        Span::styled(
            tour.todo(app.tracker(), worker(app)).text(app.lang),
            app.theme.warn(),
        ),
    ]))
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(tour) = &app.tour else {
        return;
    };
    let t = &app.theme;
    let title = Line::from(vec![
        Span::styled(
            tour_title(tour.step.number(), Step::COUNT, tour.step.title(), app.lang),
            t.title(),
        ),
        Span::styled(format!("{} ", dots(tour.step)), t.good()),
    ]);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Double)
        .border_style(t.key())
        .title(title);
    let para = Paragraph::new(lines(app, tour))
        .wrap(Wrap { trim: true })
        .block(block);
    frame.render_widget(para, area);
}
