//! `plumdash agent`: one node of the cluster API, as its own process.
//!
//! It speaks the original agent's protocol (`plum-cluster-api.md` §5): a
//! heartbeat `POST /v1/nodes/heartbeat {nodeId, ip}`, its assignments from
//! `GET /v1/assignments?nodeId=`, woken early by `/v1/stream?nodeId=`, and a
//! `POST /v1/instances/status` on every change. Unlike the original:
//!
//! - it beats every second (the original's 5 s beat against a 3 s TTL makes
//!   nodes flap) and syncs every second as well as on every stream event;
//! - instances run under the [`Supervisor`], so a death is seen at once and
//!   restarted by policy (the original's pid file is blind to zombies);
//! - its workers die with it: an orphan guard SIGKILLs their process groups
//!   when the agent is gone, so a killed agent is a dead machine, not an agent
//!   whose old workers keep writing the shared namespace.

use crate::http_client::Success;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use reqwest::{Method, RequestBuilder};
use tokio::sync::{broadcast, mpsc, Notify};
use tokio_util::sync::CancellationToken;

pub mod artifact;
pub mod local;
mod signal;

use crate::cluster::model::{
    Assignment, AssignmentList, Heartbeat, InstancePhase, SignalResult, StatusReport,
};
use crate::supervisor::{
    bundled_worker_path, split_command_line, EventKind, ExitKind, InstanceAction, OrphanGuard,
    Supervisor, SupervisorConfig, SupervisorEvent, WorkerSpec,
};

/// Time between heartbeats.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// Time between assignment polls when the stream is quiet.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Wait before re-opening a `nodeId` stream that failed soon after opening
/// (the original's 1 s); one that had been open longer is re-opened at once,
/// since the controller counts a closed presence stream as a lost node after
/// `controller::nodes::PRESENCE_GRACE`.
const STREAM_RETRY: Duration = Duration::from_secs(1);
/// A stream open this long had been working: re-open it at once.
const STREAM_WORKED: Duration = Duration::from_secs(2);
/// Largest assignments answer read (thousands of rows fit).
const MAX_ASSIGNMENTS: usize = 4 << 20;
/// The node stream's events are single words: a longer line is not the API.
const STREAM_MAX_LINE: usize = 64 << 10;
/// Per-request timeout of the short calls (not the stream).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A start that failed is tried again after this long, not every sync.
const START_RETRY: Duration = Duration::from_secs(5);
/// App name when an assignment has none (the bundled worker's).
pub const DEFAULT_APP: &str = "kv-demo";
const DEFAULT_VERSION: &str = "1.0.0";

/// What `plumdash agent` was asked to be.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This node's id (`nodeId` in every call, `WORKER_NODE_ID` for workers).
    pub node: String,
    /// The controller's base URL (also `CONTROLLER_BASE` for workers).
    pub controller: String,
    pub token: Option<String>,
    /// Sent in the heartbeat.
    pub ip: String,
    /// Work folders live in `<data_dir>/<node>/<instanceId>/`.
    pub data_dir: PathBuf,
    /// SIGTERM → SIGKILL grace when an instance is stopped.
    pub stop_grace: Duration,
    /// The plumdash binary that runs the orphan guard; `None`: workers
    /// outlive a SIGKILLed agent.
    pub orphan_guard: Option<PathBuf>,
}

impl AgentConfig {
    pub fn new(node: impl Into<String>, controller: impl Into<String>) -> Self {
        AgentConfig {
            node: node.into(),
            controller: controller.into(),
            token: None,
            ip: "127.0.0.1".into(),
            data_dir: crate::paths::agent_data_dir(),
            stop_grace: Duration::from_secs(3),
            orphan_guard: None,
        }
    }
}

/// A status report stamped now.
fn report_now(
    instance_id: &str,
    phase: InstancePhase,
    exit_code: i64,
    healthy: bool,
) -> StatusReport {
    let now = crate::clock::unix_ms(std::time::SystemTime::now());
    StatusReport {
        instance_id: instance_id.to_string(),
        phase,
        exit_code,
        healthy,
        ts_unix: unix_secs(now),
        reason: String::new(),
        ts_ms: i64::try_from(now).ok(),
    }
}

