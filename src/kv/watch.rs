//! A namespace as a live feed of changes: Server-Sent Events when the
//! controller has `/v1/stream` (plumdash's does), polling `GET /v1/kv/{ns}`
//! otherwise (an original Plum controller answers 400 there).
//!
//! The feed reports its own health (`Status`) so a UI can tell "no changes"
//! from "controller down", and it reconnects with backoff by itself.

use super::client::{expect_status, DistributedMemory};
use super::model::{Entry, STREAM_KEEP_ALIVE};
use crate::backoff::Backoff;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            mode: FeedMode::Auto,
            poll_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            // Three keep-alives missed in a row.
            stream_idle_timeout: STREAM_KEEP_ALIVE * 3,
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
        };
        Watcher {
            rx,
            task: tokio::spawn(feed.run()),
        }
    }
}

struct Feed {
    dm: DistributedMemory,
    options: WatchOptions,
    tx: mpsc::Sender<WatchEvent>,
}

/// Why a stream attempt ended.
enum StreamEnd {
    /// The server has no usable stream: poll instead.
    Unsupported(String),
    /// Lost or never reached: retry after a backoff.
    Failed(String),
    /// The consumer went away.
    Closed,
}

impl Feed {
    async fn run(self) {
        let mut backoff = Backoff::new(FIRST_RETRY, self.options.max_backoff);
        let mut use_stream = !matches!(self.options.mode, FeedMode::Polling(_));
        loop {
            if use_stream {
                match self.stream_once(&mut backoff).await {
                    StreamEnd::Closed => return,
                    StreamEnd::Unsupported(_) if self.options.mode == FeedMode::Auto => {
                        use_stream = false;
                    }
                    StreamEnd::Unsupported(why) | StreamEnd::Failed(why) => {
                        if !self.down(why, backoff.next_delay()).await {
                            return;
                        }
                    }
                }
            } else if !self.poll(&mut backoff).await {
                return;
            }
        }
    }

    async fn emit(&self, event: WatchEvent) -> bool {
        self.tx.send(event).await.is_ok()
    }

    /// Reports the feed down and sleeps the backoff; false when the consumer left.
    async fn down(&self, error: String, retry_in: Duration) -> bool {
        let status = FeedStatus::Down { error, retry_in };
        if !self.emit(WatchEvent::Status(status)).await {
            return false;
        }
        tokio::time::sleep(retry_in).await;
        true
    }

