//! The result of a verify run: per-cycle figures, a verdict per invariant with
//! evidence, and the full history. Printed as a table and summary, or JSON.

use super::history::{line, History, HistoryEntry};
use crate::clock::Zone;
use crate::recovery::{Basis, TsMs};
use crate::text_safety::escape_controls_keep_newlines;
use serde::Serialize;
use std::fmt::Write as _;

/// The recovery invariants of DESIGN.md, by number.
pub const INVARIANTS: [(u8, &str); 6] = [
    (
        1,
        "after SIGKILL the crash flag is still set and the last checkpoint intact",
    ),
    (
        2,
        "a restarted worker resumes from the last checkpoint, never from 0 nor ahead",
    ),
    (
        3,
        "a checkpoint is never torn (progress, counter and name agree)",
    ),
    (
        4,
        "a graceful stop clears the flag and keeps the checkpoint; the next start is no recovery",
    ),
    (5, "the task reaches 100% exactly once per run"),
    (
        6,
        "an unreachable controller is waited for, never taken for \"no saved state\"",
    ),
];

/// The invariants of the other two recovery patterns (DESIGN.md, "Recovery
/// patterns"), judged when the worker follows that pattern.
pub const TXLOG_INVARIANT: (u8, &str) = (
    7,
    "transaction log: every operation's effect applied exactly once (ledger.applied ≤ operation.counter + 1 while running, = N at the end)",
);
pub const FSM_INVARIANT: (u8, &str) = (
    8,
    "state machine: after a crash in a state the restart continues there (never back to INIT, never a skipped state), transitions only along the machine, DONE once",
);

/// A transaction log's or state machine's keys at a moment (the pattern's plot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatternSample {
    pub ts_ms: TsMs,
    /// Operations logged and effects applied (transaction log).
    pub logged: Option<i64>,
    pub applied: Option<i64>,
    /// The machine's state (state machine).
    pub state: Option<String>,
}

/// One SIGKILL → restart → resume cycle.
#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    /// 1-based; the outage cycle is numbered after the kill cycles.
    pub cycle: u32,
    /// `kill`, or `outage` (killed while the controller was down).
    pub kind: &'static str,
    /// Which task run (1-based) it happened in.
    pub task: u32,
    pub planned_pct: i64,
    pub killed_at_ms: Option<TsMs>,
    pub kill_at_pct: Option<i64>,
    /// The last whole checkpoint when the worker died.
    pub counter_at_kill: Option<i64>,
    pub flag_after_kill: Option<bool>,
    pub torn_at_kill: Option<String>,
    pub resumed_from: Option<i64>,
    /// Saved steps done again (never negative; `None`: not known).
    pub steps_lost: Option<i64>,
    /// Steps gone on from beyond what was saved (never negative).
    pub steps_skipped: Option<i64>,
    /// How the restarted run's first write was told from the dead run's.
    pub basis: Basis,
    pub kill_to_restart_ms: Option<u64>,
    pub kill_to_checkpoint_ms: Option<u64>,
    pub violated: Vec<u8>,
    pub verdict: String,
}

impl CycleReport {
    /// Its figures as the report tables show them: kill at, resumed from, steps
    /// lost, kill→restart ms, kill→checkpoint ms ("—" where unknown).
    pub fn figure_cells(&self) -> [String; 5] {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
        [
            opt(self.kill_at_pct.map(|p| format!("{p}%"))),
            opt(self.resumed_from.map(|p| format!("{p}%"))),
            opt(self.steps_lost.map(|s| s.to_string())),
            opt(self.kill_to_restart_ms.map(|s| s.to_string())),
            opt(self.kill_to_checkpoint_ms.map(|s| s.to_string())),
        ]
    }
}

