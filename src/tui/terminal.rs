//! What the terminal in front of us is: its background (dark or light, asked
//! with OSC 11 before the dashboard takes the screen, `COLORFGBG` when it
//! does not answer), and what it can draw (`Caps`: colours, Unicode, emoji,
//! the mouse) from `TERM`, the locale and `NO_COLOR`. Pure rules are separate
//! from the one function that talks to the terminal, so they are tested
//! without one.

use super::theme::{luminance, ColorDepth, ThemeName};
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// What the dashboard may draw with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Glyphs {
    /// Box drawing, braille, emoji: a terminal emulator in a UTF-8 locale.
    #[default]
    Unicode,
    /// A UTF-8 locale on a limited terminal (the Linux console, a vt100): its
    /// font has blocks and arrows, not braille or emoji; borders in ASCII.
    Limited,
    /// A locale that is not UTF-8 (`LANG=C`): ASCII only.
    Ascii,
}

/// What the terminal can show, and whether the mouse is taken by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub depth: ColorDepth,
    pub glyphs: Glyphs,
    /// Capture the mouse unless `--no-mouse` (a limited terminal: only with `--mouse`).
    pub mouse: bool,
}

impl Caps {
    /// From this process's `TERM`, locale and `NO_COLOR`.
    pub fn from_env() -> Caps {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let locale = var("LC_ALL")
            .or_else(|| var("LC_CTYPE"))
            .or_else(|| var("LANG"));
        Caps::of(
            var("TERM").as_deref(),
            locale.as_deref(),
            super::theme::no_color_env(),
        )
    }

    /// `term` as `TERM` says it, `locale` the first of `LC_ALL`, `LC_CTYPE`,
    /// `LANG` that is set (none: taken as UTF-8, as terminals are today).
    pub fn of(term: Option<&str>, locale: Option<&str>, no_color: bool) -> Caps {
        let utf8 = locale.is_none_or(is_utf8_locale);
        let term = term.unwrap_or_default();
        let base = term.split('-').next().unwrap_or_default();
        let hardware = matches!(base, "vt100" | "vt102" | "vt220" | "vt52" | "dumb" | "ansi");
        let console = base == "linux";
        let glyphs = match () {
            _ if !utf8 => Glyphs::Ascii,
            _ if hardware || console => Glyphs::Limited,
            _ => Glyphs::Unicode,
        };
        let depth = match () {
            _ if no_color || (hardware && base != "ansi") => ColorDepth::None,
            _ if glyphs != Glyphs::Unicode => ColorDepth::Ansi16,
            _ => ColorDepth::Indexed,
        };
        Caps {
            depth,
            glyphs,
            mouse: glyphs == Glyphs::Unicode,
        }
    }
}

/// `C.UTF-8`, `en_US.utf8`, `zh_CN.UTF-8`: yes; `C`, `POSIX`, `en_US.ISO-8859-1`: no.
pub fn is_utf8_locale(locale: &str) -> bool {
    let codeset = locale.split('@').next().unwrap_or_default();
    let codeset = codeset.rsplit_once('.').map_or("", |(_, c)| c);
    matches!(codeset.to_ascii_lowercase().as_str(), "utf-8" | "utf8")
}

/// How long a terminal gets to answer: a local one answers in a few ms; one
/// that does not know OSC 11 answers the DA1 query sent after it, so the wait
/// is this long only when neither answers (a dumb pipe, a slow ssh link).
pub const BACKGROUND_TIMEOUT: Duration = Duration::from_millis(100);

/// The theme for this terminal: its answer to OSC 11, else `COLORFGBG`, else dark.
pub fn background_theme() -> ThemeName {
    query_background(BACKGROUND_TIMEOUT)
        .map(theme_for)
        .or_else(|| {
            std::env::var("COLORFGBG")
                .ok()
                .and_then(|v| colorfgbg_theme(&v))
        })
        .unwrap_or(ThemeName::Dark)
}

/// Light for a background whose luminance is past the point where black text
/// reads better than white (WCAG: √(1.05 × 0.05) − 0.05 ≈ 0.18).
pub fn theme_for(rgb: (u8, u8, u8)) -> ThemeName {
    if luminance(rgb) > 0.179 {
        ThemeName::Light
    } else {
        ThemeName::Dark
    }
}

/// `COLORFGBG` (rxvt, konsole, some others): `fg;bg` or `fg;default;bg`,
/// ANSI numbers; backgrounds 7 and 9–15 are light.
pub fn colorfgbg_theme(value: &str) -> Option<ThemeName> {
    let bg: u8 = value.rsplit(';').next()?.trim().parse().ok()?;
    Some(match bg {
        7 | 9..=15 => ThemeName::Light,
        _ => ThemeName::Dark,
    })
}

