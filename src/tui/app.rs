//! The dashboard's model and its `update`: the only place state changes.
//! Rendering reads an `&App`; side effects leave as `Command`s.

use super::action::{Action, Command, Outcome, SignalChoice};
use super::autokill::AutoKill;
pub use super::format::ClockStyle;
use super::keymap::{KeyMode, Keymap};
use super::theme::Theme;
use super::tour::Tour;
use crate::recovery::{Board, InstanceStatus, Tracker, TsMs};
use crate::supervisor::{OutputLine, OutputStream};
use crate::text::flash::{self, Attempt, SignalTarget};
use crate::text::{Lang, Msg};
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use std::collections::VecDeque;

/// Which screen the dashboard draws (`--layout`, switched with `p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ScreenLayout {
    /// Every pane (compact below 60×16).
    #[default]
    Full,
    /// For a projector: the state, a large gauge, the crash flag and the last
    /// timeline lines, readable at 80×24 and 60×20.
    Presenter,
}

impl ScreenLayout {
    pub fn other(self) -> ScreenLayout {
        match self {
            ScreenLayout::Full => ScreenLayout::Presenter,
            ScreenLayout::Presenter => ScreenLayout::Full,
        }
    }
}

/// Output lines kept for the log pane (as many as the supervisor's ring holds).
pub const LOG_LINES: usize = 5_000;

/// The controller and what is being watched, for the header.
#[derive(Debug, Clone, Default)]
pub struct HeaderInfo {
    pub controller_url: String,
    /// True when plumdash runs the controller itself.
    pub embedded: bool,
    pub app: String,
    pub namespace: String,
    pub read_only: bool,
    /// Attached to workers we did not start.
    pub attached: bool,
    /// Attach: the namespace did not exist yet; what to say while it is empty.
    pub waiting_for_namespace: Option<String>,
    /// A fresh demo: where the last run's keys were archived.
    pub archived: Option<String>,
}

/// One row of the instances table: the one view of the instance
/// (`recovery::InstanceStatus`, shared with `ctl status`) and what only the
/// dashboard adds, process stats and the wrappers. Typed until the pane draws it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceRow {
    /// Lifecycle and judgement: phase (drawn `RESUMED from 50%`), detail, the
    /// restart countdown, crash counts, frozen or not.
    pub status: InstanceStatus,
    pub cpu_percent: Option<f32>,
    pub rss_bytes: Option<u64>,
    /// Attach: the wrappers the worker runs under (`sh→bash`).
    pub under: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Instances,
    Namespace,
    Timeline,
    Log,
}

impl Focus {
    fn next(self) -> Focus {
        match self {
            Focus::Instances => Focus::Namespace,
            Focus::Namespace => Focus::Timeline,
            Focus::Timeline => Focus::Log,
            Focus::Log => Focus::Instances,
        }
    }
}

/// What the keyboard is doing right now. `Help` is `scroll` lines down (the
/// help scrolls while it does not fit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Help { scroll: usize },
    SignalMenu { selected: usize },
    ConfirmReset,
    Search { input: String },
}

/// A message shown briefly (what was sent to which pid, or an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    /// A kill (a worker's or a node's): drawn as an alarm; any other news is not.
    pub loud: bool,
    pub until: TsMs,
}

const FLASH_MS: TsMs = 2_500;

/// Where the last frame put what a click can hit: the view reports it, the
/// runtime stores it here, and mouse events are mapped with it (so a click
/// means what the person saw, in every layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drawn {
    /// The screen rows showing instances, one instance per row.
    pub instance_rows: Rect,
    /// The instance shown on the first of those rows (the table scrolls).
    pub first_instance: usize,
    /// How far the help can scroll down (0: every line shows, or it is closed).
    pub help_scroll_max: usize,
    /// The layout the frame was drawn in (`p` switches from what is seen).
    pub shown: Shown,
}

/// The layout a frame was drawn in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Shown {
    #[default]
    Full,
    /// Asked for (`--layout presenter`, `p`).
    Presenter,
    /// The screen is too small for the full layout to show the state word, the
    /// flag and the progress uncut: the presenter layout instead, said in its footer.
    PresenterForSize,
    Compact,
}

/// The log pane's view of the selected instance's output.
/// One line of the log pane and what kind it is (the pane dims separators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: OutputStream,
    pub text: String,
}

