//! `demo.tape` cannot rot: this parses it (the vhs commands it may use) and
//! replays it against the real binary in tmux, at the tape's size, failing
//! when a `Wait` does not match in time or the tape does not end at the shell.
//!
//! What the replay changes, and nothing else:
//! - inside `Hide` … `Show`, a typed `cargo build …` becomes `true`: cargo
//!   test has built the binaries already (and a nested release build would
//!   take minutes);
//! - inside `Hide` … `Show`, `$PWD/target/release` becomes the folder of the
//!   binaries cargo built for this test (`CARGO_BIN_EXE_plumdash`);
//! - `Sleep`s are scaled by `SLEEP_SCALE` (they only pace the recording);
//!   `Wait`s keep their timeouts and must really match;
//! - typing is instant (TypingSpeed is for the recording).
//!
//! Size: vhs renders `Width`×`Height` pixels with `Padding` on each side; a
//! cell is taken as 0.6 × FontSize wide and 1.3 × FontSize high (a monospace
//! advance is ~0.6 em; 1.3 is a conservative line height, so the replay is
//! never roomier than the recording). 1200×800 at 14 px, padding 10 →
//! 140×42.
//!
//! `DEMO_TAPE_CAST=/abs/file.cast` records the replay with asciinema at full
//! speed (no sleep scaling, typed at TypingSpeed) and writes the time the
//! tape says `Show` to `/abs/file.cast.show`: that is how `assets/demo.gif`
//! is made where vhs is not available (see `assets/README.md`).

use crate::support::tmux::Tmux;
use crate::support::{need, PLUMDASH};
use regex::Regex;
use std::path::Path;
use std::time::{Duration, Instant};

/// Sleeps are this much shorter in the replay.
const SLEEP_SCALE: f64 = 0.25;
/// vhs's defaults.
const DEFAULT_WAIT: Duration = Duration::from_secs(15);
const DEFAULT_PROMPT: &str = ">$";

#[derive(Debug, Clone, PartialEq)]
enum Cmd {
    Output(String),
    Set(String, String),
    Type(String),
    /// A named key (tmux's name for it), pressed `count` times.
    Key(&'static str, usize),
    Ctrl(char),
    Sleep(Duration),
    Wait {
        screen: bool,
        timeout: Option<Duration>,
        regex: Option<String>,
    },
    Hide,
    Show,
    Screenshot(String),
}

#[derive(Debug, Clone, PartialEq)]
struct TapeLine {
    no: usize,
    cmd: Cmd,
}

/// `500ms`, `2s`, `1.5s`, `10m`, or a bare number of seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let (num, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration {text:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {text:?}")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// One quoted string: "…", '…' or `…`.
fn quoted(text: &str) -> Result<String, String> {
    let text = text.trim();
    let mut chars = text.chars();
    match chars.next() {
        Some(q @ ('"' | '\'' | '`')) if text.len() >= 2 && text.ends_with(q) => {
            Ok(text[1..text.len() - 1].to_string())
        }
        _ => Err(format!("expected a quoted string, got {text:?}")),
    }
}

/// `Name[@speed] [count]` for key commands.
fn key_count(rest: &str) -> Result<usize, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(1);
    }
    rest.parse()
        .map_err(|_| format!("bad repeat count {rest:?}"))
}

