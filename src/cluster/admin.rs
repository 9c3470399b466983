//! The write side of a controller's cluster and app API, as `plumdash
//! apps`, `deploy` and `deployments` use it (and the dashboard, to signal an
//! instance on another node through its agent). Ours and the original serve
//! the app and deployment calls alike; the signal call is plumdash's own, and
//! an original controller's 404 there is said as such.

use super::model::{
    AppInfo, CreatedDeployment, DeploymentSummary, NodeDone, NodeOrder, NodeOrderKind, SignalDone,
    SignalOrder,
};
use anyhow::{bail, Context, Result};
use reqwest::{Method, RequestBuilder, StatusCode};
use std::path::Path;
use std::time::Duration;

/// Largest answer read (a list of every app or deployment fits).
const MAX_ANSWER: usize = 4 << 20;
/// Per-request timeout of the short calls; an upload gets longer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// A signal waits for the agent (the controller gives it 5 s).
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(8);

/// A client of one controller's cluster and app API.
#[derive(Clone)]
pub struct ClusterClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// The app a deployment names: `NAME` (its newest version) or `NAME:VERSION`.
pub fn split_app(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((name, version)) if !version.is_empty() => (name, Some(version)),
        _ => (spec.trim_end_matches(':'), None),
    }
}

impl ClusterClient {
    pub fn new(base: &str, token: Option<String>) -> Result<ClusterClient> {
        let http = crate::http_client::builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .context("building the HTTP client")?;
        Ok(ClusterClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(REQUEST_TIMEOUT);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends `req`; a non-2xx answer is an error with the server's reason
    /// (its JSON `error`, or its first line of text, as the original writes).
    async fn send(&self, req: RequestBuilder, what: &str) -> Result<(StatusCode, Vec<u8>)> {
        let (status, body) = self.answer(req, what).await?;
        if !status.is_success() {
            bail!("{what}: {} ({status})", reason(&body));
        }
        Ok((status, body))
    }

    /// Sends `req` and reads the answer whatever its status (bounded).
    async fn answer(&self, req: RequestBuilder, what: &str) -> Result<(StatusCode, Vec<u8>)> {
        let response = req
            .send()
            .await
            .with_context(|| format!("{what}: cannot reach {}", self.base))?;
        let status = response.status();
        let body = crate::http_body::read_capped(response, MAX_ANSWER)
            .await
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        Ok((status, body))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: RequestBuilder,
        what: &str,
    ) -> Result<T> {
        let (_, body) = self.send(req, what).await?;
        serde_json::from_slice(&body)
            .with_context(|| format!("{what}: the answer is not the expected JSON"))
    }

    /// `POST /v1/apps/upload` with `zip` as the form's `file`.
    pub async fn upload(&self, zip: &Path) -> Result<AppInfo> {
        let data = tokio::fs::read(zip)
            .await
            .with_context(|| format!("reading {}", zip.display()))?;
        let file_name = zip
            .file_name()
            .map_or("app.zip".into(), |n| n.to_string_lossy().into_owned());
        let part = reqwest::multipart::Part::bytes(data)
            .file_name(file_name)
            .mime_str("application/zip")
            .context("building the upload")?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let req = self
            .request(Method::POST, "/v1/apps/upload")
            .timeout(UPLOAD_TIMEOUT)
            .multipart(form);
        self.json(req, &format!("uploading {}", zip.display()))
            .await
    }

    /// `GET /v1/nodes`: every node that has beaten to the controller.
    pub async fn nodes(&self) -> Result<Vec<super::model::Node>> {
        let list: Option<Vec<super::model::Node>> = self
            .json(self.request(Method::GET, "/v1/nodes"), "listing nodes")
            .await?;
        Ok(list.unwrap_or_default())
    }

    /// `GET /v1/apps` (newest first).
    pub async fn apps(&self) -> Result<Vec<AppInfo>> {
        let list: Option<Vec<AppInfo>> = self
            .json(self.request(Method::GET, "/v1/apps"), "listing apps")
            .await?;
        Ok(list.unwrap_or_default())
    }

    /// `DELETE /v1/apps/{id}`.
    pub async fn delete_app(&self, id: &str) -> Result<()> {
        let path = format!("/v1/apps/{}", segment(id));
        self.send(
            self.request(Method::DELETE, &path),
            &format!("deleting app {id}"),
        )
        .await?;
        Ok(())
    }

    /// The uploaded app `NAME` (its newest version) or `NAME:VERSION`.
    pub async fn find_app(&self, spec: &str) -> Result<AppInfo> {
        let (name, version) = split_app(spec);
        let apps = self.apps().await?;
        let mut same_name: Vec<&AppInfo> = apps.iter().filter(|a| a.name == name).collect();
        if same_name.is_empty() {
            let known: Vec<String> = apps
                .iter()
                .map(|a| format!("{}:{}", a.name, a.version))
                .collect();
            bail!(
                "no app {name:?} uploaded to {} (uploaded: {}); `plumdash apps upload FILE` first",
                self.base,
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            );
        }
        match version {
            Some(v) => same_name
                .into_iter()
                .find(|a| a.version == v)
                .cloned()
                .with_context(|| format!("app {name:?} has no version {v:?} on {}", self.base)),
            None => {
                // Newest first, as the controller lists them.
                same_name.sort_by_key(|a| std::cmp::Reverse(a.created_at));
                Ok(same_name[0].clone())
            }
        }
    }

    /// `POST /v1/deployments`: `replicas` of `app` on `node`, created Stopped.
    pub async fn deploy(
        &self,
        name: &str,
        app: &AppInfo,
        node: &str,
        replicas: u32,
        start_cmd: &str,
    ) -> Result<CreatedDeployment> {
        let body = serde_json::json!({
            "name": name,
            "entries": [{
                "artifactUrl": app.url,
                "startCmd": start_cmd,
                "appName": app.name,
                "appVersion": app.version,
                "replicas": { node: replicas },
            }],
        });
        let req = self.request(Method::POST, "/v1/deployments").json(&body);
        self.json(req, "creating the deployment").await
    }

    /// `GET /v1/deployments`.
    pub async fn deployments(&self) -> Result<Vec<DeploymentSummary>> {
        let list: Option<Vec<DeploymentSummary>> = self
            .json(
                self.request(Method::GET, "/v1/deployments"),
                "listing deployments",
            )
            .await?;
        Ok(list.unwrap_or_default())
    }

    /// `POST /v1/deployments/{id}?action=start|stop`.
    pub async fn set_running(&self, id: &str, running: bool) -> Result<()> {
        let action = if running { "start" } else { "stop" };
        let path = format!("/v1/deployments/{}", segment(id));
        let req = self
            .request(Method::POST, &path)
            .query(&[("action", action)]);
        self.send(req, &format!("{action} deployment {id}")).await?;
        Ok(())
    }

    /// `DELETE /v1/deployments/{id}`.
    pub async fn delete_deployment(&self, id: &str) -> Result<()> {
        let path = format!("/v1/deployments/{}", segment(id));
        self.send(
            self.request(Method::DELETE, &path),
            &format!("deleting deployment {id}"),
        )
        .await?;
        Ok(())
    }

    /// `POST /v1/instances/{id}/signal`: the instance's agent signals it.
    /// Refused, with the reason, by an original controller (no such API) or
    /// for a node whose agent takes no signals.
    pub async fn signal(&self, instance: &str, order: &SignalOrder) -> Result<SignalDone> {
        let path = format!("/v1/instances/{}/signal", segment(instance));
        let what = format!("{} to {instance}", order.signal);
        self.order(
            &path,
            order,
            &what,
            "no signal API (an original Plum controller): only a plumdash controller and \
             agent carry signals to other nodes",
        )
        .await
    }

    /// An order for an agent, carried by the controller (`signal`,
    /// `node_action`): POSTed with its own timeout, the answer read bounded. An
    /// original controller answers 404 without JSON: refused as `missing`.
    async fn order<B: serde::Serialize, R: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        what: &str,
        missing: &str,
    ) -> Result<R> {
        let request = self
            .request(Method::POST, path)
            .timeout(SIGNAL_TIMEOUT)
            .json(body);
        let (status, body) = self.answer(request, what).await?;
        if status == StatusCode::NOT_FOUND && !is_json(&body) {
            bail!("{what}: the controller at {} has {missing}", self.base);
        }
        if !status.is_success() {
            bail!("{what}: {}", reason(&body));
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("{what}: the answer is not the expected JSON"))
    }
}

impl ClusterClient {
    /// `POST /v1/nodes/{id}/action`: the node's agent kills, freezes or thaws
    /// its node (plumdash's; refused as `signal` is, with the reason).
    pub async fn node_action(&self, node: &str, action: NodeOrderKind) -> Result<NodeDone> {
        let path = format!("/v1/nodes/{}/action", segment(node));
        let what = format!("{} node {node}", action.as_str());
        self.order(
            &path,
            &NodeOrder { action },
            &what,
            "no node actions (an original Plum controller)",
        )
        .await
    }
}

/// A path segment with anything but unreserved characters percent-encoded.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok()
}

