//! Dashboard options shared by `up`, `tour` and `attach`.

use crate::paths::default_keys_path;
use crate::text::Lang;
use crate::tui::keymap::{load_keys_file, Keymap};
use crate::tui::runtime::TuiOptions;
use crate::tui::terminal::Caps;
use crate::tui::theme::{Theme, ThemeChoice, ThemeName};
use crate::tui::view::ScreenLayout;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// How the dashboard looks and what it may do.
#[derive(Args, Clone)]
pub struct UiArgs {
    /// No signals or actions from the dashboard.
    #[arg(long)]
    pub read_only: bool,
    /// Colour theme: auto asks the terminal its background (NO_COLOR turns colour off).
    #[arg(long, value_enum, default_value_t = ThemeChoice::Auto)]
    pub theme: ThemeChoice,
    /// Do not capture the mouse.
    #[arg(long, conflicts_with = "mouse")]
    pub no_mouse: bool,
    /// Capture the mouse on a limited terminal too (TERM=linux or vt100, a
    /// non-UTF-8 locale), where it is off unless asked.
    #[arg(long)]
    pub mouse: bool,
    /// Stable frames for recordings: relative clock, no wall-clock times.
    #[arg(long)]
    pub recording: bool,
    /// Key bindings file [default: $XDG_CONFIG_HOME/plumdash/keys.toml if present]
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Language of the dashboard and of `--headless`'s timeline lines [default: from
    /// LC_ALL, LC_MESSAGES or LANG: zh* is Chinese, anything else English]. State words
    /// stay as they are in both; `--events` JSON is the same in both.
    #[arg(long, value_enum)]
    pub lang: Option<Lang>,
    /// The screen to start with (`p` switches).
    #[arg(long, value_enum, default_value_t = ScreenLayout::Full)]
    pub layout: ScreenLayout,
}

impl UiArgs {
    /// Nothing dashboard-only was asked for (`--read-only` also applies to
    /// headless runs: it closes the control socket to actions).
    pub fn is_default(&self) -> bool {
        !self.no_mouse
            && !self.mouse
            && !self.recording
            && self.keys.is_none()
            && self.layout == ScreenLayout::Full
    }

    /// The language asked for, else the locale's.
    pub fn lang(&self) -> Lang {
        self.lang.unwrap_or_else(Lang::from_env)
    }

    /// Reads the keys file first, so a typo stops us before anything starts.
    pub fn options(&self) -> Result<TuiOptions> {
        let keymap = match self
            .keys
            .clone()
            .or_else(|| default_keys_path().filter(|p| p.exists()))
        {
            // A wrong keys file is wrong before anything starts: exit 2.
            Some(path) => load_keys_file(&path, Keymap::default())
                .map_err(|e| anyhow::Error::new(super::UsageError(e)))?,
            None => Keymap::default(),
        };
        // What this terminal can draw: colours, Unicode, the mouse.
        let caps = Caps::from_env();
        let name = match self.theme {
            ThemeChoice::Light => ThemeName::Light,
            ThemeChoice::Dark | ThemeChoice::Auto => ThemeName::Dark,
        };
        Ok(TuiOptions {
            keymap,
            theme: Theme::with_depth(name, caps.depth),
            glyphs: caps.glyphs,
            detect_background: self.theme == ThemeChoice::Auto,
            mouse: !self.no_mouse && (self.mouse || caps.mouse),
            read_only: self.read_only,
            recording: self.recording,
            status: None,
            tour: false,
            kill_at: None,
            lang: self.lang(),
            layout: self.layout,
        })
    }
}
