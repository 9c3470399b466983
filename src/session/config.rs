//! What a session is asked to run, and the worker command line it runs.

use crate::controller::{self};
use crate::kv::{FeedMode, NamespaceBy, WatchOptions};
use crate::supervisor::{bundled_worker_path, RestartConfig, WorkerSpec};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Use this controller instead of starting one.
    pub remote_controller: Option<String>,
    /// Where the embedded controller listens (a free port if taken).
    pub listen: SocketAddr,
    pub db: PathBuf,
    pub token: Option<String>,
    pub app: String,
    /// The namespace each worker keeps its task in: the app's (shared), or
    /// its own instance id (`KV_DEMO_NAMESPACE_BY=instance` for the workers).
    pub namespace_by: NamespaceBy,
    pub instances: usize,
    /// The instances are one active and the rest standby (`supervisor::standby`):
    /// one runs, and the next takes over its crash.
    pub standby: bool,
    /// Supervise this command instead of the bundled kv-demo.
    pub cmd: Option<String>,
    /// Worker step interval (passed as `KV_DEMO_STEP_MS`).
    pub step: Option<Duration>,
    pub restart: RestartConfig,
    pub stop_grace: Duration,
    pub log_dir: Option<PathBuf>,
    pub feed: FeedMode,
    /// The plumdash binary that runs the orphan guard (`supervisor::orphan_guard`),
    /// so no worker outlives this process unless handed off. `None`: no guard.
    pub orphan_guard: Option<PathBuf>,
    /// Attach: the worker program's process name (its wrappers are not workers).
    pub worker_name: String,
    /// Attach: how long a crashed worker may wait for someone else to restart it
    /// before the dashboard says nobody did.
    pub restart_grace: Duration,
    /// How often the namespace is read when the controller has no change stream.
    pub poll_interval: Duration,
    /// The embedded controller's node TTL and failover interval.
    pub cluster: controller::ClusterTiming,
    /// The embedded controller must listen on `listen` (asked for by name);
    /// otherwise a taken port gives way to a free one.
    pub listen_exact: bool,
    /// A fresh demo: with our own controller, the last run's keys are moved
    /// to archives before the workers start (`--keep-state` turns it off).
    pub fresh: bool,
    /// List the app's instances the cluster API reports on other machines
    /// (`attach`, `up --controller`): each a row, signalled through its agent.
    pub remote_instances: bool,
    /// Which of the app's keys plays which role (`--key ROLE=NAME`).
    pub keys: crate::recovery::KeyMap,
    /// The recovery pattern as told (`--pattern`); the bundled kv-demo runs it
    /// (`KV_DEMO_PATTERN`). `None`: learnt from the keys.
    pub pattern: Option<crate::recovery::Pattern>,
    /// The worker makes its pattern's classic mistake (`KV_DEMO_UNSAFE`).
    pub unsafe_worker: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            remote_controller: None,
            listen: controller::DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            db: crate::paths::default_db_path(),
            token: None,
            app: "kv-demo".into(),
            namespace_by: NamespaceBy::App,
            instances: 1,
            standby: false,
            cmd: None,
            step: None,
            restart: RestartConfig::default(),
            stop_grace: Duration::from_secs(3),
            log_dir: None,
            feed: FeedMode::Auto,
            orphan_guard: None,
            worker_name: crate::supervisor::WORKER_EXECUTABLE.into(),
            restart_grace: Duration::from_secs(10),
            poll_interval: WatchOptions::default().poll_interval,
            cluster: controller::ClusterTiming::default(),
            listen_exact: false,
            fresh: false,
            remote_instances: false,
            keys: crate::recovery::KeyMap::kv_demo(),
            pattern: None,
            unsafe_worker: false,
        }
    }
}

/// What to do with owned workers when the session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerExit {
    /// SIGTERM, grace, SIGKILL: crash flags are cleared by the workers.
    StopGracefully,
    /// Leave them running, unsupervised.
    LeaveRunning,
}

/// The worker to supervise: `--cmd`, else the bundled `kv-demo` beside this
/// executable, else this executable's own `kv-demo` subcommand.
pub(super) fn worker_spec(config: &SessionConfig) -> Result<WorkerSpec> {
    let mut spec = match &config.cmd {
        Some(cmd) => WorkerSpec::from_command_line(cmd)?,
        None => match bundled_worker_path() {
            Ok(path) => WorkerSpec::new(path),
            Err(_) => {
                let me = std::env::current_exe().context("finding plumdash's own executable")?;
                WorkerSpec::new(me).args(["kv-demo"])
            }
        },
    };
    for (name, value) in worker_env(config) {
        spec = spec.env(name, value);
    }
    if let Some(token) = &config.token {
        spec = spec.env("PLUM_TOKEN", token.clone());
    }
    Ok(spec)
}

/// What the bundled kv-demo is told through its environment: step, namespace
/// mode, pattern (the token is given on its own: to a worker, or to an agent). One list, for the workers this session starts and
/// for those its local node agents start (`up --nodes`), which inherit it.
pub(super) fn worker_env(config: &SessionConfig) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let Some(step) = config.step {
        env.push(("KV_DEMO_STEP_MS", crate::clock::millis(step).to_string()));
    }
    if config.namespace_by == NamespaceBy::Instance {
        env.push(("KV_DEMO_NAMESPACE_BY", "instance".to_string()));
    }
    if let Some(pattern) = config.pattern {
        env.push(("KV_DEMO_PATTERN", pattern.word().to_string()));
    }
    if config.unsafe_worker {
        env.push(("KV_DEMO_UNSAFE", "true".to_string()));
    }
    env
}

/// A `--cmd` line for an agent, which runs it in a work folder of its own: a
/// relative program path (`./kv-demo-cpp`) is made absolute from here.
pub(super) fn absolute_program(cmd: &str) -> Result<String> {
    let mut words = crate::supervisor::split_command_line(cmd)?;
    let Some(program) = words.first_mut() else {
        anyhow::bail!("empty worker command line");
    };
    if program.contains('/') && !program.starts_with('/') {
        let here = std::env::current_dir().context("reading the current folder")?;
        *program = here.join(&*program).to_string_lossy().into_owned();
    }
    Ok(shell_words::join(words))
}
