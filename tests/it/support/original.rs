//! A stand-in for the original Plum controller (Go), answering as it does
//! (`../shared/plum-kv-api.md`), quirks included: `null` for empty lists, errors
//! as `text/plain` lines, `404 page not found`, 400 `nodeId required` on
//! `/v1/stream` (so clients must poll), `bytes` entries listed as their decoded
//! length, `batch`/`keys` routed before keys, CORS headers, `ok` health. Kept in
//! memory, on a loopback port, on its own thread (sync tests can use it too).

use axum::body::Bytes;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone)]
struct Item {
    value: String,
    ty: String,
    updated_at: i64,
}

type Store = Arc<Mutex<BTreeMap<String, BTreeMap<String, Item>>>>;

pub struct OriginalController {
    url: String,
    /// Every request's method and path, in order (what a client asked).
    requests: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OriginalController {
    pub fn start() -> OriginalController {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = requests.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let addr = listener.local_addr().expect("addr");
                url_tx.send(format!("http://{addr}")).expect("send url");
                let store: Store = Arc::default();
                let app = Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
                    let store = store.clone();
                    log.lock().unwrap().push(format!("{method} {}", uri.path()));
                    async move { handle(&store, method, uri, body) }
                });
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let url = url_rx.recv().expect("the stand-in controller starts");
        OriginalController {
            url,
            requests,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Every request so far as `METHOD /path`, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for OriginalController {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Go's `http.Error`: text/plain, the message and a newline.
fn text(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn json_answer(value: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A Go nil slice encodes as `null`.
fn list_or_null(items: Vec<Value>) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items)
    }
}

fn handle(store: &Store, method: Method, uri: Uri, body: Bytes) -> Response {
    let mut response = route(store, &method, &uri, &body);
    // Every route answers with CORS headers.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn route(store: &Store, method: &Method, uri: &Uri, body: &[u8]) -> Response {
    if method == Method::OPTIONS {
        return StatusCode::NO_CONTENT.into_response();
    }
    // Go's router matches the decoded path.
    let path = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let query = uri.query().unwrap_or("");
    match path.as_str() {
        "/healthz" => return text(StatusCode::OK, "ok"),
        "/v1/stream" => {
            // Only node notifications; never KV changes, and `?namespace=` is refused.
            return text(StatusCode::BAD_REQUEST, "nodeId required");
        }
        "/v1/kv" | "/v1/kv/" if method == Method::GET => {
            let names: Vec<Value> = store
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, keys)| !keys.is_empty())
                .map(|(ns, _)| json!(ns))
                .collect();
            return json_answer(json!({ "namespaces": list_or_null(names) }));
        }
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/v1/kv/") else {
        return text(StatusCode::NOT_FOUND, "404 page not found");
    };
    let (ns, key) = match rest.split_once('/') {
        Some((ns, key)) => (ns.to_string(), Some(key.to_string())),
        None => (rest.to_string(), None),
    };
    if ns.is_empty() {
        return text(StatusCode::BAD_REQUEST, "namespace required");
    }
    // Suffix routes run before key routes: keys named `batch` or `keys` are unreachable.
    match key.as_deref() {
        Some("batch") => {
            if method != Method::POST {
                return text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            }
            batch(store, &ns, body)
        }
        Some("keys") => {
            if method != Method::GET {
                return text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            }
            let keys: Vec<Value> = store
                .lock()
                .unwrap()
                .get(&ns)
                .map(|m| m.keys().map(|k| json!(k)).collect())
                .unwrap_or_default();
            json_answer(json!({ "namespace": ns, "keys": list_or_null(keys) }))
        }
        None | Some("") => {
            if method != Method::GET {
                return text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            }
            let prefix = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("prefix="))
                .map(|p| {
                    percent_encoding::percent_decode_str(p)
                        .decode_utf8_lossy()
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            let items: Vec<Value> = store
                .lock()
                .unwrap()
                .get(&ns)
                .map(|m| {
                    m.iter()
                        // SQL LIKE 'p%': ASCII case-insensitive.
                        .filter(|(k, _)| k.to_ascii_lowercase().starts_with(&prefix))
                        .map(|(k, item)| {
                            // The original's bug: a bytes entry is listed with its
                            // decoded length in place of its value.
                            let value = if item.ty == "bytes" {
                                base64::engine::general_purpose::STANDARD
                                    .decode(&item.value)
                                    .map_or(item.value.clone(), |b| b.len().to_string())
                            } else {
                                item.value.clone()
                            };
                            json!({"namespace": ns, "key": k, "value": value,
                                   "type": item.ty, "updatedAt": item.updated_at})
                        })
                        .collect()
                })
                .unwrap_or_default();
            json_answer(list_or_null(items))
        }
        Some(key) => match *method {
            Method::PUT => {
                let parsed: Value = match serde_json::from_slice(body) {
                    Ok(v) => v,
                    Err(_) => return text(StatusCode::BAD_REQUEST, "invalid json"),
                };
                let ty = parsed["type"].as_str().unwrap_or("string").to_string();
                if !["string", "int", "double", "bool", "bytes"].contains(&ty.as_str()) {
                    return text(StatusCode::BAD_REQUEST, "invalid type");
                }
                // Never checked against the type; missing or null is stored as "".
                let value = parsed["value"].as_str().unwrap_or("").to_string();
                store.lock().unwrap().entry(ns.clone()).or_default().insert(
                    key.to_string(),
                    Item {
                        value: value.clone(),
                        ty: ty.clone(),
                        updated_at: now(),
                    },
                );
                json_answer(json!({"namespace": ns, "key": key, "value": value, "type": ty}))
            }
            Method::GET => {
                let store = store.lock().unwrap();
                match store.get(&ns).and_then(|m| m.get(key)) {
                    Some(item) => json_answer(json!({"namespace": ns, "key": key,
                        "value": item.value, "type": item.ty, "updatedAt": item.updated_at})),
                    None => text(StatusCode::NOT_FOUND, "not found"),
                }
            }
            Method::DELETE => {
                if let Some(m) = store.lock().unwrap().get_mut(&ns) {
                    m.remove(key);
                }
                StatusCode::NO_CONTENT.into_response()
            }
            _ => text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
        },
    }
}

fn batch(store: &Store, ns: &str, body: &[u8]) -> Response {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return text(StatusCode::BAD_REQUEST, "invalid json"),
    };
    let Some(items) = parsed["items"].as_array().filter(|i| !i.is_empty()) else {
        return text(StatusCode::BAD_REQUEST, "items required");
    };
    let mut store = store.lock().unwrap();
    let keys = store.entry(ns.to_string()).or_default();
    for item in items {
        let Some(key) = item["key"].as_str() else {
            return text(StatusCode::BAD_REQUEST, "key required");
        };
        keys.insert(
            key.to_string(),
            Item {
                value: item["value"].as_str().unwrap_or("").to_string(),
                // Batch item types are not checked.
                ty: item["type"].as_str().unwrap_or("string").to_string(),
                updated_at: now(),
            },
        );
    }
    json_answer(json!({"namespace": ns, "count": items.len()}))
}
