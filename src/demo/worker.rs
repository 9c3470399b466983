//! The worker loop: read the namespace, decide how to start, checkpoint every
//! step, then complete or stop gracefully on SIGINT/SIGTERM.
//!
//! Signals are awaited next to the task (never handled inside a signal
//! handler), so the shutdown writes are ordinary async HTTP with a deadline.

use super::checkpoint::{completed_batch, now_unix, start_batch, step_batch, stopped_batch};
use super::config::{Config, Pattern};
use super::keys;
use super::recovery::{self, StartMode};
use super::retry::Retry;
use super::text::{self, say};
use crate::kv::{BatchItem, ClientOptions, DistributedMemory, Entry, KvError, ValueType};
use crate::signals::Termination;
use anyhow::{Context, Result};
use std::future::Future;
use std::time::Duration;
use tokio::time::{timeout_at, Instant};

/// How a run ended (both are exit code 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Stopped { signal: i32 },
}

pub struct Worker {
    pub(super) cfg: Config,
    pub(super) dm: DistributedMemory,
    pub(super) retry: Retry,
}

impl Worker {
    pub fn new(cfg: Config) -> Result<Worker> {
        let options = ClientOptions {
            // One connection per request, as the original SDK: nothing stale
            // survives a controller restart.
            connection_close: true,
            // A hung controller counts as unreachable and is retried.
            request_timeout: Duration::from_secs(5),
            // Fenced once a failover moved this instance's work elsewhere.
            instance: Some(cfg.instance_id.clone()),
            ..ClientOptions::default()
        };
        let dm = DistributedMemory::with_options(&cfg.namespace, &cfg.controller, options)
            .with_context(|| format!("setting up the KV client for {}", cfg.controller))?;
        let retry = Retry::new(dm.base_url(), cfg.give_up);
        Ok(Worker { cfg, dm, retry })
    }

    /// Runs the task until it completes, a signal stops it, or a fatal error.
    pub async fn run(&self, signals: &mut Termination) -> Result<Outcome> {
        for line in text::banner(&self.cfg) {
            say(line);
        }
        // Dropping the task at any await point is safe: every write it makes
        // is a single request, and a checkpoint is a single batch.
        let signal = tokio::select! {
            done = self.run_task() => return done.map(|()| Outcome::Completed),
            signal = signals.recv() => signal,
        };
        self.stop_gracefully(signal).await;
        Ok(Outcome::Stopped { signal })
    }

    async fn run_task(&self) -> Result<()> {
        match self.cfg.pattern {
            Pattern::Checkpoint => self.run_checkpoints().await,
            Pattern::TxLog => self.run_txlog().await,
            Pattern::Fsm => self.run_fsm().await,
        }
    }

    /// Every entry of the namespace; an unreachable controller is waited for
    /// (it is not "no saved state").
    pub(super) async fn read_all(&self) -> Result<Vec<Entry>> {
        let ns = &self.cfg.namespace;
        self.retry
            .run(&format!("reading namespace {ns}"), || self.dm.get_all())
            .await
    }

    /// One batch, retried until it lands.
    pub(super) async fn write(&self, what: &str, batch: &[BatchItem]) -> Result<()> {
        self.retry
            .run(what, || self.dm.put_batch(batch))
            .await
            .map(|_| ())
    }

    /// Sets the crash flag with its time (every pattern, at every start).
    pub(super) async fn set_flag(&self) -> Result<()> {
        self.write("setting the crash flag", &start_batch(now_unix()))
            .await
    }

