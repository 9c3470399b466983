//! The HTTP surface: the Plum KV API, `/healthz`, and the token check.
//! Every 4xx and 5xx answer is one line of JSON, `{"error": "..."}`.
//!
//! `/v1/kv/{ns}/{key...}` is dispatched by hand rather than by the router:
//! a key may contain `/` and may be named `batch` or `keys`, so which
//! endpoint a path means depends on the method as well as the path.

use super::body::{json_of, BatchBody, JsonBody, ValueBody};
use super::deployments::Deployments;
use super::error::ApiError;
use super::sse;
use super::state::blocking;
pub use super::state::AppState;
use crate::kv::model::{
    validate_key, validate_namespace, ValueType, Writer, FENCED, INSTANCE_HEADER, WRITER_HEADER,
};
use axum::body::Body;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use futures_util::future::{BoxFuture, Either};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// Longest request target accepted (414 above it); a key and a namespace of
/// 256 four-byte characters, percent-encoded, take about 6 KiB.
pub const MAX_URI_BYTES: usize = 16 << 10;
/// Most header bytes accepted (431 above them).
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// The whole router; tests drive it with `oneshot` or over a real socket.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/debug/writes", get(write_counts))
        .route("/v1/kv", get(namespaces))
        .route("/v1/kv/", get(namespaces))
        .route("/v1/kv/{*rest}", any(kv_dispatch))
        .route("/v1/stream", get(sse::stream).post(sse::stream_set))
        .route("/v1/stream/{id}", post(sse::add_to_stream))
        .merge(super::cluster_routes::node_routes())
        .merge(super::cluster_routes::deployment_routes())
        .merge(super::app_routes::app_routes())
        .merge(super::signal_routes::signal_routes())
        .fallback(not_found)
        .with_state(state.clone());
    // One layer around the whole router, not one per check on every route:
    // the router wraps each route in each layer and clones the nested
    // services on every request (~20 small allocations for four layers, held
    // across a write's wait). Around the whole, the guard also sees the
    // router's own `Allow` on a 405, and a refusal carries none.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn_with_state(state, guard))
}

/// What every request goes through: the head's limits, then the token;
/// every error answer that is not JSON yet is then made JSON. (Bodies are
/// read through `body::json_of`, which keeps its own limit.)
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let refused = head_too_large(&req).or_else(|| wrong_token(&state, &req));
    let resp = match refused {
        Some(resp) => resp,
        None => next.run(req).await,
    };
    json_errors(resp).await
}

async fn not_found(uri: Uri) -> ApiError {
    let path: String = uri.path().chars().take(100).collect();
    ApiError::not_found(format!("no such endpoint: {path}"))
}

/// 414 and 431 as JSON (hyper's own, for heads beyond its buffer, are
/// rewritten in `server`).
fn head_too_large(req: &Request) -> Option<Response> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(
            ApiError {
                status: StatusCode::URI_TOO_LONG,
                message: format!("request URI is longer than {MAX_URI_BYTES} bytes"),
            }
            .into_response(),
        );
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (headers > MAX_HEADER_BYTES).then(|| {
        ApiError {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            message: format!("request headers are larger than {MAX_HEADER_BYTES} bytes"),
        }
        .into_response()
    })
}

/// Gives any error answer that is not JSON yet (the router's 405, an
/// extractor's rejection) a JSON body, keeping its status and headers.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    let message = match first {
        Some(line) => line.to_string(),
        None if status == StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("method not allowed here (allowed: {allow})")
        }
        None => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    };
    let body = json!({ "error": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// 401 when a token is set and the request does not present it.
fn wrong_token(state: &AppState, req: &Request) -> Option<Response> {
    let token = state.token.as_ref()?;
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials);
    if presented.is_some_and(|p| same_secret(p.as_bytes(), token.as_bytes())) {
        return None;
    }
    let mut resp = ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: "missing or wrong bearer token".into(),
    }
    .into_response();
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    Some(resp)
}

