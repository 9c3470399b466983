//! Kill → restart: SIGKILL to a real `kv-demo` worker → death observed → new
//! process running, → the new run's crash flag on the change feed, → its first
//! resumed checkpoint. The restart settings are the CLI's own defaults except
//! `--restart-delay 0s`: each run is killed once it has been up past the default
//! crash-loop threshold (1 s), as a `kill -9` from a shell meets it, so no
//! restart is a crash-loop one. Step 150 ms, so a task (1.5 s) outlives that.
//! Baseline in the same run: the bare OS cost — SIGKILL + waitpid + spawn
//! of the same binary with `std::process`, no supervisor.
//!
//! `cargo build --release && cargo bench --bench restart`

mod common;

use common::{fmt_d, Samples, Table};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use plumdash::kv::{DistributedMemory, Entry, FeedMode, WatchEvent, WatchOptions};
use plumdash::supervisor::{
    EventKind, ExitKind, InstanceAction, RestartConfig, RestartPolicy, Supervisor,
    SupervisorConfig, WorkerSpec, DEFAULT_CRASH_LOOP_UNDER,
};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const CYCLES: usize = 100;
const DEADLINE: Duration = Duration::from_secs(300);
const STEP_MS: &str = "150";
/// How long each run is up before it is killed: past the crash-loop threshold.
const UP_BEFORE_KILL: Duration = DEFAULT_CRASH_LOOP_UNDER.saturating_add(Duration::from_millis(50));

fn main() {
    if !common::benchmarking("restart") {
        return;
    }
    let kv_demo = common::sibling_binary("kv-demo");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cycles = rt.block_on(supervised(&kv_demo));
    let raw = bare_os(&kv_demo);

    let mut death = Samples::default();
    let mut running = Samples::default();
    let mut running_ts = Samples::default();
    let mut checkpoint = Samples::default();
    let mut flag = Samples::default();
    for c in &cycles {
        flag.push(c.flag_seen - c.kill);
        death.push(c.exit_seen - c.kill);
        running.push(c.started_seen - c.kill);
        running_ts.push(Duration::from_millis(
            c.started_ts_ms.saturating_sub(c.kill_ms),
        ));
        checkpoint.push(c.checkpoint_seen - c.kill);
    }
    let mut table = Table::new(&["measure", "samples", "p50", "p99", "max", "vs bare OS p50"]);
    let ratio = |s: &Samples| {
        format!(
            "{:.1}×",
            s.median().as_secs_f64() / raw.median().as_secs_f64()
        )
    };
    table.row(vec![
        "bare OS: SIGKILL → waitpid → spawn returns (baseline)".into(),
        raw.len().to_string(),
        fmt_d(raw.median()),
        fmt_d(raw.p99()),
        fmt_d(raw.max()),
        "1.0×".into(),
    ]);
    table.row(vec![
        "SIGKILL → Exited event received".into(),
        death.len().to_string(),
        fmt_d(death.median()),
        fmt_d(death.p99()),
        fmt_d(death.max()),
        ratio(&death),
    ]);
    table.row(vec![
        "SIGKILL → Started event received (new pid running)".into(),
        running.len().to_string(),
        fmt_d(running.median()),
        fmt_d(running.p99()),
        fmt_d(running.max()),
        ratio(&running),
    ]);
    table.row(vec![
        "  same, Started.ts_ms − kill wall ms (1 ms resolution)".into(),
        running_ts.len().to_string(),
        fmt_d(running_ts.median()),
        fmt_d(running_ts.p99()),
        fmt_d(running_ts.max()),
        "-".into(),
    ]);
    table.row(vec![
        "SIGKILL → new run's crash flag on the feed (worker up, KV reached)".into(),
        flag.len().to_string(),
        fmt_d(flag.median()),
        fmt_d(flag.p99()),
        fmt_d(flag.max()),
        ratio(&flag),
    ]);
    table.row(vec![
        format!("SIGKILL → first resumed checkpoint on the feed (includes one {STEP_MS} ms step)"),
        checkpoint.len().to_string(),
        fmt_d(checkpoint.median()),
        fmt_d(checkpoint.p99()),
        fmt_d(checkpoint.max()),
        ratio(&checkpoint),
    ]);
    table.print();
    let p99 = running.p99();
    println!(
        "goal: kill → new process running p99 ≤ 10 ms: {} {} (original agent: up to 5 s)",
        fmt_d(p99),
        if p99 <= Duration::from_millis(10) {
            "MET"
        } else {
            "MISSED"
        }
    );
}

struct Cycle {
    kill: Instant,
    kill_ms: u64,
    exit_seen: Instant,
    started_seen: Instant,
    started_ts_ms: u64,
    flag_seen: Instant,
    checkpoint_seen: Instant,
}

#[derive(Default)]
struct Pending {
    kill: Option<(Instant, u64)>,
    exit_seen: Option<Instant>,
    started: Option<(Instant, u64)>,
    flag: Option<Instant>,
}

