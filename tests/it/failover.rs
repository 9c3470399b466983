//! The controller's side of failover over real HTTP: a node lost when its
//! presence stream closes (long before the TTL), a node without beats lost
//! after the TTL, and the fence that refuses writes from a replaced instance.

use crate::support::{self, TestController};
use plumdash::controller::{self, ClusterTiming, ControllerConfig};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(base: String) -> Api {
        Api {
            base,
            http: support::http(),
        }
    }

    async fn beat(&self, node: &str) {
        support::beat(&self.base, node).await
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn health(&self, node: &str) -> String {
        support::node_health(&self.base, node).await
    }

    /// Deploys one instance on `node`; returns the deployment id.
    async fn deploy(&self, node: &str) -> String {
        let created = support::deploy(
            &self.base,
            json!({"name": "fence", "entries": [{"artifactUrl": "", "replicas": {node: 1}}]}),
        )
        .await;
        created["deploymentId"].as_str().unwrap().to_string()
    }

    async fn put(&self, instance: Option<&str>, value: &str) -> (u16, Value) {
        let mut req = self
            .http
            .put(format!("{}/v1/kv/fence/task.progress", self.base))
            .json(&json!({"value": value, "type": "int"}));
        if let Some(i) = instance {
            req = req.header("X-Plum-Instance", i);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_presence_stream_moves_the_work_at_once_and_the_old_instance_is_fenced() {
    let c = TestController::start().await;
    let api = Api::new(c.url());
    api.beat("nodeA").await;
    api.beat("nodeB").await;
    // nodeA's agent holds its presence stream.
    let mut stream = api
        .http
        .get(format!("{}/v1/stream?nodeId=nodeA&presence=1", api.base))
        .send()
        .await
        .unwrap();
    assert!(stream.chunk().await.unwrap().is_some(), "the stream opens");
    let id = api.deploy("nodeA").await;
    let old = support::assignments(&api.base, "nodeA").await[0]["instanceId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(api.put(Some(&old), "40").await.0, 200);

    // The agent dies: its connection closes. nodeB keeps beating.
    let closed = Instant::now();
    drop(stream);
    let new = loop {
        api.beat("nodeB").await;
        let rows = support::assignments(&api.base, "nodeB").await;
        if let Some(row) = rows.first() {
            break row["instanceId"].as_str().unwrap().to_string();
        }
        assert!(
            closed.elapsed() < Duration::from_secs(2),
            "moved only by the TTL (3 s), not by the stream's close"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(new, old);
    assert_eq!(api.health("nodeA").await, "Unhealthy");
    assert_eq!(
        support::assignments(&api.base, "nodeA").await[0]["desired"],
        "Stopped"
    );

    // The old instance's writes are refused and counted; the new one's and
    // anonymous ones land.
    let (status, body) = api.put(Some(&old), "41").await;
    assert_eq!(status, 409, "{body}");
    let reason = body["error"].as_str().unwrap();
    assert!(
        reason.starts_with("fenced:") && reason.contains(&new) && reason.contains("nodeB"),
        "{reason}"
    );
    assert_eq!(api.put(Some(&new), "42").await.0, 200);
    assert_eq!(api.put(None, "43").await.0, 200);
    let dep = api.get(&format!("/v1/deployments/{id}")).await;
    let fenced: Vec<(String, u64)> = dep["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["instanceId"].as_str().unwrap().to_string(),
                a["fencedWrites"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(fenced.contains(&(old.clone(), 1)), "{fenced:?}");
    assert!(fenced.contains(&(new.clone(), 0)), "{fenced:?}");

    // The bundled worker, run as the old instance, stops at its first write.
    let out = tokio::process::Command::from(support::kv_demo(&api.base, "fence", "50"))
        .env("PLUM_INSTANCE_ID", &old)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("fenced"), "{stderr}");

    // A stopped deployment's workers may write their last words.
    api.http
        .post(format!("{}/v1/deployments/{id}?action=stop", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(api.put(Some(&old), "44").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_beats_turns_unhealthy_after_the_ttl_and_a_plain_stream_is_no_presence() {
    let dir = tempfile::tempdir().unwrap();
    let running = controller::start(ControllerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: dir.path().join("kv.db"),
        token: None,
        fallback_to_free_port: false,
        cluster: ClusterTiming {
            node_ttl: Duration::from_millis(800),
            ..Default::default()
        },
        max_upload: controller::MAX_UPLOAD_BYTES,
    })
    .await
    .unwrap();
    let api = Api::new(running.url());
    // Taken before the beat is sent: the TTL runs from the beat, never earlier.
    let beat = Instant::now();
    api.beat("nodeA").await;
    // The original agent's plain stream: its close tells nothing.
    let stream = api
        .http
        .get(format!("{}/v1/stream?nodeId=nodeA", api.base))
        .send()
        .await
        .unwrap();
    drop(stream);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.health("nodeA").await, "Healthy");
    while api.health("nodeA").await == "Healthy" {
        assert!(beat.elapsed() < Duration::from_secs(3), "never Unhealthy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        beat.elapsed() >= Duration::from_millis(800),
        "Unhealthy before the TTL: {:?}",
        beat.elapsed()
    );
    api.beat("nodeA").await;
    assert_eq!(api.health("nodeA").await, "Healthy");
    running.shutdown().await.unwrap();
}