fn parse_line(line: &str) -> Result<Option<Cmd>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    // Strip a `@speed` from the command word (`Type@50ms`, `Enter@100ms`).
    let (name, speed) = match word.split_once('@') {
        Some((n, s)) if !n.starts_with("Wait") => (n, Some(s)),
        _ => (word, None),
    };
    if let Some(s) = speed {
        duration(s)?;
    }
    let key = |tmux: &'static str| key_count(rest).map(|n| Some(Cmd::Key(tmux, n)));
    match name {
        "Output" if !rest.is_empty() => Ok(Some(Cmd::Output(rest.to_string()))),
        "Set" => {
            let (setting, value) = rest
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("Set needs a setting and a value: {rest:?}"))?;
            let value = value.trim();
            let value = quoted(value).unwrap_or_else(|_| value.to_string());
            Ok(Some(Cmd::Set(setting.to_string(), value)))
        }
        "Type" => Ok(Some(Cmd::Type(quoted(rest)?))),
        "Enter" => key("Enter"),
        "Escape" => key("Escape"),
        "Up" => key("Up"),
        "Down" => key("Down"),
        "Left" => key("Left"),
        "Right" => key("Right"),
        "Tab" => key("Tab"),
        "Space" => key("Space"),
        "Backspace" => key("BSpace"),
        "Sleep" => Ok(Some(Cmd::Sleep(duration(rest)?))),
        "Hide" if rest.is_empty() => Ok(Some(Cmd::Hide)),
        "Show" if rest.is_empty() => Ok(Some(Cmd::Show)),
        "Screenshot" if !rest.is_empty() => Ok(Some(Cmd::Screenshot(rest.to_string()))),
        _ if name.starts_with("Ctrl+") => {
            let mut k = name["Ctrl+".len()..].chars();
            match (k.next(), k.next()) {
                (Some(c), None) if c.is_ascii_alphabetic() => {
                    Ok(Some(Cmd::Ctrl(c.to_ascii_lowercase())))
                }
                _ => Err(format!("unsupported control key {name:?}")),
            }
        }
        _ if word.starts_with("Wait") => {
            let mut opts = &word["Wait".len()..];
            let mut screen = false;
            if let Some(r) = opts.strip_prefix("+Screen") {
                screen = true;
                opts = r;
            } else if let Some(r) = opts.strip_prefix("+Line") {
                opts = r;
            }
            let timeout = match opts {
                "" => None,
                o => Some(duration(o.strip_prefix('@').ok_or_else(|| {
                    format!("expected Wait[+Screen|+Line][@timeout], got {word:?}")
                })?)?),
            };
            let regex = if rest.is_empty() {
                None
            } else if rest.len() >= 2 && rest.starts_with('/') && rest.ends_with('/') {
                let r = &rest[1..rest.len() - 1];
                Regex::new(r).map_err(|e| format!("bad regex /{r}/: {e}"))?;
                Some(r.to_string())
            } else {
                return Err(format!("expected /regex/ after Wait, got {rest:?}"));
            };
            Ok(Some(Cmd::Wait {
                screen,
                timeout,
                regex,
            }))
        }
        _ => Err(format!("unknown command {word:?}")),
    }
}

/// Parses a tape; an unknown or malformed command fails with its line number.
fn parse(text: &str) -> Result<Vec<TapeLine>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(cmd)) => out.push(TapeLine { no: i + 1, cmd }),
            Ok(None) => {}
            Err(e) => return Err(format!("demo.tape line {}: {e}", i + 1)),
        }
    }
    Ok(out)
}

/// Terminal columns and rows for the tape's pixel size (see the module doc).
fn geometry(tape: &[TapeLine]) -> (u16, u16) {
    let set = |name: &str, default: f64| {
        tape.iter()
            .find_map(|l| match &l.cmd {
                Cmd::Set(n, v) if n == name => v.parse::<f64>().ok(),
                _ => None,
            })
            .unwrap_or(default)
    };
    // vhs's defaults.
    let (w, h, font, pad) = (
        set("Width", 1200.0),
        set("Height", 600.0),
        set("FontSize", 22.0),
        set("Padding", 60.0),
    );
    let cols = ((w - 2.0 * pad) / (0.6 * font)).floor();
    let rows = ((h - 2.0 * pad) / (1.3 * font)).floor();
    (cols as u16, rows as u16)
}

fn setting<'a>(tape: &'a [TapeLine], name: &str) -> Option<&'a str> {
    tape.iter().find_map(|l| match &l.cmd {
        Cmd::Set(n, v) if n == name => Some(v.as_str()),
        _ => None,
    })
}

/// Like vhs: a plain shell with `> ` as its prompt (recorded by asciinema
/// into `cast` when given).
fn start_shell(cols: u16, rows: u16, shell: &str, cast: Option<&str>) -> Tmux {
    let shell_cmd = match shell {
        "bash" => "bash --noprofile --norc",
        other => other,
    };
    match cast {
        Some(path) => Tmux::shell_running(
            cols,
            rows,
            "> ",
            &[
                "asciinema",
                "rec",
                "--overwrite",
                "-q",
                "-c",
                shell_cmd,
                path,
            ],
        ),
        None => {
            let argv: Vec<&str> = shell_cmd.split(' ').collect();
            Tmux::shell_running(cols, rows, "> ", &argv)
        }
    }
}

fn last_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_end()
}

