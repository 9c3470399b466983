//! Every word the dashboard shows, in English and Chinese, in one place.
//!
//! Fixed texts are `Msg` keys: the `messages!` table below gives each key an
//! English and a Chinese text side by side, so a key without a translation does
//! not compile and an empty one fails `every_key_has_both_languages`. Texts with
//! values in them are the functions further down, one `match` per language.
//!
//! The state words that recordings and scripts match (`RUNNING`, `CRASHED`,
//! `RECOVERING`, `RESUMED from 50%`, `STOPPED`, `COMPLETED`, `FAILED`,
//! `app.crashed ARMED|SET|CLEARED|NO FLAG`) are never translated; Chinese may
//! add a gloss after them (`gloss`).

use crate::recovery::{Phase, ProcessExit, TimelineEvent, TimelineKind, CRASH_FLAG_KEY};

/// The dashboard's language (`--lang`; default from the locale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Chinese (简体中文).
    Zh,
}

impl Lang {
    /// The locale's language: the first of `LC_ALL`, `LC_MESSAGES`, `LANG` that
    /// is set and not empty decides (POSIX order); `zh*` is Chinese.
    pub fn from_env() -> Lang {
        let var = |name: &str| std::env::var(name).ok();
        Lang::from_locale([var("LC_ALL"), var("LC_MESSAGES"), var("LANG")])
    }

    /// As `from_env`, from the variables' values in that order.
    pub fn from_locale(values: [Option<String>; 3]) -> Lang {
        let chosen = values.into_iter().flatten().find(|v| !v.is_empty());
        match chosen {
            Some(v) if v.to_ascii_lowercase().starts_with("zh") => Lang::Zh,
            _ => Lang::En,
        }
    }
}

macro_rules! messages {
    ($($key:ident => ($en:expr, $zh:expr),)*) => {
        /// A fixed text of the dashboard; `text(lang)` gives it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Msg { $($key,)* }

        impl Msg {
            /// Every key, for the completeness test.
            pub const ALL: &'static [Msg] = &[$(Msg::$key,)*];

            /// `[English, Chinese]`.
            fn both(self) -> [&'static str; 2] {
                match self { $(Msg::$key => [$en, $zh],)* }
            }
        }
    };
}

