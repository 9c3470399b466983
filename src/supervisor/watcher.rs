//! Attach mode over time: rescans for workers we did not start and follows them across
//! restarts done by someone else (a Plum agent, a shell loop, a person).
//!
//! One row per instance (`PLUM_INSTANCE_ID`): the worker process of its tree, not
//! its wrappers. A death is seen at once through a pidfd (not only at the next
//! rescan), so the namespace can be read while it still shows how the run ended.
//! The worker's output is followed where it lands (its stdout file, or the file
//! its `tee` writes).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::clock::unix_secs;

use super::attach::{ForeignProcess, ProcessFinder, Stdout};
use super::events::{EventKind, EventSink};
use super::exit::ExitKind;
use super::output::{LineSplitter, OutputBuffer, OutputStream, DEFAULT_MAX_LINE_BYTES};
use super::snapshot::{InstanceSnapshot, Lifecycle, Origin, Role};

/// Lines of output kept per attached instance.
const OUTPUT_LINES: usize = 5_000;
/// How much of a followed file's end is shown when following starts.
const FOLLOW_TAIL_BYTES: u64 = 16 * 1024;
/// Most bytes read from a followed file per pass.
const FOLLOW_CHUNK: u64 = 1 << 20;

/// What to watch and how often.
#[derive(Clone)]
pub struct WatcherConfig {
    pub app_name: String,
    /// The worker program's process name (`kv-demo`); its wrappers are not workers.
    pub worker_name: String,
    pub interval: Duration,
    /// The pids of workers a supervisor of ours owns (e.g. `Supervisor::owned_pids`):
    /// they are left to it and not reported twice.
    pub owned_by: Option<OwnedPids>,
    /// Keeps only the processes this says are ours (e.g. those writing to our
    /// controller: another plumdash's workers of the same app are not).
    pub only: Option<ProcessFilter>,
    /// Watching began before any worker could exist (`up --nodes`, before its
    /// agents): whatever the first scan does not find was seen starting, even
    /// in the second watching began (the kernel's start second can be a second early).
    pub fresh: bool,
    /// Where a worker's output is kept when its stdout cannot be read back
    /// (`up --nodes`: the agent keeps one log per instance).
    pub output_file: Option<OutputFile>,
}

/// The file a found worker's output is kept in by whoever started it, if any.
pub type OutputFile = Arc<dyn Fn(&ForeignProcess) -> Option<std::path::PathBuf> + Send + Sync>;

/// Asks, at each rescan, which pids are someone else's to report.
pub type OwnedPids = Arc<dyn Fn() -> Vec<u32> + Send + Sync>;

/// Says whether a found process is one to watch.
pub type ProcessFilter = Arc<dyn Fn(&ForeignProcess) -> bool + Send + Sync>;

/// A running rescan loop. Dropping it stops the loop.
pub struct ProcessWatcher {
    tracker: Arc<Mutex<AttachTracker>>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
    /// Wakes the loop for a scan now (see [`ProcessWatcher::rescan`]).
    wake: Arc<Notify>,
}

impl ProcessWatcher {
    /// Scans at once, then every `interval` and at every death; reports into `events`.
    pub fn spawn(config: WatcherConfig, events: EventSink) -> ProcessWatcher {
        let since = if config.fresh {
            0
        } else {
            unix_secs(SystemTime::now())
        };
        let tracker = Arc::new(Mutex::new(AttachTracker::new(
            config.app_name.clone(),
            since,
        )));
        let cancel = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(scan_loop(
            config,
            events,
            tracker.clone(),
            cancel.clone(),
            wake.clone(),
        ));
        ProcessWatcher {
            tracker,
            cancel,
            task: Some(task),
            wake,
        }
    }

    /// Scans now rather than at the next interval: the caller has a sign that a
    /// worker just started (its start keys reached the namespace).
    pub fn rescan(&self) {
        self.wake.notify_one();
    }

