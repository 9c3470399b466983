//! `up --nodes N`: N `plumdash agent` processes on this machine (`nodeA`,
//! `nodeB`, …), each the leader of its own process group so one of them can be
//! killed or frozen as a whole machine, and the deployment that puts the app's
//! instances on the first node.

use crate::http_client::Success;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::cluster::model::Node;
use crate::hosts::{LinkFault, TestHosts};
use crate::supervisor::procstats::{all_pids, proc_stat, ProcStat};

/// The names of `count` nodes: `nodeA` … `nodeZ`, then `node27`, ….
pub fn node_names(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| match u8::try_from(i).ok().filter(|i| *i < 26) {
            Some(i) => format!("node{}", char::from(b'A' + i)),
            None => format!("node{}", i + 1),
        })
        .collect()
}

/// The bundled worker's settings an agent could inherit from the shell.
const WORKER_SETTINGS: [&str; 4] = [
    "KV_DEMO_STEP_MS",
    "KV_DEMO_NAMESPACE_BY",
    "KV_DEMO_PATTERN",
    "KV_DEMO_UNSAFE",
];

/// How to start the local nodes.
#[derive(Debug, Clone)]
pub struct LocalNodesConfig {
    pub count: usize,
    /// The plumdash binary (it runs `agent`).
    pub program: PathBuf,
    pub controller: String,
    pub token: Option<String>,
    /// The bundled worker's settings (`KV_DEMO_STEP_MS`, `KV_DEMO_PATTERN`,
    /// …), in each agent's environment, which its workers inherit.
    pub worker_env: Vec<(&'static str, String)>,
    /// Each agent's diagnostics go to `<log_dir>/agent-<node>.log`.
    pub log_dir: PathBuf,
    pub data_dir: PathBuf,
    pub stop_grace: Duration,
    /// Each node a test host of its own (`crate::hosts`: network and PID
    /// namespaces), its link to the controller's host one that can fail.
    pub on_hosts: bool,
}

/// One agent process.
#[derive(Debug)]
pub struct LocalNode {
    pub name: String,
    child: Child,
}

impl LocalNode {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The running agents; dropping them SIGKILLs every one that is left.
#[derive(Debug, Default)]
pub struct LocalNodes {
    /// Behind a lock: a killed node's agent is replaced when it comes back.
    nodes: Mutex<Vec<LocalNode>>,
    /// How they were started, to start one again.
    config: Option<LocalNodesConfig>,
    /// The test hosts they run on (`on_hosts`); dropped after the agents.
    hosts: Option<Arc<TestHosts>>,
}

impl LocalNodes {
    /// Starts the agents: as processes here, or each on its test host of
    /// `hosts` (named as the node).
    pub fn spawn(config: &LocalNodesConfig, hosts: Option<Arc<TestHosts>>) -> Result<LocalNodes> {
        std::fs::create_dir_all(&config.log_dir)
            .with_context(|| format!("creating {}", config.log_dir.display()))?;
        let mut nodes = Vec::new();
        for name in node_names(config.count) {
            // A fresh log per run; a revived agent appends to it.
            let log_path = config.log_dir.join(format!("agent-{name}.log"));
            std::fs::File::create(&log_path)
                .with_context(|| format!("creating {}", log_path.display()))?;
            nodes.push(spawn_agent(config, hosts.as_deref(), name)?);
        }
        Ok(LocalNodes {
            nodes: Mutex::new(nodes),
            config: Some(config.clone()),
            hosts,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<LocalNode>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the agent of a node killed here again (the machine comes back);
    /// its new pid. Refused while its agent still runs.
    pub fn revive(&self, name: &str) -> Result<u32> {
        let config = self
            .config
            .as_ref()
            .context("these nodes were not started here")?;
        let mut nodes = self.lock();
        let Some(node) = nodes.iter_mut().find(|n| n.name == name) else {
            bail!("no local node named {name:?}");
        };
        if node
            .child
            .try_wait()
            .context("checking an agent")?
            .is_none()
        {
            bail!("{name} is running: only a killed node comes back");
        }
        *node = spawn_agent(config, self.hosts.as_deref(), name.to_string())?;
        Ok(node.pid())
    }

    /// Each node's name and its agent's pid.
    pub fn nodes(&self) -> Vec<(String, u32)> {
        self.lock()
            .iter()
            .map(|n| (n.name.clone(), n.pid()))
            .collect()
    }

    /// SIGTERM to every agent (each stops its workers gracefully), then
    /// SIGKILL to the groups of those still there after `wait`; then the
    /// test hosts go. Through a shared handle too: nothing is left for a
    /// drop that an exit may never run.
    pub async fn stop(&self, wait: Duration) {
        for node in self.lock().iter() {
            let _ = kill(pid_of(node), Signal::SIGTERM);
            // On a test host the process started is `unshare`, which does not
            // pass signals on: the agent is its child.
            if self.hosts.is_some() {
                for child in children(node.pid()) {
                    let _ = kill(group(child), Signal::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            let left = {
                let mut nodes = self.lock();
                nodes.retain_mut(|node| !matches!(node.child.try_wait(), Ok(Some(_))));
                nodes.len()
            };
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill_all();
        if let Some(hosts) = &self.hosts {
            hosts.remove();
        }
    }

    /// SIGKILL to every agent's group still running, each reaped.
    fn kill_all(&self) {
        for node in self.lock().iter_mut() {
            if let Ok(Some(_)) = node.child.try_wait() {
                continue;
            }
            let _ = killpg(pid_of(node), Signal::SIGKILL);
            let _ = node.child.wait();
        }
    }
}

fn spawn_agent(
    config: &LocalNodesConfig,
    hosts: Option<&TestHosts>,
    name: String,
) -> Result<LocalNode> {
    use std::os::unix::process::CommandExt;
    let log_path = config.log_dir.join(format!("agent-{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut command = match hosts {
        Some(hosts) => hosts.command(&name, &config.program)?,
        None => Command::new(&config.program),
    };
    command
        .args(["agent", "--node", &name, "--controller", &config.controller])
        .arg("--data-dir")
        .arg(&config.data_dir)
        .arg("--stop-grace")
        .arg(humantime::format_duration(config.stop_grace).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        // Its own group: a machine that can be killed or frozen whole,
        // and deaf to the dashboard's terminal.
        .process_group(0);
    match &config.token {
        // In the environment, not the arguments: kept out of `ps`.
        Some(token) => command.env("PLUM_TOKEN", token),
        None => command.env_remove("PLUM_TOKEN"),
    };
    // Only what this session says: none of the shell's own kv-demo settings.
    for name in WORKER_SETTINGS {
        command.env_remove(name);
    }
    for (name, value) in &config.worker_env {
        command.env(name, value);
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting the agent of {name}"))?;
    Ok(LocalNode { name, child })
}

fn pid_of(node: &LocalNode) -> Pid {
    group(node.child.id())
}

/// An agent leads its own group: its pid is the group's id.
fn group(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

impl Drop for LocalNodes {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn client() -> Result<reqwest::Client> {
    crate::http_client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .context("building the HTTP client")
}

fn with_token(req: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(token) => req.bearer_auth(token),
        None => req,
    }
}

/// Waits until every named node is Healthy in `GET /v1/nodes`.
pub async fn wait_healthy(
    controller: &str,
    token: Option<&str>,
    names: &[String],
    timeout: Duration,
) -> Result<()> {
    let http = client()?;
    let deadline = Instant::now() + timeout;
    loop {
        // Unreadable or not yet up: nobody healthy, asked again until the deadline.
        let nodes: Vec<Node> = match with_token(http.get(format!("{controller}/v1/nodes")), token)
            .send()
            .await
        {
            Ok(resp) => resp.json().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let healthy = |name: &String| nodes.iter().any(|n| &n.node_id == name && n.is_healthy());
        let missing: Vec<&String> = names.iter().filter(|n| !healthy(n)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "node(s) {} did not beat within {}",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Puts `instances` of the app on `node`: stops the deployments an earlier
/// run left under the same name (the database outlives us), then creates a
/// new one and starts it. Returns its id.
pub async fn deploy(
    controller: &str,
    token: Option<&str>,
    app: &str,
    start_cmd: &str,
    instances: u32,
    node: &str,
) -> Result<String> {
    let http = client()?;
    let name = format!("plumdash-up:{app}");
    let old: Vec<Value> = with_token(http.get(format!("{controller}/v1/deployments")), token)
        .send()
        .await
        .context("listing deployments")?
        .success()
        .context("listing deployments")?
        .json()
        .await
        .context("reading deployments")?;
    for dep in old.iter().filter(|d| d["name"] == name.as_str()) {
        if let Some(id) = dep["deploymentId"].as_str() {
            set_running(&http, controller, token, id, false).await?;
        }
    }
    let created: Value = with_token(http.post(format!("{controller}/v1/deployments")), token)
        .json(&json!({
            "name": name,
            "entries": [{
                "artifactUrl": "",
                "startCmd": start_cmd,
                "appName": app,
                "replicas": { node: instances },
            }],
        }))
        .send()
        .await
        .context("creating the deployment")?
        .success()
        .context("creating the deployment")?
        .json()
        .await
        .context("reading the new deployment")?;
    let id = created["deploymentId"]
        .as_str()
        .context("the controller's answer has no deploymentId")?
        .to_string();
    set_running(&http, controller, token, &id, true).await?;
    Ok(id)
}

async fn set_running(
    http: &reqwest::Client,
    controller: &str,
    token: Option<&str>,
    id: &str,
    running: bool,
) -> Result<()> {
    let action = if running { "start" } else { "stop" };
    with_token(
        http.post(format!("{controller}/v1/deployments/{id}"))
            .query(&[("action", action)]),
        token,
    )
    .send()
    .await
    .with_context(|| format!("{action} deployment {id}"))?
    .success()
    .with_context(|| format!("{action} deployment {id}"))?;
    Ok(())
}

/// A local node as a machine: killed, frozen, thawed.
impl LocalNodes {
    /// The agent's pid of the node `name`.
    fn find(&self, name: &str) -> Result<u32> {
        self.lock()
            .iter()
            .find(|n| n.name == name)
            .map(LocalNode::pid)
            .with_context(|| format!("no local node named {name:?}"))
    }

    /// SIGKILL to the agent's process group; its orphan guard then kills its workers.
    pub fn kill(&self, name: &str) -> Result<()> {
        let pid = self.find(name)?;
        killpg(group(pid), Signal::SIGKILL).with_context(|| format!("SIGKILL to {name}"))
    }

    /// SIGSTOP to the agent's group and to every process group under it.
    pub fn freeze(&self, name: &str) -> Result<()> {
        self.signal_machine(name, Signal::SIGSTOP)
    }

    /// SIGCONT, the agent's group first.
    pub fn thaw(&self, name: &str) -> Result<()> {
        self.signal_machine(name, Signal::SIGCONT)
    }

    /// `signal` to the agent's group, then to every process group under it
    /// (found after the agent's, so a stopped agent starts nothing new).
    fn signal_machine(&self, name: &str, signal: Signal) -> Result<()> {
        let pid = self.find(name)?;
        killpg(group(pid), signal).with_context(|| format!("{signal} to {name}"))?;
        for pgid in descendant_groups(pid) {
            // A worker may end meanwhile: not an error.
            let _ = killpg(Pid::from_raw(pgid), signal);
        }
        Ok(())
    }

    /// Puts `fault` on the node's link (test hosts only).
    pub fn cut(&self, name: &str, fault: &LinkFault) -> Result<()> {
        self.find(name)?;
        self.test_hosts()?.apply(name, fault)
    }

    /// Removes the fault from the node's link.
    pub fn heal(&self, name: &str) -> Result<()> {
        self.find(name)?;
        self.test_hosts()?.heal(name)
    }

    /// The fault on the node's link now, if any.
    pub fn link_fault(&self, name: &str) -> Option<LinkFault> {
        self.hosts.as_ref()?.fault(name)
    }

    /// Whether the nodes run on test hosts (their links can be cut).
    pub fn on_hosts(&self) -> bool {
        self.hosts.is_some()
    }

    fn test_hosts(&self) -> Result<&TestHosts> {
        self.hosts
            .as_deref()
            .context("these nodes share this machine's network: `--hosts` puts each on a test host whose link can be cut")
    }

    /// The agent is stopped (state `T` in /proc).
    pub fn is_frozen(&self, name: &str) -> Result<bool> {
        let pid = self.find(name)?;
        let stat =
            proc_stat(pid).with_context(|| format!("reading the state of {name}'s agent"))?;
        Ok(stat.state == 'T')
    }
}

/// The pids whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|pid| proc_stat(*pid).is_some_and(|s| s.ppid == parent))
        .collect()
}

/// The process groups of every process descended from `root`, other than
/// `root`'s own (workers lead their own groups).
fn descendant_groups(root: u32) -> Vec<i32> {
    let procs: Vec<(u32, ProcStat)> = all_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, proc_stat(pid)?)))
        .collect();
    let mut tree = vec![root];
    let mut groups = Vec::new();
    let mut i = 0;
    while let Some(&parent) = tree.get(i) {
        for (pid, stat) in &procs {
            if stat.ppid == parent && !tree.contains(pid) {
                tree.push(*pid);
                if i64::from(stat.pgrp) != i64::from(root) && !groups.contains(&stat.pgrp) {
                    groups.push(stat.pgrp);
                }
            }
        }
        i += 1;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_lettered_then_numbered() {
        assert_eq!(node_names(3), ["nodeA", "nodeB", "nodeC"]);
        let many = node_names(28);
        assert_eq!(many[25], "nodeZ");
        assert_eq!(many[26], "node27");
    }
}
