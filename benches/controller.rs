//! Controller write path: PUT requests/s and latency on loopback, against
//! two ceilings measured in the same run — an empty axum handler on the same
//! server stack (HTTP ceiling) and `Store::put` called directly (storage
//! ceiling) — plus `redis-benchmark -t set` when it is installed.
//!
//! `cargo bench --bench controller`

mod common;

use axum::body::Bytes;
use axum::routing::any;
use axum::{Json, Router};
use common::{fmt_d, Samples, Table};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use plumdash::controller::{self, ControllerConfig, Store};
use plumdash::kv::ValueType;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long each HTTP configuration is driven.
const RUN: Duration = Duration::from_millis(1500);
/// Upper bound of requests per run (keeps `Connection: close` runs from
/// piling up TIME_WAIT sockets).
const MAX_REQUESTS: usize = 30_000;

fn main() {
    if !common::benchmarking("controller") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");

    // The server side: the same runtime configuration as `plumdash` (main.rs).
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let db = dir.path().join("kv.db");
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let running = controller::start(ControllerConfig {
                listen: "127.0.0.1:0".parse().expect("a socket address"),
                db,
                token: None,
                fallback_to_free_port: false,
                cluster: Default::default(),
                max_upload: plumdash::controller::MAX_UPLOAD_BYTES,
            })
            .await
            .expect("controller");
            // The HTTP ceiling: same axum/hyper/tokio, a route that only answers.
            let empty = Router::new().route(
                "/v1/kv/{*rest}",
                any(|| async { Json(serde_json::json!({ "ok": true })) }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("binding a loopback port");
            let empty_addr = listener.local_addr().expect("its address");
            tokio::spawn(async move { axum::serve(listener, empty).await });
            addr_tx
                .send((running.addr, empty_addr))
                .expect("the bench is waiting");
            let _ = stop_rx.await;
            running.shutdown().await.expect("shutdown");
        });
    });
    let (kv_addr, empty_addr) = addr_rx.recv().expect("server addresses");

    // The load generator: its own single-threaded runtime on its own thread.
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let mut table = Table::new(&[
        "server",
        "clients",
        "connection",
        "req/s",
        "p50",
        "p99",
        "req/s vs ceiling",
    ]);
    let mut ratios = Vec::new();
    for clients in [1usize, 16] {
        for close in [false, true] {
            let conn = if close {
                "close (new TCP per PUT)"
            } else {
                "keep-alive"
            };
            let ceiling = client.block_on(drive(empty_addr, clients, close));
            let kv = client.block_on(drive(kv_addr, clients, close));
            let ratio = kv.rps / ceiling.rps;
            ratios.push((clients, conn, ratio));
            table.row(vec![
                "empty axum handler (ceiling)".into(),
                clients.to_string(),
                conn.into(),
                format!("{:.0}", ceiling.rps),
                fmt_d(ceiling.lat.median()),
                fmt_d(ceiling.lat.p99()),
                "1.00".into(),
            ]);
            table.row(vec![
                "plumdash controller PUT".into(),
                clients.to_string(),
                conn.into(),
                format!("{:.0}", kv.rps),
                fmt_d(kv.lat.median()),
                fmt_d(kv.lat.p99()),
                format!("{ratio:.2}"),
            ]);
        }
    }

    // The storage ceiling: raw rusqlite upserts with the controller's
    // durability settings (WAL, synchronous=NORMAL, one commit per write).
    let raw = rusqlite::Connection::open(dir.path().join("raw.db")).expect("raw db");
    raw.pragma_update(None, "journal_mode", "WAL").expect("wal");
    raw.pragma_update(None, "synchronous", "NORMAL")
        .expect("sync");
    raw.execute_batch(
        "CREATE TABLE kv (namespace TEXT, key TEXT, value TEXT, type TEXT, updated_at INTEGER,
         PRIMARY KEY (namespace, key))",
    )
    .expect("schema");
    let mut upsert = raw
        .prepare_cached(
            "INSERT INTO kv VALUES ('bench', ?1, ?2, 'int', 0)
             ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
        )
        .expect("prepare");
    let raw_run = one_thread_writes(|key, value| {
        upsert
            .execute(rusqlite::params![key, value])
            .expect("upsert");
    });
    drop(upsert);
    table.row(one_thread_row(
        "raw rusqlite upsert (storage ceiling)",
        &raw_run,
    ));

    // The store's own write path (mutex + upsert + commit + publish), no HTTP.
    let store = Store::open(&dir.path().join("store.db")).expect("store");
    let store_run = one_thread_writes(|key, value| {
        store.put("bench", key, value, ValueType::Int).expect("put");
    });
    table.row(one_thread_row("Store::put (1 caller)", &store_run));
    table.print();
    for (clients, conn, ratio) in ratios {
        println!(
            "goal ≥ 0.50 of the HTTP ceiling, {clients} client(s), {conn}: {ratio:.2} {}",
            if ratio >= 0.5 { "MET" } else { "MISSED" }
        );
    }
    println!();

    let _ = stop_tx.send(());
    server.join().expect("server thread");
    redis_reference();
}

