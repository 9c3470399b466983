//! Progress over time, with a red line at each kill and a yellow one at each
//! resume, so the plateau and the resume point show at a glance. Without
//! colour, or on a terminal without braille, the marks differ by shape
//! (a solid bar at a kill, dots at a resume) and the title names the shapes.

use super::block;
use crate::text::Msg;
use crate::tui::app::App;
use crate::tui::terminal::Glyphs;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::Span;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
use ratatui::Frame;

/// Seconds of history shown.
const WINDOW_S: f64 = 120.0;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let origin = app.started_at;
    let secs = |at: u64| at.saturating_sub(origin) as f64 / 1000.0;
    let now = secs(app.now).max(1.0);
    let lo = (now - WINDOW_S).max(0.0);

    // A step line: hold each value until the next checkpoint.
    let mut line: Vec<(f64, f64)> = Vec::new();
    for p in app.tracker().progress_history() {
        let x = secs(p.at).max(lo);
        if let Some(&(_, prev)) = line.last() {
            line.push((x, prev));
        }
        line.push((x, p.progress as f64));
    }
    if let Some(&(_, last)) = line.last() {
        line.push((now, last));
    }
    let mut kills: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut resumes: Vec<Vec<(f64, f64)>> = Vec::new();
    for c in app.tracker().cycles() {
        let x = secs(c.killed_at);
        if x >= lo {
            kills.push(vec![(x, 0.0), (x, 100.0)]);
        }
        if let Some(at) = c.first_checkpoint_at.map(secs).filter(|x| *x >= lo) {
            resumes.push(vec![(at, 0.0), (at, 100.0)]);
        }
    }
    // Colour tells the marks apart where there is colour and braille; shape elsewhere.
    let braille = app.glyphs == Glyphs::Unicode;
    let by_colour = braille && t.color();
    let (line_mark, kill_mark, resume_mark) = match (braille, by_colour) {
        (true, true) => (Marker::Braille, Marker::Braille, Marker::Braille),
        (true, false) => (Marker::Braille, Marker::Block, Marker::Dot),
        (false, _) => (Marker::Bar, Marker::Block, Marker::Dot),
    };
    let mut datasets = vec![Dataset::default()
        .marker(line_mark)
        .graph_type(GraphType::Line)
        .style(t.good())
        .data(&line)];
    for k in &kills {
        datasets.push(
            Dataset::default()
                .marker(kill_mark)
                .graph_type(GraphType::Line)
                .style(t.bad())
                .data(k),
        );
    }
    for r in &resumes {
        datasets.push(
            Dataset::default()
                .marker(resume_mark)
                .graph_type(GraphType::Line)
                .style(t.warn())
                .data(r),
        );
    }
    let title = if by_colour {
        Msg::ChartTitle
    } else {
        Msg::ChartTitleShapes
    };
    let label = |s: String| Span::styled(s, t.dim());
    let chart = Chart::new(datasets)
        .block(block(app, title.text(app.lang), None))
        .x_axis(
            Axis::default()
                .bounds([lo, now])
                .labels([label(format!("{lo:.0}s")), label(format!("{now:.0}s"))])
                .style(Style::new()),
        )
        .y_axis(Axis::default().bounds([0.0, 100.0]).labels([
            label("0".into()),
            label("50".into()),
            label("100".into()),
        ]));
    frame.render_widget(chart, area);
}
