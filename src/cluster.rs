//! Reading a controller's cluster API (`plum-cluster-api.md` §1–2): its nodes
//! with their health, and every deployment's assignments with the node each
//! runs on and whether it should run. Ours and the original serve the same shapes, so a dashboard
//! attached to either sees the same picture. Read only: nothing here changes
//! the cluster.

use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

pub mod model;

/// Per-request timeout: a hung controller must not stall the picture for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer read: a cluster of thousands of rows fits; a hostile or broken
/// controller streaming without end does not fill this process's memory.
const MAX_BODY: usize = 4 << 20;

/// A node as `GET /v1/nodes` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeFact {
    pub node_id: String,
    #[serde(default)]
    pub ip: String,
    /// Unix seconds of its last heartbeat.
    #[serde(default)]
    pub last_seen: i64,
    /// `Healthy` / `Unhealthy`, as the controller judges it from its TTL.
    #[serde(default)]
    pub health: String,
}

impl NodeFact {
    pub fn is_healthy(&self) -> bool {
        self.health.eq_ignore_ascii_case("healthy")
    }
}

/// One assignment: an instance id placed on a node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentFact {
    pub instance_id: String,
    #[serde(default)]
    pub deployment_id: String,
    #[serde(default)]
    pub node_id: String,
    /// `Running` or `Stopped` (a failover parks the old row so).
    #[serde(default)]
    pub desired: String,
    /// Writes the controller refused from this instance once a failover replaced
    /// it (plumdash's controller only; the original has no fencing).
    #[serde(default)]
    pub fenced_writes: u64,
}

impl AssignmentFact {
    pub fn wants_running(&self) -> bool {
        self.desired == "Running"
    }
}

/// The cluster at one read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Sorted by id.
    pub nodes: Vec<NodeFact>,
    /// Sorted by instance id.
    pub assignments: Vec<AssignmentFact>,
}

/// What one read found.
#[derive(Debug)]
pub enum ClusterRead {
    View(ClusterView),
    /// The controller has no cluster API (a KV-only controller answers 404).
    NoClusterApi,
}

/// A reader of one controller's cluster API.
#[derive(Clone)]
pub struct ClusterReader {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

#[derive(Deserialize)]
struct DeploymentItem {
    #[serde(rename = "deploymentId")]
    deployment_id: String,
}

#[derive(Deserialize)]
struct DeploymentDetail {
    /// The original writes `null` for an empty list.
    #[serde(default)]
    assignments: Option<Vec<AssignmentFact>>,
}

impl ClusterReader {
    pub fn new(base: &str, token: Option<String>) -> Result<ClusterReader> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the cluster API client")?;
        Ok(ClusterReader {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Option<reqwest::Response>> {
        let mut request = self.http.get(format!("{}{path}", self.base)).query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let response = response
            .error_for_status()
            .with_context(|| format!("GET {path}"))?;
        Ok(Some(response))
    }

    /// Nodes, deployments and each deployment's rows (with their node and
    /// desired state: all the Nodes pane and the failover detection need).
    pub async fn read(&self) -> Result<ClusterRead> {
        let Some(nodes) = self.get("/v1/nodes", &[]).await? else {
            return Ok(ClusterRead::NoClusterApi);
        };
        let mut nodes: Vec<NodeFact> = json_capped::<Option<Vec<NodeFact>>>(nodes)
            .await
            .context("reading /v1/nodes")?
            .unwrap_or_default();
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let deployments: Vec<DeploymentItem> = match self.get("/v1/deployments", &[]).await? {
            Some(r) => json_capped::<Option<Vec<DeploymentItem>>>(r)
                .await
                .context("reading /v1/deployments")?
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let mut assignments = Vec::new();
        for d in &deployments {
            let path = format!("/v1/deployments/{}", d.deployment_id);
            // Deleted between the two reads: nothing to show.
            let Some(r) = self.get(&path, &[]).await? else {
                continue;
            };
            let detail: DeploymentDetail = json_capped(r)
                .await
                .with_context(|| format!("reading {path}"))?;
            for mut a in detail.assignments.unwrap_or_default() {
                if a.deployment_id.is_empty() {
                    a.deployment_id = d.deployment_id.clone();
                }
                assignments.push(a);
            }
        }
        assignments.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(ClusterRead::View(ClusterView { nodes, assignments }))
    }
}

/// The answer's JSON, refused past [`MAX_BODY`] bytes (read as it arrives, so
/// an endless answer stops at the cap).
async fn json_capped<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let body = crate::http_body::read_capped(response, MAX_BODY)
        .await
        .map_err(anyhow::Error::msg)?;
    serde_json::from_slice(&body).context("the answer is not the expected JSON")
}
