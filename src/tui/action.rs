//! What a key (or a mouse click) asks for. Only `App::update` acts on these.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Kill,
    /// SIGKILL the selected instance's node (its agent and workers).
    KillNode,
    /// SIGSTOP the selected instance's node, or SIGCONT it if frozen.
    FreezeNode,
    /// Cut the selected instance's node's link (test hosts), or heal it.
    PartitionNode,
    OpenSignalMenu,
    Interrupt,
    Terminate,
    StartStop,
    Restart,
    ToggleAutoRestart,
    NewInstance,
    AskResetNamespace,
    SelectNext,
    SelectPrev,
    FocusNext,
    ScrollUp,
    ScrollDown,
    Follow,
    ToggleWrap,
    StartSearch,
    ToggleHelp,
    /// Full layout ↔ presenter layout.
    ToggleLayout,
    Quit,
    QuitLeaveRunning,
    // The signal menu's keys.
    MenuUp,
    MenuDown,
    MenuChoose,
    MenuClose,
    // The reset prompt's yes (any other key is no).
    ConfirmYes,
    // While typing a search (other keys type).
    SearchAccept,
    SearchCancel,
    SearchDelete,
    // After a search found something (before the dashboard's keys).
    SearchNext,
    SearchPrev,
    SearchClear,
    // The help screen's scroll (while it does not fit).
    HelpUp,
    HelpDown,
}

impl Action {
    /// The name used in the keys config file (`kill = "X"`).
    pub fn config_name(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::KillNode => "kill_node",
            Action::FreezeNode => "freeze_node",
            Action::PartitionNode => "partition_node",
            Action::OpenSignalMenu => "signal_menu",
            Action::Interrupt => "interrupt",
            Action::Terminate => "terminate",
            Action::StartStop => "start_stop",
            Action::Restart => "restart",
            Action::ToggleAutoRestart => "auto_restart",
            Action::NewInstance => "new_instance",
            Action::AskResetNamespace => "reset_namespace",
            Action::SelectNext => "select_next",
            Action::SelectPrev => "select_prev",
            Action::FocusNext => "focus_next",
            Action::ScrollUp => "scroll_up",
            Action::ScrollDown => "scroll_down",
            Action::Follow => "follow",
            Action::ToggleWrap => "wrap",
            Action::StartSearch => "search",
            Action::ToggleHelp => "help",
            Action::ToggleLayout => "layout",
            Action::Quit => "quit",
            Action::QuitLeaveRunning => "quit_leave_running",
            Action::MenuUp => "menu_up",
            Action::MenuDown => "menu_down",
            Action::MenuChoose => "menu_choose",
            Action::MenuClose => "menu_close",
            Action::ConfirmYes => "confirm_yes",
            Action::SearchAccept => "search_accept",
            Action::SearchCancel => "search_cancel",
            Action::SearchDelete => "search_delete",
            Action::SearchNext => "search_next",
            Action::SearchPrev => "search_prev",
            Action::SearchClear => "search_clear",
            Action::HelpUp => "help_up",
            Action::HelpDown => "help_down",
        }
    }

    pub const ALL: [Action; 37] = [
        Action::Kill,
        Action::KillNode,
        Action::FreezeNode,
        Action::PartitionNode,
        Action::OpenSignalMenu,
        Action::Interrupt,
        Action::Terminate,
        Action::StartStop,
        Action::Restart,
        Action::ToggleAutoRestart,
        Action::NewInstance,
        Action::AskResetNamespace,
        Action::SelectNext,
        Action::SelectPrev,
        Action::FocusNext,
        Action::ScrollUp,
        Action::ScrollDown,
        Action::Follow,
        Action::ToggleWrap,
        Action::StartSearch,
        Action::ToggleHelp,
        Action::ToggleLayout,
        Action::Quit,
        Action::QuitLeaveRunning,
        Action::MenuUp,
        Action::MenuDown,
        Action::MenuChoose,
        Action::MenuClose,
        Action::ConfirmYes,
        Action::SearchAccept,
        Action::SearchCancel,
        Action::SearchDelete,
        Action::SearchNext,
        Action::SearchPrev,
        Action::SearchClear,
        Action::HelpUp,
        Action::HelpDown,
    ];
}

