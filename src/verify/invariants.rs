//! Judges invariants 1–6 for the runner, with history excerpts as evidence, and the verdicts.

use super::history::view_text;
use super::report::{
    CycleReport, GracefulReport, InvariantResult, Violation, FSM_INVARIANT, INVARIANTS,
    TXLOG_INVARIANT,
};
use super::runner::Runner;
use crate::clock::now_ms;
use crate::recovery::{fsm_index, Pattern, PatternNews, Phase, ProcessExit, TsMs};
use std::time::Duration;

impl Runner {
    fn violate(&mut self, invariant: u8, at: TsMs, message: String) {
        self.note(format!("VIOLATION of invariant {invariant}: {message}"));
        let evidence = self.history.excerpt(at, 6, 4);
        self.violations.push(Violation {
            invariant,
            at_ms: at,
            message,
            cycle: None,
            evidence,
        });
    }

    /// Invariants 1 and 3 once the killed worker was restarted: what it will
    /// read (the namespace, settled). `tag` names the cycle, e.g. "cycle 2".
    pub(super) fn judge_kill(
        &mut self,
        cycle: &mut CycleReport,
        killed_at: TsMs,
        progress: i64,
        tag: &str,
    ) {
        if !self.view().crash_flag {
            self.violate(
                1,
                killed_at,
                format!("the crash flag was gone after SIGKILL at {progress}% ({tag})"),
            );
        }
        if let Some(torn) = self.tracker().torn().cloned() {
            cycle.torn_at_kill = Some(torn.to_string());
            self.violate(
                3,
                killed_at,
                format!(
                    "SIGKILL left a torn checkpoint behind ({torn}); the restart reads it ({tag})"
                ),
            );
        }
        if self.tracker().last_checkpoint().is_none() {
            self.violate(
                1,
                killed_at,
                format!("no whole checkpoint was left after SIGKILL at {progress}% ({tag})"),
            );
        }
    }

    /// Invariant 2 (or 6 with `outage`): the restarted worker's first
    /// checkpoint continues from the last one before the kill. `resumed`: it
    /// wrote one or exited within patience.
    pub(super) fn judge_resume(
        &mut self,
        cycle: &mut CycleReport,
        killed_at: TsMs,
        resumed: bool,
        outage: bool,
        tag: &str,
    ) {
        let invariant_resume = if outage { 6 } else { 2 };
        // The tracker's cycle for this kill holds where the restarted run went on from.
        let closed = self
            .tracker()
            .cycles()
            .iter()
            .rev()
            .find(|c| c.killed_instance == self.instance && c.killed_at == killed_at)
            .filter(|c| c.first_checkpoint_at.is_some())
            .cloned();
        match closed {
            Some(found) => {
                let resumed_from = found.resumed_from.unwrap_or(0);
                let t = found.first_checkpoint_at.unwrap_or(killed_at);
                cycle.resumed_from = found.resumed_from;
                cycle.kill_to_checkpoint_ms = found.kill_to_checkpoint_ms();
                cycle.basis = found.basis;
                // A last checkpoint delivered after the kill still counts as its point.
                if found.counter_at_kill.is_some() {
                    cycle.counter_at_kill = found.counter_at_kill;
                }
                cycle.steps_lost = found.all_lost();
                cycle.steps_skipped = found.steps_skipped;
                let context = if outage {
                    ", restarted while the controller was unreachable"
                } else {
                    ""
                };
                // The restart's own first write is the evidence; a task that
                // was complete at the kill had nothing left to resume.
                let first = format!(
                    "first write after the restart: {}={}",
                    self.tracker().keys().name(crate::recovery::Role::Progress),
                    resumed_from + 10
                );
                let range = found.resume_range().filter(|_| !found.task_done_at_kill);
                let (lost, skipped) = (
                    found.steps_lost.unwrap_or(0),
                    found.steps_skipped.unwrap_or(0),
                );
                // Through an outage a worker's writes may have been refused
                // (the original SDK drops them): the first one seen only
                // bounds where it went on from, from above.
                let (below, at_least) = if found.resume_bound {
                    (
                        " or below (writes refused while the controller was down are not seen)",
                        "at least ",
                    )
                } else {
                    ("", "")
                };
                if let (Some((lo, _)), true) = (range, lost > 0) {
                    self.violate(
                        invariant_resume,
                        t,
                        format!(
                            "resumed from {resumed_from}%{below} but the last checkpoint was {}: {at_least}{} lost{context} — {first}, below the checkpoint left at the kill ({}) ({tag})",
                            saved_as_step(lo, found.checkpoint_at_kill),
                            steps(lost),
                            saved(lo, found.checkpoint_at_kill),
                        ),
                    );
                } else if let (Some((_, hi)), true) = (range, skipped > 0) {
                    self.violate(
                        invariant_resume,
                        t,
                        format!(
                            "resumed from {resumed_from}%, ahead of the last checkpoint {}: {} skipped{context} — {first}, ahead of what the kill left ({}) ({tag})",
                            saved_as_step(hi, found.checkpoint_at_kill),
                            steps(skipped),
                            saved(hi, found.checkpoint_at_kill),
                        ),
                    );
                }
            }
            None => {
                let why = match self.exited() {
                    Some((at, exit)) => (
                        at,
                        format!("the restarted worker ended ({exit}) without writing a checkpoint"),
                    ),
                    None if !resumed => (
                        now_ms(),
                        format!(
                            "the restarted worker wrote no checkpoint within {}",
                            humantime::format_duration(self.config.patience)
                        ),
                    ),
                    None => (now_ms(), "the restarted worker wrote no checkpoint".into()),
                };
                let context = if outage {
                    " after being restarted while the controller was unreachable"
                } else {
                    ""
                };
                self.violate(
                    invariant_resume,
                    why.0,
                    format!("{}{context} ({tag})", why.1),
                );
            }
        }
    }

