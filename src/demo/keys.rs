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
