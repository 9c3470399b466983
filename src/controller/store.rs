//! The SQLite store behind the controller, and the change feed it publishes.
//!
//! Writes: a request queues its write and waits for its answer. Whoever
//! commits takes *everything* queued at once into one transaction (a batch
//! in its own savepoint; a single statement is all or nothing by itself; so
//! one bad write fails alone), then publishes the
//! changes in commit order and answers each writer — only after the commit,
//! so no write is acknowledged before it is in the WAL. The request that
//! finds no one committing yields to the runtime once, so the requests its
//! workers have already read queue theirs behind it, then commits that group
//! itself if the write connection is free: a lone writer pays no thread
//! hand-off. It goes on committing what queued meanwhile, up to
//! `ROUNDS_HERE` groups; what is left after that is the writer thread's,
//! group after group, so no request waits long for others' writes. One write connection under one lock: one writer at a time. Under
//! concurrency commits per write fall well below one ([`Store::write_counts`]
//! counts both). An entry is built once, from the request's own strings, and
//! shared (`Arc<Entry>`) by the row written, the change published and the
//! reply.
//! Every write and the sequence number that orders the change feed move
//! together under the write lock, so a subscriber's snapshot and the changes
//! after it never overlap or leave a gap.
//!
//! The WAL checkpoint, the one long write-side operation, runs on its own
//! thread, and keeps the WAL bounded: a PASSIVE checkpoint every 100 ms
//! (never blocks a writer), a RESTART one when the WAL holds more than
//! [`WAL_RESTART_BYTES`] (writers wait for it, so the next commit starts the
//! WAL over and `journal_size_limit` cuts the file back), and a TRUNCATE one
//! after a second without writes (the file goes back to 0 bytes). Reads use a separate connection (WAL lets them run beside the
//! writer) and are called from the blocking pool, since a large namespace
//! takes a while.

pub use super::change::Change;
use super::fanout::{BetweenCommits, CommittedReads, Fanout};
use super::relock;
use crate::kv::model::{BatchItem, Entry, ValueType, Writer as ChangeWriter};
use anyhow::{anyhow, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// How many changes a slow subscriber may fall behind before it is resynced.
const CHANGE_BUFFER: usize = 4096;
/// How often the WAL is folded back into the database file (a PASSIVE
/// checkpoint with nothing to do costs microseconds).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// A WAL holding more than this is checkpointed with RESTART, even under load.
pub const WAL_RESTART_BYTES: i64 = 4 << 20;
/// What the WAL file is cut back to when it starts over (`journal_size_limit`).
const WAL_KEEP_BYTES: i64 = 1 << 20;
/// Groups a request commits on its async worker before it leaves what
/// queued meanwhile to the writer thread: each hand-off to the thread and
/// back costs two context switches, a group a few tens of microseconds.
const ROUNDS_HERE: usize = 4;
/// See [`Store::blocking_slots`]: the read connection, and the write lock
/// (a stream's snapshots).
const BLOCKING_SLOTS: usize = 2;
/// Rounds without a commit (one second) before the WAL is truncated to nothing.
const IDLE_ROUNDS_BEFORE_TRUNCATE: u32 = 10;

/// A namespace's entries as of change number `seq`.
pub struct Snapshot {
    pub entries: Vec<Entry>,
    pub seq: u64,
}

/// Writes committed since the store opened, and the transactions that
/// carried them: `commits / writes` is the commits per write (a batch is
/// one write).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteCounts {
    pub commits: u64,
    pub writes: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    writes: AtomicU64,
}

type Reply<T> = oneshot::Sender<Result<T>>;

/// A queued write and where its answer goes.
enum Write {
    Put {
        /// Its times are set by the writer, in commit order.
        entry: Entry,
        writer: Option<ChangeWriter>,
        reply: Reply<Arc<Entry>>,
    },
    Batch {
        ns: String,
        items: Vec<BatchItem>,
        writer: Option<ChangeWriter>,
        reply: Reply<usize>,
    },
    Delete {
        ns: String,
        key: String,
        writer: Option<ChangeWriter>,
        reply: Reply<bool>,
    },
}

/// The writes waiting for the writer thread.
#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    writes: Vec<Write>,
    /// The writer will look at the queue again without being woken: it is
    /// committing, or a wake-up is on its way.
    awake: bool,
    /// The store is closing: the writer commits what is queued, then ends.
    closing: bool,
}

impl Queue {
    /// Queues a write; true when the caller must wake the writer.
    fn push(&self, write: Write) -> bool {
        let mut pending = relock(&self.pending);
        pending.writes.push(write);
        !std::mem::replace(&mut pending.awake, true)
    }

    /// The writer's side: swaps everything queued into `group` (empty),
    /// sleeping while nothing is; false once closing with nothing left.
    fn take(&self, group: &mut Vec<Write>) -> bool {
        let mut pending = relock(&self.pending);
        while pending.writes.is_empty() {
            if pending.closing {
                return false;
            }
            pending.awake = false;
            pending = self.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
        }
        std::mem::swap(group, &mut pending.writes);
        true
    }

    fn close(&self) {
        relock(&self.pending).closing = true;
        self.wake.notify_one();
    }
}

/// Wakes the writer thread when dropped, unless disarmed: a request dropped
/// while it yields (its client went away) still gets the writes queued
/// behind its own committed.
struct WakeOnDrop<'a>(Option<&'a Queue>);