impl LogLine {
    /// A line the worker printed.
    pub fn output(text: impl Into<String>) -> LogLine {
        LogLine {
            stream: OutputStream::Stdout,
            text: text.into(),
        }
    }

    /// The supervisor's separator between runs.
    pub fn separator(text: impl Into<String>) -> LogLine {
        LogLine {
            stream: OutputStream::Separator,
            text: text.into(),
        }
    }

    pub fn is_separator(&self) -> bool {
        self.stream == OutputStream::Separator
    }
}

impl From<OutputLine> for LogLine {
    fn from(line: OutputLine) -> LogLine {
        LogLine {
            stream: line.stream,
            text: line.text,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LogView {
    /// Oldest first, at most `LOG_LINES`.
    pub lines: VecDeque<LogLine>,
    /// Lines from the bottom (0 = newest at the bottom).
    pub scroll_back: usize,
    pub follow: bool,
    pub wrap: bool,
    pub search: Option<String>,
    /// The line (index into `lines`) of the match the view was moved to.
    pub match_at: Option<usize>,
}

impl LogView {
    /// Lines holding `term`, and which of them (1-based, oldest first) the
    /// view was moved to: the `3` and `17` of `3/17`.
    pub fn matches(&self, term: &str) -> (Option<usize>, usize) {
        let mut at = None;
        let mut total = 0;
        for (i, line) in self.lines.iter().enumerate() {
            if line.text.contains(term) {
                total += 1;
                if Some(i) == self.match_at {
                    at = Some(total);
                }
            }
        }
        (at, total)
    }
}

pub struct App {
    pub header: HeaderInfo,
    /// The recovery state of every namespace watched (see [`App::tracker`]).
    pub board: Board,
    pub instances: Vec<InstanceRow>,
    pub selected: usize,
    pub focus: Focus,
    pub mode: Mode,
    pub log: LogView,
    pub namespace_scroll: usize,
    pub timeline_scroll: usize,
    pub flash: Option<Flash>,
    pub keymap: Keymap,
    pub theme: Theme,
    pub clock: ClockStyle,
    /// When the dashboard started (origin of relative times and the chart).
    pub started_at: TsMs,
    pub now: TsMs,
    pub quitting: bool,
    /// `plumdash tour`: the guided walk through the demo's steps.
    pub tour: Option<Tour>,
    /// `--kill-at PCT`: SIGKILL when progress crosses PCT.
    pub auto_kill: Option<AutoKill>,
    /// `auto_kill` as each namespace watched has fired it (a copy each).
    kill_at_state: std::collections::BTreeMap<String, AutoKill>,
    /// What the last frame showed where (see `Drawn`).
    pub drawn: Drawn,
    /// The language of every label (`--lang`).
    pub lang: Lang,
    /// Full or presenter (`--layout`, `p`).
    pub layout: ScreenLayout,
    /// `p` on a screen too small for the full layout: show it anyway.
    pub full_anyway: bool,
    /// What the terminal can draw (`terminal::Caps`).
    pub glyphs: super::terminal::Glyphs,
    /// Under nodes, each instance's short name (`A1`: node letter, then the
    /// how-manyth instance seen there), given once and kept.
    aliases: std::collections::BTreeMap<String, String>,
}

impl App {
    pub fn new(
        header: HeaderInfo,
        keymap: Keymap,
        theme: Theme,
        clock: ClockStyle,
        now: TsMs,
    ) -> App {
        App {
            board: Board::shared(&header.namespace),
            header,
            instances: Vec::new(),
            selected: 0,
            focus: Focus::Instances,
            mode: Mode::Normal,
            log: LogView {
                follow: true,
                ..LogView::default()
            },
            namespace_scroll: 0,
            timeline_scroll: 0,
            flash: None,
            keymap,
            theme,
            clock,
            started_at: now,
            now,
            quitting: false,
            tour: None,
            auto_kill: None,
            kill_at_state: std::collections::BTreeMap::new(),
            drawn: Drawn::default(),
            lang: Lang::En,
            layout: ScreenLayout::Full,
            full_anyway: false,
            glyphs: super::terminal::Glyphs::Unicode,
            aliases: std::collections::BTreeMap::new(),
        }
    }

    /// After new recovery facts: moves the tour on and fires `--kill-at`.
    pub fn after_facts(&mut self) -> Option<Command> {
        if let Some(tour) = self.tour.as_mut() {
            tour.advance(self.board.first());
        }
        if self.header.read_only {
            return None;
        }
        let template = self.auto_kill.as_ref()?;
        // Each namespace's task is watched with its own copy: one instance
        // each its own crosses PCT on its own.
        let mut fired = None;
        for (ns, tracker) in self.board.trackers() {
            let auto = self
                .kill_at_state
                .entry(ns.to_string())
                .or_insert_with(|| template.clone());
            if let Some(instance) = auto.check(tracker) {
                fired = Some((instance, auto.at, auto.node));
                break;
            }
        }
        let (instance, at, node_kill) = fired?;
        if node_kill {
            let node = self.node_of_instance(&instance)?;
            self.flash_kill(flash::kill_at_node(at, &node, &instance, self.lang));
            return Some(Command::Node {
                node,
                op: crate::session::NodeOp::Kill,
            });
        }
        let pid = self
            .board
            .tracker_of(&instance)
            .instance(&instance)
            .and_then(|i| i.pid)
            .map_or("?".into(), |p| p.to_string());
        self.flash_kill(flash::kill_at_pid(at, &pid, &instance, self.lang));
        Some(Command::Signal {
            instance,
            signal: SignalChoice::Kill,
        })
    }

    pub fn selected_instance(&self) -> Option<&InstanceRow> {
        self.instances.get(self.selected)
    }

    /// The recovery state the panes show: the app's namespace, or (each
    /// instance in its own) the selected instance's.
    pub fn tracker(&self) -> &Tracker {
        match self.selected_instance() {
            Some(row) => self.board.tracker_of(&row.status.id),
            None => self.board.first(),
        }
    }

    /// The namespace the panes show (see [`App::tracker`]); `None` when each
    /// instance has its own and none is selected.
    pub fn namespace(&self) -> Option<&str> {
        match self.selected_instance() {
            _ if !self.board.per_instance() => Some(&self.header.namespace),
            Some(row) => Some(self.board.namespace_of(&row.status.id)),
            None => None,
        }
    }

    /// The rows of the instances working in the namespace shown.
    pub fn namespace_rows(&self) -> impl Iterator<Item = &InstanceRow> {
        let shown = self.namespace();
        self.instances.iter().filter(move |r| {
            !self.board.per_instance() || shown == Some(self.board.namespace_of(&r.status.id))
        })
    }

    pub fn flash(&mut self, text: impl Into<String>, error: bool) {
        self.flash = Some(Flash {
            text: text.into(),
            error,
            loud: false,
            until: self.now + FLASH_MS,
        });
    }

    /// A flash for a kill: the alarm's colours (a stop or a start is not one).
    pub fn flash_kill(&mut self, text: impl Into<String>) {
        self.flash(text, false);
        if let Some(flash) = self.flash.as_mut() {
            flash.loud = true;
        }
    }

    /// The flash message if it is still showing.
    pub fn active_flash(&self) -> Option<&Flash> {
        self.flash.as_ref().filter(|f| f.until > self.now)
    }

    pub fn set_instances(&mut self, rows: Vec<InstanceRow>) {
        // The selection follows its instance, not its place: a row that
        // comes in above it (a failover's new instance) must not move the
        // next `k` or `P` onto another instance or node.
        let was = self.selected_instance().map(|r| r.status.id.clone());
        self.instances = rows;
        self.name_new_instances();
        let found = was.and_then(|id| self.instances.iter().position(|r| r.status.id == id));
        match found {
            Some(index) => self.selected = index,
            None if self.selected >= self.instances.len() => {
                self.selected = self.instances.len().saturating_sub(1);
            }
            None => {}
        }
    }

    /// Gives each instance first seen on a node its alias (nodes only: ids
    /// are the controller's 41 characters there).
    fn name_new_instances(&mut self) {
        if self.board.first().nodes().nodes().next().is_none() {
            return;
        }
        for i in 0..self.instances.len() {
            let id = self.instances[i].status.id.clone();
            if self.aliases.contains_key(&id) {
                continue;
            }
            let Some(node) = self.node_of_instance(&id) else {
                continue;
            };
            let letter = node_letter(&node);
            let n = self
                .aliases
                .values()
                .filter(|a| a.starts_with(letter))
                .count()
                + 1;
            self.aliases.insert(id, format!("{letter}{n}"));
        }
    }

    /// An instance's alias under nodes (`A1`), if it has one.
    pub fn alias(&self, id: &str) -> Option<&str> {
        self.aliases.get(id).map(String::as_str)
    }

    /// An instance id as panes show it in `width` columns: its alias first
    /// when it has one, then the id cut to its distinguishing end; control
    /// characters escaped.
    pub fn id_label(&self, id: &str, width: usize) -> String {
        let shown = crate::text_safety::escape_controls(id);
        match self.alias(id) {
            Some(alias) => format!(
                "{alias} {}",
                super::format::fit_id(&shown, width.saturating_sub(alias.len() + 1))
            ),
            None => super::format::fit_id(&shown, width),
        }
    }

    /// Replaces the log (another instance selected): the view follows again.
    pub fn set_log_lines(&mut self, lines: Vec<LogLine>) {
        let skip = lines.len().saturating_sub(LOG_LINES);
        self.log.lines = lines.into_iter().skip(skip).collect();
        self.log.scroll_back = 0;
        self.log.follow = true;
        self.log.match_at = None;
    }

    /// New output of the selected instance, oldest first. A paused view stays on
    /// the same lines: it moves back by as many lines as arrived, whether or not
    /// the oldest fall out of the full ring.
    pub fn append_log_lines(&mut self, lines: impl IntoIterator<Item = LogLine>) {
        let mut arrived = 0;
        for line in lines {
            if self.log.lines.len() == LOG_LINES {
                self.log.lines.pop_front();
                // The match moves up with its line, and is gone with it.
                self.log.match_at = self.log.match_at.and_then(|i| i.checked_sub(1));
            }
            self.log.lines.push_back(line);
            arrived += 1;
        }
        if !self.log.follow {
            self.log.scroll_back += arrived;
        }
        self.log.scroll_back = self.log.scroll_back.min(self.log.lines.len());
    }

    /// A terminal event: key presses go through the keymap, mouse clicks are
    /// mapped with the layout the last frame was drawn with.
    pub fn on_event(&mut self, event: &Event) -> Option<Command> {
        match event {
            Event::Key(key) if key.kind == KeyEventKind::Press => self.on_key(key),
            Event::Mouse(mouse) => self.on_mouse(mouse),
            _ => None,
        }
    }

    fn on_mouse(&mut self, mouse: &MouseEvent) -> Option<Command> {
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let rows = self.drawn.instance_rows;
                if rows.contains(Position::new(mouse.column, mouse.row)) {
                    let index = self.drawn.first_instance + usize::from(mouse.row - rows.y);
                    self.click_instance(index);
                }
                None
            }
            // The wheel scrolls the help while it is open, the focused pane otherwise.
            MouseEventKind::ScrollUp if matches!(self.mode, Mode::Help { .. }) => {
                self.update(Action::HelpUp)
            }
            MouseEventKind::ScrollDown if matches!(self.mode, Mode::Help { .. }) => {
                self.update(Action::HelpDown)
            }
            MouseEventKind::ScrollUp => self.update(Action::ScrollUp),
            MouseEventKind::ScrollDown => self.update(Action::ScrollDown),
            _ => None,
        }
    }

    /// What a performed command reported back, shown as a flash.
    pub fn on_outcome(&mut self, outcome: Outcome) {
        let lang = self.lang;
        let killed_node = matches!(
            outcome,
            Outcome::Node {
                action: crate::recovery::NodeAction::Killed,
                ..
            }
        );
        let (text, error) = match outcome {
            Outcome::Started { instance } => (flash::started(&instance, lang), false),
            Outcome::Added { instance, beside } => {
                let key = self.keymap.key_for(Action::StartStop);
                (flash::added_beside(&instance, &beside, &key, lang), false)
            }
            Outcome::Stopped { instance } => (flash::stopped(&instance, lang), false),
            Outcome::Restarted { instance } => (flash::restarted(&instance, lang), false),
            Outcome::NamespaceReset { removed } => (flash::namespace_reset(removed, lang), false),
            Outcome::Node { node, action } => (flash::node_done(&node, action, lang), false),
            Outcome::Signalled { instance, done } => {
                (flash::signalled(&instance, &done, lang), false)
            }
            Outcome::Failed { command, error } => {
                let attempt = match &command {
                    Command::NewInstance => Attempt::NewInstance,
                    Command::ResetNamespace { .. } => Attempt::Reset,
                    Command::Node { node, .. } => Attempt::Node(node),
                    Command::Signal { signal, .. } => Attempt::Signal {
                        name: signal.name(),
                        tree: signal.whole_tree(),
                    },
                    Command::Start { .. } => Attempt::Start,
                    Command::Stop { .. } => Attempt::Stop,
                    Command::Restart { .. } => Attempt::Restart,
                    Command::SetAutoRestart { .. } => Attempt::AutoRestart,
                    Command::Quit { .. } => Attempt::Quit,
                };
                (flash::failed(attempt, &error, lang), true)
            }
        };
        self.flash(text, error);
        if let Some(f) = self.flash.as_mut() {
            f.loud = killed_node;
        }
    }

    /// A key press in the current mode: the keymap says what it means there.
    pub fn on_key(&mut self, key: &KeyEvent) -> Option<Command> {
        // Keys for every mode (Ctrl-C) first, in one place.
        if let Some(action) = self.keymap.global(key) {
            self.mode = Mode::Normal;
            return self.update(action);
        }
        match self.mode.clone() {
            // While a search has a query, its keys come first (`n` is a new instance otherwise).
            Mode::Normal => self
                .log
                .search
                .as_ref()
                .and_then(|_| self.keymap.action_in(KeyMode::Found, key))
                .or_else(|| self.keymap.action_for(key))
                .and_then(|a| self.update(a)),
            Mode::Help { .. } => {
                // While the help is cut, its own keys scroll it.
                if self.drawn.help_scroll_max > 0 {
                    if let Some(action) = self.keymap.action_in(KeyMode::Help, key) {
                        return self.update(action);
                    }
                }
                // Any other key closes help; the quit keys still quit.
                self.mode = Mode::Normal;
                match self.keymap.action_for(key) {
                    Some(a @ (Action::Quit | Action::QuitLeaveRunning)) => self.update(a),
                    _ => None,
                }
            }
            Mode::SignalMenu { .. } => match self.keymap.action_in(KeyMode::SignalMenu, key) {
                Some(action) => self.update(action),
                // 1-8 choose by number.
                None => match key.code {
                    KeyCode::Char(c) => {
                        let n = c.to_digit(10)? as usize;
                        let choice = self.signal_menu().get(n.checked_sub(1)?).copied()?;
                        self.mode = Mode::Normal;
                        self.signal(choice)
                    }
                    _ => None,
                },
            },
            Mode::ConfirmReset => match self.keymap.action_in(KeyMode::Confirm, key) {
                Some(action) => self.update(action),
                None => {
                    self.mode = Mode::Normal;
                    self.flash(Msg::ResetCancelled.text(self.lang), false);
                    None
                }
            },
            Mode::Search { mut input } => {
                match self.keymap.action_in(KeyMode::Search, key) {
                    Some(action) => return self.update(action),
                    None => {
                        if let KeyCode::Char(c) = key.code {
                            input.push(c);
                            self.mode = Mode::Search { input };
                        }
                    }
                }
                None
            }
        }
    }

    /// The signal menu's entries for this dashboard.
    pub fn signal_menu(&self) -> &'static [SignalChoice] {
        SignalChoice::menu(self.header.attached)
    }

