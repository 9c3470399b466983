//! The ways a session starts: owned workers (`up`), active and standby,
//! local node agents (`up --nodes`), or attached to workers someone else runs;
//! and the cluster reads and process watching they set up.

use super::config::{absolute_program, worker_spec};
use super::writers::{live_writers, writes_elsewhere, writes_to};
use super::{Session, SessionConfig};
use crate::agent::local::{LocalNodes, LocalNodesConfig};
use crate::cluster::{ClusterRead, ClusterReader, ClusterView};
use crate::controller::{self, ControllerConfig};
use crate::hosts::{TestHosts, CONTROLLER_HOST};
use crate::kv::{ClientOptions, DistributedMemory, NamespaceBy};
use crate::supervisor::{
    InstanceAction, OrphanGuard, ProcessWatcher, Supervisor, SupervisorConfig, WatcherConfig,
    DEFAULT_OUTPUT_LINES,
};
use anyhow::{Context, Result};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::StreamMap;

/// How often the cluster API is read (the original's nodes beat every 5 s,
/// ours every 1 s: a node's death is seen within a read of the controller's).
const CLUSTER_READ: Duration = Duration::from_millis(500);

/// How often attach mode rescans the process table (a death is seen at once anyway).
const ATTACH_RESCAN: Duration = Duration::from_millis(500);

/// Binds the dashboard's own loopback listener of the embedded controller
/// (`port` 0: any; else the one it had before the controller restarted) and
/// serves it on this runtime; its port.
pub(super) fn dashboard_listener(
    running: &mut crate::controller::RunningController,
    port: u16,
) -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .context("binding the dashboard's own listener of the controller")?;
    Ok(running.serve_here(listener)?.port())
}