/// A signal the dashboard can send, by name (kept free of `nix` so the
/// model stays plain data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalChoice {
    Kill,
    Term,
    Int,
    Hup,
    Stop,
    Cont,
    /// SIGTERM to the worker and its wrappers (attach), as an agent stopping the
    /// process group does.
    TreeTerm,
    /// SIGKILL to the worker and its wrappers (attach).
    TreeKill,
}

impl SignalChoice {
    pub const MENU: [SignalChoice; 6] = [
        SignalChoice::Kill,
        SignalChoice::Term,
        SignalChoice::Int,
        SignalChoice::Hup,
        SignalChoice::Stop,
        SignalChoice::Cont,
    ];

    /// Attached workers run under wrappers: their menu also offers the whole tree.
    pub const MENU_ATTACHED: [SignalChoice; 8] = [
        SignalChoice::Kill,
        SignalChoice::Term,
        SignalChoice::Int,
        SignalChoice::Hup,
        SignalChoice::Stop,
        SignalChoice::Cont,
        SignalChoice::TreeTerm,
        SignalChoice::TreeKill,
    ];

    /// The signal menu's entries.
    pub fn menu(attached: bool) -> &'static [SignalChoice] {
        if attached {
            &Self::MENU_ATTACHED
        } else {
            &Self::MENU
        }
    }

    /// Sent to every process of the instance, not only the worker.
    pub fn whole_tree(self) -> bool {
        matches!(self, SignalChoice::TreeTerm | SignalChoice::TreeKill)
    }

    pub fn name(self) -> &'static str {
        match self {
            SignalChoice::Kill => "SIGKILL",
            SignalChoice::Term => "SIGTERM",
            SignalChoice::Int => "SIGINT",
            SignalChoice::Hup => "SIGHUP",
            SignalChoice::Stop => "SIGSTOP",
            SignalChoice::Cont => "SIGCONT",
            SignalChoice::TreeTerm => "SIGTERM",
            SignalChoice::TreeKill => "SIGKILL",
        }
    }

    /// What the signal does to a kv-demo worker, as the menu says it.
    pub fn describe(self) -> crate::text::Msg {
        use crate::text::Msg;
        match self {
            SignalChoice::Kill => Msg::SigKill,
            SignalChoice::Term => Msg::SigTerm,
            SignalChoice::Int => Msg::SigInt,
            SignalChoice::Hup => Msg::SigHup,
            SignalChoice::Stop => Msg::SigStop,
            SignalChoice::Cont => Msg::SigCont,
            SignalChoice::TreeTerm => Msg::SigTreeTerm,
            SignalChoice::TreeKill => Msg::SigTreeKill,
        }
    }
}

/// A side effect `update` asks the runtime to perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Signal {
        instance: String,
        signal: SignalChoice,
    },
    Start {
        instance: String,
    },
    Stop {
        instance: String,
    },
    Restart {
        instance: String,
    },
    SetAutoRestart {
        instance: String,
        on: bool,
    },
    NewInstance,
    /// Remove every key of this namespace (the one the panes show).
    ResetNamespace {
        namespace: String,
    },
    /// Kill, freeze or thaw a local node.
    Node {
        node: String,
        op: crate::session::NodeOp,
    },
    Quit {
        stop_workers: bool,
    },
}

/// What a performed `Command` reported back; `App::on_outcome` turns it into a flash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Started {
        instance: String,
    },
    /// Added, not started: `beside` already writes the shared namespace.
    Added {
        instance: String,
        beside: String,
    },
    Stopped {
        instance: String,
    },
    Restarted {
        instance: String,
    },
    NamespaceReset {
        removed: usize,
    },
    Node {
        node: String,
        action: crate::recovery::NodeAction,
    },
    /// An instance on another machine was signalled by its agent: what it did.
    Signalled {
        instance: String,
        done: String,
    },
    /// The command failed; `error` is the cause as text (already with its context).
    Failed {
        command: Command,
        error: String,
    },
}