/// The credentials of `Bearer <token>`; the scheme is case-insensitive (RFC 9110).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start())
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why the store cannot take writes now, if it cannot.
fn unhealthy(state: &AppState, fresh: bool) -> Option<String> {
    let file = state
        .health
        .as_ref()
        .and_then(|h| if fresh { h.check() } else { h.last() });
    file.or_else(|| {
        fresh
            .then(|| state.store.write_error())
            .flatten()
            .map(|e| format!("the last write failed: {e}"))
    })
}

async fn healthz(State(state): State<AppState>) -> Response {
    match unhealthy(&state, true) {
        None => Json(json!({ "status": "ok" })).into_response(),
        Some(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unhealthy", "error": error })),
        )
            .into_response(),
    }
}

/// `GET /debug/writes`: `{"commits":N,"writes":N}` since the controller
/// started, so commits per write can be measured (`benches/controller`).
/// Reads two counters: it is also the cheapest route on the server stack.
async fn write_counts(State(state): State<AppState>) -> Response {
    Json(state.store.write_counts()).into_response()
}

/// Writes to a deleted or unwritable file would be acknowledged and then
/// lost: refuse them instead.
fn writable(state: &AppState) -> Result<(), ApiError> {
    match unhealthy(state, false) {
        None => Ok(()),
        Some(why) => Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: why,
        }),
    }
}

async fn namespaces(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let namespaces = blocking(&state, |s| s.namespaces()).await?;
    Ok(Json(json!({ "namespaces": namespaces })))
}

/// Not an `async fn`: a PUT's future is only [`put`]'s (axum boxes the
/// handler's future whole on every request; kept small, it stays in the
/// allocator's thread cache). The rest of the API is boxed on its own.
fn kv_dispatch(
    State(state): State<AppState>,
    req: Request,
) -> Either<
    impl Future<Output = Result<Response, ApiError>>,
    BoxFuture<'static, Result<Response, ApiError>>,
> {
    match kv_target(req.uri()) {
        Ok((ns, Some(key))) if req.method() == Method::PUT => {
            Either::Left(put(state, ns, key, req))
        }
        Ok((ns, key)) => Either::Right(Box::pin(kv_other(state, ns, key, req))),
        Err(e) => Either::Right(Box::pin(std::future::ready(Err(e)))),
    }
}

/// The namespace and the key (if any) of `/v1/kv/{ns}/{key...}`, decoded.
fn kv_target(uri: &Uri) -> Result<(String, Option<String>), ApiError> {
    let rest = uri.path().strip_prefix("/v1/kv/").unwrap_or_default();
    // Split before decoding, so an encoded "%2F" in a namespace is caught.
    let (raw_ns, raw_key) = match rest.split_once('/') {
        Some((ns, key)) => (ns, Some(key)),
        None => (rest, None),
    };
    let ns = decode("namespace", raw_ns)?;
    validate_namespace(&ns).map_err(ApiError::bad_request)?;
    let key = raw_key.map(|raw| decode("key", raw)).transpose()?;
    Ok((ns, key))
}

/// Everything of `/v1/kv/` but a PUT to a key.
async fn kv_other(
    state: AppState,
    ns: String,
    key: Option<String>,
    req: Request,
) -> Result<Response, ApiError> {
    // HEAD is GET without the body (hyper leaves the body out), as RFC 9110
    // asks of every resource that answers GET.
    let method = match req.method() {
        &Method::HEAD => Method::GET,
        other => other.clone(),
    };
    let Some(key) = key else {
        return match method {
            Method::GET => {
                // Only the list reads the query string.
                let Query(query) = Query::<HashMap<String, String>>::try_from_uri(req.uri())
                    .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
                list(&state, ns, query.get("prefix").cloned()).await
            }
            _ => Ok(method_not_allowed("GET, HEAD")),
        };
    };
    let mut writer = None;
    if matches!(method, Method::POST | Method::DELETE) {
        writer = write_checks(&state, &req).await?;
    }
    match (&method, key.as_str()) {
        (&Method::POST, "batch") => batch(&state, ns, req, writer).await,
        (&Method::GET, "keys") => keys(&state, ns).await,
        (&Method::GET, _) => get_key(&state, ns, key).await,
        (&Method::DELETE, _) => delete(&state, ns, key, writer).await,
        // `batch` is also a key: both are allowed on it.
        (_, "batch") => Ok(method_not_allowed("GET, HEAD, PUT, DELETE, POST")),
        _ => Ok(method_not_allowed("GET, HEAD, PUT, DELETE")),
    }
}

