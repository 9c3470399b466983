//! `plumdash tour`: a guided walk through the seed demo's six steps. The
//! tour moves on when the step has *happened* — read from the recovery
//! tracker (its timeline and task), never from key presses — so it is right
//! whether the user pressed the key, used `kill -9` from another terminal,
//! or `--kill-at` did it.

use crate::recovery::{Pattern, PatternNews, ProcessExit, TimelineEvent, TimelineKind, Tracker};
use crate::text::{story, Lang, Msg};
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

    pub fn title(self) -> Msg {
        match self {
            Step::Start => Msg::StepStart,
            Step::Watch => Msg::StepWatch,
            Step::Crash => Msg::StepCrash,
            Step::Recover => Msg::StepRecover,
            Step::Exit => Msg::StepExit,
            Step::Verify => Msg::StepVerify,
            Step::Done => Msg::StepDone,
        }
    }

    /// What to do (or watch) now.
    pub fn todo(self) -> Msg {
        match self {
            Step::Start => Msg::TodoStart,
            Step::Watch => Msg::TodoWatch,
            Step::Crash => Msg::TodoCrash,
            Step::Recover => Msg::TodoRecover,
            Step::Exit => Msg::TodoExit,
            Step::Verify => Msg::TodoVerify,
            Step::Done => Msg::TodoDone,
        }
    }
}

/// The tour's worker now: running, coming back by itself (a restart is due,
/// or it is starting), or down with nothing coming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    Running,
    Coming,
    Down,
}

/// What just happened, as data; `text(lang)` words it (the words live in `text::story`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Story {
    /// Started and found an earlier run's crash flag.
    FoundFlag,
    NormalStart,
    Saved {
        progress: i64,
    },
    /// A transaction log's operation logged, its effect applied.
    SavedOp {
        op: i64,
        applied: Option<i64>,
    },
    /// A state machine's state saved.
    SavedState {
        state: String,
    },
    Crashed {
        how: String,
        at: String,
        flag_set: bool,
        /// The cycle the crash opened: its kill point is what `at` says, kept
        /// up to date (a checkpoint written before the kill can arrive after
        /// it and move the kill point, and the gauge, one step on).
        cycle: Option<usize>,
    },
    Recovered {
        how: String,
        flag_stayed: bool,
        delay: Option<String>,
        lost: Option<i64>,
        from: String,
        /// A failover moved the work: (from node, to node).
        moved: Option<(String, String)>,
        /// The pattern's own news of the recovery (a replay, a restore, a step lost).
        news: Option<PatternNews>,
    },
    Completed,
    Stopped {
        at: Option<i64>,
    },
    Verified,
}

