//! A misbehaving controller speaking the KV API's shape, one way of
//! misbehaving per `Mode`: another namespace's events, a malformed entry, a
//! progress written as a word, a malformed event, an endless line, a huge snapshot as one line of a
//! connection-close answer, accepting and never answering, redirecting,
//! HTML error pages.
//!
//! Written on raw TCP rather than axum or hyper: a close-delimited body (no
//! length, no chunking) and a request never answered are exactly what a
//! well-behaved server library will not send. Loopback only, its own thread
//! and runtime (sync tests can use it too), the namespace it serves is `hx`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The namespace every mode serves.
pub const NS: &str = "hx";

/// A key with a terminal title sequence and a right-to-left override in it.
pub const EVIL_KEY: &str = "evil\u{1b}]0;pwned\u{7}\u{202e}";
/// How it must be shown.
pub const EVIL_KEY_SHOWN: &str = "evil\\x1b]0;pwned\\x07\\u{202e}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/v1/stream?namespace=hx` also sends `other-app`'s writes (and the
    /// listing an `other-app` entry), plus a change numbered before the snapshot.
    OtherNamespace,
    /// One entry of the listing and the snapshot has a numeric `value`, one
    /// `null` fields, one `"updatedAtMs": 1e30`, one a key with escapes in it;
    /// the task's keys are fine.
    BadEntry,
    /// `task.progress` is `"fifty"` (type int): present, not a number.
    WordProgress,
    /// Every answer bytes that are not HTTP (a TLS server's alert).
    NotHttp,
    /// The stream's head, then one byte of a line every 200 ms, never a
    /// line's end: bytes that never make an event.
    Trickle,
    /// `task.progress` and `task.counter` sent as JSON numbers (`50`, not
    /// `"50"`): entries that do not read, beside a good `task.checkpoint`.
    NumberTask,
    /// A good snapshot, then `data: {not json` events, one every 100 ms.
    BadEvent,
    /// `data: AAAA…` without end, 64 KiB at a time.
    EndlessLine,
    /// A snapshot of this many keys as one `data:` line of a connection-close
    /// answer (no length, no chunking); `HugeChunked` the same, chunked.
    HugeUnframed(usize),
    // The bench compares it with the unframed one; no test needs it.
    #[allow(dead_code)]
    HugeChunked(usize),
    /// Accepts, reads the request, never answers.
    Hang,
    /// Reads redirected to another origin; writes redirected (307).
    Redirect,
    /// Every answer a 502 HTML page, as a proxy in front of a dead controller.
    HtmlError,
    /// After a good snapshot, one change numbered 18446744073709551615, then
    /// progress writes numbered on from 101 (the first connection only;
    /// later ones are well numbered).
    BigId,
}

