//! Instances of the app on other machines: every one the cluster API reports
//! (its deployments' rows, with each node's latest status reports), that no
//! process here shows. Each is a row of its own — its node, "remote: no pid
//! here" — judged like any other: its agent's reports become process facts
//! (a report of `Running` a start, `Failed` a death, `Stopped` a stop,
//! `Exited` a finished task; a `Running` with a newer report time a death and
//! a start both missed between two reads), the namespace tells the rest
//! (crash flag, progress, RESUMED). Signals reach it through its agent
//! (`POST /v1/instances/{id}/signal`, `cluster::admin`).
//!
//! What cannot be seen from here: facts are stamped when read (every
//! 500 ms), not when they happened, and a death and restart within one
//! second of report time are not seen at all. An instance first seen is
//! decided remote one read later, so a worker on this machine that the
//! process watcher finds in the meantime is never shown twice.

use crate::cluster::admin::ClusterClient;
use crate::cluster::model::{SignalOrder, SignalScope};
use crate::cluster::{ClusterView, DesiredState, InstancePhase};
use crate::recovery::{Fact, ProcessExit, TsMs};
use crate::supervisor::{InstanceSnapshot, Lifecycle, Origin, OutputBuffer, OutputStream, Role};
use anyhow::Result;
use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::recovery::REMOTE_PID as NO_PID_HERE;

/// What reading the cluster says about remote instances, and when it
/// happened as its agent saw it (`None`: not said; the read's time stands).
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteFact {
    /// Told as it is.
    Now(Option<TsMs>, Fact),
    /// An end, judged from the namespace: read it afresh first.
    End(Option<TsMs>, Fact),
}

/// One instance as last read.
struct Run {
    node: String,
    desired: DesiredState,
    /// Present in the session's first read: found running, not seen starting.
    in_first_read: bool,
    /// Decided remote (one read after it was first seen).
    decided: bool,
    phase: InstancePhase,
    report_at: i64,
    reason: String,
    runs: u32,
    output: OutputBuffer,
}

#[derive(Default)]
struct State {
    read_once: bool,
    runs: BTreeMap<String, Run>,
    /// Nodes frozen from here through their agent, not thawed since.
    frozen: std::collections::BTreeSet<String>,
}

/// The app's remote instances and how to reach them.
pub struct Remote {
    client: ClusterClient,
    app: String,
    worker: String,
    state: Mutex<State>,
}

