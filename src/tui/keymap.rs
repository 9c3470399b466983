//! Keys as data: one table maps keys to actions in every mode (the dashboard,
//! the signal menu, the reset prompt, search, the help), and the footers, the menu's
//! title and the help screen are generated from the same table.

use super::action::Action;
use crate::text::{Lang, Msg};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// In every mode, before the mode's own keys (Ctrl-C).
    Any,
    /// The dashboard (and the help screen, which any key closes).
    Normal,
    SignalMenu,
    Confirm,
    Search,
    /// The dashboard while a search has a query: these keys come first (`n`
    /// steps through the matches here, and makes a new instance otherwise).
    Found,
    /// The help screen while it is taller than the screen: its keys scroll it
    /// (any other key closes it, as always).
    Help,
}

/// One binding: a key, what it does, and how it is shown.
#[derive(Debug, Clone)]
pub struct Binding {
    pub key: KeyCode,
    pub modifiers: KeyModifiers,
    pub mode: KeyMode,
    pub action: Action,
    /// Short label for the footer (`kill`); `None` keeps it out of the footer.
    pub hint: Option<Msg>,
    /// One line for the help screen (dialog keys have none: their hint is shown).
    pub help: Option<Msg>,
    /// Kept whatever the keys file says (Ctrl-C always quits).
    pub fixed: bool,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

const fn bind(key: KeyCode, action: Action, hint: Option<Msg>, help: Msg) -> Binding {
    Binding {
        key,
        modifiers: KeyModifiers::NONE,
        mode: KeyMode::Normal,
        action,
        hint,
        help: Some(help),
        fixed: false,
    }
}

/// A binding of a dialog's key: `hint` is its short label in the help line.
const fn in_mode(mode: KeyMode, key: KeyCode, action: Action, hint: Msg) -> Binding {
    Binding {
        key,
        modifiers: KeyModifiers::NONE,
        mode,
        action,
        hint: Some(hint),
        help: None,
        fixed: false,
    }
}

impl Default for Keymap {
    fn default() -> Self {
        use KeyCode::*;
        let bindings = vec![
            bind(Char('k'), Action::Kill, Some(Msg::HintKill), Msg::HelpKill),
            bind(
                Char('K'),
                Action::KillNode,
                Some(Msg::HintKillNode),
                Msg::HelpKillNode,
            ),
            bind(Char('F'), Action::FreezeNode, None, Msg::HelpFreezeNode),
            bind(
                Char('P'),
                Action::PartitionNode,
                None,
                Msg::HelpPartitionNode,
            ),
            bind(
                Char('x'),
                Action::OpenSignalMenu,
                Some(Msg::HintSignal),
                Msg::HelpSignal,
            ),
            bind(
                Char('i'),
                Action::Interrupt,
                Some(Msg::HintSigint),
                Msg::HelpInterrupt,
            ),
            bind(Char('t'), Action::Terminate, None, Msg::HelpTerminate),
            bind(
                Char('s'),
                Action::StartStop,
                Some(Msg::HintStartStop),
                Msg::HelpStartStop,
            ),
            bind(
                Char('r'),
                Action::Restart,
                Some(Msg::HintRestart),
                Msg::HelpRestart,
            ),
            bind(
                Char('a'),
                Action::ToggleAutoRestart,
                None,
                Msg::HelpAutoRestart,
            ),
            bind(Char('n'), Action::NewInstance, None, Msg::HelpNewInstance),
            bind(Char('c'), Action::AskResetNamespace, None, Msg::HelpReset),
            bind(Down, Action::SelectNext, None, Msg::HelpNext),
            bind(Char('j'), Action::SelectNext, None, Msg::HelpNext),
            bind(Up, Action::SelectPrev, None, Msg::HelpPrev),
            bind(Tab, Action::FocusNext, None, Msg::HelpFocus),
            bind(PageUp, Action::ScrollUp, None, Msg::HelpScrollUp),
            bind(PageDown, Action::ScrollDown, None, Msg::HelpScrollDown),
            bind(Char('f'), Action::Follow, None, Msg::HelpFollow),
            bind(Char('w'), Action::ToggleWrap, None, Msg::HelpWrap),
            bind(Char('/'), Action::StartSearch, None, Msg::HelpSearch),
            bind(Char('p'), Action::ToggleLayout, None, Msg::HelpLayout),
            bind(
                Char('?'),
                Action::ToggleHelp,
                Some(Msg::HintHelp),
                Msg::HelpHelp,
            ),
            bind(Char('q'), Action::Quit, Some(Msg::HintQuit), Msg::HelpQuit),
            bind(
                Char('Q'),
                Action::QuitLeaveRunning,
                None,
                Msg::HelpQuitLeave,
            ),
        ];
        let mut map = Keymap { bindings };
        map.bindings.push(Binding {
            key: KeyCode::Char('c'),
            modifiers: KeyModifiers::CONTROL,
            mode: KeyMode::Any,
            action: Action::Quit,
            hint: None,
            help: Some(Msg::HelpCtrlC),
            fixed: true,
        });
        use KeyMode::{Confirm, Found, Help, Search, SignalMenu};
        map.bindings.extend([
            in_mode(SignalMenu, Up, Action::MenuUp, Msg::KeyUp),
            in_mode(SignalMenu, Down, Action::MenuDown, Msg::KeyDown),
            in_mode(SignalMenu, Char('j'), Action::MenuDown, Msg::KeyDown),
            in_mode(SignalMenu, Enter, Action::MenuChoose, Msg::KeySend),
            in_mode(SignalMenu, Esc, Action::MenuClose, Msg::KeyClose),
            in_mode(SignalMenu, Char('q'), Action::MenuClose, Msg::KeyClose),
            in_mode(Confirm, Char('y'), Action::ConfirmYes, Msg::KeyYes),
            in_mode(Confirm, Char('Y'), Action::ConfirmYes, Msg::KeyYes),
            in_mode(Search, Enter, Action::SearchAccept, Msg::KeyFind),
            in_mode(Search, Esc, Action::SearchCancel, Msg::KeyClear),
            in_mode(Search, Backspace, Action::SearchDelete, Msg::KeyDelete),
            in_mode(Found, Char('n'), Action::SearchNext, Msg::KeyNextMatch),
            in_mode(Found, Char('N'), Action::SearchPrev, Msg::KeyPrevMatch),
            in_mode(Found, Esc, Action::SearchClear, Msg::KeyEndSearch),
            in_mode(Help, Down, Action::HelpDown, Msg::KeyDown),
            in_mode(Help, Char('j'), Action::HelpDown, Msg::KeyDown),
            in_mode(Help, Up, Action::HelpUp, Msg::KeyUp),
            in_mode(Help, Char('k'), Action::HelpUp, Msg::KeyUp),
        ]);
        map
    }
}

impl Keymap {
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The action bound to a key press on the dashboard, if any.
    pub fn action_for(&self, key: &KeyEvent) -> Option<Action> {
        self.action_in(KeyMode::Normal, key)
    }