pub struct HostileController {
    url: String,
    /// Requests for `/v1/stream` so far.
    streams: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostileController {
    pub fn start(mode: Mode) -> HostileController {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let streams = Arc::new(AtomicUsize::new(0));
        let counted = streams.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = listener.local_addr().expect("addr");
                url_tx.send(format!("http://{addr}")).expect("send url");
                let serve = async {
                    loop {
                        let Ok((socket, _)) = listener.accept().await else {
                            continue;
                        };
                        let counted = counted.clone();
                        tokio::spawn(async move {
                            let _ = answer(mode, socket, &counted).await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        let url = url_rx.recv().expect("the hostile controller starts");
        HostileController {
            url,
            streams,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// How many times `/v1/stream` was asked for.
    pub fn stream_requests(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }
}

impl Drop for HostileController {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The task's keys at 50 %, flag set: what every mode's namespace holds.
pub fn good_entries() -> Vec<serde_json::Value> {
    let e = |key: &str, value: &str, ty: &str| {
        serde_json::json!({"namespace": NS, "key": key, "value": value, "type": ty,
                           "updatedAt": 1_700_000_000, "updatedAtMs": 1_700_000_000_000i64})
    };
    vec![
        e("app.crashed", "true", "bool"),
        e("task.checkpoint", "step_5", "string"),
        e("task.counter", "5", "int"),
        e("task.progress", "50", "int"),
        e("task.status", "running", "string"),
    ]
}

/// The good entries and three malformed ones.
pub fn entries_with_bad_ones() -> Vec<serde_json::Value> {
    let mut all = good_entries();
    all.push(serde_json::json!({"namespace": NS, "key": "bad.number", "value": 50, "type": "int"}));
    all.push(serde_json::json!({"namespace": NS, "key": "bad.null", "value": null, "type": null}));
    all.push(
        serde_json::json!({"namespace": NS, "key": "bad.time", "value": "x",
                                "type": "string", "updatedAtMs": 1e30}),
    );
    // A key that would retitle the terminal and reverse the text after it.
    all.push(serde_json::json!({"namespace": NS, "key": EVIL_KEY, "value": [1], "type": "string"}));
    all
}

/// The good entries with the progress and counter as JSON numbers.
pub fn number_task() -> Vec<serde_json::Value> {
    let mut all = good_entries();
    for e in &mut all {
        if e["key"] == "task.progress" || e["key"] == "task.counter" {
            let n: i64 = e["value"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            e["value"] = n.into();
        }
    }
    all
}

/// The good entries with `task.progress` written as a word.
pub fn word_progress() -> Vec<serde_json::Value> {
    let mut all = good_entries();
    for e in &mut all {
        if e["key"] == "task.progress" {
            e["value"] = "fifty".into();
        }
    }
    all
}

/// A snapshot of `n` keys as one JSON list.
pub fn huge_snapshot(n: usize) -> String {
    let mut out = String::with_capacity(n * 110);
    out.push('[');
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"namespace":"{NS}","key":"k{i:06}","value":"value number {i}","type":"string","updatedAt":1700000000}}"#
        ));
    }
    out.push(']');
    out
}

/// One request's method, path and query (the body, if any, is not needed).
async fn read_head(socket: &mut TcpStream) -> Option<(String, String)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut byte).await.ok()?;
        if n == 0 || head.len() > 64 << 10 {
            return None;
        }
        head.extend_from_slice(&byte[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.split_whitespace();
    Some((words.next()?.to_string(), words.next()?.to_string()))
}

async fn reply(
    socket: &mut TcpStream,
    status: &str,
    kind: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body.as_bytes()).await?;
    socket.shutdown().await
}

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n";

fn event(name: &str, id: Option<u64>, data: &str) -> String {
    let id = id.map(|i| format!("id: {i}\n")).unwrap_or_default();
    format!("event: {name}\n{id}data: {data}\n\n")
}

/// Writes an SSE body chunked (`Transfer-Encoding: chunked`), piece by piece.
async fn chunk(socket: &mut TcpStream, piece: &str) -> std::io::Result<()> {
    socket
        .write_all(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes())
        .await
}

async fn answer(mode: Mode, mut socket: TcpStream, streams: &AtomicUsize) -> std::io::Result<()> {
    let Some((method, target)) = read_head(&mut socket).await else {
        return Ok(());
    };
    let path = target.split('?').next().unwrap_or("").to_string();
    if path == "/v1/stream" {
        streams.fetch_add(1, Ordering::Relaxed);
    }
    let json = "application/json";
    match mode {
        Mode::Hang => {
            // Holds the connection open, answering nothing.
            let mut sink = [0u8; 1024];
            while socket.read(&mut sink).await? > 0 {}
            return Ok(());
        }
        Mode::NotHttp => {
            socket.write_all(b"\x15\x03\x01\x00\x02\x02\x46").await?;
            return socket.shutdown().await;
        }
        Mode::HtmlError => {
            let page = "<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title>\
                <style>body { width: 35em; margin: 0 auto; font-family: Tahoma, Verdana, Arial, sans-serif; }</style></head>\n\
                <body>\n<center><h1>502 Bad Gateway</h1></center>\n<hr><center>nginx/1.24.0 (Ubuntu)</center>\n\
                <p>The upstream server is not answering. Please try again later.</p>\n</body>\n</html>\n";
            return reply(&mut socket, "502 Bad Gateway", "text/html", page).await;
        }
        Mode::Redirect => {
            let elsewhere = format!("http://127.0.0.2:9{target}");
            let head = format!(
                "HTTP/1.1 {}\r\nlocation: {elsewhere}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                if method == "GET" { "302 Found" } else { "307 Temporary Redirect" }
            );
            socket.write_all(head.as_bytes()).await?;
            return socket.shutdown().await;
        }
        _ => {}
    }
    match (method.as_str(), path.as_str()) {
        ("GET", "/v1/kv") => {
            let body = serde_json::json!({ "namespaces": [NS] }).to_string();
            reply(&mut socket, "200 OK", json, &body).await
        }
        ("GET", "/v1/kv/hx") => {
            let mut items = listing(mode);
            if mode == Mode::OtherNamespace {
                items.push(
                    serde_json::json!({"namespace": "other-app", "key": "task.progress",
                                              "value": "90", "type": "int"}),
                );
            }
            reply(
                &mut socket,
                "200 OK",
                json,
                &serde_json::Value::from(items).to_string(),
            )
            .await
        }
        ("GET", one) if one.starts_with("/v1/kv/hx/") => {
            // One key: the item the listing has for it, as it is.
            let key = &one["/v1/kv/hx/".len()..];
            match listing(mode).into_iter().find(|e| e["key"] == key) {
                Some(item) => reply(&mut socket, "200 OK", json, &item.to_string()).await,
                None => not_found(&mut socket).await,
            }
        }
        ("GET", "/v1/stream") => {
            let first = streams.load(Ordering::Relaxed) == 1;
            stream(mode, socket, first).await
        }
        ("GET", "/healthz") => reply(&mut socket, "200 OK", json, r#"{"status":"ok"}"#).await,
        ("PUT", _) => reply(&mut socket, "200 OK", json, "{}").await,
        _ => not_found(&mut socket).await,
    }
}

/// The namespace's items in `mode`.
fn listing(mode: Mode) -> Vec<serde_json::Value> {
    match mode {
        Mode::BadEntry => entries_with_bad_ones(),
        Mode::WordProgress => word_progress(),
        Mode::NumberTask => number_task(),
        _ => good_entries(),
    }
}

async fn not_found(socket: &mut TcpStream) -> std::io::Result<()> {
    reply(
        socket,
        "404 Not Found",
        "application/json",
        r#"{"error":"not found"}"#,
    )
    .await
}

async fn stream(mode: Mode, mut socket: TcpStream, first: bool) -> std::io::Result<()> {
    let snapshot = |items: Vec<serde_json::Value>| {
        event(
            "snapshot",
            Some(100),
            &serde_json::Value::from(items).to_string(),
        )
    };
    match mode {
        Mode::HugeUnframed(n) => {
            // No length and no chunking: the body ends when the connection does.
            socket
                .write_all(format!("{SSE_HEAD}connection: close\r\n\r\n").as_bytes())
                .await?;
            let body = event("snapshot", Some(1), &huge_snapshot(n));
            socket.write_all(body.as_bytes()).await?;
            return hold(socket).await;
        }
        _ => {
            socket
                .write_all(format!("{SSE_HEAD}transfer-encoding: chunked\r\n\r\n").as_bytes())
                .await?;
        }
    }
    match mode {
        Mode::HugeChunked(n) => {
            chunk(&mut socket, &event("snapshot", Some(1), &huge_snapshot(n))).await?;
        }
        Mode::EndlessLine => {
            chunk(&mut socket, "data: ").await?;
            let piece = "A".repeat(64 << 10);
            loop {
                chunk(&mut socket, &piece).await?;
            }
        }
        Mode::BadEntry => chunk(&mut socket, &snapshot(entries_with_bad_ones())).await?,
        Mode::WordProgress => chunk(&mut socket, &snapshot(word_progress())).await?,
        Mode::NumberTask => chunk(&mut socket, &snapshot(number_task())).await?,
        Mode::OtherNamespace => {
            chunk(&mut socket, &snapshot(good_entries())).await?;
            // Another app's progress and a torn-looking checkpoint.
            for (i, (key, value)) in [("task.progress", "90"), ("task.counter", "3")]
                .into_iter()
                .enumerate()
            {
                let data = serde_json::json!({"namespace": "other-app", "key": key,
                                              "value": value, "type": "int"});
                chunk(
                    &mut socket,
                    &event("kv", Some(101 + i as u64), &data.to_string()),
                )
                .await?;
            }
            // A change of ours numbered before the snapshot: stale.
            let stale = serde_json::json!({"namespace": NS, "key": "task.progress",
                                           "value": "10", "type": "int"});
            chunk(&mut socket, &event("kv", Some(50), &stale.to_string())).await?;
            let deleted = serde_json::json!({"namespace": "other-app", "key": "app.crashed"});
            chunk(
                &mut socket,
                &event("kv-deleted", Some(103), &deleted.to_string()),
            )
            .await?;
        }
        Mode::Trickle => loop {
            chunk(&mut socket, "d").await?;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        },
        Mode::BigId => {
            chunk(&mut socket, &snapshot(good_entries())).await?;
            let progress = |p: u64| {
                serde_json::json!({"namespace": NS, "key": "task.progress",
                                   "value": p.to_string(), "type": "int"})
                .to_string()
            };
            if first {
                chunk(&mut socket, &event("kv", Some(u64::MAX), &progress(60))).await?;
            }
            for (i, p) in [70, 80, 90].into_iter().enumerate() {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                chunk(
                    &mut socket,
                    &event("kv", Some(101 + i as u64), &progress(p)),
                )
                .await?;
            }
        }
        Mode::BadEvent => {
            chunk(&mut socket, &snapshot(good_entries())).await?;
            loop {
                chunk(&mut socket, "event: kv\ndata: {not json\n\n").await?;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        _ => {}
    }
    // Keep-alives, as a live controller sends them.
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        chunk(&mut socket, ": keep-alive\n\n").await?;
    }
}

/// Keeps a connection open until the other side closes it.
async fn hold(mut socket: TcpStream) -> std::io::Result<()> {
    let mut sink = [0u8; 1024];
    while socket.read(&mut sink).await? > 0 {}
    Ok(())
}
