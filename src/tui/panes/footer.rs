//! Bottom line: key hints generated from the keymap, or a flash message
//! (what was sent to which pid) while one is showing. The compact layout's
//! shorter line comes from the same table (`compact_hints`).

use crate::text::{panes, Msg};
use crate::text_safety::escape_controls;
use crate::tui::action::Action;
use crate::tui::app::{App, Flash, Mode};
use crate::tui::keymap::KeyMode;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    if let Some(flash) = app.active_flash() {
        let line = Line::from(Span::styled(
            format!(" {} ", crate::text_safety::escape_controls(&flash.text)),
            flash_style(app, flash),
        ));
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let line = match &app.mode {
        // The query as it is typed, and how many lines it matches so far.
        Mode::Search { input } => Line::from(vec![
            Span::styled(Msg::SearchPrompt.text(app.lang), t.key()),
            Span::styled(format!("/{}▏ ", escape_controls(input)), t.text()),
            Span::styled(
                format!(
                    "{} · ",
                    panes::match_count(app.log.matches(input).1, app.lang)
                ),
                t.dim(),
            ),
            Span::styled(
                panes::search_hint(
                    &app.keymap.key_for(Action::SearchAccept),
                    &app.keymap.key_for(Action::SearchCancel),
                    app.lang,
                ),
                t.dim(),
            ),
        ]),
        // A query found: where the view is among its matches and how to move,
        // then the keys to kill, get help and quit.
        Mode::Normal | Mode::Help { .. } if app.log.search.is_some() => {
            let term = app.log.search.as_deref().unwrap_or_default();
            let (at, of) = app.log.matches(term);
            let mut spans = vec![Span::styled(
                format!(
                    " /{} {} ",
                    escape_controls(term),
                    panes::match_position(at, of)
                ),
                t.text(),
            )];
            for (key, hint) in app.keymap.mode_keys(KeyMode::Found) {
                spans.push(Span::styled(format!(" {key}"), t.key()));
                spans.push(Span::styled(format!(" {} ", hint.text(app.lang)), t.dim()));
            }
            spans.push(Span::styled(" │ ", t.dim()));
            spans.extend(compact_hints(app).spans);
            Line::from(spans)
        }
        Mode::ConfirmReset => Line::from(Span::styled(
            panes::confirm_reset(
                &app.keymap.key_for(Action::ConfirmYes),
                app.namespace().unwrap_or("—"),
                app.lang,
            ),
            t.alarm(),
        )),
        _ => {
            let mut spans = Vec::new();
            // The node key only where there are nodes to kill.
            let nodes = app.tracker().nodes().nodes().next().is_some();
            // Read-only: no key that sends a signal or acts is offered.
            let control = [
                Msg::HintKill,
                Msg::HintKillNode,
                Msg::HintSignal,
                Msg::HintSigint,
                Msg::HintStartStop,
                Msg::HintRestart,
            ];
            for (key, hint) in app.keymap.hints() {
                if hint == Msg::HintKillNode && !nodes {
                    continue;
                }
                if app.header.read_only && control.contains(&hint) {
                    continue;
                }
                spans.push(Span::styled(format!(" {key}"), t.key()));
                spans.push(Span::styled(format!(" {} ", hint.text(app.lang)), t.dim()));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// A flash's colours say what it is: an error, a kill (the alarm), or news.
pub fn flash_style(app: &App, flash: &Flash) -> Style {
    let t = &app.theme;
    if flash.error {
        t.bad()
    } else if flash.loud {
        t.alarm()
    } else {
        t.notice()
    }
}

/// The compact layout's hints: kill, help and quit, as bound now.
pub fn compact_hints(app: &App) -> Line<'static> {
    short_hints(
        app,
        &[
            (Action::Kill, Msg::HintKill),
            (Action::ToggleHelp, Msg::HintHelp),
            (Action::Quit, Msg::HintQuit),
        ],
    )
}

/// The presenter layout's hints: kill, layout, help and quit, as bound now.
/// Shown because the screen is small (`for_size`): it says so first, and `p`
/// reads "full" (SIGINT gives way, the tour's caption asks for it when due).
pub fn presenter_hints(app: &App, for_size: bool) -> Line<'static> {
    if !for_size {
        return short_hints(
            app,
            &[
                (Action::Kill, Msg::HintKill),
                (Action::Interrupt, Msg::HintSigint),
                (Action::ToggleLayout, Msg::HintLayout),
                (Action::ToggleHelp, Msg::HintHelp),
                (Action::Quit, Msg::HintQuit),
            ],
        );
    }
    let mut line = short_hints(
        app,
        &[
            (Action::Kill, Msg::HintKill),
            (Action::ToggleLayout, Msg::HintFull),
            (Action::ToggleHelp, Msg::HintHelp),
            (Action::Quit, Msg::HintQuit),
        ],
    );
    line.spans.insert(
        0,
        Span::styled(
            format!("{} · ", Msg::PresenterForSize.text(app.lang)),
            app.theme.warn(),
        ),
    );
    line
}

fn short_hints(app: &App, keys: &[(Action, Msg)]) -> Line<'static> {
    let t = &app.theme;
    let mut spans = Vec::new();
    for (i, (action, label)) in keys.iter().enumerate() {
        spans.push(Span::styled(app.keymap.key_for(*action), t.key()));
        let gap = if i + 1 < keys.len() { " " } else { "" };
        spans.push(Span::styled(
            format!(" {}{gap}", label.text(app.lang)),
            t.dim(),
        ));
    }
    Line::from(spans)
}
