//! Drives the worker through the plan: the SIGKILL cycles, the SIGINT check, the controller outage.

use super::config::{VerifyConfig, DEFAULT_STEP};
use super::history::{view_text, History};
use super::report::{
    CycleReport, GracefulReport, PatternSample, ProgressSample, Report, TaskReport, Violation,
};
use super::schedule::{kill_points, KillSchedule};
use crate::clock;
use crate::clock::now_ms;
use crate::controller::{self, ControllerConfig};
use crate::driver::{Driver, Step};
use crate::recovery::{InstanceView, Pattern, ProcessExit, TaskView, Tracker, TsMs};
use crate::session::{Session, WorkerExit};
use crate::supervisor::{ActionError, InstanceAction};
use crate::text::{timeline, Lang};
use nix::sys::signal::Signal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Where the SIGINT check and the outage happen in the last task.
const GRACEFUL_AT: i64 = 30;
const OUTAGE_AT: i64 = 60;
/// Facts still read after a worker ended (its last writes may trail its exit).
const SETTLE: Duration = Duration::from_millis(400);

/// What the feed's way of observing (`stream`, `polling 125ms`) can and cannot see.
fn resolution(via: &str) -> String {
    match via.strip_prefix("polling ") {
        Some(every) => format!(
            "polled every {every}: shorter states are not observable (a fresh read follows every exit)"
        ),
        None => format!("{via}: every write is seen"),
    }
}

/// Why a run stopped before its plan was done.
pub(super) type Outcome = Result<(), String>;

/// One verify run: the session, everything seen of it, and what was found.
pub(super) struct Runner {
    /// The session, and the board its facts are judged into (one namespace).
    driver: Driver,
    /// Completions the tracker had counted at the last step.
    completions: u32,
    pub(super) history: History,
    /// Highest whole checkpoint of the current task (where the plan stands).
    task_max: i64,
    zone: clock::Zone,
    pub(super) config: VerifyConfig,
    pub(super) instance: String,
    pub(super) violations: Vec<Violation>,
    pub(super) warnings: Vec<String>,
    /// Completions per task (index = task - 1).
    pub(super) tasks: Vec<u32>,
    cycles: Vec<CycleReport>,
    pub(super) outage_cycle: Option<CycleReport>,
    pub(super) graceful: Option<GracefulReport>,
    kill_points: Vec<i64>,
    /// Tasks that were followed to their end (invariant 5 is judged on them).
    pub(super) finished_tasks: Vec<u32>,
    pub(super) outage_skipped: Option<String>,
    started_ms: TsMs,
    progress: Vec<ProgressSample>,
    /// When the controller was stopped and when it served again.
    outage_window: Option<(TsMs, TsMs)>,
    /// The tracker's pattern findings already judged.
    pub(super) pattern_seen: usize,
    /// The transaction log's or state machine's keys after each change.
    pattern_samples: Vec<PatternSample>,
}

impl super::reading::FactReader for Runner {
    fn driver(&mut self) -> &mut Driver {
        &mut self.driver
    }

    fn on_step(&mut self, step: Step) {
        Runner::on_step(self, step);
    }
}

impl Runner {
    pub(super) fn new(session: Session, instance: String, config: VerifyConfig) -> Runner {
        let kill_points = kill_points(config.cycles, config.schedule);
        Runner {
            // Every fact goes into the history too.
            driver: Driver::new(session).keep_facts(),
            completions: 0,
            history: History::default(),
            task_max: 0,
            zone: clock::Zone::Local,
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
            started_ms: now_ms(),
            progress: Vec::new(),
            outage_window: None,
            pattern_seen: 0,
            pattern_samples: Vec::new(),
        }
    }

    fn task(&self) -> u32 {
        self.tasks.len() as u32
    }

    /// The namespace's tracker: everything verify judges is what it says.
    pub(super) fn tracker(&self) -> &Tracker {
        self.driver.board().first()
    }

    fn session(&self) -> &Session {
        self.driver.session()
    }

    /// The worker's instance as the tracker sees it (its current run).
    pub(super) fn run(&self) -> Option<&InstanceView> {
        self.tracker().instance(&self.instance)
    }

