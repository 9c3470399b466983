//! `plumdash tour`: a guided walk through the seed demo's six steps. The
//! tour moves on when the step has *happened* — read from the recovery
//! tracker (its timeline and task), never from key presses — so it is right
//! whether the user pressed the key, used `kill -9` from another terminal,
//! or `--kill-at` did it.

use crate::recovery::{ProcessExit, TimelineEvent, TimelineKind, Tracker};
use crate::tui::format;

/// The seed README's steps (2–6; its step 1 is the deploy, here `plumdash
/// tour` itself), then the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The worker starts normally.
    Start,
    /// Progress is checkpointed step by step.
    Watch,
    /// `k`: SIGKILL, as `kill -9 <PID>`.
    Crash,
    /// The supervisor restarts it; it finds the flag and resumes.
    Recover,
    /// `i`: SIGINT, graceful exit, flag cleared (or the task completes).
    Exit,
    /// `s`: start again; a normal start proves the flag was cleared.
    Verify,
    Done,
}

/// Progress at which "watch" hands over to "press k" (so the key is
/// pressed at about 50%).
pub const WATCH_UNTIL: i64 = 40;

impl Step {
    pub const COUNT: usize = 6;

    /// 1-based position; `Done` counts as the last.
    pub fn number(self) -> usize {
        (self as usize + 1).min(Self::COUNT)
    }

    pub fn title(self) -> &'static str {
        match self {
            Step::Start => "Run it normally",
            Step::Watch => "Watch the progress",
            Step::Crash => "Simulate a crash",
            Step::Recover => "Watch the automatic recovery",
            Step::Exit => "Exit gracefully",
            Step::Verify => "Verify the flag was cleared",
            Step::Done => "Tour complete",
        }
    }

    /// What to do (or watch) now.
    pub fn todo(self) -> &'static str {
        match self {
            Step::Start => "the supervisor is starting the kv-demo worker; nothing to press yet",
            Step::Watch => {
                "each step saves progress, counter and checkpoint as one batch; wait for ~40%"
            }
            Step::Crash => "press k at about 50% to SIGKILL the worker (kill -9 <PID> in the seed demo)",
            Step::Recover => "nothing to press: the supervisor restarts the worker, which looks for its crash flag",
            Step::Exit => "press i to send SIGINT (Ctrl-C): the worker clears its flag and exits",
            Step::Verify => "press s to start it again: it must start normally (🆕 正常启动), not recover",
            Step::Done => "press q to quit (owned workers are stopped gracefully)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tour {
    pub step: Step,
    /// What just happened, in words (the explanation of the last step done).
    pub story: Option<String>,
    /// Timeline events (as counted by `Tracker::events_since`) already used.
    mark: u64,
}

impl Default for Tour {
    fn default() -> Self {
        Tour::new()
    }
}

impl Tour {
    pub fn new() -> Tour {
        Tour {
            step: Step::Start,
            story: None,
            mark: 0,
        }
    }

    /// Moves on as far as the recovery facts allow; true if the step changed.
    /// Pure: reads only the tracker (call it after applying facts).
    pub fn advance(&mut self, tracker: &Tracker) -> bool {
        let before = self.step;
        while let Some((story, used)) = self.done(tracker) {
            self.story = Some(story);
            self.mark = used.unwrap_or(self.mark);
            self.step = match self.step {
                Step::Start => Step::Watch,
                Step::Watch => Step::Crash,
                Step::Crash => Step::Recover,
                Step::Recover => Step::Exit,
                Step::Exit => Step::Verify,
                Step::Verify | Step::Done => Step::Done,
            };
        }
        self.step != before
    }

