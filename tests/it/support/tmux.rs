//! A private tmux server running one window: type into it, read its screen.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A `cols`×`rows` session running `command` (argv), on its own server so
    /// parallel tests never share one.
    pub fn start(cols: u16, rows: u16, command: &[String]) -> Tmux {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let socket = format!("plumdash-test-{}-{n}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "-L",
                &socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-s",
                "main",
            ])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .args(command)
            .status()
            .expect("tmux is installed (CI installs it)");
        assert!(status.success(), "tmux new-session failed");
        Tmux { socket }
    }

    /// A `cols`×`rows` session running the shell `argv` with `ps1` as its
    /// prompt, in the binaries' environment of their own (`own_env_args`:
    /// English unless the test says, XDG folders of its own), `TERM` for 256
    /// colours and `NO_COLOR` unset.
    pub fn shell_running(cols: u16, rows: u16, ps1: &str, argv: &[&str]) -> Tmux {
        let mut command = super::own_env_args();
        command.extend(["TERM=xterm-256color".to_string(), format!("PS1={ps1}")]);
        command.extend(argv.iter().map(|a| a.to_string()));
        Tmux::start(cols, rows, &command)
    }

    /// A plain `sh` with `$ ` as its prompt.
    pub fn shell(cols: u16, rows: u16) -> Tmux {
        Tmux::shell_running(cols, rows, "$ ", &["sh"])
    }

    /// Waits until the dashboard is gone and the shell's `$` prompt is back.
    pub fn wait_for_prompt(&self) {
        self.wait_for("the shell prompt", Duration::from_secs(10), |s| {
            (!s.contains("Recovery timeline") && s.trim_end().ends_with('$')).then_some(())
        });
    }

    pub fn send(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "main"])
            .args(keys)
            .status()
            .expect("tmux send-keys runs");
        assert!(status.success(), "tmux send-keys {keys:?}");
    }

    /// What the terminal was left in: `(alternate screen, cursor shown,
    /// mouse tracked)`, from tmux's own flags for the pane.
    pub fn modes(&self) -> (bool, bool, bool) {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "display-message", "-p", "-t", "main"])
            .arg("#{alternate_on} #{cursor_flag} #{mouse_any_flag}")
            .output()
            .expect("tmux display-message runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let flags: Vec<bool> = text.split_whitespace().map(|f| f == "1").collect();
        assert_eq!(flags.len(), 3, "tmux flags: {text:?}");
        (flags[0], flags[1], flags[2])
    }

    /// A server-wide option (`set -g window-style 'bg=white,fg=black'`).
    pub fn set(&self, option: &str, value: &str) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "set", "-g", option, value])
            .status()
            .expect("tmux set runs");
        assert!(status.success(), "tmux set {option} {value}");
    }

    /// Makes the window `cols`×`rows` (a smaller or larger terminal).
    pub fn resize(&self, cols: u16, rows: u16) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "resize-window", "-t", "main"])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .status()
            .expect("tmux resize-window runs");
        assert!(status.success(), "tmux resize-window {cols}x{rows}");
    }

    /// The screen with each character's colours and attributes (`capture-pane -e`).
    pub fn styled_screen(&self) -> Vec<Vec<Cell>> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-e", "-t", "main"])
            .output()
            .expect("tmux capture-pane runs");
        parse_styled(&String::from_utf8_lossy(&out.stdout))
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p", "-t", "main"])
            .output()
            .expect("tmux capture-pane runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `pick` finds something on the screen.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if let Some(found) = pick(&screen) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(40));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The progress % shown in the gauge (`50% · step_5 · counter 5`).
pub fn gauge_percent(screen: &str) -> Option<u32> {
    screen.lines().find_map(|line| {
        let i = line.find("% · step_")?;
        let digits: String = line[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.chars().rev().collect::<String>().parse().ok()
    })
}

/// A colour as the terminal was told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ink {
    /// The terminal's own (SGR 39 / 49).
    Default,
    /// One of the 16 ANSI colours (30–37, 90–97 and their backgrounds).
    Ansi(u8),
    /// `38;5;N`.
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// One character on the screen and how it is drawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub ch: char,
    pub fg: Ink,
    pub bg: Ink,
    pub bold: bool,
    pub reverse: bool,
}

impl Cell {
    /// (text, background) as they show: reverse video swaps them.
    pub fn shown(&self) -> (Ink, Ink) {
        if self.reverse {
            (self.bg, self.fg)
        } else {
            (self.fg, self.bg)
        }
    }
}

/// `capture-pane -e` output as rows of cells (SGR only; a wide character is
/// one cell here).
pub fn parse_styled(text: &str) -> Vec<Vec<Cell>> {
    let mut rows = Vec::new();
    let mut pen = Cell {
        ch: ' ',
        fg: Ink::Default,
        bg: Ink::Default,
        bold: false,
        reverse: false,
    };
    for line in text.lines() {
        let mut row = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\x1b' {
                row.push(Cell {
                    ch: c,
                    ..pen.clone()
                });
                continue;
            }
            if chars.next_if_eq(&'[').is_none() {
                continue;
            }
            let mut params = String::new();
            let mut end = ' ';
            for c in chars.by_ref() {
                if c.is_ascii_digit() || c == ';' || c == ':' {
                    params.push(c);
                } else {
                    end = c;
                    break;
                }
            }
            if end == 'm' {
                apply_sgr(&mut pen, &params);
            }
        }
        rows.push(row);
    }
    rows
}

fn apply_sgr(pen: &mut Cell, params: &str) {
    let nums: Vec<u16> = params
        .split([';', ':'])
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let mut i = 0;
    while i < nums.len() {
        let extended = |i: usize| match nums.get(i + 1) {
            Some(5) => (nums.get(i + 2).map(|n| Ink::Indexed(*n as u8)), 3),
            Some(2) => {
                let c = |k: usize| nums.get(i + k).copied().unwrap_or(0) as u8;
                (Some(Ink::Rgb(c(2), c(3), c(4))), 5)
            }
            _ => (None, 1),
        };
        match nums[i] {
            0 => {
                pen.fg = Ink::Default;
                pen.bg = Ink::Default;
                pen.bold = false;
                pen.reverse = false;
            }
            1 => pen.bold = true,
            22 => pen.bold = false,
            7 => pen.reverse = true,
            27 => pen.reverse = false,
            n @ 30..=37 => pen.fg = Ink::Ansi(n as u8 - 30),
            n @ 90..=97 => pen.fg = Ink::Ansi(n as u8 - 90 + 8),
            n @ 40..=47 => pen.bg = Ink::Ansi(n as u8 - 40),
            n @ 100..=107 => pen.bg = Ink::Ansi(n as u8 - 100 + 8),
            39 => pen.fg = Ink::Default,
            49 => pen.bg = Ink::Default,
            38 | 48 => {
                let (ink, used) = extended(i);
                if let Some(ink) = ink {
                    if nums[i] == 38 {
                        pen.fg = ink;
                    } else {
                        pen.bg = ink;
                    }
                }
                i += used - 1;
            }
            _ => {}
        }
        i += 1;
    }
}

/// Types `ENV plumdash ARGS --db DB --listen 127.0.0.1:PORT` (a free port) at
/// the shell's prompt and presses Enter.
pub fn type_plumdash(tmux: &Tmux, env: &str, args: &str, db: &std::path::Path) {
    let port = super::free_port();
    let cmd = format!(
        "{env}{} {args} --db {} --listen 127.0.0.1:{port}",
        super::PLUMDASH,
        db.display()
    );
    tmux.send(&[&cmd, "Enter"]);
}
