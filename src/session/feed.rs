//! The fact multiplexer: the supervisor's events, the namespace feeds (the
//! app's, or one feed for every instance's own namespace), the cluster reads and node actions, merged into one
//! cancel-safe stream of timestamped facts.

use super::facts::{announces_a_start, fact_from_change, fact_from_event};
use super::remote::RemoteFact;
use super::{Session, SessionConfig};
use crate::clock::now_ms;
use crate::cluster::ClusterView;
use crate::kv::{FeedStatus, SetWatcher, WatchEvent, WatchOptions, Watcher};
use crate::recovery::{Fact, TsMs};
use crate::supervisor::{EventKind, RawExit};
use anyhow::{Context, Result};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::{StreamExt, StreamMap};

/// A fact, when it happened, and the namespace whose feed told it (`None`
/// for the processes, the cluster and node actions).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub at: TsMs,
    pub namespace: Option<String>,
    pub fact: Fact,
}

/// What `next_fact` owes before reading anything new.
pub(super) enum Pending {
    /// Read a namespace afresh and hand it out as a `Snapshot` (at this time).
    /// The read runs as its own task, so a dropped `next_fact` does not restart it.
    FreshRead {
        at: TsMs,
        namespace: String,
        read: Option<tokio::task::JoinHandle<Option<Vec<crate::kv::Entry>>>>,
    },
    Fact(TsMs, Fact),
}

/// The most namespaces a session watches. With `--namespace-by instance` they
/// share one feed (one stream, filtered at the controller, or batched polls),
/// so the bound is the work per change and per poll, not descriptors.
/// Instances found beyond it (attach with `--namespace-by instance`) are shown
/// without a task.
pub const MAX_FEEDS: usize = 1000;

/// The namespace feeds: one feed per namespace (the app's shared one), or
/// one feed for the whole set (`--namespace-by instance`: each instance's
/// namespace is added to it before the instance starts).
pub(super) enum Feeds {
    Each(StreamMap<String, Watcher>),
    Set(SetWatcher),
}