impl Story {
    pub fn text(&self, lang: Lang) -> String {
        match self {
            Story::FoundFlag => Msg::StoryFoundFlag.text(lang).into(),
            Story::NormalStart => Msg::StoryNormalStart.text(lang).into(),
            Story::Saved { progress } => story::saved(*progress, lang),
            Story::SavedOp { op, applied } => story::saved_op(*op, *applied, lang),
            Story::SavedState { state } => story::saved_state(state, lang),
            Story::Crashed {
                how, at, flag_set, ..
            } => story::crashed(how, at, *flag_set, lang),
            Story::Recovered {
                how,
                flag_stayed,
                delay,
                lost,
                from,
                moved,
                news,
            } => {
                let line = story::recovered(
                    how,
                    *flag_stayed,
                    delay.as_deref(),
                    *lost,
                    from,
                    moved.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                    lang,
                );
                match news {
                    Some(n) => {
                        let said = crate::text::timeline::pattern_news(n, lang);
                        line + &story::pattern_clause(&said, lang)
                    }
                    None => line,
                }
            }
            Story::Completed => Msg::StoryCompleted.text(lang).into(),
            Story::Stopped { at } => story::stopped(*at, lang),
            Story::Verified => Msg::StoryVerified.text(lang).into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tour {
    pub step: Step,
    /// What just happened, in words (the explanation of the last step done).
    pub story: Option<Story>,
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

    /// What to do now, always something that can be done from here: the
    /// step's own action while the worker can take it; `s` when nothing runs
    /// and nothing will by itself (a completed task: a new one); with two
    /// nodes or more, the crash can be a node's.
    pub fn todo(&self, tracker: &Tracker, worker: Worker) -> Msg {
        let nodes = tracker.nodes().nodes().count() > 1;
        // Steps up to the exit need a worker running; after it, `s` or `q` is the point.
        let needs_worker = matches!(
            self.step,
            Step::Start | Step::Watch | Step::Crash | Step::Recover | Step::Exit
        );
        match self.step {
            _ if needs_worker && worker == Worker::Down => {
                if nodes {
                    Msg::TodoRecoverNodes
                } else if tracker.task().is_completed() {
                    Msg::TodoNewTask
                } else {
                    Msg::TodoStartIt
                }
            }
            Step::Crash if nodes => Msg::TodoCrashNodes,
            Step::Recover if nodes => Msg::TodoRecoverNodes,
            // A pattern's walkthrough ends with its unsafe variant.
            Step::Done => match tracker.pattern_told() {
                _ if !tracker.pattern_findings().is_empty() => Msg::TodoUnsafeSeen,
                Some(Pattern::Checkpoint) => Msg::TodoUnsafeCheckpoint,
                Some(Pattern::TxLog) => Msg::TodoUnsafeTxlog,
                Some(Pattern::Fsm) => Msg::TodoUnsafeFsm,
                None => Msg::TodoDone,
            },
            step => step.todo(),
        }
    }

    /// Moves on as far as the recovery facts allow; true if the step changed.
    /// Pure: reads only the tracker (call it after applying facts).
    pub fn advance(&mut self, tracker: &Tracker) -> bool {
        let before = self.step;
        // Under nodes the workers are the agents': `s` cannot start a finished
        // one again, so the tour ends at the exit.
        let nodes = tracker.nodes().nodes().count() > 1;
        while let Some((story, used)) = self.done(tracker) {
            self.story = Some(story);
            self.mark = used.unwrap_or(self.mark);
            self.step = match self.step {
                Step::Start => Step::Watch,
                Step::Watch => Step::Crash,
                Step::Crash => Step::Recover,
                Step::Recover => Step::Exit,
                Step::Exit if nodes => Step::Done,
                Step::Exit => Step::Verify,
                Step::Verify | Step::Done => Step::Done,
            };
        }
        // The caption's kill point is the cycle's, as the gauge's is the task's.
        if let Some(Story::Crashed {
            at, cycle: Some(i), ..
        }) = self.story.as_mut()
        {
            if let Some(p) = tracker.cycles().get(*i).and_then(|c| c.progress_at_kill) {
                *at = format!("{p}%");
            }
        }
        self.step != before
    }

    /// If the current step has happened: its explanation and, when an event
    /// proved it, the event count up to and including that event.
    fn done(&self, tracker: &Tracker) -> Option<(Story, Option<u64>)> {
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
                    Story::FoundFlag
                } else {
                    Story::NormalStart
                };
                Some((story, Some(after(i))))
            }
            Step::Watch => {
                let progress = tracker.task().progress.unwrap_or(0);
                let crashed = find(&|e| is_crash(e)).is_some();
                let task = tracker.task();
                let story = match tracker.pattern() {
                    Some(Pattern::TxLog) => Story::SavedOp {
                        op: task.txlog.logged.unwrap_or(0),
                        applied: task.txlog.applied,
                    },
                    Some(Pattern::Fsm) => Story::SavedState {
                        state: task.fsm.state.clone().unwrap_or_else(|| "?".into()),
                    },
                    _ => Story::Saved { progress },
                };
                (progress >= WATCH_UNTIL || crashed).then_some((story, None))
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
                    ProcessExit::Signal(sig) => sig.to_string(),
                    other => other.to_string(),
                };
                let at = progress.map_or("?".into(), |p| format!("{p}%"));
                let cycle = tracker
                    .cycles()
                    .iter()
                    .rposition(|c| c.killed_at == events[i].at);
                let story = Story::Crashed {
                    how,
                    at,
                    flag_set: flag.unwrap_or(false),
                    cycle,
                };
                Some((story, Some(after(i))))
            }
            Step::Recover => {
                let i = find(&|e| matches!(e.kind, TimelineKind::Resumed { .. }))?;
                let TimelineKind::Resumed { cycle } = &events[i].kind else {
                    return None;
                };
                let how = match &cycle.how {
                    ProcessExit::Signal(sig) => sig.to_string(),
                    other => other.to_string(),
                };
                let pct = |p: Option<i64>| p.map_or("?".into(), |p| format!("{p}%"));
                let story = Story::Recovered {
                    how,
                    flag_stayed: cycle.flag_after_kill,
                    delay: cycle.kill_to_restart_ms().map(format::duration_ms),
                    lost: cycle.steps_lost,
                    from: pct(cycle.resumed_from),
                    moved: tracker
                        .nodes()
                        .replaced_by(&cycle.killed_instance)
                        .map(|f| (f.from_node.clone(), f.to_node.clone())),
                    // The pattern's news since the crash, the worst first.
                    news: {
                        let told: Vec<&PatternNews> = events[..=i]
                            .iter()
                            .filter_map(|e| match &e.kind {
                                TimelineKind::Pattern(n) => Some(n),
                                _ => None,
                            })
                            .collect();
                        told.iter()
                            .find(|n| n.breaks().is_some())
                            .or(told.last())
                            .map(|n| (*n).clone())
                    },
                };
                Some((story, Some(after(i))))
            }
            Step::Exit => {
                let i =
                    find(&|e| matches!(e.kind, TimelineKind::Stopped | TimelineKind::Completed))?;
                let story = if events[i].kind == TimelineKind::Completed {
                    Story::Completed
                } else {
                    Story::Stopped {
                        at: tracker.task().progress,
                    }
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
                Some((Story::Verified, Some(after(i))))
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
                writer: None,
            });
            self.exit(ProcessExit::Clean);
        }

