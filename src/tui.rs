//! The dashboard (ratatui). Elm-style: `app` is the model and its `update`,
//! `view` and `panes` draw it, `keymap` turns keys into `action`s, and
//! `runtime` owns the terminal and feeds events in; `connecting` is the screen
//! before a session exists (attach reaching its controller).

pub mod action;
pub mod app;
pub mod autokill;
pub mod cells;
pub mod connecting;
pub mod format;
pub mod keymap;
pub mod panes;
pub mod plain;
pub mod runtime;
pub mod terminal;
pub mod theme;
pub mod tour;
pub mod view;
