//! `plumdash verify`: headless crash-recovery QA. It runs a worker under the
//! supervisor, SIGKILLs it at scheduled progress points, stops it once with
//! SIGINT, takes the embedded controller away once while the worker restarts,
//! lets every task finish, and checks the recovery invariants 1–6 of DESIGN.md
//! against the full history of facts it watched.
//!
//! The run is a sequence of tasks (0 → 100%). Kills happen in order; when the
//! next kill point is not ahead of the current task, that task is finished and
//! a new one started. A last task holds the SIGINT check (at 30%) and the
//! controller outage (at 60%).
//!
//! Consistency (invariant 3) is judged after each whole feed event: a plumdash
//! batch arrives as one event, a poll as one consistent read. A torn state left
//! behind when a worker dies is a violation; torn states between the separate
//! writes of a live worker are counted as a warning.

pub mod history;
pub mod report;
pub mod schedule;

use crate::clock;
use crate::controller::{self, ControllerConfig};
use crate::kv::{ClientOptions, DistributedMemory};
use crate::recovery::{Fact, Phase, ProcessExit, TaskView, TornCheckpoint, Tracker, TsMs};
use crate::session::{now_ms, Session, SessionConfig, WorkerExit};
use crate::supervisor::{split_command_line, Action, ActionError, RestartConfig, RestartPolicy};
use anyhow::{Context, Result};
use history::{view_text, History};
use nix::sys::signal::Signal;
use report::{
    CycleReport, GracefulReport, InvariantResult, Report, TaskReport, Violation, INVARIANTS,
};
use schedule::{kill_points, KillSchedule};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio::time::Instant;

/// Keys whose writes count as the worker checkpointing.
const TASK_KEYS: [&str; 3] = ["task.progress", "task.counter", "task.checkpoint"];
/// Where the SIGINT check and the outage happen in the last task.
const GRACEFUL_AT: i64 = 30;
const OUTAGE_AT: i64 = 60;
/// Facts still read after a worker ended (its last writes may trail its exit).
const SETTLE: Duration = Duration::from_millis(400);
/// The worker's own default step, for timeouts when `--step` is not given.
const DEFAULT_STEP: Duration = Duration::from_secs(2);

/// `plumdash verify` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Kill cycles (SIGKILL → restart → resume) to run.
    #[arg(long, default_value_t = 3)]
    pub cycles: u32,
    /// Kill every cycle at this progress (1..99, rounded up to the next step).
    #[arg(long)]
    pub kill_at: Option<u8>,
    /// Kill at random progress points (reproducible with --seed).
    #[arg(long)]
    pub kill_random: bool,
    /// Seed for --kill-random [default: from the clock, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker step interval (KV_DEMO_STEP_MS), e.g. 50ms [default: the worker's, 2s].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub step: Option<Duration>,
    /// Verify this worker instead of the bundled kv-demo, e.g. "./kv-demo-cpp".
    #[arg(long)]
    pub cmd: Option<String>,
    /// Use this controller instead of an embedded one (invariant 6 is then skipped).
    /// Its app namespace must be empty, or --reset-namespace given.
    #[arg(long)]
    pub controller: Option<String>,
    /// With --controller: delete the keys already in the app's namespace first.
    #[arg(long, requires = "controller")]
    pub reset_namespace: bool,
    /// App name: PLUM_APP_NAME and the namespace.
    #[arg(long, default_value = "kv-demo")]
    pub app: String,
    /// Bearer token for the controller.
    #[arg(long, env = "PLUM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the JSON report to stdout instead of the table (live lines go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// How long the controller stays down for invariant 6 [default: 30 steps, 1–5 s].
    #[arg(long, hide = true, value_parser = humantime::parse_duration)]
    pub outage: Option<Duration>,
    /// Wait before the supervisor restarts a killed worker.
    #[arg(long, hide = true, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub restart_delay: Duration,
    /// Longest wait for any one expected event [default: 10 s + 10 steps].
    #[arg(long, hide = true, value_parser = humantime::parse_duration)]
    pub patience: Option<Duration>,
}

/// Validated settings of one verify run.
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    pub cycles: u32,
    pub schedule: KillSchedule,
    pub step: Option<Duration>,
    pub cmd: Option<String>,
    pub controller: Option<String>,
    pub app: String,
    pub token: Option<String>,
    /// Delete what a remote namespace holds before starting.
    pub reset_namespace: bool,
    pub outage: Duration,
    pub restart_delay: Duration,
    pub patience: Duration,
    /// Live lines to stderr instead of stdout.
    pub live_to_stderr: bool,
}

