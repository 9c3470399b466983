//! A control API for a running `plumdash up` (dashboard or headless), so
//! scripts can do what the keys do: `plumdash ctl list|status|kill|signal|
//! stop|start|restart`.
//!
//! Transport: a Unix socket (mode 0600, in a 0700 directory), one JSON request
//! line in, one JSON response line out, then the connection closes.
//!
//! ```text
//! → {"cmd":"kill","instance":"kv-demo-001"}
//! ← {"ok":true,"instance":{"id":"kv-demo-001",…,"recovery":{"phase":"CRASHED",…}}}
//! ```
//!
//! The recovery state lives in the `up` loop's board; its driver
//! (`crate::driver`) publishes a [`StatusSnapshot`] through a
//! [`StatusPublisher`] when a fact changed it, and the server reads the latest one.

mod socket_dir;

use crate::recovery::{Board, InstanceStatus, Tracker, TsMs};
use crate::session::{NodeOp, SessionHandle};
use crate::supervisor::{parse_signal, InstanceAction, InstanceSnapshot};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;
/// How long a command waits for the recovery state to reflect it.
const SETTLE: Duration = Duration::from_millis(1500);

/// One instance as the dashboard shows it ([`InstanceStatus`]: the one view).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RecoveryStatus {
    /// `RUNNING`, `CRASHED`, `RECOVERING`, `RESUMED from 50%`, …
    pub phase: String,
    /// The phase as the instances table says it, with what it alone does not say
    /// (`STOPPED (SIGSTOP)`, `RUNNING · attached at 20%`).
    pub state: String,
    pub crashes: u32,
    pub runs: u32,
    /// Its own namespace's task (`--namespace-by instance`); else the one
    /// shared task is the snapshot's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskStatus>,
}

/// The namespace's task, as the tracker sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskStatus {
    pub progress: Option<i64>,
    /// Why the progress is not known though its key is there (`"fifty"`, a
    /// malformed entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_unreadable: Option<String>,
    pub counter: Option<i64>,
    pub checkpoint: Option<String>,
    pub crash_flag: bool,
    /// `set`, `cleared`, or `never_seen` (a worker that does not use the KV).
    pub flag: crate::recovery::CrashFlag,
    pub torn: bool,
    pub completions: u32,
    pub cycles: usize,
    /// The recovery pattern (`checkpoint`, `txlog`, `fsm`): as told with
    /// `--pattern`, else as the keys show it; `null` while neither has.
    pub pattern: Option<crate::recovery::Pattern>,
    /// Whether `pattern` was told (`--pattern`) rather than learnt from the keys.
    pub pattern_told: bool,
    /// Why the controller cannot be read now, while it cannot: what the task
    /// shows is then as last read (or never read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller_error: Option<String>,
}

/// One node of the cluster, as the Nodes pane shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    pub name: String,
    /// `HEALTHY` / `UNHEALTHY`, as the controller judges it.
    pub health: &'static str,
    /// Frozen here (SIGSTOP) and not thawed since.
    pub frozen: bool,
    /// The last thing done to it here (`node_killed`, `node_frozen`, `node_thawed`).
    pub last_action: Option<&'static str>,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_s: Option<i64>,
    pub instances: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusSnapshot {
    pub instances: BTreeMap<String, RecoveryStatus>,
    /// The app's shared task; `None` when each instance has its own.
    pub task: Option<TaskStatus>,
    /// Empty when the controller serves no cluster API (or has no nodes).
    pub nodes: Vec<NodeStatus>,
}