    /// The action bound to a key press in `mode`: keys for every mode first.
    pub fn action_in(&self, mode: KeyMode, key: &KeyEvent) -> Option<Action> {
        self.global(key).or_else(|| self.find(mode, key))
    }

    /// The action of a key that means the same in every mode (Ctrl-C).
    pub fn global(&self, key: &KeyEvent) -> Option<Action> {
        self.find(KeyMode::Any, key)
    }

    fn find(&self, mode: KeyMode, key: &KeyEvent) -> Option<Action> {
        // Shifted letters arrive as uppercase chars; ignore SHIFT for them.
        let mods = key.modifiers - KeyModifiers::SHIFT;
        self.bindings
            .iter()
            .find(|b| b.mode == mode && b.key == key.code && b.modifiers == mods)
            .map(|b| b.action)
    }

    /// Footer hints: `k kill`, `x signal`, … in table order.
    pub fn hints(&self) -> Vec<(String, Msg)> {
        self.bindings
            .iter()
            .filter(|b| b.mode == KeyMode::Normal)
            .filter_map(|b| b.hint.map(|h| (key_name(b.key, b.modifiers), h)))
            .collect()
    }

    /// A mode's keys with their short labels, one per binding in table order.
    pub fn mode_keys(&self, mode: KeyMode) -> Vec<(String, Msg)> {
        self.bindings
            .iter()
            .filter(|b| b.mode == mode)
            .filter_map(|b| b.hint.map(|h| (key_name(b.key, b.modifiers), h)))
            .collect()
    }

    /// How the first key bound to `action` is written (`k`, `Ctrl-k`); `?` if none.
    pub fn key_for(&self, action: Action) -> String {
        self.bindings
            .iter()
            .find(|b| b.action == action)
            .map_or_else(|| "?".into(), |b| key_name(b.key, b.modifiers))
    }

