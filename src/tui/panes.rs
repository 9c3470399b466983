//! One file per screen region, each with a `draw(frame, area, &App)` entry.

pub mod chart;
pub mod flag;
pub mod footer;
pub mod header;
pub mod help;
pub mod instances;
pub mod logs;
pub mod namespace;
pub mod nodes;
pub mod popups;
pub mod progress;
pub mod timeline;
pub mod tour;

use super::app::{App, Focus};
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

/// A pane's frame: a title, highlighted when the pane has focus.
pub fn block<'a>(app: &App, title: &'a str, focus: Option<Focus>) -> Block<'a> {
    let focused = focus.is_some_and(|f| f == app.focus);
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(app.theme.border(focused))
        .title(Span::styled(format!(" {title} "), app.theme.title()))
}

/// Clears a centred `width`×`height` box over `area`, frames it with `title`,
/// and returns the inside to draw into.
pub fn open_popup(
    frame: &mut ratatui::Frame,
    app: &App,
    area: Rect,
    (width, height): (u16, u16),
    title: String,
) -> Rect {
    open_popup_with_footer(frame, app, area, (width, height), title, None)
}

/// `open_popup` with a line on the bottom border too (the help's `↓ more`).
pub fn open_popup_with_footer(
    frame: &mut ratatui::Frame,
    app: &App,
    area: Rect,
    (width, height): (u16, u16),
    title: String,
    footer: Option<Line<'static>>,
) -> Rect {
    let popup = centered(area, width, height);
    frame.render_widget(ratatui::widgets::Clear, popup);
    let mut block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(app.theme.border(true))
        .title(Span::styled(title, app.theme.title()));
    if let Some(footer) = footer {
        block = block.title_bottom(footer);
    }
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    inner
}

/// A `width`×`height` rectangle centred in `area` (clipped to it).
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}
