//! Finding worker processes we did not start, and signalling them safely.
//!
//! Under Plum's agent one worker is a process tree: `sh -c ./start.sh` → `bash
//! start.sh` → {`kv-demo`, `tee kv-demo.log`}, all four carrying the instance's
//! `PLUM_*` variables. Only the process running the worker program is the worker;
//! the shells and `tee` are its wrappers, found by the same `PLUM_INSTANCE_ID`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
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

/// The app a worker without `PLUM_APP_NAME` belongs to: the worker's own default.
pub const DEFAULT_APP: &str = "kv-demo";

/// Longest process name the kernel keeps (`comm`, 15 bytes).
const COMM_LEN: usize = 15;

/// One process as found: enough to re-check, before a signal, that the pid still
/// belongs to it (a pid can be recycled at any time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcIdentity {
    pub pid: u32,
    pub name: String,
    /// Start time in whole seconds since the UNIX epoch, as the kernel reports it.
    pub start_time_secs: u64,
    /// The program as started (`bash` for a `start.sh` run by its shebang, whose
    /// process name is the script's), for showing.
    pub program: String,
}

impl ProcIdentity {
    fn of(process: &Process) -> ProcIdentity {
        let name = process.name().to_string_lossy().into_owned();
        let program = process
            .cmd()
            .first()
            .and_then(|arg0| Path::new(arg0).file_name())
            .map(|base| base.to_string_lossy().into_owned())
            .filter(|base| !base.is_empty())
            .unwrap_or_else(|| name.clone());
        ProcIdentity {
            pid: process.pid().as_u32(),
            name,
            start_time_secs: process.start_time(),
            program,
        }
    }

    /// Fails unless the pid is still the process that was found.
    pub fn check(&self) -> Result<()> {
        let mut system = System::new();
        let pid = Pid::from_u32(self.pid);
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().without_tasks(),
        );
        let same = system.process(pid).is_some_and(|now| {
            now.start_time() == self.start_time_secs
                && now.name() == OsStr::new(&self.name)
                && !matches!(now.status(), ProcessStatus::Zombie | ProcessStatus::Dead)
        });
        if !same {
            bail!(
                "pid {} is no longer the {} started at {}; refusing to signal",
                self.pid,
                self.name,
                humantime::format_rfc3339_seconds(unix_seconds(self.start_time_secs))
            );
        }
        Ok(())
    }

    /// Sends `signal` after [`check`](Self::check).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        self.check()?;
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
}

/// Where a worker's standard output goes, read from `/proc/PID/fd/1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stdout {
    /// A regular file: its output can be followed there.
    File {
        path: PathBuf,
    },
    /// A pipe into `tee`, which writes this file (the agent's `start.sh`).
    Tee {
        path: PathBuf,
    },
    /// A pipe to the agent that started it, which keeps its output in this
    /// file (`up --nodes`: one log per instance).
    Kept {
        path: PathBuf,
    },
    Null,
    Terminal {
        path: String,
    },
    /// Somewhere plumdash cannot read back (a pipe into another program, a socket).
    Elsewhere {
        what: String,
    },
    /// Not readable (another user's process).
    Unknown,
}

impl Stdout {
    /// The file to follow, if the output lands in one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Stdout::File { path } | Stdout::Tee { path } | Stdout::Kept { path } => Some(path),
            _ => None,
        }
    }

    /// One line for the log pane.
    pub fn describe(&self) -> String {
        match self {
            Stdout::File { path } => format!("output: following {}", path.display()),
            Stdout::Tee { path } => format!(
                "output: following {} (the worker's stdout goes through tee)",
                path.display()
            ),
            Stdout::Kept { path } => format!(
                "output: following {} (its agent's log of this instance)",
                path.display()
            ),
            Stdout::Null => "stdout is /dev/null: the worker's output is not kept anywhere".into(),
            Stdout::Terminal { path } => {
                format!("stdout is the terminal {path}: its output is shown there, not here")
            }
            Stdout::Elsewhere { what } => {
                format!("stdout is {what}: plumdash cannot read it back")
            }
            Stdout::Unknown => "stdout cannot be read (another user's process?)".into(),
        }
    }
}

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
    /// Its ancestors of the same instance, outermost first (`sh`, `bash`).
    pub wrappers: Vec<ProcIdentity>,
    /// The other processes of the same instance (`tee`).
    pub companions: Vec<ProcIdentity>,
    pub stdout: Stdout,
}

