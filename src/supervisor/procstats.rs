//! CPU, memory and start time of chosen processes (ours or not), via sysinfo.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::events::serialize_unix_ms;

/// One sample of one process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessStats {
    pub pid: u32,
    pub name: String,
    /// Percent of one core since the previous sample (0 on the first sample of a pid).
    pub cpu_percent: f32,
    pub rss_bytes: u64,
    #[serde(rename = "start_time_ms", serialize_with = "serialize_unix_ms")]
    pub start_time: SystemTime,
    pub run_time: Duration,
}

/// Samples only the pids it is asked about, so a refresh costs a few `/proc` reads.
/// Keep one sampler and call it on a timer: CPU % needs the previous sample.
pub struct ProcessSampler {
    system: System,
}

impl Default for ProcessSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessSampler {
    pub fn new() -> Self {
        ProcessSampler {
            system: System::new(),
        }
    }

    /// Stats of those `pids` that are alive, in the order asked.
    pub fn sample(&mut self, pids: &[u32]) -> Vec<ProcessStats> {
        let wanted: Vec<Pid> = pids.iter().map(|&pid| Pid::from_u32(pid)).collect();
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&wanted),
            true,
            ProcessRefreshKind::nothing()
                .without_tasks()
                .with_cpu()
                .with_memory(),
        );
        wanted
            .iter()
            .filter_map(|pid| self.stats_of(*pid))
            .collect()
    }

    pub fn sample_one(&mut self, pid: u32) -> Option<ProcessStats> {
        self.sample(&[pid]).pop()
    }

    fn stats_of(&self, pid: Pid) -> Option<ProcessStats> {
        let process = self.system.process(pid)?;
        Some(ProcessStats {
            pid: pid.as_u32(),
            name: process.name().to_string_lossy().into_owned(),
            cpu_percent: process.cpu_usage(),
            rss_bytes: process.memory(),
            start_time: unix_seconds(process.start_time()),
            run_time: Duration::from_secs(process.run_time()),
        })
    }
}

pub(crate) fn unix_seconds(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// The fields of `/proc/PID/stat` plumdash reads: what sysinfo does not
/// give (the process group) or gives only after a costly full refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `T` (stopped), `Z`, …
    pub state: char,
    pub ppid: u32,
    pub pgrp: i32,
    /// Start time in clock ticks since boot (identifies a pid's process).
    pub start_ticks: u64,
}

/// Reads `/proc/PID/stat`; `None` when the process is gone or unreadable.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// The processes under `pid` now (its children, theirs, …), each with its
/// start time so a reused pid is not taken for it. Empty when the kernel
/// does not list children (`/proc/PID/task/TID/children`).
pub fn descendants(pid: u32) -> Vec<(u32, u64)> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                // A cycle cannot happen, but a bound costs nothing.
                if found.len() >= 4096 {
                    return found;
                }
                if let Some(stat) = proc_stat(child) {
                    found.push((child, stat.start_ticks));
                    next.push(child);
                }
            }
        }
    }
    found
}

/// Is this process (pid and start time) still running (not a zombie)?
pub fn still_running(pid: u32, start_ticks: u64) -> bool {
    proc_stat(pid).is_some_and(|s| s.start_ticks == start_ticks && !matches!(s.state, 'Z' | 'X'))
}

/// Every pid in `/proc` now.
pub fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_stat_line() {
        let me = proc_stat(std::process::id()).expect("our own stat");
        assert_eq!(me.ppid, nix::unistd::getppid().as_raw() as u32);
        assert_eq!(me.pgrp, nix::unistd::getpgrp().as_raw());
        assert!(me.state == 'R' || me.state == 'S', "{me:?}");
        assert!(all_pids().contains(&std::process::id()));
        assert_eq!(proc_stat(u32::MAX - 1), None);
    }

    #[test]
    fn samples_ourselves_and_skips_the_dead() {
        let mut sampler = ProcessSampler::new();
        let me = std::process::id();
        let stats = sampler.sample(&[me, u32::MAX - 1]);
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].pid, me);
        assert!(stats[0].rss_bytes > 0);
        assert!(!stats[0].name.is_empty());
        let started = stats[0].start_time;
        assert!(
            started <= SystemTime::now() && started > SystemTime::now() - Duration::from_secs(3600)
        );
    }
}