    /// The recovery pattern's findings since the last call (a replay applied
    /// twice, a machine restored wrongly, a checkpoint ahead of its work),
    /// each a violation with its evidence. `tag` names the cycle, if any.
    pub(super) fn judge_pattern(&mut self, tag: &str) {
        let all = self.tracker().pattern_findings();
        let findings: Vec<(TsMs, PatternNews)> =
            all.get(self.pattern_seen..).unwrap_or(&[]).to_vec();
        self.pattern_seen = all.len();
        for (at, news) in findings {
            let Some(invariant) = news.breaks() else {
                continue;
            };
            let what = match &news {
                PatternNews::AppliedTwice {
                    op,
                    applied,
                    logged,
                } => format!(
                    "OP_{op} was applied twice: the replay applied it again (ledger.applied={applied} with operation.counter={logged}; at most {} may be applied)",
                    logged + 1
                ),
                PatternNews::Restored {
                    state,
                    crashed_in: Some(was),
                } => {
                    let how = match (fsm_index(state), fsm_index(was)) {
                        (Some(to), Some(from)) if to < from => "went back",
                        _ => "skipped a state",
                    };
                    format!(
                        "the machine crashed in {was} and the restarted run went on in {state}: restored wrongly ({how}; fsm.state={state} was its first write)"
                    )
                }
                PatternNews::Restored { state, .. } => {
                    format!("the machine was restored in {state}, not where it crashed")
                }
                PatternNews::BadTransition { from, to } => format!(
                    "the machine went {from} → {to}, not along INIT → LOAD → TRANSFORM → SAVE → DONE"
                ),
                PatternNews::DoneTwice => "the machine reached DONE twice in one task".into(),
                PatternNews::StepLost { step, work_done } => format!(
                    "checkpoint step_{step} was saved before its work: at the kill the work was done only to step {work_done} (task.work_done={work_done}), and the restart resumed from step_{step}, so step {step}'s work was never done"
                ),
                PatternNews::ReplaySkipped { .. } => continue,
            };
            let message = if tag.is_empty() {
                what
            } else {
                format!("{what} ({tag})")
            };
            self.violate(invariant, at, message);
        }
    }

