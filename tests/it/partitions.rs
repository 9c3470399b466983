//! Test hosts (`plumdash::hosts`) and the node scenario on them: a node's
//! link cut both ways or one way, or losing packets, while its worker runs on.

use crate::support::{fixture, need_hosts, plumdash};
use plumdash::hosts::{LinkFault, Netem, TestHosts};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

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
fn a_partitioned_node_loses_its_work_and_its_late_writes_are_fenced() {
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
    assert_eq!(c["went_back"], 0, "{c}");
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
    let (code, report) = verify_on_hosts(&["--netem", "loss 60%", "--step", "300ms"]);
    assert_eq!(code, 0, "{report:#}");
    let c = &report["cycles"][0];
    assert_eq!(c["link"], "loss 60%", "{c}");
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
