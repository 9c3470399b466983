//! One running system: a controller (embedded or remote), the supervisor and
//! its workers, and the namespace change feeds (the app's, or each instance's
//! with `--namespace-by instance`) — turned into recovery facts.
//! `up` (dashboard or headless) and `verify` both drive a `Session`.

use crate::agent::local::{LocalNodes, LocalNodesConfig};
use crate::clock::now_ms;
use crate::cluster::{ClusterRead, ClusterReader, ClusterView};
use crate::controller::{self, ControllerConfig, RunningController};
use crate::kv::{
    ClientOptions, DistributedMemory, FeedMode, FeedStatus, NamespaceBy, WatchEvent, WatchOptions,
    Watcher,
};
use crate::recovery::{Fact, NodeAction, ProcessExit, TsMs};
use crate::supervisor::{
    bundled_worker_path, Action, EventKind, ExitKind, InstanceSnapshot, OrphanGuard, RawExit,
    RestartConfig, Supervisor, SupervisorConfig, SupervisorEvent, Watcher as ProcessWatcher,
    WatcherConfig, WorkerSpec,
};
use anyhow::{Context, Result};
use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::{StreamExt, StreamMap};

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

/// A fact, when it happened, and the namespace whose feed told it (`None`
/// for the processes, the cluster and node actions).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub at: TsMs,
    pub namespace: Option<String>,
    pub fact: Fact,
}

/// What `next_fact` owes before reading anything new.
enum Pending {
    /// Read a namespace afresh and hand it out as a `Snapshot` (at this time).
    /// The read runs as its own task, so a dropped `next_fact` does not restart it.
    FreshRead {
        at: TsMs,
        namespace: String,
        read: Option<tokio::task::JoinHandle<Option<Vec<crate::kv::Entry>>>>,
    },
    Fact(TsMs, Fact),
}

pub struct Session {
    pub controller: Option<RunningController>,
    pub controller_url: String,
    pub supervisor: Supervisor,
    pub dm: DistributedMemory,
    pub worker_command: String,
    events: broadcast::Receiver<SupervisorEvent>,
    /// The namespace feeds, by namespace: the app's, or one per instance.
    feeds: StreamMap<String, Watcher>,
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
    /// Active and standby: the task that starts a standby when the active crashes.
    takeover: Option<tokio::task::JoinHandle<()>>,
    /// Reads of the controller's cluster API, when it has one.
    cluster: Option<mpsc::Receiver<ClusterView>>,
    /// Node actions done through a handle, to be told as facts.
    node_facts: mpsc::UnboundedReceiver<(TsMs, Fact)>,
    node_facts_tx: mpsc::UnboundedSender<(TsMs, Fact)>,
    config: SessionConfig,
}

/// What acting on workers needs, cheap to clone into a background task.
#[derive(Clone)]
pub struct SessionHandle {
    supervisor: Supervisor,
    attached: Option<Arc<ProcessWatcher>>,
    nodes: Option<Arc<LocalNodes>>,
    node_facts: mpsc::UnboundedSender<(TsMs, Fact)>,
}

/// What to do to a local node (`K`, `F`, `ctl kill-node`, `ctl freeze-node`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOp {
    Kill,
    /// Freeze it, or thaw it if it is frozen.
    ToggleFreeze,
    /// Start a node killed here again (a machine coming back).
    Revive,
}

/// The most namespace feeds a session holds: each is a stream held open (two
/// descriptors with the embedded controller). Instances found beyond it (attach
/// with `--namespace-by instance`) are shown without a task.
pub const MAX_FEEDS: usize = 100;

/// How often the cluster API is read (the original's nodes beat every 5 s,
/// ours every 1 s: a node's death is seen within a read of the controller's).
const CLUSTER_READ: Duration = Duration::from_millis(500);

/// How often attach mode rescans the process table (a death is seen at once anyway).
const ATTACH_RESCAN: Duration = Duration::from_millis(500);
/// Longest wait for the fresh namespace read after a worker's exit.
const FRESH_READ_TIMEOUT: Duration = Duration::from_secs(2);

