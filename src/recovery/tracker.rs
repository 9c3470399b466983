//! The derivation itself: facts in, phases, cycles and a timeline out.

pub use super::cycle::Cycle;
use super::cycle::{Basis, Recovered};
use super::facts::{written_at, Fact, ProcessExit, TsMs};
use super::key_map::{KeyMap, Role};
pub use super::mirror::CrashFlag;
use super::mirror::NamespaceMirror;
use super::node_book::{NodeBook, NodeChange};
use super::pattern::{Pattern, PatternNews};
use super::pattern_watch::PatternWatch;
use super::task::{TaskView, TornCheckpoint};
use super::timeline::{TimelineEvent, TimelineKind};
use crate::kv::{Entry, Writer};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

/// Timeline entries kept (oldest dropped first).
const TIMELINE_CAP: usize = 1000;
/// Progress samples kept for the chart.
const PROGRESS_CAP: usize = 4096;

/// How much history a tracker keeps. A board of many trackers (one
/// namespace per instance) shares a budget out among them: a thousand
/// trackers each keeping the whole caps grew the dashboard by megabytes a
/// minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub timeline: usize,
    pub progress: usize,
}

impl Default for Keep {
    fn default() -> Keep {
        Keep {
            timeline: TIMELINE_CAP,
            progress: PROGRESS_CAP,
        }
    }
}

impl Keep {
    /// Trackers up to this many keep the whole caps.
    const ALONE_UP_TO: usize = 20;

    /// Each one's share when `trackers` keep history side by side: never
    /// less than two screens of timeline and two minutes of a chart at the
    /// default step. (At a thousand, a floor of 100 events and 256 samples
    /// each was 22 MB of the dashboard, filling up over its first minutes.)
    pub fn shared_by(trackers: usize) -> Keep {
        if trackers <= Self::ALONE_UP_TO {
            return Keep::default();
        }
        Keep {
            timeline: (20_000 / trackers).max(40),
            progress: (80_000 / trackers).max(128),
        }
    }
}

/// Appends to a history kept to `cap` items, dropping the oldest. The deque
/// grows by doubling only up to the cap, never past it: a thousand
/// trackers' histories rounded up to the next power of two were a quarter
/// more memory than they keep.
fn push_capped<T>(history: &mut VecDeque<T>, cap: usize, item: T) {
    while history.len() >= cap.max(1) {
        history.pop_front();
    }
    if history.len() == history.capacity() {
        let grown = (history.capacity() * 2).clamp(8, cap.max(1));
        history.reserve_exact(grown - history.len());
    }
    history.push_back(item);
}

/// Drops the oldest items beyond `cap`, and the room they took.
fn cut_to<T>(history: &mut VecDeque<T>, cap: usize) {
    if history.len() > cap {
        history.drain(..history.len() - cap);
    }
    history.shrink_to(cap);
}
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
/// A run that deletes the crash flag and sets it again this soon is
/// recovering (the original does both within a millisecond), not clearing
/// it: with writers named, only when both are the same run's.
const RESET_MS: TsMs = 1_000;
/// Fallback (writers not named): a flag deleted and set again as the very
/// next change, this soon, is one run's re-set; a graceful stop writes its
/// status in between, and a replacement takes longer to start.
const INFERRED_RESET_MS: TsMs = 50;
/// Runs remembered by pid (to tell whose a late write is), and writes of
/// processes not known as runs yet.
const RUNS_KEPT: usize = 256;
const EARLY_KEPT: usize = 64;

/// Who made a namespace change, as far as can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum By {
    /// A run seen starting (or found running): its instance and pid.
    Run { instance: String, pid: u32 },
    /// Named by the controller, but no run is known by that process (yet):
    /// another client (a reset, `plumdash kv`), or a run not seen starting yet.
    Other(Writer),
    /// Not named: the original controller, an older plumdash, a snapshot.
    Unknown,
}

/// How the crash flag, while it is set, came to be set: whether the next
/// start finds a flag some earlier run left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum FlagSource {
    #[default]
    NotSet,
    /// Set in the first read: left before watching began.
    Found,
    /// Still set when a run died.
    Left,
    /// Set by a write while it was not set: that writer's own.
    SetBy(By),
}

/// The crash flag's last delete, kept so that the same run setting it again
/// at once (a recovery's re-set) is not read as a clear.
#[derive(Debug, Clone)]
struct FlagDelete {
    at: TsMs,
    by: By,
    /// How it was set before the delete.
    source: FlagSource,
    /// The runs the delete marked as having cleared the flag.
    marked: Vec<String>,
    /// Another change came after it.
    followed: bool,
}

