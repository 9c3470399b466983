//! Signal names: parsing what users type and writing names instead of numbers.

use anyhow::{bail, Result};
use nix::sys::signal::Signal;
use serde::Serializer;

/// Parses `SIGKILL`, `KILL`, `kill` or `9` into a signal.
pub fn parse_signal(text: &str) -> Result<Signal> {
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return Signal::try_from(number)
            .map_err(|_| anyhow::anyhow!("{number} is not a known signal number"));
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    match name.parse::<Signal>() {
        Ok(signal) => Ok(signal),
        Err(_) => bail!(
            "unknown signal {trimmed:?} (try SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGSTOP, SIGCONT)"
        ),
    }
}

/// Serde helper: a signal is written as its name, e.g. `"SIGKILL"`.
pub(crate) fn serialize_signal<S: Serializer>(
    signal: &Signal,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(signal.as_str())
}

pub(crate) fn serialize_signal_opt<S: Serializer>(
    signal: &Option<Signal>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match signal {
        Some(signal) => serializer.serialize_str(signal.as_str()),
        None => serializer.serialize_none(),
    }
}

/// Signals after which a process that exits 0 (or dies by that very signal) did what
/// it was asked: stop.
pub(crate) fn is_stop_signal(signal: Signal) -> bool {
    matches!(signal, Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(parse_signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("term").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal(" 2 ").unwrap(), Signal::SIGINT);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("999").is_err());
    }
}