messages! {
    // Pane titles.
    Instances => ("Instances", "实例"),
    Namespace => ("Namespace", "命名空间"),
    NotThereYet => ("not there yet", "尚不存在"),
    Keys => ("keys", "个键"),
    Of => ("of", "/"),
    Log => ("Log", "日志"),
    LogFollow => ("follow", "跟随"),
    LogPaused => ("paused: f follows", "已暂停：f 跟随"),
    LogWrap => ("wrap", "换行"),
    Progress => ("Progress", "进度"),
    ChartTitle => ("Progress over time (red: kill, yellow: resume)", "进度曲线（红：杀死，黄：恢复）"),
    HelpTitle => (" Keys (? closes) ", " 按键（? 关闭） "),
    SendSignal => ("Send a signal", "发送信号"),
    Tour => ("Tour", "导览"),
    TourShort => ("tour", "导览"),
    State => ("State", "状态"),
    CrashFlag => ("Crash flag", "崩溃标记"),
    // Column heads of the instances table.
    ColId => ("ID", "编号"),
    ColNode => ("NODE", "节点"),
    ColPid => ("PID", "进程"),
    ColState => ("STATE", "状态"),
    ColUptime => ("UPTIME", "运行时"),
    ColCrashes => ("CRSH", "崩溃"),
    ColRestarts => ("RST", "重启"),
    ColExit => ("EXIT", "退出"),
    ColCpu => ("CPU", "CPU"),
    ColRss => ("RSS", "内存"),
    ColTask => ("TASK", "任务"),
    // Column heads of the namespace table.
    ColKey => ("KEY", "键"),
    ColType => ("TYPE", "类型"),
    ColValue => ("VALUE", "值"),
    ColAge => ("AGE", "时长"),
    // The header.
    Embedded => ("embedded", "内置"),
    Remote => ("remote", "远程"),
    ControllerDown => ("controller down", "控制器断开"),
    Connecting => ("connecting", "连接中"),
    UnreachableLead => ("CONTROLLER UNREACHABLE:", "控制器不可达："),
    UnreachableTail => ("— retrying; the view resumes when it is back", "— 正在重试；恢复后画面继续"),
    // The signal menu's lines.
    SigKill => ("crash: flag stays set, restart resumes", "崩溃：标记保留，重启后恢复"),
    SigTerm => ("graceful stop, flag cleared", "优雅停止，标记清除"),
    SigInt => ("graceful stop (Ctrl-C), flag cleared", "优雅停止（Ctrl-C），标记清除"),
    SigHup => ("hang-up: the worker does not handle it, so it dies", "挂断：worker 不处理它，因此退出"),
    SigStop => ("freeze the process (progress plateaus)", "冻结进程（进度停住）"),
    SigCont => ("thaw a frozen process", "解冻被冻结的进程"),
    SigTreeTerm => ("to the whole tree (sh, bash, tee too), as the agent stops it", "发给整棵进程树（含 sh、bash、tee），如 agent 停止它时"),
    SigTreeKill => ("to the whole tree (sh, bash, tee too)", "发给整棵进程树（含 sh、bash、tee）"),
    App => ("app", "应用"),
    Ns => ("ns", "空间"),
    PerInstance => ("one per instance", "每实例一个"),
    ReadOnly => ("READ-ONLY", "只读"),
    Attached => ("attached", "已附加"),
    // Progress.
    NoCheckpoint => ("no checkpoint", "无检查点"),
    Counter => ("counter", "计数"),
    CompletedNote => ("completed", "已完成"),
    // Footer hints (the keymap's short labels).
    HintKill => ("kill", "杀死"),
    HintSignal => ("signal", "信号"),
    HintKillNode => ("node", "节点"),
    HintSigint => ("SIGINT", "SIGINT"),
    HintStartStop => ("start/stop", "启动/停止"),
    HintRestart => ("restart", "重启"),
    HintHelp => ("help", "帮助"),
    HintQuit => ("quit", "退出"),
    HintLayout => ("layout", "布局"),
    // Dialog keys.
    KeyUp => ("up", "上"),
    KeyDown => ("down", "下"),
    KeySend => ("send", "发送"),
    KeyClose => ("close", "关闭"),
    KeyYes => ("yes", "是"),
    KeyFind => ("find", "查找"),
    KeyClear => ("clear", "清除"),
    KeyDelete => ("delete", "删除"),
    // Help lines (one per binding on the dashboard).
    HelpKill => ("SIGKILL the selected instance (the demo: it restarts and resumes)",
                 "向选中的实例发送 SIGKILL（演示：它会重启并恢复）"),
    HelpSignal => ("choose a signal to send (SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGSTOP, SIGCONT)",
                   "选择要发送的信号（SIGKILL、SIGTERM、SIGINT、SIGHUP、SIGSTOP、SIGCONT）"),
    HelpInterrupt => ("SIGINT: graceful stop, the crash flag is cleared",
                      "SIGINT：优雅停止，崩溃标记被清除"),
    HelpTerminate => ("SIGTERM: graceful stop", "SIGTERM：优雅停止"),
    HelpStartStop => ("start the selected instance, or stop it gracefully",
                      "启动选中的实例，或优雅地停止它"),
    HelpRestart => ("restart the selected instance (counted as manual)",
                    "重启选中的实例（计为手动重启）"),
    HelpAutoRestart => ("automatic restart on/off for the selected instance",
                        "开/关选中实例的自动重启"),
    HelpNewInstance => ("start a new instance", "启动一个新实例"),
    HelpReset => ("reset the namespace (asks first)", "重置命名空间（先确认）"),
    HelpNext => ("select the next instance", "选择下一个实例"),
    HelpPrev => ("select the previous instance (k is kill, so ↑ only)",
                 "选择上一个实例（k 是杀死，所以只有 ↑）"),
    HelpFocus => ("move focus: instances → namespace → timeline → log",
                  "切换焦点：实例 → 命名空间 → 时间线 → 日志"),
    HelpScrollUp => ("scroll the focused pane up", "向上滚动焦点面板"),
    HelpScrollDown => ("scroll the focused pane down (log: to the end resumes follow)",
                       "向下滚动焦点面板（日志：到底后继续跟随）"),
    HelpFollow => ("log: follow the newest lines again", "日志：重新跟随最新行"),
    HelpWrap => ("log: wrap long lines on/off", "日志：长行换行开/关"),
    HelpSearch => ("search the log", "搜索日志"),
    HelpHelp => ("this help", "本帮助"),
    HelpLayout => ("layout: full ↔ presenter (large, for a projector)",
                   "布局：完整 ↔ 演示（大字，适合投影）"),
    HelpQuit => ("quit: stop owned workers gracefully (flags cleared)",
                 "退出：优雅停止本程序启动的 worker（清除标记）"),
    HelpQuitLeave => ("quit and leave workers running", "退出并让 worker 继续运行"),
    HelpCtrlC => ("quit (as q), in every mode", "退出（同 q），任何模式下"),
    // Help: the dialogs' lines.
    HelpMenu => ("menu", "菜单"),
    HelpResetMode => ("reset", "重置"),
    HelpSearchMode => ("search", "搜索"),
    HelpByNumber => ("by number", "按数字"),
    HelpOtherKeyNo => ("any other key no", "其他键为否"),
    HelpOtherKeysType => ("other keys type", "其他键输入"),
    HelpMore => ("more", "更多"),
    HelpMouse => ("  mouse: click an instance to select it, wheel scrolls the log · any key closes",
                  "  鼠标：点击实例以选中，滚轮滚动日志 · 任意键关闭"),
    // Footer prompts and confirmations.
    SearchPrompt => (" search: ", " 搜索："),
    ResetCancelled => ("reset cancelled", "已取消重置"),
    NamespaceResetDone => ("namespace reset", "命名空间已重置"),
    NoInstanceSelected => ("no instance selected", "未选中实例"),
    NoNodes => ("no nodes here: `plumdash up --nodes 2` starts them", "这里没有节点：`plumdash up --nodes 2` 会启动它们"),
    HelpKillNode => ("SIGKILL the selected instance's node: agent and workers die; on a killed node, K brings it back",
                     "向选中实例所在节点发送 SIGKILL：其 agent 与 worker（一台机器宕机）；对已杀死的节点再按 K 让它恢复"),
    HelpFreezeNode => ("freeze the node (SIGSTOP: a hung machine); again thaws it",
                       "冻结选中实例所在节点（SIGSTOP：一台机器挂起）；再按一次解冻"),
    NodesTitle => ("Nodes", "节点"),
    NodeCol => ("NODE", "节点"),
    HealthCol => ("HEALTH", "健康"),
    BeatCol => ("BEAT", "心跳"),
    ReadOnlyRefused => ("read-only: no signals or actions", "只读：不能发送信号或执行操作"),
    // The tour.
    TourNext => ("▶ next: ", "▶ 下一步："),
    StepStart => ("Run it normally", "正常运行"),
    StepWatch => ("Watch the progress", "观察进度"),
    StepCrash => ("Simulate a crash", "模拟崩溃"),
    StepRecover => ("Watch the automatic recovery", "观察自动恢复"),
    StepExit => ("Exit gracefully", "优雅退出"),
    StepVerify => ("Verify the flag was cleared", "验证标记已清除"),
    StepDone => ("Tour complete", "导览完成"),
    TodoStart => ("the supervisor is starting the kv-demo worker; nothing to press yet",
                  "监督器正在启动 kv-demo worker；暂时无需按键"),
    TodoWatch => ("each step saves progress, counter and checkpoint as one batch; wait for ~40%",
                  "每一步把进度、计数和检查点作为一批保存；等到约 40%"),
    TodoCrash => ("press k at about 50% to SIGKILL the worker (kill -9 <PID> in the seed demo)",
                  "在约 50% 时按 k 向 worker 发送 SIGKILL（即原演示中的 kill -9 <PID>）"),
    TodoRecover => ("nothing to press: the supervisor restarts the worker, which looks for its crash flag",
                    "无需按键：监督器重启 worker，worker 查找它的崩溃标记"),
    TodoCrashNodes => ("press k to SIGKILL the worker, or K to kill its whole node (agent and worker): the work moves to another node",
                       "按 k 向 worker 发送 SIGKILL，或按 K 杀死它所在的整个节点（agent 与 worker）：工作迁移到另一个节点"),
    TodoRecoverNodes => ("nothing to press: a killed worker is restarted by its agent; a lost node's work is moved by the controller",
                         "无需按键：被杀的 worker 由其 agent 重启；失去的节点上的工作由控制器迁移"),
    TodoExit => ("press i to send SIGINT (Ctrl-C): the worker clears its flag and exits",
                 "按 i 发送 SIGINT（Ctrl-C）：worker 清除标记后退出"),
    TodoVerify => ("press s to start it again: it must start normally (🆕 正常启动), not recover",
                   "按 s 再次启动：它必须正常启动（🆕 正常启动），而不是恢复"),
    TodoDone => ("press q to quit (owned workers are stopped gracefully)",
                 "按 q 退出（本程序启动的 worker 会被优雅停止）"),
    StoryFoundFlag => ("the worker started and found a crash flag left by an earlier run: it resumed",
                       "worker 启动后发现了上次运行留下的崩溃标记：它已恢复"),
    StoryNormalStart => ("🆕 normal start: no crash flag in the KV store, so the worker set app.crashed \
                          (it stays set while it runs) and began its task",
                         "🆕 正常启动：KV 存储中没有崩溃标记，于是 worker 设置了 app.crashed\
                          （运行期间一直保持），并开始任务"),
    StoryCompleted => ("✅ task completed: the worker cleared app.crashed and exited 0",
                       "✅ 任务完成：worker 清除了 app.crashed 并以 0 退出"),
    StoryVerified => ("🆕 normal start, no crash record: the graceful exit had cleared the flag \
                       (a paused task continues from its checkpoint)",
                      "🆕 正常启动，无崩溃记录：优雅退出已清除标记（暂停的任务从检查点继续）"),
    // The presenter layout.
    NoInstance => ("no instance", "没有实例"),
    NoEvents => ("no events yet", "暂无事件"),
}