/// The colour in an OSC 11 answer: `ESC ] 11 ; rgb:RRRR/GGGG/BBBB` ended by
/// BEL or `ESC \`, each part 1 to 4 hex digits (scaled to 8 bits).
pub fn parse_osc11(answer: &[u8]) -> Option<(u8, u8, u8)> {
    let text = std::str::from_utf8(answer).ok()?;
    let start = text.find("]11;")? + 4;
    let body = &text[start..];
    let end = body.find(['\x07', '\x1b']).unwrap_or(body.len());
    let spec = body[..end]
        .strip_prefix("rgb:")
        .or_else(|| body[..end].strip_prefix("rgba:"))?;
    let mut parts = spec.split('/').map(|h| {
        let v = u32::from_str_radix(h, 16).ok()?;
        let max = 16u32.checked_pow(u32::try_from(h.len()).ok()?)? - 1;
        (1..=4)
            .contains(&h.len())
            .then(|| u8::try_from(v * 255 / max).ok())
            .flatten()
    });
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// Are stdin and stdout both a terminal (the dashboard reads keys from the
/// one and draws on the other)?
pub fn on_a_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// What `up` and `attach` say when started without one.
pub const NEEDS_A_TERMINAL: &str = "the dashboard needs a terminal: stdin and stdout are not both \
     one (started from a pipe, a file or a service?)";

/// Asks the terminal its background (OSC 11), with DA1 behind it: every
/// terminal answers DA1, so one that ignores OSC 11 costs no wait. Only on a
/// terminal (stdin and stdout), in raw mode so the answer is neither echoed
/// nor held for a newline; before the alternate screen.
pub fn query_background(timeout: Duration) -> Option<(u8, u8, u8)> {
    if !on_a_terminal() {
        return None;
    }
    crossterm::terminal::enable_raw_mode().ok()?;
    let answer = ask(timeout);
    let _ = crossterm::terminal::disable_raw_mode();
    parse_osc11(&answer?)
}

/// Sends the two queries and reads until DA1's answer (`ESC [ ? … c`) or the
/// timeout.
fn ask(timeout: Duration) -> Option<Vec<u8>> {
    let mut out = std::io::stdout();
    out.write_all(b"\x1b]11;?\x1b\\\x1b[c").ok()?;
    out.flush().ok()?;
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let deadline = Instant::now() + timeout;
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while !da1_seen(&answer) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) => break,
            Ok(_) => match nix::unistd::read(fd, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    Some(answer)
}

/// DA1's answer is in: `ESC [ ?` … `c`.
fn da1_seen(bytes: &[u8]) -> bool {
    bytes
        .windows(3)
        .position(|w| w == b"\x1b[?")
        .is_some_and(|i| bytes[i..].contains(&b'c'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc11_answers_in_their_usual_forms() {
        // tmux with `window-style bg=white` (its white is #c0c0c0), ESC \ ended.
        assert_eq!(
            parse_osc11(b"\x1b]11;rgb:c0c0/c0c0/c0c0\x1b\\\x1b[?1;2c"),
            Some((0xc0, 0xc0, 0xc0))
        );
        // BEL ended, two digits a part.
        assert_eq!(
            parse_osc11(b"\x1b]11;rgb:28/2c/34\x07"),
            Some((0x28, 0x2c, 0x34))
        );
        assert_eq!(parse_osc11(b"\x1b]11;rgb:f/f/f\x07"), Some((255, 255, 255)));
        assert_eq!(parse_osc11(b"\x1b[?1;2c"), None);
        assert_eq!(parse_osc11(b"\x1b]11;rgb:zz/00/00\x07"), None);
        assert!(da1_seen(b"\x1b]11;rgb:0/0/0\x07\x1b[?62;22c"));
        assert!(!da1_seen(b"\x1b]11;rgb:0/0/0\x07\x1b[?62;"));
    }

    #[test]
    fn limited_terminals_get_ascii_borders_16_colours_and_no_mouse() {
        let utf8 = Some("C.UTF-8");
        let xterm = Caps::of(Some("xterm-256color"), utf8, false);
        assert_eq!(
            xterm,
            Caps {
                depth: ColorDepth::Indexed,
                glyphs: Glyphs::Unicode,
                mouse: true
            }
        );
        let linux = Caps::of(Some("linux"), utf8, false);
        assert_eq!(
            (linux.glyphs, linux.depth, linux.mouse),
            (Glyphs::Limited, ColorDepth::Ansi16, false)
        );
        let vt100 = Caps::of(Some("vt100"), utf8, false);
        assert_eq!(
            (vt100.glyphs, vt100.depth, vt100.mouse),
            (Glyphs::Limited, ColorDepth::None, false)
        );
        let c = Caps::of(Some("xterm-256color"), Some("C"), false);
        assert_eq!(
            (c.glyphs, c.depth, c.mouse),
            (Glyphs::Ascii, ColorDepth::Ansi16, false)
        );
        assert_eq!(
            Caps::of(Some("xterm"), Some("POSIX"), false).glyphs,
            Glyphs::Ascii
        );
        assert_eq!(
            Caps::of(Some("xterm"), Some("en_US.ISO-8859-1"), false).glyphs,
            Glyphs::Ascii
        );
        assert_eq!(
            Caps::of(Some("xterm"), Some("zh_CN.utf8"), false).glyphs,
            Glyphs::Unicode
        );
        assert_eq!(Caps::of(Some("xterm"), None, false).glyphs, Glyphs::Unicode);
        assert_eq!(
            Caps::of(Some("xterm-256color"), utf8, true).depth,
            ColorDepth::None
        );
    }

    #[test]
    fn the_background_picks_the_theme() {
        assert_eq!(theme_for((0xc0, 0xc0, 0xc0)), ThemeName::Light);
        assert_eq!(theme_for((0xff, 0xff, 0xff)), ThemeName::Light);
        assert_eq!(theme_for((0xfd, 0xf6, 0xe3)), ThemeName::Light);
        assert_eq!(theme_for((0, 0, 0)), ThemeName::Dark);
        assert_eq!(theme_for((0x28, 0x2c, 0x34)), ThemeName::Dark);
        assert_eq!(theme_for((0x00, 0x2b, 0x36)), ThemeName::Dark);
        assert_eq!(colorfgbg_theme("0;15"), Some(ThemeName::Light));
        assert_eq!(colorfgbg_theme("15;0"), Some(ThemeName::Dark));
        assert_eq!(colorfgbg_theme("0;default;7"), Some(ThemeName::Light));
        assert_eq!(colorfgbg_theme("12;8"), Some(ThemeName::Dark));
        assert_eq!(colorfgbg_theme(""), None);
    }
}
