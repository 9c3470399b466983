//! The SQLite store behind the controller, and the change feed it publishes.
//!
//! One connection behind a mutex: every write and the sequence number that
//! orders the change feed move together, so a subscriber's snapshot and the
//! changes after it never overlap or leave a gap. Callers run these blocking
//! methods off the async workers (`spawn_blocking`).

use crate::kv::model::{BatchItem, Entry, ValueType};
use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// How many changes a slow subscriber may fall behind before it is resynced.
const CHANGE_BUFFER: usize = 4096;

/// One committed write, in commit order (`seq` grows by one per change).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    Put {
        seq: u64,
        entry: Entry,
        /// `(index, size)` when the write was part of a batch, so a feed can
        /// apply the batch as the one change it is.
        batch: Option<(usize, usize)>,
    },
    Deleted {
        seq: u64,
        namespace: String,
        key: String,
    },
}

impl Change {
    pub fn seq(&self) -> u64 {
        match self {
            Change::Put { seq, .. } | Change::Deleted { seq, .. } => *seq,
        }
    }

    pub fn namespace(&self) -> &str {
        match self {
            Change::Put { entry, .. } => &entry.namespace,
            Change::Deleted { namespace, .. } => namespace,
        }
    }
}

/// A namespace's entries as of change number `seq`.
pub struct Snapshot {
    pub entries: Vec<Entry>,
    pub seq: u64,
}

pub struct Store {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Change>,
}

struct Inner {
    conn: Connection,
    seq: u64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS distributed_kv (
    namespace  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    type       TEXT    NOT NULL DEFAULT 'string',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, key)
);";

impl Store {
    /// Opens (creating if needed) the database file. WAL with
    /// `synchronous=NORMAL`: a write acknowledged to a client is in the WAL and
    /// survives SIGKILL of the controller (only an OS crash could lose it).
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database folder {}", dir.display()))?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("opening the database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .context("switching the database to WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .context("setting synchronous=NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .context("setting the busy timeout")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("creating the schema in {}", path.display()))?;
        let (changes, _) = broadcast::channel(CHANGE_BUFFER);
        Ok(Store {
            inner: Mutex::new(Inner { conn, seq: 0 }),
            changes,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave SQLite half-written
        // (statements are atomic), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn put(&self, ns: &str, key: &str, value: &str, ty: ValueType) -> Result<Entry> {
        let mut inner = self.lock();
        let entry = upsert(&inner.conn, ns, key, value, ty)?;
        inner.publish_put(&self.changes, entry.clone(), None);
        Ok(entry)
    }

    /// Writes all items in one transaction: all land or none do.
    pub fn batch(&self, ns: &str, items: &[BatchItem]) -> Result<usize> {
        let mut inner = self.lock();
        let tx = inner.conn.transaction().context("starting a batch")?;
        let mut written = Vec::with_capacity(items.len());
        for item in items {
            written.push(upsert(&tx, ns, &item.key, &item.value, item.value_type)?);
        }
        tx.commit().context("committing a batch")?;
        let size = written.len();
        for (index, entry) in written.into_iter().enumerate() {
            inner.publish_put(&self.changes, entry, Some((index, size)));
        }
        Ok(items.len())
    }

    pub fn get(&self, ns: &str, key: &str) -> Result<Option<Entry>> {
        let inner = self.lock();
        let entry = inner
            .conn
            .prepare_cached(
                "SELECT value, type, updated_at FROM distributed_kv WHERE namespace = ?1 AND key = ?2",
            )?
            .query_row(params![ns, key], |row| {
                Ok(Entry {
                    namespace: ns.to_string(),
                    key: key.to_string(),
                    value: row.get(0)?,
                    value_type: parse_type(row.get::<_, String>(1)?),
                    updated_at: row.get(2)?,
                })
            })
            .optional()
            .context("reading a key");
        entry
    }

    /// Deletes a key; true when it existed. Only an actual delete is published.
    pub fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        let mut inner = self.lock();
        let n = inner
            .conn
            .prepare_cached("DELETE FROM distributed_kv WHERE namespace = ?1 AND key = ?2")?
            .execute(params![ns, key])
            .context("deleting a key")?;
        if n > 0 {
            inner.seq += 1;
            let change = Change::Deleted {
                seq: inner.seq,
                namespace: ns.to_string(),
                key: key.to_string(),
            };
            // No subscriber is not an error.
            let _ = self.changes.send(change);
        }
        Ok(n > 0)
    }

