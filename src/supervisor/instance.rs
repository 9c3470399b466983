//! The owner task of one instance. It alone spawns, signals and reaps the worker, so
//! every signal goes to a process we have not reaped yet: a recycled PID cannot be hit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::signal::unix::{signal as unix_signal, Signal as SignalStream, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::action::{ActionError, InstanceAction};
use super::events::{EventKind, EventSink};
use super::exit::{ExitKind, RawExit, StopIntent};
use super::output::{pump_output, OutputBuffer, OutputSink};
use super::policy::{CrashDecision, CrashLoop, RestartConfig};
use super::signals::is_stop_signal;
use super::snapshot::{InstanceSnapshot, Lifecycle, Origin, Role};
use super::spec::{AgentEnv, WorkerSpec};

/// How long trailing output may take to arrive after the process group is gone.
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// Settings every owner task shares.
#[derive(Debug, Clone)]
pub(crate) struct InstanceConfig {
    pub restart: RestartConfig,
    pub stop_grace: Duration,
    pub max_line_bytes: usize,
    pub log_dir: Option<PathBuf>,
    pub orphan_guard: Option<Arc<super::orphan_guard::OrphanGuard>>,
}

/// Messages to an owner task.
pub(crate) enum Control {
    Act {
        action: InstanceAction,
        reply: oneshot::Sender<Result<InstanceSnapshot, ActionError>>,
    },
    /// Stop (with this grace) and end the task.
    Shutdown {
        grace: Duration,
        reply: oneshot::Sender<InstanceSnapshot>,
    },
    /// Let the process run on without us (quit leaving workers running) and end the task.
    Detach {
        reply: oneshot::Sender<InstanceSnapshot>,
    },
}

/// Everything an owner task starts with.
pub(crate) struct InstanceSetup {
    pub spec: WorkerSpec,
    pub agent_env: AgentEnv,
    pub config: Arc<InstanceConfig>,
    pub events: EventSink,
    pub output: OutputBuffer,
}

/// The caller's side of an owner task.
pub(crate) struct InstanceChannels {
    pub controls: mpsc::Sender<Control>,
    pub snapshot: watch::Receiver<InstanceSnapshot>,
    pub task: JoinHandle<()>,
}

/// Starts the owner task (the worker is not started until a Start arrives).
pub(crate) fn spawn_owner(setup: InstanceSetup) -> std::io::Result<InstanceChannels> {
    // Registered before any child exists, so no exit can slip past unnoticed.
    let sigchld = unix_signal(SignalKind::child())?;
    let (controls_tx, controls_rx) = mpsc::channel(32);
    let snapshot = initial_snapshot(&setup);
    let (snapshot_tx, snapshot_rx) = watch::channel(snapshot.clone());
    let owner = Owner {
        setup,
        controls: controls_rx,
        snapshot_tx,
        sigchld,
        state: snapshot,
        crash_loop: CrashLoop::default(),
        child: None,
        restart_at: None,
    };
    let task = tokio::spawn(owner.run());
    Ok(InstanceChannels {
        controls: controls_tx,
        snapshot: snapshot_rx,
        task,
    })
}

fn initial_snapshot(setup: &InstanceSetup) -> InstanceSnapshot {
    InstanceSnapshot {
        id: setup.agent_env.instance_id.clone(),
        app_name: setup.agent_env.app_name.clone(),
        node: setup.agent_env.node_id.clone(),
        origin: Origin::Owned,
        command: setup.spec.display_command(),
        pid: None,
        phase: Lifecycle::Stopped,
        run: 0,
        started_at: None,
        crashes: 0,
        manual_restarts: 0,
        restarts: 0,
        last_exit: None,
        auto_restart: true,
        paused: None,
        role: Role::Alone,
    }
}

/// A live child process. Dropping it un-reaped (runtime shutdown) kills its group,
/// which is safe because the un-reaped leader keeps the group id from being reused.
struct RunningChild {
    child: Child,
    pid: Pid,
    run: u32,
    started: Instant,
    intent: StopIntent,
    kill_sent: bool,
    output: Option<JoinHandle<()>>,
    reaped: bool,
}

