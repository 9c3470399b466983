//! What a key (or a mouse click) asks for. Only `App::update` acts on these.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Kill,
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
    Quit,
    QuitLeaveRunning,
}

impl Action {
    /// The name used in the keys config file (`kill = "K"`).
    pub fn config_name(self) -> &'static str {
        match self {
            Action::Kill => "kill",
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
            Action::Quit => "quit",
            Action::QuitLeaveRunning => "quit_leave_running",
        }
    }

    pub const ALL: [Action; 20] = [
        Action::Kill,
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
        Action::Quit,
        Action::QuitLeaveRunning,
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

    pub fn name(self) -> &'static str {
        match self {
            SignalChoice::Kill => "SIGKILL",
            SignalChoice::Term => "SIGTERM",
            SignalChoice::Int => "SIGINT",
            SignalChoice::Hup => "SIGHUP",
            SignalChoice::Stop => "SIGSTOP",
            SignalChoice::Cont => "SIGCONT",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            SignalChoice::Kill => "crash: flag stays set, restart resumes",
            SignalChoice::Term => "graceful stop, flag cleared",
            SignalChoice::Int => "graceful stop (Ctrl-C), flag cleared",
            SignalChoice::Hup => "hang-up: the worker does not handle it, so it dies",
            SignalChoice::Stop => "freeze the process (progress plateaus)",
            SignalChoice::Cont => "thaw a frozen process",
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
    ResetNamespace,
    Quit {
        stop_workers: bool,
    },
}