impl StatusSnapshot {
    /// `instances`: the one merged view the dashboard's rows read too
    /// (`Driver::instances`); `board` adds the runs and the tasks.
    pub fn of(board: &Board, instances: &[InstanceStatus], now: TsMs) -> StatusSnapshot {
        let per_instance = board.per_instance();
        StatusSnapshot {
            instances: instances
                .iter()
                .map(|status| {
                    let tracker = board.tracker_of(&status.id);
                    let runs = tracker.instance(&status.id).map_or(0, |i| i.runs);
                    (
                        status.id.clone(),
                        RecoveryStatus {
                            phase: status.phase.to_string(),
                            state: status.state_text(),
                            crashes: status.crashes,
                            runs,
                            task: per_instance.then(|| TaskStatus::of(tracker)),
                        },
                    )
                })
                .collect(),
            task: (!per_instance).then(|| TaskStatus::of(board.first())),
            nodes: board
                .first()
                .nodes()
                .nodes()
                .map(|n| NodeStatus {
                    name: n.id.clone(),
                    health: n.health.word(),
                    frozen: n.is_frozen(),
                    last_action: n.action.map(|(a, _)| a.json_kind()),
                    heartbeat_age_s: n.heartbeat_age_secs(now),
                    instances: n.instances.clone(),
                })
                .collect(),
        }
    }
}

impl TaskStatus {
    pub fn of(tracker: &Tracker) -> TaskStatus {
        let task = tracker.task();
        TaskStatus {
            progress: task.progress,
            progress_unreadable: task.progress_unreadable().map(str::to_string),
            counter: task.counter,
            checkpoint: task.checkpoint.clone(),
            crash_flag: task.crash_flag,
            flag: tracker.crash_flag(),
            torn: tracker.torn().is_some(),
            completions: tracker.completions(),
            cycles: tracker.cycles().len(),
            pattern: tracker.pattern(),
            pattern_told: tracker.pattern_told().is_some(),
            controller_error: tracker.feed_error().map(str::to_string),
        }
    }

    /// `progress 40%, checkpoint step_4, crash flag set`, as `ctl status` prints
    /// it (`progress unknown` before one is seen, `progress unreadable` when
    /// its key does not read).
    pub fn describe(t: &Value) -> String {
        let progress = match (t["progress"].as_i64(), t["progress_unreadable"].as_str()) {
            (Some(p), _) => format!("{p}%"),
            (None, Some(_)) => "unreadable".into(),
            (None, None) => "unknown".into(),
        };
        let mut text = format!(
            "progress {progress}, checkpoint {}, crash flag {}",
            t["checkpoint"]
                .as_str()
                .map_or("—".into(), |c| crate::text_safety::escape_controls(c)
                    .into_owned()),
            match t["flag"].as_str() {
                Some("set") => "set",
                Some("never_seen") => "never seen",
                Some("unknown") => "unknown (the namespace not read yet)",
                Some("removed") => "removed by another client",
                _ => "clear",
            }
        );
        let pattern = t["pattern"]
            .as_str()
            .map(crate::text_safety::escape_controls);
        match (pattern, t["pattern_told"].as_bool()) {
            (Some(pattern), Some(true)) => text.push_str(&format!(", pattern {pattern} (told)")),
            (Some(pattern), _) => text.push_str(&format!(", pattern {pattern} (from its keys)")),
            (None, _) => text.push_str(", pattern not known yet"),
        }
        if let Some(error) = t["controller_error"].as_str() {
            text.push_str(&format!(
                "; controller unreachable: {}",
                crate::text_safety::escape_controls(error)
            ));
        }
        text
    }
}

/// The `up` loop's side: publish after applying facts.
#[derive(Debug, Clone)]
pub struct StatusPublisher(Arc<watch::Sender<StatusSnapshot>>);

impl StatusPublisher {
    pub fn publish(&self, board: &Board, instances: &[InstanceStatus], now: TsMs) {
        let next = StatusSnapshot::of(board, instances, now);
        self.0.send_if_modified(|current| {
            let changed = *current != next;
            if changed {
                *current = next;
            }
            changed
        });
    }
}

/// A publisher and the receiver to hand to [`serve`].
pub fn status_channel() -> (StatusPublisher, watch::Receiver<StatusSnapshot>) {
    let (tx, rx) = watch::channel(StatusSnapshot::default());
    (StatusPublisher(Arc::new(tx)), rx)
}

/// `$XDG_RUNTIME_DIR/plumdash/<app>.sock`, else `<tmp>/plumdash-$USER/<app>.sock`.
pub fn default_socket_path(app: &str) -> PathBuf {
    crate::paths::socket_dir().join(format!("{app}.sock"))
}