impl Drop for RunningChild {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = killpg(self.pid, Signal::SIGKILL);
        }
    }
}

enum Wake {
    Control(Option<Control>),
    Child(ChildChange),
    RestartDue,
}

/// What a SIGCHLD told us about our child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChildChange {
    Exited,
    /// Frozen (SIGSTOP, SIGTSTP, …), by us or from outside.
    Stopped(Signal),
    Continued,
}

struct Owner {
    setup: InstanceSetup,
    controls: mpsc::Receiver<Control>,
    snapshot_tx: watch::Sender<InstanceSnapshot>,
    sigchld: SignalStream,
    /// Our own copy of what we publish; the counters live here.
    state: InstanceSnapshot,
    crash_loop: CrashLoop,
    child: Option<RunningChild>,
    restart_at: Option<Instant>,
}

impl Owner {
    async fn run(mut self) {
        loop {
            let child_pid = self.child.as_ref().map(|child| child.pid);
            let restart_deadline = self.restart_at;
            let wake = tokio::select! {
                control = self.controls.recv() => Wake::Control(control),
                change = wait_for_change(&mut self.sigchld, child_pid) => Wake::Child(change),
                () = sleep_until_opt(restart_deadline) => Wake::RestartDue,
            };
            match wake {
                Wake::Child(ChildChange::Exited) => self.on_unrequested_exit().await,
                Wake::Child(ChildChange::Stopped(signal)) => self.on_frozen(Some(signal)),
                Wake::Child(ChildChange::Continued) => self.on_frozen(None),
                Wake::RestartDue => {
                    if self.restart_at.take().is_some() {
                        self.restart_now();
                    }
                }
                Wake::Control(Some(Control::Act { action, reply })) => {
                    let result = self.act(action).await;
                    // The caller may have given up waiting; the action still happened.
                    let _ = reply.send(result);
                }
                Wake::Control(Some(Control::Shutdown { grace, reply })) => {
                    self.shut_down(grace).await;
                    let _ = reply.send(self.state.clone());
                    return;
                }
                Wake::Control(Some(Control::Detach { reply })) => {
                    self.detach();
                    let _ = reply.send(self.state.clone());
                    return;
                }
                Wake::Control(None) => {
                    // Every handle is gone: leave nothing running behind us.
                    self.shut_down(self.setup.config.stop_grace).await;
                    return;
                }
            }
        }
    }

    fn id(&self) -> &str {
        &self.state.id
    }

    fn publish(&self) {
        self.snapshot_tx.send_replace(self.state.clone());
    }

    fn emit(&self, kind: EventKind) {
        self.setup.events.emit(&self.state.id, kind);
    }

    async fn act(&mut self, action: InstanceAction) -> Result<InstanceSnapshot, ActionError> {
        match action {
            InstanceAction::Start => {
                if let Some(pid) = self.state.pid {
                    return Err(ActionError::AlreadyRunning {
                        instance: self.id().to_string(),
                        pid,
                    });
                }
                self.restart_at = None;
                self.crash_loop = CrashLoop::default();
                self.start()?;
            }
            InstanceAction::Stop => {
                if self.child.is_some() {
                    self.stop(self.setup.config.stop_grace).await;
                } else if self.restart_at.take().is_some() {
                    self.state.phase = Lifecycle::Stopped;
                    self.publish();
                } else {
                    return Err(self.not_running());
                }
            }
            InstanceAction::Restart => {
                if self.child.is_some() {
                    self.stop(self.setup.config.stop_grace).await;
                }
                self.restart_at = None;
                self.state.manual_restarts += 1;
                self.start()?;
            }
            InstanceAction::Signal(signal) => self.signal(signal)?,
            InstanceAction::SetAutoRestart(enabled) => {
                self.state.auto_restart = enabled;
                if !enabled && self.restart_at.take().is_some() {
                    self.state.phase = Lifecycle::Exited;
                }
                self.publish();
            }
        }
        Ok(self.state.clone())
    }

