//! The seed's three recovery patterns (模式1–3) as the namespace shows them,
//! and what each pattern's run did around a crash: a transaction log's
//! replays (an operation skipped as already applied, or applied twice), a
//! state machine's restores and transitions. Facts in (the task before and
//! after each change), news and findings out; the tracker pushes the news
//! on its timeline and `verify` judges the findings.

use super::facts::TsMs;
use super::task::TaskView;

/// Which recovery pattern a worker follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// 模式1: resume from the last checkpoint (kv-demo's default).
    Checkpoint,
    /// 模式2: replay the transaction log from the last logged operation.
    #[serde(rename = "txlog")]
    TxLog,
    /// 模式3: restore the state machine in its saved state.
    Fsm,
}

impl Pattern {
    pub const ALL: [Pattern; 3] = [Pattern::Checkpoint, Pattern::TxLog, Pattern::Fsm];

    /// How the command line and the reports spell it.
    pub fn word(self) -> &'static str {
        match self {
            Pattern::Checkpoint => "checkpoint",
            Pattern::TxLog => "txlog",
            Pattern::Fsm => "fsm",
        }
    }

    pub fn from_word(word: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.word() == word)
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// The state machine's states, in order (DESIGN.md, "Recovery patterns").
pub const FSM_STATES: [&str; 5] = ["INIT", "LOAD", "TRANSFORM", "SAVE", "DONE"];

/// Where `state` is in the machine.
pub fn fsm_index(state: &str) -> Option<usize> {
    FSM_STATES.iter().position(|s| *s == state)
}

/// The transaction log's keys as they stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxLogView {
    /// Operations logged (`operation.counter`).
    pub logged: Option<i64>,
    /// The last operation logged (`operation.last`, `OP_k`).
    pub last: Option<String>,
    /// Effects applied (`ledger.applied`).
    pub applied: Option<i64>,
    /// The operation the last effect belongs to (`ledger.applied_op`).
    pub applied_op: Option<i64>,
}

impl TxLogView {
    pub fn seen(&self) -> bool {
        self.logged.is_some() || self.last.is_some() || self.applied.is_some()
    }
}

/// The state machine's keys as they stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsmView {
    pub state: Option<String>,
    pub data: Option<String>,
}

impl FsmView {
    pub fn seen(&self) -> bool {
        self.state.is_some()
    }
}

/// What a pattern's run did that is worth a timeline line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternNews {
    /// A restarted run replayed operation `op`: it was already applied, so
    /// the replay logged it without applying it again.
    ReplaySkipped { op: i64 },
    /// Operation `op`'s effect was applied a second time (`applied` effects
    /// against `logged` operations logged).
    AppliedTwice { op: i64, applied: i64, logged: i64 },
    /// A restarted machine wrote its state: `crashed_in` is where the dead run left it.
    Restored {
        state: String,
        crashed_in: Option<String>,
    },
    /// A transition not along the machine (`from` → `to`).
    BadTransition { from: String, to: String },
    /// DONE reached again within one task.
    DoneTwice,
    /// A checkpoint saved before its work: the dead run left `step_{step}`
    /// with the work done only up to `work_done`; the restart goes on past
    /// work never done.
    StepLost { step: i64, work_done: i64 },
}

impl PatternNews {
    /// Something that breaks the pattern's invariant, and which one (the
    /// verify numbering: 7 transaction log, 8 state machine).
    pub fn breaks(&self) -> Option<u8> {
        match self {
            PatternNews::ReplaySkipped { .. } => None,
            PatternNews::AppliedTwice { .. } => Some(7),
            PatternNews::Restored { state, crashed_in } => {
                restored_wrongly(state, crashed_in.as_deref()).then_some(8)
            }
            PatternNews::BadTransition { .. } | PatternNews::DoneTwice => Some(8),
            PatternNews::StepLost { .. } => Some(2),
        }
    }
}

/// A machine that crashed in `crashed_in` must continue there or in the next
/// state: never back, never beyond.
pub fn restored_wrongly(state: &str, crashed_in: Option<&str>) -> bool {
    let (Some(to), Some(from)) = (fsm_index(state), crashed_in.and_then(fsm_index)) else {
        return false;
    };
    // A machine that had finished (DONE) begins a new task at INIT.
    !(to == from || to == from + 1 || (from == FSM_STATES.len() - 1 && to == 0))
}