    /// Every instance seen so far (live or not), ordered by id.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        lock(&self.tracker)
            .entries
            .values()
            .map(|entry| entry.snapshot.clone())
            .collect()
    }

    /// The live worker behind an instance, to show or to signal (it re-checks identity).
    pub fn process(&self, instance: &str) -> Option<ForeignProcess> {
        lock(&self.tracker)
            .entries
            .get(instance)
            .and_then(|entry| entry.current.clone())
    }

    /// The worker's output as far as it can be read (and notes on where it goes).
    pub fn output(&self, instance: &str) -> Option<OutputBuffer> {
        lock(&self.tracker)
            .entries
            .get(instance)
            .map(|entry| entry.output.clone())
    }

    /// Stops the loop and waits for it.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ProcessWatcher {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn lock(tracker: &Mutex<AttachTracker>) -> MutexGuard<'_, AttachTracker> {
    tracker.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn scan_loop(
    config: WatcherConfig,
    events: EventSink,
    tracker: Arc<Mutex<AttachTracker>>,
    cancel: CancellationToken,
    wake: Arc<Notify>,
) {
    let mut finder = Some(ProcessFinder::new(
        config.app_name.clone(),
        config.worker_name.clone(),
    ));
    let mut followers = Some(Followers::default());
    let died = Arc::new(Notify::new());
    let mut death_watches: HashMap<(u32, u64), JoinHandle<()>> = HashMap::new();
    let mut ticks = tokio::time::interval(config.interval.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticks.tick() => {}
            () = died.notified() => {}
            () = wake.notified() => {}
        }
        let exclude = config
            .owned_by
            .as_ref()
            .map(|owned| owned())
            .unwrap_or_default();
        let Some(mut scanner) = finder.take() else {
            break;
        };
        // Reading /proc for every process blocks; keep it off the async workers.
        let only = config.only.clone();
        let kept = config.output_file.clone();
        let scanned = tokio::task::spawn_blocking(move || {
            let mut found = scanner.scan(&exclude);
            if let Some(only) = only {
                found.retain(|p| only(p));
            }
            // A pipe to its agent: follow the log the agent keeps instead.
            if let Some(kept) = kept {
                for p in found.iter_mut().filter(|p| p.stdout.file().is_none()) {
                    if let Some(path) = kept(p) {
                        p.stdout = Stdout::Kept { path };
                    }
                }
            }
            (scanner, found)
        })
        .await;
        let Ok((scanner, found)) = scanned else {
            break;
        };
        finder = Some(scanner);
        let (changes, live, targets) = {
            let mut tracker = lock(&tracker);
            let changes = tracker.update(found, Instant::now());
            (changes, tracker.live(), tracker.follow_targets())
        };
        for (instance, kind) in changes {
            events.emit(&instance, kind);
        }
        // A pidfd per live worker wakes the loop the moment it dies.
        death_watches.retain(|key, task| {
            let keep = live.iter().any(|p| (p.pid, p.start_time_secs) == *key);
            if !keep {
                task.abort();
            }
            keep
        });
        for process in live {
            let key = (process.pid, process.start_time_secs);
            if death_watches.contains_key(&key) {
                continue;
            }
            if let Some(task) = watch_death(process, died.clone()) {
                death_watches.insert(key, task);
            }
        }
        if let Some(mut follow) = followers.take() {
            let read = tokio::task::spawn_blocking(move || {
                follow.read(targets);
                follow
            })
            .await;
            followers = read.ok();
        }
    }
    for task in death_watches.into_values() {
        task.abort();
    }
}

/// Wakes `died` when `process` exits (its pidfd turns readable). `None` when no
/// pidfd can be had (old kernel): the periodic rescan still notices the death.
fn watch_death(process: ForeignProcess, died: Arc<Notify>) -> Option<JoinHandle<()>> {
    let fd = pidfd_open(process.pid).ok()?;
    // The pid may have been recycled between the scan and the open.
    if process.check_identity().is_err() {
        died.notify_one();
        return None;
    }
    // SAFETY: an `OwnedFd` is an open descriptor that stays the same until dropped,
    // and the `AsyncFd` owns it from here on.
    let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()?;
    Some(tokio::spawn(async move {
        if fd.readable().await.is_ok() {
            died.notify_one();
        }
    }))
}

fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    let pid = nix::libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1;
    // no memory is shared with the kernel.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::from(std::io::ErrorKind::Other))?;
    // SAFETY: the descriptor was just returned by the kernel and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// What a scan pass hands to the file followers: instance, file, buffer, run.
type FollowTarget = (String, PathBuf, OutputBuffer, u32);

/// Follows output files (`tail -F`-like: a truncated file is read again from the top).
#[derive(Default)]
struct Followers {
    states: HashMap<String, Follow>,
}

struct Follow {
    path: PathBuf,
    offset: u64,
    lines: LineSplitter,
    /// Started mid-file: the first (partial) line is skipped.
    skip_partial: bool,
}

impl Followers {
    fn read(&mut self, targets: Vec<FollowTarget>) {
        self.states
            .retain(|id, _| targets.iter().any(|(t, ..)| t == id));
        for (id, path, buffer, run) in targets {
            let state = self.states.entry(id).or_insert_with(|| Follow::new(&path));
            if state.path != path {
                *state = Follow::new(&path);
            }
            state.read(&buffer, run);
        }
    }
}

impl Follow {
    fn new(path: &std::path::Path) -> Follow {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        let offset = len.saturating_sub(FOLLOW_TAIL_BYTES);
        Follow {
            path: path.to_path_buf(),
            offset,
            lines: LineSplitter::new(DEFAULT_MAX_LINE_BYTES),
            skip_partial: offset > 0,
        }
    }

    fn read(&mut self, buffer: &OutputBuffer, run: u32) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // Truncated (tee opens its file afresh at every start): from the top.
            self.offset = 0;
            self.skip_partial = false;
        }
        if len == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        let Ok(n) = file.take(FOLLOW_CHUNK).read_to_end(&mut bytes) else {
            return;
        };
        self.offset += n as u64;
        let mut chunk = &bytes[..];
        if self.skip_partial {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    chunk = &chunk[end + 1..];
                    self.skip_partial = false;
                }
                None => return,
            }
        }
        self.lines
            .feed(chunk, |line| buffer.push(run, OutputStream::Stdout, line));
    }
}

/// What an attached process frozen in `/proc` shows (the signal is not known).
const FROZEN_SEEN: &str = "frozen";

/// Links what each scan finds to the instances seen before.
pub(crate) struct AttachTracker {
    app_name: String,
    /// When watching began: a worker started before it was found running, not
    /// seen starting.
    since_secs: u64,
    /// Everything the first scan finds was running when we looked.
    scanned: bool,
    entries: BTreeMap<String, Tracked>,
}

struct Tracked {
    snapshot: InstanceSnapshot,
    current: Option<ForeignProcess>,
    seen_since: Instant,
    output: OutputBuffer,
    /// The last file its output went to: still read after it dies, so the
    /// lines it wrote last (a completion, a crash) are not lost with it.
    followed: Option<PathBuf>,
}

impl AttachTracker {
    pub(crate) fn new(app_name: String, since_secs: u64) -> Self {
        AttachTracker {
            app_name,
            since_secs,
            scanned: false,
            entries: BTreeMap::new(),
        }
    }

    fn live(&self) -> Vec<ForeignProcess> {
        self.entries
            .values()
            .filter_map(|entry| entry.current.clone())
            .collect()
    }

    fn follow_targets(&self) -> Vec<FollowTarget> {
        self.entries
            .iter()
            .filter_map(|(id, entry)| {
                let path = entry
                    .current
                    .as_ref()
                    .and_then(|p| p.stdout.file())
                    .or(entry.followed.as_deref())?
                    .to_path_buf();
                Some((id.clone(), path, entry.output.clone(), entry.snapshot.run))
            })
            .collect()
    }