    fn not_running(&self) -> ActionError {
        ActionError::NotRunning {
            instance: self.id().to_string(),
            phase: self.state.phase.to_string(),
        }
    }

    /// Spawns a new run. On failure the instance is FAILED (nothing to supervise).
    fn start(&mut self) -> Result<(), ActionError> {
        match self.spawn_run() {
            Ok(()) => Ok(()),
            Err(reason) => {
                self.state.phase = Lifecycle::Failed {
                    reason: reason.clone(),
                };
                self.publish();
                self.emit(EventKind::Failed {
                    reason: reason.clone(),
                });
                Err(ActionError::SpawnFailed {
                    instance: self.id().to_string(),
                    reason,
                })
            }
        }
    }

    fn spawn_run(&mut self) -> Result<(), String> {
        let spec = &self.setup.spec;
        let mut child = spec
            .command(&self.setup.agent_env)
            .spawn()
            .map_err(|error| format!("{}: {error}", spec.program.display()))?;
        let Some(raw_pid) = child.id() else {
            return Err("the process exited before it could be watched".to_string());
        };
        if let Some(guard) = &self.setup.config.orphan_guard {
            guard.watch(raw_pid);
        }
        let pid = Pid::from_raw(
            i32::try_from(raw_pid).map_err(|_| format!("pid {raw_pid} out of range"))?,
        );
        let run = self.state.run + 1;
        let started_at = SystemTime::now();
        let separator = self
            .setup
            .output
            .push_run_separator(run, raw_pid, started_at);
        let sink = OutputSink {
            buffer: self.setup.output.clone(),
            run,
            max_line_bytes: self.setup.config.max_line_bytes,
            log_path: self
                .setup
                .config
                .log_dir
                .as_ref()
                .map(|dir| dir.join(format!("{}.log", self.state.id))),
        };
        let output = tokio::spawn(pump_output(
            sink,
            child.stdout.take(),
            child.stderr.take(),
            separator,
        ));
        self.child = Some(RunningChild {
            child,
            pid,
            run,
            started: Instant::now(),
            intent: StopIntent::default(),
            kill_sent: false,
            output: Some(output),
            reaped: false,
        });
        if run > 1 {
            self.state.restarts += 1;
        }
        self.state.run = run;
        self.state.pid = Some(raw_pid);
        self.state.started_at = Some(started_at);
        self.state.phase = Lifecycle::Running;
        self.state.paused = None;
        self.publish();
        self.emit(EventKind::Started {
            pid: raw_pid,
            run,
            node: self.state.node.clone(),
        });
        Ok(())
    }

    fn signal(&mut self, signal: Signal) -> Result<(), ActionError> {
        let Some(child) = self.child.as_mut() else {
            return Err(self.not_running());
        };
        if let Err(errno) = killpg(child.pid, signal) {
            return Err(ActionError::SignalFailed {
                instance: self.state.id.clone(),
                signal: signal.as_str(),
                pid: child.pid.as_raw().unsigned_abs(),
                reason: errno.desc().to_string(),
            });
        }
        match signal {
            Signal::SIGKILL => child.kill_sent = true,
            other if is_stop_signal(other) => child.intent.stop_signal_sent = Some(other),
            _ => {}
        }
        let pid = child.pid.as_raw().unsigned_abs();
        self.emit(EventKind::SignalSent { signal, pid });
        // Frozen or thawed by us: told now, as the kernel's word on it
        // would be (which then finds it told already).
        match signal {
            Signal::SIGSTOP => self.on_frozen(Some(Signal::SIGSTOP)),
            Signal::SIGCONT if self.state.paused.is_some() => self.on_frozen(None),
            _ => self.publish(),
        }
        Ok(())
    }