    /// A dialog's keys for the help screen, one entry per action in table order:
    /// `↓/j down`.
    pub fn mode_hints(&self, mode: KeyMode, lang: Lang) -> Vec<String> {
        let mut out: Vec<(Action, Vec<String>, &'static str)> = Vec::new();
        for b in self.bindings.iter().filter(|b| b.mode == mode) {
            let name = key_name(b.key, b.modifiers);
            match out.iter_mut().find(|(a, _, _)| *a == b.action) {
                Some((_, keys, _)) => keys.push(name),
                None => out.push((b.action, vec![name], b.hint.map_or("", |h| h.text(lang)))),
            }
        }
        out.into_iter()
            .map(|(_, keys, hint)| format!("{} {hint}", keys.join("/")))
            .collect()
    }

    /// Rebinds `action` to `key` (from a config file); the old keys for that
    /// action are dropped. Fixed bindings (Ctrl-C) stay. A key that now means
    /// two things is found by [`Keymap::conflict`].
    pub fn rebind(&mut self, action: Action, key: KeyCode, modifiers: KeyModifiers) {
        let Some(first) = self
            .bindings
            .iter()
            .position(|b| b.action == action && !b.fixed)
        else {
            return;
        };
        let mut index = 0;
        self.bindings.retain(|b| {
            let keep = index == first || b.fixed || b.action != action;
            index += 1;
            keep
        });
        // The first binding keeps its place in the table, so hints keep their order.
        if let Some(b) = self
            .bindings
            .iter_mut()
            .find(|b| b.action == action && !b.fixed)
        {
            b.key = key;
            b.modifiers = modifiers;
        }
    }
}

impl Keymap {
    /// Two actions one key would trigger in one mode (a key of every mode,
    /// Ctrl-C, clashes with all of them): the first such pair in table order.
    pub fn conflict(&self) -> Option<(&Binding, &Binding)> {
        let overlaps = |a: &Binding, b: &Binding| {
            a.key == b.key
                && a.modifiers == b.modifiers
                && a.action != b.action
                && (a.mode == b.mode || a.mode == KeyMode::Any || b.mode == KeyMode::Any)
        };
        self.bindings.iter().enumerate().find_map(|(i, a)| {
            self.bindings[i + 1..]
                .iter()
                .find(|b| overlaps(a, b))
                .map(|b| (a, b))
        })
    }
}

/// Reads a keys file: `action = "key"` lines, e.g. `kill = "X"`,
/// `quit = "ctrl-q"` (action names: `Action::config_name`). Unknown actions
/// or keys are errors naming the line's action, so a typo never goes unseen.
pub fn load_keys_file(path: &std::path::Path, mut map: Keymap) -> Result<Keymap, String> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading the keys file {shown}: {e}"))?;
    let table: std::collections::BTreeMap<String, String> = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_at(&text, s.start));
        format!("keys file {shown}:{line}: {}", e.message().trim())
    })?;
    let line_of = |name: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(name))
            .map_or(1, |i| i + 1)
    };
    for (name, key) in &table {
        let line = line_of(name);
        let action = Action::ALL
            .into_iter()
            .find(|a| a.config_name() == name)
            .ok_or_else(|| format!("keys file {shown}:{line}: unknown action {name:?}"))?;
        let (code, mods) =
            parse_key(key).map_err(|e| format!("keys file {shown}:{line}: {name}: {e}"))?;
        map.rebind(action, code, mods);
    }
    // One key, one meaning: a rebinding that takes another action's key (or
    // Ctrl-C, which always quits) is refused, naming both.
    if let Some((a, b)) = map.conflict() {
        let key = key_name(a.key, a.modifiers);
        let (mine, other) = match table.contains_key(b.action.config_name()) && !b.fixed {
            true => (b, a),
            false => (a, b),
        };
        return Err(format!(
            "keys file {shown}:{}: {key} would be both {} and {}: bind one of them to another key",
            line_of(mine.action.config_name()),
            mine.action.config_name(),
            other.action.config_name(),
        ));
    }
    Ok(map)
}

/// The 1-based line of byte `offset` in `text`.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// How a key is written in hints and help (`k`, `↑`, `PgUp`, `Ctrl-c`).
pub fn key_name(key: KeyCode, modifiers: KeyModifiers) -> String {
    let base = match key {
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Backspace => "Backspace".into(),
        other => format!("{other:?}"),
    };
    if modifiers.contains(KeyModifiers::CONTROL) {
        format!("Ctrl-{base}")
    } else {
        base
    }
}

