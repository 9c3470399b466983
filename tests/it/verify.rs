//! `plumdash verify` as a user runs it: the real binary, an embedded
//! controller, 50 ms steps; the real kv-demo passes, each deliberately broken
//! worker in `tests/fixtures/` fails with the invariant it breaks.

use crate::support::process::is_dead;
use crate::support::{self, free_port, need, ControllerProcess};
use serde_json::Value;
use std::process::Output;

fn fixture(name: &str) -> String {
    support::fixture(name).display().to_string()
}

fn verify(args: &[&str]) -> Output {
    support::plumdash()
        .arg("verify")
        .args(args)
        .output()
        .expect("running plumdash verify")
}

/// Runs `verify --json FIRST… ARGS…`; returns the exit code and the report.
fn verify_report(first: &[&str], args: &[&str]) -> (i32, Value) {
    let out = verify(&[&["--json"], first, args].concat());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// Runs with `--json` at 50 ms steps; returns the exit code and the report.
fn verify_json(args: &[&str]) -> (i32, Value) {
    verify_report(&["--step", "50ms"], args)
}

fn violated(report: &Value) -> Vec<u64> {
    report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "violated")
        .map(|i| i["id"].as_u64().unwrap())
        .collect()
}

#[test]
fn the_real_kv_demo_passes_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let (code, report) = verify_json(&["--cycles", "3", "--report", report_path.to_str().unwrap()]);
    assert_eq!(code, 0, "report: {report:#}");
    assert_eq!(report["ok"], true);
    let cycles = report["cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 3);
    for c in cycles {
        assert_eq!(c["steps_lost"], 0, "{c}");
        assert_eq!(c["verdict"], "ok");
        assert_eq!(c["resumed_from"], c["kill_at_pct"]);
        assert_eq!(c["flag_after_kill"], true);
    }
    assert_eq!(report["outage"]["steps_lost"], 0);
    assert_eq!(report["graceful_stop"]["flag_after_stop"], false);
    assert_eq!(report["graceful_stop"]["next_start_was_recovery"], false);
    assert!(report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "held"));
    assert!(report["history"].as_array().unwrap().len() > 20);
    // Through the outage the feed names the controller by the address the
    // report gives, never by the dashboard's own listener of it.
    let named = format!(
        "controller at {} is unreachable",
        report["controller"].as_str().unwrap()
    );
    let outage_lines: Vec<&str> = report["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["text"].as_str())
        .filter(|t| t.contains("is unreachable"))
        .collect();
    assert!(!outage_lines.is_empty(), "{report:#}");
    for line in outage_lines {
        assert!(line.contains(&named), "{line}");
    }
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(written["cycles"], report["cycles"]);
}

