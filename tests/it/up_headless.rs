//! `plumdash up --headless` as a user runs it: a real controller, a real
//! kv-demo, `kill -9` from outside, JSON events on disk, SIGINT to stop.

use crate::support::process::is_dead;
use crate::support::{self, Up};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `up --headless` stepping every `step`, restarted 200 ms after a crash.
fn start(step: &str) -> Up {
    start_with(step, &[])
}

fn start_with(step: &str, extra: &[&str]) -> Up {
    Up::builder()
        .args([
            "--step",
            step,
            "--restart-delay",
            "200ms",
            // A run of 30% (at least three steps) is no crash loop, however fast
            // the machine: the restart waits exactly --restart-delay.
            "--crash-loop-under",
            "250ms",
        ])
        .args(extra)
        .spawn()
}

/// Polls the namespace until the worker has checkpointed at least `pct`.
async fn wait_for_progress(url: &str, pct: i64) {
    support::wait_for_progress("kv-demo", url, pct).await
}

/// A `resumed` event that went on from where the kill left the task (past
/// 30%), no step lost.
fn resumed_from_the_kill_point(resumed: &Value) {
    let from = resumed["from"].as_i64().unwrap();
    assert!((30..100).contains(&from), "{resumed}");
    assert_eq!(
        resumed["progress_at_kill"].as_i64(),
        Some(from),
        "{resumed}"
    );
    assert_eq!(resumed["steps_lost"].as_i64(), Some(0), "{resumed}");
}

