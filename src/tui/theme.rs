//! Fixed colours per theme (stable frames for recordings); `NO_COLOR` turns
//! colour off and leaves emphasis to bold and reverse video.
//!
//! Text on the terminal's own background is drawn in the terminal's own
//! foreground (never a fixed white or black, which one of the two backgrounds
//! hides) or in a palette colour chosen for that theme's background; a fixed
//! colour pair is used only where we paint the background too (the flag box,
//! the gauge's fill, the flash). Each pair reads at 4.5:1 or more (WCAG AA):
//! the palette is xterm's 256 colours from 16 up, whose values every
//! terminal shares, so `contrast` can check it (the tests below do).

use crate::recovery::Phase;
use ratatui::style::{Color, Modifier, Style};

/// The theme in use: which background the palette is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ThemeName {
    /// Light text on a dark terminal.
    Dark,
    /// Dark text on a light terminal.
    Light,
}

/// `--theme`: a theme, or `auto` (ask the terminal for its background).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ThemeChoice {
    /// Ask the terminal its background colour (OSC 11, then `COLORFGBG`);
    /// dark when neither says.
    #[default]
    Auto,
    /// Light text on a dark terminal.
    Dark,
    /// Dark text on a light terminal.
    Light,
}

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    /// None (`NO_COLOR`, a vt100): emphasis by bold, underline and reverse.
    None,
    /// The 16 ANSI colours (the Linux console, a non-UTF-8 locale).
    Ansi16,
    /// xterm's 256.
    Indexed,
}

/// The colours of one theme at one depth.
#[derive(Debug, Clone, Copy)]
struct Palette {
    /// Titles, keys, the focused border.
    accent: Color,
    good: Color,
    warn: Color,
    bad: Color,
    /// An end that is not a failure: COMPLETED, a clean exit, a stop asked for.
    ended: Color,
    dim: Color,
    /// The gauge's fill, its fill when torn, and the label over either.
    fill: Color,
    fill_bad: Color,
    on_fill: Color,
    /// (text, background) of the painted boxes.
    alarm: (Color, Color),
    notice: (Color, Color),
    armed: (Color, Color),
    calm: (Color, Color),
    fresh: (Color, Color),
}

const fn ix(n: u8) -> Color {
    Color::Indexed(n)
}

/// Painted boxes are the same in both themes: they bring their background.
const BLACK: Color = ix(16);
const WHITE: Color = ix(231);

const DARK: Palette = Palette {
    accent: ix(81),    // #5fd7ff
    good: ix(77),      // #5fd75f
    warn: ix(220),     // #ffd700
    bad: ix(203),      // #ff5f5f
    ended: ix(111),    // #87afff
    dim: ix(246),      // #949494
    fill: ix(71),      // #5faf5f
    fill_bad: ix(167), // #d75f5f
    on_fill: BLACK,
    alarm: (WHITE, ix(124)),  // on #af0000
    notice: (BLACK, ix(117)), // on #87d7ff
    armed: (BLACK, ix(220)),
    calm: (BLACK, ix(77)),
    fresh: (BLACK, ix(229)), // #ffffaf
};

const LIGHT: Palette = Palette {
    accent: ix(24), // #005f87
    good: ix(22),   // #005f00
    warn: ix(94),   // #875f00
    bad: ix(124),   // #af0000
    ended: ix(25),  // #005faf
    dim: ix(241),   // #626262
    ..DARK
};

/// 16 colours: their values are the terminal's own, so only the usual
/// choices (bright on dark, dark on light) are made.
const DARK_16: Palette = Palette {
    accent: Color::LightCyan,
    good: Color::LightGreen,
    warn: Color::LightYellow,
    bad: Color::LightRed,
    ended: Color::LightBlue,
    dim: Color::Gray,
    fill: Color::Green,
    fill_bad: Color::Red,
    on_fill: Color::Black,
    alarm: (Color::White, Color::Red),
    notice: (Color::Black, Color::Cyan),
    armed: (Color::Black, Color::Yellow),
    calm: (Color::Black, Color::Green),
    fresh: (Color::Black, Color::Yellow),
};

const LIGHT_16: Palette = Palette {
    accent: Color::Blue,
    good: Color::Green,
    warn: Color::Magenta,
    bad: Color::Red,
    ended: Color::Blue,
    dim: Color::DarkGray,
    ..DARK_16
};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub name: ThemeName,
    pub depth: ColorDepth,
}

impl Theme {
    /// `color`: xterm's 256 colours, or none.
    pub fn new(name: ThemeName, color: bool) -> Theme {
        let depth = if color {
            ColorDepth::Indexed
        } else {
            ColorDepth::None
        };
        Theme { name, depth }
    }

    pub fn with_depth(name: ThemeName, depth: ColorDepth) -> Theme {
        Theme { name, depth }
    }

    /// No colour when `NO_COLOR` is set to anything non-empty.
    pub fn from_env(name: ThemeName) -> Theme {
        Theme::new(name, !no_color_env())
    }

