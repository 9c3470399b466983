//! How each timeline event reads, English and Chinese side by side: the
//! dashboard's timeline, `--headless` lines and `verify`'s live lines. The
//! instance id, signal names, key names and state words (`RESUMED from 50%`,
//! `FAILED`, `TORN`, `KILLED`) stay as they are in Chinese.

use super::lang::{both, Lang};
use crate::recovery::{
    Cycle, NodeAction, NodeLoss, ProcessExit, TimelineEvent, TimelineKind, REMOTE_PID,
};

/// One event as a line: its instance (if any), then what happened.
pub fn event(ev: &TimelineEvent, lang: Lang) -> String {
    let text = kind(&ev.kind, lang);
    match &ev.instance {
        Some(id) => format!("{id} {text}"),
        None => text,
    }
}

/// Lines of one kind held back under a flood (`up --headless`), told when
/// their window is over: `kv-demo-001 torn ×4,212 in the last 1 s`.
pub fn held(instance: Option<&str>, kind: &str, count: u64, secs: u64, lang: Lang) -> String {
    let n = thousands(count);
    let text = both!(
        lang,
        format!("{kind} ×{n} in the last {secs} s"),
        format!("{kind} ×{n}（最近 {secs} 秒）")
    );
    match instance {
        Some(id) => format!("{id} {text}"),
        None => text,
    }
}

/// `4212` as `4,212`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `text(v)` when there is a value, nothing otherwise.
fn opt<T>(v: Option<T>, text: impl FnOnce(T) -> String) -> String {
    v.map_or_else(String::new, text)
}

fn pct(p: Option<i64>) -> String {
    p.map_or_else(|| "?".to_string(), |p| format!("{p}%"))
}

/// Where a restart went on from: `20%`, or `≤20%` when writes before the
/// first one seen may have been refused unseen (the controller was down).
pub fn resumed_pct(cycle: &Cycle) -> String {
    let at_most = if cycle.resume_bound { "≤" } else { "" };
    format!("{at_most}{}", pct(cycle.resumed_from))
}

/// Steps lost in a cycle: `3`, or `≥3` when that is only a lower bound.
pub fn lost_steps(cycle: &Cycle) -> Option<String> {
    let at_least = if cycle.resume_bound { "≥" } else { "" };
    cycle.all_lost().map(|n| format!("{at_least}{n}"))
}

