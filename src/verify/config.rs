//! What one `plumdash verify` run is asked to do ([`VerifyConfig`], checked by
//! the command line in `cli/verify.rs`).

use super::schedule::KillSchedule;
use std::path::PathBuf;
use std::time::Duration;

/// The worker's own default step, for timeouts when `--step` is not given.
pub const DEFAULT_STEP: Duration = Duration::from_secs(2);

/// What the node scenario does to the node running the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeFault {
    Kill,
    Freeze,
    /// Its test host's link cut both ways, healed once the work has moved.
    Partition,
    /// Its link cut one way: odd cycles it hears but cannot reach, even
    /// cycles the reverse.
    PartitionOneway,
    /// Its link degraded (`--netem`) for a while, then healed.
    Netem,
}

impl NodeFault {
    /// Faults on a link: the nodes run on test hosts (`crate::hosts`).
    pub fn needs_hosts(self) -> bool {
        matches!(
            self,
            NodeFault::Partition | NodeFault::PartitionOneway | NodeFault::Netem
        )
    }

    /// The fault as a report's line names it.
    pub fn word(self) -> &'static str {
        match self {
            NodeFault::Kill => "kill",
            NodeFault::Freeze => "freeze",
            NodeFault::Partition => "partition",
            NodeFault::PartitionOneway => "one-way partition",
            NodeFault::Netem => "degraded link",
        }
    }
}

/// The node scenario's settings (`--nodes N --kill-node | --freeze-node |
/// --partition-node | --partition-oneway | --netem SPEC`).
#[derive(Debug, Clone)]
pub struct NodeScenario {
    pub nodes: u8,
    pub fault: NodeFault,
    /// `--netem`: what the degraded link does.
    pub netem: Option<crate::hosts::Netem>,
}

/// Validated settings of one verify run.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub cycles: u32,
    pub schedule: KillSchedule,
    pub step: Option<Duration>,
    pub cmd: Option<String>,
    pub controller: Option<String>,
    pub app: String,
    pub token: Option<String>,
    /// Delete what a remote namespace holds before starting.
    pub reset_namespace: bool,
    pub outage: Duration,
    pub restart_delay: Duration,
    pub patience: Duration,
    /// Live lines to stderr instead of stdout.
    pub live_to_stderr: bool,
    /// The plumdash binary that runs the orphan guard (see `SessionConfig`).
    pub orphan_guard: Option<std::path::PathBuf>,
    /// `--nodes`: the node scenario instead of the kill cycles.
    pub nodes: Option<NodeScenario>,
    /// Which of the app's keys plays which role (`--key ROLE=NAME`).
    pub keys: crate::recovery::KeyMap,
    /// The recovery pattern as told (`--pattern`), else learnt from the keys.
    pub pattern: Option<crate::recovery::Pattern>,
    /// The bundled worker makes its pattern's classic mistake (`--unsafe`).
    pub unsafe_worker: bool,
    /// Where the report goes besides the terminal.
    pub outputs: ReportOutputs,
}

/// Where a run's report is written: the terminal as text or JSON, and files.
#[derive(Debug, Clone, Default)]
pub struct ReportOutputs {
    /// The JSON report on stdout instead of the table.
    pub json: bool,
    /// The JSON report to this file too.
    pub report: Option<PathBuf>,
    /// A JUnit XML report to this file.
    pub junit: Option<PathBuf>,
    /// A self-contained HTML page with the progress plot to this file.
    pub html: Option<PathBuf>,
}