    /// The waiting note while an attached namespace does not exist yet.
    pub fn namespace_wait(&self) -> Option<&str> {
        self.header
            .waiting_for_namespace
            .as_deref()
            .filter(|_| self.tracker().entries().is_empty())
    }

    /// Applies an action; returns the side effect to perform, if any.
    pub fn update(&mut self, action: Action) -> Option<Command> {
        match action {
            Action::Kill => self.signal(SignalChoice::Kill),
            Action::KillNode => self.node_command(crate::session::NodeOp::Kill),
            Action::FreezeNode => self.node_command(crate::session::NodeOp::ToggleFreeze),
            Action::PartitionNode => self.node_command(crate::session::NodeOp::TogglePartition),
            Action::Interrupt => self.signal(SignalChoice::Int),
            Action::Terminate => self.signal(SignalChoice::Term),
            Action::OpenSignalMenu => {
                if self.guard_control().is_some() {
                    self.mode = Mode::SignalMenu { selected: 0 };
                }
                None
            }
            Action::StartStop => {
                let row = self.guard_control()?;
                let instance = row.status.id.clone();
                if row.status.pid.is_some() {
                    Some(Command::Stop { instance })
                } else {
                    Some(Command::Start { instance })
                }
            }
            Action::Restart => {
                let instance = self.guard_control()?.status.id.clone();
                Some(Command::Restart { instance })
            }
            Action::ToggleAutoRestart => {
                let row = self.guard_control()?;
                let (instance, on) = (row.status.id.clone(), !row.status.auto_restart);
                let down = row.status.pid.is_none();
                let mut text = flash::auto_restart(on, &instance, self.lang);
                // On again for one that is down: it restarts at its next
                // end, not now; say which key starts it.
                if on && down {
                    let key = self.keymap.key_for(Action::StartStop);
                    text.push_str(&flash::start_it_with(&key, self.lang));
                }
                self.flash(text, false);
                Some(Command::SetAutoRestart { instance, on })
            }
            Action::NewInstance => {
                if self.header.read_only || self.header.attached {
                    self.refuse_control();
                    return None;
                }
                Some(Command::NewInstance)
            }
            Action::AskResetNamespace => {
                if self.header.read_only {
                    self.refuse_control();
                } else if self.namespace().is_none() {
                    self.flash(Msg::NoInstanceSelected.text(self.lang), true);
                } else {
                    self.mode = Mode::ConfirmReset;
                }
                None
            }
            Action::SelectNext => {
                self.move_in_focus(1);
                None
            }
            Action::SelectPrev => {
                self.move_in_focus(-1);
                None
            }
            Action::FocusNext => {
                self.focus = self.focus.next();
                None
            }
            Action::ScrollUp => {
                self.scroll(-10);
                None
            }
            Action::ScrollDown => {
                self.scroll(10);
                None
            }
            Action::Follow => {
                self.log.follow = true;
                self.log.scroll_back = 0;
                None
            }
            Action::ToggleWrap => {
                self.log.wrap = !self.log.wrap;
                None
            }
            Action::StartSearch => {
                // A new query each time (the last one stays until Enter).
                self.mode = Mode::Search {
                    input: String::new(),
                };
                None
            }
            Action::SearchNext => {
                self.step_match(true);
                None
            }
            Action::SearchPrev => {
                self.step_match(false);
                None
            }
            Action::SearchClear => {
                self.log.search = None;
                self.log.match_at = None;
                None
            }
            Action::ToggleHelp => {
                self.mode = if matches!(self.mode, Mode::Help { .. }) {
                    Mode::Normal
                } else {
                    Mode::Help { scroll: 0 }
                };
                None
            }
            Action::ToggleLayout => {
                // The presenter layout a small screen chose: `p` shows the
                // full one anyway. Otherwise `p` switches, and full by `p` is
                // full whatever the size (the person chose it).
                let for_size = self.drawn.shown == Shown::PresenterForSize;
                if for_size && self.layout == ScreenLayout::Full && !self.full_anyway {
                    self.full_anyway = true;
                } else {
                    self.layout = self.layout.other();
                    self.full_anyway = self.layout == ScreenLayout::Full;
                }
                None
            }
            Action::Quit => {
                self.quitting = true;
                Some(Command::Quit { stop_workers: true })
            }
            Action::QuitLeaveRunning => {
                self.quitting = true;
                Some(Command::Quit {
                    stop_workers: false,
                })
            }
            Action::HelpUp | Action::HelpDown => {
                if let Mode::Help { scroll } = self.mode {
                    // As far as the last frame could show (the screen may have shrunk).
                    let scroll = scroll.min(self.drawn.help_scroll_max);
                    let scroll = if action == Action::HelpUp {
                        scroll.saturating_sub(1)
                    } else {
                        (scroll + 1).min(self.drawn.help_scroll_max)
                    };
                    self.mode = Mode::Help { scroll };
                }
                None
            }
            Action::MenuUp | Action::MenuDown => {
                if let Mode::SignalMenu { selected } = self.mode {
                    let n = self.signal_menu().len();
                    let step = if action == Action::MenuUp { n - 1 } else { 1 };
                    self.mode = Mode::SignalMenu {
                        selected: (selected + step) % n,
                    };
                }
                None
            }
            Action::MenuChoose => {
                let Mode::SignalMenu { selected } = self.mode else {
                    return None;
                };
                self.mode = Mode::Normal;
                let menu = self.signal_menu();
                self.signal(menu[selected.min(menu.len() - 1)])
            }
            Action::MenuClose => {
                if matches!(self.mode, Mode::SignalMenu { .. }) {
                    self.mode = Mode::Normal;
                }
                None
            }
            Action::ConfirmYes => {
                if self.mode != Mode::ConfirmReset {
                    return None;
                }
                self.mode = Mode::Normal;
                let namespace = self.namespace()?.to_string();
                self.flash(Msg::NamespaceResetDone.text(self.lang), false);
                Some(Command::ResetNamespace { namespace })
            }
            Action::SearchAccept | Action::SearchCancel | Action::SearchDelete => {
                let Mode::Search { mut input } = self.mode.clone() else {
                    return None;
                };
                match action {
                    Action::SearchAccept => {
                        self.mode = Mode::Normal;
                        self.log.search = (!input.is_empty()).then_some(input);
                        self.jump_to_match();
                    }
                    Action::SearchCancel => {
                        self.mode = Mode::Normal;
                        self.log.search = None;
                        self.log.match_at = None;
                    }
                    _ => {
                        input.pop();
                        self.mode = Mode::Search { input };
                    }
                }
                None
            }
        }
    }

