//! The cluster API's nodes, in the original's shapes: agents beat with
//! `POST /v1/nodes/heartbeat {nodeId, ip, labels?}`, and `GET /v1/nodes`
//! lists them with a health computed from the last beat against a TTL
//! (`now − lastSeen ≤ TTL`). Nodes live in the controller's SQLite file, so
//! they survive a restart; they never expire.
//!
//! Differences from the original, on purpose: the heartbeat answer carries
//! the TTL actually applied (the original hard-codes `{"ttlSec":15}` against
//! a 3 s TTL); a malformed body is a 400 with a reason; a node this
//! controller has seen is judged to the millisecond, and a plumdash agent's
//! death is seen when its presence stream closes (`presence.rs`); the stored
//! whole seconds judge only nodes not seen since start.

use super::presence::Presence;
use super::relock;
use crate::cluster::model::{HealthState, Node};
use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A node is Healthy while its last beat is at most this old (the original's
/// `HEARTBEAT_TTL_SEC` default).
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(3);
/// How long a plumdash agent's closed presence stream may stay closed before
/// its node is judged lost (the agent re-opens a dropped one at once).
pub const PRESENCE_GRACE: Duration = Duration::from_millis(300);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS nodes (
    node_id   TEXT    PRIMARY KEY,
    ip        TEXT    NOT NULL,
    labels    TEXT,
    last_seen INTEGER NOT NULL
);";

/// The nodes table, on its own connection to the controller's file.
pub struct NodeRegistry {
    conn: Mutex<Connection>,
    ttl: Duration,
    presence: Arc<Presence>,
}

/// A moment as the nodes are judged by: unix seconds (stored, on the wire)
/// and the monotonic instant (in memory).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub secs: i64,
    pub at: Instant,
}

impl Now {
    pub fn real() -> Now {
        Now {
            secs: i64::try_from(crate::clock::unix_secs(SystemTime::now())).unwrap_or(i64::MAX),
            at: Instant::now(),
        }
    }

    /// `self` moved on by `d` on both clocks.
    #[cfg(test)]
    pub fn after(self, d: Duration) -> Now {
        Now {
            secs: self.secs + i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            at: self.at + d,
        }
    }
}

impl NodeRegistry {
    /// The TTL health is judged by.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The in-memory liveness (beats to the millisecond, presence streams).
    pub fn presence(&self) -> &Arc<Presence> {
        &self.presence
    }

    pub fn open(db: &Path, ttl: Duration, grace: Duration) -> Result<NodeRegistry> {
        let conn = super::store::connect(db)?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("creating the nodes table in {}", db.display()))?;
        Ok(NodeRegistry {
            conn: Mutex::new(conn),
            ttl,
            presence: Arc::new(Presence::new(ttl, grace)),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // One statement at a time: a panic mid-statement leaves nothing half-done.
        relock(&self.conn)
    }

    /// Records a beat at `now`.
    pub fn beat(&self, node_id: &str, ip: &str, labels: Option<&Value>, now: Now) -> Result<()> {
        let labels = labels.map(Value::to_string);
        self.conn()
            .execute(
                "INSERT INTO nodes (node_id, ip, labels, last_seen) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(node_id) DO UPDATE SET ip = ?2, labels = ?3, last_seen = ?4",
                params![node_id, ip, labels, now.secs],
            )
            .context("recording a heartbeat")?;
        self.presence.beat(node_id, now.at);
        Ok(())
    }

    fn health(&self, node_id: &str, last_seen: i64, now: Now) -> HealthState {
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let healthy = self
            .presence
            .healthy(node_id, now.at)
            .unwrap_or(now.secs.saturating_sub(last_seen) <= ttl);
        if healthy {
            HealthState::Healthy
        } else {
            HealthState::Unhealthy
        }
    }

    /// The ids of the nodes healthy at `now`, sorted.
    pub fn healthy(&self, now: Now) -> Result<Vec<String>> {
        Ok(self
            .list(now)?
            .into_iter()
            .filter(Node::is_healthy)
            .map(|n| n.node_id)
            .collect())
    }

    /// The ids of the nodes healthy at `now`, and of those known but not
    /// healthy (lost), each sorted.
    pub fn healthy_and_lost(&self, now: Now) -> Result<(Vec<String>, Vec<String>)> {
        let (healthy, lost): (Vec<Node>, Vec<Node>) =
            self.list(now)?.into_iter().partition(Node::is_healthy);
        let ids = |nodes: Vec<Node>| nodes.into_iter().map(|n| n.node_id).collect();
        Ok((ids(healthy), ids(lost)))
    }

    /// Every node, sorted by id, with its health as of `now`.
    pub fn list(&self, now: Now) -> Result<Vec<Node>> {
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
                n.health = Some(self.health(&n.node_id, n.last_seen, now));
                n
            })
            .collect())
    }

    pub fn get(&self, node_id: &str) -> Result<Option<Node>> {
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

fn row_to_view(row: &rusqlite::Row<'_>) -> rusqlite::Result<Node> {
    let labels: Option<String> = row.get(2)?;
    Ok(Node {
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
    fn health_follows_the_ttl_and_nodes_sort_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kv.db");
        let nodes = NodeRegistry::open(&db, HEARTBEAT_TTL, PRESENCE_GRACE).unwrap();
        let t0 = Now::real();
        nodes.beat("nodeB", "10.0.0.2", None, t0).unwrap();
        nodes
            .beat(
                "nodeA",
                "10.0.0.1",
                Some(&serde_json::json!({"zone": "a"})),
                t0,
            )
            .unwrap();
        let at_ttl = nodes.list(t0.after(HEARTBEAT_TTL)).unwrap();
        assert_eq!(
            at_ttl
                .iter()
                .map(|n| n.node_id.as_str())
                .collect::<Vec<_>>(),
            ["nodeA", "nodeB"]
        );
        assert!(at_ttl.iter().all(Node::is_healthy));
        assert_eq!(at_ttl[0].labels, serde_json::json!({"zone": "a"}));
        assert_eq!(at_ttl[1].labels, Value::Null);
        let past = t0.after(HEARTBEAT_TTL + Duration::from_millis(1));
        assert!(nodes
            .list(past)
            .unwrap()
            .iter()
            .all(|n| n.health == Some(HealthState::Unhealthy)));
        nodes.beat("nodeB", "10.0.0.2", None, past).unwrap();
        let health: Vec<_> = nodes
            .list(past)
            .unwrap()
            .into_iter()
            .map(|n| n.health)
            .collect();
        assert_eq!(
            health,
            [Some(HealthState::Unhealthy), Some(HealthState::Healthy)]
        );
        assert_eq!(nodes.healthy(past).unwrap(), ["nodeB"]);
        // A restarted controller has only the stored whole seconds.
        drop(nodes);
        let reopened = NodeRegistry::open(&db, HEARTBEAT_TTL, PRESENCE_GRACE).unwrap();
        let later = Now::real();
        let by_secs = Now {
            secs: past.secs + 3,
            at: later.at,
        };
        assert_eq!(reopened.healthy(by_secs).unwrap(), ["nodeB"]);
        let by_secs = Now {
            secs: past.secs + 4,
            at: later.at,
        };
        assert!(reopened.healthy(by_secs).unwrap().is_empty());
    }
}
