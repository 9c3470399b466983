//! The facts recovery state is derived from.

use crate::kv::Entry;

/// Unix time in milliseconds. Facts carry their own time so derivation is a
/// pure function of its input (and tests can replay exact histories).
pub type TsMs = u64;

/// The pid a run on another machine is told with (`Started`, `Attached`):
/// it has none here. Process facts need one, and a tracker reads `Some` as
/// alive; the timeline says "on its node" instead of a pid.
pub const REMOTE_PID: u32 = 0;

/// How a process ended, as far as recovery cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessExit {
    /// Killed by a signal (`SIGKILL`): the supervisor's `RawExit::Signal`,
    /// the same type, so a signal is never a free string.
    Signal(nix::sys::signal::Signal),
    /// Exited with a non-zero code.
    Code(i32),
    /// Exited with 0.
    Clean,
    /// Gone, and how cannot be read: only a process's parent can reap it, so the
    /// exit of a process we did not start is unknown. Its end is judged from the
    /// namespace instead (the crash flag, `task.status`).
    Unknown,
    /// Not an exit: its node was judged lost (frozen, cut off) and a failover
    /// gave its work to another instance. A recovery cycle starts there.
    NodeLost,
}

impl std::fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessExit::Signal(sig) => f.write_str(sig.as_str()),
            ProcessExit::Code(code) => write!(f, "exit {code}"),
            ProcessExit::Clean => write!(f, "exit 0"),
            ProcessExit::Unknown => write!(f, "gone"),
            ProcessExit::NodeLost => write!(f, "node lost"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// A worker process is running (spawned by us, or found by attach).
    Started {
        instance: String,
        pid: u32,
    },
    /// A worker process found already running (attach): its start was not seen,
    /// so nothing about it is a recovery we watched.
    Attached {
        instance: String,
        pid: u32,
    },
    /// A worker process is gone. `requested` is true when we asked it to stop.
    Exited {
        instance: String,
        exit: ProcessExit,
        requested: bool,
    },
    RestartScheduled {
        instance: String,
        delay_ms: u64,
    },
    /// A standby will start in `delay_ms`, taking over from `from` (crashed).
    TakeoverScheduled {
        instance: String,
        from: String,
        delay_ms: u64,
    },
    /// The process was frozen (SIGSTOP, SIGTSTP, …): it exists but does not run.
    /// `signal`: `None` when not known (an attached process seen stopped in `/proc`).
    Frozen {
        instance: String,
        signal: Option<String>,
    },
    /// A frozen process runs again.
    Continued {
        instance: String,
    },
    /// The supervisor gave up on the instance.
    Failed {
        instance: String,
        reason: String,
    },
    /// The namespace as a whole (first read, or after a feed outage).
    Snapshot(Vec<Entry>),
    /// Keys written together (a one-item write is a batch of one).
    Written(Vec<Entry>),
    Deleted {
        key: String,
        /// Who deleted it, when the controller says (see [`Entry::writer`]).
        writer: Option<crate::kv::Writer>,
    },
    /// The change feed lost or regained the controller.
    FeedDown {
        error: String,
    },
    FeedUp {
        via: String,
    },
    /// What the controller sent that the feed could not use (unreadable
    /// entries, skipped and dropped events): replaces the last such report.
    FeedTrouble(crate::kv::FeedTrouble),
    /// The controller's cluster API, as read (nodes, assignments).
    Cluster(crate::cluster::ClusterView),
    /// Something was done here to a node's processes.
    NodeAction {
        node: String,
        action: NodeAction,
    },
}

/// When a write was committed, as the controller says: the latest of its
/// entries' `updatedAtMs`, when every one has it (plumdash's controller),
/// else `None` (the original's, an older plumdash's, or a time found
/// untrustworthy by [`Fact::stamped`]).
pub fn written_at(entries: &[Entry]) -> Option<TsMs> {
    entries
        .iter()
        .map(|e| e.updated_at_ms.and_then(|ms| TsMs::try_from(ms).ok()))
        .collect::<Option<Vec<TsMs>>>()?
        .into_iter()
        .max()
}