/// Milliseconds as tenths of a second (`1.5s`).
fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn kind(kind: &TimelineKind, lang: Lang) -> String {
    use TimelineKind as K;
    match kind {
        K::Started { pid: REMOTE_PID } => both!(
            lang,
            "started on its node (remote: no pid here)".to_string(),
            "已在其节点启动（远程：此处无 pid）".to_string(),
        ),
        K::Attached { pid: REMOTE_PID } => both!(
            lang,
            "found running on its node (remote), attached".to_string(),
            "发现在其节点运行（远程），已附加".to_string(),
        ),
        K::Started { pid } => both!(
            lang,
            format!("started (pid {pid})"),
            format!("已启动（pid {pid}）"),
        ),
        K::Attached { pid } => both!(
            lang,
            format!("found running (pid {pid}), attached"),
            format!("发现正在运行（pid {pid}），已附加"),
        ),
        K::NotRestarted { grace_ms } => {
            let grace = humantime::format_duration(std::time::Duration::from_millis(*grace_ms));
            both!(
                lang,
                format!(
                    "not restarted within {grace}: nothing restarts it \
                     (its restarter may have missed the death)"
                ),
                format!("{grace} 内未被重启：没有谁重启它（它的重启者可能错过了它的退出）"),
            )
        }
        K::Exited {
            exit,
            progress,
            flag,
            crashed,
            requested,
        } => exited(exit, *progress, *flag, *crashed, *requested, lang),
        K::RestartScheduled { delay_ms } => {
            let delay = secs(*delay_ms);
            both!(
                lang,
                format!("restart in {delay}"),
                format!("{delay} 后重启"),
            )
        }
        K::TakingOver { from, delay_ms } => {
            let delay = secs(*delay_ms);
            both!(
                lang,
                format!("takes over from {from} in {delay}"),
                format!("{delay} 后接替 {from}"),
            )
        }
        K::Frozen {
            signal: Some(signal),
        } => both!(
            lang,
            format!("frozen by {signal}"),
            format!("被 {signal} 冻结"),
        ),
        K::Frozen { signal: None } => both!(
            lang,
            "frozen (stopped, seen in /proc)",
            "已冻结（在 /proc 中看到已停止）",
        )
        .to_string(),
        K::Continued => both!(lang, "continued", "已继续").to_string(),
        K::RecoveryUnread => both!(
            lang,
            "started while the controller is unreachable: it cannot read the crash flag yet",
            "在控制器不可达时启动：尚无法读取崩溃标记"
        )
        .to_string(),
        K::Recovering => both!(
            lang,
            "found the crash flag: recovering",
            "发现崩溃标记：恢复中"
        )
        .to_string(),
        // Killed with its task complete: the restart began the next one.
        K::Resumed { cycle } if cycle.task_done_at_kill && cycle.first_checkpoint_at.is_some() => {
            both!(
                lang,
                "began a new task (the last one was complete when it was killed)",
                "开始新任务（被杀死时上一个任务已完成）",
            )
            .to_string()
        }
        K::Resumed { cycle } => {
            let from = resumed_pct(cycle);
            let skipped = cycle.steps_skipped.filter(|n| *n > 0);
            let (lost, restart, checkpoint) = (
                lost_steps(cycle),
                cycle.kill_to_restart_ms(),
                cycle.kill_to_checkpoint_ms(),
            );
            let (recovered_en, recovered_zh) = recovered(cycle.recovered.as_ref());
            // A node's loss is timed from when it was found lost: its
            // worker's death was not seen here.
            let (from_en, from_zh) = match cycle.how {
                ProcessExit::NodeLost => ("node lost", "节点丢失"),
                _ => ("kill", "杀死"),
            };
            both!(
                lang,
                format!(
                    "RESUMED from {from}{recovered_en}{}{}{}{}",
                    opt(lost, |n| format!(", {n} steps lost")),
                    opt(skipped, |n| format!(", {n} steps skipped")),
                    opt(restart, |ms| format!(", {from_en}→restart {ms} ms")),
                    opt(checkpoint, |ms| format!(", {from_en}→checkpoint {ms} ms")),
                ),
                format!(
                    "RESUMED from {from} 已恢复{recovered_zh}{}{}{}{}",
                    opt(lost, |n| format!("，丢失 {n} 步")),
                    opt(skipped, |n| format!("，跳过 {n} 步")),
                    opt(restart, |ms| format!("，{from_zh}→重启 {ms} ms")),
                    opt(checkpoint, |ms| format!("，{from_zh}→检查点 {ms} ms")),
                ),
            )
        }
        K::Stopped => both!(lang, "stopped gracefully", "已优雅停止").to_string(),
        K::Completed => both!(lang, "completed the task", "任务已完成").to_string(),
        K::Failed { reason } => both!(
            lang,
            format!("FAILED: {reason}"),
            format!("FAILED 失败：{reason}"),
        ),
        K::FlagSet => both!(lang, "crash flag set", "崩溃标记已设置").to_string(),
        K::FlagCleared => both!(lang, "crash flag cleared", "崩溃标记已清除").to_string(),
        // The torn values by their key names, the same in both languages.
        K::Torn(t) => both!(
            lang,
            format!("TORN checkpoint: {t}"),
            format!("TORN 检查点不一致：{t}"),
        ),
        K::FeedDown { error } if crate::kv::is_an_answer(error) => both!(
            lang,
            format!("controller error: {error}"),
            format!("控制器出错：{error}"),
        ),
        K::FeedDown { error } => both!(
            lang,
            format!("controller unreachable: {error}"),
            format!("控制器不可达：{error}"),
        ),
        K::FeedUp { via } => both!(
            lang,
            format!("controller live ({via})"),
            format!("控制器在线（{via}）"),
        ),
        K::NodeUp { node } => both!(
            lang,
            format!("node {node} up (heartbeating)"),
            format!("节点 {node} 上线（心跳正常）"),
        ),
        K::NodeDown {
            node,
            how: NodeLoss::Heartbeats,
        } => both!(
            lang,
            format!("node {node} DOWN (missed its heartbeats)"),
            format!("节点 {node} DOWN（心跳超时）"),
        ),
        K::NodeDown {
            node,
            how: NodeLoss::Connection,
        } => both!(
            lang,
            format!("node {node} DOWN (its connection dropped)"),
            format!("节点 {node} DOWN（连接已断开）"),
        ),
        K::Migrated {
            from_node,
            to_node,
            new_instance,
        } => both!(
            lang,
            format!("MIGRATED {from_node} → {to_node} as {new_instance}"),
            format!("MIGRATED {from_node} → {to_node}，新实例 {new_instance}"),
        ),
        K::Node { node, action } => node_action(node, *action, lang),
        K::FailedOver(fo) => {
            let s = |ms: Option<u64>| ms.map_or_else(|| "?".to_string(), secs);
            let (detected, running, checkpoint) = (
                s(fo.to_detected_ms()),
                s(fo.to_running_ms()),
                s(fo.to_checkpoint_ms()),
            );
            let (a, b, lost, caused) = (&fo.from_node, &fo.to_node, fo.steps_lost, fo.cause);
            // Where the English clock starts.
            let from = match caused {
                Some((NodeAction::Frozen, _)) => "freeze",
                Some((NodeAction::Killed, _)) => "kill",
                Some(_) => "cut",
                None => "detected",
            };
            both!(
                lang,
                format!(
                    "failover {a} → {b}: {}{from}→running {running}, \
                     {from}→checkpoint {checkpoint}{}",
                    opt(caused, |_| format!("{from}→detected {detected}, ")),
                    opt(lost, |n| format!(", {n} steps lost")),
                ),
                format!(
                    "故障转移 {a} → {b}：到运行 {running}，到检查点 {checkpoint}{}{}",
                    opt(caused, |_| format!("，到发现 {detected}")),
                    opt(lost, |n| format!("，丢失 {n} 步")),
                ),
            )
        }
        K::Fenced { node, refused, by } => both!(
            lang,
            format!(
                "on {node} REFUSED: {refused} {} fenced{}",
                if *refused == 1 { "write" } else { "writes" },
                match by {
                    Some(by) => format!(" (its work is {by}'s now)"),
                    None => " (a failover replaced it)".to_string(),
                }
            ),
            format!(
                "在 {node} 上 REFUSED：{refused} 次写入被隔离{}",
                opt(by.as_deref(), |b| format!("（工作已归 {b}）")),
            ),
        ),
        K::Superseded { by } => both!(
            lang,
            format!("ended after its work moved to {by} (not a crash)"),
            format!("工作已迁至 {by} 后退出（不是崩溃）"),
        ),
        K::WentBack { from, to, alive } => both!(
            lang,
            format!(
                "checkpoint went BACK from step {from} to {to}: two writers on one namespace{}",
                opt((alive.len() > 1).then_some(alive), |a| format!(
                    " ({} alive)",
                    a.join(", ")
                )),
            ),
            format!("检查点倒退：从第 {from} 步到第 {to} 步（一个命名空间有两个写入者）"),
        ),
        K::Pattern(news) => pattern_news(news, lang),
    }
}

