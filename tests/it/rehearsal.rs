//! A trainer's day, as a person meets it from a shell: the second run starts
//! a fresh demo, a reader that stops early (`| head`) ends plumdash quietly,
//! and a mistaken command line or keys file is one line and nothing started.

use crate::support::Up;
use crate::support::{free_port, plumdash, read_lines, wait_for_progress};
use plumdash::kv::DistributedMemory;
use std::process::Stdio;
use std::time::Duration;

/// `plumdash ARGS | head -1`: one line read, then the pipe closed. The
/// signal or status plumdash ended with, and what it wrote on stderr.
fn piped_into_head(args: &[&str]) -> (Option<i32>, Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::os::unix::process::ExitStatusExt;
    let mut child = plumdash()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone (dropped above): the rest of the output has nowhere to go.
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    (status.signal(), status.code(), err)
}

/// Closed early, a printing command ends by SIGPIPE (141), as a Unix filter
/// does: no panic, nothing on stderr.
#[test]
fn a_reader_that_stops_early_ends_plumdash_quietly() {
    // 80 KB, more than a pipe holds: the write meets the closed pipe.
    let (signal, _, err) = piped_into_head(&["completions", "bash"]);
    assert_eq!(signal, Some(13), "ended by SIGPIPE ({err})");
    assert!(err.is_empty(), "{err}");
    for args in [
        &["completions", "zsh"][..],
        &["man"],
        &["scenario", "example"],
    ] {
        let (signal, code, err) = piped_into_head(args);
        // SIGPIPE, or done before the pipe closed (the output fit in it).
        assert!(
            signal == Some(13) || code == Some(0),
            "{args:?}: signal {signal:?}, status {code:?}"
        );
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// Flags that do not go together are a usage error (2) before anything
/// starts; a duration says how to write one.
#[test]
fn a_mistaken_command_line_is_one_line_and_status_2() {
    let out = plumdash()
        .args(["up", "--nodes", "2", "--controller", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("drop --controller"), "{err}");

    let out = plumdash().args(["up", "--step", "fast"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"fast\" is not a duration"), "{err}");
    assert!(err.contains("e.g. 200ms, 2s"), "{err}");
}

/// A port named with --listen is that port or an error; nothing is started
/// elsewhere behind the user's back.
#[test]
fn a_taken_listen_port_named_by_the_user_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = plumdash()
        .args(["up", "--headless", "--listen", &addr.to_string(), "--db"])
        .arg(dir.path().join("kv.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("binding {addr}")), "{err}");
    assert!(
        !dir.path().join("kv.db").exists() || err.contains("in use"),
        "{err}"
    );
}

/// The dashboard started from a pipe or a service (no terminal): one line
/// and status 2, nothing drawn into stdout, nothing started; `--headless`
/// is named as the way to run there.
#[test]
fn the_dashboard_without_a_terminal_is_one_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let up = plumdash()
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(dir.path().join("kv.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let attach = plumdash()
        .args([
            "attach",
            "--controller",
            &format!("http://127.0.0.1:{port}"),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    for (out, hint) in [(up, "--headless"), (attach, "kv watch")] {
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("needs a terminal"), "{err}");
        assert!(err.contains(hint), "{err}");
        assert!(
            out.stdout.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(!dir.path().join("kv.db").exists(), "nothing started");
}

/// `kill = "q"` would make the quit key a SIGKILL: refused, naming both
/// actions, before anything starts.
#[test]
fn a_keys_file_that_takes_the_quit_key_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, "kill = \"q\"\n").unwrap();
    let port = free_port();
    let out = plumdash()
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--keys"])
        .arg(&keys)
        .arg("--db")
        .arg(dir.path().join("kv.db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a wrong file before anything starts"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("q would be both kill and quit"), "{err}");
    assert!(err.contains("keys.toml:1"), "{err}");
    assert!(!dir.path().join("kv.db").exists(), "nothing started");
}

/// Rehearsal, then the live run: the second run starts at 0 % with the
/// first one's keys archived (and says where); `--keep-state` carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_run_is_a_fresh_demo_and_keep_state_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut rehearsal = Up::builder()
        .dir(dir.path())
        .args(["--step", "100ms"])
        .spawn();
    wait_for_progress("kv-demo", &rehearsal.url(), 40).await;
    assert!(rehearsal.interrupt_and_wait().success());

    let mut live = Up::builder()
        .dir(dir.path())
        .args(["--step", "400ms", "--fresh"])
        .stdout(Stdio::piped())
        .spawn();
    let lines = read_lines(live.child.stdout.take().unwrap());
    let said = lines.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(said.contains("a fresh demo"), "{said}");
    let archive = said
        .split_whitespace()
        .find(|w| w.starts_with("kv-demo@"))
        .unwrap_or_else(|| panic!("no archive named: {said}"))
        .to_string();
    wait_for_progress("kv-demo", &live.url(), 10).await;
    let dm = DistributedMemory::create("kv-demo", &live.url()).unwrap();
    let progress = dm.get_int("task.progress").await.unwrap().unwrap();
    assert!(progress < 40, "the live run started over: {progress}%");
    let old = dm.for_namespace(&archive).unwrap();
    let kept = old.get_int("task.progress").await.unwrap().unwrap();
    assert!(kept >= 40, "the rehearsal's task is in {archive}: {kept}%");
    assert!(live.interrupt_and_wait().success());

    // With --db and no --fresh, the state is kept: it carries on.
    let mut again = Up::builder()
        .dir(dir.path())
        .args(["--step", "100ms", "--keep-state"])
        .stdout(Stdio::piped())
        .spawn();
    let lines = read_lines(again.child.stdout.take().unwrap());
    let first = lines.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(!first.contains("a fresh demo"), "{first}");
    assert!(again.interrupt_and_wait().success());
}