    /// If the current step has happened: its explanation and, when an event
    /// proved it, the event count up to and including that event.
    fn done(&self, tracker: &Tracker) -> Option<(String, Option<u64>)> {
        let (events, total) = tracker.events_since(self.mark);
        // The event count just after `events[i]`.
        let after = |i: usize| total - (events.len() - i - 1) as u64;
        let find = |pred: &dyn Fn(&TimelineEvent) -> bool| events.iter().position(|e| pred(e));
        match self.step {
            Step::Start => {
                let i = find(&|e| matches!(e.kind, TimelineKind::Started { .. }))?;
                let recovering = events
                    .get(i + 1)
                    .is_some_and(|e| e.kind == TimelineKind::Recovering);
                let story = if recovering {
                    "the worker started and found a crash flag left by an earlier run: it resumed"
                } else {
                    "🆕 normal start: no crash flag in the KV store, so the worker set app.crashed \
                     (it stays set while it runs) and began its task"
                };
                Some((story.to_string(), Some(after(i))))
            }
            Step::Watch => {
                let progress = tracker.task().progress.unwrap_or(0);
                let crashed = find(&|e| is_crash(e)).is_some();
                (progress >= WATCH_UNTIL || crashed).then(|| {
                    (
                        format!(
                            "📊 {progress}% saved: the checkpoint lives in the KV store, outside the process"
                        ),
                        None,
                    )
                })
            }
            Step::Crash => {
                let i = find(&|e| is_crash(e))?;
                let TimelineKind::Exited {
                    exit,
                    progress,
                    flag,
                    ..
                } = &events[i].kind
                else {
                    return None;
                };
                let how = match exit {
                    ProcessExit::Signal(sig) => sig.clone(),
                    other => other.to_string(),
                };
                let at = progress.map_or("?".into(), |p| format!("{p}%"));
                let flag = if *flag {
                    "no chance to clean up: app.crashed is still SET"
                } else {
                    "but the crash flag was NOT set"
                };
                Some((format!("💥 {how} at {at}: {flag}"), Some(after(i))))
            }
            Step::Recover => {
                let i = find(&|e| matches!(e.kind, TimelineKind::Resumed { .. }))?;
                let TimelineKind::Resumed { cycle } = &events[i].kind else {
                    return None;
                };
                let how = match &cycle.how {
                    ProcessExit::Signal(sig) => sig.clone(),
                    other => other.to_string(),
                };
                let pct = |p: Option<i64>| p.map_or("?".into(), |p| format!("{p}%"));
                let delay = cycle.kill_to_restart_ms().map_or(String::new(), |ms| {
                    format!(" after {}", format::duration_ms(ms))
                });
                let lost = cycle
                    .steps_lost
                    .map_or(String::new(), |l| format!(" ({l} steps lost)"));
                let flag = if cycle.flag_after_kill {
                    "the crash flag stayed set"
                } else {
                    "the crash flag was NOT set"
                };
                Some((
                    format!(
                        "🔄 {how} → {flag} → the supervisor restarted the worker{delay} → it found \
                         the flag → resumed from {}{lost}",
                        pct(cycle.resumed_from)
                    ),
                    Some(after(i)),
                ))
            }
            Step::Exit => {
                let i =
                    find(&|e| matches!(e.kind, TimelineKind::Stopped | TimelineKind::Completed))?;
                let story = if events[i].kind == TimelineKind::Completed {
                    "✅ task completed: the worker cleared app.crashed and exited 0".to_string()
                } else {
                    let at = tracker
                        .task()
                        .progress
                        .map_or(String::new(), |p| format!(" at {p}%"));
                    format!(
                        "🛑 graceful stop{at}: the worker caught the signal, cleared app.crashed \
                         and exited 0; the checkpoint is kept"
                    )
                };
                Some((story, Some(after(i))))
            }
            Step::Verify => {
                let i = find(&|e| matches!(e.kind, TimelineKind::Started { .. }))?;
                let recovering = events
                    .get(i + 1)
                    .is_some_and(|e| e.kind == TimelineKind::Recovering);
                if recovering {
                    // Not the proof we want; look at the next start.
                    return None;
                }
                Some((
                    "🆕 normal start, no crash record: the graceful exit had cleared the flag \
                     (a paused task continues from its checkpoint)"
                        .to_string(),
                    Some(after(i)),
                ))
            }
            Step::Done => None,
        }
    }
}

