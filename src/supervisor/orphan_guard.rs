//! Workers die with the plumdash that started them, unless handed off.
//!
//! A parent-death signal set in each worker would kill it with us, but nothing
//! can clear that signal later, and `Q` ("quit, leave workers running") must
//! hand workers off alive. So one small guard process (`plumdash
//! __orphan-guard`: its own process group, deaf to terminal signals) is told
//! on a pipe which workers we own. When the pipe closes — plumdash exited or
//! was SIGKILLed; the kernel closes it either way — the guard SIGKILLs the
//! process group of every worker still on its list, after checking that the
//! pid is still the process we started (same start time). `forget` takes a
//! worker off the list (reaped, or detached for `Q`).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, Result};
use nix::sys::signal::{kill, killpg, signal, SigHandler, Signal};
use nix::unistd::Pid;

/// The hidden subcommand that runs the guard.
pub const GUARD_SUBCOMMAND: &str = "__orphan-guard";

/// Our side of the guard: the write end of its pipe.
#[derive(Debug)]
pub struct OrphanGuard {
    pipe: Mutex<ChildStdin>,
    child: Mutex<Child>,
}

impl OrphanGuard {
    /// Starts `program __orphan-guard` (normally the running plumdash binary).
    pub fn start(program: &Path) -> Result<OrphanGuard> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(program)
            .arg(GUARD_SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of our process group: a Ctrl-C or a group kill aimed at us
            // must not take the guard with it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting the orphan guard {}", program.display()))?;
        let pipe = child
            .stdin
            .take()
            .context("the orphan guard has no input pipe")?;
        Ok(OrphanGuard {
            pipe: Mutex::new(pipe),
            child: Mutex::new(child),
        })
    }

    /// Puts a just-spawned (not yet reaped) worker, leader of its own process
    /// group, on the guard's list.
    pub fn watch(&self, pid: u32) {
        if let Some(ticks) = start_ticks(pid) {
            self.send(&format!("watch {pid} {ticks}"));
        }
    }

    /// Takes a worker off the list: it was reaped, or handed off alive.
    pub fn forget(&self, pid: u32) {
        self.send(&format!("forget {pid}"));
    }

    /// The guard's pid (for tests and `ps`).
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().ok().map(|c| c.id())
    }

    fn send(&self, line: &str) {
        // A guard that is gone cannot be helped here; the worker still runs.
        if let Ok(mut pipe) = self.pipe.lock() {
            let _ = writeln!(pipe, "{line}");
        }
    }
}

impl Drop for OrphanGuard {
    fn drop(&mut self) {
        // Closing the pipe is what makes the guard act and exit; reap it after.
        if let Ok(mut child) = self.child.lock() {
            let _ = child.stdin.take();
        }
    }
}

/// The guard process: reads `watch PID TICKS` / `forget PID` lines until its
/// input closes, then kills what is still listed. Returns the exit code.
pub fn run_guard() -> u8 {
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGPIPE,
    ] {
        // SAFETY: installs SIG_IGN, no handler code runs.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    let mut watched: HashMap<u32, u64> = HashMap::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next().and_then(|p| p.parse::<u32>().ok()),
        ) {
            (Some("watch"), Some(pid)) => {
                if let Some(ticks) = words.next().and_then(|t| t.parse().ok()) {
                    watched.insert(pid, ticks);
                }
            }
            (Some("forget"), Some(pid)) => {
                watched.remove(&pid);
            }
            _ => {}
        }
    }
    for (pid, ticks) in watched {
        // Only the process we started: a recycled pid is left alone.
        if start_ticks(pid) == Some(ticks) {
            if let Ok(raw) = i32::try_from(pid) {
                let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
    }
    0
}

/// Field 22 of `/proc/PID/stat`: start time in clock ticks since boot.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    super::procstats::proc_stat(pid).map(|s| s.start_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_start_time() {
        let me = start_ticks(std::process::id()).expect("our own stat");
        assert!(me > 0);
        assert_eq!(start_ticks(std::process::id()), Some(me));
        assert_eq!(start_ticks(u32::MAX - 1), None);
    }
}
