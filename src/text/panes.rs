//! The panes' texts with values in them (titles, the flag line, footer
//! prompts), one `match` on the language each, both arms side by side.

use super::labels::Msg;
use super::lang::Lang;
use crate::recovery::CRASH_FLAG_KEY;

/// The crash flag as the flag pane shows it (see `tui/panes/flag.rs` for when).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagState {
    Armed,
    Set,
    Cleared,
    /// Deleted by another client (a reset), not by a worker: a crash now
    /// would leave no flag to find.
    Removed,
    NeverSeen,
    /// The namespace has not been read yet.
    Unknown,
}

/// The crash flag's line: `⚑ app.crashed SET (crashed!)`; the state word stays.
pub fn flag_text(state: FlagState, lang: Lang) -> String {
    flag_text_named(CRASH_FLAG_KEY, state, lang)
}

/// The crash flag's line with the app's own flag key (`--key flag=crashed`).
pub fn flag_text_named(k: &str, state: FlagState, lang: Lang) -> String {
    match (state, lang) {
        (FlagState::Armed, Lang::En) => format!("⚑ {k} ARMED (running)"),
        (FlagState::Set, Lang::En) => format!("⚑ {k} SET (crashed!)"),
        (FlagState::Cleared, Lang::En) => format!("○ {k} CLEARED (clean)"),
        (FlagState::NeverSeen, Lang::En) => format!("· {k} NO FLAG (never seen)"),
        (FlagState::Removed, Lang::En) => format!("○ {k} REMOVED (by another client)"),
        (FlagState::Unknown, Lang::En) => format!("? {k} UNKNOWN (not read)"),
        (FlagState::Armed, Lang::Zh) => format!("⚑ {k} ARMED（运行中）"),
        (FlagState::Set, Lang::Zh) => format!("⚑ {k} SET（已崩溃！）"),
        (FlagState::Cleared, Lang::Zh) => format!("○ {k} CLEARED（已清除）"),
        (FlagState::NeverSeen, Lang::Zh) => format!("· {k} NO FLAG（从未出现）"),
        (FlagState::Removed, Lang::Zh) => format!("○ {k} REMOVED（被其他客户端删除）"),
        (FlagState::Unknown, Lang::Zh) => format!("? {k} UNKNOWN（尚未读取）"),
    }
}

/// The progress gauge's label for a transaction log: `60% · OP_6 · applied 7 / logged 6`.
pub fn txlog_label(
    progress: i64,
    last: Option<&str>,
    applied: Option<i64>,
    logged: Option<i64>,
    lang: Lang,
) -> String {
    let n = |v: Option<i64>| v.map_or("?".to_string(), |v| v.to_string());
    let last = last.unwrap_or("-");
    let (a, l) = (n(applied), n(logged));
    match lang {
        Lang::En => format!("{progress}% · {last} · applied {a} / logged {l}"),
        Lang::Zh => format!("{progress}% · {last} · 已应用 {a} / 已记录 {l}"),
    }
}

/// The progress gauge's label for a state machine: the machine as a row of
/// states, the current one marked: `60% · INIT › LOAD › [TRANSFORM] › SAVE › DONE`.
/// State words stay as they are; an unknown state is shown as it is.
pub fn fsm_label(progress: i64, state: Option<&str>, lang: Lang) -> String {
    let known = state.is_some_and(|s| crate::recovery::fsm_index(s).is_some());
    let row: Vec<String> = crate::recovery::FSM_STATES
        .iter()
        .map(|s| {
            if Some(*s) == state {
                format!("[{s}]")
            } else {
                s.to_string()
            }
        })
        .collect();
    let row = row.join(" › ");
    match (known, state, lang) {
        (true, _, _) | (false, None, _) => format!("{progress}% · {row}"),
        (false, Some(s), Lang::En) => format!("{progress}% · {row} · state {s}?"),
        (false, Some(s), Lang::Zh) => format!("{progress}% · {row} · 状态 {s}？"),
    }
}

/// The connecting screen's line (before attach has a session): what it waits
/// for, and since when.
pub fn connecting(url: &str, secs: u64, lang: Lang) -> String {
    match lang {
        Lang::En => format!("connecting to {url}… {secs} s"),
        Lang::Zh => format!("正在连接 {url}… {secs} 秒"),
    }
}

