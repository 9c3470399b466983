//! The cluster API's nodes against a real controller process on loopback, in
//! the original's shapes (`../shared/plum-cluster-api.md` §1): heartbeats,
//! health from a 3 s TTL, one node by id, delete, bad bodies, and nodes that
//! survive a SIGKILL of the controller.

use crate::support::{
    self, assignments as items, beat, http, node_health as health_of, obj_keys, send,
};
use crate::support::{ControllerProcess, TestController};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn nodes(base: &str) -> Vec<Value> {
    let (s, body) = send("GET", &format!("{base}/v1/nodes"), None).await;
    assert_eq!(s, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_beat_turn_unhealthy_after_the_ttl_and_survive_a_controller_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = support::db_in(&dir);
    let port = support::free_port();
    let mut proc = ControllerProcess::spawn(&db, port);
    let base = proc.url();

    assert_eq!(
        nodes(&base).await,
        Vec::<Value>::new(),
        "no nodes: an empty list"
    );

    // As the original agent beats: {nodeId, ip} only.
    let (s, body) = send(
        "POST",
        &format!("{base}/v1/nodes/heartbeat"),
        Some(json!({"nodeId": "nodeB", "ip": "127.0.0.1"}).to_string()),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"ttlSec": 3})
    );
    let (s, _) = send(
        "POST",
        &format!("{base}/v1/nodes/heartbeat"),
        Some(json!({"nodeId": "nodeA", "ip": "10.0.0.1", "labels": {"zone": "a"}}).to_string()),
    )
    .await;
    assert_eq!(s, 200);

    let list = nodes(&base).await;
    let ids: Vec<&str> = list.iter().map(|n| n["nodeId"].as_str().unwrap()).collect();
    assert_eq!(ids, ["nodeA", "nodeB"], "sorted by id");
    assert_eq!(
        obj_keys(&list[1]),
        ["health", "ip", "labels", "lastSeen", "nodeId"]
    );
    assert_eq!(list[1]["labels"], Value::Null, "an agent sends no labels");
    assert_eq!(list[0]["labels"], json!({"zone": "a"}));
    assert!(list[1]["lastSeen"].as_i64().unwrap() > 1_700_000_000);
    assert!(list.iter().all(|n| n["health"] == "Healthy"), "{list:?}");

    // One node: the same minus health; an unknown one is a JSON 404.
    let (s, body) = send("GET", &format!("{base}/v1/nodes/nodeA"), None).await;
    assert_eq!(s, 200);
    let one: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(one["ip"], "10.0.0.1");
    assert!(one.get("health").is_none(), "{one}");
    let (s, body) = send("GET", &format!("{base}/v1/nodes/nodeZ"), None).await;
    assert_eq!(s, 404);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());

    // Bad beats are refused with a reason and change nothing.
    for bad in [
        json!({"ip": "1.2.3.4"}),
        json!({"nodeId": ""}),
        json!({"nodeId": "x\u{1b}]0;t\u{7}"}),
    ] {
        let (s, body) = send(
            "POST",
            &format!("{base}/v1/nodes/heartbeat"),
            Some(bad.to_string()),
        )
        .await;
        assert_eq!(s, 400, "{bad} → {body}");
        assert_eq!(body.lines().count(), 1, "{body}");
    }
    assert_eq!(nodes(&base).await.len(), 2);

    // nodeB keeps beating, nodeA stops: after the 3 s TTL (whole seconds) it is
    // Unhealthy while nodeB stays Healthy.
    let deadline = Instant::now() + Duration::from_secs(8);
    while health_of(&base, "nodeA").await != "Unhealthy" {
        assert!(Instant::now() < deadline, "nodeA never turned Unhealthy");
        beat(&base, "nodeB").await;
        assert_eq!(health_of(&base, "nodeB").await, "Healthy");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Nodes live in the database file: a SIGKILLed controller comes back with them.
    proc.kill9();
    let proc = ControllerProcess::spawn(&db, port);
    let base = proc.url();
    let ids: Vec<String> = nodes(&base)
        .await
        .iter()
        .map(|n| n["nodeId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["nodeA", "nodeB"]);

    let (s, _) = send("DELETE", &format!("{base}/v1/nodes/nodeA"), None).await;
    assert_eq!(s, 204);
    assert_eq!(nodes(&base).await.len(), 1);
}

/// A deployment on nodeA, started; nodeA stops beating while nodeB beats: after
/// the TTL the failover pass parks nodeA's assignment and re-creates it under a
/// new instance id on nodeB, as the original does.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_stops_beating_has_its_instance_moved_to_a_healthy_one() {
    let c = TestController::start().await;
    let base = c.url();
    beat(&base, "nodeA").await;
    beat(&base, "nodeB").await;

    let (s, body) = send(
        "POST",
        &format!("{base}/v1/deployments"),
        Some(
            json!({"name": "kv-demo", "entries": [{
            "artifactUrl": "/artifacts/kv-demo.zip", "startCmd": "./start.sh",
            "appName": "kv-demo", "appVersion": "5.0.0", "replicas": {"nodeA": 1}}]})
            .to_string(),
        ),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    let dep = created["deploymentId"].as_str().unwrap().to_string();
    assert_eq!(dep.len(), 32, "{created}");
    let iid = created["instances"][0].as_str().unwrap().to_string();
    assert!(
        iid.starts_with(&format!("{dep}-")) && iid.len() == 32 + 1 + 8,
        "{iid}"
    );

    // Created Stopped: agents see nothing until it is started.
    assert!(items(&base, "nodeA").await.is_empty());
    let (s, _) = send(
        "POST",
        &format!("{base}/v1/deployments/{dep}?action=start"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let a = items(&base, "nodeA").await;
    assert_eq!(a.len(), 1);
    assert_eq!(
        obj_keys(&a[0]),
        [
            "appName",
            "appVersion",
            "artifactUrl",
            "deploymentId",
            "desired",
            "healthy",
            "instanceId",
            "lastReportAt",
            "phase",
            "startCmd"
        ],
        "no nodeId, as the original"
    );
    assert_eq!(a[0]["phase"], "", "no status yet");
    assert_eq!(a[0]["lastReportAt"], 0);

    let (s, _) = send(
        "POST",
        &format!("{base}/v1/instances/status"),
        Some(json!({"instanceId": iid, "phase": "Running", "exitCode": 0, "healthy": true, "tsUnix": 1_800_000_000}).to_string()),
    )
    .await;
    assert_eq!(s, 204);
    let a = items(&base, "nodeA").await;
    assert_eq!(
        (a[0]["phase"].as_str(), a[0]["healthy"].as_bool()),
        (Some("Running"), Some(true))
    );

    let (s, body) = send("DELETE", &format!("{base}/v1/nodes/nodeA"), None).await;
    assert_eq!(s, 409, "a node with assignments is kept: {body}");

    // nodeA goes silent; nodeB keeps beating.
    let deadline = Instant::now() + Duration::from_secs(10);
    let moved = loop {
        beat(&base, "nodeB").await;
        let b = items(&base, "nodeB").await;
        if let Some(m) = b.first() {
            break m.clone();
        }
        assert!(Instant::now() < deadline, "nothing moved to nodeB");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(moved["deploymentId"], dep.as_str());
    assert_ne!(moved["instanceId"], iid.as_str(), "a new instance id");
    assert_eq!(moved["desired"], "Running");
    assert_eq!(moved["startCmd"], "./start.sh");
    assert_eq!(moved["phase"], "", "statuses are not copied");
    let parked = items(&base, "nodeA").await;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0]["instanceId"], iid.as_str());
    assert_eq!(
        parked[0]["desired"], "Stopped",
        "the old row is parked on the dead node"
    );

    // The deployment shows both rows, in the original's Go field names.
    let (s, body) = send("GET", &format!("{base}/v1/deployments/{dep}"), None).await;
    assert_eq!(s, 200);
    let d: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["deployment"]["Status"], "Running");
    assert_eq!(d["assignments"].as_array().unwrap().len(), 2);
    let (_, body) = send("GET", &format!("{base}/v1/deployments"), None).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["instances"], 2);

    // A parked row is never moved again, even with its node still down.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    beat(&base, "nodeB").await;
    assert_eq!(items(&base, "nodeB").await.len(), 1);

    // Bad requests: one line of JSON, nothing changed.
    for (method, path, body) in [
        (
            "POST",
            format!("/v1/deployments/{dep}?action=explode"),
            None,
        ),
        (
            "PATCH",
            format!("/v1/assignments/{iid}"),
            Some(json!({"desired": "Maybe"}).to_string()),
        ),
        ("GET", "/v1/assignments".to_string(), None),
        (
            "POST",
            "/v1/deployments".to_string(),
            Some(json!({"entries": []}).to_string()),
        ),
        (
            "POST",
            "/v1/instances/status".to_string(),
            Some(json!({"phase": "Running"}).to_string()),
        ),
    ] {
        let (s, text) = send(method, &format!("{base}{path}"), body).await;
        assert_eq!(s, 400, "{method} {path} → {text}");
        assert!(serde_json::from_str::<Value>(&text).unwrap()["error"].is_string());
    }
}

/// Reads the stream until `want` appears (or fails after 5 s).
async fn read_until(resp: &mut reqwest::Response, seen: &mut String, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {want:?} in {seen:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("stream ended before {want:?}: {seen:?}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// `/v1/stream?nodeId=` wakes a node's agent as the original does: `ping`/`init`,
/// then `update`/`assignments` when its assignments change; `__kv__:<ns>` wakes on
/// writes to that namespace only.
#[tokio::test(flavor = "multi_thread")]
async fn the_node_stream_wakes_an_agent_when_its_assignments_change() {
    let c = TestController::start().await;
    let base = c.url();
    let mut node_a = http()
        .get(format!("{base}/v1/stream?nodeId=nodeA"))
        .send()
        .await
        .unwrap();
    assert_eq!(node_a.status(), 200);
    let mut seen = String::new();
    read_until(&mut node_a, &mut seen, "event: ping\ndata: init\n\n").await;

    let (s, body) = send(
        "POST",
        &format!("{base}/v1/deployments"),
        Some(
            json!({"name": "d", "entries": [{"artifactUrl": "a.zip", "replicas": {"nodeA": 1}}]})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    read_until(
        &mut node_a,
        &mut seen,
        "event: update\ndata: assignments\n\n",
    )
    .await;

    let mut kv = http()
        .get(format!("{base}/v1/stream?nodeId=__kv__:demo"))
        .send()
        .await
        .unwrap();
    let mut kv_seen = String::new();
    read_until(&mut kv, &mut kv_seen, "data: init").await;
    // A write elsewhere, then one in the namespace watched.
    for ns in ["other", "demo"] {
        let (s, _) = send(
            "PUT",
            &format!("{base}/v1/kv/{ns}/k"),
            Some(json!({"value": "1"}).to_string()),
        )
        .await;
        assert_eq!(s, 200);
    }
    read_until(&mut kv, &mut kv_seen, "event: update").await;
    assert_eq!(kv_seen.matches("event: update").count(), 1, "{kv_seen}");
}

/// A hostile controller whose `/v1/nodes` answer never ends: the reader stops
/// at its cap with one error instead of filling memory.
#[tokio::test(flavor = "multi_thread")]
async fn an_endless_cluster_answer_is_refused_at_the_cap() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\n\r\n";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n[{}\r\n", 64 * 1024 + 1, " ".repeat(64 * 1024));
                loop {
                    if sock.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let reader = plumdash::cluster::ClusterReader::new(&format!("http://{addr}"), None).unwrap();
    let started = Instant::now();
    let err = reader
        .read()
        .await
        .expect_err("an endless answer is an error");
    assert!(format!("{err:#}").contains("larger than 4 MiB"), "{err:#}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// `deploy --node` of a node that never beat is refused in one line that
/// names the nodes the controller knows: such a row would run nowhere.
#[test]
fn deploy_to_a_node_that_never_beat_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let controller =
        ControllerProcess::spawn(&crate::support::db_in(&dir), crate::support::free_port());
    let out = crate::support::plumdash()
        .args([
            "deploy",
            "--app",
            "kv-demo",
            "--node",
            "nodeZ",
            "--controller",
        ])
        .arg(controller.url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no node \"nodeZ\" has sent a heartbeat to")
            && err.contains("(known: none yet); start its agent first"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A `--controller` that is not an http URL is a usage error (exit 2) for
/// every command that takes one, before anything starts.
#[test]
fn a_controller_that_is_not_a_url_is_a_usage_error() {
    for args in [
        vec!["deployments", "--controller", "notaurl"],
        vec![
            "deploy",
            "--app",
            "a",
            "--node",
            "n",
            "--controller",
            "notaurl",
        ],
        vec!["attach", "--controller", "ftp://host"],
        vec!["up", "--headless", "--controller", "notaurl"],
        vec!["verify", "--controller", "notaurl"],
        vec!["agent", "--node", "n", "--controller", "notaurl"],
    ] {
        let out = crate::support::plumdash().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("controller URL"), "{args:?}: {err}");
    }
}

/// A deployment's node ids are held to what a heartbeat may name: no control
/// characters, not empty (failover would otherwise move work off a node that
/// can never beat).
#[tokio::test]
async fn a_deployment_naming_an_impossible_node_is_a_400() {
    let c = TestController::start().await;
    for node in ["\u{1b}]0;PWNED\u{7}", " "] {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/deployments", c.url()))
            .json(&json!({
                "name": "bad-node",
                "entries": [{"artifactUrl": "", "startCmd": "true", "appName": "x",
                             "replicas": {node: 1}}]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{node:?}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("a node id in replicas"),
            "{body}"
        );
    }
}
