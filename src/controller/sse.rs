//! `GET /v1/stream?namespace=ns`: the change feed as Server-Sent Events.
//!
//! The first event is `snapshot` (the namespace's entries); then `kv` with the
//! entry for every write and `kv-deleted` with `{namespace,key}` for every
//! delete (not `kv`: the original SDK would store a pushed delete as an empty
//! value). Each event's `id` is the change sequence number; the items of a
//! batch carry `batchIndex` and `batchSize`. A subscriber that
//! falls behind gets a fresh `snapshot` instead of a gap.

use super::error::ApiError;
use super::state::{blocking, AppState};
use super::store::Change;
use crate::kv::model::{validate_namespace, Entry};
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How often an idle stream carries a comment, so clients can tell a quiet
/// namespace from a dead connection.
pub const KEEP_ALIVE: Duration = crate::kv::model::STREAM_KEEP_ALIVE;

pub async fn stream(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let ns = query
        .get("namespace")
        .cloned()
        .ok_or_else(|| ApiError::bad_request("missing ?namespace="))?;
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
        .map(Ok);
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
        } => json_event("kv", *seq, entry),
        // Extra fields mark a batch's items; the original SDK ignores them.
        Change::Put {
            seq,
            entry,
            batch: Some((index, size)),
        } => {
            let mut data = serde_json::to_value(entry).unwrap_or_default();
            data["batchIndex"] = (*index).into();
            data["batchSize"] = (*size).into();
            json_event("kv", *seq, &data)
        }
        Change::Deleted {
            seq,
            namespace,
            key,
        } => json_event(
            "kv-deleted",
            *seq,
            &serde_json::json!({ "namespace": namespace, "key": key }),
        ),
    }
}

fn json_event(name: &str, seq: u64, data: &(impl serde::Serialize + ?Sized)) -> Event {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    Event::default().event(name).id(seq.to_string()).data(data)
}
