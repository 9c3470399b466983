//! A set of namespaces as one live feed: one connection to plumdash's
//! `POST /v1/stream` (filtered at the controller: only the set's changes
//! travel), or — against a controller without it (the original, an older
//! plumdash) — every namespace polled each interval, one list read per
//! namespace, a few at a time.
//!
//! Each namespace is judged as its own feed (`watch.rs`'s checks, its own
//! trouble report) and its events come out tagged with its name. A namespace
//! added later ([`SetWatcher::add`]) joins the open stream through
//! `POST /v1/stream/{id}`, which sends its snapshot in change order; the
//! same route resyncs one namespace ([`SetWatcher::resync`]): its events are
//! dropped until that fresh snapshot arrives.

use super::client::{expect_status, DistributedMemory};
use super::model::Entry;
use super::sse::SseEvent;
use super::watch::{
    json_kind, judge_data, open_stream, poll_events, reconnect, FeedMode, FeedStatus, Reconnect,
    Reporter, StreamEnd, StreamReader, StreamState, WatchEvent, WatchOptions, ANSWER_TIMEOUT,
};
use crate::backoff::Backoff;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many namespaces the polling fallback reads at once.
pub const POLL_CONCURRENCY: usize = 8;
/// The most names one add request carries (the controller's body is bounded).
const ADD_CHUNK: usize = 1000;
/// How often trouble counts not yet told are told (as `watch.rs`).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A running feed of a set of namespaces. Dropping it stops the task.
pub struct SetWatcher {
    rx: mpsc::Receiver<(String, WatchEvent)>,
    commands: mpsc::UnboundedSender<Command>,
    watched: BTreeSet<String>,
    task: JoinHandle<()>,
}

enum Command {
    Add(String),
    Resync(String),
}

impl SetWatcher {
    /// Watches one more namespace (it starts with a snapshot); false when it
    /// was watched already.
    pub fn add(&mut self, namespace: &str) -> bool {
        if !self.watched.insert(namespace.to_string()) {
            return false;
        }
        let _ = self.commands.send(Command::Add(namespace.to_string()));
        true
    }

    /// A fresh snapshot of `namespace`, in change order: nothing it held
    /// before arrives after it.
    pub fn resync(&self, namespace: &str) {
        if self.watched.contains(namespace) {
            let _ = self.commands.send(Command::Resync(namespace.to_string()));
        }
    }

    pub fn contains(&self, namespace: &str) -> bool {
        self.watched.contains(namespace)
    }

    pub fn len(&self) -> usize {
        self.watched.len()
    }

    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
    }

    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.watched.iter().map(String::as_str)
    }
}

impl futures_util::Stream for SetWatcher {
    type Item = (String, WatchEvent);

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for SetWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DistributedMemory {
    /// Starts watching these namespaces (of this client's controller) as one feed.
    pub fn subscribe_set(
        &self,
        namespaces: impl IntoIterator<Item = String>,
        options: WatchOptions,
    ) -> SetWatcher {
        let watched: BTreeSet<String> = namespaces.into_iter().collect();
        let (tx, rx) = mpsc::channel(4096);
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let feed = SetFeed {
            dm: self.clone(),
            options,
            tx,
            commands: commands_rx,
            spaces: watched
                .iter()
                .map(|ns| (ns.clone(), Space::default()))
                .collect(),
            status: None,
        };
        SetWatcher {
            rx,
            commands,
            watched,
            task: tokio::spawn(reconnect(feed)),
        }
    }
}

/// One namespace of the set, judged as its own feed.
#[derive(Default)]
struct Space {
    trouble: Reporter,
    state: StreamState,
    /// Its events are stale until its next snapshot (added, or resynced).
    awaiting: bool,
    /// Polling: what the last read held (`None`: the next read is a snapshot).
    known: Option<BTreeMap<String, Entry>>,
    /// Polling: its last read failed (told once until one works).
    down: bool,
}

struct SetFeed {
    dm: DistributedMemory,
    options: WatchOptions,
    tx: mpsc::Sender<(String, WatchEvent)>,
    commands: mpsc::UnboundedReceiver<Command>,
    spaces: BTreeMap<String, Space>,
    /// The status told to every namespace (a new one is told it at once).
    status: Option<FeedStatus>,
}

impl Reconnect for SetFeed {
    fn options(&self) -> &WatchOptions {
        &self.options
    }

