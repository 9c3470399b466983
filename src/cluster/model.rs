//! Wire types of the Plum cluster API (`plum-cluster-api.md` §1–§3): nodes
//! and heartbeats, deployments, assignments and instance status reports, with
//! the states they carry as enums. The controller writes them; the agent and
//! the reader (`ClusterReader`) read them, from ours or the original.
//!
//! Each state is written exactly as the original writes it. Reading is
//! tolerant: a word this model does not know is kept as its text (`Other`),
//! shown and written back unchanged, so an original controller or agent
//! using one never fails a whole read.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// A state on the wire: its known words, and `Other` for any other text.
/// Written as its word; read from any string (`same` says when a string is a
/// known word); anything but a string fails as a `String` field would, with
/// the same message.
macro_rules! wire_state {
    (
        $(#[$meta:meta])*
        pub enum $name:ident matched_by $same:expr;
        { $( $(#[$vmeta:meta])* $variant:ident => $word:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A word this model does not know, kept as it came (`From` never
            /// puts a known word here).
            Other(String),
        }

        impl $name {
            /// Every known state.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The word on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $word, )+
                    $name::Other(word) => word,
                }
            }
        }

        impl From<String> for $name {
            fn from(word: String) -> Self {
                let same: fn(&str, &str) -> bool = $same;
                $name::KNOWN
                    .iter()
                    .find(|known| same(known.as_str(), &word))
                    .cloned()
                    .unwrap_or($name::Other(word))
            }
        }

        impl From<&str> for $name {
            fn from(word: &str) -> Self {
                $name::from(word.to_string())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map($name::from)
            }
        }
    };
}

wire_state! {
    /// Whether an assignment should run (`desired`), and a deployment's
    /// `status`: the state `start`/`stop` set on a deployment and all its rows.
    pub enum DesiredState matched_by |known, word| known == word;
    {
        Running => "Running",
        /// Stopped by hand, or parked by a failover (kept on the dead node).
        Stopped => "Stopped",
    }
}

/// Absent from the wire: neither Running nor Stopped, so nothing runs.
impl Default for DesiredState {
    fn default() -> Self {
        DesiredState::Other(String::new())
    }
}

wire_state! {
    /// What became of an instance, as its agent reports it
    /// (`POST /v1/instances/status`) and the controller shows the latest.
    #[derive(Default)]
    pub enum InstancePhase matched_by |known, word| known == word;
    {
        /// No report yet: the controller shows `""` until the first.
        #[default]
        Unreported => "",
        /// Its worker started.
        Running => "Running",
        /// Its worker died or could not start.
        Failed => "Failed",
        /// Stopped on purpose (no longer desired here, or the agent stopping).
        Stopped => "Stopped",
        /// plumdash's agent: the worker finished its task (exit 0), so it is
        /// not a crash and a failover does not run it again.
        Exited => "Exited",
    }
}

wire_state! {
    /// A node's health, as its controller judges it from the heartbeat TTL.
    /// Read in any case (the reader always was lenient there).
    pub enum HealthState matched_by |known, word| known.eq_ignore_ascii_case(word);
    {
        Healthy => "Healthy",
        Unhealthy => "Unhealthy",
    }
}

/// `POST /v1/nodes/heartbeat`. The original agent sends `nodeId` and `ip`
/// only; fields are declared in the order plumdash's agent writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    #[serde(default)]
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Map<String, Value>>,
    pub node_id: String,
}

/// The heartbeat's answer: the TTL health is judged by (plumdash's controller
/// sends the one it applies; the original's is a constant nobody reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAnswer {
    pub ttl_sec: u64,
}

/// A node as `GET /v1/nodes` lists it; `GET /v1/nodes/{id}` has no `health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub node_id: String,
    #[serde(default)]
    pub ip: String,
    /// As its last heartbeat gave them; `null` when it gave none.
    #[serde(default)]
    pub labels: Value,
    /// Unix seconds of its last heartbeat.
    #[serde(default)]
    pub last_seen: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthState>,
}

impl Node {
    pub fn is_healthy(&self) -> bool {
        self.health == Some(HealthState::Healthy)
    }
}

/// One entry of `POST /v1/deployments`: an artifact, and how many replicas
/// of it run on which node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentEntry {
    #[serde(default)]
    pub artifact_url: String,
    #[serde(default)]
    pub start_cmd: String,
    /// Extension: the original reads these from the artifact's meta.ini.
    #[serde(default)]
    pub app_name: String,
    #[serde(default)]
    pub app_version: String,
    #[serde(default)]
    pub replicas: BTreeMap<String, u32>,
}