/// How strictly the folder of `path` is checked: ours alone if it is the default one.
fn folder_of(path: &Path) -> Option<(&Path, socket_dir::Folder)> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let kind = if dir == crate::paths::socket_dir() {
        socket_dir::Folder::Default
    } else {
        socket_dir::Folder::Named
    };
    Some((dir, kind))
}

/// A control server; dropping it stops serving and removes the socket file.
pub struct ControlServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl ControlServer {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on `path` (refusing if another plumdash answers there; a stale
/// socket file is replaced) and serves requests until dropped.
pub async fn serve(
    session: SessionHandle,
    status: watch::Receiver<StatusSnapshot>,
    path: &Path,
    read_only: bool,
) -> Result<ControlServer> {
    if let Some((dir, kind)) = folder_of(path) {
        socket_dir::prepare(dir, kind)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            bail!(
                "another plumdash is serving {} (use --control-socket for a second one)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let session = session.clone();
                    let status = status.clone();
                    tokio::spawn(async move {
                        let _ = handle(stream, session, status, read_only).await;
                    });
                }
                // Out of file descriptors (or a connection that died before
                // we took it): the listener is fine, so wait and go on. The
                // pause keeps a still-full fd table from spinning the loop.
                Err(_) => tokio::time::sleep(ACCEPT_RETRY).await,
            }
        }
    });
    Ok(ControlServer {
        path: path.to_path_buf(),
        task,
    })
}

/// A request line, and the `plumdash ctl` subcommand that sends it (clap parses
/// the command line straight into the request).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, clap::Subcommand)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    /// Instances with their state (JSON).
    List,
    /// Instances, recovery phases and the task.
    Status {
        /// JSON instead of lines (how `ctl` prints the answer; not sent).
        #[arg(long)]
        #[serde(skip)]
        json: bool,
    },
    /// SIGKILL: the crash → restart → resume cycle.
    Kill { instance: String },
    /// Send a signal (SIGTERM, INT, 9, …).
    Signal { signal: String, instance: String },
    /// Stop gracefully (SIGTERM, grace, SIGKILL); not restarted.
    Stop { instance: String },
    /// Start a stopped instance (also clears FAILED).
    Start { instance: String },
    /// Stop then start again (counted as a manual restart).
    Restart { instance: String },
    /// The cluster's nodes: health, agent pid, heartbeat age, instances.
    Nodes {
        /// JSON instead of lines (how `ctl` prints the answer; not sent).
        #[arg(long)]
        #[serde(skip)]
        json: bool,
    },
    /// SIGKILL a node's agent and everything it started (`up --nodes`; a node
    /// elsewhere through its plumdash agent, watching remote instances).
    KillNode { node: String },
    /// SIGSTOP a node's agent and workers (elsewhere: its workers, its agent
    /// stops beating); the same again thaws it (SIGCONT).
    FreezeNode { node: String },
    /// Start a local node killed here again: its agent beats and takes work.
    ReviveNode { node: String },
    /// Cut a node's link both ways (`up --nodes N --hosts`: each node a test
    /// host); the same again heals it.
    PartitionNode { node: String },
}

async fn handle(
    stream: UnixStream,
    session: SessionHandle,
    status: watch::Receiver<StatusSnapshot>,
    read_only: bool,
) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let response = match serde_json::from_str::<Request>(line.trim()) {
        // --read-only means no signals at all, from the keyboard or from scripts.
        Ok(request)
            if read_only
                && !matches!(
                    request,
                    Request::List | Request::Status { .. } | Request::Nodes { .. }
                ) =>
        {
            json!({"ok": false, "error": "this plumdash runs --read-only: no signals or actions"})
        }
        Ok(request) => answer(request, &session, status).await,
        Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
    };
    write.write_all(format!("{response}\n").as_bytes()).await?;
    write.shutdown().await?;
    Ok(())
}

