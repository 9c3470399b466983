//! Test hosts (`plumdash::hosts`) and the node scenario on them: a node's
//! link cut both ways or one way, or losing packets, while its worker runs on.

use crate::nodes::{ctl, first_instance, list_nodes, node};
use crate::support::{fixture, need_hosts, plumdash, Up};
use plumdash::hosts::{LinkFault, Netem, TestHosts};
use plumdash::kv::DistributedMemory;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use std::time::Instant;

const QUICK: Duration = Duration::from_millis(400);

/// Whether host `from` can open a TCP connection to `to`.
fn reaches(hosts: &TestHosts, from: &str, to: SocketAddr) -> bool {
    hosts.connect(from, to, QUICK).is_ok()
}

#[test]
fn test_hosts_have_their_own_network_and_processes_and_their_links_fail_and_heal() {
    if !need_hosts() {
        return;
    }
    let hosts = TestHosts::create(&["controller", "nodeA"]).unwrap();
    let netns = hosts.netns("nodeA").unwrap();
    let listener = hosts.bind("controller", 0).unwrap();
    let to = listener.local_addr().unwrap();
    assert_eq!(to.ip().to_string(), "10.213.0.1");
    assert_eq!(hosts.addr("nodeA").unwrap().to_string(), "10.213.0.2");
    assert!(reaches(&hosts, "nodeA", to));
    // The machine's own namespace has no route to the hosts' network.
    assert!(std::net::TcpStream::connect_timeout(&to, QUICK).is_err());

    // A program on a host is the first process of its own PID namespace.
    let out = hosts
        .command("nodeA", std::path::Path::new("/bin/sh"))
        .unwrap()
        .args(["-c", "echo $$; ls /proc | grep -c '^[0-9]'"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("1"), "{text}");
    let seen: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert!(seen <= 3, "a host sees only its own processes: {text}");

    for fault in [
        LinkFault::Partition,
        LinkFault::CutOutgoing,
        LinkFault::CutIncoming,
        LinkFault::Degraded(Netem {
            delay: None,
            loss_pct: Some(100),
        }),
    ] {
        hosts.apply("nodeA", &fault).unwrap();
        assert_eq!(hosts.fault("nodeA"), Some(fault));
        assert!(!reaches(&hosts, "nodeA", to), "{fault:?}");
        hosts.heal("nodeA").unwrap();
        assert_eq!(hosts.fault("nodeA"), None);
        assert!(reaches(&hosts, "nodeA", to), "healed after {fault:?}");
    }

    // Delay needs the kernel's netem: applied, or refused naming it.
    if let Err(e) = TestHosts::check_delay() {
        assert!(format!("{e:#}").contains("sch_netem"), "{e:#}");
    }

    // Everything made goes with the hosts.
    drop(listener);
    drop(hosts);
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains(&netns),
        "{netns} left behind"
    );
}