/// Replays the tape; returns the final screen.
fn replay(tape: &[TapeLine], bin_dir: &Path, cast: Option<&str>) -> String {
    let (cols, rows) = geometry(tape);
    let shell = setting(tape, "Shell").unwrap_or("bash");
    let wait_default = setting(tape, "WaitTimeout")
        .map(|t| duration(t).unwrap())
        .unwrap_or(DEFAULT_WAIT);
    let typing = setting(tape, "TypingSpeed")
        .map(|t| duration(t).unwrap())
        .unwrap_or(Duration::from_millis(50));
    let prompt = setting(tape, "WaitPattern").unwrap_or(DEFAULT_PROMPT);
    let sleep_scale = if cast.is_some() { 1.0 } else { SLEEP_SCALE };
    let started = Instant::now();
    let tmux = start_shell(cols, rows, shell, cast);
    // Like vhs, start typing once the shell is ready.
    let ready = Instant::now() + Duration::from_secs(10);
    while !Regex::new(prompt)
        .unwrap()
        .is_match(last_line(&tmux.screen()))
    {
        assert!(Instant::now() < ready, "the shell did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut hidden = false;
    for line in tape {
        match &line.cmd {
            Cmd::Output(_) | Cmd::Set(..) | Cmd::Screenshot(_) => {}
            Cmd::Hide => hidden = true,
            Cmd::Show => {
                hidden = false;
                if let Some(cast) = cast {
                    let at = started.elapsed().as_secs_f64();
                    std::fs::write(format!("{cast}.show"), format!("{at:.3}\n")).unwrap();
                }
            }
            Cmd::Type(text) => {
                let text = if hidden && text.starts_with("cargo build") {
                    "true".to_string()
                } else if hidden {
                    text.replace("$PWD/target/release", &bin_dir.display().to_string())
                } else {
                    assert!(
                        !text.contains("cargo build") && !text.contains("target/release"),
                        "line {}: the visible part runs what the tape says",
                        line.no
                    );
                    text.clone()
                };
                if cast.is_some() && !hidden {
                    for c in text.chars() {
                        tmux.send(&["-l", &c.to_string()]);
                        std::thread::sleep(typing);
                    }
                } else {
                    tmux.send(&["-l", &text]);
                }
            }
            Cmd::Key(key, n) => {
                for _ in 0..*n {
                    tmux.send(&[key]);
                }
            }
            Cmd::Ctrl(c) => tmux.send(&[&format!("C-{c}")]),
            Cmd::Sleep(d) => std::thread::sleep(d.mul_f64(sleep_scale)),
            Cmd::Wait {
                screen,
                timeout,
                regex,
            } => {
                let pattern = regex.as_deref().unwrap_or(prompt);
                let re = Regex::new(pattern).unwrap();
                let deadline = Instant::now() + timeout.unwrap_or(wait_default);
                loop {
                    let shown = tmux.screen();
                    let target = if *screen { &shown } else { last_line(&shown) };
                    if re.is_match(target) {
                        eprintln!(
                            "line {:>2} +{:>5.1}s  matched /{pattern}/",
                            line.no,
                            started.elapsed().as_secs_f64()
                        );
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "demo.tape line {}: Wait{} /{pattern}/ did not match in time; screen:\n{shown}",
                        line.no,
                        if *screen { "+Screen" } else { "" }
                    );
                    std::thread::sleep(Duration::from_millis(30));
                }
            }
        }
    }
    tmux.screen()
}

#[test]
fn the_parser_reads_every_command_the_tape_may_use() {
    let tape = parse(
        "# comment\n\
         Output assets/demo.gif\n\
         Set Shell \"bash\"\n\
         Set FontSize 14\n\
         Type@20ms `echo \"hi\"`\n\
         Enter\n\
         Backspace 3\n\
         Sleep 1.5s\n\
         Sleep 500ms\n\
         Wait\n\
         Wait+Screen@5s /RESUMED from \\d+%/\n\
         Wait+Line /x/\n\
         Ctrl+C\n\
         Escape\n\
         Up\n\
         Down 2\n\
         Tab\n\
         Hide\n\
         Show\n\
         Screenshot assets/x.png\n",
    )
    .unwrap();
    let cmds: Vec<Cmd> = tape.iter().map(|l| l.cmd.clone()).collect();
    assert_eq!(
        cmds,
        vec![
            Cmd::Output("assets/demo.gif".into()),
            Cmd::Set("Shell".into(), "bash".into()),
            Cmd::Set("FontSize".into(), "14".into()),
            Cmd::Type("echo \"hi\"".into()),
            Cmd::Key("Enter", 1),
            Cmd::Key("BSpace", 3),
            Cmd::Sleep(Duration::from_millis(1500)),
            Cmd::Sleep(Duration::from_millis(500)),
            Cmd::Wait {
                screen: false,
                timeout: None,
                regex: None
            },
            Cmd::Wait {
                screen: true,
                timeout: Some(Duration::from_secs(5)),
                regex: Some("RESUMED from \\d+%".into())
            },
            Cmd::Wait {
                screen: false,
                timeout: None,
                regex: Some("x".into())
            },
            Cmd::Ctrl('c'),
            Cmd::Key("Escape", 1),
            Cmd::Key("Up", 1),
            Cmd::Key("Down", 2),
            Cmd::Key("Tab", 1),
            Cmd::Hide,
            Cmd::Show,
            Cmd::Screenshot("assets/x.png".into()),
        ]
    );
    assert_eq!(tape[1].no, 3, "line numbers count comments and blanks");
}

#[test]
fn an_unknown_or_malformed_command_fails_with_its_line_number() {
    let err = parse("Set FontSize 14\n\nTyp \"oops\"\n").unwrap_err();
    assert_eq!(err, "demo.tape line 3: unknown command \"Typ\"");
    let err = parse("Type no quotes\n").unwrap_err();
    assert!(
        err.starts_with("demo.tape line 1: expected a quoted string"),
        "{err}"
    );
    let err = parse("Enter\nWait+Screen /(unclosed/\n").unwrap_err();
    assert!(err.starts_with("demo.tape line 2: bad regex"), "{err}");
    let err = parse("Sleep 3 parsecs\n").unwrap_err();
    assert!(err.starts_with("demo.tape line 1: bad duration"), "{err}");
}

#[test]
fn the_tape_size_maps_to_columns_and_rows() {
    let tape = parse("Set Width 1200\nSet Height 800\nSet FontSize 14\nSet Padding 10\n").unwrap();
    assert_eq!(geometry(&tape), (140, 42));
}

/// A tape at the repository root, parsed.
fn tape(name: &str) -> Vec<TapeLine> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn demo_tape() -> Vec<TapeLine> {
    tape("demo.tape")
}

#[test]
fn demo_tape_has_the_settings_and_hides_the_build() {
    let tape = demo_tape();
    assert!(tape
        .iter()
        .any(|l| l.cmd == Cmd::Output("assets/demo.gif".into())));
    for name in [
        "Shell",
        "FontSize",
        "Width",
        "Height",
        "Theme",
        "Padding",
        "Framerate",
    ] {
        assert!(setting(&tape, name).is_some(), "demo.tape sets {name}");
    }
    let hide = tape.iter().position(|l| l.cmd == Cmd::Hide).unwrap();
    let show = tape.iter().position(|l| l.cmd == Cmd::Show).unwrap();
    let build = tape
        .iter()
        .position(|l| matches!(&l.cmd, Cmd::Type(t) if t.starts_with("cargo build --release")))
        .expect("the tape builds the release binary");
    assert!(hide < build && build < show, "the build is hidden");
    // The story is paced by the screen, not by guessed sleeps.
    let sleeps: Duration = tape
        .iter()
        .filter_map(|l| match l.cmd {
            Cmd::Sleep(d) => Some(d),
            _ => None,
        })
        .sum();
    assert!(sleeps < Duration::from_secs(10), "{sleeps:?} of sleeps");
    let waits = tape
        .iter()
        .filter(|l| matches!(l.cmd, Cmd::Wait { regex: Some(_), .. }))
        .count();
    assert!(waits >= 10, "{waits} screen waits");
}

#[test]
fn demo_tape_replays_against_the_real_binary() {
    replays("demo.tape", std::env::var("DEMO_TAPE_CAST").ok());
}

/// The node failover's tape: two agents, `K` kills nodeA, the work resumes on nodeB.
#[test]
fn failover_tape_replays_against_the_real_binary() {
    let failover = tape("failover.tape");
    assert!(failover
        .iter()
        .any(|l| l.cmd == Cmd::Output("assets/failover.gif".into())));
    assert!(
        failover
            .iter()
            .any(|l| matches!(&l.cmd, Cmd::Type(t) if t.starts_with("plumdash tour --nodes 2"))),
        "the tape runs two nodes"
    );
    replays("failover.tape", std::env::var("FAILOVER_TAPE_CAST").ok());
}

fn replays(name: &str, cast: Option<String>) {
    let tools: &[&str] = match cast {
        Some(_) => &["tmux", "asciinema"],
        None => &["tmux"],
    };
    if !need(tools) {
        return;
    }
    let tape = tape(name);
    let bin = Path::new(PLUMDASH);
    let started = Instant::now();
    let screen = replay(&tape, bin.parent().unwrap(), cast.as_deref());
    // The dashboard is gone and the shell is back.
    assert!(
        !screen.contains("Recovery timeline")
            && Regex::new(DEFAULT_PROMPT)
                .unwrap()
                .is_match(last_line(&screen)),
        "the tape ends at the shell prompt; screen:\n{screen}"
    );
    eprintln!("{name} replayed in {:?}", started.elapsed());
}