/// A write by a named process not known as a run yet: runs' first writes
/// can arrive before their `Started`.
#[derive(Debug, Clone)]
struct EarlyWrite {
    at: TsMs,
    writer: Writer,
    /// The progress it wrote, if it wrote one.
    progress: Option<i64>,
}

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
        /// `from` is at most (see `Cycle::resume_bound`).
        at_most: bool,
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
            Phase::Resumed { from, at_most } => {
                let le = if *at_most { "≤" } else { "" };
                write!(f, "RESUMED from {le}{from}%")
            }
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
    /// The current run's first step: its first own write of its progress, as
    /// (time, the step it names: progress / 10). The dead run's late writes
    /// are not it; nor need its other keys agree (a worker writing them one
    /// by one may never write a whole checkpoint).
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
    /// How much of the timeline and the progress it keeps.
    keep: Keep,
    completions: u32,
    /// Counter of the last consistent checkpoint: a worker writing keys one
    /// by one reaches a new checkpoint only when its last key lands.
    last_checkpoint: Option<i64>,
    /// Torn states ever seen (each new one counted once).
    torn_seen: u32,
    feed_error: Option<String>,
    feed_via: Option<String>,
    /// What the controller sent that the feed could not use, as last told.
    feed_trouble: crate::kv::FeedTrouble,
    /// The last time the feed was told down (the controller unreachable).
    feed_down_at: Option<TsMs>,
    /// When that last grew: more skipped or dropped, or a connection ended
    /// for what it sent (the counts run from the feed's start).
    feed_trouble_at: Option<TsMs>,
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
    /// Every run seen, newest last: its pid and instance (whose a write is).
    runs: VecDeque<(u32, String)>,
    /// The pid of the run whose death opened the open cycle.
    killed_pid: Option<u32>,
    /// How the crash flag came to be set, and its last delete.
    flag_source: FlagSource,
    flag_delete: Option<FlagDelete>,
    /// Writes by named processes not known as runs yet.
    early: VecDeque<EarlyWrite>,
    /// Writes seen, and how many of them named their writer.
    writes_seen: u64,
    writes_named: u64,
    /// When the crash flag last went from clear to set.
    flag_set_at: Option<TsMs>,
    /// The recovery pattern as told (`--pattern`); else learnt from the keys.
    told_pattern: Option<Pattern>,
    /// What the pattern's runs did around crashes.
    patterns: PatternWatch,
    /// The change being handled wrote the state machine's state.
    state_written: bool,
    /// The ids of the instances alive, as last handed to an event (reused
    /// while they stay the same).
    alive: Arc<[String]>,
}

impl Tracker {
    /// Keeps this much history from now on (the oldest goes first).
    pub fn set_keep(&mut self, keep: Keep) {
        self.keep = keep;
        cut_to(&mut self.timeline, keep.timeline);
        cut_to(&mut self.progress, keep.progress);
    }

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
    /// removed (deleted by a client that is no run), or never seen in this
    /// namespace since watching began.
    pub fn crash_flag(&self) -> CrashFlag {
        match self.ns.crash_flag() {
            CrashFlag::Cleared
                if self
                    .flag_delete
                    .as_ref()
                    .is_some_and(|d| matches!(d.by, By::Other(_))) =>
            {
                CrashFlag::Removed
            }
            flag => flag,
        }
    }

    /// Has the namespace been read whole yet (a snapshot or a poll)? Until
    /// then the screen says so instead of 0 %, no keys and no flag.
    pub fn namespace_read(&self) -> bool {
        self.ns.read()
    }

    /// Reads the namespace through `keys` (`--key ROLE=NAME`) from now on.
    pub fn set_keys(&mut self, keys: KeyMap) {
        self.ns.set_keys(keys);
        self.task = self.ns.task().clone();
    }

    pub fn keys(&self) -> &KeyMap {
        self.ns.keys()
    }

    /// The recovery pattern, as told (`--pattern`).
    pub fn set_pattern(&mut self, pattern: Option<Pattern>) {
        self.told_pattern = pattern;
    }

    /// The recovery pattern as told (`--pattern`), if it was.
    pub fn pattern_told(&self) -> Option<Pattern> {
        self.told_pattern
    }

    /// The recovery pattern: as told, else as the keys show it (`None`: not known yet).
    pub fn pattern(&self) -> Option<Pattern> {
        self.told_pattern.or(self.task.pattern)
    }

    /// Every pattern news that breaks its invariant, with when (verify's evidence).
    pub fn pattern_findings(&self) -> &[(TsMs, PatternNews)] {
        self.patterns.findings()
    }