/// A `Failed` report that says why (an artifact it could not fetch or unpack,
/// a program it could not start): plumdash's `reason`, which the dashboard shows.
fn failed_because(instance_id: &str, reason: String) -> StatusReport {
    StatusReport {
        reason,
        ..report_now(instance_id, InstancePhase::Failed, -1, false)
    }
}

fn unix_secs(ms: u64) -> i64 {
    i64::try_from(ms / 1000).unwrap_or(i64::MAX)
}

/// The status a supervisor event means for the controller, if any. A run
/// ended by our own stop is reported as `Stopped` by whoever stopped it; a
/// task that finished (exit 0) is `Exited`, so nobody mistakes it for a crash.
pub fn status_for(event: &SupervisorEvent) -> Option<StatusReport> {
    let (phase, exit_code, healthy) = match &event.kind {
        EventKind::Started { .. } => (InstancePhase::Running, 0, true),
        EventKind::Exited { exit, .. } => match exit {
            ExitKind::Stopped => return None,
            ExitKind::Completed => (InstancePhase::Exited, 0, false),
            ExitKind::ExitCode(code) => (InstancePhase::Failed, i64::from(*code), false),
            // The shell's convention, so the signal can be told from the code.
            ExitKind::KilledBySignal(signal) => {
                (InstancePhase::Failed, 128 + *signal as i64, false)
            }
            ExitKind::Disappeared => (InstancePhase::Failed, -1, false),
        },
        EventKind::Failed { .. } => (InstancePhase::Failed, -1, false),
        _ => return None,
    };
    Some(StatusReport {
        instance_id: event.instance.clone(),
        phase,
        exit_code,
        healthy,
        ts_unix: unix_secs(event.ts_ms),
        reason: String::new(),
        ts_ms: i64::try_from(event.ts_ms).ok(),
    })
}

/// The controller's cluster API, as an agent calls it.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    /// App packages' downloads, which may follow redirects (`http_client`).
    downloads: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(base: &str, token: Option<String>) -> Result<Api> {
        // No client-wide timeout: the stream stays open; short calls set their own.
        let http = crate::http_client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .context("building the HTTP client")?;
        let downloads = crate::http_client::download_builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            http,
            downloads,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    async fn heartbeat(&self, node: &str, ip: &str) -> Result<()> {
        self.request(Method::POST, "/v1/nodes/heartbeat")
            .timeout(REQUEST_TIMEOUT)
            .json(&Heartbeat {
                ip: ip.to_string(),
                labels: None,
                node_id: node.to_string(),
            })
            .send()
            .await
            .context("sending the heartbeat")?
            .success()
            .context("the heartbeat was refused")?;
        Ok(())
    }

    async fn assignments(&self, node: &str) -> Result<Vec<Assignment>> {
        let response = self
            .request(Method::GET, "/v1/assignments")
            .timeout(REQUEST_TIMEOUT)
            .query(&[("nodeId", node)])
            .send()
            .await
            .context("asking for assignments")?
            .success()
            .context("assignments were refused")?;
        // A node's list is small; an endless answer is refused at the cap.
        let body = crate::http_body::read_capped(response, MAX_ASSIGNMENTS)
            .await
            .map_err(anyhow::Error::msg)
            .context("reading assignments")?;
        let list: AssignmentList = serde_json::from_slice(&body).context("reading assignments")?;
        Ok(list.items)
    }

    /// Answers a signal order (`POST /v1/signals/{requestId}`).
    async fn signal_result(&self, request_id: &str, result: &SignalResult) -> Result<()> {
        let path = format!(
            "/v1/signals/{}",
            percent_encoding::utf8_percent_encode(request_id, percent_encoding::NON_ALPHANUMERIC)
        );
        self.request(Method::POST, &path)
            .timeout(REQUEST_TIMEOUT)
            .json(result)
            .send()
            .await
            .context("answering a signal")?
            .success()
            .context("the signal's answer was refused")?;
        Ok(())
    }

    async fn status(&self, report: &StatusReport) -> Result<()> {
        self.request(Method::POST, "/v1/instances/status")
            .timeout(REQUEST_TIMEOUT)
            .json(report)
            .send()
            .await
            .context("sending a status")?
            .success()
            .context("the status was refused")?;
        Ok(())
    }
}