/// The instance snapshot with its recovery state.
fn describe(snapshot: &InstanceSnapshot, status: &StatusSnapshot) -> Value {
    let mut v = serde_json::to_value(snapshot).unwrap_or_else(|_| json!({}));
    let recovery = status
        .instances
        .get(&snapshot.id)
        .cloned()
        .unwrap_or_default();
    // How the last run ended as judged with its task, as the row says it
    // (the snapshot is read now; the judgement is of the facts seen).
    let stopped = recovery.phase == crate::recovery::Phase::Stopped.to_string();
    let judged = crate::recovery::exit_as_judged(snapshot.last_exit, stopped);
    v["last_exit"] = serde_json::to_value(judged).unwrap_or(Value::Null);
    v["recovery"] = serde_json::to_value(recovery).unwrap_or(Value::Null);
    v
}

fn describe_all(session: &SessionHandle, status: &StatusSnapshot) -> Value {
    Value::Array(
        session
            .instances()
            .iter()
            .map(|s| describe(s, status))
            .collect(),
    )
}

async fn answer(
    request: Request,
    session: &SessionHandle,
    mut status: watch::Receiver<StatusSnapshot>,
) -> Value {
    let (instance, action) = match &request {
        Request::List => {
            let st = status.borrow().clone();
            return json!({"ok": true, "instances": describe_all(session, &st)});
        }
        Request::Status { .. } => {
            let st = status.borrow().clone();
            return json!({"ok": true, "instances": describe_all(session, &st), "task": st.task});
        }
        Request::Nodes { .. } => {
            let st = status.borrow().clone();
            let agents = session.local_agents();
            let nodes: Vec<Value> = st
                .nodes
                .iter()
                .map(|n| {
                    let mut v = serde_json::to_value(n).unwrap_or_else(|_| json!({}));
                    v["agent_pid"] =
                        json!(agents.iter().find(|(a, _)| *a == n.name).map(|(_, p)| p));
                    v
                })
                .collect();
            return json!({"ok": true, "nodes": nodes});
        }
        Request::KillNode { node } => {
            return node_answer(session, node, NodeOp::Kill, status).await
        }
        Request::FreezeNode { node } => {
            return node_answer(session, node, NodeOp::ToggleFreeze, status).await
        }
        Request::ReviveNode { node } => {
            return node_answer(session, node, NodeOp::Revive, status).await
        }
        Request::PartitionNode { node } => {
            return node_answer(session, node, NodeOp::TogglePartition, status).await
        }
        Request::Kill { instance } => (
            instance,
            InstanceAction::Signal(nix::sys::signal::Signal::SIGKILL),
        ),
        Request::Signal { instance, signal } => match parse_signal(signal) {
            Ok(sig) => (instance, InstanceAction::Signal(sig)),
            Err(e) => return json!({"ok": false, "error": e.to_string()}),
        },
        Request::Stop { instance } => (instance, InstanceAction::Stop),
        Request::Start { instance } => (instance, InstanceAction::Start),
        Request::Restart { instance } => (instance, InstanceAction::Restart),
    };
    // On another machine: its agent signals it and says what it did.
    if let (Some(_), InstanceAction::Signal(sig)) = (session.remote_node(instance), action) {
        return match session.signal_remote(instance, sig, false).await {
            Ok(done) => json!({"ok": true, "done": done}),
            Err(e) => json!({"ok": false, "error": format!("{e:#}")}),
        };
    }
    let before = status.borrow_and_update().instances.get(instance).cloned();
    if let Err(e) = session.act(instance, action).await {
        return json!({"ok": false, "error": format!("{e:#}")});
    }
    // Give the dashboard's tracker a moment to see the effect.
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let now = status.borrow().instances.get(instance).cloned();
        if now.as_ref().map(|s| &s.phase) != before.as_ref().map(|s| &s.phase) {
            break;
        }
        match tokio::time::timeout_at(deadline, status.changed()).await {
            Ok(Ok(())) => continue,
            _ => break,
        }
    }
    let st = status.borrow().clone();
    match session.instances().iter().find(|s| &s.id == instance) {
        Some(latest) => json!({"ok": true, "instance": describe(latest, &st)}),
        None => json!({"ok": true}),
    }
}

