//! `plumdash verify`: headless crash-recovery QA. It runs a worker under the
//! supervisor, SIGKILLs it at scheduled progress points, stops it once with
//! SIGINT, takes the embedded controller away once while the worker restarts,
//! lets every task finish, and checks the recovery invariants 1–6 of DESIGN.md
//! against the full history of facts it watched.
//!
//! The run is a sequence of tasks (0 → 100%). Kills happen in order; when the
//! next kill point is not ahead of the current task, that task is finished and
//! a new one started. A last task holds the SIGINT check (at 30%) and the
//! controller outage (at 60%).
//!
//! Consistency (invariant 3) is judged after each whole feed event: a plumdash
//! batch arrives as one event, a poll as one consistent read. A torn state left
//! behind when a worker dies is a violation; torn states between the separate
//! writes of a live worker are counted as a warning.

mod config;
pub mod history;
mod html;
mod invariants;
pub mod junit;
pub mod nodes;
mod reading;
pub mod report;
mod runner;
pub mod schedule;
mod setup;

pub use config::{ReportOutputs, VerifyConfig, DEFAULT_STEP};

use crate::clock;
use crate::session::{Session, SessionConfig};
use crate::supervisor::{RestartConfig, RestartPolicy};
use anyhow::{Context, Result};
use report::Report;
use runner::Runner;
use setup::{clear_namespace, Scratch};
use std::net::SocketAddr;
use std::process::ExitCode;

/// `plumdash verify`: runs, prints, and returns 0 (all held), 1 (a violation)
/// or 2 (usage or setup error, one line on stderr).
pub async fn main(mut config: VerifyConfig) -> ExitCode {
    // A verify killed mid-run must not leave its worker writing.
    config.orphan_guard = std::env::current_exe().ok();
    if let Some(scenario) = config.nodes.clone() {
        return nodes_main(&scenario, &config).await;
    }
    let outputs = config.outputs.clone();
    let report = match run(config).await {
        Ok(r) => r,
        Err(e) => return setup_error(&e),
    };
    let json = report.to_json();
    if let Some(path) = &outputs.report {
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        let text = crate::text_safety::escape_json_controls(&text).into_owned();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("plumdash verify: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &outputs.junit {
        let written = junit::to_junit(&report).and_then(|xml| std::fs::write(path, xml));
        if let Err(e) = written {
            eprintln!("plumdash verify: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &outputs.html {
        let written = html::to_html(&report)
            .and_then(|page| std::fs::write(path, page).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("plumdash verify: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if outputs.json {
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        println!("{}", crate::text_safety::escape_json_controls(&text));
    } else {
        print!("{}", report.render(clock::Zone::Local));
    }
    ExitCode::from(report.exit_code)
}

/// The node scenario: runs, prints (or `--json`), writes `--report`.
async fn nodes_main(scenario: &nodes::NodeScenario, config: &VerifyConfig) -> ExitCode {
    let outputs = &config.outputs;
    let Some(program) = config.orphan_guard.clone() else {
        eprintln!("plumdash verify: cannot find the plumdash binary (it runs the agents)");
        return ExitCode::from(2);
    };
    let report = match nodes::run(scenario, config, program).await {
        Ok(r) => r,
        Err(e) => return setup_error(&e),
    };
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    let text = crate::text_safety::escape_json_controls(&text).into_owned();
    if let Some(path) = &outputs.report {
        if let Err(e) = std::fs::write(path, text.clone() + "\n") {
            eprintln!("plumdash verify: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if outputs.json {
        println!("{text}");
    } else {
        print!(
            "{}",
            crate::text_safety::escape_controls_keep_newlines(&report.render())
        );
    }
    ExitCode::from(report.exit_code)
}

/// A setup error (nothing verified): one line on stderr, exit 2.
fn setup_error(e: &anyhow::Error) -> ExitCode {
    let e = format!("{e:#}").replace('\n', " ");
    eprintln!(
        "plumdash verify: {}",
        crate::text_safety::escape_controls(&e)
    );
    ExitCode::from(2)
}

/// A quarter of a step, within 50 ms ..= 500 ms.
fn poll_interval(step: Option<std::time::Duration>) -> std::time::Duration {
    use std::time::Duration;
    (step.unwrap_or(config::DEFAULT_STEP) / 4)
        .clamp(Duration::from_millis(50), Duration::from_millis(500))
}

/// Runs the whole verification. `Err` is a setup error (nothing verified).
pub async fn run(config: VerifyConfig) -> Result<Report> {
    let scratch = match &config.controller {
        Some(_) => None,
        None => Some(Scratch::new()?),
    };
    if let Some(url) = &config.controller {
        clear_namespace(url, &config).await?;
    }
    let session_config = SessionConfig {
        remote_controller: config.controller.clone(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        db: scratch
            .as_ref()
            .map(|s| s.dir.join("kv.db"))
            .unwrap_or_default(),
        token: config.token.clone(),
        app: config.app.clone(),
        instances: 1,
        cmd: config.cmd.clone(),
        step: config.step,
        restart: RestartConfig {
            policy: RestartPolicy::OnFailure,
            delay: config.restart_delay,
            max_restarts: Some(20),
            ..RestartConfig::default()
        },
        orphan_guard: config.orphan_guard.clone(),
        // Without a change stream (an original controller) the namespace is polled:
        // often enough that each step is seen several times.
        poll_interval: poll_interval(config.step),
        keys: config.keys.clone(),
        pattern: config.pattern,
        unsafe_worker: config.unsafe_worker,
        ..SessionConfig::default()
    };
    let session = Session::start(session_config)
        .await
        .context("starting the worker")?;
    let instance = session
        .supervisor()
        .instances()
        .first()
        .map(|s| s.id.clone())
        .context("no worker instance")?;
    let mut runner = Runner::new(session, instance, config);
    runner.banner();
    let outcome = runner.run_all().await;
    let report = runner.finish(outcome).await;
    drop(scratch);
    Ok(report)
}
