//! The instances table: id, node, pid, state, uptime, crashes, manual
//! restarts, last exit, CPU, RSS; a countdown while a restart is pending.

use super::block;
use crate::text_safety::escape_controls;
use crate::tui::app::{App, Focus, InstanceRow};
use crate::tui::format;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

/// Rows the pane needs for `n` instances (borders and header included).
pub fn height(n: usize) -> u16 {
    (n.clamp(1, 8) + 3) as u16
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let header = Row::new(
        [
            "ID", "NODE", "PID", "STATE", "UPTIME", "CRSH", "RST", "EXIT", "CPU", "RSS",
        ]
        .map(|h| Cell::from(Span::styled(h, t.dim()))),
    );
    let rows: Vec<Row> = app
        .instances
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let style = if i == app.selected {
                t.selected()
            } else {
                Style::new()
            };
            Row::new(vec![
                Cell::from(escape_controls(&row.id).into_owned()),
                Cell::from(escape_controls(&row.node).into_owned()),
                Cell::from(row.pid.map_or("-".into(), |p| p.to_string())),
                Cell::from(state_line(app, row)),
                Cell::from(
                    row.started_at
                        .filter(|_| row.pid.is_some())
                        .map_or("-".into(), |s| format::uptime(app.now.saturating_sub(s))),
                ),
                Cell::from(row.crashes.to_string()),
                Cell::from(row.manual_restarts.to_string()),
                Cell::from(
                    row.last_exit
                        .as_deref()
                        .map_or("-".into(), |e| escape_controls(e).into_owned()),
                ),
                Cell::from(row.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%"))),
                Cell::from(row.rss_bytes.map_or("-".into(), format::bytes)),
            ])
            .style(style)
        })
        .collect();
    // Sized so 80 columns show every column and the longest state text.
    let widths = [
        Constraint::Length(11),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Min(16),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Length(3),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(5),
    ];
    let title = format!("Instances ({})", app.instances.len());
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(block(app, &title, Some(Focus::Instances)));
    frame.render_widget(table, area);
}

/// The state word, coloured, plus a restart countdown or auto-restart note.
pub fn state_line(app: &App, row: &InstanceRow) -> Line<'static> {
    let t = &app.theme;
    let word = row.state.split_whitespace().next().unwrap_or("");
    let mut spans = vec![Span::styled(
        escape_controls(&row.state).into_owned(),
        t.state(word),
    )];
    if let Some(at) = row
        .restart_at
        .filter(|at| *at > app.now && row.pid.is_none())
    {
        spans.push(Span::styled(
            format!(" ↻ {}", format::duration_ms(at - app.now)),
            t.warn(),
        ));
    }
    if let Some(signal) = row.paused {
        spans.push(Span::styled(format!(" ({signal})"), t.warn()));
    }
    if !row.auto_restart {
        spans.push(Span::styled(" (no auto)", t.dim()));
    }
    Line::from(spans)
}