impl WakeOnDrop<'_> {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(queue) = self.0 {
            queue.wake.notify_one();
        }
    }
}

/// The writer thread: commits everything queued, one group after another.
fn write_loop(queue: &Queue, writer: &Mutex<Writer>) {
    let mut group = Vec::new();
    while queue.take(&mut group) {
        relock(writer).commit_group(group.drain(..));
        group = kept(group);
    }
}

/// Most writes an emptied group vector may still have room for when it is
/// kept for the next group: a burst of thousands is not held on to.
const SPARE_KEEP: usize = 256;

/// `spare` (empty) to keep for the next group, or a new one if it grew large.
fn kept<T>(spare: Vec<T>) -> Vec<T> {
    if spare.capacity() > SPARE_KEEP {
        Vec::new()
    } else {
        spare
    }
}

pub struct Store {
    writer: Arc<Mutex<Writer>>,
    queue: Arc<Queue>,
    reader: Mutex<Connection>,
    blocking_slots: tokio::sync::Semaphore,
    /// Why the last group of writes failed, until one succeeds.
    write_error: Arc<Mutex<Option<String>>>,
    /// The change broadcast, for wake-ups that need no snapshot.
    changes: broadcast::Sender<Change>,
    counters: Arc<Counters>,
    /// Joined on drop after committing what is queued.
    write_thread: Option<JoinHandle<()>>,
    /// Who hears which namespace's changes (`fanout.rs`), told in commit order.
    fanout: Arc<Fanout>,
    /// Dropping it stops the checkpoint thread; joined on drop, so the
    /// store's connections are all closed when drop returns.
    checkpointer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.queue.close();
        if let Some(thread) = self.write_thread.take() {
            let _ = thread.join();
        }
        if let Some((stop, thread)) = self.checkpointer.take() {
            drop(stop);
            let _ = thread.join();
        }
    }
}

