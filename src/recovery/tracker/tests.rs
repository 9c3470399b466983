//! The tracker's unit tests: facts in, phases, cycles and timeline lines out.

use super::*;
use crate::cluster::DesiredState;
use crate::recovery::sample::{
    checkpoint, committed_at, entry as e, exited, exited_as, flag, sigkilled, started, started_as,
};

fn phase(t: &Tracker) -> String {
    t.instance("kv-demo-001").unwrap().phase.to_string()
}

/// A run that checkpointed steps 1..=n (at 100 ms each) and was SIGKILLed
/// 100 ms after the last one.
fn killed_after_step(n: i64) -> Tracker {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    t.apply(at, flag());
    run_steps(&mut t, &mut at, 0, n);
    t.apply(
        at + 100,
        exited(
            ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
            false,
        ),
    );
    t
}

/// Runs `steps` checkpoints starting after `from`, 100 ms apart, from `at`.
fn run_steps(t: &mut Tracker, at: &mut TsMs, from: i64, to: i64) {
    for n in from + 1..=to {
        *at += 100;
        t.apply(*at, checkpoint(n));
    }
}

#[test]
fn kill_restart_resume_is_one_cycle_with_its_figures() {
    let mut t = Tracker::new();
    let mut at = 1_000;
    t.apply(at, Fact::Snapshot(vec![]));
    t.apply(at, started(10));
    assert_eq!(phase(&t), "RUNNING");
    t.apply(at + 5, flag());
    run_steps(&mut t, &mut at, 0, 5);
    assert_eq!(t.task().progress, Some(50));

    t.apply(
        1_600,
        exited(
            ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
            false,
        ),
    );
    assert_eq!(phase(&t), "CRASHED");
    assert!(t.task().crash_flag, "a SIGKILL leaves the flag set");
    t.apply(
        1_600,
        Fact::RestartScheduled {
            instance: "kv-demo-001".into(),
            delay_ms: 1000,
        },
    );
    assert_eq!(t.instance("kv-demo-001").unwrap().restart_at, Some(2_600));

    t.apply(2_610, started(11));
    assert_eq!(phase(&t), "RECOVERING");
    t.apply(2_620, flag());
    t.apply(2_700, checkpoint(6));
    assert_eq!(phase(&t), "RESUMED from 50%");

    let cycle = &t.cycles()[0];
    assert_eq!(cycle.progress_at_kill, Some(50));
    assert_eq!(cycle.resumed_from, Some(50));
    assert_eq!(cycle.steps_lost, Some(0));
    assert_eq!(cycle.kill_to_restart_ms(), Some(1_010));
    assert_eq!(cycle.kill_to_checkpoint_ms(), Some(1_100));
    assert!(cycle.flag_after_kill);
    let inst = t.instance("kv-demo-001").unwrap();
    assert_eq!((inst.crashes, inst.runs, inst.pid), (1, 2, Some(11)));

    // On the timeline: the kill at 50% with the flag still set, and the
    // resume with the cycle's figures (how they read: `text::timeline`).
    assert!(t.timeline().any(|ev| matches!(
        &ev.kind,
        TimelineKind::Exited {
            exit: ProcessExit::Signal(sig),
            progress: Some(50),
            flag: Some(true),
            requested: false,
            ..
        } if *sig == nix::sys::signal::Signal::SIGKILL
    )));
    assert!(t.timeline().any(|ev| ev.kind
        == TimelineKind::Resumed {
            cycle: cycle.clone()
        }));

    let mut at = 2_700;
    run_steps(&mut t, &mut at, 6, 10);
    t.apply(
        at,
        Fact::Deleted {
            key: "app.crashed".into(),
            writer: None,
        },
    );
    t.apply(at, Fact::Written(vec![e("task.status", "completed")]));
    t.apply(at + 10, exited(ProcessExit::Clean, false));
    assert_eq!(phase(&t), "COMPLETED");
    assert_eq!(t.completions(), 1);
}

#[test]
fn a_graceful_stop_is_stopped_and_the_next_start_is_not_a_recovery() {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    t.apply(at, flag());
    run_steps(&mut t, &mut at, 0, 3);
    t.apply(
        400,
        Fact::Deleted {
            key: "app.crashed".into(),
            writer: None,
        },
    );
    t.apply(410, exited(ProcessExit::Clean, true));
    assert_eq!(phase(&t), "STOPPED");
    assert!(!t.task().crash_flag);
    assert!(t.cycles().is_empty());
    t.apply(500, started(2));
    assert_eq!(phase(&t), "RUNNING");
    // SIGINT from outside (not requested by us) that exits 0 is a stop too.
    t.apply(600, exited(ProcessExit::Clean, false));
    assert_eq!(phase(&t), "STOPPED");
}

/// A run started after the task completed and stopped on request before a
/// step of its own is STOPPED: the completed task in the namespace is the
/// earlier run's.
#[test]
fn a_run_stopped_before_its_first_step_after_a_completion_is_stopped() {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    run_steps(&mut t, &mut at, 0, 10);
    t.apply(1_100, Fact::Written(vec![e("task.status", "completed")]));
    t.apply(1_110, exited(ProcessExit::Clean, false));
    assert_eq!(phase(&t), "COMPLETED");
    t.apply(1_200, started(2));
    t.apply(1_300, exited(ProcessExit::Clean, true));
    assert_eq!(phase(&t), "STOPPED");
    assert_eq!(t.timeline().last().unwrap().kind, TimelineKind::Stopped);
    assert_eq!(t.completions(), 1);
}

/// The feed tells a snapshot's unreadable task keys before the snapshot:
/// a checkpoint beside a progress and counter that do not read is unknown,
/// never a torn checkpoint, and the timeline says no TORN.
#[test]
fn a_snapshot_whose_task_keys_do_not_read_is_not_torn() {
    let mut t = Tracker::new();
    let bad = |key: &str| crate::kv::Unreadable {
        key: Some(key.into()),
        reason: "invalid type: integer `50`, expected a string".into(),
    };
    t.apply(
        0,
        Fact::FeedTrouble(crate::kv::FeedTrouble {
            unreadable: vec![bad("task.progress"), bad("task.counter")],
            ..Default::default()
        }),
    );
    t.apply(1, Fact::Snapshot(vec![e("task.checkpoint", "step_5")]));
    assert_eq!(t.torn(), None);
    assert_eq!(t.torn_seen(), 0);
    assert!(!t
        .timeline()
        .any(|ev| matches!(ev.kind, TimelineKind::Torn { .. })));
}

#[test]
fn the_completion_write_may_arrive_after_the_exit() {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    run_steps(&mut t, &mut at, 0, 10);
    t.apply(1_100, exited(ProcessExit::Clean, false));
    assert_eq!(phase(&t), "STOPPED");
    t.apply(1_102, Fact::Written(vec![e("task.status", "completed")]));
    assert_eq!(phase(&t), "COMPLETED");
    assert_eq!(t.timeline().last().unwrap().kind, TimelineKind::Completed);
}

