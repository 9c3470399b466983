//! Signals for instances on any node, carried by the agents' own streams
//! (plumdash's controller and agent; the original has nothing like it).
//!
//! `POST /v1/instances/{id}/signal {signal, scope, worker}` finds the
//! instance's node, pushes `event: signal` down every stream that node's
//! plumdash agent holds open with `signals=1` (the same `nodeId` stream that
//! wakes it), and waits for the agent's answer, `POST /v1/signals/{requestId}`
//! `{ok, pid, process, message}`: 200 with what it did, 409 with why not (its
//! reason, or: no such stream, an original agent or none connected), 504
//! when no answer comes in time. The agent holds the token, so orders and
//! answers travel only on authenticated connections.

use super::error::ApiError;
use super::state::AppState;
use crate::cluster::model::{AgentSignal, SignalDone, SignalOrder, SignalResult};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::stream::{self, BoxStream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// How long the controller waits for an agent's answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Orders on their way to agents, and the answers awaited.
pub struct Signals {
    next: AtomicU64,
    orders: broadcast::Sender<(String, AgentSignal)>,
    waiting: Mutex<HashMap<String, oneshot::Sender<SignalResult>>>,
    /// Open signal streams per node.
    listeners: Mutex<HashMap<String, usize>>,
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            next: AtomicU64::new(1),
            orders: broadcast::channel(64).0,
            waiting: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
        }
    }
}

/// Counts a node's open signal stream until dropped.
struct Listening {
    signals: Arc<Signals>,
    node: String,
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut listeners = lock(&self.signals.listeners);
        if let Some(n) = listeners.get_mut(&self.node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                listeners.remove(&self.node);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each use is one map operation: a panic leaves nothing half-done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Events = BoxStream<'static, Result<Event, Infallible>>;

impl Signals {
    /// The `event: signal` lines for `node`'s agent, for its stream to merge;
    /// the node counts as listening while the stream lives.
    pub fn events_for(self: &Arc<Self>, node: &str) -> Events {
        *lock(&self.listeners).entry(node.to_string()).or_default() += 1;
        let guard = Listening {
            signals: self.clone(),
            node: node.to_string(),
        };
        let rx = self.orders.subscribe();
        stream::unfold((rx, guard), |(mut rx, guard)| async move {
            loop {
                match rx.recv().await {
                    Ok((node, order)) if node == guard.node => {
                        let data = serde_json::to_string(&order).unwrap_or_default();
                        let event = Event::default().event("signal").data(data);
                        return Some((Ok(event), (rx, guard)));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }

    fn listening(&self, node: &str) -> bool {
        lock(&self.listeners).get(node).is_some_and(|n| *n > 0)
    }

    /// Sends `order` to `node`'s agent and waits for its answer.
    async fn send(
        &self,
        node: &str,
        instance: &str,
        order: SignalOrder,
    ) -> Result<SignalResult, ApiError> {
        if !self.listening(node) {
            return Err(ApiError {
                status: StatusCode::CONFLICT,
                message: format!(
                    "node {node}'s agent takes no signals: no plumdash agent holds its stream \
                     (an original Plum agent, or none connected)"
                ),
            });
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed).to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.waiting).insert(id.clone(), tx);
        let _ = self.orders.send((
            node.to_string(),
            AgentSignal {
                request_id: id.clone(),
                instance_id: instance.to_string(),
                order,
            },
        ));
        let answer = tokio::time::timeout(ANSWER_WITHIN, rx).await;
        lock(&self.waiting).remove(&id);
        match answer {
            Ok(Ok(result)) => Ok(result),
            _ => Err(ApiError {
                status: StatusCode::GATEWAY_TIMEOUT,
                message: format!(
                    "no answer from node {node}'s agent within {}s",
                    ANSWER_WITHIN.as_secs()
                ),
            }),
        }
    }

    /// An agent's answer; false when nobody waits for it (any more).
    fn answer(&self, id: &str, result: SignalResult) -> bool {
        match lock(&self.waiting).remove(id) {
            Some(tx) => tx.send(result).is_ok(),
            None => false,
        }
    }
}

/// `/v1/instances/{id}/signal` and `/v1/signals/{requestId}`.
pub fn signal_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/instances/{id}/signal", post(signal))
        .route("/v1/signals/{request}", post(answer))
}

fn broker(state: &AppState) -> Result<Arc<Signals>, ApiError> {
    state
        .signals
        .clone()
        .ok_or_else(|| ApiError::not_found("this controller does not carry signals"))
}

async fn signal(
    State(state): State<AppState>,
    UrlPath(instance): UrlPath<String>,
    super::body::JsonBody(order): super::body::JsonBody<SignalOrder>,
) -> Result<Response, ApiError> {
    let signals = broker(&state)?;
    let parsed = crate::supervisor::parse_signal(&order.signal)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let deployments = state
        .deployments
        .clone()
        .ok_or_else(|| ApiError::not_found("this controller does not serve the cluster API"))?;
    let lookup = instance.clone();
    let node = tokio::task::spawn_blocking(move || deployments.node_of(&lookup))
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| ApiError::not_found(format!("no instance {instance:?}")))?;
    let order = SignalOrder {
        signal: parsed.as_str().to_string(),
        ..order
    };
    let result = signals.send(&node, &instance, order.clone()).await?;
    if !result.ok {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!("node {node}'s agent: {}", result.message),
        });
    }
    Ok(Json(SignalDone {
        instance_id: instance,
        node_id: node,
        signal: order.signal,
        pid: result.pid,
        process: result.process,
        done: result.message,
    })
    .into_response())
}

async fn answer(
    State(state): State<AppState>,
    UrlPath(request): UrlPath<String>,
    super::body::JsonBody(result): super::body::JsonBody<SignalResult>,
) -> Result<Response, ApiError> {
    if broker(&state)?.answer(&request, result) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!(
            "no signal {request:?} waits for an answer"
        )))
    }
}
