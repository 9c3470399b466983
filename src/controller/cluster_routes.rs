//! The cluster API's HTTP surface: nodes (`/v1/nodes…`), deployments,
//! assignments and instance statuses, over the tables of `nodes.rs` and
//! `deployments.rs`. Every error is the API's one-line JSON.

use super::body::JsonBody;
use super::deployments::Deployments;
use super::error::ApiError;
use super::heartbeats::{NodeRegistry, Now};
use super::state::AppState;
use crate::cluster::model::{
    AssignmentList, DesiredState, Heartbeat, HeartbeatAnswer, InstancePhase, NewDeployment,
    StatusReport,
};
use anyhow::Result;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Longest node id and ip accepted.
const MAX_FIELD: usize = 256;

/// `/v1/nodes…`, for the controller's router.
pub fn node_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/nodes/heartbeat", post(heartbeat))
        .route("/v1/nodes/{id}", get(one_node).delete(remove_node))
}

fn node_registry(state: &AppState) -> Result<Arc<NodeRegistry>, ApiError> {
    state
        .nodes
        .clone()
        .ok_or_else(|| ApiError::not_found("this controller does not serve the cluster API"))
}

async fn on_nodes<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&NodeRegistry) -> Result<T> + Send + 'static,
{
    let nodes = node_registry(state)?;
    tokio::task::spawn_blocking(move || f(&nodes))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

fn check_field(what: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().count() > MAX_FIELD {
        return Err(ApiError::bad_request(format!(
            "{what} is longer than {MAX_FIELD} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{what} holds control characters"
        )));
    }
    Ok(())
}

async fn heartbeat(
    State(state): State<AppState>,
    JsonBody(beat): JsonBody<Heartbeat>,
) -> Result<Response, ApiError> {
    if beat.node_id.trim().is_empty() {
        return Err(ApiError::bad_request("nodeId is empty"));
    }
    check_field("nodeId", &beat.node_id)?;
    check_field("ip", &beat.ip)?;
    let ttl_sec = node_registry(&state)?.ttl().as_secs();
    let labels = beat.labels.map(Value::Object);
    on_nodes(&state, move |nodes| {
        nodes.beat(&beat.node_id, &beat.ip, labels.as_ref(), Now::real())
    })
    .await?;
    Ok(Json(HeartbeatAnswer { ttl_sec }).into_response())
}

async fn list_nodes(State(state): State<AppState>) -> Result<Response, ApiError> {
    let nodes = on_nodes(&state, |nodes| nodes.list(Now::real())).await?;
    Ok(Json(nodes).into_response())
}

async fn one_node(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let lookup = id.clone();
    match on_nodes(&state, move |nodes| nodes.get(&lookup)).await? {
        Some(node) => Ok(Json(node).into_response()),
        None => Err(ApiError::not_found(format!("no node {id:?}"))),
    }
}

async fn remove_node(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    // As the original: a node an assignment names cannot be forgotten.
    if let Some(d) = state.deployments.clone() {
        let node = id.clone();
        let in_use = tokio::task::spawn_blocking(move || d.node_in_use(&node))
            .await
            .map_err(ApiError::internal)??;
        if in_use {
            return Err(ApiError {
                status: StatusCode::CONFLICT,
                message: format!("node {id:?} still has assignments"),
            });
        }
    }
    on_nodes(&state, move |nodes| nodes.remove(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `/v1/deployments…`, `/v1/assignments…`, `/v1/instances/status`.
pub fn deployment_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/deployments", get(list).post(create))
        .route("/v1/deployments/{id}", get(one).post(action).delete(remove))
        .route("/v1/assignments", get(assignments))
        .route(
            "/v1/assignments/{id}",
            axum::routing::patch(patch_assignment).delete(delete_assignment),
        )
        .route("/v1/instances/status", post(status))
}

fn registry(state: &AppState) -> Result<Arc<Deployments>, ApiError> {
    state
        .deployments
        .clone()
        .ok_or_else(|| ApiError::not_found("this controller does not serve the cluster API"))
}

/// The deployments' answers as JSON objects with sorted keys, as this API has
/// always written them (through `serde_json::Value`), whatever the order of
/// the fields in their types.
fn sorted_json<T: Serialize>(answer: &T) -> Result<Response, ApiError> {
    let value = serde_json::to_value(answer).map_err(ApiError::internal)?;
    Ok(Json(value).into_response())
}

async fn on_registry<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Deployments) -> Result<T> + Send + 'static,
{
    let d = registry(state)?;
    tokio::task::spawn_blocking(move || f(&d))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

async fn create(
    State(state): State<AppState>,
    JsonBody(new): JsonBody<NewDeployment>,
) -> Result<Response, ApiError> {
    if new.name.trim().is_empty() {
        return Err(ApiError::bad_request("name is empty"));
    }
    // A node id is what a heartbeat may name: nothing a heartbeat refuses.
    for node in new.entries.iter().flat_map(|e| e.replicas.keys()) {
        if node.trim().is_empty() {
            return Err(ApiError::bad_request("a node id in replicas is empty"));
        }
        check_field("a node id in replicas", node)?;
    }
    let answer = on_registry(&state, move |d| d.create(new)).await?;
    sorted_json(&answer)
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    sorted_json(&on_registry(&state, |d| d.list()).await?)
}

async fn one(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let lookup = id.clone();
    match on_registry(&state, move |d| d.get(&lookup)).await? {
        Some(detail) => sorted_json(&detail),
        None => Err(ApiError::not_found(format!("no deployment {id:?}"))),
    }
}

async fn action(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let running = match query.get("action").map(String::as_str) {
        Some("start") => true,
        Some("stop") => false,
        _ => return Err(ApiError::bad_request("action must be start or stop")),
    };
    let lookup = id.clone();
    match on_registry(&state, move |d| d.set_running(&lookup, running)).await? {
        Some(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(ApiError::not_found(format!("no deployment {id:?}"))),
    }
}

async fn remove(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let lookup = id.clone();
    match on_registry(&state, move |d| d.remove(&lookup)).await? {
        Some(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(ApiError::not_found(format!("no deployment {id:?}"))),
    }
}

async fn assignments(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let node = query
        .get("nodeId")
        .cloned()
        .ok_or_else(|| ApiError::bad_request("missing ?nodeId="))?;
    let items = on_registry(&state, move |d| d.for_node(&node)).await?;
    sorted_json(&AssignmentList { items })
}

#[derive(Deserialize)]
struct Desired {
    desired: DesiredState,
}

async fn patch_assignment(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    JsonBody(Desired { desired }): JsonBody<Desired>,
) -> Result<Response, ApiError> {
    if let DesiredState::Other(_) = desired {
        return Err(ApiError::bad_request("desired must be Running or Stopped"));
    }
    on_registry(&state, move |d| d.set_desired(&id, &desired)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_assignment(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    on_registry(&state, move |d| d.remove_assignment(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn status(
    State(state): State<AppState>,
    JsonBody(report): JsonBody<StatusReport>,
) -> Result<Response, ApiError> {
    if report.instance_id.is_empty() || report.phase == InstancePhase::Unreported {
        return Err(ApiError::bad_request("instanceId and phase are required"));
    }
    on_registry(&state, move |d| d.report(&report)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