fn has_key(entries: &[Entry], key: &str) -> bool {
    entries.iter().any(|e| e.key == key)
}

fn progress(entries: &[Entry]) -> Option<i64> {
    entries
        .iter()
        .find(|e| e.key == "task.progress")
        .and_then(|e| e.value.parse().ok())
}

async fn supervised(kv_demo: &Path) -> Vec<Cycle> {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = common::start_controller(dir.path()).await;
    let dm = DistributedMemory::create("bench", &running.url()).expect("client");
    let mut feed = dm.subscribe(WatchOptions {
        mode: FeedMode::Stream,
        ..WatchOptions::default()
    });
    let (supervisor, mut events) = Supervisor::new(SupervisorConfig {
        app_name: "bench".into(),
        controller_base: Some(running.url()),
        restart: RestartConfig {
            policy: RestartPolicy::OnFailure,
            delay: Duration::ZERO,
            ..RestartConfig::default()
        },
        ..SupervisorConfig::default()
    });
    let spec = WorkerSpec::new(kv_demo).env("KV_DEMO_STEP_MS", STEP_MS);
    let id = supervisor.spawn_instance(spec).await.expect("spawn");

    let mut cycles = Vec::new();
    let mut pending: Option<Pending> = None;
    let mut pid: Option<u32> = None;
    let mut run_started = Instant::now();
    let mut flag_seen = false;
    let deadline = Instant::now() + DEADLINE;
    while cycles.len() < CYCLES && Instant::now() < deadline {
        tokio::select! {
            event = events.recv() => {
                let Ok(event) = event else { continue };
                let now = Instant::now();
                match event.kind {
                    EventKind::Started { pid: p, .. } => {
                        pid = Some(p);
                        run_started = now;
                        flag_seen = false;
                        if let Some(c) = pending.as_mut() {
                            c.started = Some((now, event.ts_ms));
                        }
                    }
                    EventKind::Exited { exit, .. } => {
                        pid = None;
                        if exit == ExitKind::Completed {
                            // The kill lost the race with completion: start over.
                            pending = None;
                            supervisor.send(&id, InstanceAction::Start).await.expect("start");
                        } else if let Some(c) = pending.as_mut() {
                            c.exit_seen = Some(now);
                        }
                    }
                    _ => {}
                }
            }
            change = feed.recv() => {
                let now = Instant::now();
                let entries = match change {
                    Some(WatchEvent::Batch(entries)) => entries,
                    Some(WatchEvent::Put(entry)) => vec![entry],
                    Some(_) => continue,
                    None => break,
                };
                if pid.is_none() {
                    continue;
                }
                // The new run first sets the crash flag, then checkpoints:
                // a checkpoint before its flag is a late write of the old run.
                if has_key(&entries, "app.crashed") {
                    flag_seen = true;
                    if let Some(c) = pending.as_mut() {
                        c.flag.get_or_insert(now);
                    }
                    continue;
                }
                let Some(p) = progress(&entries).filter(|_| flag_seen) else { continue };
                if let Some(c) = pending.take() {
                    if let (Some((kill_at, kill_ms)), Some(exit_seen), Some((started_seen, started_ts_ms)), Some(flag_at)) =
                        (c.kill, c.exit_seen, c.started, c.flag)
                    {
                        cycles.push(Cycle {
                            kill: kill_at,
                            kill_ms,
                            exit_seen,
                            started_seen,
                            started_ts_ms,
                            flag_seen: flag_at,
                            checkpoint_seen: now,
                        });
                    }
                }
                if p < 100 && now.duration_since(run_started) >= UP_BEFORE_KILL {
                    if let Some(p) = pid {
                        let kill_ms = plumdash::supervisor::unix_ms(SystemTime::now());
                        let at = Instant::now();
                        if kill(Pid::from_raw(p as i32), Signal::SIGKILL).is_ok() {
                            pending = Some(Pending { kill: Some((at, kill_ms)), ..Pending::default() });
                            flag_seen = false;
                        }
                    }
                }
                // A run that completes before it was up long enough is started
                // again by its Exited (Completed).
            }
        }
    }
    supervisor.shutdown_all(Duration::from_secs(2)).await;
    drop(feed);
    running.shutdown().await.expect("shutdown");
    cycles
}

/// SIGKILL → waitpid → spawn of the same binary, straight through the OS.
fn bare_os(kv_demo: &Path) -> Samples {
    let spawn = || {
        Command::new(kv_demo)
            // Nothing listens there: the worker just retries until killed.
            .env("CONTROLLER_BASE", "http://127.0.0.1:9")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kv-demo")
    };
    let mut child = spawn();
    let mut samples = Samples::default();
    for _ in 0..CYCLES {
        std::thread::sleep(Duration::from_millis(5));
        let t = Instant::now();
        child.kill().expect("kill");
        child.wait().expect("wait");
        child = spawn();
        samples.push(t.elapsed());
    }
    let _ = child.kill();
    let _ = child.wait();
    samples
}
