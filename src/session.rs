//! One running system: a controller (embedded or remote), the supervisor and
//! its workers, and the namespace change feeds (the app's, or each instance's
//! with `--namespace-by instance`) — turned into recovery facts.
//! `up` (dashboard or headless) and `verify` both drive a `Session`.

mod config;
mod facts;
mod feed;
mod fresh;
mod handle;
pub mod remote;
mod start;
mod writers;

pub use config::{SessionConfig, WorkerExit};
pub use facts::{fact_from_change, fact_from_event};
pub use feed::{Observed, MAX_FEEDS};
pub use fresh::Archived;
pub use handle::{NodeOp, SessionHandle};
pub use start::NewInstance;

use feed::Pending;

use crate::agent::local::LocalNodes;
use crate::cluster::ClusterView;
use crate::controller::RunningController;
use crate::kv::DistributedMemory;
use crate::recovery::{Fact, TsMs};
use crate::supervisor::{
    InstanceAction, InstanceSnapshot, ProcessWatcher, Supervisor, SupervisorEvent,
};
use anyhow::Result;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

pub struct Session {
    /// The embedded controller (`None`: a remote one, or taken away by verify).
    controller: Option<RunningController>,
    /// The port of the embedded controller's listener the dashboard itself
    /// reads (`start::dashboard_listener`); the workers are given the other.
    own_listener: Option<u16>,
    controller_url: String,
    supervisor: Supervisor,
    /// The client of the app's namespace (each feed has its own).
    dm: DistributedMemory,
    /// The worker's command line, as shown to a person.
    worker_command: String,
    events: broadcast::Receiver<SupervisorEvent>,
    /// The namespace feeds: the app's, or one feed for every instance's own.
    feeds: feed::Feeds,
    /// Attach mode: workers we did not start, found and followed by rescans.
    attached: Option<Arc<ProcessWatcher>>,
    /// Attach: the namespace did not exist yet at start; these did.
    namespace_wait: Option<Vec<String>>,
    /// Work already decided, done before anything new is read (kept here, not in
    /// a future, so a caller that drops `next_fact` loses nothing).
    pending: VecDeque<Pending>,
    /// The feeds that poll: a state shorter than one interval can be missed.
    polling: BTreeSet<String>,
    /// `up --nodes`: the agent processes that run the workers.
    nodes: Option<Arc<LocalNodes>>,
    /// The app's instances on other machines, from the cluster API
    /// (`SessionConfig::remote_instances`).
    remote: Option<Arc<remote::Remote>>,
    /// Active and standby: the task that starts a standby when the active crashes.
    takeover: Option<tokio::task::JoinHandle<()>>,
    /// Reads of the controller's cluster API, when it has one.
    cluster: Option<mpsc::Receiver<ClusterView>>,
    /// Node actions done through a handle, to be told as facts.
    node_facts: mpsc::UnboundedReceiver<(TsMs, Fact)>,
    node_facts_tx: mpsc::UnboundedSender<(TsMs, Fact)>,
    /// What a fresh start moved out of the way (`SessionConfig::fresh`).
    archived: Option<fresh::Archived>,
    config: SessionConfig,
}

impl Session {
    /// The controller's base URL, as the workers are given it.
    pub fn controller_url(&self) -> &str {
        &self.controller_url
    }

    /// The embedded controller, if this session runs one (and it is up).
    pub fn embedded_controller(&self) -> Option<&RunningController> {
        self.controller.as_ref()
    }

    /// Takes the embedded controller away (verify's outage); the feeds see it go.
    pub fn take_controller(&mut self) -> Option<RunningController> {
        self.controller.take()
    }

    /// Puts a restarted controller back, and reconnects the feeds at once.
    pub fn restore_controller(&mut self, mut controller: RunningController) {
        if let Some(port) = self.own_listener {
            // The feeds read that port: the restarted controller serves it again.
            if let Err(e) = start::dashboard_listener(&mut controller, port) {
                tracing::warn!("the dashboard's own listener did not come back: {e:#}");
            }
        }
        self.controller = Some(controller);
        self.resubscribe();
    }