    fn signal(&mut self, signal: SignalChoice) -> Option<Command> {
        let lang = self.lang;
        let row = self.guard_control()?;
        // On another machine: its agent signals it (and says what it did).
        if row.status.remote {
            let instance = row.status.id.clone();
            let node = row.status.node.clone();
            let to = SignalTarget::Agent {
                node: &node,
                tree: signal.whole_tree(),
            };
            let text = flash::signal_sent(signal.name(), to, &instance, lang);
            self.flash(text, false);
            return Some(Command::Signal { instance, signal });
        }
        let Some(pid) = row.status.pid else {
            let text = flash::not_running(&row.status.id, lang);
            self.flash(text, true);
            return None;
        };
        let instance = row.status.id.clone();
        let to = if signal.whole_tree() {
            SignalTarget::Tree {
                pid,
                under: row.under.as_deref(),
            }
        } else {
            SignalTarget::Pid(pid)
        };
        let text = flash::signal_sent(signal.name(), to, &instance, lang);
        if matches!(signal, SignalChoice::Kill | SignalChoice::TreeKill) {
            self.flash_kill(text);
        } else {
            self.flash(text, false);
        }
        Some(Command::Signal { instance, signal })
    }

    /// The selected row, if controls are allowed; flashes why not otherwise.
    fn guard_control(&mut self) -> Option<&InstanceRow> {
        if self.header.read_only {
            self.refuse_control();
            return None;
        }
        if self.instances.is_empty() {
            self.flash(Msg::NoInstanceSelected.text(self.lang), true);
            return None;
        }
        self.instances.get(self.selected)
    }