    async fn stream_once(&mut self) -> StreamEnd {
        let names: Vec<&String> = self.spaces.keys().collect();
        let req = self
            .dm
            .request(Method::POST, &self.dm.stream_url())
            .json(&serde_json::json!({ "namespaces": names }));
        let mut resp = match open_stream(&self.dm, req, "set change stream").await {
            Ok(resp) => resp,
            Err(end) => return end,
        };
        for space in self.spaces.values_mut() {
            space.awaiting = true;
            space.state = StreamState::default();
        }
        if !self.tell_status(FeedStatus::Streaming).await {
            return StreamEnd::Closed;
        }

        let mut reader = StreamReader::new(&self.options);
        let mut ready: Vec<SseEvent> = Vec::new();
        let mut id: Option<String> = None;
        // Names to add (or resync) once the stream says its id.
        let mut to_add: Vec<String> = Vec::new();
        let mut reports = tokio::time::interval(REPORT_EVERY);
        loop {
            tokio::select! {
                read = tokio::time::timeout_at(reader.deadline(), resp.chunk()) => {
                    let taken = match read {
                        Ok(read) => reader.take(read, &mut ready),
                        Err(_) => match reader.overdue() {
                            Some(end) => Err(end),
                            None => Ok(()),
                        },
                    };
                    if let Err(end) = taken {
                        return end;
                    }
                    let events = std::mem::take(&mut ready);
                    for event in events {
                        if event.event == "subscribed" {
                            id = serde_json::from_str::<serde_json::Value>(&event.data)
                                .ok()
                                .and_then(|v| v["id"].as_str().map(str::to_string));
                            continue;
                        }
                        if !self.on_event(event).await {
                            return StreamEnd::Closed;
                        }
                        let resync = self.spaces.values_mut().find_map(|s| s.state.resync.take());
                        if let Some(why) = resync {
                            return StreamEnd::Misbehaved(format!("set change stream: {why}"));
                        }
                    }
                }
                command = self.commands.recv() => {
                    let Some(command) = command else { return StreamEnd::Closed };
                    let mut batch = vec![command];
                    while let Ok(more) = self.commands.try_recv() {
                        batch.push(more);
                    }
                    for command in batch {
                        let ns = match command {
                            Command::Add(ns) => {
                                if self.join(&ns).await.is_none() {
                                    return StreamEnd::Closed;
                                }
                                ns
                            }
                            Command::Resync(ns) => ns,
                        };
                        if let Some(space) = self.spaces.get_mut(&ns) {
                            space.awaiting = true;
                            to_add.push(ns);
                        }
                    }
                }
                _ = reports.tick() => {
                    if !self.report(None).await {
                        return StreamEnd::Closed;
                    }
                }
            }
            if let (Some(id), false) = (&id, to_add.is_empty()) {
                for chunk in std::mem::take(&mut to_add).chunks(ADD_CHUNK) {
                    if let Err(why) = self.add_to_stream(id, chunk).await {
                        return StreamEnd::Failed(why);
                    }
                }
            }
        }
    }