/// Runs the agent until SIGINT or SIGTERM, then stops its workers (each is
/// reported `Stopped`).
pub async fn run(config: AgentConfig) -> Result<()> {
    let mut termination = crate::signals::Termination::install()?;
    let api = Api::new(&config.controller, config.token.clone())?;
    let node_dir = config.data_dir.join(&config.node);
    std::fs::create_dir_all(&node_dir)
        .with_context(|| format!("creating the agent's folder {}", node_dir.display()))?;
    let orphan_guard = match &config.orphan_guard {
        Some(program) => Some(Arc::new(OrphanGuard::start(program)?)),
        None => None,
    };
    let (supervisor, events) = Supervisor::new(SupervisorConfig {
        app_name: DEFAULT_APP.into(),
        nodes: vec![config.node.clone()],
        controller_base: Some(config.controller.clone()),
        stop_grace: config.stop_grace,
        log_dir: Some(node_dir.clone()),
        orphan_guard,
        ..SupervisorConfig::default()
    });
    tracing::info!(
        "agent {} for {} (work folders in {})",
        config.node,
        config.controller,
        node_dir.display()
    );

    let stop = CancellationToken::new();
    let wake = Arc::new(Notify::new());
    // Set by a freeze order: no beats, no syncs (a hung machine).
    let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (reports, queue) = mpsc::unbounded_channel();
    tokio::spawn(heartbeat_loop(
        api.clone(),
        config.node.clone(),
        config.ip.clone(),
        frozen.clone(),
        stop.clone(),
    ));
    let (orders, order_queue) = mpsc::unbounded_channel();
    tokio::spawn(stream_loop(
        api.clone(),
        config.node.clone(),
        StreamSinks {
            wake: wake.clone(),
            orders,
        },
        stop.clone(),
    ));
    tokio::spawn(signal::serve(
        api.clone(),
        supervisor.clone(),
        frozen.clone(),
        order_queue,
    ));
    tokio::spawn(report_loop(api.clone(), queue));
    tokio::spawn(forward_events(events, reports.clone()));
    if std::process::id() == 1 {
        tokio::spawn(reap_orphans(supervisor.clone(), stop.clone()));
    }

    let mut reconciler = Reconciler {
        api: api.clone(),
        supervisor: supervisor.clone(),
        config: config.clone(),
        node_dir,
        reports,
        reported_stopped: HashSet::new(),
        start_failed: HashMap::new(),
    };
    let mut tick = tokio::time::interval(SYNC_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reachable = true;
    loop {
        tokio::select! {
            _ = termination.recv() => break,
            _ = tick.tick() => {}
            _ = wake.notified() => {}
        }
        if frozen.load(std::sync::atomic::Ordering::SeqCst) {
            continue;
        }
        match api.assignments(&config.node).await {
            Ok(items) => {
                if !reachable {
                    tracing::info!("assignments readable again");
                    reachable = true;
                }
                reconciler.sync(&items).await;
            }
            // As the original: no sync without a fresh list (nothing is stopped
            // because the controller is away).
            Err(e) if reachable => {
                tracing::warn!("cannot read assignments: {e:#}");
                reachable = false;
            }
            Err(_) => {}
        }
    }
    tracing::info!("agent {}: stopping its instances", config.node);
    stop.cancel();
    // A worker that finished keeps its `Exited`: reported `Stopped`, the
    // controller would take its task for unfinished and move it when this
    // node's heartbeats stop (and it would run again from 0).
    let finished: HashSet<String> = supervisor
        .instances()
        .into_iter()
        .filter(|s| s.phase == crate::supervisor::Lifecycle::Exited)
        .map(|s| s.id)
        .collect();
    for snapshot in supervisor.shutdown_all(config.stop_grace).await {
        if finished.contains(&snapshot.id) {
            continue;
        }
        let report = report_now(&snapshot.id, InstancePhase::Stopped, 0, true);
        if let Err(e) = api.status(&report).await {
            tracing::warn!("cannot report {} stopped: {e:#}", snapshot.id);
        }
    }
    Ok(())
}

/// As the first process of its PID namespace (a container's, `up
/// --hosts`'), the agent is every orphan's parent there (a worker's `tee`
/// or background job whose shell died): it reaps those, every second, so
/// they do not pile up as zombies. Its own workers are left to the
/// supervisor, which reads their exits.
async fn reap_orphans(supervisor: Supervisor, stop: CancellationToken) {
    use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let owned: HashSet<u32> = supervisor.owned_pids().into_iter().collect();
        // Looked at without reaping (WNOWAIT) first: a worker's end is the
        // supervisor's to read, so the look stops at one of them.
        loop {
            let peek = waitid(
                Id::All,
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
            );
            let pid = match peek {
                Ok(WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _)) => pid,
                _ => break,
            };
            if owned.contains(&pid.as_raw().unsigned_abs()) {
                break;
            }
            if waitpid(pid, Some(WaitPidFlag::WNOHANG)).is_err() {
                break;
            }
        }
    }
}

