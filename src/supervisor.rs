//! The agent role: start `kv-demo` workers, watch them, restart them by policy, kill
//! them on request, and find workers started by someone else. Headless: no UI, no KV.
//!
//! One owner task per instance holds the child process (see `instance`); the
//! [`Supervisor`] handle only sends it messages and reads the snapshots it publishes.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use plumdash::supervisor::{bundled_worker_path, InstanceAction, Supervisor, SupervisorConfig, WorkerSpec};
//! use nix::sys::signal::Signal;
//!
//! let (supervisor, mut events) = Supervisor::new(SupervisorConfig::default());
//! let id = supervisor.spawn_instance(WorkerSpec::new(bundled_worker_path()?)).await?;
//! supervisor.send(&id, InstanceAction::Signal(Signal::SIGKILL)).await?; // crash → restart
//! while let Ok(event) = events.recv().await {
//!     println!("{}", event.to_json_line());
//! #   break;
//! }
//! supervisor.shutdown_all(std::time::Duration::from_secs(3)).await;
//! # Ok(()) }
//! ```

mod action;
pub mod attach;
mod events;
mod exit;
mod instance;
pub mod orphan_guard;
mod output;
mod policy;
pub mod procstats;
mod signals;
mod snapshot;
mod spec;
pub mod standby;
mod watcher;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{broadcast, oneshot, watch};

pub use action::{ActionError, InstanceAction};
pub use attach::{discover, ForeignProcess, ProcIdentity, ProcessFinder, Stdout, DEFAULT_APP};
pub use events::{unix_ms, EventKind, EventSink, SupervisorEvent};
pub use exit::{ExitKind, RawExit};
pub use orphan_guard::OrphanGuard;
pub use output::{
    run_separator, separator_without_start, OutputBuffer, OutputLine, OutputStream,
    DEFAULT_MAX_LINE_BYTES, DEFAULT_OUTPUT_LINES,
};
pub use policy::{
    backoff_delay, CrashLoopNote, RestartConfig, RestartPolicy, DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAX, DEFAULT_CRASH_LOOP_UNDER, DEFAULT_RESTART_DELAY,
};
pub use procstats::{ProcessSampler, ProcessStats};
pub use signals::parse_signal;
pub use snapshot::{InstanceSnapshot, Lifecycle, Origin, Role};
pub use spec::{bundled_worker_path, split_command_line, WorkerSpec, WORKER_EXECUTABLE};
pub use watcher::{OutputFile, ProcessFilter, ProcessWatcher, WatcherConfig};

use instance::{spawn_owner, Control, InstanceConfig, InstanceSetup};
use spec::AgentEnv;

/// Everything the supervisor needs to know up front.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// App name: the `PLUM_APP_NAME`, the KV namespace, and the instance id prefix.
    pub app_name: String,
    pub app_version: String,
    /// Node names; instances run on the first unless their spec says otherwise.
    pub nodes: Vec<String>,
    /// Given to workers as `CONTROLLER_BASE` when set.
    pub controller_base: Option<String>,
    pub restart: RestartConfig,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
    /// Output lines kept per instance.
    pub output_lines: usize,
    pub max_line_bytes: usize,
    /// When set, each instance's output is also appended to `<log_dir>/<instance>.log`.
    pub log_dir: Option<PathBuf>,
    /// Events buffered for slow subscribers before they start to lag.
    pub event_capacity: usize,
    /// Told about every worker, so none outlives a plumdash that dies (see
    /// `orphan_guard`). `None` in library use: workers then outlive a SIGKILL.
    pub orphan_guard: Option<Arc<OrphanGuard>>,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            app_name: "kv-demo".to_string(),
            app_version: "1.0.0".to_string(),
            nodes: vec![
                "nodeA".to_string(),
                "nodeB".to_string(),
                "nodeC".to_string(),
            ],
            controller_base: None,
            restart: RestartConfig::default(),
            stop_grace: Duration::from_secs(3),
            output_lines: DEFAULT_OUTPUT_LINES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            log_dir: None,
            event_capacity: 1024,
            orphan_guard: None,
        }
    }
}

/// Handle to the supervisor. Cheap to clone; when the last clone is dropped every
/// worker is stopped.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
}

struct Shared {
    config: SupervisorConfig,
    instance_config: Arc<InstanceConfig>,
    events: EventSink,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_index: u32,
    instances: BTreeMap<String, InstanceEntry>,
    /// Instances in an active/standby group (`standby::Group`) and their part.
    roles: BTreeMap<String, Role>,
}

impl Registry {
    /// An instance's last published snapshot, with its part in a group.
    fn snapshot_of(&self, entry: &InstanceEntry) -> InstanceSnapshot {
        let mut snapshot = entry.snapshot.borrow().clone();
        snapshot.role = self.roles.get(&snapshot.id).copied().unwrap_or_default();
        snapshot
    }
}

