//! Facts for tests: what the kv-demo worker and the supervisor produce.

use super::facts::{Fact, ProcessExit};
use crate::kv::{Entry, ValueType};

/// The instance the samples talk about.
pub const INSTANCE: &str = "kv-demo-001";

pub fn entry(key: &str, value: &str) -> Entry {
    Entry {
        namespace: "kv-demo".into(),
        key: key.into(),
        value: value.into(),
        value_type: ValueType::String,
        updated_at: 0,
        updated_at_ms: None,
        writer: None,
    }
}

/// Step `n`'s checkpoint, written as one batch as kv-demo does.
pub fn checkpoint(n: i64) -> Fact {
    Fact::Written(vec![
        entry("task.progress", &(n * 10).to_string()),
        entry("task.counter", &n.to_string()),
        entry("task.checkpoint", &format!("step_{n}")),
        entry("task.status", "running"),
    ])
}

/// The crash flag being set (at every start).
pub fn flag() -> Fact {
    Fact::Written(vec![entry("app.crashed", "true")])
}

pub fn started(pid: u32) -> Fact {
    Fact::Started {
        instance: INSTANCE.into(),
        pid,
    }
}

pub fn exited(exit: ProcessExit, requested: bool) -> Fact {
    Fact::Exited {
        instance: INSTANCE.into(),
        exit,
        requested,
    }
}

pub fn sigkilled() -> Fact {
    exited(
        ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
        false,
    )
}

/// `fact` as plumdash's controller sends it: each written entry carries its
/// write time (`updatedAtMs`, and `updatedAt` in whole seconds).
pub fn committed_at(ms: u64, fact: Fact) -> Fact {
    match fact {
        Fact::Written(entries) => Fact::Written(
            entries
                .into_iter()
                .map(|mut e| {
                    e.updated_at = (ms / 1000) as i64;
                    e.updated_at_ms = Some(ms as i64);
                    e
                })
                .collect(),
        ),
        other => other,
    }
}

/// A node as `GET /v1/nodes` reports it.
pub fn node(id: &str, healthy: bool) -> crate::cluster::Node {
    use crate::cluster::HealthState;
    crate::cluster::Node {
        node_id: id.into(),
        ip: "127.0.0.1".into(),
        last_seen: 100,
        health: Some(if healthy {
            HealthState::Healthy
        } else {
            HealthState::Unhealthy
        }),
        ..Default::default()
    }
}

/// A row of deployment d1: `instance` on `node`, `desired` Running or Stopped.
pub fn assignment(
    instance: &str,
    node: &str,
    desired: crate::cluster::DesiredState,
) -> crate::cluster::Assignment {
    crate::cluster::Assignment {
        instance_id: instance.into(),
        deployment_id: "d1".into(),
        node_id: node.into(),
        desired,
        fenced_writes: Some(0),
        ..Default::default()
    }
}

/// Instance `instance` started as `pid` (an instance other than [`INSTANCE`]).
pub fn started_as(instance: &str, pid: u32) -> Fact {
    Fact::Started {
        instance: instance.into(),
        pid,
    }
}

/// Instance `instance` gone by `exit`, not asked to stop.
pub fn exited_as(instance: &str, exit: ProcessExit) -> Fact {
    Fact::Exited {
        instance: instance.into(),
        exit,
        requested: false,
    }
}

