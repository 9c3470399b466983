//! A hostile controller against the real dashboard: `plumdash attach` (release
//! binary, in a pty) against `tests/it/support/hostile.rs`.
//!
//! - time to the first screen holding a 100,000-key snapshot, and the
//!   dashboard's CPU until then, the snapshot chunked (well framed) vs as one
//!   line of a connection-close answer (no length, no chunking); a 5-key
//!   namespace as the same-run baseline;
//! - the dashboard's RSS and CPU over 30 s of `data: AAAA…` without end, beside
//!   its RSS on a well-behaved 5-key stream over the same 30 s.
//!
//! `cargo build --release && cargo bench --bench hostile`

mod common;
#[path = "../tests/it/support/hostile.rs"]
#[allow(dead_code)]
mod hostile;
#[path = "common/pty.rs"]
mod pty;

use common::{fmt_d, Table};
use hostile::{HostileController, Mode};
use std::num::NonZeroU16;
use std::process::Command;
use std::time::{Duration, Instant};

const KEYS: usize = 100_000;
const COLS: NonZeroU16 = NonZeroU16::new(120).unwrap();
const ROWS: NonZeroU16 = NonZeroU16::new(40).unwrap();
const ENDLESS_FOR: Duration = Duration::from_secs(30);

fn main() {
    if !common::benchmarking("hostile") {
        return;
    }
    let bin = common::sibling_binary("plumdash");
    let hz = common::ticks_per_sec();

    let mut table = Table::new(&[
        "snapshot",
        "framing",
        "spawn → first screen with it",
        "dashboard CPU until then",
    ]);
    for (what, mode, shows) in [
        (
            "5 keys (baseline)",
            Mode::HugeChunked(5),
            "(5 keys)".to_string(),
        ),
        (
            "100,000 keys",
            Mode::HugeChunked(KEYS),
            format!("of {KEYS})"),
        ),
        (
            "100,000 keys",
            Mode::HugeUnframed(KEYS),
            format!("of {KEYS})"),
        ),
    ] {
        let server = HostileController::start(mode);
        let (took, cpu_ticks) = first_screen(&bin, &server.url(), &shows);
        let framing = match mode {
            Mode::HugeUnframed(_) => "one line, connection-close (no length, no chunks)",
            _ => "chunked",
        };
        table.row(vec![
            what.to_string(),
            framing.to_string(),
            fmt_d(took),
            format!("{:.2} s", cpu_ticks as f64 / hz),
        ]);
    }
    table.print();

    let mut table = Table::new(&[
        "stream",
        "for",
        "RSS at the end",
        "RSS max",
        "dashboard CPU",
        "stream connections",
    ]);
    for (what, mode) in [
        ("well framed, 5 keys (baseline)", Mode::HugeChunked(5)),
        ("`data: AAAA…` without end", Mode::EndlessLine),
    ] {
        let server = HostileController::start(mode);
        let r = run_for(&bin, &server.url(), ENDLESS_FOR);
        table.row(vec![
            what.to_string(),
            humantime::format_duration(ENDLESS_FOR).to_string(),
            format!("{:.1} MB", r.rss_end_kb as f64 / 1024.0),
            format!("{:.1} MB", r.rss_max_kb as f64 / 1024.0),
            format!(
                "{:.1} % of a core",
                100.0 * r.cpu_ticks as f64 / hz / ENDLESS_FOR.as_secs_f64()
            ),
            server.stream_requests().to_string(),
        ]);
    }
    table.print();
}

fn attach(bin: &std::path::Path, url: &str) -> pty::PtyChild {
    let mut cmd = Command::new(bin);
    cmd.args([
        "attach",
        "--controller",
        url,
        "--app",
        hostile::NS,
        "--lang",
        "en",
    ])
    .env("TERM", "xterm-256color")
    .env_remove("PLUM_TOKEN")
    .env_remove("NO_COLOR");
    pty::spawn(&mut cmd, COLS.get(), ROWS.get())
}

fn stop(mut child: pty::PtyChild) {
    let _ = child.child.kill();
    let _ = child.child.wait();
}

/// From spawn to a screen containing `shows`; the dashboard's CPU ticks then.
fn first_screen(bin: &std::path::Path, url: &str, shows: &str) -> (Duration, u64) {
    let started = Instant::now();
    let child = attach(bin, url);
    let pid = child.child.id();
    let mut screen = vt100::Parser::new(ROWS, COLS, 0);
    let deadline = started + Duration::from_secs(120);
    loop {
        child.drain_into(&mut screen);
        if screen.screen().contents().contains(shows) {
            let took = started.elapsed();
            let ticks = common::cpu_ticks(pid).unwrap_or(0);
            stop(child);
            return (took, ticks);
        }
        assert!(
            Instant::now() < deadline,
            "no {shows:?} on screen:\n{}",
            screen.screen().contents()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Footprint {
    rss_end_kb: u64,
    rss_max_kb: u64,
    cpu_ticks: u64,
}

/// The dashboard on `url` for `span`: its RSS (sampled every 100 ms) and CPU.
fn run_for(bin: &std::path::Path, url: &str, span: Duration) -> Footprint {
    let child = attach(bin, url);
    let pid = child.child.id();
    let mut screen = vt100::Parser::new(ROWS, COLS, 0);
    let started = Instant::now();
    let mut rss_max_kb = 0;
    let mut rss_end_kb = 0;
    while started.elapsed() < span {
        child.drain_into(&mut screen);
        if let Some(kb) = common::rss_kb(pid) {
            rss_max_kb = rss_max_kb.max(kb);
            rss_end_kb = kb;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu_ticks = common::cpu_ticks(pid).unwrap_or(0);
    stop(child);
    Footprint {
        rss_end_kb,
        rss_max_kb,
        cpu_ticks,
    }
}
