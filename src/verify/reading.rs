//! Reading the session's facts (through the driver) until something holds:
//! the one loop both verify runners (the kill cycles and the node scenario) wait with.

use crate::driver::{Driver, Step};
use std::time::Duration;
use tokio::time::Instant;

/// A live line: escaped (it quotes worker output and stored values), on stderr
/// when stdout carries the JSON report.
pub(super) fn live(to_stderr: bool, text: &str) {
    let text = crate::text_safety::escape_controls(text);
    if to_stderr {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

/// A runner that reads a session's facts through a driver and notes what
/// each did.
pub(super) trait FactReader {
    fn driver(&mut self) -> &mut Driver;
    fn on_step(&mut self, step: Step);
}

/// Reads facts into `r` until `pred` holds (true) or `patience` runs out (false).
pub(super) async fn wait_until<R: FactReader>(
    r: &mut R,
    patience: Duration,
    pred: impl Fn(&R) -> bool,
) -> Result<bool, String> {
    let deadline = Instant::now() + patience;
    loop {
        if pred(r) {
            return Ok(true);
        }
        match tokio::time::timeout_at(deadline, r.driver().next()).await {
            Err(_) => return Ok(false),
            Ok(None) => return Err("the session ended unexpectedly".into()),
            Ok(Some(step)) => r.on_step(step),
        }
    }
}
