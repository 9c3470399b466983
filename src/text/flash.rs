//! The dashboard's flash messages: what a key did, what a command reported,
//! why nothing happened; English and Chinese side by side. Ids, pids, signal
//! names and errors from outside are quoted as they are (the footer escapes
//! what it draws).

use super::lang::{both, Lang};
use crate::recovery::NodeAction;

/// Where a signal went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalTarget<'a> {
    /// The worker's own process.
    Pid(u32),
    /// The process and its tree: `under`, the wrappers above it, when known
    /// (`sh→bash`).
    Tree { pid: u32, under: Option<&'a str> },
    /// An instance on another machine: through the agent of `node` (`tree`:
    /// its whole process group).
    Agent { node: &'a str, tree: bool },
}

/// A signal sent to an instance: `SIGKILL → pid 4243 (kv-demo-001)`.
pub fn signal_sent(signal: &str, to: SignalTarget<'_>, instance: &str, lang: Lang) -> String {
    let to = match to {
        SignalTarget::Pid(pid) => format!("pid {pid}"),
        SignalTarget::Tree {
            pid,
            under: Some(under),
        } => both!(
            lang,
            format!("pid {pid} and {under}"),
            format!("pid {pid} 及 {under}"),
        ),
        SignalTarget::Tree { pid, under: None } => both!(
            lang,
            format!("pid {pid} and its tree"),
            format!("pid {pid} 及其进程树"),
        ),
        SignalTarget::Agent { node, tree: false } => both!(
            lang,
            format!("its worker, via {node}'s agent"),
            format!("其 worker，经 {node} 的 agent"),
        ),
        SignalTarget::Agent { node, tree: true } => both!(
            lang,
            format!("its process tree, via {node}'s agent"),
            format!("其进程树，经 {node} 的 agent"),
        ),
    };
    both!(
        lang,
        format!("{signal} → {to} ({instance})"),
        format!("{signal} → {to}（{instance}）"),
    )
}

/// What a remote instance's agent did with a signal, in its words
/// (`nodeB's agent: SIGKILL sent to pid 4711 (kv-demo under sh→bash)`).
pub fn signalled(instance: &str, done: &str, lang: Lang) -> String {
    both!(
        lang,
        format!("{done} ({instance})"),
        format!("{done}（{instance}）"),
    )
}

/// `--kill-at` fired: `pid` is the worker's (`?` if not known yet).
pub fn kill_at_pid(at: i64, pid: &str, instance: &str, lang: Lang) -> String {
    both!(
        lang,
        format!("--kill-at {at}%: SIGKILL → pid {pid} ({instance})"),
        format!("--kill-at {at}%：SIGKILL → pid {pid}（{instance}）"),
    )
}

/// `--kill-at --kill-node` fired: the instance's node goes.
pub fn kill_at_node(at: i64, node: &str, instance: &str, lang: Lang) -> String {
    both!(
        lang,
        format!("--kill-at {at}%: SIGKILL → node {node} ({instance})"),
        format!("--kill-at {at}%：SIGKILL → 节点 {node}（{instance}）"),
    )
}

/// A signal key on an instance that has no process.
pub fn not_running(instance: &str, lang: Lang) -> String {
    both!(
        lang,
        format!("{instance} is not running: nothing to signal"),
        format!("{instance} 未在运行：没有可发送信号的进程"),
    )
}

/// The auto-restart key, before the command runs.
pub fn auto_restart(on: bool, instance: &str, lang: Lang) -> String {
    match (on, lang) {
        (true, Lang::En) => format!("auto-restart on for {instance}"),
        (false, Lang::En) => format!("auto-restart off for {instance}"),
        (true, Lang::Zh) => format!("已为 {instance} 开启自动重启"),
        (false, Lang::Zh) => format!("已为 {instance} 关闭自动重启"),
    }
}

/// After [`auto_restart`] turned on for an instance that is not running.
pub fn start_it_with(key: &str, lang: Lang) -> String {
    both!(
        lang,
        format!(" (not running: {key} starts it now)"),
        format!("（未在运行：按 {key} 立即启动）"),
    )
}

/// A log search that found nothing (the term quoted and escaped, as typed).
pub fn no_match(term: &str, lang: Lang) -> String {
    both!(
        lang,
        format!("no match for {term:?}"),
        format!("没有找到 {term:?}"),
    )
}

/// `n` in a shared namespace where one runs: added, not started.
pub fn added_beside(instance: &str, beside: &str, start_key: &str, lang: Lang) -> String {
    both!(
        lang,
        format!(
            "added {instance}, not started: {beside} runs in the shared namespace and two writers would race; {start_key} starts it"
        ),
        format!(
            "已添加 {instance}，未启动：{beside} 正在共享命名空间中运行，两个写入者会冲突；按 {start_key} 启动它"
        ),
    )
}

pub fn started(instance: &str, lang: Lang) -> String {
    both!(
        lang,
        format!("started {instance}"),
        format!("已启动 {instance}"),
    )
}

pub fn stopped(instance: &str, lang: Lang) -> String {
    both!(
        lang,
        format!("{instance} stopped"),
        format!("{instance} 已停止"),
    )
}

pub fn restarted(instance: &str, lang: Lang) -> String {
    both!(
        lang,
        format!("{instance} restarted"),
        format!("{instance} 已重启"),
    )
}

pub fn namespace_reset(removed: usize, lang: Lang) -> String {
    both!(
        lang,
        format!("namespace reset: {removed} keys removed"),
        format!("命名空间已重置：删除了 {removed} 个键"),
    )
}

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
        NodeAction::Partitioned => both!(
            lang,
            format!("node {node} partitioned (its link drops every packet); P again heals it"),
            format!("节点 {node} 已分区（链路丢弃所有数据包）；再按 P 愈合"),
        ),
        NodeAction::CutOneWay => both!(
            lang,
            format!("node {node} cut one way"),
            format!("节点 {node} 单向断开"),
        ),
        NodeAction::Degraded => both!(
            lang,
            format!("node {node}'s link degraded"),
            format!("节点 {node} 的链路已劣化"),
        ),
        NodeAction::Healed => both!(
            lang,
            format!("node {node} healed: its link is whole again"),
            format!("节点 {node} 已愈合：链路恢复"),
        ),
    }
}