struct InstanceEntry {
    controls: tokio::sync::mpsc::Sender<Control>,
    snapshot: watch::Receiver<InstanceSnapshot>,
    output: OutputBuffer,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Supervisor {
    /// Creates a supervisor and the first subscription to its events. Must be called
    /// inside a tokio runtime.
    pub fn new(config: SupervisorConfig) -> (Supervisor, broadcast::Receiver<SupervisorEvent>) {
        let (events, receiver) = EventSink::new(config.event_capacity);
        let instance_config = Arc::new(InstanceConfig {
            restart: config.restart.clone(),
            stop_grace: config.stop_grace,
            max_line_bytes: config.max_line_bytes,
            log_dir: config.log_dir.clone(),
            orphan_guard: config.orphan_guard.clone(),
        });
        let shared = Arc::new(Shared {
            config,
            instance_config,
            events,
            registry: Mutex::new(Registry::default()),
        });
        (Supervisor { shared }, receiver)
    }

    pub fn config(&self) -> &SupervisorConfig {
        &self.shared.config
    }

    /// Another receiver of the lifecycle events (sees events from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<SupervisorEvent> {
        self.shared.events.subscribe()
    }

    /// The sender side, for components (like the attach `ProcessWatcher`) that report into
    /// the same stream.
    pub fn event_sink(&self) -> EventSink {
        self.shared.events.clone()
    }

    /// Adds an instance (next id: `<app>-001`, `-002`, …) and starts it. If it cannot
    /// be started the instance is removed again and the error says why.
    pub async fn spawn_instance(&self, spec: WorkerSpec) -> Result<String> {
        let id = self.add_instance(spec)?;
        self.start_added(&id).await?;
        Ok(id)
    }

    /// Starts an instance added with [`Supervisor::add_instance`]; if it cannot
    /// be started it is removed again and the error says why.
    pub async fn start_added(&self, id: &str) -> Result<()> {
        match self.send(id, InstanceAction::Start).await {
            Ok(_) => Ok(()),
            Err(error) => {
                self.shared.remove(id);
                Err(error).with_context(|| format!("starting instance {id}"))
            }
        }
    }

    /// Adds an instance without starting it (phase Stopped); start it with `InstanceAction::Start`.
    pub fn add_instance(&self, spec: WorkerSpec) -> Result<String> {
        Shared::register(&self.shared, None, spec)
    }

    /// Adds an instance under an id chosen by the caller (a node agent runs the
    /// controller's instance ids) without starting it; refused if the id is taken.
    pub fn add_instance_as(&self, id: &str, spec: WorkerSpec) -> Result<String> {
        Shared::register(&self.shared, Some(id), spec)
    }

    /// Stops one instance (SIGTERM, `grace`, SIGKILL), waits until it is reaped,
    /// ends its owner and forgets it. `None` if there was no such instance.
    pub async fn remove_instance(&self, id: &str, grace: Duration) -> Option<InstanceSnapshot> {
        let entry = self.shared.registry().instances.remove(id)?;
        let last = entry.snapshot.borrow().clone();
        let (reply, outcome) = oneshot::channel();
        let snapshot = match entry
            .controls
            .send(Control::Shutdown { grace, reply })
            .await
        {
            Ok(()) => outcome.await.unwrap_or(last),
            Err(_) => last,
        };
        if let Some(task) = entry.task {
            let _ = task.await;
        }
        Some(snapshot)
    }

    /// Sends an action to an instance's owner and waits for the outcome. Stop and
    /// Restart return once the old process is gone (at most the grace period).
    pub async fn send(
        &self,
        instance: &str,
        action: InstanceAction,
    ) -> Result<InstanceSnapshot, ActionError> {
        let controls = self.shared.controls(instance)?;
        let (reply, outcome) = oneshot::channel();
        controls
            .send(Control::Act { action, reply })
            .await
            .map_err(|_| ActionError::ShutDown(instance.to_string()))?;
        outcome
            .await
            .map_err(|_| ActionError::ShutDown(instance.to_string()))?
    }