/// One timeline event of every kind, with the variations that read or
/// serialize differently (each exit, with and without figures, no instance):
/// the JSON and both languages' texts are pinned against these.
pub fn every_event() -> Vec<super::TimelineEvent> {
    use super::facts::NodeAction;
    use super::node_book::Failover;
    use super::pattern::PatternNews;
    use super::task::TornCheckpoint;
    use super::timeline::{TimelineEvent, TimelineKind as K};
    use super::Cycle;
    let exited = |exit: ProcessExit, flag: bool, crashed: bool, requested: bool| K::Exited {
        exit,
        progress: Some(50),
        flag: Some(flag),
        crashed,
        requested,
    };
    let cycle = Cycle {
        killed_instance: INSTANCE.into(),
        killed_at: 1_000,
        how: ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
        progress_at_kill: Some(50),
        counter_at_kill: Some(5),
        flag_after_kill: true,
        restarted_at: Some(1_120),
        restarted_instance: Some(INSTANCE.into()),
        first_checkpoint_at: Some(1_450),
        resumed_from: Some(50),
        steps_lost: Some(0),
        ..Cycle::opened(
            INSTANCE,
            1_000,
            ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
        )
    };
    let failover = Failover {
        from_node: "nodeA".into(),
        to_node: "nodeB".into(),
        instance: INSTANCE.into(),
        new_instance: "kv-demo-002".into(),
        cause: Some((NodeAction::Killed, 1_000)),
        detected_at: 4_000,
        running_at: Some(4_600),
        checkpoint_at: Some(5_050),
        steps_lost: Some(1),
    };
    let cut = failover.clone();
    let kinds = vec![
        K::Started { pid: 4242 },
        K::Attached { pid: 4242 },
        K::NotRestarted { grace_ms: 5_000 },
        exited(
            ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
            true,
            true,
            false,
        ),
        exited(
            ProcessExit::Signal(nix::sys::signal::Signal::SIGHUP),
            false,
            true,
            false,
        ),
        exited(
            ProcessExit::Signal(nix::sys::signal::Signal::SIGTERM),
            false,
            false,
            true,
        ),
        exited(ProcessExit::Code(3), true, true, false),
        exited(ProcessExit::Clean, false, false, true),
        exited(ProcessExit::Unknown, true, true, false),
        exited(ProcessExit::Unknown, true, false, false),
        K::Exited {
            exit: ProcessExit::Unknown,
            progress: None,
            flag: None,
            crashed: false,
            requested: false,
        },
        exited(ProcessExit::NodeLost, true, true, false),
        K::RestartScheduled { delay_ms: 1_500 },
        K::TakingOver {
            from: INSTANCE.into(),
            delay_ms: 250,
        },
        K::Frozen {
            signal: Some("SIGSTOP".into()),
        },
        K::Frozen { signal: None },
        K::Continued,
        K::Recovering,
        K::Resumed {
            cycle: cycle.clone(),
        },
        K::Resumed {
            cycle: Cycle {
                restarted_at: None,
                first_checkpoint_at: None,
                resumed_from: None,
                steps_lost: None,
                ..cycle
            },
        },
        K::Stopped,
        K::Completed,
        K::Failed {
            reason: "6 crash-loop restarts".into(),
        },
        K::FlagSet,
        K::FlagCleared,
        K::Torn(TornCheckpoint {
            progress: Some(60),
            counter: Some(5),
            checkpoint: None,
        }),
        K::FeedDown {
            error: "connection refused".into(),
        },
        K::FeedUp {
            via: "stream".into(),
        },
        K::NodeUp {
            node: "nodeA".into(),
        },
        K::NodeDown {
            node: "nodeA".into(),
            how: crate::recovery::NodeLoss::Heartbeats,
        },
        K::Migrated {
            from_node: "nodeA".into(),
            to_node: "nodeB".into(),
            new_instance: "kv-demo-002".into(),
        },
        K::Node {
            node: "nodeA".into(),
            action: NodeAction::Killed,
        },
        K::Node {
            node: "nodeA".into(),
            action: NodeAction::Frozen,
        },
        K::Node {
            node: "nodeA".into(),
            action: NodeAction::Thawed,
        },
        K::Node {
            node: "nodeA".into(),
            action: NodeAction::Revived,
        },
        K::FailedOver(failover.clone()),
        K::FailedOver(Failover {
            cause: Some((NodeAction::Frozen, 1_000)),
            ..failover.clone()
        }),
        K::FailedOver(Failover {
            cause: None,
            running_at: None,
            checkpoint_at: None,
            steps_lost: None,
            ..failover
        }),
        K::Fenced {
            node: "nodeA".into(),
            refused: 1,
            by: Some("kv-demo-002".into()),
        },
        K::Fenced {
            node: "nodeA".into(),
            refused: 3,
            by: None,
        },
        K::Superseded {
            by: "kv-demo-002".into(),
        },
        K::WentBack {
            from: 7,
            to: 5,
            alive: vec![INSTANCE.into(), "kv-demo-002".into()].into(),
        },
        K::WentBack {
            from: 7,
            to: 5,
            alive: vec![INSTANCE.into()].into(),
        },
        K::NodeDown {
            node: "nodeA".into(),
            how: crate::recovery::NodeLoss::Connection,
        },
        K::Pattern(PatternNews::ReplaySkipped { op: 7 }),
        K::Pattern(PatternNews::AppliedTwice {
            op: 7,
            applied: 8,
            logged: 6,
        }),
        K::Pattern(PatternNews::Restored {
            state: "TRANSFORM".into(),
            crashed_in: Some("TRANSFORM".into()),
        }),
        K::Pattern(PatternNews::Restored {
            state: "INIT".into(),
            crashed_in: Some("TRANSFORM".into()),
        }),
        K::Pattern(PatternNews::BadTransition {
            from: "LOAD".into(),
            to: "SAVE".into(),
        }),
        K::Pattern(PatternNews::DoneTwice),
        K::Pattern(PatternNews::StepLost {
            step: 6,
            work_done: 5,
        }),
        K::Node {
            node: "nodeA".into(),
            action: NodeAction::Partitioned,
        },
        K::Node {
            node: "nodeA".into(),
            action: NodeAction::CutOneWay,
        },
        K::Node {
            node: "nodeA".into(),
            action: NodeAction::Degraded,
        },
        K::Node {
            node: "nodeA".into(),
            action: NodeAction::Healed,
        },
        K::FailedOver(Failover {
            cause: Some((NodeAction::Partitioned, 1_000)),
            ..cut
        }),
        K::RecoveryUnread,
    ];
    let mut events: Vec<TimelineEvent> = kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| TimelineEvent {
            at: 1_700_000_000_000 + i as u64,
            instance: Some(INSTANCE.into()),
            kind,
        })
        .collect();
    // Node events carry no instance: the field is left out.
    for ev in &mut events {
        if matches!(
            ev.kind,
            K::NodeUp { .. } | K::NodeDown { .. } | K::Node { .. } | K::FlagSet
        ) {
            ev.instance = None;
        }
    }
    events
}

