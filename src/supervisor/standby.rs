//! Active and standby (主备) on one namespace, on one machine: of a group of
//! instances one runs; when it crashes, the next one is started in its place
//! (after the restart delay, with the crash-loop backoff) and resumes the
//! shared task from the namespace, and the crashed one stands by. The seed's
//! "instance1 crashes, instance2 takes over and continues"; across machines
//! the same is done by nodes (`up --nodes`).

use super::events::{EventKind, SupervisorEvent};
use super::exit::ExitKind;
use super::policy::{CrashDecision, CrashLoop, RestartConfig};
use super::{InstanceAction, Role, Supervisor};
use std::time::{Duration, Instant};

/// Which instance of the group runs, and the crash loop they share.
#[derive(Debug, Clone)]
pub struct Group {
    order: Vec<String>,
    active: usize,
    crash_loop: CrashLoop,
    restart: RestartConfig,
}

/// What to do after the active instance crashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Takeover {
    /// Start `to` after `after`; `from` stands by.
    Start {
        from: String,
        to: String,
        after: Duration,
    },
    /// Crash loop past `--max-restarts`: nobody takes over.
    GiveUp { reason: String },
}

impl Group {
    /// `order[0]` runs first; the rest stand by, taking over in this order.
    pub fn new(order: Vec<String>, restart: RestartConfig) -> Group {
        Group {
            order,
            active: 0,
            crash_loop: CrashLoop::default(),
            restart,
        }
    }

    pub fn active(&self) -> Option<&str> {
        self.order.get(self.active).map(String::as_str)
    }

    /// The instances standing by (all but the active one).
    pub fn standing_by(&self) -> impl Iterator<Item = &str> {
        let active = self.active;
        self.order
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i != active)
            .map(|(_, id)| id.as_str())
    }

    /// What `event` calls for: a crash of the active instance (killed, or a
    /// non-zero exit) is taken over by the next one. A stop we asked for, a
    /// completed task, or any other instance's end calls for nothing.
    pub fn on_event(&mut self, event: &SupervisorEvent, now: Instant) -> Option<Takeover> {
        let EventKind::Exited { exit, uptime, .. } = &event.kind else {
            return None;
        };
        if self.active() != Some(event.instance.as_str())
            || !matches!(exit, ExitKind::KilledBySignal(_) | ExitKind::ExitCode(_))
            || self.order.len() < 2
        {
            return None;
        }
        match self.crash_loop.on_crash(&self.restart, *uptime, now) {
            CrashDecision::GiveUp { reason } => Some(Takeover::GiveUp { reason }),
            CrashDecision::Restart { delay, .. } => {
                let from = event.instance.clone();
                self.active = (self.active + 1) % self.order.len();
                Some(Takeover::Start {
                    from,
                    to: self.order[self.active].clone(),
                    after: delay,
                })
            }
        }
    }
}

