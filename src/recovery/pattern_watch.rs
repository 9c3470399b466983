//! What each pattern's run did around a crash: a transaction log's replays
//! (an operation skipped as already applied, or applied twice), a state
//! machine's restores and transitions. Facts in (the task before and after
//! each change), news and findings out; the tracker pushes the news on its
//! timeline and `verify` judges the findings.

use super::facts::TsMs;
use super::pattern::{fsm_index, PatternNews, FSM_STATES};
use super::task::TaskView;

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
    use crate::recovery::pattern::{FsmView, TxLogView};

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
