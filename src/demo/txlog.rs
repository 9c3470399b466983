//! 模式2, the transaction log: operations `OP_1 … OP_N`, each applied (its
//! effect: one more in `ledger.applied`, tagged with the operation in
//! `ledger.applied_op`) and then logged (`operation.counter`,
//! `operation.last`). After a crash the log is replayed from
//! `operation.counter`; an operation whose effect is already there (killed
//! between doing it and logging it) is recognised and skipped — unless
//! `--unsafe`, which applies it a second time.

use super::checkpoint::PERCENT_PER_STEP;
use super::keys;
use super::text::{self, say};
use super::worker::Worker;
use crate::kv::{BatchItem, Entry, ValueType};
use anyhow::{bail, Context, Result};

/// Operations in a task (each worth `PERCENT_PER_STEP`).
pub const OPERATIONS: u32 = 10;

/// Where the log stands, as read from the namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogState {
    /// Operations logged.
    pub logged: u32,
    /// Effects applied.
    pub applied: i64,
    /// The operation the last effect belongs to.
    pub applied_op: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStart {
    /// No log, or the last task completed: a new ledger.
    NewTask,
    /// The crash flag is set: replay from the log.
    Recover(LogState),
    /// A graceful stop paused the task part-way: go on from the log.
    Paused(LogState),
}

/// Decides how to start from every entry of the namespace.
pub fn decide(entries: &[Entry]) -> Result<TxStart> {
    let value = |key: &str| entries.iter().find(|e| e.key == key).map(|e| &e.value);
    let completed = value(keys::TASK_STATUS).is_some_and(|s| s == keys::STATUS_COMPLETED);
    let Some(logged) = value(keys::OP_COUNTER) else {
        return Ok(TxStart::NewTask);
    };
    if completed {
        return Ok(TxStart::NewTask);
    }
    let int = |key: &str, v: Option<&String>| -> Result<i64> {
        match v {
            None => Ok(0),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n),
                _ => bail!("{key} holds {v:?}, not a count; remove it to start a new task"),
            },
        }
    };
    let state = LogState {
        logged: int(keys::OP_COUNTER, Some(logged))?.min(OPERATIONS as i64) as u32,
        applied: int(keys::LEDGER_APPLIED, value(keys::LEDGER_APPLIED))?,
        applied_op: int(keys::LEDGER_APPLIED_OP, value(keys::LEDGER_APPLIED_OP))?
            .min(OPERATIONS as i64) as u32,
    };
    let crashed = value(keys::CRASHED).is_some_and(|v| v != "false" && v != "0");
    Ok(if crashed {
        TxStart::Recover(state)
    } else {
        TxStart::Paused(state)
    })
}

/// The effect of operation `op`: the ledger's count and whose it is, one batch.
fn apply_batch(op: u32, applied: i64) -> Vec<BatchItem> {
    vec![
        BatchItem::new(keys::LEDGER_APPLIED, applied.to_string(), ValueType::Int),
        BatchItem::new(keys::LEDGER_APPLIED_OP, op.to_string(), ValueType::Int),
    ]
}

/// The log entry of operation `op`, with the common progress keys.
fn log_batch(op: u32) -> Vec<BatchItem> {
    vec![
        BatchItem::new(keys::OP_COUNTER, op.to_string(), ValueType::Int),
        BatchItem::new(keys::OP_LAST, text::op_name(op), ValueType::String),
        BatchItem::new(
            keys::PROGRESS,
            (op * PERCENT_PER_STEP).to_string(),
            ValueType::Int,
        ),
        BatchItem::new(keys::TASK_STATUS, keys::STATUS_RUNNING, ValueType::String),
    ]
}

/// A new task's empty ledger and log.
fn reset_batch() -> Vec<BatchItem> {
    let mut items = apply_batch(0, 0);
    items.push(BatchItem::new(keys::OP_COUNTER, "0", ValueType::Int));
    items.push(BatchItem::new(keys::OP_LAST, "-", ValueType::String));
    items
}

impl Worker {
    pub(super) async fn run_txlog(&self) -> Result<()> {
        let ns = &self.cfg.namespace;
        let entries = self.read_all().await?;
        let start = decide(&entries)
            .with_context(|| format!("reading the transaction log in namespace {ns}"))?;
        let mut st = match start {
            TxStart::NewTask => {
                say(text::NORMAL_START);
                say(text::TASK_START);
                LogState::default()
            }
            TxStart::Recover(st) => {
                text::txlog_recovery_block(st.logged, st.applied, st.applied_op)
                    .iter()
                    .for_each(say);
                st
            }
            TxStart::Paused(st) => {
                say(text::NORMAL_START);
                say(text::txlog_paused_note(st.logged));
                say(text::TASK_START);
                st
            }
        };
        self.set_flag().await?;
        if start == TxStart::NewTask {
            self.write("starting a new ledger", &reset_batch()).await?;
        }
        // Half the step is the operation's work, half lies between applying
        // it and logging it: the window a crash makes a replay meet.
        let half = self.cfg.step / 2;
        for op in st.logged + 1..=OPERATIONS {
            tokio::time::sleep(half).await;
            if st.applied_op == op && !self.cfg.unsafe_mode {
                say(text::op_replay_skipped(op));
            } else {
                let again = st.applied_op == op;
                st.applied += 1;
                st.applied_op = op;
                let what = format!("applying {}", text::op_name(op));
                self.write(&what, &apply_batch(op, st.applied)).await?;
                if again {
                    say(text::op_applied_again(op, st.applied));
                } else {
                    say(text::op_applied(op, st.applied));
                }
            }
            tokio::time::sleep(half).await;
            let what = format!("logging {}", text::op_name(op));
            self.write(&what, &log_batch(op)).await?;
            st.logged = op;
            say(text::op_logged(op, OPERATIONS));
        }
        self.complete(&[], text::txlog_stats(OPERATIONS, st.applied))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(pairs: &[(&str, &str)]) -> Vec<Entry> {
        Entry::strings("t", pairs)
    }

    #[test]
    fn a_crash_replays_from_the_log_with_the_ledger_as_left() {
        assert_eq!(decide(&[]).unwrap(), TxStart::NewTask);
        let left = ns(&[
            ("app.crashed", "true"),
            ("operation.counter", "6"),
            ("ledger.applied", "7"),
            ("ledger.applied_op", "7"),
        ]);
        assert_eq!(
            decide(&left).unwrap(),
            TxStart::Recover(LogState {
                logged: 6,
                applied: 7,
                applied_op: 7
            })
        );
        let paused = ns(&[("operation.counter", "3"), ("task.status", "running")]);
        assert!(matches!(decide(&paused).unwrap(), TxStart::Paused(_)));
        let done = ns(&[("operation.counter", "10"), ("task.status", "completed")]);
        assert_eq!(decide(&done).unwrap(), TxStart::NewTask);
        assert!(decide(&ns(&[("operation.counter", "six")])).is_err());
    }

    #[test]
    fn an_operation_is_logged_with_the_common_progress() {
        let b = log_batch(7);
        let get = |k: &str| b.iter().find(|i| i.key == k).map(|i| i.value.as_str());
        assert_eq!(get(keys::OP_LAST), Some("OP_7"));
        assert_eq!(get(keys::PROGRESS), Some("70"));
    }
}