    /// One stream connection, from connect to loss.
    async fn stream_once(&self, backoff: &mut Backoff) -> StreamEnd {
        let req = self
            .dm
            .request(Method::GET, &self.dm.stream_url())
            .query(&[("namespace", self.dm.namespace())])
            .header(reqwest::header::ACCEPT, "text/event-stream")
            // Long-lived: liveness is judged by keep-alives instead.
            .timeout(Duration::from_secs(365 * 24 * 3600));
        // The stream itself lives long, but its answer must come: a controller
        // that takes the connection and never answers is as down as one that
        // refuses it.
        let answer = self.options.stream_idle_timeout;
        let resp = match tokio::time::timeout(answer, self.dm.send(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return StreamEnd::Failed(e.to_string()),
            Err(_) => {
                return StreamEnd::Failed(format!(
                    "the controller took the connection but did not answer within {}",
                    humantime::format_duration(answer)
                ))
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
            return StreamEnd::Unsupported(format!("no change stream (HTTP {status})"));
        }
        if status != StatusCode::OK {
            let err = expect_status(resp, &[StatusCode::OK]).await.err();
            return StreamEnd::Failed(err.map_or_else(|| status.to_string(), |e| e.to_string()));
        }
        if !self.emit(WatchEvent::Status(FeedStatus::Streaming)).await {
            return StreamEnd::Closed;
        }
        backoff.reset();

        // The SSE parser swallows comments (the keep-alives), so liveness is
        // judged on the bytes before it: any chunk resets the silence timer.
        let started = tokio::time::Instant::now();
        let last_bytes = Arc::new(AtomicU64::new(0));
        let seen = last_bytes.clone();
        let mut events = resp
            .bytes_stream()
            .inspect(move |_| {
                let ms = crate::clock::millis(started.elapsed());
                seen.store(ms, Ordering::Relaxed);
            })
            .eventsource();
        let idle = self.options.stream_idle_timeout;
        // Items of a batch in progress: emitted together once all arrived.
        let mut pending: Vec<Entry> = Vec::new();
        loop {
            let next = loop {
                let bytes_at = last_bytes.load(Ordering::Relaxed);
                let deadline = started + Duration::from_millis(bytes_at) + idle;
                match tokio::time::timeout_at(deadline, events.next()).await {
                    Ok(next) => break Some(next),
                    // Bytes arrived meanwhile (a keep-alive): still alive.
                    Err(_) if last_bytes.load(Ordering::Relaxed) > bytes_at => continue,
                    Err(_) => break None,
                }
            };
            let event = match next {
                None => return StreamEnd::Failed("change stream went silent".into()),
                Some(None) => {
                    return StreamEnd::Failed("change stream closed by the controller".into())
                }
                Some(Some(Err(e))) => {
                    return StreamEnd::Failed(format!("change stream broke: {e}"))
                }
                Some(Some(Ok(event))) => event,
            };
            let parsed = match event.event.as_str() {
                "snapshot" => serde_json::from_str(&event.data).map(WatchEvent::Snapshot),
                "kv" => match serde_json::from_str::<StreamedPut>(&event.data) {
                    Ok(put) => match put.batch_size {
                        Some(size) if size > 1 => {
                            pending.push(put.entry);
                            if put.batch_index.is_none_or(|i| i + 1 < size) {
                                continue;
                            }
                            Ok(WatchEvent::Batch(std::mem::take(&mut pending)))
                        }
                        _ => Ok(WatchEvent::Put(put.entry)),
                    },
                    Err(e) => Err(e),
                },
                "kv-deleted" => {
                    serde_json::from_str::<DeletedKey>(&event.data).map(|d| WatchEvent::Deleted {
                        key: d.key,
                        writer: d.writer,
                    })
                }
                _ => continue,
            };
            match parsed {
                Ok(ev) => {
                    if !self.emit(ev).await {
                        return StreamEnd::Closed;
                    }
                }
                Err(e) => {
                    return StreamEnd::Failed(format!("bad {} event: {e}", event.event));
                }
            }
        }
    }

    /// Polls until the consumer leaves (false) — errors are reported and retried here.
    async fn poll(&self, backoff: &mut Backoff) -> bool {
        let interval = match self.options.mode {
            FeedMode::Polling(i) => i,
            _ => self.options.poll_interval,
        };
        let mut known: Option<BTreeMap<String, Entry>> = None;
        loop {
            match self.dm.get_all().await {
                Ok(entries) => {
                    backoff.reset();
                    let events = match &known {
                        None => vec![
                            WatchEvent::Status(FeedStatus::Polling(interval)),
                            WatchEvent::Snapshot(entries.clone()),
                        ],
                        Some(old) => diff(old, &entries),
                    };
                    for ev in events {
                        if !self.emit(ev).await {
                            return false;
                        }
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
}

#[derive(serde::Deserialize)]
struct StreamedPut {
    #[serde(flatten)]
    entry: Entry,
    #[serde(rename = "batchIndex")]
    batch_index: Option<usize>,
    #[serde(rename = "batchSize")]
    batch_size: Option<usize>,
}

#[derive(serde::Deserialize)]
struct DeletedKey {
    key: String,
    #[serde(default)]
    writer: Option<super::model::Writer>,
}

/// The changes that turn `old` into `new`. The writes come from one
/// consistent read, so several of them form one `Batch`.
fn diff(old: &BTreeMap<String, Entry>, new: &[Entry]) -> Vec<WatchEvent> {
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
const FIRST_RETRY: Duration = Duration::from_millis(200);

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
