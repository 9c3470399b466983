//! The cluster as recovery sees it: each node's health as the controller
//! reports it, which instance runs where, what was done to a node (killed,
//! frozen, thawed) and each failover with its figures. Fed by cluster reads
//! ([`ClusterView`]) and node actions; the tracker turns what changed into
//! timeline lines. The one owner of node state: the Nodes pane, `ctl nodes`
//! and the events all read it.

use std::collections::BTreeMap;

use super::cycle::Cycle;
use super::facts::{NodeAction, TsMs};
use crate::cluster::{Assignment, ClusterView};

/// A node's health, as its controller judges it (from the heartbeat TTL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeHealth {
    Healthy,
    Unhealthy,
}

impl NodeHealth {
    pub fn word(self) -> &'static str {
        match self {
            NodeHealth::Healthy => "HEALTHY",
            NodeHealth::Unhealthy => "UNHEALTHY",
        }
    }
}

/// Why a node was read unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeLoss {
    /// Its last heartbeat is older than the TTL: frozen, cut off, slow.
    Heartbeats,
    /// Its heartbeat was still fresh: only its closed connection (the agent's
    /// presence stream, closed by the kernel when the agent dies) tells a
    /// controller so soon; or it was killed here.
    Connection,
}

/// The controller's default `--node-ttl`, for a book told no other.
pub const DEFAULT_NODE_TTL_MS: TsMs = 3_000;

/// One node as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub id: String,
    pub health: NodeHealth,
    /// Unix seconds of its last heartbeat, as the controller says.
    pub last_seen_unix: i64,
    /// When the health last changed (or the node was first seen), unix ms.
    pub since: TsMs,
    /// Instances the controller wants running there.
    pub instances: Vec<String>,
    /// The last thing done to it here, and when.
    pub action: Option<(NodeAction, TsMs)>,
}

impl NodeState {
    /// Frozen by us and not thawed since.
    pub fn is_frozen(&self) -> bool {
        matches!(self.action, Some((NodeAction::Frozen, _)))
    }

    /// Killed by us and not revived since.
    pub fn is_killed(&self) -> bool {
        matches!(self.action, Some((NodeAction::Killed, _)))
    }

    /// Its link cut or degraded by us and not healed since.
    pub fn link_fault(&self) -> Option<NodeAction> {
        self.action.map(|(a, _)| a).filter(|a| {
            matches!(
                a,
                NodeAction::Partitioned | NodeAction::CutOneWay | NodeAction::Degraded
            )
        })
    }

    /// Seconds since the last heartbeat at `now` (unix ms), if it ever beat.
    pub fn heartbeat_age_secs(&self, now: TsMs) -> Option<i64> {
        (self.last_seen_unix > 0).then(|| (now / 1000) as i64 - self.last_seen_unix)
    }
}

/// Why `node`, read unhealthy at `at`, was lost: its last beat (whole
/// seconds, so never younger than it was) still within the TTL means only
/// its closed connection can have told; anything else is missed heartbeats.
fn loss(node: &NodeState, at: TsMs, ttl_ms: TsMs) -> NodeLoss {
    let beat = TsMs::try_from(node.last_seen_unix).unwrap_or(0) * 1000;
    if beat > 0 && beat <= at && at - beat < ttl_ms {
        NodeLoss::Connection
    } else {
        NodeLoss::Heartbeats
    }
}

/// One instance moved off a node, and how long each part of it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    pub from_node: String,
    pub to_node: String,
    pub instance: String,
    pub new_instance: String,
    /// When the node was killed or frozen here, if it was done here.
    pub cause: Option<(NodeAction, TsMs)>,
    /// When the node was first read unhealthy (or the move seen, if first).
    pub detected_at: TsMs,
    /// The new instance's first start.
    pub running_at: Option<TsMs>,
    /// Its first new checkpoint and the steps redone (from the recovery cycle).
    pub checkpoint_at: Option<TsMs>,
    pub steps_lost: Option<i64>,
}