/// The write connection and what moves with it.
struct Writer {
    conn: Connection,
    seq: u64,
    /// The last write's time (unix ms): times never go back in change
    /// order, even if the system clock is set back.
    last_ms: i64,
    changes: broadcast::Sender<Change>,
    /// Commits and writes so far (the checkpointer reads them to tell an
    /// idle store).
    counters: Arc<Counters>,
    fanout: Arc<Fanout>,
    write_error: Arc<Mutex<Option<String>>>,
    /// Emptied vectors kept for the next group (a group of a few writes is
    /// over a kilobyte: allocated afresh, it would miss the allocator's
    /// thread cache at every commit).
    spare_writes: Vec<Write>,
    spare_done: Vec<Done>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS distributed_kv (
    namespace  TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    type       TEXT    NOT NULL DEFAULT 'string',
    updated_at INTEGER NOT NULL,
    updated_at_ms INTEGER,
    PRIMARY KEY (namespace, key)
);";

/// A database file made before `updated_at_ms` (or by the original
/// controller) gets the column, empty: its rows have no millisecond time
/// until they are written again.
fn add_ms_column(conn: &Connection) -> Result<()> {
    let has = conn
        .prepare("SELECT 1 FROM pragma_table_info('distributed_kv') WHERE name = 'updated_at_ms'")?
        .exists([])?;
    if !has {
        conn.execute_batch("ALTER TABLE distributed_kv ADD COLUMN updated_at_ms INTEGER")?;
    }
    Ok(())
}

/// The millisecond time of a row, when it is the same write as its
/// `updated_at` (a row rewritten since by the original controller, which
/// leaves the column alone, has none).
fn row_ms(updated_at: i64, updated_at_ms: Option<i64>) -> Option<i64> {
    updated_at_ms.filter(|ms| ms.div_euclid(1000) == updated_at)
}

impl Store {
    /// Opens (creating if needed) the database file.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the database folder {}", dir.display()))?;
        }
        let conn = connect(path)?;
        // SQLite falls back to read-only when it cannot open the file for
        // writing: every write would then fail after a healthy start.
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            anyhow::bail!(
                "the database {} is not writable (read-only)",
                path.display()
            );
        }
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("creating the schema in {}", path.display()))?;
        add_ms_column(&conn)
            .with_context(|| format!("adding updated_at_ms in {}", path.display()))?;
        // Writers never checkpoint themselves: that can take milliseconds.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .context("turning off automatic checkpoints")?;
        let reader = connect(path)?;
        let checkpoint_conn = connect(path)?;
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = mpsc::channel::<()>();
        let checkpoint_thread = {
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("kv-checkpoint".into())
                .spawn(move || checkpoint_loop(&checkpoint_conn, &stopped, &counters.commits))
                .context("starting the checkpoint thread")?
        };
        let checkpointer = Some((stop, checkpoint_thread));
        let (changes, _) = broadcast::channel(CHANGE_BUFFER);
        let write_error = Arc::new(Mutex::new(None));
        let fanout = Arc::new(Fanout::default());
        let writer = Arc::new(Mutex::new(Writer {
            conn,
            seq: 0,
            last_ms: 0,
            changes: changes.clone(),
            counters: counters.clone(),
            fanout: fanout.clone(),
            write_error: write_error.clone(),
            spare_writes: Vec::new(),
            spare_done: Vec::new(),
        }));
        let queue = Arc::new(Queue::default());
        let write_thread = {
            let (queue, writer) = (queue.clone(), writer.clone());
            std::thread::Builder::new()
                .name("kv-writer".into())
                .spawn(move || write_loop(&queue, &writer))
        };
        // A store without its writer would queue writes forever; the
        // checkpointer is stopped by `drop` (through `checkpointer`).
        let write_thread = match write_thread {
            Ok(thread) => Some(thread),
            Err(e) => {
                drop(checkpointer);
                return Err(e).context("starting the writer thread");
            }
        };
        Ok(Store {
            writer,
            queue,
            reader: Mutex::new(reader),
            blocking_slots: tokio::sync::Semaphore::new(BLOCKING_SLOTS),
            write_error,
            changes,
            counters,
            fanout,
            write_thread,
            checkpointer,
        })
    }

    /// Why the last group of writes failed (a full disk, a file that can
    /// no longer be written), or `None` once a group has committed since.
    pub fn write_error(&self) -> Option<String> {
        relock(&self.write_error).clone()
    }

    /// Writes and commits so far.
    pub fn write_counts(&self) -> WriteCounts {
        WriteCounts {
            commits: self.counters.commits.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    /// Queues a write at once and gives the wait for its commit. The request
    /// that finds the writer asleep first lets the runtime run the requests
    /// it has already read, so that theirs join the group (see the module
    /// comment), then commits the group itself if the write connection is
    /// free: a lone writer pays no hand-off to the writer thread and back.
    /// Queued before the wait is polled, so the wait holds only the answer's
    /// receiver (a request's future is boxed whole on every request: small
    /// stays in the allocator's thread cache).
    fn submit<T: 'static>(
        &self,
        write: impl FnOnce(Reply<T>) -> Write,
    ) -> impl std::future::Future<Output = Result<T>> + '_ {
        let (reply, answer) = oneshot::channel();
        // Dropped unpolled, the guard still wakes the writer thread (made
        // only for the leader: dropping one wakes that thread).
        let leads = self
            .queue
            .push(write(reply))
            .then(|| WakeOnDrop(Some(&self.queue)));
        self.committed(leads, answer)
    }

    async fn committed<T: 'static>(
        &self,
        leads: Option<WakeOnDrop<'_>>,
        answer: oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        if let Some(mut wake) = leads {
            tokio::task::yield_now().await;
            if self.commit_here() {
                wake.disarm();
            }
        }
        answer_of(answer.await)
    }

    /// Commits what is queued on this thread, if the write connection is
    /// free; true when nothing is left for the writer thread.
    fn commit_here(&self) -> bool {
        let mut writer = match self.writer.try_lock() {
            Ok(writer) => writer,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            // Busy (a snapshot being taken): the writer thread waits for it.
            Err(TryLockError::WouldBlock) => return false,
        };
        for _ in 0..ROUNDS_HERE {
            // The queue gets the spare (empty) vector, the group its writes.
            let mut group = std::mem::take(&mut writer.spare_writes);
            std::mem::swap(&mut group, &mut relock(&self.queue.pending).writes);
            let empty = group.is_empty();
            if !empty {
                writer.commit_group(group.drain(..));
            }
            writer.spare_writes = kept(group);
            if empty {
                break;
            }
        }
        drop(writer);
        // Writes queued meanwhile found the writer "awake": they are the thread's.
        let mut pending = relock(&self.queue.pending);
        pending.awake = !pending.writes.is_empty();
        !pending.awake
    }

    /// [`Store::submit`] for threads (never call it on an async worker): the
    /// same, without the yield.
    fn submit_blocking<T>(&self, write: impl FnOnce(Reply<T>) -> Write) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        if self.queue.push(write(reply)) && !self.commit_here() {
            self.queue.wake.notify_one();
        }
        answer_of(answer.blocking_recv())
    }

    /// `writer`: the process that asked for it, published with the change.
    /// Owned strings are moved into the entry, not copied.
    /// The write is queued at the call; the future waits for its commit.
    pub fn put_async(
        &self,
        ns: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<String>,
        ty: ValueType,
        writer: Option<ChangeWriter>,
    ) -> impl std::future::Future<Output = Result<Arc<Entry>>> + '_ {
        let entry = new_entry(ns.into(), key.into(), value.into(), ty);
        self.submit(|reply| Write::Put {
            entry,
            writer,
            reply,
        })
    }

    /// The blocking form, for threads (never call it on an async worker).
    pub fn put(&self, ns: &str, key: &str, value: &str, ty: ValueType) -> Result<Arc<Entry>> {
        let entry = new_entry(ns.into(), key.into(), value.into(), ty);
        self.submit_blocking(|reply| Write::Put {
            entry,
            writer: None,
            reply,
        })
    }

    /// Writes all items in one transaction: all land or none do. Queued at
    /// the call, like [`Store::put_async`].
    pub fn batch_async(
        &self,
        ns: impl Into<String>,
        items: Vec<BatchItem>,
        writer: Option<ChangeWriter>,
    ) -> impl std::future::Future<Output = Result<usize>> + '_ {
        let ns = ns.into();
        self.submit(|reply| Write::Batch {
            ns,
            items,
            writer,
            reply,
        })
    }

    pub fn batch(&self, ns: &str, items: &[BatchItem]) -> Result<usize> {
        self.submit_blocking(|reply| Write::Batch {
            ns: ns.into(),
            items: items.to_vec(),
            writer: None,
            reply,
        })
    }

    /// Deletes a key; true when it existed. Only an actual delete is
    /// published. Queued at the call, like [`Store::put_async`].
    pub fn delete_async(
        &self,
        ns: impl Into<String>,
        key: impl Into<String>,
        writer: Option<ChangeWriter>,
    ) -> impl std::future::Future<Output = Result<bool>> + '_ {
        let (ns, key) = (ns.into(), key.into());
        self.submit(|reply| Write::Delete {
            ns,
            key,
            writer,
            reply,
        })
    }

    pub fn delete(&self, ns: &str, key: &str) -> Result<bool> {
        self.submit_blocking(|reply| Write::Delete {
            ns: ns.into(),
            key: key.into(),
            writer: None,
            reply,
        })
    }

    /// Every later change of any namespace, without a snapshot (wake-ups only:
    /// what a change holds is read from it, not from a listing).
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// The namespace's current entries plus a receiver of every later change,
    /// taken under the write lock so nothing falls between them. Blocking.
    pub fn subscribe(&self, ns: &str) -> Result<(Snapshot, broadcast::Receiver<Change>)> {
        let writer = relock(&self.writer);
        list(&writer.conn, ns, None).map(|entries| {
            let snapshot = Snapshot {
                entries,
                seq: writer.seq,
            };
            (snapshot, writer.changes.subscribe())
        })
    }

    /// The index of change-stream subscribers (`fanout.rs`).
    pub fn fanout(&self) -> &Arc<Fanout> {
        &self.fanout
    }

    pub fn get(&self, ns: &str, key: &str) -> Result<Option<Entry>> {
        get(&relock(&self.reader), ns, key)
    }

    /// [`Store::get`] at once if the read connection is free, `None` if it
    /// is busy (then read it on the blocking pool). A read by primary key
    /// takes microseconds: a thread hand-off costs more, and a thousand
    /// workers starting together would each take a blocking thread.
    pub fn try_get(&self, ns: &str, key: &str) -> Option<Result<Option<Entry>>> {
        let conn = match self.reader.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(get(&conn, ns, key))
    }

    /// How many of the controller's blocking calls on the store run at
    /// once: there is one read connection and one write lock, so more would
    /// only wait for them, each holding a thread of the blocking pool (a
    /// thousand workers starting together made hundreds).
    pub fn blocking_slots(&self) -> &tokio::sync::Semaphore {
        &self.blocking_slots
    }

    pub fn list(&self, ns: &str, prefix: Option<&str>) -> Result<Vec<Entry>> {
        list(&relock(&self.reader), ns, prefix)
    }

    pub fn namespaces(&self) -> Result<Vec<String>> {
        let conn = relock(&self.reader);
        let mut stmt = conn
            .prepare_cached("SELECT DISTINCT namespace FROM distributed_kv ORDER BY namespace")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        rows.collect::<Result<_, _>>().context("listing namespaces")
    }

    pub fn keys(&self, ns: &str) -> Result<Vec<String>> {
        let conn = relock(&self.reader);
        let mut stmt = conn
            .prepare_cached("SELECT key FROM distributed_kv WHERE namespace = ?1 ORDER BY key")?;
        let rows = stmt.query_map([ns], |row| row.get(0))?;
        rows.collect::<Result<_, _>>().context("listing keys")
    }
}