impl VerifyConfig {
    /// Checks the arguments; the error is the one-line reason for exit 2.
    pub fn from_args(args: &VerifyArgs) -> Result<VerifyConfig, String> {
        if args.cycles == 0 {
            return Err("--cycles must be at least 1".into());
        }
        if args.kill_at.is_some() && args.kill_random {
            return Err("--kill-at and --kill-random exclude each other".into());
        }
        if args.seed.is_some() && !args.kill_random {
            return Err("--seed only applies to --kill-random".into());
        }
        let schedule = match (args.kill_at, args.kill_random) {
            (Some(pct), _) if !(1..=99).contains(&pct) => {
                return Err(format!("--kill-at {pct} is outside 1..99"))
            }
            (Some(pct), _) => KillSchedule::At(pct),
            (None, true) => KillSchedule::Random {
                seed: args.seed.unwrap_or_else(now_ms),
            },
            (None, false) => KillSchedule::Spread,
        };
        if args.step.is_some_and(|s| s.is_zero()) {
            return Err("--step must be more than 0".into());
        }
        if let Some(cmd) = &args.cmd {
            check_program(cmd)?;
        }
        if let Some(url) = &args.controller {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("--controller {url:?} is not an http(s) URL"));
            }
        }
        let step = args.step.unwrap_or(DEFAULT_STEP);
        Ok(VerifyConfig {
            cycles: args.cycles,
            schedule,
            step: args.step,
            cmd: args.cmd.clone(),
            controller: args.controller.clone(),
            app: args.app.clone(),
            token: args.token.clone().filter(|t| !t.is_empty()),
            reset_namespace: args.reset_namespace,
            outage: args.outage.unwrap_or_else(|| {
                (step * 30).clamp(Duration::from_secs(1), Duration::from_secs(5))
            }),
            restart_delay: args.restart_delay,
            patience: args
                .patience
                .unwrap_or_else(|| Duration::from_secs(10) + step * 10),
            live_to_stderr: args.json,
        })
    }
}

/// The program of a `--cmd` line must exist and be executable.
fn check_program(cmd: &str) -> Result<(), String> {
    let words = split_command_line(cmd).map_err(|e| format!("--cmd: {e}"))?;
    let Some(program) = words.first() else {
        return Err("--cmd is empty".into());
    };
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        executable(Path::new(program))
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| executable(&d.join(program))))
    };
    if found {
        Ok(())
    } else {
        Err(format!("--cmd: {program}: no such executable"))
    }
}

/// `plumdash verify`: runs, prints, and returns 0 (all held), 1 (a violation)
/// or 2 (usage or setup error, one line on stderr).
pub async fn main(args: VerifyArgs) -> ExitCode {
    let config = match VerifyConfig::from_args(&args) {
        Ok(c) => c,
        Err(reason) => {
            eprintln!("plumdash verify: {reason}");
            return ExitCode::from(2);
        }
    };
    let report = match run(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("plumdash verify: {}", format!("{e:#}").replace('\n', " "));
            return ExitCode::from(2);
        }
    };
    let json = report.to_json();
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&json).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("plumdash verify: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        print!("{}", report.render(clock::local_offset_secs()));
    }
    ExitCode::from(report.exit_code)
}