    /// Polls every namespace each interval (one list read each, at most
    /// [`POLL_CONCURRENCY`] at once) until the consumer leaves (false).
    async fn poll(&mut self, backoff: &mut Backoff) -> bool {
        let interval = match self.options.mode {
            FeedMode::Polling(i) => i,
            _ => self.options.poll_interval,
        };
        self.status = Some(FeedStatus::Polling(interval));
        loop {
            let started = tokio::time::Instant::now();
            let names: Vec<String> = self.spaces.keys().cloned().collect();
            let dm = self.dm.clone();
            let reads: Vec<(String, Result<super::model::Listing, String>)> =
                futures_util::stream::iter(names)
                    .map(|ns| {
                        let dm = dm.clone();
                        async move {
                            let read = match dm.for_namespace(&ns) {
                                Ok(dm) => dm.listing(None).await.map_err(|e| e.to_string()),
                                Err(e) => Err(e.to_string()),
                            };
                            (ns, read)
                        }
                    })
                    .buffer_unordered(POLL_CONCURRENCY)
                    .collect()
                    .await;
            let mut failed = 0;
            let total = reads.len();
            for (ns, read) in reads {
                let ok = read.is_ok();
                if !self.apply_read(&ns, read, interval, backoff).await {
                    return false;
                }
                failed += usize::from(!ok);
            }
            // Every read failing is the controller down: wait longer each time.
            let next = if total > 0 && failed == total {
                backoff.next_delay()
            } else {
                backoff.reset();
                interval
            };
            if !self.absorb_poll_commands_until(started + next).await {
                return false;
            }
        }
    }

    /// Every namespace is told the feed is down, a misbehaving stream as
    /// any other; the set's commands are taken while it waits.
    async fn lost(&mut self, why: String, _misbehaved: bool, retry_in: Duration) -> bool {
        let down = FeedStatus::Down {
            error: why,
            retry_in,
        };
        if !self.tell_status(down).await {
            return false;
        }
        let until = tokio::time::Instant::now() + retry_in;
        self.absorb_commands_until(until).await
    }
}

impl SetFeed {
    async fn emit(&self, namespace: &str, event: WatchEvent) -> bool {
        self.tx.send((namespace.to_string(), event)).await.is_ok()
    }

    /// Tells every namespace how changes arrive now.
    async fn tell_status(&mut self, status: FeedStatus) -> bool {
        self.status = Some(status.clone());
        let names: Vec<String> = self.spaces.keys().cloned().collect();
        for ns in names {
            if !self.emit(&ns, WatchEvent::Status(status.clone())).await {
                return false;
            }
        }
        true
    }

    /// A namespace joins: told the current status; true when it is new.
    async fn join(&mut self, ns: &str) -> Option<bool> {
        if self.spaces.contains_key(ns) {
            return Some(false);
        }
        self.spaces.insert(ns.to_string(), Space::default());
        if let Some(status) = self.status.clone() {
            if !self.emit(ns, WatchEvent::Status(status)).await {
                return None;
            }
        }
        Some(true)
    }