impl Remote {
    pub fn new(client: ClusterClient, app: &str, worker: &str) -> Remote {
        Remote {
            client,
            app: app.to_string(),
            worker: worker.to_string(),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Each use is a plain update of the map: a panic leaves nothing half-done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an assignment is one of this app's (no app name: the worker's default).
    fn is_ours(&self, app_name: &str) -> bool {
        let app = if app_name.is_empty() {
            crate::supervisor::DEFAULT_APP
        } else {
            app_name
        };
        app == self.app
    }

    /// A cluster read: the facts it tells about remote instances. `local`
    /// says which instances a process here shows (never remote).
    pub fn observe(&self, view: &ClusterView, local: &dyn Fn(&str) -> bool) -> Vec<RemoteFact> {
        let mut state = self.state();
        let first_read = !state.read_once;
        state.read_once = true;
        let mut facts = Vec::new();
        let mut present = Vec::new();
        for a in view
            .assignments
            .iter()
            .filter(|a| self.is_ours(&a.app_name))
        {
            let id = a.instance_id.clone();
            if local(&id) {
                state.runs.remove(&id);
                continue;
            }
            present.push(id.clone());
            let report = a.last_report.clone().unwrap_or_default();
            let when = report
                .last_report_at_ms
                .and_then(|ms| TsMs::try_from(ms).ok());
            let Some(run) = state.runs.get_mut(&id) else {
                let output = OutputBuffer::new(16);
                let node = &a.node_id;
                for line in [
                    format!("remote: no pid here. It runs on node {node}."),
                    format!("Its output stays on {node}: <agent data dir>/{node}/{id}.log"),
                    "(and app/kv-demo.log in its folder, for a start.sh that tees).".to_string(),
                    "k and the signal menu reach it through its agent.".to_string(),
                ] {
                    output.push(0, OutputStream::Supervisor, line);
                }
                state.runs.insert(
                    id,
                    Run {
                        node: a.node_id.clone(),
                        desired: a.desired.clone(),
                        // Running at the first read: found running, not seen starting.
                        in_first_read: first_read && report.phase == InstancePhase::Running,
                        decided: false,
                        phase: report.phase,
                        report_at: report.last_report_at,
                        reason: report.reason,
                        runs: 0,
                        output,
                    },
                );
                continue;
            };
            run.node = a.node_id.clone();
            run.desired = a.desired.clone();
            let (was, was_at, was_reason) = (
                std::mem::replace(&mut run.phase, report.phase.clone()),
                std::mem::replace(&mut run.report_at, report.last_report_at),
                std::mem::replace(&mut run.reason, report.reason.clone()),
            );
            if !run.decided {
                run.decided = true;
                match &report.phase {
                    InstancePhase::Running => {
                        run.runs += 1;
                        let pid = NO_PID_HERE;
                        facts.push(RemoteFact::Now(
                            when,
                            if run.in_first_read {
                                Fact::Attached { instance: id, pid }
                            } else {
                                Fact::Started { instance: id, pid }
                            },
                        ));
                    }
                    InstancePhase::Failed if !report.reason.is_empty() => {
                        facts.push(RemoteFact::Now(
                            when,
                            Fact::Failed {
                                instance: id,
                                reason: report.reason,
                            },
                        ));
                    }
                    _ => {}
                }
                continue;
            }
            let end = |at: Option<TsMs>, exit: ProcessExit, requested: bool| {
                RemoteFact::End(
                    at,
                    Fact::Exited {
                        instance: id.clone(),
                        exit,
                        requested,
                    },
                )
            };
            let running = InstancePhase::Running;
            match &report.phase {
                InstancePhase::Running if was == running && was_at == report.last_report_at => {}
                InstancePhase::Running => {
                    if was == running {
                        // Died and started again between two reads: just before.
                        let before = when.map(|w| w.saturating_sub(1));
                        facts.push(end(before, ProcessExit::Unknown, false));
                    }
                    run.runs += 1;
                    facts.push(RemoteFact::Now(
                        when,
                        Fact::Started {
                            instance: id.clone(),
                            pid: NO_PID_HERE,
                        },
                    ));
                }
                InstancePhase::Failed => {
                    if was == running {
                        facts.push(end(when, ProcessExit::Unknown, false));
                    }
                    let news = was != InstancePhase::Failed || was_reason != report.reason;
                    if !report.reason.is_empty() && news {
                        facts.push(RemoteFact::Now(
                            when,
                            Fact::Failed {
                                instance: id.clone(),
                                reason: report.reason.clone(),
                            },
                        ));
                    }
                }
                InstancePhase::Stopped if was == running => {
                    facts.push(end(when, ProcessExit::Unknown, true));
                }
                InstancePhase::Exited if was == running => {
                    facts.push(end(when, ProcessExit::Clean, false));
                }
                _ => {}
            }
        }
        // Gone from the cluster (its deployment deleted): its agent stops it.
        let gone: Vec<String> = state
            .runs
            .keys()
            .filter(|id| !present.contains(id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(run) = state.runs.remove(&id) {
                if run.decided && run.phase == InstancePhase::Running {
                    facts.push(RemoteFact::End(
                        None,
                        Fact::Exited {
                            instance: id,
                            exit: ProcessExit::Unknown,
                            requested: true,
                        },
                    ));
                }
            }
        }
        facts
    }

    /// Every remote instance as a row's snapshot: its node, no pid.
    pub fn snapshots(&self) -> Vec<InstanceSnapshot> {
        self.state()
            .runs
            .iter()
            .map(|(id, run)| InstanceSnapshot {
                id: id.clone(),
                app_name: self.app.clone(),
                node: run.node.clone(),
                origin: Origin::Remote,
                command: format!("remote: no pid here (on {})", run.node),
                pid: None,
                phase: match &run.phase {
                    InstancePhase::Running if run.desired == DesiredState::Running => {
                        Lifecycle::Running
                    }
                    InstancePhase::Unreported | InstancePhase::Stopped => Lifecycle::Stopped,
                    _ => Lifecycle::Exited,
                },
                run: run.runs,
                started_at: None,
                crashes: 0,
                manual_restarts: 0,
                restarts: run.runs.saturating_sub(1),
                last_exit: None,
                auto_restart: true,
                paused: None,
                role: Role::Alone,
            })
            .collect()
    }

    /// The node of a remote instance; `None` for any other.
    pub fn node_of(&self, instance: &str) -> Option<String> {
        self.state().runs.get(instance).map(|r| r.node.clone())
    }

    /// What the log pane shows for a remote instance: where its output is.
    pub fn output(&self, instance: &str) -> Option<OutputBuffer> {
        self.state().runs.get(instance).map(|r| r.output.clone())
    }

    /// Kills, freezes or thaws a node elsewhere through its agent (`K`, `F`);
    /// what was done, and what the agent said.
    pub async fn node_action(
        &self,
        node: &str,
        op: super::NodeOp,
    ) -> Result<(crate::recovery::NodeAction, String)> {
        use crate::cluster::model::NodeOrderKind;
        use crate::recovery::NodeAction;
        let frozen = self.state().frozen.contains(node);
        let (order, action) = match op {
            super::NodeOp::Kill => (NodeOrderKind::Kill, NodeAction::Killed),
            super::NodeOp::ToggleFreeze if frozen => (NodeOrderKind::Thaw, NodeAction::Thawed),
            super::NodeOp::ToggleFreeze => (NodeOrderKind::Freeze, NodeAction::Frozen),
            super::NodeOp::TogglePartition | super::NodeOp::Cut(_) | super::NodeOp::Heal => {
                anyhow::bail!(
                    "{node} runs elsewhere: only nodes on this machine's test hosts (`up --nodes N --hosts`) can be partitioned"
                )
            }
            super::NodeOp::Revive => anyhow::bail!(
                "node {node} is on another machine: start its agent there again \
                 (plumdash agent --node {node} …)"
            ),
        };
        let done = self.client.node_action(node, order).await?;
        let mut state = self.state();
        match action {
            NodeAction::Frozen => state.frozen.insert(node.to_string()),
            _ => state.frozen.remove(node),
        };
        Ok((action, format!("{node}'s agent: {}", done.done)))
    }

    /// Sends `signal` to a remote instance through its agent; what the agent
    /// did, in its words.
    pub async fn signal(
        &self,
        instance: &str,
        signal: nix::sys::signal::Signal,
        whole_tree: bool,
    ) -> Result<String> {
        let node = self
            .node_of(instance)
            .ok_or_else(|| anyhow::anyhow!("{instance} is not a remote instance"))?;
        let order = SignalOrder {
            signal: signal.as_str().to_string(),
            scope: if whole_tree {
                SignalScope::Tree
            } else {
                SignalScope::Worker
            },
            worker: self.worker.clone(),
        };
        let done = self.client.signal(instance, &order).await?;
        Ok(format!("{node}'s agent: {}", done.done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::model::{Assignment, LastReport};

    fn row(phase: &str, at: i64, reason: &str) -> ClusterView {
        ClusterView {
            nodes: Vec::new(),
            assignments: vec![Assignment {
                instance_id: "d-1".into(),
                node_id: "nodeB".into(),
                desired: DesiredState::Running,
                app_name: "kv-demo".into(),
                last_report: Some(LastReport {
                    phase: InstancePhase::from(phase),
                    healthy: true,
                    last_report_at: at,
                    reason: reason.into(),
                    last_report_at_ms: None,
                }),
                ..Assignment::default()
            }],
        }
    }

    fn remote() -> Remote {
        let client = ClusterClient::new("http://127.0.0.1:9", None).unwrap();
        Remote::new(client, "kv-demo", "kv-demo")
    }

    fn kinds(facts: &[RemoteFact]) -> Vec<String> {
        facts
            .iter()
            .map(|f| match f {
                RemoteFact::Now(_, Fact::Started { .. }) => "started".into(),
                RemoteFact::Now(_, Fact::Attached { .. }) => "attached".into(),
                RemoteFact::Now(_, Fact::Failed { reason, .. }) => format!("failed: {reason}"),
                RemoteFact::End(
                    _,
                    Fact::Exited {
                        exit, requested, ..
                    },
                ) => {
                    format!("exited {exit} {requested}")
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn reports_become_the_runs_of_one_row() {
        let r = remote();
        let never = |_: &str| false;
        // Seen starting after the first read: decided one read later.
        assert!(r.observe(&ClusterView::default(), &never).is_empty());
        assert!(r.observe(&row("", 0, ""), &never).is_empty());
        assert_eq!(
            kinds(&r.observe(&row("Running", 10, ""), &never)),
            ["started"]
        );
        assert!(r.observe(&row("Running", 10, ""), &never).is_empty());
        assert_eq!(
            kinds(&r.observe(&row("Failed", 11, ""), &never)),
            ["exited gone false"]
        );
        assert_eq!(
            kinds(&r.observe(&row("Running", 12, ""), &never)),
            ["started"]
        );
        // A death and a restart between two reads.
        assert_eq!(
            kinds(&r.observe(&row("Running", 14, ""), &never)),
            ["exited gone false", "started"]
        );
        assert_eq!(
            kinds(&r.observe(&row("Stopped", 15, ""), &never)),
            ["exited gone true"]
        );
        assert_eq!(
            kinds(&r.observe(&row("Failed", 16, "downloading x: 404"), &never)),
            ["failed: downloading x: 404"]
        );
        assert!(r
            .observe(&row("Failed", 21, "downloading x: 404"), &never)
            .is_empty());
        let rows = r.snapshots();
        assert_eq!(
            (rows[0].node.as_str(), rows[0].origin, rows[0].pid),
            ("nodeB", Origin::Remote, None)
        );
        assert!(r.output("d-1").unwrap().recent(4)[0]
            .text
            .starts_with("remote: no pid here"));
    }

    #[test]
    fn found_running_at_the_first_read_and_never_when_it_is_local() {
        let r = remote();
        assert!(r.observe(&row("Running", 10, ""), &|_| false).is_empty());
        assert_eq!(
            kinds(&r.observe(&row("Running", 10, ""), &|_| false)),
            ["attached"]
        );
        // Deployed but not reported at the first read: its start is seen.
        let seen = remote();
        assert!(seen.observe(&row("", 0, ""), &|_| false).is_empty());
        assert!(seen.observe(&row("", 0, ""), &|_| false).is_empty());
        assert_eq!(
            kinds(&seen.observe(&row("Running", 10, ""), &|_| false)),
            ["started"]
        );
        let local = remote();
        assert!(local.observe(&row("Running", 10, ""), &|_| true).is_empty());
        assert!(local.observe(&row("Running", 10, ""), &|_| true).is_empty());
        assert!(local.snapshots().is_empty());
    }
}