    /// Applies one scan; returns the events it implies, in order.
    pub(crate) fn update(
        &mut self,
        found: Vec<ForeignProcess>,
        now: Instant,
    ) -> Vec<(String, EventKind)> {
        let mut changes = Vec::new();
        // First the deaths, so a replacement found in the same scan can take the slot.
        for (id, entry) in &mut self.entries {
            let Some(current) = &entry.current else {
                continue;
            };
            match found.iter().find(|process| process.same_identity(current)) {
                Some(still) => {
                    let frozen = still.frozen.then_some(FROZEN_SEEN);
                    if frozen != entry.snapshot.paused {
                        entry.snapshot.paused = frozen;
                        changes.push((
                            id.clone(),
                            if still.frozen {
                                EventKind::Frozen { signal: None }
                            } else {
                                EventKind::Continued
                            },
                        ));
                    }
                    if still.stdout != current.stdout {
                        entry.output.push(
                            entry.snapshot.run,
                            OutputStream::Supervisor,
                            still.stdout.describe(),
                        );
                    }
                    if let Some(path) = still.stdout.file() {
                        entry.followed = Some(path.to_path_buf());
                    }
                    entry.current = Some(still.clone());
                }
                None => {
                    changes.push((
                        id.clone(),
                        EventKind::Exited {
                            pid: current.pid,
                            run: entry.snapshot.run,
                            exit: ExitKind::Disappeared,
                            status: None,
                            uptime: now.saturating_duration_since(entry.seen_since),
                        },
                    ));
                    entry.current = None;
                    entry.snapshot.pid = None;
                    entry.snapshot.phase = Lifecycle::Exited;
                    entry.snapshot.paused = None;
                    entry.snapshot.last_exit = Some(ExitKind::Disappeared);
                }
            }
        }
        for process in found {
            let known = self.entries.values().any(|entry| {
                entry
                    .current
                    .as_ref()
                    .is_some_and(|current| current.same_identity(&process))
            });
            if known {
                continue;
            }
            let mut key = process
                .instance_id
                .clone()
                .unwrap_or_else(|| self.app_name.clone());
            if self
                .entries
                .get(&key)
                .is_some_and(|entry| entry.current.is_some())
            {
                // Another live worker already holds this id: track this one on its own.
                key = format!("{key}@{}", process.pid);
            }
            match self.entries.get_mut(&key) {
                Some(entry) => {
                    entry.snapshot.run += 1;
                    entry.snapshot.restarts += 1;
                    changes.push((
                        key.clone(),
                        EventKind::Started {
                            pid: process.pid,
                            run: entry.snapshot.run,
                            node: entry.snapshot.node.clone(),
                        },
                    ));
                    entry.attach(process, now);
                }
                None => {
                    // Running before we looked: found, its start unseen.
                    let kind = if !self.scanned || process.start_time_secs < self.since_secs {
                        EventKind::Attached {
                            pid: process.pid,
                            name: process.name.clone(),
                        }
                    } else {
                        EventKind::Started {
                            pid: process.pid,
                            run: 1,
                            node: process
                                .node_id
                                .clone()
                                .unwrap_or_else(|| "local".to_string()),
                        }
                    };
                    changes.push((key.clone(), kind));
                    let mut entry = Tracked {
                        snapshot: attached_snapshot(&key, &self.app_name, &process),
                        current: None,
                        seen_since: now,
                        output: OutputBuffer::new(OUTPUT_LINES),
                        followed: None,
                    };
                    entry.attach(process, now);
                    self.entries.insert(key, entry);
                }
            }
        }
        self.scanned = true;
        changes
    }
}

