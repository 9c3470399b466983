//! One typed view per instance: the supervisor's lifecycle (pid, restart
//! countdown, auto on/off, frozen, gave up) merged with the tracker's judgement
//! (phase, detail, crashes), by one rule. The dashboard's rows and `ctl
//! status` both read it, so they can never disagree.

use super::facts::TsMs;
use super::tracker::{Detail, Phase, Tracker};
use crate::supervisor::{CrashLoopNote, ExitKind, InstanceSnapshot, Origin, Role};

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceStatus {
    pub id: String,
    pub node: String,
    pub pid: Option<u32>,
    pub phase: Phase,
    /// What the phase alone does not say (`attached at 20%`, `gone, flag still set`).
    pub detail: Option<Detail>,
    /// When an automatic restart is due (unix ms), and why it waits that long.
    pub restart_at: Option<TsMs>,
    pub crash_loop: Option<CrashLoopNote>,
    pub started_at: Option<TsMs>,
    pub crashes: u32,
    pub manual_restarts: u32,
    pub last_exit: Option<ExitKind>,
    pub auto_restart: bool,
    /// Frozen by this signal (SIGSTOP, …), when the kernel says so.
    pub paused: Option<&'static str>,
    /// Not started by us (found here, or on another machine).
    pub attached: bool,
    /// On another machine: known from the cluster API, signalled through its
    /// agent; no pid, CPU or log here.
    pub remote: bool,
}

/// An instance nobody has started yet: stopped, automatic restart on (what a
/// new instance starts with). For building rows in tests and benches.
impl Default for InstanceStatus {
    fn default() -> Self {
        InstanceStatus {
            id: String::new(),
            node: String::new(),
            pid: None,
            phase: Phase::Stopped,
            detail: None,
            restart_at: None,
            crash_loop: None,
            started_at: None,
            crashes: 0,
            manual_restarts: 0,
            last_exit: None,
            auto_restart: true,
            paused: None,
            attached: false,
            remote: false,
        }
    }
}

/// The supervisor calls an exit 0 nobody asked for `completed`; the task
/// says whether it was: a worker stopped by a signal from elsewhere (a
/// `kill -INT` by hand) exits 0 with its task part-way (`stopped`: judged
/// STOPPED), which is a stop.
pub fn exit_as_judged(exit: Option<ExitKind>, stopped: bool) -> Option<ExitKind> {
    match exit {
        Some(ExitKind::Completed) if stopped => Some(ExitKind::Stopped),
        _ => exit,
    }
}

impl InstanceStatus {
    /// The instance `s` as it stands, judged with `tracker` at `now`.
    pub fn of(s: &InstanceSnapshot, tracker: &Tracker, now: TsMs) -> InstanceStatus {
        use crate::supervisor::Lifecycle;
        let view = tracker.instance(&s.id);
        let phase = match (&s.phase, view) {
            // The supervisor gave up; why is in the timeline.
            (Lifecycle::Failed { .. }, _) => Phase::Failed {
                reason: String::new(),
            },
            // Frozen: whatever the task's phase, the process is not running.
            _ if s.paused.is_some() && s.pid.is_some() => Phase::Stopped,
            // Waiting to take over (its last run's end is in the timeline).
            _ if s.role == Role::Standby && s.pid.is_none() => Phase::Standby,
            (_, Some(v)) => v.phase.clone(),
            (Lifecycle::Running, None) => Phase::Running,
            _ => Phase::Stopped,
        };
        let detail = tracker.detail(&s.id, now).filter(|_| s.paused.is_none());
        let last_exit = exit_as_judged(s.last_exit, phase == Phase::Stopped);
        // Attached workers' crashes are judged from the namespace, by the tracker.
        let attached = s.origin != Origin::Owned;
        let crashes = match view {
            Some(v) if attached => v.crashes,
            _ => s.crashes,
        };
        let (restart_at, crash_loop) = match &s.phase {
            Lifecycle::WaitingRestart { until, crash_loop } => {
                (Some(crate::supervisor::unix_ms(*until)), *crash_loop)
            }
            _ => (None, None),
        };
        InstanceStatus {
            id: s.id.clone(),
            node: s.node.clone(),
            pid: s.pid,
            phase,
            detail,
            restart_at,
            crash_loop,
            started_at: s.started_at.map(crate::supervisor::unix_ms),
            crashes,
            manual_restarts: s.manual_restarts,
            last_exit,
            // A group's crash is taken over by its next member: restarted, automatically.
            auto_restart: s.auto_restart || s.role != Role::Alone,
            paused: s.paused,
            attached,
            remote: s.origin == Origin::Remote,
        }
    }

