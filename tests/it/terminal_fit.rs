//! The dashboard fits the terminal in front of the room, read back from a
//! real one (tmux): its colours follow the terminal's background (OSC 11,
//! then `COLORFGBG`) and every letter on screen reads at 4.5:1 or more.

use crate::support::need;
use crate::support::tmux::{gauge_percent, type_plumdash, Cell, Ink, Tmux};
use plumdash::tui::theme::{contrast, rgb};
use ratatui::style::Color;
use std::time::Duration;

const WHITE: (u8, u8, u8) = (255, 255, 255);
const BLACK: (u8, u8, u8) = (0, 0, 0);

/// Every letter or digit drawn below 4.5:1, the terminal's own colours
/// standing in as `(fg, bg)`; a colour from the 16 the terminal chooses
/// itself is a failure too (its value is unknown).
fn low_contrast(screen: &[Vec<Cell>], (fg0, bg0): ((u8, u8, u8), (u8, u8, u8))) -> Vec<String> {
    let value = |ink: Ink, default| match ink {
        Ink::Default => Some(default),
        Ink::Indexed(n) => rgb(Color::Indexed(n)),
        Ink::Rgb(r, g, b) => Some((r, g, b)),
        Ink::Ansi(_) => None,
    };
    let mut bad = Vec::new();
    for (y, row) in screen.iter().enumerate() {
        for (x, cell) in row.iter().enumerate() {
            if !cell.ch.is_alphanumeric() {
                continue;
            }
            let (fg, bg) = cell.shown();
            // Reverse video of the terminal's own pair is its pair swapped.
            let (fg_default, bg_default) = if cell.reverse { (bg0, fg0) } else { (fg0, bg0) };
            match (value(fg, fg_default), value(bg, bg_default)) {
                (Some(f), Some(b)) if contrast(f, b) >= 4.5 => {}
                (f, b) => {
                    let line: String = row.iter().map(|c| c.ch).collect();
                    bad.push(format!(
                        "row {y} col {x} {:?} {fg:?} on {bg:?} ({}) in {line:?}",
                        cell.ch,
                        f.zip(b).map_or("16-colour".into(), |(f, b)| format!(
                            "{:.1}:1",
                            contrast(f, b)
                        ))
                    ));
                }
            }
        }
    }
    bad
}

/// The colour the pane titles are drawn in (`Instances`).
fn title_ink(screen: &[Vec<Cell>]) -> Option<Ink> {
    screen.iter().find_map(|row| {
        let line: String = row.iter().map(|c| c.ch).collect();
        let b = line.find(" Instances (")?;
        let i = line[..b].chars().count() + 1;
        Some(row[i].fg)
    })
}

/// On a white terminal (tmux's `window-style`, which tmux reports to OSC 11)
/// plumdash picks the light theme by itself: through a run, a kill, the
/// countdown and the resume, every letter reads at 4.5:1 on white.
#[test]
fn a_white_terminal_gets_the_light_theme_and_every_letter_reads() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(100, 30);
    tmux.set("window-style", "bg=white,fg=black");
    let args = "--step 250ms --restart-delay 1s --no-mouse";
    type_plumdash(&tmux, "", args, &dir.path().join("kv.db"));
    let mut failures = Vec::new();
    let mut check = |tmux: &Tmux| {
        let screen = tmux.styled_screen();
        failures.extend(low_contrast(&screen, (BLACK, WHITE)));
        screen
    };
    tmux.wait_for("RUNNING at ≥ 30%", Duration::from_secs(20), |s| {
        check(&tmux);
        gauge_percent(s).filter(|p| s.contains("RUNNING") && (30..=70).contains(p))
    });
    let screen = check(&tmux);
    assert_eq!(
        title_ink(&screen),
        Some(Ink::Indexed(24)),
        "the light accent"
    );
    tmux.send(&["k"]);
    tmux.wait_for("CRASHED with its countdown", Duration::from_secs(5), |s| {
        check(&tmux);
        (s.contains("CRASHED") && s.contains("↻")).then_some(())
    });
    tmux.wait_for("RESUMED", Duration::from_secs(10), |s| {
        check(&tmux);
        (s.contains("RESUMED from") && s.contains("lost 0")).then_some(())
    });
    check(&tmux);
    failures.dedup();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    tmux.send(&["q"]);
    tmux.wait_for_prompt();
}

/// A terminal that does not answer OSC 11 (tmux with no colours of its own)
/// is read from `COLORFGBG` (`0;15`: black on white), else taken as dark;
/// `--theme` overrides both.
#[test]
fn colorfgbg_decides_when_the_terminal_does_not_answer_and_theme_overrides() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    let tmux = Tmux::shell(100, 30);
    let runs = [
        ("COLORFGBG='0;15' ", "", 24, (BLACK, WHITE)),
        ("", "", 81, (WHITE, BLACK)),
        ("COLORFGBG='0;15' ", "--theme dark ", 81, (WHITE, BLACK)),
    ];
    for (env, theme, accent, pair) in runs {
        tmux.send(&["clear", "Enter"]);
        type_plumdash(&tmux, env, &format!("{theme}--step 1s --no-mouse"), &db);
        tmux.wait_for("RUNNING", Duration::from_secs(20), |s| {
            s.contains("RUNNING").then_some(())
        });
        let screen = tmux.styled_screen();
        assert_eq!(
            title_ink(&screen),
            Some(Ink::Indexed(accent)),
            "{env}{theme}"
        );
        let failures = low_contrast(&screen, pair);
        assert!(failures.is_empty(), "{env}{theme}: {}", failures.join("\n"));
        tmux.send(&["q"]);
        tmux.wait_for_prompt();
    }
}

