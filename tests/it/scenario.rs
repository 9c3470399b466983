//! Scenario files as a user writes them: typos refused with their line before
//! anything starts, the printed example run for real by `verify` and `up`,
//! flags overriding the file, the shipped scenarios all valid.

use crate::support::{self, Up};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn plumdash(args: &[&str]) -> std::process::Output {
    support::plumdash()
        .args(args)
        .output()
        .expect("running plumdash")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_typo_is_refused_with_file_line_and_key_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "qa.toml",
        "[worker]\nstep = \"50ms\"\n\n[kills]\ncylces = 3\n",
    );
    let bad = bad.to_str().unwrap();
    let db = dir.path().join("kv.db");
    let sock = dir.path().join("ctl.sock");
    for (args, prefix) in [
        (vec!["verify", "--scenario", bad], "plumdash verify: "),
        (
            vec![
                "up",
                "--headless",
                "--db",
                db.to_str().unwrap(),
                "--control-socket",
                sock.to_str().unwrap(),
                "--scenario",
                bad,
            ],
            "plumdash: ",
        ),
        (vec!["tour", "--scenario", bad], "plumdash: "),
        (vec!["scenario", "check", bad], "plumdash: "),
    ] {
        let out = plumdash(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with(&format!(
                "{prefix}scenario {bad}:5:1: key kills.cylces: unknown field `cylces`"
            )),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?} started something");
    }
    assert!(!db.exists(), "the controller's database was created");
    assert!(!sock.exists(), "the control socket was opened");
}

#[test]
fn the_example_runs_in_verify_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let example = plumdash(&["scenario", "example"]);
    assert!(example.status.success());
    let text = String::from_utf8(example.stdout).unwrap();
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() > 10,
        "not commented"
    );
    let path = write(dir.path(), "example.toml", &text);
    let checked = plumdash(&["scenario", "check", path.to_str().unwrap()]);
    assert!(checked.status.success());
    // The file's 200 ms step, made 50 ms by the flag; the rest from the file.
    let out = plumdash(&[
        "verify",
        "--scenario",
        path.to_str().unwrap(),
        "--step",
        "50ms",
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["step_ms"], 50);
    assert_eq!(report["cycles"].as_array().unwrap().len(), 2);
    assert_eq!(report["kill_points"], serde_json::json!([50, 50]));
    assert_eq!(report["outage_ms"], 1000);
    assert_eq!(report["app"], "kv-demo");
}

#[test]
fn up_reads_the_worker_settings_and_a_flag_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "two.toml",
        "[worker]\ncmd = \"sleep 600\"\ninstances = 2\napp = \"scenario-app\"\n",
    );
    let run = |extra: &[&str]| -> String {
        let scenario = ["--scenario", path.to_str().unwrap()];
        // The bundled kv-demo when no scenario file is given.
        let scenario: &[&str] = if extra.contains(&"--no-scenario") {
            &[]
        } else {
            &scenario
        };
        let extra: Vec<&str> = extra
            .iter()
            .copied()
            .filter(|a| *a != "--no-scenario")
            .collect();
        let mut up = Up::builder()
            .args(scenario)
            .args(&extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut lines = BufReader::new(up.child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut banner = String::new();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("supervising") {
                banner = line;
                break;
            }
            assert!(Instant::now() < deadline, "no banner");
        }
        // Dropped: SIGINT, and its end.
        drop(up);
        banner
    };
    let banner = run(&[]);
    assert!(banner.contains("supervising 2 ×"), "{banner}");
    // Not the bundled kv-demo: both run, none stands by.
    assert!(!banner.contains("standing by"), "{banner}");
    assert!(banner.contains("(app scenario-app)"), "{banner}");
    let banner = run(&["--instances", "1", "--app", "flag-app"]);
    assert!(banner.contains("supervising 1 ×"), "{banner}");
    assert!(banner.contains("(app flag-app)"), "{banner}"); // The bundled kv-demo's on one namespace: one runs, the other stands by.
    let banner = run(&["--no-scenario", "--instances", "2", "--app", "standby-app"]);
    assert!(banner.contains("(1 active, 1 standing by)"), "{banner}");
}

#[test]
fn many_kv_demos_on_one_namespace_under_nodes_and_a_node_kill_without_nodes_are_refused_in_one_line(
) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    let refused = |args: &[&str]| {
        let (command, args) = match args {
            ["tour", rest @ ..] => ("tour", rest),
            _ => ("up", args),
        };
        let out = support::plumdash()
            .arg(command)
            .args(args)
            .arg("--db")
            .arg(&db)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} ran");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        err
    };
    // Alone, N of them on one namespace are one active and N-1 standby; with
    // nodes the standby is a node.
    let err = refused(&["--headless", "--instances", "3", "--nodes", "2"]);
    assert!(
        err.contains("3 kv-demo workers writing one namespace (kv-demo)")
            && err.contains("the standby is the other node")
            && err.contains("--namespace-by instance"),
        "{err}"
    );
    let err = refused(&["--headless", "--namespace-by", "instance", "--nodes", "2"]);
    assert!(err.contains("its own namespace would start empty"), "{err}");
    // `--namespace-by instance` is no longer capped below `--instances`' own
    // range (1,000): its namespaces share one change stream.
    let err = refused(&["tour", "--namespace-by", "instance"]);
    assert!(err.contains("the tour walks through one task"), "{err}");
    let err = refused(&["--kill-at", "40", "--kill-node"]);
    assert!(err.contains("add --nodes 2"), "{err}");
    let err = refused(&[
        "--failover",
        "--kill-at",
        "40",
        "--kill-node",
        "--kill-every-cycle",
    ]);
    assert!(
        err.contains("a killed node comes back only when asked"),
        "{err}"
    );
    assert!(!db.exists(), "nothing started");
}

#[test]
fn the_shipped_scenarios_are_valid() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = plumdash(&["scenario", "check", path.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(
        n >= 3,
        "expected the demo, the QA soak and the failover scenarios"
    );
}