    /// A command for the selected instance's node, if it runs on one here.
    fn node_command(&mut self, op: crate::session::NodeOp) -> Option<Command> {
        if self.header.read_only {
            self.refuse_control();
            return None;
        }
        if self.tracker().nodes().nodes().next().is_none() {
            self.flash(Msg::NoNodes.text(self.lang), true);
            return None;
        }
        let node = self
            .selected_instance()
            .and_then(|r| self.node_of_instance(&r.status.id));
        let Some(node) = node else {
            self.flash(Msg::NoInstanceSelected.text(self.lang), true);
            return None;
        };
        // K on a node killed here brings it back.
        let killed = self
            .tracker()
            .nodes()
            .node(&node)
            .is_some_and(|n| n.is_killed());
        let op = match op {
            crate::session::NodeOp::Kill if killed => crate::session::NodeOp::Revive,
            op => op,
        };
        Some(Command::Node { node, op })
    }

    /// The node an instance runs on: as the cluster assigned it, else as its row says.
    fn node_of_instance(&self, id: &str) -> Option<String> {
        if let Some(node) = self.tracker().nodes().node_of(id) {
            return Some(node.to_string());
        }
        let row = self.instances.iter().find(|r| r.status.id == id)?;
        Some(row.status.node.clone()).filter(|n| !n.is_empty())
    }