/// What a failed command was trying to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<'a> {
    NewInstance,
    Reset,
    /// Something done to this node.
    Node(&'a str),
    /// This signal, to one process or (`tree`) its whole tree.
    Signal {
        name: &'a str,
        tree: bool,
    },
    Start,
    Stop,
    Restart,
    AutoRestart,
    Quit,
}

/// A command that failed, with the error it reported.
pub fn failed(attempt: Attempt<'_>, error: &str, lang: Lang) -> String {
    match attempt {
        Attempt::NewInstance => both!(
            lang,
            format!("cannot start a new instance: {error}"),
            format!("无法启动新实例：{error}"),
        ),
        Attempt::Reset => both!(
            lang,
            format!("reset failed: {error}"),
            format!("重置失败：{error}"),
        ),
        Attempt::Node(node) => both!(lang, format!("{node}: {error}"), format!("{node}：{error}")),
        Attempt::Signal { name, tree: true } => both!(
            lang,
            format!("{name} to the tree failed: {error}"),
            format!("向进程树发送 {name} 失败：{error}"),
        ),
        Attempt::Signal { name, tree: false } => both!(
            lang,
            format!("{name} failed: {error}"),
            format!("发送 {name} 失败：{error}"),
        ),
        Attempt::Start => both!(
            lang,
            format!("start failed: {error}"),
            format!("启动失败：{error}"),
        ),
        Attempt::Stop => both!(
            lang,
            format!("stop failed: {error}"),
            format!("停止失败：{error}"),
        ),
        Attempt::Restart => both!(
            lang,
            format!("restart failed: {error}"),
            format!("重启失败：{error}"),
        ),
        Attempt::AutoRestart => both!(
            lang,
            format!("auto-restart failed: {error}"),
            format!("设置自动重启失败：{error}"),
        ),
        Attempt::Quit => both!(
            lang,
            format!("quit failed: {error}"),
            format!("退出失败：{error}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flash in both languages: not empty, the two different, the
    /// values quoted in both.
    #[test]
    fn every_flash_has_both_languages_and_keeps_its_values() {
        let chinese = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        let all = |lang| {
            let mut texts = vec![
                signal_sent("SIGKILL", SignalTarget::Pid(42), "kv-1", lang),
                signal_sent(
                    "SIGTERM",
                    SignalTarget::Tree {
                        pid: 42,
                        under: Some("sh→bash"),
                    },
                    "kv-1",
                    lang,
                ),
                signal_sent(
                    "SIGTERM",
                    SignalTarget::Tree {
                        pid: 42,
                        under: None,
                    },
                    "kv-1",
                    lang,
                ),
                kill_at_pid(50, "42", "kv-1", lang),
                kill_at_node(50, "nodeA", "kv-1", lang),
                not_running("kv-1", lang),
                auto_restart(true, "kv-1", lang),
                auto_restart(false, "kv-1", lang),
                start_it_with("s", lang),
                no_match("boom", lang),
                started("kv-1", lang),
                stopped("kv-1", lang),
                restarted("kv-1", lang),
                namespace_reset(3, lang),
            ];
            for action in [
                NodeAction::Killed,
                NodeAction::Frozen,
                NodeAction::Thawed,
                NodeAction::Revived,
                NodeAction::Partitioned,
                NodeAction::CutOneWay,
                NodeAction::Degraded,
                NodeAction::Healed,
            ] {
                texts.push(node_done("nodeA", action, lang));
            }
            for attempt in [
                Attempt::NewInstance,
                Attempt::Reset,
                Attempt::Node("nodeA"),
                Attempt::Signal {
                    name: "SIGINT",
                    tree: true,
                },
                Attempt::Signal {
                    name: "SIGINT",
                    tree: false,
                },
                Attempt::Start,
                Attempt::Stop,
                Attempt::Restart,
                Attempt::AutoRestart,
                Attempt::Quit,
            ] {
                texts.push(failed(attempt, "boom", lang));
            }
            texts
        };
        let (en, zh) = (all(Lang::En), all(Lang::Zh));
        for (en, zh) in en.iter().zip(&zh) {
            assert!(!en.trim().is_empty() && !chinese(en), "{en}");
            assert_ne!(en, zh);
            for value in ["kv-1", "nodeA", "boom", "42"] {
                assert_eq!(en.contains(value), zh.contains(value), "{en} / {zh}");
            }
        }
        assert_eq!(
            signal_sent(
                "SIGKILL",
                SignalTarget::Tree {
                    pid: 4711,
                    under: Some("sh→bash")
                },
                "kv-1",
                Lang::En
            ),
            "SIGKILL → pid 4711 and sh→bash (kv-1)"
        );
    }
}