/// Makes the local instances match the assignments.
struct Reconciler {
    api: Api,
    supervisor: Supervisor,
    config: AgentConfig,
    node_dir: PathBuf,
    reports: mpsc::UnboundedSender<StatusReport>,
    /// Stopped rows already reported this run (the original re-posts every sync).
    reported_stopped: HashSet<String>,
    /// Starts that failed, and when: retried after `START_RETRY`.
    start_failed: HashMap<String, Instant>,
}

impl Reconciler {
    async fn sync(&mut self, items: &[Assignment]) {
        let wanted: HashMap<&str, &Assignment> = items
            .iter()
            .filter(|a| a.wants_running())
            .map(|a| (a.instance_id.as_str(), a))
            .collect();
        // Stop what is no longer ours to run: desired Stopped (a migration parks
        // the old row so) or gone.
        for snapshot in self.supervisor.instances() {
            if wanted.contains_key(snapshot.id.as_str()) {
                continue;
            }
            tracing::info!("stopping {} (no longer desired here)", snapshot.id);
            self.supervisor
                .remove_instance(&snapshot.id, self.config.stop_grace)
                .await;
            self.report(report_now(&snapshot.id, InstancePhase::Stopped, 0, true));
            self.reported_stopped.insert(snapshot.id);
        }
        for item in items.iter().filter(|a| !a.wants_running()) {
            if item.phase() != Some(&InstancePhase::Stopped)
                && self.reported_stopped.insert(item.instance_id.clone())
            {
                self.report(report_now(
                    &item.instance_id,
                    InstancePhase::Stopped,
                    0,
                    true,
                ));
            }
        }
        self.reported_stopped
            .retain(|id| !wanted.contains_key(id.as_str()));
        self.start_failed
            .retain(|id, _| wanted.contains_key(id.as_str()));
        for item in wanted.values() {
            if self.supervisor.instance(&item.instance_id).is_some() {
                continue;
            }
            if self
                .start_failed
                .get(&item.instance_id)
                .is_some_and(|at| at.elapsed() < START_RETRY)
            {
                continue;
            }
            match self.start(item).await {
                Ok(()) => {
                    self.start_failed.remove(&item.instance_id);
                }
                Err(e) => {
                    tracing::warn!("cannot start {}: {e:#}", item.instance_id);
                    self.start_failed
                        .insert(item.instance_id.clone(), Instant::now());
                    self.report(failed_because(&item.instance_id, format!("{e:#}")));
                }
            }
        }
    }

    /// Starts one assignment in its work folder; its `Started` event reports Running.
    async fn start(&self, item: &Assignment) -> Result<()> {
        let spec = self.spec_for(item).await?;
        tracing::info!(
            "starting {} on {}: {}",
            item.instance_id,
            self.config.node,
            spec.display_command()
        );
        let id = self.supervisor.add_instance_as(&item.instance_id, spec)?;
        if let Err(e) = self.supervisor.send(&id, InstanceAction::Start).await {
            self.supervisor.remove_instance(&id, Duration::ZERO).await;
            return Err(e.into());
        }
        Ok(())
    }