/// `POST /v1/deployments`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDeployment {
    pub name: String,
    #[serde(default)]
    pub labels: Option<Map<String, Value>>,
    #[serde(default)]
    pub entries: Vec<DeploymentEntry>,
}

/// `POST /v1/deployments`'s answer: the new id and its instances' ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedDeployment {
    pub deployment_id: String,
    pub instances: Vec<String>,
}

/// One deployment as `GET /v1/deployments` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSummary {
    pub deployment_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub labels: Value,
    #[serde(default)]
    pub status: DesiredState,
    /// How many assignment rows it has.
    #[serde(default)]
    pub instances: i64,
}

/// `GET /v1/deployments/{id}`'s `deployment`: the original writes its Go
/// field names here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    #[serde(rename = "DeploymentID", default)]
    pub deployment_id: String,
    #[serde(rename = "Name", default)]
    pub name: String,
    #[serde(rename = "Labels", default)]
    pub labels: Value,
    #[serde(rename = "Status", default)]
    pub status: DesiredState,
}

/// `GET /v1/deployments/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentDetail {
    #[serde(default)]
    pub deployment: DeploymentRecord,
    /// The original writes `null` for none.
    #[serde(default)]
    pub assignments: Option<Vec<Assignment>>,
}

/// One assignment: an instance of a deployment placed on a node. The two
/// answers that show one show different parts of it:
/// - `GET /v1/deployments/{id}`: with `nodeId` (and plumdash's
///   `fencedWrites`), without `deploymentId` or a status;
/// - `GET /v1/assignments?nodeId=`: with `deploymentId` and the latest
///   status, without `nodeId` (as the original).
///
/// An id a side leaves out is read as empty, and not written when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub instance_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub deployment_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_id: String,
    #[serde(default)]
    pub desired: DesiredState,
    #[serde(default)]
    pub artifact_url: String,
    #[serde(default)]
    pub start_cmd: String,
    #[serde(default)]
    pub app_name: String,
    #[serde(default)]
    pub app_version: String,
    /// Only in a node's list: `phase`, `healthy`, `lastReportAt`.
    #[serde(flatten)]
    pub last_report: Option<LastReport>,
    /// Writes the controller refused from this instance once a failover
    /// replaced it (plumdash's controller, in a deployment's rows only; the
    /// original has no fencing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fenced_writes: Option<u64>,
}

impl Assignment {
    pub fn wants_running(&self) -> bool {
        self.desired == DesiredState::Running
    }

    /// The latest reported phase, when the answer carries one.
    pub fn phase(&self) -> Option<&InstancePhase> {
        self.last_report.as_ref().map(|r| &r.phase)
    }
}

/// An instance's latest status as a node's assignment list shows it; before
/// the first report: phase `""`, not healthy, at 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastReport {
    /// Required: a row without one has no status part at all.
    pub phase: InstancePhase,
    #[serde(default)]
    pub healthy: bool,
    /// Unix seconds of the report.
    #[serde(default)]
    pub last_report_at: i64,
    /// plumdash: why the instance failed, when its agent said (an artifact it
    /// could not fetch or unpack). Absent otherwise, and from the original.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// plumdash: the report's time in unix milliseconds (when the worker
    /// started or died, as its agent saw it), when its agent sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report_at_ms: Option<i64>,
}

/// `GET /v1/assignments?nodeId=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentList {
    pub items: Vec<Assignment>,
}

/// `POST /v1/instances/status`: what became of an instance, from its agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub instance_id: String,
    pub phase: InstancePhase,
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub healthy: bool,
    /// Unix seconds.
    #[serde(default)]
    pub ts_unix: i64,
    /// plumdash's agent: why it failed, when it knows (the original sends none
    /// and ignores it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// plumdash's agent: `tsUnix` in milliseconds, so a dashboard can place
    /// the start or death among the namespace's writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<i64>,
}

/// An uploaded app package, as `POST /v1/apps/upload` answers and `GET
/// /v1/apps` lists it (`plum-cluster-api.md` §9; the original's image
/// fields are not served).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub artifact_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
    /// `/artifacts/<name>_<version>_<sha8>.zip`: what a deployment's
    /// `artifactUrl` names.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub size_bytes: i64,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: i64,
    /// `zip` (the original also has `image`).
    #[serde(default, rename = "type")]
    pub kind: String,
}