/// Runs `group` over `supervisor`'s instances until the supervisor ends: marks
/// each one's part, then carries out every takeover (the caller starts the
/// first, after this has subscribed).
pub fn spawn(supervisor: Supervisor, mut group: Group) -> tokio::task::JoinHandle<()> {
    let mut events = supervisor.subscribe();
    if let Some(active) = group.active() {
        supervisor.set_role(active, Role::Active);
    }
    for id in group.standing_by() {
        supervisor.set_role(id, Role::Standby);
    }
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            match group.on_event(&event, Instant::now()) {
                Some(Takeover::Start { from, to, after }) => {
                    supervisor.set_role(&from, Role::Standby);
                    supervisor.event_sink().emit(
                        &to,
                        EventKind::TakeoverScheduled {
                            from: from.clone(),
                            delay: after,
                        },
                    );
                    tokio::time::sleep(after).await;
                    supervisor.set_role(&to, Role::Active);
                    if let Err(e) = supervisor.send(&to, InstanceAction::Start).await {
                        tracing::warn!("standby {to} could not take over from {from}: {e}");
                    }
                }
                Some(Takeover::GiveUp { reason }) => {
                    let reason = format!("no standby takes over: {reason}");
                    tracing::warn!("{}: {reason}", event.instance);
                    supervisor
                        .event_sink()
                        .emit(&event.instance, EventKind::Failed { reason });
                }
                None => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use std::time::SystemTime;

    fn exited(id: &str, exit: ExitKind, uptime_ms: u64) -> SupervisorEvent {
        SupervisorEvent {
            ts: SystemTime::now(),
            ts_ms: 0,
            instance: id.into(),
            kind: EventKind::Exited {
                pid: 1,
                run: 1,
                exit,
                status: None,
                uptime: Duration::from_millis(uptime_ms),
            },
        }
    }

    fn group(n: usize) -> Group {
        let ids = (1..=n).map(|i| format!("kv-demo-{i:03}")).collect();
        Group::new(
            ids,
            RestartConfig {
                delay: Duration::from_millis(200),
                crash_loop_under: Duration::from_secs(1),
                backoff_initial: Duration::from_secs(1),
                backoff_max: Duration::from_secs(4),
                max_restarts: Some(2),
                ..RestartConfig::default()
            },
        )
    }

    const KILLED: ExitKind = ExitKind::KilledBySignal(Signal::SIGKILL);

    #[test]
    fn the_next_takes_over_a_crash_and_the_crashed_one_stands_by_in_turn() {
        let mut g = group(3);
        assert_eq!(
            g.standing_by().collect::<Vec<_>>(),
            ["kv-demo-002", "kv-demo-003"]
        );
        let now = Instant::now();
        let start = |from: &str, to: &str| {
            Some(Takeover::Start {
                from: from.into(),
                to: to.into(),
                after: Duration::from_millis(200),
            })
        };
        assert_eq!(
            g.on_event(&exited("kv-demo-001", KILLED, 5_000), now),
            start("kv-demo-001", "kv-demo-002")
        );
        assert_eq!(g.active(), Some("kv-demo-002"));
        assert_eq!(
            g.on_event(&exited("kv-demo-002", ExitKind::ExitCode(1), 5_000), now),
            start("kv-demo-002", "kv-demo-003")
        );
        assert_eq!(
            g.on_event(&exited("kv-demo-003", KILLED, 5_000), now),
            start("kv-demo-003", "kv-demo-001")
        );
        assert_eq!(
            g.standing_by().collect::<Vec<_>>(),
            ["kv-demo-002", "kv-demo-003"]
        );
    }

    #[test]
    fn a_stop_a_completion_or_a_standby_s_end_calls_for_nothing() {
        let mut g = group(2);
        let now = Instant::now();
        assert_eq!(
            g.on_event(&exited("kv-demo-001", ExitKind::Stopped, 5_000), now),
            None
        );
        assert_eq!(
            g.on_event(&exited("kv-demo-001", ExitKind::Completed, 5_000), now),
            None
        );
        assert_eq!(g.on_event(&exited("kv-demo-002", KILLED, 5_000), now), None);
        assert_eq!(g.active(), Some("kv-demo-001"));
        assert_eq!(
            group(1).on_event(&exited("kv-demo-001", KILLED, 5_000), now),
            None
        );
    }

    #[test]
    fn quick_crashes_back_off_and_give_up_past_max_restarts() {
        let mut g = group(2);
        let now = Instant::now();
        let after = |t: Option<Takeover>| match t {
            Some(Takeover::Start { after, .. }) => after,
            other => panic!("{other:?}"),
        };
        let first = after(g.on_event(&exited("kv-demo-001", KILLED, 100), now));
        let second = after(g.on_event(&exited("kv-demo-002", KILLED, 100), now));
        assert_eq!(
            (first, second),
            (Duration::from_secs(1), Duration::from_secs(2))
        );
        assert!(matches!(
            g.on_event(&exited("kv-demo-001", KILLED, 100), now),
            Some(Takeover::GiveUp { .. })
        ));
    }
}