/// Watches the pattern's keys change; one per tracker.
#[derive(Debug, Default)]
pub struct PatternWatch {
    /// A restart was announced: the next pattern write is the recovery, and
    /// this is what the dead run left.
    restart: Option<TaskView>,
    /// An effect was applied since the last operation was logged.
    applied_since_log: bool,
    /// Operations already told as applied twice (told once each).
    told_twice: Vec<i64>,
    /// Effects applied twice in this task so far: the ledger stays that far
    /// ahead of its log, which is no new double.
    extra: i64,
    /// DONE was reached in the current task.
    done_in_task: bool,
    /// Every news that breaks an invariant, with when (verify's evidence).
    findings: Vec<(TsMs, PatternNews)>,
    /// Restores and replays seen, with when.
    recoveries: Vec<(TsMs, PatternNews)>,
}

impl PatternWatch {
    /// A restarted run announced itself: what it reads is `left`. A
    /// checkpoint ahead of its work is told now: the restart resumes from it.
    pub fn restart_announced(&mut self, at: TsMs, left: &TaskView) -> Vec<PatternNews> {
        self.restart = Some(left.clone());
        // What the dead run applied is not the restarted run's doing.
        self.applied_since_log = false;
        let mut news = Vec::new();
        if let (Some(step), Some(work_done)) = (left.counter, left.work_done) {
            if work_done < step && !left.is_completed() {
                let n = PatternNews::StepLost { step, work_done };
                self.findings.push((at, n.clone()));
                news.push(n);
            }
        }
        news
    }

    pub fn findings(&self) -> &[(TsMs, PatternNews)] {
        &self.findings
    }

    pub fn recoveries(&self) -> &[(TsMs, PatternNews)] {
        &self.recoveries
    }

    /// A change from `before` to `after`; `written`: the keys' roles written
    /// in it are the pattern's own (a snapshot or delete says nothing of runs).
    pub fn observe(
        &mut self,
        at: TsMs,
        before: &TaskView,
        after: &TaskView,
        wrote_state: bool,
    ) -> Vec<PatternNews> {
        let mut news = Vec::new();
        self.txlog(before, after, &mut news);
        self.fsm(before, after, wrote_state, &mut news);
        for n in &news {
            if n.breaks().is_some() {
                self.findings.push((at, n.clone()));
            }
            if matches!(
                n,
                PatternNews::ReplaySkipped { .. } | PatternNews::Restored { .. }
            ) {
                self.recoveries.push((at, n.clone()));
            }
        }
        news
    }

    fn txlog(&mut self, before: &TaskView, after: &TaskView, news: &mut Vec<PatternNews>) {
        let (b, a) = (&before.txlog, &after.txlog);
        // A new task starts its ledger again.
        if a.logged.unwrap_or(0) < b.logged.unwrap_or(0) || a.applied < b.applied {
            self.applied_since_log = false;
            self.told_twice.clear();
            self.extra = 0;
            return;
        }
        if a.applied > b.applied && b.applied.is_some() {
            self.applied_since_log = true;
            if let (Some(applied), Some(op)) = (a.applied, a.applied_op) {
                let logged = a.logged.unwrap_or(0);
                let again = a.applied_op == b.applied_op || applied > logged + 1 + self.extra;
                if again && !self.told_twice.contains(&op) {
                    self.told_twice.push(op);
                    self.extra += 1;
                    news.push(PatternNews::AppliedTwice {
                        op,
                        applied,
                        logged,
                    });
                }
            }
        } else if a.applied.is_some() && b.applied.is_none() {
            self.applied_since_log = true;
        }
        if a.logged > b.logged {
            if let Some(op) = a.logged {
                let restarted = self.restart.is_some();
                if restarted && !self.applied_since_log && a.applied_op == Some(op) {
                    news.push(PatternNews::ReplaySkipped { op });
                }
                if restarted {
                    self.restart = None;
                }
            }
            self.applied_since_log = false;
        }
    }

