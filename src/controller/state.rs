//! What every handler of the HTTP surface shares: the store, the shutdown
//! token, the access token and the file's health; and the one way handlers
//! reach the (blocking) store.

use super::apps::Apps;
use super::deployments::Deployments;
use super::error::ApiError;
use super::health::Health;
use super::heartbeats::NodeRegistry;
use super::signals::Signals;
use super::store::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Cloned for every request (for the middleware and the handler): one
/// shared pointer, so a clone is one counter, not one per part (a
/// cancellation token's clone even takes a lock).
#[derive(Clone)]
pub struct AppState(Arc<StateParts>);

impl From<StateParts> for AppState {
    fn from(parts: StateParts) -> AppState {
        AppState(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = StateParts;
    fn deref(&self) -> &StateParts {
        &self.0
    }
}

pub struct StateParts {
    pub store: Arc<Store>,
    /// Cancelled at shutdown so open event streams end and the server can stop.
    pub shutdown: CancellationToken,
    pub token: Option<Arc<str>>,
    /// Checks on the database file (`None`: only failed writes count).
    pub health: Option<Arc<Health>>,
    /// The cluster API's nodes (`None`: `/v1/nodes` answers 404).
    pub nodes: Option<Arc<NodeRegistry>>,
    /// The cluster API's deployments and assignments (`None`: 404).
    pub deployments: Option<Arc<Deployments>>,
    /// Uploaded app packages (`None`: `/v1/apps` answers 404).
    pub apps: Option<Arc<Apps>>,
    /// Signals carried to agents (`None`: `/v1/instances/{id}/signal` answers 404).
    pub signals: Option<Arc<Signals>>,
}

/// Runs a store read on the blocking pool, when one of the store's
/// blocking slots is free (waiting for one here costs no thread).
pub(super) async fn blocking<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
{
    let _slot = state
        .store
        .blocking_slots()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}
