//! The cluster API's deployments, assignments and instance statuses, in the
//! original's shapes (`plum-cluster-api.md` §2–§4), and its failover pass:
//! the assignments of a node whose heartbeats stopped for the TTL are parked
//! (desired `Stopped`, kept on the dead node) and re-created under a new
//! instance id on a healthy node, as the original does. Unlike the original,
//! an assignment whose worker finished (latest status `Exited`) is left where
//! it is: there is nothing to resume, and moving it would run the work again.
//!
//! Target choice, on purpose unlike the original's uniform random pick: the
//! healthy node with the fewest running assignments, ties by node id, so a
//! failover is repeatable and spreads load.

use super::heartbeats::{NodeRegistry, Now};
use super::relock;
use crate::cluster::model::{
    Assignment, CreatedDeployment, DeploymentDetail, DeploymentRecord, DeploymentSummary,
    DesiredState, InstancePhase, LastReport, NewDeployment, StatusReport,
};
use anyhow::{Context, Result};
use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the failover pass runs at the latest (the original's
/// `FAILOVER_INTERVAL_SEC`); it also runs the moment a node's TTL or
/// presence grace runs out.
pub const FAILOVER_INTERVAL: Duration = Duration::from_secs(1);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deployments (
    deployment_id TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    labels        TEXT,
    status        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    instance_id   TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL,
    node_id       TEXT NOT NULL,
    desired       TEXT NOT NULL,
    artifact_url  TEXT NOT NULL,
    start_cmd     TEXT NOT NULL,
    app_name      TEXT NOT NULL,
    app_version   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS replacements (
    instance_id     TEXT PRIMARY KEY,
    new_instance_id TEXT NOT NULL,
    to_node         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS statuses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT    NOT NULL,
    phase       TEXT    NOT NULL,
    exit_code   INTEGER NOT NULL,
    healthy     INTEGER NOT NULL,
    ts_unix     INTEGER NOT NULL
);";

/// A database made before statuses carried a reason and a time in
/// milliseconds (plumdash's) gets the columns, empty.
fn add_status_columns(conn: &Connection) -> Result<()> {
    for (column, kind) in [("reason", "TEXT"), ("ts_ms", "INTEGER")] {
        let has = conn
            .prepare("SELECT 1 FROM pragma_table_info('statuses') WHERE name = ?1")?
            .exists([column])?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE statuses ADD COLUMN {column} {kind}"))?;
        }
    }
    Ok(())
}

/// The tables hold each state as its word on the wire.
macro_rules! sql_word {
    ($($state:ty),+) => {$(
        impl ToSql for $state {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $state {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                String::column_result(value).map(<$state>::from)
            }
        }
    )+};
}

sql_word!(DesiredState, InstancePhase);

/// One migration done by a failover pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    pub instance_id: String,
    pub new_instance_id: String,
    pub from_node: String,
    pub to_node: String,
}

/// Why an instance's writes are refused: a failover moved its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub new_instance_id: String,
    pub to_node: String,
}

