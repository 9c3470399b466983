//! The KV model and the `DistributedMemory` SDK.
//!
//! `model` is what travels on the wire (entries, value types, validation rules
//! shared with the controller), `client` is the SDK mirroring the original C++
//! `DistributedMemory`, and `watch` turns a namespace into a stream of changes
//! (SSE when the server has it, polling otherwise; `sse` reads the events).

mod client;
pub mod display;
mod error;
pub mod model;
pub mod sse;
mod watch;
mod watch_set;

pub use client::{check_base, ClientOptions, DistributedMemory, DEFAULT_CONTROLLER_BASE};

pub use error::{is_an_answer, KvError};
pub use model::{BatchItem, Entry, Listing, NamespaceBy, Unreadable, ValueType, Writer, WriterVia};
pub use watch::{FeedMode, FeedStatus, FeedTrouble, WatchEvent, WatchOptions, Watcher};
pub use watch_set::{SetWatcher, POLL_CONCURRENCY};