fn watch_options(config: &SessionConfig) -> WatchOptions {
    WatchOptions {
        mode: config.feed,
        poll_interval: config.poll_interval,
        ..WatchOptions::default()
    }
}

impl Session {
    /// Starts the controller (unless remote), the feed and the workers.
    pub async fn start(config: SessionConfig) -> Result<Session> {
        let mut session = Session::connect(config).await?;
        session.refuse_live_writers().await?;
        if session.config.standby && session.config.instances > 1 {
            session.start_standby_group().await?;
            return Ok(session);
        }
        for _ in 0..session.config.instances {
            session.new_instance().await?;
        }
        Ok(session)
    }

    /// One active instance and the rest standing by: all are added, automatic
    /// restarts are the group's (the next takes over), and the first starts.
    async fn start_standby_group(&mut self) -> Result<()> {
        let spec = worker_spec(&self.config)?;
        let mut ids = Vec::new();
        for _ in 0..self.config.instances {
            let id = self.supervisor.add_instance(spec.clone())?;
            self.supervisor
                .send(&id, Action::SetAutoRestart(false))
                .await
                .with_context(|| format!("setting up standby {id}"))?;
            ids.push(id);
        }
        let group =
            crate::supervisor::standby::Group::new(ids.clone(), self.config.restart.clone());
        self.takeover = Some(crate::supervisor::standby::spawn(
            self.supervisor.clone(),
            group,
        ));
        self.supervisor.start_added(&ids[0]).await
    }

    /// `up --nodes N`: the embedded controller, N agent processes (`nodeA`, …,
    /// each its own process group) and a deployment of the instances on
    /// `nodeA`. The workers are the agents', so they are watched as in attach
    /// mode (found by `PLUM_APP_NAME`, signalled after an identity re-check).
    pub async fn start_nodes(config: SessionConfig, nodes: LocalNodesConfig) -> Result<Session> {
        let mut session = Session::connect(config).await?;
        session.refuse_live_writers().await?;
        let token = session.config.token.clone();
        // The agents run `--cmd` when given: its program is the worker to watch.
        if session.config.cmd.is_some() {
            let spec = worker_spec(&session.config)?;
            if let Some(name) = spec.program.file_name() {
                session.config.worker_name = name.to_string_lossy().into_owned();
            }
        }
        // Watching before any agent exists: every worker is then seen starting
        // (a recovery or a fresh start), not found running as in attach.
        session.watch_local_workers(true);
        let local = LocalNodes::spawn(&LocalNodesConfig {
            controller: session.controller_url.clone(),
            token: token.clone(),
            step: session.config.step,
            ..nodes
        })?;
        // If we die, even by SIGKILL, the guard kills each agent's group, and
        // each agent's own guard its workers: nothing outlives `up`.
        if let Some(guard) = &session.supervisor.config().orphan_guard {
            for (_, pid) in local.nodes() {
                guard.watch(pid);
            }
        }
        let names: Vec<String> = local.nodes().into_iter().map(|(name, _)| name).collect();
        session.nodes = Some(Arc::new(local));
        crate::agent::local::wait_healthy(
            &session.controller_url,
            token.as_deref(),
            &names,
            Duration::from_secs(10),
        )
        .await?;
        let start_cmd = match &session.config.cmd {
            Some(cmd) => absolute_program(cmd)?,
            None => String::new(),
        };
        let instances = u32::try_from(session.config.instances).unwrap_or(u32::MAX);
        let first = names.first().map_or("nodeA", String::as_str);
        crate::agent::local::deploy(
            &session.controller_url,
            token.as_deref(),
            &session.config.app,
            &start_cmd,
            instances,
            first,
        )
        .await?;
        session.read_cluster();
        Ok(session)
    }