/// Before any write: the fence (see [`check_fence`]), then who is writing.
/// Both are known at once on a connection that wrote before from an
/// instance never replaced; only the rest waits, boxed. Read from the head
/// before the first wait (a borrowed request does not cross one).
fn write_checks(
    state: &AppState,
    req: &Request,
) -> impl Future<Output = Result<Option<Writer>, ApiError>> + Send + 'static {
    let fence = fence_to_check(state, req.headers()).map(Box::pin);
    let writer = who_wrote(req);
    async move {
        if let Some(check) = fence {
            check.await?;
        }
        Ok(match writer {
            Ok(known) => known,
            Err(lookup) => lookup.await,
        })
    }
}

/// The process behind a write, told with its change (see `writer.rs`); `None`
/// when it cannot be known (a remote client, a process we did not start).
/// `Ok` when this connection already said (most writes); otherwise the
/// lookup, boxed.
fn who_wrote(req: &Request) -> Result<Option<Writer>, BoxFuture<'static, Option<Writer>>> {
    let header = req
        .headers()
        .get(WRITER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(ends) = req.extensions().get::<super::writer::ConnInfo>().cloned() else {
        return Ok(None);
    };
    if let Some(writer) = ends.cached(&header) {
        return Ok(writer);
    }
    Err(Box::pin(async move {
        // A named pid costs a few reads of `/proc/<pid>/stat`: here, not on
        // a thread of the blocking pool (a thousand workers starting at once
        // would take one each). A trace searches: off the async workers.
        let writer = if super::writer::names_a_pid(header.as_deref()) {
            super::writer::resolve(header.as_deref(), Some(ends.clone()))
        } else {
            let (conn, named) = (ends.clone(), header.clone());
            tokio::task::spawn_blocking(move || {
                super::writer::resolve(named.as_deref(), Some(conn))
            })
            .await
            .ok()
            .flatten()
        };
        ends.remember(header, writer.clone());
        writer
    }))
}