    fn refuse_control(&mut self) {
        self.flash(Msg::ReadOnlyRefused.text(self.lang), true);
    }

    fn move_in_focus(&mut self, delta: isize) {
        match self.focus {
            Focus::Instances | Focus::Log => {
                let n = self.instances.len();
                if n > 0 {
                    self.selected =
                        (self.selected as isize + delta).rem_euclid(n as isize) as usize;
                }
            }
            Focus::Namespace => self.scroll(delta),
            Focus::Timeline => self.scroll(delta),
        }
    }

    fn scroll(&mut self, delta: isize) {
        let apply = |v: usize, max: usize| (v as isize + delta).clamp(0, max as isize) as usize;
        match self.focus {
            Focus::Namespace => {
                let max = self.tracker().entries().len().saturating_sub(1);
                self.namespace_scroll = apply(self.namespace_scroll, max);
            }
            Focus::Timeline => {
                let max = self.board.timeline_len().saturating_sub(1);
                self.timeline_scroll = apply(self.timeline_scroll, max);
            }
            Focus::Instances | Focus::Log => {
                // Scrolling up moves back in time; reaching the end follows again.
                let back = (self.log.scroll_back as isize - delta)
                    .clamp(0, self.log.lines.len() as isize) as usize;
                self.log.scroll_back = back;
                self.log.follow = back == 0;
            }
        }
    }