#[test]
fn a_fresh_start_seen_after_its_flag_settles_as_running() {
    let mut t = Tracker::new();
    // Attach finds the process only after it has set its flag.
    t.apply(0, flag());
    t.apply(400, started(1));
    // No run left that flag: it is this run's own, its first start.
    assert_eq!(phase(&t), "RUNNING");
    assert!(!t.timeline().any(|ev| ev.kind == TimelineKind::Recovering));
    t.apply(500, checkpoint(1));
    assert_eq!(phase(&t), "RUNNING");
    assert!(t.cycles().is_empty());
}

#[test]
fn a_restart_from_zero_counts_the_lost_steps() {
    let mut t = killed_after_step(5);
    t.apply(700, started(2));
    t.apply(800, checkpoint(1));
    let cycle = &t.cycles()[0];
    assert_eq!(cycle.resumed_from, Some(0));
    assert_eq!(cycle.steps_lost, Some(5));
    assert_eq!(phase(&t), "RESUMED from 0%");
}

#[test]
fn a_torn_checkpoint_from_a_foreign_worker_is_shown_not_hidden() {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    run_steps(&mut t, &mut at, 0, 5);
    // The original C++ worker writes one key per PUT; killed in between:
    t.apply(600, Fact::Written(vec![e("task.progress", "60")]));
    t.apply(
        610,
        exited(
            ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
            false,
        ),
    );
    let torn = t.torn().expect("torn checkpoint is reported");
    assert_eq!(
        torn.to_string(),
        "progress 60%, counter 5, checkpoint step_5"
    );
    assert!(t
        .timeline()
        .any(|ev| ev.kind == TimelineKind::Torn(torn.clone())));
    // A complete checkpoint heals it.
    t.apply(700, started(2));
    t.apply(800, checkpoint(6));
    assert!(t.torn().is_none());
}

/// The screen says RESUMED as soon as the restarted run has written its start keys
/// (it has read the checkpoint then), not a step later; the cycle's figures still
/// come from its first new checkpoint.
#[test]
fn recovery_is_shown_when_the_restarted_run_announces_itself() {
    let mut t = killed_after_step(5);
    t.apply(700, started(2));
    assert_eq!(phase(&t), "RECOVERING");
    t.apply(705, flag());
    assert_eq!(phase(&t), "RESUMED from 50%");
    assert!(
        !t.timeline()
            .any(|ev| matches!(ev.kind, TimelineKind::Resumed { .. })),
        "the cycle closes at the first new checkpoint"
    );
    t.apply(900, checkpoint(6));
    assert_eq!(phase(&t), "RESUMED from 50%");
    let cycle = t.cycles().last().expect("a cycle").clone();
    assert_eq!(cycle.first_checkpoint_at, Some(900));
    assert_eq!(cycle.resumed_from, Some(50));
}

/// A worker that never writes the flag is not "cleared": the flag was never
/// seen; before the namespace is first read, nothing is known of it.
#[test]
fn a_flag_never_written_is_never_seen_and_a_deleted_one_is_cleared() {
    let mut t = Tracker::new();
    t.apply(0, started(1));
    assert_eq!(t.crash_flag(), CrashFlag::Unknown);
    assert!(!t.namespace_read());
    t.apply(5, Fact::Snapshot(vec![]));
    assert!(t.namespace_read());
    assert_eq!(t.crash_flag(), CrashFlag::NeverSeen);
    t.apply(10, checkpoint(1));
    assert_eq!(t.crash_flag(), CrashFlag::NeverSeen);
    t.apply(20, flag());
    assert_eq!(t.crash_flag(), CrashFlag::Set);
    t.apply(
        30,
        Fact::Deleted {
            key: crate::recovery::CRASH_FLAG_KEY.into(),
            writer: None,
        },
    );
    assert_eq!(t.crash_flag(), CrashFlag::Cleared);
}

/// The feed and the supervisor are two channels: the restarted run's start keys may
/// arrive before its `Started`. It is RESUMED the moment both are in.
#[test]
fn start_keys_that_overtake_the_started_event_still_resume_at_once() {
    let mut t = killed_after_step(5);
    t.apply(702, flag());
    t.apply(703, started(2));
    assert_eq!(phase(&t), "RESUMED from 50%");
    t.apply(900, checkpoint(6));
    let cycle = t.cycles().last().expect("a cycle").clone();
    assert_eq!(cycle.resumed_from, Some(50));
    assert_eq!(cycle.steps_lost, Some(0));
}

#[test]
fn a_worker_writing_one_key_at_a_time_still_resumes() {
    let mut t = killed_after_step(5);
    t.apply(700, started(2));
    t.apply(750, flag());
    // Step 6 as the original C++ worker writes it: four PUTs.
    t.apply(800, Fact::Written(vec![e("task.progress", "60")]));
    assert!(t.torn().is_some());
    // Announced by its flag write; the torn key does not move where it resumed from.
    assert_eq!(phase(&t), "RESUMED from 50%");
    t.apply(801, Fact::Written(vec![e("task.counter", "6")]));
    t.apply(802, Fact::Written(vec![e("task.checkpoint", "step_6")]));
    assert!(t.torn().is_none());
    assert_eq!(phase(&t), "RESUMED from 50%");
    assert_eq!(t.cycles()[0].steps_lost, Some(0));
    // Its first step is its first progress write, whole or not.
    assert_eq!(t.cycles()[0].kill_to_checkpoint_ms(), Some(200));
}

#[test]
fn a_late_delivered_last_checkpoint_still_counts_as_the_kill_point() {
    let mut t = killed_after_step(4);
    t.apply(501, checkpoint(5));
    assert_eq!(t.cycles()[0].progress_at_kill, Some(50));
    t.apply(900, started(2));
    t.apply(950, flag());
    t.apply(1_000, checkpoint(6));
    assert_eq!(t.cycles()[0].steps_lost, Some(0));
}

#[test]
fn a_last_checkpoint_delivered_after_an_instant_restart_is_still_the_kill_point() {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    t.apply(at, flag());
    run_steps(&mut t, &mut at, 0, 4);
    // Restart delay 0: the new process is up before step 5 reaches us.
    t.apply(
        500,
        exited(
            ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
            false,
        ),
    );
    t.apply(501, started(2));
    t.apply(502, checkpoint(5));
    assert_eq!(phase(&t), "RECOVERING");
    t.apply(503, flag());
    t.apply(600, checkpoint(6));
    let cycle = &t.cycles()[0];
    assert_eq!(cycle.progress_at_kill, Some(50));
    assert_eq!(cycle.resumed_from, Some(50));
    assert_eq!(cycle.steps_lost, Some(0));
    assert_eq!(phase(&t), "RESUMED from 50%");
}

// The dead run's last write delivered after the exit, far beyond the
// fallback's windows: with its write time (plumdash's controller) it is
// still judged right; without one (the original's), as before.

#[test]
fn a_completion_written_before_the_exit_belongs_to_it_however_late_it_comes() {
    let completion = || Fact::Written(vec![e("task.status", "completed")]);
    for timed in [true, false] {
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, started(1));
        run_steps(&mut t, &mut at, 0, 10);
        t.apply(1_100, exited(ProcessExit::Clean, false));
        assert_eq!(phase(&t), "STOPPED");
        // Written at 1 090, delivered 8 s after the exit.
        let write = if timed {
            committed_at(1_090, completion())
        } else {
            completion()
        };
        t.apply(9_100, write);
        if timed {
            assert_eq!(phase(&t), "COMPLETED");
            assert_eq!(t.timeline().last().unwrap().kind, TimelineKind::Completed);
        } else {
            // No write time: past the fallback's 5 s it is not the exit's.
            assert_eq!(phase(&t), "STOPPED");
        }
    }
    // Written after the exit (by someone else): not that run's completion.
    let mut t = Tracker::new();
    t.apply(0, started(1));
    t.apply(1_100, exited(ProcessExit::Clean, false));
    t.apply(1_300, committed_at(1_200, completion()));
    assert_eq!(phase(&t), "STOPPED");
}

