//! Fixed colours per theme (stable frames for recordings); `NO_COLOR` turns
//! colour off and leaves emphasis to bold and reverse video.

use crate::recovery::Phase;
use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ThemeName {
    /// Light text on a dark terminal.
    Dark,
    /// Dark text on a light terminal.
    Light,
}

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
    pub name: ThemeName,
}

impl Theme {
    pub fn new(name: ThemeName, color: bool) -> Theme {
        Theme { color, name }
    }

    /// No colour when `NO_COLOR` is set to anything non-empty.
    pub fn from_env(name: ThemeName) -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme::new(name, !no_color)
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    fn text_color(&self) -> Color {
        match self.name {
            ThemeName::Dark => Color::White,
            ThemeName::Light => Color::Black,
        }
    }

    pub fn text(&self) -> Style {
        self.fg(self.text_color())
    }

    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn title(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan)
        } else {
            self.dim()
        }
    }

    pub fn key(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn good(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn bad(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// A loud block: white on red (or reverse video without colour).
    pub fn alarm(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    pub fn armed(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    pub fn calm(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Green)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        }
    }

    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    /// A key that changed a moment ago.
    pub fn fresh(&self) -> Style {
        if self.color {
            Style::new().fg(Color::Black).bg(Color::LightYellow)
        } else {
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        }
    }

    /// The style of a state word (RUNNING green, CRASHED red, …).
    /// An instance's phase, coloured by what it is (not by its word).
    pub fn phase(&self, phase: &Phase) -> Style {
        match phase {
            Phase::Running | Phase::Resumed { .. } => self.good().add_modifier(Modifier::BOLD),
            Phase::Crashed | Phase::Failed { .. } => self.bad(),
            Phase::Recovering => self.warn().add_modifier(Modifier::BOLD),
            Phase::Completed => self.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            Phase::Stopped => self.text(),
            Phase::Standby => self.dim(),
        }
    }
}
