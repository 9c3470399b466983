//! The crash flag, big and unmistakable, with its key name: ARMED while a
//! worker runs, SET after a crash (recovery pending), CLEARED after a
//! graceful stop or completion, REMOVED when another client (a reset)
//! deleted it, NO FLAG while it has never been seen (a worker that does not
//! use the KV never writes it), UNKNOWN until the namespace is first read.

use crate::recovery::CrashFlag;
use crate::recovery::Role;
use crate::text::{panes::flag_text_named, Lang};
use crate::tui::app::App;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use ratatui::Frame;

pub use crate::text::panes::FlagState;

pub fn state(app: &App) -> FlagState {
    // A worker on another node has no pid here: its reported phase says it runs.
    let alive = app
        .namespace_rows()
        .any(|r| r.status.pid.is_some() || (r.status.remote && r.status.phase.is_alive()));
    state_of(app.tracker().crash_flag(), alive)
}

/// The flag as seen, and whether a worker of its namespace is alive.
pub fn state_of(flag: CrashFlag, alive: bool) -> FlagState {
    match (flag, alive) {
        (CrashFlag::NeverSeen, _) => FlagState::NeverSeen,
        (CrashFlag::Unknown, _) => FlagState::Unknown,
        (CrashFlag::Cleared, _) => FlagState::Cleared,
        (CrashFlag::Removed, _) => FlagState::Removed,
        (CrashFlag::Set, true) => FlagState::Armed,
        (CrashFlag::Set, false) => FlagState::Set,
    }
}

/// The flag's one-line text with the app's flag key, e.g. `⚑ app.crashed SET (crashed!)`.
pub fn text(app: &App, state: FlagState, lang: Lang) -> String {
    flag_text_named(app.tracker().keys().name(Role::Flag), state, lang)
}

/// Columns the box needs to show any of its texts whole (borders included),
/// so it does not change size as the flag does.
pub fn width_needed(app: &App, lang: Lang) -> u16 {
    let states = [
        FlagState::Armed,
        FlagState::Set,
        FlagState::Cleared,
        FlagState::NeverSeen,
        FlagState::Unknown,
    ];
    let longest = states
        .into_iter()
        .map(|s| crate::text::width(&text(app, s, lang)))
        .max()
        .unwrap_or(0);
    u16::try_from(longest + 2).unwrap_or(u16::MAX)
}

pub fn style(app: &App, state: FlagState) -> Style {
    match state {
        FlagState::Armed => app.theme.armed(),
        FlagState::Set => app.theme.alarm(),
        FlagState::Cleared => app.theme.calm(),
        FlagState::Removed => app.theme.dim(),
        FlagState::NeverSeen | FlagState::Unknown => app.theme.dim(),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let s = state(app);
    let style = style(app, s);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Thick)
        .border_style(style)
        .style(style);
    let para = Paragraph::new(Line::from(text(app, s, app.lang)))
        .alignment(Alignment::Center)
        .block(block);
    frame.render_widget(para, area);
}