#[test]
fn the_human_output_has_a_table_and_a_verdict() {
    let out = verify(&["--cycles", "1", "--kill-at", "40", "--step", "50ms"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("verify: SIGKILL kv-demo-001 at 40% (cycle 1/1)"));
    assert!(text.contains("RESUMED from 40%, 0 steps lost"));
    assert!(text.contains("kill→restart ms"));
    assert!(text.contains("verify: PASS"));
}

/// Ctrl-C in the middle of a run: one line saying there is no verdict, the
/// shell's status for SIGINT (130), and no worker of it left running.
#[test]
fn an_interrupted_run_says_it_has_no_verdict_and_leaves_nothing_running() {
    let mut child = support::plumdash()
        .args(["verify", "--step", "200ms", "--cycles", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Once the first worker runs (its start line), interrupt.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let started = lines.by_ref().find_map(|l| {
        let l = l.ok()?;
        l.contains("started (pid ").then_some(l)
    });
    let pid: i32 = started
        .as_deref()
        .and_then(|l| l.split("pid ").nth(1))
        .and_then(|rest| rest.trim_end_matches(')').split(')').next())
        .and_then(|p| p.trim().parse().ok())
        .expect("a worker's start line");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interrupted by signal 2: no verdict"), "{err}");
    support::wait_until(
        "the worker to be gone",
        std::time::Duration::from_secs(5),
        || is_dead(pid as u32),
    );
}

fn assert_fails_with(script: &str, invariant: u64) -> Value {
    let cmd = fixture(script);
    let (code, report) = verify_json(&["--cycles", "1", "--kill-at", "50", "--cmd", &cmd]);
    assert_eq!(code, 1, "{script}: report {report:#}");
    assert_eq!(report["ok"], false);
    let failed = violated(&report);
    assert!(
        failed.contains(&invariant),
        "{script} should violate invariant {invariant}; violated {failed:?}"
    );
    let inv = &report["invariants"][(invariant - 1) as usize];
    let evidence = &inv["violations"][0]["evidence"];
    assert!(
        !evidence.as_array().unwrap().is_empty(),
        "evidence for {script}"
    );
    report
}

#[test]
fn a_worker_that_restarts_from_zero_breaks_invariant_2() {
    // The broken workers speak to the controller with curl (kv-lib.sh).
    if !need(&["curl"]) {
        return;
    }
    let report = assert_fails_with("restart-from-zero.sh", 2);
    assert_eq!(report["cycles"][0]["resumed_from"], 0);
    assert_eq!(report["cycles"][0]["steps_lost"], 5);
}

#[test]
fn separate_puts_per_step_leave_a_torn_checkpoint_invariant_3() {
    // The broken workers speak to the controller with curl (kv-lib.sh).
    if !need(&["curl"]) {
        return;
    }
    let report = assert_fails_with("torn-checkpoint.sh", 3);
    assert!(report["cycles"][0]["torn_at_kill"].is_string());
    assert!(report["transient_torn_states"].as_u64().unwrap() > 0);
}

#[test]
fn a_worker_that_keeps_the_flag_on_sigint_breaks_invariant_4() {
    // The broken workers speak to the controller with curl (kv-lib.sh).
    if !need(&["curl"]) {
        return;
    }
    let report = assert_fails_with("flag-not-cleared.sh", 4);
    assert_eq!(report["graceful_stop"]["flag_after_stop"], true);
    assert_eq!(report["graceful_stop"]["next_start_was_recovery"], true);
    assert_eq!(violated(&report), vec![4]);
}

#[test]
fn a_worker_that_takes_unreachable_for_empty_breaks_invariant_6() {
    // The broken workers speak to the controller with curl (kv-lib.sh).
    if !need(&["curl"]) {
        return;
    }
    assert_fails_with("unreachable-as-empty.sh", 6);
    // With steps long enough that it is still working when the controller
    // comes back, its first write seen after the restart is past 10%: the
    // writes before it were lost, so that write only bounds where it went on
    // from, and the verdict says so.
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("outage.toml");
    std::fs::write(&scenario, "[outage]\nduration = \"1s\"\n").unwrap();
    let cmd = fixture("unreachable-as-empty.sh");
    let (code, report) = verify_report(
        &["--step", "200ms"],
        &[
            "--cycles",
            "1",
            "--kill-at",
            "50",
            "--cmd",
            &cmd,
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{report:#}");
    let messages: Vec<&str> = report["invariants"][5]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains(
            "or below (writes refused while the controller was down are not seen) but the last checkpoint was"
        ) && m.contains(": at least ")),
        "{messages:#?}"
    );
}

/// The node scenario's report (`--json`), with its exit code.
fn verify_nodes(args: &[&str]) -> (i32, Value) {
    verify_report(&["--nodes", "2"], args)
}

fn node_verdicts(report: &Value) -> Vec<(String, String)> {
    report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_killed_or_frozen_node_moves_the_work_and_every_node_invariant_holds() {
    // Two kills on two nodes: the first killed node comes back as the standby.
    let (code, report) = verify_nodes(&["--kill-node", "--cycles", "2", "--step", "200ms"]);
    assert_eq!(code, 0, "{report:#}");
    // Cycle `i` moved the work from node `from` to node `to`, losing no step.
    let moved = |i: usize, from: &str, to: &str| {
        let c = &report["cycles"][i];
        assert_eq!(
            (c["node"].as_str(), c["to_node"].as_str()),
            (Some(from), Some(to)),
            "{c}"
        );
        assert_eq!(c["steps_lost"], 0, "{c}");
    };
    moved(1, "nodeB", "nodeA");
    moved(0, "nodeA", "nodeB");
    let c = &report["cycles"][0];
    assert_eq!(c["flag_after_fault"], true, "{c}");
    assert!(c["to_running_ms"].as_u64().is_some(), "{c}");
    assert_eq!(report["completions"], 1);
    assert!(
        node_verdicts(&report).iter().all(|(_, s)| s == "held"),
        "{report:#}"
    );

    // Frozen: found by the TTL, thawed after the move; kv-demo is fenced and stops.
    let (code, report) = verify_nodes(&["--freeze-node", "--step", "200ms"]);
    assert_eq!(code, 0, "{report:#}");
    let c = &report["cycles"][0];
    assert_eq!(c["to_node"], "nodeB", "{c}");
    assert_eq!(c["old_writer_ended"], true, "{c}");
    assert!(
        c["to_detected_ms"].as_u64().unwrap() >= 1_000,
        "the TTL decides: {c}"
    );
    assert!(
        node_verdicts(&report).iter().all(|(_, s)| s == "held"),
        "{report:#}"
    );
}

#[test]
fn a_worker_that_restarts_from_zero_on_the_new_node_breaks_n2() {
    // The broken workers speak to the controller with curl (kv-lib.sh).
    if !need(&["curl"]) {
        return;
    }
    let cmd = fixture("restart-from-zero.sh");
    // 100 ms steps: the new worker is seen starting from its start keys (a
    // rescan every 500 ms would see it only after its first checkpoints).
    let (code, report) = verify_nodes(&[
        "--kill-node",
        "--step",
        "100ms",
        "--kill-at",
        "50",
        "--cmd",
        &cmd,
    ]);
    assert_eq!(code, 1, "{report:#}");
    let verdicts = node_verdicts(&report);
    assert!(
        verdicts.contains(&("N1".into(), "held".into())),
        "{verdicts:?}"
    );
    assert!(
        verdicts.contains(&("N2".into(), "violated".into())),
        "{verdicts:?}"
    );
    assert!(
        report["cycles"][0]["steps_lost"].as_i64().unwrap() > 0,
        "{report:#}"
    );
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for (args, needle) in [
        (vec!["--cycles", "0"], "--cycles"),
        (vec!["--kill-at", "0"], "outside 1..99"),
        (vec!["--kill-at", "100"], "outside 1..99"),
        (
            vec!["--kill-at", "50", "--kill-random"],
            "exclude each other",
        ),
        (
            vec!["--cmd", "/no/such/worker --flag"],
            "no such executable",
        ),
        (vec!["--cycles", "many"], "invalid value"),
        (vec!["--nodes", "2"], "--kill-node or --freeze-node"),
        (
            vec!["--nodes", "2", "--freeze-node", "--html", "r.html"],
            "not for the node scenario",
        ),
        (vec!["--kill-node"], "--nodes"),
        (vec!["--partition-node"], "--nodes N"),
        (
            vec!["--nodes", "2", "--kill-node", "--partition-oneway"],
            "--kill-node and --partition-oneway exclude each other",
        ),
        (
            vec!["--nodes", "2", "--netem", "jitter 5ms"],
            "only \"delay D\" and \"loss P%\"",
        ),
        (vec!["--nodes", "2", "--netem", "loss 0%"], "1%..100%"),
    ] {
        let out = verify(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn with_a_remote_controller_invariant_6_is_skipped_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), free_port());
    let url = controller.url();
    // Someone's data in the namespace: verify refuses to touch it unasked.
    let put = support::plumdash()
        .args(["kv", "--controller", &url, "put", "theirs", "keep me"])
        .status()
        .unwrap();
    assert!(put.success());
    let refused = verify(&["--cycles", "1", "--controller", &url]);
    assert_eq!(refused.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(msg.contains("--reset-namespace"), "{msg}");
    let (code, report) = verify_json(&["--cycles", "1", "--controller", &url, "--reset-namespace"]);
    drop(controller);
    assert_eq!(code, 0, "{report:#}");
    let six = &report["invariants"][5];
    assert_eq!(six["status"], "skipped");
    assert!(six["reason"]
        .as_str()
        .unwrap()
        .contains("embedded controller"));
}

#[test]
fn a_sigkilled_verify_takes_its_worker_with_it() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    use std::time::{Duration, Instant};
    if !need(&["pgrep"]) {
        return;
    }
    let mut child = support::plumdash()
        .args(["verify", "--cycles", "3", "--step", "300ms"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let parent = child.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let worker: u32 = loop {
        let out = std::process::Command::new("pgrep")
            .args(["-P", &parent, "kv-demo"])
            .output()
            .unwrap();
        if let Some(pid) = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "verify started no worker");
        std::thread::sleep(Duration::from_millis(20));
    };
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_dead(worker) {
        assert!(Instant::now() < deadline, "worker {worker} outlived verify");
        std::thread::sleep(Duration::from_millis(20));
    }
}