#[test]
fn a_last_checkpoint_written_before_the_kill_is_the_kill_point_however_late_it_comes() {
    for timed in [true, false] {
        let stamp = |ms, fact| if timed { committed_at(ms, fact) } else { fact };
        let mut t = Tracker::new();
        let mut at = 0;
        t.apply(at, started(1));
        t.apply(at, stamp(0, flag()));
        for n in 1..=4 {
            at += 100;
            t.apply(at, stamp(at, checkpoint(n)));
        }
        // Step 5 written at 495; the kill is seen at 500, the restart at 501.
        t.apply(
            500,
            exited(
                ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
                false,
            ),
        );
        t.apply(501, started(2));
        // Step 5 arrives 2 s later; then the new run's start keys and step 6.
        t.apply(2_500, stamp(495, checkpoint(5)));
        t.apply(2_501, stamp(510, flag()));
        t.apply(2_600, stamp(600, checkpoint(6)));
        let cycle = &t.cycles()[0];
        if timed {
            assert_eq!(cycle.progress_at_kill, Some(50));
            assert_eq!(cycle.resumed_from, Some(50));
            assert_eq!(cycle.steps_lost, Some(0));
            assert_eq!(phase(&t), "RESUMED from 50%");
        } else {
            // No write time: past the fallback's 250 ms step 5 reads as the
            // new run's first checkpoint.
            assert_eq!(cycle.progress_at_kill, Some(40));
            assert_eq!(cycle.resumed_from, Some(40));
        }
    }
}

#[test]
fn a_checkpoint_committed_between_the_kill_and_the_respawn_is_the_dead_runs() {
    // Sent before the kill, committed just after it was seen: before the
    // restart was spawned and announced, so not the new run's.
    let mut t = killed_after_step(4);
    t.apply(500, started(2));
    t.apply(1_500, committed_at(499, checkpoint(5)));
    assert_eq!(t.cycles()[0].counter_at_kill, Some(5));
    assert_eq!(phase(&t), "RECOVERING");
    t.apply(1_501, committed_at(520, flag()));
    t.apply(1_600, committed_at(620, checkpoint(6)));
    assert_eq!(t.cycles()[0].steps_lost, Some(0));
    assert_eq!(t.cycles()[0].resumed_from, Some(50));
}

#[test]
fn a_restarted_run_that_never_announces_itself_resumes_at_its_first_checkpoint() {
    // A `--cmd` worker that writes no start keys: its first checkpoint,
    // one step past the kill point and soon after the restart, is its own
    // when its write time says so (the fallback takes it for the dead's).
    for timed in [true, false] {
        let mut t = killed_after_step(5);
        t.apply(700, started(2));
        let step = if timed {
            committed_at(750, checkpoint(6))
        } else {
            checkpoint(6)
        };
        t.apply(751, step);
        let cycle = &t.cycles()[0];
        if timed {
            assert_eq!(cycle.resumed_from, Some(50));
            assert_eq!(cycle.steps_lost, Some(0));
            assert_eq!(phase(&t), "RESUMED from 50%");
        } else {
            assert_eq!(cycle.resumed_from, None, "still open");
            assert_eq!(cycle.counter_at_kill, Some(6));
        }
    }
}

#[test]
fn start_keys_written_before_the_kill_do_not_announce_the_restart() {
    // A run that died right after its start: its own flag write, delivered
    // after its exit and the restart, is not the restarted run's.
    let mut t = killed_after_step(5);
    t.apply(601, started(2));
    t.apply(900, committed_at(590, flag()));
    assert_eq!(phase(&t), "RECOVERING");
    t.apply(901, committed_at(610, flag()));
    assert_eq!(phase(&t), "RESUMED from 50%");
}

/// A tiny deterministic generator, so the interleavings below are replayable.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// What a correct worker and the supervisor produce, with when it happened
/// (`true`: a process event): steps every 100 ms, a SIGKILL `gap` + 0–99 ms
/// after a random step, a restart 0–2 ms later; the new run announces itself
/// then resumes to 100%. Also the step killed after.
fn correct_run(rng: &mut Lcg, gap: TsMs) -> (Vec<(TsMs, bool, Fact)>, i64) {
    let mut produced: Vec<(TsMs, bool, Fact)> = Vec::new();
    let mut now: TsMs = 1_000;
    produced.push((now, true, started(1)));
    produced.push((now + 1, false, flag()));
    let kill_after = 1 + rng.below(8) as i64;
    for n in 1..=kill_after {
        produced.push((now + n as u64 * 100, false, checkpoint(n)));
    }
    now += kill_after as u64 * 100 + gap + rng.below(100);
    produced.push((now, true, sigkilled()));
    now += rng.below(3);
    produced.push((now, true, started(2)));
    produced.push((now + 1, false, flag()));
    for n in kill_after + 1..=10 {
        let at = now + 2 + (n - kill_after) as u64 * 100;
        produced.push((at, false, checkpoint(n)));
    }
    (produced, kill_after)
}

/// Delivers `produced` as two channels, each in order: process events within
/// 0–1 ms, namespace writes within 0..`kv_latency` ms (carrying their write
/// time when `stamped`); ties go to process events. The tracker that saw it.
fn deliver(
    produced: Vec<(TsMs, bool, Fact)>,
    rng: &mut Lcg,
    kv_latency: u64,
    stamped: bool,
) -> Tracker {
    let (mut ev_t, mut kv_t) = (0, 0);
    let mut delivered: Vec<(TsMs, u8, usize, Fact)> = Vec::new();
    for (i, (at, is_event, fact)) in produced.into_iter().enumerate() {
        let (last, lat) = if is_event {
            (&mut ev_t, rng.below(2))
        } else {
            (&mut kv_t, rng.below(kv_latency))
        };
        *last = (*last).max(at + lat);
        let fact = if is_event || !stamped {
            fact
        } else {
            committed_at(at, fact)
        };
        delivered.push((*last, u8::from(!is_event), i, fact));
    }
    delivered.sort_by_key(|(t, kind, i, _)| (*t, *kind, *i));
    let mut t = Tracker::new();
    for (at, _, _, fact) in delivered {
        t.apply(at, fact);
    }
    t
}

/// For 500 seeds, a correct run delivered as `deliver(…, kv_latency, stamped)`
/// is one cycle, killed and resumed at the step killed after, nothing lost,
/// completed once.
fn every_seed_yields_exact_cycles(gap: TsMs, kv_latency: u64, stamped: bool) {
    for seed in 0..500 {
        let mut rng = Lcg(seed);
        let (produced, kill_after) = correct_run(&mut rng, gap);
        let t = deliver(produced, &mut rng, kv_latency, stamped);
        assert_eq!(t.cycles().len(), 1, "seed {seed}");
        let cycle = &t.cycles()[0];
        assert_eq!(
            (cycle.progress_at_kill, cycle.resumed_from, cycle.steps_lost),
            (Some(kill_after * 10), Some(kill_after * 10), Some(0)),
            "seed {seed}: {cycle:?}"
        );
        assert_eq!(t.completions(), 1, "seed {seed}");
    }
}

