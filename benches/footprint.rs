//! Footprint: the real `plumdash` dashboard in a 120×40 tmux pane — CPU
//! (utime+stime from /proc/<pid>/stat) over 10 s and VmRSS, idle and while
//! one worker runs at 100 ms steps. Baselines measured at the same time: an
//! idle `sleep` pane in the same tmux server, and the tmux server itself
//! (which draws what the dashboard writes).
//!
//! `cargo build --release && cargo bench --bench footprint`

mod common;

use common::{cpu_ticks, rss_kb, Table};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(2);

fn main() {
    if !common::benchmarking("footprint") {
        return;
    }
    if Command::new("tmux").arg("-V").output().is_err() {
        println!("footprint: skipped (tmux is not installed)");
        return;
    }
    let plumdash = common::sibling_binary("plumdash");
    let kv_demo = common::sibling_binary("kv-demo");
    let dir = tempfile::tempdir().expect("tempdir");
    let hz = common::ticks_per_sec();

    let mut table = Table::new(&[
        "process (10 s window)",
        "scenario",
        "CPU % of a core",
        "VmRSS",
    ]);
    let idle_cmd = format!(
        "exec {} up --instances 0 --db {} --listen 127.0.0.1:0",
        plumdash.display(),
        dir.path().join("idle.db").display()
    );
    // kv-demo completes after 10 steps (1 s at 100 ms); a shell loop runs
    // it again at once, so the dashboard watches a worker stepping every
    // 100 ms for the whole window.
    let busy_cmd = format!(
        "exec {} up --instances 1 --step 100ms --restart-delay 0s --db {} --listen 127.0.0.1:0 \
         --cmd \"sh -c 'while :; do {}; done'\"",
        plumdash.display(),
        dir.path().join("busy.db").display(),
        kv_demo.display()
    );
    let mut goal_idle = None;
    let mut goal_rss = 0u64;
    for (scenario, cmd) in [
        ("idle (0 instances)", idle_cmd),
        ("1 worker, 100 ms steps", busy_cmd),
    ] {
        let m = measure(&cmd, hz);
        if scenario.starts_with("idle") {
            goal_idle = Some(m.dashboard_cpu);
        }
        goal_rss = goal_rss.max(m.dashboard_rss_kb);
        table.row(vec![
            "plumdash dashboard".into(),
            scenario.into(),
            format!("{:.2}%", m.dashboard_cpu),
            format!("{:.1} MB", m.dashboard_rss_kb as f64 / 1024.0),
        ]);
        table.row(vec![
            "  idle `sleep` pane (baseline)".into(),
            scenario.into(),
            format!("{:.2}%", m.sleep_cpu),
            format!("{:.1} MB", m.sleep_rss_kb as f64 / 1024.0),
        ]);
        table.row(vec![
            "  tmux server (draws both panes)".into(),
            scenario.into(),
            format!("{:.2}%", m.tmux_cpu),
            format!("{:.1} MB", m.tmux_rss_kb as f64 / 1024.0),
        ]);
        if let Some(w) = m.workers_cpu {
            table.row(vec![
                "  the worker (sh loop + kv-demo runs)".into(),
                scenario.into(),
                format!("{w:.2}%"),
                "-".into(),
            ]);
        }
    }
    table.print();
    let idle = goal_idle.unwrap_or(f64::NAN);
    println!(
        "goal: idle CPU ≤ 0.5% of a core: {idle:.2}% {}; RSS ≤ 25 MB: {:.1} MB {}",
        if idle <= 0.5 { "MET" } else { "MISSED" },
        goal_rss as f64 / 1024.0,
        if goal_rss <= 25 * 1024 {
            "MET"
        } else {
            "MISSED"
        }
    );
}

struct Measured {
    dashboard_cpu: f64,
    dashboard_rss_kb: u64,
    sleep_cpu: f64,
    sleep_rss_kb: u64,
    tmux_cpu: f64,
    tmux_rss_kb: u64,
    workers_cpu: Option<f64>,
}

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", socket, "-f", "/dev/null"])
        .args(args)
        .output()
        .expect("tmux");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Direct children of a process.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// CPU ticks of a process, the children it reaped, and its descendants alive now.
fn tree_ticks(pid: u32) -> u64 {
    let mut total = common::cpu_ticks_with_reaped(pid).unwrap_or(0);
    for child in children(pid) {
        total += tree_ticks(child);
    }
    total
}

fn measure(cmd: &str, hz: f64) -> Measured {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let socket = format!("plumdash-bench-{}-{run}", std::process::id());
    tmux(
        &socket,
        &[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            "bench",
            cmd,
        ],
    );
    tmux(
        &socket,
        &["new-window", "-d", "-t", "bench", "exec sleep 1000"],
    );
    let pid_of = |target: &str, what: &str| -> u32 {
        for _ in 0..50 {
            if let Ok(pid) = tmux(&socket, &["display", "-p", "-t", target, what]).parse() {
                return pid;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("tmux did not report {what} of {target} (did `{cmd}` exit at once?)");
    };
    let server = pid_of("bench:0", "#{pid}");
    let dash = pid_of("bench:0", "#{pane_pid}");
    let sleeper = pid_of("bench:1", "#{pane_pid}");
    std::thread::sleep(SETTLE);

    let workers_before: u64 = children(dash).iter().map(|&c| tree_ticks(c)).sum();
    let before = [dash, sleeper, server].map(|p| cpu_ticks(p).unwrap_or(0));
    let start = Instant::now();
    std::thread::sleep(WINDOW);
    let after = [dash, sleeper, server].map(|p| cpu_ticks(p).unwrap_or(0));
    let workers_after: u64 = children(dash).iter().map(|&c| tree_ticks(c)).sum();
    let secs = start.elapsed().as_secs_f64();
    let pct = |i: usize| (after[i] - before[i]) as f64 / hz / secs * 100.0;
    let has_workers = !children(dash).is_empty();
    let m = Measured {
        dashboard_cpu: pct(0),
        dashboard_rss_kb: rss_kb(dash).unwrap_or(0),
        sleep_cpu: pct(1),
        sleep_rss_kb: rss_kb(sleeper).unwrap_or(0),
        tmux_cpu: pct(2),
        tmux_rss_kb: rss_kb(server).unwrap_or(0),
        workers_cpu: has_workers
            .then(|| workers_after.saturating_sub(workers_before) as f64 / hz / secs * 100.0),
    };

    // SIGTERM: the dashboard stops its workers gracefully and exits.
    let leftovers = descendants(dash);
    let _ = Command::new("kill")
        .args(["-TERM", &dash.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{dash}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in leftovers {
        if Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
    tmux(&socket, &["kill-server"]);
    m
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for child in children(pid) {
        out.push(child);
        out.extend(descendants(child));
    }
    out
}
