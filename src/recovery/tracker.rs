//! The derivation itself: facts in, phases, cycles and a timeline out.

pub use super::cycle::Cycle;
use super::facts::{written_at, Fact, ProcessExit, TsMs};
pub use super::mirror::CrashFlag;
use super::mirror::NamespaceMirror;
use super::nodes::{NodeBook, NodeChange};
use super::task::{TaskView, TornCheckpoint};
use super::timeline::{TimelineEvent, TimelineKind};
use crate::kv::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Timeline entries kept (oldest dropped first).
const TIMELINE_CAP: usize = 1000;
/// Progress samples kept for the chart.
const PROGRESS_CAP: usize = 4096;
// Which run wrote what. Process facts and namespace writes come on two
// channels, so a dead run's last write can arrive after its exit (or after
// its restart). Two paths:
// - The write carries its own time (`updatedAtMs`, plumdash's controller;
//   see `facts::written_at`): compared with the process facts' times, no
//   windows. A completion written at or before an instance's end is that
//   run's; a checkpoint written at or before the kill, or before the
//   restarted run's `Started` while that run has not written its start keys
//   yet, is still the kill point; any later one is the restarted run's.
// - It does not (the original controller, an older plumdash one, or a time
//   `Fact::stamped` dropped as another clock's): the fallback heuristics
//   below, judged on arrival time. Only they use these two windows.

/// Fallback (writes without a time): a completion seen this soon after a
/// clean exit belongs to that exit.
const LATE_WRITE_MS: TsMs = 5_000;
/// Fallback (writes without a time): after a restart, a checkpoint one step
/// past the kill point that arrives this soon, before the new run has
/// written its start keys, was written by the dead process and delivered
/// late (restart delay 0 beats the feed).
const LATE_CHECKPOINT_MS: TsMs = 250;
/// Keys every kv-demo run (and the original) writes when it starts: the
/// restarted run "announces" itself with them (RESUMED shown at once).
const START_KEYS: [&str; 2] = [super::task::CRASH_FLAG_KEY, "app.crash_time"];

/// An instance's lifecycle state. `Display` gives the stable status text
/// (`RESUMED from 50%`) that recordings and tests match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Running,
    Crashed,
    Recovering,
    Resumed { from: i64 },
    Stopped,
    Completed,
    Failed { reason: String },
}

