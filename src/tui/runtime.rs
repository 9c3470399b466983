//! The one task that owns the terminal: it selects over key/mouse input,
//! session facts, a slow clock tick and termination signals, feeds them to
//! `App`, runs the resulting commands against the supervisor, and redraws
//! when something changed (at most ~30 frames a second, never in a loop).

use super::action::{Command, SignalChoice};
use super::app::{App, HeaderInfo, InstanceRow};
use super::autokill::AutoKill;
use super::format::ClockStyle;
use super::keymap::Keymap;
use super::theme::Theme;
use super::view;
use crate::recovery::Tracker;
use crate::session::{now_ms, Session, WorkerExit};
use crate::signals::Termination;
use crate::supervisor::{
    Action as SupAction, InstanceSnapshot, Origin, ProcessSampler, ProcessStats,
};
use anyhow::{Context, Result};
use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind, MouseButton,
    MouseEventKind,
};
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Shortest time between two frames. Facts arriving faster are drawn together; 16 ms
/// keeps a kill → `RESUMED` cycle (new pid, then the flag write ~10 ms later) within
/// two frames (`cargo bench --bench screen`).
const FRAME: Duration = Duration::from_millis(16);
/// Countdowns and flashes refresh this often while showing.
const TICK: Duration = Duration::from_millis(250);
/// Clocks and process stats (CPU, RSS) refresh this often.
const SLOW_TICKS: u32 = 4;
/// Output lines shown per instance.
const LOG_LINES: usize = 5_000;

#[derive(Debug, Clone)]
pub struct TuiOptions {
    pub keymap: Keymap,
    pub theme: Theme,
    pub mouse: bool,
    pub read_only: bool,
    /// Relative clock, for recordings.
    pub recording: bool,
    /// Updated after every fact, for `plumdash ctl status`.
    pub status: Option<crate::control::StatusPublisher>,
    /// `plumdash tour`: show the guided tour's captions.
    pub tour: bool,
    /// `--kill-at PCT [--kill-every-cycle]`: SIGKILL when progress crosses PCT.
    pub kill_at: Option<AutoKill>,
}

/// What an action command reported back (shown as a flash).
struct Outcome {
    text: String,
    error: bool,
}

