//! Every integration test in one binary (one link instead of one per file):
//! each former `tests/<name>.rs` is the module `<name>`, sharing `support`.
//! Run one file's tests with `cargo test --test it <name>::`.

// Tests may unwrap: a panic is how a test fails (Cargo.toml denies it elsewhere).
#![allow(clippy::unwrap_used)]

mod support;

mod agent;
mod attach;
mod attach_tmux;
mod cli_generated;
mod cluster_api;
mod controller;
mod ctl;
mod demo_tape;
mod failover;
mod hostile_controller;
mod kv_demo;
mod machines;
mod nodes;
mod original_controller;
mod original_worker;
mod partitions;
mod patterns;
mod rehearsal;
mod scenario;
mod set_stream;
mod supervisor;
mod terminal_fit;
mod terminal_safety;
mod tui_render;
mod tui_runtime;
mod tui_tmux;
mod up_headless;
mod verify;
mod verify_reports;
