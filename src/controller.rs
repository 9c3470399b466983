//! The Plum-compatible KV controller: HTTP (axum) over a SQLite file.
//!
//! `start` runs it inside the current tokio runtime (the dashboard embeds it);
//! `plumdash controller` runs it alone until SIGINT/SIGTERM.
//!
//! What it promises: one controller per database file (an flock on the
//! inode, `db_lock`); a file that cannot be written is refused at start and
//! reported by `/healthz` while running (`health`); a bounded WAL (`store`);
//! timeouts and a connection limit (`server`); loopback only unless a token
//! guards it; every error answer is one line of JSON.

mod app_routes;
pub mod apps;
mod body;
pub mod change;
mod cluster_routes;
mod db_lock;
pub mod deployments;
mod error;
pub mod fanout;
pub mod health;
pub mod heartbeats;
pub mod presence;
mod routes;
pub mod server;
mod signal_routes;
pub mod signals;
mod sse;
mod state;
pub mod store;
pub mod writer;

/// Locks `m`, poisoned or not: each lock of the controller's guards one
/// operation at a time (a statement, a map change, a queue push), so a
/// panic while one is held leaves nothing half-done.
fn relock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub use apps::MAX_UPLOAD_BYTES;
pub use body::MAX_BODY_BYTES;
pub use health::Health;
pub use routes::{app, AppState, MAX_HEADER_BYTES, MAX_URI_BYTES};
pub use state::StateParts;
pub use store::Store;

use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The address the original Plum controller listens on.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub listen: SocketAddr,
    pub db: PathBuf,
    /// When set, every request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Bind an ephemeral loopback port when `listen` is taken.
    pub fallback_to_free_port: bool,
    /// When nodes count as lost and how often the failover pass runs.
    pub cluster: ClusterTiming,
    /// Largest app package `POST /v1/apps/upload` takes (413 above it).
    pub max_upload: u64,
}

/// The cluster API's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterTiming {
    /// A node whose last beat is older is Unhealthy (`--node-ttl`).
    pub node_ttl: Duration,
    /// The failover pass runs at least this often (`--failover-interval`).
    pub failover_interval: Duration,
    /// A plumdash agent's presence stream may be closed this long.
    pub presence_grace: Duration,
}

impl Default for ClusterTiming {
    fn default() -> Self {
        ClusterTiming {
            node_ttl: heartbeats::HEARTBEAT_TTL,
            failover_interval: deployments::FAILOVER_INTERVAL,
            presence_grace: heartbeats::PRESENCE_GRACE,
        }
    }
}

/// A controller serving in the background.
pub struct RunningController {
    pub addr: SocketAddr,
    pub db: PathBuf,
    shutdown: CancellationToken,
    /// Serves, then closes the store, then frees the database lock: the
    /// lock lives in the task, so it is held as long as anything serves,
    /// even if this handle is dropped without `shutdown`.
    task: JoinHandle<()>,
    /// The API, for more listeners (`serve_also`).
    router: axum::Router,
    /// Those listeners' accept loops.
    also: Vec<JoinHandle<()>>,
    /// Where its tasks run (the caller's runtime, or its own threads).
    runtime: tokio::runtime::Handle,
    /// Its own threads, when it has them ([`start_apart`]).
    apart: Apart,
}

/// A runtime of the controller's own, shut down in the background when the
/// controller is dropped (a runtime may not be dropped on an async worker).
#[derive(Default)]
struct Apart(Option<tokio::runtime::Runtime>);

impl Drop for Apart {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// How many threads the embedded controller has of its own.
const APART_THREADS: usize = 2;

/// [`start`], on threads of the controller's own: the embedded controller
/// of `up`, so that a thousand workers' requests queue there and not in
/// front of the dashboard's own work (its feed, its screen, its keys).
pub async fn start_apart(config: ControllerConfig) -> Result<RunningController> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(APART_THREADS)
        .thread_name("controller")
        .enable_all()
        .build()
        .context("starting the controller's threads")?;
    let handle = runtime.handle().clone();
    let apart = Apart(Some(runtime));
    let mut running = handle
        .spawn(start(config))
        .await
        .context("the controller's start panicked")??;
    running.apart = apart;
    Ok(running)
}

impl RunningController {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, ends open event streams, waits for in-flight
    /// requests for at most `server::SHUTDOWN_GRACE` and drops the rest,
    /// closes the store, then frees the database lock.
    pub async fn shutdown(self) -> Result<()> {
        let RunningController {
            shutdown,
            task,
            router,
            also,
            apart,
            ..
        } = self;
        shutdown.cancel();
        // The router holds the store: let it go before the store is closed.
        drop(router);
        for also in also {
            let _ = also.await;
        }
        let served = task.await.context("controller task panicked");
        drop(apart);
        served
    }

    /// Serves the same API on one more listener, until the same shutdown:
    /// with test hosts (`crate::hosts`), one bound on the controller host's
    /// address, which only the hosts' private network reaches (so no token
    /// is asked for it, as for loopback); the dashboard keeps loopback.
    pub fn serve_also(&mut self, listener: std::net::TcpListener) -> Result<SocketAddr> {
        let runtime = self.runtime.clone();
        self.serve_on(&runtime, listener)
    }

    /// [`RunningController::serve_also`], its connections served on the
    /// caller's runtime: the dashboard's own listener, so its change stream
    /// is sent from threads the workers' requests do not queue on.
    pub fn serve_here(&mut self, listener: std::net::TcpListener) -> Result<SocketAddr> {
        self.serve_on(&tokio::runtime::Handle::current(), listener)
    }

