//! The lifecycle event stream: what happened to which instance, when.

use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use serde::{Serialize, Serializer};
use tokio::sync::broadcast;

use super::exit::{ExitKind, RawExit};
use super::signals::{serialize_signal, serialize_signal_opt};

/// One lifecycle event. Serializes as one flat JSON object:
/// `{"ts_ms":…,"instance":"kv-demo-001","kind":"started","pid":…,"run":…}`.
#[derive(Debug, Clone, Serialize)]
pub struct SupervisorEvent {
    #[serde(skip)]
    pub ts: SystemTime,
    /// Milliseconds since the UNIX epoch (same instant as `ts`).
    pub ts_ms: u64,
    pub instance: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl SupervisorEvent {
    pub fn now(instance: impl Into<String>, kind: EventKind) -> Self {
        let ts = SystemTime::now();
        SupervisorEvent {
            ts,
            ts_ms: unix_ms(ts),
            instance: instance.into(),
            kind,
        }
    }

    /// The event as one JSON line (no trailing newline).
    pub fn to_json_line(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_else(|error| {
            format!(
                r#"{{"ts_ms":{},"instance":"{}","kind":"unserializable","error":"{error}"}}"#,
                self.ts_ms, self.instance
            )
        })
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A run began. `run` counts runs of this instance from 1.
    Started { pid: u32, run: u32, node: String },
    /// A process we did not start was found (attach mode).
    Attached { pid: u32, name: String },
    /// We sent a signal to the worker's process group (or, attached, to its pid).
    SignalSent {
        #[serde(serialize_with = "serialize_signal")]
        signal: Signal,
        pid: u32,
    },
    /// The kernel reports the worker stopped (frozen) by `signal`, from outside or by us.
    /// `signal` is `None` for a process we did not start: `/proc` shows it
    /// stopped but not by which signal.
    Frozen {
        #[serde(serialize_with = "serialize_signal_opt")]
        signal: Option<Signal>,
    },
    /// The kernel reports the frozen worker continued.
    Continued,
    /// A Stop (or Restart, or shutdown) was asked for.
    StopRequested,
    /// A run ended.
    Exited {
        pid: u32,
        run: u32,
        exit: ExitKind,
        /// What the kernel said (`None`: not ours to reap, e.g. attached).
        status: Option<RawExit>,
        #[serde(rename = "uptime_ms", serialize_with = "serialize_ms")]
        uptime: Duration,
    },
    /// An automatic restart will happen after `delay`.
    RestartScheduled {
        #[serde(rename = "delay_ms", serialize_with = "serialize_ms")]
        delay: Duration,
        /// Crash-loop runs in a row, the one that ended included; 0 when it was not one
        /// (it ran at least `crash_loop_under`, or plumdash killed it itself).
        crash_loop_runs: u32,
    },
    /// The instance gave up restarting (crash loop, or it could not be started).
    Failed { reason: String },
    /// This standby will start after `delay`, taking over from `from`, the
    /// group's active instance that crashed (`supervisor::standby`).
    TakeoverScheduled {
        from: String,
        #[serde(rename = "delay_ms", serialize_with = "serialize_ms")]
        delay: Duration,
    },
}

pub use crate::clock::unix_ms;

pub(crate) fn serialize_ms<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(crate::clock::millis(*duration))
}

pub(crate) fn serialize_unix_ms<S: Serializer>(
    time: &SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(unix_ms(*time))
}

pub(crate) fn serialize_opt_unix_ms<S: Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_some(&unix_ms(*time)),
        None => serializer.serialize_none(),
    }
}

/// Where owner tasks publish events. Sending never blocks; a slow reader lags
/// (and is told so by `broadcast`) instead of holding up a worker.
#[derive(Debug, Clone)]
pub struct EventSink {
    sender: broadcast::Sender<SupervisorEvent>,
}

impl EventSink {
    pub fn new(capacity: usize) -> (Self, broadcast::Receiver<SupervisorEvent>) {
        let (sender, receiver) = broadcast::channel(capacity.max(1));
        (EventSink { sender }, receiver)
    }

    pub fn emit(&self, instance: &str, kind: EventKind) {
        // No subscribers is fine: events are a view, not a control path.
        let _ = self.sender.send(SupervisorEvent::now(instance, kind));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SupervisorEvent> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_is_one_flat_json_line() {
        let event = SupervisorEvent::now(
            "kv-demo-001",
            EventKind::Started {
                pid: 42,
                run: 1,
                node: "nodeA".into(),
            },
        );
        let value: serde_json::Value = serde_json::from_str(&event.to_json_line()).unwrap();
        assert_eq!(value["instance"], "kv-demo-001");
        assert_eq!(value["kind"], "started");
        assert_eq!(value["pid"], 42);
        assert!(value["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn exited_carries_named_signal_and_ms() {
        let event = SupervisorEvent::now(
            "kv-demo-001",
            EventKind::Exited {
                pid: 7,
                run: 2,
                exit: ExitKind::KilledBySignal(Signal::SIGKILL),
                status: Some(RawExit::Signal(Signal::SIGKILL)),
                uptime: Duration::from_millis(1500),
            },
        );
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["kind"], "exited");
        assert_eq!(value["exit"]["signal"], "SIGKILL");
        assert_eq!(value["status"]["signal"], "SIGKILL");
        assert_eq!(value["uptime_ms"], 1500);
    }
}
