//! The HTTP surface of `signals.rs`: `POST /v1/instances/{id}/signal`,
//! `POST /v1/nodes/{id}/action` (both carried to the node's agent) and
//! `POST /v1/signals/{requestId}` (its answer).

use super::error::ApiError;
use super::signals::{Order, Signals};
use super::state::AppState;
use crate::cluster::model::{
    AgentNodeOrder, AgentSignal, NodeDone, NodeOrder, SignalDone, SignalOrder, SignalResult,
};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use std::sync::Arc;

/// `/v1/instances/{id}/signal` and `/v1/signals/{requestId}`.
pub fn signal_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/instances/{id}/signal", post(signal))
        .route("/v1/signals/{request}", post(answer))
        .route("/v1/nodes/{id}/action", post(node_action))
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
    let pushed = order.clone();
    let for_instance = instance.clone();
    let result = signals
        .send(&node, move |request_id| {
            Order::Signal(AgentSignal {
                request_id,
                instance_id: for_instance,
                order: pushed,
            })
        })
        .await?;
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

async fn node_action(
    State(state): State<AppState>,
    UrlPath(node): UrlPath<String>,
    super::body::JsonBody(order): super::body::JsonBody<NodeOrder>,
) -> Result<Response, ApiError> {
    let signals = broker(&state)?;
    let action = order.action;
    let result = signals
        .send(&node, move |request_id| {
            Order::Node(AgentNodeOrder { request_id, action })
        })
        .await?;
    if !result.ok {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!("node {node}'s agent: {}", result.message),
        });
    }
    Ok(Json(NodeDone {
        node_id: node,
        action,
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
