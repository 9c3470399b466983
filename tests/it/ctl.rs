//! `plumdash ctl` against a real `plumdash up --headless` child: a kill sent
//! over the control socket produces the same crash → restart → resume cycle
//! as the dashboard's kill key, as the events file records it.

use crate::support::{free_port, interrupt_and_wait, read_events};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(20);

struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        if interrupt_and_wait(&mut self.0, Duration::from_secs(10)).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn ctl(sock: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plumdash"))
        .arg("ctl")
        .arg("--to")
        .arg(sock)
        .args(args)
        .output()
        .expect("running plumdash ctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ctl_kill_gives_the_same_crash_restart_resume_cycle_as_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let events_path = dir.path().join("events.jsonl");
    let port = free_port();
    // 200 ms steps: the task (2 s) must still be running when the kill lands.
    let mut child = Command::new(env!("CARGO_BIN_EXE_plumdash"))
        .args([
            "up",
            "--headless",
            "--step",
            "200ms",
            "--restart-delay",
            "200ms",
        ])
        .arg("--db")
        .arg(dir.path().join("kv.db"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--events")
        .arg(&events_path)
        .arg("--control-socket")
        .arg(&sock)
        .env_remove("PLUM_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning plumdash up");
    let stdout = child.stdout.take().unwrap();
    let up = Up(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
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
        let (code, out, err) = ctl(&sock, &["status", "--json"]);
        assert_eq!(code, 0, "{err}");
        let status: Value = serde_json::from_str(&out).unwrap();
        if status["task"]["progress"].as_i64().unwrap_or(0) >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, out, err) = ctl(&sock, &["kill", "kv-demo-001"]);
    assert_eq!(code, 0, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["instance"]["id"], "kv-demo-001");
    assert_eq!(answer["instance"]["recovery"]["phase"], "CRASHED");

    let deadline = Instant::now() + PATIENCE;
    let evs = loop {
        let evs = read_events(&events_path);
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

    let (code, _, err) = ctl(&sock, &["kill", "no-such-instance"]);
    assert_eq!(code, 1);
    assert!(err.contains("no instance named"), "{err}");
    let (code, out, _) = ctl(&sock, &["list"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["instances"][0]["recovery"]["crashes"], 1);

    drop(up);
    assert!(!sock.exists(), "the socket is removed on exit");
}

#[test]
fn read_only_refuses_actions_but_answers_status() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_plumdash"))
        .args(["up", "--headless", "--read-only", "--step", "200ms"])
        .arg("--db")
        .arg(dir.path().join("kv.db"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--control-socket")
        .arg(&sock)
        .env_remove("PLUM_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning plumdash up");
    let _up = Up(child);
    let deadline = Instant::now() + PATIENCE;
    while !sock.exists() {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, _, err) = ctl(&sock, &["kill", "kv-demo-001"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("read-only"), "{err}");
    let (code, out, err) = ctl(&sock, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kv-demo-001"), "{out}");
}

/// `plumdash up --headless` with its control socket at `sock`, run through
/// `prefix` (e.g. `prlimit --nofile=64:64 --`), with extra environment.
fn start_up(dir: &Path, sock: Option<&Path>, prefix: &[&str], env: &[(&str, &Path)]) -> Up {
    let port = free_port();
    let plumdash = env!("CARGO_BIN_EXE_plumdash");
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(plumdash);
            c
        }
        None => Command::new(plumdash),
    };
    cmd.args(["up", "--headless", "--step", "300ms"])
        .arg("--db")
        .arg(dir.join("kv.db"))
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    if let Some(sock) = sock {
        cmd.arg("--control-socket").arg(sock);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .env_remove("PLUM_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning plumdash up");
    Up(child)
}

/// `ctl` with a bound on how long it may take (a dead accept loop hangs it).
fn ctl_within(sock: &Path, args: &[&str], limit: Duration) -> Option<(i32, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_plumdash"))
        .arg("ctl")
        .arg("--to")
        .arg(sock)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running plumdash ctl");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            use std::io::Read;
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            return Some((status.code().unwrap_or(-1), out));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_control_socket_keeps_accepting_after_running_out_of_file_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let _up = start_up(
        dir.path(),
        Some(&sock),
        &["prlimit", "--nofile=64:64", "--"],
        &[],
    );
    let deadline = Instant::now() + PATIENCE;
    while ctl_within(&sock, &["list"], Duration::from_secs(5)).is_none_or(|(c, _)| c != 0) {
        assert!(Instant::now() < deadline, "no control socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    // More idle connections than the process has descriptors for: accept fails (EMFILE).
    let hogs: Vec<std::os::unix::net::UnixStream> = (0..100)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(&sock).ok())
        .collect();
    assert!(hogs.len() > 64, "only {} connections", hogs.len());
    std::thread::sleep(Duration::from_millis(500));
    drop(hogs);
    let answer = ctl_within(&sock, &["list"], Duration::from_secs(15));
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
    let mut up = start_up(dir.path(), None, &[], &[("XDG_RUNTIME_DIR", &runtime)]);
    let stderr = up.0.stderr.take().unwrap();
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
    let out = Command::new(env!("CARGO_BIN_EXE_plumdash"))
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
    let mut up = start_up(dir.path(), Some(&open.join("c.sock")), &[], &[]);
    let status = up.0.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    up.0.stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("without the sticky bit"), "{err}");
}
