//! Shared helpers for the integration tests: real servers on free loopback
//! ports, real SQLite files in temporary folders.
#![allow(dead_code)]

pub mod hostile;
pub mod original;
pub mod plum_agent;
pub mod tmux;

use plumdash::controller::{self, ControllerConfig, RunningController};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// An in-process controller on a free port with its own database file.
pub struct TestController {
    pub running: RunningController,
    pub dir: tempfile::TempDir,
}

impl TestController {
    pub async fn start() -> TestController {
        let dir = tempfile::tempdir().expect("tempdir");
        let running = controller::start(ControllerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            db: dir.path().join("kv.db"),
            token: None,
            fallback_to_free_port: false,
            cluster: Default::default(),
        })
        .await
        .expect("controller starts");
        TestController { running, dir }
    }

    pub fn url(&self) -> String {
        self.running.url()
    }
}

/// A port that was free a moment ago (for processes that must bind a fixed one).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `plumdash controller` as a child process (so it can be SIGKILLed).
pub struct ControllerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ControllerProcess {
    pub fn spawn(db: &Path, port: u16) -> ControllerProcess {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_plumdash"))
            .args(["controller", "--listen", &addr.to_string(), "--db"])
            .arg(db)
            .env_remove("PLUM_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn controller");
        wait_for_port(addr, Duration::from_secs(10));
        ControllerProcess { child, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn kill9(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill -9");
        self.child.wait().expect("reap");
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_for_port(addr: SocketAddr, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("kv.db")
}

/// A file of `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The JSON lines of an events file (`--events`) written so far.
pub fn read_events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// SIGINT, as a person's Ctrl-C, then waits up to `timeout` for the exit;
/// `None` if it is still running then.
pub fn interrupt_and_wait(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `items` of `GET /v1/assignments?nodeId=NODE` (empty when unreadable).
pub async fn assignments(base: &str, node: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
        .get(format!("{base}/v1/assignments"))
        .query(&[("nodeId", node)])
        .send()
        .await
        .expect("GET /v1/assignments")
        .json()
        .await
        .expect("assignments as JSON");
    v["items"].as_array().cloned().unwrap_or_default()
}
