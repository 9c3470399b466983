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
                }
                v
            }
            TimelineKind::RestartScheduled { delay_ms } => {
                json!({"kind": "restart_scheduled", "delay_ms": delay_ms})
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
        };
        v["ts_ms"] = json!(self.at);
        if let Some(id) = &self.instance {
            v["instance"] = json!(id);
        }
        v
    }
}
