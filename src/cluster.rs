//! The cluster API: its wire model (`model`: nodes, heartbeats, deployments,
//! assignments, status reports and their states, shared by the controller,
//! the agent and this reader), and reading a controller's cluster API
//! (`plum-cluster-api.md` §1–2): its nodes with their health, and every
//! deployment's assignments with the node each runs on, whether it should
//! run and its agent's latest report. Ours and the original serve the same shapes, so a dashboard attached
//! to either sees the same picture. Read only: nothing here changes the
//! cluster.

use crate::http_client::Success;
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::StatusCode;

pub mod admin;
pub mod model;

pub use model::{Assignment, DesiredState, HealthState, InstancePhase, Node, StatusReport};
use model::{DeploymentDetail, DeploymentSummary};

/// Per-request timeout: a hung controller must not stall the picture for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest answer read: a cluster of thousands of rows fits; a hostile or broken
/// controller streaming without end does not fill this process's memory.
const MAX_BODY: usize = 4 << 20;

/// The cluster at one read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Sorted by id.
    pub nodes: Vec<Node>,
    /// Sorted by instance id.
    pub assignments: Vec<Assignment>,
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
    /// For the node streams, which stay open (no overall timeout).
    streams: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ClusterReader {
    pub fn new(base: &str, token: Option<String>) -> Result<ClusterReader> {
        let http = crate::http_client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the cluster API client")?;
        let streams = crate::http_client::builder()
            .connect_timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the cluster API client")?;
        Ok(ClusterReader {
            http,
            streams,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Follows `node`'s wake-up stream (`/v1/stream?nodeId=`, plain: no
    /// presence, no signals) and notifies `wake` on every event — plumdash's
    /// controller sends one when an assignment of the node changes or its
    /// agent reports, so a read can follow at once. Reconnects after a second;
    /// returns only when the controller has no such stream.
    pub async fn follow_node(&self, node: &str, wake: &tokio::sync::Notify) {
        use futures_util::StreamExt;
        loop {
            let mut request = self
                .streams
                .get(format!("{}/v1/stream", self.base))
                .query(&[("nodeId", node)]);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            match request.send().await {
                Ok(r) if r.status() == StatusCode::NOT_FOUND => return,
                Ok(r) if r.status().is_success() => {
                    let mut body = r.bytes_stream();
                    // Any bytes will do: each event is a reason to read again.
                    while let Some(Ok(_)) = body.next().await {
                        wake.notify_one();
                    }
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
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
        let response = response.success().with_context(|| format!("GET {path}"))?;
        Ok(Some(response))
    }

    /// Nodes, deployments and each deployment's rows (with their node and
    /// desired state: all the Nodes pane and the failover detection need).
    pub async fn read(&self) -> Result<ClusterRead> {
        let Some(nodes) = self.get("/v1/nodes", &[]).await? else {
            return Ok(ClusterRead::NoClusterApi);
        };
        let mut nodes: Vec<Node> = json_capped::<Option<Vec<Node>>>(nodes)
            .await
            .context("reading /v1/nodes")?
            .unwrap_or_default();
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let deployments: Vec<DeploymentSummary> = match self.get("/v1/deployments", &[]).await? {
            Some(r) => json_capped::<Option<Vec<DeploymentSummary>>>(r)
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
        // Each instance's latest status is only in its node's list: read
        // every node's once (the agents' reports: phase, when, why it failed).
        let mut by_node: Vec<&str> = assignments.iter().map(|a| a.node_id.as_str()).collect();
        by_node.sort_unstable();
        by_node.dedup();
        let mut reports = std::collections::HashMap::new();
        for node in by_node.into_iter().filter(|n| !n.is_empty()) {
            let Some(r) = self.get("/v1/assignments", &[("nodeId", node)]).await? else {
                continue;
            };
            let list: NodeItems = json_capped(r)
                .await
                .with_context(|| format!("reading /v1/assignments?nodeId={node}"))?;
            for item in list.items.unwrap_or_default() {
                if let Some(report) = item.last_report {
                    reports.insert(item.instance_id, report);
                }
            }
        }
        for a in &mut assignments {
            if a.last_report.is_none() {
                a.last_report = reports.remove(&a.instance_id);
            }
        }
        Ok(ClusterRead::View(ClusterView { nodes, assignments }))
    }
}

/// A node's list, read leniently (`null` for none, as the original's other lists).
#[derive(serde::Deserialize)]
struct NodeItems {
    #[serde(default)]
    items: Option<Vec<Assignment>>,
}

/// The answer's JSON, refused past [`MAX_BODY`] bytes (read as it arrives, so
/// an endless answer stops at the cap).
async fn json_capped<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let body = crate::http_body::read_capped(response, MAX_BODY)
        .await
        .map_err(anyhow::Error::msg)?;
    serde_json::from_slice(&body).context("the answer is not the expected JSON")
}
