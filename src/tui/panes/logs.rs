//! The selected instance's output: survives restarts (the supervisor puts a
//! separator line between runs), scrollback, follow, wrap, `/` search.
//!
//! A worker's colours (SGR, `ESC [ … m`) are shown as styles; every other
//! escape sequence (titles, cursor moves, clearing) is dropped, and any
//! control character left is shown escaped (`\x07`, `\r`, `\u{9b}`).

use super::block;
use crate::text::Msg;
use crate::text_safety::escape_controls;
use crate::tui::app::{App, Focus, LogLine, Mode};
use ansi_to_tui::IntoText as _;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let log = &app.log;
    let height = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2).max(1);
    let end = log.lines.len().saturating_sub(log.scroll_back);

    // Walk back from the end until the pane is full. Wrapped, a line takes the
    // rows ratatui's wrapping gives it at this width (display width, so a CJK
    // line takes twice the rows of an ASCII one of as many characters).
    let mut rows = 0;
    let mut start = end;
    let mut lines: Vec<Line> = Vec::new();
    while start > 0 && rows < height {
        let line = line_with_match(app, &log.lines[start - 1]);
        rows += if log.wrap {
            Paragraph::new(line.clone())
                .wrap(Wrap { trim: false })
                .line_count(width)
                .max(1)
        } else {
            1
        };
        lines.push(line);
        start -= 1;
    }
    lines.reverse();
    // The oldest line shown may be cut at the top, never the newest at the bottom.
    let overflow = u16::try_from(rows.saturating_sub(height)).unwrap_or(u16::MAX);

    let who = app.selected_instance().map_or("-".to_string(), |r| {
        // An attached worker's wrappers, as the agent runs it: `pid 4711 under sh→bash`.
        let id = app.id_label(&r.status.id, 11);
        match (&r.under, r.status.pid) {
            (Some(under), Some(pid)) => {
                escape_controls(&format!("{id} · pid {pid} under {under}")).into_owned()
            }
            _ => escape_controls(&id).into_owned(),
        }
    });
    let l = app.lang;
    let mut flags = vec![if log.follow {
        Msg::LogFollow
    } else {
        Msg::LogPaused
    }
    .text(l)];
    if log.wrap {
        flags.push(Msg::LogWrap.text(l));
    }
    let search = match &app.mode {
        Mode::Search { input } => format!(" /{input}▏"),
        _ => log.search.as_ref().map_or(String::new(), |s| {
            let (at, of) = log.matches(s);
            format!(" /{s} {}", crate::text::panes::match_position(at, of))
        }),
    };
    let title = format!("{} {who} ({}){search}", Msg::Log.text(l), flags.join(", "));
    let mut para = Paragraph::new(lines).block(block(app, &title, Some(Focus::Log)));
    if log.wrap {
        para = para.wrap(Wrap { trim: false }).scroll((overflow, 0));
    }
    frame.render_widget(para, area);
}

/// A run separator as the clock style writes times: with the relative clock
/// of recordings, its wall-clock start is left out.
fn separator_text(text: &str, clock: crate::tui::format::ClockStyle) -> std::borrow::Cow<'_, str> {
    if clock == crate::tui::format::ClockStyle::Relative {
        crate::supervisor::separator_without_start(text)
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn line_with_match(app: &App, line: &LogLine) -> Line<'static> {
    let t = &app.theme;
    let base = if line.is_separator() {
        t.dim()
    } else {
        Style::new()
    };
    let text = if line.is_separator() {
        separator_text(&line.text, app.clock)
    } else {
        std::borrow::Cow::Borrowed(line.text.as_str())
    };
    let spans = styled_spans(&text);
    let Some(term) = app.log.search.as_deref().filter(|s| !s.is_empty()) else {
        return Line::from(spans).style(base);
    };
    let mut out = Vec::new();
    for span in spans {
        let mut rest: &str = &span.content;
        while let Some(i) = rest.find(term) {
            out.push(Span::styled(rest[..i].to_string(), span.style));
            out.push(Span::styled(
                rest[i..i + term.len()].to_string(),
                span.style.patch(t.fresh()),
            ));
            rest = &rest[i + term.len()..];
        }
        out.push(Span::styled(rest.to_string(), span.style));
    }
    Line::from(out).style(base)
}

/// One line of worker output as styled spans with no control character left:
/// SGR colours become styles, other escapes are dropped, the rest is escaped.
pub fn styled_spans(line: &str) -> Vec<Span<'static>> {
    let plain = || vec![Span::raw(escape_controls(line).into_owned())];
    if !line.contains('\x1b') {
        return plain();
    }
    let Ok(text) = line.into_text() else {
        return plain();
    };
    let mut spans = Vec::new();
    for (i, parsed) in text.lines.into_iter().enumerate() {
        if i > 0 {
            // The parser splits at a carriage return: show it, don't act on it.
            spans.push(Span::raw("\\r"));
        }
        for span in parsed.spans {
            let content = escape_controls(&span.content).into_owned();
            spans.push(Span::styled(content, span.style));
        }
    }
    spans
}

#[cfg(test)]
mod separator_tests {
    use super::separator_text;
    use crate::tui::format::ClockStyle;

    #[test]
    fn a_recording_shows_no_wall_clock_start_in_a_separator() {
        let line = "── run 2 · pid 1334 · started 2026-12-06T22:54:18Z ──";
        assert_eq!(
            separator_text(line, ClockStyle::Relative),
            "── run 2 · pid 1334 ──"
        );
        let wall = ClockStyle::Wall {
            zone: crate::clock::Zone::Fixed(0),
        };
        assert_eq!(separator_text(line, wall), line);
    }
}
