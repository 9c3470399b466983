//! The fixed texts: `Msg` keys, each with its English and Chinese side by
//! side in one table, and the Chinese glosses after state words.

use super::lang::Lang;
use crate::recovery::Phase;

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
    // Without colour (NO_COLOR) or braille: the marks by shape (ASCII: # and o).
    ChartTitleShapes => ("Progress over time (█ kill, • resume)", "进度曲线（█ 杀死，• 恢复）"),
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
    ControllerMisbehaving => ("controller misbehaving", "控制器异常"),
    UnreachableLead => ("CONTROLLER UNREACHABLE:", "控制器不可达："),
    AnswerLead => ("CONTROLLER ERROR:", "控制器出错："),
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
    LastRunIn => ("last run in", "上次运行存于"),
    // Progress.
    NoCheckpoint => ("no checkpoint", "无检查点"),
    AsLastRead => ("as last read", "最后读取的值"),
    NodeDown => ("node DOWN", "节点 DOWN"),
    NotReadYet => ("not read yet: waiting for the controller", "尚未读取：等待控制器"),
    NotRead => ("not read yet", "尚未读取"),
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
    HintFull => ("full", "完整"),
    PresenterForSize => ("small screen: presenter layout", "屏幕较小：演示布局"),
    // Dialog keys.
    KeyUp => ("up", "上"),
    KeyDown => ("down", "下"),
    KeySend => ("send", "发送"),
    KeyClose => ("close", "关闭"),
    KeyYes => ("yes", "是"),
    KeyFind => ("find", "查找"),
    KeyClear => ("clear", "清除"),
    KeyDelete => ("delete", "删除"),
    KeyNextMatch => ("next ↑", "下一个 ↑"),
    KeyPrevMatch => ("prev ↓", "上一个 ↓"),
    KeyEndSearch => ("end search", "结束搜索"),
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
    HelpPrev => ("select the previous instance", "选择上一个实例"),
    HelpFocus => ("move focus: instances → namespace → timeline → log",
                  "切换焦点：实例 → 命名空间 → 时间线 → 日志"),
    HelpScrollUp => ("scroll the focused pane up", "向上滚动焦点面板"),
    HelpScrollDown => ("scroll the focused pane down (log: to the end resumes follow)",
                       "向下滚动焦点面板（日志：到底后继续跟随）"),
    HelpFollow => ("log: follow the newest lines again", "日志：重新跟随最新行"),
    HelpWrap => ("log: wrap long lines on/off", "日志：长行换行开/关"),
    HelpSearch => ("search the log", "搜索日志"),
    HelpHelp => ("this help", "本帮助"),
    HelpLayout => ("layout: full ↔ presenter (fewer, bigger boxes: for a projector or a small screen)",
                   "布局：完整 ↔ 演示（更少、更大的框：适合投影或小屏幕）"),
    HelpQuit => ("quit: stop owned workers gracefully (flags cleared)",
                 "退出：优雅停止本程序启动的 worker（清除标记）"),
    HelpQuitLeave => ("quit and leave workers running", "退出并让 worker 继续运行"),
    HelpCtrlC => ("quit (as q), in every mode", "退出（同 q），任何模式下"),
    // Help: the dialogs' lines.
    HelpMenu => ("menu", "菜单"),
    HelpResetMode => ("reset", "重置"),
    HelpSearchMode => ("search", "搜索"),
    HelpFoundMode => ("found", "已找到"),
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
    HelpPartitionNode => ("cut the node's link (up --hosts: a partition); again heals it",
                          "切断节点链路（up --hosts：网络分区）；再按一次愈合"),
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
    TodoNewTask => ("the task completed: press s to start a new task (it begins at 0%)",
                    "任务已完成：按 s 开始一个新任务（从 0% 开始）"),
    TodoStartIt => ("the worker is not running: press s to start it",
                    "worker 未在运行：按 s 启动它"),
    TodoDone => ("press q to quit (owned workers are stopped gracefully)",
                 "按 q 退出（本程序启动的 worker 会被优雅停止）"),
    TodoUnsafeCheckpoint => ("last step: now watch what goes wrong — q, then plumdash tour --pattern checkpoint --unsafe (the checkpoint is saved before the work: a kill loses a step)",
                             "最后一步：看看哪里会出错 — 按 q，然后运行 plumdash tour --pattern checkpoint --unsafe（检查点在工作之前保存：一次杀死会丢失一步）"),
    TodoUnsafeTxlog => ("last step: now watch what goes wrong — q, then plumdash tour --pattern txlog --unsafe (a replay without idempotence applies an operation twice)",
                        "最后一步：看看哪里会出错 — 按 q，然后运行 plumdash tour --pattern txlog --unsafe（不具幂等性的重放会把一个操作应用两次）"),
    TodoUnsafeFsm => ("last step: now watch what goes wrong — q, then plumdash tour --pattern fsm --unsafe (the machine restarts from INIT instead of its saved state)",
                      "最后一步：看看哪里会出错 — 按 q，然后运行 plumdash tour --pattern fsm --unsafe（状态机从 INIT 重新开始，而不是从保存的状态）"),
    TodoUnsafeSeen => ("that was the unsafe variant: compare with the safe one (without --unsafe), then q to quit",
                       "这是不安全的变体：与安全版本（不加 --unsafe）对比，然后按 q 退出"),
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
    fn only_chinese_glosses_state_words() {
        assert_eq!(gloss(&Phase::Running, Lang::En), "");
        assert_eq!(gloss(&Phase::Running, Lang::Zh), "运行中");
    }
}