/// The header's status before the feed reached the controller (whose URL the
/// header shows beside it): `connecting… 3 s`.
pub fn connecting_since(secs: u64, lang: Lang) -> String {
    match lang {
        Lang::En => format!("connecting… {secs} s"),
        Lang::Zh => format!("连接中… {secs} 秒"),
    }
}

/// The header's red line when the controller answered but what it sent ended
/// the connection (a line over the cap): not an outage, its fault.
pub fn misbehaving(why: &str, retry: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("CONTROLLER MISBEHAVING: {why} — retrying in {retry}"),
        Lang::Zh => format!("控制器行为异常：{why} — {retry} 后重试"),
    }
}

/// The header's warning while the feed skips or drops what the controller
/// sends: `controller sends malformed data: 12 events skipped, …`. `ago`:
/// nothing new for a while (the counts run from the feed's start), then it
/// is told as past: `controller sent malformed data (last 4m05s ago): …`.
pub fn feed_trouble(
    skipped: u64,
    dropped: u64,
    unreadable: usize,
    ago: Option<&str>,
    lang: Lang,
) -> String {
    let mut parts = Vec::new();
    match lang {
        Lang::En => {
            let s = |n: u64| if n == 1 { "" } else { "s" };
            if skipped > 0 {
                parts.push(format!("{skipped} event{} skipped", s(skipped)));
            }
            if dropped > 0 {
                parts.push(format!(
                    "{dropped} not this namespace's or out of order, dropped"
                ));
            }
            if unreadable > 0 {
                let y = if unreadable == 1 { "y" } else { "ies" };
                parts.push(format!("{unreadable} entr{y} unreadable"));
            }
            match ago {
                Some(ago) => format!(
                    "controller sent malformed data (last {ago} ago): {}",
                    parts.join(", ")
                ),
                None => format!("controller sends malformed data: {}", parts.join(", ")),
            }
        }
        Lang::Zh => {
            if skipped > 0 {
                parts.push(format!("跳过 {skipped} 个事件"));
            }
            if dropped > 0 {
                parts.push(format!("丢弃 {dropped} 个（其他命名空间或乱序）"));
            }
            if unreadable > 0 {
                parts.push(format!("{unreadable} 个条目无法读取"));
            }
            match ago {
                Some(ago) => format!(
                    "控制器此前发送了错误数据（最近一次在 {ago} 前）：{}",
                    parts.join("，")
                ),
                None => format!("控制器发送了错误数据：{}", parts.join("，")),
            }
        }
    }
}

/// A value that could not be read, in the namespace pane: `unreadable: why`.
pub fn unreadable(why: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("unreadable: {why}"),
        Lang::Zh => format!("无法读取：{why}"),
    }
}

/// The progress gauge's label when `task.progress` is there but does not read.
pub fn progress_unreadable(why: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("progress unreadable: {why}"),
        Lang::Zh => format!("进度无法读取：{why}"),
    }
}

/// The timeline pane's title.
pub fn timeline_title(cycles: usize, lang: Lang) -> String {
    match lang {
        Lang::En => format!(
            "Recovery timeline ({cycles} cycle{})",
            if cycles == 1 { "" } else { "s" }
        ),
        Lang::Zh => format!("恢复时间线（{cycles} 轮）"),
    }
}

/// How a cycle's run ended, in the timeline pane's words: `killed` (SIGKILL),
/// the signal's name, `exit N`, or `node lost`.
pub fn cycle_end(how: &crate::recovery::ProcessExit, lang: Lang) -> String {
    use crate::recovery::ProcessExit;
    match (how, lang) {
        (ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL), Lang::En) => "killed".into(),
        (ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL), Lang::Zh) => "被杀".into(),
        (ProcessExit::Signal(s), _) => s.as_str().into(),
        (ProcessExit::Code(c), _) => format!("exit {c}"),
        (ProcessExit::NodeLost, Lang::En) => "node lost".into(),
        (ProcessExit::NodeLost, Lang::Zh) => "节点丢失".into(),
        (_, Lang::En) => "ended".into(),
        (_, Lang::Zh) => "结束".into(),
    }
}