/// What a resumed run recovered, in its pattern's words (English, Chinese).
fn recovered(r: Option<&crate::recovery::Recovered>) -> (String, String) {
    use crate::recovery::Recovered;
    match r {
        None => (String::new(), String::new()),
        Some(Recovered::Replayed { op }) => (
            format!(" (log replayed from OP_{op})"),
            format!("（日志从 OP_{op} 重放）"),
        ),
        Some(Recovered::Restored { state }) => (
            format!(" (machine restored in {state})"),
            format!("（状态机恢复于 {state}）"),
        ),
    }
}

/// A recovery pattern's news. Operation names and state words stay as they are.
pub fn pattern_news(news: &crate::recovery::PatternNews, lang: Lang) -> String {
    use crate::recovery::PatternNews as N;
    match news {
        N::ReplaySkipped { op } => both!(
            lang,
            format!("replayed OP_{op}: already applied, skipped"),
            format!("重放 OP_{op}：已应用过，跳过"),
        ),
        N::AppliedTwice {
            op,
            applied,
            logged,
        } => both!(
            lang,
            format!("replayed OP_{op}: APPLIED TWICE ({applied} applied, {logged} logged)"),
            format!("重放 OP_{op}：APPLIED TWICE 重复应用（已应用 {applied}，已记录 {logged}）"),
        ),
        N::Restored {
            state,
            crashed_in: Some(was),
        } if news.breaks().is_some() => both!(
            lang,
            format!("machine restored WRONGLY in {state} (it crashed in {was})"),
            format!("状态机恢复错误：恢复于 {state}（崩溃时在 {was}）"),
        ),
        N::Restored { state, crashed_in } => both!(
            lang,
            format!(
                "machine restored in {state}{}",
                opt(crashed_in.as_deref(), |w| format!(" (it crashed in {w})"))
            ),
            format!(
                "状态机恢复于 {state}{}",
                opt(crashed_in.as_deref(), |w| format!("（崩溃时在 {w}）"))
            ),
        ),
        N::BadTransition { from, to } => both!(
            lang,
            format!("machine went {from} → {to}: not along INIT → LOAD → TRANSFORM → SAVE → DONE"),
            format!("状态机 {from} → {to}：不符合 INIT → LOAD → TRANSFORM → SAVE → DONE"),
        ),
        N::DoneTwice => both!(
            lang,
            "machine reached DONE twice in one task",
            "状态机在一个任务中两次到达 DONE",
        )
        .to_string(),
        N::StepLost { step, work_done } => both!(
            lang,
            format!(
                "STEP LOST: checkpoint step_{step} was saved before its work (work done to step {work_done}); the restart goes on past it"
            ),
            format!(
                "STEP LOST 丢失一步：检查点 step_{step} 在工作完成前保存（工作只完成到第 {work_done} 步），重启后越过了它"
            ),
        ),
    }
}