impl ForeignProcess {
    pub fn identity(&self) -> ProcIdentity {
        ProcIdentity {
            pid: self.pid,
            name: self.name.clone(),
            start_time_secs: self.start_time_secs,
            program: self.name.clone(),
        }
    }

    /// Sends `signal` to this process, after checking that the pid still belongs to the
    /// same process (same name, same start time) — a pid can be recycled at any time.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        self.identity().signal(signal)
    }

    /// Fails unless the pid is still the process that was found.
    pub fn check_identity(&self) -> Result<()> {
        self.identity().check()
    }

    /// Same process as `other` (not merely the same pid).
    pub fn same_identity(&self, other: &ForeignProcess) -> bool {
        self.pid == other.pid
            && self.start_time_secs == other.start_time_secs
            && self.name == other.name
    }

    /// `sh→bash`: the wrappers it runs under, if any.
    pub fn wrapper_chain(&self) -> Option<String> {
        (!self.wrappers.is_empty()).then(|| {
            self.wrappers
                .iter()
                .map(|w| w.program.as_str())
                .collect::<Vec<_>>()
                .join("→")
        })
    }

    /// Every process of the instance: wrappers, companions, then the worker.
    pub fn tree(&self) -> Vec<ProcIdentity> {
        let mut all = self.wrappers.clone();
        all.extend(self.companions.iter().cloned());
        all.push(self.identity());
        all
    }
}

/// Scans the process table for workers of one app. Keep one per scanner loop: it
/// remembers CPU times between scans.
pub struct ProcessFinder {
    app_name: String,
    worker_name: String,
    /// The old, loose rule (any process with the app's variable, or named like the
    /// worker), for the second-writer check of `up`.
    any_name: bool,
    system: System,
}

impl ProcessFinder {
    /// Finds processes named `worker_name` (the worker program, e.g. `kv-demo`)
    /// that belong to `app_name`.
    pub fn new(app_name: impl Into<String>, worker_name: impl Into<String>) -> Self {
        ProcessFinder {
            app_name: app_name.into(),
            worker_name: worker_name.into(),
            any_name: false,
            system: System::new(),
        }
    }

    pub fn app_name(&self) -> &str {
        &self.app_name
    }