/// Kills, freezes or thaws a local node, then waits (briefly) for the
/// dashboard's state to show it.
async fn node_answer(
    session: &SessionHandle,
    node: &str,
    op: NodeOp,
    mut status: watch::Receiver<StatusSnapshot>,
) -> Value {
    status.borrow_and_update();
    let (action, said) = match session.node_action_anywhere(node, op).await {
        Ok(done) => done,
        Err(e) => return json!({"ok": false, "error": format!("{e:#}")}),
    };
    let shown = |st: &StatusSnapshot| {
        st.nodes
            .iter()
            .any(|n| n.name == node && n.last_action == Some(action.json_kind()))
    };
    let deadline = tokio::time::Instant::now() + SETTLE;
    while !shown(&status.borrow()) {
        match tokio::time::timeout_at(deadline, status.changed()).await {
            Ok(Ok(())) => continue,
            _ => break,
        }
    }
    match said {
        // A node elsewhere: what its agent said.
        Some(said) => json!({"ok": true, "node": node, "done": action.done(), "agent": said}),
        None => json!({"ok": true, "node": node, "done": action.done()}),
    }
}

/// Pause after a failed `accept` (e.g. EMFILE) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Sends one request to the socket at `path`; returns the response.
pub async fn request(path: &Path, request: &Request) -> Result<Value> {
    if let Some((dir, kind)) = folder_of(path) {
        if dir.exists() {
            socket_dir::check(dir, kind)?;
        }
    }
    socket_dir::check_socket(path)?;
    let stream = UnixStream::connect(path).await.with_context(|| {
        format!(
            "no plumdash answers on {} (is `plumdash up` running? --to sets the socket)",
            path.display()
        )
    })?;
    let (read, mut write) = stream.into_split();
    let line = serde_json::to_string(request)? + "\n";
    write.write_all(line.as_bytes()).await?;
    let mut reader = BufReader::new(read);
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut answer))
        .await
        .context("no answer within 30 s")??;
    serde_json::from_str(answer.trim()).context("a bad answer from plumdash")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_not_known_reads_unknown_or_unreadable_not_null() {
        let task = |progress: Value, unreadable: Option<&str>| {
            let mut t = json!({"progress": progress, "checkpoint": null, "flag": "never_seen"});
            if let Some(why) = unreadable {
                t["progress_unreadable"] = why.into();
            }
            TaskStatus::describe(&t)
        };
        assert_eq!(
            task(json!(40), None),
            "progress 40%, checkpoint —, crash flag never seen, pattern not known yet"
        );
        assert_eq!(
            task(Value::Null, None),
            "progress unknown, checkpoint —, crash flag never seen, pattern not known yet"
        );
        assert_eq!(
            task(Value::Null, Some("\"fifty\" is not a whole number")),
            "progress unreadable, checkpoint —, crash flag never seen, pattern not known yet"
        );
    }

    #[test]
    fn the_pattern_is_told_with_where_it_came_from() {
        let task = |pattern: Value, told: bool| {
            TaskStatus::describe(&json!({
                "progress": 30, "checkpoint": "OP_3", "flag": "set",
                "pattern": pattern, "pattern_told": told,
            }))
        };
        assert_eq!(
            task(json!("txlog"), true),
            "progress 30%, checkpoint OP_3, crash flag set, pattern txlog (told)"
        );
        assert_eq!(
            task(json!("fsm"), false),
            "progress 30%, checkpoint OP_3, crash flag set, pattern fsm (from its keys)"
        );
        let wire = serde_json::to_value(crate::recovery::Pattern::TxLog).unwrap();
        assert_eq!(wire, "txlog", "the JSON spells it as --pattern does");
    }

    /// The request is also the CLI subcommand: its printing flag never reaches the wire,
    /// and the wire form stays what other clients send.
    #[test]
    fn requests_keep_their_wire_form() {
        let status = serde_json::to_string(&Request::Status { json: true }).unwrap();
        assert_eq!(status, r#"{"cmd":"status"}"#);
        let parsed: Request = serde_json::from_str(r#"{"cmd":"status"}"#).unwrap();
        assert_eq!(parsed, Request::Status { json: false });
        let signal: Request =
            serde_json::from_str(r#"{"cmd":"signal","instance":"kv-demo-001","signal":"TERM"}"#)
                .unwrap();
        assert_eq!(
            signal,
            Request::Signal {
                signal: "TERM".into(),
                instance: "kv-demo-001".into()
            }
        );
    }
}
