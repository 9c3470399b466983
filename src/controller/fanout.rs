//! Who hears which change: an index from namespace (and from prefix) to the
//! change streams subscribed to it, so a change is handed only to its
//! namespace's subscribers — one hash lookup per change (plus one per
//! distinct prefix length in use), never a scan of every subscriber.
//!
//! The store calls [`Fanout::publish`] under its write lock, in commit order.
//! A subscription is registered and its snapshots are taken between two
//! commits ([`BetweenCommits::between_commits`], which the store gives), and the snapshots are queued on the
//! subscriber's channel there: every subscriber's channel holds its
//! deliveries in change order, with no gap and no overlap. A subscriber whose
//! channel is full is marked lagged and sent nothing more until it resyncs
//! (fresh snapshots of its whole set, on a new channel).

use super::change::Change;
use super::relock;
use crate::kv::model::Entry;
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// How many deliveries a slow subscriber may fall behind before it is resynced.
const SUBSCRIBER_BUFFER: usize = 4096;
/// How many bytes of changes a slow subscriber may hold queued before it is
/// resynced: by count alone, 4,096 changes of 1 MiB values were 4 GiB held
/// for a client that reads a byte now and then.
const SUBSCRIBER_BYTES: usize = 16 << 20;
/// The most namespaces and prefixes one subscription may name.
pub const MAX_SUBSCRIBED: usize = 10_000;

/// Reads of the store's committed state, as of one change number.
pub trait CommittedReads {
    /// A namespace's entries.
    fn list(&self, ns: &str) -> Result<Vec<Entry>>;
    /// The namespaces that start with `prefix` (literally, case-sensitive).
    fn namespaces_with_prefix(&self, prefix: &str) -> Result<Vec<String>>;
}

/// What the fanout needs of the store: to run `f` between two commits, with
/// reads of the committed state as of change number `seq`, so that what `f`
/// registers hears every change after `seq` and none before.
pub trait BetweenCommits {
    fn between_commits<T>(&self, f: impl FnOnce(&dyn CommittedReads, u64) -> T) -> T;
}

/// What a subscriber's channel carries, in change order.
#[derive(Debug)]
pub enum Delivery {
    /// One committed change of a namespace it is subscribed to.
    Change(Arc<Change>),
    /// Namespaces' entries as of change `seq`: at the start, when names are
    /// added (or named again), and after a resync. A namespace in none of
    /// them that a prefix matches was empty when it was taken.
    Snapshots {
        seq: u64,
        namespaces: Vec<(String, Vec<Entry>)>,
    },
}

#[derive(Default)]
pub struct Fanout {
    index: Mutex<Index>,
}

#[derive(Default)]
struct Index {
    subs: HashMap<u64, Sub>,
    by_namespace: HashMap<String, Vec<u64>>,
    by_prefix: HashMap<String, Vec<u64>>,
    /// How many prefixes in use have each length (the lengths to look up).
    prefix_lens: BTreeMap<usize, usize>,
}

struct Sub {
    tx: mpsc::Sender<Delivery>,
    lagged: Arc<AtomicBool>,
    /// Bytes of the changes in its channel (see [`SUBSCRIBER_BYTES`]).
    queued: Arc<AtomicUsize>,
    namespaces: HashSet<String>,
    prefixes: HashSet<String>,
}

/// A registered subscriber: its id (for [`Fanout::add`]), its channel, and
/// the registration, dropped from the index with it.
pub struct Subscription {
    pub id: u64,
    rx: mpsc::Receiver<Delivery>,
    lagged: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
    fanout: Arc<Fanout>,
}

impl Subscription {
    /// It fell behind: what is still queued is stale; [`Fanout::resync`] it.
    pub fn lagged(&self) -> bool {
        self.lagged.load(Ordering::Acquire)
    }

    /// The next delivery, once there is one (`None`: the index let it go).
    pub async fn next(&mut self) -> Option<Delivery> {
        let delivery = self.rx.recv().await?;
        self.taken(&delivery);
        Some(delivery)
    }

    /// The next delivery if one is queued now.
    pub fn try_next(&mut self) -> Option<Delivery> {
        let delivery = self.rx.try_recv().ok()?;
        self.taken(&delivery);
        Some(delivery)
    }