    fn fsm(
        &mut self,
        before: &TaskView,
        after: &TaskView,
        wrote_state: bool,
        news: &mut Vec<PatternNews>,
    ) {
        let Some(to) = after.fsm.state.clone() else {
            return;
        };
        if !wrote_state {
            return;
        }
        let from = before.fsm.state.clone();
        if let Some(left) = self.restart.take() {
            news.push(PatternNews::Restored {
                state: to.clone(),
                crashed_in: left.fsm.state.clone(),
            });
            if to == "INIT" {
                self.done_in_task = false;
            }
            if to == "DONE" {
                self.done_in_task = true;
            }
            return;
        }
        let Some(from) = from.filter(|f| *f != to) else {
            return;
        };
        match (fsm_index(&from), fsm_index(&to)) {
            (Some(f), Some(t)) => {
                let along = t == f + 1 || (f == FSM_STATES.len() - 1 && t == 0);
                if !along {
                    news.push(PatternNews::BadTransition {
                        from: from.clone(),
                        to: to.clone(),
                    });
                }
            }
            _ => news.push(PatternNews::BadTransition {
                from: from.clone(),
                to: to.clone(),
            }),
        }
        if to == "INIT" {
            self.done_in_task = false;
        }
        if to == "DONE" {
            if self.done_in_task {
                news.push(PatternNews::DoneTwice);
            }
            self.done_in_task = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(logged: i64, applied: i64, applied_op: i64) -> TaskView {
        TaskView {
            txlog: TxLogView {
                logged: Some(logged),
                last: Some(format!("OP_{logged}")),
                applied: Some(applied),
                applied_op: Some(applied_op),
            },
            ..TaskView::default()
        }
    }

    fn fsm(state: &str) -> TaskView {
        TaskView {
            fsm: FsmView {
                state: Some(state.into()),
                data: None,
            },
            ..TaskView::default()
        }
    }

    #[test]
    fn a_replay_that_recognises_its_operation_skips_it() {
        let mut w = PatternWatch::default();
        // OP_4 applied, then the kill before it was logged.
        assert!(w.observe(1, &tx(3, 3, 3), &tx(3, 4, 4), false).is_empty());
        w.restart_announced(2, &tx(3, 4, 4));
        let news = w.observe(2, &tx(3, 4, 4), &tx(4, 4, 4), false);
        assert_eq!(news, [PatternNews::ReplaySkipped { op: 4 }]);
        assert!(w.findings().is_empty());
        assert_eq!(w.recoveries().len(), 1);
    }

    #[test]
    fn a_replay_without_idempotence_applies_twice() {
        let mut w = PatternWatch::default();
        w.observe(1, &tx(3, 3, 3), &tx(3, 4, 4), false);
        w.restart_announced(2, &tx(3, 4, 4));
        let news = w.observe(2, &tx(3, 4, 4), &tx(3, 5, 4), false);
        assert_eq!(
            news,
            [PatternNews::AppliedTwice {
                op: 4,
                applied: 5,
                logged: 3
            }]
        );
        assert_eq!(news[0].breaks(), Some(7));
        // The ledger stays one ahead of its log from now on: no new double.
        w.observe(3, &tx(3, 5, 4), &tx(4, 5, 4), false);
        assert!(w.observe(4, &tx(4, 5, 4), &tx(4, 6, 5), false).is_empty());
    }

    #[test]
    fn a_machine_restored_in_its_state_is_fine_and_from_init_is_not() {
        let mut w = PatternWatch::default();
        w.observe(1, &fsm("LOAD"), &fsm("TRANSFORM"), true);
        w.restart_announced(2, &fsm("TRANSFORM"));
        let news = w.observe(2, &fsm("TRANSFORM"), &fsm("TRANSFORM"), true);
        assert_eq!(news[0].breaks(), None);
        w.restart_announced(3, &fsm("TRANSFORM"));
        let news = w.observe(3, &fsm("TRANSFORM"), &fsm("INIT"), true);
        assert_eq!(
            news,
            [PatternNews::Restored {
                state: "INIT".into(),
                crashed_in: Some("TRANSFORM".into())
            }]
        );
        assert_eq!(news[0].breaks(), Some(8));
        let news = w.observe(4, &fsm("LOAD"), &fsm("SAVE"), true);
        assert_eq!(news[0].breaks(), Some(8), "{news:?}");
        assert!(w.observe(5, &fsm("SAVE"), &fsm("DONE"), true).is_empty());
        assert!(w.observe(6, &fsm("DONE"), &fsm("INIT"), true).is_empty());
    }

    #[test]
    fn a_checkpoint_ahead_of_its_work_loses_the_step() {
        let mut w = PatternWatch::default();
        let left = TaskView {
            counter: Some(6),
            work_done: Some(5),
            ..TaskView::default()
        };
        let news = w.restart_announced(1, &left);
        assert_eq!(
            news,
            [PatternNews::StepLost {
                step: 6,
                work_done: 5
            }]
        );
        assert_eq!(news[0].breaks(), Some(2));
        let whole = TaskView {
            counter: Some(6),
            work_done: Some(6),
            ..TaskView::default()
        };
        assert!(w.restart_announced(2, &whole).is_empty());
    }
}