impl Failover {
    /// Where the clock starts: the kill or freeze, else the detection.
    pub fn origin(&self) -> TsMs {
        self.cause.map_or(self.detected_at, |(_, at)| at)
    }

    pub fn to_detected_ms(&self) -> Option<u64> {
        self.cause
            .map(|(_, at)| self.detected_at.saturating_sub(at))
    }

    pub fn to_running_ms(&self) -> Option<u64> {
        self.running_at.map(|t| t.saturating_sub(self.origin()))
    }

    pub fn to_checkpoint_ms(&self) -> Option<u64> {
        self.checkpoint_at.map(|t| t.saturating_sub(self.origin()))
    }
}

/// What a cluster read or an action changed, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeChange {
    Up {
        node: String,
    },
    Down {
        node: String,
        how: NodeLoss,
    },
    Migrated(Failover),
    Action {
        node: String,
        action: NodeAction,
    },
    /// A failover's new instance wrote its first checkpoint: the figures are whole.
    Recovered(Failover),
    /// The controller refused more writes from an instance a failover replaced:
    /// `refused` in all so far, `by` the instance that has its work now.
    Fenced {
        instance: String,
        node: String,
        refused: u64,
        by: Option<String>,
    },
}

#[derive(Debug)]
pub struct NodeBook {
    /// The controller's TTL: a node read unhealthy sooner after its last beat
    /// lost its connection, not its heartbeats.
    ttl_ms: TsMs,
    nodes: BTreeMap<String, NodeState>,
    assignments: BTreeMap<String, Assignment>,
    failovers: Vec<Failover>,
    /// When each instance was first seen running. The process watcher can see a
    /// failover's new instance start before a cluster read shows its row.
    first_started: BTreeMap<String, TsMs>,
    /// Recovery cycles closed by an instance no failover is known for yet: a
    /// failover's new instance can resume before a read shows the move.
    resumed_early: BTreeMap<String, Cycle>,
}

impl Default for NodeBook {
    fn default() -> Self {
        NodeBook {
            ttl_ms: DEFAULT_NODE_TTL_MS,
            nodes: BTreeMap::new(),
            assignments: BTreeMap::new(),
            failovers: Vec::new(),
            first_started: BTreeMap::new(),
            resumed_early: BTreeMap::new(),
        }
    }
}

impl NodeBook {
    /// The controller's `--node-ttl`, when it is not the default.
    pub fn set_ttl(&mut self, ttl: std::time::Duration) {
        self.ttl_ms = ttl.as_millis() as TsMs;
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.values()
    }

    pub fn node(&self, id: &str) -> Option<&NodeState> {
        self.nodes.get(id)
    }

    /// The node an instance is assigned to, if the cluster said.
    pub fn node_of(&self, instance: &str) -> Option<&str> {
        self.assignments
            .get(instance)
            .map(|a| a.node_id.as_str())
            .filter(|n| !n.is_empty())
    }