/// Runs the whole verification. `Err` is a setup error (nothing verified).
pub async fn run(config: VerifyConfig) -> Result<Report> {
    let scratch = match &config.controller {
        Some(_) => None,
        None => Some(Scratch::new()?),
    };
    if let Some(url) = &config.controller {
        clear_namespace(url, &config).await?;
    }
    let session_config = SessionConfig {
        remote_controller: config.controller.clone(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        db: scratch
            .as_ref()
            .map(|s| s.dir.join("kv.db"))
            .unwrap_or_default(),
        token: config.token.clone(),
        app: config.app.clone(),
        instances: 1,
        cmd: config.cmd.clone(),
        step: config.step,
        restart: RestartConfig {
            policy: RestartPolicy::OnFailure,
            delay: config.restart_delay,
            max_restarts: Some(20),
            ..RestartConfig::default()
        },
        ..SessionConfig::default()
    };
    let session = Session::start(session_config)
        .await
        .context("starting the worker")?;
    let instance = session
        .supervisor
        .instances()
        .first()
        .map(|s| s.id.clone())
        .context("no worker instance")?;
    let mut runner = Runner::new(session, instance, config);
    runner.banner();
    let outcome = runner.run_all().await;
    let report = runner.finish(outcome).await;
    drop(scratch);
    Ok(report)
}

async fn clear_namespace(url: &str, config: &VerifyConfig) -> Result<()> {
    let dm = DistributedMemory::with_options(
        &config.app,
        url,
        ClientOptions {
            token: config.token.clone(),
            ..ClientOptions::default()
        },
    )?;
    let entries = dm
        .get_all()
        .await
        .with_context(|| format!("cannot reach the controller at {url}"))?;
    if !entries.is_empty() && !config.reset_namespace {
        anyhow::bail!(
            "namespace {} on {url} holds {} keys; verify needs it empty: pass --reset-namespace \
             to delete them, or --app another name",
            config.app,
            entries.len()
        );
    }
    for e in &entries {
        dm.remove(&e.key)
            .await
            .with_context(|| format!("clearing {} in namespace {}", e.key, config.app))?;
    }
    if !entries.is_empty() {
        eprintln!(
            "plumdash verify: cleared {} keys of namespace {} for a fresh start",
            entries.len(),
            config.app
        );
    }
    Ok(())
}

/// A private directory for the embedded controller's database.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!(
            "plumdash-verify-{}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What verify follows of the worker, updated after each whole fact.
#[derive(Debug, Default)]
struct Monitor {
    view: TaskView,
    /// Counter of the last whole (consistent) checkpoint.
    lcc: Option<i64>,
    torn: Option<TornCheckpoint>,
    transient_torn: u32,
    starts: u32,
    run_started_at: Option<TsMs>,
    /// The current process has written checkpoint keys.
    wrote: bool,
    /// The current process's first whole checkpoint (time, counter).
    first_checkpoint: Option<(TsMs, i64)>,
    exited: Option<(TsMs, ProcessExit, bool)>,
    /// Highest checkpoint written in the current task.
    task_max: i64,
    completions_seen: u32,
}

impl Monitor {
    fn alive(&self) -> bool {
        self.run_started_at.is_some() && self.exited.is_none()
    }

    fn observe(&mut self, at: TsMs, fact: &Fact, view: &TaskView) {
        let prev = std::mem::replace(&mut self.view, view.clone());
        let namespace = match fact {
            Fact::Started { .. } => {
                self.starts += 1;
                self.run_started_at = Some(at);
                self.wrote = false;
                self.first_checkpoint = None;
                self.exited = None;
                false
            }
            Fact::Exited {
                exit, requested, ..
            } => {
                self.exited = Some((at, exit.clone(), *requested));
                false
            }
            Fact::Written(entries) => {
                if entries.iter().any(|e| TASK_KEYS.contains(&e.key.as_str())) {
                    self.wrote = true;
                }
                true
            }
            Fact::Deleted { key } => {
                if TASK_KEYS.contains(&key.as_str()) {
                    self.wrote = true;
                }
                true
            }
            Fact::Snapshot(_) => {
                if view.counter != prev.counter || view.progress != prev.progress {
                    self.wrote = true;
                }
                true
            }
            _ => false,
        };
        if !namespace {
            return;
        }
        let torn = view.torn();
        if torn.is_some() && torn != self.torn {
            self.transient_torn += 1;
        }
        self.torn = torn;
        if self.torn.is_none() {
            if let Some(c) = view.counter {
                if self.wrote && self.run_started_at.is_some() {
                    if self.first_checkpoint.is_none() && self.exited.is_none() {
                        self.first_checkpoint = Some((at, c));
                    }
                    self.task_max = self.task_max.max(c);
                }
                self.lcc = Some(c);
            }
        }
        if view.progress == Some(100) && prev.progress != Some(100) {
            self.completions_seen += 1;
        }
    }
}

/// Why a run stopped before its plan was done.
type Outcome = Result<(), String>;

struct Runner {
    session: Session,
    tracker: Tracker,
    seen: u64,
    history: History,
    mon: Monitor,
    offset: i32,
    config: VerifyConfig,
    instance: String,
    violations: Vec<Violation>,
    warnings: Vec<String>,
    /// Completions per task (index = task - 1).
    tasks: Vec<u32>,
    cycles: Vec<CycleReport>,
    outage_cycle: Option<CycleReport>,
    graceful: Option<GracefulReport>,
    kill_points: Vec<i64>,
    /// Tasks that were followed to their end (invariant 5 is judged on them).
    finished_tasks: Vec<u32>,
    outage_skipped: Option<String>,
}

impl Runner {
    fn new(session: Session, instance: String, config: VerifyConfig) -> Runner {
        let kill_points = kill_points(config.cycles, config.schedule);
        Runner {
            session,
            tracker: Tracker::new(),
            seen: 0,
            history: History::default(),
            mon: Monitor::default(),
            offset: clock::local_offset_secs(),
            config,
            instance,
            violations: Vec::new(),
            warnings: Vec::new(),
            tasks: vec![0],
            cycles: Vec::new(),
            outage_cycle: None,
            graceful: None,
            kill_points,
            finished_tasks: Vec::new(),
            outage_skipped: None,
        }
    }

    fn task(&self) -> u32 {
        self.tasks.len() as u32
    }

    fn live(&self, text: &str) {
        if self.config.live_to_stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    fn banner(&self) {
        let where_ = if self.session.controller.is_some() {
            "embedded"
        } else {
            "remote"
        };
        self.live(&format!(
            "verify: worker {} (app {}), controller {} ({where_})",
            self.session.worker_command, self.config.app, self.session.controller_url
        ));
        let seed = match self.config.schedule {
            KillSchedule::Random { seed } => format!(" (--seed {seed})"),
            _ => String::new(),
        };
        let points: Vec<String> = self.kill_points.iter().map(|p| format!("{p}%")).collect();
        self.live(&format!(
            "verify: {} kill cycles at {}{seed}; then SIGINT at {GRACEFUL_AT}% and a controller outage at {OUTAGE_AT}%",
            self.config.cycles,
            points.join(", ")
        ));
    }

    /// Something verify did, on the live output and in the history.
    fn note(&mut self, text: String) {
        let at = now_ms();
        self.live(&format!(
            "{}  verify: {text}",
            clock::hms_millis(at, self.offset)
        ));
        self.history.push(at, "verify", text);
    }

    fn violate(&mut self, invariant: u8, at: TsMs, message: String) {
        self.note(format!("VIOLATION of invariant {invariant}: {message}"));
        let evidence = self.history.excerpt(at, 6, 4);
        self.violations.push(Violation {
            invariant,
            at_ms: at,
            message,
            evidence,
        });
    }

    fn apply(&mut self, at: TsMs, fact: Fact) {
        self.tracker.apply(at, fact.clone());
        let completions = self.mon.completions_seen;
        self.mon.observe(at, &fact, self.tracker.task());
        if self.mon.completions_seen > completions {
            if let Some(n) = self.tasks.last_mut() {
                *n += 1;
            }
        }
        self.history.record(at, &fact, &self.mon.view);
        let (new, count) = self.tracker.events_since(self.seen);
        self.seen = count;
        let lines: Vec<String> = new
            .iter()
            .map(|ev| format!("{}  {ev}", clock::hms_millis(ev.at, self.offset)))
            .collect();
        for l in lines {
            self.live(&l);
        }
    }

    /// Reads facts until `pred` holds (true) or `patience` runs out (false).
    async fn wait_until(
        &mut self,
        patience: Duration,
        pred: impl Fn(&Runner) -> bool,
    ) -> Result<bool, String> {
        let deadline = Instant::now() + patience;
        loop {
            if pred(self) {
                return Ok(true);
            }
            match tokio::time::timeout_at(deadline, self.session.next_fact()).await {
                Err(_) => return Ok(false),
                Ok(None) => return Err("the session ended unexpectedly".into()),
                Ok(Some((at, fact))) => self.apply(at, fact),
            }
        }
    }

    /// Reads facts for `how_long`.
    async fn settle(&mut self, how_long: Duration) -> Outcome {
        self.wait_until(how_long, |_| false).await.map(|_| ())
    }

    async fn act(&mut self, action: Action) -> Result<(), ActionError> {
        self.session
            .supervisor
            .send(&self.instance, action)
            .await
            .map(|_| ())
    }

    async fn run_all(&mut self) -> Outcome {
        let patience = self.config.patience;
        if !self.wait_until(patience, |r| r.mon.starts > 0).await? {
            return Err("the worker did not start".into());
        }
        let points = self.kill_points.clone();
        for (i, point) in points.into_iter().enumerate() {
            let completed = self.tasks.last().is_some_and(|n| *n > 0);
            if completed || self.mon.task_max * 10 >= point {
                self.next_task().await?;
            }
            let cycle = self.kill_cycle(i as u32 + 1, point, false).await?;
            self.cycles.push(cycle);
        }
        self.next_task().await?;
        self.graceful_stop().await?;
        if self.session.controller.is_some() {
            let cycle = self
                .kill_cycle(self.config.cycles + 1, OUTAGE_AT, true)
                .await?;
            self.outage_cycle = Some(cycle);
        } else {
            let why = "needs the embedded controller: verify cannot stop a remote controller \
                       (--controller)";
            self.outage_skipped = Some(why.into());
            self.note(format!("invariant 6 skipped: {why}"));
        }
        self.finish_task().await
    }

    /// Lets the current task finish, then starts a new one.
    async fn next_task(&mut self) -> Outcome {
        self.finish_task().await?;
        self.tasks.push(0);
        self.mon.task_max = 0;
        let starts = self.mon.starts;
        self.note(format!("starting task {}", self.task()));
        match self.act(Action::Start).await {
            Ok(()) | Err(ActionError::AlreadyRunning { .. }) => {}
            Err(e) => return Err(format!("cannot start the worker: {e}")),
        }
        if !self
            .wait_until(self.config.patience, |r| r.mon.starts > starts)
            .await?
        {
            return Err("the worker did not start".into());
        }
        Ok(())
    }

    /// Waits until the current task completed and the worker exited.
    async fn finish_task(&mut self) -> Outcome {
        let task = self.task();
        let limit = self.config.patience + self.config.step.unwrap_or(DEFAULT_STEP) * 12;
        let done = self
            .wait_until(limit, |r| {
                r.tasks.last().is_some_and(|n| *n > 0) && !r.mon.alive()
                    || r.mon.exited.is_some() && r.phase_is_final()
            })
            .await?;
        self.settle(SETTLE).await?;
        self.finished_tasks.push(task);
        if !done {
            self.note(format!("task {task} did not finish in time"));
            return Err(format!("task {task} did not finish"));
        }
        if self.tasks.last() == Some(&0) {
            return Err(format!("task {task} ended without reaching 100%"));
        }
        Ok(())
    }

    /// The worker ended and nobody will restart it.
    fn phase_is_final(&self) -> bool {
        let phase = self
            .session
            .supervisor
            .instance(&self.instance)
            .map(|s| s.phase);
        matches!(
            phase,
            Some(
                crate::supervisor::Phase::Exited
                    | crate::supervisor::Phase::Stopped
                    | crate::supervisor::Phase::Failed { .. }
            )
        )
    }

    /// Waits until the running worker has written progress ≥ `point`.
    async fn reach(&mut self, point: i64) -> Result<bool, String> {
        self.wait_until(self.config.patience, |r| {
            r.mon.alive()
                && r.mon.wrote
                && r.mon.view.progress.is_some_and(|p| p >= point && p < 100)
        })
        .await
    }

    /// One SIGKILL → restart → resume cycle. With `outage`, the controller is
    /// stopped just before the kill and comes back after the restart.
    async fn kill_cycle(
        &mut self,
        n: u32,
        point: i64,
        outage: bool,
    ) -> Result<CycleReport, String> {
        let invariant_resume = if outage { 6 } else { 2 };
        let mut cycle = CycleReport {
            cycle: n,
            kind: if outage { "outage" } else { "kill" },
            task: self.task(),
            planned_pct: point,
            killed_at_ms: None,
            kill_at_pct: None,
            counter_at_kill: None,
            flag_after_kill: None,
            torn_at_kill: None,
            resumed_from: None,
            steps_lost: None,
            kill_to_restart_ms: None,
            kill_to_checkpoint_ms: None,
            violated: Vec::new(),
            verdict: String::new(),
        };
        let before = self.violations.len();
        if !self.reach(point).await? {
            return Err(format!(
                "the worker never reached {point}% (now {})",
                view_text(&self.mon.view)
            ));
        }
        let mut down_since = None;
        if outage {
            let controller = self.session.controller.take();
            if let Some(c) = controller {
                self.note(format!(
                    "stopping the controller for {} ms (invariant 6)",
                    self.config.outage.as_millis()
                ));
                let addr = c.addr;
                let db = c.db.clone();
                c.shutdown()
                    .await
                    .map_err(|e| format!("stopping the controller: {e:#}"))?;
                down_since = Some((Instant::now(), addr, db));
            }
        }
        let label = if outage { "outage cycle" } else { "cycle" };
        let progress = self.mon.view.progress.unwrap_or(0);
        let of = if outage {
            String::new()
        } else {
            format!("/{}", self.config.cycles)
        };
        self.note(format!(
            "SIGKILL {} at {progress}% ({label} {n}{of})",
            self.instance
        ));
        let starts = self.mon.starts;
        if let Err(e) = self.act(Action::Signal(Signal::SIGKILL)).await {
            return Err(format!("cannot kill the worker: {e}"));
        }
        if !self
            .wait_until(self.config.patience, |r| r.mon.exited.is_some())
            .await?
        {
            return Err("the worker did not die after SIGKILL".into());
        }
        let killed_at = self.mon.exited.as_ref().map_or(0, |e| e.0);
        cycle.killed_at_ms = Some(killed_at);
        cycle.kill_at_pct = self.mon.view.progress;
        let restarted = self
            .wait_until(self.config.patience, |r| r.mon.starts > starts)
            .await?;
        // What the restarted worker will read (the namespace, settled).
        let view = self.mon.view.clone();
        let counter_at_kill = self.mon.lcc;
        cycle.counter_at_kill = counter_at_kill;
        cycle.flag_after_kill = Some(view.crash_flag);
        let at = self.mon.run_started_at.unwrap_or(killed_at);
        if !restarted {
            return Err("the supervisor did not restart the killed worker".into());
        }
        cycle.kill_to_restart_ms = Some(at.saturating_sub(killed_at));
        if !view.crash_flag {
            self.violate(
                1,
                killed_at,
                format!("the crash flag was gone after SIGKILL at {progress}% ({label} {n})"),
            );
        }
        if let Some(torn) = &self.mon.torn {
            cycle.torn_at_kill = Some(torn.to_string());
            self.violate(
                3,
                killed_at,
                format!(
                    "SIGKILL left a torn checkpoint behind ({torn}); the restart reads it ({label} {n})"
                ),
            );
        }
        if counter_at_kill.is_none() {
            self.violate(
                1,
                killed_at,
                format!("no whole checkpoint was left after SIGKILL at {progress}% ({label} {n})"),
            );
        }
        if let Some((since, addr, db)) = down_since {
            let left = self.config.outage.saturating_sub(since.elapsed());
            self.settle(left).await?;
            self.restart_controller(addr, db).await?;
        }
        let resumed = self
            .wait_until(self.config.patience, |r| {
                r.mon.first_checkpoint.is_some() || r.mon.exited.is_some()
            })
            .await?;
        match self.mon.first_checkpoint {
            Some((t, c)) => {
                let resumed_from = (c - 1).max(0);
                cycle.resumed_from = Some(resumed_from * 10);
                cycle.kill_to_checkpoint_ms = Some(t.saturating_sub(killed_at));
                if let Some(k) = counter_at_kill {
                    let lost = k - resumed_from;
                    cycle.steps_lost = Some(lost);
                    // From a torn checkpoint there is no right place to resume:
                    // that is invariant 3's finding, not another one.
                    let lost = if cycle.torn_at_kill.is_some() {
                        0
                    } else {
                        lost
                    };
                    let context = if outage {
                        ", restarted while the controller was unreachable"
                    } else {
                        ""
                    };
                    if lost > 0 {
                        self.violate(
                            invariant_resume,
                            t,
                            format!(
                                "resumed from {}% but the last checkpoint was step_{k} ({}%): {} lost{context} ({label} {n})",
                                resumed_from * 10,
                                k * 10,
                                steps(lost)
                            ),
                        );
                    } else if lost < 0 {
                        self.violate(
                            invariant_resume,
                            t,
                            format!(
                                "resumed from {}%, ahead of the last whole checkpoint step_{k}: {} skipped{context} ({label} {n})",
                                resumed_from * 10,
                                steps(-lost)
                            ),
                        );
                    }
                }
            }
            None => {
                let why = match &self.mon.exited {
                    Some((t, exit, _)) => {
                        let at = *t;
                        (
                            at,
                            format!(
                                "the restarted worker ended ({exit}) without writing a checkpoint"
                            ),
                        )
                    }
                    None if !resumed => (
                        now_ms(),
                        format!(
                            "the restarted worker wrote no checkpoint within {}",
                            humantime::format_duration(self.config.patience)
                        ),
                    ),
                    None => (now_ms(), "the restarted worker wrote no checkpoint".into()),
                };
                let context = if outage {
                    " after being restarted while the controller was unreachable"
                } else {
                    ""
                };
                self.violate(
                    invariant_resume,
                    why.0,
                    format!("{}{context} ({label} {n})", why.1),
                );
            }
        }
        let mut violated: Vec<u8> = self.violations[before..]
            .iter()
            .map(|v| v.invariant)
            .collect();
        violated.dedup();
        cycle.verdict = if violated.is_empty() {
            "ok".into()
        } else {
            let list: Vec<String> = violated.iter().map(|i| i.to_string()).collect();
            format!("FAIL ({})", list.join(", "))
        };
        cycle.violated = violated;
        Ok(cycle)
    }

    /// Starts the controller again on the same address and database file.
    async fn restart_controller(&mut self, addr: SocketAddr, db: PathBuf) -> Outcome {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let started = controller::start(ControllerConfig {
                listen: addr,
                db: db.clone(),
                token: self.config.token.clone(),
                fallback_to_free_port: false,
            })
            .await;
            match started {
                Ok(c) => {
                    self.session.controller = Some(c);
                    self.session.resubscribe();
                    self.note(format!("controller back on {addr}"));
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("restarting the controller on {addr}: {e:#}"))
                }
                Err(_) => self.settle(Duration::from_millis(100)).await?,
            }
        }
    }

    /// Invariant 4: SIGINT part-way, then start again.
    async fn graceful_stop(&mut self) -> Outcome {
        let mut g = GracefulReport {
            task: self.task(),
            ..GracefulReport::default()
        };
        if !self.reach(GRACEFUL_AT).await? {
            return Err(format!("the worker never reached {GRACEFUL_AT}%"));
        }
        g.at_pct = self.mon.view.progress;
        let before = self.mon.lcc;
        let violations = self.violations.len();
        self.note(format!(
            "SIGINT {} at {}% (graceful stop, invariant 4)",
            self.instance,
            g.at_pct.unwrap_or(0)
        ));
        let starts = self.mon.starts;
        if let Err(e) = self.act(Action::Signal(Signal::SIGINT)).await {
            return Err(format!("cannot send SIGINT: {e}"));
        }
        let limit = self.config.patience.max(Duration::from_secs(15));
        if !self.wait_until(limit, |r| r.mon.exited.is_some()).await? {
            self.violate(
                4,
                now_ms(),
                format!(
                    "the worker did not exit within {} of SIGINT",
                    humantime::format_duration(limit)
                ),
            );
            self.graceful = Some(g);
            return Err("the worker ignored SIGINT".into());
        }
        self.settle(SETTLE).await?;
        let (stopped_at, exit, _) =
            self.mon
                .exited
                .clone()
                .unwrap_or((now_ms(), ProcessExit::Clean, true));
        g.exit = Some(exit.to_string());
        if exit != ProcessExit::Clean {
            self.violate(
                4,
                stopped_at,
                format!("SIGINT ended the worker with {exit}, not exit 0"),
            );
        }
        g.flag_after_stop = Some(self.mon.view.crash_flag);
        if self.mon.view.crash_flag {
            self.violate(
                4,
                stopped_at,
                "the crash flag was still set after a graceful stop (SIGINT)".into(),
            );
        }
        g.counter_after_stop = self.mon.lcc;
        if self.mon.torn.is_some() || self.mon.lcc.is_none() || self.mon.lcc < before {
            self.violate(
                4,
                stopped_at,
                format!(
                    "the checkpoint was not kept by the graceful stop (before: {}, after: {})",
                    before.map_or("—".into(), |c| format!("step_{c}")),
                    view_text(&self.mon.view)
                ),
            );
        }
        let kept = self.mon.lcc;
        self.note(format!(
            "starting {} again after the graceful stop",
            self.instance
        ));
        match self.act(Action::Start).await {
            Ok(()) | Err(ActionError::AlreadyRunning { .. }) => {}
            Err(e) => return Err(format!("cannot start the worker again: {e}")),
        }
        if !self
            .wait_until(self.config.patience, |r| r.mon.starts > starts)
            .await?
        {
            return Err("the worker did not start again".into());
        }
        let recovering = self
            .tracker
            .instance(&self.instance)
            .is_some_and(|i| i.phase == Phase::Recovering);
        g.next_start_was_recovery = Some(recovering);
        if recovering {
            let at = self.mon.run_started_at.unwrap_or_else(now_ms);
            self.violate(
                4,
                at,
                "the start after a graceful stop was taken for a crash recovery".into(),
            );
        }
        self.wait_until(self.config.patience, |r| {
            r.mon.first_checkpoint.is_some() || r.mon.exited.is_some()
        })
        .await?;
        match (self.mon.first_checkpoint, kept) {
            (Some((t, c)), Some(k)) => {
                g.continued_from = Some((c - 1).max(0) * 10);
                if c - 1 != k {
                    self.violate(
                        4,
                        t,
                        format!(
                            "after a graceful stop at step_{k} the next start continued from {}%, not {}%",
                            (c - 1).max(0) * 10,
                            k * 10
                        ),
                    );
                }
            }
            (None, _) => {
                self.violate(
                    4,
                    now_ms(),
                    "the worker started after a graceful stop wrote no checkpoint".into(),
                );
            }
            _ => {}
        }
        g.violated = self.violations.len() > violations;
        self.graceful = Some(g);
        Ok(())
    }

    /// Stops everything and judges the invariants.
    async fn finish(mut self, outcome: Outcome) -> Report {
        if let Err(why) = &outcome {
            self.note(format!("run ended early: {why}"));
        }
        // Judge invariant 5 on every task followed to its end.
        let finished = self.finished_tasks.clone();
        for task in finished {
            let n = self.tasks.get(task as usize - 1).copied().unwrap_or(0);
            if n != 1 {
                let at = now_ms();
                self.violate(
                    5,
                    at,
                    format!("task {task} reached 100% {n} times (expected exactly once)"),
                );
            }
        }
        if self.mon.transient_torn > 0 {
            self.warnings.push(format!(
                "{} torn states seen while a worker was between its writes (separate PUTs per step; \
                 a kill there leaves a torn checkpoint)",
                self.mon.transient_torn
            ));
        }
        let worker = self.session.worker_command.clone();
        let controller = self.session.controller_url.clone();
        let _ = self.session.shutdown(WorkerExit::StopGracefully).await;

        let early = outcome.err();
        let mut invariants = Vec::new();
        for (id, name) in INVARIANTS {
            let violations: Vec<Violation> = self
                .violations
                .iter()
                .filter(|v| v.invariant == id)
                .cloned()
                .collect();
            let (status, reason) = if !violations.is_empty() {
                ("violated", None)
            } else if id == 6 && self.outage_skipped.is_some() {
                ("skipped", self.outage_skipped.clone())
            } else if (id == 6 && self.outage_cycle.is_none())
                || (id == 4 && self.graceful.is_none())
                || (early.is_some() && id == 5 && self.finished_tasks.is_empty())
            {
                ("not_checked", early.clone())
            } else {
                ("held", None)
            };
            invariants.push(InvariantResult {
                id,
                name,
                status,
                reason,
                violations,
            });
        }
        // A run that could not complete its plan is a failure even when no
        // single invariant could be pinned on it.
        if let Some(why) = &early {
            if invariants.iter().all(|i| i.status != "violated") {
                self.warnings.push(format!("run ended early: {why}"));
            }
        }
        let ok = early.is_none() && invariants.iter().all(|i| i.status != "violated");
        Report {
            ok,
            exit_code: if ok { 0 } else { 1 },
            worker,
            controller,
            embedded_controller: self.config.controller.is_none(),
            app: self.config.app.clone(),
            step_ms: self.config.step.map(|s| s.as_millis() as u64),
            seed: match self.config.schedule {
                KillSchedule::Random { seed } => Some(seed),
                _ => None,
            },
            kill_points: self.kill_points.clone(),
            cycles: self.cycles,
            outage: self.outage_cycle,
            outage_ms: (self.config.controller.is_none())
                .then_some(self.config.outage.as_millis() as u64),
            graceful_stop: self.graceful,
            tasks: self
                .tasks
                .iter()
                .enumerate()
                .map(|(i, n)| TaskReport {
                    task: i as u32 + 1,
                    completions: *n,
                })
                .collect(),
            invariants,
            transient_torn_states: self.mon.transient_torn,
            warnings: self.warnings,
            history: self.history,
        }
    }
}

fn steps(n: i64) -> String {
    if n == 1 {
        "1 step".into()
    } else {
        format!("{n} steps")
    }
}
