//! One file per screen region, each with a `draw(frame, area, &App)` entry.

pub mod chart;
pub mod flag;
pub mod footer;
pub mod header;
pub mod help;
pub mod instances;
pub mod logs;
pub mod namespace;
pub mod popups;
pub mod progress;
pub mod timeline;
pub mod tour;

use super::app::{App, Focus};
use ratatui::text::Span;
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
