//! The timeline's JSON form: one object per event, as `up --headless` and
//! `--events` write them (field names are a published format: keep them).

use super::facts::ProcessExit;
use super::timeline::{TimelineEvent, TimelineKind};

impl TimelineEvent {
    /// One JSON object: `{"ts_ms":…,"instance":"kv-demo-001","kind":"resumed",…}`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let mut v = match &self.kind {
            TimelineKind::Started { pid } => json!({"kind": "started", "pid": pid}),
            TimelineKind::Attached { pid } => json!({"kind": "attached", "pid": pid}),
            TimelineKind::NotRestarted { grace_ms } => {
                json!({"kind": "not_restarted", "grace_ms": grace_ms})
            }
            TimelineKind::Exited {
                exit,
                progress,
                flag,
                crashed,
                requested,
            } => {
                let mut v = json!({"kind": if *crashed { "crashed" } else { "exited" },
                    "progress": progress, "crash_flag": flag, "stop_requested": requested});
                match exit {
                    ProcessExit::Signal(sig) => v["signal"] = json!(sig),
                    ProcessExit::Code(code) => v["code"] = json!(code),
                    ProcessExit::Clean => v["code"] = json!(0),
                    ProcessExit::Unknown => v["exit"] = json!("unknown"),
                    ProcessExit::NodeLost => v["exit"] = json!("node_lost"),
                }
                v
            }
            TimelineKind::RestartScheduled { delay_ms } => {
                json!({"kind": "restart_scheduled", "delay_ms": delay_ms})
            }
            TimelineKind::TakingOver { from, delay_ms } => {
                json!({"kind": "takeover_scheduled", "from": from, "delay_ms": delay_ms})
            }
            TimelineKind::Recovering => json!({"kind": "recovering"}),
            TimelineKind::Resumed { cycle } => json!({
                "kind": "resumed",
                "from": cycle.resumed_from,
                "progress_at_kill": cycle.progress_at_kill,
                "steps_lost": cycle.steps_lost,
                "kill_to_restart_ms": cycle.kill_to_restart_ms(),
                "kill_to_checkpoint_ms": cycle.kill_to_checkpoint_ms(),
            }),
            TimelineKind::Stopped => json!({"kind": "stopped"}),
            TimelineKind::Completed => json!({"kind": "completed"}),
            TimelineKind::Failed { reason } => json!({"kind": "failed", "reason": reason}),
            TimelineKind::FlagSet => json!({"kind": "flag_set"}),
            TimelineKind::FlagCleared => json!({"kind": "flag_cleared"}),
            TimelineKind::Torn(t) => json!({"kind": "torn", "progress": t.progress,
                "counter": t.counter, "checkpoint": t.checkpoint}),
            TimelineKind::FeedDown { error } => json!({"kind": "controller_down", "error": error}),
            TimelineKind::FeedUp { via } => json!({"kind": "controller_up", "via": via}),
            TimelineKind::Frozen { signal } => json!({"kind": "frozen", "signal": signal}),
            TimelineKind::Continued => json!({"kind": "continued"}),
            TimelineKind::NodeUp { node } => json!({"kind": "node_up", "node": node}),
            TimelineKind::NodeDown { node } => json!({"kind": "node_down", "node": node}),
            TimelineKind::Migrated {
                from_node,
                to_node,
                new_instance,
            } => json!({"kind": "migrated", "new_instance": new_instance,
                "from_node": from_node, "to_node": to_node}),
            TimelineKind::Node { node, action } => {
                json!({"kind": action.json_kind(), "node": node})
            }
            TimelineKind::FailedOver(fo) => json!({
                "kind": "failover",
                "from_node": fo.from_node,
                "to_node": fo.to_node,
                "new_instance": fo.new_instance,
                "cause": fo.cause.map(|(a, _)| a.json_kind()),
                "to_detected_ms": fo.to_detected_ms(),
                "to_running_ms": fo.to_running_ms(),
                "to_checkpoint_ms": fo.to_checkpoint_ms(),
                "steps_lost": fo.steps_lost,
            }),
            TimelineKind::Fenced { node, refused, by } => {
                json!({"kind": "fenced", "node": node, "refused": refused, "new_instance": by})
            }
            TimelineKind::Superseded { by } => json!({"kind": "superseded", "new_instance": by}),
            TimelineKind::WentBack { from, to, alive } => {
                json!({"kind": "checkpoint_went_back", "from": from, "to": to, "alive": alive})
            }
        };
        v["ts_ms"] = json!(self.at);
        if let Some(id) = &self.instance {
            v["instance"] = json!(id);
        }
        v
    }
}