#[test]
fn any_delivery_order_of_a_correct_worker_yields_exact_cycles() {
    // Namespace writes within 0–5 ms, arrival times only.
    every_seed_yields_exact_cycles(0, 6, false);
}

#[test]
fn with_write_times_any_delivery_delay_yields_exact_cycles() {
    // Namespace writes, carrying their write time, within 0–3 s.
    every_seed_yields_exact_cycles(1, 3_000, true);
}

fn attached(pid: u32) -> Fact {
    Fact::Attached {
        instance: "kv-demo-001".into(),
        pid,
    }
}

fn gone() -> Fact {
    exited(ProcessExit::Unknown, false)
}

fn deleted(key: &str) -> Fact {
    Fact::Deleted {
        key: key.into(),
        writer: None,
    }
}

/// Attached to a worker at step `n`, its flag set as every running worker's is.
fn attached_at_step(n: i64) -> Tracker {
    let mut t = Tracker::new();
    let mut entries = vec![e("app.crashed", "true")];
    if let Fact::Written(step) = checkpoint(n) {
        entries.extend(step);
    }
    t.apply(0, Fact::Snapshot(entries));
    t.apply(10, attached(7));
    t
}

#[test]
fn a_worker_found_running_is_running_at_its_progress_not_a_recovery() {
    let t = attached_at_step(2);
    assert_eq!(phase(&t), "RUNNING");
    assert_eq!(
        t.detail("kv-demo-001", 20)
            .map(|d| d.to_string())
            .as_deref(),
        Some("attached at 20%")
    );
    // Found before the first read of the namespace: the progress comes with it.
    let mut t = Tracker::new();
    t.apply(0, attached(7));
    t.apply(5, Fact::Snapshot(vec![e("app.crashed", "true")]));
    t.apply(10, checkpoint(3));
    assert_eq!(phase(&t), "RUNNING");
    assert_eq!(
        t.detail("kv-demo-001", 20)
            .map(|d| d.to_string())
            .as_deref(),
        Some("attached at 30%")
    );
    assert!(t.cycles().is_empty());
}

#[test]
fn an_unseen_end_is_judged_from_the_namespace() {
    // Completed: flag cleared, task.status=completed.
    let mut t = attached_at_step(9);
    t.apply(100, checkpoint(10));
    t.apply(101, deleted("app.crashed"));
    t.apply(102, Fact::Written(vec![e("task.status", "completed")]));
    t.apply(200, gone());
    assert_eq!(phase(&t), "COMPLETED");
    let inst = t.instance("kv-demo-001").unwrap();
    assert_eq!(inst.crashes, 0);
    assert!(t.cycles().is_empty());
    assert_eq!(t.detail("kv-demo-001", 300), None);

    // Stopped: flag cleared, app.status=stopped.
    let mut t = attached_at_step(4);
    t.apply(101, deleted("app.crashed"));
    t.apply(102, Fact::Written(vec![e("app.status", "stopped")]));
    t.apply(200, gone());
    assert_eq!(phase(&t), "STOPPED");
    assert_eq!(t.instance("kv-demo-001").unwrap().crashes, 0);

    // Crashed: the flag is still set.
    let mut t = attached_at_step(5);
    t.apply(200, gone());
    assert_eq!(phase(&t), "CRASHED");
    assert_eq!(t.instance("kv-demo-001").unwrap().crashes, 1);
    assert_eq!(
        t.detail("kv-demo-001", 300)
            .map(|d| d.to_string())
            .as_deref(),
        Some("gone, flag still set")
    );
    // Gone at 50%, the flag still set: a crash, its exit status unknown.
    let last = t.timeline().last().unwrap();
    assert!(
        matches!(
            last.kind,
            TimelineKind::Exited {
                exit: ProcessExit::Unknown,
                progress: Some(50),
                flag: Some(true),
                crashed: true,
                ..
            }
        ),
        "{last:?}"
    );
}

#[test]
fn a_restart_by_someone_else_is_the_next_run_and_resumes() {
    let mut t = attached_at_step(5);
    t.apply(200, gone());
    t.apply(3_000, started(8));
    assert_eq!(phase(&t), "RECOVERING");
    t.apply(3_010, flag());
    assert_eq!(phase(&t), "RESUMED from 50%");
    t.apply(5_000, checkpoint(6));
    let inst = t.instance("kv-demo-001").unwrap();
    assert_eq!((inst.crashes, inst.runs, inst.pid), (1, 2, Some(8)));
    assert_eq!(t.cycles().len(), 1);
    assert_eq!(t.cycles()[0].steps_lost, Some(0));
    assert_eq!(t.detail("kv-demo-001", 5_000), None, "no longer 'attached'");
}

#[test]
fn the_task_started_after_a_completion_is_new_not_resumed_from_zero() {
    let mut t = attached_at_step(9);
    t.apply(100, checkpoint(10));
    t.apply(101, deleted("app.crashed"));
    t.apply(102, Fact::Written(vec![e("task.status", "completed")]));
    t.apply(200, gone());
    // The agent takes the exit for a failure and starts the app again.
    t.apply(3_000, started(8));
    t.apply(3_010, flag());
    assert_eq!(phase(&t), "RUNNING");
    t.apply(5_000, checkpoint(1));
    assert_eq!(phase(&t), "RUNNING");
    assert!(t.cycles().is_empty());
    assert_eq!(t.instance("kv-demo-001").unwrap().crashes, 0);
}

#[test]
fn a_graceful_stop_replaced_before_its_death_was_seen_is_still_a_stop() {
    let mut t = attached_at_step(4);
    t.apply(101, deleted("app.crashed"));
    t.apply(102, Fact::Written(vec![e("app.status", "stopped")]));
    // The replacement set the flag again before the old pid was missed.
    t.apply(150, flag());
    t.apply(200, gone());
    assert_eq!(phase(&t), "STOPPED");
    assert_eq!(t.instance("kv-demo-001").unwrap().crashes, 0);
    assert!(t.cycles().is_empty());
}

#[test]
fn a_crash_nobody_restarts_is_news_after_the_grace() {
    let mut t = attached_at_step(5);
    t.set_restart_grace(std::time::Duration::from_secs(10));
    t.apply(1_000, gone());
    assert!(!t.tick(5_000));
    assert!(t.tick(11_000));
    assert!(!t.tick(12_000), "said once");
    assert_eq!(
        t.detail("kv-demo-001", 13_500)
            .map(|d| d.to_string())
            .as_deref(),
        Some("not restarted for 12s")
    );
    let last = t.timeline().last().unwrap();
    assert_eq!(
        (last.instance.as_deref(), &last.kind),
        (
            Some("kv-demo-001"),
            &TimelineKind::NotRestarted { grace_ms: 10_000 }
        )
    );
    assert_eq!(
        t.timeline().last().unwrap().to_json()["kind"],
        "not_restarted"
    );
    // Owned instances (an exit status we read) are the supervisor's to restart.
    let mut owned = killed_after_step(3);
    owned.set_restart_grace(std::time::Duration::from_secs(1));
    assert!(!owned.tick(60_000));
}