/// `verify --nodes 2 ARGS --json` on test hosts: its exit code and report.
fn verify_on_hosts(args: &[&str]) -> (i32, Value) {
    let out = plumdash()
        .args(["verify", "--json", "--nodes", "2"])
        .args(args)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The bundled worker fences: whatever the cut, the work moves, nothing the
/// cut-off worker writes after the move lands, and it stops after the heal.
fn holds_with_the_bundled_worker(args: &[&str], link: &str) {
    let (code, report) = verify_on_hosts(args);
    assert_eq!(code, 0, "{report:#}");
    let c = &report["cycles"][0];
    assert_eq!(c["link"], link, "{c}");
    assert_eq!(c["went_back"], 0, "{c}");
    assert_eq!(c["flag_deleted_midtask"], 0, "{c}");
    assert_eq!(c["old_writer_ended"], true, "{c}");
    assert_eq!(report["completions"], 1, "{report:#}");
}

#[test]
fn a_partitioned_node_loses_its_work_and_no_late_write_of_its_worker_lands() {
    if !need_hosts() {
        return;
    }
    let args = ["--partition-node", "--step", "300ms"];
    let (code, report) = verify_on_hosts(&args);
    assert_eq!(code, 0, "{report:#}");
    let c = &report["cycles"][0];
    assert_eq!(c["link"], "partitioned", "{c}");
    assert_eq!(
        (c["node"].as_str(), c["to_node"].as_str()),
        (Some("nodeA"), Some("nodeB"))
    );
    assert_eq!(c["steps_lost"], 0, "{c}");
    // Found by missed heartbeats: at least the TTL after the cut.
    assert!(c["to_detected_ms"].as_u64().is_some(), "{c}");
    assert!(c["to_checkpoint_ms"].as_u64().is_some(), "{c}");
    // Its late write, if it made one before its agent stopped it, was refused.
    assert_eq!(c["went_back"], 0, "{c}");
    assert_eq!(c["flag_deleted_midtask"], 0, "{c}");
    assert_eq!(c["old_writer_ended"], true, "{c}");
    assert_eq!(report["completions"], 1, "{report:#}");
}

#[test]
fn a_node_that_hears_but_cannot_reach_the_controller_loses_its_work_safely() {
    if !need_hosts() {
        return;
    }
    holds_with_the_bundled_worker(
        &["--partition-oneway", "--step", "300ms"],
        "cut one way (hears, cannot reach)",
    );
}

#[test]
fn a_node_losing_most_of_its_packets_never_gets_two_writers() {
    if !need_hosts() {
        return;
    }
    // Heavy loss: the node may or may not be found lost; either way the
    // task completes once and no checkpoint goes back.
    let (code, report) = verify_on_hosts(&["--netem", "loss 40%", "--step", "300ms"]);
    assert_eq!(code, 0, "{report:#}");
    let c = &report["cycles"][0];
    assert_eq!(c["link"], "loss 40%", "{c}");
    assert_eq!(c["went_back"], 0, "{c}");
    assert_eq!(report["completions"], 1, "{report:#}");
}

#[test]
fn a_partitioned_worker_that_does_not_fence_is_shown_as_a_second_writer() {
    if !need_hosts() {
        return;
    }
    let worker = fixture("original-shaped.sh").display().to_string();
    let (code, report) = verify_on_hosts(&[
        "--partition-node",
        "--kill-at",
        "20",
        "--step",
        "500ms",
        "--cmd",
        &worker,
    ]);
    assert_eq!(code, 1, "{report:#}");
    let c = &report["cycles"][0];
    assert_eq!(c["to_node"], "nodeB", "{c}");
    let writes_after_move =
        c["went_back"].as_u64().unwrap() + c["flag_deleted_midtask"].as_u64().unwrap();
    assert!(writes_after_move > 0, "{c}");
    let n4 = report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "N4")
        .unwrap();
    assert_eq!(n4["status"], "violated", "{n4}");
    assert!(
        n4["detail"].as_str().unwrap().contains("two writers"),
        "{n4}"
    );
}

/// `up --nodes 2 --hosts` driven by `ctl partition-node`: the cut node's
/// work moves, and after the heal its agent stops what it no longer owns;
/// the events tell each step in order.
#[tokio::test(flavor = "multi_thread")]
async fn ctl_partition_node_cuts_a_node_off_and_heals_it_and_the_events_tell_each_step() {
    if !need_hosts() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let up = Up::two_nodes(dir.path(), "parts-up")
        .args(["--hosts"])
        .spawn();
    let first = first_instance(&up);
    let kv = DistributedMemory::create("parts-up", &up.url()).unwrap();
    let counter = || async { kv.get_int("task.counter").await.ok().flatten().unwrap_or(0) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while counter().await < 2 {
        assert!(Instant::now() < deadline, "no progress: {:?}", up.events());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    let (ok, text) = ctl(&up, &["partition-node", "nodeA"]);
    assert!(ok && text.contains("nodeA partitioned"), "{text}");
    up.wait_event_within("node_partitioned", Duration::from_secs(5), |e| {
        e["kind"] == "node_partitioned" && e["node"] == "nodeA"
    });
    // Cut off, its connections stay open: only the TTL tells.
    let down = up.wait_event_within("node_down", Duration::from_secs(10), |e| {
        e["kind"] == "node_down" && e["node"] == "nodeA"
    });
    assert_eq!(down["lost_by"], "heartbeats", "{down}");
    let failover = up.wait_event_within("failover", Duration::from_secs(10), |e| {
        e["kind"] == "failover"
    });
    assert_eq!(failover["cause"], "node_partitioned", "{failover}");
    assert_eq!(failover["to_node"], "nodeB", "{failover}");
    assert_eq!(node(&list_nodes(&up), "nodeA")["health"], "UNHEALTHY");

    let (ok, text) = ctl(&up, &["partition-node", "nodeA"]);
    assert!(ok && text.contains("nodeA healed"), "{text}");
    up.wait_event_within(
        "the old node stops its instance",
        Duration::from_secs(15),
        |e| e["kind"] == "superseded" && e["instance"] == first.as_str(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while node(&list_nodes(&up), "nodeA")["health"] != "HEALTHY" {
        assert!(Instant::now() < deadline, "nodeA never beat again");
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = up.events();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    let at = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
    assert!(at("node_partitioned") < at("node_down"), "{kinds:?}");
    assert!(at("node_down") <= at("failover"), "{kinds:?}");
    assert!(at("failover") < at("node_healed"), "{kinds:?}");
    assert!(
        !events
            .iter()
            .any(|e| e["kind"] == "checkpoint_went_back" || e["kind"] == "crashed"),
        "{events:#?}"
    );
}
