//! One controller per database file: two controllers writing the same file
//! would each publish only their own changes, and their workers would mix
//! one namespace. The lock is an advisory lock on `<db>.lock`, released by
//! the kernel if the process dies (so a SIGKILLed controller never leaves a
//! stale lock behind).

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct DbLock {
    _file: File,
}

pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl DbLock {
    pub fn acquire(db: &Path) -> Result<DbLock> {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database folder {}", dir.display()))?;
        }
        let path = lock_path(db);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let who = match holder.trim() {
                    "" => "another plumdash controller".to_string(),
                    pid => format!("another plumdash controller (pid {pid})"),
                };
                bail!(
                    "the database {} is in use by {who}; pass --db to use another file",
                    db.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        // Say who holds it, for the next one's error message.
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| write!(file, "{}", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(DbLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kv.db");
        let first = DbLock::acquire(&db).unwrap();
        let err = DbLock::acquire(&db).unwrap_err().to_string();
        assert!(
            err.contains("in use by another plumdash controller (pid"),
            "{err}"
        );
        assert!(err.contains("--db"), "{err}");
        drop(first);
        DbLock::acquire(&db).unwrap();
    }
}
