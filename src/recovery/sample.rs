//! Facts for tests: what the kv-demo worker and the supervisor produce.

use super::facts::{Fact, ProcessExit};
use crate::kv::{Entry, ValueType};

/// The instance the samples talk about.
pub const INSTANCE: &str = "kv-demo-001";

pub fn entry(key: &str, value: &str) -> Entry {
    Entry {
        namespace: "kv-demo".into(),
        key: key.into(),
        value: value.into(),
        value_type: ValueType::String,
        updated_at: 0,
        updated_at_ms: None,
    }
}

/// Step `n`'s checkpoint, written as one batch as kv-demo does.
pub fn checkpoint(n: i64) -> Fact {
    Fact::Written(vec![
        entry("task.progress", &(n * 10).to_string()),
        entry("task.counter", &n.to_string()),
        entry("task.checkpoint", &format!("step_{n}")),
        entry("task.status", "running"),
    ])
}

/// The crash flag being set (at every start).
pub fn flag() -> Fact {
    Fact::Written(vec![entry("app.crashed", "true")])
}

pub fn started(pid: u32) -> Fact {
    Fact::Started {
        instance: INSTANCE.into(),
        pid,
    }
}

pub fn exited(exit: ProcessExit, requested: bool) -> Fact {
    Fact::Exited {
        instance: INSTANCE.into(),
        exit,
        requested,
    }
}

pub fn sigkilled() -> Fact {
    exited(ProcessExit::Signal("SIGKILL".into()), false)
}

/// `fact` as plumdash's controller sends it: each written entry carries its
/// write time (`updatedAtMs`, and `updatedAt` in whole seconds).
pub fn committed_at(ms: u64, fact: Fact) -> Fact {
    match fact {
        Fact::Written(entries) => Fact::Written(
            entries
                .into_iter()
                .map(|mut e| {
                    e.updated_at = (ms / 1000) as i64;
                    e.updated_at_ms = Some(ms as i64);
                    e
                })
                .collect(),
        ),
        other => other,
    }
}

/// A node as `GET /v1/nodes` reports it.
pub fn node(id: &str, healthy: bool) -> crate::cluster::Node {
    use crate::cluster::HealthState;
    crate::cluster::Node {
        node_id: id.into(),
        ip: "127.0.0.1".into(),
        last_seen: 100,
        health: Some(if healthy {
            HealthState::Healthy
        } else {
            HealthState::Unhealthy
        }),
        ..Default::default()
    }
}

/// A row of deployment d1: `instance` on `node`, `desired` Running or Stopped.
pub fn assignment(
    instance: &str,
    node: &str,
    desired: crate::cluster::DesiredState,
) -> crate::cluster::Assignment {
    crate::cluster::Assignment {
        instance_id: instance.into(),
        deployment_id: "d1".into(),
        node_id: node.into(),
        desired,
        fenced_writes: Some(0),
        ..Default::default()
    }
}

/// Instance `instance` started as `pid` (an instance other than [`INSTANCE`]).
pub fn started_as(instance: &str, pid: u32) -> Fact {
    Fact::Started {
        instance: instance.into(),
        pid,
    }
}

/// Instance `instance` gone by `exit`, not asked to stop.
pub fn exited_as(instance: &str, exit: ProcessExit) -> Fact {
    Fact::Exited {
        instance: instance.into(),
        exit,
        requested: false,
    }
}
