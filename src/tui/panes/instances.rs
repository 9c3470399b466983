//! The instances table: id, node, pid, state, uptime, crashes, manual
//! restarts, last exit, CPU, RSS; a countdown while a restart is pending, with
//! the crash loop that makes it wait when there is one. When each instance
//! has its own namespace, the NODE column gives way to its TASK: progress and
//! crash flag (there are no nodes then).

use super::block;
use crate::supervisor::ExitKind;
use crate::text::{self, Lang, Msg};
use crate::text_safety::escape_controls;
use crate::tui::app::{App, Drawn, Focus, InstanceRow};
use crate::tui::format;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table, TableState};
use ratatui::Frame;

/// Rows the pane needs for `n` instances (borders and header included).
pub fn height(n: usize) -> u16 {
    (n.clamp(1, 8) + 3) as u16
}

/// The ID column; longer ids keep their distinguishing end.
const ID_WIDTH: usize = 11;

/// Column widths: every fixed column, and STATE taking what is left.
const WIDTHS: [Constraint; 10] = [
    Constraint::Length(ID_WIDTH as u16),
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

/// The column heads, in `WIDTHS` order.
const HEADS: [Msg; 10] = [
    Msg::ColId,
    Msg::ColNode,
    Msg::ColPid,
    Msg::ColState,
    Msg::ColUptime,
    Msg::ColCrashes,
    Msg::ColRestarts,
    Msg::ColExit,
    Msg::ColCpu,
    Msg::ColRss,
];

/// Sum of the fixed columns.
fn fixed(widths: &[Constraint]) -> u16 {
    widths
        .iter()
        .map(|c| match c {
            Constraint::Length(n) => *n,
            _ => 0,
        })
        .sum()
}

/// Least the STATE column gets (`RESUMED from 50%`).
const STATE_MIN: u16 = 16;

/// The column widths in a pane `width` wide: `WIDTHS`, each fixed column
/// widened to its head's display width in `lang` when the pane has room for
/// that (a Chinese head is two columns a character); at 80 columns it has
/// not, and a head is cut rather than a value.
fn widths(width: u16, heads: [Msg; 10], lang: Lang) -> [Constraint; 10] {
    let mut widened = WIDTHS;
    for (c, head) in widened.iter_mut().zip(heads) {
        if let Constraint::Length(n) = c {
            let need = u16::try_from(text::width(head.text(lang))).unwrap_or(u16::MAX);
            *n = (*n).max(need);
        }
    }
    if 2 + 9 + fixed(&widened) + STATE_MIN <= width {
        widened
    } else {
        WIDTHS
    }
}

/// Columns the STATE column gets with `widths` in a pane `width` wide (borders
/// and the 1-column spacing between the ten columns taken off).
fn state_room(width: u16, widths: &[Constraint]) -> usize {
    usize::from(width.saturating_sub(2 + 9 + fixed(widths)).max(STATE_MIN))
}

/// Whether a table `width` wide shows every row's state word whole.
pub fn states_fit(width: u16, app: &App) -> bool {
    let room = state_room(width, &widths(width, HEADS, app.lang));
    app.instances
        .iter()
        .all(|r| crate::text::width(&r.status.phase.to_string()) <= room)
}

/// Draws the table, scrolled so the selected instance shows, and says which
/// rows show which instances.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) -> Drawn {
    let t = &app.theme;
    let mut heads = HEADS;
    if app.board.per_instance() {
        heads[1] = Msg::ColTask;
    }
    let widths = widths(area.width, heads, app.lang);
    let state_room = state_room(area.width, &widths);
    let header = Row::new(heads.map(|h| Cell::from(Span::styled(h.text(app.lang), t.dim()))));
    // Only the rows that show are built: a frame costs the pane's height, not
    // the number of instances.
    let visible = usize::from(area.height.saturating_sub(3));
    let start = first_shown(app, visible);
    let end = (start + visible).min(app.instances.len());
    let rows: Vec<Row> = app.instances[start..end]
        .iter()
        .map(|row| {
            let s = &row.status;
            Row::new(vec![
                Cell::from(app.id_label(&s.id, ID_WIDTH)),
                if app.board.per_instance() {
                    own_task(app, row)
                } else {
                    Cell::from(escape_controls(&s.node).into_owned())
                },
                // On another machine: no pid here (its agent has it).
                Cell::from(s.pid.map_or_else(
                    || {
                        if s.remote {
                            "remote".into()
                        } else {
                            "-".into()
                        }
                    },
                    |p| p.to_string(),
                )),
                Cell::from(state_line(app, row, state_room)),
                Cell::from(
                    s.started_at
                        .filter(|_| s.pid.is_some())
                        .map_or("-".into(), |s| format::uptime(app.now.saturating_sub(s))),
                ),
                Cell::from(s.crashes.to_string()),
                Cell::from(s.manual_restarts.to_string()),
                Cell::from(s.last_exit.as_ref().map_or("-".into(), exit_text)),
                Cell::from(row.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%"))),
                Cell::from(row.rss_bytes.map_or("-".into(), format::bytes)),
            ])
        })
        .collect();
    // Sized so 80 columns show every column and the longest state text.
    let title = title(app, area.height);
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(t.selected())
        .block(block(app, &title, Some(Focus::Instances)));
    // The window starts from the last frame's offset, so the view only moves
    // when the selection leaves it (`first_shown`).
    let mut state = TableState::new()
        .with_offset(0)
        .with_selected(app.selected.checked_sub(start).filter(|i| *i < end - start));
    frame.render_stateful_widget(table, area, &mut state);
    // Inside the borders, below the header row.
    let inner = area.inner(ratatui::layout::Margin::new(1, 1));
    Drawn {
        instance_rows: Rect {
            y: inner.y + 1,
            height: inner.height.saturating_sub(1),
            ..inner
        },
        first_instance: start,
        ..Drawn::default()
    }
}

/// `Instances (12)`, or with more than fit, which ones show: `Instances
/// (5-12 of 40)` (the rows the table will scroll to: the selection in view).
fn title(app: &App, height: u16) -> String {
    let l = app.lang;
    let total = app.instances.len();
    // Inside the borders, below the header row.
    let visible = usize::from(height.saturating_sub(3));
    if total <= visible || visible == 0 {
        return format!("{} ({total})", Msg::Instances.text(l));
    }
    let start = first_shown(app, visible);
    format!(
        "{} ({}-{} {} {total})",
        Msg::Instances.text(l),
        start + 1,
        start + visible,
        Msg::Of.text(l)
    )
}

/// The first instance a table of `visible` rows shows: the last frame's,
/// moved only as far as the selection needs, and never past the last full page.
fn first_shown(app: &App, visible: usize) -> usize {
    let total = app.instances.len();
    if total <= visible || visible == 0 {
        return 0;
    }
    let selected = app.selected.min(total - 1);
    let mut start = app.drawn.first_instance;
    if selected < start {
        start = selected;
    } else if selected >= start + visible {
        start = selected + 1 - visible;
    }
    start.min(total - visible)
}

/// An instance's own task, in five columns: its progress and, while set, its
/// crash flag (`40%⚑`), coloured as the flag pane colours it.
fn own_task(app: &App, row: &InstanceRow) -> Cell<'static> {
    let tracker = app.board.tracker_of(&row.status.id);
    let flag = super::flag::state_of(tracker.crash_flag(), row.status.pid.is_some());
    let pct = tracker
        .task()
        .progress
        .map_or("-".into(), |p| format!("{p}%"));
    let mark = if tracker.crash_flag() == crate::recovery::CrashFlag::Set {
        "⚑"
    } else {
        ""
    };
    Cell::from(Span::styled(
        format!("{pct}{mark}"),
        super::flag::style(app, flag),
    ))
}

