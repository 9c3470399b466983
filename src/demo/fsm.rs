//! 模式3, the state machine: `INIT → LOAD → TRANSFORM → SAVE → DONE`, each
//! state a few steps, saved at every step as `fsm.state` (its name) and
//! `fsm.data` (JSON: the step within the state). After a crash the machine
//! is restored in its saved state and goes on there — unless `--unsafe`,
//! which starts it again from INIT.

use super::checkpoint::PERCENT_PER_STEP;
use super::keys;
use super::text::{self, say};
use super::worker::Worker;
use crate::kv::{BatchItem, Entry, ValueType};
use anyhow::{bail, Context, Result};

/// The working states and their steps (ten in all); DONE follows the last.
pub const MACHINE: [(&str, u32); 4] = [("INIT", 1), ("LOAD", 3), ("TRANSFORM", 4), ("SAVE", 2)];
pub const DONE: &str = "DONE";

/// A position in the machine: a state (index into `MACHINE`) and the steps
/// of it done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub state: usize,
    pub step: u32,
}

impl At {
    /// Before the first step.
    pub const START: At = At { state: 0, step: 0 };

    pub fn name(self) -> &'static str {
        MACHINE[self.state].0
    }

    fn of(self) -> u32 {
        MACHINE[self.state].1
    }

    /// Steps done in all (the common progress is 10 × this).
    pub fn steps_done(self) -> u32 {
        MACHINE[..self.state].iter().map(|(_, n)| n).sum::<u32>() + self.step
    }

    /// The next step, `None` when the machine is through SAVE.
    pub fn next(self) -> Option<At> {
        if self.step < self.of() {
            return Some(At {
                state: self.state,
                step: self.step + 1,
            });
        }
        (self.state + 1 < MACHINE.len()).then_some(At {
            state: self.state + 1,
            step: 1,
        })
    }

    fn data(self) -> String {
        serde_json::json!({
            "step": self.step,
            "of": self.of(),
            "records": self.steps_done() * 100,
        })
        .to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsmStart {
    NewTask,
    /// The crash flag is set: restore the machine where it was (its saved data).
    Recover {
        at: At,
        data: String,
    },
    /// A graceful stop paused it: go on from there.
    Paused {
        at: At,
    },
}

/// Decides how to start from every entry of the namespace.
pub fn decide(entries: &[Entry]) -> Result<FsmStart> {
    let value = |key: &str| entries.iter().find(|e| e.key == key).map(|e| &e.value);
    let completed = value(keys::TASK_STATUS).is_some_and(|s| s == keys::STATUS_COMPLETED);
    let Some(state) = value(keys::FSM_STATE) else {
        return Ok(FsmStart::NewTask);
    };
    if completed || state == DONE {
        return Ok(FsmStart::NewTask);
    }
    let Some(index) = MACHINE.iter().position(|(s, _)| s == state) else {
        bail!(
            "{} holds {state:?}, not a state of the machine; remove it to start a new task",
            keys::FSM_STATE
        );
    };
    let data = value(keys::FSM_DATA).cloned().unwrap_or_default();
    let step = serde_json::from_str::<serde_json::Value>(&data)
        .ok()
        .and_then(|v| v.get("step")?.as_u64());
    let Some(step) = step else {
        bail!(
            "{} holds {data:?}, not the state's data; remove it to start a new task",
            keys::FSM_DATA
        );
    };
    let at = At {
        state: index,
        step: (step as u32).min(MACHINE[index].1),
    };
    let crashed = value(keys::CRASHED).is_some_and(|v| v != "false" && v != "0");
    Ok(if crashed {
        FsmStart::Recover { at, data }
    } else {
        FsmStart::Paused { at }
    })
}

/// One step of the machine saved: its state, its data and the common progress.
fn step_batch(at: At) -> Vec<BatchItem> {
    vec![
        BatchItem::new(keys::FSM_STATE, at.name(), ValueType::String),
        BatchItem::new(keys::FSM_DATA, at.data(), ValueType::String),
        BatchItem::new(
            keys::PROGRESS,
            (at.steps_done() * PERCENT_PER_STEP).to_string(),
            ValueType::Int,
        ),
        BatchItem::new(keys::TASK_STATUS, keys::STATUS_RUNNING, ValueType::String),
    ]
}

impl Worker {
    pub(super) async fn run_fsm(&self) -> Result<()> {
        let ns = &self.cfg.namespace;
        let entries = self.read_all().await?;
        let start = decide(&entries)
            .with_context(|| format!("reading the state machine in namespace {ns}"))?;
        let mut at = match start {
            FsmStart::NewTask => {
                say(text::NORMAL_START);
                say(text::TASK_START);
                At::START
            }
            FsmStart::Recover { at, .. } if self.cfg.unsafe_mode => {
                say(text::CRASH_DETECTED);
                say(text::fsm_restart_from_init(at.name()));
                At::START
            }
            FsmStart::Recover { at, data } => {
                text::fsm_recovery_block(at.name(), &data)
                    .iter()
                    .for_each(say);
                at
            }
            FsmStart::Paused { at } => {
                say(text::NORMAL_START);
                say(text::fsm_paused_note(at.name()));
                say(text::TASK_START);
                at
            }
        };
        self.set_flag().await?;
        while let Some(next) = at.next() {
            tokio::time::sleep(self.cfg.step).await;
            let what = format!("saving state {} ({}/{})", next.name(), next.step, next.of());
            self.write(&what, &step_batch(next)).await?;
            at = next;
            say(text::fsm_step(
                at.name(),
                at.step,
                at.of(),
                at.steps_done() * PERCENT_PER_STEP,
            ));
        }
        let done = [
            BatchItem::new(keys::FSM_STATE, DONE, ValueType::String),
            BatchItem::new(keys::FSM_DATA, "{}", ValueType::String),
        ];
        let mut stats = vec![text::fsm_done()];
        stats.extend(text::fsm_final(at.steps_done()));
        self.complete(&done, stats).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(pairs: &[(&str, &str)]) -> Vec<Entry> {
        Entry::strings("t", pairs)
    }

    #[test]
    fn the_machine_walks_its_states_in_ten_steps() {
        let mut at = At::START;
        let mut seen = vec![];
        while let Some(n) = at.next() {
            seen.push(n.name());
            at = n;
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(seen.first(), Some(&"INIT"));
        assert_eq!(seen.last(), Some(&"SAVE"));
        assert_eq!(at.steps_done(), 10);
    }

    #[test]
    fn a_crash_restores_the_saved_state() {
        let left = ns(&[
            ("app.crashed", "true"),
            ("fsm.state", "TRANSFORM"),
            ("fsm.data", r#"{"step":2,"of":4,"records":600}"#),
        ]);
        let FsmStart::Recover { at, .. } = decide(&left).unwrap() else {
            panic!("a recovery");
        };
        assert_eq!((at.name(), at.step, at.steps_done()), ("TRANSFORM", 2, 6));
        assert_eq!(
            decide(&ns(&[("fsm.state", "DONE")])).unwrap(),
            FsmStart::NewTask
        );
        assert!(decide(&ns(&[("fsm.state", "PROCESSING")])).is_err());
        assert!(decide(&ns(&[("fsm.state", "LOAD"), ("fsm.data", "x")])).is_err());
    }
}
