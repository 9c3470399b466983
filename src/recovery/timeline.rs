//! The recovery timeline: what happened, one event per line, and how each
//! event reads to a person (`Display`: the dashboard's timeline and the
//! headless lines).

use super::cycle::Cycle;
use super::facts::{NodeAction, ProcessExit, TsMs};
use super::nodes::Failover;
use super::task::TornCheckpoint;
use std::fmt;

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
        flag: bool,
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
    /// The controller reads a node unhealthy: it missed its heartbeats.
    NodeDown {
        node: String,
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
        /// The instances alive then.
        alive: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEvent {
    pub at: TsMs,
    pub instance: Option<String>,
    pub kind: TimelineKind,
}

impl fmt::Display for TimelineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = &self.instance {
            write!(f, "{id} ")?;
        }
        let pct = |p: Option<i64>| p.map_or_else(|| "?".to_string(), |p| format!("{p}%"));
        match &self.kind {
            TimelineKind::Started { pid } => write!(f, "started (pid {pid})"),
            TimelineKind::Attached { pid } => {
                write!(f, "found running (pid {pid}), attached")
            }
            TimelineKind::NotRestarted { grace_ms } => write!(
                f,
                "not restarted within {}: nothing restarts it (its restarter may have missed the death)",
                humantime::format_duration(std::time::Duration::from_millis(*grace_ms))
            ),
            TimelineKind::Exited {
                exit: ProcessExit::Unknown,
                progress,
                crashed,
                flag,
                ..
            } => {
                write!(f, "gone")?;
                if let Some(p) = progress {
                    write!(f, " at {p}%")?;
                }
                // Its exit status is its parent's to read; the flag tells the story
                // (set and no crash: the flag is its replacement's now).
                match (*crashed, *flag) {
                    (true, _) => write!(f, " (flag still set: crashed)"),
                    (false, true) => write!(f, " (flag set)"),
                    (false, false) => write!(f, " (flag cleared)"),
                }
            }
            TimelineKind::Exited {
                exit: ProcessExit::Signal(sig),
                progress,
                requested: true,
                ..
            } => {
                write!(f, "stopped by {sig} (stop requested)")?;
                match progress {
                    Some(p) => write!(f, " at {p}%"),
                    None => Ok(()),
                }
            }
            TimelineKind::Exited {
                exit: ProcessExit::Signal(sig),
                progress,
                flag,
                ..
            } => {
                write!(f, "killed by {sig}")?;
                if let Some(p) = progress {
                    write!(f, " at {p}%")?;
                }
                let flag = if *flag {
                    "flag still set"
                } else {
                    "flag NOT set"
                };
                write!(f, " ({flag})")
            }
            TimelineKind::Exited {
                exit,
                progress,
                requested,
                ..
            } => {
                write!(f, "exited ({exit}")?;
                if *requested {
                    write!(f, ", stop requested")?;
                }
                write!(f, ")")?;
                match progress {
                    Some(p) => write!(f, " at {p}%"),
                    None => Ok(()),
                }
            }
            TimelineKind::RestartScheduled { delay_ms } => {
                write!(f, "restart in {:.1}s", *delay_ms as f64 / 1000.0)
            }
            TimelineKind::TakingOver { from, delay_ms } => {
                write!(
                    f,
                    "takes over from {from} in {:.1}s",
                    *delay_ms as f64 / 1000.0
                )
            }
            TimelineKind::Recovering => write!(f, "found the crash flag: recovering"),
            TimelineKind::Resumed { cycle } => {
                write!(f, "RESUMED from {}", pct(cycle.resumed_from))?;
                if let Some(lost) = cycle.steps_lost {
                    write!(f, ", {lost} steps lost")?;
                }
                if let Some(ms) = cycle.kill_to_restart_ms() {
                    write!(f, ", kill→restart {ms} ms")?;
                }
                if let Some(ms) = cycle.kill_to_checkpoint_ms() {
                    write!(f, ", kill→checkpoint {ms} ms")?;
                }
                Ok(())
            }
            TimelineKind::Stopped => write!(f, "stopped gracefully"),
            TimelineKind::Completed => write!(f, "completed the task"),
            TimelineKind::Failed { reason } => write!(f, "FAILED: {reason}"),
            TimelineKind::FlagSet => write!(f, "crash flag set"),
            TimelineKind::FlagCleared => write!(f, "crash flag cleared"),
            TimelineKind::Torn(t) => write!(f, "TORN checkpoint: {t}"),
            TimelineKind::FeedDown { error } => write!(f, "controller unreachable: {error}"),
            TimelineKind::FeedUp { via } => write!(f, "controller live ({via})"),
            TimelineKind::Frozen {
                signal: Some(signal),
            } => {
                write!(f, "frozen by {signal}")
            }
            TimelineKind::Frozen { signal: None } => {
                write!(f, "frozen (stopped, seen in /proc)")
            }
            TimelineKind::Continued => write!(f, "continued"),
            TimelineKind::NodeUp { node } => write!(f, "node {node} up (heartbeating)"),
            TimelineKind::NodeDown { node } => {
                write!(f, "node {node} DOWN (missed its heartbeats)")
            }
            TimelineKind::Migrated {
                from_node,
                to_node,
                new_instance,
            } => write!(f, "MIGRATED {from_node} → {to_node} as {new_instance}"),
            TimelineKind::Node { node, action } => match action {
                NodeAction::Killed => {
                    write!(f, "node {node} KILLED (SIGKILL to its agent and workers)")
                }
                NodeAction::Frozen => {
                    write!(f, "node {node} FROZEN (SIGSTOP to its agent and workers)")
                }
                NodeAction::Thawed => write!(f, "node {node} thawed (SIGCONT)"),
                NodeAction::Revived => write!(f, "node {node} back (its agent started again)"),
            },
            TimelineKind::FailedOver(fo) => {
                let secs = |ms: Option<u64>| {
                    ms.map_or_else(|| "?".to_string(), |ms| format!("{:.1}s", ms as f64 / 1000.0))
                };
                let from = match fo.cause {
                    Some((NodeAction::Frozen, _)) => "freeze",
                    Some(_) => "kill",
                    None => "detected",
                };
                write!(f, "failover {} → {}: ", fo.from_node, fo.to_node)?;
                if fo.cause.is_some() {
                    write!(f, "{from}→detected {}, ", secs(fo.to_detected_ms()))?;
                }
                write!(
                    f,
                    "{from}→running {}, {from}→checkpoint {}",
                    secs(fo.to_running_ms()),
                    secs(fo.to_checkpoint_ms())
                )?;
                if let Some(lost) = fo.steps_lost {
                    write!(f, ", {lost} steps lost")?;
                }
                Ok(())
            }
            TimelineKind::Fenced { node, refused, by } => {
                let writes = if *refused == 1 { "write" } else { "writes" };
                write!(f, "on {node} REFUSED: {refused} {writes} fenced")?;
                match by {
                    Some(by) => write!(f, " (its work is {by}'s now)"),
                    None => write!(f, " (a failover replaced it)"),
                }
            }
            TimelineKind::Superseded { by } => {
                write!(f, "ended after its work moved to {by} (not a crash)")
            }
            TimelineKind::WentBack { from, to, alive } => {
                write!(
                    f,
                    "checkpoint went BACK from step {from} to {to}: two writers on one namespace"
                )?;
                if alive.len() > 1 {
                    write!(f, " ({} alive)", alive.join(", "))?;
                }
                Ok(())
            }
        }
    }
}
