//! The dashboard's flash messages, English and Chinese side by side.

use super::lang::{both, Lang};
use crate::recovery::NodeAction;

/// The flash after a node action.
pub fn node_done(node: &str, action: NodeAction, lang: Lang) -> String {
    match action {
        NodeAction::Killed => both!(
            lang,
            format!("SIGKILL → node {node} (agent and workers)"),
            format!("SIGKILL → 节点 {node}（agent 与 worker）"),
        ),
        NodeAction::Frozen => both!(
            lang,
            format!("node {node} frozen (SIGSTOP); F again thaws it"),
            format!("节点 {node} 已冻结（SIGSTOP）；再按 F 解冻"),
        ),
        NodeAction::Thawed => both!(
            lang,
            format!("node {node} thawed (SIGCONT)"),
            format!("节点 {node} 已解冻（SIGCONT）"),
        ),
        NodeAction::Revived => both!(
            lang,
            format!("node {node} back: its agent started again"),
            format!("节点 {node} 已恢复：agent 重新启动"),
        ),
    }
}
