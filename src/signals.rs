//! Waiting for the signals that ask a foreground command to end.

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Resolves on the first SIGINT or SIGTERM.
pub async fn wait_for_termination() -> Result<()> {
    Termination::install()?.recv().await;
    Ok(())
}

/// SIGINT and SIGTERM handlers installed up front, so a signal that arrives
/// before anyone waits on it is neither lost nor fatal.
pub struct Termination {
    int: Signal,
    term: Signal,
}

impl Termination {
    pub fn install() -> Result<Self> {
        Ok(Termination {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// The number of the next SIGINT (2) or SIGTERM (15).
    pub async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.int.recv() => SignalKind::interrupt().as_raw_value(),
            _ = self.term.recv() => SignalKind::terminate().as_raw_value(),
        }
    }
}