    async fn spec_for(&self, item: &Assignment) -> Result<WorkerSpec> {
        let mut dir = self.node_dir.join(safe_folder_name(&item.instance_id));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the work folder {}", dir.display()))?;
        let spec = if !item.artifact_url.trim().is_empty() {
            // As the original: the package's start.sh (or startCmd) by `sh -c`
            // in the unpacked folder.
            dir = artifact::prepare(
                &self.api.downloads,
                &self.api.base,
                self.api.token.as_deref(),
                item.artifact_url.trim(),
                &dir,
            )
            .await?;
            let cmd = non_empty(&item.start_cmd, "./start.sh").trim().to_string();
            WorkerSpec::new("sh").args(["-c".to_string(), cmd])
        } else if item.start_cmd.trim().is_empty() {
            match bundled_worker_path() {
                Ok(path) => WorkerSpec::new(path),
                // The same worker, built into plumdash itself.
                Err(_) => WorkerSpec::new(
                    std::env::current_exe().context("finding plumdash's own executable")?,
                )
                .args(["kv-demo"]),
            }
        } else {
            let mut words = split_command_line(&item.start_cmd)?;
            if words.is_empty() {
                anyhow::bail!("empty startCmd");
            }
            let program = words.remove(0);
            WorkerSpec::new(program).args(words)
        };
        let app = non_empty(&item.app_name, DEFAULT_APP);
        let version = non_empty(&item.app_version, DEFAULT_VERSION);
        let mut spec = spec
            .working_dir(dir)
            .node(self.config.node.clone())
            // The supervisor sets the instance id, node and controller; these
            // come from the assignment.
            .env("PLUM_APP_NAME", app)
            .env("PLUM_APP_VERSION", version);
        if let Some(token) = &self.config.token {
            // Our own worker reads it to write the namespace.
            spec = spec.env("PLUM_TOKEN", token.clone());
        }
        Ok(spec)
    }

    fn report(&self, report: StatusReport) {
        // The report loop lives as long as the agent.
        let _ = self.reports.send(report);
    }
}

fn non_empty<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.trim().is_empty() {
        default
    } else {
        value
    }
}

/// An instance id as one path component (ids come from the controller).
fn safe_folder_name(id: &str) -> String {
    let name: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.chars().all(|c| c == '.') {
        format!("_{name}")
    } else {
        name
    }
}

async fn heartbeat_loop(
    api: Api,
    node: String,
    ip: String,
    frozen: Arc<std::sync::atomic::AtomicBool>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ok = true;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if frozen.load(std::sync::atomic::Ordering::SeqCst) {
            continue;
        }
        match api.heartbeat(&node, &ip).await {
            Ok(()) if !ok => {
                tracing::info!("heartbeats accepted again");
                ok = true;
            }
            Ok(()) => {}
            Err(e) if ok => {
                tracing::warn!("heartbeat failed: {e:#}");
                ok = false;
            }
            Err(_) => {}
        }
    }
}

/// Where the stream's events go: wake-ups for the sync loop, signal orders
/// for `signal::serve`.
struct StreamSinks {
    wake: Arc<Notify>,
    orders: mpsc::UnboundedSender<signal::Order>,
}

/// Holds `/v1/stream?nodeId=&presence=1&signals=1` open (the controller reads
/// its close as this node's death); an `event: signal` is an order for one of
/// its instances, every other event wakes the sync loop.
async fn stream_loop(api: Api, node: String, sinks: StreamSinks, stop: CancellationToken) {
    loop {
        let opened = tokio::time::Instant::now();
        tokio::select! {
            _ = stop.cancelled() => return,
            end = follow_stream(&api, &node, &sinks) => {
                tracing::debug!("assignment stream ended: {end}");
            }
        }
        if opened.elapsed() >= STREAM_WORKED {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(STREAM_RETRY) => {}
        }
    }
}