impl Msg {
    pub fn text(self, lang: Lang) -> &'static str {
        self.both()[lang as usize]
    }
}

/// A short Chinese gloss for a state word (after it, never instead of it).
/// The flash after a node action.
pub fn node_done(node: &str, action: crate::recovery::NodeAction, lang: Lang) -> String {
    use crate::recovery::NodeAction;
    // The footer escapes what it draws.
    match (action, lang) {
        (NodeAction::Killed, Lang::En) => format!("SIGKILL → node {node} (agent and workers)"),
        (NodeAction::Killed, Lang::Zh) => format!("SIGKILL → 节点 {node}（agent 与 worker）"),
        (NodeAction::Frozen, Lang::En) => format!("node {node} frozen (SIGSTOP); F again thaws it"),
        (NodeAction::Frozen, Lang::Zh) => format!("节点 {node} 已冻结（SIGSTOP）；再按 F 解冻"),
        (NodeAction::Thawed, Lang::En) => format!("node {node} thawed (SIGCONT)"),
        (NodeAction::Thawed, Lang::Zh) => format!("节点 {node} 已解冻（SIGCONT）"),
        (NodeAction::Revived, Lang::En) => format!("node {node} back: its agent started again"),
        (NodeAction::Revived, Lang::Zh) => format!("节点 {node} 已恢复：agent 重新启动"),
    }
}