    /// Every replay and restore seen, with when.
    pub fn pattern_recoveries(&self) -> &[(TsMs, PatternNews)] {
        self.patterns.recoveries()
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

    /// What the controller sent that the feed could not use (malformed,
    /// another namespace's, out of order), as last reported.
    pub fn feed_trouble(&self) -> &crate::kv::FeedTrouble {
        &self.feed_trouble
    }

    /// When the feed's trouble last grew (see [`Tracker::feed_trouble`]).
    pub fn feed_trouble_at(&self) -> Option<TsMs> {
        self.feed_trouble_at
    }

    /// Keys the namespace holds in a form that does not read, with why.
    pub fn unreadable(&self) -> &BTreeMap<String, String> {
        self.ns.unreadable()
    }

    /// How changes arrive (`stream`, `polling 500ms`), once known.
    pub fn feed_via(&self) -> Option<&str> {
        self.feed_via.as_deref()
    }

    /// What the judgement of which run wrote what rests on: the writers the
    /// controller named, if it named any.
    pub fn basis(&self) -> Basis {
        if self.writes_named > 0 {
            Basis::Writer
        } else {
            Basis::ArrivalOrder
        }
    }

    /// Writes seen, and how many named their writer.
    pub fn writes_named(&self) -> (u64, u64) {
        (self.writes_named, self.writes_seen)
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
                let first = self.ns.entries().is_empty() && self.runs.is_empty();
                let progress_before = self.task.progress;
                let progress_key = self.keys().name(Role::Progress).to_string();
                let progress_written = entries
                    .iter()
                    .find(|e| e.key == progress_key)
                    .and_then(|e| e.updated_at_ms)
                    .and_then(|ms| TsMs::try_from(ms).ok());
                self.ns.replace_all(at, entries);
                if self.ns.task().crash_flag && self.flag_source == FlagSource::NotSet {
                    // Already there when first read: some earlier run left it.
                    self.flag_source = if first {
                        FlagSource::Found
                    } else {
                        FlagSource::SetBy(By::Unknown)
                    };
                }
                self.on_namespace_change(at, None, &By::Unknown);
                // Read afresh (after an outage, a resync): a step written
                // meanwhile was not seen as a write. If it is the restarted
                // run's (by its time), it is its first; the feed was down,
                // so where it went on from is a bound (`Cycle::resume_bound`).
                if let Some(p) = self.task.progress.filter(|p| Some(*p) != progress_before) {
                    if self.open_cycle.is_some() {
                        self.on_progress_write(at, p, progress_written, &By::Unknown);
                    }
                }
            }
            Fact::Written(mut entries) => {
                let writer = entries.iter().find_map(|e| e.writer.clone());
                // The mirror holds values; who wrote them is this change's.
                for entry in &mut entries {
                    entry.writer = None;
                }
                self.writes_seen += 1;
                if writer.is_some() {
                    self.writes_named += 1;
                }
                let by = self.by(writer.as_ref());
                let written = written_at(&entries);
                // Start keys written by the dead run (or, by their time, at or
                // before the kill) do not announce the restart.
                let dead_runs = match &by {
                    By::Run { pid, .. } => Some(*pid) == self.killed_pid,
                    _ => written
                        .zip(self.open_cycle_killed_at())
                        .is_some_and(|(w, killed)| w <= killed),
                };
                let keys = self.ns.keys();
                let announces = entries.iter().any(|e| keys.is_start_key(&e.key)) && !dead_runs;
                if announces {
                    self.restart_announced = true;
                }
                let writes_progress = entries
                    .iter()
                    .any(|e| keys.role_of(&e.key) == Some(Role::Progress));
                let sets_flag = entries.iter().any(|e| e.key == keys.name(Role::Flag));
                self.state_written = entries
                    .iter()
                    .any(|e| keys.role_of(&e.key) == Some(Role::FsmState));
                let flag_before = self.task.crash_flag;
                if !sets_flag {
                    if let Some(d) = &mut self.flag_delete {
                        d.followed = true;
                    }
                }
                self.ns.write(at, entries);
                let progress = self.ns.task().progress.filter(|_| writes_progress);
                if sets_flag && self.ns.task().crash_flag && !flag_before {
                    self.on_flag_set(at, &by);
                }
                if let (By::Other(w), Some(_)) = (&by, progress) {
                    self.remember_early(at, w, progress);
                }
                self.on_namespace_change(at, written, &by);
                if let Some(p) = progress {
                    self.on_progress_write(at, p, written, &by);
                }
                if announces {
                    self.on_recovery_announced();
                }
            }
            Fact::Deleted { key, writer } => {
                let by = self.by(writer.as_ref());
                if self.ns.keys().is_start_key(&key)
                    && !matches!(&by, By::Run { pid, .. } if Some(*pid) == self.killed_pid)
                {
                    self.restart_announced = true;
                }
                let flag_before = self.task.crash_flag;
                if let Some(d) = &mut self.flag_delete {
                    d.followed = true;
                }
                self.ns.delete(&key);
                let cleared = key == self.ns.keys().name(Role::Flag)
                    && flag_before
                    && !self.ns.task().crash_flag;
                if cleared {
                    self.flag_delete = Some(FlagDelete {
                        at,
                        by: by.clone(),
                        source: std::mem::take(&mut self.flag_source),
                        marked: Vec::new(),
                        followed: false,
                    });
                }
                self.on_namespace_change(at, None, &by);
            }
            Fact::FeedDown { error } => {
                self.feed_down_at = Some(at);
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
            Fact::FeedTrouble(trouble) => {
                if self.ns.set_unreadable(&trouble.unreadable) {
                    self.on_namespace_change(at, None, &By::Unknown);
                }
                let old = &self.feed_trouble;
                if trouble.skipped > old.skipped
                    || trouble.dropped > old.dropped
                    || (trouble.broken.is_some() && trouble.broken != old.broken)
                {
                    self.feed_trouble_at = Some(at);
                }
                self.feed_trouble = trouble;
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
    fn on_migrated(&mut self, f: &super::node_book::Failover) {
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
        let task = &self.task;
        self.cycles.push(Cycle {
            progress_at_kill: task.progress,
            counter_at_kill: task.counter,
            flag_after_kill: task.crash_flag,
            restarted_at: new_started,
            restarted_instance: new_started.map(|_| f.new_instance.clone()),
            checkpoint_at_kill: task.checkpoint_step(),
            task_done_at_kill: task.progress.is_some_and(|p| p >= 100) || task.is_completed(),
            ..Cycle::opened(&f.instance, f.origin(), ProcessExit::NodeLost)
        });
        self.open_cycle = Some(self.cycles.len() - 1);
        // Its late writes (once thawed) are the replaced run's, not the new one's.
        self.killed_pid = self.instances.get(&f.instance).and_then(|i| i.pid);
        self.restart_announced = false;
    }

    /// When the open cycle's run died (or its node was lost).
    fn open_cycle_killed_at(&self) -> Option<TsMs> {
        let cycle = self.cycles.get(self.open_cycle?)?;
        Some(cycle.killed_at)
    }

    /// The ids of the instances alive now, sharing the last list handed out
    /// when it is the same (one copy for many events, not one each).
    fn alive_ids(&mut self) -> Arc<[String]> {
        let alive = || self.instances.values().filter(|i| i.pid.is_some());
        if !alive().map(|i| &i.id).eq(self.alive.iter()) {
            self.alive = alive().map(|i| i.id.clone()).collect();
        }
        self.alive.clone()
    }

    fn push(&mut self, at: TsMs, instance: Option<String>, kind: TimelineKind) {
        self.pushed += 1;
        push_capped(
            &mut self.timeline,
            self.keep.timeline,
            TimelineEvent { at, instance, kind },
        );
    }

    fn on_started(&mut self, at: TsMs, id: String, pid: u32) {
        // A set flag some earlier run left means this start is a recovery;
        // one this run set itself (its write came before its `Started`) does
        // not, nor one another live run set, nor one set at or after the
        // start (a remote run's start reaches us by a later read).
        let left_by_another = match &self.flag_source {
            FlagSource::Found | FlagSource::Left => true,
            FlagSource::SetBy(_) | FlagSource::NotSet => false,
        };
        let set_by_this_run = self.flag_set_at.is_some_and(|set| set >= at);
        let recovering = self.task.crash_flag
            && !self.task.is_completed()
            && left_by_another
            && !set_by_this_run;
        self.remember_run(pid, &id);
        self.nodes.started(at, &id);
        // The flag is the last one read: with the controller unreachable the
        // new run cannot read it, so its recovery is not claimed.
        let unread = recovering && self.feed_error.is_some();
        let inst = self.new_run(at, &id, pid);
        inst.attached = false;
        inst.attached_at_pct = None;
        inst.phase = if recovering && !unread {
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
        if unread {
            self.push(at, Some(id.clone()), TimelineKind::RecoveryUnread);
        } else if recovering {
            self.push(at, Some(id.clone()), TimelineKind::Recovering);
        }
        // The new run's start keys can reach the feed before its `Started` reaches us
        // (two channels): written after the death, they are this run's.
        if self.restart_announced {
            self.on_recovery_announced();
        }
        // So can its first step, named by the controller: it is this run's.
        let early = self
            .early
            .iter()
            .find(|w| w.writer.includes(pid) && w.progress.is_some())
            .map(|w| (w.at, w.progress));
        self.early.retain(|w| !w.writer.includes(pid));
        if let Some((at, Some(progress))) = early {
            let by = By::Run { instance: id, pid };
            self.on_progress_write(at, progress, None, &by);
        }
    }

    /// A run found already running: RUNNING whatever the flag says (its start,
    /// and whether that was a recovery, was not seen).
    fn on_attached(&mut self, at: TsMs, id: String, pid: u32) {
        let progress = self.task.progress;
        self.remember_run(pid, &id);
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
        let flag_known = !matches!(
            self.ns.crash_flag(),
            CrashFlag::NeverSeen | CrashFlag::Unknown
        );
        let inst = self.instance_mut(&id);
        let dead_pid = inst.pid;
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
        // Stopped on request before a step of its own: the task done in the
        // namespace is an earlier run's, not this one's.
        let stopped_before_a_step = requested && inst.first_checkpoint.is_none();
        // A replaced run (its work moved on) did not complete the task, whoever did.
        inst.phase = if crashed {
            inst.crashes += 1;
            Phase::Crashed
        } else if clean_end && completed && superseded.is_none() && !stopped_before_a_step {
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
                // Its work moved on: the namespace's progress is its
                // replacement's by now, not where this run ended.
                progress: task.progress.filter(|_| superseded.is_none()),
                // Never read, never said: not "cleared".
                flag: flag_known.then_some(flag),
                crashed,
                requested,
            },
        );
        if flag && superseded.is_none() {
            // The next start finds a flag this run left (a crash, or a stop
            // that did not clear it): it will take itself for a recovery.
            self.flag_source = FlagSource::Left;
        }
        // The restarted run of the open cycle ended without a step of its
        // own: having finished the task (a kill at 100%), it resumed there.
        self.close_cycle_at_end(at, &id);
        match phase {
            Phase::Crashed => {
                self.cycles.push(Cycle {
                    progress_at_kill: task.progress,
                    counter_at_kill: task.counter,
                    flag_after_kill: flag,
                    checkpoint_at_kill: task.checkpoint_step(),
                    task_done_at_kill: task.progress.is_some_and(|p| p >= 100)
                        || task.is_completed(),
                    ..Cycle::opened(&id, at, exit)
                });
                self.open_cycle = Some(self.cycles.len() - 1);
                self.killed_pid = dead_pid;
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
    /// `facts::written_at`); `None` for snapshots, deletes and the original's
    /// writes. `by`: who made it, as far as is known.
    fn on_namespace_change(&mut self, at: TsMs, written: Option<TsMs>, by: &By) {
        let before = std::mem::replace(&mut self.task, self.ns.task().clone());
        let task = self.task.clone();
        // Another client's change (a reset, `plumdash kv`) is not a worker's
        // doing: no run cleared the flag, no worker tore its checkpoint.
        let stranger = matches!(by, By::Other(_));

        if before.crash_flag && !task.crash_flag {
            let mut marked = Vec::new();
            for inst in self.instances.values_mut().filter(|i| i.pid.is_some()) {
                let its_own = match by {
                    By::Run { instance, .. } => *instance == inst.id,
                    By::Other(_) => false,
                    By::Unknown => true,
                };
                if its_own && !inst.flag_cleared_in_run {
                    inst.flag_cleared_in_run = true;
                    marked.push(inst.id.clone());
                }
            }
            if let Some(d) = &mut self.flag_delete {
                if d.at == at && d.marked.is_empty() {
                    d.marked = marked;
                }
            }
        }
        if let Some(p) = task.progress {
            for inst in self.instances.values_mut() {
                if inst.attached && inst.pid.is_some() && inst.attached_at_pct.is_none() {
                    inst.attached_at_pct = Some(p);
                }
            }
        }
        if task.crash_flag && !before.crash_flag {
            self.flag_set_at = Some(at);
        }
        if task.crash_flag != before.crash_flag {
            let kind = if task.crash_flag {
                TimelineKind::FlagSet
            } else {
                TimelineKind::FlagCleared
            };
            self.push(at, self.owner.clone(), kind);
        }

        let wrote_state = std::mem::take(&mut self.state_written);
        if !stranger {
            for news in self.patterns.observe(at, &before, &task, wrote_state) {
                let instance = self.restarted_or_owner();
                self.push(at, instance, TimelineKind::Pattern(news));
            }
        }

        let torn = task.torn();
        if torn.is_some() && torn != self.torn && !stranger {
            if let Some(t) = torn.clone() {
                self.torn_seen += 1;
                self.push(at, self.owner.clone(), TimelineKind::Torn(t));
            }
        }
        self.torn = torn;

        if task.progress != before.progress {
            if let Some(progress) = task.progress {
                push_capped(
                    &mut self.progress,
                    self.keep.progress,
                    ProgressPoint { at, progress },
                );
                if progress == 100 {
                    self.completions += 1;
                }
            }
        }

        let counter = self.step_counter(&task);
        if self.torn.is_none() && counter != self.last_checkpoint {
            if let (Some(from), Some(to)) = (self.last_checkpoint, counter) {
                // Within one task the counter only climbs; a worker resumes at
                // the saved step, never under it. A restart that starts lower is
                // its cycle's steps lost, not a second writer.
                if to < from && !before.is_completed() && self.open_cycle.is_none() {
                    let alive = self.alive_ids();
                    self.push(
                        at,
                        self.owner.clone(),
                        TimelineKind::WentBack { from, to, alive },
                    );
                }
            }
            self.last_checkpoint = counter;
        }
        // What the dead run wrote is still where it died.
        if self.written_by_the_dead(by, None) {
            self.refresh_kill_point();
        }

        if task.is_completed() && !before.is_completed() {
            self.on_completion_written(at, written, by);
        }
    }

    /// The completion write can arrive after the clean exit it preceded:
    /// the run that wrote it completed, not stopped.
    fn on_completion_written(&mut self, at: TsMs, written: Option<TsMs>, by: &By) {
        for inst in self.instances.values_mut() {
            let its_run = match (by, written) {
                // Named: the run that wrote it.
                (By::Run { instance, .. }, _) => *instance == inst.id,
                (By::Other(_), _) => false,
                // Written during the run that ended, however late it came.
                (By::Unknown, Some(w)) => {
                    inst.ended_at.is_some_and(|end| w <= end)
                        && inst.started_at.is_none_or(|start| start <= w)
                }
                // Fallback (no write time): it came soon after the exit.
                (By::Unknown, None) => inst
                    .ended_at
                    .is_some_and(|t| at.saturating_sub(t) <= LATE_WRITE_MS),
            };
            // A replaced run's end is no completion, whoever completed the task.
            let replaced = self.nodes.replaced_by(&inst.id).is_some();
            if inst.phase == Phase::Stopped
                && matches!(
                    inst.last_exit,
                    Some(ProcessExit::Clean | ProcessExit::Unknown)
                )
                && its_run
                && !replaced
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

    /// The restarted run of the open cycle wrote its start keys: it has read the saved
    /// checkpoint and goes on from it, so the screen can say RESUMED now rather than a
    /// step later. Its first new checkpoint confirms (or corrects) where from, and
    /// closes the cycle with its figures.
    fn on_recovery_announced(&mut self) {
        let Some(cycle) = self.open_cycle.and_then(|i| self.cycles.get(i)) else {
            return;
        };
        let at = self.task_changed_at();
        let instance = cycle.restarted_instance.clone();
        for news in self.patterns.restart_announced(at, &self.task) {
            if let PatternNews::StepLost { step, work_done } = &news {
                if let Some(c) = self.open_cycle.and_then(|i| self.cycles.get_mut(i)) {
                    c.work_lost = Some(step - work_done);
                }
            }
            self.push(at, instance.clone(), TimelineKind::Pattern(news));
        }
        let Some(cycle) = self.open_cycle.and_then(|i| self.cycles.get(i)) else {
            return;
        };
        let Some(id) = cycle.restarted_instance.clone() else {
            return;
        };
        let from = self.task.progress.unwrap_or(0).max(0);
        if let Some(inst) = self.instances.get_mut(&id) {
            if inst.phase == Phase::Recovering {
                inst.phase = Phase::Resumed {
                    from,
                    at_most: false,
                };
            }
        }
    }

    /// The step a whole save stands at: the checkpoint's counter; for the
    /// transaction log and the state machine, whose every save is one batch
    /// with its progress, and for another app's keys (`--key`), which need
    /// not follow kv-demo's counter, the progress in steps.
    fn step_counter(&self, task: &TaskView) -> Option<i64> {
        let by_progress = task.foreign_keys
            || matches!(
                self.told_pattern.or(task.pattern),
                Some(Pattern::TxLog | Pattern::Fsm)
            );
        match by_progress {
            true => task.counter.or(task.progress.map(|p| p / 10)),
            false => task.counter,
        }
    }

    /// When the namespace last changed (the restart's announcement is its last change).
    fn task_changed_at(&self) -> TsMs {
        self.ns
            .entries()
            .keys()
            .filter_map(|k| self.ns.changed_at(k))
            .max()
            .unwrap_or(0)
    }

    /// Whose a pattern's news is: the restarted run of the open cycle, else
    /// the namespace's owner.
    fn restarted_or_owner(&self) -> Option<String> {
        self.open_cycle
            .and_then(|i| self.cycles.get(i))
            .and_then(|c| c.restarted_instance.clone())
            .or_else(|| self.owner.clone())
    }

    /// Who made a change: the run whose process (or a parent of it) wrote,
    /// when the controller named the writer.
    fn by(&self, writer: Option<&Writer>) -> By {
        let Some(writer) = writer else {
            return By::Unknown;
        };
        // The writer itself first, then its parents: the nearest run.
        for pid in &writer.pids {
            if let Some((_, instance)) = self.runs.iter().rev().find(|(p, _)| p == pid) {
                return By::Run {
                    instance: instance.clone(),
                    pid: *pid,
                };
            }
        }
        By::Other(writer.clone())
    }

    fn remember_run(&mut self, pid: u32, instance: &str) {
        self.runs.retain(|(p, _)| *p != pid);
        if self.runs.len() == RUNS_KEPT {
            self.runs.pop_front();
        }
        self.runs.push_back((pid, instance.to_string()));
    }

    fn remember_early(&mut self, at: TsMs, writer: &Writer, progress: Option<i64>) {
        if self.early.len() == EARLY_KEPT {
            self.early.pop_front();
        }
        self.early.push_back(EarlyWrite {
            at,
            writer: writer.clone(),
            progress,
        });
    }

    /// Two changes were made by one run: the same run, or (not known as runs
    /// yet) the same process or children of one process.
    fn same_run(a: &By, b: &By) -> bool {
        match (a, b) {
            (
                By::Run {
                    instance: x,
                    pid: p,
                },
                By::Run {
                    instance: y,
                    pid: q,
                },
            ) => x == y && p == q,
            (By::Other(x), By::Other(y)) => {
                x.pid() == y.pid() || (x.pids.len() > 1 && x.pids[1..] == y.pids[1..])
            }
            (By::Run { pid, .. }, By::Other(w)) | (By::Other(w), By::Run { pid, .. }) => {
                w.includes(*pid)
            }
            _ => false,
        }
    }

    /// The crash flag went from not set to set by a write of `by`.
    fn on_flag_set(&mut self, at: TsMs, by: &By) {
        let delete = self.flag_delete.take();
        let reset = delete.as_ref().is_some_and(|d| match (&d.by, by) {
            (By::Unknown, By::Unknown) => {
                !d.followed && at.saturating_sub(d.at) <= INFERRED_RESET_MS
            }
            (a, b) => Self::same_run(a, b) && at.saturating_sub(d.at) <= RESET_MS,
        });
        match delete {
            // One run deleted the flag it found and set it again (the original's
            // recovery): it found it, and did not clear it.
            Some(d) if reset => {
                self.flag_source = d.source;
                for id in d.marked {
                    if let Some(inst) = self.instances.get_mut(&id) {
                        inst.flag_cleared_in_run = false;
                    }
                }
            }
            _ => self.flag_source = FlagSource::SetBy(by.clone()),
        }
    }

    /// True when a change by `by` (of progress `p`, if one) is the dead run's
    /// of the open cycle, delivered after its death.
    fn written_by_the_dead(&self, by: &By, late_step: Option<(TsMs, i64, Option<TsMs>)>) -> bool {
        let Some(cycle) = self.open_cycle.and_then(|i| self.cycles.get(i)) else {
            return false;
        };
        match by {
            By::Run { pid, .. } => Some(*pid) == self.killed_pid,
            By::Other(_) => false,
            By::Unknown => match (cycle.restarted_at, late_step) {
                // Nobody has been restarted to have written it.
                (None, _) => true,
                (Some(_), None) => false,
                // Its write time is known: written at or before the kill, or
                // before the restarted run was started and had written its
                // start keys (which it does before any step; the feed is in
                // the store's order), it is the dead run's — however late it
                // came. A `Started` seen late (attach finds processes by
                // rescanning) is covered by the start keys, which then came first.
                (Some(restarted), Some((_, _, Some(w)))) => {
                    w <= cycle.killed_at || (w < restarted && !self.restart_announced)
                }
                // Fallback (no write time): judged on arrival, one step past
                // the kill point within the window, before the start keys.
                (Some(restarted), Some((at, p, None))) => {
                    !self.restart_announced
                        && p == cycle.progress_at_kill.unwrap_or(0) + 10
                        && at.saturating_sub(restarted) < LATE_CHECKPOINT_MS
                }
            },
        }
    }

    /// The open cycle's kill point is the task as it stands (a late write of
    /// the dead run moved it).
    fn refresh_kill_point(&mut self) {
        let task = self.task.clone();
        let checkpoint = task.checkpoint_step();
        if let Some(cycle) = self.open_cycle.and_then(|i| self.cycles.get_mut(i)) {
            cycle.progress_at_kill = task.progress;
            cycle.counter_at_kill = task.counter;
            cycle.checkpoint_at_kill = checkpoint;
            cycle.task_done_at_kill =
                task.progress.is_some_and(|p| p >= 100) || task.is_completed();
        }
    }

    /// A write of the task's progress `p`: the first of a run is its first
    /// step, and the restarted run's first closes the open cycle.
    fn on_progress_write(&mut self, at: TsMs, p: i64, written: Option<TsMs>, by: &By) {
        if self.written_by_the_dead(by, Some((at, p, written))) {
            self.refresh_kill_point();
            return;
        }
        self.note_first_step(at, p, written, by);
        let Some(index) = self.open_cycle else {
            // A recovery we did not see the start of (attached late). From 0
            // it was a fresh start whose flag we saw before its `Started`
            // (attach discovers processes by rescanning).
            let resumed_from = (p - 10).max(0);
            for inst in self.instances.values_mut() {
                if inst.phase == Phase::Recovering {
                    inst.phase = if resumed_from == 0 {
                        Phase::Running
                    } else {
                        Phase::Resumed {
                            from: resumed_from,
                            at_most: false,
                        }
                    };
                }
            }
            return;
        };
        let cycle = &self.cycles[index];
        let Some(restarted) = cycle.restarted_instance.clone() else {
            return;
        };
        // Only the restarted run's own step closes it: not another run's,
        // nor a client's that is no run.
        let its_own = match by {
            By::Run { instance, pid } => {
                *instance == restarted
                    && self.instances.get(instance).and_then(|i| i.pid) == Some(*pid)
            }
            By::Other(_) => false,
            By::Unknown => true,
        };
        if its_own {
            let basis = match by {
                By::Unknown => Basis::ArrivalOrder,
                _ => Basis::Writer,
            };
            self.close_cycle(index, at, Some(p), basis);
        }
    }

    /// The run(s) that had not written a step yet have now: the one named, or
    /// (not named) every live run started before it was written.
    fn note_first_step(&mut self, at: TsMs, p: i64, written: Option<TsMs>, by: &By) {
        for inst in self.instances.values_mut() {
            let its = match by {
                By::Run { instance, pid } => *instance == inst.id && inst.pid == Some(*pid),
                By::Other(_) => false,
                By::Unknown => match (written, inst.started_at) {
                    (Some(w), Some(start)) => start <= w,
                    _ => true,
                },
            };
            if inst.pid.is_some() && inst.first_checkpoint.is_none() && its {
                inst.first_checkpoint = Some((at, p / 10));
            }
        }
    }

    /// The restarted run of the open cycle ended (`id`) without writing a
    /// step: if the task is done, it resumed at its end (a kill during the
    /// completion writes); otherwise the cycle stays open.
    fn close_cycle_at_end(&mut self, at: TsMs, id: &str) {
        let Some(index) = self.open_cycle else {
            return;
        };
        let cycle = &self.cycles[index];
        let done = self.task.is_completed() && self.task.progress.is_some_and(|p| p >= 100);
        if cycle.restarted_instance.as_deref() == Some(id) && done {
            let basis = self.basis();
            self.close_cycle(index, at, None, basis);
        }
    }

    /// Closes cycle `index` with the restarted run's first progress write
    /// (`None`: it wrote none, the task being done): where it went on from
    /// against what the dead run had saved.
    fn close_cycle(&mut self, index: usize, at: TsMs, first: Option<i64>, basis: Basis) {
        let task_progress = self.task.progress;
        let feed_down_at = self.feed_down_at;
        let cycle = &mut self.cycles[index];
        let resumed = match first {
            Some(p) => (p - 10).max(0),
            None => task_progress.unwrap_or(100),
        };
        if first.is_some() {
            cycle.first_checkpoint_at = Some(at);
            // Down now, or since the kill: what it wrote meanwhile is unseen.
            cycle.resume_bound = resumed > 0
                && (self.feed_error.is_some()
                    || feed_down_at.is_some_and(|down| down >= cycle.killed_at));
        }
        cycle.resumed_from = Some(resumed);
        cycle.basis = basis;
        let pattern = self.told_pattern.or(self.task.pattern);
        cycle.recovered = match pattern {
            Some(Pattern::TxLog) => self.task.txlog.logged.map(|op| Recovered::Replayed { op }),
            Some(Pattern::Fsm) => self
                .task
                .fsm
                .state
                .clone()
                .map(|state| Recovered::Restored { state }),
            _ => None,
        };
        if cycle.task_done_at_kill {
            // Nothing was left to do: a new task from 0 loses nothing.
            cycle.steps_lost = Some(0);
            cycle.steps_skipped = Some(0);
        } else if let Some((lo, hi)) = cycle.resume_range() {
            cycle.steps_lost = Some((lo - resumed).max(0) / 10);
            cycle.steps_skipped = Some((resumed - hi).max(0) / 10);
        }
        let cycle = cycle.clone();
        self.open_cycle = None;
        self.killed_pid = None;
        for inst in self.instances.values_mut() {
            let restarted = cycle.restarted_instance.as_deref() == Some(inst.id.as_str());
            if inst.phase == Phase::Recovering
                || (restarted && matches!(inst.phase, Phase::Running | Phase::Resumed { .. }))
            {
                inst.phase = if cycle.task_done_at_kill && first.is_some() {
                    // A new task: running, not resumed.
                    Phase::Running
                } else {
                    Phase::Resumed {
                        from: resumed,
                        at_most: cycle.resume_bound,
                    }
                };
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