/// Which processes of an instance a signal is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalScope {
    /// The worker program only (not the `sh`/`bash`/`tee` around it): `k`.
    #[default]
    Worker,
    /// Its whole process group, as the agent stops an instance.
    Tree,
}

/// `POST /v1/instances/{id}/signal` (plumdash's controller and agent; the
/// original has no such API): a signal for an instance, carried to its
/// node's agent over the agent's own stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalOrder {
    /// `SIGKILL`, `KILL` or `9`.
    pub signal: String,
    #[serde(default)]
    pub scope: SignalScope,
    /// The worker program's process name (`kv-demo` when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub worker: String,
}

/// The order as the controller pushes it to an agent (`event: signal` on
/// its `nodeId` stream); the agent answers `POST /v1/signals/{requestId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSignal {
    pub request_id: String,
    pub instance_id: String,
    #[serde(flatten)]
    pub order: SignalOrder,
}

/// What a node's agent is asked to do to its whole node (plumdash's `K`/`F`
/// for a node on another machine): a machine dying or hanging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeOrderKind {
    /// SIGKILL to its workers and to the agent itself: nothing of it is left.
    Kill,
    /// SIGSTOP to its workers; the agent stops beating and syncing (its
    /// connections stay open, as a hung machine's do).
    Freeze,
    /// SIGCONT, beats and syncs again.
    Thaw,
}

impl NodeOrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeOrderKind::Kill => "kill",
            NodeOrderKind::Freeze => "freeze",
            NodeOrderKind::Thaw => "thaw",
        }
    }
}

/// `POST /v1/nodes/{id}/action` (plumdash): `{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeOrder {
    pub action: NodeOrderKind,
}

/// The node order as the controller pushes it (`event: node`); answered like
/// a signal, `POST /v1/signals/{requestId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentNodeOrder {
    pub request_id: String,
    pub action: NodeOrderKind,
}

/// The answer of `POST /v1/nodes/{id}/action` when the agent did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDone {
    pub node_id: String,
    pub action: NodeOrderKind,
    /// What the agent did, in its words.
    pub done: String,
}

/// What an agent did with a signal: the pid signalled, or why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalResult {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The process signalled (`kv-demo`), when one was.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub process: String,
    /// One line: what was done, or why nothing was.
    pub message: String,
}

