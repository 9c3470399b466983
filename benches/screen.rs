//! End to end, as a viewer sees it: the real `plumdash up` dashboard in a
//! pseudo-terminal (120×40), its output fed into a terminal model (`vt100`), and
//! a SIGKILL sent from outside straight to the worker's pid (learned from the
//! control socket's `status`). Measured per kill, all from the same run:
//!
//! - kill → new process running (the supervisor's `started_at_ms` − the kill's
//!   wall-clock ms; 1 ms resolution),
//! - kill → the new pid drawn in the instances table,
//! - kill → `RESUMED from N%` drawn in the instances table.
//!
//! CLI defaults except `--restart-delay 0s`; `--restart always` so a task that
//! completes starts again. Each run is killed once it has been up 1.1 s (past the
//! default crash-loop threshold of 1 s, so every restart is immediate) and while
//! under 90 %; `--step 300ms` leaves room for that.
//!
//! `cargo build --release && cargo bench --bench screen`
//! Settable: SCREEN_KILLS (default 60).

mod common;
#[path = "common/pty.rs"]
mod pty;

use common::{fmt_d, Samples, Table};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use plumdash::clock::now_ms;
use std::io::{BufRead, BufReader, Write};
use std::num::NonZeroU16;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const COLS: NonZeroU16 = NonZeroU16::new(120).unwrap();
const ROWS: NonZeroU16 = NonZeroU16::new(40).unwrap();
const UP_BEFORE_KILL: Duration = Duration::from_millis(1100);
const CYCLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The instance's pid, start time (unix ms) and the task's progress, from `status`.
fn status(socket: &Path) -> Option<(u32, u64, i64)> {
    let mut stream = UnixStream::connect(socket).ok()?;
    stream.write_all(b"{\"cmd\":\"status\"}\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    let v: serde_json::Value = serde_json::from_str(&line).ok()?;
    let inst = v["instances"].get(0)?;
    let pid = inst["pid"].as_u64()? as u32;
    let started = inst["started_at_ms"].as_u64()?;
    let progress = v["task"]["progress"].as_i64().unwrap_or(0);
    Some((pid, started, progress))
}

/// The instances-table row of the worker: (pid text, state text).
fn instance_row(screen: &vt100::Screen) -> Option<(String, String)> {
    let contents = screen.contents();
    let line = contents
        .lines()
        .find(|l| l.trim_start_matches('│').starts_with("screen-001"))?;
    let mut words = line.trim_start_matches('│').split_whitespace();
    let _id = words.next()?;
    let _node = words.next()?;
    let pid = words.next()?.to_string();
    let state: Vec<&str> = words.take(3).collect();
    Some((pid, state.join(" ")))
}

fn main() {
    if !common::benchmarking("screen") {
        return;
    }
    let kills: usize = std::env::var("SCREEN_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let plumdash = common::sibling_binary("plumdash");
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("ctl.sock");
    let mut cmd = Command::new(&plumdash);
    cmd.args([
        "up",
        "--restart-delay",
        "0s",
        "--restart",
        "always",
        "--step",
        "300ms",
        "--app",
        "screen",
        "--listen",
        "127.0.0.1:0",
    ])
    .arg("--db")
    .arg(dir.path().join("kv.db"))
    .arg("--control-socket")
    .arg(&socket)
    .env("TERM", "xterm-256color");
    let mut child = pty::spawn(&mut cmd, COLS.get(), ROWS.get());
    let mut parser = vt100::Parser::new(ROWS, COLS, 0);

    let mut running = Samples::default();
    let mut pid_drawn = Samples::default();
    let mut resumed_drawn = Samples::default();
    let mut missed = 0usize;
    let started = Instant::now();
    while resumed_drawn.len() + missed < kills && started.elapsed() < Duration::from_secs(600) {
        // Wait for a victim: up ≥ 1.1 s and under 90 %.
        let (pid, started_ms, _) = loop {
            child.drain_into(&mut parser);
            if let Some((pid, since, progress)) = status(&socket) {
                let up = now_ms().saturating_sub(since);
                if up >= UP_BEFORE_KILL.as_millis() as u64 && progress < 90 {
                    break (pid, since, progress);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        child.drain_into(&mut parser);
        let before = instance_row(parser.screen()).map(|(_, state)| state);
        let kill_ms = now_ms();
        let killed = Instant::now();
        if kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_err() {
            continue;
        }
        let mut new_pid_at = None;
        let mut resumed_at = None;
        let deadline = killed + CYCLE_TIMEOUT;
        while resumed_at.is_none() && Instant::now() < deadline {
            let Ok((at, bytes)) = child.output.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            parser.process(&bytes);
            let Some((shown_pid, state)) = instance_row(parser.screen()) else {
                continue;
            };
            let new_pid = shown_pid.parse::<u32>().is_ok_and(|p| p != pid);
            if new_pid && new_pid_at.is_none() {
                new_pid_at = Some(at);
            }
            if new_pid && state.starts_with("RESUMED from") && Some(&state) != before.as_ref() {
                resumed_at = Some(at);
            }
        }
        match (new_pid_at, resumed_at) {
            (Some(p), Some(r)) => {
                pid_drawn.push(p - killed);
                resumed_drawn.push(r - killed);
            }
            _ => {
                missed += 1;
                if std::env::var_os("SCREEN_DEBUG").is_some() {
                    eprintln!("missed: {:?}\n{}", before, parser.screen().contents());
                }
                continue;
            }
        }
        // The supervisor's own start time of the new run.
        if let Some((_, new_started, _)) = status(&socket).filter(|(p, _, _)| *p != pid) {
            if new_started >= started_ms {
                running.push(Duration::from_millis(new_started.saturating_sub(kill_ms)));
            }
        }
    }
    let _ = killpg(Pid::from_raw(child.child.id() as i32), Signal::SIGTERM);
    let _ = child.child.wait();

    let mut table = Table::new(&["measure (same run)", "kills", "p50", "p99", "max"]);
    for (what, s) in [
        (
            "SIGKILL → new process running (started_at_ms − kill ms, 1 ms resolution)",
            &running,
        ),
        ("SIGKILL → new pid drawn in the instances table", &pid_drawn),
        ("SIGKILL → `RESUMED from N%` drawn", &resumed_drawn),
    ] {
        table.row(vec![
            what.into(),
            s.len().to_string(),
            fmt_d(s.median()),
            fmt_d(s.p99()),
            fmt_d(s.max()),
        ]);
    }
    table.print();
    if missed > 0 {
        println!("{missed} kills did not show RESUMED within {CYCLE_TIMEOUT:?}");
    }
    let p99 = resumed_drawn.p99();
    println!(
        "goal: kill → RESUMED on screen p99 ≤ 50 ms (--restart-delay 0s): {} {}",
        fmt_d(p99),
        if p99 <= Duration::from_millis(50) && missed == 0 {
            "MET"
        } else {
            "MISSED"
        }
    );
}