impl Phase {
    /// The one-word state (`RESUMED`, without the detail).
    pub fn word(&self) -> &'static str {
        match self {
            Phase::Running => "RUNNING",
            Phase::Crashed => "CRASHED",
            Phase::Recovering => "RECOVERING",
            Phase::Resumed { .. } => "RESUMED",
            Phase::Stopped => "STOPPED",
            Phase::Completed => "COMPLETED",
            Phase::Failed { .. } => "FAILED",
        }
    }

    pub fn is_alive(&self) -> bool {
        matches!(
            self,
            Phase::Running | Phase::Recovering | Phase::Resumed { .. }
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Resumed { from } => write!(f, "RESUMED from {from}%"),
            other => f.write_str(other.word()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub id: String,
    pub pid: Option<u32>,
    pub phase: Phase,
    pub started_at: Option<TsMs>,
    pub ended_at: Option<TsMs>,
    pub last_exit: Option<ProcessExit>,
    /// When a scheduled restart is due (for a countdown).
    pub restart_at: Option<TsMs>,
    pub crashes: u32,
    pub runs: u32,
    /// The current run was found running (attach), not seen starting.
    pub attached: bool,
    /// The task's progress when that run was first seen.
    pub attached_at_pct: Option<i64>,
    /// The crash flag went from set to cleared while this run was alive: it ended
    /// gracefully or completed, even if a replacement set the flag again before
    /// the death was seen.
    pub flag_cleared_in_run: bool,
    /// Crashed, its end unseen, and nobody restarted it within the restart grace.
    pub overdue: bool,
    /// The current run's first whole checkpoint (time, counter): the first one
    /// after its start, the dead run's late-delivered last write excluded.
    pub first_checkpoint: Option<(TsMs, i64)>,
}

/// The namespace's progress at one moment (the chart's points).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressPoint {
    pub at: TsMs,
    pub progress: i64,
}

/// Derived recovery state of one namespace and the instances working in it.
#[derive(Debug, Default)]
pub struct Tracker {
    /// What the namespace holds, as the feed told it.
    ns: NamespaceMirror,
    /// The task as of the last namespace change handled (`ns.task()` after it).
    task: TaskView,
    torn: Option<TornCheckpoint>,
    instances: BTreeMap<String, InstanceView>,
    cycles: Vec<Cycle>,
    /// The cycle waiting for its first new checkpoint.
    open_cycle: Option<usize>,
    /// The restarted run of the open cycle has written its start keys.
    restart_announced: bool,
    timeline: VecDeque<TimelineEvent>,
    /// Timeline events ever pushed (the timeline itself is capped).
    pushed: u64,
    progress: VecDeque<ProgressPoint>,
    completions: u32,
    /// Counter of the last consistent checkpoint: a worker writing keys one
    /// by one reaches a new checkpoint only when its last key lands.
    last_checkpoint: Option<i64>,
    /// Torn states ever seen (each new one counted once).
    torn_seen: u32,
    feed_error: Option<String>,
    feed_via: Option<String>,
    /// Attach: how long a crashed instance whose end was unseen may wait for
    /// someone else to restart it before that is news.
    restart_grace_ms: Option<TsMs>,
    /// The cluster's nodes and failovers, when the controller serves them.
    nodes: NodeBook,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Attach: report crashed instances nobody restarts within `grace`.
    pub fn set_restart_grace(&mut self, grace: std::time::Duration) {
        self.restart_grace_ms = Some(grace.as_millis() as TsMs);
    }

    /// Time passing (no fact needed): a crashed instance whose end was unseen and
    /// that nobody restarted within the restart grace gets a timeline line.
    /// True when something changed.
    pub fn tick(&mut self, now: TsMs) -> bool {
        let Some(grace_ms) = self.restart_grace_ms else {
            return false;
        };
        let mut due = Vec::new();
        for inst in self.instances.values_mut() {
            let waited = inst.ended_at.map(|t| now.saturating_sub(t));
            // A failover restarted its work elsewhere, under a new id.
            let moved = self.nodes.replaced_by(&inst.id).is_some();
            if inst.phase == Phase::Crashed
                && !moved
                && inst.last_exit == Some(ProcessExit::Unknown)
                && !inst.overdue
                && waited.is_some_and(|w| w >= grace_ms)
            {
                inst.overdue = true;
                due.push(inst.id.clone());
            }
        }
        let changed = !due.is_empty();
        for id in due {
            self.push(now, Some(id), TimelineKind::NotRestarted { grace_ms });
        }
        changed
    }

    /// What the state word alone does not say, for the instances table: how an
    /// attached run was found, and how an unseen end was judged.
    pub fn detail(&self, id: &str, now: TsMs) -> Option<String> {
        let inst = self.instances.get(id)?;
        if let Some(f) = self.nodes.replaced_by(id) {
            return Some(match inst.pid {
                Some(_) => format!("replaced by {} on {}", f.new_instance, f.to_node),
                None => format!("moved to {} on {}", f.new_instance, f.to_node),
            });
        }
        if inst.phase.is_alive() && inst.attached {
            return Some(match inst.attached_at_pct {
                Some(p) => format!("attached at {p}%"),
                None => "attached".into(),
            });
        }
        if inst.phase == Phase::Crashed && inst.last_exit == Some(ProcessExit::Unknown) {
            let waited = inst.ended_at.map_or(0, |t| now.saturating_sub(t));
            return Some(if inst.overdue {
                format!("not restarted for {}s", waited / 1000)
            } else {
                "gone, flag still set".into()
            });
        }
        None
    }

    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        self.ns.entries()
    }

    /// When a key last changed, as seen by this tracker.
    pub fn changed_at(&self, key: &str) -> Option<TsMs> {
        self.ns.changed_at(key)
    }

    pub fn task(&self) -> &TaskView {
        &self.task
    }

    /// The crash flag as seen: set, cleared (seen before, gone or false now),
    /// or never seen in this namespace since watching began.
    pub fn crash_flag(&self) -> CrashFlag {
        self.ns.crash_flag()
    }

    /// The current torn checkpoint, if the namespace holds one.
    pub fn torn(&self) -> Option<&TornCheckpoint> {
        self.torn.as_ref()
    }

    /// Counter of the last whole (consistent) checkpoint the namespace held.
    pub fn last_checkpoint(&self) -> Option<i64> {
        self.last_checkpoint
    }

    /// How many torn states the namespace went through (a worker between its
    /// separate writes of one step, or one killed there).
    pub fn torn_seen(&self) -> u32 {
        self.torn_seen
    }

    pub fn instances(&self) -> impl Iterator<Item = &InstanceView> {
        self.instances.values()
    }

    pub fn instance(&self, id: &str) -> Option<&InstanceView> {
        self.instances.get(id)
    }

    pub fn cycles(&self) -> &[Cycle] {
        &self.cycles
    }

    pub fn timeline(&self) -> impl DoubleEndedIterator<Item = &TimelineEvent> + ExactSizeIterator {
        self.timeline.iter()
    }

    pub fn progress_history(&self) -> impl Iterator<Item = &ProgressPoint> {
        self.progress.iter()
    }

    /// How many times the task reached 100%.
    pub fn completions(&self) -> u32 {
        self.completions
    }

    /// `Some(error)` while the change feed cannot reach the controller.
    pub fn feed_error(&self) -> Option<&str> {
        self.feed_error.as_deref()
    }

    /// How changes arrive (`stream`, `polling 500ms`), once known.
    pub fn feed_via(&self) -> Option<&str> {
        self.feed_via.as_deref()
    }

    pub fn apply(&mut self, at: TsMs, fact: Fact) {
        match fact {
            Fact::Started { instance, pid } => self.on_started(at, instance, pid),
            Fact::Attached { instance, pid } => self.on_attached(at, instance, pid),
            Fact::Exited {
                instance,
                exit,
                requested,
            } => self.on_exited(at, instance, exit, requested),
            Fact::RestartScheduled { instance, delay_ms } => {
                self.instance_mut(&instance).restart_at = Some(at + delay_ms);
                self.push(
                    at,
                    Some(instance),
                    TimelineKind::RestartScheduled { delay_ms },
                );
            }
            Fact::Frozen { instance, signal } => {
                self.push(at, Some(instance), TimelineKind::Frozen { signal });
            }
            Fact::Continued { instance } => {
                self.push(at, Some(instance), TimelineKind::Continued);
            }
            Fact::Failed { instance, reason } => {
                let inst = self.instance_mut(&instance);
                inst.phase = Phase::Failed {
                    reason: reason.clone(),
                };
                inst.restart_at = None;
                self.push(at, Some(instance), TimelineKind::Failed { reason });
            }
            Fact::Snapshot(entries) => {
                self.ns.replace_all(at, entries);
                self.on_namespace_change(at, None);
            }
            Fact::Written(entries) => {
                let written = written_at(&entries);
                // Start keys written at or before the kill are the dead run's.
                let dead_runs = written
                    .zip(self.open_cycle_killed_at())
                    .is_some_and(|(w, killed)| w <= killed);
                let announces =
                    entries.iter().any(|e| START_KEYS.contains(&e.key.as_str())) && !dead_runs;
                if announces {
                    self.restart_announced = true;
                }
                self.ns.write(at, entries);
                self.on_namespace_change(at, written);
                if announces {
                    self.on_recovery_announced();
                }
            }
            Fact::Deleted { key } => {
                if START_KEYS.contains(&key.as_str()) {
                    self.restart_announced = true;
                }
                self.ns.delete(&key);
                self.on_namespace_change(at, None);
            }
            Fact::FeedDown { error } => {
                if self.feed_error.is_none() {
                    self.push(
                        at,
                        None,
                        TimelineKind::FeedDown {
                            error: error.clone(),
                        },
                    );
                }
                self.feed_error = Some(error);
            }
            Fact::Cluster(view) => {
                for change in self.nodes.read(at, view) {
                    let migrated = match &change {
                        NodeChange::Migrated(f) => Some(f.clone()),
                        _ => None,
                    };
                    if let Some(f) = &migrated {
                        self.on_migrated(f);
                    }
                    self.push_node_change(at, change);
                    // The new instance can have resumed before a read showed the
                    // move (fast steps, a read every 500 ms): its figures now.
                    let closed = migrated.and_then(|f| {
                        self.cycles
                            .iter()
                            .rev()
                            .find(|c| {
                                c.restarted_instance.as_deref() == Some(f.new_instance.as_str())
                                    && c.first_checkpoint_at.is_some()
                            })
                            .cloned()
                    });
                    if let Some(change) = closed.and_then(|c| self.nodes.resumed(&c)) {
                        self.push_node_change(at, change);
                    }
                }
            }
            Fact::NodeAction { node, action } => {
                let change = self.nodes.act(at, &node, action);
                self.push_node_change(at, change);
            }
            Fact::FeedUp { via } => {
                if self.feed_error.take().is_some() || self.feed_via.as_ref() != Some(&via) {
                    self.push(at, None, TimelineKind::FeedUp { via: via.clone() });
                }
                self.feed_via = Some(via);
            }
        }
    }

    fn instance_mut(&mut self, id: &str) -> &mut InstanceView {
        self.instances
            .entry(id.to_string())
            .or_insert_with(|| InstanceView {
                id: id.to_string(),
                pid: None,
                phase: Phase::Stopped,
                started_at: None,
                ended_at: None,
                last_exit: None,
                restart_at: None,
                crashes: 0,
                runs: 0,
                attached: false,
                attached_at_pct: None,
                flag_cleared_in_run: false,
                overdue: false,
                first_checkpoint: None,
            })
    }

    /// Timeline events pushed after the first `seen` ever pushed, and the new
    /// count to pass next time (for consumers that print events as they come).
    pub fn events_since(&self, seen: u64) -> (Vec<&TimelineEvent>, u64) {
        let new = self.pushed.saturating_sub(seen) as usize;
        let skip = self.timeline.len().saturating_sub(new);
        (self.timeline.iter().skip(skip).collect(), self.pushed)
    }

    /// The cluster's nodes and failovers.
    pub fn nodes(&self) -> &NodeBook {
        &self.nodes
    }

    fn push_node_change(&mut self, at: TsMs, change: NodeChange) {
        let (instance, kind) = match change {
            NodeChange::Up { node } => (None, TimelineKind::NodeUp { node }),
            NodeChange::Down { node } => (None, TimelineKind::NodeDown { node }),
            NodeChange::Action { node, action } => (None, TimelineKind::Node { node, action }),
            NodeChange::Migrated(f) => (
                Some(f.instance),
                TimelineKind::Migrated {
                    from_node: f.from_node,
                    to_node: f.to_node,
                    new_instance: f.new_instance,
                },
            ),
            NodeChange::Recovered(f) => (Some(f.new_instance.clone()), TimelineKind::FailedOver(f)),
            NodeChange::Fenced {
                instance,
                node,
                refused,
                by,
            } => (Some(instance), TimelineKind::Fenced { node, refused, by }),
        };
        self.push(at, instance, kind);
    }

    /// A failover moved `f.instance`'s work while its process is still alive
    /// (a frozen or cut-off node: no exit to open a cycle): the cycle starts at
    /// the freeze (or the detection), with the task as it stands.
    fn on_migrated(&mut self, f: &super::nodes::Failover) {
        let alive = self
            .instances
            .get(&f.instance)
            .is_some_and(|i| i.pid.is_some());
        let open_for_it = self
            .open_cycle
            .and_then(|i| self.cycles.get(i))
            .is_some_and(|c| c.killed_instance == f.instance);
        if !alive || open_for_it {
            return;
        }
        let new_started = self
            .instances
            .get(&f.new_instance)
            .and_then(|i| i.started_at);
        self.cycles.push(Cycle {
            killed_instance: f.instance.clone(),
            killed_at: f.origin(),
            how: ProcessExit::NodeLost,
            progress_at_kill: self.task.progress,
            counter_at_kill: self.task.counter,
            flag_after_kill: self.task.crash_flag,
            restarted_at: new_started,
            restarted_instance: new_started.map(|_| f.new_instance.clone()),
            first_checkpoint_at: None,
            resumed_from: None,
            steps_lost: None,
        });
        self.open_cycle = Some(self.cycles.len() - 1);
        self.restart_announced = false;
    }

    /// When the open cycle's run died (or its node was lost).
    fn open_cycle_killed_at(&self) -> Option<TsMs> {
        let cycle = self.cycles.get(self.open_cycle?)?;
        Some(cycle.killed_at)
    }

    fn push(&mut self, at: TsMs, instance: Option<String>, kind: TimelineKind) {
        self.pushed += 1;
        if self.timeline.len() == TIMELINE_CAP {
            self.timeline.pop_front();
        }
        self.timeline
            .push_back(TimelineEvent { at, instance, kind });
    }

    fn on_started(&mut self, at: TsMs, id: String, pid: u32) {
        // A set flag left behind by a death means this start is a recovery.
        let recovering = self.task.crash_flag && !self.task.is_completed();
        self.nodes.started(at, &id);
        let inst = self.new_run(at, &id, pid);
        inst.attached = false;
        inst.attached_at_pct = None;
        inst.phase = if recovering {
            Phase::Recovering
        } else {
            Phase::Running
        };
        if let Some(cycle) = self.open_cycle.and_then(|i| self.cycles.get_mut(i)) {
            if cycle.restarted_at.is_none() {
                cycle.restarted_at = Some(at);
                cycle.restarted_instance = Some(id.clone());
            }
        }
        self.push(at, Some(id.clone()), TimelineKind::Started { pid });
        if recovering {
            self.push(at, Some(id), TimelineKind::Recovering);
        }
        // The new run's start keys can reach the feed before its `Started` reaches us
        // (two channels): written after the death, they are this run's.
        if self.restart_announced {
            self.on_recovery_announced();
        }
    }

    /// A run found already running: RUNNING whatever the flag says (its start,
    /// and whether that was a recovery, was not seen).
    fn on_attached(&mut self, at: TsMs, id: String, pid: u32) {
        let progress = self.task.progress;
        self.nodes.started(at, &id);
        let inst = self.new_run(at, &id, pid);
        inst.attached = true;
        inst.attached_at_pct = progress;
        inst.phase = Phase::Running;
        self.push(at, Some(id), TimelineKind::Attached { pid });
    }

    /// What every new run of an instance starts with, however it was seen.
    fn new_run(&mut self, at: TsMs, id: &str, pid: u32) -> &mut InstanceView {
        let inst = self.instance_mut(id);
        inst.pid = Some(pid);
        inst.runs += 1;
        inst.started_at = Some(at);
        inst.ended_at = None;
        inst.restart_at = None;
        inst.flag_cleared_in_run = false;
        inst.overdue = false;
        inst.first_checkpoint = None;
        inst
    }

    fn on_exited(&mut self, at: TsMs, id: String, exit: ProcessExit, requested: bool) {
        let task = self.task.clone();
        let inst = self.instance_mut(&id);
        inst.pid = None;
        inst.ended_at = Some(at);
        inst.last_exit = Some(exit.clone());
        let completed = task.is_completed() && task.progress.is_none_or(|p| p >= 100);
        let crashed = match exit {
            // Unseen: judged from the namespace (read fresh just before this fact).
            // A flag cleared during the run means a graceful end, even if a
            // replacement has set it again already.
            ProcessExit::Unknown => task.crash_flag && !inst.flag_cleared_in_run,
            ProcessExit::Clean => false,
            _ => !requested,
        };
        // A failover already gave its work away: its end needs no recovery.
        let superseded = self.nodes.replaced_by(&id).map(|f| f.new_instance.clone());
        let crashed = crashed && superseded.is_none();
        let inst = self.instance_mut(&id);
        // The flag as this run left it: cleared by it, even if set again since.
        let flag = task.crash_flag && !inst.flag_cleared_in_run;
        let clean_end = matches!(exit, ProcessExit::Clean | ProcessExit::Unknown);
        inst.phase = if crashed {
            inst.crashes += 1;
            Phase::Crashed
        } else if clean_end && completed {
            Phase::Completed
        } else {
            Phase::Stopped
        };
        let phase = inst.phase.clone();
        self.push(
            at,
            Some(id.clone()),
            TimelineKind::Exited {
                exit: exit.clone(),
                progress: task.progress,
                flag,
                crashed,
                requested,
            },
        );
        match phase {
            Phase::Crashed => {
                self.cycles.push(Cycle {
                    killed_instance: id,
                    killed_at: at,
                    how: exit,
                    progress_at_kill: task.progress,
                    counter_at_kill: task.counter,
                    flag_after_kill: flag,
                    restarted_at: None,
                    restarted_instance: None,
                    first_checkpoint_at: None,
                    resumed_from: None,
                    steps_lost: None,
                });
                self.open_cycle = Some(self.cycles.len() - 1);
                // Start keys from here on announce the restarted run.
                self.restart_announced = false;
            }
            Phase::Completed => self.push(at, Some(id), TimelineKind::Completed),
            _ => match superseded {
                Some(by) => self.push(at, Some(id), TimelineKind::Superseded { by }),
                None => self.push(at, Some(id), TimelineKind::Stopped),
            },
        }
    }

    /// `written`: when the change was committed, if the controller said (see
    /// `facts::written_at`); `None` for snapshots, deletes and the original's writes.
    fn on_namespace_change(&mut self, at: TsMs, written: Option<TsMs>) {
        let before = std::mem::replace(&mut self.task, self.ns.task().clone());
        let task = self.task.clone();

        if before.crash_flag && !task.crash_flag {
            for inst in self.instances.values_mut().filter(|i| i.pid.is_some()) {
                inst.flag_cleared_in_run = true;
            }
        }
        if let Some(p) = task.progress {
            for inst in self.instances.values_mut() {
                if inst.attached && inst.pid.is_some() && inst.attached_at_pct.is_none() {
                    inst.attached_at_pct = Some(p);
                }
            }
        }
        if task.crash_flag != before.crash_flag {
            let kind = if task.crash_flag {
                TimelineKind::FlagSet
            } else {
                TimelineKind::FlagCleared
            };
            self.push(at, None, kind);
        }

        let torn = task.torn();
        if torn.is_some() && torn != self.torn {
            if let Some(t) = torn.clone() {
                self.torn_seen += 1;
                self.push(at, None, TimelineKind::Torn(t));
            }
        }
        self.torn = torn;

        if task.progress != before.progress {
            if let Some(progress) = task.progress {
                if self.progress.len() == PROGRESS_CAP {
                    self.progress.pop_front();
                }
                self.progress.push_back(ProgressPoint { at, progress });
                if progress == 100 {
                    self.completions += 1;
                }
            }
        }

        if self.torn.is_none() && task.counter != self.last_checkpoint {
            if let (Some(from), Some(to)) = (self.last_checkpoint, task.counter) {
                // Within one task the counter only climbs; a worker resumes at
                // the saved step, never under it. A restart that starts lower is
                // its cycle's steps lost, not a second writer.
                if to < from && !before.is_completed() && self.open_cycle.is_none() {
                    let alive = self
                        .instances
                        .values()
                        .filter(|i| i.pid.is_some())
                        .map(|i| i.id.clone())
                        .collect();
                    self.push(at, None, TimelineKind::WentBack { from, to, alive });
                }
            }
            self.last_checkpoint = task.counter;
            if let Some(counter) = task.counter {
                self.on_checkpoint(at, counter, written);
            }
        }

        if task.is_completed() && !before.is_completed() {
            // The completion write can arrive after the clean exit it preceded.
            for inst in self.instances.values_mut() {
                let its_run = match written {
                    // Written during the run that ended, however late it came.
                    Some(w) => {
                        inst.ended_at.is_some_and(|end| w <= end)
                            && inst.started_at.is_none_or(|start| start <= w)
                    }
                    // Fallback (no write time): it came soon after the exit.
                    None => inst
                        .ended_at
                        .is_some_and(|t| at.saturating_sub(t) <= LATE_WRITE_MS),
                };
                if inst.phase == Phase::Stopped
                    && matches!(
                        inst.last_exit,
                        Some(ProcessExit::Clean | ProcessExit::Unknown)
                    )
                    && its_run
                {
                    inst.phase = Phase::Completed;
                    if let Some(ev) = self.timeline.iter_mut().rev().find(|e| {
                        e.instance.as_deref() == Some(inst.id.as_str())
                            && e.kind == TimelineKind::Stopped
                    }) {
                        ev.kind = TimelineKind::Completed;
                    }
                }
            }
        }
    }

    /// The restarted run of the open cycle wrote its start keys: it has read the saved
    /// checkpoint and goes on from it, so the screen can say RESUMED now rather than a
    /// step later. Its first new checkpoint confirms (or corrects) where from, and
    /// closes the cycle with its figures.
    fn on_recovery_announced(&mut self) {
        let Some(cycle) = self.open_cycle.and_then(|i| self.cycles.get(i)) else {
            return;
        };
        let Some(id) = cycle.restarted_instance.clone() else {
            return;
        };
        let from = self.task.progress.unwrap_or(0).max(0);
        if let Some(inst) = self.instances.get_mut(&id) {
            if inst.phase == Phase::Recovering {
                inst.phase = Phase::Resumed { from };
            }
        }
    }

    /// Running runs that had not checkpointed yet have now (those started
    /// before it was written, when its time is known).
    fn note_first_checkpoint(&mut self, at: TsMs, counter: i64, written: Option<TsMs>) {
        for inst in self.instances.values_mut() {
            let after_start = match (written, inst.started_at) {
                (Some(w), Some(start)) => start <= w,
                _ => true,
            };
            if inst.pid.is_some() && inst.first_checkpoint.is_none() && after_start {
                inst.first_checkpoint = Some((at, counter));
            }
        }
    }

    /// A new consistent checkpoint with `counter` steps done.
    fn on_checkpoint(&mut self, at: TsMs, counter: i64, written: Option<TsMs>) {
        let resumed_from = (counter - 1).max(0) * 10;
        let Some(index) = self.open_cycle else {
            self.note_first_checkpoint(at, counter, written);
            // A recovery we did not see the start of (attached late). From 0
            // it was a fresh start whose flag we saw before its `Started`
            // (attach discovers processes by rescanning).
            for inst in self.instances.values_mut() {
                if inst.phase == Phase::Recovering {
                    inst.phase = if resumed_from == 0 {
                        Phase::Running
                    } else {
                        Phase::Resumed { from: resumed_from }
                    };
                }
            }
            return;
        };
        let cycle = &mut self.cycles[index];
        let late_from_the_dead = match (cycle.restarted_at, written) {
            // Nobody has been restarted to have written it (whatever its time).
            (None, _) => true,
            // Its write time is known: written at or before the kill, or before
            // the restarted run was started and had written its start keys
            // (which it does before any checkpoint; the feed is in the
            // store's order), it is the dead run's — however late it came.
            // A `Started` seen late (attach finds processes by rescanning) is
            // covered by the start keys, which then came first.
            (Some(restarted), Some(w)) => {
                w <= cycle.killed_at || (w < restarted && !self.restart_announced)
            }
            // Fallback (no write time): judged on arrival, one step past the
            // kill point within the window, before the start keys.
            (Some(restarted), None) => {
                !self.restart_announced
                    && counter == cycle.counter_at_kill.unwrap_or(0) + 1
                    && at.saturating_sub(restarted) < LATE_CHECKPOINT_MS
            }
        };
        if late_from_the_dead {
            // Written before the death, delivered after it: still the kill point.
            cycle.progress_at_kill = self.task.progress;
            cycle.counter_at_kill = Some(counter);
            return;
        }
        cycle.first_checkpoint_at = Some(at);
        cycle.resumed_from = Some(resumed_from);
        cycle.steps_lost = cycle.counter_at_kill.map(|k| k - (counter - 1));
        let cycle = cycle.clone();
        self.open_cycle = None;
        self.note_first_checkpoint(at, counter, written);
        for inst in self.instances.values_mut() {
            let restarted = cycle.restarted_instance.as_deref() == Some(inst.id.as_str());
            if inst.phase == Phase::Recovering
                || (restarted && matches!(inst.phase, Phase::Running | Phase::Resumed { .. }))
            {
                inst.phase = Phase::Resumed { from: resumed_from };
            }
        }
        let instance = cycle.restarted_instance.clone();
        let failover = self.nodes.resumed(&cycle);
        self.push(at, instance, TimelineKind::Resumed { cycle });
        if let Some(change) = failover {
            self.push_node_change(at, change);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::sample::{
        checkpoint, committed_at, entry as e, exited, flag, sigkilled, started,
    };

    fn phase(t: &Tracker) -> String {
        t.instance("kv-demo-001").unwrap().phase.to_string()
    }

    /// A run that checkpointed steps 1..=n (at 100 ms each) and was SIGKILLed
    /// 100 ms after the last one.
    fn killed_after_step(n: i64) -> Tracker {
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, started(1));
        t.apply(at, flag());
        run_steps(&mut t, &mut at, 0, n);
        t.apply(
            at + 100,
            exited(ProcessExit::Signal("SIGKILL".into()), false),
        );
        t
    }

    /// Runs `steps` checkpoints starting after `from`, 100 ms apart, from `at`.
    fn run_steps(t: &mut Tracker, at: &mut TsMs, from: i64, to: i64) {
        for n in from + 1..=to {
            *at += 100;
            t.apply(*at, checkpoint(n));
        }
    }

    #[test]
    fn kill_restart_resume_is_one_cycle_with_its_figures() {
        let mut t = Tracker::new();
        let mut at = 1_000;
        t.apply(at, Fact::Snapshot(vec![]));
        t.apply(at, started(10));
        assert_eq!(phase(&t), "RUNNING");
        t.apply(at + 5, flag());
        run_steps(&mut t, &mut at, 0, 5);
        assert_eq!(t.task().progress, Some(50));

        t.apply(1_600, exited(ProcessExit::Signal("SIGKILL".into()), false));
        assert_eq!(phase(&t), "CRASHED");
        assert!(t.task().crash_flag, "a SIGKILL leaves the flag set");
        t.apply(
            1_600,
            Fact::RestartScheduled {
                instance: "kv-demo-001".into(),
                delay_ms: 1000,
            },
        );
        assert_eq!(t.instance("kv-demo-001").unwrap().restart_at, Some(2_600));

        t.apply(2_610, started(11));
        assert_eq!(phase(&t), "RECOVERING");
        t.apply(2_620, flag());
        t.apply(2_700, checkpoint(6));
        assert_eq!(phase(&t), "RESUMED from 50%");

        let cycle = &t.cycles()[0];
        assert_eq!(cycle.progress_at_kill, Some(50));
        assert_eq!(cycle.resumed_from, Some(50));
        assert_eq!(cycle.steps_lost, Some(0));
        assert_eq!(cycle.kill_to_restart_ms(), Some(1_010));
        assert_eq!(cycle.kill_to_checkpoint_ms(), Some(1_100));
        assert!(cycle.flag_after_kill);
        let inst = t.instance("kv-demo-001").unwrap();
        assert_eq!((inst.crashes, inst.runs, inst.pid), (1, 2, Some(11)));

        let lines: Vec<String> = t.timeline().map(|ev| ev.to_string()).collect();
        assert!(
            lines.contains(&"kv-demo-001 killed by SIGKILL at 50% (flag still set)".to_string())
        );
        assert!(lines.contains(
            &"kv-demo-001 RESUMED from 50%, 0 steps lost, kill→restart 1010 ms, kill→checkpoint 1100 ms"
                .to_string()
        ));

        let mut at = 2_700;
        run_steps(&mut t, &mut at, 6, 10);
        t.apply(
            at,
            Fact::Deleted {
                key: "app.crashed".into(),
            },
        );
        t.apply(at, Fact::Written(vec![e("task.status", "completed")]));
        t.apply(at + 10, exited(ProcessExit::Clean, false));
        assert_eq!(phase(&t), "COMPLETED");
        assert_eq!(t.completions(), 1);
    }

    #[test]
    fn a_graceful_stop_is_stopped_and_the_next_start_is_not_a_recovery() {
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, started(1));
        t.apply(at, flag());
        run_steps(&mut t, &mut at, 0, 3);
        t.apply(
            400,
            Fact::Deleted {
                key: "app.crashed".into(),
            },
        );
        t.apply(410, exited(ProcessExit::Clean, true));
        assert_eq!(phase(&t), "STOPPED");
        assert!(!t.task().crash_flag);
        assert!(t.cycles().is_empty());
        t.apply(500, started(2));
        assert_eq!(phase(&t), "RUNNING");
        // SIGINT from outside (not requested by us) that exits 0 is a stop too.
        t.apply(600, exited(ProcessExit::Clean, false));
        assert_eq!(phase(&t), "STOPPED");
    }

    #[test]
    fn the_completion_write_may_arrive_after_the_exit() {
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, started(1));
        run_steps(&mut t, &mut at, 0, 10);
        t.apply(1_100, exited(ProcessExit::Clean, false));
        assert_eq!(phase(&t), "STOPPED");
        t.apply(1_102, Fact::Written(vec![e("task.status", "completed")]));
        assert_eq!(phase(&t), "COMPLETED");
        assert_eq!(t.timeline().last().unwrap().kind, TimelineKind::Completed);
    }

    #[test]
    fn a_fresh_start_seen_after_its_flag_settles_as_running() {
        let mut t = Tracker::new();
        // Attach finds the process only after it has set its flag.
        t.apply(0, flag());
        t.apply(400, started(1));
        assert_eq!(phase(&t), "RECOVERING");
        t.apply(500, checkpoint(1));
        assert_eq!(phase(&t), "RUNNING");
        assert!(t.cycles().is_empty());
    }

    #[test]
    fn a_restart_from_zero_counts_the_lost_steps() {
        let mut t = killed_after_step(5);
        t.apply(700, started(2));
        t.apply(800, checkpoint(1));
        let cycle = &t.cycles()[0];
        assert_eq!(cycle.resumed_from, Some(0));
        assert_eq!(cycle.steps_lost, Some(5));
        assert_eq!(phase(&t), "RESUMED from 0%");
    }

    #[test]
    fn a_torn_checkpoint_from_a_foreign_worker_is_shown_not_hidden() {
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, started(1));
        run_steps(&mut t, &mut at, 0, 5);
        // The original C++ worker writes one key per PUT; killed in between:
        t.apply(600, Fact::Written(vec![e("task.progress", "60")]));
        t.apply(610, exited(ProcessExit::Signal("SIGKILL".into()), false));
        let torn = t.torn().expect("torn checkpoint is reported");
        assert_eq!(
            torn.to_string(),
            "progress 60%, counter 5, checkpoint step_5"
        );
        assert!(t
            .timeline()
            .any(|ev| ev.to_string()
                == "TORN checkpoint: progress 60%, counter 5, checkpoint step_5"));
        // A complete checkpoint heals it.
        t.apply(700, started(2));
        t.apply(800, checkpoint(6));
        assert!(t.torn().is_none());
    }

    /// The screen says RESUMED as soon as the restarted run has written its start keys
    /// (it has read the checkpoint then), not a step later; the cycle's figures still
    /// come from its first new checkpoint.
    #[test]
    fn recovery_is_shown_when_the_restarted_run_announces_itself() {
        let mut t = killed_after_step(5);
        t.apply(700, started(2));
        assert_eq!(phase(&t), "RECOVERING");
        t.apply(705, flag());
        assert_eq!(phase(&t), "RESUMED from 50%");
        assert!(
            !t.timeline()
                .any(|ev| matches!(ev.kind, TimelineKind::Resumed { .. })),
            "the cycle closes at the first new checkpoint"
        );
        t.apply(900, checkpoint(6));
        assert_eq!(phase(&t), "RESUMED from 50%");
        let cycle = t.cycles().last().expect("a cycle").clone();
        assert_eq!(cycle.first_checkpoint_at, Some(900));
        assert_eq!(cycle.resumed_from, Some(50));
    }

    /// A worker that never writes the flag is not "cleared": the flag was never seen.
    #[test]
    fn a_flag_never_written_is_never_seen_and_a_deleted_one_is_cleared() {
        let mut t = Tracker::new();
        t.apply(0, started(1));
        assert_eq!(t.crash_flag(), CrashFlag::NeverSeen);
        t.apply(10, checkpoint(1));
        assert_eq!(t.crash_flag(), CrashFlag::NeverSeen);
        t.apply(20, flag());
        assert_eq!(t.crash_flag(), CrashFlag::Set);
        t.apply(
            30,
            Fact::Deleted {
                key: crate::recovery::CRASH_FLAG_KEY.into(),
            },
        );
        assert_eq!(t.crash_flag(), CrashFlag::Cleared);
    }

    /// The feed and the supervisor are two channels: the restarted run's start keys may
    /// arrive before its `Started`. It is RESUMED the moment both are in.
    #[test]
    fn start_keys_that_overtake_the_started_event_still_resume_at_once() {
        let mut t = killed_after_step(5);
        t.apply(702, flag());
        t.apply(703, started(2));
        assert_eq!(phase(&t), "RESUMED from 50%");
        t.apply(900, checkpoint(6));
        let cycle = t.cycles().last().expect("a cycle").clone();
        assert_eq!(cycle.resumed_from, Some(50));
        assert_eq!(cycle.steps_lost, Some(0));
    }

    #[test]
    fn a_worker_writing_one_key_at_a_time_still_resumes() {
        let mut t = killed_after_step(5);
        t.apply(700, started(2));
        t.apply(750, flag());
        // Step 6 as the original C++ worker writes it: four PUTs.
        t.apply(800, Fact::Written(vec![e("task.progress", "60")]));
        assert!(t.torn().is_some());
        // Announced by its flag write; the torn key does not move where it resumed from.
        assert_eq!(phase(&t), "RESUMED from 50%");
        t.apply(801, Fact::Written(vec![e("task.counter", "6")]));
        t.apply(802, Fact::Written(vec![e("task.checkpoint", "step_6")]));
        assert!(t.torn().is_none());
        assert_eq!(phase(&t), "RESUMED from 50%");
        assert_eq!(t.cycles()[0].steps_lost, Some(0));
        assert_eq!(t.cycles()[0].kill_to_checkpoint_ms(), Some(202));
    }

    #[test]
    fn a_late_delivered_last_checkpoint_still_counts_as_the_kill_point() {
        let mut t = killed_after_step(4);
        t.apply(501, checkpoint(5));
        assert_eq!(t.cycles()[0].progress_at_kill, Some(50));
        t.apply(900, started(2));
        t.apply(950, flag());
        t.apply(1_000, checkpoint(6));
        assert_eq!(t.cycles()[0].steps_lost, Some(0));
    }

    #[test]
    fn a_last_checkpoint_delivered_after_an_instant_restart_is_still_the_kill_point() {
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, started(1));
        t.apply(at, flag());
        run_steps(&mut t, &mut at, 0, 4);
        // Restart delay 0: the new process is up before step 5 reaches us.
        t.apply(500, exited(ProcessExit::Signal("SIGKILL".into()), false));
        t.apply(501, started(2));
        t.apply(502, checkpoint(5));
        assert_eq!(phase(&t), "RECOVERING");
        t.apply(503, flag());
        t.apply(600, checkpoint(6));
        let cycle = &t.cycles()[0];
        assert_eq!(cycle.progress_at_kill, Some(50));
        assert_eq!(cycle.resumed_from, Some(50));
        assert_eq!(cycle.steps_lost, Some(0));
        assert_eq!(phase(&t), "RESUMED from 50%");
    }

    // The dead run's last write delivered after the exit, far beyond the
    // fallback's windows: with its write time (plumdash's controller) it is
    // still judged right; without one (the original's), as before.

    #[test]
    fn a_completion_written_before_the_exit_belongs_to_it_however_late_it_comes() {
        let completion = || Fact::Written(vec![e("task.status", "completed")]);
        for timed in [true, false] {
            let mut t = Tracker::new();
            let mut at = 0;
            t.apply(at, started(1));
            run_steps(&mut t, &mut at, 0, 10);
            t.apply(1_100, exited(ProcessExit::Clean, false));
            assert_eq!(phase(&t), "STOPPED");
            // Written at 1 090, delivered 8 s after the exit.
            let write = if timed {
                committed_at(1_090, completion())
            } else {
                completion()
            };
            t.apply(9_100, write);
            if timed {
                assert_eq!(phase(&t), "COMPLETED");
                assert_eq!(t.timeline().last().unwrap().kind, TimelineKind::Completed);
            } else {
                // No write time: past the fallback's 5 s it is not the exit's.
                assert_eq!(phase(&t), "STOPPED");
            }
        }
        // Written after the exit (by someone else): not that run's completion.
        let mut t = Tracker::new();
        t.apply(0, started(1));
        t.apply(1_100, exited(ProcessExit::Clean, false));
        t.apply(1_300, committed_at(1_200, completion()));
        assert_eq!(phase(&t), "STOPPED");
    }

    #[test]
    fn a_last_checkpoint_written_before_the_kill_is_the_kill_point_however_late_it_comes() {
        for timed in [true, false] {
            let stamp = |ms, fact| if timed { committed_at(ms, fact) } else { fact };
            let mut t = Tracker::new();
            let mut at = 0;
            t.apply(at, started(1));
            t.apply(at, stamp(0, flag()));
            for n in 1..=4 {
                at += 100;
                t.apply(at, stamp(at, checkpoint(n)));
            }
            // Step 5 written at 495; the kill is seen at 500, the restart at 501.
            t.apply(500, exited(ProcessExit::Signal("SIGKILL".into()), false));
            t.apply(501, started(2));
            // Step 5 arrives 2 s later; then the new run's start keys and step 6.
            t.apply(2_500, stamp(495, checkpoint(5)));
            t.apply(2_501, stamp(510, flag()));
            t.apply(2_600, stamp(600, checkpoint(6)));
            let cycle = &t.cycles()[0];
            if timed {
                assert_eq!(cycle.progress_at_kill, Some(50));
                assert_eq!(cycle.resumed_from, Some(50));
                assert_eq!(cycle.steps_lost, Some(0));
                assert_eq!(phase(&t), "RESUMED from 50%");
            } else {
                // No write time: past the fallback's 250 ms step 5 reads as the
                // new run's first checkpoint.
                assert_eq!(cycle.progress_at_kill, Some(40));
                assert_eq!(cycle.resumed_from, Some(40));
            }
        }
    }

    #[test]
    fn a_checkpoint_committed_between_the_kill_and_the_respawn_is_the_dead_runs() {
        // Sent before the kill, committed just after it was seen: before the
        // restart was spawned and announced, so not the new run's.
        let mut t = killed_after_step(4);
        t.apply(500, started(2));
        t.apply(1_500, committed_at(499, checkpoint(5)));
        assert_eq!(t.cycles()[0].counter_at_kill, Some(5));
        assert_eq!(phase(&t), "RECOVERING");
        t.apply(1_501, committed_at(520, flag()));
        t.apply(1_600, committed_at(620, checkpoint(6)));
        assert_eq!(t.cycles()[0].steps_lost, Some(0));
        assert_eq!(t.cycles()[0].resumed_from, Some(50));
    }

    #[test]
    fn a_restarted_run_that_never_announces_itself_resumes_at_its_first_checkpoint() {
        // A `--cmd` worker that writes no start keys: its first checkpoint,
        // one step past the kill point and soon after the restart, is its own
        // when its write time says so (the fallback takes it for the dead's).
        for timed in [true, false] {
            let mut t = killed_after_step(5);
            t.apply(700, started(2));
            let step = if timed {
                committed_at(750, checkpoint(6))
            } else {
                checkpoint(6)
            };
            t.apply(751, step);
            let cycle = &t.cycles()[0];
            if timed {
                assert_eq!(cycle.resumed_from, Some(50));
                assert_eq!(cycle.steps_lost, Some(0));
                assert_eq!(phase(&t), "RESUMED from 50%");
            } else {
                assert_eq!(cycle.resumed_from, None, "still open");
                assert_eq!(cycle.counter_at_kill, Some(6));
            }
        }
    }

    #[test]
    fn start_keys_written_before_the_kill_do_not_announce_the_restart() {
        // A run that died right after its start: its own flag write, delivered
        // after its exit and the restart, is not the restarted run's.
        let mut t = killed_after_step(5);
        t.apply(601, started(2));
        t.apply(900, committed_at(590, flag()));
        assert_eq!(phase(&t), "RECOVERING");
        t.apply(901, committed_at(610, flag()));
        assert_eq!(phase(&t), "RESUMED from 50%");
    }

    /// A tiny deterministic generator, so the interleavings below are replayable.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn any_delivery_order_of_a_correct_worker_yields_exact_cycles() {
        for seed in 0..500 {
            let mut rng = Lcg(seed);
            // What a correct worker and the supervisor produce, with when it
            // happened: steps every 100 ms, a kill at a random time, restart
            // after 0–2 ms, the new run announces itself then resumes.
            let mut produced: Vec<(TsMs, bool, Fact)> = Vec::new();
            let mut now: TsMs = 1_000;
            produced.push((now, true, started(1)));
            produced.push((now + 1, false, flag()));
            let kill_after = 1 + rng.below(8) as i64;
            for n in 1..=kill_after {
                produced.push((now + n as u64 * 100, false, checkpoint(n)));
            }
            now += kill_after as u64 * 100 + rng.below(100);
            produced.push((
                now,
                true,
                exited(ProcessExit::Signal("SIGKILL".into()), false),
            ));
            now += rng.below(3);
            produced.push((now, true, started(2)));
            produced.push((now + 1, false, flag()));
            for n in kill_after + 1..=10 {
                produced.push((
                    now + 2 + (n - kill_after) as u64 * 100,
                    false,
                    checkpoint(n),
                ));
            }
            // Delivery: process events within 0–1 ms, namespace writes within
            // 0–5 ms, each channel in order; ties go to process events.
            let (mut ev_t, mut kv_t) = (0, 0);
            let mut delivered: Vec<(TsMs, u8, usize, Fact)> = Vec::new();
            for (i, (at, is_event, fact)) in produced.into_iter().enumerate() {
                let (last, lat) = if is_event {
                    (&mut ev_t, rng.below(2))
                } else {
                    (&mut kv_t, rng.below(6))
                };
                *last = (*last).max(at + lat);
                delivered.push((*last, u8::from(!is_event), i, fact));
            }
            delivered.sort_by_key(|(t, kind, i, _)| (*t, *kind, *i));
            let mut t = Tracker::new();
            for (at, _, _, fact) in delivered {
                t.apply(at, fact);
            }
            let cycle = &t.cycles()[0];
            assert_eq!(t.cycles().len(), 1, "seed {seed}");
            assert_eq!(
                cycle.progress_at_kill,
                Some(kill_after * 10),
                "seed {seed}: {cycle:?}"
            );
            assert_eq!(
                cycle.resumed_from,
                Some(kill_after * 10),
                "seed {seed}: {cycle:?}"
            );
            assert_eq!(cycle.steps_lost, Some(0), "seed {seed}");
            assert_eq!(t.completions(), 1, "seed {seed}");
        }
    }

    #[test]
    fn with_write_times_any_delivery_delay_yields_exact_cycles() {
        for seed in 0..500 {
            let mut rng = Lcg(seed);
            let mut produced: Vec<(TsMs, bool, Fact)> = Vec::new();
            let mut now: TsMs = 1_000;
            produced.push((now, true, started(1)));
            produced.push((now + 1, false, flag()));
            let kill_after = 1 + rng.below(8) as i64;
            for n in 1..=kill_after {
                produced.push((now + n as u64 * 100, false, checkpoint(n)));
            }
            now += kill_after as u64 * 100 + 1 + rng.below(100);
            produced.push((now, true, sigkilled()));
            now += rng.below(3);
            produced.push((now, true, started(2)));
            produced.push((now + 1, false, flag()));
            for n in kill_after + 1..=10 {
                let at = now + 2 + (n - kill_after) as u64 * 100;
                produced.push((at, false, checkpoint(n)));
            }
            // Process events within 0–1 ms; namespace writes, carrying their
            // write time, within 0–3 s: each channel in order.
            let (mut ev_t, mut kv_t) = (0, 0);
            let mut delivered: Vec<(TsMs, u8, usize, Fact)> = Vec::new();
            for (i, (at, is_event, fact)) in produced.into_iter().enumerate() {
                let (last, lat) = if is_event {
                    (&mut ev_t, rng.below(2))
                } else {
                    (&mut kv_t, rng.below(3_000))
                };
                *last = (*last).max(at + lat);
                let fact = if is_event {
                    fact
                } else {
                    committed_at(at, fact)
                };
                delivered.push((*last, u8::from(!is_event), i, fact));
            }
            delivered.sort_by_key(|(t, kind, i, _)| (*t, *kind, *i));
            let mut t = Tracker::new();
            for (at, _, _, fact) in delivered {
                t.apply(at, fact);
            }
            assert_eq!(t.cycles().len(), 1, "seed {seed}");
            let cycle = &t.cycles()[0];
            assert_eq!(
                (cycle.progress_at_kill, cycle.resumed_from, cycle.steps_lost),
                (Some(kill_after * 10), Some(kill_after * 10), Some(0)),
                "seed {seed}: {cycle:?}"
            );
            assert_eq!(t.completions(), 1, "seed {seed}");
        }
    }

    fn attached(pid: u32) -> Fact {
        Fact::Attached {
            instance: "kv-demo-001".into(),
            pid,
        }
    }

    fn gone() -> Fact {
        exited(ProcessExit::Unknown, false)
    }

    fn deleted(key: &str) -> Fact {
        Fact::Deleted { key: key.into() }
    }

    /// Attached to a worker at step `n`, its flag set as every running worker's is.
    fn attached_at_step(n: i64) -> Tracker {
        let mut t = Tracker::new();
        let mut entries = vec![e("app.crashed", "true")];
        if let Fact::Written(step) = checkpoint(n) {
            entries.extend(step);
        }
        t.apply(0, Fact::Snapshot(entries));
        t.apply(10, attached(7));
        t
    }

    #[test]
    fn a_worker_found_running_is_running_at_its_progress_not_a_recovery() {
        let t = attached_at_step(2);
        assert_eq!(phase(&t), "RUNNING");
        assert_eq!(
            t.detail("kv-demo-001", 20).as_deref(),
            Some("attached at 20%")
        );
        // Found before the first read of the namespace: the progress comes with it.
        let mut t = Tracker::new();
        t.apply(0, attached(7));
        t.apply(5, Fact::Snapshot(vec![e("app.crashed", "true")]));
        t.apply(10, checkpoint(3));
        assert_eq!(phase(&t), "RUNNING");
        assert_eq!(
            t.detail("kv-demo-001", 20).as_deref(),
            Some("attached at 30%")
        );
        assert!(t.cycles().is_empty());
    }

    #[test]
    fn an_unseen_end_is_judged_from_the_namespace() {
        // Completed: flag cleared, task.status=completed.
        let mut t = attached_at_step(9);
        t.apply(100, checkpoint(10));
        t.apply(101, deleted("app.crashed"));
        t.apply(102, Fact::Written(vec![e("task.status", "completed")]));
        t.apply(200, gone());
        assert_eq!(phase(&t), "COMPLETED");
        let inst = t.instance("kv-demo-001").unwrap();
        assert_eq!(inst.crashes, 0);
        assert!(t.cycles().is_empty());
        assert_eq!(t.detail("kv-demo-001", 300), None);

        // Stopped: flag cleared, app.status=stopped.
        let mut t = attached_at_step(4);
        t.apply(101, deleted("app.crashed"));
        t.apply(102, Fact::Written(vec![e("app.status", "stopped")]));
        t.apply(200, gone());
        assert_eq!(phase(&t), "STOPPED");
        assert_eq!(t.instance("kv-demo-001").unwrap().crashes, 0);

        // Crashed: the flag is still set.
        let mut t = attached_at_step(5);
        t.apply(200, gone());
        assert_eq!(phase(&t), "CRASHED");
        assert_eq!(t.instance("kv-demo-001").unwrap().crashes, 1);
        assert_eq!(
            t.detail("kv-demo-001", 300).as_deref(),
            Some("gone, flag still set")
        );
        let line = t.timeline().last().unwrap().to_string();
        assert_eq!(line, "kv-demo-001 gone at 50% (flag still set: crashed)");
        assert!(!t.timeline().any(|ev| ev.to_string().contains("unknown")));
    }

    #[test]
    fn a_restart_by_someone_else_is_the_next_run_and_resumes() {
        let mut t = attached_at_step(5);
        t.apply(200, gone());
        t.apply(3_000, started(8));
        assert_eq!(phase(&t), "RECOVERING");
        t.apply(3_010, flag());
        assert_eq!(phase(&t), "RESUMED from 50%");
        t.apply(5_000, checkpoint(6));
        let inst = t.instance("kv-demo-001").unwrap();
        assert_eq!((inst.crashes, inst.runs, inst.pid), (1, 2, Some(8)));
        assert_eq!(t.cycles().len(), 1);
        assert_eq!(t.cycles()[0].steps_lost, Some(0));
        assert_eq!(t.detail("kv-demo-001", 5_000), None, "no longer 'attached'");
    }

    #[test]
    fn the_task_started_after_a_completion_is_new_not_resumed_from_zero() {
        let mut t = attached_at_step(9);
        t.apply(100, checkpoint(10));
        t.apply(101, deleted("app.crashed"));
        t.apply(102, Fact::Written(vec![e("task.status", "completed")]));
        t.apply(200, gone());
        // The agent takes the exit for a failure and starts the app again.
        t.apply(3_000, started(8));
        t.apply(3_010, flag());
        assert_eq!(phase(&t), "RUNNING");
        t.apply(5_000, checkpoint(1));
        assert_eq!(phase(&t), "RUNNING");
        assert!(t.cycles().is_empty());
        assert_eq!(t.instance("kv-demo-001").unwrap().crashes, 0);
    }

    #[test]
    fn a_graceful_stop_replaced_before_its_death_was_seen_is_still_a_stop() {
        let mut t = attached_at_step(4);
        t.apply(101, deleted("app.crashed"));
        t.apply(102, Fact::Written(vec![e("app.status", "stopped")]));
        // The replacement set the flag again before the old pid was missed.
        t.apply(150, flag());
        t.apply(200, gone());
        assert_eq!(phase(&t), "STOPPED");
        assert_eq!(t.instance("kv-demo-001").unwrap().crashes, 0);
        assert!(t.cycles().is_empty());
    }

    #[test]
    fn a_crash_nobody_restarts_is_news_after_the_grace() {
        let mut t = attached_at_step(5);
        t.set_restart_grace(std::time::Duration::from_secs(10));
        t.apply(1_000, gone());
        assert!(!t.tick(5_000));
        assert!(t.tick(11_000));
        assert!(!t.tick(12_000), "said once");
        assert_eq!(
            t.detail("kv-demo-001", 13_500).as_deref(),
            Some("not restarted for 12s")
        );
        let line = t.timeline().last().unwrap().to_string();
        assert!(
            line.starts_with("kv-demo-001 not restarted within 10s"),
            "{line}"
        );
        assert_eq!(
            t.timeline().last().unwrap().to_json()["kind"],
            "not_restarted"
        );
        // Owned instances (an exit status we read) are the supervisor's to restart.
        let mut owned = killed_after_step(3);
        owned.set_restart_grace(std::time::Duration::from_secs(1));
        assert!(!owned.tick(60_000));
    }

    #[test]
    fn failures_and_feed_outages_are_on_the_timeline() {
        let mut t = Tracker::new();
        t.apply(0, started(1));
        t.apply(1, exited(ProcessExit::Code(1), false));
        assert_eq!(phase(&t), "CRASHED");
        t.apply(
            2,
            Fact::Failed {
                instance: "kv-demo-001".into(),
                reason: "5 restarts in a row".into(),
            },
        );
        assert_eq!(phase(&t), "FAILED");
        t.apply(
            3,
            Fact::FeedDown {
                error: "connection refused".into(),
            },
        );
        t.apply(
            4,
            Fact::FeedDown {
                error: "connection refused".into(),
            },
        );
        assert_eq!(t.feed_error(), Some("connection refused"));
        t.apply(
            5,
            Fact::FeedUp {
                via: "stream".into(),
            },
        );
        assert_eq!(t.feed_error(), None);
        let kinds: Vec<String> = t.timeline().map(|e| e.to_string()).collect();
        assert_eq!(
            kinds,
            [
                "kv-demo-001 started (pid 1)",
                "kv-demo-001 exited (exit 1)",
                "kv-demo-001 FAILED: 5 restarts in a row",
                "controller unreachable: connection refused",
                "controller live (stream)",
            ]
        );
    }

    /// Nodes A and B, and deployment d1's rows (`(instance, node, desired, fenced)`).
    fn cluster(a_healthy: bool, rows: &[(&str, &str, &str, u64)]) -> Fact {
        use crate::cluster::{AssignmentFact, ClusterView, NodeFact};
        let node = |id: &str, healthy: bool| NodeFact {
            node_id: id.into(),
            ip: "127.0.0.1".into(),
            last_seen: 1,
            health: if healthy { "Healthy" } else { "Unhealthy" }.into(),
        };
        Fact::Cluster(ClusterView {
            nodes: vec![node("nodeA", a_healthy), node("nodeB", true)],
            assignments: rows
                .iter()
                .map(|(id, n, desired, fenced)| AssignmentFact {
                    instance_id: (*id).into(),
                    deployment_id: "d1".into(),
                    node_id: (*n).into(),
                    desired: (*desired).into(),
                    fenced_writes: *fenced,
                })
                .collect(),
        })
    }

    #[test]
    fn a_frozen_nodes_failover_is_a_cycle_with_figures_and_its_thawed_end_is_no_crash() {
        use super::super::facts::NodeAction;
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, cluster(true, &[("d1-a", "nodeA", "Running", 0)]));
        t.apply(
            at,
            Fact::Started {
                instance: "d1-a".into(),
                pid: 1,
            },
        );
        t.apply(at, flag());
        run_steps(&mut t, &mut at, 0, 4);
        t.apply(
            1_000,
            Fact::NodeAction {
                node: "nodeA".into(),
                action: NodeAction::Frozen,
            },
        );
        // The frozen worker never exits; the controller moves its row after the TTL.
        t.apply(4_000, cluster(false, &[("d1-a", "nodeA", "Running", 0)]));
        t.apply(
            4_100,
            cluster(
                false,
                &[
                    ("d1-a", "nodeA", "Stopped", 0),
                    ("d1-b", "nodeB", "Running", 0),
                ],
            ),
        );
        assert_eq!(t.cycles().len(), 1, "the move opens the cycle");
        assert_eq!(t.cycles()[0].how, ProcessExit::NodeLost);
        assert_eq!(t.cycles()[0].killed_at, 1_000, "from the freeze");
        assert_eq!(
            t.detail("d1-a", 4_100).as_deref(),
            Some("replaced by d1-b on nodeB")
        );
        t.apply(
            4_200,
            Fact::Started {
                instance: "d1-b".into(),
                pid: 2,
            },
        );
        t.apply(4_250, flag());
        t.apply(4_600, checkpoint(5));
        let cycle = &t.cycles()[0];
        assert_eq!((cycle.resumed_from, cycle.steps_lost), (Some(40), Some(0)));
        let last = t.timeline().last().unwrap();
        let TimelineKind::FailedOver(f) = &last.kind else {
            panic!("the failover's figures: {last}");
        };
        assert_eq!(
            (f.to_running_ms(), f.to_checkpoint_ms()),
            (Some(3_200), Some(3_600))
        );
        assert_eq!(
            t.instance("d1-b").unwrap().phase,
            Phase::Resumed { from: 40 }
        );

        // Thawed: its write is refused and it stops (kv-demo exits 3). Not a crash.
        t.apply(
            9_000,
            Fact::NodeAction {
                node: "nodeA".into(),
                action: NodeAction::Thawed,
            },
        );
        t.apply(
            9_100,
            cluster(
                true,
                &[
                    ("d1-a", "nodeA", "Stopped", 1),
                    ("d1-b", "nodeB", "Running", 0),
                ],
            ),
        );
        t.apply(
            9_150,
            Fact::Exited {
                instance: "d1-a".into(),
                exit: ProcessExit::Code(3),
                requested: false,
            },
        );
        let lines: Vec<String> = t.timeline().rev().take(3).map(|e| e.to_string()).collect();
        assert_eq!(
            lines,
            [
                "d1-a ended after its work moved to d1-b (not a crash)",
                "d1-a exited (exit 3) at 50%",
                "d1-a on nodeA REFUSED: 1 write fenced (its work is d1-b's now)",
            ]
        );
        assert_eq!(t.instance("d1-a").unwrap().phase, Phase::Stopped);
        assert_eq!(t.instance("d1-a").unwrap().crashes, 0);
        assert_eq!(
            t.cycles().len(),
            1,
            "no cycle for the replaced writer's end"
        );
    }

    #[test]
    fn a_checkpoint_that_goes_back_within_a_task_names_the_second_writer() {
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, started(1));
        t.apply(
            at,
            Fact::Started {
                instance: "other".into(),
                pid: 2,
            },
        );
        run_steps(&mut t, &mut at, 0, 6);
        t.apply(at + 100, checkpoint(3));
        let last = t.timeline().last().unwrap().to_string();
        assert_eq!(
            last,
            "checkpoint went BACK from step 6 to 3: two writers on one namespace \
             (kv-demo-001, other alive)"
        );
        // A new task after a completion starts low again: no warning.
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, started(1));
        run_steps(&mut t, &mut at, 0, 10);
        t.apply(at + 50, Fact::Written(vec![e("task.status", "completed")]));
        t.apply(at + 100, checkpoint(1));
        assert!(
            !t.timeline()
                .any(|e| matches!(e.kind, TimelineKind::WentBack { .. })),
            "{:?}",
            t.timeline().map(|e| e.to_string()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_killed_nodes_instance_whose_work_moved_is_not_news_as_unrestarted() {
        let mut t = Tracker::new();
        t.set_restart_grace(std::time::Duration::from_secs(10));
        let mut at = 0;
        t.apply(at, cluster(true, &[("d1-a", "nodeA", "Running", 0)]));
        t.apply(
            at,
            Fact::Started {
                instance: "d1-a".into(),
                pid: 1,
            },
        );
        t.apply(at, flag());
        run_steps(&mut t, &mut at, 0, 4);
        t.apply(
            1_000,
            Fact::Exited {
                instance: "d1-a".into(),
                exit: ProcessExit::Unknown,
                requested: false,
            },
        );
        assert_eq!(t.instance("d1-a").unwrap().phase, Phase::Crashed);
        t.apply(
            1_300,
            cluster(
                false,
                &[
                    ("d1-a", "nodeA", "Stopped", 0),
                    ("d1-b", "nodeB", "Running", 0),
                ],
            ),
        );
        assert!(!t.tick(30_000), "its work runs on as d1-b");
        assert!(!t
            .timeline()
            .any(|e| matches!(e.kind, TimelineKind::NotRestarted { .. })));
        assert_eq!(
            t.detail("d1-a", 30_000).as_deref(),
            Some("moved to d1-b on nodeB")
        );
    }

    #[test]
    fn a_failover_resumed_before_a_read_showed_the_move_still_gets_its_figures() {
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, cluster(true, &[("d1-a", "nodeA", "Running", 0)]));
        t.apply(
            at,
            Fact::Started {
                instance: "d1-a".into(),
                pid: 1,
            },
        );
        t.apply(at, flag());
        run_steps(&mut t, &mut at, 0, 4);
        t.apply(
            990,
            Fact::NodeAction {
                node: "nodeA".into(),
                action: super::super::facts::NodeAction::Killed,
            },
        );
        t.apply(
            1_000,
            Fact::Exited {
                instance: "d1-a".into(),
                exit: ProcessExit::Unknown,
                requested: false,
            },
        );
        t.apply(
            1_300,
            Fact::Started {
                instance: "d1-b".into(),
                pid: 2,
            },
        );
        t.apply(1_320, flag());
        t.apply(1_350, checkpoint(5));
        assert_eq!(t.cycles()[0].steps_lost, Some(0));
        t.apply(
            1_400,
            cluster(
                false,
                &[
                    ("d1-a", "nodeA", "Stopped", 0),
                    ("d1-b", "nodeB", "Running", 0),
                ],
            ),
        );
        let last = t.timeline().last().unwrap();
        let TimelineKind::FailedOver(f) = &last.kind else {
            panic!("the figures: {last}");
        };
        assert_eq!(
            (f.instance.as_str(), f.to_running_ms(), f.to_checkpoint_ms()),
            ("d1-a", Some(310), Some(360))
        );
    }
}