    /// Invariant 7 at the end of a task: the ledger holds exactly one effect
    /// per operation logged.
    pub(super) fn judge_ledger(&mut self, task: u32) {
        if self.tracker().pattern() != Some(Pattern::TxLog) || !self.view().is_completed() {
            return;
        }
        let (applied, logged) = (self.view().txlog.applied, self.view().txlog.logged);
        if let (Some(a), Some(l)) = (applied, logged) {
            if a != l {
                self.violate(
                    7,
                    now_ms(),
                    format!(
                        "task {task} ended with ledger.applied={a} for {l} operations logged (expected exactly {l})"
                    ),
                );
            }
        }
    }

    /// The cycle's verdict from the violations recorded since `before`.
    pub(super) fn judge_cycle(&mut self, cycle: &mut CycleReport, before: usize) {
        // Tagged for the per-cycle test cases of the JUnit report.
        for v in &mut self.violations[before..] {
            v.cycle = Some(cycle.cycle);
        }
        let mut violated: Vec<u8> = self.violations[before..]
            .iter()
            .map(|v| v.invariant)
            .collect();
        violated.sort_unstable();
        violated.dedup();
        cycle.verdict = if violated.is_empty() {
            "ok".into()
        } else {
            let list: Vec<String> = violated.iter().map(|i| i.to_string()).collect();
            format!("FAIL ({})", list.join(", "))
        };
        cycle.violated = violated;
    }

    /// Invariant 4: the worker did not exit within `limit` of SIGINT.
    pub(super) fn judge_sigint_ignored(&mut self, limit: Duration) {
        self.violate(
            4,
            now_ms(),
            format!(
                "the worker did not exit within {} of SIGINT",
                humantime::format_duration(limit)
            ),
        );
    }

    /// Invariant 4 after the SIGINT exit: exit 0, flag cleared, checkpoint kept
    /// (`before`: the last whole checkpoint before SIGINT).
    pub(super) fn judge_graceful_stop(
        &mut self,
        before: Option<i64>,
        stopped_at: TsMs,
        exit: &ProcessExit,
    ) {
        if *exit != ProcessExit::Clean {
            self.violate(
                4,
                stopped_at,
                format!("SIGINT ended the worker with {exit}, not exit 0"),
            );
        }
        if self.view().crash_flag {
            self.violate(
                4,
                stopped_at,
                "the crash flag was still set after a graceful stop (SIGINT)".into(),
            );
        }
        let kept = self.tracker().last_checkpoint();
        if self.tracker().torn().is_some() || kept.is_none() || kept < before {
            self.violate(
                4,
                stopped_at,
                format!(
                    "the checkpoint was not kept by the graceful stop (before: {}, after: {})",
                    before.map_or("—".into(), |c| format!("step_{c}")),
                    view_text(self.view())
                ),
            );
        }
    }

    /// Invariant 4: the start after a graceful stop is no crash recovery.
    pub(super) fn judge_start_after_stop(&mut self, g: &mut GracefulReport) {
        let recovering = self
            .tracker()
            .instance(&self.instance)
            .is_some_and(|i| matches!(i.phase, Phase::Recovering | Phase::Resumed { .. }));
        g.next_start_was_recovery = Some(recovering);
        if recovering {
            let at = self.run().and_then(|r| r.started_at).unwrap_or_else(now_ms);
            self.violate(
                4,
                at,
                "the start after a graceful stop was taken for a crash recovery".into(),
            );
        }
    }

    /// Invariant 4: that start continues from the checkpoint `kept` by the stop.
    pub(super) fn judge_continue_after_stop(&mut self, g: &mut GracefulReport, kept: Option<i64>) {
        match (self.first_checkpoint(), kept) {
            (Some((t, c)), Some(k)) => {
                // No crash, so no cycle: where it continued from is its first
                // checkpoint minus one step, as the tracker's cycles count it.
                g.continued_from = Some((c - 1).max(0) * 10);
                if c - 1 != k {
                    self.violate(
                        4,
                        t,
                        format!(
                            "after a graceful stop at step_{k} the next start continued from {}%, not {}%",
                            (c - 1).max(0) * 10,
                            k * 10
                        ),
                    );
                }
            }
            (None, _) => {
                self.violate(
                    4,
                    now_ms(),
                    "the worker started after a graceful stop wrote no checkpoint".into(),
                );
            }
            _ => {}
        }
    }

