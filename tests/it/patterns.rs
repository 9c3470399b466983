//! The seed's three recovery patterns (模式1–3) and any app's own keys, with
//! real parts: the `kv-demo --pattern` worker killed and restarted against a
//! real controller, `verify` passing each safe pattern and failing each
//! `--unsafe` one by the invariant and its evidence, the dashboard (real
//! runtime on a TestBackend, and the real binary in tmux) telling each
//! pattern's recovery, and a worker with the seed's bare key names
//! (`tests/fixtures/bare-keys.sh`) read through `--key`.

use crate::support::{self, free_port, read_lines, screen, ControllerProcess, PATIENCE};
use crossterm::event::KeyCode;
use plumdash::kv::DistributedMemory;
use plumdash::recovery::{KeyMap, Pattern};
use plumdash::tui::keymap::Keymap;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// A `kv-demo` with `args`, its lines as they come.
fn spawn(url: &str, app: &str, step_ms: &str, args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = support::kv_demo(url, app, step_ms)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kv-demo starts");
    let rx = read_lines(child.stdout.take().expect("stdout"));
    (child, rx)
}

/// Reads lines until one contains `needle`; every line read so far.
fn until(rx: &Receiver<String>, needle: &str, lines: &mut Vec<String>) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let found = line.contains(needle);
            lines.push(line);
            if found {
                return;
            }
        }
    }
    panic!("no line with {needle:?}:\n{}", lines.join("\n"));
}

/// Runs a `kv-demo` to its end; its lines.
fn run_to_end(url: &str, app: &str, args: &[&str]) -> Vec<String> {
    let (mut child, rx) = spawn(url, app, "30", args);
    let status = child.wait().expect("kv-demo ends");
    let lines: Vec<String> = rx.iter().collect();
    assert!(status.success(), "{status:?}\n{}", lines.join("\n"));
    lines
}

fn namespace(url: &str, app: &str) -> BTreeMap<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dm = DistributedMemory::create(app, url).unwrap();
    rt.block_on(dm.get_all())
        .unwrap()
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect()
}

/// Starts `args`' worker, SIGKILLs it at the line containing `at`, and runs
/// the restart (with `restart_args`) to its end: the restart's lines and
/// the namespace at the end.
fn kill_at_then_restart(
    url: &str,
    app: &str,
    args: &[&str],
    at: &str,
    restart_args: &[&str],
) -> (Vec<String>, BTreeMap<String, String>) {
    // 500 ms steps: the kill lands well inside the 250 ms between applying and logging.
    let (mut first, rx) = spawn(url, app, "500", args);
    let mut lines = Vec::new();
    until(&rx, at, &mut lines);
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let after = run_to_end(url, app, restart_args);
    (after, namespace(url, app))
}

#[test]
fn a_transaction_log_replays_an_applied_operation_once_and_unsafe_applies_it_twice() {
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&dir.path().join("kv.db"), free_port());
    let url = controller.url();
    // Killed between applying OP_4 and logging it: the replay meets it.
    let txlog = ["--pattern", "txlog"];
    let (lines, ns) = kill_at_then_restart(&url, "tx-safe", &txlog, "执行 OP_4", &txlog);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("✅ 日志恢复完成，从 OP_4 开始重放")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("⏭️ 重放 OP_4: 已应用过（ledger.applied_op = 4），跳过")),
        "the replay says it skipped OP_4:\n{lines:#?}"
    );
    assert_eq!(ns["ledger.applied"], "10", "{ns:?}");
    assert_eq!(ns["operation.counter"], "10");
    assert_eq!(ns["operation.last"], "OP_10");
    assert!(!ns.contains_key("app.crashed"));

    let unsafe_ = ["--pattern", "txlog", "--unsafe"];
    let (lines, ns) = kill_at_then_restart(&url, "tx-unsafe", &unsafe_, "执行 OP_4", &unsafe_);
    assert!(
        lines.iter().any(|l| l.contains("⚠️ [unsafe] 重放 OP_4")),
        "{lines:#?}"
    );
    assert_eq!(ns["ledger.applied"], "11", "OP_4 applied twice: {ns:?}");
    controller.stop();
}

#[test]
fn a_state_machine_is_restored_in_its_state_and_unsafe_starts_again_from_init() {
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&dir.path().join("kv.db"), free_port());
    let url = controller.url();
    let fsm = ["--pattern", "fsm"];
    let (lines, ns) = kill_at_then_restart(&url, "fsm-safe", &fsm, "TRANSFORM (2/4)", &fsm);
    assert!(
        lines.iter().any(|l| l == "  状态机状态: TRANSFORM"),
        "{lines:#?}"
    );
    let first_step = lines.iter().find(|l| l.starts_with("⚙️ 状态:"));
    assert_eq!(
        first_step.map(String::as_str),
        Some("⚙️ 状态: TRANSFORM (3/4) | 进度: 70%"),
        "goes on in TRANSFORM:\n{lines:#?}"
    );
    assert_eq!(ns["fsm.state"], "DONE");
    assert_eq!(ns["task.status"], "completed");

    let unsafe_ = ["--pattern", "fsm", "--unsafe"];
    let (lines, _) =
        kill_at_then_restart(&url, "fsm-unsafe", &unsafe_, "TRANSFORM (2/4)", &unsafe_);
    let first_step = lines.iter().find(|l| l.starts_with("⚙️ 状态:"));
    assert_eq!(
        first_step.map(String::as_str),
        Some("⚙️ 状态: INIT (1/1) | 进度: 10%"),
        "unsafe starts from INIT:\n{lines:#?}"
    );
    controller.stop();
}

