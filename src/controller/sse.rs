//! `GET /v1/stream?namespace=ns`: the change feed as Server-Sent Events.
//!
//! The first event is `snapshot` (the namespace's entries); then `kv` with the
//! entry for every write and `kv-deleted` with `{namespace,key}` for every
//! delete (not `kv`: the original SDK would store a pushed delete as an empty
//! value). Each event's `id` is the change sequence number; the items of a
//! batch carry `batchIndex` and `batchSize`, and a change whose process could
//! be told carries `writer` (`{"pids":[…],"via":"header"|"socket"}`). A subscriber that
//! falls behind gets a fresh `snapshot` instead of a gap.
//!
//! `POST /v1/stream` (plumdash's own) is one stream for a set of namespaces
//! and prefixes, and `POST /v1/stream/{id}` adds to it (see [`stream_set`]).
//! Both kinds are filtered at the source: the store hands each change only to
//! its namespace's subscribers (`fanout.rs`).

use super::body::JsonBody;
use super::error::ApiError;
use super::fanout::{Delivery, Subscription};
use super::state::{blocking, AppState};
use super::store::Change;
use crate::kv::model::{validate_namespace, Entry};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, KeepAliveStream, Sse};
use axum::Json;
use futures_util::stream::{self, BoxStream, StreamExt};
use serde::Deserialize;
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
    refuse_if_stopping(&state)?;
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
    let subscription = subscribe(&state, vec![ns], Vec::new()).await?;
    Ok(change_stream(state, subscription, Shape::One))
}

/// A stream asked for on a connection still open while the controller
/// drains would be answered 200 and end at once, and its client would take
/// it for a live controller: it is told the truth instead (503).
fn refuse_if_stopping(state: &AppState) -> Result<(), ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::stopping());
    }
    Ok(())
}

/// What `POST /v1/stream` names (and `POST /v1/stream/{id}` adds).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub prefixes: Vec<String>,
}

impl SetBody {
    fn checked(self) -> Result<(Vec<String>, Vec<String>), ApiError> {
        let max = super::fanout::MAX_SUBSCRIBED;
        if self.namespaces.len() + self.prefixes.len() > max {
            return Err(ApiError::bad_request(format!(
                "a subscription names at most {max} namespaces and prefixes"
            )));
        }
        for ns in &self.namespaces {
            validate_namespace(ns).map_err(ApiError::bad_request)?;
        }
        for prefix in &self.prefixes {
            if prefix.contains('/') || prefix.len() > crate::kv::model::MAX_NAME_BYTES {
                return Err(ApiError::bad_request(format!(
                    "prefix {:?} is not the start of a namespace",
                    crate::kv::model::preview(prefix)
                )));
            }
        }
        Ok((self.namespaces, self.prefixes))
    }
}

/// `POST /v1/stream` with `{"namespaces":[…],"prefixes":[…]}`: one stream for a
/// set of namespaces (and every namespace starting with a prefix). First
/// `subscribed` (`{"id":…}`, the id `POST /v1/stream/{id}` adds names to),
/// then one `ns-snapshot` per namespace (`{"namespace":…,"entries":[…]}`, its
/// `id` the change number it is as of), then `kv` and `kv-deleted` as on a
/// one-namespace stream, each naming its namespace. Change numbers only grow.
pub async fn stream_set(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SetBody>,
) -> Result<Sse<KeepAliveStream<Events>>, ApiError> {
    refuse_if_stopping(&state)?;
    let (namespaces, prefixes) = body.checked()?;
    let subscription = subscribe(&state, namespaces, prefixes).await?;
    Ok(change_stream(state, subscription, Shape::Set))
}

/// `POST /v1/stream/{id}`: adds namespaces and prefixes to an open set
/// stream; their `ns-snapshot`s follow on it in change order. Naming one it
/// has already sends its snapshot again (a resync). 404: no such stream.
pub async fn add_to_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SetBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (namespaces, prefixes) = body.checked()?;
    let not_found = || ApiError::not_found("no such change stream");
    let id = u64::from_str_radix(&id, 16).map_err(|_| not_found())?;
    let added = (namespaces.len(), prefixes.len());
    let found = blocking(&state, move |s| s.fanout().add(s, id, namespaces, prefixes)).await?;
    if !found {
        return Err(not_found());
    }
    Ok(Json(
        serde_json::json!({ "namespaces": added.0, "prefixes": added.1 }),
    ))
}

async fn subscribe(
    state: &AppState,
    namespaces: Vec<String>,
    prefixes: Vec<String>,
) -> Result<Subscription, ApiError> {
    blocking(state, move |s| {
        s.fanout().subscribe(s, namespaces, prefixes)
    })
    .await
}

/// How a stream's snapshots read: the original's one-namespace form, or the
/// set form that names each namespace.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    One,
    Set,
}

fn change_stream(
    state: AppState,
    subscription: Subscription,
    shape: Shape,
) -> Sse<KeepAliveStream<Events>> {
    let first: Vec<Event> = match shape {
        Shape::One => Vec::new(),
        Shape::Set => vec![Event::default()
            .event("subscribed")
            .data(serde_json::json!({ "id": format!("{:016x}", subscription.id) }).to_string())],
    };
    let feed = stream::unfold(
        (subscription, state.clone()),
        move |(mut sub, state)| async move {
            if sub.lagged() {
                // Fell behind: start over from fresh snapshots.
                let store = state.store.clone();
                let (resynced, sub2) = tokio::task::spawn_blocking(move || {
                    let result = store.fanout().resync(store.as_ref(), &mut sub);
                    (result, sub)
                })
                .await
                .ok()?;
                resynced.ok()?;
                sub = sub2;
            }
            let delivery = sub.next().await?;
            Some((deliver(&delivery, shape), (sub, state)))
        },
    );
    let shutdown = state.shutdown.clone();
    let events = stream::iter(first)
        .chain(feed.flat_map(stream::iter))
        .take_until(async move { shutdown.cancelled_owned().await })
        .map(Ok)
        .boxed();
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

fn deliver(delivery: &Delivery, shape: Shape) -> Vec<Event> {
    match delivery {
        Delivery::Change(change) => vec![change_event(change)],
        Delivery::Snapshots { seq, namespaces } => namespaces
            .iter()
            .map(|(ns, entries)| match shape {
                Shape::One => snapshot_event(entries, *seq),
                Shape::Set => json_event(
                    "ns-snapshot",
                    *seq,
                    &serde_json::json!({ "namespace": ns, "entries": entries }),
                ),
            })
            .collect(),
    }
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