    /// Takes commands while waiting (no connection to act on: the next one
    /// starts with every namespace's snapshot). False when the consumer left.
    async fn absorb_commands_until(&mut self, until: tokio::time::Instant) -> bool {
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return true,
                command = self.commands.recv() => match command {
                    Some(Command::Add(ns)) => {
                        if self.join(&ns).await.is_none() {
                            return false;
                        }
                    }
                    Some(Command::Resync(_)) => {}
                    None => return false,
                },
            }
        }
    }

    /// Sends each due trouble report (`all`: every unsent one, else only `ns`'s).
    async fn report(&mut self, only: Option<(&str, bool)>) -> bool {
        let due: Vec<(String, WatchEvent)> = match only {
            Some((ns, urgent)) => self
                .spaces
                .get_mut(ns)
                .and_then(|s| s.trouble.due(urgent))
                .map(|e| (ns.to_string(), e))
                .into_iter()
                .collect(),
            None => self
                .spaces
                .iter_mut()
                .filter(|(_, s)| s.trouble.deadline().is_some())
                .filter_map(|(ns, s)| s.trouble.due(false).map(|e| (ns.clone(), e)))
                .collect(),
        };
        for (ns, event) in due {
            if !self.emit(&ns, event).await {
                return false;
            }
        }
        true
    }

    /// `POST /v1/stream/{id}`: the names' snapshots follow on the stream.
    async fn add_to_stream(&self, id: &str, names: &[String]) -> Result<(), String> {
        let url = format!("{}/{id}", self.dm.stream_url());
        let req = self
            .dm
            .request(Method::POST, &url)
            .json(&serde_json::json!({ "namespaces": names }))
            .timeout(ANSWER_TIMEOUT);
        let resp = self.dm.send(req).await.map_err(|e| e.to_string())?;
        expect_status(resp, &[StatusCode::OK])
            .await
            .map(drop)
            .map_err(|e| format!("adding namespaces to the change stream: {e}"))
    }

    /// One event of the set stream, routed to its namespace and judged there.
    async fn on_event(&mut self, event: SseEvent) -> bool {
        let kind = event.event.as_str();
        if !matches!(kind, "ns-snapshot" | "kv" | "kv-deleted") || event.malformed.is_some() {
            return true;
        }
        let Ok(mut data) = serde_json::from_str::<serde_json::Value>(&event.data) else {
            return true;
        };
        let seq = event.id.as_deref().and_then(|id| id.parse::<u64>().ok());
        let Some(ns) = data
            .get("namespace")
            .and_then(|n| n.as_str())
            .map(str::to_string)
        else {
            return true;
        };
        // Not one of ours: the controller filters at the source, so this is
        // not expected; a namespace's own report could not hold it.
        let Some(space) = self.spaces.get_mut(&ns) else {
            tracing::debug!("set feed: an event of namespace {ns:?}, not watched");
            return true;
        };
        let (kind, data) = if kind == "ns-snapshot" {
            space.awaiting = false;
            let entries = data
                .get_mut("entries")
                .map(serde_json::Value::take)
                .unwrap_or(serde_json::Value::Null);
            if !matches!(
                entries,
                serde_json::Value::Array(_) | serde_json::Value::Null
            ) {
                space.trouble.skipped(format!(
                    "a snapshot that is not a list ({})",
                    json_kind(&entries)
                ));
                return self.report(Some((&ns, false))).await;
            }
            ("snapshot", entries)
        } else if space.awaiting {
            // Before its fresh snapshot: already in it.
            return true;
        } else {
            (kind, data)
        };
        let mut urgent = false;
        let out = judge_data(
            &ns,
            &mut space.trouble,
            &mut space.state,
            kind,
            seq,
            data,
            &mut urgent,
        );
        for event in out {
            if !self.emit(&ns, event).await {
                return false;
            }
        }
        self.report(Some((&ns, urgent))).await
    }

    async fn apply_read(
        &mut self,
        ns: &str,
        read: Result<super::model::Listing, String>,
        interval: Duration,
        backoff: &Backoff,
    ) -> bool {
        let Some(space) = self.spaces.get_mut(ns) else {
            return true;
        };
        let listing = match read {
            Ok(listing) => listing,
            Err(error) => {
                space.known = None;
                if space.down {
                    return true;
                }
                space.down = true;
                let retry_in = backoff.nth(0).max(interval);
                let status = FeedStatus::Down { error, retry_in };
                return self.emit(ns, WatchEvent::Status(status)).await;
            }
        };
        let was_down = std::mem::take(&mut space.down);
        let status =
            (was_down || space.state.last_seq.is_none()).then_some(FeedStatus::Polling(interval));
        let (events, entries, changed) =
            poll_events(&mut space.trouble, listing, space.known.as_ref(), status);
        // Marks "told Polling" for this namespace (no change numbers here).
        space.state.last_seq = Some(0);
        space.known = Some(entries.into_iter().map(|e| (e.key.clone(), e)).collect());
        for event in events {
            if !self.emit(ns, event).await {
                return false;
            }
        }
        self.report(Some((ns, changed))).await
    }

    /// Takes commands until the next round: a new namespace is read in it; a
    /// resynced one is read afresh (a snapshot).
    async fn absorb_poll_commands_until(&mut self, until: tokio::time::Instant) -> bool {
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return true,
                command = self.commands.recv() => match command {
                    Some(Command::Add(ns)) => {
                        // Polling is told with its first read.
                        self.spaces.entry(ns).or_default();
                    }
                    Some(Command::Resync(ns)) => {
                        if let Some(space) = self.spaces.get_mut(&ns) {
                            space.known = None;
                        }
                    }
                    None => return false,
                },
            }
        }
    }
}
