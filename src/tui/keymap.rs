//! Keys as data: one table maps keys to actions, and the footer hints and
//! the help screen are generated from the same table.

use super::action::Action;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One binding: a key, what it does, and how it is shown.
#[derive(Debug, Clone)]
pub struct Binding {
    pub key: KeyCode,
    pub modifiers: KeyModifiers,
    pub action: Action,
    /// Short label for the footer (`kill`); `None` keeps it out of the footer.
    pub hint: Option<&'static str>,
    /// One line for the help screen.
    pub help: &'static str,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

const fn bind(
    key: KeyCode,
    action: Action,
    hint: Option<&'static str>,
    help: &'static str,
) -> Binding {
    Binding {
        key,
        modifiers: KeyModifiers::NONE,
        action,
        hint,
        help,
    }
}

impl Default for Keymap {
    fn default() -> Self {
        use KeyCode::*;
        let bindings = vec![
            bind(
                Char('k'),
                Action::Kill,
                Some("kill"),
                "SIGKILL the selected instance (the demo: it restarts and resumes)",
            ),
            bind(
                Char('x'),
                Action::OpenSignalMenu,
                Some("signal"),
                "choose a signal to send (SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGSTOP, SIGCONT)",
            ),
            bind(
                Char('i'),
                Action::Interrupt,
                Some("SIGINT"),
                "SIGINT: graceful stop, the crash flag is cleared",
            ),
            bind(Char('t'), Action::Terminate, None, "SIGTERM: graceful stop"),
            bind(
                Char('s'),
                Action::StartStop,
                Some("start/stop"),
                "start the selected instance, or stop it gracefully",
            ),
            bind(
                Char('r'),
                Action::Restart,
                Some("restart"),
                "restart the selected instance (counted as manual)",
            ),
            bind(
                Char('a'),
                Action::ToggleAutoRestart,
                None,
                "automatic restart on/off for the selected instance",
            ),
            bind(Char('n'), Action::NewInstance, None, "start a new instance"),
            bind(
                Char('c'),
                Action::AskResetNamespace,
                None,
                "reset the namespace (asks first)",
            ),
            bind(
                Down,
                Action::SelectNext,
                None,
                "select the next instance (also j)",
            ),
            bind(
                Char('j'),
                Action::SelectNext,
                None,
                "select the next instance",
            ),
            bind(
                Up,
                Action::SelectPrev,
                None,
                "select the previous instance (k is kill, so ↑ only)",
            ),
            bind(
                Tab,
                Action::FocusNext,
                None,
                "move focus: instances → namespace → timeline → log",
            ),
            bind(PageUp, Action::ScrollUp, None, "scroll the focused pane up"),
            bind(
                PageDown,
                Action::ScrollDown,
                None,
                "scroll the focused pane down (log: to the end resumes follow)",
            ),
            bind(
                Char('f'),
                Action::Follow,
                None,
                "log: follow the newest lines again",
            ),
            bind(
                Char('w'),
                Action::ToggleWrap,
                None,
                "log: wrap long lines on/off",
            ),
            bind(Char('/'), Action::StartSearch, None, "search the log"),
            bind(Char('?'), Action::ToggleHelp, Some("help"), "this help"),
            bind(
                Char('q'),
                Action::Quit,
                Some("quit"),
                "quit: stop owned workers gracefully (flags cleared)",
            ),
            bind(
                Char('Q'),
                Action::QuitLeaveRunning,
                None,
                "quit and leave workers running",
            ),
        ];
        let mut map = Keymap { bindings };
        map.bindings.push(Binding {
            key: KeyCode::Char('c'),
            modifiers: KeyModifiers::CONTROL,
            action: Action::Quit,
            hint: None,
            help: "quit (as q)",
        });
        map
    }
}

impl Keymap {
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The action bound to a key press, if any.
    pub fn action_for(&self, key: &KeyEvent) -> Option<Action> {
        // Shifted letters arrive as uppercase chars; ignore SHIFT for them.
        let mods = key.modifiers - KeyModifiers::SHIFT;
        self.bindings
            .iter()
            .find(|b| b.key == key.code && b.modifiers == mods)
            .map(|b| b.action)
    }

    /// Footer hints: `k kill`, `x signal`, … in table order.
    pub fn hints(&self) -> Vec<(String, &'static str)> {
        self.bindings
            .iter()
            .filter_map(|b| b.hint.map(|h| (key_name(b.key, b.modifiers), h)))
            .collect()
    }

    /// Rebinds `action` to `key` (from a config file); the old keys for that
    /// action are dropped.
    pub fn rebind(&mut self, action: Action, key: KeyCode, modifiers: KeyModifiers) {
        let template = self.bindings.iter().find(|b| b.action == action).cloned();
        self.bindings.retain(|b| b.action != action);
        self.bindings
            .retain(|b| !(b.key == key && b.modifiers == modifiers));
        if let Some(mut b) = template {
            b.key = key;
            b.modifiers = modifiers;
            self.bindings.push(b);
        }
    }
}

/// Where the keys file is looked for when none is given.
pub fn default_keys_path() -> Option<std::path::PathBuf> {
    dirs::config_dir().map(|d| d.join("plumdash").join("keys.toml"))
}

/// Reads a keys file: `action = "key"` lines, e.g. `kill = "K"`,
/// `quit = "ctrl-q"` (action names: `Action::config_name`). Unknown actions
/// or keys are errors naming the line's action, so a typo never goes unseen.
pub fn load_keys_file(path: &std::path::Path, mut map: Keymap) -> Result<Keymap, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading the keys file {}: {e}", path.display()))?;
    let table: std::collections::BTreeMap<String, String> = toml::from_str(&text)
        .map_err(|e| format!("keys file {}: {}", path.display(), e.message()))?;
    for (name, key) in table {
        let action = Action::ALL
            .into_iter()
            .find(|a| a.config_name() == name)
            .ok_or_else(|| format!("keys file {}: unknown action {name:?}", path.display()))?;
        let (code, mods) =
            parse_key(&key).map_err(|e| format!("keys file {}: {name}: {e}", path.display()))?;
        map.rebind(action, code, mods);
    }
    Ok(map)
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

    #[test]
    fn hints_come_from_the_table_and_follow_a_rebind() {
        let mut map = Keymap::default();
        assert_eq!(map.hints()[0], ("k".to_string(), "kill"));
        let (code, mods) = parse_key("K").unwrap();
        map.rebind(Action::Kill, code, mods);
        assert_eq!(map.action_for(&press(KeyCode::Char('k'))), None);
        assert!(map.hints().contains(&("K".to_string(), "kill")));
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
        std::fs::write(&path, "kill = \"K\"\nquit = \"ctrl-q\"\n").unwrap();
        let map = load_keys_file(&path, Keymap::default()).unwrap();
        assert_eq!(
            map.action_for(&KeyEvent::new(KeyCode::Char('K'), KeyModifiers::SHIFT)),
            Some(Action::Kill)
        );
        assert_eq!(
            map.action_for(&KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        std::fs::write(&path, "kil = \"K\"\n").unwrap();
        let err = load_keys_file(&path, Keymap::default()).unwrap_err();
        assert!(err.contains("unknown action \"kil\""), "{err}");
    }
}