/// The answer of `POST /v1/instances/{id}/signal` when the agent did it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalDone {
    pub instance_id: String,
    pub node_id: String,
    pub signal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub process: String,
    /// What the agent did, in its words.
    pub done: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every known word written as itself and read back as its variant; an
    /// unknown one read as `Other`, written back unchanged.
    fn round_trips<T>(known: &[T], words: &[&str])
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug + From<String>,
    {
        assert_eq!(known.len(), words.len());
        for (state, word) in known.iter().zip(words) {
            let text = serde_json::to_string(state).unwrap();
            assert_eq!(text, format!("{word:?}"));
            assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), state);
        }
        let odd: T = serde_json::from_str("\"Rebooting\"").unwrap();
        assert_eq!(odd, T::from("Rebooting".to_string()));
        assert_eq!(serde_json::to_string(&odd).unwrap(), "\"Rebooting\"");
    }

    #[test]
    fn every_state_round_trips_and_an_unknown_one_is_kept() {
        round_trips(DesiredState::KNOWN, &["Running", "Stopped"]);
        round_trips(
            InstancePhase::KNOWN,
            &["", "Running", "Failed", "Stopped", "Exited"],
        );
        round_trips(HealthState::KNOWN, &["Healthy", "Unhealthy"]);
        assert_eq!(
            DesiredState::from("Paused"),
            DesiredState::Other("Paused".into())
        );
        assert_eq!(
            InstancePhase::from("Starting"),
            InstancePhase::Other("Starting".into())
        );
        // Desired and phases are exact; health was always read in any case.
        assert_eq!(
            DesiredState::from("running"),
            DesiredState::Other("running".into())
        );
        assert_eq!(HealthState::from("healthy"), HealthState::Healthy);
        assert_eq!(HealthState::from("UNHEALTHY"), HealthState::Unhealthy);
    }

    #[test]
    fn a_state_that_is_not_a_string_fails_as_a_string_field_did() {
        let err = serde_json::from_value::<DesiredState>(Value::Null).unwrap_err();
        assert_eq!(err.to_string(), "invalid type: null, expected a string");
        let err = serde_json::from_value::<StatusReport>(json!({"instanceId": "i", "phase": 7}))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid type: integer `7`, expected a string"
        );
    }

    #[test]
    fn a_node_list_row_reads_and_writes_back_the_same() {
        let row = json!({
            "appName": "kv-demo", "appVersion": "", "artifactUrl": "a.zip",
            "deploymentId": "d1", "desired": "Running", "healthy": false,
            "instanceId": "d1-a", "lastReportAt": 0, "phase": "", "startCmd": "./s",
        });
        let a: Assignment = serde_json::from_value(row.clone()).unwrap();
        assert!(a.wants_running());
        assert_eq!(a.phase(), Some(&InstancePhase::Unreported));
        assert_eq!(a.node_id, "");
        assert_eq!(serde_json::to_value(&a).unwrap(), row);
        // A phase this model does not know is shown, not refused.
        let mut later = row.clone();
        later["phase"] = json!("Starting");
        let a: Assignment = serde_json::from_value(later.clone()).unwrap();
        assert_eq!(a.phase(), Some(&InstancePhase::Other("Starting".into())));
        assert_eq!(serde_json::to_value(&a).unwrap(), later);
    }

    #[test]
    fn a_deployment_row_reads_and_writes_back_the_same() {
        let row = json!({
            "appName": "kv-demo", "appVersion": "", "artifactUrl": "a.zip",
            "desired": "Stopped", "fencedWrites": 2, "instanceId": "d1-a",
            "nodeId": "nodeA", "startCmd": "./s",
        });
        let a: Assignment = serde_json::from_value(row.clone()).unwrap();
        assert!(!a.wants_running());
        assert_eq!(a.phase(), None);
        assert_eq!(a.fenced_writes, Some(2));
        assert_eq!(serde_json::to_value(&a).unwrap(), row);
        // The original's: no fencing, a desired word we do not know.
        let a: Assignment = serde_json::from_value(
            json!({"instanceId": "d1-b", "nodeId": "nodeB", "desired": "Draining"}),
        )
        .unwrap();
        assert_eq!(a.desired, DesiredState::Other("Draining".into()));
        assert!(!a.wants_running());
        assert_eq!(a.fenced_writes, None);
        // The original writes `null` for no rows.
        let d: DeploymentDetail = serde_json::from_value(
            json!({"deployment": {"DeploymentID": "d1", "Status": "Running"}, "assignments": null}),
        )
        .unwrap();
        assert_eq!(d.assignments, None);
        assert_eq!(d.deployment.status, DesiredState::Running);
    }

    #[test]
    fn nodes_read_with_or_without_health() {
        let n: Node = serde_json::from_value(json!({
            "nodeId": "nodeA", "ip": "10.0.0.1", "labels": null, "lastSeen": 5, "health": "Healthy",
        }))
        .unwrap();
        assert!(n.is_healthy());
        let n: Node = serde_json::from_value(json!({"nodeId": "nodeB", "health": "Lost"})).unwrap();
        assert_eq!(n.health, Some(HealthState::Other("Lost".into())));
        assert!(!n.is_healthy());
        let one: Node = serde_json::from_value(json!({"nodeId": "nodeC", "lastSeen": 1})).unwrap();
        assert_eq!(one.health, None);
        assert_eq!(
            serde_json::to_string(&one).unwrap(),
            r#"{"nodeId":"nodeC","ip":"","labels":null,"lastSeen":1}"#
        );
    }

    #[test]
    fn the_agents_bodies_are_written_as_they_always_were() {
        let beat = Heartbeat {
            ip: "127.0.0.1".into(),
            labels: None,
            node_id: "nodeA".into(),
        };
        assert_eq!(
            serde_json::to_string(&beat).unwrap(),
            r#"{"ip":"127.0.0.1","nodeId":"nodeA"}"#
        );
        let report = StatusReport {
            instance_id: "d1-a".into(),
            phase: InstancePhase::Failed,
            exit_code: 137,
            healthy: false,
            ts_unix: 5,
            reason: String::new(),
            ts_ms: None,
        };
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(
            text,
            r#"{"instanceId":"d1-a","phase":"Failed","exitCode":137,"healthy":false,"tsUnix":5}"#
        );
        assert_eq!(serde_json::from_str::<StatusReport>(&text).unwrap(), report);
    }
}
