//! Scale: `plumdash up --headless` (the real binary, its embedded controller)
//! with N = 10, 100 and 1,000 kv-demo instances in one run, in both namespace
//! modes: one shared namespace, and one each (`--namespace-by instance`: one
//! change stream for all of them). Steps of 1 s (1,000 workers at 100 ms
//! would be 40,000 writes a second on 2 cores): each worker writes four keys a
//! step, so the load grows with N and the cost per instance should not.
//!
//! Per run, after every instance has started, its first write has been seen
//! (one namespace each) and a few seconds more — the start-up storm's lag is
//! printed on its own:
//! - plumdash's own CPU (its process only, from /proc: controller, feed,
//!   board, headless printing; the workers are other processes), per instance;
//! - change → screen lag: each `--events` line (what headless prints) read
//!   as it is written, against its `ts_ms` (for a namespace's news, the time
//!   the store committed the write behind it; for a process's, when it was
//!   seen), p50 / p99;
//! - plumdash's RSS at the end of the run.
//!
//! One random worker is SIGKILLed every 2 s; its `sh` loop starts it again
//! at once, so each kill is a crash, a recovery and a resume in the namespace.
//!
//! `cargo build --release && cargo bench --bench scale`
//! (`SCALE_N=10,100` picks the sizes, `SCALE_MODES=instance` the modes,
//! `SCALE_SECS=20` the measured time.)

mod common;

use common::{cpu_ticks, fmt_d, rss_kb, Samples, Table};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KILL_EVERY: Duration = Duration::from_secs(2);
/// After the last start, before measuring (the start-up burst settles).
const SETTLE: Duration = Duration::from_secs(5);

fn main() {
    if !common::benchmarking("scale") {
        return;
    }
    let plumdash = common::sibling_binary("plumdash");
    let kv_demo = common::sibling_binary("kv-demo");
    let sizes: Vec<usize> = std::env::var("SCALE_N")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000]);
    let secs: u64 = std::env::var("SCALE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut table = Table::new(&[
        "namespaces",
        "N",
        "start",
        "storm: until / lag p99",
        "CPU (plumdash)",
        "per instance",
        "vs N=10",
        "lag p50 / p99 / max",
        "events",
        "RSS end / max",
        "loadavg",
    ]);
    let mut summary = Vec::new();
    let modes: Vec<String> = std::env::var("SCALE_MODES")
        .ok()
        .map(|v| v.split(',').map(|m| m.trim().to_string()).collect())
        .unwrap_or_else(|| vec!["app".into(), "instance".into()]);
    for by in modes.iter().map(String::as_str) {
        let mut base: Option<f64> = None;
        for &n in &sizes {
            let run = run(&plumdash, &kv_demo, by, n, Duration::from_secs(secs));
            let per = run.cpu / n as f64;
            let base_per = *base.get_or_insert(per);
            table.row(vec![
                by.into(),
                n.to_string(),
                fmt_d(run.start),
                format!("{} / {}", fmt_d(run.ready), fmt_d(run.start_lag.p99())),
                format!("{:.1}% of a core", run.cpu),
                format!("{per:.3}%"),
                format!("{:.2}×", per / base_per.max(f64::EPSILON)),
                format!(
                    "{} / {} / {}",
                    fmt_d(run.lag.median()),
                    fmt_d(run.lag.p99()),
                    fmt_d(run.lag.max())
                ),
                run.lag.len().to_string(),
                format!(
                    "{:.1} / {:.1} MB",
                    run.rss_end_kb as f64 / 1024.0,
                    run.rss_max_kb as f64 / 1024.0
                ),
                run.load.clone(),
            ]);
            if !run.slow.is_empty() {
                println!("  events seen later than 100 ms, by kind: {:?}", run.slow);
            }
            summary.push((by, n, per / base_per.max(f64::EPSILON), run));
        }
    }
    table.print();
    for (by, n, ratio, run) in &summary {
        if *n == sizes.iter().copied().max().unwrap_or(0) {
            println!(
                "{by}: N={n} per-instance CPU {ratio:.2}× N={} (goal ≤ 1.2×), lag p99 {} after the start-up storm (goal < 100 ms; {} during it), RSS {:.1} MB (goal < 100 MB)",
                sizes.first().copied().unwrap_or(0),
                fmt_d(run.lag.p99()),
                fmt_d(run.start_lag.p99()),
                run.rss_max_kb as f64 / 1024.0
            );
        }
    }
}

struct Run {
    start: Duration,
    /// Spawn → every instance's first write seen (one namespace each), + 5 s.
    ready: Duration,
    /// Lag of the events printed during the start-up storm.
    start_lag: Samples,
    /// plumdash's process, % of a core, over the measured time.
    cpu: f64,
    lag: Samples,
    rss_end_kb: u64,
    rss_max_kb: u64,
    load: String,
    /// Events seen more than 100 ms after their time, by kind.
    slow: std::collections::BTreeMap<String, usize>,
}

