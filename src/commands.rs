//! What each `plumdash` subcommand does, kept out of `main.rs` so it can be
//! tested and reused (`main.rs` only parses arguments).

pub mod kv;
pub mod up;
