//! `plumdash completions`, `man` and `scenario`: generated from the clap
//! definitions (so they never drift from the real options) or the scenario
//! module, printed without starting anything.

use super::{Cli, Command, ScenarioSub};
use crate::scenario::Scenario;
use crate::text::Lang;
use crate::tui::action::Action;
use crate::tui::keymap::{key_name, KeyMode, Keymap};
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::process::ExitCode;

/// Handles the commands that only print; `None` for every other command.
pub fn run(command: &Command) -> Result<Option<ExitCode>> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "plumdash", &mut out);
        }
        Command::Man { dir: None } => {
            out.write_all(&man_page()?)
                .context("writing the man page")?;
        }
        Command::Scenario(ScenarioSub::Example) => {
            out.write_all(crate::scenario::EXAMPLE.as_bytes())
                .context("writing to stdout")?;
        }
        Command::Scenario(ScenarioSub::Check { file }) => match Scenario::load(file) {
            Ok(_) => writeln!(out, "{}: ok", file.display()).context("writing to stdout")?,
            Err(e) => {
                eprintln!("plumdash: {}", crate::text_safety::escape_controls(&e));
                return Ok(Some(ExitCode::from(2)));
            }
        },
        Command::Man { dir: Some(dir) } => {
            // A folder that is not there yet is made, as `--db`'s is.
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the man page folder {}", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            // plumdash.1 again, with the dashboard's keys.
            let main_page = dir.join("plumdash.1");
            std::fs::write(&main_page, man_page()?)
                .with_context(|| format!("writing {}", main_page.display()))?;
            writeln!(out, "plumdash: man pages written to {}", dir.display())
                .context("writing to stdout")?;
        }
        _ => return Ok(None),
    }
    out.flush().context("writing to stdout")?;
    Ok(Some(ExitCode::SUCCESS))
}

/// plumdash(1): clap's page with a KEYS section (the dashboard's keys, from
/// the same table as its help and footers) before VERSION.
fn man_page() -> Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("rendering the man page")?;
    let text = String::from_utf8_lossy(&page).into_owned();
    let keys = keys_section(&Keymap::default());
    let text = match text.find(".SH VERSION") {
        Some(at) => format!("{}{keys}{}", &text[..at], &text[at..]),
        None => format!("{text}{keys}"),
    };
    Ok(text.into_bytes())
}

/// `.SH KEYS`: each dashboard key with its help line, then each dialog's keys.
fn keys_section(keymap: &Keymap) -> String {
    let lang = Lang::En;
    let mut rows: Vec<(Action, Vec<String>, &str)> = Vec::new();
    for b in keymap
        .bindings()
        .iter()
        .filter(|b| b.mode == KeyMode::Normal)
    {
        let name = key_name(b.key, b.modifiers);
        match rows.iter_mut().find(|(a, _, _)| *a == b.action) {
            Some((_, keys, _)) => keys.push(name),
            None => rows.push((b.action, vec![name], b.help.map_or("", |h| h.text(lang)))),
        }
    }
    let mut out = String::from(
        ".SH KEYS\nIn the dashboard (a keys file can rebind them: see \\fB\\-\\-keys\\fR).\n",
    );
    for (_, keys, help) in rows {
        out.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff(&keys.join(", ")),
            roff(help)
        ));
    }
    for (title, mode) in [
        ("signal menu", KeyMode::SignalMenu),
        ("reset prompt", KeyMode::Confirm),
        ("search", KeyMode::Search),
        ("log, while a search has a query", KeyMode::Found),
        ("help, while it scrolls", KeyMode::Help),
    ] {
        out.push_str(&format!(
            ".TP\nIn the {title}\n{}\n",
            roff(&keymap.mode_hints(mode, lang).join(" · "))
        ));
    }
    out
}

/// Text safe in a roff line: backslashes and hyphens escaped, no line read
/// as a request.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}"),
        false => text,
    }
}
