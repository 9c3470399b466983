//! The derivation itself: facts in, phases, cycles and a timeline out.

pub use super::cycle::Cycle;
use super::facts::{written_at, Fact, ProcessExit, TsMs};
pub use super::mirror::CrashFlag;
use super::mirror::NamespaceMirror;
use super::nodes::{NodeBook, NodeChange};
use super::task::{TaskView, TornCheckpoint, START_KEYS};
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

/// What the state word alone does not say about an instance, typed until
/// drawn (the table shortens the ids in it). `Display` is the English text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// Found running, not seen starting; the progress then, if known.
    Attached { at_pct: Option<i64> },
    /// Gone with its end unseen and the crash flag still set.
    GoneFlagSet,
    /// Gone, flag set, and nobody restarted it for this long.
    NotRestartedFor { secs: u64 },
    /// Still alive, but a failover gave its work to `instance` on `node`.
    ReplacedBy { instance: String, node: String },
    /// Gone; a failover had moved its work to `instance` on `node`.
    MovedTo { instance: String, node: String },
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Attached { at_pct: Some(p) } => write!(f, "attached at {p}%"),
            Detail::Attached { at_pct: None } => f.write_str("attached"),
            Detail::GoneFlagSet => f.write_str("gone, flag still set"),
            Detail::NotRestartedFor { secs } => write!(f, "not restarted for {secs}s"),
            Detail::ReplacedBy { instance, node } => write!(f, "replaced by {instance} on {node}"),
            Detail::MovedTo { instance, node } => write!(f, "moved to {instance} on {node}"),
        }
    }
}

/// An instance's lifecycle state. `Display` gives the stable status text
/// (`RESUMED from 50%`) that recordings and tests match on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Running,
    Crashed,
    Recovering,
    Resumed {
        from: i64,
    },
    Stopped,
    /// Not running: one of an active/standby group, started only to take over
    /// (the lifecycle's, merged in by `InstanceStatus::of`; never judged here).
    Standby,
    Completed,
    Failed {
        reason: String,
    },
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
            Phase::Standby => "STANDBY",
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
    /// The instance whose own namespace this is (`--namespace-by instance`):
    /// what happens in the namespace (flag, torn state, feed) is its news, and
    /// of the cluster's news only what is about it.
    owner: Option<String>,
    /// Tells the cluster's own news (nodes up, down, acted on). Every tracker
    /// follows the cluster; with one per instance, one of them tells it.
    node_voice: bool,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker {
            node_voice: true,
            ..Tracker::default()
        }
    }

    /// The tracker of `instance`'s own namespace: its namespace events name
    /// it; `node_voice`: it also tells the cluster's news about no instance.
    pub fn of_instance(instance: &str, node_voice: bool) -> Tracker {
        Tracker {
            owner: Some(instance.to_string()),
            node_voice,
            ..Tracker::default()
        }
    }

    /// The controller's `--node-ttl` (how a lost node's loss is told).
    pub fn set_node_ttl(&mut self, ttl: std::time::Duration) {
        self.nodes.set_ttl(ttl);
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
    pub fn detail(&self, id: &str, now: TsMs) -> Option<Detail> {
        let inst = self.instances.get(id)?;
        if let Some(f) = self.nodes.replaced_by(id) {
            let (instance, node) = (f.new_instance.clone(), f.to_node.clone());
            return Some(match inst.pid {
                Some(_) => Detail::ReplacedBy { instance, node },
                None => Detail::MovedTo { instance, node },
            });
        }
        if inst.phase.is_alive() && inst.attached {
            return Some(Detail::Attached {
                at_pct: inst.attached_at_pct,
            });
        }
        if inst.phase == Phase::Crashed && inst.last_exit == Some(ProcessExit::Unknown) {
            let waited = inst.ended_at.map_or(0, |t| now.saturating_sub(t));
            return Some(if inst.overdue {
                Detail::NotRestartedFor {
                    secs: waited / 1000,
                }
            } else {
                Detail::GoneFlagSet
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
            Fact::TakeoverScheduled {
                instance,
                from,
                delay_ms,
            } => {
                self.instance_mut(&instance).restart_at = Some(at + delay_ms);
                self.push(
                    at,
                    Some(instance),
                    TimelineKind::TakingOver { from, delay_ms },
                );
            }
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
                        self.owner.clone(),
                        TimelineKind::FeedDown {
                            error: error.clone(),
                        },
                    );
                }
                self.feed_error = Some(error);
            }
            Fact::Cluster(view) => {
                for change in self.nodes.read(at, view) {
                    if let NodeChange::Migrated(f) = &change {
                        self.on_migrated(f);
                    }
                    self.push_node_change(at, change);
                }
            }
            Fact::NodeAction { node, action } => {
                let change = self.nodes.act(at, &node, action);
                self.push_node_change(at, change);
            }
            Fact::FeedUp { via } => {
                if self.feed_error.take().is_some() || self.feed_via.as_ref() != Some(&via) {
                    self.push(
                        at,
                        self.owner.clone(),
                        TimelineKind::FeedUp { via: via.clone() },
                    );
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

    /// Timeline events ever pushed: the number the next one gets (see [`Tracker::event`]).
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    /// The event numbered `seq` (counted from 0 as pushed), while the capped
    /// timeline still keeps it: how the board's merged timeline finds it.
    pub fn event(&self, seq: u64) -> Option<&TimelineEvent> {
        let first_kept = self.pushed - self.timeline.len() as u64;
        let index = usize::try_from(seq.checked_sub(first_kept)?).ok()?;
        self.timeline.get(index)
    }

    /// The cluster's nodes and failovers.
    pub fn nodes(&self) -> &NodeBook {
        &self.nodes
    }

    fn push_node_change(&mut self, at: TsMs, change: NodeChange) {
        let (instance, kind) = match change {
            NodeChange::Up { node } => (None, TimelineKind::NodeUp { node }),
            NodeChange::Down { node, how } => (None, TimelineKind::NodeDown { node, how }),
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
        let told = match (&self.owner, &instance) {
            (None, _) => true,
            (Some(_), None) => self.node_voice,
            (Some(owner), Some(about)) => owner == about,
        };
        if told {
            self.push(at, instance, kind);
        }
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
            self.push(at, self.owner.clone(), kind);
        }

        let torn = task.torn();
        if torn.is_some() && torn != self.torn {
            if let Some(t) = torn.clone() {
                self.torn_seen += 1;
                self.push(at, self.owner.clone(), TimelineKind::Torn(t));
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
                    self.push(
                        at,
                        self.owner.clone(),
                        TimelineKind::WentBack { from, to, alive },
                    );
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
mod tests;