/// `plumdash verify ARGS --json` (short steps and outage): the report.
fn verify(args: &[&str], junit: &std::path::Path) -> Value {
    let mut cmd = support::plumdash();
    cmd.args([
        "verify", "--step", "80ms", "--cycles", "1", "--outage", "500ms",
    ])
    .args(["--json", "--junit"])
    .arg(junit)
    .args(args);
    let out = support::output_within(cmd, SECS(120)).expect("verify ends");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn status_of(report: &Value, id: u64) -> &str {
    report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .map_or("absent", |i| i["status"].as_str().unwrap())
}

fn violations(report: &Value, id: u64) -> Vec<String> {
    report["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"] == id)
        .flat_map(|i| i["violations"].as_array().unwrap().iter())
        .map(|v| v["message"].as_str().unwrap().to_string())
        .collect()
}

/// verify passes the safe pattern, and fails `--unsafe` on `invariant` with
/// a violation containing `evidence`; the JUnit report names it too.
fn safe_passes_unsafe_fails(pattern: &str, invariant: u64, evidence: &str) {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let safe = verify(&["--pattern", pattern], &junit);
    assert_eq!(safe["ok"], true, "{safe:#}");
    assert_eq!(safe["pattern"], pattern);
    assert_eq!(status_of(&safe, invariant), "held", "{safe:#}");

    let html = dir.path().join("report.html");
    let html_arg = html.to_str().unwrap();
    let unsafe_ = verify(
        &["--pattern", pattern, "--unsafe", "--html", html_arg],
        &junit,
    );
    assert_eq!(unsafe_["ok"], false, "{unsafe_:#}");
    assert_eq!(status_of(&unsafe_, invariant), "violated", "{unsafe_:#}");
    let found = violations(&unsafe_, invariant);
    assert!(
        found.iter().any(|m| m.contains(evidence)),
        "invariant {invariant} names {evidence:?}: {found:#?}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!("invariant {invariant} violated")),
        "{xml}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains(&format!("Recovery pattern: {pattern}")),
        "the page names the pattern"
    );
    // The transaction log and the state machine have a plot of their own.
    assert_eq!(
        page.contains("id=\"pattern-plot\""),
        pattern != "checkpoint",
        "the pattern's plot"
    );
}

#[test]
fn verify_judges_the_transaction_log() {
    safe_passes_unsafe_fails("txlog", 7, "was applied twice: the replay applied it again");
}

#[test]
fn verify_judges_the_state_machine() {
    safe_passes_unsafe_fails("fsm", 8, "restarted run went on in INIT: restored wrongly");
}

#[test]
fn verify_judges_a_checkpoint_saved_before_its_work() {
    safe_passes_unsafe_fails("checkpoint", 2, "was saved before its work");
}

const BARE_KEYS: [&str; 6] = [
    "--key",
    "flag=crashed",
    "--key",
    "progress=progress",
    "--key",
    "checkpoint=checkpoint",
];

