//! `up --nodes 2` driven from outside as a QA script would: `ctl nodes`,
//! `ctl kill-node`, `ctl freeze-node`, and the node events in `--events`.
//! Real agents, real workers, real signals.

use crate::support::{self, Up};
use plumdash::kv::DistributedMemory;
use serde_json::Value;
use std::time::{Duration, Instant};

/// `ctl ARGS…` of `up`: whether it succeeded, and all it printed.
pub(crate) fn ctl(up: &Up, args: &[&str]) -> (bool, String) {
    let (code, stdout, stderr) = up.ctl(args);
    (code == 0, stdout + &stderr)
}

/// `ctl nodes --json`'s nodes (none when it fails).
pub(crate) fn list_nodes(up: &Up) -> Vec<Value> {
    let (ok, text) = ctl(up, &["nodes", "--json"]);
    if !ok {
        return Vec::new();
    }
    let v: Value = serde_json::from_str(text.trim()).unwrap_or_default();
    v["nodes"].as_array().cloned().unwrap_or_default()
}

pub(crate) fn node<'a>(nodes: &'a [Value], name: &str) -> &'a Value {
    nodes
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {nodes:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ctl_kills_a_node_and_the_events_tell_the_failover_with_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::two_nodes(dir.path(), "nodes-ctl").spawn();

    // Both nodes heartbeat, with their agents' pids; the instance is on nodeA.
    let deadline = Instant::now() + Duration::from_secs(20);
    let nodes = loop {
        let nodes = list_nodes(&up);
        let ready = nodes.len() == 2
            && nodes.iter().all(|n| n["health"] == "HEALTHY")
            && node(&nodes, "nodeA")["instances"]
                .as_array()
                .is_some_and(|i| i.len() == 1);
        if ready {
            break nodes;
        }
        assert!(Instant::now() < deadline, "nodes never ready: {nodes:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(node(&nodes, "nodeA")["agent_pid"].as_u64().is_some());
    assert_eq!(node(&nodes, "nodeB")["instances"], serde_json::json!([]));
    let (ok, text) = ctl(&up, &["nodes"]);
    assert!(
        ok && text.contains("nodeA") && text.contains("HEALTHY"),
        "{text}"
    );
    let first = node(&nodes, "nodeA")["instances"][0]
        .as_str()
        .unwrap()
        .to_string();

    // Mid-task, kill nodeA from outside.
    support::wait_for_progress("nodes-ctl", &up.url(), 30).await;
    let (ok, text) = ctl(&up, &["kill-node", "nodeA"]);
    assert!(ok, "{text}");
    assert!(text.contains("nodeA killed"), "{text}");

    up.wait_event_within("node_killed", Duration::from_secs(5), |e| {
        e["kind"] == "node_killed" && e["node"] == "nodeA"
    });
    let down = up.wait_event_within("node_down", Duration::from_secs(10), |e| {
        e["kind"] == "node_down" && e["node"] == "nodeA"
    });
    // Killed, its agent's connection closed at once: lost by it, not the TTL.
    assert_eq!(down["lost_by"], "connection", "{down}");
    let migrated = up.wait_event_within("migrated", Duration::from_secs(10), |e| {
        e["kind"] == "migrated"
    });
    assert_eq!(migrated["instance"], first.as_str(), "{migrated}");
    assert_eq!(migrated["from_node"], "nodeA");
    assert_eq!(migrated["to_node"], "nodeB");
    let new = migrated["new_instance"].as_str().unwrap().to_string();
    assert_ne!(new, first);
    // Every instance event carries its node.
    let started = up.wait_event_within("the new instance's start", Duration::from_secs(10), |e| {
        e["kind"] == "started" && e["instance"] == new.as_str()
    });
    assert_eq!(started["node"], "nodeB", "{started}");
    let failover = up.wait_event_within("the failover's figures", Duration::from_secs(15), |e| {
        e["kind"] == "failover"
    });
    assert_eq!(failover["new_instance"], new.as_str(), "{failover}");
    assert_eq!(failover["cause"], "node_killed");
    let detected = failover["to_detected_ms"].as_u64().unwrap();
    let running = failover["to_running_ms"].as_u64().unwrap();
    let checkpoint = failover["to_checkpoint_ms"].as_u64().unwrap();
    assert!(detected <= running && running <= checkpoint, "{failover}");
    assert!(failover["steps_lost"].as_i64().is_some(), "{failover}");

    // The node list follows: nodeA unhealthy and empty, nodeB runs the new one.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let nodes = list_nodes(&up);
        if node(&nodes, "nodeA")["health"] == "UNHEALTHY"
            && node(&nodes, "nodeB")["instances"] == serde_json::json!([new.as_str()])
        {
            break;
        }
        assert!(Instant::now() < deadline, "{nodes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The killed machine comes back: its agent beats again, with no work.
    let (ok, text) = ctl(&up, &["revive-node", "nodeA"]);
    assert!(ok && text.contains("nodeA back"), "{text}");
    up.wait_event_within("node_revived", Duration::from_secs(5), |e| {
        e["kind"] == "node_revived" && e["node"] == "nodeA"
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while node(&list_nodes(&up), "nodeA")["health"] != "HEALTHY" {
        assert!(Instant::now() < deadline, "{:?}", list_nodes(&up));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, text) = ctl(&up, &["revive-node", "nodeB"]);
    assert!(!ok && text.contains("nodeB is running"), "{text}");

    // Freezing nodeB shows in the list; the same command thaws it.
    let (ok, text) = ctl(&up, &["freeze-node", "nodeB"]);
    assert!(ok && text.contains("nodeB frozen"), "{text}");
    assert_eq!(node(&list_nodes(&up), "nodeB")["frozen"], true);
    let (ok, text) = ctl(&up, &["freeze-node", "nodeB"]);
    assert!(ok && text.contains("nodeB thawed"), "{text}");
    assert_eq!(node(&list_nodes(&up), "nodeB")["frozen"], false);
    for kind in ["node_frozen", "node_thawed"] {
        up.wait_event_within(kind, Duration::from_secs(5), |e| {
            e["kind"] == kind && e["node"] == "nodeB"
        });
    }

    // A node that is not there is one line, and nothing is done.
    let (ok, text) = ctl(&up, &["kill-node", "nodeZ"]);
    assert!(!ok, "{text}");
    assert!(text.contains("no local node named \"nodeZ\""), "{text}");
}

/// The instance on nodeA, once both nodes beat (empty when never ready).
pub(crate) fn first_instance(up: &Up) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let nodes = list_nodes(up);
        let ready = nodes.len() == 2 && nodes.iter().all(|n| n["health"] == "HEALTHY");
        if ready {
            if let Some(i) = node(&nodes, "nodeA")["instances"][0].as_str() {
                return i.to_string();
            }
        }
        assert!(Instant::now() < deadline, "nodes never ready: {nodes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_node_loses_its_instance_after_the_ttl_and_once_thawed_never_moves_the_checkpoint_back(
) {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::two_nodes(dir.path(), "nodes-freeze").spawn();
    let first = first_instance(&up);
    let kv = DistributedMemory::create("nodes-freeze", &up.url()).unwrap();
    let counter = || async { kv.get_int("task.counter").await.ok().flatten().unwrap_or(0) };
    // A task is 10 steps: freeze early, so the replacement is mid-task at the thaw.
    let deadline = Instant::now() + Duration::from_secs(15);
    while counter().await < 2 {
        assert!(Instant::now() < deadline, "no progress: {:?}", up.events());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    // A hung machine: its connections stay open, so only the TTL tells.
    let (ok, text) = ctl(&up, &["freeze-node", "nodeA"]);
    assert!(ok && text.contains("nodeA frozen"), "{text}");
    let frozen_at = counter().await;
    let migrated = up.wait_event_within("migrated", Duration::from_secs(10), |e| {
        e["kind"] == "migrated"
    });
    assert_eq!(migrated["instance"], first.as_str(), "{migrated}");
    assert_eq!(migrated["to_node"], "nodeB");
    let down = up.wait_event_within("node_down", Duration::from_secs(5), |e| {
        e["kind"] == "node_down" && e["node"] == "nodeA"
    });
    assert_eq!(down["lost_by"], "heartbeats", "a frozen node: {down}");
    // The new instance gets ahead of where the frozen one stopped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter().await < frozen_at + 3 {
        assert!(
            Instant::now() < deadline,
            "the new instance makes no progress"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    // Thawed: the old worker may not write over its replacement.
    let (ok, text) = ctl(&up, &["freeze-node", "nodeA"]);
    assert!(ok && text.contains("nodeA thawed"), "{text}");
    let mut high = counter().await;
    let watch = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch {
        let now = counter().await;
        assert!(now >= high, "the checkpoint went back from {high} to {now}");
        high = now;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // nodeA beats again and runs nothing; the work stays on nodeB.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = list_nodes(&up);
        if node(&nodes, "nodeA")["health"] == "HEALTHY"
            && node(&nodes, "nodeA")["instances"] == serde_json::json!([])
            && node(&nodes, "nodeB")["instances"]
                .as_array()
                .is_some_and(|i| i.len() == 1)
        {
            break;
        }
        assert!(Instant::now() < deadline, "{nodes:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The failover had its figures, counted from the freeze; the old writer's
    // end (stopped by its agent or fenced) is no crash, and nothing went back.
    let failover = up.wait_event_within("the failover's figures", Duration::from_secs(10), |e| {
        e["kind"] == "failover"
    });
    assert_eq!(failover["cause"], "node_frozen", "{failover}");
    assert!(
        failover["to_checkpoint_ms"].as_u64().is_some(),
        "{failover}"
    );
    up.wait_event_within("the replaced writer's end", Duration::from_secs(10), |e| {
        e["kind"] == "superseded" && e["instance"] == first.as_str()
    });
    let events = up.events();
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "checkpoint_went_back" || e["kind"] == "crashed"),
        "{events:#?}"
    );
}

/// `up --nodes 2 --pattern fsm`: the agents' workers run the state machine
/// the dashboard was told of (the pattern reaches them through the agents'
/// environment), whatever kv-demo setting the shell had.
#[tokio::test(flavor = "multi_thread")]
async fn the_pattern_told_to_up_reaches_the_workers_of_its_node_agents() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::two_nodes(dir.path(), "nodes-fsm")
        .args(["--pattern", "fsm"])
        .env("KV_DEMO_PATTERN", "txlog")
        .spawn();
    let url = format!("{}/v1/kv/nodes-fsm/fsm.state", up.url());
    let client = crate::support::http();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(answer) = client.get(&url).send().await {
            if answer.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no fsm.state written by nodeA's worker"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ops = format!("{}/v1/kv/nodes-fsm/operation.counter", up.url());
    let answer = client.get(&ops).send().await.unwrap();
    assert_eq!(
        answer.status(),
        404,
        "the shell's KV_DEMO_PATTERN leaked to the worker"
    );
}