    fn serve_on(
        &mut self,
        runtime: &tokio::runtime::Handle,
        listener: std::net::TcpListener,
    ) -> Result<SocketAddr> {
        let addr = listener.local_addr().context("reading the bound address")?;
        listener
            .set_nonblocking(true)
            .context("making the listener non-blocking")?;
        let _inside = runtime.enter();
        let listener = TcpListener::from_std(listener).context("serving a listener")?;
        self.also.push(runtime.spawn(server::serve(
            listener,
            self.router.clone(),
            self.shutdown.clone(),
        )));
        Ok(addr)
    }
}

/// Serves until `shutdown`, then closes the store and only then lets the
/// lock go (closing the lock's descriptor earlier would drop SQLite's own
/// locks on the file).
async fn serve_then_close(
    listener: TcpListener,
    state: AppState,
    router: axum::Router,
    health: Arc<Health>,
    lock: db_lock::DbLock,
) {
    let shutdown = state.shutdown.clone();
    let store = state.store.clone();
    // Only the router (and its clones) may hold the store from here on.
    drop(state);
    let monitor = tokio::spawn(monitor_health(health, shutdown.clone()));
    server::serve(listener, router, shutdown).await;
    let _ = monitor.await;
    // A read still running on the blocking pool holds the store; it is
    // short, but do not wait forever for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&store) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Dropping the store joins its checkpoint thread: off the async workers.
    let _ = tokio::task::spawn_blocking(move || drop(store)).await;
    drop(lock);
}

/// Why the controller must not listen so (a command line can say it before
/// anything starts): an empty token, or a non-loopback address without one.
pub fn exposure_refused(listen: SocketAddr, token: Option<&str>) -> Option<String> {
    if token.is_some_and(|t| t.trim().is_empty()) {
        return Some("the token is empty: it would turn authentication off".into());
    }
    (!listen.ip().is_loopback() && token.is_none()).then(|| {
        format!(
            "refusing to listen on {listen} without a token (anyone who can reach it could read \
             and write): pass --token or --token-file, or listen on 127.0.0.1"
        )
    })
}

/// Binds, locks and opens the store, and serves until `shutdown` is called.
/// Refuses a non-loopback address without a token, an empty token, and a
/// database file that cannot be written.
pub async fn start(config: ControllerConfig) -> Result<RunningController> {
    if let Some(why) = exposure_refused(config.listen, config.token.as_deref()) {
        bail!(why);
    }
    // Bound first: a taken port leaves no database file made for nothing.
    let listener = bind(config.listen, config.fallback_to_free_port).await?;
    let lock = db_lock::DbLock::acquire(&config.db)?;
    let db = lock.path().to_path_buf();
    let store = tokio::task::spawn_blocking(move || Store::open(&db))
        .await
        .context("opening the store")??;
    let store = Arc::new(store);
    let db = lock.path().to_path_buf();
    let timing = config.cluster;
    let max_upload = config.max_upload;
    let (nodes, deployments, apps) = tokio::task::spawn_blocking(move || {
        let nodes = heartbeats::NodeRegistry::open(&db, timing.node_ttl, timing.presence_grace)?;
        let deployments = deployments::Deployments::open(&db)?;
        let apps = apps::Apps::open(&db, max_upload)?;
        anyhow::Ok((nodes, deployments, apps))
    })
    .await
    .context("opening the cluster tables")??;
    let deployments = Arc::new(deployments);
    let nodes = Arc::new(nodes);
    let health = Arc::new(Health::new(lock.path(), lock.id()));
    if let Some(problem) = health.check() {
        bail!(problem);
    }
    let addr = listener.local_addr().context("reading the bound address")?;
    let shutdown = CancellationToken::new();
    let state = AppState::from(StateParts {
        store,
        shutdown: shutdown.clone(),
        token: config.token.map(Arc::from),
        health: Some(health.clone()),
        nodes: Some(nodes.clone()),
        deployments: Some(deployments.clone()),
        apps: Some(Arc::new(apps)),
        signals: Some(Arc::new(signals::Signals::default())),
    });
    tokio::spawn(deployments::failover_loop(
        deployments,
        nodes,
        timing.failover_interval,
        shutdown.clone(),
    ));
    let router = app(state.clone());
    let task = tokio::spawn(serve_then_close(
        listener,
        state,
        router.clone(),
        health,
        lock,
    ));
    Ok(RunningController {
        addr,
        db: config.db,
        shutdown,
        task,
        router,
        also: Vec::new(),
        runtime: tokio::runtime::Handle::current(),
        apart: Apart::default(),
    })
}

/// Re-checks the database file every second (so writes stop within that
/// time of it going away) and logs each change of verdict.
async fn monitor_health(health: Arc<Health>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(health::CHECK_EVERY);
    let mut last: Option<String> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = health.check();
        if now != last {
            match &now {
                Some(problem) => tracing::warn!("controller unhealthy: {problem}"),
                None => tracing::info!("controller healthy again"),
            }
            last = now;
        }
    }
}

async fn bind(addr: SocketAddr, fallback: bool) -> Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if fallback && e.kind() == std::io::ErrorKind::AddrInUse => {
            let free = SocketAddr::new(addr.ip(), 0);
            TcpListener::bind(free)
                .await
                .with_context(|| format!("{addr} is taken and binding {free} failed"))
        }
        Err(e) => Err(e).with_context(|| format!("binding {addr}")),
    }
}

/// Runs a controller in the foreground until SIGINT or SIGTERM.
pub async fn run_foreground(config: ControllerConfig) -> Result<()> {
    let running = start(config).await?;
    println!(
        "plumdash controller listening on {} (db: {})",
        running.url(),
        running.db.display()
    );
    crate::signals::wait_for_termination().await?;
    println!("plumdash controller: shutting down");
    running.shutdown().await
}