    /// All instances, ordered by id. Reads the last published snapshots; never waits
    /// on an owner task.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        let registry = self.shared.registry();
        registry
            .instances
            .values()
            .map(|entry| registry.snapshot_of(entry))
            .collect()
    }

    pub fn instance(&self, instance: &str) -> Option<InstanceSnapshot> {
        let registry = self.shared.registry();
        registry
            .instances
            .get(instance)
            .map(|entry| registry.snapshot_of(entry))
    }

    /// Records an instance's part in an active/standby group (its snapshots say it).
    pub fn set_role(&self, instance: &str, role: Role) {
        self.shared
            .registry()
            .roles
            .insert(instance.to_string(), role);
    }

    /// The captured output of an instance (shared, live).
    pub fn output(&self, instance: &str) -> Option<OutputBuffer> {
        let registry = self.shared.registry();
        registry
            .instances
            .get(instance)
            .map(|entry| entry.output.clone())
    }

    /// The last `count` output lines of an instance, oldest first.
    pub fn recent_output(&self, instance: &str, count: usize) -> Vec<OutputLine> {
        self.output(instance)
            .map(|buffer| buffer.recent(count))
            .unwrap_or_default()
    }

    /// Pids of the workers we own and that are alive right now.
    pub fn owned_pids(&self) -> Vec<u32> {
        self.instances()
            .into_iter()
            .filter_map(|snapshot| snapshot.pid)
            .collect()
    }

    /// Stops every worker (SIGTERM, `grace`, SIGKILL), waits until all are reaped and
    /// ends the owner tasks. Returns the final snapshots.
    pub async fn shutdown_all(&self, grace: Duration) -> Vec<InstanceSnapshot> {
        let entries = self.shared.take_owners();
        let stops = entries.into_iter().map(|(id, controls, task)| async move {
            let (reply, outcome) = oneshot::channel();
            let sent = controls
                .send(Control::Shutdown { grace, reply })
                .await
                .is_ok();
            let snapshot = if sent { outcome.await.ok() } else { None };
            if let Some(task) = task {
                let _ = task.await;
            }
            (id, snapshot)
        });
        let finished = futures_util::future::join_all(stops).await;
        let snapshots: Vec<_> = finished
            .into_iter()
            .filter_map(|(id, snapshot)| snapshot.or_else(|| self.instance(&id)))
            .collect();
        snapshots
    }
}

impl Supervisor {
    /// Ends every owner task but leaves the worker processes running (they are
    /// no longer supervised or restarted). Used by "quit, leave workers running".
    pub async fn detach_all(&self) -> Vec<String> {
        let entries = self.shared.take_owners();
        let mut left = Vec::new();
        for (id, controls, task) in entries {
            let pid = self.instance(&id).and_then(|s| s.pid);
            let (reply, outcome) = oneshot::channel();
            if controls.send(Control::Detach { reply }).await.is_ok() {
                let _ = outcome.await;
            }
            if let Some(task) = task {
                let _ = task.await;
            }
            if let Some(pid) = pid {
                left.push(format!("{id} (pid {pid})"));
            }
        }
        left
    }
}

/// An owner's id, its control channel and its task (taken: only one caller
/// may wait for it).
type OwnerHandle = (
    String,
    tokio::sync::mpsc::Sender<Control>,
    Option<tokio::task::JoinHandle<()>>,
);

impl Shared {
    fn take_owners(&self) -> Vec<OwnerHandle> {
        self.registry()
            .instances
            .iter_mut()
            .map(|(id, entry)| (id.clone(), entry.controls.clone(), entry.task.take()))
            .collect()
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // Registry updates are single inserts/removes; a panic cannot leave it half-done.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn controls(&self, instance: &str) -> Result<tokio::sync::mpsc::Sender<Control>, ActionError> {
        self.registry()
            .instances
            .get(instance)
            .map(|entry| entry.controls.clone())
            .ok_or_else(|| ActionError::UnknownInstance(instance.to_string()))
    }

    fn remove(&self, instance: &str) {
        self.registry().instances.remove(instance);
    }

    fn register(shared: &Arc<Shared>, id: Option<&str>, spec: WorkerSpec) -> Result<String> {
        let config = &shared.config;
        let node = spec
            .node
            .clone()
            .or_else(|| config.nodes.first().cloned())
            .unwrap_or_else(|| "nodeA".to_string());
        let mut registry = shared.registry();
        let id = match id {
            Some(id) if registry.instances.contains_key(id) => {
                anyhow::bail!("instance {id} already exists")
            }
            Some(id) => id.to_string(),
            None => {
                registry.next_index += 1;
                format!("{}-{:03}", config.app_name, registry.next_index)
            }
        };
        let output = OutputBuffer::new(config.output_lines);
        // An app of its own (an agent runs many) is its snapshot's app too.
        let app_name = spec
            .env
            .get("PLUM_APP_NAME")
            .cloned()
            .unwrap_or_else(|| config.app_name.clone());
        let setup = InstanceSetup {
            spec,
            agent_env: AgentEnv {
                instance_id: id.clone(),
                app_name,
                app_version: config.app_version.clone(),
                node_id: node,
                controller_base: config.controller_base.clone(),
            },
            config: shared.instance_config.clone(),
            events: shared.events.clone(),
            output: output.clone(),
        };
        let channels = spawn_owner(setup).context("cannot listen for SIGCHLD")?;
        registry.instances.insert(
            id.clone(),
            InstanceEntry {
                controls: channels.controls,
                snapshot: channels.snapshot,
                output,
                task: Some(channels.task),
            },
        );
        Ok(id)
    }
}
