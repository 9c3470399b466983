//! The cluster API's nodes, in the original's shapes: agents beat with
//! `POST /v1/nodes/heartbeat {nodeId, ip, labels?}`, and `GET /v1/nodes`
//! lists them with a health computed from the last beat against a TTL
//! (`now − lastSeen ≤ TTL`, whole seconds, as the original does). Nodes live in
//! the controller's SQLite file, so they survive a restart; they never expire.
//!
//! Differences from the original, on purpose: the heartbeat answer carries
//! the TTL actually applied (the original hard-codes `{"ttlSec":15}` against
//! a 3 s TTL), and a malformed body is a 400 with a reason.

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// A node is Healthy while its last beat is at most this old (the original's
/// `HEARTBEAT_TTL_SEC` default).
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(3);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    node_id   TEXT    PRIMARY KEY,
    ip        TEXT    NOT NULL,
    labels    TEXT,
    last_seen INTEGER NOT NULL
);";

/// One node as `GET /v1/nodes` shows it (`health` only in the list, as the
/// original).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub node_id: String,
    pub ip: String,
    pub labels: Value,
    pub last_seen: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Heartbeat {
    pub node_id: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub labels: Option<serde_json::Map<String, Value>>,
}

/// The nodes table, on its own connection to the controller's file.
pub struct NodeRegistry {
    conn: Mutex<Connection>,
    ttl: Duration,
}

pub(super) fn now_secs() -> i64 {
    i64::try_from(crate::clock::unix_secs(SystemTime::now())).unwrap_or(i64::MAX)
}

impl NodeRegistry {
    /// The TTL health is judged by.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn open(db: &Path, ttl: Duration) -> Result<NodeRegistry> {
        let conn = super::store::connect(db)?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("creating the nodes table in {}", db.display()))?;
        Ok(NodeRegistry {
            conn: Mutex::new(conn),
            ttl,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // One statement at a time: a panic mid-statement leaves nothing half-done.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a beat at `now` (unix seconds).
    pub fn beat(&self, node_id: &str, ip: &str, labels: Option<&Value>, now: i64) -> Result<()> {
        let labels = labels.map(Value::to_string);
        self.conn()
            .execute(
                "INSERT INTO nodes (node_id, ip, labels, last_seen) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(node_id) DO UPDATE SET ip = ?2, labels = ?3, last_seen = ?4",
                params![node_id, ip, labels, now],
            )
            .context("recording a heartbeat")?;
        Ok(())
    }

    fn health(&self, last_seen: i64, now: i64) -> &'static str {
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        if now.saturating_sub(last_seen) <= ttl {
            "Healthy"
        } else {
            "Unhealthy"
        }
    }

    /// Every node, sorted by id, with its health as of `now`.
    pub fn list(&self, now: i64) -> Result<Vec<NodeView>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT node_id, ip, labels, last_seen FROM nodes ORDER BY node_id")
            .context("listing nodes")?;
        let rows = stmt
            .query_map([], row_to_view)
            .context("listing nodes")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading nodes")?;
        Ok(rows
            .into_iter()
            .map(|mut n| {
                n.health = Some(self.health(n.last_seen, now));
                n
            })
            .collect())
    }

    pub fn get(&self, node_id: &str) -> Result<Option<NodeView>> {
        self.conn()
            .query_row(
                "SELECT node_id, ip, labels, last_seen FROM nodes WHERE node_id = ?1",
                params![node_id],
                row_to_view,
            )
            .optional()
            .context("reading a node")
    }

    /// Forgets a node; false when there was none.
    pub fn remove(&self, node_id: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM nodes WHERE node_id = ?1", params![node_id])
            .context("deleting a node")?;
        Ok(n > 0)
    }
}

fn row_to_view(row: &rusqlite::Row<'_>) -> rusqlite::Result<NodeView> {
    let labels: Option<String> = row.get(2)?;
    Ok(NodeView {
        node_id: row.get(0)?,
        ip: row.get(1)?,
        labels: labels
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or(Value::Null),
        last_seen: row.get(3)?,
        health: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_ttl_in_whole_seconds_and_nodes_sort_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = NodeRegistry::open(&dir.path().join("kv.db"), HEARTBEAT_TTL).unwrap();
        nodes.beat("nodeB", "10.0.0.2", None, 100).unwrap();
        nodes
            .beat(
                "nodeA",
                "10.0.0.1",
                Some(&serde_json::json!({"zone": "a"})),
                100,
            )
            .unwrap();
        let at_ttl = nodes.list(103).unwrap();
        assert_eq!(
            at_ttl
                .iter()
                .map(|n| n.node_id.as_str())
                .collect::<Vec<_>>(),
            ["nodeA", "nodeB"]
        );
        assert!(at_ttl.iter().all(|n| n.health == Some("Healthy")));
        assert_eq!(at_ttl[0].labels, serde_json::json!({"zone": "a"}));
        assert_eq!(at_ttl[1].labels, Value::Null);
        let past = nodes.list(104).unwrap();
        assert!(past.iter().all(|n| n.health == Some("Unhealthy")));
        nodes.beat("nodeB", "10.0.0.2", None, 104).unwrap();
        let health: Vec<_> = nodes.list(104).unwrap().iter().map(|n| n.health).collect();
        assert_eq!(health, [Some("Unhealthy"), Some("Healthy")]);
    }
}
