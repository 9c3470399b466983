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
mod key_map;
mod mirror;
mod node_book;
mod pattern;
mod pattern_watch;
#[cfg(test)]
pub(crate) mod sample;
mod task;
mod timeline;
mod tracker;
mod view;

pub use board::{Board, EventsSeen};
pub use cycle::{Basis, Recovered};
pub use facts::{Fact, NodeAction, ProcessExit, TsMs, REMOTE_PID};
pub use key_map::{parse_mapping as parse_key_mapping, KeyMap, ProgressKeys, Role};
pub use node_book::{Failover, NodeBook, NodeChange, NodeHealth, NodeLoss, NodeState};
pub use pattern::{
    fsm_index, restored_wrongly, FsmView, Pattern, PatternNews, TxLogView, FSM_STATES,
};
pub use task::{TaskView, TornCheckpoint, CRASH_FLAG_KEY, START_KEYS};
pub use timeline::{TimelineEvent, TimelineKind};
pub use tracker::{CrashFlag, Cycle, Detail, InstanceView, Phase, ProgressPoint, Tracker};
pub use view::{exit_as_judged, InstanceStatus};