fn kind(ev: &Value) -> &str {
    ev["kind"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_from_outside_restarts_and_resumes_from_the_kill_point() {
    let mut up = start("100ms");
    let first = up.wait_event("started", |e| kind(e) == "started");
    let pid = first["pid"].as_u64().unwrap() as i32;

    wait_for_progress(&up.url(), 30).await;
    // As the seed README does it by hand: kill -9 <PID>.
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();

    let crashed = up.wait_event("crashed", |e| kind(e) == "crashed");
    assert_eq!(crashed["signal"], "SIGKILL");
    assert_eq!(crashed["crash_flag"], true, "the flag survives SIGKILL");
    // What the tracker knew at the exit; a checkpoint written just before the
    // kill may arrive after it, and the cycle's kill point counts it.
    let seen_at_exit = crashed["progress"].as_i64().unwrap();

    let scheduled = up.wait_event("restart_scheduled", |e| kind(e) == "restart_scheduled");
    assert_eq!(
        scheduled["delay_ms"], 200,
        "no crash-loop backoff: {scheduled}"
    );
    let restarted = up.wait_event("second start", |e| {
        kind(e) == "started" && e["pid"].as_i64() != Some(pid as i64)
    });
    let gap = restarted["ts_ms"].as_u64().unwrap() - crashed["ts_ms"].as_u64().unwrap();
    assert!(
        gap <= 200 + 100,
        "restart {gap} ms after the crash (delay 200 ms)"
    );

    let resumed = up.wait_event("resumed", |e| kind(e) == "resumed");
    let at_kill = resumed["progress_at_kill"].as_i64().unwrap();
    assert!((30..100).contains(&at_kill), "{resumed}");
    assert!(seen_at_exit <= at_kill, "{crashed} {resumed}");
    assert_eq!(resumed["from"].as_i64(), Some(at_kill), "{resumed}");
    assert_eq!(resumed["steps_lost"].as_i64(), Some(0));
    up.wait_event("completed", |e| kind(e) == "completed");
    assert!(up.interrupt_and_wait().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_owned_workers_gracefully_and_clears_their_flag() {
    let mut up = start("300ms");
    up.wait_event("started", |e| kind(e) == "started");
    wait_for_progress(&up.url(), 20).await;
    let status = up.interrupt_and_wait();
    assert!(status.success(), "{status}");
    let evs = up.events();
    assert!(evs.iter().any(|e| kind(e) == "stopped"), "{evs:?}");
    assert!(evs.iter().any(|e| kind(e) == "flag_cleared"), "{evs:?}");
    assert!(!evs.iter().any(|e| kind(e) == "crashed"), "{evs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_up_takes_its_workers_with_it() {
    let mut up = start("300ms");
    let started = up.wait_event("started", |e| kind(e) == "started");
    let pid = started["pid"].as_u64().unwrap() as i32;
    wait_for_progress(&up.url(), 10).await;
    assert!(!is_dead(pid as u32));

    kill(Pid::from_raw(up.child.id() as i32), Signal::SIGKILL).unwrap();
    up.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_dead(pid as u32) {
        assert!(
            Instant::now() < deadline,
            "worker {pid} outlived the SIGKILLed up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_new_up_refuses_to_be_a_second_writer_beside_a_live_worker() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    // A worker left behind (by hand, or by an older build) for this app and controller.
    let mut stray = support::kv_demo(&url, "kv-demo", "200")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = support::plumdash()
        .args(["up", "--headless", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--db")
        .arg(dir.path().join("kv.db"))
        .output()
        .unwrap();
    let _ = stray.kill();
    let _ = stray.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("already write to {url}: pid {}", stray.id())),
        "{stderr}"
    );
    assert!(stderr.contains("plumdash attach"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_requested_stop_reports_the_signal_the_worker_died_of() {
    // `sleep` dies of the SIGTERM a stop sends: that is what must be reported.
    let mut up = Up::builder()
        .args(["--cmd", "sleep 1000"])
        .stdout(Stdio::piped())
        .spawn();
    up.wait_event("started", |e| kind(e) == "started");
    let mut stdout = up.child.stdout.take().unwrap();
    assert!(up.interrupt_and_wait().success());
    let exited = up.wait_event("exited", |e| kind(e) == "exited");
    assert_eq!(exited["signal"], "SIGTERM", "{exited}");
    assert_eq!(exited["stop_requested"], true, "{exited}");
    assert!(exited.get("code").is_none(), "{exited}");
    let mut text = String::new();
    use std::io::Read;
    stdout.read_to_string(&mut text).unwrap();
    assert!(
        text.contains("kv-demo-001 stopped by SIGTERM (stop requested)"),
        "{text}"
    );
    assert!(!text.contains("exit 0"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigstop_from_outside_shows_stopped_and_the_sigcont_shows_continued() {
    let mut up = start("300ms");
    let started = up.wait_event("started", |e| kind(e) == "started");
    let pid = Pid::from_raw(started["pid"].as_u64().unwrap() as i32);
    wait_for_progress(&up.url(), 10).await;
    kill(pid, Signal::SIGSTOP).unwrap();
    let frozen = up.wait_event("frozen", |e| kind(e) == "frozen");
    assert_eq!(frozen["signal"], "SIGSTOP", "{frozen}");
    kill(pid, Signal::SIGCONT).unwrap();
    up.wait_event("continued", |e| kind(e) == "continued");
    // Frozen and thawed is neither a crash nor a restart.
    let evs = up.events();
    assert!(!evs.iter().any(|e| kind(e) == "crashed"), "{evs:?}");
    assert_eq!(evs.iter().filter(|e| kind(e) == "started").count(), 1);
    assert!(up.interrupt_and_wait().success());
}

/// `--lang zh` words `--headless`'s timeline lines in Chinese; the state words and
/// the `--events` JSON stay exactly as in English.
#[test]
fn headless_lines_follow_the_language_and_the_json_does_not() {
    let mut up = Up::builder()
        .args(["--step", "50ms", "--lang", "zh", "--restart", "never"])
        .stdout(Stdio::piped())
        .spawn();
    up.wait_event("completed", |e| kind(e) == "completed");
    assert!(up.interrupt_and_wait().success());
    let mut text = String::new();
    std::io::Read::read_to_string(up.child.stdout.as_mut().unwrap(), &mut text).unwrap();
    assert!(
        text.contains("COMPLETED") || text.contains("完成"),
        "{text}"
    );
    assert!(
        text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "timeline lines in Chinese:\n{text}"
    );
    let evs = up.events();
    assert!(evs.iter().any(|e| kind(e) == "started"), "{evs:?}");
    assert!(
        evs.iter().any(|e| kind(e) == "completed"),
        "JSON kinds stay English: {evs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_with_their_own_namespaces_crash_and_resume_alone() {
    let mut up = start_with("100ms", &["--instances", "2", "--namespace-by", "instance"]);
    let second = up.wait_event("kv-demo-002 started", |e| {
        kind(e) == "started" && e["instance"] == "kv-demo-002"
    });
    let pid = second["pid"].as_u64().unwrap() as i32;
    support::wait_for_progress("kv-demo-002", &up.url(), 30).await;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();

    let crashed = up.wait_event("crashed", |e| kind(e) == "crashed");
    assert_eq!(crashed["instance"], "kv-demo-002", "{crashed}");
    // The kill point is its own namespace's (a checkpoint written just before
    // the kill may reach the tracker after the exit: the cycle counts it).
    let resumed = up.wait_event("resumed", |e| kind(e) == "resumed");
    assert_eq!(resumed["instance"], "kv-demo-002", "{resumed}");
    resumed_from_the_kill_point(&resumed);

    // Each namespace's own news names its instance; the other saw no crash.
    let events = up.events();
    for id in ["kv-demo-001", "kv-demo-002"] {
        assert!(
            events
                .iter()
                .any(|e| kind(e) == "flag_set" && e["instance"] == id),
            "{id}'s flag: {events:?}"
        );
    }
    assert!(
        !events
            .iter()
            .any(|e| e["instance"] == "kv-demo-001" && ["crashed", "recovering"].contains(&kind(e))),
        "{events:?}"
    );

    // ctl status: a task per instance, no shared one.
    let status = up.ctl_status();
    assert!(status["task"].is_null(), "{status}");
    for i in status["instances"].as_array().unwrap() {
        let task = &i["recovery"]["task"];
        assert!(task["progress"].as_i64().is_some(), "{status}");
    }
    let counters: Vec<i64> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["recovery"]["task"]["counter"].as_i64())
        .collect();
    assert_eq!(counters.len(), 2, "{status}");
    assert!(up.interrupt_and_wait().success());
}

/// Above the old cap of 100: 150 instances, each in its own namespace, all
/// on one change stream; every instance's checkpoints reach its row.
#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_and_fifty_instances_in_their_own_namespaces_are_all_seen() {
    let mut up = start_with(
        "300ms",
        &["--instances", "150", "--namespace-by", "instance"],
    );
    let progressed = |status: &Value| {
        status["instances"].as_array().map_or(0, |all| {
            all.iter()
                .filter(|i| i["recovery"]["task"]["progress"].as_i64() >= Some(2))
                .count()
        })
    };
    up.wait_event("kv-demo-150 started", |e| {
        kind(e) == "started" && e["instance"] == "kv-demo-150"
    });
    let mut last = Value::Null;
    support::wait_until(
        "150 instances' checkpoints",
        Duration::from_secs(60),
        || {
            last = up.ctl_status();
            progressed(&last) == 150
        },
    );
    let ids: std::collections::BTreeSet<&str> = last["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 150, "{last}");
    assert!(ids.contains("kv-demo-150"), "{ids:?}");
    // Each flag told as its own namespace's news.
    let events = up.events();
    let flagged: std::collections::BTreeSet<&str> = events
        .iter()
        .filter(|e| kind(e) == "flag_set")
        .filter_map(|e| e["instance"].as_str())
        .collect();
    assert_eq!(flagged.len(), 150, "{flagged:?}");
    assert!(up.interrupt_and_wait().success());
}

/// `--instances 2` on one namespace: one active, one standby (主备). A kill of
/// the active is taken over by the standby, which resumes the shared task
/// from the kill point; the killed one stands by and is not restarted.
#[tokio::test(flavor = "multi_thread")]
async fn a_standby_takes_over_the_active_ones_crash_and_resumes_its_task() {
    let mut up = start_with("100ms", &["--instances", "2"]);
    let first = up.wait_event("kv-demo-001 started", |e| {
        kind(e) == "started" && e["instance"] == "kv-demo-001"
    });
    wait_for_progress(&up.url(), 30).await;
    let pid = first["pid"].as_u64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();

    let takeover = up.wait_event("takeover", |e| kind(e) == "takeover_scheduled");
    assert_eq!(takeover["instance"], "kv-demo-002", "{takeover}");
    assert_eq!(takeover["from"], "kv-demo-001", "{takeover}");
    assert_eq!(takeover["delay_ms"], 200, "the restart delay: {takeover}");
    let resumed = up.wait_event("resumed", |e| kind(e) == "resumed");
    assert_eq!(resumed["instance"], "kv-demo-002", "{resumed}");
    resumed_from_the_kill_point(&resumed);
    up.wait_event("completed", |e| kind(e) == "completed");

    let events = up.events();
    let starts = |id: &str| {
        events
            .iter()
            .filter(|e| kind(e) == "started" && e["instance"] == id)
            .count()
    };
    assert_eq!(
        (starts("kv-demo-001"), starts("kv-demo-002")),
        (1, 1),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| kind(e) == "restart_scheduled"),
        "the standby took over, nobody restarted: {events:?}"
    );
    let status = up.ctl_status();
    let phase = |id: &str| {
        status["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .map(|i| i["recovery"]["phase"].clone())
    };
    assert_eq!(phase("kv-demo-001"), Some("STANDBY".into()), "{status}");
    assert_eq!(phase("kv-demo-002"), Some("COMPLETED".into()), "{status}");
    assert!(up.interrupt_and_wait().success());
}
