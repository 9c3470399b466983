//! What callers can ask of an instance, and why a request can be refused.

use nix::sys::signal::Signal;
use thiserror::Error;

/// A control request for one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAction {
    /// Start it if it is not running (also cancels a pending restart or a FAILED state).
    Start,
    /// SIGTERM to the process group, grace period, then SIGKILL. Never restarted.
    Stop,
    /// Stop (as above) then start again; counted as a manual restart.
    Restart,
    /// Send a signal to the process group. A SIGKILL sent this way is a crash and is
    /// restarted: that is the demo.
    Signal(Signal),
    /// Turn automatic restarts on or off; off also cancels a pending restart.
    SetAutoRestart(bool),
}

/// Why an action was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ActionError {
    #[error("no instance named {0:?}")]
    UnknownInstance(String),
    #[error("{instance} is not running ({phase})")]
    NotRunning { instance: String, phase: String },
    #[error("{instance} is already running (pid {pid})")]
    AlreadyRunning { instance: String, pid: u32 },
    #[error("cannot start {instance}: {reason}")]
    SpawnFailed { instance: String, reason: String },
    #[error("cannot send {signal} to {instance} (pid {pid}): {reason}")]
    SignalFailed {
        instance: String,
        signal: &'static str,
        pid: u32,
        reason: String,
    },
    #[error("{0} has been shut down")]
    ShutDown(String),
}
