//! Every line the worker prints. The seed README's lines are the contract
//! (a supervisor and people read them); lines the original never had are in
//! English with the `[KV Demo]` prefix, like its signal lines.

use super::checkpoint::Checkpoint;
use super::config::{Config, NamespaceStrategy, Pattern};
use crate::clock;
use crate::kv::{Entry, ValueType};
use std::io::Write;
use std::time::Duration;

/// Prints one line and flushes: stdout is usually a pipe to a supervisor.
/// Write errors are ignored on purpose: a gone reader must not stop the
/// worker from checkpointing (Rust ignores SIGPIPE, so this is an EPIPE).
pub fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    // Lines may quote stored keys and values: never raw on the terminal.
    let line = crate::text_safety::escape_controls_keep_newlines(line.as_ref());
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

const RULE: &str = "========================================";

pub fn banner(cfg: &Config) -> Vec<String> {
    let strategy = match cfg.strategy {
        NamespaceStrategy::AppName => "按应用名 PLUM_APP_NAME，所有实例共享状态",
        NamespaceStrategy::InstanceId => "按实例ID PLUM_INSTANCE_ID，每个实例独立",
        NamespaceStrategy::Custom => "自定义 KV_DEMO_NAMESPACE",
    };
    vec![
        RULE.to_string(),
        "  Plum KV Demo - 分布式KV存储崩溃恢复演示".to_string(),
        RULE.to_string(),
        format!("实例ID: {}", cfg.instance_id),
        format!("应用名: {}", cfg.app_name),
        format!("控制器: {}", cfg.controller),
        format!("命名空间: {}（策略: {strategy}）", cfg.namespace),
        format!("步长: {}", humantime::format_duration(cfg.step)),
        pattern_line(cfg),
        RULE.to_string(),
    ]
}

/// Which of the seed's 崩溃恢复模式 this run follows, and `--unsafe`'s warning.
fn pattern_line(cfg: &Config) -> String {
    let name = match cfg.pattern {
        Pattern::Checkpoint => "模式1 检查点恢复 (checkpoint)",
        Pattern::TxLog => "模式2 事务日志 (txlog)",
        Pattern::Fsm => "模式3 状态机恢复 (fsm)",
    };
    if cfg.unsafe_mode {
        format!("恢复模式: {name} ⚠️ 不安全演示 (--unsafe)")
    } else {
        format!("恢复模式: {name}")
    }
}

/// `--unsafe` checkpoint: the checkpoint is saved before the step's work.
pub fn checkpoint_before_work(cp: Checkpoint) -> String {
    format!(
        "⚠️ [unsafe] 先保存检查点 {}，再执行工作（此时崩溃会丢失这一步）",
        cp.name()
    )
}

// ---- 模式2: 事务日志

pub fn txlog_recovery_block(logged: u32, applied: i64, applied_op: u32) -> Vec<String> {
    vec![
        CRASH_DETECTED.to_string(),
        format!("  已记录操作: {logged}（最后: {}）", op_name(logged)),
        format!("  已应用: {applied}（最后应用: {}）", op_name(applied_op)),
        format!("✅ 日志恢复完成，从 {} 开始重放", op_name(logged + 1)),
    ]
}

pub fn txlog_paused_note(logged: u32) -> String {
    format!(
        "⏸️ 上次任务已暂停于 {}，从 {} 继续执行",
        op_name(logged),
        op_name(logged + 1)
    )
}

/// `OP_k` (`-` before the first).
pub fn op_name(k: u32) -> String {
    if k == 0 {
        "-".to_string()
    } else {
        format!("OP_{k}")
    }
}

pub fn op_applied(op: u32, applied: i64) -> String {
    format!("  ⚙️ 执行 {}: ledger.applied = {applied}", op_name(op))
}

pub fn op_replay_skipped(op: u32) -> String {
    format!(
        "⏭️ 重放 {}: 已应用过（ledger.applied_op = {op}），跳过",
        op_name(op)
    )
}

pub fn op_applied_again(op: u32, applied: i64) -> String {
    format!(
        "⚠️ [unsafe] 重放 {} 未检查是否已应用: ledger.applied = {applied}（重复应用）",
        op_name(op)
    )
}

pub fn op_logged(op: u32, total: u32) -> String {
    format!(
        "📒 日志: operation.counter = {op} | operation.last = {} | 进度: {}%",
        op_name(op),
        op * 100 / total
    )
}

pub fn txlog_stats(total: u32, applied: i64) -> Vec<String> {
    vec![
        "📈 最终统计:".to_string(),
        format!("  已记录操作: {total}/{total}"),
        format!("  ledger.applied = {applied}（应为 {total}）"),
    ]
}

// ---- 模式3: 状态机

pub fn fsm_recovery_block(state: &str, data: &str) -> Vec<String> {
    vec![
        CRASH_DETECTED.to_string(),
        format!("  状态机状态: {state}"),
        format!("  状态数据: {data}"),
        format!("✅ 状态机已恢复，在 {state} 继续执行"),
    ]
}

pub fn fsm_paused_note(state: &str) -> String {
    format!("⏸️ 上次任务已暂停于状态 {state}，继续执行")
}