fn run(plumdash: &Path, kv_demo: &Path, by: &str, n: usize, measure: Duration) -> Run {
    println!("-- {n} instances, namespace by {by} --");
    let dir = tempfile::tempdir().expect("tempdir");
    let events_path = dir.path().join("events.jsonl");
    let started = Instant::now();
    let mut child = Command::new(plumdash)
        .args(["up", "--headless", "--app", "scale"])
        .args(["--instances", &n.to_string(), "--namespace-by", by])
        .args(["--step", "1s", "--restart-delay", "200ms"])
        // kv-demo completes after ten steps: the loop runs it again at once,
        // so every instance keeps stepping, and a kill is resumed from.
        .arg("--cmd")
        .arg(format!("sh -c 'while :; do {}; done'", kv_demo.display()))
        .arg("--db")
        .arg(dir.path().join("kv.db"))
        .args(["--listen", "127.0.0.1:0"])
        .arg("--events")
        .arg(&events_path)
        .arg("--control-socket")
        .arg(dir.path().join("ctl.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("plumdash up starts");
    let pid = child.id();
    let mut tail = Tail::default();

    // Every instance started (and each first write seen so far, counted).
    let mut started_ids = std::collections::BTreeSet::new();
    let mut flagged = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while started_ids.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} instances started in 120 s",
            started_ids.len()
        );
        for line in tail.lines(&events_path) {
            if let Some(id) = line.value["instance"].as_str() {
                if line.value["kind"] == "started" {
                    started_ids.insert(id.to_string());
                } else if line.value["kind"] == "flag_set" {
                    flagged.insert(id.to_string());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = started.elapsed();
    println!("{n} instances started in {}", fmt_d(start));
    // The start-up storm (N processes exec'd, each connecting and writing its
    // first keys on 2 cores) is measured on its own: with one namespace each,
    // until every instance's first write (its flag) has been seen, and for 5 s
    // more; the steady figures come after it.
    let mut start_lag = Samples::default();
    let ready_by = Instant::now() + Duration::from_secs(120);
    let mut settle_until = None;
    loop {
        for line in tail.lines(&events_path) {
            if let Some(ts) = line.value["ts_ms"].as_u64() {
                start_lag.push(Duration::from_millis(line.read_ms.saturating_sub(ts)));
            }
            if line.value["kind"] == "flag_set" {
                if let Some(id) = line.value["instance"].as_str() {
                    flagged.insert(id.to_string());
                }
            }
        }
        let ready = by != "instance" || flagged.len() >= n || Instant::now() >= ready_by;
        match settle_until {
            None if ready => settle_until = Some(Instant::now() + SETTLE),
            Some(until) if Instant::now() >= until => break,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if by == "instance" && flagged.len() < n {
        println!("  only {} of {n} flags seen in 120 s", flagged.len());
    }
    let ready = started.elapsed();

    let hz = common::ticks_per_sec();
    let cpu0 = cpu_ticks(pid).unwrap_or(0);
    let t0 = Instant::now();
    let mut lag = Samples::default();
    let mut slow = std::collections::BTreeMap::new();
    let mut rss_max_kb = 0;
    let mut next_kill = Instant::now() + KILL_EVERY;
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d ^ n as u64;
    while t0.elapsed() < measure {
        for line in tail.lines(&events_path) {
            if let Some(ts) = line.value["ts_ms"].as_u64() {
                let late = Duration::from_millis(line.read_ms.saturating_sub(ts));
                if late > Duration::from_millis(100) {
                    let kind = line.value["kind"].as_str().unwrap_or("?").to_string();
                    *slow.entry(kind).or_insert(0) += 1;
                }
                lag.push(late);
            }
        }
        if Instant::now() >= next_kill {
            next_kill += KILL_EVERY;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            kill_a_worker(pid, rng);
            rss_max_kb = rss_max_kb.max(rss_kb(pid).unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let cpu = (cpu_ticks(pid).unwrap_or(0) - cpu0) as f64 / hz / t0.elapsed().as_secs_f64() * 100.0;
    let rss_end_kb = rss_kb(pid).unwrap_or(0);
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string();
    stop(&mut child);
    Run {
        start,
        ready,
        start_lag,
        cpu,
        lag,
        rss_end_kb,
        rss_max_kb: rss_max_kb.max(rss_end_kb),
        load,
        slow,
    }
}

/// SIGKILLs the kv-demo under one of plumdash's `sh` loops (picked by `rng`).
fn kill_a_worker(plumdash: u32, rng: u64) {
    let loops = children(plumdash);
    if loops.is_empty() {
        return;
    }
    let sh = loops[(rng % loops.len() as u64) as usize];
    for worker in children(sh) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(worker as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A process's children (every thread's), from /proc.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// SIGINT (the workers are stopped gracefully), then SIGKILL after 60 s.
fn stop(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The events file, read as it grows.
#[derive(Default)]
struct Tail {
    offset: u64,
    partial: String,
}

struct Line {
    value: serde_json::Value,
    /// When it was read, unix ms.
    read_ms: u64,
}

impl Tail {
    fn lines(&mut self, path: &Path) -> Vec<Line> {
        let Ok(mut file) = std::fs::File::open(path) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut text = String::new();
        let Ok(read) = file.read_to_string(&mut text) else {
            return Vec::new();
        };
        let read_ms = plumdash::clock::now_ms();
        self.offset += read as u64;
        self.partial.push_str(&text);
        let Some(end) = self.partial.rfind('\n') else {
            return Vec::new();
        };
        let complete: String = self.partial.drain(..=end).collect();
        complete
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .map(|value| Line { value, read_ms })
            .collect()
    }
}
