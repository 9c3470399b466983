//! One controller per database *file*: two controllers writing the same
//! file would each keep their own WAL, lose each other's acknowledged
//! writes, and publish only their own changes.
//!
//! The lock is an exclusive `flock(2)` on the database file itself, opened
//! (read-write, so an unwritable file is refused here) before SQLite opens
//! it. It belongs to the inode, so every name of the file — a hard link, a
//! symlink, `./x/../kv.db` — finds it taken, and the kernel releases it when
//! the process dies (a SIGKILLed controller leaves no stale lock). SQLite
//! locks with POSIX `fcntl` locks, which on Linux are independent of
//! `flock`, so the two do not disturb each other.
//!
//! SQLite keeps a database's WAL beside the *name* it was opened by, so
//! two names would mean two WALs: the path is made canonical (symlinks and
//! `..` resolved) before SQLite sees it, and a file with more than one hard
//! link is refused, since after a crash the other name would open without
//! the acknowledged writes still in this name's WAL.
//!
//! POSIX locks have one trap: closing *any* descriptor of a file drops every
//! `fcntl` lock this process holds on it, SQLite's included. So this file
//! stays open until the store is closed, and a second `acquire` of a file
//! this process already holds is refused before it opens anything.

use super::relock;
use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `(dev, ino)` of the database files this process holds.
static HELD: Mutex<Vec<FileId>> = Mutex::new(Vec::new());

/// Which file a path names: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

#[derive(Debug)]
pub struct DbLock {
    /// Holds the flock; never closed while the store is open (see above).
    _file: File,
    id: FileId,
    /// The canonical path: the one name SQLite opens it by.
    path: PathBuf,
}

fn held() -> std::sync::MutexGuard<'static, Vec<FileId>> {
    relock(&HELD)
}

impl DbLock {
    /// Creates the database file if needed, checks that it can be written,
    /// and locks it. Fails with one line naming the file and, when it is
    /// held, the holder's pid.
    pub fn acquire(db: &Path) -> Result<DbLock> {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database folder {}", dir.display()))?;
        }
        let mut held = held();
        if let Ok(meta) = std::fs::metadata(db) {
            if held.contains(&FileId::of(&meta)) {
                bail!(in_use(db, Some(std::process::id())));
            }
        }
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(db)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::IsADirectory => {
                bail!("the database {} is a directory, not a file", db.display())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                bail!("the database {} is not writable: {e}", db.display())
            }
            Err(e) => {
                return Err(e).with_context(|| format!("opening the database {}", db.display()))
            }
        };
        let meta = file
            .metadata()
            .with_context(|| format!("reading the database {}", db.display()))?;
        if !meta.is_file() {
            bail!("the database {} is not a regular file", db.display());
        }
        let id = FileId::of(&meta);
        if held.contains(&id) {
            // The path changed under us to a file we hold: closing this
            // descriptor would drop SQLite's locks on it, so keep it open.
            std::mem::forget(file);
            bail!(in_use(db, Some(std::process::id())));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => bail!(in_use(db, holder_pid(id))),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking the database {}", db.display()))
            }
        }
        if meta.nlink() > 1 {
            bail!(
                "the database {} has {} hard links; SQLite keeps its WAL beside the name it \
                 was opened by, so remove the other links and keep one name",
                db.display(),
                meta.nlink()
            );
        }
        let path = std::fs::canonicalize(db)
            .with_context(|| format!("resolving the database path {}", db.display()))?;
        if !std::fs::metadata(&path).is_ok_and(|m| FileId::of(&m) == id) {
            bail!("the database {} changed while it was opened", db.display());
        }
        held.push(id);
        Ok(DbLock {
            _file: file,
            id,
            path,
        })
    }

    /// The locked file's device and inode, to tell whether its path still
    /// names it.
    pub fn id(&self) -> FileId {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DbLock {
    fn drop(&mut self) {
        held().retain(|id| *id != self.id);
    }
}

fn in_use(db: &Path, pid: Option<u32>) -> String {
    let who = match pid {
        Some(pid) => format!("another plumdash controller (pid {pid})"),
        None => "another plumdash controller".to_string(),
    };
    format!(
        "the database {} is in use by {who}; pass --db to use another file",
        db.display()
    )
}

/// Who holds the flock on `id`, from `/proc/locks` (Linux), whatever name
/// they opened it by. Lines look like
/// `1: FLOCK  ADVISORY  WRITE 10691 fe:00:10011392 0 EOF`.
fn holder_pid(id: FileId) -> Option<u32> {
    // /proc/locks is produced a page at a time: a lock taken or freed between two
    // reads can shift the lines and skip ours. Read again before saying "unknown".
    (0..3).find_map(|_| {
        let text = std::fs::read_to_string("/proc/locks").ok()?;
        holder_in(&text, id)
    })
}

/// The pid that holds an flock on `id` according to one reading of /proc/locks.
fn holder_in(text: &str, id: FileId) -> Option<u32> {
    let (major, minor) = dev_parts(id.dev);
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A blocked waiter's line has "->" after the number: skip those.
        let [_, "FLOCK", _, _, pid, file, ..] = fields.as_slice() else {
            return None;
        };
        let mut parts = file.split(':');
        let maj = u64::from_str_radix(parts.next()?, 16).ok()?;
        let min = u64::from_str_radix(parts.next()?, 16).ok()?;
        let ino: u64 = parts.next()?.parse().ok()?;
        (maj == major && min == minor && ino == id.ino)
            .then(|| pid.parse().ok())
            .flatten()
    })
}

/// Linux's `major()`/`minor()` of a `dev_t`.
fn dev_parts(dev: u64) -> (u64, u64) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major, minor)
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
        let pid = std::process::id();
        assert!(
            err.contains(&format!(
                "in use by another plumdash controller (pid {pid})"
            )),
            "{err}"
        );
        assert!(err.contains("--db"), "{err}");
        // Any other name of the same file is the same lock.
        let link = dir.path().join("hard.db");
        std::fs::hard_link(&db, &link).unwrap();
        let err = DbLock::acquire(&link).unwrap_err().to_string();
        assert!(err.contains(&format!("(pid {pid})")), "{err}");
        drop(first);
        // Free, but with two names it would get two WALs.
        let err = DbLock::acquire(&link).unwrap_err().to_string();
        assert!(err.contains("2 hard links"), "{err}");
        std::fs::remove_file(&db).unwrap();
        let lock = DbLock::acquire(&link).unwrap();
        assert_eq!(lock.path(), std::fs::canonicalize(&link).unwrap());
    }

    #[test]
    fn the_holder_is_found_in_proc_locks_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("kv.db");
        let f = File::create(&db).unwrap();
        f.try_lock().unwrap();
        let id = FileId::of(&f.metadata().unwrap());
        assert_eq!(holder_pid(id), Some(std::process::id()));
        assert_eq!(
            holder_pid(FileId {
                dev: id.dev,
                ino: 1
            }),
            None
        );
    }

    #[test]
    fn a_directory_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let err = DbLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is a directory"), "{err}");
    }
}