/// `fact` as plumdash's controller streams it when it can tell the writer:
/// every written entry (or the delete) names process `pid` (a child of its
/// run, as a script's `curl`, names its parents too: see `by_child`).
pub fn by(pid: u32, fact: Fact) -> Fact {
    named(
        crate::kv::Writer {
            pids: vec![pid],
            via: crate::kv::WriterVia::Socket,
        },
        fact,
    )
}

/// `fact` written by process `child` of run `pid` (a worker script's `curl`).
pub fn by_child(child: u32, pid: u32, fact: Fact) -> Fact {
    named(
        crate::kv::Writer {
            pids: vec![child, pid],
            via: crate::kv::WriterVia::Socket,
        },
        fact,
    )
}

fn named(writer: crate::kv::Writer, fact: Fact) -> Fact {
    match fact {
        Fact::Written(entries) => Fact::Written(
            entries
                .into_iter()
                .map(|mut e| {
                    e.writer = Some(writer.clone());
                    e
                })
                .collect(),
        ),
        Fact::Deleted { key, .. } => Fact::Deleted {
            key,
            writer: Some(writer),
        },
        other => other,
    }
}

/// One key written on its own, as the original C++ worker writes each.
pub fn put(key: &str, value: &str) -> Fact {
    Fact::Written(vec![entry(key, value)])
}

pub fn delete(key: &str) -> Fact {
    Fact::Deleted {
        key: key.into(),
        writer: None,
    }
}

/// Step `n` as the original worker writes it: four PUTs in this order, each
/// its own change; `(progress, counter)` may be off by one after a torn resume.
pub fn original_step(progress: i64, counter: i64) -> [Fact; 4] {
    [
        put("task.progress", &progress.to_string()),
        put("task.counter", &counter.to_string()),
        put("task.checkpoint", &format!("step_{counter}")),
        put("task.status", "running"),
    ]
}
