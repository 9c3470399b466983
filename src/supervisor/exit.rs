//! How a worker run ended, classified for people and for the restart policy.

use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use nix::sys::signal::Signal;
use serde::{Serialize, Serializer};

use super::signals::serialize_signal;

/// The end of one run of a worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    /// Died from a signal nobody asked it to stop with (a crash; SIGKILL is the demo).
    KilledBySignal(Signal),
    /// Exited with a non-zero code.
    ExitCode(i32),
    /// Exited 0 on its own: the task finished.
    Completed,
    /// Ended because we asked it to stop (Stop/Restart action, shutdown, or a
    /// SIGTERM/SIGINT/SIGHUP we sent that it honoured).
    Stopped,
    /// A process we did not start is gone; its exit status is not ours to read.
    Disappeared,
}

/// What the kernel reported for a reaped process, before any classification:
/// a stop we asked for is still a death by SIGTERM if that is what it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawExit {
    Code(i32),
    Signal(#[serde(serialize_with = "serialize_signal")] Signal),
}

impl RawExit {
    pub fn of(status: ExitStatus) -> RawExit {
        match (
            status.code(),
            status.signal().and_then(|n| Signal::try_from(n).ok()),
        ) {
            (_, Some(signal)) => RawExit::Signal(signal),
            (Some(code), None) => RawExit::Code(code),
            (None, None) => RawExit::Code(status.into_raw()),
        }
    }
}

/// What we had asked of the process before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StopIntent {
    /// A Stop/Restart/shutdown was in progress (SIGTERM, grace, SIGKILL).
    pub stop_requested: bool,
    /// The last terminating signal sent through the Signal action, if any.
    pub stop_signal_sent: Option<Signal>,
}

impl ExitKind {
    /// Classifies a reaped exit status given what we had asked of the process.
    pub(crate) fn classify(status: ExitStatus, intent: StopIntent) -> ExitKind {
        let signal = status.signal().and_then(|n| Signal::try_from(n).ok());
        let code = status.code();
        if intent.stop_requested {
            match (code, signal) {
                (Some(0), _) => return ExitKind::Stopped,
                (_, Some(Signal::SIGTERM | Signal::SIGINT | Signal::SIGKILL)) => {
                    return ExitKind::Stopped
                }
                _ => {}
            }
        }
        if let Some(sent) = intent.stop_signal_sent {
            if code == Some(0) || signal == Some(sent) {
                return ExitKind::Stopped;
            }
        }
        match (code, signal) {
            (_, Some(signal)) => ExitKind::KilledBySignal(signal),
            (Some(0), None) => ExitKind::Completed,
            (Some(code), None) => ExitKind::ExitCode(code),
            // Neither code nor known signal: report the raw wait status as a code.
            (None, None) => ExitKind::ExitCode(status.into_raw()),
        }
    }

    /// True for exits the on-failure policy treats as crashes.
    pub fn is_crash(self) -> bool {
        matches!(self, ExitKind::KilledBySignal(_) | ExitKind::ExitCode(_))
    }
}

impl fmt::Display for ExitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitKind::KilledBySignal(signal) => write!(f, "killed by {}", signal.as_str()),
            ExitKind::ExitCode(code) => write!(f, "exit code {code}"),
            ExitKind::Completed => f.write_str("completed"),
            ExitKind::Stopped => f.write_str("stopped"),
            ExitKind::Disappeared => f.write_str("disappeared"),
        }
    }
}

/// Written as `{"type":"killed_by_signal","signal":"SIGKILL","text":"killed by SIGKILL"}`.
impl Serialize for ExitKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Wire<'a> {
            KilledBySignal {
                #[serde(serialize_with = "serialize_signal")]
                signal: &'a Signal,
                text: String,
            },
            ExitCode {
                code: i32,
                text: String,
            },
            Completed {
                text: String,
            },
            Stopped {
                text: String,
            },
            Disappeared {
                text: String,
            },
        }
        let text = self.to_string();
        let wire = match self {
            ExitKind::KilledBySignal(signal) => Wire::KilledBySignal { signal, text },
            ExitKind::ExitCode(code) => Wire::ExitCode { code: *code, text },
            ExitKind::Completed => Wire::Completed { text },
            ExitKind::Stopped => Wire::Stopped { text },
            ExitKind::Disappeared => Wire::Disappeared { text },
        };
        wire.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }
    fn signalled(signal: Signal) -> ExitStatus {
        ExitStatus::from_raw(signal as i32)
    }

    #[test]
    fn classifies_unrequested_exits() {
        let none = StopIntent::default();
        assert_eq!(
            ExitKind::classify(signalled(Signal::SIGKILL), none),
            ExitKind::KilledBySignal(Signal::SIGKILL)
        );
        assert_eq!(ExitKind::classify(exited(1), none), ExitKind::ExitCode(1));
        assert_eq!(ExitKind::classify(exited(0), none), ExitKind::Completed);
    }

    #[test]
    fn requested_stop_is_stopped() {
        let stop = StopIntent {
            stop_requested: true,
            stop_signal_sent: None,
        };
        assert_eq!(ExitKind::classify(exited(0), stop), ExitKind::Stopped);
        assert_eq!(
            ExitKind::classify(signalled(Signal::SIGTERM), stop),
            ExitKind::Stopped
        );
        assert_eq!(
            ExitKind::classify(signalled(Signal::SIGKILL), stop),
            ExitKind::Stopped
        );
        // Dying of SIGPIPE while stopping is still a crash, not a clean stop.
        assert_eq!(
            ExitKind::classify(signalled(Signal::SIGPIPE), stop),
            ExitKind::KilledBySignal(Signal::SIGPIPE)
        );
    }

    #[test]
    fn user_sigkill_is_a_crash_but_user_sigint_is_a_stop() {
        let kill = StopIntent {
            stop_requested: false,
            stop_signal_sent: None,
        };
        assert!(ExitKind::classify(signalled(Signal::SIGKILL), kill).is_crash());
        let int = StopIntent {
            stop_requested: false,
            stop_signal_sent: Some(Signal::SIGINT),
        };
        assert_eq!(ExitKind::classify(exited(0), int), ExitKind::Stopped);
        assert_eq!(
            ExitKind::classify(signalled(Signal::SIGINT), int),
            ExitKind::Stopped
        );
    }

    #[test]
    fn display_uses_names() {
        assert_eq!(
            ExitKind::KilledBySignal(Signal::SIGKILL).to_string(),
            "killed by SIGKILL"
        );
        assert_eq!(ExitKind::ExitCode(1).to_string(), "exit code 1");
        assert_eq!(ExitKind::Completed.to_string(), "completed");
        assert_eq!(ExitKind::Stopped.to_string(), "stopped");
    }

    #[test]
    fn serializes_with_type_tag() {
        let json = serde_json::to_value(ExitKind::KilledBySignal(Signal::SIGKILL)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type":"killed_by_signal","signal":"SIGKILL","text":"killed by SIGKILL"})
        );
        let json = serde_json::to_value(ExitKind::ExitCode(3)).unwrap();
        assert_eq!(json["code"], 3);
    }
}