    /// Reads the controller's cluster API every [`CLUSTER_READ`], telling each
    /// picture that differs from the last; stops when the controller has none.
    fn read_cluster(&mut self) {
        let reader = match ClusterReader::new(&self.controller_url, self.config.token.clone()) {
            Ok(reader) => reader,
            Err(e) => {
                tracing::warn!("not reading the cluster: {e:#}");
                return;
            }
        };
        let (tx, rx) = mpsc::channel(4);
        self.cluster = Some(rx);
        tokio::spawn(async move {
            let mut last: Option<ClusterView> = None;
            let mut tick = tokio::time::interval(CLUSTER_READ);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match reader.read().await {
                    Ok(ClusterRead::View(view)) => {
                        if last.as_ref() != Some(&view) {
                            last = Some(view.clone());
                            if tx.send(view).await.is_err() {
                                return;
                            }
                        }
                    }
                    Ok(ClusterRead::NoClusterApi) => {
                        tracing::info!("the controller serves no cluster API: no nodes shown");
                        return;
                    }
                    // The namespace feed reports the controller's outages.
                    Err(e) => tracing::debug!("cluster read failed: {e:#}"),
                }
            }
        });
    }

    /// The process watcher of attach mode and `up --nodes`: the app's workers on
    /// this machine, found by rescans (their agent, not us, starts them).
    /// `ours_only` (`up --nodes`): only those writing to this session's
    /// controller, as its agents' are (another `up` of the same app on another
    /// port is not ours), all seen starting.
    fn watch_local_workers(&mut self, ours_only: bool) {
        let url = self.controller_url.clone();
        let only: Option<crate::supervisor::ProcessFilter> = ours_only.then(|| {
            Arc::new(move |p: &crate::supervisor::ForeignProcess| writes_to(p, &url))
                as crate::supervisor::ProcessFilter
        });
        self.attached = Some(Arc::new(ProcessWatcher::spawn(
            WatcherConfig {
                app_name: self.config.app.clone(),
                worker_name: self.config.worker_name.clone(),
                interval: ATTACH_RESCAN,
                owned_by: None,
                only,
                fresh: ours_only,
            },
            self.supervisor.event_sink(),
        )));
    }

    /// The local agents of `up --nodes`, if any.
    pub fn local_nodes(&self) -> Option<&LocalNodes> {
        self.nodes.as_deref()
    }

    /// Refuses to start when workers of the app already write to our controller.
    async fn refuse_live_writers(&self) -> Result<()> {
        let session = self;
        let (app, url) = (session.config.app.clone(), session.controller_url.clone());
        let program = worker_spec(&session.config)?
            .program
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        let others =
            tokio::task::spawn_blocking(move || live_writers(&app, &url, program.as_deref()))
                .await
                .context("scanning for workers already running")?;
        if !others.is_empty() {
            let pids: Vec<String> = others
                .iter()
                .map(|p| format!("{} ({})", p.pid, p.name))
                .collect();
            anyhow::bail!(
                "{} worker(s) of app {:?} already write to {}: pid {}; a second writer would \
                 mix one namespace. Stop them (kill {}) or watch them with \
                 `plumdash attach --controller {} --app {}`",
                others.len(),
                session.config.app,
                session.controller_url,
                pids.join(", "),
                others
                    .iter()
                    .map(|p| p.pid.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                session.controller_url,
                session.config.app,
            );
        }
        Ok(())
    }

    /// Attach mode: no spawning; watch the namespace of a running controller
    /// and the local workers of the app (one per `PLUM_INSTANCE_ID`: the process
    /// running the worker program, its shells and `tee` as wrappers), which can be
    /// signalled after an identity re-check.
    pub async fn attach(config: SessionConfig) -> Result<Session> {
        let mut session = Session::connect(config).await?;
        let per_instance = session.config.namespace_by == NamespaceBy::Instance;
        // A namespace that does not exist yet is waited for (a demo may start the
        // dashboard before the workers); the ones that do exist are named.
        match session.dm.namespaces().await {
            Ok(names) if !per_instance && !names.iter().any(|n| n == session.dm.namespace()) => {
                session.namespace_wait = Some(names);
            }
            Ok(_) => {}
            Err(e) => anyhow::bail!(
                "cannot reach the controller at {}: {e}",
                session.controller_url
            ),
        }
        session.watch_local_workers(false);
        session.read_cluster();
        Ok(session)
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
            node_facts: self.node_facts_tx.clone(),
        }
    }

    /// Every instance: owned ones, then attached ones.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        self.handle().instances()
    }

    pub async fn act(&self, instance: &str, action: Action) -> Result<()> {
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

    async fn connect(config: SessionConfig) -> Result<Session> {
        let (controller, controller_url) = match &config.remote_controller {
            Some(url) => (None, url.trim_end_matches('/').to_string()),
            None => {
                let running = controller::start(ControllerConfig {
                    listen: config.listen,
                    db: config.db.clone(),
                    token: config.token.clone(),
                    fallback_to_free_port: true,
                    cluster: config.cluster,
                })
                .await
                .context("starting the embedded controller")?;
                let url = running.url();
                (Some(running), url)
            }
        };
        let dm = DistributedMemory::with_options(
            &config.app,
            &controller_url,
            ClientOptions {
                token: config.token.clone(),
                ..ClientOptions::default()
            },
        )?;
        let feeds = StreamMap::new();

        let orphan_guard = match &config.orphan_guard {
            Some(program) => Some(Arc::new(OrphanGuard::start(program)?)),
            None => None,
        };
        let (supervisor, events) = Supervisor::new(SupervisorConfig {
            orphan_guard,
            app_name: config.app.clone(),
            controller_base: Some(controller_url.clone()),
            restart: config.restart.clone(),
            stop_grace: config.stop_grace,
            log_dir: config.log_dir.clone(),
            ..SupervisorConfig::default()
        });
        let spec = worker_spec(&config)?;
        let worker_command = spec.display_command();
        let shared = (config.namespace_by == NamespaceBy::App).then(|| config.app.clone());
        let (node_facts_tx, node_facts) = mpsc::unbounded_channel();
        let mut session = Session {
            controller,
            controller_url,
            supervisor,
            dm,
            worker_command,
            events,
            feeds,
            attached: None,
            namespace_wait: None,
            pending: VecDeque::new(),
            polling: BTreeSet::new(),
            nodes: None,
            takeover: None,
            cluster: None,
            node_facts,
            node_facts_tx,
            config,
        };
        // Subscribe before any worker starts, so no write is missed (an
        // instance's own namespace is subscribed before it starts).
        if let Some(app) = shared {
            session.subscribe(&app)?;
        }
        Ok(session)
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Adds and starts one more worker instance; returns its id. Its own
    /// namespace, if it has one, is watched before it starts.
    pub async fn new_instance(&mut self) -> Result<String> {
        let spec = worker_spec(&self.config)?;
        if self.config.namespace_by == NamespaceBy::App {
            return self.supervisor.spawn_instance(spec).await;
        }
        let id = self.supervisor.add_instance(spec)?;
        if let Err(error) = self.watch_namespace(&id) {
            self.supervisor.remove_instance(&id, Duration::ZERO).await;
            return Err(error);
        }
        if let Err(error) = self.supervisor.start_added(&id).await {
            self.feeds.remove(&id);
            return Err(error);
        }
        Ok(id)
    }

    /// The namespace an instance keeps its task in.
    pub fn namespace_of<'a>(&'a self, instance: &'a str) -> &'a str {
        self.config
            .namespace_by
            .namespace(&self.config.app, instance)
    }

    /// Starts watching `namespace` (once; at most [`MAX_FEEDS`] namespaces).
    fn watch_namespace(&mut self, namespace: &str) -> Result<()> {
        if !self.feeds.contains_key(namespace) {
            if self.feeds.len() >= MAX_FEEDS {
                anyhow::bail!(
                    "not watching namespace {namespace:?}: {MAX_FEEDS} are watched already"
                );
            }
            self.subscribe(namespace)
                .with_context(|| format!("watching namespace {namespace:?}"))?;
        }
        Ok(())
    }

    /// A fresh feed of `namespace` in place of any it had (the old one is
    /// dropped with whatever it still held); it starts with a snapshot.
    fn subscribe(&mut self, namespace: &str) -> Result<(), crate::kv::KvError> {
        let feed = self
            .dm
            .for_namespace(namespace)?
            .subscribe(watch_options(&self.config));
        self.feeds.insert(namespace.to_string(), feed);
        Ok(())
    }

    /// The recovery state this session's facts are judged into: one tracker
    /// per namespace it watches (`Board`), as its workers choose them.
    pub fn new_board(&self) -> crate::recovery::Board {
        crate::recovery::Board::new(&self.config.app, self.config.namespace_by)
    }

    /// Replaces every namespace feed with a fresh subscription (it connects at
    /// once instead of waiting out the old one's reconnection backoff, e.g.
    /// right after a controller restart). Each starts with a snapshot.
    pub fn resubscribe(&mut self) {
        let names: Vec<String> = self.feeds.keys().cloned().collect();
        for ns in names {
            // Watched already, so the name is valid.
            let _ = self.subscribe(&ns);
        }
    }

    /// The next fact, from the processes or from the namespace, with its time.
    /// `None` once both sources have ended. See [`Session::next_observed`].
    pub async fn next_fact(&mut self) -> Option<(TsMs, Fact)> {
        self.next_observed().await.map(|o| (o.at, o.fact))
    }

    /// The next fact with its time and, for a namespace's, which namespace.
    /// `None` once both sources have ended.
    /// Cancel-safe: dropping the future between facts (as `select!` does) loses none.
    pub async fn next_observed(&mut self) -> Option<Observed> {
        let process = |at: TsMs, fact: Fact| Observed {
            at,
            namespace: None,
            fact,
        };
        loop {
            match self.pending.front_mut() {
                Some(Pending::FreshRead {
                    at,
                    namespace,
                    read,
                }) => {
                    let at = *at;
                    let namespace = namespace.clone();
                    let read = read.get_or_insert_with(|| {
                        let dm = self.dm.for_namespace(&namespace).ok();
                        tokio::spawn(async move {
                            let dm = dm?;
                            let read = tokio::time::timeout(FRESH_READ_TIMEOUT, dm.get_all());
                            read.await.ok()?.ok()
                        })
                    });
                    // Dropped while waiting: the read goes on and is awaited next time.
                    let entries = read.await.ok().flatten();
                    self.pending.pop_front();
                    if let Some(entries) = entries {
                        // Nothing older than this read may arrive after it.
                        let _ = self.subscribe(&namespace);
                        return Some(Observed {
                            at,
                            namespace: Some(namespace),
                            fact: Fact::Snapshot(entries),
                        });
                    }
                    // Not answered in time: the exit is judged from what is known
                    // (and a namespace not watched yet is watched anyway).
                    if !self.feeds.contains_key(&namespace) {
                        let _ = self.watch_namespace(&namespace);
                    }
                    continue;
                }
                Some(Pending::Fact(..)) => {
                    if let Some(Pending::Fact(at, fact)) = self.pending.pop_front() {
                        return Some(process(at, fact));
                    }
                }
                None => {}
            }
            tokio::select! {
                // Process events first: a worker's first writes can reach the
                // feed before its `Started` is read, and the order decides
                // whether the start looks like a recovery.
                biased;
                event = self.events.recv() => match event {
                    Ok(event) => {
                        let Some(fact) = fact_from_event(&event) else { continue };
                        let namespace = self.namespace_of(&event.instance).to_string();
                        // A worker found (attach) in a namespace of its own: what
                        // that holds is read first (and then watched), so the
                        // worker is judged as found there.
                        let unwatched = !self.feeds.contains_key(&namespace)
                            && self.feeds.len() < MAX_FEEDS;
                        let unseen_end = matches!(
                            event.kind,
                            EventKind::Exited { status: None, .. }
                        );
                        let polling = self.polling.contains(&namespace);
                        // How a run ended is judged from the namespace: read it now,
                        // not from the last poll (which may predate its last writes).
                        let ended = matches!(fact, Fact::Exited { .. }) && (unseen_end || polling);
                        if unwatched || ended {
                            // The fresh read goes first.
                            self.pending.push_back(Pending::FreshRead {
                                at: event.ts_ms,
                                namespace,
                                read: None,
                            });
                            self.pending.push_back(Pending::Fact(event.ts_ms, fact));
                            continue;
                        }
                        return Some(process(event.ts_ms, fact));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                view = next_view(&mut self.cluster) => match view {
                    Some(view) => return Some(process(now_ms(), Fact::Cluster(view))),
                    None => self.cluster = None,
                },
                Some((at, fact)) = self.node_facts.recv() => return Some(process(at, fact)),
                change = self.feeds.next(), if !self.feeds.is_empty() => {
                    let (namespace, change) = change?;
                    match &change {
                        WatchEvent::Status(FeedStatus::Polling(_)) => {
                            self.polling.insert(namespace.clone());
                        }
                        WatchEvent::Status(FeedStatus::Streaming) => {
                            self.polling.remove(&namespace);
                        }
                        _ => {}
                    }
                    let fact = fact_from_change(change);
                    // A worker's start keys: under our agents, a new worker to
                    // find now, before its first checkpoint (not at the next rescan).
                    if self.nodes.is_some() && announces_a_start(&fact) {
                        if let Some(watcher) = &self.attached {
                            watcher.rescan();
                        }
                    }
                    let (at, fact) = fact.stamped(now_ms());
                    return Some(Observed {
                        at,
                        namespace: Some(namespace),
                        fact,
                    });
                }
            }
        }
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
        // The agents stop their workers (SIGTERM, grace) before the controller goes.
        // A node action still running holds a handle: its Drop kills what is left.
        if let Some(nodes) = self.nodes.and_then(|n| Arc::try_unwrap(n).ok()) {
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

/// The next cluster read; never ready when there is no reader.
async fn next_view(cluster: &mut Option<mpsc::Receiver<ClusterView>>) -> Option<ClusterView> {
    match cluster {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl SessionHandle {
    /// Kills a local node, or freezes or thaws it, and tells it as a fact.
    /// Returns what was done.
    pub fn node_action(&self, node: &str, op: NodeOp) -> Result<NodeAction> {
        let nodes = self
            .nodes
            .as_ref()
            .context("no local nodes here: `up --nodes N` starts them")?;
        let action = match op {
            NodeOp::Kill => {
                nodes.kill(node)?;
                NodeAction::Killed
            }
            NodeOp::ToggleFreeze if nodes.is_frozen(node)? => {
                nodes.thaw(node)?;
                NodeAction::Thawed
            }
            NodeOp::ToggleFreeze => {
                nodes.freeze(node)?;
                NodeAction::Frozen
            }
            NodeOp::Revive => {
                let pid = nodes.revive(node)?;
                // Nothing outlives `up`: the new agent is the guard's too.
                if let Some(guard) = &self.supervisor.config().orphan_guard {
                    guard.watch(pid);
                }
                NodeAction::Revived
            }
        };
        let fact = Fact::NodeAction {
            node: node.to_string(),
            action,
        };
        // The session is gone only at exit: nothing left to tell.
        let _ = self.node_facts.send((now_ms(), fact));
        Ok(action)
    }

    /// The local nodes' agents: name and pid (`up --nodes`).
    pub fn local_agents(&self) -> Vec<(String, u32)> {
        self.nodes.iter().flat_map(|n| n.nodes()).collect()
    }

    /// Every instance: owned ones, then attached ones.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        let mut all = self.supervisor.instances();
        if let Some(w) = &self.attached {
            all.extend(w.instances());
        }
        all
    }

    /// Performs an action. Attached workers can only be signalled (their own
    /// agent starts and stops them), and only after re-checking that the pid
    /// is still the process we found.
    pub async fn act(&self, instance: &str, action: Action) -> Result<()> {
        if let Some(w) = &self.attached {
            if w.instances().iter().any(|s| s.id == instance) {
                let Action::Signal(sig) = action else {
                    anyhow::bail!(
                        "{instance} was not started by plumdash: only signals can be sent to it"
                    );
                };
                let process = w
                    .process(instance)
                    .with_context(|| format!("{instance} is not running"))?;
                return process.signal(sig);
            }
        }
        self.supervisor.send(instance, action).await?;
        Ok(())
    }

    /// Signals every process of the instance's tree: an attached worker and its
    /// wrappers (each re-checked first), as an agent stopping its process group
    /// would. Owned workers are signalled as a process group anyway.
    pub async fn signal_tree(
        &self,
        instance: &str,
        signal: nix::sys::signal::Signal,
    ) -> Result<()> {
        if let Some(process) = self.attached_process(instance) {
            // The worker first: its failure is the one that matters.
            process.signal(signal)?;
            for member in process.tree().iter().filter(|m| m.pid != process.pid) {
                // A wrapper may end on its own as the worker dies: not an error.
                let _ = member.signal(signal);
            }
            return Ok(());
        }
        self.act(instance, Action::Signal(signal)).await
    }

    /// The live attached worker behind `instance`, if it is one.
    pub fn attached_process(&self, instance: &str) -> Option<crate::supervisor::ForeignProcess> {
        self.attached.as_ref()?.process(instance)
    }

    /// An instance's output: what an owned worker printed, or what could be read
    /// of an attached one's (with notes on where its output goes).
    pub fn output(&self, instance: &str) -> Option<crate::supervisor::OutputBuffer> {
        self.supervisor
            .output(instance)
            .or_else(|| self.attached.as_ref()?.output(instance))
    }
}

/// The worker to supervise: `--cmd`, else the bundled `kv-demo` beside this
/// executable, else this executable's own `kv-demo` subcommand.
fn worker_spec(config: &SessionConfig) -> Result<WorkerSpec> {
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
    if let Some(step) = config.step {
        spec = spec.env("KV_DEMO_STEP_MS", crate::clock::millis(step).to_string());
    }
    if let Some(token) = &config.token {
        spec = spec.env("PLUM_TOKEN", token.clone());
    }
    if config.namespace_by == NamespaceBy::Instance {
        spec = spec.env("KV_DEMO_NAMESPACE_BY", "instance");
    }
    Ok(spec)
}

/// A `--cmd` line for an agent, which runs it in a work folder of its own: a
/// relative program path (`./kv-demo-cpp`) is made absolute from here.
fn absolute_program(cmd: &str) -> Result<String> {
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

/// Supervisor event → recovery fact (events recovery does not need map to `None`).
pub fn fact_from_event(event: &SupervisorEvent) -> Option<Fact> {
    let instance = event.instance.clone();
    Some(match &event.kind {
        EventKind::Started { pid, .. } => Fact::Started {
            instance,
            pid: *pid,
        },
        EventKind::Attached { pid, .. } => Fact::Attached {
            instance,
            pid: *pid,
        },
        EventKind::Exited { exit, status, .. } => {
            // What the kernel said, and apart from it whether we asked for the stop.
            let requested = *exit == ExitKind::Stopped;
            let exit = match status {
                Some(RawExit::Signal(sig)) => ProcessExit::Signal(sig.as_str().to_string()),
                Some(RawExit::Code(0)) => ProcessExit::Clean,
                Some(RawExit::Code(code)) => ProcessExit::Code(*code),
                // Not ours to reap: how it ended is judged from the namespace.
                None => ProcessExit::Unknown,
            };
            Fact::Exited {
                instance,
                exit,
                requested,
            }
        }
        EventKind::RestartScheduled { delay, .. } => Fact::RestartScheduled {
            instance,
            delay_ms: crate::clock::millis(*delay),
        },
        EventKind::TakeoverScheduled { from, delay } => Fact::TakeoverScheduled {
            instance,
            from: from.clone(),
            delay_ms: crate::clock::millis(*delay),
        },
        EventKind::Frozen { signal } => Fact::Frozen {
            instance,
            signal: signal.map(|s| s.as_str().to_string()),
        },
        EventKind::Continued => Fact::Continued { instance },
        EventKind::Failed { reason } => Fact::Failed {
            instance,
            reason: reason.clone(),
        },
        _ => return None,
    })
}

/// A write of the keys every kv-demo run (and the original) writes as it starts.
fn announces_a_start(fact: &Fact) -> bool {
    match fact {
        Fact::Written(entries) => entries
            .iter()
            .any(|e| crate::recovery::START_KEYS.contains(&e.key.as_str())),
        _ => false,
    }
}

/// Namespace feed event → recovery fact.
pub fn fact_from_change(change: WatchEvent) -> Fact {
    match change {
        WatchEvent::Status(FeedStatus::Streaming) => Fact::FeedUp {
            via: "stream".into(),
        },
        WatchEvent::Status(FeedStatus::Polling(every)) => Fact::FeedUp {
            via: format!("polling {}", humantime::format_duration(every)),
        },
        WatchEvent::Status(FeedStatus::Down { error, .. }) => Fact::FeedDown { error },
        WatchEvent::Snapshot(entries) => Fact::Snapshot(entries),
        WatchEvent::Put(entry) => Fact::Written(vec![entry]),
        WatchEvent::Batch(entries) => Fact::Written(entries),
        WatchEvent::Deleted { key } => Fact::Deleted { key },
    }
}

/// Live processes on this machine that run as workers of `app` against the
/// controller at `url` — e.g. left by an earlier `up` that was killed, or
/// started by hand. Strict: the process's `PLUM_APP_NAME` must be `app` (one
/// without it counts as the worker's default app), and its `CONTROLLER_BASE`
/// (or the worker's default) must name the same controller.
/// Under Plum's agent an instance is a tree (`sh`, `bash`, the worker, `tee`) that
/// all carry the app's variables: when one of an instance's processes runs the worker
/// program (`kv-demo` or `program`), only it is named, not its wrappers.
fn live_writers(
    app: &str,
    url: &str,
    program: Option<&str>,
) -> Vec<crate::supervisor::ForeignProcess> {
    let found: Vec<_> = crate::supervisor::discover(app, &[])
        .into_iter()
        .filter(|p| match &p.app_name {
            Some(name) => name == app,
            None => app == crate::supervisor::WORKER_EXECUTABLE,
        })
        .filter(|p| writes_to(p, url))
        .collect();
    let is_worker = |p: &crate::supervisor::ForeignProcess| {
        p.name == crate::supervisor::WORKER_EXECUTABLE || Some(p.name.as_str()) == program
    };
    found
        .iter()
        .filter(|p| {
            let instance_has_worker = p.instance_id.is_some()
                && found
                    .iter()
                    .any(|q| q.instance_id == p.instance_id && is_worker(q));
            !instance_has_worker || is_worker(p)
        })
        .cloned()
        .collect()
}

/// The process writes to the controller at `url` (its `CONTROLLER_BASE`, or
/// the worker's default when it has none).
fn writes_to(p: &crate::supervisor::ForeignProcess, url: &str) -> bool {
    let base = p.controller_base.as_deref();
    normalize_url(base.unwrap_or(crate::kv::DEFAULT_CONTROLLER_BASE)) == normalize_url(url)
}

fn normalize_url(url: &str) -> String {
    url.trim()
        .trim_end_matches('/')
        .to_ascii_lowercase()
        .replace("://localhost", "://127.0.0.1")
}
