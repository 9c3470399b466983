//! Every key of the namespace: type, value (bytes as length + hex), age.
//! A key that just changed is highlighted briefly. Only visible rows are
//! built, so a 10,000-key namespace draws as fast as a small one. Keys and
//! values show their control characters escaped. Entries the controller sent
//! in a form that does not read are listed first, `unreadable: why`.

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

/// One row: an entry, or a key whose entry did not read (key, why).
enum Item<'a> {
    Entry(&'a Entry),
    Unreadable(&'a str, &'a str),
}

/// How long a changed key stays highlighted.
const FRESH_MS: u64 = 1_500;

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
    // Keys the controller sent in a form that does not read come first, as such.
    let unreadable = app.tracker().unreadable();
    let total = unreadable.len() + entries.len();
    let max_start = total.saturating_sub(visible);
    let start = app.namespace_scroll.min(max_start);
    let now_s = (app.now / 1000) as i64;
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
    // KEY as wide as its longest shown key, unless that leaves VALUE less than
    // its longest value or half the room (then they share).
    let width = |s: &str| ratatui::text::Line::raw(s).width();
    let longest_key = cells
        .iter()
        .map(|c| width(&c[0]))
        .chain([3])
        .max()
        .unwrap_or(3);
    let longest_value = cells.iter().map(|c| width(&c[2])).max().unwrap_or(0);
    // Inside the borders, less TYPE, AGE and three column gaps.
    let room = usize::from(area.width).saturating_sub(2 + 6 + 4 + 3);
    let key_width = longest_key.min(room.saturating_sub(longest_value.min(room / 2)));
    let rows: Vec<Row> = shown
        .iter()
        .zip(cells)
        .map(|(item, [key, ty, value])| match item {
            Item::Entry(e) => {
                let fresh = app
                    .tracker()
                    .changed_at(&e.key)
                    .is_some_and(|at| app.now.saturating_sub(at) < FRESH_MS);
                let style = if fresh { t.fresh() } else { Style::new() };
                Row::new(vec![
                    Cell::from(key),
                    Cell::from(Span::styled(ty, t.dim())),
                    Cell::from(value),
                    Cell::from(Span::styled(age(e.updated_at, now_s), t.dim())),
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
    } else {
        format!(
            "{} {} ({} {})",
            Msg::Namespace.text(l),
            ns,
            total,
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