/// The state word, coloured, plus a restart countdown (and the crash loop that makes
/// it wait, when it fits in `room` columns) or auto-restart note.
pub fn state_line(app: &App, row: &InstanceRow, room: usize) -> Line<'static> {
    let t = &app.theme;
    let s = &row.status;
    // Its agent's last word, from a node now down: not known to run still.
    let node_down = s.remote
        && s.phase.is_alive()
        && app
            .tracker()
            .nodes()
            .node(&s.node)
            .is_some_and(|n| n.health == crate::recovery::NodeHealth::Unhealthy);
    let mut state = s.phase.to_string();
    if node_down {
        state = format!("{state}? ({})", Msg::NodeDown.text(app.lang));
    }
    if let Some(detail) = &s.detail {
        state = format!(
            "{state} · {}",
            escape_controls(&detail_text(detail, |id| app.id_label(id, 11)))
        );
    }
    let used = state.chars().count();
    let mut spans = vec![Span::styled(state, t.phase(&s.phase))];
    if let Some(at) = s.restart_at.filter(|at| *at > app.now && s.pid.is_none()) {
        let countdown = format!(" ↻ {}", format::duration_ms(at - app.now));
        let used = used + countdown.chars().count();
        // Why it waits, as long as it fits: `(crash loop: 6 in 40s)`, else `(loop ×6)`.
        let why = s.crash_loop.map_or(String::new(), |note| {
            let long = format!(" ({note})");
            let short = format!(" (loop ×{})", note.runs);
            [long, short]
                .into_iter()
                .find(|text| used + text.chars().count() <= room)
                .unwrap_or_default()
        });
        spans.push(Span::styled(format!("{countdown}{why}"), t.warn()));
    }
    if let Some(signal) = s.paused {
        spans.push(Span::styled(format!(" ({signal})"), t.warn()));
    }
    // Workers we did not start (attach, `up --nodes`' agents) are restarted,
    // or not, by their own agent, not by us: nothing to say here.
    if !s.auto_restart && !s.attached {
        spans.push(Span::styled(" (no auto)", t.dim()));
    }
    Line::from(spans)
}

/// A detail as the table says it: instance ids cut as the ID column cuts them.
fn detail_text(detail: &crate::recovery::Detail, id: impl Fn(&str) -> String) -> String {
    use crate::recovery::Detail;
    match detail {
        Detail::ReplacedBy { instance, node } => format!("replaced by {} on {node}", id(instance)),
        Detail::MovedTo { instance, node } => format!("moved to {} on {node}", id(instance)),
        other => other.to_string(),
    }
}

/// The EXIT column: how the last run ended, in a word.
fn exit_text(exit: &ExitKind) -> std::borrow::Cow<'static, str> {
    match exit {
        ExitKind::KilledBySignal(sig) => sig.as_str().into(),
        ExitKind::ExitCode(c) => format!("exit {c}").into(),
        ExitKind::Completed => "exit 0".into(),
        ExitKind::Stopped => "stopped".into(),
        ExitKind::Disappeared => "gone".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::Detail;

    #[test]
    fn a_failover_detail_cuts_the_new_id_as_the_id_column_does() {
        let moved = Detail::MovedTo {
            instance: "579bafaa6c3dde6c405bed70f0a1b2c3-5c7b7fbb".into(),
            node: "nodeB".into(),
        };
        let cut = |id: &str| crate::tui::format::fit_id(id, 11);
        assert_eq!(detail_text(&moved, cut), "moved to 57…5c7b7fbb on nodeB");
        let attached = Detail::Attached { at_pct: Some(20) };
        assert_eq!(detail_text(&attached, cut), "attached at 20%");
    }
}
