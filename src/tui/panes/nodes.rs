//! The Nodes pane (`up --nodes N`, or a controller with a cluster API): each
//! node's health as the controller judges it, frozen here or not, its
//! heartbeat's age and how many instances it should be running.

use super::block;
use crate::recovery::{NodeAction, NodeHealth, NodeState};
use crate::text::Msg;
use crate::text_safety::escape_controls;
use crate::tui::app::App;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

/// The pane's width beside the instances table.
pub const WIDTH: u16 = 34;

/// Rows the pane needs (borders and header included); 0 without nodes.
pub fn height(app: &App) -> u16 {
    match app.tracker().nodes().nodes().count() {
        0 => 0,
        n => (n.min(8) + 3) as u16,
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let l = app.lang;
    let heads = [Msg::NodeCol, Msg::HealthCol, Msg::BeatCol];
    let header = Row::new(
        heads
            .iter()
            .map(|m| Cell::from(Span::styled(m.text(l), t.dim())))
            .chain([Cell::from(Span::styled("#", t.dim()))]),
    );
    let rows = app.tracker().nodes().nodes().map(|n| node_row(app, n));
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Length(6),
            Constraint::Length(3),
        ],
    )
    .header(header)
    .block(block(app, Msg::NodesTitle.text(l), None));
    frame.render_widget(table, area);
}

fn node_row<'a>(app: &App, node: &NodeState) -> Row<'a> {
    let t = &app.theme;
    // Frozen or cut is what we did here; the controller may not have noticed yet.
    let (health, style) = if node.is_frozen() {
        ("FROZEN", t.warn())
    } else if let Some(cut) = node.link_fault() {
        let word = match cut {
            NodeAction::Partitioned => "CUT OFF",
            NodeAction::CutOneWay => "ONE-WAY",
            _ => "LOSSY",
        };
        (word, t.warn())
    } else {
        match node.health {
            NodeHealth::Healthy => (node.health.word(), t.good()),
            NodeHealth::Unhealthy => (node.health.word(), t.bad()),
        }
    };
    let beat = node
        .heartbeat_age_secs(app.now)
        .map_or("—".to_string(), |s| format!("{}s", s.max(0)));
    Row::new([
        Cell::from(Span::styled(
            escape_controls(&node.id).into_owned(),
            t.text(),
        )),
        Cell::from(Span::styled(health, style)),
        Cell::from(Span::styled(beat, t.text())),
        Cell::from(Span::styled(node.instances.len().to_string(), t.text())),
    ])
}