    /// Workers of the app, except ourselves and the pids in `exclude` (e.g. workers
    /// we own). Blocking: reads `/proc`; run it off the async workers.
    pub fn scan(&mut self, exclude: &[u32]) -> Vec<ForeignProcess> {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing()
                .without_tasks()
                .with_cpu()
                .with_memory()
                // For the wrappers' names: `bash` rather than its script's.
                .with_cmd(UpdateKind::OnlyIfNotSet)
                // Always: a process read between fork and exec shows its parent's environment.
                .with_environ(UpdateKind::Always),
        );
        let me = std::process::id();
        let processes = self.system.processes();
        let live: Vec<&Process> = processes
            .values()
            .filter(|p| p.thread_kind().is_none())
            // A zombie has finished: it is gone, whoever fails to reap it.
            .filter(|p| !matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead))
            .collect();
        let mut by_instance: HashMap<String, Vec<&Process>> = HashMap::new();
        for process in &live {
            if let Some(id) = env_value(process.environ(), "PLUM_INSTANCE_ID") {
                by_instance.entry(id).or_default().push(process);
            }
        }
        let mut found: Vec<ForeignProcess> = live
            .iter()
            .filter(|process| {
                let pid = process.pid().as_u32();
                pid != me && !exclude.contains(&pid)
            })
            .filter(|process| self.is_worker(process))
            // A worker's fork (a shell's subshell for `$(…)`: same program, same
            // arguments, same instance) is the same worker.
            .filter(|process| {
                let parent = process.parent().and_then(|ppid| processes.get(&ppid));
                !parent.is_some_and(|up| {
                    up.name() == process.name()
                        && up.cmd() == process.cmd()
                        && env_value(up.environ(), "PLUM_INSTANCE_ID")
                            == env_value(process.environ(), "PLUM_INSTANCE_ID")
                })
            })
            .map(|process| self.describe(process, processes, &by_instance, &live))
            .collect();
        found.sort_by_key(|process| process.pid);
        found
    }

    fn is_name_of_worker(&self, name: &OsStr) -> bool {
        let name = name.to_string_lossy();
        name == self.worker_name
            || (name.len() == COMM_LEN && self.worker_name.starts_with(name.as_ref()))
    }

    fn is_worker(&self, process: &Process) -> bool {
        let app = env_value(process.environ(), "PLUM_APP_NAME");
        if self.any_name {
            return app.as_deref() == Some(self.app_name.as_str())
                || process.name() == OsStr::new(WORKER_EXECUTABLE);
        }
        // Exactly as the worker decides its namespace: the variable, else the default.
        let belongs = app.as_deref().unwrap_or(DEFAULT_APP) == self.app_name;
        // A script worker runs as its interpreter (`bash …/worker.sh`): its
        // name is `bash`, the script is the first argument.
        let script = process
            .cmd()
            .get(1)
            .and_then(|arg| std::path::Path::new(arg).file_name())
            .is_some_and(|name| name.to_string_lossy() == self.worker_name);
        belongs && (self.is_name_of_worker(process.name()) || script)
    }

    fn describe(
        &self,
        process: &Process,
        all: &HashMap<Pid, Process>,
        by_instance: &HashMap<String, Vec<&Process>>,
        live: &[&Process],
    ) -> ForeignProcess {
        // Environments of other users' processes are unreadable: they come back empty.
        let env = |key: &str| env_value(process.environ(), key);
        let instance_id = env("PLUM_INSTANCE_ID");
        let mut wrappers = Vec::new();
        if let Some(id) = &instance_id {
            let mut parent = process.parent();
            while let Some(ppid) = parent {
                let Some(up) = all.get(&ppid) else { break };
                if env_value(up.environ(), "PLUM_INSTANCE_ID").as_ref() != Some(id) {
                    break;
                }
                wrappers.push(ProcIdentity::of(up));
                parent = up.parent();
            }
            wrappers.reverse();
        }
        let pid = process.pid();
        let companions: Vec<ProcIdentity> = instance_id
            .as_ref()
            .and_then(|id| by_instance.get(id))
            .map(|members| {
                members
                    .iter()
                    .filter(|m| m.pid() != pid && !self.is_name_of_worker(m.name()))
                    .map(|m| ProcIdentity::of(m))
                    .filter(|m| !wrappers.contains(m))
                    .collect()
            })
            .unwrap_or_default();
        // Who may read its stdout pipe: the instance's other processes, and its siblings.
        let mut readers: Vec<ProcIdentity> = companions.clone();
        readers.extend(
            live.iter()
                .filter(|p| {
                    p.pid() != pid && p.parent().is_some() && p.parent() == process.parent()
                })
                .map(|p| ProcIdentity::of(p))
                .filter(|p| !companions.contains(p)),
        );
        ForeignProcess {
            pid: pid.as_u32(),
            name: process.name().to_string_lossy().into_owned(),
            start_time_secs: process.start_time(),
            started_at: unix_seconds(process.start_time()),
            instance_id,
            app_name: env("PLUM_APP_NAME"),
            node_id: env("WORKER_NODE_ID"),
            controller_base: env("CONTROLLER_BASE"),
            cpu_percent: process.cpu_usage(),
            rss_bytes: process.memory(),
            frozen: matches!(
                process.status(),
                ProcessStatus::Stop | ProcessStatus::Tracing
            ),
            wrappers,
            companions,
            stdout: stdout_of(pid.as_u32(), &readers),
        }
    }
}

/// One-shot discovery for the second-writer check of `up`: processes whose
/// environment has `PLUM_APP_NAME=<app>` or whose name is `kv-demo` (the caller
/// filters them further). CPU % reads 0: there is no earlier sample.
pub fn discover(app_name: &str, exclude: &[u32]) -> Vec<ForeignProcess> {
    let mut finder = ProcessFinder::new(app_name, WORKER_EXECUTABLE);
    finder.any_name = true;
    finder.scan(exclude)
}

fn env_value(environ: &[std::ffi::OsString], key: &str) -> Option<String> {
    environ.iter().find_map(|entry| {
        let entry = entry.to_string_lossy();
        let (name, value) = entry.split_once('=')?;
        (name == key).then(|| value.to_string())
    })
}

fn fd_link(pid: u32, fd: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()
}

