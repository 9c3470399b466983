//! `plumdash completions`, `man` and `scenario`: generated from the clap
//! definitions (so they never drift from the real options) or the scenario
//! module, printed without starting anything.

use super::{Cli, Command, ScenarioSub};
use crate::scenario::Scenario;
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
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
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
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            writeln!(out, "plumdash: man pages written to {}", dir.display())
                .context("writing to stdout")?;
        }
        _ => return Ok(None),
    }
    out.flush().context("writing to stdout")?;
    Ok(Some(ExitCode::SUCCESS))
}
