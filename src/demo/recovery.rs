//! Deciding how a worker starts from what its namespace holds (DESIGN.md,
//! "Recovery invariants"). Pure: the caller reads the namespace (and waits
//! while the controller is unreachable), this only interprets it.

use super::checkpoint::{parse_step_name, Checkpoint, PERCENT_PER_STEP};
use super::keys;
use crate::kv::Entry;
use anyhow::{bail, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Nothing saved, or the last task completed: a new task from 0%.
    NewTask,
    /// The crash flag is set and a task stopped part-way: resume it.
    RecoverAfterCrash(Checkpoint),
    /// No crash flag, but a graceful stop paused a task part-way: resume it.
    ResumePaused(Checkpoint),
}

impl StartMode {
    /// The checkpoint the task continues from.
    pub fn resume_from(self) -> Checkpoint {
        match self {
            StartMode::NewTask => Checkpoint::START,
            StartMode::RecoverAfterCrash(cp) | StartMode::ResumePaused(cp) => cp,
        }
    }
}

/// Decides the start mode from every entry of the namespace.
///
/// A task is part-way when `task.progress` is 1..=100 and `task.status` is not
/// `completed`: a checkpoint at 100% whose completion writes never landed (a
/// kill between the last step and `task.status=completed`) is finished, not
/// redone. If progress, counter and checkpoint name disagree (a torn
/// checkpoint left by the original worker's four separate PUTs), the lowest
/// step wins: redoing a step is safe, skipping one is not.
pub fn decide(entries: &[Entry]) -> Result<StartMode> {
    let value = |key: &str| entries.iter().find(|e| e.key == key).map(|e| &e.value);

    let Some(progress) = value(keys::PROGRESS) else {
        return Ok(StartMode::NewTask);
    };
    let progress: u32 = match progress.trim().parse::<i64>() {
        Ok(p) => p.clamp(0, 100) as u32,
        Err(_) => bail!(
            "{} holds {progress:?}, not an integer; remove it to start a new task",
            keys::PROGRESS
        ),
    };
    let completed = value(keys::TASK_STATUS).is_some_and(|s| s == keys::STATUS_COMPLETED);
    if completed || !(1..=100).contains(&progress) {
        return Ok(StartMode::NewTask);
    }

    let mut steps = progress / PERCENT_PER_STEP;
    if let Some(counter) = value(keys::COUNTER) {
        match counter.trim().parse::<u32>() {
            Ok(c) => steps = steps.min(c),
            Err(_) => bail!("{} holds {counter:?}, not a step count", keys::COUNTER),
        }
    }
    if let Some(name) = value(keys::CHECKPOINT) {
        match parse_step_name(name) {
            Some(n) => steps = steps.min(n),
            None => bail!("{} holds {name:?}, not step_N", keys::CHECKPOINT),
        }
    }
    let Some(cp) = Checkpoint::at(steps).filter(|cp| cp.counter() > 0) else {
        return Ok(StartMode::NewTask);
    };

    // The original tests only that the flag exists; an explicit "false" is
    // also read as "not crashed".
    let crashed = value(keys::CRASHED).is_some_and(|v| v != "false" && v != "0");
    Ok(if crashed {
        StartMode::RecoverAfterCrash(cp)
    } else {
        StartMode::ResumePaused(cp)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(pairs: &[(&str, &str)]) -> Vec<Entry> {
        Entry::strings("t", pairs)
    }

    fn at(n: u32) -> Checkpoint {
        Checkpoint::at(n).unwrap()
    }

    const STEP5: [(&str, &str); 4] = [
        ("task.progress", "50"),
        ("task.counter", "5"),
        ("task.checkpoint", "step_5"),
        ("task.status", "running"),
    ];

    #[test]
    fn empty_namespace_starts_a_new_task() {
        assert_eq!(decide(&[]).unwrap(), StartMode::NewTask);
        assert_eq!(
            decide(&ns(&[("app.crashed", "true")])).unwrap(),
            StartMode::NewTask
        );
    }

    #[test]
    fn crash_flag_with_a_part_way_task_recovers_it() {
        let mut e = ns(&STEP5);
        e.extend(ns(&[("app.crashed", "true")]));
        assert_eq!(decide(&e).unwrap(), StartMode::RecoverAfterCrash(at(5)));
        assert_eq!(decide(&e).unwrap().resume_from(), at(5));
    }

    #[test]
    fn a_paused_task_resumes_without_the_crash_block() {
        let mut e = ns(&STEP5);
        e.extend(ns(&[("app.status", "stopped"), ("app.crashed", "false")]));
        assert_eq!(decide(&e).unwrap(), StartMode::ResumePaused(at(5)));
    }

    #[test]
    fn a_task_killed_at_100_percent_is_finished_not_redone() {
        let e = ns(&[
            ("app.crashed", "true"),
            ("task.progress", "100"),
            ("task.counter", "10"),
            ("task.checkpoint", "step_10"),
            ("task.status", "running"),
        ]);
        assert_eq!(decide(&e).unwrap(), StartMode::RecoverAfterCrash(at(10)));
        // Torn at the last step: the lowest step wins, as anywhere else.
        let e = ns(&[
            ("app.crashed", "true"),
            ("task.progress", "100"),
            ("task.counter", "9"),
            ("task.checkpoint", "step_9"),
        ]);
        assert_eq!(decide(&e).unwrap(), StartMode::RecoverAfterCrash(at(9)));
    }

    #[test]
    fn a_completed_task_starts_over_even_with_the_flag() {
        let e = ns(&[
            ("app.crashed", "true"),
            ("task.progress", "100"),
            ("task.counter", "10"),
            ("task.checkpoint", "step_10"),
            ("task.status", "completed"),
        ]);
        assert_eq!(decide(&e).unwrap(), StartMode::NewTask);
        let e = ns(&[("task.progress", "40"), ("task.status", "completed")]);
        assert_eq!(decide(&e).unwrap(), StartMode::NewTask);
    }

    #[test]
    fn a_torn_checkpoint_resumes_from_its_lowest_step() {
        let e = ns(&[
            ("app.crashed", "true"),
            ("task.progress", "60"),
            ("task.counter", "5"),
            ("task.checkpoint", "step_5"),
        ]);
        assert_eq!(decide(&e).unwrap(), StartMode::RecoverAfterCrash(at(5)));
        let e = ns(&[("task.progress", "30")]);
        assert_eq!(decide(&e).unwrap(), StartMode::ResumePaused(at(3)));
    }

    #[test]
    fn unreadable_values_are_errors_not_a_fresh_start() {
        assert!(decide(&ns(&[("task.progress", "half")])).is_err());
        let e = ns(&[("task.progress", "50"), ("task.counter", "x")]);
        assert!(decide(&e).is_err());
        let e = ns(&[("task.progress", "50"), ("task.checkpoint", "five")]);
        assert!(decide(&e).is_err());
    }
}