    /// SIGTERM to the group, wait up to `grace` for the leader and what ran
    /// under it, then SIGKILL; reaps and records the exit.
    async fn stop(&mut self, grace: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        child.intent.stop_requested = true;
        let pid = child.pid;
        self.state.phase = Lifecycle::Stopping;
        self.publish();
        self.emit(EventKind::StopRequested);
        let deadline = tokio::time::Instant::now() + grace;
        // Taken before the signal: a wrapper (`sh -c ./start.sh`) that the
        // SIGTERM ends at once leaves its worker running without a parent.
        let under = super::procstats::descendants(pid.as_raw().unsigned_abs());
        self.send_to_group(pid, Signal::SIGTERM);
        // A paused worker cannot act on SIGTERM until it runs again.
        let _ = killpg(pid, Signal::SIGCONT);
        let exited =
            tokio::time::timeout_at(deadline, wait_for_exit(&mut self.sigchld, Some(pid))).await;
        if exited.is_err() {
            self.send_to_group(pid, Signal::SIGKILL);
            wait_for_exit(&mut self.sigchld, Some(pid)).await;
        } else {
            // The worker under a wrapper gets the rest of the grace to stop
            // as it does (clearing its crash flag) before `finish_run` kills
            // what is left of the group. (One that left the group and runs
            // on holds the stop for the grace at most.)
            processes_end_by(&under, deadline).await;
        }
        self.finish_run().await;
        self.state.phase = Lifecycle::Stopped;
        self.publish();
    }

    fn send_to_group(&self, pid: Pid, signal: Signal) {
        if killpg(pid, signal).is_ok() {
            self.emit(EventKind::SignalSent {
                signal,
                pid: pid.as_raw().unsigned_abs(),
            });
        }
    }

    /// The kernel says the child was stopped (`Some`) or continued (`None`).
    fn on_frozen(&mut self, by: Option<Signal>) {
        let now = by.map(|s| s.as_str());
        if self.state.paused == now {
            return;
        }
        self.state.paused = now;
        self.publish();
        self.emit(match by {
            Some(signal) => EventKind::Frozen {
                signal: Some(signal),
            },
            None => EventKind::Continued,
        });
    }

    fn forget_in_guard(&self, pid: Pid) {
        if let Some(guard) = &self.setup.config.orphan_guard {
            guard.forget(pid.as_raw().unsigned_abs());
        }
    }

    /// Forgets the child without signalling it: it keeps running after we exit.
    fn detach(&mut self) {
        self.restart_at = None;
        if let Some(mut running) = self.child.take() {
            // Marked reaped so the drop guard does not kill the group.
            running.reaped = true;
            // Handed off on purpose: it must also outlive us.
            self.forget_in_guard(running.pid);
        }
        self.state.pid = None;
        self.state.phase = Lifecycle::Stopped;
        self.publish();
    }

    async fn shut_down(&mut self, grace: Duration) {
        self.restart_at = None;
        if self.child.is_some() {
            self.stop(grace).await;
        } else if matches!(self.state.phase, Lifecycle::WaitingRestart { .. }) {
            self.state.phase = Lifecycle::Stopped;
            self.publish();
        }
    }

    /// The leader has exited (a zombie, not yet reaped). Kill what is left of its
    /// group, reap it, collect trailing output, record the exit. Returns the exit and
    /// whether it was our deliberate SIGKILL.
    async fn finish_run(&mut self) -> Option<(ExitKind, Duration, bool)> {
        let mut running = self.child.take()?;
        // Still safe: the un-reaped leader holds the group id.
        let _ = killpg(running.pid, Signal::SIGKILL);
        let status = running.child.wait().await;
        running.reaped = true;
        self.forget_in_guard(running.pid);
        if let Some(output) = running.output.take() {
            // A grandchild that left the group may hold the pipe open; do not wait on it forever.
            let _ = tokio::time::timeout(OUTPUT_DRAIN_TIMEOUT, output).await;
        }
        let uptime = running.started.elapsed();
        let (exit, raw) = match status {
            Ok(status) => (
                ExitKind::classify(status, running.intent),
                Some(RawExit::of(status)),
            ),
            // Someone else reaped it (a stray waitpid(-1)); the status is lost.
            Err(_) => (ExitKind::Disappeared, None),
        };
        let deliberate_kill =
            running.kill_sent && exit == ExitKind::KilledBySignal(Signal::SIGKILL);
        if exit.is_crash() {
            self.state.crashes += 1;
        }
        self.state.pid = None;
        self.state.paused = None;
        self.state.last_exit = Some(exit);
        self.state.phase = Lifecycle::Exited;
        self.emit(EventKind::Exited {
            pid: running.pid.as_raw().unsigned_abs(),
            run: running.run,
            exit,
            status: raw,
            uptime,
        });
        Some((exit, uptime, deliberate_kill))
    }

