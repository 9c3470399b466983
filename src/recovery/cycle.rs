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
    pub first_checkpoint_at: Option<TsMs>,
    /// Progress the new process continued from (its first new checkpoint
    /// minus one step).
    pub resumed_from: Option<i64>,
    /// Checkpointed steps redone; negative means it skipped ahead.
    pub steps_lost: Option<i64>,
}

impl Cycle {
    pub fn kill_to_restart_ms(&self) -> Option<u64> {
        self.restarted_at.map(|t| t.saturating_sub(self.killed_at))
    }

    pub fn kill_to_checkpoint_ms(&self) -> Option<u64> {
        self.first_checkpoint_at
            .map(|t| t.saturating_sub(self.killed_at))
    }
}