impl Tracked {
    fn attach(&mut self, process: ForeignProcess, now: Instant) {
        self.snapshot.pid = Some(process.pid);
        self.snapshot.phase = Lifecycle::Running;
        self.snapshot.started_at = Some(process.started_at);
        self.snapshot.command = process.name.clone();
        self.snapshot.paused = process.frozen.then_some(FROZEN_SEEN);
        self.seen_since = now;
        self.output
            .push_run_separator(self.snapshot.run, process.pid, process.started_at);
        let under = process
            .wrapper_chain()
            .map_or(String::new(), |chain| format!(" under {chain}"));
        self.output.push(
            self.snapshot.run,
            OutputStream::Supervisor,
            format!("pid {}{under}; {}", process.pid, process.stdout.describe()),
        );
        if let Some(path) = process.stdout.file() {
            self.followed = Some(path.to_path_buf());
        }
        self.current = Some(process);
    }
}

fn attached_snapshot(id: &str, app_name: &str, process: &ForeignProcess) -> InstanceSnapshot {
    InstanceSnapshot {
        id: id.to_string(),
        app_name: process
            .app_name
            .clone()
            .unwrap_or_else(|| app_name.to_string()),
        node: process
            .node_id
            .clone()
            .unwrap_or_else(|| "local".to_string()),
        origin: Origin::Attached,
        command: process.name.clone(),
        pid: None,
        phase: Lifecycle::Running,
        run: 1,
        started_at: Some(process.started_at),
        crashes: 0,
        manual_restarts: 0,
        restarts: 0,
        last_exit: None,
        auto_restart: false,
        paused: None,
        role: Role::Alone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::attach::{ProcIdentity, Stdout};
    use crate::supervisor::procstats::unix_seconds;

    fn process(pid: u32, start: u64, instance: Option<&str>) -> ForeignProcess {
        ForeignProcess {
            pid,
            name: "kv-demo".into(),
            start_time_secs: start,
            started_at: unix_seconds(start),
            instance_id: instance.map(str::to_string),
            app_name: Some("kv-demo".into()),
            node_id: None,
            controller_base: None,
            cpu_percent: 0.0,
            rss_bytes: 0,
            frozen: false,
            wrappers: Vec::new(),
            companions: Vec::new(),
            stdout: Stdout::Null,
        }
    }

    fn kinds(changes: &[(String, EventKind)]) -> Vec<(String, &'static str)> {
        changes
            .iter()
            .map(|(id, kind)| {
                let name = match kind {
                    EventKind::Attached { .. } => "attached",
                    EventKind::Started { .. } => "started",
                    EventKind::Exited { .. } => "exited",
                    EventKind::Frozen { .. } => "frozen",
                    EventKind::Continued => "continued",
                    _ => "other",
                };
                (id.clone(), name)
            })
            .collect()
    }

    fn tracker() -> AttachTracker {
        AttachTracker::new("kv-demo".into(), 1_000)
    }

    #[test]
    fn links_a_replacement_with_the_same_instance_id() {
        let mut tracker = tracker();
        let now = Instant::now();
        let first = tracker.update(vec![process(10, 100, Some("kv-demo-001"))], now);
        assert_eq!(kinds(&first), vec![("kv-demo-001".to_string(), "attached")]);
        assert!(tracker
            .update(vec![process(10, 100, Some("kv-demo-001"))], now)
            .is_empty());

        let changes = tracker.update(vec![process(11, 1_005, Some("kv-demo-001"))], now);
        assert_eq!(
            kinds(&changes),
            vec![
                ("kv-demo-001".to_string(), "exited"),
                ("kv-demo-001".to_string(), "started")
            ]
        );
        let snapshot = &tracker.entries["kv-demo-001"].snapshot;
        assert_eq!(
            (snapshot.run, snapshot.restarts, snapshot.pid),
            (2, 1, Some(11))
        );
    }

    #[test]
    fn a_worker_started_after_watching_began_is_seen_starting() {
        let mut tracker = tracker();
        let now = Instant::now();
        tracker.update(vec![], now);
        let changes = tracker.update(vec![process(10, 1_001, Some("i-1"))], now);
        assert_eq!(kinds(&changes), vec![("i-1".to_string(), "started")]);
        // In the first scan it was running when we looked, whatever its start time.
        let mut tracker = AttachTracker::new("kv-demo".into(), 1_000);
        let changes = tracker.update(vec![process(10, 1_000, Some("i-1"))], now);
        assert_eq!(kinds(&changes), vec![("i-1".to_string(), "attached")]);
    }

    #[test]
    fn the_log_says_where_the_output_goes_and_under_which_wrappers() {
        let mut tracker = tracker();
        let mut worker = process(10, 100, Some("i-1"));
        worker.wrappers = vec![
            ProcIdentity {
                pid: 7,
                name: "sh".into(),
                start_time_secs: 100,
                program: "sh".into(),
            },
            ProcIdentity {
                pid: 8,
                name: "start.sh".into(),
                start_time_secs: 100,
                program: "bash".into(),
            },
        ];
        tracker.update(vec![worker], Instant::now());
        let lines: Vec<String> = tracker.entries["i-1"]
            .output
            .recent(10)
            .into_iter()
            .map(|l| l.text)
            .collect();
        assert!(lines[0].starts_with("── run 1 · pid 10"), "{lines:?}");
        assert_eq!(
            lines[1],
            "pid 10 under sh→bash; stdout is /dev/null: the worker's output is not kept anywhere"
        );
    }

    #[test]
    fn a_process_seen_stopped_in_proc_is_frozen_then_continued() {
        let mut tracker = tracker();
        let now = Instant::now();
        tracker.update(vec![process(10, 100, Some("kv-demo-001"))], now);
        let frozen = ForeignProcess {
            frozen: true,
            ..process(10, 100, Some("kv-demo-001"))
        };
        let changes = tracker.update(vec![frozen.clone()], now);
        assert_eq!(kinds(&changes), vec![("kv-demo-001".to_string(), "frozen")]);
        assert_eq!(
            tracker.entries["kv-demo-001"].snapshot.paused,
            Some("frozen")
        );
        assert!(tracker.update(vec![frozen], now).is_empty(), "said once");
        let changes = tracker.update(vec![process(10, 100, Some("kv-demo-001"))], now);
        assert_eq!(
            kinds(&changes),
            vec![("kv-demo-001".to_string(), "continued")]
        );
        assert_eq!(tracker.entries["kv-demo-001"].snapshot.paused, None);
    }

    #[test]
    fn a_recycled_pid_is_a_new_process() {
        let mut tracker = tracker();
        let now = Instant::now();
        tracker.update(vec![process(10, 100, None)], now);
        let changes = tracker.update(vec![process(10, 200, None)], now);
        assert_eq!(
            kinds(&changes),
            vec![
                ("kv-demo".to_string(), "exited"),
                ("kv-demo".to_string(), "started")
            ]
        );
    }

    #[test]
    fn two_live_processes_without_ids_are_tracked_apart() {
        let mut tracker = tracker();
        let changes = tracker.update(
            vec![process(10, 100, None), process(12, 100, None)],
            Instant::now(),
        );
        assert_eq!(
            kinds(&changes),
            vec![
                ("kv-demo".to_string(), "attached"),
                ("kv-demo@12".to_string(), "attached")
            ]
        );
    }

    #[test]
    fn a_followed_file_shows_its_end_then_what_is_added_and_survives_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv-demo.log");
        std::fs::write(&path, "old 1\nold 2\n").unwrap();
        let buffer = OutputBuffer::new(100);
        let mut follow = Follow::new(&path);
        follow.read(&buffer, 1);
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(file, "new 3").unwrap();
        follow.read(&buffer, 1);
        // tee at the next start: the file begins again.
        std::fs::write(&path, "run 2\n").unwrap();
        follow.read(&buffer, 2);
        let lines: Vec<String> = buffer.recent(10).into_iter().map(|l| l.text).collect();
        assert_eq!(lines, ["old 1", "old 2", "new 3", "run 2"]);
    }
}
