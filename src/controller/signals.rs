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
//!
//! `POST /v1/nodes/{id}/action {action: kill|freeze|thaw}` goes the same
//! way (`event: node`): the agent kills its workers and itself, or freezes
//! them and stops beating (a machine dying or hanging, for `K` and `F` on a
//! node elsewhere), answering first.

use super::error::ApiError;
use super::relock;
use crate::cluster::model::{AgentNodeOrder, AgentSignal, SignalResult};
use axum::http::StatusCode;
use axum::response::sse::Event;
use futures_util::stream::{self, BoxStream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// How long the controller waits for an agent's answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// An order for one node's agent, as its stream carries it.
#[derive(Debug, Clone)]
pub(super) enum Order {
    Signal(AgentSignal),
    Node(AgentNodeOrder),
}

impl Order {
    fn event(&self) -> Event {
        let (name, data) = match self {
            Order::Signal(o) => ("signal", serde_json::to_string(o)),
            Order::Node(o) => ("node", serde_json::to_string(o)),
        };
        Event::default().event(name).data(data.unwrap_or_default())
    }
}

/// Orders on their way to agents, and the answers awaited.
pub struct Signals {
    next: AtomicU64,
    orders: broadcast::Sender<(String, Order)>,
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
        let mut listeners = relock(&self.signals.listeners);
        if let Some(n) = listeners.get_mut(&self.node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                listeners.remove(&self.node);
            }
        }
    }
}

type Events = BoxStream<'static, Result<Event, Infallible>>;

impl Signals {
    /// The `event: signal` lines for `node`'s agent, for its stream to merge;
    /// the node counts as listening while the stream lives.
    pub fn events_for(self: &Arc<Self>, node: &str) -> Events {
        *relock(&self.listeners).entry(node.to_string()).or_default() += 1;
        let guard = Listening {
            signals: self.clone(),
            node: node.to_string(),
        };
        let rx = self.orders.subscribe();
        stream::unfold((rx, guard), |(mut rx, guard)| async move {
            loop {
                match rx.recv().await {
                    Ok((node, order)) if node == guard.node => {
                        return Some((Ok(order.event()), (rx, guard)));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }

    fn listening(&self, node: &str) -> bool {
        relock(&self.listeners).get(node).is_some_and(|n| *n > 0)
    }

    /// Sends what `order` makes of a request id to `node`'s agent and waits
    /// for its answer.
    pub(super) async fn send(
        &self,
        node: &str,
        order: impl FnOnce(String) -> Order,
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
        relock(&self.waiting).insert(id.clone(), tx);
        let _ = self.orders.send((node.to_string(), order(id.clone())));
        let answer = tokio::time::timeout(ANSWER_WITHIN, rx).await;
        relock(&self.waiting).remove(&id);
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
    pub(super) fn answer(&self, id: &str, result: SignalResult) -> bool {
        match relock(&self.waiting).remove(id) {
            Some(tx) => tx.send(result).is_ok(),
            None => false,
        }
    }
}
