//! Is the database file still the one being written, and writable?
//!
//! A controller whose file was deleted, replaced or made read-only would
//! keep acknowledging writes that the next start never sees. So `/healthz`
//! answers 503 `{"status":"unhealthy","error":…}` when the path no longer
//! names the locked file (or its `-wal`), when it cannot be written, or when
//! the last write failed; and writes are refused (503) while the file is
//! gone or unwritable. A monitor re-checks every [`CHECK_EVERY`] so writes
//! see a change within that time; `/healthz` checks afresh.

use super::db_lock::FileId;
use super::relock;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub const CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct Health {
    db: PathBuf,
    id: FileId,
    wal: PathBuf,
    wal_id: Option<FileId>,
    /// The monitor's last finding, for the write path.
    last: Mutex<Option<String>>,
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

impl Health {
    /// Remembers which file (and WAL file) `db` names now.
    pub fn new(db: &Path, id: FileId) -> Health {
        let wal = wal_path(db);
        let wal_id = std::fs::metadata(&wal).ok().map(|m| FileId::of(&m));
        Health {
            db: db.to_path_buf(),
            id,
            wal,
            wal_id,
            last: Mutex::new(None),
        }
    }

    /// What is wrong with the file now, if anything (a few syscalls).
    pub fn check(&self) -> Option<String> {
        let db = self.db.display();
        let problem = match std::fs::metadata(&self.db) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some(format!("the database {db} was deleted"))
            }
            Err(e) => Some(format!("the database {db} cannot be read: {e}")),
            Ok(m) if FileId::of(&m) != self.id => {
                Some(format!("the database {db} was replaced by another file"))
            }
            Ok(_) => {
                use nix::unistd::{access, AccessFlags};
                match access(&self.db, AccessFlags::W_OK) {
                    Err(e) => Some(format!("the database {db} is not writable: {}", e.desc())),
                    Ok(()) => self.wal_problem(),
                }
            }
        };
        *relock(&self.last) = problem.clone();
        problem
    }

    fn wal_problem(&self) -> Option<String> {
        let want = self.wal_id?;
        match std::fs::metadata(&self.wal) {
            Ok(m) if FileId::of(&m) == want => None,
            Ok(_) => Some(format!(
                "the database's WAL {} was replaced by another file",
                self.wal.display()
            )),
            Err(_) => Some(format!(
                "the database's WAL {} was deleted",
                self.wal.display()
            )),
        }
    }

    /// The last finding of [`Health::check`], without looking again.
    pub fn last(&self) -> Option<String> {
        relock(&self.last).clone()
    }

    pub fn db(&self) -> &Path {
        &self.db
    }
}
