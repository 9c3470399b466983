//! The timeline's JSON form: one object per event, as `up --headless` and
//! `--events` write them (field names are a published format: keep them).
//! Derived with serde from a wire form that borrows from the event.

use super::facts::{NodeAction, ProcessExit, TsMs, REMOTE_PID};
use super::timeline::{TimelineEvent, TimelineKind};
use serde::Serialize;

/// One event on the wire: its time, its instance (left out when none) and
/// its kind's fields.
#[derive(Serialize)]
struct Wire<'a> {
    ts_ms: TsMs,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
    #[serde(flatten)]
    kind: Kind<'a>,
}

/// The kinds as scripts know them: the tag is `kind`; unknown figures are
/// `null`, not left out (readers index them).
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Kind<'a> {
    /// `pid` is `null` for a worker on another node: its pid is not
    /// known here.
    Started {
        pid: Option<u32>,
    },
    Attached {
        pid: Option<u32>,
    },
    NotRestarted {
        grace_ms: u64,
    },
    /// An exit that was a crash; `exited` otherwise, same fields.
    Crashed(Exit<'a>),
    Exited(Exit<'a>),
    RestartScheduled {
        delay_ms: u64,
    },
    TakeoverScheduled {
        from: &'a str,
        delay_ms: u64,
    },
    Frozen {
        signal: Option<&'a str>,
    },
    Continued,
    Recovering,
    /// Started with a crash flag left set while the controller was unreachable.
    RecoveryUnread,
    Resumed {
        from: Option<i64>,
        /// True when `from` is only an upper bound (and `steps_lost` a lower
        /// one): the controller was unreachable before the first write seen,
        /// so earlier writes may have been refused unseen (left out when false).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        from_is_bound: bool,
        progress_at_kill: Option<i64>,
        steps_lost: Option<i64>,
        steps_skipped: Option<i64>,
        kill_to_restart_ms: Option<u64>,
        kill_to_checkpoint_ms: Option<u64>,
        /// `writer` or `arrival_order`: how the restart's first write was told.
        basis: super::cycle::Basis,
        /// A transaction log's replay: from which operation (left out otherwise).
        #[serde(skip_serializing_if = "Option::is_none")]
        replayed_from_op: Option<i64>,
        /// A state machine's restore: in which state (left out otherwise).
        #[serde(skip_serializing_if = "Option::is_none")]
        restored_state: Option<&'a str>,
        /// Steps whose checkpoint ran ahead of their work (left out when none).
        #[serde(skip_serializing_if = "Option::is_none")]
        work_lost: Option<i64>,
    },
    Stopped,
    Completed,
    Failed {
        reason: &'a str,
    },
    FlagSet,
    FlagCleared,
    Torn {
        progress: Option<i64>,
        counter: Option<i64>,
        checkpoint: Option<&'a str>,
    },
    ControllerDown {
        error: &'a str,
    },
    ControllerUp {
        via: &'a str,
    },
    NodeUp {
        node: &'a str,
    },
    NodeDown {
        node: &'a str,
        /// `connection` (its agent's connection closed) or `heartbeats`.
        lost_by: super::node_book::NodeLoss,
    },
    Migrated {
        new_instance: &'a str,
        from_node: &'a str,
        to_node: &'a str,
    },
    // `NodeAction::json_kind`'s names (the pinned test holds them equal).
    NodeKilled {
        node: &'a str,
    },
    NodeFrozen {
        node: &'a str,
    },
    NodeThawed {
        node: &'a str,
    },
    NodeRevived {
        node: &'a str,
    },
    NodePartitioned {
        node: &'a str,
    },
    NodeCutOneWay {
        node: &'a str,
    },
    NodeDegraded {
        node: &'a str,
    },
    NodeHealed {
        node: &'a str,
    },
    Failover {
        from_node: &'a str,
        to_node: &'a str,
        new_instance: &'a str,
        cause: Option<&'static str>,
        to_detected_ms: Option<u64>,
        to_running_ms: Option<u64>,
        to_checkpoint_ms: Option<u64>,
        steps_lost: Option<i64>,
    },
    Fenced {
        node: &'a str,
        refused: u64,
        new_instance: Option<&'a str>,
    },
    Superseded {
        new_instance: &'a str,
    },
    CheckpointWentBack {
        from: i64,
        to: i64,
        alive: &'a [String],
    },
    ReplaySkipped {
        op: i64,
    },
    AppliedTwice {
        op: i64,
        applied: i64,
        logged: i64,
    },
    FsmRestored {
        state: &'a str,
        crashed_in: Option<&'a str>,
        /// Not where it crashed nor the next state: back, or beyond.
        wrong: bool,
    },
    FsmBadTransition {
        from: &'a str,
        to: &'a str,
    },
    FsmDoneTwice,
    StepLost {
        step: i64,
        work_done: i64,
    },
}

/// An exit's fields; how it ended is one of `signal`, `code` or `exit`.
#[derive(Serialize)]
struct Exit<'a> {
    progress: Option<i64>,
    /// `null`: the flag was never seen, so nothing is claimed.
    crash_flag: Option<bool>,
    stop_requested: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<&'static str>,
}

