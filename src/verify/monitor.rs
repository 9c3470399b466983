//! The worker's state as verify follows it: starts, exits, checkpoints, torn states, completions.

use crate::recovery::{Fact, ProcessExit, TaskView, TornCheckpoint, TsMs};

/// Keys whose writes count as the worker checkpointing.
const TASK_KEYS: [&str; 3] = ["task.progress", "task.counter", "task.checkpoint"];

/// What verify follows of the worker, updated after each whole fact.
#[derive(Debug, Default)]
pub(super) struct Monitor {
    pub(super) view: TaskView,
    /// Counter of the last whole (consistent) checkpoint.
    pub(super) lcc: Option<i64>,
    pub(super) torn: Option<TornCheckpoint>,
    pub(super) transient_torn: u32,
    pub(super) starts: u32,
    pub(super) run_started_at: Option<TsMs>,
    /// The current process has written checkpoint keys.
    pub(super) wrote: bool,
    /// The current process's first whole checkpoint (time, counter).
    pub(super) first_checkpoint: Option<(TsMs, i64)>,
    pub(super) exited: Option<(TsMs, ProcessExit, bool)>,
    /// Highest checkpoint written in the current task.
    pub(super) task_max: i64,
    pub(super) completions_seen: u32,
}

impl Monitor {
    pub(super) fn alive(&self) -> bool {
        self.run_started_at.is_some() && self.exited.is_none()
    }

    pub(super) fn observe(&mut self, at: TsMs, fact: &Fact, view: &TaskView) {
        let prev = std::mem::replace(&mut self.view, view.clone());
        let namespace = match fact {
            Fact::Started { .. } => {
                self.starts += 1;
                self.run_started_at = Some(at);
                self.wrote = false;
                self.first_checkpoint = None;
                self.exited = None;
                false
            }
            Fact::Exited {
                exit, requested, ..
            } => {
                self.exited = Some((at, exit.clone(), *requested));
                false
            }
            Fact::Written(entries) => {
                if entries.iter().any(|e| TASK_KEYS.contains(&e.key.as_str())) {
                    self.wrote = true;
                }
                true
            }
            Fact::Deleted { key } => {
                if TASK_KEYS.contains(&key.as_str()) {
                    self.wrote = true;
                }
                true
            }
            Fact::Snapshot(_) => {
                if view.counter != prev.counter || view.progress != prev.progress {
                    self.wrote = true;
                }
                true
            }
            _ => false,
        };
        if !namespace {
            return;
        }
        let torn = view.torn();
        if torn.is_some() && torn != self.torn {
            self.transient_torn += 1;
        }
        self.torn = torn;
        if self.torn.is_none() {
            if let Some(c) = view.counter {
                if self.wrote && self.run_started_at.is_some() {
                    if self.first_checkpoint.is_none() && self.exited.is_none() {
                        self.first_checkpoint = Some((at, c));
                    }
                    self.task_max = self.task_max.max(c);
                }
                self.lcc = Some(c);
            }
        }
        if view.progress == Some(100) && prev.progress != Some(100) {
            self.completions_seen += 1;
        }
    }
}
