//! Shared helpers for the integration tests: the binaries run with an
//! environment of their own, real servers on free loopback ports, real SQLite
//! files in temporary folders, waits with deadlines, and the programs a test
//! needs (`need`).

pub mod hostile;
pub mod original;
pub mod plum_agent;
pub mod process;
pub mod screen;
pub mod tmux;
mod tools;
mod up;

pub use tools::{need, need_hosts};
pub use up::Up;

use plumdash::controller::{self, ControllerConfig, RunningController};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Once;
use std::time::{Duration, Instant};

/// The binaries cargo built for this test run.
pub const PLUMDASH: &str = env!("CARGO_BIN_EXE_plumdash");
pub const KV_DEMO: &str = env!("CARGO_BIN_EXE_kv-demo");

/// Long enough for a loaded 2-core machine; a passing run never waits it out.
pub const PATIENCE: Duration = Duration::from_secs(20);

// ------------------------------------------------------------ the binaries

/// Variables of the shell that runs the tests that would change what the
/// binaries do (a token, a controller, an app, a step, a language): no test
/// inherits them; one that wants one sets it.
const NOT_INHERITED: &[&str] = &[
    "PLUM_TOKEN",
    "CONTROLLER_BASE",
    "PLUM_APP_NAME",
    "PLUM_INSTANCE_ID",
    "AGENT_NODE_ID",
    "AGENT_IP",
    "AGENT_DATA_DIR",
    "KV_DEMO_NAMESPACE",
    "KV_DEMO_NAMESPACE_BY",
    "KV_DEMO_STEP_MS",
    "KV_DEMO_GIVE_UP",
    "NO_COLOR",
    "COLORFGBG",
    "COLORTERM",
    "LC_ALL",
    "LC_MESSAGES",
];

/// The environment every run of a binary gets: English, and its XDG folders
/// (state, config, runtime: the default database, log, key map and control
/// socket) in a fresh folder of its own, never the person's and never another
/// test's. As `(name, value)` for `Command::env` and `env NAME=VALUE`.
fn own_environment() -> Vec<(&'static str, String)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    at_exit();
    let home = scratch_root().join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
    let at = |sub: &str| home.join(sub).display().to_string();
    vec![
        ("LANG", "C.UTF-8".to_string()),
        ("XDG_CONFIG_HOME", at("config")),
        ("XDG_STATE_HOME", at("state")),
        ("XDG_RUNTIME_DIR", at("run")),
    ]
}

/// Gives `cmd` the environment of `own_environment`, without `NOT_INHERITED`.
fn own_env(cmd: &mut Command) -> &mut Command {
    for var in NOT_INHERITED {
        cmd.env_remove(var);
    }
    cmd.envs(own_environment())
}

/// The same as arguments of `env` (for a shell started in tmux).
pub fn own_env_args() -> Vec<String> {
    let mut args = vec!["env".to_string()];
    for var in NOT_INHERITED {
        args.extend(["-u".to_string(), var.to_string()]);
    }
    args.extend(
        own_environment()
            .into_iter()
            .map(|(name, value)| format!("{name}={value}")),
    );
    args
}

/// Where the folders of `own_environment` are made; removed at exit.
fn scratch_root() -> PathBuf {
    std::env::temp_dir().join(format!("plumdash-it-{}", std::process::id()))
}

/// Registers, once, what the test binary does as it exits (libtest ends with
/// `process::exit`, which runs `atexit` handlers): the summary of skipped
/// tests, and the removal of the scratch folders.
fn at_exit() {
    extern "C" fn on_exit() {
        tools::print_summary();
        let _ = std::fs::remove_dir_all(scratch_root());
    }
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: `on_exit` is a plain function that lives as long as the process.
        unsafe { nix::libc::atexit(on_exit) };
    });
}

/// `plumdash` with the environment of its own (see `own_environment`).
pub fn plumdash() -> Command {
    plumdash_under(&[])
}

/// `plumdash` run through `wrapper` (e.g. `["prlimit", "--nofile=64:64",
/// "--"]`: its last word is followed by plumdash's path), with the same
/// environment.
pub fn plumdash_under(wrapper: &[&str]) -> Command {
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(PLUMDASH);
            cmd
        }
        None => Command::new(PLUMDASH),
    };
    own_env(&mut cmd);
    cmd
}

/// The bundled `kv-demo` writing to `controller` as `app`, a step every
/// `step_ms` milliseconds, with the environment of its own.
pub fn kv_demo(controller: &str, app: &str, step_ms: &str) -> Command {
    let mut cmd = Command::new(KV_DEMO);
    own_env(&mut cmd)
        .env("CONTROLLER_BASE", controller)
        .env("PLUM_APP_NAME", app)
        .env("KV_DEMO_STEP_MS", step_ms);
    cmd
}

/// A program of `tests/fixtures/` to run, with the environment of its own.
pub fn fixture_command(name: &str) -> Command {
    let mut cmd = Command::new(fixture(name));
    own_env(&mut cmd);
    cmd
}