impl BetweenCommits for Store {
    /// Blocking: holds the write connection while `f` runs.
    fn between_commits<T>(&self, f: impl FnOnce(&dyn CommittedReads, u64) -> T) -> T {
        // Writes queued meanwhile wait for the lock: the writer thread
        // commits them once `f` is done.
        let writer = relock(&self.writer);
        f(&Committed(&writer.conn), writer.seq)
    }
}

/// Reads of the committed state, for [`BetweenCommits::between_commits`].
pub struct Committed<'a>(&'a Connection);

impl CommittedReads for Committed<'_> {
    fn list(&self, ns: &str) -> Result<Vec<Entry>> {
        list(self.0, ns, None)
    }

    /// The namespaces that start with `prefix` (literally, case-sensitive).
    fn namespaces_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        // A range of the primary key, not a look at every row: a
        // subscription naming thousands of prefixes runs this for each one
        // while writes wait. (Names are UTF-8, compared byte by byte: every
        // name that starts with the prefix sorts below it + U+10FFFF. `substr`
        // and `length` would also stop at a NUL.)
        let mut stmt = self.0.prepare_cached(
            "SELECT DISTINCT namespace FROM distributed_kv
             WHERE namespace >= ?1 AND namespace < ?1 || char(1114111) ORDER BY namespace",
        )?;
        let rows = stmt.query_map([prefix], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()
            .context("listing namespaces by prefix")
    }
}

/// An entry as a write asks for it; the writer sets its times.
fn new_entry(namespace: String, key: String, value: String, value_type: ValueType) -> Entry {
    Entry {
        namespace,
        key,
        value,
        value_type,
        updated_at: 0,
        updated_at_ms: None,
        writer: None,
    }
}

fn answer_of<T>(received: Result<Result<T>, oneshot::error::RecvError>) -> Result<T> {
    received.map_err(|_| anyhow!("the write was dropped before it was committed"))?
}

