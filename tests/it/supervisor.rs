//! Supervisor integration tests with real processes (small `sh -c` workers).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::support::process::is_dead;
use crate::support::wait_until_async;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use plumdash::supervisor::{
    ActionError, EventKind, ExitKind, InstanceAction, Lifecycle, OutputStream, RestartConfig,
    RestartPolicy, Supervisor, SupervisorConfig, SupervisorEvent, WorkerSpec,
};
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(10);

/// A unique app name per test, so parallel tests never see each other's workers.
fn unique_app(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{tag}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn config(tag: &str) -> SupervisorConfig {
    SupervisorConfig {
        app_name: unique_app(tag),
        restart: RestartConfig {
            policy: RestartPolicy::OnFailure,
            delay: Duration::from_millis(100),
            crash_loop_under: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            max_restarts: None,
        },
        stop_grace: Duration::from_secs(2),
        ..SupervisorConfig::default()
    }
}

fn sh(script: &str) -> WorkerSpec {
    WorkerSpec::new("sh").args(["-c", script])
}

/// Waits for the next event of `instance` that `pick` accepts.
async fn next_event<T>(
    events: &mut broadcast::Receiver<SupervisorEvent>,
    instance: &str,
    mut pick: impl FnMut(&EventKind) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(event)) if event.instance == instance => {
                if let Some(found) = pick(&event.kind) {
                    return found;
                }
            }
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(error)) => panic!("event stream ended: {error}"),
            Err(_) => panic!("timed out waiting for an event of {instance}"),
        }
    }
}

async fn started(events: &mut broadcast::Receiver<SupervisorEvent>, instance: &str) -> (u32, u32) {
    next_event(events, instance, |kind| match kind {
        EventKind::Started { pid, run, .. } => Some((*pid, *run)),
        _ => None,
    })
    .await
}

/// A supervisor of its own running one `sleep 300` (named after `test`),
/// seen started: the supervisor, its events, the instance and its pid.
async fn one_sleeper(
    test: &str,
) -> (
    Supervisor,
    broadcast::Receiver<SupervisorEvent>,
    String,
    u32,
) {
    let (supervisor, mut events) = Supervisor::new(config(test));
    let id = supervisor
        .spawn_instance(sh("exec sleep 300"))
        .await
        .unwrap();
    let (pid, _) = started(&mut events, &id).await;
    (supervisor, events, id, pid)
}

async fn exited(events: &mut broadcast::Receiver<SupervisorEvent>, instance: &str) -> ExitKind {
    next_event(events, instance, |kind| match kind {
        EventKind::Exited { exit, .. } => Some(*exit),
        _ => None,
    })
    .await
}

fn sigkill(pid: u32) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
}