    /// At the end of the run: invariant 5 on every task followed to its end,
    /// and the warning about torn states between a live worker's writes.
    pub(super) fn judge_end_of_run(&mut self) {
        self.judge_pattern("");
        // Judge invariant 5 on every task followed to its end.
        let finished = self.finished_tasks.clone();
        for task in finished {
            let n = self.tasks.get(task as usize - 1).copied().unwrap_or(0);
            if n != 1 {
                let at = now_ms();
                self.violate(
                    5,
                    at,
                    format!("task {task} reached 100% {n} times (expected exactly once)"),
                );
            }
        }
        if self.tracker().torn_seen() > 0 {
            self.warnings.push(format!(
                "{} torn states seen while a worker was between its writes (separate PUTs per step; \
                 a kill there leaves a torn checkpoint)",
                self.tracker().torn_seen()
            ));
        }
    }

    /// The verdict per invariant; `early` is why the run stopped before its
    /// plan was done, if it did.
    pub(super) fn verdicts(&mut self, early: &Option<String>) -> Vec<InvariantResult> {
        let mut invariants = Vec::new();
        let pattern_invariant = match self.tracker().pattern() {
            Some(Pattern::TxLog) => Some(TXLOG_INVARIANT),
            Some(Pattern::Fsm) => Some(FSM_INVARIANT),
            _ => None,
        };
        for (id, name) in INVARIANTS.into_iter().chain(pattern_invariant) {
            let violations: Vec<Violation> = self
                .violations
                .iter()
                .filter(|v| v.invariant == id)
                .cloned()
                .collect();
            let (status, reason) = if !violations.is_empty() {
                ("violated", None)
            } else if id == 6 && self.outage_skipped.is_some() {
                ("skipped", self.outage_skipped.clone())
            } else if id == 3 && self.view().foreign_keys {
                (
                    "skipped",
                    Some("progress, counter and checkpoint are the app's own keys (--key), which follow no step rule".into()),
                )
            } else if id == 3 && pattern_invariant.is_some() {
                (
                    "skipped",
                    Some("this pattern keeps no checkpoint name: each save is one batch with its progress".into()),
                )
            } else if (id == 6 && self.outage_cycle.is_none())
                || (id == 4 && self.graceful.is_none())
                || (early.is_some() && id == 5 && self.finished_tasks.is_empty())
            {
                ("not_checked", early.clone())
            } else {
                ("held", None)
            };
            invariants.push(InvariantResult {
                id,
                name,
                status,
                reason,
                violations,
            });
        }
        // A run that could not complete its plan is a failure even when no
        // single invariant could be pinned on it.
        if let Some(why) = early {
            if invariants.iter().all(|i| i.status != "violated") {
                self.warnings.push(format!("run ended early: {why}"));
            }
        }
        invariants
    }
}

/// `step_5, 50%` when `pct` is the whole checkpoint's, else `60%`.
fn saved(pct: i64, checkpoint: Option<i64>) -> String {
    match checkpoint {
        Some(c) if c * 10 == pct => format!("step_{c}, {pct}%"),
        _ => format!("{pct}%"),
    }
}

/// `step_5 (50%)` when `pct` is the whole checkpoint's, else `60%`.
fn saved_as_step(pct: i64, checkpoint: Option<i64>) -> String {
    match checkpoint {
        Some(c) if c * 10 == pct => format!("step_{c} ({pct}%)"),
        _ => format!("{pct}%"),
    }
}

fn steps(n: i64) -> String {
    if n == 1 {
        "1 step".into()
    } else {
        format!("{n} steps")
    }
}