impl Fact {
    /// A namespace fact with its time, `received` being when it arrived: a
    /// write is stamped with when the controller committed it, when every
    /// entry says ([`written_at`]), so a write delivered after a process fact
    /// still orders by when it happened; anything else (snapshots, deletes,
    /// the original controller's writes) with when it arrived. A write time
    /// later than its arrival comes from a clock that is not ours (a remote
    /// controller's, ahead): it cannot be compared with process facts, so it
    /// is dropped from the entries and the arrival time used.
    pub fn stamped(mut self, received: TsMs) -> (TsMs, Fact) {
        let Fact::Written(entries) = &mut self else {
            return (received, self);
        };
        match written_at(entries) {
            Some(at) if at <= received => (at, self),
            Some(_) => {
                for entry in entries.iter_mut() {
                    entry.updated_at_ms = None;
                }
                (received, self)
            }
            None => (received, self),
        }
    }
}

/// What someone did to a node's processes on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    /// SIGKILL to the agent and everything it started: a machine dying.
    Killed,
    /// SIGSTOP to the agent and its workers: a hung machine.
    Frozen,
    /// SIGCONT: the hung machine comes back.
    Thawed,
    /// A killed machine starts again: a new agent, no work until given some.
    Revived,
    /// Its test host's link cut both ways: the machine runs on, unreachable.
    Partitioned,
    /// Its test host's link cut one way (it hears but cannot reach, or the reverse).
    CutOneWay,
    /// Its test host's link degraded: packets lost (and delayed, when the kernel can).
    Degraded,
    /// Its test host's link whole again.
    Healed,
}

impl NodeAction {
    /// What was done, as `ctl` says it (`nodeA killed`).
    pub fn done(self) -> &'static str {
        match self {
            NodeAction::Killed => "killed",
            NodeAction::Frozen => "frozen",
            NodeAction::Thawed => "thawed",
            NodeAction::Revived => "back",
            NodeAction::Partitioned => "partitioned",
            NodeAction::CutOneWay => "cut one way",
            NodeAction::Degraded => "degraded",
            NodeAction::Healed => "healed",
        }
    }

    pub fn json_kind(self) -> &'static str {
        match self {
            NodeAction::Killed => "node_killed",
            NodeAction::Frozen => "node_frozen",
            NodeAction::Thawed => "node_thawed",
            NodeAction::Revived => "node_revived",
            NodeAction::Partitioned => "node_partitioned",
            NodeAction::CutOneWay => "node_cut_one_way",
            NodeAction::Degraded => "node_degraded",
            NodeAction::Healed => "node_healed",
        }
    }

    /// A fault a failover's clock starts from (not a recovery from one).
    pub fn is_fault(self) -> bool {
        !matches!(
            self,
            NodeAction::Thawed | NodeAction::Revived | NodeAction::Healed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::sample::{checkpoint, committed_at, entry};

    #[test]
    fn a_write_is_stamped_with_its_commit_time_when_every_entry_has_one() {
        let (at, fact) = committed_at(1_000, checkpoint(3)).stamped(1_250);
        assert_eq!(at, 1_000);
        assert_eq!(written_at(&entries(&fact)), Some(1_000));
        // Without times (the original controller), or one entry without: arrival.
        assert_eq!(checkpoint(3).stamped(1_250).0, 1_250);
        let Fact::Written(mut mixed) = committed_at(1_000, checkpoint(3)) else {
            unreachable!()
        };
        mixed.push(entry("note", "x"));
        assert_eq!(Fact::Written(mixed).stamped(1_250).0, 1_250);
        // Deletes and snapshots carry no write time.
        let deleted = Fact::Deleted {
            key: "k".into(),
            writer: None,
        };
        assert_eq!(deleted.stamped(1_250).0, 1_250);
    }

    #[test]
    fn a_write_time_later_than_its_arrival_is_another_clock_and_dropped() {
        let (at, fact) = committed_at(2_000, checkpoint(3)).stamped(1_250);
        assert_eq!(at, 1_250);
        assert_eq!(written_at(&entries(&fact)), None, "the tracker falls back");
    }

    fn entries(fact: &Fact) -> Vec<Entry> {
        match fact {
            Fact::Written(entries) => entries.clone(),
            other => panic!("not a write: {other:?}"),
        }
    }
}