fn is_crash(e: &TimelineEvent) -> bool {
    matches!(e.kind, TimelineKind::Exited { crashed: true, .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::sample::{self, entry as e, INSTANCE as ID};
    use crate::recovery::Fact;

    struct Run {
        t: Tracker,
        tour: Tour,
        at: u64,
    }

    impl Run {
        fn new() -> Run {
            let mut r = Run {
                t: Tracker::new(),
                tour: Tour::new(),
                at: 1_000,
            };
            r.fact(Fact::Snapshot(vec![]));
            r
        }

        fn fact(&mut self, f: Fact) {
            self.at += 100;
            self.t.apply(self.at, f);
            self.tour.advance(&self.t);
        }

        fn start(&mut self, pid: u32) {
            self.fact(Fact::Started {
                instance: ID.into(),
                pid,
            });
            self.fact(Fact::Written(vec![e("app.crashed", "true")]));
        }

        fn steps(&mut self, from: i64, to: i64) {
            for n in from..=to {
                self.fact(sample::checkpoint(n));
            }
        }

        fn exit(&mut self, exit: ProcessExit) {
            self.fact(Fact::Exited {
                instance: ID.into(),
                exit,
                requested: false,
            });
        }

        fn graceful_stop(&mut self) {
            self.fact(Fact::Deleted {
                key: "app.crashed".into(),
            });
            self.exit(ProcessExit::Clean);
        }

        fn story(&self) -> &str {
            self.tour.story.as_deref().unwrap_or("")
        }
    }

    #[test]
    fn the_six_steps_advance_from_recovery_facts() {
        let mut r = Run::new();
        assert_eq!(r.tour.step, Step::Start);
        r.start(10);
        assert_eq!(r.tour.step, Step::Watch);
        assert!(r.story().contains("normal start"), "{}", r.story());
        r.steps(1, 3);
        assert_eq!(r.tour.step, Step::Watch);
        r.steps(4, 4);
        assert_eq!(r.tour.step, Step::Crash);
        r.steps(5, 5);
        r.exit(ProcessExit::Signal("SIGKILL".into()));
        assert_eq!(r.tour.step, Step::Recover);
        assert_eq!(
            r.story(),
            "💥 SIGKILL at 50%: no chance to clean up: app.crashed is still SET"
        );
        r.start(11);
        assert_eq!(
            r.tour.step,
            Step::Recover,
            "a restart alone is not a resume"
        );
        r.steps(6, 6);
        assert_eq!(r.tour.step, Step::Exit);
        assert_eq!(
            r.story(),
            "🔄 SIGKILL → the crash flag stayed set → the supervisor restarted the worker \
             after 100ms → it found the flag → resumed from 50% (0 steps lost)"
        );
        r.steps(7, 7);
        r.graceful_stop();
        assert_eq!(r.tour.step, Step::Verify);
        assert!(
            r.story().starts_with("🛑 graceful stop at 70%"),
            "{}",
            r.story()
        );
        r.start(12);
        assert_eq!(r.tour.step, Step::Done);
        assert!(r.story().contains("no crash record"));
        assert_eq!(Step::Done.number(), 6);
    }

    #[test]
    fn keys_alone_do_not_advance_and_early_crashes_still_count() {
        let mut r = Run::new();
        r.start(10);
        r.steps(1, 2);
        // Killed at 20%, before the tour asked: both watch and crash are done.
        r.exit(ProcessExit::Signal("SIGKILL".into()));
        assert_eq!(r.tour.step, Step::Recover);
        assert!(r.story().contains("at 20%"));
        // The recovery step still waits for the resume itself.
        r.start(11);
        r.steps(3, 3);
        assert_eq!(r.tour.step, Step::Exit);
    }

    #[test]
    fn verify_waits_for_a_normal_start_and_completion_counts_as_an_exit() {
        let mut r = Run::new();
        r.start(10);
        r.steps(1, 5);
        r.exit(ProcessExit::Signal("SIGKILL".into()));
        r.start(11);
        r.steps(6, 10);
        r.fact(Fact::Deleted {
            key: "app.crashed".into(),
        });
        r.fact(Fact::Written(vec![e("task.status", "completed")]));
        r.exit(ProcessExit::Clean);
        assert_eq!(r.tour.step, Step::Verify);
        assert!(r.story().starts_with("✅ task completed"));
        // A crash-recovery start does not verify anything.
        r.fact(Fact::Written(vec![e("app.crashed", "true")]));
        r.fact(Fact::Written(vec![e("task.status", "running")]));
        r.fact(Fact::Started {
            instance: ID.into(),
            pid: 12,
        });
        assert_eq!(r.tour.step, Step::Verify);
    }
}