/// At 60×20 the full layout cannot show the flag box and the progress label
/// side by side: the presenter layout comes by itself and its footer says so;
/// `p` shows the full layout anyway and `p` again goes back. Made 80×24, the
/// full layout returns by itself with every namespace key whole (not two rows
/// reading `app.crash`) and, after a kill, the cycle's figures uncut.
#[test]
fn a_small_terminal_gets_the_presenter_layout_and_says_so() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(60, 20);
    let args = "--step 300ms --restart-delay 300ms --no-mouse";
    type_plumdash(&tmux, "", args, &dir.path().join("kv.db"));
    let screen = tmux.wait_for(
        "the presenter layout by itself",
        Duration::from_secs(20),
        |s| {
            // The flag whole, once the worker has set it.
            (s.contains("small screen: presenter layout")
                && s.contains("app.crashed ARMED (running)"))
            .then(|| s.to_string())
        },
    );
    assert!(screen.contains("p full"), "{screen}");
    tmux.send(&["p"]);
    tmux.wait_for("the full layout, asked for", Duration::from_secs(5), |s| {
        (s.contains("Namespace") && !s.contains("small screen")).then_some(())
    });
    tmux.send(&["p"]);
    tmux.wait_for("the presenter layout again", Duration::from_secs(5), |s| {
        (s.contains("┏ State") && !s.contains("Namespace")).then_some(())
    });
    tmux.send(&["q"]);
    tmux.wait_for_prompt();

    tmux.resize(80, 24);
    tmux.send(&["clear", "Enter"]);
    type_plumdash(
        &tmux,
        "",
        &format!("{args} --fresh"),
        &dir.path().join("kv.db"),
    );
    let at = tmux.wait_for(
        "RUNNING at ≥ 30% in the full layout",
        Duration::from_secs(20),
        |s| {
            gauge_percent(s)
                .filter(|p| s.contains("Namespace") && s.contains("RUNNING") && *p >= 30)
        },
    );
    let screen = tmux.screen();
    assert!(!screen.contains("small screen"), "{screen}");
    for key in ["│app.crash_time ", "│app.crashed "] {
        assert!(screen.contains(key), "{key:?} whole at {at}%:\n{screen}");
    }
    assert!(screen.contains("app.crashed ARMED (running)"), "{screen}");
    tmux.send(&["k"]);
    let resumed = tmux.wait_for("RESUMED and its cycle", Duration::from_secs(15), |s| {
        (s.contains("RESUMED from") && s.contains("lost 0")).then(|| s.to_string())
    });
    let cycle = resumed
        .lines()
        .find(|l| l.contains("#1 killed at"))
        .unwrap_or_default();
    assert!(cycle.contains("→ resumed from "), "{resumed}");
    assert!(
        resumed.contains("lost 0") && resumed.contains("restart "),
        "the figures whole:\n{resumed}"
    );
    tmux.send(&["q"]);
    tmux.wait_for_prompt();
}

/// How many cells a screen coloured `(from the 256 past the first 16, from the 16)`.
fn colour_kinds(screen: &[Vec<Cell>]) -> (usize, usize) {
    let mut kinds = (0, 0);
    for cell in screen.iter().flatten() {
        for ink in [cell.fg, cell.bg] {
            match ink {
                // crossterm writes the 16 as `38;5;N` with N below 16.
                Ink::Indexed(n) if n < 16 => kinds.1 += 1,
                Ink::Indexed(_) | Ink::Rgb(..) => kinds.0 += 1,
                Ink::Ansi(_) => kinds.1 += 1,
                Ink::Default => {}
            }
        }
    }
    kinds
}