#[test]
fn a_worker_with_the_seeds_bare_key_names_is_verified_under_key_mappings() {
    if !support::need(&["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let script = support::fixture("bare-keys.sh");
    let mut args = vec!["--cmd", script.to_str().unwrap()];
    args.extend(BARE_KEYS);
    let report = verify(&args, &junit);
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(
        report["keys"],
        serde_json::json!(["flag=crashed", "progress=progress", "checkpoint=checkpoint"])
    );
    // No counter key: the step rule is not judged, not guessed to hold.
    assert_eq!(status_of(&report, 3), "skipped");

    // Read with kv-demo's names, the same worker has no crash flag at all.
    let blind = verify(&args[..2], &junit);
    assert_eq!(blind["ok"], false, "{blind:#}");
}

#[test]
fn a_progress_kept_as_done_over_total_is_verified_under_key_mappings() {
    if !support::need(&["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    // A worker whose progress is two keys: steps done and steps in all.
    let wrapper = dir.path().join("fraction.sh");
    let script = support::fixture("bare-keys.sh");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nBARE_FRACTION=1 exec {}\n", script.display()),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&wrapper).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&wrapper, perms).unwrap();
    let report = verify(
        &[
            "--cmd",
            wrapper.to_str().unwrap(),
            "--key",
            "flag=crashed",
            "--key",
            "progress=done/total",
        ],
        &junit,
    );
    assert_eq!(report["ok"], true, "{report:#}");
    let resumed = report["cycles"][0]["resumed_from"].as_i64();
    assert!(resumed.is_some_and(|p| p > 0), "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_tells_each_patterns_recovery_on_the_test_backend() {
    for pattern in [Pattern::TxLog, Pattern::Fsm] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = screen::config(dir.path(), 1, Duration::from_millis(200));
        config.pattern = Some(pattern);
        screen::run(
            config,
            screen::options(Keymap::default()),
            (120, 40),
            move |s| async move {
                let shown = match pattern {
                    Pattern::TxLog => "/ logged 3",
                    _ => "INIT › [LOAD] › TRANSFORM",
                };
                s.wait_text(shown, SECS(15)).await;
                s.key(KeyCode::Char('k'));
                s.wait_text("CRASHED", SECS(5)).await;
                let said = match pattern {
                    Pattern::TxLog => "(log replayed from OP_",
                    _ => "(machine restored in ",
                };
                let resumed = s.wait_text(said, SECS(15)).await;
                assert!(resumed.contains("RESUMED from"), "{resumed}");
                if pattern == Pattern::Fsm {
                    assert!(resumed.contains("machine restored in"), "{resumed}");
                }
                s.key(KeyCode::Char('q'));
            },
        )
        .await;
    }
}

/// `--unsafe` checkpoints run ahead of their work: a kill loses the step,
/// and the dashboard says so on the timeline and in the cycle's figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_step_an_unsafe_checkpoint_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = screen::config(dir.path(), 1, Duration::from_millis(300));
    config.pattern = Some(Pattern::Checkpoint);
    config.unsafe_worker = true;
    screen::run(
        config,
        screen::options(Keymap::default()),
        (120, 40),
        |s| async move {
            s.wait_text("30% · step_3", SECS(15)).await;
            s.key(KeyCode::Char('k'));
            let lost = s.wait_text("STEP LOST: checkpoint step_", SECS(15)).await;
            s.wait_text("lost 1", SECS(10)).await;
            assert!(lost.contains("was saved b"), "{lost}");
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_with_bare_key_names_is_shown_under_key_mappings() {
    if !support::need(&["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = screen::config(dir.path(), 1, Duration::from_millis(250));
    config.cmd = Some(support::fixture("bare-keys.sh").display().to_string());
    config.keys =
        KeyMap::with_mappings(&["flag=crashed", "progress=progress", "checkpoint=checkpoint"])
            .unwrap();
    screen::run(
        config,
        screen::options(Keymap::default()),
        (120, 40),
        |s| async move {
            s.wait_text("crashed ARMED", SECS(15)).await;
            let at = s.wait_text("stage-2", SECS(15)).await;
            assert!(at.contains("20% · stage-2"), "{at}");
            s.key(KeyCode::Char('k'));
            s.wait_text("crashed SET", SECS(5)).await;
            s.wait_text("RESUMED from", SECS(15)).await;
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}

#[test]
fn the_real_dashboard_in_tmux_shows_a_machine_restored_and_a_replay() {
    if !support::need(&["tmux"]) {
        return;
    }
    use crate::support::tmux::{type_plumdash, Tmux};
    for (pattern, before, after) in [
        ("fsm", "[TRANSFORM]", "machine restored in"),
        ("txlog", "/ logged 4", "(log replayed from"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let tmux = Tmux::shell(120, 40);
        let args = format!("--pattern {pattern} --step 250ms --restart-delay 300ms --no-mouse");
        type_plumdash(&tmux, "", &args, &dir.path().join("kv.db"));
        tmux.wait_for(before, SECS(20), |s| s.contains(before).then_some(()));
        tmux.send(&["k"]);
        tmux.wait_for("CRASHED", SECS(5), |s| s.contains("CRASHED").then_some(()));
        tmux.wait_for(after, SECS(15), |s| s.contains(after).then_some(()));
        tmux.send(&["q"]);
        tmux.wait_for_prompt();
    }
}

/// `tour --pattern fsm`, in English and Chinese: the walkthrough tells the
/// machine's state saved, the crash, the machine restored in its state, and
/// ends offering the unsafe variant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_machine_tour_walks_to_its_unsafe_variant() {
    use plumdash::text::Lang;
    for lang in [Lang::En, Lang::Zh] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = screen::config(dir.path(), 1, Duration::from_millis(250));
        config.pattern = Some(Pattern::Fsm);
        let mut options = screen::options(Keymap::default());
        options.tour = true;
        options.lang = lang;
        let words = match lang {
            Lang::En => [
                "saved with its data",
                "machine restored in",
                "plumdash tour --pattern fsm --unsafe",
            ],
            _ => ["状态机存放在", "状态机恢复于", "--unsafe"],
        };
        screen::run(config, options, (140, 44), move |s| async move {
            s.wait_text(words[0], SECS(20)).await;
            s.key(KeyCode::Char('k'));
            s.wait_text(words[1], SECS(15)).await;
            s.key(KeyCode::Char('i'));
            s.wait_text("STOPPED", SECS(15)).await;
            s.key(KeyCode::Char('s'));
            s.wait_text(words[2], SECS(15)).await;
            s.key(KeyCode::Char('q'));
        })
        .await;
    }
}