/// The reason an error answer gives: its JSON `error`, else its first line.
fn reason(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) {
        if let Some(serde_json::Value::String(e)) = map.get("error") {
            return e.clone();
        }
    }
    let text = String::from_utf8_lossy(body);
    // A proxy's error page: its title, not its markup.
    if text.trim_start().starts_with('<') {
        return crate::http_body::html_excerpt(&text);
    }
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no reason given")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_is_named_with_or_without_its_version() {
        assert_eq!(split_app("kv-demo"), ("kv-demo", None));
        assert_eq!(split_app("kv-demo:5.0.0"), ("kv-demo", Some("5.0.0")));
        assert_eq!(split_app("kv-demo:"), ("kv-demo", None));
    }

    #[test]
    fn an_error_answer_reads_as_its_reason() {
        assert_eq!(reason(br#"{"error":"not a zip"}"#), "not a zip");
        assert_eq!(reason(b"bad form\n"), "bad form");
        assert_eq!(reason(b""), "no reason given");
        let page = b"<html><head><title>502 Bad \x1b]0;x\x07Gateway</title></head><body>xxxx</body></html>";
        let line = reason(page);
        assert!(line.starts_with("an HTML page: 502 Bad"), "{line}");
        assert!(!line.contains('<'), "{line}");
    }
}
