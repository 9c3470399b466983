//! plumdash: a terminal dashboard for watching a program survive crashes.
//!
//! The crate holds the whole Plum KV crash-recovery system: the KV controller
//! (`controller`), the `DistributedMemory` SDK (`kv`), the `kv-demo` worker
//! (`demo`), the agent that restarts it (`supervisor`), the recovery-state
//! derivation shared by the TUI and `verify` (`recovery`), the loop that feeds
//! it a session's facts for every front end (`driver`), the TUI (`tui`), and
//! every sentence they show, in English and Chinese (`text`).

pub mod agent;
pub mod artifact;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod controller;
pub mod ctl_socket;
pub mod demo;
pub mod driver;
pub mod headless;
pub mod hosts;
pub mod http_body;
pub mod http_client;
pub mod kv;
pub mod logging;
pub mod memory;
pub mod paths;
pub mod recovery;
pub mod scenario;
pub mod session;
pub mod signals;
pub mod supervisor;
pub mod text;
pub mod text_safety;
pub mod tui;
pub mod verify;