/// A file of `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs `cmd` (stdin empty) to its end within `limit`: its status and output,
/// or `None` if it was still running (it is then killed).
pub fn output_within(mut cmd: Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Read while it runs, so a full pipe never holds it up.
    let stdout = read_to_end(child.stdout.take().expect("piped stdout"));
    let stderr = read_to_end(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("polling the child") {
            return Some(Output {
                status,
                stdout: stdout.join().expect("reading stdout"),
                stderr: stderr.join().expect("reading stderr"),
            });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// All of `from`, read on a thread of its own.
fn read_to_end(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        bytes
    })
}

/// Forwards each line of `from` (a child's stdout) to a channel, from a thread.
pub fn read_lines(from: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
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

// ------------------------------------------------------------ waiting

/// Polls `done` until it is true; panics naming `what` after `timeout`.
/// Blocks the thread: for sync tests and multi-threaded runtimes.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `wait_until` that sleeps on the tokio runtime, for a test whose runtime
/// (current-thread) must keep running the tasks being waited for.
pub async fn wait_until_async(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (`PATIENCE` at most) until namespace `ns` at `url` has checkpointed
/// at least `pct`% (`task.progress`).
pub async fn wait_for_progress(ns: &str, url: &str, pct: i64) {
    let dm = plumdash::kv::DistributedMemory::create(ns, url).expect("a client");
    let deadline = Instant::now() + PATIENCE;
    while dm
        .get_int("task.progress")
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
        < pct
    {
        assert!(Instant::now() < deadline, "{ns} never reached {pct}%");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ------------------------------------------------------------ controllers

/// `attach` to the app `absent` at `url`, where only the namespace `present`
/// exists: the session starts and waits, naming the namespaces there are.
pub async fn attach_waits_for_the_missing_namespace(url: String) {
    use plumdash::session::{Session, SessionConfig, WorkerExit};
    let dm = plumdash::kv::DistributedMemory::create("present", &url).expect("a client");
    dm.put("k", "v").await.expect("a write");
    let session = Session::attach(SessionConfig {
        remote_controller: Some(url),
        app: "absent".into(),
        instances: 0,
        ..SessionConfig::default()
    })
    .await
    .expect("waits instead of failing");
    assert_eq!(session.namespace_wait(), Some(&["present".to_string()][..]));
    session
        .shutdown(WorkerExit::LeaveRunning)
        .await
        .expect("shutdown");
}

/// A controller's settings: a free loopback port, no token, this file.
pub fn loopback_config(db: std::path::PathBuf) -> ControllerConfig {
    ControllerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        db,
        token: None,
        fallback_to_free_port: false,
        cluster: Default::default(),
        max_upload: plumdash::controller::MAX_UPLOAD_BYTES,
    }
}

/// An in-process controller on a free port with its own database file.
pub struct TestController {
    pub running: RunningController,
    pub dir: tempfile::TempDir,
}

impl TestController {
    pub async fn start() -> TestController {
        let dir = tempfile::tempdir().expect("tempdir");
        let running = controller::start(loopback_config(dir.path().join("kv.db")))
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

/// `plumdash controller` as a child process (so it can be SIGKILLed, stopped
/// and started again on the same port and database).
pub struct ControllerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ControllerProcess {
    /// On `127.0.0.1:port` with the database `db`; returns once it listens.
    pub fn spawn(db: &Path, port: u16) -> ControllerProcess {
        let listen = format!("127.0.0.1:{port}");
        ControllerProcess::start(ControllerProcess::command(&listen, db), port)
    }

    /// `plumdash controller --listen LISTEN --db DB`, stdout to /dev/null.
    pub fn command(listen: &str, db: &Path) -> Command {
        let mut cmd = plumdash();
        cmd.args(["controller", "--listen", listen, "--db"])
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        cmd
    }

    /// Spawns `cmd` (a controller listening on `port`) and waits until
    /// 127.0.0.1:`port` accepts.
    pub fn start(mut cmd: Command, port: u16) -> ControllerProcess {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = cmd.spawn().expect("spawn controller");
        wait_for_port(addr, PATIENCE);
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

    /// SIGTERM, and the exit.
    pub fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        self.child.wait().expect("reaping the controller");
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

/// The JSON lines of an events file (`--events`) written so far.
pub fn read_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

// ------------------------------------------------------------ HTTP

/// A client that never goes through a proxy (the tests talk to loopback).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// One request with an optional JSON body: the status and the body's text.
pub async fn send(method: &str, url: &str, body: Option<String>) -> (u16, String) {
    let mut req = http().request(method.parse().unwrap(), url);
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The `items` of `GET /v1/assignments?nodeId=NODE` (empty when unreadable).
pub async fn assignments(base: &str, node: &str) -> Vec<Value> {
    let v: Value = http()
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

/// The keys of a JSON object, sorted.
pub fn obj_keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    keys
}

/// A heartbeat of `node`, as the original agent sends it (`{nodeId, ip}`).
pub async fn beat(base: &str, node: &str) {
    let (s, body) = send(
        "POST",
        &format!("{base}/v1/nodes/heartbeat"),
        Some(json!({"nodeId": node, "ip": "127.0.0.1"}).to_string()),
    )
    .await;
    assert_eq!(s, 200, "{body}");
}

/// The `health` of `node` in `GET /v1/nodes` (empty when it is not listed).
pub async fn node_health(base: &str, node: &str) -> String {
    let (s, body) = send("GET", &format!("{base}/v1/nodes"), None).await;
    assert_eq!(s, 200, "{body}");
    let nodes: Vec<Value> = serde_json::from_str(&body).expect("nodes as JSON");
    nodes
        .iter()
        .find(|n| n["nodeId"] == node)
        .map(|n| n["health"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// Creates `deployment` (`POST /v1/deployments`) and starts it; returns the
/// creation's answer (`deploymentId`, `instances`).
pub async fn deploy(base: &str, deployment: Value) -> Value {
    let created: Value = http()
        .post(format!("{base}/v1/deployments"))
        .json(&deployment)
        .send()
        .await
        .expect("POST /v1/deployments")
        .json()
        .await
        .expect("the deployment as JSON");
    let id = created["deploymentId"].as_str().expect("a deploymentId");
    let status = http()
        .post(format!("{base}/v1/deployments/{id}?action=start"))
        .send()
        .await
        .expect("starting the deployment")
        .status();
    assert_eq!(status, 204, "starting {id}");
    created
}