/// A write applied inside the group's transaction, waiting for the commit.
enum Done {
    Put(Reply<Arc<Entry>>, Result<Entry>, Option<ChangeWriter>),
    Batch(Reply<usize>, Result<Vec<Entry>>, Option<ChangeWriter>),
    Delete(
        Reply<bool>,
        Result<Option<(String, String)>>,
        Option<ChangeWriter>,
    ),
}

impl Writer {
    /// Applies a group of writes in one transaction, then commits them.
    fn commit_group(&mut self, group: impl IntoIterator<Item = Write>) {
        let mut writes = group.into_iter();
        if let Err(e) = run_cached(&self.conn, "BEGIN") {
            let why = format!("starting a transaction: {e}");
            *relock(&self.write_error) = Some(why.clone());
            for write in writes {
                write.fail(&why);
            }
            return;
        }
        let mut pending = std::mem::take(&mut self.spare_done);
        // One pair of statements for the whole group (taking one from the
        // statement cache hashes and compares its text every time).
        let mut upserts = Upserts::new(&self.conn);
        for write in writes.by_ref() {
            let now_ms = write_time(&mut self.last_ms);
            pending.push(apply(&self.conn, &mut upserts, now_ms, write));
            // SQLite rolls the whole transaction back by itself on some
            // errors (a full disk, an I/O error): then nothing of the group
            // holds, and the rest must not run outside a transaction, where
            // each would commit on its own.
            if self.conn.is_autocommit() {
                let first = pending.iter().find_map(Done::error);
                let why = format!(
                    "the transaction was rolled back: {}",
                    first.unwrap_or_else(|| "unknown error".into())
                );
                *relock(&self.write_error) = Some(why.clone());
                for done in pending.drain(..) {
                    done.fail(&why);
                }
                self.spare_done = kept(pending);
                for write in writes {
                    write.fail(&why);
                }
                return;
            }
        }
        drop(upserts);
        self.commit(&mut pending);
        self.spare_done = kept(pending);
    }

    /// Commits the group, then acknowledges each write and publishes its
    /// changes in order. If the commit fails, every write in it fails.
    /// Leaves `pending` empty.
    fn commit(&mut self, pending: &mut Vec<Done>) {
        if pending.is_empty() {
            return;
        }
        if let Err(e) = run_cached(&self.conn, "COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            let why = format!("committing writes: {e}");
            *relock(&self.write_error) = Some(why.clone());
            for done in pending.drain(..) {
                done.fail(&why);
            }
            return;
        }
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .writes
            .fetch_add(pending.len() as u64, Ordering::Relaxed);
        // Input is checked before it is queued, so a write that failed
        // inside the transaction hit the database itself (e.g. a full disk).
        *relock(&self.write_error) = pending.iter().find_map(Done::error);
        for done in pending.drain(..) {
            match done {
                Done::Put(reply, result, writer) => {
                    let answer = result.map(|entry| {
                        let entry = Arc::new(entry);
                        self.publish_put(entry.clone(), None, writer);
                        entry
                    });
                    let _ = reply.send(answer);
                }
                Done::Batch(reply, result, writer) => {
                    let answer = result.map(|written| {
                        let size = written.len();
                        for (index, entry) in written.into_iter().enumerate() {
                            let batch = Some((index, size));
                            self.publish_put(Arc::new(entry), batch, writer.clone());
                        }
                        size
                    });
                    let _ = reply.send(answer);
                }
                Done::Delete(reply, result, writer) => {
                    let answer = result.map(|gone| match gone {
                        Some((namespace, key)) => {
                            self.seq += 1;
                            self.publish(Change::Deleted {
                                seq: self.seq,
                                namespace,
                                key,
                                writer,
                            });
                            true
                        }
                        None => false,
                    });
                    let _ = reply.send(answer);
                }
            }
        }
    }

    fn publish_put(
        &mut self,
        entry: Arc<Entry>,
        batch: Option<(usize, usize)>,
        writer: Option<ChangeWriter>,
    ) {
        self.seq += 1;
        self.publish(Change::Put {
            seq: self.seq,
            entry,
            batch,
            writer,
        });
    }

    /// Tells a committed change to its namespace's stream subscribers (in
    /// commit order: this runs under the write lock) and to the wake-ups.
    fn publish(&self, change: Change) {
        self.fanout.publish(&change);
        // No subscriber is not an error.
        let _ = self.changes.send(change);
    }
}

/// Now, in unix ms, and not before the last write's time.
fn write_time(last_ms: &mut i64) -> i64 {
    *last_ms = (*last_ms).max(i64::try_from(crate::clock::now_ms()).unwrap_or(i64::MAX));
    *last_ms
}

/// Applies one write inside the group's transaction.
fn apply(conn: &Connection, upserts: &mut Upserts<'_>, now_ms: i64, write: Write) -> Done {
    // One write, one time for all its items; seconds are the ms floored.
    let stamp = |entry: &mut Entry| {
        entry.updated_at = now_ms.div_euclid(1000);
        entry.updated_at_ms = Some(now_ms);
    };
    match write {
        Write::Put {
            mut entry,
            writer,
            reply,
        } => {
            stamp(&mut entry);
            // One statement is all or nothing by itself: no savepoint.
            let written = upserts.run(&entry);
            Done::Put(reply, written.map(|()| entry), writer)
        }
        Write::Batch {
            ns,
            items,
            writer,
            reply,
        } => {
            let entries: Vec<Entry> = items
                .into_iter()
                .map(|i| {
                    let mut entry = new_entry(ns.clone(), i.key, i.value, i.value_type);
                    stamp(&mut entry);
                    entry
                })
                .collect();
            let written = in_savepoint(conn, || entries.iter().try_for_each(|e| upserts.run(e)));
            Done::Batch(reply, written.map(|()| entries), writer)
        }
        Write::Delete {
            ns,
            key,
            writer,
            reply,
        } => {
            let gone = delete_row(conn, &ns, &key);
            Done::Delete(reply, gone.map(|gone| gone.then_some((ns, key))), writer)
        }
    }
}