struct RunResult {
    rps: f64,
    lat: Samples,
}

/// Writes `k{i % 1000} = i` on this thread for `RUN` (bounded in count),
/// timing each call.
fn one_thread_writes(mut write: impl FnMut(&str, &str)) -> RunResult {
    let mut lat = Samples::default();
    let start = Instant::now();
    let mut i = 0usize;
    while start.elapsed() < RUN && i < MAX_REQUESTS * 4 {
        let (key, value) = (format!("k{}", i % 1000), i.to_string());
        let t = Instant::now();
        write(&key, &value);
        lat.push(t.elapsed());
        i += 1;
    }
    RunResult {
        rps: i as f64 / start.elapsed().as_secs_f64(),
        lat,
    }
}

fn one_thread_row(what: &str, run: &RunResult) -> Vec<String> {
    vec![
        what.into(),
        "1 thread".into(),
        "-".into(),
        format!("{:.0}", run.rps),
        fmt_d(run.lat.median()),
        fmt_d(run.lat.p99()),
        "-".into(),
    ]
}

/// `clients` concurrent connections PUTting for `RUN`.
async fn drive(addr: SocketAddr, clients: usize, close: bool) -> RunResult {
    // Warm up connections and caches.
    let _ = one_client(addr, 0, close, Duration::from_millis(150), 2_000).await;
    let start = Instant::now();
    let per_client = MAX_REQUESTS / clients;
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(one_client(addr, c, close, RUN, per_client)))
        .collect();
    let mut lat = Samples::default();
    for t in tasks {
        lat.extend(t.await.expect("client task"));
    }
    let rps = lat.len() as f64 / start.elapsed().as_secs_f64();
    RunResult { rps, lat }
}

async fn one_client(
    addr: SocketAddr,
    client: usize,
    close: bool,
    run: Duration,
    max: usize,
) -> Samples {
    let mut lat = Samples::default();
    let start = Instant::now();
    let mut sender = None;
    let mut i = 0usize;
    while start.elapsed() < run && lat.len() < max {
        let t = Instant::now();
        if sender.is_none() {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (s, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            sender = Some(s);
        }
        let s = sender.as_mut().expect("sender");
        let body = format!(r#"{{"value":"{i}","type":"int"}}"#);
        let mut req = Request::put(format!("/v1/kv/bench/c{client}.k{}", i % 100))
            .header(HOST, addr.to_string())
            .header(CONTENT_TYPE, "application/json");
        if close {
            req = req.header(CONNECTION, "close");
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("request");
        let resp = s.send_request(req).await.expect("send");
        assert_eq!(resp.status(), 200, "PUT failed");
        resp.into_body().collect().await.expect("body");
        lat.push(t.elapsed());
        if close {
            sender = None;
        }
        i += 1;
    }
    lat
}

/// `redis-benchmark -t set` on loopback against a private `redis-server`,
/// when both are installed; skipped otherwise.
fn redis_reference() {
    let have = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !have("redis-server") || !have("redis-benchmark") {
        println!("redis reference: skipped (redis-server / redis-benchmark not installed)");
        return;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut server = match Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            println!("redis reference: skipped ({e})");
            return;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut table = Table::new(&[
        "redis-benchmark -t set",
        "clients",
        "connection",
        "req/s",
        "p50",
        "p99",
    ]);
    for clients in [1, 16] {
        for keepalive in ["1", "0"] {
            let n = if keepalive == "1" { "50000" } else { "10000" };
            let out = Command::new("redis-benchmark")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", "set"])
                .args([
                    "-n",
                    n,
                    "-c",
                    &clients.to_string(),
                    "-k",
                    keepalive,
                    "--csv",
                ])
                .output();
            let Ok(out) = out else { continue };
            let text = String::from_utf8_lossy(&out.stdout);
            // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
            if let Some(line) = text.lines().find(|l| l.starts_with("\"SET\"")) {
                let f: Vec<&str> = line.split(',').map(|s| s.trim_matches('"')).collect();
                table.row(vec![
                    format!("redis SET, {n} requests"),
                    clients.to_string(),
                    if keepalive == "1" {
                        "keep-alive"
                    } else {
                        "close (new TCP per SET)"
                    }
                    .into(),
                    f.get(1).unwrap_or(&"?").to_string(),
                    format!("{} ms", f.get(4).unwrap_or(&"?")),
                    format!("{} ms", f.get(6).unwrap_or(&"?")),
                ]);
            }
        }
    }
    table.print();
    println!("(redis: in-memory, no fsync, no persistence: a well-known reference, not a ceiling)");
    let _ = server.kill();
    let _ = server.wait();
}