/// Parses a key as written in the config file: `k`, `K`, `ctrl-k`, `up`,
/// `pgdn`, `tab`, `f5`.
pub fn parse_key(text: &str) -> Result<(KeyCode, KeyModifiers), String> {
    let (mods, rest) = match text.to_ascii_lowercase().strip_prefix("ctrl-") {
        Some(_) => (KeyModifiers::CONTROL, &text[5..]),
        None => (KeyModifiers::NONE, text),
    };
    let code = match rest.to_ascii_lowercase().as_str() {
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "tab" => KeyCode::Tab,
        "pgup" | "pageup" => KeyCode::PageUp,
        "pgdn" | "pagedown" => KeyCode::PageDown,
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "backspace" => KeyCode::Backspace,
        f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
            KeyCode::F(f[1..].parse().unwrap_or(1))
        }
        _ => {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => KeyCode::Char(c),
                _ => return Err(format!("unknown key {text:?}")),
            }
        }
    };
    Ok((code, mods))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn one_key_kills_and_q_quits() {
        let map = Keymap::default();
        assert_eq!(
            map.action_for(&press(KeyCode::Char('k'))),
            Some(Action::Kill)
        );
        assert_eq!(
            map.action_for(&press(KeyCode::Char('q'))),
            Some(Action::Quit)
        );
        assert_eq!(
            map.action_for(&KeyEvent::new(KeyCode::Char('Q'), KeyModifiers::SHIFT)),
            Some(Action::QuitLeaveRunning)
        );
        assert_eq!(
            map.action_for(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(map.action_for(&press(KeyCode::Char('z'))), None);
    }

    /// The help's scroll keys are its own: `j`/`k` scroll it there, while on the
    /// dashboard `k` still kills; a keys file rebinds them like any other.
    #[test]
    fn the_help_scrolls_with_its_own_keys() {
        let mut map = Keymap::default();
        let help = |map: &Keymap, c| map.action_in(KeyMode::Help, &press(KeyCode::Char(c)));
        assert_eq!(help(&map, 'j'), Some(Action::HelpDown));
        assert_eq!(help(&map, 'k'), Some(Action::HelpUp));
        assert_eq!(
            map.action_for(&press(KeyCode::Char('k'))),
            Some(Action::Kill)
        );
        assert_eq!(
            map.mode_hints(KeyMode::Help, Lang::En),
            vec!["↓/j down", "↑/k up"]
        );
        map.rebind(Action::HelpUp, KeyCode::Char('u'), KeyModifiers::NONE);
        assert_eq!(help(&map, 'u'), Some(Action::HelpUp));
        assert_eq!(help(&map, 'k'), None);
    }

    #[test]
    fn hints_come_from_the_table_and_follow_a_rebind() {
        let mut map = Keymap::default();
        assert_eq!(map.hints()[0], ("k".to_string(), Msg::HintKill));
        let (code, mods) = parse_key("K").unwrap();
        map.rebind(Action::Kill, code, mods);
        assert_eq!(map.action_for(&press(KeyCode::Char('k'))), None);
        assert!(map.hints().contains(&("K".to_string(), Msg::HintKill)));
        assert_eq!(
            parse_key("ctrl-x").unwrap(),
            (KeyCode::Char('x'), KeyModifiers::CONTROL)
        );
        assert_eq!(parse_key("pgdn").unwrap().0, KeyCode::PageDown);
        assert!(parse_key("nope").is_err());
    }

    #[test]
    fn a_keys_file_rebinds_and_rejects_typos() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        std::fs::write(&path, "kill = \"X\"\nquit = \"ctrl-q\"\n").unwrap();
        let map = load_keys_file(&path, Keymap::default()).unwrap();
        assert_eq!(
            map.action_for(&KeyEvent::new(KeyCode::Char('X'), KeyModifiers::SHIFT)),
            Some(Action::Kill)
        );
        assert_eq!(
            map.action_for(&KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        std::fs::write(&path, "kil = \"K\"\n").unwrap();
        let err = load_keys_file(&path, Keymap::default()).unwrap_err();
        assert!(err.contains("unknown action \"kil\""), "{err}");
        assert!(err.contains(":1: unknown action"), "{err}");
    }

    #[test]
    fn the_default_keys_mean_one_thing_each() {
        assert!(Keymap::default().conflict().is_none());
    }

    /// A key taken from another action, or Ctrl-C, is refused naming both
    /// actions and the line; a syntax error names its line.
    #[test]
    fn a_keys_file_that_gives_one_key_two_meanings_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            load_keys_file(&path, Keymap::default())
        };
        let err = load("# mine\nkill = \"q\"\n").unwrap_err();
        assert!(err.contains(":2: q would be both kill and quit"), "{err}");
        let err = load("kill = \"x\"\n").unwrap_err();
        assert!(
            err.contains("x would be both kill and signal_menu"),
            "{err}"
        );
        let err = load("kill = \"ctrl-c\"\n").unwrap_err();
        assert!(err.contains("Ctrl-c would be both"), "{err}");
        assert!(err.contains("kill"), "{err}");
        // Moving quit away first makes q free for kill.
        let map = load("kill = \"q\"\nquit = \"ctrl-q\"\n").unwrap();
        assert_eq!(
            map.action_for(&press(KeyCode::Char('q'))),
            Some(Action::Kill)
        );
        let err = load("kill = \"X\"\nquit = [\n").unwrap_err();
        assert!(err.contains("keys.toml:2:"), "{err}");
    }
}