/// The SIGINT check (invariant 4).
#[derive(Debug, Clone, Serialize, Default)]
pub struct GracefulReport {
    pub task: u32,
    pub at_pct: Option<i64>,
    pub exit: Option<String>,
    pub flag_after_stop: Option<bool>,
    pub counter_after_stop: Option<i64>,
    pub next_start_was_recovery: Option<bool>,
    pub continued_from: Option<i64>,
    /// When the worker ended after SIGINT.
    pub stopped_at_ms: Option<TsMs>,
    pub violated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub invariant: u8,
    pub at_ms: TsMs,
    pub message: String,
    /// The kill cycle it was found in (the outage cycle too), if any.
    pub cycle: Option<u32>,
    pub evidence: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InvariantResult {
    pub id: u8,
    pub name: &'static str,
    /// `held`, `violated`, `skipped` or `not_checked`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub violations: Vec<Violation>,
}

/// What the verdicts rest on: the writer of each write, named by the
/// controller, or (not named) the order and time writes arrived in.
#[derive(Debug, Clone, Serialize)]
pub struct BasisReport {
    pub kind: Basis,
    pub text: String,
    /// Writes seen, and how many of them named their writer.
    pub writes: u64,
    pub writes_named: u64,
}

impl BasisReport {
    pub fn of(kind: Basis, (writes_named, writes): (u64, u64)) -> BasisReport {
        let text = match kind {
            Basis::Writer if writes_named < writes => format!(
                "{} ({writes_named} of {writes} writes; the rest inferred from arrival order)",
                kind.describe()
            ),
            _ => kind.describe().to_string(),
        };
        BasisReport {
            kind,
            text,
            writes,
            writes_named,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub task: u32,
    pub completions: u32,
}

/// The stored progress of an instance's task at a moment (for the plot).
#[derive(Debug, Clone, Serialize)]
pub struct ProgressSample {
    pub ts_ms: TsMs,
    pub instance: String,
    /// `None` while the namespace holds no progress.
    pub progress: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub exit_code: u8,
    /// When the run started and ended (wall clock, ms).
    pub started_ms: TsMs,
    pub finished_ms: TsMs,
    /// Why the run stopped before its plan was done, if it did.
    pub ended_early: Option<String>,
    pub worker: String,
    pub controller: String,
    pub embedded_controller: bool,
    pub app: String,
    /// The recovery pattern judged (`checkpoint`, `txlog`, `fsm`), as told or learnt.
    pub pattern: Option<crate::recovery::Pattern>,
    /// The keys mapped by `--key` (`ROLE=NAME`), if any.
    pub keys: Vec<String>,
    /// Every replay and restore seen, as the timeline tells them.
    pub recoveries: Vec<String>,
    /// The pattern's keys after every change of them (transaction log, state machine).
    pub pattern_samples: Vec<PatternSample>,
    pub step_ms: Option<u64>,
    pub seed: Option<u64>,
    pub kill_points: Vec<i64>,
    pub cycles: Vec<CycleReport>,
    pub outage: Option<CycleReport>,
    pub outage_ms: Option<u64>,
    /// When the controller was stopped and when it served again.
    pub outage_window: Option<(TsMs, TsMs)>,
    pub graceful_stop: Option<GracefulReport>,
    pub tasks: Vec<TaskReport>,
    pub invariants: Vec<InvariantResult>,
    /// Torn states seen while a worker was between its writes (not left behind).
    pub transient_torn_states: u32,
    pub warnings: Vec<String>,
    /// The namespace's progress after every change of it, in order.
    pub progress: Vec<ProgressSample>,
    /// How the namespace was observed, and so what could not be: `change stream`,
    /// or `polled every 500ms: shorter states are not observable`.
    pub resolution: Option<String>,
    /// What the verdicts of which run wrote what rest on.
    pub basis: BasisReport,
    pub history: History,
}

impl Report {
    pub fn violated(&self) -> Vec<u8> {
        self.invariants
            .iter()
            .filter(|i| i.status == "violated")
            .map(|i| i.id)
            .collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
    }

    /// The human table and summary.
    pub fn render(&self, zone: Zone) -> String {
        let mut out = String::new();
        let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<7} {:>4} {:>8} {:>12} {:>10} {:>16} {:>19}  verdict",
            "cycle",
            "task",
            "kill at",
            "resumed from",
            "steps lost",
            "kill→restart ms",
            "kill→checkpoint ms"
        );
        for c in self.cycles.iter().chain(self.outage.iter()) {
            let label = if c.kind == "outage" {
                format!("{}*", c.cycle)
            } else {
                c.cycle.to_string()
            };
            let [kill_at, resumed, lost, restart, checkpoint] = c.figure_cells();
            let _ = writeln!(
                out,
                "{:<7} {:>4} {:>8} {:>12} {:>10} {:>16} {:>19}  {}",
                label, c.task, kill_at, resumed, lost, restart, checkpoint, c.verdict
            );
        }
        if let Some(o) = &self.outage {
            let _ = writeln!(
                out,
                "{}* killed while the controller was down for {} ms (invariant 6)",
                o.cycle,
                self.outage_ms.unwrap_or(0)
            );
        }
        if let Some(g) = &self.graceful_stop {
            let _ = writeln!(
                out,
                "graceful stop (SIGINT) at {}: {}, flag {}, checkpoint {}, next start {}, continued from {}",
                opt(g.at_pct.map(|p| format!("{p}%"))),
                opt(g.exit.clone()),
                match g.flag_after_stop {
                    Some(true) => "STILL SET",
                    Some(false) => "cleared",
                    None => "?",
                },
                opt(g.counter_after_stop.map(|c| format!("step_{c} kept"))),
                match g.next_start_was_recovery {
                    Some(true) => "taken for a RECOVERY",
                    Some(false) => "normal",
                    None => "?",
                },
                opt(g.continued_from.map(|p| format!("{p}%"))),
            );
        }
        let _ = writeln!(out);
        if let Some(p) = self.pattern {
            let _ = writeln!(out, "pattern: {p}");
        }
        if !self.keys.is_empty() {
            let _ = writeln!(out, "keys:    {}", self.keys.join(", "));
        }
        for r in &self.recoveries {
            let _ = writeln!(out, "recovered: {r}");
        }
        for inv in &self.invariants {
            let mark = match inv.status {
                "held" => "ok  ",
                "violated" => "FAIL",
                _ => "skip",
            };
            let _ = write!(out, "{mark} {}. {}", inv.id, inv.name);
            if let Some(reason) = &inv.reason {
                let _ = write!(out, " — {}: {reason}", inv.status.replace('_', " "));
            }
            let _ = writeln!(out);
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(out);
            for w in &self.warnings {
                let _ = writeln!(out, "warning: {w}");
            }
        }
        for inv in self.invariants.iter().filter(|i| i.status == "violated") {
            for v in &inv.violations {
                let _ = writeln!(out);
                let _ = writeln!(out, "invariant {} violated: {}", v.invariant, v.message);
                for e in &v.evidence {
                    let _ = writeln!(out, "    {}", line(e, zone));
                }
            }
        }
        let _ = writeln!(out);
        if let Some(resolution) = &self.resolution {
            let _ = writeln!(out, "observed: {resolution}");
        }
        let _ = writeln!(out, "judged:   {}", self.basis.text);
        let _ = writeln!(out);
        let violated = self.violated();
        // The verdict line and the exit code come from the same `ok`.
        if self.ok {
            let _ = writeln!(
                out,
                "verify: PASS — every checked invariant held ({} kill cycles)",
                self.cycles.len()
            );
        } else if violated.is_empty() {
            let _ = writeln!(
                out,
                "verify: FAIL — the run did not complete its plan (see the warnings)"
            );
        } else {
            let list: Vec<String> = violated.iter().map(|i| i.to_string()).collect();
            let _ = writeln!(out, "verify: FAIL — invariant {} violated", list.join(", "));
        }
        // Messages and evidence quote worker output and stored values.
        escape_controls_keep_newlines(&out).into_owned()
    }
}
