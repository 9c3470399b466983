//! Attach mode over time: rescans for workers we did not start and follows them across
//! restarts done by someone else (a Plum agent, a shell loop, a person).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::attach::{ForeignProcess, ProcessFinder};
use super::events::{EventKind, EventSink};
use super::exit::ExitKind;
use super::snapshot::{InstanceSnapshot, Origin, Phase};
use super::Supervisor;

/// What to watch and how often.
#[derive(Clone)]
pub struct WatcherConfig {
    pub app_name: String,
    pub interval: Duration,
    /// Workers owned by this supervisor are left to it and not reported twice.
    pub owned_by: Option<Supervisor>,
}

/// A running rescan loop. Dropping it stops the loop.
pub struct Watcher {
    tracker: Arc<Mutex<AttachTracker>>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Scans at once, then every `interval`; reports into `events`.
    pub fn spawn(config: WatcherConfig, events: EventSink) -> Watcher {
        let tracker = Arc::new(Mutex::new(AttachTracker::new(config.app_name.clone())));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(scan_loop(config, events, tracker.clone(), cancel.clone()));
        Watcher {
            tracker,
            cancel,
            task: Some(task),
        }
    }

    /// Every instance seen so far (live or not), ordered by id.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        lock(&self.tracker)
            .entries
            .values()
            .map(|entry| entry.snapshot.clone())
            .collect()
    }

    /// The live process behind an instance, to show or to signal (it re-checks identity).
    pub fn process(&self, instance: &str) -> Option<ForeignProcess> {
        lock(&self.tracker)
            .entries
            .get(instance)
            .and_then(|entry| entry.current.clone())
    }

    /// Stops the loop and waits for it.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Watcher {
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
) {
    let mut finder = Some(ProcessFinder::new(config.app_name.clone()));
    let mut ticks = tokio::time::interval(config.interval.max(Duration::from_millis(10)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let exclude = config
            .owned_by
            .as_ref()
            .map(Supervisor::owned_pids)
            .unwrap_or_default();
        let Some(mut scanner) = finder.take() else {
            return;
        };
        // Reading /proc for every process blocks; keep it off the async workers.
        let scanned = tokio::task::spawn_blocking(move || {
            let found = scanner.scan(&exclude);
            (scanner, found)
        })
        .await;
        let Ok((scanner, found)) = scanned else {
            return;
        };
        finder = Some(scanner);
        let changes = lock(&tracker).update(found, Instant::now());
        for (instance, kind) in changes {
            events.emit(&instance, kind);
        }
    }
}

/// What an attached process frozen in `/proc` shows (the signal is not known).
const FROZEN_SEEN: &str = "frozen";

/// Links what each scan finds to the instances seen before.
pub(crate) struct AttachTracker {
    app_name: String,
    entries: BTreeMap<String, Tracked>,
}

struct Tracked {
    snapshot: InstanceSnapshot,
    current: Option<ForeignProcess>,
    seen_since: Instant,
}

impl AttachTracker {
    pub(crate) fn new(app_name: String) -> Self {
        AttachTracker {
            app_name,
            entries: BTreeMap::new(),
        }
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
                    entry.snapshot.phase = Phase::Exited;
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
                // Another live process already holds this id: track this one on its own.
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
                    changes.push((
                        key.clone(),
                        EventKind::Attached {
                            pid: process.pid,
                            name: process.name.clone(),
                        },
                    ));
                    let mut entry = Tracked {
                        snapshot: attached_snapshot(&key, &self.app_name, &process),
                        current: None,
                        seen_since: now,
                    };
                    entry.attach(process, now);
                    self.entries.insert(key, entry);
                }
            }
        }
        changes
    }
}

impl Tracked {
    fn attach(&mut self, process: ForeignProcess, now: Instant) {
        self.snapshot.pid = Some(process.pid);
        self.snapshot.phase = Phase::Running;
        self.snapshot.started_at = Some(process.started_at);
        self.snapshot.command = process.name.clone();
        self.seen_since = now;
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
        phase: Phase::Running,
        run: 1,
        started_at: Some(process.started_at),
        crashes: 0,
        manual_restarts: 0,
        restarts: 0,
        last_exit: None,
        auto_restart: false,
        paused: None,
        failed_over_to: None,
        taken_over_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn links_a_replacement_with_the_same_instance_id() {
        let mut tracker = AttachTracker::new("kv-demo".into());
        let now = Instant::now();
        let first = tracker.update(vec![process(10, 100, Some("kv-demo-001"))], now);
        assert_eq!(kinds(&first), vec![("kv-demo-001".to_string(), "attached")]);
        assert!(tracker
            .update(vec![process(10, 100, Some("kv-demo-001"))], now)
            .is_empty());

        let changes = tracker.update(vec![process(11, 105, Some("kv-demo-001"))], now);
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
    fn a_process_seen_stopped_in_proc_is_frozen_then_continued() {
        let mut tracker = AttachTracker::new("kv-demo".into());
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
        let mut tracker = AttachTracker::new("kv-demo".into());
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
        let mut tracker = AttachTracker::new("kv-demo".into());
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
}
