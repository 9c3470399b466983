//! `--kill-at PCT`: the dashboard sends SIGKILL itself when the task's
//! progress crosses PCT, so recordings and demos crash at the same point
//! every time. A pure check on recovery state; `App` turns its answer into a
//! `Command::Signal`.

use crate::recovery::Tracker;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoKill {
    /// Progress (0..=100) at which to kill.
    pub at: i64,
    /// Kill again in every new task (progress went back below `at`),
    /// instead of once per dashboard run.
    pub every_cycle: bool,
    /// Progress was seen below `at` since the last kill: the next crossing fires.
    armed: bool,
    /// Kills sent so far.
    pub fired: u32,
    /// Kill the instance's node (agent and workers), not only the worker.
    pub node: bool,
}

impl AutoKill {
    pub fn new(at: i64, every_cycle: bool) -> AutoKill {
        AutoKill {
            at,
            every_cycle,
            armed: false,
            fired: 0,
            node: false,
        }
    }

    /// Kill the node the instance runs on instead (`--kill-node`).
    pub fn node(mut self, node: bool) -> AutoKill {
        self.node = node;
        self
    }

    /// The instance to SIGKILL now, if any. Fires when the progress has
    /// crossed `at` from below (an empty namespace counts as 0%) and a
    /// worker is alive; once, or once per task with `every_cycle`. A resumed
    /// worker starts at or above `at`, so it is not killed again in the same
    /// task.
    pub fn check(&mut self, tracker: &Tracker) -> Option<String> {
        let progress = tracker.task().progress.unwrap_or(0);
        if progress < self.at {
            if self.fired == 0 || self.every_cycle {
                self.armed = true;
            }
            return None;
        }
        if !self.armed {
            return None;
        }
        let target = tracker
            .instances()
            .find(|i| i.pid.is_some() && i.phase.is_alive())?;
        self.armed = false;
        self.fired += 1;
        Some(target.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::sample;

    fn checkpoint(t: &mut Tracker, n: i64) {
        t.apply(n as u64 * 100, sample::checkpoint(n));
    }

    fn started(t: &mut Tracker, pid: u32) {
        t.apply(0, sample::started(pid));
    }

    fn killed(t: &mut Tracker) {
        t.apply(0, sample::sigkilled());
    }

    /// Runs checkpoints `from..=to`, checking after each; returns the steps that fired.
    fn run(t: &mut Tracker, k: &mut AutoKill, from: i64, to: i64) -> Vec<i64> {
        let mut fired = Vec::new();
        for n in from..=to {
            checkpoint(t, n);
            if k.check(t).is_some() {
                fired.push(n);
            }
        }
        fired
    }

    #[test]
    fn fires_once_when_progress_reaches_the_mark() {
        let mut t = Tracker::new();
        let mut k = AutoKill::new(50, false);
        started(&mut t, 1);
        assert_eq!(k.check(&t), None, "0% is below the mark");
        assert_eq!(run(&mut t, &mut k, 1, 4), Vec::<i64>::new());
        checkpoint(&mut t, 5);
        assert_eq!(k.check(&t).as_deref(), Some("kv-demo-001"));
        assert_eq!(k.check(&t), None, "only once per crossing");
        killed(&mut t);
        started(&mut t, 2);
        // Resumed from 50%: never below the mark again in this task.
        assert!(run(&mut t, &mut k, 6, 10).is_empty());
        // A new task from 0 is not killed without --kill-every-cycle.
        assert!(run(&mut t, &mut k, 0, 10).is_empty());
        assert_eq!(k.fired, 1);
    }

    #[test]
    fn every_cycle_fires_again_in_each_new_task() {
        let mut t = Tracker::new();
        let mut k = AutoKill::new(30, true);
        started(&mut t, 1);
        assert_eq!(run(&mut t, &mut k, 0, 10), vec![3]);
        assert_eq!(run(&mut t, &mut k, 0, 10), vec![3]);
        assert_eq!(k.fired, 2);
    }

    #[test]
    fn waits_for_a_live_worker_and_a_crossing_from_below() {
        let mut t = Tracker::new();
        let mut k = AutoKill::new(50, false);
        // A namespace left at 70% by an earlier run: no crossing seen, no kill.
        checkpoint(&mut t, 7);
        started(&mut t, 1);
        assert_eq!(k.check(&t), None);

        let mut t = Tracker::new();
        let mut k = AutoKill::new(50, false);
        assert_eq!(k.check(&t), None);
        checkpoint(&mut t, 5);
        // No worker alive yet: stay armed.
        assert_eq!(k.check(&t), None);
        started(&mut t, 1);
        assert_eq!(k.check(&t).as_deref(), Some("kv-demo-001"));
    }
}