/// Refuses a write from an instance whose work a failover moved elsewhere
/// (a frozen node that thawed): 409, so it cannot overwrite its
/// replacement's checkpoint. Writes that name no instance are not fenced
/// (the original SDK sends none).
fn fence_to_check(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Option<impl Future<Output = Result<(), ApiError>>> {
    let (Some(deployments), Some(instance)) = (
        state.deployments.clone(),
        headers.get(INSTANCE_HEADER).and_then(|v| v.to_str().ok()),
    ) else {
        return None;
    };
    // Most writers were never replaced: no trip to the blocking pool.
    deployments
        .was_replaced(instance)
        .then(|| check_fence(deployments, instance.to_string()))
}

async fn check_fence(deployments: Arc<Deployments>, instance: String) -> Result<(), ApiError> {
    let fence = tokio::task::spawn_blocking(move || {
        let fence = deployments.fence(&instance)?;
        if fence.is_some() {
            deployments.refused(&instance);
        }
        anyhow::Ok(fence.map(|f| (instance, f)))
    })
    .await
    .map_err(ApiError::internal)??;
    match fence {
        None => Ok(()),
        Some((instance, fence)) => Err(ApiError {
            status: StatusCode::CONFLICT,
            message: format!(
                "{FENCED}: instance {instance} was replaced by {} on {} after a failover; \
                 its writes are refused",
                fence.new_instance_id, fence.to_node
            ),
        }),
    }
}

async fn list(state: &AppState, ns: String, prefix: Option<String>) -> Result<Response, ApiError> {
    let entries = blocking(state, move |s| s.list(&ns, prefix.as_deref())).await?;
    Ok(Json(entries).into_response())
}

async fn keys(state: &AppState, ns: String) -> Result<Response, ApiError> {
    let ns2 = ns.clone();
    let keys = blocking(state, move |s| s.keys(&ns2)).await?;
    Ok(Json(json!({ "namespace": ns, "keys": keys })).into_response())
}

async fn get_key(state: &AppState, ns: String, key: String) -> Result<Response, ApiError> {
    validate_key(&key).map_err(ApiError::bad_request)?;
    let found = match state.store.try_get(&ns, &key) {
        Some(found) => found?,
        None => {
            let (ns2, key2) = (ns.clone(), key.clone());
            blocking(state, move |s| s.get(&ns2, &key2)).await?
        }
    };
    match found {
        Some(entry) => Ok(Json(entry).into_response()),
        None => Err(ApiError::not_found(format!(
            "key {key:?} not found in namespace {ns:?}"
        ))),
    }
}

/// A PUT, the one write that comes many times a second: what it needs of
/// the head is taken before the first wait, so its future holds little
/// more than the body's read and the commit's wait.
fn put(
    state: AppState,
    ns: String,
    key: String,
    req: Request,
) -> impl Future<Output = Result<Response, ApiError>> + Send {
    let checks = write_checks(&state, &req);
    let body = req.into_body();
    async move {
        let writer = checks.await?;
        validate_key(&key).map_err(ApiError::bad_request)?;
        writable(&state)?;
        let (value, ty) = json_of::<ValueBody>(body)
            .await?
            .checked()
            .map_err(ApiError::bad_request)?;
        let entry = state.store.put_async(ns, key, value, ty, writer).await?;
        Ok(Json(PutAnswer {
            key: &entry.key,
            namespace: &entry.namespace,
            value_type: entry.value_type,
            value: &entry.value,
        })
        .into_response())
    }
}

/// The original answers a PUT with exactly these four fields (serialized
/// from the stored entry, not copied into a JSON tree first).
#[derive(Serialize)]
struct PutAnswer<'a> {
    key: &'a str,
    namespace: &'a str,
    #[serde(rename = "type")]
    value_type: ValueType,
    value: &'a str,
}

async fn delete(
    state: &AppState,
    ns: String,
    key: String,
    writer: Option<Writer>,
) -> Result<Response, ApiError> {
    validate_key(&key).map_err(ApiError::bad_request)?;
    writable(state)?;
    state.store.delete_async(ns, key, writer).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn batch(
    state: &AppState,
    ns: String,
    req: Request,
    writer: Option<Writer>,
) -> Result<Response, ApiError> {
    let JsonBody(body) = JsonBody::<BatchBody>::from_request(req, state).await?;
    let items = body.checked().map_err(ApiError::bad_request)?;
    writable(state)?;
    let count = state.store.batch_async(&ns, items, writer).await?;
    Ok(Json(json!({ "namespace": ns, "count": count })).into_response())
}

fn decode(what: &str, raw: &str) -> Result<String, ApiError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::bad_request(format!("{what} is not valid UTF-8")))
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut resp = ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("method not allowed here (allowed: {allow})"),
    }
    .into_response();
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_is_not() {
        assert_eq!(bearer_credentials("Bearer abc"), Some("abc"));
        assert_eq!(bearer_credentials("bearer abc"), Some("abc"));
        assert_eq!(bearer_credentials("BEARER  abc"), Some("abc"));
        assert_eq!(bearer_credentials("Basic abc"), None);
        assert_eq!(bearer_credentials("Bearer"), None);
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"ABC"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
