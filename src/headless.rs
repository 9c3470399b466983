//! `plumdash up --headless`: the embedded controller and the supervised
//! workers without the dashboard; one printed line per lifecycle and
//! recovery event, optionally JSON lines to a file. Printed text from outside
//! (worker output, stored values) has its control characters escaped. Under a
//! flood, repeating kinds are coalesced per instance per second (`flood.rs`).

use crate::clock;
use crate::ctl_socket::StatusPublisher;
use crate::driver::Driver;
use crate::recovery::{ProcessExit, TimelineEvent, TimelineKind};
use crate::session::{Session, WorkerExit};
use crate::signals::Termination;
use crate::text_safety::{escape_controls, escape_controls_keep_newlines, escape_json_controls};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

mod flood;

/// How long facts are still read after the workers stopped (their last writes).
const DRAIN: Duration = Duration::from_millis(300);
/// Longer, while the session still owes facts (a fresh read of the namespace
/// that judges how a run ended): every exit is told.
const DRAIN_OWED: Duration = Duration::from_secs(3);

/// `status`, when given, is updated for `plumdash ctl` by the driver.
pub async fn run_headless(
    session: Session,
    events_path: Option<&Path>,
    status: Option<StatusPublisher>,
    lang: crate::text::Lang,
    mut signals: Termination,
) -> Result<()> {
    let mut events_file = match events_path {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the events file {}", path.display()))?,
        ),
        None => None,
    };

    print_banner(&session);

    let mut driver = Driver::new(session).publish_to(status);
    let mut stopping: Option<tokio::task::JoinHandle<()>> = None;
    let mut drain_until: Option<tokio::time::Instant> = None;
    let mut drain_limit: Option<tokio::time::Instant> = None;
    // Repeating lines (torn, flag, feed) once per kind and instance per second.
    let mut flood = flood::Flood::default();
    loop {
        let flood_due = flood.next_due().map(|at| {
            let wait = at.saturating_sub(crate::clock::now_ms());
            tokio::time::Instant::now() + Duration::from_millis(wait)
        });
        let deadline =
            drain_until.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            sig = signals.recv(), if stopping.is_none() => {
                println!("plumdash: received signal {sig}, stopping workers gracefully…");
                let supervisor = driver.session().supervisor().clone();
                let grace = driver.session().config().stop_grace;
                stopping = Some(tokio::spawn(async move {
                    supervisor.shutdown_all(grace).await;
                }));
            }
            _ = async { if let Some(t) = stopping.as_mut() { let _ = t.await; } }, if stopping.is_some() && drain_until.is_none() => {
                drain_until = Some(tokio::time::Instant::now() + DRAIN);
                drain_limit = Some(tokio::time::Instant::now() + DRAIN_OWED);
            }
            _ = tokio::time::sleep_until(deadline), if drain_until.is_some() => {
                let owed = driver.session().owes_facts();
                if !owed || drain_limit.is_some_and(|l| tokio::time::Instant::now() >= l) {
                    break;
                }
                drain_until = Some(tokio::time::Instant::now() + Duration::from_millis(50));
            }
            _ = async { if let Some(t) = flood_due { tokio::time::sleep_until(t).await } }, if flood_due.is_some() => {
                write_held(&flood.closed(crate::clock::now_ms()), events_file.as_mut(), lang)?;
            }
            step = driver.next() => {
                let Some(step) = step else { break };
                let now = crate::clock::now_ms();
                write_held(&flood.closed(now), events_file.as_mut(), lang)?;
                for ev in &step.events {
                    if !flood.admit(ev, now) {
                        continue;
                    }
                    // Events quote worker output and stored values: escaped.
                    let text = crate::text::timeline::event(ev, lang);
                    println!("{}  {}", clock::Zone::Local.hms_millis(ev.at), escape_controls(&text));
                    if let Some(line) = last_words(driver.session(), ev) {
                        println!("              last output: {}", escape_controls(&line));
                    }
                    if let Some(file) = events_file.as_mut() {
                        let mut json = ev.to_json();
                        if let Some(node) = node_of(&driver, ev) {
                            json["node"] = node.into();
                        }
                        let json = json.to_string();
                        writeln!(file, "{}", escape_json_controls(&json))
                            .context("writing the events file")?;
                    }
                }
            }
        }
    }
    let (session, _) = driver.into_parts();
    session.shutdown(WorkerExit::StopGracefully).await?;
    println!("plumdash: stopped");
    Ok(())
}