    /// The supervisor of the workers this session owns.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// The client of the app's namespace.
    pub fn client(&self) -> &DistributedMemory {
        &self.dm
    }

    /// Facts decided but not handed out yet (a fresh read of the namespace
    /// under way before an exit is told).
    pub fn owes_facts(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The last run's keys this fresh start archived, if any.
    pub fn archived(&self) -> Option<&Archived> {
        self.archived.as_ref()
    }

    /// The worker's command line, as shown to a person.
    pub fn worker_command(&self) -> &str {
        &self.worker_command
    }

    /// The local agents of `up --nodes`, if any.
    pub fn local_nodes(&self) -> Option<&LocalNodes> {
        self.nodes.as_deref()
    }

    /// True when the workers shown were found, not started, by us.
    pub fn is_attached(&self) -> bool {
        self.attached.is_some()
    }

    /// Attach: `Some(namespaces that exist)` when the app's namespace did not
    /// exist yet when the session started.
    pub fn namespace_wait(&self) -> Option<&[String]> {
        self.namespace_wait.as_deref()
    }

    pub fn handle(&self) -> SessionHandle {
        SessionHandle {
            supervisor: self.supervisor.clone(),
            attached: self.attached.clone(),
            nodes: self.nodes.clone(),
            remote: self.remote.clone(),
            node_facts: self.node_facts_tx.clone(),
        }
    }

    /// Every instance: owned ones, then attached ones.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        self.handle().instances()
    }

    /// See [`SessionHandle::instance`].
    pub fn instance(&self, instance: &str) -> Option<InstanceSnapshot> {
        self.handle().instance(instance)
    }

    pub async fn act(&self, instance: &str, action: InstanceAction) -> Result<()> {
        self.handle().act(instance, action).await
    }

    /// See [`SessionHandle::output`].
    pub fn output(&self, instance: &str) -> Option<crate::supervisor::OutputBuffer> {
        self.handle().output(instance)
    }

    /// See [`SessionHandle::attached_process`].
    pub fn attached_process(&self, instance: &str) -> Option<crate::supervisor::ForeignProcess> {
        self.handle().attached_process(instance)
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The namespace an instance keeps its task in.
    pub fn namespace_of<'a>(&'a self, instance: &'a str) -> &'a str {
        self.config
            .namespace_by
            .namespace(&self.config.app, instance)
    }

    /// The recovery state this session's facts are judged into: one tracker
    /// per namespace it watches (`Board`), as its workers choose them.
    pub fn new_board(&self) -> crate::recovery::Board {
        let mut board = crate::recovery::Board::new(&self.config.app, self.config.namespace_by);
        board.set_reading(self.config.keys.clone(), self.config.pattern);
        // Our own controller's TTL is known; another's is taken as the default.
        if self.embedded_controller().is_some() {
            board.set_node_ttl(self.config.cluster.node_ttl);
        }
        board
    }

    /// Ends the session: workers stopped (or left running), controller stopped.
    /// Returns the workers left running, if any.
    pub async fn shutdown(self, workers: WorkerExit) -> Result<Vec<String>> {
        // No standby may take over while the workers stop.
        if let Some(takeover) = &self.takeover {
            takeover.abort();
        }
        let left = match workers {
            WorkerExit::StopGracefully => {
                self.supervisor.shutdown_all(self.config.stop_grace).await;
                Vec::new()
            }
            WorkerExit::LeaveRunning => self.supervisor.detach_all().await,
        };
        // The agents stop their workers (SIGTERM, grace) before the controller
        // goes; a handle still held elsewhere (a node action, the control
        // socket) does not keep them, nor their test hosts.
        if let Some(nodes) = &self.nodes {
            nodes
                .stop(self.config.stop_grace + Duration::from_secs(2))
                .await;
        }
        drop(self.feeds);
        // Dropping the last handle ends the rescans.
        drop(self.attached);
        if let Some(controller) = self.controller {
            controller.shutdown().await?;
        }
        Ok(left)
    }
}
