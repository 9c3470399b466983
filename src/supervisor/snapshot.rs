//! What a UI reads about an instance: a cheap, cloneable picture of its state.

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;

use super::events::{serialize_opt_unix_ms, serialize_unix_ms, unix_ms};
use super::exit::ExitKind;
use super::policy::CrashLoopNote;

/// Where an instance is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Lifecycle {
    Running,
    /// A Stop is in progress: SIGTERM sent, waiting out the grace period.
    Stopping,
    /// Stopped because we asked (or never started).
    Stopped,
    /// Ended on its own and is not being restarted.
    Exited,
    /// Ended and will be started again at `until`; `crash_loop` says why the wait is
    /// longer than the restart delay.
    WaitingRestart {
        #[serde(rename = "until_ms", serialize_with = "serialize_unix_ms")]
        until: SystemTime,
        crash_loop: Option<CrashLoopNote>,
    },
    /// Gave up: crash loop past `max_restarts`, or the program could not be started.
    Failed {
        reason: String,
    },
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifecycle::Running => f.write_str("running"),
            Lifecycle::Stopping => f.write_str("stopping"),
            Lifecycle::Stopped => f.write_str("stopped"),
            Lifecycle::Exited => f.write_str("exited"),
            Lifecycle::WaitingRestart { until, crash_loop } => {
                let left = unix_ms(*until).saturating_sub(unix_ms(SystemTime::now()));
                write!(f, "restarting in {:.1}s", left as f64 / 1000.0)?;
                match crash_loop {
                    Some(note) => write!(f, " ({note})"),
                    None => Ok(()),
                }
            }
            Lifecycle::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// Whether we started the process, found it running here, or only know of
/// it from the cluster API (another machine's agent runs it: no pid here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Owned,
    Attached,
    Remote,
}

/// One instance as of the last change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceSnapshot {
    pub id: String,
    pub app_name: String,
    pub node: String,
    pub origin: Origin,
    /// The command line (owned) or process name (attached).
    pub command: String,
    /// Set only while the process is alive and un-reaped.
    pub pid: Option<u32>,
    pub phase: Lifecycle,
    /// Runs so far, counting from 1; 0 before the first start.
    pub run: u32,
    #[serde(rename = "started_at_ms", serialize_with = "serialize_opt_unix_ms")]
    pub started_at: Option<SystemTime>,
    /// Runs that ended by a crash (signal death or non-zero exit).
    pub crashes: u32,
    /// Restart actions asked for by a user.
    pub manual_restarts: u32,
    /// All starts after the first (automatic, manual, or seen when attached).
    pub restarts: u32,
    pub last_exit: Option<ExitKind>,
    pub auto_restart: bool,
    /// Stopped (frozen) by this signal and not continued since: SIGSTOP sent by
    /// us or from outside, or a SIGTSTP, as the kernel reported it.
    pub paused: Option<&'static str>,
    /// Its part in an active/standby group (`supervisor::standby`), if any.
    pub role: Role,
}

/// An instance's part in an active/standby group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// In no group.
    #[default]
    Alone,
    /// The group's one that runs (or was running when it crashed).
    Active,
    /// Started only to take over.
    Standby,
}
