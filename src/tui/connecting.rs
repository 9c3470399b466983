//! The screen shown while `attach` reaches its controller, before the
//! dashboard's session exists: from the first frame it says what it waits for
//! and since when (`connecting to URL… 3 s`), and `q`, Esc or Ctrl-C quit at
//! once. A controller that accepts and never answers no longer means a blank
//! terminal that ignores `q`.

use crate::text::panes::connecting;
use crate::text::{Lang, Msg};
use crate::text_safety::escape_controls;
use anyhow::{Context, Result};
use crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures_util::StreamExt;
use ratatui::layout::{Alignment, Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use std::future::Future;
use std::time::{Duration, Instant};

/// How the wait ended.
pub enum Waited<T> {
    Done(T),
    /// The person quit first.
    Quit,
}

/// Runs `work` while the terminal shows that `url` is being reached; the
/// terminal is given back as it was either way.
pub async fn wait<T>(url: &str, lang: Lang, work: impl Future<Output = T>) -> Result<Waited<T>> {
    let mut terminal = ratatui::init();
    let result = show_until(&mut terminal, url, lang, work).await;
    ratatui::restore();
    result
}

async fn show_until<T>(
    terminal: &mut ratatui::DefaultTerminal,
    url: &str,
    lang: Lang,
    work: impl Future<Output = T>,
) -> Result<Waited<T>> {
    let started = Instant::now();
    let mut work = std::pin::pin!(work);
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let url = escape_controls(url).into_owned();
    loop {
        tokio::select! {
            done = &mut work => return Ok(Waited::Done(done)),
            event = keys.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    let ctrl_c = key.code == KeyCode::Char('c')
                        && key.modifiers.contains(KeyModifiers::CONTROL);
                    if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                        return Ok(Waited::Quit);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                None => return Ok(Waited::Quit),
            },
            _ = tick.tick() => {
                let text = connecting(&url, started.elapsed().as_secs(), lang);
                let hint = format!("q: {}", Msg::HintQuit.text(lang));
                terminal
                    .draw(|frame| {
                        let [_, middle, _] = Layout::vertical([
                            Constraint::Fill(1),
                            Constraint::Length(2),
                            Constraint::Fill(1),
                        ])
                        .areas(frame.area());
                        let lines = vec![
                            Line::styled(text, Style::new().add_modifier(Modifier::BOLD)),
                            Line::raw(hint),
                        ];
                        frame.render_widget(
                            Paragraph::new(lines).alignment(Alignment::Center),
                            middle,
                        );
                    })
                    .context("drawing")?;
            }
        }
    }
}
