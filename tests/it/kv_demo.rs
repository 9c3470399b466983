//! The real `kv-demo` binary against a real controller (in-process, or the
//! `plumdash controller` binary when a test stops and restarts it), with
//! 50 ms steps. Output is awaited line by line with generous timeouts; fixed
//! sleeps are used only where the scenario itself is "wait this long".

use crate::support::{self, free_port, read_lines, ControllerProcess, PATIENCE};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use plumdash::controller::{self, ControllerConfig, RunningController};
use plumdash::demo::{keys, BinaryCheckpoint};
use plumdash::kv::{DistributedMemory, Entry, ValueType};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const STEP_MS: &str = "50";

const NORMAL_START: &str = "🆕 正常启动（无崩溃记录）";
const TASK_START: &str = "🚀 开始执行任务...";
const CRASH_DETECTED: &str = "🔄 检测到崩溃标记，正在恢复...";
const TASK_DONE: &str = "✅ 任务完成！";
const UNREACHABLE: &str = "unreachable";

// ---------------------------------------------------------------- helpers

/// A running `kv-demo` and every line it has printed so far.
struct Worker {
    child: Child,
    rx: Receiver<String>,
    lines: Vec<String>,
}

impl Worker {
    fn spawn(url: &str, app: &str) -> Worker {
        Self::spawn_with(url, app, &[])
    }

    fn spawn_with(url: &str, app: &str, env: &[(&str, &str)]) -> Worker {
        let mut cmd = support::kv_demo(url, app, STEP_MS);
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning kv-demo");
        let rx = read_lines(child.stdout.take().expect("piped stdout"));
        Worker {
            child,
            rx,
            lines: Vec::new(),
        }
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for a line containing `needle`; returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        if let Some(line) = self.lines.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.lines.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no line with {needle:?} ({e:?}); output so far:\n{}",
                    self.lines.join("\n")
                ),
            }
        }
    }

    /// Waits for the exit (within `limit`) and for the rest of the output.
    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("polling kv-demo") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "kv-demo still running after {limit:?}; output:\n{}",
                self.lines.join("\n")
            );
            thread::sleep(Duration::from_millis(5));
        };
        self.drain();
        status
    }

    /// Collects output until the pipe closes.
    fn drain(&mut self) {
        loop {
            match self.rx.recv_timeout(PATIENCE) {
                Ok(line) => self.lines.push(line),
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => panic!("stdout never closed"),
            }
        }
    }

    fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaping kv-demo");
        self.drain();
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut s);
        }
        s
    }

    /// The lines after the banner (which ends with its third rule).
    fn after_banner(&self) -> Vec<&str> {
        let rules: Vec<usize> = (0..self.lines.len())
            .filter(|&i| self.lines[i].starts_with("====="))
            .collect();
        assert!(rules.len() >= 3, "no banner in:\n{}", self.lines.join("\n"));
        self.lines[rules[2] + 1..]
            .iter()
            .map(String::as_str)
            .collect()
    }

    fn progress(&self) -> Vec<u32> {
        progress_values(&self.lines)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The N of every `📊 进度: N% | …` line.
fn progress_values(lines: &[String]) -> Vec<u32> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("📊 进度: ")?.split('%').next()?.parse().ok())
        .collect()
}

fn progress_line(p: u32) -> String {
    format!("📊 进度: {p}% | 计数: {} | 检查点: step_{}", p / 10, p / 10)
}

/// Progress over consecutive runs never goes back and reaches 100 once.
fn assert_monotonic_and_complete_once(runs: &[&Worker]) {
    let all: Vec<u32> = runs.iter().flat_map(|w| w.progress()).collect();
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "went backwards: {all:?}"
    );
    assert_eq!(all.iter().filter(|&&p| p == 100).count(), 1, "{all:?}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime")
}

/// A namespace's entries by key.
struct Snapshot(BTreeMap<String, Entry>);