    /// The namespace's task as the tracker sees it.
    pub(super) fn view(&self) -> &TaskView {
        self.tracker().task()
    }

    /// Runs of the worker seen starting.
    fn starts(&self) -> u32 {
        self.run().map_or(0, |r| r.runs)
    }

    fn alive(&self) -> bool {
        self.run().is_some_and(|r| r.pid.is_some())
    }

    /// When and how the current run ended, once it has.
    pub(super) fn exited(&self) -> Option<(TsMs, ProcessExit)> {
        let run = self.run().filter(|r| r.pid.is_none())?;
        Some((run.ended_at?, run.last_exit.clone()?))
    }

    /// The current run's first whole checkpoint (time, counter).
    pub(super) fn first_checkpoint(&self) -> Option<(TsMs, i64)> {
        self.run().and_then(|r| r.first_checkpoint)
    }

    fn live(&self, text: &str) {
        super::reading::live(self.config.live_to_stderr, text);
    }

    pub(super) fn banner(&self) {
        let where_ = if self.session().embedded_controller().is_some() {
            "embedded"
        } else {
            "remote"
        };
        self.live(&format!(
            "verify: worker {} (app {}), controller {} ({where_})",
            self.session().worker_command(),
            self.config.app,
            self.session().controller_url()
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
    pub(super) fn note(&mut self, text: String) {
        let at = now_ms();
        self.live(&format!("{}  verify: {text}", self.zone.hms_millis(at)));
        self.history.push(at, "verify", text);
    }

    /// What a fact did (the driver applied it): into the history, the tasks'
    /// completions, the progress samples and the live lines.
    fn on_step(&mut self, step: Step) {
        let at = step.at;
        if let Some(fact) = &step.fact {
            self.history
                .record(at, fact, self.driver.board().first().task());
        }
        let completions = self.tracker().completions();
        if completions > self.completions {
            if let Some(n) = self.tasks.last_mut() {
                *n += 1;
            }
        }
        self.completions = completions;
        if self.first_checkpoint().is_some() {
            // Where the task stands, by its progress: a worker whose counter
            // lags (a torn resume) never writes a whole checkpoint again.
            let step = self.view().progress.unwrap_or(0) / 10;
            self.task_max = self.task_max.max(step);
        }
        let progress = self.view().progress;
        if self.progress.last().map(|p| p.progress) != Some(progress) {
            self.progress.push(ProgressSample {
                ts_ms: at,
                instance: self.instance.clone(),
                progress,
            });
        }
        let view = self.view();
        if matches!(view.pattern, Some(Pattern::TxLog | Pattern::Fsm)) {
            let sample = PatternSample {
                ts_ms: at,
                logged: view.txlog.logged,
                applied: view.txlog.applied,
                state: view.fsm.state.clone(),
            };
            let same = self.pattern_samples.last().is_some_and(|p| {
                (&p.logged, &p.applied, &p.state)
                    == (&sample.logged, &sample.applied, &sample.state)
            });
            if !same {
                self.pattern_samples.push(sample);
            }
        }
        for ev in &step.events {
            // Verify's live lines are English, as its reports.
            let text = timeline::event(ev, Lang::En);
            self.live(&format!("{}  {text}", self.zone.hms_millis(ev.at)));
        }
    }

    /// Reads facts until `pred` holds (true) or `patience` runs out (false).
    async fn wait_until(
        &mut self,
        patience: Duration,
        pred: impl Fn(&Runner) -> bool,
    ) -> Result<bool, String> {
        super::reading::wait_until(self, patience, pred).await
    }

    /// Reads facts for `how_long`.
    async fn settle(&mut self, how_long: Duration) -> Outcome {
        self.wait_until(how_long, |_| false).await.map(|_| ())
    }

    async fn act(&mut self, action: InstanceAction) -> Result<(), ActionError> {
        self.session()
            .supervisor()
            .send(&self.instance, action)
            .await
            .map(|_| ())
    }

    pub(super) async fn run_all(&mut self) -> Outcome {
        let patience = self.config.patience;
        if !self.wait_until(patience, |r| r.starts() > 0).await? {
            return Err("the worker did not start".into());
        }
        let points = self.kill_points.clone();
        for (i, point) in points.into_iter().enumerate() {
            let completed = self.tasks.last().is_some_and(|n| *n > 0);
            if completed || self.task_max * 10 >= point {
                self.next_task().await?;
            }
            let cycle = self.kill_cycle(i as u32 + 1, point, false).await?;
            self.cycles.push(cycle);
        }
        self.next_task().await?;
        self.graceful_stop().await?;
        if self.session().embedded_controller().is_some() {
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
        self.task_max = 0;
        let starts = self.starts();
        self.note(format!("starting task {}", self.task()));
        self.start_worker(starts, "").await
    }

    /// Waits until the current task completed and the worker exited.
    async fn finish_task(&mut self) -> Outcome {
        let task = self.task();
        let limit = self.config.patience + self.config.step.unwrap_or(DEFAULT_STEP) * 12;
        let done = self
            .wait_until(limit, |r| {
                r.tasks.last().is_some_and(|n| *n > 0) && !r.alive()
                    || r.exited().is_some() && r.phase_is_final()
            })
            .await?;
        self.settle(SETTLE).await?;
        self.finished_tasks.push(task);
        self.judge_ledger(task);
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
            .session()
            .supervisor()
            .instance(&self.instance)
            .map(|s| s.phase);
        matches!(
            phase,
            Some(
                crate::supervisor::Lifecycle::Exited
                    | crate::supervisor::Lifecycle::Stopped
                    | crate::supervisor::Lifecycle::Failed { .. }
            )
        )
    }

    /// Waits until the running worker has written progress ≥ `point`. A
    /// transaction log is caught in its window: an operation applied and not
    /// yet logged (where a replay meets an operation already done).
    async fn reach(&mut self, point: i64) -> Result<bool, String> {
        self.wait_until(self.config.patience, |r| r.short_of(point).is_none())
            .await
    }

    /// What keeps the worker from being at `point` now (`None` once it is
    /// there): a progress of 50 % is not enough without a write of it by this
    /// run seen, or while the worker is not running. Checked at every fact
    /// while waiting: words only when they are told.
    fn short_of(&self, point: i64) -> Option<ShortOf> {
        if !self.alive() {
            return Some(ShortOf::NotRunning);
        }
        let progress = self.view().progress;
        if !progress.is_some_and(|p| p >= point && p < 100) {
            return Some(ShortOf::Progress(progress));
        }
        if self.first_checkpoint().is_none() {
            return Some(ShortOf::NoOwnWrite);
        }
        let tx = &self.view().txlog;
        let in_window = self.tracker().pattern() != Some(Pattern::TxLog)
            || tx.applied_op.zip(tx.logged).is_some_and(|(a, l)| a > l);
        (!in_window).then_some(ShortOf::TxLogWindow)
    }

    /// One SIGKILL → restart → resume cycle. With `outage`, the controller is
    /// stopped just before the kill and comes back after the restart.
    async fn kill_cycle(
        &mut self,
        n: u32,
        point: i64,
        outage: bool,
    ) -> Result<CycleReport, String> {
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
            steps_skipped: None,
            basis: Default::default(),
            kill_to_restart_ms: None,
            kill_to_checkpoint_ms: None,
            violated: Vec::new(),
            verdict: String::new(),
        };
        let before = self.violations.len();
        if !self.reach(point).await? {
            let why = self
                .short_of(point)
                .map_or_else(String::new, |s| s.to_string());
            return Err(format!(
                "the worker never reached {point}%: {why} (now {})",
                view_text(self.view())
            ));
        }
        let mut down_since = None;
        if outage {
            let controller = self.driver.session_mut().take_controller();
            if let Some(c) = controller {
                self.note(format!(
                    "stopping the controller for {} ms (invariant 6)",
                    clock::millis(self.config.outage)
                ));
                let addr = c.addr;
                let db = c.db.clone();
                c.shutdown()
                    .await
                    .map_err(|e| format!("stopping the controller: {e:#}"))?;
                down_since = Some((Instant::now(), now_ms(), addr, db));
            }
        }
        let label = if outage { "outage cycle" } else { "cycle" };
        let progress = self.view().progress.unwrap_or(0);
        let of = if outage {
            String::new()
        } else {
            format!("/{}", self.config.cycles)
        };
        self.note(format!(
            "SIGKILL {} at {progress}% ({label} {n}{of})",
            self.instance
        ));
        let starts = self.starts();
        if let Err(e) = self.act(InstanceAction::Signal(Signal::SIGKILL)).await {
            return Err(format!("cannot kill the worker: {e}"));
        }
        if !self
            .wait_until(self.config.patience, |r| r.exited().is_some())
            .await?
        {
            return Err("the worker did not die after SIGKILL".into());
        }
        let killed_at = self.exited().map_or(0, |e| e.0);
        cycle.killed_at_ms = Some(killed_at);
        cycle.kill_at_pct = self.view().progress;
        let restarted = self
            .wait_until(self.config.patience, |r| r.starts() > starts)
            .await?;
        // What the restarted worker will read (the namespace, settled).
        cycle.counter_at_kill = self.tracker().last_checkpoint();
        cycle.flag_after_kill = Some(self.view().crash_flag);
        let at = self.run().and_then(|r| r.started_at).unwrap_or(killed_at);
        if !restarted {
            return Err("the supervisor did not restart the killed worker".into());
        }
        cycle.kill_to_restart_ms = Some(at.saturating_sub(killed_at));
        let tag = format!("{label} {n}");
        self.judge_kill(&mut cycle, killed_at, progress, &tag);
        if let Some((since, down_at, addr, db)) = down_since {
            let left = self.config.outage.saturating_sub(since.elapsed());
            self.settle(left).await?;
            self.restart_controller(addr, db).await?;
            self.outage_window = Some((down_at, now_ms()));
        }
        let resumed = self.wait_for_checkpoint().await?;
        self.judge_resume(&mut cycle, killed_at, resumed, outage, &tag);
        self.judge_pattern(&tag);
        self.judge_cycle(&mut cycle, before);
        Ok(cycle)
    }

    /// Reads facts until the running worker wrote its first whole checkpoint
    /// or exited (true), or patience runs out (false).
    async fn wait_for_checkpoint(&mut self) -> Result<bool, String> {
        self.wait_until(self.config.patience, |r| {
            r.first_checkpoint().is_some() || r.exited().is_some()
        })
        .await
    }

    /// Starts the stopped worker and waits until it has; `starts` is the count
    /// of starts from before it was stopped, `again` a suffix for the errors.
    async fn start_worker(&mut self, starts: u32, again: &str) -> Outcome {
        match self.act(InstanceAction::Start).await {
            Ok(()) => {}
            // Restarted on its own already (a kill at 100% is restarted, and
            // the restart begins the next task): that start is the one.
            Err(ActionError::AlreadyRunning { .. }) if self.alive() => return Ok(()),
            Err(ActionError::AlreadyRunning { .. }) => {}
            Err(e) => return Err(format!("cannot start the worker{again}: {e}")),
        }
        if !self
            .wait_until(self.config.patience, |r| r.starts() > starts)
            .await?
        {
            return Err(format!("the worker did not start{again}"));
        }
        Ok(())
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
                cluster: Default::default(),
                max_upload: crate::controller::MAX_UPLOAD_BYTES,
            })
            .await;
            match started {
                Ok(c) => {
                    self.driver.session_mut().restore_controller(c);
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
        g.at_pct = self.view().progress;
        let before = self.tracker().last_checkpoint();
        let violations = self.violations.len();
        self.note(format!(
            "SIGINT {} at {}% (graceful stop, invariant 4)",
            self.instance,
            g.at_pct.unwrap_or(0)
        ));
        let starts = self.starts();
        if let Err(e) = self.act(InstanceAction::Signal(Signal::SIGINT)).await {
            return Err(format!("cannot send SIGINT: {e}"));
        }
        let limit = self.config.patience.max(Duration::from_secs(15));
        if !self.wait_until(limit, |r| r.exited().is_some()).await? {
            self.judge_sigint_ignored(limit);
            self.graceful = Some(g);
            return Err("the worker ignored SIGINT".into());
        }
        self.settle(SETTLE).await?;
        let (stopped_at, exit) = self.exited().unwrap_or((now_ms(), ProcessExit::Clean));
        g.exit = Some(exit.to_string());
        g.stopped_at_ms = Some(stopped_at);
        g.flag_after_stop = Some(self.view().crash_flag);
        g.counter_after_stop = self.tracker().last_checkpoint();
        self.judge_graceful_stop(before, stopped_at, &exit);
        let kept = self.tracker().last_checkpoint();
        self.note(format!(
            "starting {} again after the graceful stop",
            self.instance
        ));
        self.start_worker(starts, " again").await?;
        self.judge_start_after_stop(&mut g);
        self.wait_for_checkpoint().await?;
        self.judge_continue_after_stop(&mut g, kept);
        self.judge_pattern("after the graceful stop");
        g.violated = self.violations.len() > violations;
        self.graceful = Some(g);
        Ok(())
    }

    /// Stops everything and judges the invariants.
    pub(super) async fn finish(mut self, outcome: Outcome) -> Report {
        if let Err(why) = &outcome {
            self.note(format!("run ended early: {why}"));
        }
        self.judge_end_of_run();
        let worker = self.session().worker_command().to_string();
        let controller = self.session().controller_url().to_string();
        let early = outcome.err();
        // Judged before the shutdown, which takes the session away; the
        // verdicts read only what was recorded above.
        let invariants = self.verdicts(&early);
        let transient_torn_states = self.tracker().torn_seen();
        let pattern = self.tracker().pattern();
        let recoveries = self
            .tracker()
            .pattern_recoveries()
            .iter()
            .map(|(at, news)| {
                format!(
                    "{}  {}",
                    self.zone.hms_millis(*at),
                    crate::text::timeline::pattern_news(news, Lang::En)
                )
            })
            .collect();
        let keys = self.config.keys.custom();
        let feed_resolution = self.tracker().feed_via().map(resolution);
        let basis =
            super::report::BasisReport::of(self.tracker().basis(), self.tracker().writes_named());
        let (session, _) = self.driver.into_parts();
        let _ = session.shutdown(WorkerExit::StopGracefully).await;
        let ok = early.is_none() && invariants.iter().all(|i| i.status != "violated");
        Report {
            ok,
            exit_code: if ok { 0 } else { 1 },
            started_ms: self.started_ms,
            finished_ms: now_ms(),
            ended_early: early,
            worker,
            controller,
            embedded_controller: self.config.controller.is_none(),
            app: self.config.app.clone(),
            pattern,
            keys,
            recoveries,
            pattern_samples: self.pattern_samples,
            step_ms: self.config.step.map(clock::millis),
            seed: match self.config.schedule {
                KillSchedule::Random { seed } => Some(seed),
                _ => None,
            },
            kill_points: self.kill_points.clone(),
            cycles: self.cycles,
            outage: self.outage_cycle,
            outage_window: self.outage_window,
            outage_ms: (self.config.controller.is_none())
                .then_some(clock::millis(self.config.outage)),
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
            transient_torn_states,
            warnings: self.warnings,
            progress: self.progress,
            resolution: feed_resolution,
            basis,
            history: self.history,
        }
    }
}

/// Why the worker does not count as at its kill point yet ([`Runner::short_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShortOf {
    NotRunning,
    Progress(Option<i64>),
    NoOwnWrite,
    TxLogWindow,
}

impl std::fmt::Display for ShortOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShortOf::NotRunning => f.write_str("it is not running"),
            ShortOf::Progress(Some(p)) => write!(f, "its progress is {p}%"),
            ShortOf::Progress(None) => f.write_str("no progress was seen"),
            ShortOf::NoOwnWrite => {
                f.write_str("no write of its progress by this run was seen (only an earlier run's)")
            }
            ShortOf::TxLogWindow => f.write_str(
                "its transaction log never showed an operation applied and not yet logged",
            ),
        }
    }
}
