//! The KV controller over real HTTP and a real SQLite file: the wire API,
//! bad input, durability against SIGKILL, the change stream, concurrency.

use crate::support::{self, http, obj_keys, send, ControllerProcess, TestController};
use plumdash::kv::{
    BatchItem, DistributedMemory, FeedMode, FeedStatus, KvError, ValueType, WatchEvent,
    WatchOptions,
};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn every_endpoint_answers_with_the_originals_status_and_shape() {
    let c = TestController::start().await;
    let base = c.url();

    let (s, body) = send("GET", &format!("{base}/healthz"), None).await;
    assert_eq!(s, 200, "{body}");

    // PUT answers exactly {namespace,key,value,type} with 200 (201 would fail the original client).
    let (s, body) = send(
        "PUT",
        &format!("{base}/v1/kv/demo/task.progress"),
        Some(r#"{"type":"int","value":"50"}"#.into()),
    )
    .await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(obj_keys(&v), ["key", "namespace", "type", "value"]);
    assert_eq!(
        v,
        json!({"namespace":"demo","key":"task.progress","value":"50","type":"int"})
    );

    // A missing type means string.
    let (s, _) = send(
        "PUT",
        &format!("{base}/v1/kv/demo/note"),
        Some(r#"{"value":"hi"}"#.into()),
    )
    .await;
    assert_eq!(s, 200);

    // GET adds updatedAt; value is always a JSON string.
    let (s, body) = send("GET", &format!("{base}/v1/kv/demo/task.progress"), None).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    // Plus plumdash's `updatedAtMs`, which the original's clients ignore.
    assert_eq!(
        obj_keys(&v),
        [
            "key",
            "namespace",
            "type",
            "updatedAt",
            "updatedAtMs",
            "value"
        ]
    );
    assert!(v["value"].is_string() && v["updatedAt"].as_i64().unwrap() > 1_600_000_000);

    let (s, _) = send("GET", &format!("{base}/v1/kv/demo/absent"), None).await;
    assert_eq!(s, 404);

    // Batch: one transaction, answers {namespace,count}.
    let (s, body) = send(
        "POST",
        &format!("{base}/v1/kv/demo/batch"),
        Some(
            json!({"items":[
                {"key":"task.counter","value":"5","type":"int"},
                {"key":"task.checkpoint","value":"step_5","type":"string"},
                {"key":"binary.checkpoint","value":"AAECAw==","type":"bytes"}
            ]})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"namespace":"demo","count":3})
    );

    // List: sorted by key; bytes carry their base64 value (the original sent the length).
    let (s, body) = send("GET", &format!("{base}/v1/kv/demo"), None).await;
    assert_eq!(s, 200);
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    let keys: Vec<&str> = list.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "binary.checkpoint",
            "note",
            "task.checkpoint",
            "task.counter",
            "task.progress"
        ]
    );
    assert_eq!(list[0]["value"], "AAECAw==");
    assert_eq!(
        obj_keys(&list[0]),
        [
            "key",
            "namespace",
            "type",
            "updatedAt",
            "updatedAtMs",
            "value"
        ]
    );

    let (_, body) = send("GET", &format!("{base}/v1/kv/demo?prefix=task."), None).await;
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(list.len(), 3);

    let (s, body) = send("GET", &format!("{base}/v1/kv/demo/keys"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"namespace":"demo","keys":["binary.checkpoint","note","task.checkpoint","task.counter","task.progress"]})
    );

    send(
        "PUT",
        &format!("{base}/v1/kv/other/x"),
        Some(r#"{"value":"1"}"#.into()),
    )
    .await;
    let (s, body) = send("GET", &format!("{base}/v1/kv"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"namespaces":["demo","other"]})
    );

    // DELETE: 204, also for a key that is not there.
    let (s, _) = send("DELETE", &format!("{base}/v1/kv/demo/note"), None).await;
    assert_eq!(s, 204);
    let (s, _) = send("DELETE", &format!("{base}/v1/kv/demo/note"), None).await;
    assert_eq!(s, 204);
    let (s, _) = send("GET", &format!("{base}/v1/kv/demo/note"), None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn keys_may_hold_dots_slashes_and_any_unicode() {
    let c = TestController::start().await;
    let dm = DistributedMemory::create("多语言", &c.url()).unwrap();
    let cases = [
        ("a.b.c", "dots"),
        ("dir/sub/key", "slashes"),
        ("ключ/键.🔑", "значение 值 🎉"),
        ("batch", "a key named like an endpoint"),
        ("with space?and#hash", "escaped"),
    ];
    for (k, v) in cases {
        dm.put(k, v).await.unwrap();
    }
    for (k, v) in cases {
        assert_eq!(dm.get(k).await.unwrap().as_deref(), Some(v), "key {k}");
    }
    let all = dm.get_all().await.unwrap();
    assert_eq!(all.len(), cases.len());
    // The original client sends keys raw, `/` included.
    let (s, body) = send(
        "GET",
        &format!("{}/v1/kv/%E5%A4%9A%E8%AF%AD%E8%A8%80/dir/sub/key", c.url()),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("slashes"));
}

#[tokio::test]
async fn the_sdk_reads_every_type_and_tells_absent_from_unreachable() {
    let c = TestController::start().await;
    let dm = DistributedMemory::create("types", &c.url()).unwrap();
    dm.put_int("i", -42).await.unwrap();
    dm.put_double("d", 15.70795).await.unwrap();
    dm.put_bool("b", true).await.unwrap();
    dm.put_bytes("y", &[0, 1, 2, 255]).await.unwrap();
    dm.put("s", "text").await.unwrap();
    assert_eq!(dm.get_int("i").await.unwrap(), Some(-42));
    assert_eq!(dm.get_double("d").await.unwrap(), Some(15.70795));
    assert_eq!(dm.get_bool("b").await.unwrap(), Some(true));
    assert_eq!(dm.get_bytes("y").await.unwrap(), Some(vec![0, 1, 2, 255]));
    assert_eq!(dm.get_or("absent", "dflt").await.unwrap(), "dflt");
    assert!(dm.exists("s").await.unwrap());
    dm.remove("s").await.unwrap();
    assert!(!dm.exists("s").await.unwrap());
    assert_eq!(dm.get_int("absent").await.unwrap(), None);
    assert!(matches!(dm.get_int("s2").await, Ok(None)));
    assert!(matches!(
        dm.get_int("b").await,
        Err(KvError::WrongType { .. })
    ));
    assert_eq!(
        dm.put_batch(&[
            BatchItem::new("p", "10", ValueType::Int),
            BatchItem::new("q", "step_1", ValueType::String)
        ])
        .await
        .unwrap(),
        2
    );

    // Same calls with the original client's `Connection: close`.
    let closing = DistributedMemory::with_options(
        "types",
        &c.url(),
        plumdash::kv::ClientOptions {
            connection_close: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(closing.get_int("p").await.unwrap(), Some(10));

    // A stopped controller is "unreachable", never "absent".
    let url = c.url();
    c.running.shutdown().await.unwrap();
    let dm = DistributedMemory::create("types", &url).unwrap();
    let err = dm.get_int("i").await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    let err = dm.get_or("absent", "dflt").await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
}

/// Everything the store holds, as one comparable value.
async fn dump(base: &str) -> Value {
    let (_, body) = send("GET", &format!("{base}/v1/kv"), None).await;
    let namespaces: Value = serde_json::from_str(&body).unwrap();
    let mut all = serde_json::Map::new();
    for ns in namespaces["namespaces"].as_array().unwrap() {
        let ns = ns.as_str().unwrap();
        let (_, body) = send("GET", &format!("{base}/v1/kv/{ns}"), None).await;
        all.insert(ns.to_string(), serde_json::from_str(&body).unwrap());
    }
    Value::Object(all)
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_reason_and_changes_nothing() {
    let c = TestController::start().await;
    let base = c.url();
    let dm = DistributedMemory::create("ns", &base).unwrap();
    dm.put_int("task.progress", 30).await.unwrap();
    let before = dump(&base).await;

    let long = "k".repeat(257);
    let huge = json!({"value": "x".repeat(1 << 20), "type": "string"}).to_string();
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        (
            "PUT",
            "/v1/kv/ns/task.progress".into(),
            Some("{not json".into()),
            400,
            "malformed JSON",
        ),
        (
            "PUT",
            "/v1/kv/ns/task.progress".into(),
            Some(r#"{"value":"1","type":"float"}"#.into()),
            400,
            "unknown type",
        ),
        (
            "PUT",
            "/v1/kv/ns/task.progress".into(),
            Some(r#"{"value":"5x","type":"int"}"#.into()),
            400,
            "not a 64-bit integer",
        ),
        (
            "PUT",
            "/v1/kv/ns/task.progress".into(),
            Some(r#"{"value":"abc","type":"double"}"#.into()),
            400,
            "not a finite number",
        ),
        (
            "PUT",
            "/v1/kv/ns/task.progress".into(),
            Some(r#"{"value":"yes","type":"bool"}"#.into()),
            400,
            "true or false",
        ),
        (
            "PUT",
            "/v1/kv/ns/task.progress".into(),
            Some(r#"{"value":"***","type":"bytes"}"#.into()),
            400,
            "base64",
        ),
        (
            "PUT",
            "/v1/kv/ns/task.progress".into(),
            Some(r#"{"value":5,"type":"int"}"#.into()),
            400,
            "must be a JSON string",
        ),
        (
            "PUT",
            "/v1/kv/ns/task.progress".into(),
            Some(r#"{"type":"int"}"#.into()),
            400,
            "missing \"value\"",
        ),
        (
            "PUT",
            "/v1/kv/ns/".into(),
            Some(r#"{"value":"1"}"#.into()),
            400,
            "key must not be empty",
        ),
        (
            "PUT",
            format!("/v1/kv/ns/{long}"),
            Some(r#"{"value":"1"}"#.into()),
            400,
            "at most 256",
        ),
        (
            "PUT",
            format!("/v1/kv/{long}/k"),
            Some(r#"{"value":"1"}"#.into()),
            400,
            "at most 256",
        ),
        (
            "PUT",
            "/v1/kv/a%2Fb/k".into(),
            Some(r#"{"value":"1"}"#.into()),
            400,
            "must not contain '/'",
        ),
        (
            "PUT",
            "/v1/kv/ns/task.progress".into(),
            Some(huge),
            413,
            "larger than",
        ),
        (
            "POST",
            "/v1/kv/ns/batch".into(),
            Some(r#"{"items":[]}"#.into()),
            400,
            "empty",
        ),
        (
            "POST",
            "/v1/kv/ns/batch".into(),
            Some(
                json!({"items":[
                    {"key":"task.progress","value":"90","type":"int"},
                    {"key":"task.counter","value":"nine","type":"int"}
                ]})
                .to_string(),
            ),
            400,
            "item 1",
        ),
        (
            "POST",
            "/v1/kv/ns/task.progress".into(),
            Some("{}".into()),
            405,
            "not allowed",
        ),
        ("DELETE", "/v1/kv/ns".into(), None, 405, "not allowed"),
        ("PUT", "/v1/kv".into(), None, 405, "not allowed"),
    ];
    for (method, path, body, want, reason) in cases {
        let (status, text) = send(method, &format!("{base}{path}"), body).await;
        assert_eq!(status, want, "{method} {path}: {text}");
        if !reason.is_empty() {
            let err: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
            let msg = err["error"].as_str().unwrap();
            assert!(
                msg.contains(reason),
                "{method} {path}: {msg:?} lacks {reason:?}"
            );
            assert!(!msg.contains('\n'), "one line: {msg:?}");
        }
    }
    assert_eq!(
        dump(&base).await,
        before,
        "a rejected request changed the store"
    );
}

/// Each type accepts only its exact written form: a near miss (whitespace of
/// any kind, `_`, `inf`, `NaN`, base64 with a line break…) gets a one-line 400
/// naming the type and stores nothing, alone or inside a batch.
#[tokio::test]
async fn values_are_refused_unless_written_exactly_as_their_type() {
    let c = TestController::start().await;
    let base = c.url();
    let put = |key: &str, value: &str, ty: &str| {
        let url = format!("{base}/v1/kv/strict/{key}");
        let body = json!({"value": value, "type": ty}).to_string();
        async move { send("PUT", &url, Some(body)).await }
    };
    let get_value = |key: &str| {
        let url = format!("{base}/v1/kv/strict/{key}");
        async move {
            let (status, body) = send("GET", &url, None).await;
            (status == 200).then(|| serde_json::from_str::<Value>(&body).unwrap()["value"].clone())
        }
    };
    let good = [
        ("int", "-42"),
        ("int", "+7"),
        ("int", "9223372036854775807"),
        ("double", "15.707950"),
        ("double", "-1e-3"),
        ("bool", "false"),
        ("bytes", "AAECAw=="),
    ];
    for (ty, value) in good {
        let key = format!("good.{ty}");
        let (status, body) = put(&key, value, ty).await;
        assert_eq!(status, 200, "{ty} {value:?}: {body}");
        assert_eq!(get_value(&key).await, Some(Value::from(value)));
    }
    let bad = [
        ("int", " 42 "),
        ("int", "\u{a0}1"),
        ("int", "1_000"),
        ("int", "42\n"),
        ("int", "9223372036854775808"),
        ("int", ""),
        ("double", "inf"),
        ("double", "NaN"),
        ("double", "infinity"),
        ("double", " 1.5"),
        ("double", "1e999"),
        ("bool", "True"),
        ("bool", "true "),
        ("bytes", "AAEC\nAw=="),
        ("bytes", "AAECAw"),
        ("bytes", "AA EC"),
    ];
    for (ty, value) in bad {
        // An existing key keeps its old value; a new one stays absent.
        let old = format!("good.{ty}");
        let before = get_value(&old).await;
        for key in [old.as_str(), "fresh"] {
            let (status, body) = put(key, value, ty).await;
            assert_eq!(status, 400, "{ty} {value:?} was accepted: {body}");
            assert!(!body.contains('\n'), "one line: {body:?}");
            let err: Value = serde_json::from_str(&body).unwrap();
            let msg = err["error"].as_str().unwrap();
            assert!(msg.contains(&format!("(type {ty})")), "{msg:?}");
        }
        assert_eq!(get_value(&old).await, before, "{ty} {value:?} changed it");
        assert_eq!(get_value("fresh").await, None, "{ty} {value:?} stored it");

        // The same value inside a batch: the good items are not stored either.
        let batch = json!({"items": [
            {"key": "batch.ok", "value": "1", "type": "int"},
            {"key": "batch.bad", "value": value, "type": ty},
        ]})
        .to_string();
        let (status, body) = send("POST", &format!("{base}/v1/kv/strict/batch"), Some(batch)).await;
        assert_eq!(
            status, 400,
            "batch with {ty} {value:?} was accepted: {body}"
        );
        assert!(body.contains("item 1"), "{body}");
        assert_eq!(
            get_value("batch.ok").await,
            None,
            "a refused batch stored an item"
        );
    }
}

#[tokio::test]
async fn a_token_guards_every_request() {
    let dir = tempfile::tempdir().unwrap();
    let running = plumdash::controller::start(plumdash::controller::ControllerConfig {
        token: Some("s3cret".into()),
        ..support::loopback_config(dir.path().join("kv.db"))
    })
    .await
    .unwrap();
    let (s, _) = send("GET", &format!("{}/v1/kv", running.url()), None).await;
    assert_eq!(s, 401);
    let ok = DistributedMemory::with_options(
        "ns",
        &running.url(),
        plumdash::kv::ClientOptions {
            token: Some("s3cret".into()),
            ..Default::default()
        },
    )
    .unwrap();
    ok.put("k", "v").await.unwrap();
    let wrong = DistributedMemory::with_options(
        "ns",
        &running.url(),
        plumdash::kv::ClientOptions {
            token: Some("guess".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        wrong.get("k").await,
        Err(KvError::Rejected { status: 401, .. })
    ));
}

/// The embedded controller of `up` runs on threads of its own: it serves
/// from there, its writes are kept, and once shut down its database is free
/// for the next one (the lock let go, the store closed), with the write in it.
#[tokio::test]
async fn a_controller_on_threads_of_its_own_serves_and_lets_its_file_go() {
    let dir = tempfile::tempdir().unwrap();
    let config = || support::loopback_config(dir.path().join("kv.db"));
    let apart = plumdash::controller::start_apart(config()).await.unwrap();
    let dm = DistributedMemory::with_options("ns", &apart.url(), Default::default()).unwrap();
    dm.put("k", "v1").await.unwrap();
    assert!(
        plumdash::controller::start(config()).await.is_err(),
        "one controller per file while it serves"
    );
    apart.shutdown().await.unwrap();
    let next = plumdash::controller::start(config()).await.unwrap();
    let dm = DistributedMemory::with_options("ns", &next.url(), Default::default()).unwrap();
    assert_eq!(dm.get("k").await.unwrap().as_deref(), Some("v1"));
    next.shutdown().await.unwrap();
}

/// A client whose request was under way when the controller began to stop
/// is told so (503, one line), not handed a change stream that ends at once
/// (which it would take for a live controller); a new connection is refused.
#[tokio::test]
async fn a_stream_asked_for_while_the_controller_stops_gets_a_503() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let running = plumdash::controller::start(support::loopback_config(dir.path().join("kv.db")))
        .await
        .unwrap();
    let addr = running.addr;
    // Half a request head: the connection is busy, so the drain waits for it.
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET /v1/stream?namespace=ns HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "a stopping controller takes no new connection"
    );
    conn.write_all(b"Accept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_string(&mut answer))
        .await
        .expect("the answer and the close come within the grace")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        answer.contains(r#"{"error":"the controller is shutting down"}"#),
        "{answer}"
    );
    assert!(!answer.contains("text/event-stream"), "{answer}");
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill_of_the_controller() {
    let dir = tempfile::tempdir().unwrap();
    let db = support::db_in(&dir);
    let port = support::free_port();
    let mut proc = ControllerProcess::spawn(&db, port);
    let dm = DistributedMemory::create("durable", &proc.url()).unwrap();
    const N: usize = 300;
    for i in 0..N {
        dm.put_int(&format!("k{i:04}"), i as i64).await.unwrap();
    }
    dm.put_batch(&[
        BatchItem::new("task.progress", "50", ValueType::Int),
        BatchItem::new("task.counter", "5", ValueType::Int),
    ])
    .await
    .unwrap();
    proc.kill9();
    assert!(dm.get("k0000").await.unwrap_err().is_unreachable());

    let proc = ControllerProcess::spawn(&db, port);
    let dm = DistributedMemory::create("durable", &proc.url()).unwrap();
    let all = dm.get_all().await.unwrap();
    assert_eq!(all.len(), N + 2);
    for i in 0..N {
        assert_eq!(
            dm.get_int(&format!("k{i:04}")).await.unwrap(),
            Some(i as i64)
        );
    }
    assert_eq!(dm.get_int("task.counter").await.unwrap(), Some(5));
}

/// Collects feed events until `want` changes (puts and deletes) were seen.
async fn collect_changes(feed: &mut plumdash::kv::Watcher, want: usize) -> Vec<WatchEvent> {
    let mut changes = Vec::new();
    while changes.len() < want {
        let ev = tokio::time::timeout(Duration::from_secs(10), feed.recv())
            .await
            .expect("feed stalled")
            .expect("feed ended");
        if matches!(
            ev,
            WatchEvent::Put(_) | WatchEvent::Batch(_) | WatchEvent::Deleted { .. }
        ) {
            changes.push(ev);
        }
    }
    changes
}

fn describe(ev: &WatchEvent) -> String {
    match ev {
        WatchEvent::Put(e) => format!("put {}={}", e.key, e.value),
        WatchEvent::Batch(entries) => {
            let items: Vec<String> = entries
                .iter()
                .map(|e| format!("{}={}", e.key, e.value))
                .collect();
            format!("batch {}", items.join(" "))
        }
        WatchEvent::Deleted { key, .. } => format!("del {key}"),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn the_stream_carries_every_change_of_its_namespace_in_order() {
    let c = TestController::start().await;
    let mine = DistributedMemory::create("mine", &c.url()).unwrap();
    let other = DistributedMemory::create("other", &c.url()).unwrap();
    mine.put("before", "1").await.unwrap();

    let mut feed = mine.subscribe(WatchOptions {
        mode: FeedMode::Stream,
        ..Default::default()
    });
    assert_eq!(
        feed.recv().await,
        Some(WatchEvent::Status(FeedStatus::Streaming))
    );
    match feed.recv().await {
        Some(WatchEvent::Snapshot(entries)) => {
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].key, "before");
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }

    let mut expected = Vec::new();
    for i in 0..50 {
        mine.put_int("n", i).await.unwrap();
        expected.push(format!("put n={i}"));
        other.put_int("n", i).await.unwrap();
        if i % 10 == 9 {
            mine.remove("before").await.unwrap();
            expected.push("del before".to_string());
            mine.put("before", "again").await.unwrap();
            expected.push("put before=again".to_string());
        }
    }
    mine.put_batch(&[
        BatchItem::new("a", "1", ValueType::Int),
        BatchItem::new("b", "2", ValueType::Int),
    ])
    .await
    .unwrap();
    expected.push("batch a=1 b=2".into());

    let got: Vec<String> = collect_changes(&mut feed, expected.len())
        .await
        .iter()
        .map(describe)
        .collect();
    assert_eq!(got, expected);
    // A write elsewhere never shows: the next change seen is our sentinel.
    other.put("sentinel", "other").await.unwrap();
    mine.put("sentinel", "mine").await.unwrap();
    let next = collect_changes(&mut feed, 1).await;
    assert_eq!(describe(&next[0]), "put sentinel=mine");
}

/// `updatedAt` stays whole seconds; `updatedAtMs` is the same instant in ms.
fn assert_write_times(entry: &Value) {
    let secs = entry["updatedAt"]
        .as_i64()
        .expect("updatedAt is an integer");
    let ms = entry["updatedAtMs"]
        .as_i64()
        .expect("updatedAtMs is an integer");
    assert!(secs > 1_600_000_000, "{entry}");
    assert_eq!(ms.div_euclid(1000), secs, "{entry}");
}

/// Events of a raw stream until `want` events named `name` came.
async fn raw_events(resp: &mut reqwest::Response, name: &str, want: usize) -> Vec<(String, Value)> {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events: Vec<(String, Value)> = text
            .split("\n\n")
            .filter_map(|block| {
                let field = |f: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(f).map(|v| v.trim().to_string()))
                };
                Some((
                    field("event:")?,
                    serde_json::from_str(&field("data:")?).ok()?,
                ))
            })
            .collect();
        if events.iter().filter(|(n, _)| n == name).count() >= want {
            return events;
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn writes_carry_their_time_in_milliseconds_beside_the_whole_seconds() {
    let c = TestController::start().await;
    let base = c.url();
    let dm = DistributedMemory::create("demo", &base).unwrap();
    dm.put("before", "1").await.unwrap();

    let (s, body) = send("GET", &format!("{base}/v1/kv/demo/before"), None).await;
    assert_eq!(s, 200);
    assert_write_times(&serde_json::from_str(&body).unwrap());
    let (_, body) = send("GET", &format!("{base}/v1/kv/demo"), None).await;
    let list: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_write_times(&list[0]);
    // The SDK reads it.
    let entry = dm.get_all().await.unwrap().remove(0);
    assert_eq!(
        entry.updated_at_ms.map(|ms| ms.div_euclid(1000)),
        Some(entry.updated_at)
    );

    let mut resp = http()
        .get(format!("{base}/v1/stream?namespace=demo"))
        .send()
        .await
        .unwrap();
    let events = raw_events(&mut resp, "snapshot", 1).await;
    assert_write_times(&events[0].1[0]);
    let before = entry.updated_at_ms.unwrap();
    dm.put("one", "1").await.unwrap();
    dm.put_batch(&[
        BatchItem::new("a", "1", ValueType::Int),
        BatchItem::new("b", "2", ValueType::Int),
    ])
    .await
    .unwrap();
    let events = raw_events(&mut resp, "kv", 3).await;
    let kv: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "kv")
        .map(|(_, v)| v)
        .collect();
    let mut last = before;
    for v in &kv {
        assert_write_times(v);
        let ms = v["updatedAtMs"].as_i64().unwrap();
        assert!(ms >= last, "write times follow the change order: {kv:?}");
        last = ms;
    }
    assert_eq!(
        kv[1]["updatedAtMs"], kv[2]["updatedAtMs"],
        "one batch, one time"
    );
}

#[tokio::test]
async fn a_database_made_without_millisecond_times_still_opens_and_gains_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    {
        // The schema as the original controller (and plumdash before) made it.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE distributed_kv (
                 namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                 type TEXT NOT NULL DEFAULT 'string', updated_at INTEGER NOT NULL,
                 PRIMARY KEY (namespace, key));
             INSERT INTO distributed_kv VALUES ('demo', 'old', 'x', 'string', 1700000000);",
        )
        .unwrap();
    }
    let running = plumdash::controller::start(support::loopback_config(db))
        .await
        .expect("an old database opens");
    let base = running.url();
    let (s, body) = send("GET", &format!("{base}/v1/kv/demo/old"), None).await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["updatedAt"], 1_700_000_000);
    assert!(
        v.get("updatedAtMs").is_none(),
        "no time it does not know: {v}"
    );
    let dm = DistributedMemory::create("demo", &base).unwrap();
    dm.put("old", "y").await.unwrap();
    let (_, body) = send("GET", &format!("{base}/v1/kv/demo/old"), None).await;
    assert_write_times(&serde_json::from_str(&body).unwrap());
}

/// An original Plum controller: no change stream (400) and `bytes` entries
/// listed with their decoded length instead of their value.
async fn original_like_controller() -> (String, tokio::task::JoinHandle<()>, tempfile::TempDir) {
    use axum::body::{to_bytes, Body};
    use axum::extract::Request;
    use axum::middleware::{self, Next};
    use axum::response::{IntoResponse, Response};

    async fn quirks(req: Request, next: Next) -> Response {
        let path = req.uri().path().to_string();
        if path == "/v1/stream" {
            return (axum::http::StatusCode::BAD_REQUEST, "nodeId required").into_response();
        }
        let is_list = req.method() == "GET"
            && path
                .strip_prefix("/v1/kv/")
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
        let resp = next.run(req).await;
        if !is_list {
            return resp;
        }
        let (mut parts, body) = resp.into_parts();
        // The body is rewritten: its length is no longer the one told.
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        let bytes = to_bytes(body, usize::MAX).await.unwrap();
        let mut list: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
        for e in &mut list {
            if e["type"] == "bytes" {
                let len = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    e["value"].as_str().unwrap(),
                )
                .unwrap()
                .len();
                e["value"] = Value::String(len.to_string());
            }
        }
        Response::from_parts(parts, Body::from(serde_json::to_vec(&list).unwrap()))
    }

    let dir = tempfile::tempdir().unwrap();
    let store = plumdash::controller::Store::open(&dir.path().join("kv.db")).unwrap();
    let state = plumdash::controller::AppState::from(plumdash::controller::StateParts {
        store: std::sync::Arc::new(store),
        shutdown: tokio_util::sync::CancellationToken::new(),
        token: None,
        health: None,
        nodes: None,
        deployments: None,
        apps: None,
        signals: None,
    });
    let app = plumdash::controller::app(state).layer(middleware::from_fn(quirks));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task, dir)
}

#[tokio::test]
async fn against_an_original_controller_the_sdk_polls_and_repairs_bytes() {
    let (url, _task, _dir) = original_like_controller().await;
    let dm = DistributedMemory::create("kv-demo", &url).unwrap();
    let payload: Vec<u8> = (0..48).collect();
    dm.put_bytes("binary.checkpoint", &payload).await.unwrap();
    dm.put_int("task.progress", 10).await.unwrap();

    // get_all refetches the bytes entry the list mangled.
    let all = dm.get_all().await.unwrap();
    let bytes = all.iter().find(|e| e.key == "binary.checkpoint").unwrap();
    assert_eq!(bytes.bytes(), Some(payload.clone()));

    let mut feed = dm.subscribe(WatchOptions {
        mode: FeedMode::Auto,
        poll_interval: Duration::from_millis(20),
        ..Default::default()
    });
    assert_eq!(
        feed.recv().await,
        Some(WatchEvent::Status(FeedStatus::Polling(
            Duration::from_millis(20)
        )))
    );
    assert!(matches!(feed.recv().await, Some(WatchEvent::Snapshot(e)) if e.len() == 2));
    dm.put_int("task.progress", 20).await.unwrap();
    dm.remove("binary.checkpoint").await.unwrap();
    let got: Vec<String> = collect_changes(&mut feed, 2)
        .await
        .iter()
        .map(describe)
        .collect();
    assert_eq!(got, ["put task.progress=20", "del binary.checkpoint"]);
}

#[tokio::test]
async fn the_feed_reports_an_outage_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let db = support::db_in(&dir);
    let port = support::free_port();
    let mut proc = ControllerProcess::spawn(&db, port);
    let dm = DistributedMemory::create("ns", &proc.url()).unwrap();
    dm.put("k", "1").await.unwrap();
    let mut feed = dm.subscribe(WatchOptions {
        max_backoff: Duration::from_millis(200),
        ..Default::default()
    });
    assert_eq!(
        feed.recv().await,
        Some(WatchEvent::Status(FeedStatus::Streaming))
    );
    proc.kill9();
    loop {
        match feed.recv().await.unwrap() {
            WatchEvent::Status(FeedStatus::Down { .. }) => break,
            WatchEvent::Snapshot(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let _proc = ControllerProcess::spawn(&db, port);
    dm.put("k", "2").await.unwrap();
    let mut live_again = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), feed.recv())
            .await
            .unwrap()
            .unwrap()
        {
            WatchEvent::Status(FeedStatus::Streaming) => live_again = true,
            WatchEvent::Snapshot(entries) if live_again => {
                assert_eq!(entries[0].value, "2");
                break;
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_times_500_puts_all_land() {
    let c = TestController::start().await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let dm = DistributedMemory::create("busy", &c.url()).unwrap();
        tasks.push(tokio::spawn(async move {
            for i in 0..500 {
                dm.put_int(&format!("w{w}/k{i:03}"), (w * 1000 + i) as i64)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let dm = DistributedMemory::create("busy", &c.url()).unwrap();
    let all = dm.get_all().await.unwrap();
    assert_eq!(all.len(), 4000);
    for e in &all {
        let (w, i) = e.key.trim_start_matches('w').split_once("/k").unwrap();
        let want = w.parse::<i64>().unwrap() * 1000 + i.parse::<i64>().unwrap();
        assert_eq!(e.value, want.to_string(), "{}", e.key);
    }
}

/// Events until `quiet` has passed; panics on a `Down`.
async fn assert_no_outage_for(feed: &mut plumdash::kv::Watcher, quiet: Duration) {
    let until = tokio::time::Instant::now() + quiet;
    while let Ok(event) = tokio::time::timeout_at(until, feed.recv()).await {
        let event = event.expect("feed open");
        assert!(
            !matches!(event, WatchEvent::Status(FeedStatus::Down { .. })),
            "a quiet namespace was reported down: {event:?}"
        );
    }
}

/// A namespace where nothing changes is not an outage: the controller's
/// keep-alive comments prove the stream alive (the SSE parser drops them, so
/// before this only events counted and a quiet feed went "down" every 15 s).
/// A controller that really stops answering (SIGSTOP) is still reported
/// down, and live again after SIGCONT.
#[tokio::test]
async fn a_quiet_namespace_is_no_outage_but_a_hung_controller_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut proc = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let dm = DistributedMemory::create("quiet", &proc.url()).unwrap();
    dm.put("k", "1").await.unwrap();
    // Longer than one keep-alive (5 s), shorter than the 11 s watched below.
    let idle = Duration::from_secs(8);
    let mut feed = dm.subscribe(WatchOptions {
        mode: FeedMode::Stream,
        max_backoff: Duration::from_millis(200),
        stream_idle_timeout: idle,
        ..Default::default()
    });
    assert_eq!(
        feed.recv().await,
        Some(WatchEvent::Status(FeedStatus::Streaming))
    );
    assert_no_outage_for(&mut feed, idle + Duration::from_secs(3)).await;

    let pid = nix::unistd::Pid::from_raw(proc.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let down = tokio::time::timeout(idle * 4, async {
        loop {
            if let WatchEvent::Status(FeedStatus::Down { error, .. }) = feed.recv().await.unwrap() {
                return error;
            }
        }
    })
    .await
    .expect("a hung controller is reported down");
    assert!(down.contains("silent"), "{down}");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        while feed.recv().await.unwrap() != WatchEvent::Status(FeedStatus::Streaming) {}
    })
    .await
    .expect("live again once the controller answers");
    proc.kill9();
}

/// Against an original controller (no stream: polling), a quiet namespace
/// polled successfully is never reported down.
#[tokio::test]
async fn polling_reports_no_outage_while_polls_succeed() {
    let (url, _task, _dir) = original_like_controller().await;
    let dm = DistributedMemory::create("quiet", &url).unwrap();
    dm.put("k", "1").await.unwrap();
    let mut feed = dm.subscribe(WatchOptions {
        mode: FeedMode::Auto,
        poll_interval: Duration::from_millis(50),
        stream_idle_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    assert_eq!(
        feed.recv().await,
        Some(WatchEvent::Status(FeedStatus::Polling(
            Duration::from_millis(50)
        )))
    );
    assert_no_outage_for(&mut feed, Duration::from_secs(3)).await;
}

// ---- Hardening: one writer per file, file health, bounded WAL, JSON
// errors, slow clients, exposure. Real processes, sockets and files.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;
use support::{output_within, plumdash, plumdash_under};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs `cmd` to its end within `limit`: its status and stderr, or `None`
/// if it was still running (it is then killed).
fn run_bounded(cmd: Command, limit: Duration) -> Option<(ExitStatus, String)> {
    let out = output_within(cmd, limit)?;
    Some((
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `plumdash controller ARGS…` must fail at once: exit 1 and one line of
/// stderr, which is returned.
/// A refusal at start: one line on stderr, exit 1.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    refused_with(1, args, env)
}

/// A refusal at start: one line on stderr, exit `code` (2 when the command
/// line is what is wrong: an address without a token, an empty token).
fn refused_with(code: i32, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = plumdash();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (status, err) = run_bounded(cmd, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("`plumdash {}` started instead of refusing", args.join(" ")));
    assert_eq!(status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
    err
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// One raw HTTP exchange: `(status, lower-cased head, body)`. The request
/// is sent while the answer is read, since the server may answer (and
/// close) before it has read a huge request.
async fn raw_exchange(addr: SocketAddr, request: Vec<u8>) -> (u16, String, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&request).await;
        wr
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rd.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        if complete(&buf) {
            break;
        }
    }
    drop(writer);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete answer: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status: {head:?}"));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// A head and as much body as its content-length says.
fn complete(buf: &[u8]) -> bool {
    let text = String::from_utf8_lossy(buf).to_ascii_lowercase();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .is_some_and(|n| body.len() >= n)
}

fn get_req(path: &str, extra_headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra_headers}Connection: close\r\n\r\n")
        .into_bytes()
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_name_of_a_held_database_is_refused_with_the_holders_pid() {
    let dir = tempfile::tempdir().unwrap();
    let db = support::db_in(&dir);
    let mut first = ControllerProcess::spawn(&db, support::free_port());
    let holder = first.child.id();
    let dm = DistributedMemory::create("ns", &first.url()).unwrap();
    dm.put_int("before", 1).await.unwrap();

    let hard = dir.path().join("hard.db");
    std::fs::hard_link(&db, &hard).unwrap();
    let sym = dir.path().join("sym.db");
    std::os::unix::fs::symlink(&db, &sym).unwrap();
    std::fs::create_dir(dir.path().join("x")).unwrap();
    let dotted = dir.path().join("x/../kv.db");
    for name in [&db, &hard, &sym, &dotted] {
        let name = path_str(name).to_string();
        let err = tokio::task::spawn_blocking(move || {
            refused(
                &["controller", "--listen", "127.0.0.1:0", "--db", &name],
                &[],
            )
        })
        .await
        .unwrap();
        assert!(err.contains(&format!("(pid {holder})")), "{err}");
        assert!(err.contains("in use"), "{err}");
    }

    // The lock is an flock on the inode, and SQLite's own (fcntl) locks are
    // independent of it: through another name the lock is taken, yet
    // another SQLite connection reads what was acknowledged while the
    // controller keeps writing.
    {
        let f = std::fs::File::open(&hard).unwrap();
        assert!(matches!(
            f.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
    }
    for i in 0..50 {
        dm.put_int(&format!("k{i}"), i).await.unwrap();
    }
    {
        // By its own name: SQLite finds the WAL beside the name it opens.
        let conn = rusqlite::Connection::open(&db).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM distributed_kv WHERE namespace = 'ns'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 51);
    }
    dm.put_int("after", 2).await.unwrap();

    // A dead holder leaves no lock; but while the file has two names, a
    // start by either could miss the other name's WAL: refused.
    first.kill9();
    let name = path_str(&hard).to_string();
    let err = tokio::task::spawn_blocking(move || {
        refused(
            &["controller", "--listen", "127.0.0.1:0", "--db", &name],
            &[],
        )
    })
    .await
    .unwrap();
    assert!(err.contains("2 hard links"), "{err}");
    // One name left: a symlink to it opens it by its real name, WAL and all.
    std::fs::remove_file(&hard).unwrap();
    let second = ControllerProcess::spawn(&sym, support::free_port());
    let dm = DistributedMemory::create("ns", &second.url()).unwrap();
    assert_eq!(dm.get_all().await.unwrap().len(), 52);
}

#[test]
fn an_unwritable_database_is_refused_at_start() {
    if !support::need(&["setpriv"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let as_dir = dir.path().join("folder.db");
    std::fs::create_dir(&as_dir).unwrap();
    let err = refused(
        &[
            "controller",
            "--listen",
            "127.0.0.1:0",
            "--db",
            path_str(&as_dir),
        ],
        &[],
    );
    assert!(err.contains("folder.db"), "{err}");

    // A read-only file, as a user who cannot write it (root can write any
    // file, so the controller runs as nobody).
    let probe = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipping the read-only file case: setpriv cannot run as nobody here");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let ro = dir.path().join("ro.db");
    {
        let store = plumdash::controller::Store::open(&ro).unwrap();
        store.put("ns", "k", "v", ValueType::String).unwrap();
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).unwrap();
    let mut cmd = plumdash_under(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ]);
    cmd.args(["controller", "--listen", "127.0.0.1:0", "--db"])
        .arg(&ro);
    let (status, err) = run_bounded(cmd, Duration::from_secs(20))
        .expect("a controller started on a read-only database");
    assert_eq!(status.code(), Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("ro.db") && err.contains("not writable"),
        "{err}"
    );
}

#[tokio::test]
async fn a_deleted_database_turns_healthz_unhealthy_and_refuses_writes() {
    let c = TestController::start().await;
    let base = c.url();
    let dm = DistributedMemory::create("ns", &base).unwrap();
    dm.put("k", "v").await.unwrap();
    let (s, _) = send("GET", &format!("{base}/healthz"), None).await;
    assert_eq!(s, 200);

    let db = c.dir.path().join("kv.db");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let (s, body) = send("GET", &format!("{base}/healthz"), None).await;
        if s == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "still {s} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "unhealthy", "{body}");
    let why = v["error"].as_str().unwrap();
    assert!(why.contains("kv.db") && why.contains("deleted"), "{why}");

    // A write now would be acknowledged and lost at the next start.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, body) = send(
            "PUT",
            &format!("{base}/v1/kv/ns/k2"),
            Some(r#"{"value":"x"}"#.into()),
        )
        .await;
        if s == 503 {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["error"].as_str().unwrap().contains("deleted"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "write still answered {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_shrinks_back_under_4_mib_after_a_load() {
    let c = TestController::start().await;
    let wal = c.dir.path().join("kv.db-wal");
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = {
        let (wal, peak) = (wal.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(file_len(&wal), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let value = "v".repeat(4000);
    let mut writers = Vec::new();
    for w in 0..4 {
        let dm = DistributedMemory::create("load", &c.url()).unwrap();
        let value = value.clone();
        writers.push(tokio::spawn(async move {
            for b in 0..12 {
                let items: Vec<BatchItem> = (0..150)
                    .map(|i| BatchItem::new(format!("w{w}/b{b}/{i}"), &value, ValueType::String))
                    .collect();
                dm.put_batch(&items).await.unwrap();
                dm.put(&format!("w{w}/last"), &value).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let stopped = Instant::now();
    let deadline = stopped + Duration::from_secs(30);
    loop {
        let len = file_len(&wal);
        if len < 4 << 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the WAL is still {len} bytes 30 s after the load"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sampling.abort();
    eprintln!(
        "WAL peak {:.1} MiB during ~29 MB of writes; under 4 MiB {:.1} s after the load",
        peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / (1 << 20) as f64,
        stopped.elapsed().as_secs_f64()
    );
    let dm = DistributedMemory::create("load", &c.url()).unwrap();
    assert_eq!(dm.get_all().await.unwrap().len(), 4 * 12 * 150 + 4);
}

#[tokio::test]
async fn every_error_answer_is_one_line_of_json() {
    let c = TestController::start().await;
    let addr = addr_of(&c.url());
    let many_headers: String = (0..2000)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "p".repeat(90)))
        .collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "a malformed request line",
            b"THIS IS NOT HTTP\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a malformed header",
            b"GET /healthz HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a 20 KB URI",
            get_req(&format!("/v1/kv/ns/{}", "k".repeat(20_000)), ""),
            414,
        ),
        (
            "a 70 KB URI",
            get_req(&format!("/{}", "u".repeat(70_000)), ""),
            414,
        ),
        (
            "200 KB of headers in 2000 lines",
            get_req("/healthz", &many_headers),
            431,
        ),
        (
            "one 200 KB header",
            get_req("/healthz", &format!("X-Big: {}\r\n", "b".repeat(200_000))),
            431,
        ),
        (
            "one 600 KB header",
            get_req("/healthz", &format!("X-Big: {}\r\n", "b".repeat(600_000))),
            431,
        ),
        ("an unknown path", get_req("/nope", ""), 404),
        ("a path outside the API", get_req("/v1/kvx/ns", ""), 404),
        (
            "POST /healthz",
            b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
            405,
        ),
        (
            "DELETE /v1/kv",
            b"DELETE /v1/kv HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(),
            405,
        ),
        (
            "PUT /v1/kv/",
            b"PUT /v1/kv/ HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
            405,
        ),
        (
            "PUT /v1/stream",
            b"PUT /v1/stream?namespace=ns HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_vec(),
            405,
        ),
        ("a stream without a namespace", get_req("/v1/stream", ""), 400),
    ];
    for (what, request, want) in cases {
        let (status, head, body) = raw_exchange(addr, request).await;
        assert_eq!(status, want, "{what}: {head}\n{body}");
        assert!(
            head.contains("\r\ncontent-type: application/json"),
            "{what}: {head}"
        );
        let v: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {body:?}"));
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no \"error\": {body}"));
        assert!(
            !msg.is_empty() && !body.trim_end().contains('\n'),
            "{what}: {body:?}"
        );
    }
    // The router's 405 names what is allowed, as its Allow header does.
    let (status, head, body) = raw_exchange(
        addr,
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec(),
    )
    .await;
    assert_eq!(status, 405);
    assert!(head.contains("\r\nallow: get,head"), "{head}");
    assert!(
        body.contains("method not allowed here (allowed: GET,HEAD)"),
        "{body}"
    );
    // Still serving.
    let (s, _) = send("GET", &format!("{}/healthz", c.url()), None).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_controller_whatever_its_clients_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = support::db_in(&dir);
    let mut proc = ControllerProcess::spawn(&db, support::free_port());
    let addr = proc.addr;
    // Half a request head, never finished.
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    // A whole head, then a body that trickles in a byte at a time.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        b"PUT /v1/kv/ns/k HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n{\"value\":\"",
    )
    .await
    .unwrap();
    let trickle = tokio::spawn(async move {
        while slow.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    // An open event stream.
    let dm = DistributedMemory::create("ns", &proc.url()).unwrap();
    let mut feed = dm.subscribe(WatchOptions {
        mode: FeedMode::Stream,
        ..Default::default()
    });
    assert_eq!(
        feed.recv().await,
        Some(WatchEvent::Status(FeedStatus::Streaming))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pid = nix::unistd::Pid::from_raw(proc.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = proc.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 20 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    trickle.abort();
    drop((half, feed));
    // The database is free for the next one.
    let next = ControllerProcess::spawn(&db, support::free_port());
    let (s, _) = send("GET", &format!("{}/healthz", next.url()), None).await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_under_a_low_fd_limit_never_stop_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let db = support::db_in(&dir);
    let port = support::free_port();
    let mut cmd = plumdash_under(&["sh", "-c", r#"ulimit -n 64 && exec "$0" "$@""#]);
    cmd.args([
        "controller",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--db",
    ])
    .arg(&db)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut proc = ControllerProcess::start(cmd, port);
    let (addr, child) = (proc.addr, &mut proc.child);
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the controller exited");
        if let Ok(resp) = client.get(&url).send().await {
            if resp.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no answer for 90 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let dm = DistributedMemory::create("ns", &format!("http://{addr}")).unwrap();
    dm.put("k", "still writing").await.unwrap();
    assert!(child.try_wait().unwrap().is_none(), "the controller exited");
    drop(idle);
}

#[test]
fn a_public_address_or_an_empty_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    let db = path_str(&db);
    let err = refused_with(2, &["controller", "--listen", "0.0.0.0:0", "--db", db], &[]);
    assert!(err.contains("--token"), "{err}");
    let sock = dir.path().join("ctl.sock");
    let err = refused_with(
        2,
        &[
            "up",
            "--headless",
            "--instances",
            "0",
            "--listen",
            "0.0.0.0:0",
            "--db",
            db,
            "--control-socket",
            path_str(&sock),
        ],
        &[],
    );
    assert!(err.contains("--token"), "{err}");
    let err = refused_with(
        2,
        &[
            "controller",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--token",
            "",
        ],
        &[],
    );
    assert!(err.contains("empty"), "{err}");
    let err = refused_with(
        2,
        &["controller", "--listen", "127.0.0.1:0", "--db", db],
        &[("PLUM_TOKEN", "")],
    );
    assert!(err.contains("empty"), "{err}");
    let blank = dir.path().join("blank-token");
    std::fs::write(&blank, "  \n").unwrap();
    let err = refused_with(
        2,
        &[
            "controller",
            "--listen",
            "127.0.0.1:0",
            "--db",
            db,
            "--token-file",
            path_str(&blank),
        ],
        &[],
    );
    assert!(
        err.contains("blank-token") && err.contains("empty"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_guards_a_public_address_and_bearer_is_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\nignored second line\n").unwrap();
    let port = support::free_port();
    let mut cmd = ControllerProcess::command(&format!("0.0.0.0:{port}"), &dir.path().join("kv.db"));
    cmd.arg("--token-file").arg(&token_file);
    let proc = ControllerProcess::start(cmd, port);
    let addr = proc.addr;
    // Not on the command line.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", proc.child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("s3cret"));

    let (s, head, body) = raw_exchange(addr, get_req("/v1/kv", "")).await;
    assert_eq!(s, 401, "{body}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    // A refusal tells nothing of the path: not which methods it has.
    let (s, head, _) = raw_exchange(
        addr,
        b"DELETE /v1/kv HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(s, 401);
    assert!(!head.contains("allow:"), "{head}");
    for auth in ["Bearer s3cret", "bearer s3cret", "BEARER s3cret"] {
        let (s, _, body) = raw_exchange(
            addr,
            get_req("/v1/kv", &format!("Authorization: {auth}\r\n")),
        )
        .await;
        assert_eq!(s, 200, "{auth}: {body}");
    }
    let (s, _, _) = raw_exchange(addr, get_req("/v1/kv", "Authorization: Bearer S3CRET\r\n")).await;
    assert_eq!(s, 401, "the token itself is case-sensitive");

    // The CLI's client side takes the file too.
    let url = format!("http://{addr}");
    let kv = |args: &[&str]| {
        let out = plumdash()
            .args(["kv", "--controller", &url, "--token-file"])
            .arg(&token_file)
            .args(args)
            .output()
            .unwrap();
        (out.status, String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (status, _) = tokio::task::block_in_place(|| kv(&["put", "k", "from-cli"]));
    assert!(status.success());
    let (status, out) = tokio::task::block_in_place(|| kv(&["get", "k"]));
    assert!(status.success());
    assert!(out.contains("from-cli"), "{out}");
}

/// A body announced over the limit is refused from its head: a 413 at once,
/// no `100 Continue`, no wait for bytes that would not be kept.
#[tokio::test]
async fn an_announced_body_over_the_limit_is_refused_from_the_head() {
    let c = TestController::start().await;
    let started = Instant::now();
    let (status, head, body) = raw_exchange(
        addr_of(&c.url()),
        b"PUT /v1/kv/big/k HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n"
            .to_vec(),
    )
    .await;
    assert_eq!(status, 413, "{head}\n{body}");
    assert!(!head.contains("100 continue"), "{head}");
    assert!(body.contains("larger than"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Refusals at start are told before anything is made: a public address
/// without a token is a usage error (exit 2); a taken port leaves no
/// database file behind.
#[test]
fn a_refused_start_is_one_line_and_leaves_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    let out = support::plumdash()
        .args(["controller", "--listen", "0.0.0.0:0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("without a token"), "{err}");
    assert!(!db.exists());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = support::plumdash()
        .arg("controller")
        .arg("--listen")
        .arg(taken.local_addr().unwrap().to_string())
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Address already in use"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!db.exists(), "a database made for nothing");
}

/// HEAD answers wherever GET does (RFC 9110), without a body; a 405's
/// `Allow` names every method of the path (`batch` is also a key).
#[tokio::test]
async fn head_answers_as_get_and_a_405_names_every_allowed_method() {
    let c = TestController::start().await;
    let addr = addr_of(&c.url());
    let (s, _) = send(
        "PUT",
        &format!("{}/v1/kv/hd/k", c.url()),
        Some(r#"{"value":"v"}"#.into()),
    )
    .await;
    assert_eq!(s, 200);
    for path in ["/v1/kv/hd/k", "/v1/kv/hd"] {
        let (status, head, body) = raw_exchange(
            addr,
            format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").into_bytes(),
        )
        .await;
        assert_eq!(status, 200, "{path}: {head}");
        assert!(body.is_empty(), "{path}: {body:?}");
    }
    let (status, head, _) = raw_exchange(
        addr,
        b"PATCH /v1/kv/hd/batch HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_vec(),
    )
    .await;
    assert_eq!(status, 405);
    assert!(
        head.contains("allow: get, head, put, delete, post"),
        "{head}"
    );
}