    fn jump_to_match(&mut self) {
        let Some(term) = self.log.search.clone() else {
            return;
        };
        let n = self.log.lines.len();
        // The newest match at or above the current view.
        let start = n.saturating_sub(self.log.scroll_back);
        match self
            .log
            .lines
            .range(..start)
            .rposition(|l| l.text.contains(&term))
        {
            Some(i) => self.show_match(i),
            None => {
                self.log.match_at = None;
                self.flash(flash::no_match(&term, self.lang), true);
            }
        }
    }

    /// `n`: the match above the one shown (older), `N`: the one below; each
    /// wraps around at the end.
    fn step_match(&mut self, older: bool) {
        let Some(term) = self.log.search.clone() else {
            return;
        };
        let lines = &self.log.lines;
        let hit = |i: &usize| lines[*i].text.contains(&term);
        let n = lines.len();
        let from = self
            .log
            .match_at
            .unwrap_or(n.saturating_sub(self.log.scroll_back));
        let found = if older {
            (0..from.min(n))
                .rev()
                .find(hit)
                .or_else(|| (from..n).rev().find(hit))
        } else {
            (from + 1..n)
                .find(hit)
                .or_else(|| (0..=from.min(n.saturating_sub(1))).find(hit))
        };
        match found {
            Some(i) => self.show_match(i),
            None => self.flash(flash::no_match(&term, self.lang), true),
        }
    }

