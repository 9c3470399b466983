//! Uploaded app packages (`plum-cluster-api.md` §9): the original's
//! `artifacts` table, on its own connection to the database file, and the
//! zips themselves in an `artifacts/` folder beside that file (the original's
//! `$CONTROLLER_DATA_DIR/artifacts`), each named `<name>_<version>_<sha8>.zip`.

use super::relock;
use crate::artifact::{file_name_part, Inspected};
use crate::cluster::model::AppInfo;
use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The original's table (its image columns left out: only zips are served).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS artifacts (
    artifact_id TEXT PRIMARY KEY,
    app_name    TEXT,
    version     TEXT,
    path        TEXT,
    sha256      TEXT,
    size_bytes  INTEGER,
    created_at  INTEGER,
    type        TEXT DEFAULT 'zip'
);";

/// Largest upload taken by default (the original parses 64 MiB in memory and
/// spills the rest to disk without a bound); a debug build's kv-demo zips
/// to about 45 MiB.
pub const MAX_UPLOAD_BYTES: u64 = 256 << 20;

/// Where URLs of stored zips start.
pub const ARTIFACTS_PREFIX: &str = "/artifacts/";

/// Why a new package is not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The same name and version is stored already (the original's 409).
    Exists { name: String, version: String },
}

/// What `DELETE /v1/apps/{id}` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    NotFound,
    /// Assignments still name its URL (the original's 409).
    InUse {
        name: String,
        version: String,
        assignments: i64,
    },
}

/// The packages: their table and their folder.
pub struct Apps {
    conn: Mutex<Connection>,
    dir: PathBuf,
    max_upload: u64,
}

impl Apps {
    /// Opens the table; the zips live in `artifacts/` beside `db`.
    pub fn open(db: &Path, max_upload: u64) -> Result<Apps> {
        let conn = super::store::connect(db)?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("creating the artifacts table in {}", db.display()))?;
        let dir = db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."))
            .join("artifacts");
        Ok(Apps {
            conn: Mutex::new(conn),
            dir,
            max_upload,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // Every use is one statement or one checked transaction: nothing half-done.
        relock(&self.conn)
    }

    pub fn max_upload(&self) -> u64 {
        self.max_upload
    }

    /// A fresh temporary file name in the folder (created if needed), as the
    /// original's `upload_<ns>.tmp`.
    pub fn temp_path(&self) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating the artifacts folder {}", self.dir.display()))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut salt = [0u8; 4];
        getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("reading random bytes: {e}"))?;
        let salt = u32::from_ne_bytes(salt);
        Ok(self.dir.join(format!("upload_{nanos}_{salt:08x}.tmp")))
    }

    /// Stores a checked upload: moves `tmp` to its final name and adds its
    /// row. The same name and version twice is refused (and `tmp` removed).
    pub fn add(
        &self,
        tmp: &Path,
        found: &Inspected,
        sha256: &str,
        size: u64,
    ) -> Result<Result<AppInfo, Refused>> {
        let conn = self.conn();
        let exists = conn
            .query_row(
                "SELECT 1 FROM artifacts WHERE app_name = ?1 AND version = ?2",
                params![found.name, found.version],
                |_| Ok(()),
            )
            .optional()
            .context("looking for the same app and version")?
            .is_some();
        if exists {
            let _ = std::fs::remove_file(tmp);
            return Ok(Err(Refused::Exists {
                name: found.name.clone(),
                version: found.version.clone(),
            }));
        }
        let file = format!(
            "{}_{}_{}.zip",
            file_name_part(&found.name),
            file_name_part(&found.version),
            sha256.get(..8).unwrap_or(sha256)
        );
        let path = self.dir.join(&file);
        std::fs::rename(tmp, &path)
            .with_context(|| format!("storing the upload as {}", path.display()))?;
        let info = AppInfo {
            artifact_id: random_id()?,
            name: found.name.clone(),
            version: found.version.clone(),
            url: format!("{ARTIFACTS_PREFIX}{file}"),
            sha256: sha256.to_string(),
            size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
            created_at: jiff::Timestamp::now().as_second(),
            kind: "zip".into(),
        };
        conn.execute(
            "INSERT INTO artifacts (artifact_id, app_name, version, path, sha256, size_bytes,
                                    created_at, type)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                info.artifact_id,
                info.name,
                info.version,
                info.url,
                info.sha256,
                info.size_bytes,
                info.created_at,
                info.kind
            ],
        )
        .context("recording the upload")?;
        Ok(Ok(info))
    }

    /// Every package, newest first (as the original).
    pub fn list(&self) -> Result<Vec<AppInfo>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT artifact_id, app_name, version, path, sha256, size_bytes, created_at, type
                 FROM artifacts ORDER BY created_at DESC, rowid DESC",
            )
            .context("listing apps")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AppInfo {
                    artifact_id: r.get(0)?,
                    name: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    version: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    url: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                    sha256: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    size_bytes: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                    created_at: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                    kind: r
                        .get::<_, Option<String>>(7)?
                        .unwrap_or_else(|| "zip".into()),
                })
            })
            .context("listing apps")?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading apps")?;
        Ok(rows)
    }

    /// Deletes a package and its file, unless an assignment names it.
    pub fn remove(&self, id: &str) -> Result<Removal> {
        let conn = self.conn();
        let row: Option<(String, String, String)> = conn
            .query_row(
                "SELECT COALESCE(app_name, ''), COALESCE(version, ''), COALESCE(path, '')
                 FROM artifacts WHERE artifact_id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .context("reading an app")?;
        let Some((name, version, url)) = row else {
            return Ok(Removal::NotFound);
        };
        let assignments: i64 = conn
            .query_row(
                "SELECT COUNT(1) FROM assignments WHERE artifact_url = ?1",
                params![url],
                |r| r.get(0),
            )
            // No cluster tables (a KV-only store): nothing can use it.
            .unwrap_or(0);
        if assignments > 0 {
            return Ok(Removal::InUse {
                name,
                version,
                assignments,
            });
        }
        if let Some(path) = self.file(&url) {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(e).with_context(|| format!("removing {}", path.display()));
                }
            }
        }
        conn.execute("DELETE FROM artifacts WHERE artifact_id = ?1", params![id])
            .context("deleting an app")?;
        Ok(Removal::Removed)
    }

    /// The stored file a `/artifacts/NAME` URL names: one plain file name in
    /// the folder, never a path out of it.
    pub fn file(&self, url: &str) -> Option<PathBuf> {
        let name = url.strip_prefix(ARTIFACTS_PREFIX).unwrap_or(url);
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains(['/', '\\', '\0'])
            && !name.ends_with(".tmp");
        plain.then(|| self.dir.join(name))
    }
}

fn random_id() -> Result<String> {
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf)
        .map_err(|e| anyhow::anyhow!("reading random bytes for an id: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_in_the_folder_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let apps = Apps::open(&dir.path().join("kv.db"), MAX_UPLOAD_BYTES).unwrap();
        let root = dir.path().join("artifacts");
        assert_eq!(
            apps.file("/artifacts/a_1_12345678.zip"),
            Some(root.join("a_1_12345678.zip"))
        );
        for bad in [
            "/artifacts/../kv.db",
            "/artifacts/x/y.zip",
            "/artifacts/.hidden",
            "/artifacts/",
            "/artifacts/upload_1.tmp",
        ] {
            assert_eq!(apps.file(bad), None, "{bad}");
        }
    }
}