impl Session {
    async fn connect(config: SessionConfig) -> Result<Session> {
        let (mut controller, controller_url) = match &config.remote_controller {
            Some(url) => (None, url.trim_end_matches('/').to_string()),
            None => {
                let running = controller::start_apart(ControllerConfig {
                    listen: config.listen,
                    db: config.db.clone(),
                    token: config.token.clone(),
                    fallback_to_free_port: !config.listen_exact,
                    cluster: config.cluster,
                    max_upload: controller::MAX_UPLOAD_BYTES,
                })
                .await
                .context("starting the embedded controller")?;
                let url = running.url();
                (Some(running), url)
            }
        };
        // The dashboard reads its own embedded controller through a listener
        // of its own, served here (see `serve_here`); the workers get the other.
        let own_listener = match controller.as_mut() {
            Some(running) => Some(dashboard_listener(running, 0)?),
            None => None,
        };
        let feed_url = own_listener
            .map(|port| format!("http://127.0.0.1:{port}"))
            .unwrap_or_else(|| controller_url.clone());
        let dm = DistributedMemory::with_options(
            &config.app,
            &feed_url,
            ClientOptions {
                token: config.token.clone(),
                known_as: Some(controller_url.clone()),
                ..ClientOptions::default()
            },
        )?;
        // Every instance's own namespace in one feed, added as instances come.
        let feeds = match config.namespace_by {
            NamespaceBy::App => super::feed::Feeds::Each(StreamMap::new()),
            NamespaceBy::Instance => super::feed::Feeds::Set(
                dm.subscribe_set(Vec::new(), super::feed::watch_options(&config)),
            ),
        };

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
            output_lines: output_lines_each(config.instances),
            ..SupervisorConfig::default()
        });
        let spec = worker_spec(&config)?;
        let worker_command = spec.display_command();
        let (node_facts_tx, node_facts) = mpsc::unbounded_channel();
        let session = Session {
            controller,
            own_listener,
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
            remote: None,
            takeover: None,
            cluster: None,
            node_facts,
            node_facts_tx,
            archived: None,
            config,
        };
        Ok(session)
    }

    /// Watches the app's shared namespace. Before any worker starts, so no
    /// write is missed (an instance's own namespace is subscribed before it
    /// starts).
    fn watch_app_namespace(&mut self) -> Result<()> {
        if self.config.namespace_by == NamespaceBy::App {
            let app = self.config.app.clone();
            self.subscribe(&app)?;
        }
        Ok(())
    }

    /// A fresh demo (`SessionConfig::fresh`, our own controller only): the
    /// last run's keys go to archives before anything watches or writes.
    async fn start_fresh(&mut self) -> Result<()> {
        if !self.config.fresh || self.controller.is_none() {
            return Ok(());
        }
        let stamp = jiff::ZonedDateTime::now()
            .strftime("%Y%m%d-%H%M%S")
            .to_string();
        self.archived = super::fresh::archive_previous_run(&self.dm, &self.config.app, &stamp)
            .await
            .context("archiving the last run's keys (--keep-state keeps them in place)")?;
        Ok(())
    }

    /// Starts the controller (unless remote), the feed and the workers.
    pub async fn start(config: SessionConfig) -> Result<Session> {
        let mut session = Session::connect(config).await?;
        session.refuse_live_writers().await?;
        session.start_fresh().await?;
        session.watch_app_namespace()?;
        if session.config.remote_controller.is_some() && session.config.remote_instances {
            session.watch_remote_instances()?;
            session.read_cluster();
        }
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
                .send(&id, InstanceAction::SetAutoRestart(false))
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
        session.start_fresh().await?;
        session.watch_app_namespace()?;
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
        let (hosts, agents_reach) = match nodes.on_hosts {
            true => {
                let (hosts, url) = session.controller_on_host(nodes.count)?;
                (Some(hosts), url)
            }
            false => (None, session.controller_url.clone()),
        };
        // Their workers write to the URL their agents were given.
        session.watch_local_workers_of(&agents_reach, true, Some(nodes.data_dir.clone()), false);
        let local = LocalNodes::spawn(
            &LocalNodesConfig {
                controller: agents_reach,
                token: token.clone(),
                worker_env: super::config::worker_env(&session.config),
                ..nodes
            },
            hosts,
        )?;
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

    /// Test hosts for the controller and `count` nodes, and the embedded
    /// controller served on its host's address too: the URL the agents use.
    fn controller_on_host(&mut self, count: usize) -> Result<(Arc<TestHosts>, String)> {
        let names = crate::agent::local::node_names(count);
        let mut all = vec![CONTROLLER_HOST];
        all.extend(names.iter().map(String::as_str));
        let hosts = TestHosts::create(&all).context("making the test hosts")?;
        let listener = hosts.bind(CONTROLLER_HOST, 0)?;
        let controller = self
            .controller
            .as_mut()
            .context("test hosts need the embedded controller")?;
        let addr = controller.serve_also(listener)?;
        Ok((Arc::new(hosts), format!("http://{addr}")))
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
        // Remote instances: each node's stream wakes a read at once (an
        // agent's report is seen in milliseconds, not at the next tick).
        let follow = self.remote.is_some();
        tokio::spawn(async move {
            let mut last: Option<ClusterView> = None;
            let mut tick = tokio::time::interval(CLUSTER_READ);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let wake = Arc::new(tokio::sync::Notify::new());
            let mut followed: HashMap<String, AbortOnDrop> = HashMap::new();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = wake.notified() => {
                        // A burst (a report and the next) is one read.
                        tokio::time::sleep(WAKE_SETTLE).await;
                    }
                }
                match reader.read().await {
                    Ok(ClusterRead::View(view)) => {
                        if follow {
                            follow_nodes(&reader, &view, &wake, &mut followed);
                        }
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
}

/// Ends a follower task when its node is gone (or the reader stops).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long a wake waits for the rest of its burst before the read.
const WAKE_SETTLE: Duration = Duration::from_millis(15);

/// One stream follower per node the view names (its `__kv__` names aside).
fn follow_nodes(
    reader: &ClusterReader,
    view: &ClusterView,
    wake: &Arc<tokio::sync::Notify>,
    followed: &mut HashMap<String, AbortOnDrop>,
) {
    let names: BTreeSet<&str> = view
        .nodes
        .iter()
        .map(|n| n.node_id.as_str())
        .chain(view.assignments.iter().map(|a| a.node_id.as_str()))
        .filter(|n| !n.is_empty() && !n.starts_with("__kv__"))
        .collect();
    followed.retain(|node, _| names.contains(node.as_str()));
    for node in names {
        if !followed.contains_key(node) {
            let (reader, wake, name) = (reader.clone(), wake.clone(), node.to_string());
            let task = tokio::spawn(async move { reader.follow_node(&name, &wake).await });
            followed.insert(node.to_string(), AbortOnDrop(task));
        }
    }
}

impl Session {
    /// The process watcher of attach mode and `up --nodes`: the app's workers on
    /// this machine, found by rescans (their agent, not us, starts them).
    /// `ours_only` (`up --nodes`): only those writing to this session's
    /// controller, as its agents' are (another `up` of the same app on another
    /// port is not ours), all seen starting.
    /// `agents_dir`: where the local agents keep each instance's log
    /// (`<dir>/<node>/<instance>.log`), followed in place of the pipe to them.
    /// `names_nothing`: `url`'s host does not resolve, so no worker writing
    /// to an address given as a literal IP writes to it.
    fn watch_local_workers_of(
        &mut self,
        url: &str,
        ours_only: bool,
        agents_dir: Option<PathBuf>,
        names_nothing: bool,
    ) {
        let url = url.to_string();
        let output_file = agents_dir.map(|dir| {
            Arc::new(move |p: &crate::supervisor::ForeignProcess| agent_log(&dir, p))
                as crate::supervisor::OutputFile
        });
        // Attach, as `up`, leaves out another controller's workers of the
        // same app (those whose CONTROLLER_BASE provably names another).
        let only: crate::supervisor::ProcessFilter = if ours_only {
            Arc::new(move |p: &crate::supervisor::ForeignProcess| writes_to(p, &url))
        } else {
            Arc::new(move |p: &crate::supervisor::ForeignProcess| {
                !writes_elsewhere(p, &url, names_nothing)
            })
        };
        let only = Some(only);
        self.attached = Some(Arc::new(ProcessWatcher::spawn(
            WatcherConfig {
                app_name: self.config.app.clone(),
                worker_name: self.config.worker_name.clone(),
                interval: ATTACH_RESCAN,
                owned_by: None,
                only,
                fresh: ours_only,
                output_file,
            },
            self.supervisor.event_sink(),
        )));
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
        session.watch_app_namespace()?;
        let per_instance = session.config.namespace_by == NamespaceBy::Instance;
        // A namespace that does not exist yet is waited for (a demo may start the
        // dashboard before the workers); the ones that do exist are named.
        match session.dm.namespaces().await {
            Ok(names) if !per_instance && !names.iter().any(|n| n == session.dm.namespace()) => {
                session.namespace_wait = Some(names);
            }
            Ok(_) => {}
            // Unreachable or answering badly now: the dashboard says so (its
            // feed retries and tells each failure as it is) instead of
            // ending here; a controller started after the dashboard is met.
            Err(_) => {}
        }
        // A URL whose host resolves to nothing (a typo): the workers of
        // this machine that write to a literal address are not its.
        let names_nothing = super::writers::names_nothing(&session.controller_url).await;
        let url = session.controller_url.clone();
        session.watch_local_workers_of(&url, false, None, names_nothing);
        if session.config.remote_instances {
            session.watch_remote_instances()?;
        }
        session.read_cluster();
        Ok(session)
    }

    /// Lists the app's instances on other machines as the cluster reads show
    /// them (`remote.rs`), each signalled through its agent.
    fn watch_remote_instances(&mut self) -> Result<()> {
        let client = crate::cluster::admin::ClusterClient::new(
            &self.controller_url,
            self.config.token.clone(),
        )?;
        self.remote = Some(Arc::new(super::remote::Remote::new(
            client,
            &self.config.app,
            &self.config.worker_name,
        )));
        Ok(())
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

    /// `n` on the dashboard: one more instance. In a shared namespace where
    /// one of ours already runs, it is added but not started — two writers
    /// of one task race and each takes the other's flag for a crash — and
    /// the one running is named (`s` starts it, on purpose).
    pub async fn new_instance_beside(&mut self) -> Result<NewInstance> {
        let running = (self.config.namespace_by == NamespaceBy::App)
            .then(|| {
                self.supervisor
                    .instances()
                    .into_iter()
                    .find(|s| s.pid.is_some())
                    .map(|s| s.id)
            })
            .flatten();
        match running {
            Some(beside) => {
                let spec = worker_spec(&self.config)?;
                let instance = self.supervisor.add_instance(spec)?;
                Ok(NewInstance::Added { instance, beside })
            }
            None => self.new_instance().await.map(NewInstance::Started),
        }
    }
}

/// What `n` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewInstance {
    Started(String),
    /// Added, not started: `beside` runs in the same shared namespace.
    Added {
        instance: String,
        beside: String,
    },
}

/// Lines of output kept per instance: the supervisor's default, shared out
/// when there are many instances, so what a session keeps of their output is
/// bounded by [`OUTPUT_LINES_IN_ALL`], not by the instance count (the log pane
/// shows one instance's newest lines).
fn output_lines_each(instances: usize) -> usize {
    (OUTPUT_LINES_IN_ALL / instances.max(1)).clamp(OUTPUT_LINES_LEAST, DEFAULT_OUTPUT_LINES)
}

/// Output lines kept across all instances, at most (while each keeps at least
/// [`OUTPUT_LINES_LEAST`]): about 12 MB of kv-demo's lines.
const OUTPUT_LINES_IN_ALL: usize = 100_000;
const OUTPUT_LINES_LEAST: usize = 100;

/// The log a local agent keeps of `p`'s instance: `<dir>/<node>/<id>.log`, for
/// a node and an id that are plain names (never a path out of `dir`).
fn agent_log(dir: &std::path::Path, p: &crate::supervisor::ForeignProcess) -> Option<PathBuf> {
    let plain = |s: &str| !s.is_empty() && !s.contains(['/', '\\']) && s != "." && s != "..";
    let node = p.node_id.as_deref().filter(|n| plain(n))?;
    let id = p.instance_id.as_deref().filter(|i| plain(i))?;
    Some(dir.join(node).join(format!("{id}.log")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_kept_per_instance_is_shared_out_only_when_there_are_many() {
        assert_eq!(output_lines_each(1), DEFAULT_OUTPUT_LINES);
        assert_eq!(output_lines_each(20), DEFAULT_OUTPUT_LINES);
        assert_eq!(output_lines_each(100), 1000);
        assert_eq!(output_lines_each(1000), OUTPUT_LINES_LEAST);
        assert_eq!(output_lines_each(5000), OUTPUT_LINES_LEAST);
    }
}
