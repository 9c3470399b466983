//! The selected instance's output: survives restarts (the supervisor puts a
//! separator line between runs), scrollback, follow, wrap, `/` search.

use super::block;
use crate::tui::app::{App, Focus, Mode};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let log = &app.log;
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2).max(1) as usize;
    let end = log.lines.len().saturating_sub(log.scroll_back);

    // Walk back from the end until the pane is full (wrapped lines take more rows).
    let mut rows = 0;
    let mut start = end;
    while start > 0 && rows < height {
        let len = log.lines[start - 1].chars().count().max(1);
        rows += if log.wrap { len.div_ceil(width) } else { 1 };
        if rows > height && start != end {
            break;
        }
        start -= 1;
    }
    let lines: Vec<Line> = log.lines[start..end]
        .iter()
        .map(|l| line_with_match(app, l))
        .collect();

    let who = app
        .selected_instance()
        .map_or("-".to_string(), |r| r.id.clone());
    let mut flags = vec![if log.follow {
        "follow"
    } else {
        "paused: f follows"
    }];
    if log.wrap {
        flags.push("wrap");
    }
    let search = match &app.mode {
        Mode::Search { input } => format!(" /{input}▏"),
        _ => log
            .search
            .as_ref()
            .map_or(String::new(), |s| format!(" /{s}")),
    };
    let title = format!("Log {who} ({}){search}", flags.join(", "));
    let mut para = Paragraph::new(lines).block(block(app, &title, Some(Focus::Log)));
    if log.wrap {
        para = para.wrap(Wrap { trim: false });
    }
    frame.render_widget(para, area);
}

fn line_with_match<'a>(app: &App, line: &'a str) -> Line<'a> {
    let t = &app.theme;
    let base = if line.starts_with("──") {
        t.dim()
    } else {
        Style::new()
    };
    let Some(term) = app.log.search.as_deref().filter(|s| !s.is_empty()) else {
        return Line::from(Span::styled(line, base));
    };
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find(term) {
        spans.push(Span::styled(&rest[..i], base));
        spans.push(Span::styled(&rest[i..i + term.len()], t.fresh()));
        rest = &rest[i + term.len()..];
    }
    spans.push(Span::styled(rest, base));
    Line::from(spans)
}