/// One cycle's figures in the timeline pane, in three parts (the middle one is
/// coloured by what was lost). `ended`: [`cycle_end`].
pub fn cycle_parts(
    ended: &str,
    killed_at: &str,
    resumed_from: &str,
    lost: &str,
    restart: &str,
    checkpoint: &str,
    lang: Lang,
) -> [String; 3] {
    match lang {
        Lang::En => [
            format!("{ended} at {killed_at} → resumed from {resumed_from} "),
            format!("lost {lost}"),
            format!(" · restart {restart} · checkpoint {checkpoint}"),
        ],
        Lang::Zh => [
            format!("{killed_at} 时{ended} → 从 {resumed_from} 恢复 "),
            format!("丢失 {lost}"),
            format!(" · 重启 {restart} · 检查点 {checkpoint}"),
        ],
    }
}

/// What a cycle's restart recovered, in its pattern's words (the timeline
/// pane's cycle line): `log replayed from OP_6`, `machine restored in TRANSFORM`.
pub fn cycle_recovered(r: &crate::recovery::Recovered, lang: Lang) -> String {
    use crate::recovery::Recovered;
    match (r, lang) {
        (Recovered::Replayed { op }, Lang::En) => format!("log replayed from OP_{op}"),
        (Recovered::Replayed { op }, Lang::Zh) => format!("日志从 OP_{op} 重放"),
        (Recovered::Restored { state }, Lang::En) => format!("machine restored in {state}"),
        (Recovered::Restored { state }, Lang::Zh) => format!("状态机恢复于 {state}"),
    }
}

/// The footer while typing a search.
pub fn search_hint(find: &str, clear: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("type, {find} to find, {clear} to clear"),
        Lang::Zh => format!("输入，{find} 查找，{clear} 清除"),
    }
}

/// How many lines match, while typing a search: `17 matches`.
pub fn match_count(n: usize, lang: Lang) -> String {
    match lang {
        Lang::En if n == 1 => "1 match".to_string(),
        Lang::En => format!("{n} matches"),
        Lang::Zh => format!("{n} 处匹配"),
    }
}

/// Which match the log shows, of how many: `3/17` (`-/17` when the view is on none).
pub fn match_position(at: Option<usize>, of: usize) -> String {
    format!("{}/{of}", at.map_or("-".to_string(), |a| a.to_string()))
}

/// The footer's reset question.
pub fn confirm_reset(yes: &str, namespace: &str, lang: Lang) -> String {
    let ns = crate::text_safety::escape_controls(namespace);
    match lang {
        Lang::En => format!(" reset namespace {ns}? {yes} = yes, any other key = no "),
        Lang::Zh => format!(" 重置命名空间 {ns}？{yes} = 是，其他键 = 否 "),
    }
}

/// The tour box's title: `Tour 3/6 · Simulate a crash`.
pub fn tour_title(n: usize, of: usize, step: Msg, lang: Lang) -> String {
    format!(" {} {n}/{of} · {} ", Msg::Tour.text(lang), step.text(lang))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_with_values_exist_in_both_languages_and_keep_the_state_words() {
        for state in [
            FlagState::Armed,
            FlagState::Set,
            FlagState::Cleared,
            FlagState::NeverSeen,
        ] {
            let en = flag_text(state, Lang::En);
            let zh = flag_text(state, Lang::Zh);
            let word = en.split_whitespace().nth(2).unwrap_or_default();
            assert!(zh.contains(&format!("app.crashed {word}")), "{zh}");
            assert_ne!(en, zh);
        }
        assert_eq!(
            fsm_label(60, Some("TRANSFORM"), Lang::En),
            "60% · INIT › LOAD › [TRANSFORM] › SAVE › DONE"
        );
        assert_eq!(
            txlog_label(60, Some("OP_6"), Some(7), Some(6), Lang::En),
            "60% · OP_6 · applied 7 / logged 6"
        );
        assert!(flag_text_named("crashed", FlagState::Set, Lang::En).contains("crashed SET"));
        let r = crate::recovery::Recovered::Restored {
            state: "LOAD".into(),
        };
        assert_eq!(cycle_recovered(&r, Lang::En), "machine restored in LOAD");
        assert_eq!(cycle_recovered(&r, Lang::Zh), "状态机恢复于 LOAD");
        for lang in [Lang::En, Lang::Zh] {
            assert!(!timeline_title(2, lang).is_empty());
            assert!(confirm_reset("y", "kv-demo", lang).contains('y'));
            assert!(search_hint("Enter", "Esc", lang).contains("Esc"));
        }
    }
}
