//! What acting on a session's workers and nodes needs, cheap to clone into a background task.

use super::remote::Remote;
use crate::agent::local::LocalNodes;
use crate::clock::now_ms;
use crate::hosts::LinkFault;
use crate::recovery::{Fact, NodeAction, TsMs};
use crate::supervisor::{InstanceAction, InstanceSnapshot, ProcessWatcher, Supervisor};
use anyhow::{Context, Result};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What acting on workers needs, cheap to clone into a background task.
#[derive(Clone)]
pub struct SessionHandle {
    pub(super) supervisor: Supervisor,
    pub(super) attached: Option<Arc<ProcessWatcher>>,
    pub(super) nodes: Option<Arc<LocalNodes>>,
    pub(super) remote: Option<Arc<Remote>>,
    pub(super) node_facts: mpsc::UnboundedSender<(TsMs, Fact)>,
}

/// What to do to a local node (`K`, `F`, `ctl kill-node`, `ctl freeze-node`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOp {
    Kill,
    /// Freeze it, or thaw it if it is frozen.
    ToggleFreeze,
    /// Start a node killed here again (a machine coming back).
    Revive,
    /// Cut its test host's link both ways, or heal it if it has a fault
    /// (`P`, `ctl partition-node`).
    TogglePartition,
    /// Put this fault on its test host's link.
    Cut(crate::hosts::LinkFault),
    /// Make its test host's link whole again.
    Heal,
}

impl SessionHandle {
    /// Kills a local node, or freezes or thaws it, and tells it as a fact.
    /// Returns what was done.
    pub fn node_action(&self, node: &str, op: NodeOp) -> Result<NodeAction> {
        let nodes = match &self.nodes {
            Some(nodes) => nodes,
            None => anyhow::bail!("no local nodes here: `up --nodes N` starts them"),
        };
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
            NodeOp::TogglePartition if nodes.link_fault(node).is_some() => {
                nodes.heal(node)?;
                NodeAction::Healed
            }
            NodeOp::TogglePartition => {
                nodes.cut(node, &LinkFault::Partition)?;
                NodeAction::Partitioned
            }
            NodeOp::Cut(fault) => {
                nodes.cut(node, &fault)?;
                match fault {
                    LinkFault::Partition => NodeAction::Partitioned,
                    LinkFault::CutOutgoing | LinkFault::CutIncoming => NodeAction::CutOneWay,
                    LinkFault::Degraded(_) => NodeAction::Degraded,
                }
            }
            NodeOp::Heal => {
                nodes.heal(node)?;
                NodeAction::Healed
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

    /// Kills, freezes or thaws a node, here (`up --nodes`) or, watching
    /// remote instances, elsewhere through its agent; told as a fact either
    /// way. What was done, and the agent's words for a node elsewhere.
    pub async fn node_action_anywhere(
        &self,
        node: &str,
        op: NodeOp,
    ) -> Result<(NodeAction, Option<String>)> {
        let local = self.local_agents().iter().any(|(name, _)| name == node);
        let Some(remote) = self.remote.as_ref().filter(|_| !local) else {
            return self.node_action(node, op).map(|action| (action, None));
        };
        let (action, said) = remote.node_action(node, op).await?;
        let fact = Fact::NodeAction {
            node: node.to_string(),
            action,
        };
        let _ = self.node_facts.send((now_ms(), fact));
        Ok((action, Some(said)))
    }

    /// The local nodes' agents: name and pid (`up --nodes`).
    pub fn local_agents(&self) -> Vec<(String, u32)> {
        self.nodes.iter().flat_map(|n| n.nodes()).collect()
    }

    /// Every instance: owned ones, then attached ones, then remote ones.
    pub fn instances(&self) -> Vec<InstanceSnapshot> {
        let mut all = self.supervisor.instances();
        if let Some(w) = &self.attached {
            all.extend(w.instances());
        }
        if let Some(r) = &self.remote {
            all.extend(r.snapshots());
        }
        all
    }

    /// One instance's snapshot, as [`SessionHandle::instances`] has it (an
    /// owned one without listing the others).
    pub fn instance(&self, instance: &str) -> Option<InstanceSnapshot> {
        if let Some(s) = self.supervisor.instance(instance) {
            return Some(s);
        }
        let attached = self
            .attached
            .as_ref()
            .map(|w| w.instances())
            .unwrap_or_default();
        let remote = self
            .remote
            .as_ref()
            .map(|r| r.snapshots())
            .unwrap_or_default();
        attached
            .into_iter()
            .chain(remote)
            .find(|s| s.id == instance)
    }

    /// The node of an instance on another machine; `None` for any other.
    pub fn remote_node(&self, instance: &str) -> Option<String> {
        self.remote.as_ref()?.node_of(instance)
    }

    /// Signals an instance on another machine through its agent (`whole_tree`:
    /// its process group, else the worker program); what the agent did.
    pub async fn signal_remote(
        &self,
        instance: &str,
        signal: nix::sys::signal::Signal,
        whole_tree: bool,
    ) -> Result<String> {
        let remote = self
            .remote
            .as_ref()
            .context("no remote instances are watched here")?;
        remote.signal(instance, signal, whole_tree).await
    }

    /// Performs an action. Attached workers can only be signalled (their own
    /// agent starts and stops them), and only after re-checking that the pid
    /// is still the process we found; remote ones only through their agent.
    pub async fn act(&self, instance: &str, action: InstanceAction) -> Result<()> {
        if let Some(node) = self.remote_node(instance) {
            let InstanceAction::Signal(sig) = action else {
                anyhow::bail!(
                    "{instance} runs on node {node}: only signals reach it (through its agent); its deployment starts and stops it"
                );
            };
            self.signal_remote(instance, sig, false).await?;
            return Ok(());
        }
        if let Some(w) = &self.attached {
            if w.instances().iter().any(|s| s.id == instance) {
                let InstanceAction::Signal(sig) = action else {
                    anyhow::bail!(
                        "{instance} is run by someone else (its node's agent, or its own supervisor), not by this dashboard: only signals can be sent to it"
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
        if self.remote_node(instance).is_some() {
            self.signal_remote(instance, signal, true).await?;
            return Ok(());
        }
        if let Some(process) = self.attached_process(instance) {
            // The worker first: its failure is the one that matters.
            process.signal(signal)?;
            for member in process.tree().iter().filter(|m| m.pid != process.pid) {
                // A wrapper may end on its own as the worker dies: not an error.
                let _ = member.signal(signal);
            }
            return Ok(());
        }
        self.act(instance, InstanceAction::Signal(signal)).await
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
            .or_else(|| self.remote.as_ref()?.output(instance))
    }
}
