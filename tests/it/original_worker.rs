//! Verdicts from evidence, against a worker shaped like the original C++
//! kv-demo (`tests/fixtures/original-shaped.sh`: one PUT per key, the flag
//! deleted and set again on recovery, defaults when the controller is down,
//! a slow stop) and, where it applies, the bundled worker: the controller
//! names the process behind each write, and verify, `up --headless`, `ctl`
//! and attach judge from it. With `PLUM_CXX_KV_DEMO` naming a build of the
//! original, verify runs it too (skipped without).

use crate::support::{fixture, free_port, need, wait_until, TestController, Up};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use plumdash::recovery::{Fact, TimelineKind, Tracker};
use plumdash::session::{Session, SessionConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::plumdash;

fn original_shaped() -> String {
    fixture("original-shaped.sh").display().to_string()
}

fn report_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn status(report: &Value, id: u64) -> String {
    report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .map(|i| i["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn messages(report: &Value, id: u64) -> Vec<String> {
    report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"] == id)
        .flat_map(|i| i["violations"].as_array().cloned().unwrap_or_default())
        .map(|v| v["message"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The JUnit `<testcase>` elements of an invariant, as text.
fn junit_cases(xml: &str, invariant: u8) -> Vec<&str> {
    let class = format!("classname=\"plumdash.verify.invariant{invariant}\"");
    xml.split("<testcase")
        .skip(1)
        .filter(|c| c.contains(&class))
        .map(|c| c.split("</testcase>").next().unwrap_or(c))
        .collect()
}

/// Points 1, 2, 9 and 11 of the issue on one run of the original-shaped
/// worker: every kill lands between `task.progress` and `task.counter`, so
/// each restart resumes with its counter one behind (torn, yet nothing lost:
/// invariant 2 holds); its first task's completion is cut by a SIGKILL, and
/// the automatic restart begins the next task (verify goes on); in the
/// outage it starts over from 0, and the first of its writes that lands is
/// below the checkpoint: invariant 6 fails with that write as evidence, in
/// the JSON, the JUnit and the HTML alike, with the basis of the verdict.
#[test]
fn the_original_shaped_worker_is_judged_by_its_own_writes() {
    if !need(&["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (junit, html) = (dir.path().join("v.xml"), dir.path().join("v.html"));
    let marker = dir.path().join("died-at-completion");
    let out = plumdash()
        .args(["verify", "--json", "--cycles", "1", "--kill-at", "40"])
        .args(["--step", "1s", "--outage", "2500ms", "--cmd"])
        .arg(original_shaped())
        .arg("--junit")
        .arg(&junit)
        .arg("--html")
        .arg(&html)
        .env("ORIG_PUT_GAP_S", "0.2")
        .env("ORIG_STOP_S", "0.5")
        .env("ORIG_DIE_AT_COMPLETION", &marker)
        .output()
        .unwrap();
    let report = report_of(&out);
    let all = format!("{report:#}");
    assert!(marker.exists(), "the completion was cut by a SIGKILL");
    assert_eq!(report["ended_early"], Value::Null, "{all}");
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_eq!(report["basis"]["kind"], "writer", "{all}");

    // The kill cycle: torn at the kill (3), resumed within what it left (2 holds).
    assert_eq!(status(&report, 3), "violated", "{all}");
    assert_eq!(status(&report, 2), "held", "{all}");
    let cycle = &report["cycles"][0];
    assert_eq!(cycle["steps_lost"], 0, "{cycle}");
    assert_eq!(cycle["steps_skipped"], 0, "{cycle}");
    assert_eq!(cycle["resumed_from"], 40, "{cycle}");

    // The outage: started over, caught by its first write.
    assert_eq!(status(&report, 6), "violated", "{all}");
    let outage = &report["outage"];
    assert!(outage["steps_lost"].as_i64().unwrap_or(0) >= 1, "{outage}");
    assert!(
        outage["resumed_from"].as_i64().unwrap_or(100) < 50,
        "{outage}"
    );
    assert_eq!(outage["basis"], "writer", "{outage}");
    let six = messages(&report, 6);
    assert_eq!(six.len(), 1, "{six:?}");
    assert!(
        six[0].contains("first write after the restart: task.progress=")
            && six[0].contains("below the checkpoint left at the kill (step_5, 50%)"),
        "{six:?}"
    );
    for id in [1, 4, 5] {
        assert_eq!(status(&report, id), "held", "invariant {id}: {all}");
    }
    // No count is negative anywhere.
    for c in report["cycles"].as_array().unwrap().iter().chain([outage]) {
        for key in ["steps_lost", "steps_skipped"] {
            assert!(c[key].as_i64().unwrap_or(0) >= 0, "{c}");
        }
    }

    // The evidence names each write's process, and bytes by their length.
    let history = report["history"].to_string();
    assert!(
        history.contains("binary.checkpoint=<48 bytes>"),
        "{history}"
    );
    assert!(!history.contains("put  →"), "{history}");
    assert!(history.contains(" by pid "), "{history}");

    // The same verdicts in the JUnit and the HTML, with the basis.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(junit_cases(&xml, 6)
        .iter()
        .any(|c| c.contains("<failure") && c.contains("first write after the restart")));
    assert!(junit_cases(&xml, 2).iter().all(|c| !c.contains("<failure")));
    assert!(xml.contains(
        r#"name="basis" value="the writing process of each write, named by the controller""#
    ));
    assert!(xml.contains("judged:   the writing process of each write"));
    assert!(xml.contains("FAIL 6."));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("first write after the restart: task.progress="));
    assert!(page.contains("<th>judged</th>"));
}

/// The bundled worker on the same plan passes, judged by named writers too.
#[test]
fn the_bundled_worker_passes_judged_by_named_writers() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("v.xml");
    let out = plumdash()
        .args(["verify", "--json", "--cycles", "1", "--kill-at", "40"])
        .args(["--step", "50ms", "--junit"])
        .arg(&junit)
        .output()
        .unwrap();
    let report = report_of(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["basis"]["kind"], "writer");
    assert_eq!(report["basis"]["writes"], report["basis"]["writes_named"]);
    assert_eq!(report["outage"]["steps_lost"], 0);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"name="basis""#));
}

/// `up --headless` (the shared harness) with the restart settings these
/// tests use, its output dropped.
fn start_up(args: &[&str], env: &[(&str, &str)]) -> Up {
    let mut up = Up::builder()
        .args(["--restart-delay", "200ms", "--crash-loop-under", "250ms"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        up = up.env(k, v);
    }
    up.spawn()
}

/// Waits until the events so far satisfy `done`.
fn wait_events(up: &Up, what: &str, timeout: Duration, done: impl Fn(&[Value]) -> bool) {
    wait_until(what, timeout, || done(&up.events()));
}

/// The worker's pid once the task's progress is at least `pct`.
fn pid_at(up: &Up, pct: i64) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Lenient: the socket may not be served yet.
        let (_, out, _) = up.ctl(&["status", "--json"]);
        let st: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        let progress = st["task"]["progress"].as_i64().unwrap_or(-1);
        let pid = st["instances"][0]["pid"].as_i64();
        if let (true, Some(pid)) = (progress >= pct, pid) {
            return pid as i32;
        }
        assert!(Instant::now() < deadline, "never reached {pct}%: {st}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kinds(events: &[Value], kind: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

/// Points 3 and 7: killed at 30% and again at 50%, the flag is still set
/// both times (the restart deletes and sets it again: no clear); a SIGINT
/// sent from outside at 70% is a stop in `ctl list` as on the row.
#[test]
fn the_flag_survives_every_kill_and_an_outside_sigint_is_a_stop() {
    if !need(&["curl"]) {
        return;
    }
    let up = start_up(
        &["--step", "400ms", "--cmd", &original_shaped()],
        &[("ORIG_STOP_S", "0.3")],
    );
    kill(Pid::from_raw(pid_at(&up, 30)), Signal::SIGKILL).unwrap();
    wait_events(&up, "first crash", Duration::from_secs(10), |ev| {
        kinds(ev, "crashed").len() == 1
    });
    kill(Pid::from_raw(pid_at(&up, 50)), Signal::SIGKILL).unwrap();
    wait_events(&up, "second crash", Duration::from_secs(10), |ev| {
        kinds(ev, "crashed").len() == 2
    });
    for crash in kinds(&up.events(), "crashed") {
        assert_eq!(crash["crash_flag"], true, "{crash}");
    }
    kill(Pid::from_raw(pid_at(&up, 70)), Signal::SIGINT).unwrap();
    wait_events(&up, "a stop", Duration::from_secs(15), |ev| {
        !kinds(ev, "stopped").is_empty()
    });
    let list: Value = serde_json::from_str(&up.ctl(&["list"]).1).unwrap_or(Value::Null);
    let row = &list["instances"][0];
    let events = up.events();
    assert_eq!(row["recovery"]["phase"], "STOPPED", "{list} {events:#?}");
    assert_eq!(row["last_exit"]["type"], "stopped", "{list} {events:#?}");
    assert!(kinds(&up.events(), "completed").is_empty());
}

/// Point 5: on an empty namespace the first run under `up --nodes` writes
/// its flag before its process is found; that is its own flag, not a recovery.
#[test]
fn a_first_start_under_nodes_is_no_recovery() {
    let up = start_up(&["--nodes", "2", "--step", "100ms"], &[]);
    wait_events(&up, "the completion", Duration::from_secs(30), |ev| {
        !kinds(ev, "completed").is_empty()
    });
    let events = up.events();
    assert!(kinds(&events, "recovering").is_empty(), "{events:#?}");
    assert!(kinds(&events, "resumed").is_empty(), "{events:#?}");
}

/// Point 10: a controller that takes connections and never answers is
/// reported down, and an exit then claims nothing about a flag never read.
#[test]
fn a_controller_that_never_answers_is_down_and_no_flag_is_claimed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accepts, holds, never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    let mut up = start_up(&["--controller", &url, "--step", "100ms"], &[]);
    wait_events(&up, "controller_down", Duration::from_secs(25), |ev| {
        !kinds(ev, "controller_down").is_empty()
    });
    let st = up.ctl_status();
    assert!(st["task"]["controller_error"].is_string(), "{st}");
    up.interrupt_and_wait();
    let exits = kinds(&up.events(), "exited");
    assert!(!exits.is_empty(), "{:#?}", up.events());
    for exit in exits {
        assert_eq!(exit["crash_flag"], Value::Null, "{exit}");
    }
}

/// Points 5 and 8 in attach: a worker of the same app writing to another
/// controller is not listed; the first start of one writing to ours, seen
/// after its flag write, is no recovery.
#[tokio::test(flavor = "multi_thread")]
async fn attach_lists_only_its_controllers_workers_and_a_first_start_is_no_recovery() {
    let c = TestController::start().await;
    let app = format!("orig-attach-{}", std::process::id());
    let spawn = |instance: &str, base: &str| {
        Command::new(crate::support::KV_DEMO)
            .env("PLUM_APP_NAME", &app)
            .env("PLUM_INSTANCE_ID", instance)
            .env("CONTROLLER_BASE", base)
            .env("KV_DEMO_STEP_MS", "100")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Another controller's worker of the same app (nobody listens there).
    let elsewhere = format!("http://127.0.0.1:{}", free_port());
    let mut other = spawn("other-001", &elsewhere);
    let mut session = Session::attach(SessionConfig {
        remote_controller: Some(c.url()),
        app: app.clone(),
        instances: 0,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let mut ours = spawn("ours-001", &c.url());
    let mut tracker = Tracker::new();
    let mut seen = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let (at, fact) = session.next_fact().await.expect("session ended");
            if let Fact::Started { instance, .. } | Fact::Attached { instance, .. } = &fact {
                seen.push(instance.clone());
            }
            tracker.apply(at, fact);
            if tracker.completions() > 0 {
                return;
            }
        }
    })
    .await;
    let _ = ours.kill();
    let _ = other.kill();
    let _ = ours.wait();
    let _ = other.wait();
    assert!(done.is_ok(), "our worker never completed: {seen:?}");
    assert!(seen.iter().all(|i| i == "ours-001"), "{seen:?}");
    assert!(
        !tracker
            .timeline()
            .any(|e| e.kind == TimelineKind::Recovering),
        "{:?}",
        tracker.timeline().collect::<Vec<_>>()
    );
}

/// The original itself, when a build of it is named: invariant 6 fails in the
/// outage cycle with its first write as evidence, invariant 2 does not.
#[test]
fn the_original_when_given_is_judged_the_same() {
    let Some(binary) = std::env::var_os("PLUM_CXX_KV_DEMO").map(PathBuf::from) else {
        eprintln!("PLUM_CXX_KV_DEMO not set: the original is not run");
        return;
    };
    assert!(Path::new(&binary).exists(), "{binary:?}");
    let out = plumdash()
        .args([
            "verify",
            "--json",
            "--cycles",
            "1",
            "--kill-at",
            "40",
            "--cmd",
        ])
        .arg(&binary)
        .output()
        .unwrap();
    let report = report_of(&out);
    let all = format!("{report:#}");
    assert_eq!(report["ended_early"], Value::Null, "{all}");
    assert_eq!(status(&report, 2), "held", "{all}");
    assert_eq!(status(&report, 6), "violated", "{all}");
    assert!(
        messages(&report, 6)
            .iter()
            .any(|m| m.contains("first write after the restart")),
        "{all}"
    );
    assert_eq!(report["basis"]["kind"], "writer", "{all}");
}
