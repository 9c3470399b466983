//! `GET /v1/stream?namespace=ns`: the change feed as Server-Sent Events.
//!
//! The first event is `snapshot` (the namespace's entries); then `kv` with the
//! entry for every write and `kv-deleted` with `{namespace,key}` for every
//! delete (not `kv`: the original SDK would store a pushed delete as an empty
//! value). Each event's `id` is the change sequence number; the items of a
//! batch carry `batchIndex` and `batchSize`, and a change whose process could
//! be told carries `writer` (`{"pids":[…],"via":"header"|"socket"}`). A subscriber that
//! falls behind gets a fresh `snapshot` instead of a gap.

use super::error::ApiError;
use super::state::{blocking, AppState};
use super::store::Change;
use crate::kv::model::{validate_namespace, Entry};
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use futures_util::stream::{self, BoxStream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How often an idle stream carries a comment, so clients can tell a quiet
/// namespace from a dead connection.
pub const KEEP_ALIVE: Duration = crate::kv::model::STREAM_KEEP_ALIVE;

type Events = BoxStream<'static, Result<Event, Infallible>>;

pub async fn stream(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Sse<KeepAliveStream<Events>>, ApiError> {
    if let Some(node) = query.get("nodeId") {
        let presence = query.get("presence").is_some_and(|v| v == "1");
        let signals = query.get("signals").is_some_and(|v| v == "1");
        return node_stream(state, node.clone(), presence, signals);
    }
    let ns = query
        .get("namespace")
        .cloned()
        .ok_or_else(|| ApiError::bad_request("missing ?namespace= (or ?nodeId=)"))?;
    validate_namespace(&ns).map_err(ApiError::bad_request)?;
    let ns2 = ns.clone();
    let (snapshot, rx) = blocking(&state, move |s| s.subscribe(&ns2)).await?;

    let first = stream::once(async move { snapshot_event(&snapshot.entries, snapshot.seq) });
    let feed = stream::unfold(
        (rx, snapshot.seq, state.clone(), ns),
        |(mut rx, mut last_seq, state, ns)| async move {
            loop {
                match rx.recv().await {
                    Ok(change) => {
                        if change.seq() <= last_seq || change.namespace() != ns {
                            continue;
                        }
                        last_seq = change.seq();
                        return Some((change_event(&change), (rx, last_seq, state, ns)));
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Fell behind: start over from a fresh snapshot.
                        let ns2 = ns.clone();
                        let (snap, fresh) =
                            blocking(&state, move |s| s.subscribe(&ns2)).await.ok()?;
                        rx = fresh;
                        last_seq = snap.seq;
                        let event = snapshot_event(&snap.entries, snap.seq);
                        return Some((event, (rx, last_seq, state, ns)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    let shutdown = state.shutdown.clone();
    let events = first
        .chain(feed)
        .take_until(async move { shutdown.cancelled_owned().await })
        .map(Ok)
        .boxed();
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// `GET /v1/stream?nodeId=K`, the original's agent wake-up stream: `ping`/`init`
/// first, then `update`/`assignments` whenever node K's assignments change.
/// `__kv__` wakes on every KV write and `__kv__:<ns>` on writes to `ns`, as the
/// original. Bursts coalesce: a subscriber that fell behind gets one `update`.
/// With `presence=1` (plumdash's agent) the open stream is the node's
/// presence: its close is how a killed agent is seen at once (`presence.rs`).
/// With `signals=1` (plumdash's agent) it also carries `event: signal` orders
/// for the node's instances (`signals.rs`).
fn node_stream(
    state: AppState,
    node: String,
    presence: bool,
    signals: bool,
) -> Result<Sse<KeepAliveStream<Events>>, ApiError> {
    let orders = match (&state.signals, signals) {
        (Some(broker), true) => Some(broker.events_for(&node)),
        _ => None,
    };
    let update = || Event::default().event("update").data("assignments");
    let first = stream::once(async { Event::default().event("ping").data("init") });
    let wakes: Events = if let Some(rest) = node.strip_prefix("__kv__") {
        let ns = rest.strip_prefix(':').map(str::to_string);
        let rx = state.store.changes();
        stream::unfold((rx, ns), move |(mut rx, ns)| async move {
            loop {
                match rx.recv().await {
                    Ok(change) if ns.as_deref().is_none_or(|n| n == change.namespace()) => {
                        return Some((Ok(update()), (rx, ns)));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => return Some((Ok(update()), (rx, ns))),
                    Err(RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    } else {
        let deployments = state
            .deployments
            .clone()
            .ok_or_else(|| ApiError::not_found("this controller does not serve the cluster API"))?;
        let rx = deployments.subscribe();
        // Dropped with the stream: when hyper sees the connection close.
        let guard = match (presence, &state.nodes) {
            (true, Some(nodes)) => Some(nodes.presence().open(&node)),
            _ => None,
        };
        stream::unfold((rx, node, guard), move |(mut rx, node, guard)| async move {
            loop {
                match rx.recv().await {
                    Ok(n) if n == node => return Some((Ok(update()), (rx, node, guard))),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => return Some((Ok(update()), (rx, node, guard))),
                    Err(RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    };
    let wakes = match orders {
        Some(orders) => stream::select(wakes, orders).boxed(),
        None => wakes,
    };
    let shutdown = state.shutdown.clone();
    let events = first
        .map(Ok)
        .chain(wakes)
        .take_until(async move { shutdown.cancelled_owned().await })
        .boxed();
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn snapshot_event(entries: &[Entry], seq: u64) -> Event {
    json_event("snapshot", seq, entries)
}

fn change_event(change: &Change) -> Event {
    match change {
        Change::Put {
            seq,
            entry,
            batch: None,
            writer: None,
        } => json_event("kv", *seq, entry),
        // Extra fields mark a batch's items and name the writer; the original
        // SDK ignores them.
        Change::Put {
            seq,
            entry,
            batch,
            writer,
        } => {
            let mut data = serde_json::to_value(entry).unwrap_or_default();
            if let Some((index, size)) = batch {
                data["batchIndex"] = (*index).into();
                data["batchSize"] = (*size).into();
            }
            if let Some(writer) = writer {
                data["writer"] = serde_json::to_value(writer).unwrap_or_default();
            }
            json_event("kv", *seq, &data)
        }
        Change::Deleted {
            seq,
            namespace,
            key,
            writer,
        } => {
            let mut data = serde_json::json!({ "namespace": namespace, "key": key });
            if let Some(writer) = writer {
                data["writer"] = serde_json::to_value(writer).unwrap_or_default();
            }
            json_event("kv-deleted", *seq, &data)
        }
    }
}

fn json_event(name: &str, seq: u64, data: &(impl serde::Serialize + ?Sized)) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Event::default().event(name).id(seq.to_string()).data(data)
}
