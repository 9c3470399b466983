//! The worker's key names (DESIGN.md, "The worker's keys"). Public so the
//! dashboard and `verify` read the same names the worker writes.

/// bool: set while a worker runs; still set after a SIGKILL.
pub const CRASHED: &str = "app.crashed";
/// string (unix seconds): when the flag was last set (really the start time).
pub const CRASH_TIME: &str = "app.crash_time";
/// string: `stopped` after a graceful stop.
pub const STATUS: &str = "app.status";
/// string (unix seconds): when the worker stopped gracefully.
pub const STOP_TIME: &str = "app.stop_time";

/// int: 0..=100 in steps of 10.
pub const PROGRESS: &str = "task.progress";
/// int: steps done.
pub const COUNTER: &str = "task.counter";
/// string: `step_N`.
pub const CHECKPOINT: &str = "task.checkpoint";
/// string: `running` or `completed`.
pub const TASK_STATUS: &str = "task.status";
/// string (unix seconds): when the task completed.
pub const COMPLETE_TIME: &str = "task.complete_time";

/// string, written at step 3.
pub const IMPORTANT_DATA: &str = "important.data";
/// double, written at step 5.
pub const CALCULATION_RESULT: &str = "calculation.result";
/// bytes (the 48-byte `BinaryCheckpoint`), written at step 5.
pub const BINARY_CHECKPOINT: &str = "binary.checkpoint";

pub const STATUS_RUNNING: &str = "running";
pub const STATUS_COMPLETED: &str = "completed";
pub const STATUS_STOPPED: &str = "stopped";

/// int: steps whose work is done (checkpoint pattern; behind the checkpoint
/// only with `--unsafe`, which saves the checkpoint before the work).
pub const WORK_DONE: &str = "task.work_done";

/// Transaction log (模式2). int: operations logged.
pub const OP_COUNTER: &str = "operation.counter";
/// string: the last operation logged, `OP_k`.
pub const OP_LAST: &str = "operation.last";
/// int: operations' effects applied.
pub const LEDGER_APPLIED: &str = "ledger.applied";
/// int: the operation the last effect belongs to (what makes a replay idempotent).
pub const LEDGER_APPLIED_OP: &str = "ledger.applied_op";

/// State machine (模式3). string: `INIT`, `LOAD`, `TRANSFORM`, `SAVE`, `DONE`.
pub const FSM_STATE: &str = "fsm.state";
/// string: the state's data, JSON.
pub const FSM_DATA: &str = "fsm.data";

#[cfg(test)]
mod tests {
    use crate::recovery::{KeyMap, Role};

    /// The dashboard's default names are the ones this worker writes.
    #[test]
    fn the_readers_default_names_are_the_workers() {
        let k = KeyMap::kv_demo();
        let pairs = [
            (Role::Flag, super::CRASHED),
            (Role::Progress, super::PROGRESS),
            (Role::Counter, super::COUNTER),
            (Role::Checkpoint, super::CHECKPOINT),
            (Role::Status, super::TASK_STATUS),
            (Role::WorkDone, super::WORK_DONE),
            (Role::OpCounter, super::OP_COUNTER),
            (Role::OpLast, super::OP_LAST),
            (Role::Applied, super::LEDGER_APPLIED),
            (Role::AppliedOp, super::LEDGER_APPLIED_OP),
            (Role::FsmState, super::FSM_STATE),
            (Role::FsmData, super::FSM_DATA),
        ];
        for (role, name) in pairs {
            assert_eq!(k.name(role), name, "{role}");
        }
    }
}