impl Snapshot {
    fn value(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|e| e.value.as_str())
    }

    fn entry(&self, key: &str) -> &Entry {
        self.0
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from {:?}", self.0.keys()))
    }

    /// (progress, counter, checkpoint) when the checkpoint is whole.
    fn checkpoint(&self) -> Option<(u32, u32, String)> {
        Some((
            self.value(keys::PROGRESS)?.parse().ok()?,
            self.value(keys::COUNTER)?.parse().ok()?,
            self.value(keys::CHECKPOINT)?.to_string(),
        ))
    }
}

/// Reads namespaces of a controller from the test thread (or any thread).
#[derive(Clone)]
struct Reader {
    rt: tokio::runtime::Handle,
    url: String,
}

impl Reader {
    fn snapshot(&self, ns: &str) -> Snapshot {
        self.try_snapshot(ns).expect("reading the namespace")
    }

    fn try_snapshot(&self, ns: &str) -> Result<Snapshot, plumdash::kv::KvError> {
        let dm = DistributedMemory::create(ns, &self.url)?;
        let entries = self.rt.block_on(dm.get_all())?;
        Ok(Snapshot(
            entries.into_iter().map(|e| (e.key.clone(), e)).collect(),
        ))
    }
}

/// A controller inside the test process, on an ephemeral port.
struct InProcess {
    rt: tokio::runtime::Runtime,
    ctl: Option<RunningController>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    fn start() -> InProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = runtime();
        let ctl = rt
            .block_on(controller::start(ControllerConfig {
                listen: "127.0.0.1:0".parse().expect("address"),
                db: dir.path().join("kv.db"),
                token: None,
                fallback_to_free_port: false,
                cluster: Default::default(),
                max_upload: plumdash::controller::MAX_UPLOAD_BYTES,
            }))
            .expect("starting the controller");
        InProcess {
            rt,
            ctl: Some(ctl),
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        self.ctl.as_ref().expect("running").url()
    }