    /// A cluster read at `at`: what changed since the last one.
    pub fn read(&mut self, at: TsMs, view: ClusterView) -> Vec<NodeChange> {
        let mut changes = Vec::new();
        for fact in &view.nodes {
            let health = if fact.is_healthy() {
                NodeHealth::Healthy
            } else {
                NodeHealth::Unhealthy
            };
            match self.nodes.get_mut(&fact.node_id) {
                Some(node) => {
                    node.last_seen_unix = fact.last_seen;
                    if node.health != health {
                        node.health = health;
                        node.since = at;
                        changes.push(match health {
                            NodeHealth::Healthy => NodeChange::Up {
                                node: fact.node_id.clone(),
                            },
                            NodeHealth::Unhealthy => NodeChange::Down {
                                node: fact.node_id.clone(),
                                how: loss(node, at, self.ttl_ms),
                            },
                        });
                    }
                }
                None => {
                    // A node first seen healthy is news; one first seen dead is
                    // only drawn (its death happened before we looked).
                    if health == NodeHealth::Healthy {
                        changes.push(NodeChange::Up {
                            node: fact.node_id.clone(),
                        });
                    }
                    self.nodes.insert(
                        fact.node_id.clone(),
                        NodeState {
                            id: fact.node_id.clone(),
                            health,
                            last_seen_unix: fact.last_seen,
                            since: at,
                            instances: Vec::new(),
                            action: None,
                        },
                    );
                }
            }
        }
        // A node gone from the list (deleted) is no longer drawn.
        self.nodes
            .retain(|id, _| view.nodes.iter().any(|n| &n.node_id == id));

        let before = std::mem::take(&mut self.assignments);
        self.assignments = view
            .assignments
            .iter()
            .map(|a| (a.instance_id.clone(), a.clone()))
            .collect();
        // A migration: a new row on another node while a row of the same
        // deployment, running before, is now parked.
        let parked: Vec<&Assignment> = self
            .assignments
            .values()
            .filter(|a| {
                !a.wants_running()
                    && before
                        .get(&a.instance_id)
                        .is_some_and(Assignment::wants_running)
            })
            .collect();
        let mut moved: Vec<Failover> = Vec::new();
        for new in self
            .assignments
            .values()
            .filter(|a| a.wants_running() && !before.contains_key(&a.instance_id))
        {
            let Some(old) = parked.iter().find(|old| {
                old.deployment_id == new.deployment_id
                    && old.node_id != new.node_id
                    && !moved.iter().any(|m| m.instance == old.instance_id)
            }) else {
                continue;
            };
            let running_at = self.first_started.get(&new.instance_id).copied();
            // We see the controller's detection only when we read it: the new
            // instance's start, when seen first, is an earlier proof of it.
            let read_at = self
                .nodes
                .get(&old.node_id)
                .filter(|n| n.health == NodeHealth::Unhealthy)
                .map_or(at, |n| n.since);
            let detected_at = running_at.map_or(read_at, |r| r.min(read_at));
            let cause = self
                .nodes
                .get(&old.node_id)
                .and_then(|n| n.action)
                .filter(|(a, _)| a.is_fault());
            moved.push(Failover {
                from_node: old.node_id.clone(),
                to_node: new.node_id.clone(),
                instance: old.instance_id.clone(),
                new_instance: new.instance_id.clone(),
                cause,
                detected_at,
                running_at,
                checkpoint_at: None,
                steps_lost: None,
            });
        }
        for m in moved {
            let early = self.resumed_early.remove(&m.new_instance);
            changes.push(NodeChange::Migrated(m.clone()));
            self.failovers.push(m);
            if let Some(change) = early.and_then(|cycle| self.resumed(&cycle)) {
                changes.push(change);
            }
        }
        for a in self.assignments.values() {
            let refused = a.fenced_writes.unwrap_or(0);
            let was = before
                .get(&a.instance_id)
                .and_then(|b| b.fenced_writes)
                .unwrap_or(0);
            if refused > was {
                changes.push(NodeChange::Fenced {
                    instance: a.instance_id.clone(),
                    node: a.node_id.clone(),
                    refused,
                    by: self
                        .replaced_by(&a.instance_id)
                        .map(|f| f.new_instance.clone()),
                });
            }
        }
        for node in self.nodes.values_mut() {
            node.instances = self
                .assignments
                .values()
                .filter(|a| a.node_id == node.id && a.wants_running())
                .map(|a| a.instance_id.clone())
                .collect();
        }
        changes
    }

    /// Writes the controller refused from `instance` (its `fencedWrites`).
    pub fn fenced_writes(&self, instance: &str) -> u64 {
        self.assignments
            .get(instance)
            .and_then(|a| a.fenced_writes)
            .unwrap_or(0)
    }

    /// The failover that moved `instance`'s work elsewhere, if one did.
    pub fn replaced_by(&self, instance: &str) -> Option<&Failover> {
        self.failovers.iter().find(|f| f.instance == instance)
    }

