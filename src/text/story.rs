//! The guided tour's "what just happened" lines that carry values, both
//! languages side by side (its fixed lines are `Msg` keys).

use super::lang::Lang;

/// A checkpoint saved.
pub fn saved(progress: i64, lang: Lang) -> String {
    match lang {
        Lang::En => {
            format!(
                "📊 {progress}% saved: the checkpoint lives in the KV store, outside the process"
            )
        }
        Lang::Zh => format!("📊 已保存 {progress}%：检查点存放在 KV 存储中，在进程之外"),
    }
}

/// A kill: `how` (the signal) at `at` (a percentage), and whether the flag stayed.
pub fn crashed(how: &str, at: &str, flag_set: bool, lang: Lang) -> String {
    match (lang, flag_set) {
        (Lang::En, true) => {
            format!("💥 {how} at {at}: no chance to clean up: app.crashed is still SET")
        }
        (Lang::En, false) => format!("💥 {how} at {at}: but the crash flag was NOT set"),
        (Lang::Zh, true) => format!("💥 {at} 时 {how}：来不及清理：app.crashed 仍为 SET"),
        (Lang::Zh, false) => format!("💥 {at} 时 {how}：但崩溃标记没有设置"),
    }
}

/// A restart that found the flag and resumed; `moved` is a failover's
/// (lost node, new node). `delay` and `lost` are already formatted (`100ms`, `0`), or `None`.
pub fn recovered(
    how: &str,
    flag_stayed: bool,
    delay: Option<&str>,
    lost: Option<i64>,
    from: &str,
    moved: Option<(&str, &str)>,
    lang: Lang,
) -> String {
    match lang {
        Lang::En => {
            let flag = if flag_stayed {
                "the crash flag stayed set"
            } else {
                "the crash flag was NOT set"
            };
            let delay = delay.map_or(String::new(), |d| format!(" after {d}"));
            let lost = lost.map_or(String::new(), |l| format!(" ({l} steps lost)"));
            let restarted = match moved {
                Some((a, b)) => {
                    format!("node {a} was lost and the controller moved the work to {b}{delay}")
                }
                None => format!("the supervisor restarted the worker{delay}"),
            };
            format!(
                "🔄 {how} → {flag} → {restarted} → it found the flag → resumed from {from}{lost}"
            )
        }
        Lang::Zh => {
            let flag = if flag_stayed {
                "崩溃标记仍在"
            } else {
                "崩溃标记没有设置"
            };
            let delay = delay.map_or(String::new(), |d| format!("（{d} 后）"));
            let lost = lost.map_or(String::new(), |l| format!("（丢失 {l} 步）"));
            let restarted = match moved {
                Some((a, b)) => format!("节点 {a} 失去，控制器把工作迁移到 {b}{delay}"),
                None => format!("监督器重启了 worker{delay}"),
            };
            format!("🔄 {how} → {flag} → {restarted} → 它发现了标记 → 从 {from} 恢复{lost}")
        }
    }
}

/// A transaction log's operation logged (the tour's "watch" step).
pub fn saved_op(op: i64, applied: Option<i64>, lang: Lang) -> String {
    let applied = applied.map_or("?".to_string(), |a| a.to_string());
    match lang {
        Lang::En => format!(
            "📒 OP_{op} logged after its effect (ledger.applied = {applied}): the log lives in the KV store, outside the process"
        ),
        Lang::Zh => format!(
            "📒 OP_{op} 在生效之后记录（ledger.applied = {applied}）：日志存放在 KV 存储中，在进程之外"
        ),
    }
}

/// A state machine's state saved with its data (the tour's "watch" step).
pub fn saved_state(state: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!(
            "⚙️ state {state} saved with its data (fsm.state, fsm.data): the machine lives in the KV store, outside the process"
        ),
        Lang::Zh => format!(
            "⚙️ 状态 {state} 连同数据一起保存（fsm.state、fsm.data）：状态机存放在 KV 存储中，在进程之外"
        ),
    }
}

/// What a restart recovered in its pattern's words, after the recovery line:
/// the timeline's line for the pattern's news (a replay, a restore, a step lost).
pub fn pattern_clause(news: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!(" — {news}"),
        Lang::Zh => format!("——{news}"),
    }
}

/// A graceful stop, at a progress if known.
pub fn stopped(at: Option<i64>, lang: Lang) -> String {
    match lang {
        Lang::En => {
            let at = at.map_or(String::new(), |p| format!(" at {p}%"));
            format!(
                "🛑 graceful stop{at}: the worker caught the signal, cleared app.crashed \
                 and exited 0; the checkpoint is kept"
            )
        }
        Lang::Zh => {
            let at = at.map_or(String::new(), |p| format!("（{p}%）"));
            format!("🛑 优雅停止{at}：worker 捕获信号，清除 app.crashed 并以 0 退出；检查点保留")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_story_exists_in_both_languages_with_its_values() {
        for lang in [Lang::En, Lang::Zh] {
            assert!(crashed("SIGKILL", "50%", true, lang).contains("SET"));
            assert!(
                recovered("SIGKILL", true, Some("1s"), Some(0), "50%", None, lang).contains("50%")
            );
            assert!(stopped(Some(70), lang).contains("70%"));
            assert!(saved(40, lang).contains("40%"));
            assert!(saved_op(4, Some(4), lang).contains("OP_4"));
            assert!(saved_state("LOAD", lang).contains("LOAD"));
            assert!(pattern_clause("x", lang).ends_with('x'));
        }
    }
}