#[test]
fn failures_and_feed_outages_are_on_the_timeline() {
    let mut t = Tracker::new();
    t.apply(0, started(1));
    t.apply(1, exited(ProcessExit::Code(1), false));
    assert_eq!(phase(&t), "CRASHED");
    t.apply(
        2,
        Fact::Failed {
            instance: "kv-demo-001".into(),
            reason: "5 restarts in a row".into(),
        },
    );
    assert_eq!(phase(&t), "FAILED");
    t.apply(
        3,
        Fact::FeedDown {
            error: "connection refused".into(),
        },
    );
    t.apply(
        4,
        Fact::FeedDown {
            error: "connection refused".into(),
        },
    );
    assert_eq!(t.feed_error(), Some("connection refused"));
    t.apply(
        5,
        Fact::FeedUp {
            via: "stream".into(),
        },
    );
    assert_eq!(t.feed_error(), None);
    let events: Vec<_> = t.timeline().collect();
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(events[0].kind, TimelineKind::Started { pid: 1 });
    assert!(matches!(
        events[1].kind,
        TimelineKind::Exited {
            exit: ProcessExit::Code(1),
            progress: None,
            requested: false,
            ..
        }
    ));
    assert_eq!(
        events[2].kind,
        TimelineKind::Failed {
            reason: "5 restarts in a row".into()
        }
    );
    assert!(events[..3]
        .iter()
        .all(|e| e.instance.as_deref() == Some("kv-demo-001")));
    // The feed's events are no instance's.
    assert_eq!(
        (events[3].instance.as_deref(), &events[3].kind),
        (
            None,
            &TimelineKind::FeedDown {
                error: "connection refused".into()
            }
        )
    );
    assert_eq!(
        (events[4].instance.as_deref(), &events[4].kind),
        (
            None,
            &TimelineKind::FeedUp {
                via: "stream".into()
            }
        )
    );
}

/// Nodes A and B, and deployment d1's rows (`(instance, node, desired, fenced)`).
fn cluster(a_healthy: bool, rows: &[(&str, &str, DesiredState, u64)]) -> Fact {
    use crate::recovery::sample::{assignment, node};
    Fact::Cluster(crate::cluster::ClusterView {
        nodes: vec![node("nodeA", a_healthy), node("nodeB", true)],
        assignments: rows
            .iter()
            .map(|(id, n, desired, fenced)| crate::cluster::Assignment {
                fenced_writes: Some(*fenced),
                ..assignment(id, n, desired.clone())
            })
            .collect(),
    })
}

/// d1-a running on nodeA, its flag set, 4 steps checkpointed (by 400 ms).
fn running_on_node_a() -> Tracker {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(
        at,
        cluster(true, &[("d1-a", "nodeA", DesiredState::Running, 0)]),
    );
    t.apply(at, started_as("d1-a", 1));
    t.apply(at, flag());
    run_steps(&mut t, &mut at, 0, 4);
    t
}

#[test]
fn a_frozen_nodes_failover_is_a_cycle_with_figures_and_its_thawed_end_is_no_crash() {
    use super::super::facts::NodeAction;
    let mut t = running_on_node_a();
    t.apply(
        1_000,
        Fact::NodeAction {
            node: "nodeA".into(),
            action: NodeAction::Frozen,
        },
    );
    // The frozen worker never exits; the controller moves its row after the TTL.
    t.apply(
        4_000,
        cluster(false, &[("d1-a", "nodeA", DesiredState::Running, 0)]),
    );
    t.apply(
        4_100,
        cluster(
            false,
            &[
                ("d1-a", "nodeA", DesiredState::Stopped, 0),
                ("d1-b", "nodeB", DesiredState::Running, 0),
            ],
        ),
    );
    assert_eq!(t.cycles().len(), 1, "the move opens the cycle");
    assert_eq!(t.cycles()[0].how, ProcessExit::NodeLost);
    assert_eq!(t.cycles()[0].killed_at, 1_000, "from the freeze");
    assert_eq!(
        t.detail("d1-a", 4_100).map(|d| d.to_string()).as_deref(),
        Some("replaced by d1-b on nodeB")
    );
    t.apply(4_200, started_as("d1-b", 2));
    t.apply(4_250, flag());
    t.apply(4_600, checkpoint(5));
    let cycle = &t.cycles()[0];
    assert_eq!((cycle.resumed_from, cycle.steps_lost), (Some(40), Some(0)));
    let last = t.timeline().last().unwrap();
    let TimelineKind::FailedOver(f) = &last.kind else {
        panic!("the failover's figures: {last:?}");
    };
    assert_eq!(
        (f.to_running_ms(), f.to_checkpoint_ms()),
        (Some(3_200), Some(3_600))
    );
    assert_eq!(
        t.instance("d1-b").unwrap().phase,
        Phase::Resumed {
            from: 40,
            at_most: false
        }
    );

    // Thawed: its write is refused and it stops (kv-demo exits 3). Not a crash.
    t.apply(
        9_000,
        Fact::NodeAction {
            node: "nodeA".into(),
            action: NodeAction::Thawed,
        },
    );
    t.apply(
        9_100,
        cluster(
            true,
            &[
                ("d1-a", "nodeA", DesiredState::Stopped, 1),
                ("d1-b", "nodeB", DesiredState::Running, 0),
            ],
        ),
    );
    t.apply(9_150, exited_as("d1-a", ProcessExit::Code(3)));
    // Newest first: its end after the move (not a crash), its exit, the
    // write the controller refused.
    let last: Vec<_> = t.timeline().rev().take(3).collect();
    assert!(last.iter().all(|e| e.instance.as_deref() == Some("d1-a")));
    assert_eq!(last[0].kind, TimelineKind::Superseded { by: "d1-b".into() });
    assert!(
        matches!(
            last[1].kind,
            TimelineKind::Exited {
                exit: ProcessExit::Code(3),
                // Its work moved on: the namespace's progress is not its own.
                progress: None,
                requested: false,
                ..
            }
        ),
        "{:?}",
        last[1]
    );
    assert_eq!(
        last[2].kind,
        TimelineKind::Fenced {
            node: "nodeA".into(),
            refused: 1,
            by: Some("d1-b".into())
        }
    );
    assert_eq!(t.instance("d1-a").unwrap().phase, Phase::Stopped);
    assert_eq!(t.instance("d1-a").unwrap().crashes, 0);
    assert_eq!(
        t.cycles().len(),
        1,
        "no cycle for the replaced writer's end"
    );
}

/// Two runs alive in one namespace, its checkpoint at step 6; and the time.
fn two_writers_at_step_six() -> (Tracker, TsMs) {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    t.apply(at, started_as("other", 2));
    run_steps(&mut t, &mut at, 0, 6);
    (t, at)
}