pub async fn run(session: Session, options: TuiOptions) -> Result<()> {
    // ratatui::init's panic hook restores raw mode and the screen; release the
    // mouse too, before it runs.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
        previous(info);
    }));
    let mut terminal = ratatui::init();
    if options.mouse {
        let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    }
    let result = event_loop(&mut terminal, session, &options).await;
    if options.mouse {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    match result {
        Ok(left) => {
            for line in left {
                println!("plumdash: {line}");
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    mut session: Session,
    options: &TuiOptions,
) -> Result<Vec<String>> {
    let header = HeaderInfo {
        controller_url: session.controller_url.clone(),
        embedded: session.controller.is_some(),
        app: session.config().app.clone(),
        namespace: session.dm.namespace().to_string(),
        read_only: options.read_only,
        attached: session.is_attached(),
        waiting_for_namespace: session.namespace_wait().map(|names| {
            format!(
                "namespace {:?} does not exist on {} yet: waiting for its first write (it has: {})",
                session.dm.namespace(),
                session.controller_url,
                if names.is_empty() {
                    "no namespaces".to_string()
                } else {
                    names.join(", ")
                }
            )
        }),
    };
    let clock = if options.recording {
        ClockStyle::Relative
    } else {
        ClockStyle::Wall {
            utc_offset_secs: crate::clock::local_offset_secs(),
        }
    };
    let mut app = App::new(
        header,
        options.keymap.clone(),
        options.theme,
        clock,
        now_ms(),
    );
    if session.is_attached() {
        // Nobody here restarts attached workers: a crash left alone is news.
        app.tracker
            .set_restart_grace(session.config().restart_grace);
    }
    app.tour = options.tour.then(super::tour::Tour::new);
    app.auto_kill = options.kill_at.clone();
    let mut input = EventStream::new();
    let mut signals = Termination::install()?;
    let (outcome_tx, mut outcomes) = mpsc::channel::<Outcome>(64);
    let mut sampler = ProcessSampler::new();
    let mut stats: HashMap<u32, ProcessStats> = HashMap::new();
    let mut ticks: u32 = 0;
    let mut rows_stale = true;
    let mut status_stale = false;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next_frame: Option<Instant> = Some(Instant::now());
    let mut last_frame = Instant::now() - FRAME;
    let mut log_seen: (String, u64) = (String::new(), u64::MAX);
    let mut quit: Option<WorkerExit> = None;

    refresh_rows(&mut app, &session, &stats);
    while quit.is_none() {
        tokio::select! {
            maybe = input.next() => {
                let Some(event) = maybe else { break };
                let event = event.context("reading the terminal")?;
                if let Some(cmd) = on_terminal_event(&mut app, event) {
                    quit = run_command(&mut app, &mut session, cmd, &outcome_tx).await;
                }
                next_frame.get_or_insert(last_frame + FRAME);
            }
            fact = session.next_fact() => {
                let Some((at, fact)) = fact else { break };
                app.tracker.apply(at, fact);
                // Rows and the ctl status are rebuilt once per frame, not per fact.
                rows_stale = true;
                status_stale = true;
                if let Some(cmd) = app.after_facts() {
                    quit = run_command(&mut app, &mut session, cmd, &outcome_tx).await;
                }
                next_frame.get_or_insert(last_frame + FRAME);
            }
            Some(outcome) = outcomes.recv() => {
                app.now = now_ms();
                app.flash(outcome.text, outcome.error);
                next_frame.get_or_insert(last_frame + FRAME);
            }
            _ = tick.tick() => {
                ticks = ticks.wrapping_add(1);
                app.now = now_ms();
                if app.tracker.tick(app.now) {
                    rows_stale = true;
                    next_frame.get_or_insert(last_frame + FRAME);
                }
                let slow = ticks.is_multiple_of(SLOW_TICKS);
                if slow {
                    let pids: Vec<u32> = session.instances().iter().filter_map(|s| s.pid).collect();
                    stats = sampler.sample(&pids).into_iter().map(|p| (p.pid, p)).collect();
                }
                // Idle, the screen changes once a second (clocks); faster only
                // while a countdown or a flash is showing.
                let moving = app.active_flash().is_some()
                    || app.instances.iter().any(|r| r.restart_at.is_some_and(|t| t > app.now));
                if slow || moving {
                    rows_stale = true;
                    next_frame.get_or_insert(last_frame + FRAME);
                }
            }
            _ = signals.recv() => {
                quit = Some(WorkerExit::StopGracefully);
            }
            _ = async { if let Some(at) = next_frame { tokio::time::sleep_until(at).await } }, if next_frame.is_some() => {
                app.now = now_ms();
                if rows_stale {
                    refresh_rows(&mut app, &session, &stats);
                    rows_stale = false;
                }
                if let (true, Some(status)) = (status_stale, &options.status) {
                    status.publish(&app.tracker);
                    status_stale = false;
                }
                refresh_log(&mut app, &session, &mut log_seen);
                terminal.draw(|f| view::draw(f, &app)).context("drawing")?;
                last_frame = Instant::now();
                next_frame = None;
            }
        }
    }
    let workers = quit.unwrap_or(WorkerExit::StopGracefully);
    if workers == WorkerExit::StopGracefully && !session.supervisor.instances().is_empty() {
        app.now = now_ms();
        app.flash(
            "stopping workers gracefully (their crash flags are cleared)…",
            false,
        );
        let _ = terminal.draw(|f| view::draw(f, &app));
    }
    // Workers left behind keep talking to the embedded controller, which
    // stops with us: say how to give them one again.
    let embedded = session
        .controller
        .as_ref()
        .map(|c| (c.url(), c.db.display().to_string()));
    let left = session.shutdown(workers).await?;
    let mut lines: Vec<String> = left.iter().map(|w| format!("left running: {w}")).collect();
    if let (false, Some((url, db))) = (left.is_empty(), embedded) {
        let addr = url.trim_start_matches("http://");
        lines.push(format!(
            "they wait for their controller at {url}: `plumdash controller --listen {addr} --db {db}` \
             brings it back, `plumdash attach --controller {url}` watches them"
        ));
    }
    Ok(lines)
}

fn on_terminal_event(app: &mut App, event: Event) -> Option<Command> {
    app.now = now_ms();
    match event {
        Event::Key(key) if key.kind == KeyEventKind::Press => app.on_key(&key),
        Event::Mouse(mouse) => {
            match mouse.kind {
                MouseEventKind::Down(MouseButton::Left) => {
                    // Instance rows start below the header, the tour captions, the table's top border and its header row.
                    let width = crossterm::terminal::size().map_or(80, |(w, _)| w);
                    let first_row = super::panes::header::height(app)
                        + super::panes::tour::height(app, width)
                        + 2;
                    if mouse.row >= first_row {
                        app.click_instance((mouse.row - first_row) as usize);
                    }
                }
                MouseEventKind::ScrollUp => {
                    app.update(super::action::Action::ScrollUp);
                }
                MouseEventKind::ScrollDown => {
                    app.update(super::action::Action::ScrollDown);
                }
                _ => {}
            }
            None
        }
        _ => None,
    }
}

/// Performs a command. Slow ones (stop waits out a grace period) run in the
/// background and report back, so drawing never waits on them.
async fn run_command(
    app: &mut App,
    session: &mut Session,
    cmd: Command,
    outcomes: &mpsc::Sender<Outcome>,
) -> Option<WorkerExit> {
    let (instance, action, what) = match cmd {
        Command::Quit { stop_workers } => {
            return Some(if stop_workers {
                WorkerExit::StopGracefully
            } else {
                WorkerExit::LeaveRunning
            })
        }
        Command::NewInstance => {
            match session.new_instance().await {
                Ok(id) => app.flash(format!("started {id}"), false),
                Err(e) => app.flash(format!("cannot start a new instance: {e:#}"), true),
            }
            return None;
        }
        Command::ResetNamespace => {
            let dm = session.dm.clone();
            let tx = outcomes.clone();
            tokio::spawn(async move {
                let outcome = match reset_namespace(&dm).await {
                    Ok(n) => Outcome {
                        text: format!("namespace reset: {n} keys removed"),
                        error: false,
                    },
                    Err(e) => Outcome {
                        text: format!("reset failed: {e}"),
                        error: true,
                    },
                };
                let _ = tx.send(outcome).await;
            });
            return None;
        }
        Command::Signal { instance, signal } if signal.whole_tree() => {
            let tx = outcomes.clone();
            let session = session.handle();
            tokio::spawn(async move {
                if let Err(e) = session.signal_tree(&instance, to_nix(signal)).await {
                    let text = format!("{} to the tree failed: {e}", signal.name());
                    let _ = tx.send(Outcome { text, error: true }).await;
                }
            });
            return None;
        }
        Command::Signal { instance, signal } => (
            instance,
            SupAction::Signal(to_nix(signal)),
            signal.name().to_string(),
        ),
        Command::Start { instance } => (instance, SupAction::Start, "start".into()),
        Command::Stop { instance } => (instance, SupAction::Stop, "stop".into()),
        Command::Restart { instance } => (instance, SupAction::Restart, "restart".into()),
        Command::SetAutoRestart { instance, on } => (
            instance,
            SupAction::SetAutoRestart(on),
            "auto-restart".into(),
        ),
    };
    let tx = outcomes.clone();
    let session = session.handle();
    tokio::spawn(async move {
        let outcome = match session.act(&instance, action).await {
            Ok(_) if what == "stop" => Some(Outcome {
                text: format!("{instance} stopped"),
                error: false,
            }),
            Ok(_) if what == "restart" => Some(Outcome {
                text: format!("{instance} restarted"),
                error: false,
            }),
            Ok(_) => None,
            Err(e) => Some(Outcome {
                text: format!("{what} failed: {e}"),
                error: true,
            }),
        };
        if let Some(o) = outcome {
            let _ = tx.send(o).await;
        }
    });
    None
}

async fn reset_namespace(dm: &crate::kv::DistributedMemory) -> Result<usize, crate::kv::KvError> {
    let keys: Vec<String> = dm.get_all().await?.into_iter().map(|e| e.key).collect();
    for key in &keys {
        dm.remove(key).await?;
    }
    Ok(keys.len())
}

fn to_nix(signal: SignalChoice) -> Signal {
    match signal {
        SignalChoice::Kill | SignalChoice::TreeKill => Signal::SIGKILL,
        SignalChoice::Term | SignalChoice::TreeTerm => Signal::SIGTERM,
        SignalChoice::Int => Signal::SIGINT,
        SignalChoice::Hup => Signal::SIGHUP,
        SignalChoice::Stop => Signal::SIGSTOP,
        SignalChoice::Cont => Signal::SIGCONT,
    }
}

/// Rebuilds the instance rows from the supervisor, the tracker and the last
/// process stats.
fn refresh_rows(app: &mut App, session: &Session, stats: &HashMap<u32, ProcessStats>) {
    let rows = session
        .instances()
        .iter()
        .map(|s| {
            let mut r = row(
                s,
                &app.tracker,
                s.pid.and_then(|pid| stats.get(&pid)),
                app.now,
            );
            if s.origin == Origin::Attached {
                r.under = session
                    .attached_process(&s.id)
                    .and_then(|p| p.wrapper_chain());
            }
            r
        })
        .collect();
    app.set_instances(rows);
}

fn row(
    s: &InstanceSnapshot,
    tracker: &Tracker,
    stats: Option<&ProcessStats>,
    now: crate::recovery::TsMs,
) -> InstanceRow {
    use crate::supervisor::Phase as SupPhase;
    let view = tracker.instance(&s.id);
    let mut state = match (&s.phase, view) {
        (SupPhase::Failed { .. }, _) => "FAILED".to_string(),
        // Frozen: whatever the task's phase, the process is not running.
        _ if s.paused.is_some() && s.pid.is_some() => "STOPPED".to_string(),
        (_, Some(v)) => v.phase.to_string(),
        (SupPhase::Running, None) => "RUNNING".to_string(),
        _ => "STOPPED".to_string(),
    };
    if let Some(detail) = tracker.detail(&s.id, now).filter(|_| s.paused.is_none()) {
        state = format!("{state} · {detail}");
    }
    // Attached workers' crashes are judged from the namespace, by the tracker.
    let attached = s.origin == Origin::Attached;
    let crashes = match view {
        Some(v) if attached => v.crashes,
        _ => s.crashes,
    };
    let (restart_at, crash_loop) = match &s.phase {
        SupPhase::WaitingRestart { until, crash_loop } => {
            (Some(crate::supervisor::unix_ms(*until)), *crash_loop)
        }
        _ => (None, None),
    };
    InstanceRow {
        id: s.id.clone(),
        node: s.node.clone(),
        pid: s.pid,
        state,
        restart_at,
        crash_loop,
        started_at: s.started_at.map(crate::supervisor::unix_ms),
        crashes,
        manual_restarts: s.manual_restarts,
        last_exit: s.last_exit.as_ref().map(short_exit),
        cpu_percent: stats.map(|p| p.cpu_percent),
        rss_bytes: stats.map(|p| p.rss_bytes),
        auto_restart: s.auto_restart,
        paused: s.paused,
        under: None,
    }
}

fn short_exit(exit: &crate::supervisor::ExitKind) -> String {
    use crate::supervisor::ExitKind;
    match exit {
        ExitKind::KilledBySignal(sig) => sig.as_str().to_string(),
        ExitKind::ExitCode(c) => format!("exit {c}"),
        ExitKind::Completed => "exit 0".into(),
        ExitKind::Stopped => "stopped".into(),
        ExitKind::Disappeared => "gone".into(),
    }
}

/// Copies the selected instance's output when it changed.
fn refresh_log(app: &mut App, session: &Session, seen: &mut (String, u64)) {
    let Some(id) = app.selected_instance().map(|r| r.id.clone()) else {
        return;
    };
    let Some(buffer) = session.output(&id) else {
        return;
    };
    let total = buffer.total_lines();
    if seen.0 == id && seen.1 == total {
        return;
    }
    let lines = buffer
        .recent(LOG_LINES)
        .into_iter()
        .map(|l| l.text)
        .collect();
    if seen.0 != id {
        app.log.scroll_back = 0;
        app.log.follow = true;
    }
    app.set_log_lines(lines);
    *seen = (id, total);
}
