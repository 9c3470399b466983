//! Finding worker processes we did not start, and signalling them safely.

use std::ffi::OsStr;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use serde::Serialize;
use sysinfo::{
    Pid, Process, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, UpdateKind,
};

use super::events::serialize_unix_ms;
use super::procstats::unix_seconds;
use super::spec::WORKER_EXECUTABLE;

/// A running worker found on this machine, with the identity it had when found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForeignProcess {
    pub pid: u32,
    pub name: String,
    /// Start time in whole seconds since the UNIX epoch, as the kernel reports it.
    pub start_time_secs: u64,
    #[serde(rename = "start_time_ms", serialize_with = "serialize_unix_ms")]
    pub started_at: SystemTime,
    /// `PLUM_INSTANCE_ID`, when its environment is readable.
    pub instance_id: Option<String>,
    pub app_name: Option<String>,
    pub node_id: Option<String>,
    /// `CONTROLLER_BASE`: the controller it writes to (absent: the worker's default).
    pub controller_base: Option<String>,
    pub cpu_percent: f32,
    pub rss_bytes: u64,
    /// `/proc` shows it stopped (state T or t): frozen, not running.
    pub frozen: bool,
}

impl ForeignProcess {
    /// Sends `signal` to this process, after checking that the pid still belongs to the
    /// same process (same name, same start time) — a pid can be recycled at any time.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        self.check_identity()?;
        let pid =
            i32::try_from(self.pid).with_context(|| format!("pid {} out of range", self.pid))?;
        kill(nix::unistd::Pid::from_raw(pid), signal).with_context(|| {
            format!(
                "cannot send {} to pid {} ({})",
                signal.as_str(),
                self.pid,
                self.name
            )
        })
    }

    /// Fails unless the pid is still the process that was found.
    pub fn check_identity(&self) -> Result<()> {
        let mut system = System::new();
        let pid = Pid::from_u32(self.pid);
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().without_tasks(),
        );
        let same = system.process(pid).is_some_and(|now| {
            now.start_time() == self.start_time_secs && now.name() == OsStr::new(&self.name)
        });
        if !same {
            bail!(
                "pid {} is no longer the {} started at {}; refusing to signal",
                self.pid,
                self.name,
                humantime::format_rfc3339_seconds(self.started_at)
            );
        }
        Ok(())
    }

    /// Same process as `other` (not merely the same pid).
    pub fn same_identity(&self, other: &ForeignProcess) -> bool {
        self.pid == other.pid
            && self.start_time_secs == other.start_time_secs
            && self.name == other.name
    }
}

/// Scans the process table for workers of one app. Keep one per scanner loop: it
/// remembers CPU times between scans.
pub struct ProcessFinder {
    app_name: String,
    system: System,
}

impl ProcessFinder {
    pub fn new(app_name: impl Into<String>) -> Self {
        ProcessFinder {
            app_name: app_name.into(),
            system: System::new(),
        }
    }

    pub fn app_name(&self) -> &str {
        &self.app_name
    }

    /// Processes whose environment has `PLUM_APP_NAME=<app>` or whose name is
    /// `kv-demo`, except ourselves and the pids in `exclude` (e.g. workers we own).
    /// Blocking: reads `/proc`; run it off the async workers.
    pub fn scan(&mut self, exclude: &[u32]) -> Vec<ForeignProcess> {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .without_tasks()
                .with_cpu()
                .with_memory()
                // Always: a process read between fork and exec shows its parent's environment.
                .with_environ(UpdateKind::Always),
        );
        let me = std::process::id();
        let mut found: Vec<ForeignProcess> = self
            .system
            .processes()
            .values()
            .filter(|process| process.thread_kind().is_none())
            .filter(|process| {
                let pid = process.pid().as_u32();
                pid != me && !exclude.contains(&pid)
            })
            .filter_map(|process| self.describe_if_worker(process))
            .collect();
        found.sort_by_key(|process| process.pid);
        found
    }

    fn describe_if_worker(&self, process: &Process) -> Option<ForeignProcess> {
        // Environments of other users' processes are unreadable: they come back empty.
        let env = |key: &str| env_value(process.environ(), key);
        let app_name = env("PLUM_APP_NAME");
        let name = process.name().to_string_lossy().into_owned();
        let matches =
            app_name.as_deref() == Some(self.app_name.as_str()) || name == WORKER_EXECUTABLE;
        if !matches {
            return None;
        }
        Some(ForeignProcess {
            pid: process.pid().as_u32(),
            name,
            start_time_secs: process.start_time(),
            started_at: unix_seconds(process.start_time()),
            instance_id: env("PLUM_INSTANCE_ID"),
            app_name,
            node_id: env("WORKER_NODE_ID"),
            controller_base: env("CONTROLLER_BASE"),
            cpu_percent: process.cpu_usage(),
            rss_bytes: process.memory(),
            frozen: matches!(
                process.status(),
                ProcessStatus::Stop | ProcessStatus::Tracing
            ),
        })
    }
}

/// One-shot discovery (CPU % reads 0: there is no earlier sample to compare with).
pub fn discover(app_name: &str, exclude: &[u32]) -> Vec<ForeignProcess> {
    ProcessFinder::new(app_name).scan(exclude)
}

fn env_value(environ: &[std::ffi::OsString], key: &str) -> Option<String> {
    environ.iter().find_map(|entry| {
        let entry = entry.to_string_lossy();
        let (name, value) = entry.split_once('=')?;
        (name == key).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn reads_env_values() {
        let environ = vec![
            OsString::from("A=1"),
            OsString::from("PLUM_INSTANCE_ID=kv-demo-002"),
            OsString::from("B"),
        ];
        assert_eq!(
            env_value(&environ, "PLUM_INSTANCE_ID").as_deref(),
            Some("kv-demo-002")
        );
        assert_eq!(env_value(&environ, "B"), None);
        assert_eq!(env_value(&environ, "C"), None);
    }

    #[test]
    fn a_made_up_identity_is_refused() {
        let fake = ForeignProcess {
            pid: std::process::id(),
            name: "not-our-name".into(),
            start_time_secs: 1,
            started_at: unix_seconds(1),
            instance_id: None,
            app_name: None,
            node_id: None,
            controller_base: None,
            cpu_percent: 0.0,
            rss_bytes: 0,
            frozen: false,
        };
        let error = fake.signal(Signal::SIGCONT).unwrap_err().to_string();
        assert!(
            error.contains(
                "is no longer the not-our-name started at 1970-01-01T00:00:01Z; refusing to signal"
            ),
            "{error}"
        );
    }
}
