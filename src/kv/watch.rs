//! A namespace as a live feed of changes: Server-Sent Events when the
//! controller has `/v1/stream` (plumdash's does), polling `GET /v1/kv/{ns}`
//! otherwise (an original Plum controller answers 400 there).
//!
//! The feed reports its own health (`Status`) so a UI can tell "no changes"
//! from "controller down", and it reconnects with backoff by itself.
//!
//! It trusts nothing it is sent: each event is checked against the
//! subscription (its namespace; on plumdash's stream, the change number),
//! each entry is read on its own, and what does not fit is dropped or skipped,
//! counted and reported (`Trouble`), never a reason to reconnect.

use super::client::{expect_status, DistributedMemory};
use super::model::{read_entry, Entry, EntryRead, Listing, Unreadable, STREAM_KEEP_ALIVE};
use super::sse::{SseDecoder, SseEvent};
use crate::backoff::Backoff;
use reqwest::{Method, StatusCode};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How the feed should get changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedMode {
    /// The stream when the server has one, else polling.
    Auto,
    /// Only the stream (reports Down while it is unavailable).
    Stream,
    /// Only polling, at this interval.
    Polling(Duration),
}

#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub mode: FeedMode,
    /// Polling interval used by `Auto` when it falls back.
    pub poll_interval: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
    /// A stream that carried no bytes at all for this long is taken as dead.
    /// Any bytes count, keep-alive comments included (the server sends one
    /// every [`STREAM_KEEP_ALIVE`] while nothing changes), so a quiet
    /// namespace is never reported as an outage.
    pub stream_idle_timeout: Duration,
    /// The longest line (and event) the stream may send; a longer one ends
    /// the connection as the controller's fault, so memory stays bounded.
    pub max_line: usize,
    /// A stream whose bytes complete no line for this long (one trickling a
    /// byte now and then, never an event or a keep-alive) is ended as the
    /// controller's fault: bytes alone do not make it live.
    pub line_patience: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            mode: FeedMode::Auto,
            poll_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            // Three keep-alives missed in a row.
            stream_idle_timeout: STREAM_KEEP_ALIVE * 3,
            max_line: super::sse::MAX_LINE,
            line_patience: LINE_PATIENCE,
        }
    }
}

/// How changes are arriving right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedStatus {
    Streaming,
    Polling(Duration),
    Down { error: String, retry_in: Duration },
}

/// What the controller sent that the feed could not use. The counts run from
/// the feed's start; each report replaces the one before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedTrouble {
    /// The namespace's entries, as of now, that do not read as entries (told
    /// again after every snapshot, which clears them at the consumer).
    pub unreadable: Vec<Unreadable>,
    /// Events skipped as malformed (not JSON, not the event's shape).
    pub skipped: u64,
    /// Events and entries dropped as not this subscription's: another
    /// namespace's, or a change numbered at or before one already applied.
    pub dropped: u64,
    /// The latest of those problems, on one line.
    pub last: Option<String>,
    /// The connection was ended for what it sent (a line over the cap); it is
    /// tried again after `retry_in`. Cleared once a connection carries
    /// something usable, or the controller is unreachable instead.
    pub broken: Option<String>,
    pub retry_in: Duration,
}