    /// Scrolls the log so line `i` is the bottom one, paused there.
    fn show_match(&mut self, i: usize) {
        self.log.match_at = Some(i);
        self.log.scroll_back = self.log.lines.len() - i - 1;
        self.log.follow = self.log.scroll_back == 0;
    }

    /// Mouse: a click on an instance row selects it.
    pub fn click_instance(&mut self, index: usize) {
        if index < self.instances.len() {
            self.selected = index;
            self.focus = Focus::Instances;
        }
    }
}

/// The letter of a node's alias: `nodeB` → `B`, `worker7` → `W`.
fn node_letter(node: &str) -> char {
    let name = node
        .strip_prefix("node")
        .filter(|r| !r.is_empty())
        .unwrap_or(node);
    name.chars()
        .find(char::is_ascii_alphanumeric)
        .map_or('N', |c| c.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::ThemeName;

    /// A command's outcome flashes in the dashboard's language.
    #[test]
    fn flashes_follow_the_language() {
        let theme = Theme::new(ThemeName::Dark, false);
        let mut app = App::new(
            HeaderInfo::default(),
            Keymap::default(),
            theme,
            ClockStyle::Relative,
            0,
        );
        let flash = |app: &mut App, lang| {
            app.lang = lang;
            app.on_outcome(Outcome::Failed {
                command: Command::Restart {
                    instance: "kv-demo-001".into(),
                },
                error: "boom".into(),
            });
            app.active_flash().map(|f| (f.text.clone(), f.error))
        };
        assert_eq!(
            flash(&mut app, Lang::En),
            Some(("restart failed: boom".into(), true))
        );
        assert_eq!(
            flash(&mut app, Lang::Zh),
            Some(("重启失败：boom".into(), true))
        );
    }
}