impl Done {
    fn error(&self) -> Option<String> {
        match self {
            Done::Put(_, Err(e), _) | Done::Batch(_, Err(e), _) => Some(format!("{e:#}")),
            Done::Delete(_, Err(e), _) => Some(format!("{e:#}")),
            _ => None,
        }
    }

    /// Answers a write whose transaction did not commit.
    fn fail(self, why: &str) {
        match self {
            Done::Put(reply, ..) => drop(reply.send(Err(anyhow!(why.to_string())))),
            Done::Batch(reply, ..) => drop(reply.send(Err(anyhow!(why.to_string())))),
            Done::Delete(reply, ..) => drop(reply.send(Err(anyhow!(why.to_string())))),
        }
    }
}

impl Write {
    /// Answers a write that could not even start.
    fn fail(self, why: &str) {
        match self {
            Write::Put { reply, .. } => drop(reply.send(Err(anyhow!(why.to_string())))),
            Write::Batch { reply, .. } => drop(reply.send(Err(anyhow!(why.to_string())))),
            Write::Delete { reply, .. } => drop(reply.send(Err(anyhow!(why.to_string())))),
        }
    }
}

/// The checkpoint thread: see the module comment.
fn checkpoint_loop(conn: &Connection, stopped: &mpsc::Receiver<()>, commits: &AtomicU64) {
    let page = conn
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .unwrap_or(4096);
    let (mut seen, mut idle_rounds, mut truncated) = (0u64, 0u32, false);
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        let now = commits.load(Ordering::Relaxed);
        if now == seen {
            idle_rounds = idle_rounds.saturating_add(1);
        } else {
            (seen, idle_rounds, truncated) = (now, 0, false);
        }
        if idle_rounds >= IDLE_ROUNDS_BEFORE_TRUNCATE {
            if !truncated {
                // Idle: fold the WAL back and cut the file to 0 bytes.
                truncated = matches!(checkpoint(conn, "TRUNCATE"), Some((0, _, _)));
            }
            continue;
        }
        // PASSIVE never blocks a writer; if busy, the next round catches up.
        let Some((_, log_frames, _)) = checkpoint(conn, "PASSIVE") else {
            continue;
        };
        if log_frames.saturating_mul(page) > WAL_RESTART_BYTES {
            // Writers wait while it runs; then the next commit starts the
            // WAL over and cuts the file to `journal_size_limit`.
            let _ = checkpoint(conn, "RESTART");
        }
    }
}

/// `(busy, frames in the WAL, frames checkpointed)`, or `None` on an error.
fn checkpoint(conn: &Connection, mode: &str) -> Option<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .ok()
}

/// Runs a statement without parsing it again each time (these run for
/// every write).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Runs `f` in a savepoint of the open transaction: a failure undoes only
/// what `f` wrote.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    run_cached(conn, "SAVEPOINT w").context("opening a savepoint")?;
    match f() {
        Ok(v) => {
            run_cached(conn, "RELEASE w").context("releasing a savepoint")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO w; RELEASE w");
            Err(e)
        }
    }
}

fn delete_row(conn: &Connection, ns: &str, key: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM distributed_kv WHERE namespace = ?1 AND key = ?2")?
        .execute(params![ns, key])
        .context("deleting a key")?;
    Ok(n > 0)
}

/// WAL with `synchronous=NORMAL`: a commit is in the WAL before it is
/// acknowledged and survives SIGKILL of the controller (only an OS crash
/// could lose it).
pub(super) fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("opening the database {}", path.display()))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .context("switching the database to WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .context("setting synchronous=NORMAL")?;
    conn.busy_timeout(Duration::from_secs(5))
        .context("setting the busy timeout")?;
    // When the WAL starts over, its file is cut back to this size.
    conn.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES)
        .context("setting journal_size_limit")?;
    Ok(conn)
}

/// Rewrites an entry that exists, with the times already set on it.
const UPDATE: &str = "UPDATE distributed_kv
     SET value = ?3, type = ?4, updated_at = ?5, updated_at_ms = ?6
     WHERE namespace = ?1 AND key = ?2";

/// Adds an entry that [`UPDATE`] did not find.
const INSERT: &str =
    "INSERT INTO distributed_kv (namespace, key, value, type, updated_at, updated_at_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Writes entries: an update, and an insert when the key is new. (Most
/// writes rewrite a key: an update alone costs SQLite ~12 % less than
/// `INSERT ... ON CONFLICT DO UPDATE`, which makes a new row id and checks
/// the key before it updates.) Each statement is taken from the cache at
/// the first write that needs it and held until dropped.
struct Upserts<'c> {
    conn: &'c Connection,
    update: Option<rusqlite::CachedStatement<'c>>,
    insert: Option<rusqlite::CachedStatement<'c>>,
}