    fn reader(&self) -> Reader {
        Reader {
            rt: self.rt.handle().clone(),
            url: self.url(),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(ctl) = self.ctl.take() {
            let _ = self.rt.block_on(ctl.shutdown());
        }
    }
}

struct FixedPort {
    port: u16,
    db: PathBuf,
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl FixedPort {
    fn new() -> FixedPort {
        let dir = tempfile::tempdir().expect("tempdir");
        FixedPort {
            port: free_port(),
            db: dir.path().join("kv.db"),
            _dir: dir,
            rt: runtime(),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&self) -> ControllerProcess {
        ControllerProcess::spawn(&self.db, self.port)
    }

    fn reader(&self) -> Reader {
        Reader {
            rt: self.rt.handle().clone(),
            url: self.url(),
        }
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn full_run_completes_with_all_keys_and_clears_the_flag() {
    let kv = InProcess::start();
    let app = "full-run";
    let mut w = Worker::spawn(&kv.url(), app);
    let status = w.wait_exit(PATIENCE);
    assert!(status.success(), "{status:?}\n{}", w.lines.join("\n"));

    let out = w.after_banner();
    assert_eq!(out[..2], [NORMAL_START, TASK_START]);
    let steps: Vec<String> = (1..=10).map(|s| progress_line(s * 10)).collect();
    assert_eq!(
        out[2..12],
        steps.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    assert_eq!(out[12], TASK_DONE);
    assert!(out.contains(&"  总进度: 100%"), "{out:#?}");
    assert!(
        out.contains(&"  binary.checkpoint = <48 bytes> (bytes)"),
        "{out:#?}"
    );
    assert!(out.contains(&"  important.data = critical_value_3 (string)"));

    let s = kv.reader().snapshot(app);
    assert_eq!(s.checkpoint(), Some((100, 10, "step_10".into())));
    assert_eq!(s.value(keys::TASK_STATUS), Some("completed"));
    assert!(s.value(keys::COMPLETE_TIME).is_some());
    assert!(s.value(keys::CRASHED).is_none(), "flag left set");
    assert!(s.value(keys::CRASH_TIME).is_some());
    assert_eq!(s.entry(keys::PROGRESS).value_type, ValueType::Int);
    assert_eq!(s.value(keys::IMPORTANT_DATA), Some("critical_value_3"));
    let calc = s.entry(keys::CALCULATION_RESULT);
    assert_eq!(
        (calc.value.as_str(), calc.value_type),
        ("15.707950", ValueType::Double)
    );
    let blob = s
        .entry(keys::BINARY_CHECKPOINT)
        .bytes()
        .expect("base64 bytes");
    assert_eq!(blob.len(), 48);
    let decoded = BinaryCheckpoint::decode(&blob).expect("48-byte struct");
    assert_eq!((decoded.task_id, decoded.progress), (12345, 50));
    assert_eq!(decoded.label, "Step5 checkpoint");

    // After completion the next start is a new task from 0%.
    let mut again = Worker::spawn(&kv.url(), app);
    again.wait_for("进度: 10%");
    assert_eq!(
        again.after_banner()[..3],
        [NORMAL_START, TASK_START, &progress_line(10)]
    );
    assert!(again.wait_exit(PATIENCE).success());
}

#[test]
fn sigkill_at_half_way_then_restart_resumes_from_the_checkpoint() {
    let kv = InProcess::start();
    let app = "sigkill-resume";
    let mut first = Worker::spawn(&kv.url(), app);
    first.wait_for("进度: 50%");
    first.kill9();

    let s = kv.reader().snapshot(app);
    assert_eq!(
        s.value(keys::CRASHED),
        Some("true"),
        "flag must survive SIGKILL"
    );
    let (p, c, name) = s.checkpoint().expect("a whole checkpoint");
    // A loaded machine may let one more step land before the kill arrives.
    let last_printed = *first.progress().last().expect("progress lines");
    assert!(
        p == last_printed || p == last_printed + 10,
        "{p} vs {last_printed}"
    );
    assert_eq!((c, name.clone()), (p / 10, format!("step_{}", p / 10)));

    let mut second = Worker::spawn(&kv.url(), app);
    second.wait_for(&progress_line(p + 10));
    let recovery = [
        CRASH_DETECTED.to_string(),
        format!("  上次进度: {p}%"),
        format!("  任务计数: {c}"),
        format!("  检查点: {name}"),
        format!("✅ 状态恢复完成，从 {p}% 继续执行"),
        progress_line(p + 10),
    ];
    assert_eq!(
        second.after_banner(),
        recovery.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(second.wait_exit(PATIENCE).success());
    assert!(second.lines.iter().any(|l| l == TASK_DONE));
    assert_monotonic_and_complete_once(&[&first, &second]);
    assert!(kv.reader().snapshot(app).value(keys::CRASHED).is_none());
}

#[test]
fn a_task_killed_at_100_percent_is_finished_not_redone() {
    let kv = InProcess::start();
    let app = "killed-at-100";
    // What a SIGKILL between the last step and the completion writes leaves.
    let seed = [
        (keys::PROGRESS, "100", ValueType::Int),
        (keys::COUNTER, "10", ValueType::Int),
        (keys::CHECKPOINT, "step_10", ValueType::String),
        (keys::TASK_STATUS, "running", ValueType::String),
        (keys::CRASHED, "true", ValueType::Bool),
    ];
    let dm = DistributedMemory::create(app, &kv.url()).expect("client");
    let items: Vec<plumdash::kv::BatchItem> = seed
        .iter()
        .map(|(k, v, t)| plumdash::kv::BatchItem::new(*k, *v, *t))
        .collect();
    kv.rt.block_on(dm.put_batch(&items)).expect("seeding");

    let mut w = Worker::spawn(&kv.url(), app);
    let status = w.wait_exit(PATIENCE);
    assert!(status.success(), "{status:?}\n{}", w.lines.join("\n"));
    let out = w.after_banner();
    assert!(
        !out.contains(&NORMAL_START),
        "taken for a fresh start: {out:#?}"
    );
    assert!(out.contains(&CRASH_DETECTED), "{out:#?}");
    assert!(out.contains(&TASK_DONE), "{out:#?}");
    assert!(w.progress().is_empty(), "steps were redone: {out:#?}");

    let s = kv.reader().snapshot(app);
    assert_eq!(s.checkpoint(), Some((100, 10, "step_10".into())));
    assert_eq!(s.value(keys::TASK_STATUS), Some("completed"));
    assert!(s.value(keys::COMPLETE_TIME).is_some());
    assert!(s.value(keys::CRASHED).is_none(), "flag left set");
}

#[test]
fn sigint_and_sigterm_stop_gracefully_and_the_task_resumes_without_recovery() {
    let kv = InProcess::start();
    let reader = kv.reader();
    let app = "graceful-stop";
    let mut first = Worker::spawn(&kv.url(), app);
    first.wait_for("进度: 30%");
    let asked = Instant::now();
    kill(first.pid(), Signal::SIGINT).expect("SIGINT");
    let status = first.wait_exit(PATIENCE);
    let took = asked.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(1), "graceful stop took {took:?}");
    let tail: Vec<&str> = first
        .lines
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "[KV Demo] Received signal 2, shutting down gracefully...",
            "[KV Demo] Cleared crash flag"
        ]
    );

    let s = reader.snapshot(app);
    assert!(
        s.value(keys::CRASHED).is_none(),
        "flag left set after SIGINT"
    );
    assert_eq!(s.value(keys::STATUS), Some("stopped"));
    assert!(s.value(keys::STOP_TIME).is_some());
    let (p, _, _) = s.checkpoint().expect("checkpoint kept");
    assert_eq!(p, *first.progress().last().expect("progress"));

    // Not a crash: the normal-start line, then the paused task continues.
    let mut second = Worker::spawn(&kv.url(), app);
    second.wait_for(&progress_line(p + 10));
    let out = second.after_banner();
    assert_eq!(out[0], NORMAL_START);
    assert!(out[1].contains(&format!("{p}%")), "{out:?}");
    assert_eq!(out[2..], [TASK_START, &progress_line(p + 10)]);
    assert!(!second.lines.iter().any(|l| l == CRASH_DETECTED));

    // SIGTERM is graceful too (signal 15).
    kill(second.pid(), Signal::SIGTERM).expect("SIGTERM");
    assert!(second.wait_exit(PATIENCE).success());
    assert!(second
        .lines
        .iter()
        .any(|l| l == "[KV Demo] Received signal 15, shutting down gracefully..."));
    assert!(reader.snapshot(app).value(keys::CRASHED).is_none());

    let mut third = Worker::spawn(&kv.url(), app);
    assert!(third.wait_exit(PATIENCE).success());
    assert_eq!(third.after_banner()[0], NORMAL_START);
    assert_monotonic_and_complete_once(&[&first, &second, &third]);
}

#[test]
fn a_watcher_never_sees_a_torn_checkpoint_across_kills() {
    let kv = InProcess::start();
    let app = "torn-watch";
    let stop = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let torn = Arc::new(Mutex::new(Vec::<String>::new()));
    let watcher = {
        let (reader, stop, polls, torn) = (kv.reader(), stop.clone(), polls.clone(), torn.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = reader.try_snapshot(app) {
                    polls.fetch_add(1, Ordering::Relaxed);
                    let parts = [keys::PROGRESS, keys::COUNTER, keys::CHECKPOINT]
                        .map(|k| s.value(k).map(str::to_string));
                    let whole = match s.checkpoint() {
                        Some((p, c, name)) => p == 10 * c && name == format!("step_{c}"),
                        None => parts.iter().all(Option::is_none),
                    };
                    if !whole {
                        torn.lock().expect("lock").push(format!("{parts:?}"));
                    }
                }
                thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // Kill at a few points, each a little after a step line so some kills
    // land while the next checkpoint is being written.
    let mut runs = Vec::new();
    for (at, jitter_ms) in [(20, 13), (40, 27), (70, 44)] {
        let mut w = Worker::spawn(&kv.url(), app);
        w.wait_for(&format!("进度: {at}%"));
        thread::sleep(Duration::from_millis(jitter_ms));
        w.kill9();
        runs.push(w);
    }
    let mut last = Worker::spawn(&kv.url(), app);
    assert!(last.wait_exit(PATIENCE).success());
    runs.push(last);
    stop.store(true, Ordering::Relaxed);
    watcher.join().expect("watcher thread");

    for w in &runs[1..] {
        assert!(w.lines.iter().any(|l| l == CRASH_DETECTED), "{:?}", w.lines);
    }
    assert_monotonic_and_complete_once(&runs.iter().collect::<Vec<_>>());
    assert!(polls.load(Ordering::Relaxed) > 20, "the watcher barely ran");
    let torn = torn.lock().expect("lock");
    assert!(torn.is_empty(), "torn checkpoints seen: {torn:?}");
}

#[test]
fn controller_outage_mid_run_loses_and_repeats_no_step() {
    let env = FixedPort::new();
    let ctl = env.start();
    let app = "outage";
    let mut w = Worker::spawn(&env.url(), app);
    w.wait_for("进度: 30%");
    ctl.stop();
    w.wait_for(UNREACHABLE);
    // The scenario: the controller stays down for about 2 s.
    thread::sleep(Duration::from_secs(2));
    let _ctl = env.start();
    w.wait_for("reachable again");
    assert!(w.wait_exit(PATIENCE).success());
    assert_eq!(w.progress(), (1..=10).map(|s| s * 10).collect::<Vec<_>>());
    assert_eq!(
        w.lines.iter().filter(|l| l.contains(UNREACHABLE)).count(),
        1
    );
    let s = env.reader().snapshot(app);
    assert_eq!(s.checkpoint(), Some((100, 10, "step_10".into())));
    assert!(s.value(keys::CRASHED).is_none());
}

#[test]
fn unreachable_at_start_waits_and_resumes_the_saved_task() {
    let env = FixedPort::new();
    let app = "late-controller";
    let ctl = env.start();
    let mut first = Worker::spawn(&env.url(), app);
    first.wait_for("进度: 30%");
    first.kill9();
    let (p, _, _) = env.reader().snapshot(app).checkpoint().expect("checkpoint");
    ctl.stop();

    let mut second = Worker::spawn(&env.url(), app);
    second.wait_for(UNREACHABLE);
    thread::sleep(Duration::from_secs(1));
    let _ctl = env.start();
    second.wait_for(&progress_line(p + 10));
    assert!(second.wait_exit(PATIENCE).success());
    let out = second.after_banner();
    assert!(out[0].contains(UNREACHABLE), "{out:?}");
    assert!(
        !out.contains(&NORMAL_START),
        "took the outage for a first start: {out:?}"
    );
    let block = out
        .iter()
        .position(|l| *l == CRASH_DETECTED)
        .expect("recovery block");
    assert_eq!(out[block + 1], format!("  上次进度: {p}%"));
    assert_eq!(second.progress()[0], p + 10);
    assert_monotonic_and_complete_once(&[&first, &second]);
}

#[test]
fn gives_up_with_exit_1_when_the_controller_never_answers() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut w = Worker::spawn_with(&url, "give-up", &[("KV_DEMO_GIVE_UP", "300ms")]);
    let status = w.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(1), "{:?}", w.lines);
    assert!(w.lines.iter().any(|l| l.contains(UNREACHABLE)));
    assert!(w.stderr().contains("giving up"));
    assert!(!w.lines.iter().any(|l| l == NORMAL_START));
}