/// A pid seen here, or `None` for [`REMOTE_PID`] (a worker on another node).
fn known(pid: u32) -> Option<u32> {
    (pid != REMOTE_PID).then_some(pid)
}

impl<'a> Kind<'a> {
    fn of(kind: &'a TimelineKind) -> Kind<'a> {
        match kind {
            TimelineKind::Started { pid } => Kind::Started { pid: known(*pid) },
            TimelineKind::Attached { pid } => Kind::Attached { pid: known(*pid) },
            TimelineKind::NotRestarted { grace_ms } => Kind::NotRestarted {
                grace_ms: *grace_ms,
            },
            TimelineKind::Exited {
                exit,
                progress,
                flag,
                crashed,
                requested,
            } => {
                let mut wire = Exit {
                    progress: *progress,
                    crash_flag: *flag,
                    stop_requested: *requested,
                    signal: None,
                    code: None,
                    exit: None,
                };
                match exit {
                    ProcessExit::Signal(sig) => wire.signal = Some(sig.as_str()),
                    ProcessExit::Code(code) => wire.code = Some(*code),
                    ProcessExit::Clean => wire.code = Some(0),
                    ProcessExit::Unknown => wire.exit = Some("unknown"),
                    ProcessExit::NodeLost => wire.exit = Some("node_lost"),
                }
                if *crashed {
                    Kind::Crashed(wire)
                } else {
                    Kind::Exited(wire)
                }
            }
            TimelineKind::RestartScheduled { delay_ms } => Kind::RestartScheduled {
                delay_ms: *delay_ms,
            },
            TimelineKind::TakingOver { from, delay_ms } => Kind::TakeoverScheduled {
                from,
                delay_ms: *delay_ms,
            },
            TimelineKind::Frozen { signal } => Kind::Frozen {
                signal: signal.as_deref(),
            },
            TimelineKind::Continued => Kind::Continued,
            TimelineKind::Recovering => Kind::Recovering,
            TimelineKind::RecoveryUnread => Kind::RecoveryUnread,
            TimelineKind::Resumed { cycle } => Kind::Resumed {
                from: cycle.resumed_from,
                from_is_bound: cycle.resume_bound,
                progress_at_kill: cycle.progress_at_kill,
                steps_lost: cycle.steps_lost,
                steps_skipped: cycle.steps_skipped,
                kill_to_restart_ms: cycle.kill_to_restart_ms(),
                kill_to_checkpoint_ms: cycle.kill_to_checkpoint_ms(),
                basis: cycle.basis,
                replayed_from_op: match &cycle.recovered {
                    Some(super::cycle::Recovered::Replayed { op }) => Some(*op),
                    _ => None,
                },
                restored_state: match &cycle.recovered {
                    Some(super::cycle::Recovered::Restored { state }) => Some(state),
                    _ => None,
                },
                work_lost: cycle.work_lost,
            },
            TimelineKind::Stopped => Kind::Stopped,
            TimelineKind::Completed => Kind::Completed,
            TimelineKind::Failed { reason } => Kind::Failed { reason },
            TimelineKind::FlagSet => Kind::FlagSet,
            TimelineKind::FlagCleared => Kind::FlagCleared,
            TimelineKind::Torn(t) => Kind::Torn {
                progress: t.progress,
                counter: t.counter,
                checkpoint: t.checkpoint.as_deref(),
            },
            TimelineKind::FeedDown { error } => Kind::ControllerDown { error },
            TimelineKind::FeedUp { via } => Kind::ControllerUp { via },
            TimelineKind::NodeUp { node } => Kind::NodeUp { node },
            TimelineKind::NodeDown { node, how } => Kind::NodeDown {
                node,
                lost_by: *how,
            },
            TimelineKind::Migrated {
                from_node,
                to_node,
                new_instance,
            } => Kind::Migrated {
                new_instance,
                from_node,
                to_node,
            },
            TimelineKind::Node { node, action } => match action {
                NodeAction::Killed => Kind::NodeKilled { node },
                NodeAction::Frozen => Kind::NodeFrozen { node },
                NodeAction::Thawed => Kind::NodeThawed { node },
                NodeAction::Revived => Kind::NodeRevived { node },
                NodeAction::Partitioned => Kind::NodePartitioned { node },
                NodeAction::CutOneWay => Kind::NodeCutOneWay { node },
                NodeAction::Degraded => Kind::NodeDegraded { node },
                NodeAction::Healed => Kind::NodeHealed { node },
            },
            TimelineKind::FailedOver(fo) => Kind::Failover {
                from_node: &fo.from_node,
                to_node: &fo.to_node,
                new_instance: &fo.new_instance,
                cause: fo.cause.map(|(a, _)| a.json_kind()),
                to_detected_ms: fo.to_detected_ms(),
                to_running_ms: fo.to_running_ms(),
                to_checkpoint_ms: fo.to_checkpoint_ms(),
                steps_lost: fo.steps_lost,
            },
            TimelineKind::Fenced { node, refused, by } => Kind::Fenced {
                node,
                refused: *refused,
                new_instance: by.as_deref(),
            },
            TimelineKind::Superseded { by } => Kind::Superseded { new_instance: by },
            TimelineKind::WentBack { from, to, alive } => Kind::CheckpointWentBack {
                from: *from,
                to: *to,
                alive,
            },
            TimelineKind::Pattern(news) => {
                use super::pattern::PatternNews as N;
                match news {
                    N::ReplaySkipped { op } => Kind::ReplaySkipped { op: *op },
                    N::AppliedTwice {
                        op,
                        applied,
                        logged,
                    } => Kind::AppliedTwice {
                        op: *op,
                        applied: *applied,
                        logged: *logged,
                    },
                    N::Restored { state, crashed_in } => Kind::FsmRestored {
                        state,
                        crashed_in: crashed_in.as_deref(),
                        wrong: news.breaks().is_some(),
                    },
                    N::BadTransition { from, to } => Kind::FsmBadTransition { from, to },
                    N::DoneTwice => Kind::FsmDoneTwice,
                    N::StepLost { step, work_done } => Kind::StepLost {
                        step: *step,
                        work_done: *work_done,
                    },
                }
            }
        }
    }
}

impl TimelineEvent {
    /// One JSON object: `{"instance":"kv-demo-001","kind":"resumed",…,"ts_ms":…}`.
    /// A `Value` (callers add `node`), whose map keeps keys sorted: the order
    /// these lines have always had.
    pub fn to_json(&self) -> serde_json::Value {
        let wire = Wire {
            ts_ms: self.at,
            instance: self.instance.as_deref(),
            kind: Kind::of(&self.kind),
        };
        // Strings, numbers and lists only: nothing here can fail to serialize.
        serde_json::to_value(wire).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use crate::recovery::sample::every_event;
    use crate::recovery::TimelineKind;

    /// Each event of `sample::every_event`, as `--events` and headless write it.
    const PINNED: [&str; 57] = [
        r#"{"instance":"kv-demo-001","kind":"started","pid":4242,"ts_ms":1700000000000}"#,
        r#"{"instance":"kv-demo-001","kind":"attached","pid":4242,"ts_ms":1700000000001}"#,
        r#"{"grace_ms":5000,"instance":"kv-demo-001","kind":"not_restarted","ts_ms":1700000000002}"#,
        r#"{"crash_flag":true,"instance":"kv-demo-001","kind":"crashed","progress":50,"signal":"SIGKILL","stop_requested":false,"ts_ms":1700000000003}"#,
        r#"{"crash_flag":false,"instance":"kv-demo-001","kind":"crashed","progress":50,"signal":"SIGHUP","stop_requested":false,"ts_ms":1700000000004}"#,
        r#"{"crash_flag":false,"instance":"kv-demo-001","kind":"exited","progress":50,"signal":"SIGTERM","stop_requested":true,"ts_ms":1700000000005}"#,
        r#"{"code":3,"crash_flag":true,"instance":"kv-demo-001","kind":"crashed","progress":50,"stop_requested":false,"ts_ms":1700000000006}"#,
        r#"{"code":0,"crash_flag":false,"instance":"kv-demo-001","kind":"exited","progress":50,"stop_requested":true,"ts_ms":1700000000007}"#,
        r#"{"crash_flag":true,"exit":"unknown","instance":"kv-demo-001","kind":"crashed","progress":50,"stop_requested":false,"ts_ms":1700000000008}"#,
        r#"{"crash_flag":true,"exit":"unknown","instance":"kv-demo-001","kind":"exited","progress":50,"stop_requested":false,"ts_ms":1700000000009}"#,
        r#"{"crash_flag":null,"exit":"unknown","instance":"kv-demo-001","kind":"exited","progress":null,"stop_requested":false,"ts_ms":1700000000010}"#,
        r#"{"crash_flag":true,"exit":"node_lost","instance":"kv-demo-001","kind":"crashed","progress":50,"stop_requested":false,"ts_ms":1700000000011}"#,
        r#"{"delay_ms":1500,"instance":"kv-demo-001","kind":"restart_scheduled","ts_ms":1700000000012}"#,
        r#"{"delay_ms":250,"from":"kv-demo-001","instance":"kv-demo-001","kind":"takeover_scheduled","ts_ms":1700000000013}"#,
        r#"{"instance":"kv-demo-001","kind":"frozen","signal":"SIGSTOP","ts_ms":1700000000014}"#,
        r#"{"instance":"kv-demo-001","kind":"frozen","signal":null,"ts_ms":1700000000015}"#,
        r#"{"instance":"kv-demo-001","kind":"continued","ts_ms":1700000000016}"#,
        r#"{"instance":"kv-demo-001","kind":"recovering","ts_ms":1700000000017}"#,
        r#"{"basis":"arrival_order","from":50,"instance":"kv-demo-001","kill_to_checkpoint_ms":450,"kill_to_restart_ms":120,"kind":"resumed","progress_at_kill":50,"steps_lost":0,"steps_skipped":null,"ts_ms":1700000000018}"#,
        r#"{"basis":"arrival_order","from":null,"instance":"kv-demo-001","kill_to_checkpoint_ms":null,"kill_to_restart_ms":null,"kind":"resumed","progress_at_kill":50,"steps_lost":null,"steps_skipped":null,"ts_ms":1700000000019}"#,
        r#"{"instance":"kv-demo-001","kind":"stopped","ts_ms":1700000000020}"#,
        r#"{"instance":"kv-demo-001","kind":"completed","ts_ms":1700000000021}"#,
        r#"{"instance":"kv-demo-001","kind":"failed","reason":"6 crash-loop restarts","ts_ms":1700000000022}"#,
        r#"{"kind":"flag_set","ts_ms":1700000000023}"#,
        r#"{"instance":"kv-demo-001","kind":"flag_cleared","ts_ms":1700000000024}"#,
        r#"{"checkpoint":null,"counter":5,"instance":"kv-demo-001","kind":"torn","progress":60,"ts_ms":1700000000025}"#,
        r#"{"error":"connection refused","instance":"kv-demo-001","kind":"controller_down","ts_ms":1700000000026}"#,
        r#"{"instance":"kv-demo-001","kind":"controller_up","ts_ms":1700000000027,"via":"stream"}"#,
        r#"{"kind":"node_up","node":"nodeA","ts_ms":1700000000028}"#,
        r#"{"kind":"node_down","lost_by":"heartbeats","node":"nodeA","ts_ms":1700000000029}"#,
        r#"{"from_node":"nodeA","instance":"kv-demo-001","kind":"migrated","new_instance":"kv-demo-002","to_node":"nodeB","ts_ms":1700000000030}"#,
        r#"{"kind":"node_killed","node":"nodeA","ts_ms":1700000000031}"#,
        r#"{"kind":"node_frozen","node":"nodeA","ts_ms":1700000000032}"#,
        r#"{"kind":"node_thawed","node":"nodeA","ts_ms":1700000000033}"#,
        r#"{"kind":"node_revived","node":"nodeA","ts_ms":1700000000034}"#,
        r#"{"cause":"node_killed","from_node":"nodeA","instance":"kv-demo-001","kind":"failover","new_instance":"kv-demo-002","steps_lost":1,"to_checkpoint_ms":4050,"to_detected_ms":3000,"to_node":"nodeB","to_running_ms":3600,"ts_ms":1700000000035}"#,
        r#"{"cause":"node_frozen","from_node":"nodeA","instance":"kv-demo-001","kind":"failover","new_instance":"kv-demo-002","steps_lost":1,"to_checkpoint_ms":4050,"to_detected_ms":3000,"to_node":"nodeB","to_running_ms":3600,"ts_ms":1700000000036}"#,
        r#"{"cause":null,"from_node":"nodeA","instance":"kv-demo-001","kind":"failover","new_instance":"kv-demo-002","steps_lost":null,"to_checkpoint_ms":null,"to_detected_ms":null,"to_node":"nodeB","to_running_ms":null,"ts_ms":1700000000037}"#,
        r#"{"instance":"kv-demo-001","kind":"fenced","new_instance":"kv-demo-002","node":"nodeA","refused":1,"ts_ms":1700000000038}"#,
        r#"{"instance":"kv-demo-001","kind":"fenced","new_instance":null,"node":"nodeA","refused":3,"ts_ms":1700000000039}"#,
        r#"{"instance":"kv-demo-001","kind":"superseded","new_instance":"kv-demo-002","ts_ms":1700000000040}"#,
        r#"{"alive":["kv-demo-001","kv-demo-002"],"from":7,"instance":"kv-demo-001","kind":"checkpoint_went_back","to":5,"ts_ms":1700000000041}"#,
        r#"{"alive":["kv-demo-001"],"from":7,"instance":"kv-demo-001","kind":"checkpoint_went_back","to":5,"ts_ms":1700000000042}"#,
        r#"{"kind":"node_down","lost_by":"connection","node":"nodeA","ts_ms":1700000000043}"#,
        r#"{"instance":"kv-demo-001","kind":"replay_skipped","op":7,"ts_ms":1700000000044}"#,
        r#"{"applied":8,"instance":"kv-demo-001","kind":"applied_twice","logged":6,"op":7,"ts_ms":1700000000045}"#,
        r#"{"crashed_in":"TRANSFORM","instance":"kv-demo-001","kind":"fsm_restored","state":"TRANSFORM","ts_ms":1700000000046,"wrong":false}"#,
        r#"{"crashed_in":"TRANSFORM","instance":"kv-demo-001","kind":"fsm_restored","state":"INIT","ts_ms":1700000000047,"wrong":true}"#,
        r#"{"from":"LOAD","instance":"kv-demo-001","kind":"fsm_bad_transition","to":"SAVE","ts_ms":1700000000048}"#,
        r#"{"instance":"kv-demo-001","kind":"fsm_done_twice","ts_ms":1700000000049}"#,
        r#"{"instance":"kv-demo-001","kind":"step_lost","step":6,"ts_ms":1700000000050,"work_done":5}"#,
        r#"{"kind":"node_partitioned","node":"nodeA","ts_ms":1700000000051}"#,
        r#"{"kind":"node_cut_one_way","node":"nodeA","ts_ms":1700000000052}"#,
        r#"{"kind":"node_degraded","node":"nodeA","ts_ms":1700000000053}"#,
        r#"{"kind":"node_healed","node":"nodeA","ts_ms":1700000000054}"#,
        r#"{"cause":"node_partitioned","from_node":"nodeA","instance":"kv-demo-001","kind":"failover","new_instance":"kv-demo-002","steps_lost":1,"to_checkpoint_ms":4050,"to_detected_ms":3000,"to_node":"nodeB","to_running_ms":3600,"ts_ms":1700000000055}"#,
        r#"{"instance":"kv-demo-001","kind":"recovery_unread","ts_ms":1700000000056}"#,
    ];

    /// Scripts read these lines: every kind's object, byte for byte (keys
    /// sorted, absent `instance` left out, unknown figures `null`).
    #[test]
    fn every_event_kind_has_its_pinned_json() {
        let events = every_event();
        assert_eq!(events.len(), PINNED.len());
        for (ev, want) in events.iter().zip(PINNED) {
            assert_eq!(ev.to_json().to_string(), want, "{ev:?}");
        }
    }

    /// A worker on another node: its pid is not known here, so none is claimed.
    #[test]
    fn a_remote_start_has_no_pid() {
        for kind in [
            TimelineKind::Started {
                pid: crate::recovery::REMOTE_PID,
            },
            TimelineKind::Attached {
                pid: crate::recovery::REMOTE_PID,
            },
        ] {
            let ev = crate::recovery::TimelineEvent {
                at: 1,
                instance: Some("B1".into()),
                kind,
            };
            assert_eq!(ev.to_json()["pid"], serde_json::Value::Null, "{ev:?}");
        }
    }

    /// The samples hold every kind, so a new kind must be pinned too.
    #[test]
    fn the_samples_cover_every_kind() {
        let index = |k: &TimelineKind| match k {
            TimelineKind::Started { .. } => 0,
            TimelineKind::Attached { .. } => 1,
            TimelineKind::NotRestarted { .. } => 2,
            TimelineKind::Exited { .. } => 3,
            TimelineKind::RestartScheduled { .. } => 4,
            TimelineKind::TakingOver { .. } => 5,
            TimelineKind::Frozen { .. } => 6,
            TimelineKind::Continued => 7,
            TimelineKind::Recovering => 8,
            TimelineKind::Resumed { .. } => 9,
            TimelineKind::Stopped => 10,
            TimelineKind::Completed => 11,
            TimelineKind::Failed { .. } => 12,
            TimelineKind::FlagSet => 13,
            TimelineKind::FlagCleared => 14,
            TimelineKind::Torn(_) => 15,
            TimelineKind::FeedDown { .. } => 16,
            TimelineKind::FeedUp { .. } => 17,
            TimelineKind::NodeUp { .. } => 18,
            TimelineKind::NodeDown { .. } => 19,
            TimelineKind::Migrated { .. } => 20,
            TimelineKind::Node { .. } => 21,
            TimelineKind::FailedOver(_) => 22,
            TimelineKind::Fenced { .. } => 23,
            TimelineKind::Superseded { .. } => 24,
            TimelineKind::WentBack { .. } => 25,
            TimelineKind::Pattern(_) => 26,
            TimelineKind::RecoveryUnread => 27,
        };
        let mut seen = [false; 28];
        for ev in every_event() {
            seen[index(&ev.kind)] = true;
        }
        assert!(seen.iter().all(|s| *s), "{seen:?}");
    }
}