impl<'c> Upserts<'c> {
    fn new(conn: &'c Connection) -> Upserts<'c> {
        Upserts {
            conn,
            update: None,
            insert: None,
        }
    }

    fn run(&mut self, e: &Entry) -> Result<()> {
        let row = params![
            e.namespace,
            e.key,
            e.value,
            e.value_type.as_str(),
            e.updated_at,
            e.updated_at_ms
        ];
        let updated = cached(self.conn, &mut self.update, UPDATE)?
            .execute(row)
            .context("writing a key")?;
        if updated == 0 {
            cached(self.conn, &mut self.insert, INSERT)?
                .execute(row)
                .context("writing a new key")?;
        }
        Ok(())
    }
}

/// The statement held in `slot`, prepared (from the cache) the first time.
fn cached<'s, 'c>(
    conn: &'c Connection,
    slot: &'s mut Option<rusqlite::CachedStatement<'c>>,
    sql: &str,
) -> Result<&'s mut rusqlite::CachedStatement<'c>> {
    Ok(match slot {
        Some(statement) => statement,
        none => none.insert(conn.prepare_cached(sql)?),
    })
}

fn list(conn: &Connection, ns: &str, prefix: Option<&str>) -> Result<Vec<Entry>> {
    let prefix = prefix.unwrap_or("");
    let mut stmt = conn.prepare_cached(
        "SELECT key, value, type, updated_at, updated_at_ms FROM distributed_kv
         WHERE namespace = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
    )?;
    let rows = stmt.query_map(params![ns, prefix], |row| {
        let updated_at = row.get(3)?;
        Ok(Entry {
            namespace: ns.to_string(),
            key: row.get(0)?,
            value: row.get(1)?,
            value_type: parse_type(row.get::<_, String>(2)?),
            updated_at,
            updated_at_ms: row_ms(updated_at, row.get(4)?),
            writer: None,
        })
    })?;
    rows.collect::<Result<_, _>>()
        .context("listing a namespace")
}

/// One key, read on `conn`.
fn get(conn: &Connection, ns: &str, key: &str) -> Result<Option<Entry>> {
    conn.prepare_cached(
        "SELECT value, type, updated_at, updated_at_ms FROM distributed_kv
         WHERE namespace = ?1 AND key = ?2",
    )?
    .query_row(params![ns, key], |row| {
        let updated_at = row.get(2)?;
        Ok(Entry {
            namespace: ns.to_string(),
            key: key.to_string(),
            value: row.get(0)?,
            value_type: parse_type(row.get::<_, String>(1)?),
            updated_at,
            updated_at_ms: row_ms(updated_at, row.get(3)?),
            writer: None,
        })
    })
    .optional()
    .context("reading a key")
}

/// Rows written by an original controller may carry any type text; show
/// those as strings rather than failing the whole read.
fn parse_type(s: String) -> ValueType {
    s.parse().unwrap_or(ValueType::String)
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
    fn concurrent_writes_are_grouped_yet_each_acknowledged_and_numbered() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(Store::open(&dir.path().join("kv.db")).unwrap());
        let (_, mut rx) = store.subscribe("ns").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let e = store
                            .put("ns", &format!("t{t}/{i}"), "v", ValueType::String)
                            .unwrap();
                        assert_eq!(e.key, format!("t{t}/{i}"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(store.keys("ns").unwrap().len(), 1600);
        let seqs: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| c.seq())
            .collect();
        assert_eq!(seqs, (1..=1600).collect::<Vec<u64>>());
    }

    #[test]
    fn a_failed_write_is_remembered_until_one_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.db")).unwrap();
        store.put("ns", "small", "v", ValueType::String).unwrap();
        assert_eq!(store.write_error(), None);
        // A full disk, as SQLite sees it: no page may be added.
        let pages: i64 = {
            let w = relock(&store.writer);
            let n = w
                .conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .unwrap();
            w.conn.pragma_update(None, "max_page_count", n).unwrap();
            n
        };
        let big = "x".repeat(64 * 1024);
        assert!(store.put("ns", "big", &big, ValueType::String).is_err());
        let why = store.write_error().expect("the failure is remembered");
        assert!(why.contains("full"), "{why}");
        assert_eq!(store.get("ns", "big").unwrap(), None);
        relock(&store.writer)
            .conn
            .pragma_update(None, "max_page_count", pages * 100)
            .unwrap();
        store.put("ns", "big", &big, ValueType::String).unwrap();
        assert_eq!(store.write_error(), None);
    }

    #[test]
    fn a_disk_full_rollback_fails_the_whole_group_and_commits_none_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.db")).unwrap();
        store.put("ns", "seed", "v", ValueType::String).unwrap();
        let mut writer = relock(&store.writer);
        let n: i64 = writer
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        writer
            .conn
            .pragma_update(None, "max_page_count", n)
            .unwrap();
        let big = "x".repeat(64 * 1024);
        let mut answers = Vec::new();
        let group: Vec<Write> = [("a", "1"), ("big", big.as_str()), ("c", "3")]
            .into_iter()
            .map(|(k, v)| {
                let (reply, answer) = oneshot::channel();
                answers.push(answer);
                Write::Put {
                    entry: new_entry("ns".into(), k.into(), v.into(), ValueType::String),
                    writer: None,
                    reply,
                }
            })
            .collect();
        writer.commit_group(group);
        drop(writer);
        for answer in answers {
            assert!(answer.blocking_recv().unwrap().is_err());
        }
        assert_eq!(store.keys("ns").unwrap(), vec!["seed"]);
        assert!(store.write_error().unwrap().contains("rolled back"));
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

