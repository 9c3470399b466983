//! Recovery state, derived from facts: what the processes did (supervisor or
//! attach) and what the namespace holds (the change feed). Shared by the
//! dashboard and `verify`; it never reads worker logs.
//!
//! Facts in → [`Board`] (which namespace) → [`Tracker`] → per-instance [`Phase`], the [`TaskView`], the
//! recovery [`Cycle`]s with their figures, and a timeline of events.

mod board;
mod cycle;
mod event_json;
mod facts;
mod mirror;
mod node_book;
#[cfg(test)]
pub(crate) mod sample;
mod task;
mod timeline;
mod tracker;
mod view;

pub use board::{Board, EventsSeen};
pub use cycle::Basis;
pub use facts::{Fact, NodeAction, ProcessExit, TsMs, REMOTE_PID};
pub use node_book::{Failover, NodeBook, NodeChange, NodeHealth, NodeLoss, NodeState};
pub use task::{TaskView, TornCheckpoint, CRASH_FLAG_KEY, START_KEYS};
pub use timeline::{TimelineEvent, TimelineKind};
pub use tracker::{CrashFlag, Cycle, Detail, InstanceView, Phase, ProgressPoint, Tracker};
pub use view::{exit_as_judged, InstanceStatus};