    fn taken(&self, delivery: &Delivery) {
        if let Delivery::Change(change) = delivery {
            let size = change.queued_bytes();
            let _ = self
                .queued
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                    Some(q.saturating_sub(size))
                });
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.fanout.lock().remove(self.id);
    }
}

fn snapshots(
    read: &dyn CommittedReads,
    namespaces: &[String],
    prefixes: &[String],
) -> Result<Vec<(String, Vec<Entry>)>> {
    let mut names: Vec<String> = namespaces.to_vec();
    for prefix in prefixes {
        names.extend(read.namespaces_with_prefix(prefix)?);
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|ns| read.list(&ns).map(|entries| (ns, entries)))
        .collect()
}

impl Fanout {
    fn lock(&self) -> MutexGuard<'_, Index> {
        // Each update of the index is complete before it can panic.
        relock(&self.index)
    }

    /// Hands a committed change to its namespace's subscribers. Called by
    /// the store under its write lock, in commit order.
    pub fn publish(&self, change: &Change) {
        let index = self.lock();
        if index.subs.is_empty() {
            return;
        }
        let ns = change.namespace();
        let direct: &[u64] = index.by_namespace.get(ns).map_or(&[], Vec::as_slice);
        // Prefix subscribers not already named (no allocation without prefixes).
        let mut by_prefix: Vec<u64> = Vec::new();
        for &len in index.prefix_lens.keys() {
            let Some(head) = ns.get(..len) else { continue };
            for id in index.by_prefix.get(head).into_iter().flatten() {
                if !direct.contains(id) && !by_prefix.contains(id) {
                    by_prefix.push(*id);
                }
            }
        }
        if direct.is_empty() && by_prefix.is_empty() {
            return;
        }
        let shared = Arc::new(change.clone());
        let size = change.queued_bytes();
        for id in direct.iter().chain(&by_prefix) {
            let Some(sub) = index.subs.get(id) else {
                continue;
            };
            if sub.lagged.load(Ordering::Relaxed) {
                continue;
            }
            // Too far behind by count or by bytes: it starts over from
            // snapshots, which are as large as the namespaces, no larger.
            let held = sub.queued.fetch_add(size, Ordering::AcqRel) + size;
            let sent = held <= SUBSCRIBER_BYTES
                && !matches!(
                    sub.tx.try_send(Delivery::Change(shared.clone())),
                    Err(mpsc::error::TrySendError::Full(_))
                );
            if !sent {
                sub.queued.fetch_sub(size, Ordering::AcqRel);
                sub.lagged.store(true, Ordering::Release);
            }
        }
    }

    /// A new subscriber of these namespaces and prefixes; its channel starts
    /// with their snapshots. Blocking (it reads the store).
    pub fn subscribe(
        self: &Arc<Self>,
        store: &impl BetweenCommits,
        namespaces: Vec<String>,
        prefixes: Vec<String>,
    ) -> Result<Subscription> {
        if namespaces.len() + prefixes.len() > MAX_SUBSCRIBED {
            bail!("a subscription names at most {MAX_SUBSCRIBED} namespaces and prefixes");
        }
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        let lagged = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
        let id = loop {
            let id = random_id()?;
            if !self.lock().subs.contains_key(&id) {
                break id;
            }
        };
        store.between_commits(|read, seq| -> Result<()> {
            let taken = snapshots(read, &namespaces, &prefixes)?;
            let mut index = self.lock();
            index.subs.insert(
                id,
                Sub {
                    tx: tx.clone(),
                    lagged: lagged.clone(),
                    queued: queued.clone(),
                    namespaces: HashSet::new(),
                    prefixes: HashSet::new(),
                },
            );
            index.extend(id, namespaces, prefixes);
            // A new channel has room for this one delivery.
            let _ = tx.try_send(Delivery::Snapshots {
                seq,
                namespaces: taken,
            });
            Ok(())
        })?;
        Ok(Subscription {
            id,
            rx,
            lagged,
            queued,
            fanout: self.clone(),
        })
    }

    /// Adds namespaces and prefixes to subscription `id`; their snapshots
    /// follow on its channel in change order (a name it had already is
    /// snapshotted again: a resync of that namespace). False when there is
    /// no such subscription. Blocking.
    pub fn add(
        &self,
        store: &impl BetweenCommits,
        id: u64,
        namespaces: Vec<String>,
        prefixes: Vec<String>,
    ) -> Result<bool> {
        store.between_commits(|read, seq| -> Result<bool> {
            {
                let index = self.lock();
                let Some(sub) = index.subs.get(&id) else {
                    return Ok(false);
                };
                let total =
                    sub.namespaces.len() + sub.prefixes.len() + namespaces.len() + prefixes.len();
                if total > MAX_SUBSCRIBED {
                    bail!("a subscription names at most {MAX_SUBSCRIBED} namespaces and prefixes");
                }
            }
            let taken = snapshots(read, &namespaces, &prefixes)?;
            let mut index = self.lock();
            index.extend(id, namespaces, prefixes);
            if let Some(sub) = index.subs.get(&id) {
                let delivery = Delivery::Snapshots {
                    seq,
                    namespaces: taken,
                };
                if sub.tx.try_send(delivery).is_err() {
                    sub.lagged.store(true, Ordering::Release);
                }
            }
            Ok(true)
        })
    }

    /// Starts a lagged subscription over: a new channel that begins with
    /// fresh snapshots of everything it names. Blocking.
    pub fn resync(
        &self,
        store: &impl BetweenCommits,
        subscription: &mut Subscription,
    ) -> Result<()> {
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        let id = subscription.id;
        store.between_commits(|read, seq| -> Result<()> {
            let (namespaces, prefixes) = {
                let index = self.lock();
                let Some(sub) = index.subs.get(&id) else {
                    bail!("the subscription is gone");
                };
                (
                    sub.namespaces.iter().cloned().collect::<Vec<_>>(),
                    sub.prefixes.iter().cloned().collect::<Vec<_>>(),
                )
            };
            let taken = snapshots(read, &namespaces, &prefixes)?;
            let mut index = self.lock();
            if let Some(sub) = index.subs.get_mut(&id) {
                sub.tx = tx.clone();
                // The old channel goes with what it held.
                sub.queued.store(0, Ordering::Release);
                sub.lagged.store(false, Ordering::Release);
            }
            let _ = tx.try_send(Delivery::Snapshots {
                seq,
                namespaces: taken,
            });
            Ok(())
        })?;
        subscription.rx = rx;
        Ok(())
    }

    /// How many subscribers hear `namespace` (for tests and benches).
    pub fn subscribers_of(&self, namespace: &str) -> usize {
        let index = self.lock();
        let mut ids: HashSet<u64> = index
            .by_namespace
            .get(namespace)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for (prefix, subs) in &index.by_prefix {
            if namespace.starts_with(prefix.as_str()) {
                ids.extend(subs);
            }
        }
        ids.len()
    }
}