/// The deployments, assignments and statuses tables, on their own connection.
pub struct Deployments {
    conn: Mutex<Connection>,
    /// Every instance a failover replaced (the `replacements` table, kept
    /// here too so a write from any other instance is let through without a
    /// query), with its writes refused since start (`fencedWrites`).
    replaced: Mutex<HashMap<String, u64>>,
    /// Node ids whose assignments changed: the `nodeId` stream's wake-ups.
    notify: tokio::sync::broadcast::Sender<String>,
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| anyhow::anyhow!("reading random bytes for an id: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

impl Deployments {
    /// Opens the tables; the nodes table must exist (`NodeRegistry::open` first).
    pub fn open(db: &Path) -> Result<Deployments> {
        let conn = super::store::connect(db)?;
        conn.execute_batch(SCHEMA)
            .and_then(|()| conn.execute_batch(super::apps::SCHEMA))
            .with_context(|| format!("creating the cluster tables in {}", db.display()))?;
        add_status_columns(&conn)
            .with_context(|| format!("adding the statuses' columns in {}", db.display()))?;
        let replaced = {
            let mut stmt = conn
                .prepare("SELECT instance_id FROM replacements")
                .context("reading the replaced instances")?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .context("reading the replaced instances")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .context("reading the replaced instances")?;
            ids.into_iter().map(|id| (id, 0)).collect()
        };
        let (notify, _) = tokio::sync::broadcast::channel(64);
        Ok(Deployments {
            conn: Mutex::new(conn),
            replaced: Mutex::new(replaced),
            notify,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        relock(&self.conn)
    }

    /// Wake-ups for the agents of one node (`/v1/stream?nodeId=`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.notify.subscribe()
    }

    fn publish(&self, node: &str) {
        let _ = self.notify.send(node.to_string());
    }

    pub(super) fn create(&self, new: NewDeployment) -> Result<CreatedDeployment> {
        let id = random_hex(16)?;
        let mut conn = self.conn();
        let tx = conn.transaction().context("creating a deployment")?;
        tx.execute(
            "INSERT INTO deployments (deployment_id, name, labels, status) VALUES (?1, ?2, ?3, ?4)",
            params![
                id,
                new.name,
                new.labels.map(|l| Value::Object(l).to_string()),
                DesiredState::Stopped
            ],
        )
        .context("creating a deployment")?;
        let mut instances = Vec::new();
        let mut nodes = Vec::new();
        for entry in &new.entries {
            // As the original: an uploaded artifact names its app (meta.ini);
            // the request's own appName/appVersion (plumdash's) come second.
            let (app_name, app_version) = artifact_app(&tx, &entry.artifact_url)?
                .filter(|_| entry.app_name.is_empty())
                .unwrap_or_else(|| (entry.app_name.clone(), entry.app_version.clone()));
            for (node, count) in &entry.replicas {
                for _ in 0..*count {
                    let iid = format!("{id}-{}", random_hex(4)?);
                    tx.execute(
                        "INSERT INTO assignments VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        params![
                            iid,
                            id,
                            node,
                            DesiredState::Running,
                            entry.artifact_url,
                            entry.start_cmd,
                            app_name,
                            app_version
                        ],
                    )
                    .context("creating an assignment")?;
                    instances.push(iid);
                    nodes.push(node.clone());
                }
            }
        }
        tx.commit().context("creating a deployment")?;
        drop(conn);
        for node in nodes {
            self.publish(&node);
        }
        Ok(CreatedDeployment {
            deployment_id: id,
            instances,
        })
    }

    /// `start` or `stop`: the status, and `desired` on all its rows.
    pub(super) fn set_running(&self, id: &str, running: bool) -> Result<Option<()>> {
        let state = if running {
            DesiredState::Running
        } else {
            DesiredState::Stopped
        };
        let conn = self.conn();
        let n = conn
            .execute(
                "UPDATE deployments SET status = ?2 WHERE deployment_id = ?1",
                params![id, state],
            )
            .context("updating a deployment")?;
        if n == 0 {
            return Ok(None);
        }
        conn.execute(
            "UPDATE assignments SET desired = ?2 WHERE deployment_id = ?1",
            params![id, state],
        )
        .context("updating its assignments")?;
        let nodes = nodes_of(&conn, "deployment_id = ?1", id)?;
        drop(conn);
        for node in nodes {
            self.publish(&node);
        }
        Ok(Some(()))
    }

    pub(super) fn list(&self) -> Result<Vec<DeploymentSummary>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT d.deployment_id, d.name, d.labels, d.status,
                        (SELECT COUNT(*) FROM assignments a WHERE a.deployment_id = d.deployment_id)
                 FROM deployments d ORDER BY d.deployment_id",
            )
            .context("listing deployments")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DeploymentSummary {
                    deployment_id: r.get(0)?,
                    name: r.get(1)?,
                    labels: labels(r.get(2)?),
                    status: r.get(3)?,
                    instances: r.get(4)?,
                })
            })
            .context("listing deployments")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading deployments")?;
        Ok(rows)
    }

    pub(super) fn get(&self, id: &str) -> Result<Option<DeploymentDetail>> {
        let conn = self.conn();
        let deployment = conn
            .query_row(
                "SELECT deployment_id, name, labels, status FROM deployments WHERE deployment_id = ?1",
                params![id],
                |r| {
                    Ok(DeploymentRecord {
                        deployment_id: r.get(0)?,
                        name: r.get(1)?,
                        labels: labels(r.get(2)?),
                        status: r.get(3)?,
                    })
                },
            )
            .optional()
            .context("reading a deployment")?;
        let Some(deployment) = deployment else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare(
                "SELECT instance_id, node_id, desired, artifact_url, start_cmd, app_name, app_version
                 FROM assignments WHERE deployment_id = ?1 ORDER BY instance_id",
            )
            .context("reading its assignments")?;
        let assignments = stmt
            .query_map(params![id], |r| {
                let iid = r.get::<_, String>(0)?;
                // Extension: writes refused since this controller started.
                let fenced = self.refused_count(&iid);
                Ok(Assignment {
                    instance_id: iid,
                    // The deployment's own rows name no deployment (as the original).
                    deployment_id: String::new(),
                    node_id: r.get(1)?,
                    desired: r.get(2)?,
                    artifact_url: r.get(3)?,
                    start_cmd: r.get(4)?,
                    app_name: r.get(5)?,
                    app_version: r.get(6)?,
                    last_report: None,
                    fenced_writes: Some(fenced),
                })
            })
            .context("reading its assignments")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading its assignments")?;
        Ok(Some(DeploymentDetail {
            deployment,
            assignments: Some(assignments),
        }))
    }

    /// A node's assignments of Running deployments, with each one's latest status.
    pub fn for_node(&self, node: &str) -> Result<Vec<Assignment>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT a.instance_id, a.deployment_id, a.desired, a.artifact_url, a.start_cmd,
                        a.app_name, a.app_version,
                        (SELECT s.phase FROM statuses s WHERE s.instance_id = a.instance_id
                           ORDER BY s.ts_unix DESC, s.id DESC LIMIT 1),
                        (SELECT s.healthy FROM statuses s WHERE s.instance_id = a.instance_id
                           ORDER BY s.ts_unix DESC, s.id DESC LIMIT 1),
                        (SELECT s.ts_unix FROM statuses s WHERE s.instance_id = a.instance_id
                           ORDER BY s.ts_unix DESC, s.id DESC LIMIT 1),
                        (SELECT s.reason FROM statuses s WHERE s.instance_id = a.instance_id
                           ORDER BY s.ts_unix DESC, s.id DESC LIMIT 1),
                        (SELECT s.ts_ms FROM statuses s WHERE s.instance_id = a.instance_id
                           ORDER BY s.ts_unix DESC, s.id DESC LIMIT 1)
                 FROM assignments a JOIN deployments d ON d.deployment_id = a.deployment_id
                 WHERE a.node_id = ?1 AND d.status = ?2 ORDER BY a.instance_id",
            )
            .context("listing assignments")?;
        let items = stmt
            .query_map(params![node, DesiredState::Running], |r| {
                Ok(Assignment {
                    instance_id: r.get(0)?,
                    deployment_id: r.get(1)?,
                    // A node's own list names no node (as the original).
                    node_id: String::new(),
                    desired: r.get(2)?,
                    artifact_url: r.get(3)?,
                    start_cmd: r.get(4)?,
                    app_name: r.get(5)?,
                    app_version: r.get(6)?,
                    last_report: Some(LastReport {
                        phase: r.get::<_, Option<InstancePhase>>(7)?.unwrap_or_default(),
                        healthy: r.get::<_, Option<i64>>(8)?.unwrap_or(0) != 0,
                        last_report_at: r.get::<_, Option<i64>>(9)?.unwrap_or(0),
                        reason: r.get::<_, Option<String>>(10)?.unwrap_or_default(),
                        last_report_at_ms: r.get(11)?,
                    }),
                    fenced_writes: None,
                })
            })
            .context("listing assignments")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading assignments")?;
        Ok(items)
    }

    /// `DELETE /v1/deployments/{id}`: the deployment, its assignments and
    /// their statuses (the original cascades); `None` for an unknown id.
    pub(super) fn remove(&self, id: &str) -> Result<Option<()>> {
        let mut conn = self.conn();
        let nodes = nodes_of(&conn, "deployment_id = ?1", id)?;
        let tx = conn.transaction().context("deleting a deployment")?;
        let n = tx
            .execute(
                "DELETE FROM deployments WHERE deployment_id = ?1",
                params![id],
            )
            .context("deleting a deployment")?;
        if n == 0 {
            return Ok(None);
        }
        tx.execute(
            "DELETE FROM statuses WHERE instance_id IN
               (SELECT instance_id FROM assignments WHERE deployment_id = ?1)",
            params![id],
        )
        .context("deleting its statuses")?;
        tx.execute(
            "DELETE FROM assignments WHERE deployment_id = ?1",
            params![id],
        )
        .context("deleting its assignments")?;
        tx.commit().context("deleting a deployment")?;
        drop(conn);
        for node in nodes {
            self.publish(&node);
        }
        Ok(Some(()))
    }

    /// The node an instance is assigned to, if it exists.
    pub fn node_of(&self, iid: &str) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT node_id FROM assignments WHERE instance_id = ?1",
                params![iid],
                |r| r.get(0),
            )
            .optional()
            .context("finding an instance's node")
    }

    pub(super) fn set_desired(&self, iid: &str, desired: &DesiredState) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "UPDATE assignments SET desired = ?2 WHERE instance_id = ?1",
            params![iid, desired],
        )
        .context("updating an assignment")?;
        let nodes = nodes_of(&conn, "instance_id = ?1", iid)?;
        drop(conn);
        for node in nodes {
            self.publish(&node);
        }
        Ok(())
    }

    pub(super) fn remove_assignment(&self, iid: &str) -> Result<()> {
        let conn = self.conn();
        let nodes = nodes_of(&conn, "instance_id = ?1", iid)?;
        conn.execute(
            "DELETE FROM assignments WHERE instance_id = ?1",
            params![iid],
        )
        .context("deleting an assignment")?;
        drop(conn);
        for node in nodes {
            self.publish(&node);
        }
        Ok(())
    }

    pub(super) fn report(&self, s: &StatusReport) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO statuses (instance_id, phase, exit_code, healthy, ts_unix, reason,
                                       ts_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    s.instance_id,
                    s.phase,
                    s.exit_code,
                    s.healthy,
                    s.ts_unix,
                    (!s.reason.is_empty()).then_some(&s.reason),
                    s.ts_ms
                ],
            )
            .context("recording a status")?;
        // Unlike the original, a report wakes its node's stream too, so a
        // dashboard following it sees the phase at once (the agent merely syncs).
        let nodes = nodes_of(&self.conn(), "instance_id = ?1", &s.instance_id)?;
        for node in nodes {
            self.publish(&node);
        }
        Ok(())
    }

    /// The fence on `instance`: set when a failover parked it and moved its
    /// work, as long as it stays parked and its deployment runs (a stopped
    /// deployment's workers may still write their last words).
    pub fn fence(&self, instance: &str) -> Result<Option<Fence>> {
        if !self.was_replaced(instance) {
            return Ok(None);
        }
        self.conn()
            .query_row(
                "SELECT r.new_instance_id, r.to_node FROM replacements r
                 JOIN assignments a ON a.instance_id = r.instance_id
                 JOIN deployments d ON d.deployment_id = a.deployment_id
                 WHERE r.instance_id = ?1 AND a.desired = ?2 AND d.status = ?3",
                params![instance, DesiredState::Stopped, DesiredState::Running],
                |r| {
                    Ok(Fence {
                        new_instance_id: r.get(0)?,
                        to_node: r.get(1)?,
                    })
                },
            )
            .optional()
            .context("reading an instance's fence")
    }

    fn replaced(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        relock(&self.replaced)
    }

    /// Whether a failover ever replaced `instance` (no query: the write
    /// path asks this first).
    pub fn was_replaced(&self, instance: &str) -> bool {
        self.replaced().contains_key(instance)
    }

    /// Counts one write refused by the fence on `instance`.
    pub fn refused(&self, instance: &str) {
        *self.replaced().entry(instance.to_string()).or_default() += 1;
    }

    fn refused_count(&self, instance: &str) -> u64 {
        self.replaced().get(instance).copied().unwrap_or(0)
    }

    /// Whether a node names any assignment (the original refuses to delete it then).
    pub fn node_in_use(&self, node: &str) -> Result<bool> {
        self.conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM assignments WHERE node_id = ?1)",
                params![node],
                |r| r.get::<_, bool>(0),
            )
            .context("checking a node's assignments")
    }

    /// One failover pass: every Running-deployment row with desired Running
    /// on a node in `lost` (known, and not healthy) is parked and re-created
    /// on the healthy node with the fewest running rows, unless its worker
    /// finished. Nothing moves when no node is healthy; nor does a row on a
    /// node that never beat (as the original, which moves only the rows of
    /// the nodes it has: a mistyped node, or one whose agent is not up yet).
    pub fn failover_pass(&self, healthy: &[String], lost: &[String]) -> Result<Vec<Migration>> {
        if healthy.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let tx = conn.transaction().context("a failover pass")?;
        let orphans: Vec<(String, String)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT a.instance_id, a.node_id FROM assignments a
                     JOIN deployments d ON d.deployment_id = a.deployment_id
                     WHERE d.status = ?1 AND a.desired = ?1
                       AND (SELECT s.phase FROM statuses s
                            WHERE s.instance_id = a.instance_id
                            ORDER BY s.id DESC LIMIT 1) IS NOT ?2
                     ORDER BY a.instance_id",
                )
                .context("finding orphaned assignments")?;
            let rows = stmt
                .query_map(params![DesiredState::Running, InstancePhase::Exited], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .context("finding orphaned assignments")?
                .collect::<rusqlite::Result<Vec<_>>>()
                .context("finding orphaned assignments")?;
            rows.into_iter()
                .filter(|(_, node)| lost.contains(node))
                .collect()
        };
        let mut load: HashMap<String, usize> = healthy.iter().map(|n| (n.clone(), 0)).collect();
        {
            let mut stmt = tx
                .prepare(
                    "SELECT node_id, COUNT(*) FROM assignments WHERE desired = ?1 GROUP BY node_id",
                )
                .context("counting assignments")?;
            let rows = stmt
                .query_map(params![DesiredState::Running], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .context("counting assignments")?;
            for row in rows {
                let (node, n) = row.context("counting assignments")?;
                if let Some(l) = load.get_mut(&node) {
                    *l = usize::try_from(n).unwrap_or(0);
                }
            }
        }
        let mut moved = Vec::new();
        for (iid, from) in orphans {
            let Some(to) = healthy
                .iter()
                .min_by_key(|n| (load.get(*n).copied().unwrap_or(0), (*n).clone()))
                .cloned()
            else {
                break;
            };
            let deployment: String = tx
                .query_row(
                    "SELECT deployment_id FROM assignments WHERE instance_id = ?1",
                    params![iid],
                    |r| r.get(0),
                )
                .context("reading an orphaned assignment")?;
            let new_iid = format!("{deployment}-{}", random_hex(4)?);
            tx.execute(
                "UPDATE assignments SET desired = ?2 WHERE instance_id = ?1",
                params![iid, DesiredState::Stopped],
            )
            .context("parking an assignment")?;
            tx.execute(
                "INSERT INTO assignments
                 SELECT ?2, deployment_id, ?3, ?4, artifact_url, start_cmd, app_name, app_version
                 FROM assignments WHERE instance_id = ?1",
                params![iid, new_iid, to, DesiredState::Running],
            )
            .context("re-creating an assignment")?;
            tx.execute(
                "INSERT OR REPLACE INTO replacements (instance_id, new_instance_id, to_node)
                 VALUES (?1, ?2, ?3)",
                params![iid, new_iid, to],
            )
            .context("fencing a moved assignment")?;
            *load.entry(to.clone()).or_default() += 1;
            moved.push(Migration {
                instance_id: iid,
                new_instance_id: new_iid,
                from_node: from,
                to_node: to,
            });
        }
        tx.commit().context("a failover pass")?;
        drop(conn);
        {
            let mut replaced = self.replaced();
            for m in &moved {
                replaced.entry(m.instance_id.clone()).or_default();
            }
        }
        for m in &moved {
            self.publish(&m.to_node);
        }
        Ok(moved)
    }
}

