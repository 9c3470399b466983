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
    /// Front ends only: a closed terminal or ssh session (SIGHUP) ends them
    /// as SIGTERM does, terminal restored and owned workers stopped. The
    /// worker keeps the default (it dies, as the original does).
    hup: Option<Signal>,
}

impl Termination {
    pub fn install() -> Result<Self> {
        Ok(Termination {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: None,
        })
    }

    /// SIGINT, SIGTERM and SIGHUP: for the dashboard and `--headless`.
    pub fn install_with_hangup() -> Result<Self> {
        Ok(Termination {
            hup: Some(signal(SignalKind::hangup()).context("installing the SIGHUP handler")?),
            ..Termination::install()?
        })
    }

    /// The number of the next SIGINT (2), SIGTERM (15) or SIGHUP (1).
    pub async fn recv(&mut self) -> i32 {
        let hup = async {
            match &mut self.hup {
                Some(hup) => hup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.int.recv() => SignalKind::interrupt().as_raw_value(),
            _ = self.term.recv() => SignalKind::terminate().as_raw_value(),
            _ = hup => SignalKind::hangup().as_raw_value(),
        }
    }
}