impl FeedTrouble {
    /// Anything to tell a person.
    pub fn any(&self) -> bool {
        !self.unreadable.is_empty() || self.skipped > 0 || self.dropped > 0 || self.broken.is_some()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    Status(FeedStatus),
    /// The whole namespace; replaces whatever the consumer held.
    Snapshot(Vec<Entry>),
    Put(Entry),
    /// Several keys written at once (one batch, or one poll's worth of
    /// changes): apply them together, never one by one.
    Batch(Vec<Entry>),
    Deleted {
        key: String,
        /// Who deleted it, when the controller says (plumdash's stream).
        writer: Option<super::model::Writer>,
    },
    /// The controller sent something unusable (see [`FeedTrouble`]).
    Trouble(FeedTrouble),
}

/// A running feed. Dropping it stops the background task.
pub struct Watcher {
    rx: mpsc::Receiver<WatchEvent>,
    task: JoinHandle<()>,
}

impl Watcher {
    pub async fn recv(&mut self) -> Option<WatchEvent> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Option<WatchEvent> {
        self.rx.try_recv().ok()
    }
}

/// A feed as a stream of its events (several feeds merge in a `StreamMap`).
impl futures_util::Stream for Watcher {
    type Item = WatchEvent;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<WatchEvent>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DistributedMemory {
    /// Starts watching this namespace.
    pub fn subscribe(&self, options: WatchOptions) -> Watcher {
        let (tx, rx) = mpsc::channel(1024);
        let feed = Feed {
            dm: self.clone(),
            options,
            tx,
            trouble: Reporter::default(),
        };
        Watcher {
            rx,
            task: tokio::spawn(reconnect(feed)),
        }
    }
}

struct Feed {
    dm: DistributedMemory,
    options: WatchOptions,
    tx: mpsc::Sender<WatchEvent>,
    trouble: Reporter,
}

/// Sends a stream request and checks that the answer is an event stream:
/// the response, or how the attempt ended (`what` names the stream in the
/// message). Shared by the one-namespace feed and the set feed.
pub(super) async fn open_stream(
    dm: &DistributedMemory,
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<reqwest::Response, StreamEnd> {
    let req = req
        .header(reqwest::header::ACCEPT, "text/event-stream")
        // Long-lived: liveness is judged by keep-alives instead.
        .timeout(Duration::from_secs(365 * 24 * 3600));
    // A controller that accepts and never answers is not waited on forever.
    let resp = match tokio::time::timeout(ANSWER_TIMEOUT, dm.send(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(StreamEnd::Failed(e.to_string())),
        Err(_) => {
            return Err(StreamEnd::Failed(format!(
                "no answer from {} within {}",
                dm.shown_url(),
                humantime::format_duration(ANSWER_TIMEOUT)
            )))
        }
    };
    let status = resp.status();
    let is_sse = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    ) || (status == StatusCode::OK && !is_sse)
    {
        return Err(StreamEnd::Unsupported(format!("no {what} (HTTP {status})")));
    }
    if status != StatusCode::OK {
        let err = expect_status(resp, &[StatusCode::OK]).await.err();
        return Err(StreamEnd::Failed(
            err.map_or_else(|| status.to_string(), |e| e.to_string()),
        ));
    }
    Ok(resp)
}

/// Why a stream attempt ended.
pub(super) enum StreamEnd {
    /// The server has no usable stream: poll instead.
    Unsupported(String),
    /// Lost or never reached: retry after a backoff.
    Failed(String),
    /// It sent what cannot be read on (a line over the cap): retry after a
    /// backoff, reported as the controller's fault, not as an outage.
    Misbehaved(String),
    /// The consumer went away.
    Closed,
}

/// The feed's trouble as last reported, and what is not reported yet. Counts
/// are told at most once a second (a flood of bad events is not a flood of
/// reports); a change of the unreadable entries or a broken connection at once.
#[derive(Default)]
pub(super) struct Reporter {
    now: FeedTrouble,
    /// Unreadable entries by key (`None`: one without a key, kept apart).
    unreadable: BTreeMap<String, Unreadable>,
    unsent: bool,
    sent_at: Option<tokio::time::Instant>,
    logged_skip: bool,
    logged_drop: bool,
    logged_broken: bool,
}

impl Reporter {
    pub(super) fn skipped(&mut self, why: String) {
        if !self.logged_skip {
            self.logged_skip = true;
            tracing::warn!("change feed: the controller sends malformed data ({why}); skipping and counting such events");
        }
        self.now.skipped += 1;
        self.now.last = Some(why);
        self.unsent = true;
    }

    pub(super) fn dropped(&mut self, n: u64, why: String) {
        if !self.logged_drop {
            self.logged_drop = true;
            tracing::warn!("change feed: the controller sends changes that are not this subscription's ({why}); dropping and counting them");
        }
        self.now.dropped += n;
        self.now.last = Some(why);
        self.unsent = true;
    }

    /// Replaces the unreadable entries (a snapshot); true when they changed.
    pub(super) fn replace_unreadable(&mut self, list: Vec<Unreadable>) -> bool {
        let fresh: BTreeMap<String, Unreadable> = list
            .into_iter()
            .map(|u| (u.key_text().to_string(), u))
            .collect();
        let changed = fresh != self.unreadable;
        self.unreadable = fresh;
        changed
    }

    pub(super) fn has_unreadable(&self) -> bool {
        !self.unreadable.is_empty()
    }

    fn set_unreadable(&mut self, u: Unreadable) -> bool {
        let key = u.key_text().to_string();
        self.unreadable.insert(key, u.clone()) != Some(u)
    }

    /// A good write or delete of `key`: no longer unreadable.
    fn readable(&mut self, key: &str) -> bool {
        self.unreadable.remove(key).is_some()
    }

    /// The report to send now, if one is due (`urgent`: whatever the time).
    pub(super) fn due(&mut self, urgent: bool) -> Option<WatchEvent> {
        let now = tokio::time::Instant::now();
        let quiet = self
            .sent_at
            .is_none_or(|at| now.duration_since(at) >= REPORT_EVERY);
        if !(urgent || (self.unsent && quiet)) {
            return None;
        }
        self.now.unreadable = self.unreadable.values().cloned().collect();
        self.unsent = false;
        self.sent_at = Some(now);
        Some(WatchEvent::Trouble(self.now.clone()))
    }

    /// When an unsent report falls due.
    pub(super) fn deadline(&self) -> Option<tokio::time::Instant> {
        self.unsent
            .then(|| self.sent_at.map(|at| at + REPORT_EVERY))
            .flatten()
    }
}

/// A feed that [`reconnect`] drives: one stream connection at a time, or a
/// round of polling, and what it does when a connection is lost.
pub(super) trait Reconnect {
    fn options(&self) -> &WatchOptions;
    /// One stream connection, from connect to loss.
    async fn stream_once(&mut self) -> StreamEnd;
    /// One round of polling; false when the consumer left.
    async fn poll(&mut self, backoff: &mut Backoff) -> bool;
    /// The stream is lost (`misbehaved`: the controller sent what cannot be
    /// read on): tell it, and wait `retry_in`. False when the consumer left.
    async fn lost(&mut self, why: String, misbehaved: bool, retry_in: Duration) -> bool;
}

/// The loop of both feeds: the stream while there is one (polling instead
/// when the controller has none and the mode allows), with a backoff
/// between connections that only a connection that worked for a while
/// resets (one that fails at once, a controller answering garbage, backs off).
pub(super) async fn reconnect(mut feed: impl Reconnect) {
    let mut backoff = Backoff::new(FIRST_RETRY, feed.options().max_backoff);
    let mut use_stream = !matches!(feed.options().mode, FeedMode::Polling(_));
    loop {
        if !use_stream {
            if !feed.poll(&mut backoff).await {
                return;
            }
            continue;
        }
        let opened = tokio::time::Instant::now();
        let end = feed.stream_once().await;
        if opened.elapsed() >= STABLE_CONNECTION {
            backoff.reset();
        }
        let (why, misbehaved) = match end {
            StreamEnd::Closed => return,
            StreamEnd::Unsupported(_) if feed.options().mode == FeedMode::Auto => {
                use_stream = false;
                continue;
            }
            StreamEnd::Unsupported(why) | StreamEnd::Failed(why) => (why, false),
            StreamEnd::Misbehaved(why) => (why, true),
        };
        if !feed.lost(why, misbehaved, backoff.next_delay()).await {
            return;
        }
    }
}

impl Reconnect for Feed {
    fn options(&self) -> &WatchOptions {
        &self.options
    }

    /// One stream connection, from connect to loss.
    async fn stream_once(&mut self) -> StreamEnd {
        let req = self
            .dm
            .request(Method::GET, &self.dm.stream_url())
            .query(&[("namespace", self.dm.namespace())]);
        let mut resp = match open_stream(&self.dm, req, "change stream").await {
            Ok(resp) => resp,
            Err(end) => return end,
        };
        if !self.emit(WatchEvent::Status(FeedStatus::Streaming)).await {
            return StreamEnd::Closed;
        }

        let mut reader = StreamReader::new(&self.options);
        let mut ready: Vec<SseEvent> = Vec::new();
        let mut state = StreamState::default();
        loop {
            let wake = match self.trouble.deadline() {
                Some(report) => report.min(reader.deadline()),
                None => reader.deadline(),
            };
            match tokio::time::timeout_at(wake, resp.chunk()).await {
                Ok(read) => {
                    if let Err(end) = reader.take(read, &mut ready) {
                        return end;
                    }
                }
                Err(_) => {
                    if let Some(end) = reader.overdue() {
                        return end;
                    }
                    if !self.report(false).await {
                        return StreamEnd::Closed;
                    }
                    continue;
                }
            }
            for event in ready.drain(..) {
                let mut urgent = false;
                let usable = self.judge(&mut state, event, &mut urgent);
                if let Some(why) = state.resync.take() {
                    return StreamEnd::Misbehaved(format!("change stream: {why}"));
                }
                // A connection is only well again once it carried something usable.
                if !usable.is_empty() && self.trouble.now.broken.take().is_some() {
                    urgent = true;
                }
                for out in usable {
                    if !self.emit(out).await {
                        return StreamEnd::Closed;
                    }
                }
                if !self.report(urgent).await {
                    return StreamEnd::Closed;
                }
            }
        }
    }

    /// Polls until the consumer leaves (false) — errors are reported and retried here.
    async fn poll(&mut self, backoff: &mut Backoff) -> bool {
        let interval = match self.options.mode {
            FeedMode::Polling(i) => i,
            _ => self.options.poll_interval,
        };
        let mut known: Option<BTreeMap<String, Entry>> = None;
        loop {
            match self.dm.listing(None).await {
                Ok(listing) => {
                    backoff.reset();
                    let status = Some(FeedStatus::Polling(interval));
                    let (events, entries, changed) =
                        poll_events(&mut self.trouble, listing, known.as_ref(), status);
                    for ev in events {
                        if !self.emit(ev).await {
                            return false;
                        }
                    }
                    if !self.report(changed).await {
                        return false;
                    }
                    known = Some(entries.into_iter().map(|e| (e.key.clone(), e)).collect());
                    tokio::time::sleep(interval).await;
                }
                Err(e) => {
                    // After an outage, start over with a fresh snapshot.
                    known = None;
                    if !self.down(e.to_string(), backoff.next_delay()).await {
                        return false;
                    }
                }
            }
        }
    }

    async fn lost(&mut self, why: String, misbehaved: bool, retry_in: Duration) -> bool {
        if !misbehaved {
            // Unreachable now, whatever it sent before.
            if self.trouble.now.broken.take().is_some() && !self.report(true).await {
                return false;
            }
            return self.down(why, retry_in).await;
        }
        if !self.trouble.logged_broken {
            self.trouble.logged_broken = true;
            tracing::warn!("change feed: {why}; retrying with backoff");
        }
        self.trouble.now.broken = Some(why);
        self.trouble.now.retry_in = retry_in;
        if !self.report(true).await {
            return false;
        }
        tokio::time::sleep(retry_in).await;
        true
    }
}

impl Feed {
    async fn emit(&self, event: WatchEvent) -> bool {
        self.tx.send(event).await.is_ok()
    }

    /// Sends the trouble report if due; false when the consumer left.
    async fn report(&mut self, urgent: bool) -> bool {
        match self.trouble.due(urgent) {
            Some(event) => self.emit(event).await,
            None => true,
        }
    }

    /// Reports the feed down and sleeps the backoff; false when the consumer left.
    async fn down(&mut self, error: String, retry_in: Duration) -> bool {
        if !self.report(false).await {
            return false;
        }
        let status = FeedStatus::Down { error, retry_in };
        if !self.emit(WatchEvent::Status(status)).await {
            return false;
        }
        tokio::time::sleep(retry_in).await;
        true
    }

    /// One event of the stream checked against the subscription: what to
    /// hand on (nothing for a skipped or dropped one). `urgent` is set when
    /// the unreadable entries changed.
    fn judge(
        &mut self,
        state: &mut StreamState,
        event: SseEvent,
        urgent: &mut bool,
    ) -> Vec<WatchEvent> {
        let namespace = self.dm.namespace().to_string();
        let kind = event.event.as_str();
        if !matches!(kind, "snapshot" | "kv" | "kv-deleted") {
            return Vec::new();
        }
        let what = crate::text_safety::escape_controls(kind).into_owned();
        if let Some(why) = event.malformed {
            self.trouble.skipped(format!("a {what} event with {why}"));
            return Vec::new();
        }
        let data: serde_json::Value = match serde_json::from_str(&event.data) {
            Ok(v) => v,
            Err(e) => {
                self.trouble
                    .skipped(format!("a {what} event that is not JSON ({e})"));
                return Vec::new();
            }
        };
        // plumdash's stream numbers every change: one at or before the last
        // applied is stale or replayed.
        let seq = event.id.as_deref().and_then(|id| id.parse::<u64>().ok());
        judge_data(
            &namespace,
            &mut self.trouble,
            state,
            kind,
            seq,
            data,
            urgent,
        )
    }
}

/// One event's data checked against namespace `namespace`'s subscription
/// (`kind`: `snapshot`, `kv` or `kv-deleted`; `seq`: its change number): what
/// to hand on. Shared by the one-namespace feed and the set feed.
pub(super) fn judge_data(
    namespace: &str,
    trouble: &mut Reporter,
    state: &mut StreamState,
    kind: &str,
    seq: Option<u64>,
    data: serde_json::Value,
    urgent: &mut bool,
) -> Vec<WatchEvent> {
    let mut out = Vec::new();
    if kind == "snapshot" {
        let items = match data {
            serde_json::Value::Array(items) => items,
            serde_json::Value::Null => Vec::new(),
            other => {
                trouble.skipped(format!(
                    "a snapshot that is not a list ({})",
                    json_kind(&other)
                ));
                return Vec::new();
            }
        };
        state.flush_batch(&mut out);
        state.last_seq = seq;
        let listing = Listing::read(items, namespace);
        if listing.foreign > 0 {
            trouble.dropped(
                listing.foreign as u64,
                format!(
                    "{} entries of another namespace in a snapshot",
                    listing.foreign
                ),
            );
        }
        // A snapshot replaces what the consumer held, unreadable keys
        // included. Its unreadable keys are told first: the consumer then
        // never judges the snapshot without them (a task key that does not
        // read is unknown, not missing: not a torn checkpoint).
        let changed = trouble.replace_unreadable(listing.unreadable);
        if trouble.has_unreadable() {
            out.extend(trouble.due(true));
        } else {
            *urgent |= changed;
        }
        out.push(WatchEvent::Snapshot(listing.entries));
        return out;
    }
    if let (Some(seq), Some(last)) = (seq, state.last_seq) {
        if seq <= last {
            trouble.dropped(1, format!("change #{seq} after #{last}"));
            // One replayed change is dropped; numbers that stay below the
            // last one (a controller that sent #18446744073709551615) would
            // drop every change for good: the stream is read again from a
            // fresh snapshot instead.
            state.backwards += 1;
            if state.backwards >= BACKWARDS_BEFORE_RESYNC {
                state.resync = Some(format!(
                    "change numbers went backwards (#{seq} after #{last})"
                ));
            }
            return Vec::new();
        }
        state.backwards = 0;
    }
    if kind == "kv-deleted" {
        let ns = data
            .get("namespace")
            .and_then(|n| n.as_str())
            .filter(|n| !n.is_empty());
        if let Some(other) = ns.filter(|n| *n != namespace) {
            trouble.dropped(
                1,
                format!(
                    "a delete in namespace {:?}",
                    crate::kv::model::preview(other)
                ),
            );
            return Vec::new();
        }
        let Some(key) = data.get("key").and_then(|k| k.as_str()) else {
            trouble.skipped("a kv-deleted event without a key".into());
            return Vec::new();
        };
        state.flush_batch(&mut out);
        state.last_seq = seq.or(state.last_seq);
        *urgent |= trouble.readable(key);
        // Who deleted it, when the controller can tell (plumdash's).
        let writer = data
            .get("writer")
            .and_then(|w| serde_json::from_value(w.clone()).ok());
        out.push(WatchEvent::Deleted {
            key: key.to_string(),
            writer,
        });
        return out;
    }
    let batch = batch_position(&data);
    let entry = match read_entry(data, namespace) {
        EntryRead::Entry(entry) => entry,
        EntryRead::Foreign(other) => {
            trouble.dropped(
                1,
                format!(
                    "a write in namespace {:?}",
                    crate::kv::model::preview(&other)
                ),
            );
            return Vec::new();
        }
        EntryRead::Unreadable(u) if u.key.is_some() => {
            state.last_seq = seq.or(state.last_seq);
            trouble.skipped(format!("key {:?}: {}", u.key_text(), u.reason));
            *urgent |= trouble.set_unreadable(u);
            return Vec::new();
        }
        EntryRead::Unreadable(u) => {
            trouble.skipped(format!("a kv event: {}", u.reason));
            return Vec::new();
        }
    };
    state.last_seq = seq.or(state.last_seq);
    *urgent |= trouble.readable(&entry.key);
    match batch {
        Some((index, size)) if size > 1 && size <= MAX_BATCH => {
            // Items come in order; one out of place ends the batch before it.
            if index != state.batch.len() || state.batch_size != size {
                state.flush_batch(&mut out);
            }
            state.batch_size = size;
            state.batch.push(entry);
            if index + 1 >= size {
                state.flush_batch(&mut out);
            }
        }
        _ => {
            state.flush_batch(&mut out);
            out.push(WatchEvent::Put(entry));
        }
    }
    out
}

/// Longest a stream may go without completing a line (our controller sends a
/// keep-alive every 5 s; a 64 MiB snapshot line arrives well within it)
/// before it is taken for a controller that trickles bytes and never speaks.
const LINE_PATIENCE: Duration = Duration::from_secs(60);

/// One poll's listing as events: its other namespaces' entries counted, its
/// unreadable ones taken (told before a first snapshot, see `judge_data`),
/// then the snapshot — after `status`, if given — when nothing is `known`
/// yet, else the changes since. Also the entries, and whether a report of
/// the unreadable ones is still due.
pub(super) fn poll_events(
    trouble: &mut Reporter,
    listing: super::model::Listing,
    known: Option<&BTreeMap<String, Entry>>,
    status: Option<FeedStatus>,
) -> (Vec<WatchEvent>, Vec<Entry>, bool) {
    if listing.foreign > 0 {
        trouble.dropped(
            listing.foreign as u64,
            format!(
                "{} entries of another namespace in a listing",
                listing.foreign
            ),
        );
    }
    let mut changed = trouble.replace_unreadable(listing.unreadable);
    let entries = listing.entries;
    let events = match known {
        None => {
            let mut events: Vec<WatchEvent> = status.map(WatchEvent::Status).into_iter().collect();
            if trouble.has_unreadable() {
                events.extend(trouble.due(true));
                changed = false;
            }
            events.push(WatchEvent::Snapshot(entries.clone()));
            events
        }
        Some(old) => diff(old, &entries),
    };
    (events, entries, changed)
}

/// One stream connection's bytes read into events, and whether it is alive:
/// any bytes, keep-alive comments included, prove it alive within
/// `stream_idle_timeout`; a whole line within `line_patience`, that it is a
/// stream and not a trickle. Shared by both feeds.
pub(super) struct StreamReader {
    decoder: SseDecoder,
    idle: Duration,
    patience: Duration,
    silent_until: tokio::time::Instant,
    line_due: tokio::time::Instant,
}

impl StreamReader {
    pub(super) fn new(options: &WatchOptions) -> StreamReader {
        let now = tokio::time::Instant::now();
        StreamReader {
            decoder: SseDecoder::new(options.max_line, options.max_line),
            idle: options.stream_idle_timeout,
            patience: options.line_patience,
            silent_until: now + options.stream_idle_timeout,
            line_due: now + options.line_patience,
        }
    }

    /// When the stream is overdue unless more comes.
    pub(super) fn deadline(&self) -> tokio::time::Instant {
        self.silent_until.min(self.line_due)
    }

    /// Past [`StreamReader::deadline`]: how the stream ends, if it must.
    pub(super) fn overdue(&self) -> Option<StreamEnd> {
        let now = tokio::time::Instant::now();
        if now >= self.line_due {
            return Some(StreamEnd::Misbehaved(format!(
                "change stream: bytes but no complete line in {}",
                humantime::format_duration(self.patience)
            )));
        }
        (now >= self.silent_until).then(|| StreamEnd::Failed("change stream went silent".into()))
    }

    /// One read of the body: its events into `out`, or how the stream ended.
    pub(super) fn take(
        &mut self,
        read: reqwest::Result<Option<hyper::body::Bytes>>,
        out: &mut Vec<SseEvent>,
    ) -> Result<(), StreamEnd> {
        let chunk = match read {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                return Err(StreamEnd::Failed(
                    "change stream closed by the controller".into(),
                ))
            }
            Err(e) => return Err(StreamEnd::Failed(format!("change stream broke: {e}"))),
        };
        let now = tokio::time::Instant::now();
        self.silent_until = now + self.idle;
        let lines = self.decoder.lines();
        self.decoder
            .push(&chunk, out)
            .map_err(|e| StreamEnd::Misbehaved(format!("change stream: {e}")))?;
        if self.decoder.lines() != lines {
            self.line_due = now + self.patience;
        }
        Ok(())
    }
}

/// Changes in a row numbered at or below the last one before a stream is
/// taken for broken and read again from a fresh snapshot.
const BACKWARDS_BEFORE_RESYNC: u32 = 3;

/// What one stream connection remembers between events.
#[derive(Default)]
pub(super) struct StreamState {
    /// The last change number applied (plumdash's stream numbers them).
    pub(super) last_seq: Option<u64>,
    /// Changes dropped in a row as numbered at or below `last_seq`.
    backwards: u32,
    /// Why the stream must be read again from a fresh snapshot, once it must.
    pub(super) resync: Option<String>,
    /// Items of a batch in progress: emitted together once all arrived.
    batch: Vec<Entry>,
    batch_size: usize,
}

impl StreamState {
    fn flush_batch(&mut self, out: &mut Vec<WatchEvent>) {
        match self.batch.len() {
            0 => {}
            1 => out.extend(self.batch.drain(..).map(WatchEvent::Put)),
            _ => out.push(WatchEvent::Batch(std::mem::take(&mut self.batch))),
        }
        self.batch_size = 0;
    }
}

/// `batchIndex` and `batchSize` of a batch's item, when both are there.
fn batch_position(data: &serde_json::Value) -> Option<(usize, usize)> {
    let field = |name: &str| {
        data.get(name)
            .and_then(|v| v.as_u64())
            .and_then(|v| usize::try_from(v).ok())
    };
    Some((field("batchIndex")?, field("batchSize")?))
}

pub(super) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The changes that turn `old` into `new`. The writes come from one
/// consistent read, so several of them form one `Batch`.
pub(super) fn diff(old: &BTreeMap<String, Entry>, new: &[Entry]) -> Vec<WatchEvent> {
    let mut puts: Vec<Entry> = new
        .iter()
        .filter(|e| old.get(&e.key) != Some(*e))
        .cloned()
        .collect();
    let mut events = match puts.len() {
        0 => Vec::new(),
        1 => puts.drain(..).map(WatchEvent::Put).collect(),
        _ => vec![WatchEvent::Batch(puts)],
    };
    let new_keys: std::collections::HashSet<&str> = new.iter().map(|e| e.key.as_str()).collect();
    for key in old.keys() {
        if !new_keys.contains(key.as_str()) {
            events.push(WatchEvent::Deleted {
                key: key.clone(),
                writer: None,
            });
        }
    }
    events
}

/// The first reconnect waits this long; each further one in a row twice as long.
pub(super) const FIRST_RETRY: Duration = Duration::from_millis(200);
/// A stream connection that lasted this long worked: the next failure waits
/// `FIRST_RETRY` again.
pub(super) const STABLE_CONNECTION: Duration = Duration::from_secs(10);
/// Longest wait for a stream's answer (its status and headers).
pub(super) const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Trouble counts are reported at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// The most items a batch may announce (plumdash's controller takes at most
/// 1 MiB of batch body); a larger one is read as separate writes.
const MAX_BATCH: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::ValueType;

    fn entry(key: &str, value: &str) -> Entry {
        Entry {
            namespace: "ns".into(),
            key: key.into(),
            value: value.into(),
            value_type: ValueType::String,
            updated_at: 1,
            updated_at_ms: None,
            writer: None,
        }
    }

    #[test]
    fn diff_reports_puts_changes_and_deletes() {
        let old: BTreeMap<String, Entry> = [entry("a", "1"), entry("b", "2")]
            .into_iter()
            .map(|e| (e.key.clone(), e))
            .collect();
        let events = diff(&old, &[entry("a", "1"), entry("b", "3"), entry("c", "4")]);
        assert_eq!(
            events,
            vec![WatchEvent::Batch(vec![entry("b", "3"), entry("c", "4")])]
        );
        let events = diff(&old, &[entry("a", "1"), entry("b", "5")]);
        assert_eq!(events, vec![WatchEvent::Put(entry("b", "5"))]);
        let events = diff(&old, &[entry("b", "2")]);
        assert_eq!(
            events,
            vec![WatchEvent::Deleted {
                key: "a".into(),
                writer: None
            }]
        );
    }
}