impl Feeds {
    pub(super) fn contains(&self, namespace: &str) -> bool {
        match self {
            Feeds::Each(map) => map.contains_key(namespace),
            Feeds::Set(set) => set.contains(namespace),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Feeds::Each(map) => map.len(),
            Feeds::Set(set) => set.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops watching `namespace` (a set feed keeps it: its changes stay
    /// filtered to the namespaces a session asked for, and this is rare).
    pub(super) fn remove(&mut self, namespace: &str) {
        if let Feeds::Each(map) = self {
            map.remove(namespace);
        }
    }

    fn namespaces(&self) -> Vec<String> {
        match self {
            Feeds::Each(map) => map.keys().cloned().collect(),
            Feeds::Set(set) => set.namespaces().map(str::to_string).collect(),
        }
    }

    async fn next(&mut self) -> Option<(String, WatchEvent)> {
        match self {
            Feeds::Each(map) => map.next().await,
            Feeds::Set(set) => set.next().await,
        }
    }
}

/// Longest wait for the fresh namespace read after a worker's exit.
const FRESH_READ_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn watch_options(config: &SessionConfig) -> WatchOptions {
    WatchOptions {
        mode: config.feed,
        poll_interval: config.poll_interval,
        ..WatchOptions::default()
    }
}

impl Session {
    /// Starts watching `namespace` (once; at most [`MAX_FEEDS`] namespaces).
    pub(super) fn watch_namespace(&mut self, namespace: &str) -> Result<()> {
        if !self.feeds.contains(namespace) {
            if self.feeds.len() >= MAX_FEEDS {
                anyhow::bail!(
                    "not watching namespace {namespace:?}: {MAX_FEEDS} are watched already"
                );
            }
            self.subscribe(namespace)
                .with_context(|| format!("watching namespace {namespace:?}"))?;
        }
        Ok(())
    }

    /// A fresh feed of `namespace` in place of any it had (the old one is
    /// dropped with whatever it still held); it starts with a snapshot. In a
    /// set feed: added, or resynced in change order.
    pub(super) fn subscribe(&mut self, namespace: &str) -> Result<(), crate::kv::KvError> {
        let ns = self.dm.for_namespace(namespace)?;
        match &mut self.feeds {
            Feeds::Each(map) => {
                map.insert(
                    namespace.to_string(),
                    ns.subscribe(watch_options(&self.config)),
                );
            }
            Feeds::Set(set) => {
                if !set.add(namespace) {
                    set.resync(namespace);
                }
            }
        }
        Ok(())
    }

    /// Replaces every namespace feed with a fresh subscription (it connects at
    /// once instead of waiting out the old one's reconnection backoff, e.g.
    /// right after a controller restart). Each starts with a snapshot.
    pub fn resubscribe(&mut self) {
        let names = self.feeds.namespaces();
        if let Feeds::Set(_) = self.feeds {
            self.feeds = Feeds::Set(self.dm.subscribe_set(names, watch_options(&self.config)));
            return;
        }
        for ns in names {
            // Watched already, so the name is valid.
            let _ = self.subscribe(&ns);
        }
    }

    /// The next fact, from the processes or from the namespace, with its time.
    /// `None` once both sources have ended. See [`Session::next_observed`].
    pub async fn next_fact(&mut self) -> Option<(TsMs, Fact)> {
        self.next_observed().await.map(|o| (o.at, o.fact))
    }

    /// The next fact with its time and, for a namespace's, which namespace.
    /// `None` once both sources have ended.
    /// Cancel-safe: dropping the future between facts (as `select!` does) loses none.
    pub async fn next_observed(&mut self) -> Option<Observed> {
        let process = |at: TsMs, fact: Fact| Observed {
            at,
            namespace: None,
            fact,
        };
        loop {
            match self.pending.front_mut() {
                Some(Pending::FreshRead {
                    at,
                    namespace,
                    read,
                }) => {
                    let at = *at;
                    let namespace = namespace.clone();
                    let read = read.get_or_insert_with(|| {
                        let dm = self.dm.for_namespace(&namespace).ok();
                        tokio::spawn(async move {
                            let dm = dm?;
                            // Entries read one by one: a malformed one does not void the read.
                            let read = tokio::time::timeout(FRESH_READ_TIMEOUT, dm.listing(None));
                            read.await.ok()?.ok().map(|listing| listing.entries)
                        })
                    });
                    // Dropped while waiting: the read goes on and is awaited next time.
                    let entries = read.await.ok().flatten();
                    self.pending.pop_front();
                    if let Some(entries) = entries {
                        // Nothing older than this read may arrive after it.
                        let _ = self.subscribe(&namespace);
                        return Some(Observed {
                            at,
                            namespace: Some(namespace),
                            fact: Fact::Snapshot(entries),
                        });
                    }
                    // Not answered in time: the exit is judged from what is known
                    // (and a namespace not watched yet is watched anyway).
                    if !self.feeds.contains(&namespace) {
                        let _ = self.watch_namespace(&namespace);
                    }
                    continue;
                }
                Some(Pending::Fact(..)) => {
                    if let Some(Pending::Fact(at, fact)) = self.pending.pop_front() {
                        return Some(process(at, fact));
                    }
                }
                None => {}
            }
            tokio::select! {
                // Process events first: a worker's first writes can reach the
                // feed before its `Started` is read, and the order decides
                // whether the start looks like a recovery.
                biased;
                event = self.events.recv() => match event {
                    Ok(event) => {
                        let Some(fact) = fact_from_event(&event) else { continue };
                        let namespace = self.namespace_of(&event.instance).to_string();
                        // A worker found (attach) in a namespace of its own: what
                        // that holds is read first (and then watched), so the
                        // worker is judged as found there.
                        let unwatched = !self.feeds.contains(&namespace)
                            && self.feeds.len() < MAX_FEEDS;
                        let unseen_end = matches!(
                            event.kind,
                            EventKind::Exited { status: None, .. }
                        );
                        let polling = self.polling.contains(&namespace);
                        // A clean exit's last writes (the completion) were acknowledged
                        // before it exited, but the stream may bring them after the
                        // exit: without them a completed task reads as stopped.
                        let clean_end = matches!(
                            event.kind,
                            EventKind::Exited { status: Some(RawExit::Code(0)), .. }
                        );
                        // How a run ended is judged from the namespace: read it now,
                        // not from the last poll (which may predate its last writes).
                        let ended = matches!(fact, Fact::Exited { .. })
                            && (unseen_end || polling || clean_end);
                        if unwatched || ended {
                            // The fresh read goes first.
                            self.pending.push_back(Pending::FreshRead {
                                at: event.ts_ms,
                                namespace,
                                read: None,
                            });
                            self.pending.push_back(Pending::Fact(event.ts_ms, fact));
                            continue;
                        }
                        return Some(process(event.ts_ms, fact));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                view = next_view(&mut self.cluster) => match view {
                    Some(view) => {
                        let at = now_ms();
                        // The cluster first (the node of each instance), then
                        // what it says about instances on other machines.
                        self.remote_facts(at, &view);
                        return Some(process(at, Fact::Cluster(view)));
                    }
                    None => self.cluster = None,
                },
                Some((at, fact)) = self.node_facts.recv() => return Some(process(at, fact)),
                change = self.feeds.next(), if !self.feeds.is_empty() => {
                    let (namespace, change) = change?;
                    match &change {
                        WatchEvent::Status(FeedStatus::Polling(_)) => {
                            self.polling.insert(namespace.clone());
                        }
                        WatchEvent::Status(FeedStatus::Streaming) => {
                            self.polling.remove(&namespace);
                        }
                        _ => {}
                    }
                    let fact = fact_from_change(change);
                    // A worker's start keys: under our agents, a new worker to
                    // find now, before its first checkpoint (not at the next rescan).
                    if self.nodes.is_some() && announces_a_start(&fact) {
                        if let Some(watcher) = &self.attached {
                            watcher.rescan();
                        }
                    }
                    let (at, fact) = fact.stamped(now_ms());
                    return Some(Observed {
                        at,
                        namespace: Some(namespace),
                        fact,
                    });
                }
            }
        }
    }
}

impl Session {
    /// Queues what a cluster read says about the app's remote instances; an
    /// end goes after a fresh read of its namespace, as an unseen exit here.
    fn remote_facts(&mut self, at: TsMs, view: &ClusterView) {
        let Some(remote) = &self.remote else { return };
        let handle = self.handle();
        let local = |id: &str| {
            handle.supervisor.instance(id).is_some()
                || handle
                    .attached
                    .as_ref()
                    .is_some_and(|w| w.instances().iter().any(|s| s.id == id))
        };
        let facts = remote.observe(view, &local);
        if facts.is_empty() {
            return;
        }
        // A worker of ours may be found here yet: look now, not at the next rescan.
        if let Some(watcher) = &self.attached {
            watcher.rescan();
        }
        // When its agent saw it, unless that is later than now (another clock).
        let when = |t: Option<TsMs>| t.filter(|t| *t <= at).unwrap_or(at);
        for fact in facts {
            match fact {
                RemoteFact::Now(t, fact) => self.pending.push_back(Pending::Fact(when(t), fact)),
                RemoteFact::End(t, fact) => {
                    let at = when(t);
                    let instance = match &fact {
                        Fact::Exited { instance, .. } => instance.clone(),
                        _ => String::new(),
                    };
                    self.pending.push_back(Pending::FreshRead {
                        at,
                        namespace: self.namespace_of(&instance).to_string(),
                        read: None,
                    });
                    self.pending.push_back(Pending::Fact(at, fact));
                }
            }
        }
    }
}

/// The next cluster read; never ready when there is no reader.
async fn next_view(cluster: &mut Option<mpsc::Receiver<ClusterView>>) -> Option<ClusterView> {
    match cluster {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
