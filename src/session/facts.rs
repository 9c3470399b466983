//! Supervisor events and namespace feed events turned into recovery facts.

use crate::kv::{FeedStatus, WatchEvent};
use crate::recovery::{Fact, ProcessExit};
use crate::supervisor::{EventKind, ExitKind, RawExit, SupervisorEvent};

/// Supervisor event → recovery fact (events recovery does not need map to `None`).
pub fn fact_from_event(event: &SupervisorEvent) -> Option<Fact> {
    let instance = event.instance.clone();
    Some(match &event.kind {
        EventKind::Started { pid, .. } => Fact::Started {
            instance,
            pid: *pid,
        },
        EventKind::Attached { pid, .. } => Fact::Attached {
            instance,
            pid: *pid,
        },
        EventKind::Exited { exit, status, .. } => {
            // What the kernel said, and apart from it whether we asked for the stop.
            let requested = *exit == ExitKind::Stopped;
            let exit = match status {
                Some(RawExit::Signal(sig)) => ProcessExit::Signal(*sig),
                Some(RawExit::Code(0)) => ProcessExit::Clean,
                Some(RawExit::Code(code)) => ProcessExit::Code(*code),
                // Not ours to reap: how it ended is judged from the namespace.
                None => ProcessExit::Unknown,
            };
            Fact::Exited {
                instance,
                exit,
                requested,
            }
        }
        EventKind::RestartScheduled { delay, .. } => Fact::RestartScheduled {
            instance,
            delay_ms: crate::clock::millis(*delay),
        },
        EventKind::TakeoverScheduled { from, delay } => Fact::TakeoverScheduled {
            instance,
            from: from.clone(),
            delay_ms: crate::clock::millis(*delay),
        },
        EventKind::Frozen { signal } => Fact::Frozen {
            instance,
            signal: signal.map(|s| s.as_str().to_string()),
        },
        EventKind::Continued => Fact::Continued { instance },
        EventKind::Failed { reason } => Fact::Failed {
            instance,
            reason: reason.clone(),
        },
        _ => return None,
    })
}

/// A write of the keys every kv-demo run (and the original) writes as it starts.
pub(super) fn announces_a_start(fact: &Fact) -> bool {
    match fact {
        Fact::Written(entries) => entries
            .iter()
            .any(|e| crate::recovery::START_KEYS.contains(&e.key.as_str())),
        _ => false,
    }
}

/// Namespace feed event → recovery fact.
pub fn fact_from_change(change: WatchEvent) -> Fact {
    match change {
        WatchEvent::Status(FeedStatus::Streaming) => Fact::FeedUp {
            via: "stream".into(),
        },
        WatchEvent::Status(FeedStatus::Polling(every)) => Fact::FeedUp {
            via: format!("polling {}", humantime::format_duration(every)),
        },
        WatchEvent::Status(FeedStatus::Down { error, .. }) => Fact::FeedDown { error },
        WatchEvent::Snapshot(entries) => Fact::Snapshot(entries),
        WatchEvent::Put(entry) => Fact::Written(vec![bounded(entry)]),
        WatchEvent::Batch(entries) => Fact::Written(entries.into_iter().map(bounded).collect()),
        WatchEvent::Deleted { key, writer } => Fact::Deleted {
            key,
            writer: writer.map(crate::kv::Writer::bounded),
        },
        WatchEvent::Trouble(trouble) => Fact::FeedTrouble(trouble),
    }
}

/// An entry as the feed gave it, its writer (if named) cut to a bounded list.
fn bounded(mut entry: crate::kv::Entry) -> crate::kv::Entry {
    entry.writer = entry.writer.map(crate::kv::Writer::bounded);
    entry
}
