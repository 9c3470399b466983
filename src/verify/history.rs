//! Everything that happened during a run, in order: every fact (process and
//! namespace) with its time, what the namespace looked like after it, and what
//! verify itself did. Violations quote an excerpt of it as evidence.

use crate::clock::Zone;
use crate::recovery::{Fact, TaskView, TsMs};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub ts_ms: TsMs,
    /// `process`, `kv`, `feed` or `verify`.
    pub source: &'static str,
    pub text: String,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(transparent)]
pub struct History {
    entries: Vec<HistoryEntry>,
}

impl History {
    pub fn push(&mut self, ts_ms: TsMs, source: &'static str, text: impl Into<String>) {
        self.entries.push(HistoryEntry {
            ts_ms,
            source,
            text: text.into(),
        });
    }

    /// Records a fact and the namespace as it stood after it.
    pub fn record(&mut self, at: TsMs, fact: &Fact, after: &TaskView) {
        let (source, text) = describe(fact);
        let text = if is_namespace(fact) {
            format!("{text} → {}", view_text(after))
        } else {
            text
        };
        self.push(at, source, text);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[HistoryEntry] {
        &self.entries
    }

    /// A few entries around the first one at or after `at` (`before` earlier
    /// ones, `after` later ones).
    pub fn excerpt(&self, at: TsMs, before: usize, after: usize) -> Vec<HistoryEntry> {
        let pivot = self
            .entries
            .iter()
            .position(|e| e.ts_ms >= at)
            .unwrap_or(self.entries.len().saturating_sub(1));
        let start = pivot.saturating_sub(before);
        let end = (pivot + after + 1).min(self.entries.len());
        self.entries[start..end].to_vec()
    }
}

/// `HH:MM:SS.mmm  source  text`.
pub fn line(entry: &HistoryEntry, zone: Zone) -> String {
    format!(
        "{}  {:<7} {}",
        zone.hms_millis(entry.ts_ms),
        entry.source,
        entry.text
    )
}

fn is_namespace(fact: &Fact) -> bool {
    matches!(
        fact,
        Fact::Snapshot(_) | Fact::Written(_) | Fact::Deleted { .. }
    )
}

fn describe(fact: &Fact) -> (&'static str, String) {
    match fact {
        Fact::Started { instance, pid } => ("process", format!("{instance} started (pid {pid})")),
        Fact::Attached { instance, pid } => {
            ("process", format!("{instance} found running (pid {pid})"))
        }
        Fact::Exited {
            instance,
            exit,
            requested,
        } => (
            "process",
            format!(
                "{instance} ended ({exit}){}",
                if *requested { ", as asked" } else { "" }
            ),
        ),
        Fact::RestartScheduled { instance, delay_ms } => (
            "process",
            format!("{instance} restart scheduled in {delay_ms} ms"),
        ),
        Fact::TakeoverScheduled {
            instance,
            from,
            delay_ms,
        } => (
            "process",
            format!("{instance} takes over from {from} in {delay_ms} ms"),
        ),
        Fact::Failed { instance, reason } => ("process", format!("{instance} FAILED: {reason}")),
        Fact::Frozen { instance, signal } => (
            "process",
            format!(
                "{instance} frozen by {}",
                signal.as_deref().unwrap_or("a stop signal")
            ),
        ),
        Fact::Continued { instance } => ("process", format!("{instance} continued")),
        Fact::Snapshot(entries) => ("kv", format!("snapshot of {} keys", entries.len())),
        Fact::Written(entries) => {
            let pairs: Vec<String> = entries.iter().map(pair).collect();
            let what = if entries.len() > 1 { "batch" } else { "put" };
            let writer = entries.iter().find_map(|e| e.writer.as_ref());
            ("kv", format!("{what} {}{}", pairs.join(" "), by(writer)))
        }
        Fact::Deleted { key, writer } => ("kv", format!("delete {key}{}", by(writer.as_ref()))),
        Fact::FeedDown { error } => ("feed", format!("controller unreachable: {error}")),
        Fact::FeedUp { via } => ("feed", format!("controller live ({via})")),
        Fact::FeedTrouble(t) => (
            "feed",
            format!(
                "controller sends malformed data: {} events skipped, {} dropped, {} entries unreadable",
                t.skipped,
                t.dropped,
                t.unreadable.len()
            ),
        ),
        Fact::Cluster(view) => {
            let nodes: Vec<String> = view
                .nodes
                .iter()
                .map(|n| {
                    let health = n.health.as_ref().map_or("", |h| h.as_str());
                    format!("{}={health}", n.node_id)
                })
                .collect();
            let running = view.assignments.iter().filter(|a| a.wants_running());
            let rows: Vec<String> = running
                .map(|a| format!("{}@{}", a.instance_id, a.node_id))
                .collect();
            (
                "cluster",
                format!("nodes {} running {}", nodes.join(" "), rows.join(" ")),
            )
        }
        Fact::NodeAction { node, action } => ("node", format!("{node} {}", action.json_kind())),
    }
}

/// `key=value`; bytes by their length (a binary record is no text).
fn pair(e: &crate::kv::Entry) -> String {
    match (e.value_type, e.bytes()) {
        (crate::kv::ValueType::Bytes, Some(bytes)) => format!("{}=<{} bytes>", e.key, bytes.len()),
        (crate::kv::ValueType::Bytes, None) => format!("{}=<bytes>", e.key),
        _ => format!("{}={}", e.key, e.value),
    }
}

/// ` by pid 7 (child of 5)`: who wrote it, when the controller said.
fn by(writer: Option<&crate::kv::Writer>) -> String {
    match writer.map(|w| w.pids.as_slice()) {
        Some([pid]) => format!(" by pid {pid}"),
        Some([pid, parent, ..]) => format!(" by pid {pid} (child of {parent})"),
        _ => String::new(),
    }
}

/// `progress 30%, counter 3, checkpoint step_3, flag set`, plus ` [TORN]`.
pub fn view_text(view: &TaskView) -> String {
    let show = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    format!(
        "progress {}, counter {}, checkpoint {}, flag {}{}",
        show(view.progress.map(|p| format!("{p}%"))),
        show(view.counter.map(|c| c.to_string())),
        show(view.checkpoint.clone()),
        if view.crash_flag { "set" } else { "clear" },
        if view.torn().is_some() { " [TORN]" } else { "" }
    )
}