impl Index {
    fn extend(&mut self, id: u64, namespaces: Vec<String>, prefixes: Vec<String>) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        for ns in namespaces {
            if sub.namespaces.insert(ns.clone()) {
                self.by_namespace.entry(ns).or_default().push(id);
            }
        }
        for prefix in prefixes {
            if sub.prefixes.insert(prefix.clone()) {
                *self.prefix_lens.entry(prefix.len()).or_default() += 1;
                self.by_prefix.entry(prefix).or_default().push(id);
            }
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(sub) = self.subs.remove(&id) else {
            return;
        };
        for ns in sub.namespaces {
            if let Some(ids) = self.by_namespace.get_mut(&ns) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_namespace.remove(&ns);
                }
            }
        }
        for prefix in sub.prefixes {
            if let Some(ids) = self.by_prefix.get_mut(&prefix) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    self.by_prefix.remove(&prefix);
                }
            }
            if let Some(n) = self.prefix_lens.get_mut(&prefix.len()) {
                *n -= 1;
                if *n == 0 {
                    self.prefix_lens.remove(&prefix.len());
                }
            }
        }
    }
}

/// A subscription's id: random, so one client cannot guess another's.
fn random_id() -> Result<u64> {
    let mut buf = [0u8; 8];
    getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("reading random bytes: {e}"))?;
    Ok(u64::from_le_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::store::Store;
    use crate::kv::ValueType;

    fn drain(sub: &mut Subscription) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(d) = sub.try_next() {
            match d {
                Delivery::Change(c) => seen.push(format!("{}#{}", c.namespace(), c.seq())),
                Delivery::Snapshots { seq, namespaces } => {
                    for (ns, entries) in namespaces {
                        seen.push(format!("snap {ns}@{seq}:{}", entries.len()));
                    }
                }
            }
        }
        seen
    }

    #[test]
    fn only_the_subscribed_namespaces_and_prefixes_are_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.db")).unwrap();
        store.put("a", "k", "1", ValueType::String).unwrap();
        let mut sub = store
            .fanout()
            .subscribe(&store, vec!["a".into(), "b".into()], vec!["p-".into()])
            .unwrap();
        assert_eq!(drain(&mut sub), vec!["snap a@1:1", "snap b@1:0"]);
        for ns in ["a", "c", "b", "p-1", "pq"] {
            store.put(ns, "k", "2", ValueType::String).unwrap();
        }
        assert_eq!(drain(&mut sub), vec!["a#2", "b#4", "p-1#5"]);
        assert_eq!(store.fanout().subscribers_of("p-9"), 1);
        assert_eq!(store.fanout().subscribers_of("c"), 0);

        assert!(store
            .fanout()
            .add(&store, sub.id, vec!["c".into()], vec![])
            .unwrap());
        store.put("c", "k", "3", ValueType::String).unwrap();
        assert_eq!(drain(&mut sub), vec!["snap c@6:1", "c#7"]);

        // Named and matched by a prefix: delivered once.
        assert!(store
            .fanout()
            .add(&store, sub.id, vec!["p-1".into()], vec![])
            .unwrap());
        store.put("p-1", "k", "4", ValueType::String).unwrap();
        assert_eq!(drain(&mut sub), vec!["snap p-1@7:1", "p-1#8"]);

        drop(sub);
        assert_eq!(store.fanout().subscribers_of("a"), 0);
        assert_eq!(store.fanout().subscribers_of("p-1"), 0);
        assert!(!store.fanout().add(&store, 1, vec![], vec![]).unwrap());
    }

    /// A subscriber that does not read is resynced once its queue holds
    /// more than [`SUBSCRIBER_BYTES`] of changes, long before 4,096 of them.
    #[test]
    fn a_subscriber_that_holds_too_many_bytes_is_resynced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.db")).unwrap();
        let mut sub = store
            .fanout()
            .subscribe(&store, vec!["big".into()], vec![])
            .unwrap();
        assert_eq!(drain(&mut sub), vec!["snap big@0:0"]);
        let value = "v".repeat(1 << 20);
        for n in 0..SUBSCRIBER_BYTES / (1 << 20) - 1 {
            store
                .put("big", &format!("k{n}"), &value, ValueType::String)
                .unwrap();
        }
        assert!(!sub.lagged(), "under the cap");
        // Read one: its bytes are no longer held, so one more fits.
        assert!(sub.try_next().is_some());
        store
            .put("big", "one-more", &value, ValueType::String)
            .unwrap();
        assert!(!sub.lagged(), "one read, one more queued");
        store.put("big", "over", &value, ValueType::String).unwrap();
        store
            .put("big", "over2", &value, ValueType::String)
            .unwrap();
        assert!(sub.lagged(), "over the cap: resync");
        store.fanout().resync(&store, &mut sub).unwrap();
        assert!(!sub.lagged());
        // Fresh snapshots, then changes again, counted from nothing.
        let seen = drain(&mut sub);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].starts_with("snap big@"), "{seen:?}");
        store
            .put("big", "after", &value, ValueType::String)
            .unwrap();
        assert!(!sub.lagged());
        assert_eq!(drain(&mut sub).len(), 1);
    }

    /// A prefix matches by bytes, through the index: a NUL, or a character
    /// beyond the basic plane, in a name is no end of it.
    #[test]
    fn a_prefix_matches_names_whatever_their_characters() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("kv.db")).unwrap();
        for ns in ["n\0a", "n\0", "n", "n😀", "m", "o"] {
            store.put(ns, "k", "1", ValueType::String).unwrap();
        }
        let mut sub = store
            .fanout()
            .subscribe(&store, vec![], vec!["n\0".into(), "n😀".into()])
            .unwrap();
        assert_eq!(
            drain(&mut sub),
            vec!["snap n\0@6:1", "snap n\0a@6:1", "snap n😀@6:1"]
        );
    }
}