/// Where `pid`'s fd 1 leads; for a pipe, which of `readers` holds its other end.
fn stdout_of(pid: u32, readers: &[ProcIdentity]) -> Stdout {
    let Some(link) = fd_link(pid, "1") else {
        return Stdout::Unknown;
    };
    let text = link.to_string_lossy().into_owned();
    if text == "/dev/null" {
        return Stdout::Null;
    }
    if text.starts_with("pipe:") {
        for reader in readers {
            if fd_link(reader.pid, "0").as_ref() == Some(&link) {
                if reader.name == "tee" {
                    if let Some(path) = file_written_by(reader.pid) {
                        return Stdout::Tee { path };
                    }
                }
                return Stdout::Elsewhere {
                    what: format!("a pipe into {} (pid {})", reader.name, reader.pid),
                };
            }
        }
        return Stdout::Elsewhere {
            what: "a pipe".into(),
        };
    }
    if text.starts_with("socket:") {
        return Stdout::Elsewhere {
            what: "a socket".into(),
        };
    }
    if text.starts_with("/dev/pts/") || text.starts_with("/dev/tty") {
        return Stdout::Terminal { path: text };
    }
    let path = PathBuf::from(text.trim_end_matches(" (deleted)"));
    if path.is_absolute() && path.is_file() {
        return Stdout::File { path };
    }
    Stdout::Elsewhere { what: text }
}

/// The first regular file `pid` has open for output (fd 1 and up), e.g. `tee`'s FILE.
fn file_written_by(pid: u32) -> Option<PathBuf> {
    let mut fds: Vec<(u32, PathBuf)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let fd: u32 = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, target))
        })
        .filter(|(fd, target)| {
            *fd != 0 && *fd != 2 && !target.starts_with("/dev") && target.is_file()
        })
        .collect();
    fds.sort();
    fds.into_iter().next().map(|(_, path)| path)
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
        let fake = ProcIdentity {
            pid: std::process::id(),
            name: "not-our-name".into(),
            start_time_secs: 1,
            program: "not-our-name".into(),
        };
        let error = fake.signal(Signal::SIGCONT).unwrap_err().to_string();
        assert!(
            error.contains(
                "is no longer the not-our-name started at 1970-01-01T00:00:01Z; refusing to signal"
            ),
            "{error}"
        );
    }

    #[test]
    fn our_own_stdout_is_described() {
        // Whatever the test harness gave us, it is one of the known shapes.
        let out = stdout_of(std::process::id(), &[]);
        assert_ne!(out, Stdout::Unknown, "our own fds are readable");
        assert!(!out.describe().is_empty());
    }

    #[test]
    fn stdout_into_a_file_or_dev_null_is_named() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let file = std::fs::File::create(&path).unwrap();
        let mut to_file = Command::new("sleep").arg("5").stdout(file).spawn().unwrap();
        let mut to_null = Command::new("sleep")
            .arg("5")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let file_out = stdout_of(to_file.id(), &[]);
        let null_out = stdout_of(to_null.id(), &[]);
        for child in [&mut to_file, &mut to_null] {
            let _ = child.kill();
            let _ = child.wait();
        }
        let expected = path.canonicalize().unwrap();
        assert_eq!(file_out.file(), Some(expected.as_path()));
        assert_eq!(null_out, Stdout::Null);
        assert_eq!(
            null_out.describe(),
            "stdout is /dev/null: the worker's output is not kept anywhere"
        );
    }

    #[test]
    fn stdout_into_tee_is_followed_to_its_file() {
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("kv-demo.log");
        // `sleep | tee FILE` with the pipeline's stdout thrown away, as start.sh does.
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(format!("sleep 2 | tee {} >/dev/null", log.display()))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let shell_pid = shell.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let found = loop {
            let mut system = System::new();
            system.refresh_processes(ProcessesToUpdate::All, true);
            let children: Vec<ProcIdentity> = system
                .processes()
                .values()
                .filter(|p| p.parent() == Some(Pid::from_u32(shell_pid)))
                .map(ProcIdentity::of)
                .collect();
            let sleep = children.iter().find(|p| p.name == "sleep");
            let tee = children.iter().find(|p| p.name == "tee");
            if let (Some(sleep), Some(_)) = (sleep, tee) {
                let out = stdout_of(sleep.pid, &children);
                if matches!(out, Stdout::Tee { .. }) {
                    break out;
                }
            }
            assert!(std::time::Instant::now() < deadline, "no sleep | tee seen");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let _ = shell.kill();
        let _ = shell.wait();
        let expected = log.canonicalize().unwrap();
        assert_eq!(found.file(), Some(expected.as_path()));
    }
}