/// An exit: how it ended, the progress then and what the crash flag said.
fn exited(
    exit: &ProcessExit,
    progress: Option<i64>,
    flag: Option<bool>,
    crashed: bool,
    requested: bool,
    lang: Lang,
) -> String {
    let at_en = opt(progress, |p| format!(" at {p}%"));
    let at_zh = opt(progress, |p| format!("在 {p}% 时"));
    match exit {
        ProcessExit::Unknown => {
            // Its exit status is its parent's to read; the flag tells the story
            // (set and no crash: the flag is its replacement's now).
            let (en, zh) = match (crashed, flag) {
                (true, _) => ("flag still set: crashed", "标记仍在：已崩溃"),
                (false, Some(true)) => ("flag set", "标记已设置"),
                (false, Some(false)) => ("flag cleared", "标记已清除"),
                (false, None) => ("flag never seen", "从未见到标记"),
            };
            both!(
                lang,
                format!("gone{at_en} ({en})"),
                format!("{at_zh}消失（{zh}）"),
            )
        }
        ProcessExit::Signal(sig) if requested => both!(
            lang,
            format!("stopped by {sig} (stop requested){at_en}"),
            format!("{at_zh}被 {sig} 停止（请求停止）"),
        ),
        ProcessExit::Signal(sig) => {
            let (en, zh) = match flag {
                Some(true) => ("flag still set", "标记仍在"),
                Some(false) => ("flag NOT set", "标记未设置"),
                None => ("flag never seen", "从未见到标记"),
            };
            both!(
                lang,
                format!("killed by {sig}{at_en} ({en})"),
                format!("{at_zh}被 {sig} 杀死（{zh}）"),
            )
        }
        exit => {
            let (en, zh) = if requested {
                (", stop requested", "，请求停止")
            } else {
                ("", "")
            };
            both!(
                lang,
                format!("exited ({exit}{en}){at_en}"),
                format!("{at_zh}退出（{exit}{zh}）"),
            )
        }
    }
}

/// What was done here to a node's processes.
fn node_action(node: &str, action: NodeAction, lang: Lang) -> String {
    match action {
        NodeAction::Killed => both!(
            lang,
            format!("node {node} KILLED (SIGKILL to its agent and workers)"),
            format!("节点 {node} KILLED（向其 agent 与 worker 发送 SIGKILL）"),
        ),
        NodeAction::Frozen => both!(
            lang,
            format!("node {node} FROZEN (SIGSTOP to its agent and workers)"),
            format!("节点 {node} FROZEN（向其 agent 与 worker 发送 SIGSTOP）"),
        ),
        NodeAction::Thawed => both!(
            lang,
            format!("node {node} thawed (SIGCONT)"),
            format!("节点 {node} 已解冻（SIGCONT）"),
        ),
        NodeAction::Revived => both!(
            lang,
            format!("node {node} back (its agent started again)"),
            format!("节点 {node} 已恢复（agent 重新启动）"),
        ),
        NodeAction::Partitioned => both!(
            lang,
            format!("node {node} PARTITIONED (its link drops every packet; it keeps running)"),
            format!("节点 {node} PARTITIONED（其链路丢弃所有数据包；节点仍在运行）"),
        ),
        NodeAction::CutOneWay => both!(
            lang,
            format!("node {node} PARTITIONED one way (its link drops packets in one direction)"),
            format!("节点 {node} PARTITIONED（单向：其链路丢弃一个方向的数据包）"),
        ),
        NodeAction::Degraded => both!(
            lang,
            format!("node {node} DEGRADED (its link loses packets)"),
            format!("节点 {node} DEGRADED（其链路丢包）"),
        ),
        NodeAction::Healed => both!(
            lang,
            format!("node {node} healed (its link whole again)"),
            format!("节点 {node} 已愈合（链路恢复）"),
        ),
    }
}