#[tokio::test]
async fn external_sigkill_is_a_crash_and_restarts_within_the_delay() {
    let config = config("extkill");
    let delay = config.restart.delay;
    let (supervisor, mut events) = Supervisor::new(config);
    let id = supervisor
        .spawn_instance(sh("exec sleep 300"))
        .await
        .unwrap();
    let (pid, run) = started(&mut events, &id).await;
    assert_eq!(run, 1);

    sigkill(pid); // as a user would, by hand
    assert_eq!(
        exited(&mut events, &id).await,
        ExitKind::KilledBySignal(Signal::SIGKILL)
    );
    let died = Instant::now();
    let (new_pid, run) = started(&mut events, &id).await;
    let gap = died.elapsed();
    assert_eq!(run, 2);
    assert_ne!(new_pid, pid);
    assert!(
        gap < delay + Duration::from_millis(400),
        "restart took {gap:?}"
    );

    let snapshot = supervisor.instance(&id).unwrap();
    assert_eq!(snapshot.crashes, 1);
    assert_eq!(snapshot.restarts, 1);
    assert_eq!(snapshot.manual_restarts, 0);
    assert_eq!(snapshot.pid, Some(new_pid));
    assert_eq!(snapshot.last_exit.unwrap().to_string(), "killed by SIGKILL");
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sigkill_through_the_supervisor_restarts_it_is_the_demo() {
    let (supervisor, mut events, id, pid) = one_sleeper("demokill").await;

    supervisor
        .send(&id, InstanceAction::Signal(Signal::SIGKILL))
        .await
        .unwrap();
    let sent = next_event(&mut events, &id, |kind| match kind {
        EventKind::SignalSent { signal, pid } => Some((*signal, *pid)),
        _ => None,
    })
    .await;
    assert_eq!(sent, (Signal::SIGKILL, pid));
    assert_eq!(
        exited(&mut events, &id).await,
        ExitKind::KilledBySignal(Signal::SIGKILL)
    );
    let (_, run) = started(&mut events, &id).await;
    assert_eq!(run, 2);
    assert_eq!(supervisor.instance(&id).unwrap().crashes, 1);
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

/// A worker that dies at start (`exit 3`) is a crash loop: the wait grows from
/// `backoff_initial`, the snapshot says why it waits, and after `max_restarts`
/// crash-loop restarts in a row the instance is FAILED.
#[tokio::test]
async fn crash_loop_backs_off_then_fails_after_max_restarts() {
    let mut config = config("loop");
    config.restart.delay = Duration::ZERO;
    config.restart.backoff_initial = Duration::from_millis(300);
    config.restart.backoff_max = Duration::from_secs(5);
    config.restart.max_restarts = Some(3);
    let (supervisor, mut events) = Supervisor::new(config);
    let id = supervisor.spawn_instance(sh("exit 3")).await.unwrap();

    let mut delays = Vec::new();
    let reason = loop {
        let next = next_event(&mut events, &id, |kind| match kind {
            EventKind::RestartScheduled {
                delay,
                crash_loop_runs,
            } => Some(Ok((*delay, *crash_loop_runs))),
            EventKind::Failed { reason } => Some(Err(reason.clone())),
            _ => None,
        })
        .await;
        match next {
            Ok((delay, runs)) => {
                assert_eq!(runs as usize, delays.len() + 1);
                delays.push(delay.as_millis());
                // While it waits, the snapshot carries the reason the dashboard shows.
                wait_until_async("the wait shows its crash loop", WAIT, || {
                    matches!(
                        supervisor.instance(&id).unwrap().phase,
                        Lifecycle::WaitingRestart { crash_loop: Some(note), .. } if note.runs == runs
                    )
                })
                .await;
            }
            Err(reason) => break reason,
        }
    };
    assert_eq!(delays, vec![300, 600, 1200]);
    assert!(reason.contains("max_restarts = 3"), "{reason}");
    let snapshot = supervisor.instance(&id).unwrap();
    assert!(
        matches!(snapshot.phase, Lifecycle::Failed { .. }),
        "{:?}",
        snapshot.phase
    );
    assert_eq!(snapshot.crashes, 4);
    assert_eq!(snapshot.last_exit, Some(ExitKind::ExitCode(3)));
    assert_eq!(snapshot.pid, None);

    // Start clears FAILED and begins a fresh loop.
    supervisor.send(&id, InstanceAction::Start).await.unwrap();
    assert_eq!(started(&mut events, &id).await.1, 5);
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

/// The seed's demo and chaos tools: `kill -9` from outside, every ~1.2 s. Each run
/// lasted past `crash_loop_under`, so every restart waits exactly `--restart-delay`
/// (0 s here: no doubling) and none counts towards `max_restarts`.
#[tokio::test]
async fn outside_kills_of_runs_past_the_threshold_restart_after_the_plain_delay_every_time() {
    let mut config = config("outside");
    config.restart = RestartConfig {
        delay: Duration::ZERO,
        max_restarts: Some(2),
        ..RestartConfig::default()
    };
    let under = config.restart.crash_loop_under;
    let (supervisor, mut events) = Supervisor::new(config);
    let id = supervisor
        .spawn_instance(sh("exec sleep 300"))
        .await
        .unwrap();
    let (mut pid, _) = started(&mut events, &id).await;
    for kill_no in 1..=6 {
        tokio::time::sleep(under + Duration::from_millis(200)).await;
        let killed = Instant::now();
        sigkill(pid);
        let scheduled = next_event(&mut events, &id, |kind| match kind {
            EventKind::RestartScheduled {
                delay,
                crash_loop_runs,
            } => Some((*delay, *crash_loop_runs)),
            _ => None,
        })
        .await;
        assert_eq!(scheduled, (Duration::ZERO, 0), "kill {kill_no}");
        let (new_pid, run) = started(&mut events, &id).await;
        let gap = killed.elapsed();
        assert_eq!(run, kill_no + 1);
        // Generous for a loaded machine; the old backoff waited 0.2, 0.4, 0.8, 1.6, 3.2 s.
        assert!(
            gap < Duration::from_millis(500),
            "kill {kill_no}: restart took {gap:?}"
        );
        pid = new_pid;
    }
    let snapshot = supervisor.instance(&id).unwrap();
    assert_eq!(snapshot.crashes, 6);
    assert_eq!(snapshot.phase, Lifecycle::Running);
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

/// Kills plumdash sends itself (the `k` key, `ctl kill`) stay exempt even when the
/// run was short: the plain delay, and no FAILED however many in a row.
#[tokio::test]
async fn own_kills_of_short_runs_are_not_a_crash_loop() {
    let mut config = config("ownkill");
    config.restart.delay = Duration::ZERO;
    config.restart.backoff_initial = Duration::from_secs(5);
    config.restart.max_restarts = Some(1);
    let (supervisor, mut events) = Supervisor::new(config);
    let id = supervisor
        .spawn_instance(sh("exec sleep 300"))
        .await
        .unwrap();
    started(&mut events, &id).await;
    for kill_no in 1..=5 {
        supervisor
            .send(&id, InstanceAction::Signal(Signal::SIGKILL))
            .await
            .unwrap();
        let scheduled = next_event(&mut events, &id, |kind| match kind {
            EventKind::RestartScheduled {
                delay,
                crash_loop_runs,
            } => Some((*delay, *crash_loop_runs)),
            _ => None,
        })
        .await;
        assert_eq!(scheduled, (Duration::ZERO, 0), "kill {kill_no}");
        assert_eq!(started(&mut events, &id).await.1, kill_no + 1);
    }
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn graceful_stop_is_stopped_and_never_restarts() {
    let (supervisor, mut events) = Supervisor::new(config("stop"));
    let id = supervisor
        .spawn_instance(sh(
            "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
        ))
        .await
        .unwrap();
    started(&mut events, &id).await;
    started_output(&supervisor.output(&id).unwrap(), "ready").await;
    let snapshot = supervisor.send(&id, InstanceAction::Stop).await.unwrap();
    assert_eq!(snapshot.phase, Lifecycle::Stopped);
    assert_eq!(snapshot.last_exit, Some(ExitKind::Stopped));
    assert_eq!(snapshot.crashes, 0);
    assert_eq!(snapshot.pid, None);
    assert_eq!(exited(&mut events, &id).await, ExitKind::Stopped);
    // The trap ran (stdout and stderr interleave freely, so look at the last few lines).
    assert!(supervisor
        .recent_output(&id, 5)
        .iter()
        .any(|line| line.text == "bye"));
    assert!(matches!(
        supervisor.send(&id, InstanceAction::Stop).await,
        Err(ActionError::NotRunning { .. })
    ));
    // Nothing restarts it: the next event is our own Start.
    supervisor.send(&id, InstanceAction::Start).await.unwrap();
    assert_eq!(started(&mut events, &id).await.1, 2);
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

/// A package runs as `sh -c ./start.sh`: the leader is a wrapper shell
/// that SIGTERM ends at once, with the worker still under it. The worker
/// gets the grace to stop its own way (kv-demo clears its crash flag then),
/// not a SIGKILL a millisecond after the SIGTERM.
#[tokio::test]
async fn a_worker_under_a_wrapper_shell_gets_the_grace_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("stopped-cleanly");
    // `; true`: the outer shell cannot exec the inner one, so it stays the
    // group's leader, as `sh -c ./start.sh` does; the inner one takes 300 ms
    // to stop, as a worker writing to its controller on the way out does.
    let inner = format!(
        "trap 'sleep 0.3; echo ok > {}; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
        done.display()
    );
    let (supervisor, mut events) = Supervisor::new(config("wrapper"));
    let id = supervisor
        .spawn_instance(sh(&format!("sh -c \"{inner}\"; true")))
        .await
        .unwrap();
    started(&mut events, &id).await;
    started_output(&supervisor.output(&id).unwrap(), "ready").await;
    let begun = Instant::now();
    let snapshot = supervisor.send(&id, InstanceAction::Stop).await.unwrap();
    assert_eq!(snapshot.phase, Lifecycle::Stopped);
    assert!(
        done.exists(),
        "the worker under the wrapper was killed before it stopped ({:?} after the SIGTERM)",
        begun.elapsed()
    );
    assert!(
        begun.elapsed() < Duration::from_secs(2),
        "not the whole grace"
    );
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_grace_period() {
    let mut config = config("grace");
    config.stop_grace = Duration::from_millis(300);
    let (supervisor, mut events) = Supervisor::new(config);
    let id = supervisor
        .spawn_instance(sh("trap '' TERM; echo ready; while :; do sleep 0.05; done"))
        .await
        .unwrap();
    started(&mut events, &id).await;
    started_output(&supervisor.output(&id).unwrap(), "ready").await;
    let begun = Instant::now();
    let snapshot = supervisor.send(&id, InstanceAction::Stop).await.unwrap();
    assert!(begun.elapsed() >= Duration::from_millis(300));
    assert_eq!(snapshot.last_exit, Some(ExitKind::Stopped));
    let escalated = next_event(&mut events, &id, |kind| match kind {
        EventKind::SignalSent {
            signal: Signal::SIGKILL,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(escalated, ());
}

#[tokio::test]
async fn completion_is_not_restarted_on_failure_but_is_with_always() {
    let (supervisor, mut events) = Supervisor::new(config("complete"));
    let id = supervisor.spawn_instance(sh("echo done")).await.unwrap();
    assert_eq!(exited(&mut events, &id).await, ExitKind::Completed);
    wait_until_async("phase is Exited", WAIT, || {
        supervisor.instance(&id).unwrap().phase == Lifecycle::Exited
    })
    .await;
    assert_eq!(supervisor.instance(&id).unwrap().run, 1);

    let mut always = config("always");
    always.restart.policy = RestartPolicy::Always;
    let (supervisor, mut events) = Supervisor::new(always);
    let id = supervisor.spawn_instance(sh("echo done")).await.unwrap();
    assert_eq!(exited(&mut events, &id).await, ExitKind::Completed);
    assert_eq!(started(&mut events, &id).await.1, 2);
    assert_eq!(supervisor.instance(&id).unwrap().crashes, 0);
    supervisor
        .send(&id, InstanceAction::SetAutoRestart(false))
        .await
        .unwrap();
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn zero_delay_restarts_at_once() {
    let mut config = config("zero");
    config.restart.delay = Duration::ZERO;
    let (supervisor, mut events) = Supervisor::new(config);
    let id = supervisor
        .spawn_instance(sh("exec sleep 300"))
        .await
        .unwrap();
    let (pid, _) = started(&mut events, &id).await;
    let killed = Instant::now();
    sigkill(pid);
    exited(&mut events, &id).await;
    started(&mut events, &id).await;
    let gap = killed.elapsed();
    eprintln!("kill to restart with zero delay took {gap:?}");
    assert!(gap < Duration::from_millis(500), "restart took {gap:?}");
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

/// Reads a pid the worker printed on its first output line.
async fn printed_pid(supervisor: &Supervisor, id: &str) -> u32 {
    let mut pid = None;
    wait_until_async("the worker prints a pid", WAIT, || {
        pid = supervisor
            .recent_output(id, 10)
            .iter()
            .find(|line| line.stream == OutputStream::Stdout)
            .and_then(|line| line.text.trim().parse().ok());
        pid.is_some()
    })
    .await;
    pid.unwrap()
}

#[tokio::test]
async fn leader_death_leaves_no_grandchildren() {
    let mut config = config("orphans");
    config.restart.policy = RestartPolicy::Never;
    let (supervisor, mut events) = Supervisor::new(config);

    // The leader dies by a signal that reaches only it.
    let id = supervisor
        .spawn_instance(sh("sleep 300 & echo $!; wait"))
        .await
        .unwrap();
    let (leader, _) = started(&mut events, &id).await;
    let grandchild = printed_pid(&supervisor, &id).await;
    assert!(!is_dead(grandchild));
    sigkill(leader);
    assert_eq!(
        exited(&mut events, &id).await,
        ExitKind::KilledBySignal(Signal::SIGKILL)
    );
    wait_until_async("the grandchild is gone", WAIT, || is_dead(grandchild)).await;

    // A wrapper that execs a worker which completes: the background sleep must not survive it.
    let id = supervisor
        .spawn_instance(sh("sleep 300 & echo $!; exec sh -c 'sleep 0.2'"))
        .await
        .unwrap();
    let grandchild = printed_pid(&supervisor, &id).await;
    assert_eq!(exited(&mut events, &id).await, ExitKind::Completed);
    wait_until_async("the wrapper's grandchild is gone", WAIT, || {
        is_dead(grandchild)
    })
    .await;
}

#[tokio::test]
async fn twenty_kill_cycles_leave_no_zombies() {
    let mut config = config("zombies");
    config.restart.delay = Duration::ZERO;
    // Outside kills of runs this short are a crash loop; keep its backoff short so the
    // test stays fast.
    config.restart.backoff_max = Duration::from_millis(40);
    let (supervisor, mut events) = Supervisor::new(config);
    let id = supervisor
        .spawn_instance(sh("exec sleep 300"))
        .await
        .unwrap();
    let (mut pid, _) = started(&mut events, &id).await;
    let mut dead = Vec::new();
    for cycle in 0..20 {
        if cycle % 2 == 0 {
            sigkill(pid);
        } else {
            supervisor
                .send(&id, InstanceAction::Signal(Signal::SIGKILL))
                .await
                .unwrap();
        }
        dead.push(pid);
        exited(&mut events, &id).await;
        pid = started(&mut events, &id).await.0;
    }
    let snapshot = supervisor.instance(&id).unwrap();
    assert_eq!(snapshot.crashes, 20);
    assert_eq!(snapshot.run, 21);
    // Our own children that died must be reaped: no /proc entry left at all.
    for old in dead {
        assert!(
            std::fs::metadata(format!("/proc/{old}")).is_err() || !is_our_zombie(old),
            "pid {old} is a zombie"
        );
    }
    supervisor.shutdown_all(Duration::from_secs(1)).await;
    assert!(is_dead(pid));
}

fn is_our_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    fields.first() == Some(&"Z") && fields.get(1) == Some(&std::process::id().to_string().as_str())
}

#[tokio::test]
async fn chatty_worker_is_bounded_and_runs_are_separated() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config("chatty");
    config.output_lines = 1000;
    config.log_dir = Some(dir.path().join("logs"));
    let (supervisor, mut events) = Supervisor::new(config);
    let marker = dir.path().join("ran-once");
    let script = format!(
        "if [ -f '{m}' ]; then echo second run; else touch '{m}'; seq 1 100000; fi; exec sleep 300",
        m = marker.display()
    );
    let id = supervisor.spawn_instance(sh(&script)).await.unwrap();
    let output = supervisor.output(&id).unwrap();
    wait_until_async("100000 lines are read", WAIT, || {
        output.recent(1).first().is_some_and(|l| l.text == "100000")
    })
    .await;
    assert_eq!(output.len(), 1000);
    let kept = output.recent(1000);
    assert_eq!(kept.first().unwrap().text, "99001");

    supervisor
        .send(&id, InstanceAction::Signal(Signal::SIGKILL))
        .await
        .unwrap();
    started(&mut events, &id).await;
    started_output(&output, "second run").await;
    let kept = output.recent(1000);
    assert_eq!(kept.len(), 1000);
    let tail: Vec<_> = kept
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|l| (l.run, l.stream, l.text.clone()))
        .collect();
    assert_eq!(tail[0], (1, OutputStream::Stdout, "100000".to_string()));
    assert_eq!(tail[1].1, OutputStream::Separator);
    assert!(tail[1].2.starts_with("── run 2 · pid "), "{}", tail[1].2);
    assert_eq!(tail[2], (2, OutputStream::Stdout, "second run".to_string()));
    assert_eq!(output.total_lines(), 100_003);
    supervisor.shutdown_all(Duration::from_secs(1)).await;

    let log = std::fs::read_to_string(dir.path().join("logs").join(format!("{id}.log"))).unwrap();
    assert_eq!(log.lines().count(), 100_003);
    assert!(log.starts_with("── run 1 · pid "));
}

async fn started_output(output: &plumdash::supervisor::OutputBuffer, text: &str) {
    wait_until_async(text, WAIT, || {
        output.recent(1).first().is_some_and(|l| l.text == text)
    })
    .await;
}

#[tokio::test]
async fn workers_get_the_agent_environment_and_a_crash_restarts_in_place() {
    let mut config = config("agent-env");
    config.nodes = vec!["nodeA".into(), "nodeB".into()];
    config.controller_base = Some("http://127.0.0.1:9".into());
    let app = config.app_name.clone();
    let (supervisor, mut events) = Supervisor::new(config);
    let spec = sh("echo \"$PLUM_INSTANCE_ID $PLUM_APP_NAME $PLUM_APP_VERSION $WORKER_NODE_ID $CONTROLLER_BASE $EXTRA\"; exec sleep 300")
        .env("EXTRA", "x");
    let first = supervisor.spawn_instance(spec).await.unwrap();
    assert_eq!(first, format!("{app}-001"));
    let output = supervisor.output(&first).unwrap();
    let expected = format!("{app}-001 {app} 1.0.0 nodeA http://127.0.0.1:9 x");
    started_output(&output, &expected).await;

    // Moving work to another node is the agents' and controller's job (`up
    // --nodes`): a supervisor restarts the same instance where it was.
    supervisor
        .send(&first, InstanceAction::Signal(Signal::SIGKILL))
        .await
        .unwrap();
    assert_eq!(started(&mut events, &first).await.1, 1);
    assert_eq!(
        started(&mut events, &first).await.1,
        2,
        "the same instance again"
    );
    started_output(&output, &expected).await;
    assert_eq!(supervisor.instances().len(), 1);
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn manual_restart_and_refusals() {
    let (supervisor, _events, id, _pid) = one_sleeper("manual").await;
    let snapshot = supervisor.send(&id, InstanceAction::Restart).await.unwrap();
    assert_eq!(snapshot.manual_restarts, 1);
    assert_eq!(snapshot.crashes, 0);
    assert_eq!(snapshot.run, 2);
    assert_eq!(snapshot.last_exit, Some(ExitKind::Stopped));
    assert!(matches!(
        supervisor.send(&id, InstanceAction::Start).await,
        Err(ActionError::AlreadyRunning { .. })
    ));
    let error = supervisor
        .send("nope-001", InstanceAction::Stop)
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "no instance named \"nope-001\"");

    // SIGSTOP/SIGCONT pause and resume; a paused worker still stops gracefully.
    assert_eq!(
        supervisor
            .send(&id, InstanceAction::Signal(Signal::SIGSTOP))
            .await
            .unwrap()
            .paused,
        Some("SIGSTOP")
    );
    let stopped = supervisor.send(&id, InstanceAction::Stop).await.unwrap();
    assert_eq!(stopped.last_exit, Some(ExitKind::Stopped));
    let error = supervisor
        .send(&id, InstanceAction::Signal(Signal::SIGKILL))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("is not running (stopped)"),
        "{error}"
    );

    let missing = supervisor
        .spawn_instance(WorkerSpec::new("/nonexistent/kv-demo"))
        .await;
    let message = format!("{:#}", missing.unwrap_err());
    assert!(message.contains("/nonexistent/kv-demo"), "{message}");
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_all_stops_every_worker() {
    let (supervisor, mut events) = Supervisor::new(config("shutdown"));
    let a = supervisor
        .spawn_instance(sh("exec sleep 300"))
        .await
        .unwrap();
    let b = supervisor
        .spawn_instance(sh("exec sleep 300"))
        .await
        .unwrap();
    let (pid_a, _) = started(&mut events, &a).await;
    let pids = supervisor.owned_pids();
    assert_eq!(pids.len(), 2);
    assert!(pids.contains(&pid_a));
    let finals = supervisor.shutdown_all(Duration::from_secs(1)).await;
    assert_eq!(finals.len(), 2);
    assert!(finals
        .iter()
        .all(|s| s.phase == Lifecycle::Stopped && s.pid.is_none()));
    assert!(pids.iter().all(|&pid| is_dead(pid)));
    assert!(matches!(
        supervisor.send(&b, InstanceAction::Start).await,
        Err(ActionError::ShutDown(_))
    ));

    // Dropping the last handle also stops everything.
    let (supervisor, mut events, id, pid) = one_sleeper("drop").await;
    drop(supervisor);
    assert_eq!(exited(&mut events, &id).await, ExitKind::Stopped);
    assert!(is_dead(pid));
}

#[tokio::test]
async fn events_serialize_as_json_lines() {
    let (supervisor, mut events) = Supervisor::new(config("json"));
    let id = supervisor.spawn_instance(sh("exit 3")).await.unwrap();
    let mut lines = Vec::new();
    let deadline = Instant::now() + WAIT;
    while lines.len() < 3 {
        let event = tokio::time::timeout(deadline - Instant::now(), events.recv())
            .await
            .unwrap()
            .unwrap();
        if event.instance == id {
            lines.push(event.to_json_line());
        }
    }
    let started: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(started["kind"], "started");
    assert_eq!(started["instance"], id.as_str());
    assert!(started["pid"].as_u64().unwrap() > 0);
    assert!(started["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
    let exited: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(exited["kind"], "exited");
    assert_eq!(exited["exit"]["type"], "exit_code");
    assert_eq!(exited["exit"]["code"], 3);
    let scheduled: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    assert_eq!(scheduled["kind"], "restart_scheduled");
    assert_eq!(scheduled["delay_ms"], 100);
    assert_eq!(scheduled["crash_loop_runs"], 1);
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}

#[test]
fn bundled_worker_path_names_the_places_it_looked() {
    match plumdash::supervisor::bundled_worker_path() {
        Ok(path) => assert!(path.ends_with("kv-demo")),
        Err(error) => {
            let message = error.to_string();
            assert!(message.contains("kv-demo"), "{message}");
            assert!(message.contains("deps"), "{message}");
        }
    }
}

fn foreign_worker(app: &str, instance: &str) -> std::process::Child {
    std::process::Command::new("sh")
        .args(["-c", "exec sleep 300"])
        .env("PLUM_APP_NAME", app)
        .env("PLUM_INSTANCE_ID", instance)
        .spawn()
        .unwrap()
}

async fn find_foreign(app: &str, pid: u32) -> plumdash::supervisor::ForeignProcess {
    let mut found = None;
    wait_until_async("the foreign worker is discovered", WAIT, || {
        found = plumdash::supervisor::discover(app, &[])
            .into_iter()
            .find(|p| p.pid == pid && p.name == "sleep");
        found.is_some()
    })
    .await;
    found.unwrap()
}

#[tokio::test]
async fn attach_finds_a_foreign_worker_and_refuses_stale_identities() {
    let app = unique_app("attach");
    let mut worker = foreign_worker(&app, &format!("{app}-007"));
    let found = find_foreign(&app, worker.id()).await;
    assert_eq!(found.instance_id, Some(format!("{app}-007")));
    assert_eq!(found.app_name.as_deref(), Some(app.as_str()));
    assert!(found.rss_bytes > 0);

    let mut sampler = plumdash::supervisor::ProcessSampler::new();
    let stats = sampler.sample_one(found.pid).unwrap();
    assert_eq!(
        (stats.name.as_str(), stats.start_time),
        ("sleep", found.started_at)
    );

    // Same pid, other start time: a different process as far as we can tell.
    let mut impostor = found.clone();
    impostor.start_time_secs -= 5;
    let error = impostor.signal(Signal::SIGKILL).unwrap_err().to_string();
    assert!(
        error.contains(&format!(
            "pid {} is no longer the sleep started at",
            found.pid
        )),
        "{error}"
    );
    assert!(error.ends_with("refusing to signal"), "{error}");
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the refused signal must not have been sent"
    );

    found.signal(Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || worker.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(!status.success());
    let error = found.signal(Signal::SIGKILL).unwrap_err().to_string();
    assert!(error.contains("refusing to signal"), "{error}");
}

#[tokio::test]
async fn watcher_links_a_restarted_foreign_worker_to_its_instance() {
    let app = unique_app("watch");
    let instance = format!("{app}-001");
    let (sink, mut events) = plumdash::supervisor::EventSink::new(64);
    let watcher = plumdash::supervisor::ProcessWatcher::spawn(
        plumdash::supervisor::WatcherConfig {
            app_name: app.clone(),
            worker_name: "sleep".into(),
            interval: Duration::from_millis(50),
            owned_by: None,
            only: None,
            fresh: false,
            output_file: None,
        },
        sink,
    );
    let mut first = foreign_worker(&app, &instance);
    let first_pid = first.id();
    // Started after watching began (or within its first second): found either way.
    let attached = next_event(&mut events, &instance, |kind| match kind {
        EventKind::Attached { pid, .. } | EventKind::Started { pid, run: 1, .. } => Some(*pid),
        _ => None,
    })
    .await;
    assert_eq!(attached, first_pid);

    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(exited(&mut events, &instance).await, ExitKind::Disappeared);
    let mut second = foreign_worker(&app, &instance);
    let (pid, run) = started(&mut events, &instance).await;
    assert_eq!((pid, run), (second.id(), 2));
    let snapshot = watcher
        .instances()
        .into_iter()
        .find(|s| s.id == instance)
        .unwrap();
    assert_eq!(snapshot.restarts, 1);
    assert_eq!(snapshot.origin, plumdash::supervisor::Origin::Attached);
    assert_eq!(watcher.process(&instance).unwrap().pid, second.id());
    watcher.stop().await;
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test]
async fn detach_all_leaves_the_worker_running_after_the_supervisor_is_gone() {
    let (supervisor, _events, id, pid) = one_sleeper("detach").await;
    let left = supervisor.detach_all().await;
    assert_eq!(left, vec![format!("{id} (pid {pid})")]);
    drop(supervisor);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!is_dead(pid), "a detached worker keeps running");
    sigkill(pid);
    // We no longer own it, so reap it here to keep the test process clean.
    let _ = nix::sys::wait::waitpid(Pid::from_raw(pid as i32), None);
}

#[tokio::test]
async fn a_sigstop_from_outside_is_seen_and_so_is_the_sigcont() {
    let (supervisor, mut events, id, pid) = one_sleeper("frozen").await;
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let signal = next_event(&mut events, &id, |kind| match kind {
        EventKind::Frozen { signal } => *signal,
        _ => None,
    })
    .await;
    assert_eq!(signal, Signal::SIGSTOP);
    let snapshot = supervisor.instance(&id).unwrap();
    assert_eq!(snapshot.paused, Some("SIGSTOP"));
    assert_eq!(snapshot.pid, Some(pid), "a frozen worker is not an exit");

    kill(Pid::from_raw(pid as i32), Signal::SIGCONT).unwrap();
    next_event(&mut events, &id, |kind| {
        matches!(kind, EventKind::Continued).then_some(())
    })
    .await;
    assert_eq!(supervisor.instance(&id).unwrap().paused, None);
    // Still the same run: frozen and thawed, never exited.
    let stopped = supervisor.send(&id, InstanceAction::Stop).await.unwrap();
    assert_eq!(stopped.crashes, 0);
    assert_eq!(stopped.run, 1);
}

/// A SIGSTOP and SIGCONT sent through the supervisor are told as the kernel's
/// would be: `Frozen`, then `Continued`, each once.
#[tokio::test]
async fn a_sigstop_sent_by_us_is_told_as_frozen_and_the_sigcont_as_continued() {
    let (supervisor, mut events, id, _pid) = one_sleeper("frozen-by-us").await;
    supervisor
        .send(&id, InstanceAction::Signal(Signal::SIGSTOP))
        .await
        .unwrap();
    let signal = next_event(&mut events, &id, |kind| match kind {
        EventKind::Frozen { signal } => *signal,
        _ => None,
    })
    .await;
    assert_eq!(signal, Signal::SIGSTOP);
    supervisor
        .send(&id, InstanceAction::Signal(Signal::SIGCONT))
        .await
        .unwrap();
    next_event(&mut events, &id, |kind| {
        matches!(kind, EventKind::Continued).then_some(())
    })
    .await;
    assert_eq!(supervisor.instance(&id).unwrap().paused, None);
    // The kernel's own word on both came after and added nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(ev) = events.try_recv() {
        assert!(
            !matches!(ev.kind, EventKind::Frozen { .. } | EventKind::Continued),
            "told twice: {ev:?}"
        );
    }
    supervisor.shutdown_all(Duration::from_secs(1)).await;
}