pub fn fsm_restart_from_init(state: &str) -> String {
    format!("⚠️ [unsafe] 忽略已保存的状态 {state}，从 INIT 重新开始")
}

pub fn fsm_step(state: &str, step: u32, of: u32, progress: u32) -> String {
    format!("⚙️ 状态: {state} ({step}/{of}) | 进度: {progress}%")
}

pub fn fsm_final(steps: u32) -> Vec<String> {
    vec![
        "📈 最终统计:".to_string(),
        "  状态: INIT → LOAD → TRANSFORM → SAVE → DONE".to_string(),
        format!("  总步数: {steps}"),
    ]
}

pub fn fsm_done() -> String {
    "🏁 状态: DONE".to_string()
}

pub const NORMAL_START: &str = "🆕 正常启动（无崩溃记录）";
pub const TASK_START: &str = "🚀 开始执行任务...";
pub const CRASH_DETECTED: &str = "🔄 检测到崩溃标记，正在恢复...";
pub const TASK_DONE: &str = "✅ 任务完成！";
pub const CLEARED_FLAG: &str = "[KV Demo] Cleared crash flag";

pub fn recovery_block(cp: Checkpoint) -> Vec<String> {
    vec![
        CRASH_DETECTED.to_string(),
        format!("  上次进度: {}%", cp.progress()),
        format!("  任务计数: {}", cp.counter()),
        format!("  检查点: {}", cp.name()),
        format!("✅ 状态恢复完成，从 {}% 继续执行", cp.progress()),
    ]
}

pub fn paused_note(cp: Checkpoint) -> String {
    format!(
        "⏸️ 上次任务已暂停于 {}%（计数: {} | 检查点: {}），从 {}% 继续执行",
        cp.progress(),
        cp.counter(),
        cp.name(),
        cp.progress()
    )
}

pub fn progress(cp: Checkpoint) -> String {
    format!(
        "📊 进度: {}% | 计数: {} | 检查点: {}",
        cp.progress(),
        cp.counter(),
        cp.name()
    )
}

pub fn received_signal(signal: i32) -> String {
    format!("[KV Demo] Received signal {signal}, shutting down gracefully...")
}

pub fn shutdown_write_failed(what: &str, why: &str) -> String {
    format!("[KV Demo] Could not {what}: {why}")
}

pub fn unreachable(url: &str, reason: &str, what: &str, cap: Duration) -> String {
    format!(
        "⚠️ [KV Demo] Controller {url} unreachable ({reason}) while {what}; \
         retrying with backoff up to {}",
        humantime::format_duration(cap)
    )
}

pub fn reconnected(url: &str, outage: Duration) -> String {
    format!(
        "✅ [KV Demo] Controller {url} reachable again after {}",
        clock::human(outage)
    )
}

/// Final statistics after `✅ 任务完成！`.
pub fn final_stats(done: Checkpoint, resumed_from: Checkpoint, elapsed: Duration) -> Vec<String> {
    vec![
        "📈 最终统计:".to_string(),
        format!("  总进度: {}%", done.progress()),
        format!("  任务计数: {}", done.counter()),
        format!("  检查点: {}", done.name()),
        format!(
            "  本次运行: 从 {}% 开始，完成 {} 步，用时 {}",
            resumed_from.progress(),
            done.counter() - resumed_from.counter(),
            clock::human(elapsed)
        ),
    ]
}

/// Every key of the namespace; bytes are shown as their length.
pub fn all_keys(namespace: &str, entries: &[Entry]) -> Vec<String> {
    let mut lines = vec![format!(
        "📋 所有键值（命名空间 {namespace}，共 {} 个）:",
        entries.len()
    )];
    for e in entries {
        let shown = match (e.value_type, e.bytes()) {
            (ValueType::Bytes, Some(b)) => format!("<{} bytes>", b.len()),
            _ => e.value.clone(),
        };
        lines.push(format!("  {} = {shown} ({})", e.key, e.value_type));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_lines_are_reproduced_exactly() {
        let cp = Checkpoint::at(5).unwrap();
        assert_eq!(
            recovery_block(cp),
            [
                "🔄 检测到崩溃标记，正在恢复...",
                "  上次进度: 50%",
                "  任务计数: 5",
                "  检查点: step_5",
                "✅ 状态恢复完成，从 50% 继续执行",
            ]
        );
        assert_eq!(
            progress(Checkpoint::at(6).unwrap()),
            "📊 进度: 60% | 计数: 6 | 检查点: step_6"
        );
        assert_eq!(
            received_signal(2),
            "[KV Demo] Received signal 2, shutting down gracefully..."
        );
    }

    #[test]
    fn bytes_are_listed_by_length() {
        let e = Entry {
            namespace: "n".into(),
            key: "binary.checkpoint".into(),
            value: "AAAA".into(),
            value_type: ValueType::Bytes,
            updated_at: 0,
            updated_at_ms: None,
            writer: None,
        };
        assert_eq!(
            all_keys("n", &[e])[1],
            "  binary.checkpoint = <3 bytes> (bytes)"
        );
    }
}