#[cfg(test)]
mod held_tests {
    use super::*;

    #[test]
    fn held_lines_count_with_separators_in_both_languages() {
        assert_eq!(
            held(Some("kv-demo-001"), "torn", 4212, 1, Lang::En),
            "kv-demo-001 torn ×4,212 in the last 1 s"
        );
        assert_eq!(
            held(None, "controller_down", 7, 1, Lang::Zh),
            "controller_down ×7（最近 1 秒）"
        );
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each event of `sample::every_event` in English and Chinese.
    const PINNED: [[&str; 2]; 57] = [
        ["kv-demo-001 started (pid 4242)", "kv-demo-001 已启动（pid 4242）"],
        ["kv-demo-001 found running (pid 4242), attached", "kv-demo-001 发现正在运行（pid 4242），已附加"],
        ["kv-demo-001 not restarted within 5s: nothing restarts it (its restarter may have missed the death)", "kv-demo-001 5s 内未被重启：没有谁重启它（它的重启者可能错过了它的退出）"],
        ["kv-demo-001 killed by SIGKILL at 50% (flag still set)", "kv-demo-001 在 50% 时被 SIGKILL 杀死（标记仍在）"],
        ["kv-demo-001 killed by SIGHUP at 50% (flag NOT set)", "kv-demo-001 在 50% 时被 SIGHUP 杀死（标记未设置）"],
        ["kv-demo-001 stopped by SIGTERM (stop requested) at 50%", "kv-demo-001 在 50% 时被 SIGTERM 停止（请求停止）"],
        ["kv-demo-001 exited (exit 3) at 50%", "kv-demo-001 在 50% 时退出（exit 3）"],
        ["kv-demo-001 exited (exit 0, stop requested) at 50%", "kv-demo-001 在 50% 时退出（exit 0，请求停止）"],
        ["kv-demo-001 gone at 50% (flag still set: crashed)", "kv-demo-001 在 50% 时消失（标记仍在：已崩溃）"],
        ["kv-demo-001 gone at 50% (flag set)", "kv-demo-001 在 50% 时消失（标记已设置）"],
        ["kv-demo-001 gone (flag never seen)", "kv-demo-001 消失（从未见到标记）"],
        ["kv-demo-001 exited (node lost) at 50%", "kv-demo-001 在 50% 时退出（node lost）"],
        ["kv-demo-001 restart in 1.5s", "kv-demo-001 1.5s 后重启"],
        ["kv-demo-001 takes over from kv-demo-001 in 0.2s", "kv-demo-001 0.2s 后接替 kv-demo-001"],
        ["kv-demo-001 frozen by SIGSTOP", "kv-demo-001 被 SIGSTOP 冻结"],
        ["kv-demo-001 frozen (stopped, seen in /proc)", "kv-demo-001 已冻结（在 /proc 中看到已停止）"],
        ["kv-demo-001 continued", "kv-demo-001 已继续"],
        ["kv-demo-001 found the crash flag: recovering", "kv-demo-001 发现崩溃标记：恢复中"],
        ["kv-demo-001 RESUMED from 50%, 0 steps lost, kill→restart 120 ms, kill→checkpoint 450 ms", "kv-demo-001 RESUMED from 50% 已恢复，丢失 0 步，杀死→重启 120 ms，杀死→检查点 450 ms"],
        ["kv-demo-001 RESUMED from ?", "kv-demo-001 RESUMED from ? 已恢复"],
        ["kv-demo-001 stopped gracefully", "kv-demo-001 已优雅停止"],
        ["kv-demo-001 completed the task", "kv-demo-001 任务已完成"],
        ["kv-demo-001 FAILED: 6 crash-loop restarts", "kv-demo-001 FAILED 失败：6 crash-loop restarts"],
        ["crash flag set", "崩溃标记已设置"],
        ["kv-demo-001 crash flag cleared", "kv-demo-001 崩溃标记已清除"],
        ["kv-demo-001 TORN checkpoint: progress 60%, counter 5, checkpoint —", "kv-demo-001 TORN 检查点不一致：progress 60%, counter 5, checkpoint —"],
        ["kv-demo-001 controller unreachable: connection refused", "kv-demo-001 控制器不可达：connection refused"],
        ["kv-demo-001 controller live (stream)", "kv-demo-001 控制器在线（stream）"],
        ["node nodeA up (heartbeating)", "节点 nodeA 上线（心跳正常）"],
        ["node nodeA DOWN (missed its heartbeats)", "节点 nodeA DOWN（心跳超时）"],
        ["kv-demo-001 MIGRATED nodeA → nodeB as kv-demo-002", "kv-demo-001 MIGRATED nodeA → nodeB，新实例 kv-demo-002"],
        ["node nodeA KILLED (SIGKILL to its agent and workers)", "节点 nodeA KILLED（向其 agent 与 worker 发送 SIGKILL）"],
        ["node nodeA FROZEN (SIGSTOP to its agent and workers)", "节点 nodeA FROZEN（向其 agent 与 worker 发送 SIGSTOP）"],
        ["node nodeA thawed (SIGCONT)", "节点 nodeA 已解冻（SIGCONT）"],
        ["node nodeA back (its agent started again)", "节点 nodeA 已恢复（agent 重新启动）"],
        ["kv-demo-001 failover nodeA → nodeB: kill→detected 3.0s, kill→running 3.6s, kill→checkpoint 4.0s, 1 steps lost", "kv-demo-001 故障转移 nodeA → nodeB：到运行 3.6s，到检查点 4.0s，到发现 3.0s，丢失 1 步"],
        ["kv-demo-001 failover nodeA → nodeB: freeze→detected 3.0s, freeze→running 3.6s, freeze→checkpoint 4.0s, 1 steps lost", "kv-demo-001 故障转移 nodeA → nodeB：到运行 3.6s，到检查点 4.0s，到发现 3.0s，丢失 1 步"],
        ["kv-demo-001 failover nodeA → nodeB: detected→running ?, detected→checkpoint ?", "kv-demo-001 故障转移 nodeA → nodeB：到运行 ?，到检查点 ?"],
        ["kv-demo-001 on nodeA REFUSED: 1 write fenced (its work is kv-demo-002's now)", "kv-demo-001 在 nodeA 上 REFUSED：1 次写入被隔离（工作已归 kv-demo-002）"],
        ["kv-demo-001 on nodeA REFUSED: 3 writes fenced (a failover replaced it)", "kv-demo-001 在 nodeA 上 REFUSED：3 次写入被隔离"],
        ["kv-demo-001 ended after its work moved to kv-demo-002 (not a crash)", "kv-demo-001 工作已迁至 kv-demo-002 后退出（不是崩溃）"],
        ["kv-demo-001 checkpoint went BACK from step 7 to 5: two writers on one namespace (kv-demo-001, kv-demo-002 alive)", "kv-demo-001 检查点倒退：从第 7 步到第 5 步（一个命名空间有两个写入者）"],
        ["kv-demo-001 checkpoint went BACK from step 7 to 5: two writers on one namespace", "kv-demo-001 检查点倒退：从第 7 步到第 5 步（一个命名空间有两个写入者）"],
        ["node nodeA DOWN (its connection dropped)", "节点 nodeA DOWN（连接已断开）"],
        ["kv-demo-001 replayed OP_7: already applied, skipped", "kv-demo-001 重放 OP_7：已应用过，跳过"],
        ["kv-demo-001 replayed OP_7: APPLIED TWICE (8 applied, 6 logged)", "kv-demo-001 重放 OP_7：APPLIED TWICE 重复应用（已应用 8，已记录 6）"],
        ["kv-demo-001 machine restored in TRANSFORM (it crashed in TRANSFORM)", "kv-demo-001 状态机恢复于 TRANSFORM（崩溃时在 TRANSFORM）"],
        ["kv-demo-001 machine restored WRONGLY in INIT (it crashed in TRANSFORM)", "kv-demo-001 状态机恢复错误：恢复于 INIT（崩溃时在 TRANSFORM）"],
        ["kv-demo-001 machine went LOAD → SAVE: not along INIT → LOAD → TRANSFORM → SAVE → DONE", "kv-demo-001 状态机 LOAD → SAVE：不符合 INIT → LOAD → TRANSFORM → SAVE → DONE"],
        ["kv-demo-001 machine reached DONE twice in one task", "kv-demo-001 状态机在一个任务中两次到达 DONE"],
        ["kv-demo-001 STEP LOST: checkpoint step_6 was saved before its work (work done to step 5); the restart goes on past it", "kv-demo-001 STEP LOST 丢失一步：检查点 step_6 在工作完成前保存（工作只完成到第 5 步），重启后越过了它"],
        ["node nodeA PARTITIONED (its link drops every packet; it keeps running)", "节点 nodeA PARTITIONED（其链路丢弃所有数据包；节点仍在运行）"],
        ["node nodeA PARTITIONED one way (its link drops packets in one direction)", "节点 nodeA PARTITIONED（单向：其链路丢弃一个方向的数据包）"],
        ["node nodeA DEGRADED (its link loses packets)", "节点 nodeA DEGRADED（其链路丢包）"],
        ["node nodeA healed (its link whole again)", "节点 nodeA 已愈合（链路恢复）"],
        ["kv-demo-001 failover nodeA → nodeB: cut→detected 3.0s, cut→running 3.6s, cut→checkpoint 4.0s, 1 steps lost", "kv-demo-001 故障转移 nodeA → nodeB：到运行 3.6s，到检查点 4.0s，到发现 3.0s，丢失 1 步"],
        ["kv-demo-001 started while the controller is unreachable: it cannot read the crash flag yet", "kv-demo-001 在控制器不可达时启动：尚无法读取崩溃标记"],
    ];

    /// A node's loss was not seen as a kill: its figures are timed from the
    /// loss and say so.
    #[test]
    fn a_node_loss_resume_is_timed_from_the_loss() {
        let mut ev = crate::recovery::sample::every_event()
            .into_iter()
            .find(|e| matches!(&e.kind, TimelineKind::Resumed { cycle } if cycle.restarted_at.is_some()))
            .unwrap();
        if let TimelineKind::Resumed { cycle } = &mut ev.kind {
            cycle.how = ProcessExit::NodeLost;
        }
        let text = event(&ev, Lang::En);
        assert!(text.contains("node lost→restart 120 ms"), "{text}");
        assert!(!text.contains("kill→"), "{text}");
        assert!(event(&ev, Lang::Zh).contains("节点丢失→重启"));
    }

    /// Every kind of event reads as it always has, in both languages (pinned
    /// before the text moved here from `Display` and `tui::i18n`).
    #[test]
    fn every_event_kind_reads_as_pinned() {
        let events = crate::recovery::sample::every_event();
        assert_eq!(events.len(), PINNED.len());
        for (ev, [en, zh]) in events.iter().zip(PINNED) {
            assert_eq!(event(ev, Lang::En), en, "{ev:?}");
            assert_eq!(event(ev, Lang::Zh), zh, "{ev:?}");
        }
    }

    /// No event reads empty, and Chinese is Chinese: a text added in one
    /// language only shows here.
    #[test]
    fn every_event_has_both_languages() {
        let chinese = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        for ev in crate::recovery::sample::every_event() {
            let (en, zh) = (event(&ev, Lang::En), event(&ev, Lang::Zh));
            assert!(!en.trim().is_empty() && !chinese(&en), "{en}");
            assert!(chinese(&zh), "{zh}");
        }
    }

    #[test]
    fn timeline_events_in_chinese_keep_ids_signals_and_state_words() {
        let ev = |kind| TimelineEvent {
            at: 0,
            instance: Some("kv-demo-001".into()),
            kind,
        };
        let killed = ev(TimelineKind::Exited {
            exit: ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
            progress: Some(50),
            flag: Some(true),
            crashed: true,
            requested: false,
        });
        assert_eq!(
            event(&killed, Lang::En),
            "kv-demo-001 killed by SIGKILL at 50% (flag still set)"
        );
        assert_eq!(
            event(&killed, Lang::Zh),
            "kv-demo-001 在 50% 时被 SIGKILL 杀死（标记仍在）"
        );
        let failed = ev(TimelineKind::Failed {
            reason: "6 crash-loop restarts".into(),
        });
        assert!(event(&failed, Lang::Zh).starts_with("kv-demo-001 FAILED 失败"));
    }
}