    /// Something was done to a node here at `at`.
    pub fn act(&mut self, at: TsMs, node: &str, action: NodeAction) -> NodeChange {
        if let Some(n) = self.nodes.get_mut(node) {
            n.action = Some((action, at));
        }
        NodeChange::Action {
            node: node.to_string(),
            action,
        }
    }

    /// An instance started at `at`: a failover's new instance is now running.
    pub fn started(&mut self, at: TsMs, instance: &str) {
        self.first_started.entry(instance.to_string()).or_insert(at);
        if let Some(f) = self
            .failovers
            .iter_mut()
            .find(|f| f.new_instance == instance && f.running_at.is_none())
        {
            f.running_at = Some(at);
        }
    }

    /// A recovery cycle closed: if its restarted instance is a failover's new
    /// one, that failover is complete.
    pub fn resumed(&mut self, cycle: &Cycle) -> Option<NodeChange> {
        let instance = cycle.restarted_instance.as_deref()?;
        let Some(f) = self
            .failovers
            .iter_mut()
            .find(|f| f.new_instance == instance && f.checkpoint_at.is_none())
        else {
            // Kept for the move a later read may show (see `read`).
            self.resumed_early
                .insert(instance.to_string(), cycle.clone());
            return None;
        };
        f.checkpoint_at = cycle.first_checkpoint_at;
        f.steps_lost = cycle.steps_lost;
        if f.running_at.is_none() {
            f.running_at = cycle.restarted_at;
        }
        Some(NodeChange::Recovered(f.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cluster::DesiredState;
    use crate::recovery::sample::{assignment as row, node};

    /// A node read unhealthy while its last beat is younger than the TTL lost
    /// its connection (an agent killed: 0.4 s, not the TTL); one read so
    /// after the TTL missed its heartbeats (a frozen agent).
    #[test]
    fn a_node_lost_by_its_connection_says_so_and_one_that_stopped_beating_too() {
        let beat = |id: &str, healthy: bool| crate::cluster::Node {
            last_seen: 1_000,
            ..node(id, healthy)
        };
        let mut book = NodeBook::default();
        let view = |a: bool, b: bool| ClusterView {
            nodes: vec![beat("nodeA", a), beat("nodeB", b)],
            assignments: vec![],
        };
        book.read(1_000_100, view(true, true));
        let killed = book.read(1_000_900, view(false, true));
        assert_eq!(
            killed,
            [NodeChange::Down {
                node: "nodeA".into(),
                how: NodeLoss::Connection,
            }]
        );
        let frozen = book.read(1_004_200, view(false, false));
        assert_eq!(
            frozen,
            [NodeChange::Down {
                node: "nodeB".into(),
                how: NodeLoss::Heartbeats,
            }]
        );
        // A longer TTL: 3.2 s after the beat is still within it.
        let mut book = NodeBook::default();
        book.set_ttl(std::time::Duration::from_secs(5));
        book.read(1_000_100, view(true, true));
        let down = book.read(1_003_200, view(true, false));
        assert!(matches!(
            down[..],
            [NodeChange::Down {
                how: NodeLoss::Connection,
                ..
            }]
        ));
    }

    #[test]
    fn a_dead_node_and_the_move_of_its_instance_are_seen_with_their_times() {
        let mut book = NodeBook::default();
        let first = book.read(
            1_000,
            ClusterView {
                nodes: vec![node("nodeA", true), node("nodeB", true)],
                assignments: vec![row("d1-a", "nodeA", DesiredState::Running)],
            },
        );
        assert_eq!(first.len(), 2, "both nodes come up: {first:?}");
        assert_eq!(book.node_of("d1-a"), Some("nodeA"));
        book.act(2_000, "nodeA", NodeAction::Killed);
        let down = book.read(
            5_000,
            ClusterView {
                nodes: vec![node("nodeA", false), node("nodeB", true)],
                assignments: vec![row("d1-a", "nodeA", DesiredState::Running)],
            },
        );
        assert_eq!(
            down,
            [NodeChange::Down {
                node: "nodeA".into(),
                how: NodeLoss::Heartbeats,
            }]
        );
        let moved = book.read(
            6_000,
            ClusterView {
                nodes: vec![node("nodeA", false), node("nodeB", true)],
                assignments: vec![
                    row("d1-a", "nodeA", DesiredState::Stopped),
                    row("d1-b", "nodeB", DesiredState::Running),
                ],
            },
        );
        let [NodeChange::Migrated(f)] = moved.as_slice() else {
            panic!("one migration: {moved:?}");
        };
        assert_eq!(
            (
                f.from_node.as_str(),
                f.to_node.as_str(),
                f.new_instance.as_str()
            ),
            ("nodeA", "nodeB", "d1-b")
        );
        assert_eq!(f.to_detected_ms(), Some(3_000));
        book.started(6_500, "d1-b");
        let cycle = Cycle {
            killed_instance: "d1-a".into(),
            killed_at: 2_010,
            how: super::super::facts::ProcessExit::Unknown,
            progress_at_kill: Some(50),
            counter_at_kill: Some(5),
            flag_after_kill: true,
            restarted_at: Some(6_500),
            restarted_instance: Some("d1-b".into()),
            first_checkpoint_at: Some(7_000),
            resumed_from: Some(50),
            steps_lost: Some(0),
            ..Cycle::opened("d1-a", 2_010, super::super::facts::ProcessExit::Unknown)
        };
        let Some(NodeChange::Recovered(f)) = book.resumed(&cycle) else {
            panic!("the failover completes");
        };
        assert_eq!(
            (f.to_running_ms(), f.to_checkpoint_ms()),
            (Some(4_500), Some(5_000))
        );
        assert_eq!(book.node("nodeB").unwrap().instances, ["d1-b"]);
        assert!(book.node("nodeA").unwrap().instances.is_empty());
        // A second read with nothing new says nothing.
        assert!(book
            .read(
                7_000,
                ClusterView {
                    nodes: vec![node("nodeA", false), node("nodeB", true)],
                    assignments: vec![
                        row("d1-a", "nodeA", DesiredState::Stopped),
                        row("d1-b", "nodeB", DesiredState::Running),
                    ],
                },
            )
            .is_empty());
    }

    #[test]
    fn a_new_instance_seen_starting_before_the_read_bounds_the_detection() {
        let mut book = NodeBook::default();
        book.read(
            1_000,
            ClusterView {
                nodes: vec![node("nodeA", true), node("nodeB", true)],
                assignments: vec![row("d1-a", "nodeA", DesiredState::Running)],
            },
        );
        book.act(2_000, "nodeA", NodeAction::Killed);
        // The process watcher sees nodeB's worker before the next cluster read.
        book.started(5_900, "d1-b");
        let changes = book.read(
            6_000,
            ClusterView {
                nodes: vec![node("nodeA", false), node("nodeB", true)],
                assignments: vec![
                    row("d1-a", "nodeA", DesiredState::Stopped),
                    row("d1-b", "nodeB", DesiredState::Running),
                ],
            },
        );
        let Some(NodeChange::Migrated(f)) = changes.last() else {
            panic!("a migration: {changes:?}");
        };
        assert_eq!(
            (f.to_detected_ms(), f.to_running_ms()),
            (Some(3_900), Some(3_900))
        );
    }

    #[test]
    fn a_node_first_seen_dead_is_drawn_but_not_news_and_a_stop_is_no_migration() {
        let mut book = NodeBook::default();
        let changes = book.read(
            1_000,
            ClusterView {
                nodes: vec![node("nodeA", false)],
                assignments: vec![row("d1-a", "nodeA", DesiredState::Running)],
            },
        );
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(book.node("nodeA").unwrap().health, NodeHealth::Unhealthy);
        // Stopped by a deployment stop: parked, but no new row elsewhere.
        let changes = book.read(
            2_000,
            ClusterView {
                nodes: vec![node("nodeA", false)],
                assignments: vec![row("d1-a", "nodeA", DesiredState::Stopped)],
            },
        );
        assert!(changes.is_empty(), "{changes:?}");
    }
}
