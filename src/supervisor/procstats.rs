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

#[cfg(test)]
mod tests {
    use super::*;

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