pub fn gloss(phase: &Phase, lang: Lang) -> &'static str {
    if lang == Lang::En {
        return "";
    }
    match phase {
        Phase::Running => "运行中",
        Phase::Crashed => "已崩溃",
        Phase::Recovering => "恢复中",
        Phase::Resumed { .. } => "已恢复",
        Phase::Stopped => "已停止",
        Phase::Standby => "备用",
        Phase::Completed => "已完成",
        Phase::Failed { .. } => "失败",
    }
}

/// The crash flag's line: `⚑ app.crashed SET (crashed!)`; the state word stays.
/// The crash flag as the flag pane shows it (see `panes/flag.rs` for when).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagState {
    Armed,
    Set,
    Cleared,
    NeverSeen,
}

pub fn flag_text(state: FlagState, lang: Lang) -> String {
    let k = CRASH_FLAG_KEY;
    match (state, lang) {
        (FlagState::Armed, Lang::En) => format!("⚑ {k} ARMED (running)"),
        (FlagState::Set, Lang::En) => format!("⚑ {k} SET (crashed!)"),
        (FlagState::Cleared, Lang::En) => format!("○ {k} CLEARED (clean)"),
        (FlagState::NeverSeen, Lang::En) => format!("· {k} NO FLAG (never seen)"),
        (FlagState::Armed, Lang::Zh) => format!("⚑ {k} ARMED（运行中）"),
        (FlagState::Set, Lang::Zh) => format!("⚑ {k} SET（已崩溃！）"),
        (FlagState::Cleared, Lang::Zh) => format!("○ {k} CLEARED（已清除）"),
        (FlagState::NeverSeen, Lang::Zh) => format!("· {k} NO FLAG（从未出现）"),
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

/// One cycle's figures in the timeline pane, in three parts (the middle one is
/// coloured by what was lost).
pub fn cycle_parts(
    killed_at: &str,
    resumed_from: &str,
    lost: &str,
    restart: &str,
    checkpoint: &str,
    lang: Lang,
) -> [String; 3] {
    match lang {
        Lang::En => [
            format!("killed at {killed_at} → resumed from {resumed_from} "),
            format!("lost {lost}"),
            format!(" · restart {restart} · checkpoint {checkpoint}"),
        ],
        Lang::Zh => [
            format!("{killed_at} 时被杀 → 从 {resumed_from} 恢复 "),
            format!("丢失 {lost}"),
            format!(" · 重启 {restart} · 检查点 {checkpoint}"),
        ],
    }
}

/// The footer while typing a search.
pub fn search_hint(find: &str, clear: &str, lang: Lang) -> String {
    match lang {
        Lang::En => format!("type, {find} to find, {clear} to clear"),
        Lang::Zh => format!("输入，{find} 查找，{clear} 清除"),
    }
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

/// The tour's "what just happened" lines that carry values.
pub fn story_saved(progress: i64, lang: Lang) -> String {
    match lang {
        Lang::En => {
            format!(
                "📊 {progress}% saved: the checkpoint lives in the KV store, outside the process"
            )
        }
        Lang::Zh => format!("📊 已保存 {progress}%：检查点存放在 KV 存储中，在进程之外"),
    }
}

pub fn story_crashed(how: &str, at: &str, flag_set: bool, lang: Lang) -> String {
    match (lang, flag_set) {
        (Lang::En, true) => {
            format!("💥 {how} at {at}: no chance to clean up: app.crashed is still SET")
        }
        (Lang::En, false) => format!("💥 {how} at {at}: but the crash flag was NOT set"),
        (Lang::Zh, true) => format!("💥 {at} 时 {how}：来不及清理：app.crashed 仍为 SET"),
        (Lang::Zh, false) => format!("💥 {at} 时 {how}：但崩溃标记没有设置"),
    }
}

/// `delay` and `lost` are already formatted (`100ms`, `0`), or `None`.
pub fn story_recovered(
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

pub fn story_stopped(at: Option<i64>, lang: Lang) -> String {
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

/// A timeline event as the dashboard shows it: English is the event's own
/// `Display` (what `--headless` and the reports print); Chinese keeps the
/// instance id, signal names and the state words (`RESUMED from 50%`, `FAILED`,
/// `TORN`) and words the rest.
pub fn event(ev: &TimelineEvent, lang: Lang) -> String {
    if lang == Lang::En {
        return ev.to_string();
    }
    let id = ev
        .instance
        .as_deref()
        .map_or(String::new(), |id| format!("{id} "));
    let pct = |p: Option<i64>| p.map_or_else(|| "?".to_string(), |p| format!("{p}%"));
    let at = |p: &Option<i64>| p.map_or(String::new(), |p| format!("在 {p}% 时"));
    let text = match &ev.kind {
        TimelineKind::Started { pid } => format!("已启动（pid {pid}）"),
        TimelineKind::Attached { pid } => format!("发现正在运行（pid {pid}），已附加"),
        TimelineKind::NotRestarted { grace_ms } => format!(
            "{} 内未被重启：没有谁重启它（它的重启者可能错过了它的退出）",
            humantime::format_duration(std::time::Duration::from_millis(*grace_ms))
        ),
        TimelineKind::Exited {
            exit: ProcessExit::Unknown,
            progress,
            crashed,
            flag,
            ..
        } => {
            let flag = match (*crashed, *flag) {
                (true, _) => "标记仍在：已崩溃",
                (false, true) => "标记已设置",
                (false, false) => "标记已清除",
            };
            format!("{}消失（{flag}）", at(progress))
        }
        TimelineKind::Exited {
            exit: ProcessExit::Signal(sig),
            progress,
            requested: true,
            ..
        } => format!("{}被 {sig} 停止（请求停止）", at(progress)),
        TimelineKind::Exited {
            exit: ProcessExit::Signal(sig),
            progress,
            flag,
            ..
        } => {
            let flag = if *flag {
                "标记仍在"
            } else {
                "标记未设置"
            };
            format!("{}被 {sig} 杀死（{flag}）", at(progress))
        }
        TimelineKind::Exited {
            exit,
            progress,
            requested,
            ..
        } => {
            let asked = if *requested { "，请求停止" } else { "" };
            format!("{}退出（{exit}{asked}）", at(progress))
        }
        TimelineKind::RestartScheduled { delay_ms } => {
            format!("{:.1}s 后重启", *delay_ms as f64 / 1000.0)
        }
        TimelineKind::TakingOver { from, delay_ms } => {
            format!("{:.1}s 后接替 {from}", *delay_ms as f64 / 1000.0)
        }
        TimelineKind::Recovering => "发现崩溃标记：恢复中".to_string(),
        TimelineKind::Resumed { cycle } => {
            let mut text = format!("RESUMED from {} 已恢复", pct(cycle.resumed_from));
            if let Some(lost) = cycle.steps_lost {
                text.push_str(&format!("，丢失 {lost} 步"));
            }
            if let Some(ms) = cycle.kill_to_restart_ms() {
                text.push_str(&format!("，杀死→重启 {ms} ms"));
            }
            if let Some(ms) = cycle.kill_to_checkpoint_ms() {
                text.push_str(&format!("，杀死→检查点 {ms} ms"));
            }
            text
        }
        TimelineKind::Stopped => "已优雅停止".to_string(),
        TimelineKind::Completed => "任务已完成".to_string(),
        TimelineKind::Failed { reason } => format!("FAILED 失败：{reason}"),
        TimelineKind::FlagSet => "崩溃标记已设置".to_string(),
        TimelineKind::FlagCleared => "崩溃标记已清除".to_string(),
        TimelineKind::Torn(t) => format!("TORN 检查点不一致：{t}"),
        TimelineKind::FeedDown { error } => format!("控制器不可达：{error}"),
        TimelineKind::FeedUp { via } => format!("控制器在线（{via}）"),
        TimelineKind::Frozen {
            signal: Some(signal),
        } => format!("被 {signal} 冻结"),
        TimelineKind::Frozen { signal: None } => "已冻结（在 /proc 中看到已停止）".to_string(),
        TimelineKind::Continued => "已继续".to_string(),
        TimelineKind::NodeUp { node } => format!("节点 {node} 上线（心跳正常）"),
        TimelineKind::NodeDown { node } => format!("节点 {node} DOWN（心跳超时）"),
        TimelineKind::Migrated {
            from_node,
            to_node,
            new_instance,
        } => format!("MIGRATED {from_node} → {to_node}，新实例 {new_instance}"),
        TimelineKind::Node { node, action } => match action {
            crate::recovery::NodeAction::Killed => {
                format!("节点 {node} KILLED（向其 agent 与 worker 发送 SIGKILL）")
            }
            crate::recovery::NodeAction::Frozen => {
                format!("节点 {node} FROZEN（向其 agent 与 worker 发送 SIGSTOP）")
            }
            crate::recovery::NodeAction::Thawed => format!("节点 {node} 已解冻（SIGCONT）"),
            crate::recovery::NodeAction::Revived => format!("节点 {node} 已恢复（agent 重新启动）"),
        },
        TimelineKind::FailedOver(fo) => {
            let secs = |ms: Option<u64>| {
                ms.map_or_else(
                    || "?".to_string(),
                    |ms| format!("{:.1}s", ms as f64 / 1000.0),
                )
            };
            let mut text = format!(
                "故障转移 {} → {}：到运行 {}，到检查点 {}",
                fo.from_node,
                fo.to_node,
                secs(fo.to_running_ms()),
                secs(fo.to_checkpoint_ms())
            );
            if fo.cause.is_some() {
                text.push_str(&format!("，到发现 {}", secs(fo.to_detected_ms())));
            }
            if let Some(lost) = fo.steps_lost {
                text.push_str(&format!("，丢失 {lost} 步"));
            }
            text
        }
        TimelineKind::Fenced { node, refused, by } => {
            let by = by
                .as_deref()
                .map_or(String::new(), |b| format!("（工作已归 {b}）"));
            format!("在 {node} 上 REFUSED：{refused} 次写入被隔离{by}")
        }
        TimelineKind::Superseded { by } => format!("工作已迁至 {by} 后退出（不是崩溃）"),
        TimelineKind::WentBack { from, to, .. } => {
            format!("检查点倒退：从第 {from} 步到第 {to} 步（一个命名空间有两个写入者）")
        }
    };
    format!("{id}{text}")
}

/// Display width in terminal columns (CJK and emoji take two).
pub fn width(text: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_both_languages() {
        for msg in Msg::ALL {
            for lang in [Lang::En, Lang::Zh] {
                assert!(
                    !msg.text(lang).trim().is_empty(),
                    "{msg:?} has no {lang:?} text"
                );
            }
        }
        // The Chinese table really is Chinese where it differs from the English.
        let translated = Msg::ALL
            .iter()
            .filter(|m| m.text(Lang::En) != m.text(Lang::Zh))
            .count();
        assert!(translated + 3 >= Msg::ALL.len(), "{translated}");
    }

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
            let word = en.split_whitespace().nth(2).unwrap();
            assert!(zh.contains(&format!("app.crashed {word}")), "{zh}");
            assert_ne!(en, zh);
        }
        for lang in [Lang::En, Lang::Zh] {
            assert!(!timeline_title(2, lang).is_empty());
            assert!(story_crashed("SIGKILL", "50%", true, lang).contains("SET"));
            assert!(
                story_recovered("SIGKILL", true, Some("1s"), Some(0), "50%", None, lang)
                    .contains("50%")
            );
            assert!(story_stopped(Some(70), lang).contains("70%"));
            assert!(story_saved(40, lang).contains("40%"));
            assert!(confirm_reset("y", "kv-demo", lang).contains('y'));
            assert!(search_hint("Enter", "Esc", lang).contains("Esc"));
        }
        assert_eq!(gloss(&Phase::Running, Lang::En), "");
        assert_eq!(gloss(&Phase::Running, Lang::Zh), "运行中");
    }

    #[test]
    fn timeline_events_in_chinese_keep_ids_signals_and_state_words() {
        let ev = |kind| TimelineEvent {
            at: 0,
            instance: Some("kv-demo-001".into()),
            kind,
        };
        let killed = ev(TimelineKind::Exited {
            exit: ProcessExit::Signal("SIGKILL".into()),
            progress: Some(50),
            flag: true,
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
        let started = ev(TimelineKind::Started { pid: 7 });
        assert_eq!(event(&started, Lang::Zh), "kv-demo-001 已启动（pid 7）");
    }

    /// Each event of `sample::every_event` in English and Chinese.
    const PINNED: [[&str; 2]; 43] = [
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
        ["kv-demo-001 gone (flag cleared)", "kv-demo-001 消失（标记已清除）"],
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
    ];

    /// Every kind of event reads as it always has, in both languages.
    #[test]
    fn every_event_kind_reads_as_pinned() {
        let events = crate::recovery::sample::every_event();
        assert_eq!(events.len(), PINNED.len());
        for (ev, [en, zh]) in events.iter().zip(PINNED) {
            assert_eq!(event(ev, Lang::En), en, "{ev:?}");
            assert_eq!(event(ev, Lang::Zh), zh, "{ev:?}");
        }
    }

    #[test]
    fn the_locale_picks_the_language() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(Lang::from_locale([None, None, s("zh_CN.UTF-8")]), Lang::Zh);
        assert_eq!(Lang::from_locale([None, None, s("zh_TW")]), Lang::Zh);
        assert_eq!(Lang::from_locale([None, None, s("en_US.UTF-8")]), Lang::En);
        assert_eq!(Lang::from_locale([None, None, None]), Lang::En);
        // LC_ALL wins over LANG; an empty one does not count.
        assert_eq!(
            Lang::from_locale([s("C.UTF-8"), None, s("zh_CN.UTF-8")]),
            Lang::En
        );
        assert_eq!(Lang::from_locale([s(""), None, s("zh_CN.UTF-8")]), Lang::Zh);
    }

    #[test]
    fn chinese_is_two_columns_wide() {
        assert_eq!(width("实例"), 4);
        assert_eq!(width("RUNNING"), 7);
    }
}
