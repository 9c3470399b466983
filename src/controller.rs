//! The Plum-compatible KV controller: HTTP (axum) over a SQLite file.
//!
//! `start` runs it inside the current tokio runtime (the dashboard embeds it);
//! `plumdash controller` runs it alone until SIGINT/SIGTERM.

mod db_lock;
mod error;
mod routes;
mod sse;
pub mod store;

pub use routes::{app, AppState, MAX_BODY_BYTES};
pub use store::Store;

use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
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
}

/// A controller serving in the background.
pub struct RunningController {
    pub addr: SocketAddr,
    pub db: PathBuf,
    shutdown: CancellationToken,
    task: JoinHandle<Result<()>>,
    /// Held until the server has stopped.
    lock: db_lock::DbLock,
}

impl RunningController {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, ends open event streams, waits for in-flight requests.
    pub async fn shutdown(self) -> Result<()> {
        self.shutdown.cancel();
        let served = self.task.await.context("controller task panicked")?;
        drop(self.lock);
        served
    }
}

/// `$XDG_STATE_HOME/plumdash/plum-kv.db` (or the platform's equivalent).
pub fn default_db_path() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("plumdash")
        .join("plum-kv.db")
}

/// Opens the store, binds, and serves until `shutdown` is called.
pub async fn start(config: ControllerConfig) -> Result<RunningController> {
    let lock = db_lock::DbLock::acquire(&config.db)?;
    let db = config.db.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&db))
        .await
        .context("opening the store")??;
    let listener = bind(config.listen, config.fallback_to_free_port).await?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let shutdown = CancellationToken::new();
    let state = AppState {
        store: Arc::new(store),
        shutdown: shutdown.clone(),
        token: config.token.map(Arc::from),
    };
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async move { stop.cancelled_owned().await })
            .await
            .context("serving HTTP")
    });
    Ok(RunningController {
        addr,
        db: config.db,
        shutdown,
        task,
        lock,
    })
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
    if !config.listen.ip().is_loopback() && config.token.is_none() {
        eprintln!(
            "warning: listening on {} without --token: anyone who can reach it can read and write",
            config.listen
        );
    }
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
