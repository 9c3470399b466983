//! One crash → restart → resume cycle, the unit every recovery figure is
//! counted in (the dashboard's cycles, the timeline, verify's table).

use super::facts::{ProcessExit, TsMs};

/// One crash → restart → resume cycle and its figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub killed_instance: String,
    pub killed_at: TsMs,
    pub how: ProcessExit,
    pub progress_at_kill: Option<i64>,
    pub counter_at_kill: Option<i64>,
    /// The crash flag was still set after the death (invariant 1).
    pub flag_after_kill: bool,
    pub restarted_at: Option<TsMs>,
    pub restarted_instance: Option<String>,
    /// When the restarted run first wrote its progress (its first step).
    pub first_checkpoint_at: Option<TsMs>,
    /// Progress the new process continued from: its first progress write
    /// minus one step.
    pub resumed_from: Option<i64>,
    /// The controller was unreachable between the kill and that first write:
    /// earlier writes may have been refused unseen (the original SDK drops
    /// them), so `resumed_from` is only an upper bound, the steps lost a
    /// lower one.
    pub resume_bound: bool,
    /// Saved steps it did again (never negative; `None` while unknown).
    pub steps_lost: Option<i64>,
    /// Steps it went on from beyond what was saved (never negative).
    pub steps_skipped: Option<i64>,
    /// The step its checkpoint name (`task.checkpoint`, `step_N`) said when it died.
    pub checkpoint_at_kill: Option<i64>,
    /// The task had reached 100% when it died: a restart from 0 is a new
    /// task, not lost steps.
    pub task_done_at_kill: bool,
    /// How the restarted run's first write was told from the dead run's.
    pub basis: Basis,
    /// What was recovered, in the pattern's words (a transaction log's
    /// replay, a state machine's state); `None` for a checkpoint.
    pub recovered: Option<Recovered>,
    /// Steps whose work was never done though their checkpoint was saved
    /// (a checkpoint ahead of its work, `--unsafe`): lost beyond what the
    /// progress shows.
    pub work_lost: Option<i64>,
}

/// What a restarted run recovered, beyond its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// The transaction log was replayed from operation `op` (`OP_op`).
    Replayed { op: i64 },
    /// The state machine was restored in `state`.
    Restored { state: String },
}

/// What a judgement of which run wrote what rests on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The controller did not name the process behind the writes: judged
    /// from the order and time they arrived in.
    #[default]
    ArrivalOrder,
    /// The controller named the process behind each write.
    Writer,
}

impl Basis {
    /// How a report says it.
    pub fn describe(self) -> &'static str {
        match self {
            Basis::ArrivalOrder => {
                "inferred from arrival order (the controller does not name the process behind a write)"
            }
            Basis::Writer => "the writing process of each write, named by the controller",
        }
    }
}

impl Cycle {
    /// A cycle opened by `killed_instance`'s death at `at`, the task as it stood.
    pub fn opened(killed_instance: &str, at: TsMs, how: ProcessExit) -> Cycle {
        Cycle {
            killed_instance: killed_instance.to_string(),
            killed_at: at,
            how,
            progress_at_kill: None,
            counter_at_kill: None,
            flag_after_kill: false,
            restarted_at: None,
            restarted_instance: None,
            first_checkpoint_at: None,
            resumed_from: None,
            resume_bound: false,
            steps_lost: None,
            steps_skipped: None,
            checkpoint_at_kill: None,
            task_done_at_kill: false,
            basis: Basis::ArrivalOrder,
            recovered: None,
            work_lost: None,
        }
    }

    /// Where a restart may go on from without losing or skipping saved work,
    /// in percent: the checkpoint it left, or (a kill between separate
    /// writes) anywhere between the values it left behind.
    pub fn resume_range(&self) -> Option<(i64, i64)> {
        let points: Vec<i64> = [
            self.progress_at_kill,
            self.counter_at_kill.map(|c| c * 10),
            self.checkpoint_at_kill.map(|c| c * 10),
        ]
        .into_iter()
        .flatten()
        .collect();
        Some((*points.iter().min()?, *points.iter().max()?))
    }

    /// Steps lost in all: saved steps done again, and steps whose work was never done.
    pub fn all_lost(&self) -> Option<i64> {
        match (self.steps_lost, self.work_lost) {
            (Some(a), b) => Some(a + b.unwrap_or(0)),
            (None, b) => b,
        }
    }

    pub fn kill_to_restart_ms(&self) -> Option<u64> {
        self.restarted_at.map(|t| t.saturating_sub(self.killed_at))
    }

    pub fn kill_to_checkpoint_ms(&self) -> Option<u64> {
        self.first_checkpoint_at
            .map(|t| t.saturating_sub(self.killed_at))
    }
}