/// Limited terminals: under `TERM=linux`, `TERM=vt100` and `LANG=C` the
/// borders are ASCII, there is no braille and no emoji (the worker's 📊 lines
/// too), colours are the 16 (none on a vt100) and the mouse is left alone
/// unless `--mouse` asks; `LANG=C` gets ASCII only. Under `NO_COLOR` the
/// chart's title names its marks by shape, not "red: kill".
#[test]
fn limited_terminals_get_ascii_16_colours_and_no_mouse() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    let tmux = Tmux::shell(100, 30);
    let braille = |s: &str| s.chars().any(|c| ('\u{2800}'..='\u{28ff}').contains(&c));
    let boxes = |s: &str| s.chars().any(|c| ('\u{2500}'..='\u{257f}').contains(&c));
    let emoji = |s: &str| s.chars().any(plumdash::text::plain::is_emoji);
    // (env, extra args, colours: (256 allowed, 16 allowed), mouse, ASCII only)
    let runs = [
        ("TERM=linux ", "", (false, true), false, false),
        ("TERM=vt100 ", "", (false, false), false, false),
        ("LANG=C ", "", (false, true), false, true),
        ("TERM=linux ", "--mouse ", (false, true), true, false),
    ];
    for (env, extra, (c256, c16), mouse, ascii) in runs {
        tmux.send(&["clear", "Enter"]);
        type_plumdash(&tmux, env, &format!("{extra}--step 200ms --fresh"), &db);
        let screen = tmux.wait_for("a kill's mark on the chart", Duration::from_secs(20), |s| {
            (s.contains("RUNNING") && gauge_percent_plain(s).is_some_and(|p| p >= 30))
                .then(|| s.to_string())
        });
        let what = format!("{env}{extra}");
        assert!(!boxes(&screen), "{what}: ASCII borders:\n{screen}");
        assert!(
            screen.contains("+-") && screen.contains('|'),
            "{what}:\n{screen}"
        );
        assert!(!braille(&screen), "{what}: no braille:\n{screen}");
        assert!(!emoji(&screen), "{what}: no emoji:\n{screen}");
        assert!(
            screen.contains("(# kill, o resume)") || screen.contains("(█ kill, • resume)"),
            "{what}:\n{screen}"
        );
        if ascii {
            assert!(screen.is_ascii(), "{what}: ASCII only:\n{screen}");
        }
        let (n256, n16) = colour_kinds(&tmux.styled_screen());
        assert!(c256 || n256 == 0, "{what}: {n256} cells in 256 colours");
        assert!(c16 || n16 == 0, "{what}: {n16} cells in 16 colours");
        assert!(!c16 || n16 > 0, "{what}: colour where the terminal has it");
        assert_eq!(tmux.modes().2, mouse, "{what}: mouse captured");
        tmux.send(&["q"]);
        tmux.wait_for_prompt();
    }
    // NO_COLOR on a full terminal: braille, and the marks named by shape.
    tmux.send(&["clear", "Enter"]);
    type_plumdash(&tmux, "NO_COLOR=1 ", "--step 200ms --fresh --no-mouse", &db);
    let screen = tmux.wait_for("the chart", Duration::from_secs(20), |s| {
        s.contains("Progress over time").then(|| s.to_string())
    });
    assert!(screen.contains("(█ kill, • resume)"), "{screen}");
    assert!(!screen.contains("red: kill"), "{screen}");
    assert_eq!(colour_kinds(&tmux.styled_screen()), (0, 0), "NO_COLOR");
    tmux.send(&["q"]);
    tmux.wait_for_prompt();
}

/// The gauge's percentage on a screen whose separators may be ASCII (`.`).
fn gauge_percent_plain(screen: &str) -> Option<u32> {
    gauge_percent(screen).or_else(|| {
        screen.lines().find_map(|line| {
            let i = line.find("% . step_")?;
            let digits: String = line[..i]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits.chars().rev().collect::<String>().parse().ok()
        })
    })
}

/// The character at display column `col` of `line` (a wide one counts twice).
fn char_at(line: &str, col: usize) -> Option<char> {
    let mut at = 0;
    for c in line.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(1);
        if col < at + w {
            return Some(c);
        }
        at += w;
    }
    None
}

/// Wide characters redraw cleanly when something is drawn over them: the
/// help opened over the Chinese tour keeps its left border on every row (a
/// caption's 已 or a title's 曲 half under it used to cover it), and closing
/// it leaves no half glyph behind.
#[test]
fn a_popup_over_chinese_text_keeps_its_border_whole() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(100, 30);
    let args = "tour --lang zh --step 400ms --no-mouse";
    type_plumdash(&tmux, "", args, &dir.path().join("kv.db"));
    tmux.wait_for("the Chinese tour", Duration::from_secs(20), |s| {
        s.contains("导览").then_some(())
    });
    for _ in 0..3 {
        tmux.send(&["?"]);
        // A capture can land while a frame is being written: a screen is
        // judged only once the popup is whole, and every row of it must then
        // keep its border (a covered wide character never lets it be whole).
        tmux.wait_for(
            "the help with its left border whole",
            Duration::from_secs(5),
            |s| {
                let lines: Vec<&str> = s.lines().collect();
                let top = lines.iter().position(|l| l.contains("╭ 按键"))?;
                let head = lines[top];
                let col = unicode_width::UnicodeWidthStr::width(&head[..head.find("╭ 按键")?]);
                let bottom = lines
                    .iter()
                    .rposition(|l| char_at(l, col) == Some('╰'))
                    .filter(|b| *b > top + 5)?;
                lines[top + 1..bottom]
                    .iter()
                    .all(|line| char_at(line, col) == Some('│'))
                    .then_some(())
            },
        );
        tmux.send(&["Escape"]);
        tmux.wait_for("the help closed", Duration::from_secs(5), |s| {
            (!s.contains("按键（? 关闭）")).then_some(())
        });
    }
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["q"]);
    tmux.wait_for_prompt();
}