    /// The worker died without a Stop from us: apply the restart policy.
    async fn on_unrequested_exit(&mut self) {
        let Some((exit, uptime, deliberate_kill)) = self.finish_run().await else {
            return;
        };
        let restart = &self.setup.config.restart;
        if exit == ExitKind::Stopped {
            self.state.phase = Lifecycle::Stopped;
        }
        if !self.state.auto_restart || !restart.policy.restarts_after(exit) {
            self.publish();
            return;
        }
        let decision = if deliberate_kill {
            self.crash_loop.on_deliberate_kill(restart)
        } else {
            // Quick completions under `always` loop like crashes and back off the same way.
            self.crash_loop.on_crash(restart, uptime, Instant::now())
        };
        match decision {
            CrashDecision::Restart { delay, crash_loop } => {
                self.emit(EventKind::RestartScheduled {
                    delay,
                    crash_loop_runs: crash_loop.map_or(0, |note| note.runs),
                });
                if delay.is_zero() {
                    self.restart_now();
                } else {
                    self.restart_at = Some(Instant::now() + delay);
                    self.state.phase = Lifecycle::WaitingRestart {
                        until: SystemTime::now() + delay,
                        crash_loop,
                    };
                    self.publish();
                }
            }
            CrashDecision::GiveUp { reason } => {
                self.state.phase = Lifecycle::Failed {
                    reason: reason.clone(),
                };
                self.publish();
                self.emit(EventKind::Failed { reason });
            }
        }
    }

    fn restart_now(&mut self) {
        // A failed automatic start leaves the instance FAILED; the event says why.
        let _ = self.start();
    }
}

/// Resolves once the child `pid` has exited, ignoring stops and continues.
async fn wait_for_exit(sigchld: &mut SignalStream, pid: Option<Pid>) {
    while wait_for_change(sigchld, pid).await != ChildChange::Exited {}
}

/// Resolves when the child `pid` was stopped, continued or has exited. An exit
/// is not reaped (WNOWAIT), so its pid and process group id stay ours until
/// `finish_run` reaps. Woken by SIGCHLD, never polls.
async fn wait_for_change(sigchld: &mut SignalStream, pid: Option<Pid>) -> ChildChange {
    let Some(pid) = pid else {
        return std::future::pending().await;
    };
    loop {
        // Stops and continues are consumed (each is reported once); exits are not.
        let flags = WaitPidFlag::WSTOPPED | WaitPidFlag::WCONTINUED | WaitPidFlag::WNOHANG;
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::Stopped(_, signal)) => return ChildChange::Stopped(signal),
            Ok(WaitStatus::Continued(_)) => return ChildChange::Continued,
            _ => {}
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
        match waitid(Id::Pid(pid), flags) {
            Ok(WaitStatus::StillAlive) => {}
            Err(Errno::EINTR) => continue,
            // Exited, or no longer our child to wait for: either way `wait()` will not block.
            Ok(_) | Err(_) => return ChildChange::Exited,
        }
        if sigchld.recv().await.is_none() {
            // The signal driver is gone (runtime shutting down): nothing will wake us.
            return std::future::pending().await;
        }
    }
}

/// Waits until none of `processes` runs any more, or `deadline`; looks
/// often at first (a worker stops in milliseconds), then less.
async fn processes_end_by(processes: &[(u32, u64)], deadline: tokio::time::Instant) {
    let mut pause = Duration::from_millis(5);
    while processes
        .iter()
        .any(|&(pid, start)| super::procstats::still_running(pid, start))
    {
        if tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + pause)).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