#[test]
fn a_checkpoint_that_goes_back_within_a_task_names_the_second_writer() {
    let (mut t, at) = two_writers_at_step_six();
    t.apply(at + 100, checkpoint(3));
    assert_eq!(
        t.timeline().last().unwrap().kind,
        TimelineKind::WentBack {
            from: 6,
            to: 3,
            alive: vec!["kv-demo-001".into(), "other".into()].into()
        }
    );
    // A new task after a completion starts low again: no warning.
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    run_steps(&mut t, &mut at, 0, 10);
    t.apply(at + 50, Fact::Written(vec![e("task.status", "completed")]));
    t.apply(at + 100, checkpoint(1));
    assert!(
        !t.timeline()
            .any(|e| matches!(e.kind, TimelineKind::WentBack { .. })),
        "{:?}",
        t.timeline().map(|e| &e.kind).collect::<Vec<_>>()
    );
}

/// Many writers of one namespace go back often: the events share one list
/// of who was alive while it stays the same, and get a new one when it changes.
#[test]
fn checkpoints_going_back_share_the_list_of_the_alive() {
    let (mut t, at) = two_writers_at_step_six();
    t.apply(at + 100, checkpoint(3));
    t.apply(at + 200, checkpoint(6));
    t.apply(at + 300, checkpoint(2));
    t.apply(at + 400, started_as("third", 3));
    t.apply(at + 500, checkpoint(6));
    t.apply(at + 600, checkpoint(1));
    let alive: Vec<_> = t
        .timeline()
        .filter_map(|e| match &e.kind {
            TimelineKind::WentBack { alive, .. } => Some(alive.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(alive.len(), 3, "{alive:?}");
    assert!(std::sync::Arc::ptr_eq(&alive[0], &alive[1]));
    assert_eq!(
        *alive[2],
        ["kv-demo-001".to_string(), "other".into(), "third".into()]
    );
}

#[test]
fn a_killed_nodes_instance_whose_work_moved_is_not_news_as_unrestarted() {
    let mut t = running_on_node_a();
    t.set_restart_grace(std::time::Duration::from_secs(10));
    t.apply(1_000, exited_as("d1-a", ProcessExit::Unknown));
    assert_eq!(t.instance("d1-a").unwrap().phase, Phase::Crashed);
    t.apply(
        1_300,
        cluster(
            false,
            &[
                ("d1-a", "nodeA", DesiredState::Stopped, 0),
                ("d1-b", "nodeB", DesiredState::Running, 0),
            ],
        ),
    );
    assert!(!t.tick(30_000), "its work runs on as d1-b");
    assert!(!t
        .timeline()
        .any(|e| matches!(e.kind, TimelineKind::NotRestarted { .. })));
    assert_eq!(
        t.detail("d1-a", 30_000).map(|d| d.to_string()).as_deref(),
        Some("moved to d1-b on nodeB")
    );
}

#[test]
fn a_failover_resumed_before_a_read_showed_the_move_still_gets_its_figures() {
    let mut t = running_on_node_a();
    t.apply(
        990,
        Fact::NodeAction {
            node: "nodeA".into(),
            action: super::super::facts::NodeAction::Killed,
        },
    );
    t.apply(1_000, exited_as("d1-a", ProcessExit::Unknown));
    t.apply(1_300, started_as("d1-b", 2));
    t.apply(1_320, flag());
    t.apply(1_350, checkpoint(5));
    assert_eq!(t.cycles()[0].steps_lost, Some(0));
    t.apply(
        1_400,
        cluster(
            false,
            &[
                ("d1-a", "nodeA", DesiredState::Stopped, 0),
                ("d1-b", "nodeB", DesiredState::Running, 0),
            ],
        ),
    );
    let last = t.timeline().last().unwrap();
    let TimelineKind::FailedOver(f) = &last.kind else {
        panic!("the figures: {last:?}");
    };
    assert_eq!(
        (f.instance.as_str(), f.to_running_ms(), f.to_checkpoint_ms()),
        ("d1-a", Some(310), Some(360))
    );
}

// Replays of the original C++ kv-demo's histories (four PUTs per step, the
// flag deleted and set again on recovery, defaults when the controller is
// down), with the writer of each write named by the controller and without.

use crate::recovery::sample::{by, by_child, delete, original_step, put};

/// `fact`, named as written by `pid` when `named`.
fn maybe_by(named: bool, pid: u32, fact: Fact) -> Fact {
    if named {
        by(pid, fact)
    } else {
        fact
    }
}

/// The original's first run (pid 1) through `steps` whole steps, 10 ms apart.
fn original_through(named: bool, steps: i64) -> (Tracker, TsMs) {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    t.apply(at, maybe_by(named, 1, flag()));
    for n in 1..=steps {
        for f in original_step(n * 10, n) {
            at += 10;
            t.apply(at, maybe_by(named, 1, f));
        }
    }
    (t, at)
}

#[test]
fn a_restart_that_starts_over_loses_the_steps_below_the_checkpoint() {
    for named in [true, false] {
        let (mut t, at) = original_through(named, 5);
        // Killed between its PUTs at 60%, the controller down.
        t.apply(at + 100, maybe_by(named, 1, put("task.progress", "60")));
        t.apply(at + 101, sigkilled());
        t.apply(at + 300, started(2));
        assert_eq!(phase(&t), "RECOVERING");
        // It read nothing (the SDK's defaults: a first start); its flag and
        // first two steps were lost; the first write that lands is step 3's.
        t.apply(at + 6_000, maybe_by(named, 2, put("task.progress", "30")));
        let c = &t.cycles()[0];
        assert_eq!(c.resume_range(), Some((50, 60)), "named {named}");
        assert_eq!(
            (c.resumed_from, c.steps_lost, c.steps_skipped),
            (Some(20), Some(3), Some(0)),
            "named {named}: {c:?}"
        );
        let basis = if named {
            Basis::Writer
        } else {
            Basis::ArrivalOrder
        };
        assert_eq!((c.basis, t.basis()), (basis, basis));
        assert_eq!(c.first_checkpoint_at, Some(at + 6_000));
    }
}

#[test]
fn a_resume_from_a_torn_checkpoint_within_what_was_left_loses_nothing() {
    for named in [true, false] {
        let (mut t, at) = original_through(named, 7);
        // Killed after `task.progress=80`, before `task.counter=8`.
        t.apply(at + 100, maybe_by(named, 1, put("task.progress", "80")));
        t.apply(at + 101, sigkilled());
        t.apply(at + 300, started(2));
        // It finds the flag, deletes it and sets it again at once.
        t.apply(at + 310, maybe_by(named, 2, delete("app.crashed")));
        t.apply(at + 311, maybe_by(named, 2, flag()));
        // It resumed from progress 80, counter 7: its counter stays one behind.
        let mut now = at + 2_300;
        for (p, c) in [(90, 8), (100, 9)] {
            for f in original_step(p, c) {
                now += 1;
                t.apply(now, maybe_by(named, 2, f));
            }
        }
        assert!(t.torn().is_some(), "every later state is torn");
        assert_eq!(t.cycles().len(), 1);
        let c = &t.cycles()[0];
        assert_eq!(c.resume_range(), Some((70, 80)));
        assert_eq!(
            (c.resumed_from, c.steps_lost, c.steps_skipped),
            (Some(80), Some(0), Some(0)),
            "named {named}: {c:?}"
        );
        assert_eq!(phase(&t), "RESUMED from 80%");
        let inst = t.instance("kv-demo-001").unwrap();
        assert_eq!(inst.first_checkpoint, Some((at + 2_301, 9)));
        // The next task's first step is that task's, not the closed cycle's.
        t.apply(now + 1, maybe_by(named, 2, delete("app.crashed")));
        t.apply(now + 2, maybe_by(named, 2, put("task.status", "completed")));
        t.apply(now + 50, exited(ProcessExit::Clean, false));
        t.apply(now + 500, started(3));
        t.apply(now + 501, maybe_by(named, 3, flag()));
        for f in original_step(10, 1) {
            t.apply(now + 2_500, maybe_by(named, 3, f));
        }
        assert_eq!(t.cycles().len(), 1);
        assert_eq!(t.cycles()[0].resumed_from, Some(80));
        assert_eq!(phase(&t), "RUNNING");
    }
}

#[test]
fn a_late_write_of_the_dead_run_moves_the_kill_point_and_no_count_goes_negative() {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    t.apply(at, by(1, flag()));
    for n in 1..=5 {
        at += 100;
        t.apply(at, by(1, checkpoint(n)));
    }
    t.apply(at + 50, sigkilled());
    t.apply(at + 60, started(2));
    t.apply(at + 61, by(2, flag()));
    // Step 6 of the dead run lands after the restart (its last request was
    // in flight), and the restarted run read it: it goes on at step 7.
    t.apply(at + 700, by(1, checkpoint(6)));
    assert!(
        t.cycles()[0].first_checkpoint_at.is_none(),
        "not the new run's"
    );
    t.apply(at + 800, by(2, checkpoint(7)));
    let c = &t.cycles()[0];
    assert_eq!(
        (
            c.counter_at_kill,
            c.resumed_from,
            c.steps_lost,
            c.steps_skipped
        ),
        (Some(6), Some(60), Some(0), Some(0))
    );
    // A restart that goes on beyond what was saved: skipped, never a negative loss.
    let (mut t, at) = original_through(false, 5);
    t.apply(at + 1, sigkilled());
    t.apply(at + 300, started(2));
    t.apply(at + 2_300, put("task.progress", "80"));
    let c = &t.cycles()[0];
    assert_eq!((c.steps_lost, c.steps_skipped), (Some(0), Some(2)));
}

#[test]
fn a_flag_deleted_and_set_again_by_one_run_is_no_clear() {
    for named in [true, false] {
        let (mut t, at) = original_through(named, 3);
        t.apply(at + 100, sigkilled());
        t.apply(at + 300, started(2));
        // Its recovery: the flag it found deleted, then set again.
        t.apply(at + 310, maybe_by(named, 2, delete("app.crashed")));
        t.apply(at + 311, maybe_by(named, 2, flag()));
        assert!(!t.instance("kv-demo-001").unwrap().flag_cleared_in_run);
        for f in original_step(40, 4) {
            t.apply(at + 2_300, maybe_by(named, 2, f));
        }
        t.apply(at + 2_400, sigkilled());
        assert!(t.cycles()[1].flag_after_kill, "named {named}");
        let last_exit = t
            .timeline()
            .rev()
            .find(|e| matches!(e.kind, TimelineKind::Exited { .. }))
            .unwrap();
        assert!(
            matches!(
                last_exit.kind,
                TimelineKind::Exited {
                    flag: Some(true),
                    ..
                }
            ),
            "named {named}: {last_exit:?}"
        );
    }
    // Deleted by one run, set by another: the first cleared it.
    let (mut t, at) = original_through(true, 3);
    t.apply(at + 10, by(1, delete("app.crashed")));
    t.apply(at + 11, by(9, flag()));
    assert!(t.instance("kv-demo-001").unwrap().flag_cleared_in_run);
}

#[test]
fn the_recovery_of_a_run_whose_start_is_seen_after_its_writes_is_still_one() {
    let (mut t, at) = original_through(true, 3);
    t.apply(at + 100, sigkilled());
    // Its flag handshake and first step reach us before its `Started`.
    t.apply(at + 300, by_child(20, 2, delete("app.crashed")));
    t.apply(at + 301, by_child(21, 2, flag()));
    t.apply(at + 2_300, by_child(22, 2, put("task.progress", "40")));
    t.apply(at + 2_310, started(2));
    assert!(t.timeline().any(|e| e.kind == TimelineKind::Recovering));
    let c = &t.cycles()[0];
    assert_eq!(
        (c.resumed_from, c.steps_lost, c.first_checkpoint_at),
        (Some(30), Some(0), Some(at + 2_300))
    );
}

#[test]
fn a_first_start_whose_flag_arrives_before_its_process_is_no_recovery() {
    // Named: the flag is the new run's own.
    let mut t = Tracker::new();
    t.apply(0, Fact::Snapshot(vec![]));
    t.apply(5, by(7, flag()));
    t.apply(9, started(7));
    assert_eq!(phase(&t), "RUNNING");
    assert!(!t.timeline().any(|e| e.kind == TimelineKind::Recovering));
    // A flag that was already there when first read is a recovery.
    let mut t = Tracker::new();
    t.apply(0, Fact::Snapshot(vec![e("app.crashed", "true")]));
    t.apply(9, started(7));
    assert_eq!(phase(&t), "RECOVERING");
}

#[test]
fn a_kill_during_the_completion_writes_is_no_lost_task() {
    // After `task.status=completed`: the restart begins a new task.
    let mut t2 = Tracker::new();
    t2.apply(0, started(1));
    t2.apply(0, flag());
    let mut at2 = 0;
    run_steps(&mut t2, &mut at2, 0, 10);
    t2.apply(at2 + 1, deleted("app.crashed"));
    t2.apply(at2 + 2, Fact::Written(vec![e("task.status", "completed")]));
    t2.apply(at2 + 3, sigkilled());
    t2.apply(at2 + 200, started(2));
    t2.apply(at2 + 201, flag());
    t2.apply(at2 + 700, checkpoint(1));
    let c = &t2.cycles()[0];
    assert!(c.task_done_at_kill);
    assert_eq!((c.steps_lost, c.steps_skipped), (Some(0), Some(0)));
    assert_eq!(t2.instance("kv-demo-001").unwrap().phase, Phase::Running);
    assert_eq!(t2.completions(), 1);

    // At 100% before the completion writes: the restart only completes it.
    let mut t = Tracker::new();
    t.apply(0, started(1));
    t.apply(0, flag());
    let mut at = 0;
    run_steps(&mut t, &mut at, 0, 10);
    t.apply(at + 1, sigkilled());
    t.apply(at + 200, started(2));
    t.apply(at + 201, flag());
    t.apply(at + 202, deleted("app.crashed"));
    t.apply(at + 203, Fact::Written(vec![e("task.status", "completed")]));
    t.apply(at + 210, exited(ProcessExit::Clean, false));
    let c = &t.cycles()[0];
    assert_eq!(
        (c.resumed_from, c.steps_lost, c.task_done_at_kill),
        (Some(100), Some(0), true)
    );
    assert_eq!(phase(&t), "COMPLETED");
    assert_eq!(t.completions(), 1);
}

#[test]
fn a_reset_by_another_client_tears_no_worker_checkpoint() {
    let mut t = Tracker::new();
    let mut at = 0;
    t.apply(at, started(1));
    t.apply(at, by(1, flag()));
    for n in 1..=3 {
        at += 100;
        t.apply(at, by(1, checkpoint(n)));
    }
    // The dashboard's reset (its own process, no run) deletes key by key.
    for key in [
        "app.crashed",
        "task.checkpoint",
        "task.counter",
        "task.progress",
        "task.status",
    ] {
        at += 1;
        t.apply(at, by(4242, delete(key)));
    }
    assert_eq!(t.torn_seen(), 0);
    assert!(!t
        .timeline()
        .any(|e| matches!(e.kind, TimelineKind::Torn(_))));
    assert!(!t.instance("kv-demo-001").unwrap().flag_cleared_in_run);
    // Not cleared by a stop: removed while the worker runs.
    assert_eq!(t.crash_flag(), CrashFlag::Removed);
    assert_eq!(phase(&t), "RUNNING");
}

#[test]
fn a_replaced_run_stopped_after_its_replacement_completed_did_not_complete() {
    use super::super::facts::NodeAction;
    let mut t = running_on_node_a();
    t.apply(
        1_000,
        Fact::NodeAction {
            node: "nodeA".into(),
            action: NodeAction::Frozen,
        },
    );
    t.apply(
        4_100,
        cluster(
            false,
            &[
                ("d1-a", "nodeA", DesiredState::Stopped, 0),
                ("d1-b", "nodeB", DesiredState::Running, 0),
            ],
        ),
    );
    t.apply(4_200, started_as("d1-b", 2));
    t.apply(4_250, by(2, flag()));
    let mut at = 4_300;
    for n in 5..=10 {
        at += 100;
        t.apply(at, by(2, checkpoint(n)));
    }
    t.apply(at + 1, by(2, deleted("app.crashed")));
    t.apply(
        at + 2,
        by(2, Fact::Written(vec![e("task.status", "completed")])),
    );
    // Thawed, the replaced run is stopped by its agent (it writes nothing
    // the controller takes from it) and ends cleanly.
    t.apply(at + 100, exited_as("d1-a", ProcessExit::Unknown));
    t.apply(at + 200, exited_as("d1-b", ProcessExit::Unknown));
    assert_eq!(t.instance("d1-a").unwrap().phase, Phase::Stopped);
    assert_eq!(t.instance("d1-b").unwrap().phase, Phase::Completed);
    let completed = t
        .timeline()
        .filter(|e| e.kind == TimelineKind::Completed)
        .count();
    assert_eq!(completed, 1, "the task completes once");
    assert_eq!(t.completions(), 1);
}

#[test]
fn a_flag_a_stopped_run_left_makes_the_next_start_a_recovery() {
    let mut t = Tracker::new();
    t.apply(0, started(1));
    t.apply(1, by(1, flag()));
    t.apply(100, by(1, checkpoint(3)));
    // Stopped without clearing its flag: the next start finds it.
    t.apply(200, exited(ProcessExit::Clean, true));
    t.apply(300, started(2));
    assert_eq!(phase(&t), "RECOVERING");
}

/// A run's own start keys seen before its start (a remote run's start comes
/// by a later cluster read, stamped with when its agent started it): a fresh
/// start, not a recovery. A flag set before the start still is one.
#[test]
fn a_flag_set_after_the_start_is_the_runs_own_not_a_recovery() {
    // A flag left behind (found in the first read) before the start is one.
    let mut t = Tracker::new();
    t.apply(1_020, Fact::Snapshot(vec![e("app.crashed", "true")]));
    t.apply(1_400, started(7));
    assert_eq!(phase(&t), "RECOVERING", "a flag left behind: a recovery");
    let mut t = Tracker::new();
    t.apply(1_020, flag());
    t.apply(1_000, started(7));
    assert_eq!(phase(&t), "RUNNING");
    assert!(!t.timeline().any(|e| e.kind == TimelineKind::Recovering));
}

#[test]
fn a_history_never_takes_more_room_than_its_cap() {
    let mut history = VecDeque::new();
    for i in 0..1000 {
        push_capped(&mut history, 40, i);
        assert!(history.capacity() <= 40, "{} at {i}", history.capacity());
    }
    assert_eq!(history.len(), 40);
    assert_eq!(history.front(), Some(&960), "the oldest went first");
    // A smaller share later: the oldest go, and the room with them.
    cut_to(&mut history, 10);
    assert_eq!(
        history.iter().copied().collect::<Vec<_>>(),
        (990..1000).collect::<Vec<_>>()
    );
    assert!(history.capacity() < 40);
}

#[test]
fn a_start_while_the_controller_is_unreachable_claims_no_recovery() {
    // The flag was left set, but the new run cannot read it: unknown, not
    // "found the crash flag".
    let mut t = Tracker::new();
    t.apply(0, Fact::Snapshot(vec![e("app.crashed", "true")]));
    t.apply(
        5,
        Fact::FeedDown {
            error: "connection refused".into(),
        },
    );
    t.apply(9, started(7));
    assert_eq!(phase(&t), "RUNNING");
    assert!(!t.timeline().any(|e| e.kind == TimelineKind::Recovering));
    assert!(t.timeline().any(|e| e.kind == TimelineKind::RecoveryUnread));
    // With the controller back, a start is judged from the flag read.
    t.apply(
        20,
        Fact::FeedUp {
            via: "stream".into(),
        },
    );
    t.apply(25, started(8));
    assert_eq!(
        t.instance("kv-demo-001")
            .map(|i| i.phase.to_string())
            .unwrap_or_default(),
        "RECOVERING"
    );
}

#[test]
fn a_first_step_written_during_an_outage_is_read_from_the_snapshot_after_it() {
    // Killed after step 2; restarted while the controller was unreachable;
    // its first step (30%) was written while the feed was down, so it comes
    // in the snapshot read after the outage, not as a write.
    let mut t = killed_after_step(2);
    let killed_at = t.cycles()[0].killed_at;
    t.apply(
        killed_at + 10,
        Fact::FeedDown {
            error: "connection refused".into(),
        },
    );
    t.apply(killed_at + 200, started(2));
    t.apply(
        killed_at + 1_000,
        Fact::FeedUp {
            via: "stream".into(),
        },
    );
    let snapshot = |n: i64, written: u64| {
        let mut entries = vec![
            e("task.progress", &(n * 10).to_string()),
            e("task.counter", &n.to_string()),
            e("task.checkpoint", &format!("step_{n}")),
            e("task.status", "running"),
            e("app.crashed", "true"),
        ];
        for entry in &mut entries {
            entry.updated_at_ms = Some(written as i64);
        }
        Fact::Snapshot(entries)
    };
    t.apply(killed_at + 1_000, snapshot(3, killed_at + 900));
    let c = &t.cycles()[0];
    assert_eq!(
        (
            c.resumed_from,
            c.steps_lost,
            c.steps_skipped,
            c.resume_bound
        ),
        (Some(20), Some(0), Some(0), true),
        "{c:?}"
    );
    // The same snapshot holding only what the dead run wrote (by its time)
    // closes nothing.
    let mut t = killed_after_step(2);
    let killed_at = t.cycles()[0].killed_at;
    t.apply(killed_at + 200, started(2));
    t.apply(killed_at + 1_000, snapshot(3, killed_at - 50));
    assert_eq!(t.cycles()[0].resumed_from, None);
}