/// Lines a flood held back, as one line (and one JSON line) each.
fn write_held(
    held: &[flood::Held],
    file: Option<&mut std::fs::File>,
    lang: crate::text::Lang,
) -> Result<()> {
    for h in held {
        let secs = h.window_ms / 1000;
        let text = crate::text::timeline::held(h.instance.as_deref(), h.of, h.count, secs, lang);
        println!(
            "{}  {}",
            clock::Zone::Local.hms_millis(h.ts_ms),
            escape_controls(&text)
        );
    }
    if let Some(file) = file {
        for h in held {
            let json = serde_json::to_string(h).context("writing the events file")?;
            writeln!(file, "{}", escape_json_controls(&json)).context("writing the events file")?;
        }
    }
    Ok(())
}

/// The node of an instance event: where the cluster placed it, else the
/// supervisor's node label.
fn node_of(driver: &Driver, ev: &TimelineEvent) -> Option<String> {
    let id = ev.instance.as_deref()?;
    if let Some(node) = driver.board().tracker_of(id).nodes().node_of(id) {
        return Some(node.to_string());
    }
    // This instance's alone: the whole view is not worked out per event.
    driver
        .session()
        .instance(id)
        .map(|s| s.node)
        .filter(|n| !n.is_empty())
}

/// For a worker that exited with an error code, its last line of output:
/// without a dashboard that is the only hint of why (a SIGKILL says nothing).
fn last_words(session: &Session, ev: &TimelineEvent) -> Option<String> {
    let TimelineKind::Exited {
        exit: ProcessExit::Code(_),
        ..
    } = &ev.kind
    else {
        return None;
    };
    let id = ev.instance.as_deref()?;
    let output = session.supervisor().recent_output(id, 5);
    // Skip the supervisor's own run separators.
    output
        .iter()
        .rev()
        .map(|l| l.text.trim())
        .find(|t| !t.is_empty() && !t.starts_with("──"))
        .map(str::to_string)
}

fn print_banner(session: &Session) {
    let where_ = match session.embedded_controller() {
        Some(c) => format!("embedded, db {}", c.db.display()),
        None => "remote".to_string(),
    };
    let workers = match session.local_nodes() {
        Some(nodes) => format!(
            "nodes {} (agent pids {}) run {} × {} (app {}) on {}",
            nodes
                .nodes()
                .into_iter()
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
                .join(", "),
            nodes
                .nodes()
                .into_iter()
                .map(|(_, pid)| pid.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            session.config().instances,
            session.worker_command(),
            session.config().app,
            nodes
                .nodes()
                .first()
                .map_or_else(|| "nodeA".to_string(), |(name, _)| name.clone()),
        ),
        None => {
            let all = session.supervisor().instances();
            let standby = all
                .iter()
                .filter(|s| s.role == crate::supervisor::Role::Standby)
                .count();
            let parts = if standby > 0 {
                format!(" (1 active, {standby} standing by)")
            } else {
                String::new()
            };
            format!(
                "supervising {} × {}{parts} (app {})",
                all.len(),
                session.worker_command(),
                session.config().app
            )
        }
    };
    let banner = format!(
        "plumdash: controller {} ({where_})\nplumdash: {workers}; Ctrl-C stops them gracefully",
        session.controller_url(),
    );
    println!("{}", escape_controls_keep_newlines(&banner));
}
