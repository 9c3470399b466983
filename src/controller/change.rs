//! One committed write as the store publishes it: to the change streams'
//! index (`fanout.rs`), the wake-ups and the `/v1/stream` writer (`sse.rs`).

use crate::kv::model::{Entry, Writer as ChangeWriter};
use serde::Serialize;
use std::sync::Arc;

/// One committed write, in commit order (`seq` grows by one per change).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    Put {
        seq: u64,
        /// The same entry the writer was answered with (built once).
        entry: Arc<Entry>,
        /// `(index, size)` when the write was part of a batch, so a feed can
        /// apply the batch as the one change it is.
        batch: Option<(usize, usize)>,
        /// The process that made it, when the request could be traced.
        writer: Option<ChangeWriter>,
    },
    Deleted {
        seq: u64,
        namespace: String,
        key: String,
        writer: Option<ChangeWriter>,
    },
}

impl Change {
    /// About what it holds in memory while queued for a subscriber.
    pub fn queued_bytes(&self) -> usize {
        const OVERHEAD: usize = 128;
        match self {
            Change::Put { entry, .. } => {
                OVERHEAD + entry.namespace.len() + entry.key.len() + entry.value.len()
            }
            Change::Deleted { namespace, key, .. } => OVERHEAD + namespace.len() + key.len(),
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            Change::Put { seq, .. } | Change::Deleted { seq, .. } => *seq,
        }
    }

    pub fn namespace(&self) -> &str {
        match self {
            Change::Put { entry, .. } => &entry.namespace,
            Change::Deleted { namespace, .. } => namespace,
        }
    }

    /// The entry written, for a put.
    pub fn entry(&self) -> Option<&Entry> {
        match self {
            Change::Put { entry, .. } => Some(entry),
            Change::Deleted { .. } => None,
        }
    }
}