    /// A key is read at once when the read connection is free, and left to
    /// the blocking pool (`None`) while something else holds it.
    #[test]
    fn a_key_is_read_at_once_unless_the_read_connection_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.db")).unwrap();
        store.put("ns", "k", "v", ValueType::String).unwrap();
        let read = store.try_get("ns", "k").unwrap().unwrap().unwrap();
        assert_eq!(read.value, "v");
        assert!(store.try_get("ns", "gone").unwrap().unwrap().is_none());
        let busy = store.reader.lock().unwrap();
        assert!(store.try_get("ns", "k").is_none());
        drop(busy);
        assert!(store.try_get("ns", "k").is_some());
    }

    /// Queues puts of `keys` at once (under one lock, so the writer takes
    /// them all or none) and wakes the writer; their answers.
    fn queue_puts(store: &Store, keys: &[String]) -> Vec<oneshot::Receiver<Result<Arc<Entry>>>> {
        let mut pending = relock(&store.queue.pending);
        let answers = keys
            .iter()
            .map(|key| {
                let (reply, answer) = oneshot::channel();
                let entry = new_entry("ns".into(), key.clone(), "v".into(), ValueType::String);
                pending.writes.push(Write::Put {
                    entry,
                    writer: None,
                    reply,
                });
                answer
            })
            .collect();
        pending.awake = true;
        drop(pending);
        store.queue.wake.notify_one();
        answers
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i}")).collect()
    }

    #[test]
    fn everything_queued_is_one_commit_and_nothing_is_acknowledged_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.db")).unwrap();
        let before = store.write_counts();
        // Holding the write connection: the writer can take the queue but
        // cannot commit it.
        let held = relock(&store.writer);
        let mut answers = queue_puts(&store, &keys(100));
        std::thread::sleep(Duration::from_millis(50));
        for answer in &mut answers {
            assert!(matches!(
                answer.try_recv(),
                Err(oneshot::error::TryRecvError::Empty)
            ));
        }
        assert_eq!(store.get("ns", "k0").unwrap(), None);
        drop(held);
        for (i, answer) in answers.into_iter().enumerate() {
            let entry = answer.blocking_recv().unwrap().unwrap();
            assert_eq!(entry.key, format!("k{i}"));
            // Acknowledged means committed: the other connection sees it.
            assert_eq!(store.get("ns", &entry.key).unwrap().as_ref(), Some(&*entry));
        }
        let after = store.write_counts();
        assert_eq!(after.writes - before.writes, 100);
        assert_eq!(after.commits - before.commits, 1);
    }

    #[test]
    fn a_group_vector_is_kept_for_the_next_group_unless_a_burst_grew_it() {
        let small: Vec<u8> = Vec::with_capacity(SPARE_KEEP);
        assert_eq!(kept(small).capacity(), SPARE_KEEP);
        let burst: Vec<u8> = Vec::with_capacity(SPARE_KEEP * 8);
        assert_eq!(kept(burst).capacity(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_is_queued_at_the_call_and_committed_if_its_wait_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("kv.db")).unwrap());
        // One write committed: the writer thread is asleep, nothing queued.
        store
            .put_async("ns", "first", "0", ValueType::String, None)
            .await
            .unwrap();
        // This write finds the writer asleep: its wait is the one that
        // would commit. Dropped unpolled (a client gone), it must still
        // leave the write to the writer thread, not strand the queue.
        drop(store.put_async("ns", "gone", "1", ValueType::String, None));
        let later = store.put_async("ns", "later", "2", ValueType::String, None);
        let later = tokio::time::timeout(Duration::from_secs(5), later)
            .await
            .expect("a write queued behind the dropped one was never committed")
            .unwrap();
        assert_eq!(later.value, "2");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.get("ns", "gone").unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped write never committed"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(store.write_counts().writes, 3);
    }

    #[tokio::test]
    async fn concurrent_async_writes_share_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("kv.db")).unwrap());
        let (_, mut rx) = store.subscribe("ns").unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..10 {
                        let key = format!("t{t}/{i}");
                        let e = store
                            .put_async("ns", key.clone(), "v", ValueType::String, None)
                            .await
                            .unwrap();
                        assert_eq!(e.key, key);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let counts = store.write_counts();
        assert_eq!(counts.writes, 640);
        // The first round alone is one commit for 64 writes.
        assert!(counts.commits * 4 <= counts.writes, "{counts:?}");
        // The published entry is the one the writer was answered with.
        let first = rx.try_recv().unwrap();
        assert_eq!(first.seq(), 1);
        assert!(first.entry().is_some_and(|e| e.key.ends_with("/0")));
    }

    #[test]
    fn dropping_the_store_commits_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        let store = Store::open(&path).unwrap();
        let held = relock(&store.writer);
        let answers = queue_puts(&store, &keys(10));
        drop(held);
        drop(store);
        for answer in answers {
            answer.blocking_recv().unwrap().unwrap();
        }
        assert_eq!(Store::open(&path).unwrap().keys("ns").unwrap().len(), 10);
    }
}