    pub fn list(&self, ns: &str, prefix: Option<&str>) -> Result<Vec<Entry>> {
        list(&self.lock().conn, ns, prefix)
    }

    pub fn namespaces(&self) -> Result<Vec<String>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT DISTINCT namespace FROM distributed_kv ORDER BY namespace")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        rows.collect::<Result<_, _>>().context("listing namespaces")
    }

    pub fn keys(&self, ns: &str) -> Result<Vec<String>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare_cached("SELECT key FROM distributed_kv WHERE namespace = ?1 ORDER BY key")?;
        let rows = stmt.query_map([ns], |row| row.get(0))?;
        rows.collect::<Result<_, _>>().context("listing keys")
    }

    /// The namespace's current entries plus a receiver of every later change,
    /// taken under one lock so nothing falls between them.
    pub fn subscribe(&self, ns: &str) -> Result<(Snapshot, broadcast::Receiver<Change>)> {
        let inner = self.lock();
        let entries = list(&inner.conn, ns, None)?;
        Ok((
            Snapshot {
                entries,
                seq: inner.seq,
            },
            self.changes.subscribe(),
        ))
    }

    /// A fresh snapshot (used to resynchronise a subscriber that fell behind).
    pub fn snapshot(&self, ns: &str) -> Result<Snapshot> {
        let inner = self.lock();
        Ok(Snapshot {
            entries: list(&inner.conn, ns, None)?,
            seq: inner.seq,
        })
    }
}

impl Inner {
    fn publish_put(
        &mut self,
        changes: &broadcast::Sender<Change>,
        entry: Entry,
        batch: Option<(usize, usize)>,
    ) {
        self.seq += 1;
        let _ = changes.send(Change::Put {
            seq: self.seq,
            entry,
            batch,
        });
    }
}

fn upsert(conn: &Connection, ns: &str, key: &str, value: &str, ty: ValueType) -> Result<Entry> {
    let now = unix_now();
    conn.prepare_cached(
        "INSERT INTO distributed_kv (namespace, key, value, type, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (namespace, key) DO UPDATE SET
             value = excluded.value, type = excluded.type, updated_at = excluded.updated_at",
    )?
    .execute(params![ns, key, value, ty.as_str(), now])
    .context("writing a key")?;
    Ok(Entry {
        namespace: ns.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        value_type: ty,
        updated_at: now,
    })
}

fn list(conn: &Connection, ns: &str, prefix: Option<&str>) -> Result<Vec<Entry>> {
    let prefix = prefix.unwrap_or("");
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, type, updated_at FROM distributed_kv
         WHERE namespace = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
    )?;
    let rows = stmt.query_map(params![ns, prefix], |row| {
        Ok(Entry {
            namespace: ns.to_string(),
            key: row.get(0)?,
            value: row.get(1)?,
            value_type: parse_type(row.get::<_, String>(2)?),
            updated_at: row.get(3)?,
        })
    })?;
    rows.collect::<Result<_, _>>()
        .context("listing a namespace")
}

/// Rows written by an original controller may carry any type text; show
/// those as strings rather than failing the whole read.
fn parse_type(s: String) -> ValueType {
    s.parse().unwrap_or(ValueType::String)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_all_or_nothing_and_changes_are_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.db")).unwrap();
        let (snap, mut rx) = store.subscribe("ns").unwrap();
        assert!(snap.entries.is_empty());
        store.put("ns", "a", "1", ValueType::Int).unwrap();
        store
            .batch(
                "ns",
                &[
                    BatchItem::new("b", "x", ValueType::String),
                    BatchItem::new("c", "true", ValueType::Bool),
                ],
            )
            .unwrap();
        assert!(store.delete("ns", "a").unwrap());
        assert!(!store.delete("ns", "a").unwrap());
        let seqs: Vec<u64> = (0..4).map(|_| rx.try_recv().unwrap().seq()).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        assert!(rx.try_recv().is_err());
        let keys = store.keys("ns").unwrap();
        assert_eq!(keys, vec!["b", "c"]);
    }

    #[test]
    fn prefix_filters_by_key_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.db")).unwrap();
        for k in ["task.a", "task.b", "app.x", "taskless"] {
            store.put("ns", k, "v", ValueType::String).unwrap();
        }
        let got: Vec<String> = store
            .list("ns", Some("task."))
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(got, vec!["task.a", "task.b"]);
    }
}
