//! The recovery timeline: what happened, one event per line, as data. How
//! each event reads is `text::timeline`; its JSON, `event_json`.

use super::cycle::Cycle;
use super::facts::{NodeAction, ProcessExit, TsMs};
use super::node_book::Failover;
use super::pattern::PatternNews;
use super::task::TornCheckpoint;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineKind {
    Started {
        pid: u32,
    },
    /// Found already running (attach).
    Attached {
        pid: u32,
    },
    /// Gone with its end unseen, flag still set, and not restarted within the grace.
    NotRestarted {
        grace_ms: u64,
    },
    Exited {
        exit: ProcessExit,
        progress: Option<i64>,
        /// The crash flag as the run left it; `None` when it was never seen
        /// (a worker that does not use it, a controller never read).
        flag: Option<bool>,
        /// Not a stop we asked for nor a clean exit: a crash.
        crashed: bool,
        /// We asked it to stop (the exit is still what the kernel said).
        requested: bool,
    },
    RestartScheduled {
        delay_ms: u64,
    },
    /// A standby starts in `delay_ms`, in place of `from` (crashed).
    TakingOver {
        from: String,
        delay_ms: u64,
    },
    Frozen {
        signal: Option<String>,
    },
    Continued,
    Recovering,
    /// Started with a crash flag left set while the controller was
    /// unreachable: it cannot read the flag yet, so whether it recovers is
    /// not known (not `Recovering`, which says it will find the flag).
    RecoveryUnread,
    Resumed {
        cycle: Cycle,
    },
    Stopped,
    Completed,
    Failed {
        reason: String,
    },
    FlagSet,
    FlagCleared,
    Torn(TornCheckpoint),
    /// A recovery pattern's news: a replay, a restore, a broken rule.
    Pattern(PatternNews),
    FeedDown {
        error: String,
    },
    FeedUp {
        via: String,
    },
    /// A node is heartbeating (first seen so, or back).
    NodeUp {
        node: String,
    },
    /// The controller reads a node unhealthy: it missed its heartbeats, or
    /// its agent's connection closed.
    NodeDown {
        node: String,
        how: super::node_book::NodeLoss,
    },
    /// The instance's row was parked and re-created on another node.
    Migrated {
        from_node: String,
        to_node: String,
        new_instance: String,
    },
    /// Done to a node's processes here (`K`, `F`, `ctl kill-node`, …).
    Node {
        node: String,
        action: NodeAction,
    },
    /// A failover's new instance wrote its first checkpoint: the figures.
    FailedOver(Failover),
    /// The controller refused writes from this instance: a failover replaced it.
    Fenced {
        node: String,
        refused: u64,
        by: Option<String>,
    },
    /// This instance ended after a failover had given its work to `by`: the
    /// end of a replaced writer, not a crash to recover from.
    Superseded {
        by: String,
    },
    /// The checkpoint counter went down within one task: a second writer (a
    /// replaced instance that does not fence) wrote over the namespace.
    WentBack {
        from: i64,
        to: i64,
        /// The instances alive then. Shared: with one namespace for many
        /// instances this can fire on most writes, and each of the kept
        /// events would otherwise hold its own copy of every instance's id.
        alive: Arc<[String]>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    pub at: TsMs,
    pub instance: Option<String>,
    pub kind: TimelineKind,
}