/// The app name and version of the uploaded artifact at `url`, if it is one.
fn artifact_app(conn: &Connection, url: &str) -> Result<Option<(String, String)>> {
    if url.is_empty() {
        return Ok(None);
    }
    conn.query_row(
        "SELECT app_name, version FROM artifacts WHERE path = ?1",
        params![url],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .context("reading the artifact a deployment names")
}

fn labels(text: Option<String>) -> Value {
    text.and_then(|l| serde_json::from_str(&l).ok())
        .unwrap_or(Value::Null)
}

fn nodes_of(conn: &Connection, filter: &str, arg: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT DISTINCT node_id FROM assignments WHERE {filter}"
        ))
        .context("finding the nodes to notify")?;
    let rows = stmt
        .query_map(params![arg], |r| r.get(0))
        .context("finding the nodes to notify")?
        .collect::<rusqlite::Result<Vec<String>>>()
        .context("finding the nodes to notify")?;
    Ok(rows)
}

/// Runs failover passes until `stop`: every `interval`, and at once when a
/// node's TTL or presence grace runs out (the earliest such moment is
/// re-planned after every pass and whenever a presence stream opens or closes).
pub async fn failover_loop(
    deployments: Arc<Deployments>,
    nodes: Arc<NodeRegistry>,
    interval: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let now = Instant::now();
        let wait = nodes
            .presence()
            .next_change(now)
            .map_or(interval, |t| t.saturating_duration_since(now).min(interval));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = nodes.presence().changed() => continue,
        }
        let d = deployments.clone();
        let n = nodes.clone();
        let pass = move || {
            let (healthy, lost) = n.healthy_and_lost(Now::real())?;
            d.failover_pass(&healthy, &lost)
        };
        match tokio::task::spawn_blocking(pass).await {
            Ok(Ok(moved)) => {
                for m in moved {
                    tracing::info!(
                        "failover: {} on {} (unhealthy) → {} on {}",
                        m.instance_id,
                        m.from_node,
                        m.new_instance_id,
                        m.to_node
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!("failover pass failed: {e:#}"),
            Err(e) => tracing::warn!("failover pass failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn deploy(d: &Deployments, replicas: &[(&str, u32)]) -> String {
        let new: NewDeployment = serde_json::from_value(serde_json::json!({
            "name": "kv-demo",
            "entries": [{"artifactUrl": "a.zip",
                         "replicas": replicas.iter().cloned().collect::<BTreeMap<_, _>>()}],
        }))
        .unwrap();
        let id = d.create(new).unwrap().deployment_id;
        d.set_running(&id, true).unwrap();
        id
    }

    #[test]
    fn failover_moves_to_the_least_loaded_healthy_node_and_never_when_none_is() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kv.db");
        let _nodes = NodeRegistry::open(&db, Duration::from_secs(3), Duration::ZERO).unwrap();
        let d = Deployments::open(&db).unwrap();
        deploy(&d, &[("nodeA", 2), ("nodeC", 1)]);
        // No healthy node: nothing moves.
        let lost = ["nodeA".to_string()];
        assert!(d.failover_pass(&[], &lost).unwrap().is_empty());
        // nodeB and nodeC healthy; nodeC already runs one: both of nodeA's go to
        // nodeB first, then alternate by load (ties by id).
        let healthy = ["nodeB".to_string(), "nodeC".to_string()];
        let moved = d.failover_pass(&healthy, &lost).unwrap();
        let targets: Vec<&str> = moved.iter().map(|m| m.to_node.as_str()).collect();
        assert_eq!(targets, ["nodeB", "nodeB"], "{moved:?}");
        assert!(moved.iter().all(|m| m.from_node == "nodeA"));
        assert_eq!(d.for_node("nodeB").unwrap().len(), 2);
        assert!(d
            .for_node("nodeA")
            .unwrap()
            .iter()
            .all(|a| a.desired == DesiredState::Stopped));
        // Parked rows stay parked, and fenced while the deployment runs.
        assert!(d.failover_pass(&healthy, &lost).unwrap().is_empty());
        let parked = &moved[0].instance_id;
        let fence = d.fence(parked).unwrap().expect("fenced");
        assert_eq!(fence.new_instance_id, moved[0].new_instance_id);
        assert_eq!(fence.to_node, "nodeB");
        assert_eq!(d.fence(&moved[0].new_instance_id).unwrap(), None);
        // A restarted controller still knows the fence.
        drop(d);
        let d = Deployments::open(&db).unwrap();
        assert!(d.was_replaced(parked) && d.fence(parked).unwrap().is_some());
        // Taken back by hand: no longer fenced.
        d.set_desired(parked, &DesiredState::Running).unwrap();
        assert_eq!(d.fence(parked).unwrap(), None);
    }

    #[test]
    fn a_finished_worker_is_not_moved_and_a_crashed_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kv.db");
        let _nodes = NodeRegistry::open(&db, Duration::from_secs(3), Duration::ZERO).unwrap();
        let d = Deployments::open(&db).unwrap();
        deploy(&d, &[("nodeA", 2)]);
        let rows = d.for_node("nodeA").unwrap();
        let status = |iid: &str, phase: InstancePhase| StatusReport {
            instance_id: iid.to_string(),
            phase,
            exit_code: 0,
            healthy: false,
            ts_unix: 1,
            reason: String::new(),
            ts_ms: None,
        };
        d.report(&status(&rows[0].instance_id, InstancePhase::Running))
            .unwrap();
        d.report(&status(&rows[0].instance_id, InstancePhase::Exited))
            .unwrap();
        d.report(&status(&rows[1].instance_id, InstancePhase::Exited))
            .unwrap();
        d.report(&status(&rows[1].instance_id, InstancePhase::Failed))
            .unwrap();
        let moved = d
            .failover_pass(&["nodeB".to_string()], &["nodeA".to_string()])
            .unwrap();
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert_eq!(moved[0].instance_id, rows[1].instance_id);
    }

    #[test]
    fn a_row_on_a_node_that_never_beat_is_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kv.db");
        let _nodes = NodeRegistry::open(&db, Duration::from_secs(3), Duration::ZERO).unwrap();
        let d = Deployments::open(&db).unwrap();
        deploy(&d, &[("nodeZ", 1), ("nodeA", 1)]);
        // nodeA is known and lost; nodeZ never beat: only nodeA's row moves.
        let moved = d
            .failover_pass(&["nodeB".to_string()], &["nodeA".to_string()])
            .unwrap();
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert_eq!(moved[0].from_node, "nodeA");
        assert!(d
            .for_node("nodeZ")
            .unwrap()
            .iter()
            .all(|a| a.desired == DesiredState::Running));
    }
}
