//! Every key of the namespace: type, value (bytes as length + hex), age.
//! A key that just changed is highlighted briefly. Only visible rows are
//! built, so a 10,000-key namespace draws as fast as a small one. Keys and
//! values show their control characters escaped.

use super::block;
use crate::kv::display::{age, display_key, display_value};
use crate::kv::model::preview;
use crate::kv::Entry;
use crate::text::panes::unreadable as unreadable_text;
use crate::text::Msg;
use crate::tui::app::{App, Focus};
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

/// How long a changed key stays highlighted.
const FRESH_MS: u64 = 1_500;

/// Columns besides KEY and VALUE: borders, TYPE, AGE and three column gaps.
const FIXED: usize = 2 + 6 + 4 + 3;
/// Least VALUE gets beside whole keys.
const VALUE_MIN: usize = 12;

/// The first entry shown when `visible` rows show.
fn first_shown(app: &App, visible: usize) -> usize {
    let max_start = rows_of(app).saturating_sub(visible);
    app.namespace_scroll.min(max_start)
}

/// Rows the pane lists: the unreadable keys, then the entries.
fn rows_of(app: &App) -> usize {
    app.tracker().unreadable().len() + app.tracker().entries().len()
}

/// One listed row: an entry, or a key whose entry does not read (and why).
enum Item<'a> {
    Entry(&'a Entry),
    Unreadable(&'a str, &'a str),
}

/// Columns the pane needs, `height` rows tall, to show its keys whole beside
/// VALUE_MIN of their values (the full layout takes them from the chart).
pub fn width_needed(app: &App, height: u16) -> u16 {
    let visible = height.saturating_sub(3) as usize;
    let unreadable = app.tracker().unreadable().keys();
    let longest_key = unreadable
        .chain(app.tracker().entries().keys())
        .skip(first_shown(app, visible))
        .take(visible)
        .map(|key| ratatui::text::Line::raw(display_key(key)).width())
        .chain([3])
        .max()
        .unwrap_or(3);
    u16::try_from(longest_key + VALUE_MIN + FIXED).unwrap_or(u16::MAX)
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let l = app.lang;
    let entries = app.tracker().entries();
    if let Some(wait) = app.namespace_wait() {
        let title = format!(
            "{} {} ({})",
            Msg::Namespace.text(l),
            display_key(app.namespace().unwrap_or("—")),
            Msg::NotThereYet.text(l)
        );
        let text = ratatui::widgets::Paragraph::new(Span::styled(
            crate::text_safety::escape_controls(wait).into_owned(),
            t.warn(),
        ))
        .wrap(ratatui::widgets::Wrap { trim: true })
        .block(block(app, &title, Some(Focus::Namespace)));
        frame.render_widget(text, area);
        return;
    }
    let visible = area.height.saturating_sub(3) as usize;
    let start = first_shown(app, visible);
    let now_s = (app.now / 1000) as i64;
    // Keys the controller sent in a form that does not read come first, as such.
    let unreadable = app.tracker().unreadable();
    let total = rows_of(app);
    let shown: Vec<Item> = unreadable
        .iter()
        .map(|(key, why)| Item::Unreadable(key, why))
        .chain(entries.values().map(Item::Entry))
        .skip(start)
        .take(visible)
        .collect();
    let cells: Vec<[String; 3]> = shown
        .iter()
        .map(|item| match item {
            Item::Entry(e) => [
                display_key(&e.key),
                e.value_type.to_string(),
                display_value(e),
            ],
            Item::Unreadable(key, why) => [
                display_key(key),
                "?".into(),
                unreadable_text(&display_key(&preview(why)), l),
            ],
        })
        .collect();
    // KEY as wide as its longest shown key: a key is a name, cut it and two
    // read the same (`app.crash`); VALUE gets the rest, at least VALUE_MIN.
    let width = |s: &str| ratatui::text::Line::raw(s).width();
    let longest_key = cells
        .iter()
        .map(|c| width(&c[0]))
        .chain([3])
        .max()
        .unwrap_or(3);
    let room = usize::from(area.width).saturating_sub(FIXED);
    let key_width = longest_key.min(room.saturating_sub(VALUE_MIN));
    let rows: Vec<Row> = shown
        .iter()
        .zip(cells)
        .map(|(item, [key, ty, value])| match item {
            Item::Entry(e) => {
                let fresh = app
                    .tracker()
                    .changed_at(&e.key)
                    .is_some_and(|at| app.now.saturating_sub(at) < FRESH_MS);
                // A fresh row is one painted pair: dim text on its background would not read.
                let (style, dim) = if fresh {
                    (t.fresh(), Style::new())
                } else {
                    (Style::new(), t.dim())
                };
                Row::new(vec![
                    Cell::from(key),
                    Cell::from(Span::styled(ty, dim)),
                    Cell::from(value),
                    Cell::from(Span::styled(age(e.updated_at, now_s), dim)),
                ])
                .style(style)
            }
            Item::Unreadable(..) => Row::new(vec![
                Cell::from(key),
                Cell::from(ty),
                Cell::from(value),
                Cell::from(""),
            ])
            .style(t.warn()),
        })
        .collect();
    let ns = display_key(app.namespace().unwrap_or("—"));
    let title = if total > visible && visible > 0 {
        format!(
            "{} {} ({}-{} {} {})",
            Msg::Namespace.text(l),
            ns,
            start + 1,
            (start + visible).min(total),
            Msg::Of.text(l),
            total
        )
    } else if !app.tracker().namespace_read() {
        format!(
            "{} {} ({})",
            Msg::Namespace.text(l),
            ns,
            Msg::NotRead.text(l)
        )
    } else {
        format!(
            "{} {} ({} {})",
            Msg::Namespace.text(l),
            ns,
            entries.len(),
            Msg::Keys.text(l)
        )
    };
    let header = Row::new(
        [Msg::ColKey, Msg::ColType, Msg::ColValue, Msg::ColAge]
            .map(|h| Cell::from(Span::styled(h.text(l), t.dim()))),
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(u16::try_from(key_width).unwrap_or(u16::MAX)),
            Constraint::Length(6),
            Constraint::Fill(1),
            Constraint::Length(4),
        ],
    )
    .header(header)
    .column_spacing(1)
    .block(block(app, &title, Some(Focus::Namespace)));
    frame.render_widget(table, area);
}