    /// Whether anything is coloured.
    pub fn color(&self) -> bool {
        self.depth != ColorDepth::None
    }

    fn palette(&self) -> &'static Palette {
        match (self.name, self.depth) {
            (ThemeName::Dark, ColorDepth::Ansi16) => &DARK_16,
            (ThemeName::Light, ColorDepth::Ansi16) => &LIGHT_16,
            (ThemeName::Dark, _) => &DARK,
            (ThemeName::Light, _) => &LIGHT,
        }
    }

    fn fg(&self, pick: fn(&Palette) -> Color) -> Style {
        if self.color() {
            Style::new().fg(pick(self.palette()))
        } else {
            Style::new()
        }
    }

    fn pair(&self, pick: fn(&Palette) -> (Color, Color), plain: Style) -> Style {
        if self.color() {
            let (fg, bg) = pick(self.palette());
            Style::new().fg(fg).bg(bg)
        } else {
            plain
        }
    }

    /// Plain text: the terminal's own foreground, which its background shows.
    pub fn text(&self) -> Style {
        Style::new()
    }

    pub fn dim(&self) -> Style {
        if self.color() {
            self.fg(|p| p.dim)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn title(&self) -> Style {
        self.fg(|p| p.accent).add_modifier(Modifier::BOLD)
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(|p| p.accent)
        } else {
            self.dim()
        }
    }

    pub fn key(&self) -> Style {
        self.fg(|p| p.accent).add_modifier(Modifier::BOLD)
    }

    pub fn good(&self) -> Style {
        self.fg(|p| p.good)
    }

    pub fn warn(&self) -> Style {
        self.fg(|p| p.warn)
    }

    pub fn bad(&self) -> Style {
        self.fg(|p| p.bad).add_modifier(Modifier::BOLD)
    }

    /// An end that is not a failure (a completion, a clean exit, a stop).
    pub fn ended(&self) -> Style {
        self.fg(|p| p.ended)
    }

    /// A loud block: white on red (or reverse video without colour).
    pub fn alarm(&self) -> Style {
        self.pair(|p| p.alarm, Style::new().add_modifier(Modifier::REVERSED))
            .add_modifier(Modifier::BOLD)
    }

    /// News that is not an alarm (a stop, a start, a restart): a quiet box.
    pub fn notice(&self) -> Style {
        self.pair(|p| p.notice, Style::new().add_modifier(Modifier::REVERSED))
    }

    pub fn armed(&self) -> Style {
        self.pair(|p| p.armed, Style::new())
            .add_modifier(Modifier::BOLD)
    }

    pub fn calm(&self) -> Style {
        let calm = self.pair(|p| p.calm, Style::new());
        if self.color() {
            calm.add_modifier(Modifier::BOLD)
        } else {
            calm
        }
    }

    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// A key that changed a moment ago.
    pub fn fresh(&self) -> Style {
        self.pair(
            |p| p.fresh,
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }

    /// The gauge: its fill (`torn`: the alarm's), and the label's style over
    /// the fill and beside it.
    pub fn gauge(&self, torn: bool) -> GaugeStyle {
        let p = self.palette();
        if !self.color() {
            return GaugeStyle {
                fill: Style::new(),
                on_fill: Style::new(),
                off_fill: Style::new(),
            };
        }
        let fill = if torn { p.fill_bad } else { p.fill };
        GaugeStyle {
            fill: Style::new().fg(fill),
            on_fill: Style::new()
                .fg(p.on_fill)
                .bg(fill)
                .add_modifier(Modifier::BOLD),
            off_fill: if torn { self.bad() } else { self.text() }.add_modifier(Modifier::BOLD),
        }
    }

    /// The style of a state word (RUNNING green, CRASHED red, …).
    /// An instance's phase, coloured by what it is (not by its word).
    pub fn phase(&self, phase: &Phase) -> Style {
        match phase {
            Phase::Running | Phase::Resumed { .. } => self.good().add_modifier(Modifier::BOLD),
            Phase::Crashed | Phase::Failed { .. } => self.bad(),
            Phase::Recovering => self.warn().add_modifier(Modifier::BOLD),
            Phase::Completed => self.ended().add_modifier(Modifier::BOLD),
            Phase::Stopped => self.text(),
            Phase::Standby => self.dim(),
        }
    }

    /// Every style text is drawn in, named, for the contrast check.
    pub fn text_styles(&self) -> Vec<(&'static str, Style)> {
        let gauge = self.gauge(false);
        let torn = self.gauge(true);
        let mut styles = vec![
            ("text", self.text()),
            ("dim", self.dim()),
            ("title", self.title()),
            ("key", self.key()),
            ("good", self.good()),
            ("warn", self.warn()),
            ("bad", self.bad()),
            ("ended", self.ended()),
            ("alarm", self.alarm()),
            ("notice", self.notice()),
            ("armed", self.armed()),
            ("calm", self.calm()),
            ("fresh", self.fresh()),
            ("gauge label on fill", gauge.on_fill),
            ("gauge label beside fill", gauge.off_fill),
            ("torn label on fill", torn.on_fill),
            ("torn label beside fill", torn.off_fill),
        ];
        let phases = [
            Phase::Running,
            Phase::Crashed,
            Phase::Recovering,
            Phase::Completed,
            Phase::Stopped,
            Phase::Standby,
        ];
        for phase in phases {
            // As a row shows it, and selected (reverse video).
            styles.push(("phase", self.phase(&phase)));
            styles.push(("selected phase", self.phase(&phase).patch(self.selected())));
        }
        styles
    }
}

/// The gauge's parts (see `Theme::gauge`).
#[derive(Debug, Clone, Copy)]
pub struct GaugeStyle {
    pub fill: Style,
    pub on_fill: Style,
    pub off_fill: Style,
}

/// `NO_COLOR` set to anything non-empty.
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// The RGB of a colour whose value every xterm-like terminal agrees on: an
/// `Rgb`, or an index from 16 (the 6×6×6 cube, then 24 greys). The first 16
/// are the terminal's to choose: `None`.
pub fn rgb(color: Color) -> Option<(u8, u8, u8)> {
    match color {
        Color::Rgb(r, g, b) => Some((r, g, b)),
        Color::Indexed(n @ 16..=231) => {
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            let n = n - 16;
            Some((level(n / 36), level(n / 6 % 6), level(n % 6)))
        }
        Color::Indexed(n @ 232..=255) => {
            let v = 8 + (n - 232) * 10;
            Some((v, v, v))
        }
        _ => None,
    }
}

/// WCAG relative luminance, 0 (black) to 1 (white).
pub fn luminance((r, g, b): (u8, u8, u8)) -> f64 {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/// WCAG contrast ratio of two colours, 1 to 21.
pub fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Rgb = (u8, u8, u8);

    /// Every text style of both themes reads at 4.5:1 or more on the theme's
    /// background, and on a slightly lifted one (terminals' "black" and
    /// "white" are rarely pure).
    #[test]
    fn every_text_style_reads_at_4_5_to_1() {
        for name in [ThemeName::Dark, ThemeName::Light] {
            let theme = Theme::new(name, true);
            let backgrounds: [Rgb; 2] = match name {
                ThemeName::Dark => [(0, 0, 0), (0x26, 0x26, 0x26)],
                ThemeName::Light => [(0xff, 0xff, 0xff), (0xee, 0xee, 0xee)],
            };
            let (default_fg, default_bg) = match name {
                ThemeName::Dark => (WHITE, BLACK),
                ThemeName::Light => (BLACK, WHITE),
            };
            let set = |c: Option<Color>| c.filter(|c| *c != Color::Reset);
            for (what, style) in theme.text_styles() {
                let rgb_of = |c: Color| rgb(c).unwrap_or_else(|| panic!("{name:?} {what}: {c:?}"));
                // Reverse video swaps the pair: the same ratio.
                let pairs: Vec<(Rgb, Rgb)> = match (set(style.fg), set(style.bg)) {
                    // A painted box brings its own background.
                    (fg, Some(bg)) => vec![(rgb_of(fg.unwrap_or(default_fg)), rgb_of(bg))],
                    (Some(fg), None) => backgrounds.iter().map(|bg| (rgb_of(fg), *bg)).collect(),
                    // The terminal's own pair.
                    (None, None) => vec![(rgb_of(default_fg), rgb_of(default_bg))],
                };
                for (fg, bg) in pairs {
                    let ratio = contrast(fg, bg);
                    assert!(
                        ratio >= 4.5,
                        "{name:?} {what}: {fg:?} on {bg:?} is {ratio:.1}:1"
                    );
                }
            }
        }
    }

    #[test]
    fn the_palette_is_xterms_shared_256_and_never_plain_white_or_black_text() {
        for name in [ThemeName::Dark, ThemeName::Light] {
            let theme = Theme::new(name, true);
            for (what, style) in theme.text_styles() {
                let painted = style.bg.is_some_and(|c| c != Color::Reset);
                if let Some(fg) = style.fg {
                    assert!(rgb(fg).is_some(), "{name:?} {what}: {fg:?}");
                    // Fixed white or black only on a background we paint.
                    if !painted {
                        assert!(
                            ![BLACK, WHITE, Color::White, Color::Black].contains(&fg),
                            "{name:?} {what}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn contrast_ratios_match_wcag() {
        assert!((contrast((0, 0, 0), (255, 255, 255)) - 21.0).abs() < 1e-9);
        assert_eq!(rgb(Color::Indexed(16)), Some((0, 0, 0)));
        assert_eq!(rgb(Color::Indexed(231)), Some((255, 255, 255)));
        assert_eq!(rgb(Color::Indexed(203)), Some((255, 95, 95)));
        assert_eq!(rgb(Color::Indexed(244)), Some((128, 128, 128)));
        assert_eq!(rgb(Color::Red), None);
        // xterm's red on black: the 3.6:1 that CRASHED read at before.
        let red = contrast((0xcd, 0, 0), (0, 0, 0));
        assert!((3.5..3.7).contains(&red), "{red}");
    }
}
