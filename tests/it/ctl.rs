//! `plumdash ctl` against a real `plumdash up --headless` child: a kill sent
//! over the control socket produces the same crash → restart → resume cycle
//! as the dashboard's kill key, as the events file records it.

use crate::support::{self, output_within, wait_until, Up, PATIENCE};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn ctl_kill_gives_the_same_crash_restart_resume_cycle_as_the_key() {
    // 200 ms steps: the task (2 s) must still be running when the kill lands.
    let mut up = Up::builder()
        .args(["--step", "200ms", "--restart-delay", "200ms"])
        .stdout(Stdio::piped())
        .spawn();
    let sock = up.socket.clone();
    let rx = support::read_lines(up.child.stdout.take().unwrap());
    let line = loop {
        let line = rx.recv_timeout(PATIENCE).expect("no control socket line");
        if line.contains("control socket") {
            break line;
        }
    };
    assert!(line.ends_with(&sock.display().to_string()), "{line}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Wait until a checkpoint or two are saved.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (code, out, err) = up.ctl(&["status", "--json"]);
        assert_eq!(code, 0, "{err}");
        let status: Value = serde_json::from_str(&out).unwrap();
        if status["task"]["progress"].as_i64().unwrap_or(0) >= 20 {
            // kv-demo's default pattern, learnt from the keys it writes.
            assert_eq!(status["task"]["pattern"], "checkpoint", "{status}");
            assert_eq!(status["task"]["pattern_told"], false, "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, out, err) = up.ctl(&["kill", "kv-demo-001"]);
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["instance"]["id"], "kv-demo-001");
    assert_eq!(answer["instance"]["recovery"]["phase"], "CRASHED");

    let deadline = Instant::now() + PATIENCE;
    let evs = loop {
        let evs = up.events();
        if evs.iter().any(|e| e["kind"] == "resumed") {
            break evs;
        }
        assert!(Instant::now() < deadline, "no resume: {evs:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let kinds: Vec<&str> = evs.iter().filter_map(|e| e["kind"].as_str()).collect();
    let crashed = kinds.iter().position(|k| *k == "crashed").expect("crashed");
    let started = crashed
        + kinds[crashed..]
            .iter()
            .position(|k| *k == "started")
            .expect("started after the crash");
    let resumed = started
        + kinds[started..]
            .iter()
            .position(|k| *k == "resumed")
            .expect("resumed after the restart");
    assert!(crashed < started && started < resumed, "{kinds:?}");
    assert_eq!(evs[crashed]["signal"], "SIGKILL");
    assert_eq!(evs[crashed]["crash_flag"], true);
    let at_kill = evs[crashed]["progress"].as_i64().unwrap();
    assert!(at_kill >= 20);
    assert_eq!(evs[resumed]["from"].as_i64(), Some(at_kill));
    assert_eq!(evs[resumed]["steps_lost"], 0);

    let (code, _, err) = up.ctl(&["kill", "no-such-instance"]);
    assert_eq!(code, 1);
    assert!(err.contains("no instance named"), "{err}");
    let (code, out, _) = up.ctl(&["list"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["instances"][0]["recovery"]["crashes"], 1);

    drop(up);
    assert!(!sock.exists(), "the socket is removed on exit");
}

#[test]
fn read_only_refuses_actions_but_answers_status() {
    let up = Up::builder()
        .args(["--read-only", "--step", "200ms"])
        .spawn();
    wait_until("the control socket", PATIENCE, || up.socket.exists());
    let (code, _, err) = up.ctl(&["kill", "kv-demo-001"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("read-only"), "{err}");
    let (code, out, err) = up.ctl(&["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kv-demo-001"), "{out}");
}

/// `ctl ARGS…` with a bound on how long it may take (a dead accept loop hangs
/// it): its exit code and stdout, `None` if it was still running.
fn ctl_within(up: &Up, args: &[&str], limit: Duration) -> Option<(i32, String)> {
    let out = output_within(up.ctl_command(args), limit)?;
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

#[test]
fn the_control_socket_keeps_accepting_after_running_out_of_file_descriptors() {
    if !support::need(&["prlimit"]) {
        return;
    }
    let up = Up::builder()
        .under(&["prlimit", "--nofile=64:64", "--"])
        .args(["--step", "300ms"])
        .stderr(Stdio::piped())
        .spawn();
    let sock = &up.socket;
    let deadline = Instant::now() + PATIENCE;
    while ctl_within(&up, &["list"], Duration::from_secs(5)).is_none_or(|(c, _)| c != 0) {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    // More idle connections than the process has descriptors for: accept fails (EMFILE).
    let hogs: Vec<std::os::unix::net::UnixStream> = (0..100)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(sock).ok())
        .collect();
    assert!(hogs.len() > 64, "only {} connections", hogs.len());
    std::thread::sleep(Duration::from_millis(500));
    drop(hogs);
    let answer = ctl_within(&up, &["list"], Duration::from_secs(15));
    let (code, out) = answer.expect("the control socket stopped answering after EMFILE");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("kv-demo-001"), "{out}");
}

#[test]
fn a_socket_folder_others_can_write_is_refused_by_up_and_ctl() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    let shared = runtime.join("plumdash");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let sock = shared.join("kv-demo.sock");

    // The default socket is skipped with the reason; nothing is served there.
    let mut up = Up::builder()
        .dir(dir.path())
        .without_control_socket()
        .env("XDG_RUNTIME_DIR", &runtime)
        .args(["--step", "300ms"])
        .stderr(Stdio::piped())
        .spawn();
    let stderr = up.child.stderr.take().unwrap();
    let line = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("control socket"))
        .expect("a line about the control socket");
    assert!(
        line.contains("refusing the control socket folder")
            && line.contains("writable by others (mode 0777"),
        "{line}"
    );
    assert!(!sock.exists());

    // A client refuses a socket in such a folder, and one owned by someone else.
    let out = support::plumdash()
        .args(["ctl", "list"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refusing the control socket folder"), "{err}");
    drop(up);

    // A named socket in a folder writable by everyone (no sticky bit) is an error.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = support::plumdash()
        .args(["up", "--headless", "--step", "300ms", "--listen"])
        .arg(format!("127.0.0.1:{}", support::free_port()))
        .arg("--db")
        .arg(dir.path().join("kv.db"))
        .arg("--control-socket")
        .arg(open.join("c.sock"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("without the sticky bit"), "{err}");
}