    /// The state as the instances table says it (`RESUMED from 50%`, `STOPPED
    /// (SIGSTOP)`), the words recordings and scripts match.
    pub fn state_text(&self) -> String {
        let mut text = match self.paused {
            Some(signal) => format!("STOPPED ({signal})"),
            None => self.phase.to_string(),
        };
        if let Some(detail) = &self.detail {
            text.push_str(&format!(" · {detail}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::sample::{checkpoint, flag, started};
    use crate::supervisor::Lifecycle;

    fn snapshot(phase: Lifecycle, pid: Option<u32>) -> InstanceSnapshot {
        InstanceSnapshot {
            id: "kv-demo-001".into(),
            app_name: "kv-demo".into(),
            node: "nodeA".into(),
            origin: Origin::Owned,
            command: "kv-demo".into(),
            pid,
            phase,
            run: 1,
            started_at: None,
            crashes: 2,
            manual_restarts: 0,
            restarts: 0,
            last_exit: None,
            auto_restart: true,
            paused: None,
            role: Role::Alone,
        }
    }

    /// A worker stopped by a signal sent from elsewhere exits 0 part-way: the
    /// row and `ctl list` say it stopped, not that it completed.
    #[test]
    fn an_exit_0_with_the_task_part_way_is_a_stop_not_a_completion() {
        use crate::recovery::sample::exited;
        use crate::recovery::{Fact, ProcessExit};
        let mut t = Tracker::new();
        t.apply(0, started(1));
        t.apply(1, flag());
        t.apply(100, checkpoint(4));
        t.apply(
            150,
            Fact::Deleted {
                key: "app.crashed".into(),
                writer: None,
            },
        );
        t.apply(200, exited(ProcessExit::Clean, false));
        let mut s = snapshot(Lifecycle::Exited, None);
        s.last_exit = Some(ExitKind::Completed);
        let v = InstanceStatus::of(&s, &t, 300);
        assert_eq!(
            (v.state_text(), v.last_exit),
            ("STOPPED".to_string(), Some(ExitKind::Stopped))
        );
        // At 100% it did complete.
        t.apply(400, started(2));
        t.apply(500, checkpoint(10));
        t.apply(
            510,
            Fact::Written(vec![crate::recovery::sample::entry(
                "task.status",
                "completed",
            )]),
        );
        t.apply(600, exited(ProcessExit::Clean, false));
        let v = InstanceStatus::of(&s, &t, 700);
        assert_eq!(v.last_exit, Some(ExitKind::Completed));
    }

    /// The one rule: the supervisor's "gave up" and "frozen" win over the task's
    /// phase; otherwise the tracker's judgement stands.
    #[test]
    fn the_lifecycle_overrides_the_task_phase_only_where_it_knows_better() {
        let mut t = Tracker::new();
        t.apply(0, started(1));
        t.apply(1, flag());
        t.apply(100, checkpoint(3));
        let running = snapshot(Lifecycle::Running, Some(1));
        let v = InstanceStatus::of(&running, &t, 200);
        assert_eq!(v.state_text(), "RUNNING");
        assert_eq!(v.crashes, 2, "owned: the supervisor counts crashes");

        let mut frozen = running.clone();
        frozen.paused = Some("SIGSTOP");
        let v = InstanceStatus::of(&frozen, &t, 200);
        assert_eq!(v.state_text(), "STOPPED (SIGSTOP)");

        let failed = snapshot(
            Lifecycle::Failed {
                reason: "crash loop".into(),
            },
            None,
        );
        assert_eq!(InstanceStatus::of(&failed, &t, 200).phase.word(), "FAILED");

        // Unknown to the tracker and not running: never claimed running.
        let t = Tracker::new();
        let stopped = snapshot(Lifecycle::Stopped, None);
        assert_eq!(
            InstanceStatus::of(&stopped, &t, 200).state_text(),
            "STOPPED"
        );

        // A group's standby: not running, waiting to take over; restarted
        // automatically by the group, though the supervisor's own flag is off.
        let standby = InstanceSnapshot {
            role: Role::Standby,
            auto_restart: false,
            ..stopped.clone()
        };
        let v = InstanceStatus::of(&standby, &t, 200);
        assert_eq!((v.state_text(), v.auto_restart), ("STANDBY".into(), true));
        let running_standby = InstanceSnapshot {
            pid: Some(7),
            phase: Lifecycle::Running,
            ..standby
        };
        assert_eq!(
            InstanceStatus::of(&running_standby, &t, 200).phase,
            Phase::Running
        );
    }
}
