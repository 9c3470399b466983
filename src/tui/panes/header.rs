//! Top line: controller URL, embedded or remote, how changes arrive and
//! whether that is healthy, app and namespace. A red banner while the
//! controller is unreachable.

use crate::text::panes::{connecting_since, feed_trouble, misbehaving};
use crate::text::Msg;
use crate::text_safety::escape_controls;
use crate::tui::app::App;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Rows the header needs (one more while the controller is down or sends what
/// cannot be used, and one more while an attached namespace does not exist yet).
pub fn height(app: &App) -> u16 {
    let feed_line = app.tracker().feed_error().is_some() || app.tracker().feed_trouble().any();
    1 + u16::from(feed_line) + u16::from(app.namespace_wait().is_some())
}

/// Skipped or dropped events told as past after this long without new ones.
const TROUBLE_FRESH_MS: u64 = 60_000;

/// How long ago the feed's trouble last grew, when that is long enough to
/// tell it as past: only counts (no unreadable entry now, no broken
/// connection), nothing new for [`TROUBLE_FRESH_MS`].
fn trouble_is_past(app: &App) -> Option<String> {
    let trouble = app.tracker().feed_trouble();
    if !trouble.unreadable.is_empty() || trouble.broken.is_some() {
        return None;
    }
    let ago = app.now.saturating_sub(app.tracker().feed_trouble_at()?);
    (ago >= TROUBLE_FRESH_MS).then(|| crate::tui::format::uptime(ago))
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let h = &app.header;
    let l = app.lang;
    let trouble = app.tracker().feed_trouble();
    let trouble_ago = trouble_is_past(app);
    let feed = match (app.tracker().feed_error(), app.tracker().feed_via()) {
        _ if trouble.broken.is_some() => {
            Span::styled(format!("● {}", Msg::ControllerMisbehaving.text(l)), t.bad())
        }
        (Some(_), _) => Span::styled(format!("● {}", Msg::ControllerDown.text(l)), t.bad()),
        (None, Some(via)) if trouble.any() && trouble_ago.is_none() => {
            Span::styled(format!("● {via} ⚠"), t.warn())
        }
        (None, Some(via)) => Span::styled(format!("● {via}"), t.good()),
        // Since when it waits (for the URL beside it), from the first frame.
        (None, None) => Span::styled(
            format!(
                "○ {}",
                connecting_since(app.now.saturating_sub(app.started_at) / 1000, l)
            ),
            t.warn(),
        ),
    };
    let mode = if h.embedded {
        Msg::Embedded
    } else {
        Msg::Remote
    }
    .text(l);
    let mut spans = vec![
        Span::styled("plumdash ", t.title()),
        Span::styled(escape_controls(&h.controller_url).into_owned(), t.text()),
        Span::styled(format!(" ({mode}) "), t.dim()),
        feed,
        Span::styled(format!("  {} ", Msg::App.text(l)), t.dim()),
        Span::styled(escape_controls(&h.app).into_owned(), t.text()),
        Span::styled(format!("  {} ", Msg::Ns.text(l)), t.dim()),
        Span::styled(
            escape_controls(app.namespace().unwrap_or("—")).into_owned(),
            t.text(),
        ),
    ];
    if app.board.per_instance() {
        spans.push(Span::styled(
            format!(" ({})", Msg::PerInstance.text(l)),
            t.dim(),
        ));
    }
    if let Some(archive) = &h.archived {
        spans.push(Span::styled(
            format!("  {} ", Msg::LastRunIn.text(l)),
            t.dim(),
        ));
        spans.push(Span::styled(
            escape_controls(archive).into_owned(),
            t.text(),
        ));
    }
    if h.read_only {
        spans.push(Span::styled(
            format!("  {}", Msg::ReadOnly.text(l)),
            t.warn(),
        ));
    }
    if h.attached {
        spans.push(Span::styled(
            format!("  {}", Msg::Attached.text(l)),
            t.warn(),
        ));
    }
    let mut lines = vec![Line::from(spans)];
    if let Some(why) = &trouble.broken {
        let retry = crate::clock::human(trouble.retry_in).to_string();
        lines.push(Line::from(Span::styled(
            format!(" {} ", misbehaving(&escape_controls(why), &retry, l)),
            t.alarm(),
        )));
    } else if let Some(err) = app.tracker().feed_error() {
        lines.push(Line::from(Span::styled(
            format!(
                " {} {} {} ",
                if crate::kv::is_an_answer(err) {
                    Msg::AnswerLead.text(l)
                } else {
                    Msg::UnreachableLead.text(l)
                },
                escape_controls(err),
                Msg::UnreachableTail.text(l)
            ),
            t.alarm(),
        )));
    } else if trouble.any() {
        let mut line = feed_trouble(
            trouble.skipped,
            trouble.dropped,
            trouble.unreadable.len(),
            trouble_ago.as_deref(),
            l,
        );
        if let Some(last) = &trouble.last {
            line.push_str(" — ");
            line.push_str(&escape_controls(&crate::kv::model::preview(last)));
        }
        let style = if trouble_ago.is_some() {
            t.dim()
        } else {
            t.warn()
        };
        lines.push(Line::from(Span::styled(format!(" {line} "), style)));
    }
    if let Some(wait) = app.namespace_wait() {
        lines.push(Line::from(Span::styled(
            format!(" {} ", escape_controls(wait)),
            t.warn(),
        )));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