    /// 模式1: a checkpoint after each step's work (`--unsafe`: before it).
    async fn run_checkpoints(&self) -> Result<()> {
        let ns = &self.cfg.namespace;
        let entries = self.read_all().await?;
        let mode = recovery::decide(&entries)
            .with_context(|| format!("reading the saved task in namespace {ns}"))?;
        match mode {
            StartMode::NewTask => {
                say(text::NORMAL_START);
                say(text::TASK_START);
            }
            StartMode::RecoverAfterCrash(cp) => text::recovery_block(cp).iter().for_each(say),
            StartMode::ResumePaused(cp) => {
                say(text::NORMAL_START);
                say(text::paused_note(cp));
                say(text::TASK_START);
            }
        }
        self.set_flag().await?;

        let resumed_from = mode.resume_from();
        let started = Instant::now();
        let mut cp = resumed_from;
        while let Some(next) = cp.next() {
            let what = format!("saving checkpoint {}", next.name());
            let batch = step_batch(next, now_unix());
            if self.cfg.unsafe_mode {
                // The classic mistake: the checkpoint claims the step before
                // its work is done; a crash during the work loses the step.
                let ahead: Vec<BatchItem> = batch
                    .iter()
                    .filter(|i| i.key != keys::WORK_DONE)
                    .cloned()
                    .collect();
                self.write(&what, &ahead).await?;
                say(text::checkpoint_before_work(next));
                tokio::time::sleep(self.cfg.step).await;
                let done = [BatchItem::new(
                    keys::WORK_DONE,
                    next.counter().to_string(),
                    ValueType::Int,
                )];
                self.write("recording the work done", &done).await?;
            } else {
                tokio::time::sleep(self.cfg.step).await;
                // The same step is retried until it lands; progress stays in memory.
                self.write(&what, &batch).await?;
            }
            cp = next;
            say(text::progress(cp));
        }
        let stats = text::final_stats(cp, resumed_from, started.elapsed());
        self.complete(&[], stats).await
    }

    /// Clears the flag, marks the task completed (with `extra` in the same
    /// batch), prints `✅ 任务完成！`, `stats` and every key.
    pub(super) async fn complete(&self, extra: &[BatchItem], stats: Vec<String>) -> Result<()> {
        self.retry
            .run("clearing the crash flag", || self.dm.remove(keys::CRASHED))
            .await?;
        let mut completed = completed_batch(now_unix());
        completed.extend_from_slice(extra);
        self.write("marking the task completed", &completed).await?;
        say(text::TASK_DONE);
        stats.iter().for_each(say);
        let all = self.read_all().await?;
        text::all_keys(&self.cfg.namespace, &all)
            .iter()
            .for_each(say);
        Ok(())
    }

    /// Clears the flag and records the stop, each write bounded so the
    /// process exits promptly even when the controller does not answer.
    async fn stop_gracefully(&self, signal: i32) {
        say(text::received_signal(signal));
        let deadline = Instant::now() + shutdown_budget(self.cfg.step);
        if bounded(
            deadline,
            "clear the crash flag",
            self.dm.remove(keys::CRASHED),
        )
        .await
        {
            say(text::CLEARED_FLAG);
        }
        let stopped = stopped_batch(now_unix());
        bounded(deadline, "record the stop", self.dm.put_batch(&stopped)).await;
    }
}

/// Time allowed for the shutdown writes: one step, at most 1 s, but at least
/// 250 ms so a busy machine does not turn a graceful stop into a "crash".
fn shutdown_budget(step: Duration) -> Duration {
    step.clamp(Duration::from_millis(250), Duration::from_secs(1))
}

/// Runs one shutdown write before `deadline`; prints why it failed, if it did.
async fn bounded<T>(
    deadline: Instant,
    what: &str,
    write: impl Future<Output = Result<T, KvError>>,
) -> bool {
    match timeout_at(deadline, write).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            say(text::shutdown_write_failed(what, &e.to_string()));
            false
        }
        Err(_) => {
            say(text::shutdown_write_failed(what, "no answer in time"));
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_is_bounded_by_the_step_within_limits() {
        let ms = Duration::from_millis;
        assert_eq!(shutdown_budget(ms(50)), ms(250));
        assert_eq!(shutdown_budget(ms(600)), ms(600));
        assert_eq!(shutdown_budget(Duration::from_secs(2)), ms(1000));
    }
}