        /// SIGKILL at 50%, a restart that resumes, the task completed, a clean exit.
        fn kill_resume_and_complete(&mut self) {
            self.start(10);
            self.steps(1, 5);
            self.exit(ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL));
            self.start(11);
            self.steps(6, 10);
            self.fact(Fact::Deleted {
                key: "app.crashed".into(),
                writer: None,
            });
            self.fact(Fact::Written(vec![e("task.status", "completed")]));
            self.exit(ProcessExit::Clean);
        }

        fn story(&self) -> String {
            self.tour
                .story
                .as_ref()
                .map_or(String::new(), |s| s.text(Lang::En))
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
        r.exit(ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL));
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
        r.exit(ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL));
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
        r.kill_resume_and_complete();
        assert_eq!(r.tour.step, Step::Verify);
        assert!(r.story().starts_with("✅ task completed"));
        // A crash-recovery start does not verify anything: a run (its start
        // unseen) set the flag and was killed, and the next start finds it.
        r.fact(Fact::Written(vec![e("app.crashed", "true")]));
        r.fact(Fact::Written(vec![e("task.status", "running")]));
        r.fact(Fact::Exited {
            instance: "kv-demo-002".into(),
            exit: ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
            requested: false,
        });
        r.fact(Fact::Started {
            instance: ID.into(),
            pid: 12,
        });
        assert_eq!(r.tour.step, Step::Verify);
    }

    /// Whatever the tour finds, its caption says what can be done now: at
    /// every step, with the worker running, coming back or down, the line
    /// names a key to press or what to wait for; a task that completed before
    /// the kill asks for `s` and a new task, not for `k`.
    #[test]
    fn the_tour_always_says_what_to_press_next() {
        let steps = [
            Step::Start,
            Step::Watch,
            Step::Crash,
            Step::Recover,
            Step::Exit,
            Step::Verify,
            Step::Done,
        ];
        let t = Tracker::new();
        for step in steps {
            for worker in [Worker::Running, Worker::Coming, Worker::Down] {
                let tour = Tour {
                    step,
                    ..Tour::new()
                };
                let text = tour.todo(&t, worker).text(Lang::En);
                assert!(
                    text.contains("press") || text.contains("wait"),
                    "{step:?} {worker:?}: {text}"
                );
                if worker == Worker::Down && step != Step::Done {
                    assert!(text.contains("press s"), "{step:?}: {text}");
                }
            }
        }
        // The task completed on its own while the tour waited for the kill.
        let mut r = Run::new();
        r.start(10);
        r.steps(1, 10);
        r.fact(Fact::Deleted {
            key: "app.crashed".into(),
            writer: None,
        });
        r.fact(Fact::Written(vec![e("task.status", "completed")]));
        r.exit(ProcessExit::Clean);
        assert_eq!(r.tour.step, Step::Crash);
        assert_eq!(
            r.tour.todo(&r.t, Worker::Down).text(Lang::En),
            "the task completed: press s to start a new task (it begins at 0%)"
        );
        assert_eq!(r.tour.todo(&r.t, Worker::Running), Msg::TodoCrash);
    }

    /// `k` at a step boundary: the last checkpoint was written before the kill
    /// and arrives after it. The kill point moves to it in the cycle and the
    /// gauge; the caption says the same number.
    #[test]
    fn a_kill_at_a_step_boundary_reads_the_same_in_caption_and_gauge() {
        let mut r = Run::new();
        r.fact(sample::committed_at(
            r.at,
            Fact::Started {
                instance: ID.into(),
                pid: 10,
            },
        ));
        r.fact(sample::committed_at(r.at, sample::flag()));
        for n in 1..=4 {
            r.fact(sample::committed_at(r.at, sample::checkpoint(n)));
        }
        let written = r.at + 50;
        r.at += 100;
        r.exit(ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL));
        assert!(r.story().contains("at 40%"), "{}", r.story());
        // Step 5, written before the kill, delivered after it.
        r.fact(sample::committed_at(written, sample::checkpoint(5)));
        assert_eq!(r.t.task().progress, Some(50), "the gauge");
        assert_eq!(r.t.cycles()[0].progress_at_kill, Some(50));
        assert!(r.story().contains("SIGKILL at 50%"), "{}", r.story());
    }

    #[test]
    fn with_nodes_the_tour_ends_at_the_exit() {
        let mut r = Run::new();
        r.fact(Fact::Cluster(crate::cluster::ClusterView {
            nodes: vec![sample::node("nodeA", true), sample::node("nodeB", true)],
            assignments: vec![],
        }));
        r.kill_resume_and_complete();
        assert_eq!(r.tour.step, Step::Done);
        assert!(r.story().starts_with("✅ task completed"));
    }
}