/// Follows the stream until it ends; returns why.
async fn follow_stream(api: &Api, node: &str, sinks: &StreamSinks) -> String {
    let resp = match api
        .request(Method::GET, "/v1/stream")
        .query(&[("nodeId", node), ("presence", "1"), ("signals", "1")])
        .send()
        .await
    {
        Ok(resp) if resp.status().is_success() => resp,
        Ok(resp) => return format!("HTTP {}", resp.status()),
        Err(e) => return format!("{e:#}"),
    };
    let mut resp = resp;
    // Bounded and linear whatever the controller sends (`kv/sse.rs`).
    let mut decoder = crate::kv::sse::SseDecoder::new(STREAM_MAX_LINE, STREAM_MAX_LINE);
    let mut events = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if let Err(e) = decoder.push(&chunk, &mut events) {
                    return format!("broke: {e}");
                }
                for event in events.drain(..) {
                    if event.event == "signal" || event.event == "node" {
                        let order = if event.event == "signal" {
                            serde_json::from_str(&event.data).map(signal::Order::Signal)
                        } else {
                            serde_json::from_str(&event.data).map(signal::Order::Node)
                        };
                        match order {
                            Ok(order) => {
                                let _ = sinks.orders.send(order);
                            }
                            Err(e) => tracing::warn!("an unreadable {} order: {e}", event.event),
                        }
                    } else {
                        sinks.wake.notify_one();
                    }
                }
            }
            Ok(None) => return "closed by the controller".into(),
            Err(e) => return format!("broke: {e}"),
        }
    }
}

/// Posts statuses in order; a failed post is tried twice more.
async fn report_loop(api: Api, mut queue: mpsc::UnboundedReceiver<StatusReport>) {
    while let Some(report) = queue.recv().await {
        let mut last_error = None;
        for attempt in 0..3u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            match api.status(&report).await {
                Ok(()) => {
                    last_error = None;
                    break;
                }
                Err(e) => last_error = Some(e),
            }
        }
        if let Some(e) = last_error {
            tracing::warn!(
                "cannot report {} {}: {e:#}",
                report.instance_id,
                report.phase
            );
        }
    }
}

/// Turns supervisor events into status reports.
async fn forward_events(
    mut events: broadcast::Receiver<SupervisorEvent>,
    reports: mpsc::UnboundedSender<StatusReport>,
) {
    loop {
        match events.recv().await {
            Ok(event) => {
                tracing::debug!("{}", event.to_json_line());
                if let Some(report) = status_for(&event) {
                    if reports.send(report).is_err() {
                        return;
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!("{missed} supervisor event(s) missed; statuses may be stale");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    fn event(kind: EventKind) -> SupervisorEvent {
        SupervisorEvent::now("dep-1234abcd", kind)
    }

    #[test]
    fn events_become_the_original_phases() {
        let started = status_for(&event(EventKind::Started {
            pid: 1,
            run: 1,
            node: "nodeA".into(),
        }))
        .unwrap();
        assert_eq!(
            (started.phase, started.exit_code, started.healthy),
            (InstancePhase::Running, 0, true)
        );
        assert_eq!(started.instance_id, "dep-1234abcd");
        let exited = |exit| {
            status_for(&event(EventKind::Exited {
                pid: 1,
                run: 1,
                exit,
                status: None,
                uptime: Duration::from_secs(1),
            }))
            .map(|r| (r.phase, r.exit_code))
        };
        assert_eq!(
            exited(ExitKind::KilledBySignal(Signal::SIGKILL)),
            Some((InstancePhase::Failed, 137))
        );
        assert_eq!(
            exited(ExitKind::ExitCode(3)),
            Some((InstancePhase::Failed, 3))
        );
        assert_eq!(
            exited(ExitKind::Completed),
            Some((InstancePhase::Exited, 0))
        );
        assert_eq!(exited(ExitKind::Stopped), None, "the stopper reports it");
        assert_eq!(status_for(&event(EventKind::StopRequested)), None);
    }

    #[test]
    fn status_body_is_camel_case() {
        let body = serde_json::to_value(report_now("x", InstancePhase::Stopped, 0, true)).unwrap();
        let mut keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "exitCode",
                "healthy",
                "instanceId",
                "phase",
                "tsMs",
                "tsUnix"
            ]
        );
    }

    #[test]
    fn instance_ids_make_one_folder() {
        assert_eq!(safe_folder_name("abc-12_x.y"), "abc-12_x.y");
        assert_eq!(safe_folder_name("../etc"), ".._etc");
        assert_eq!(safe_folder_name(".."), "_..");
        assert_eq!(safe_folder_name(""), "_");
    }
}
