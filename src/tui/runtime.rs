//! The one task that owns the terminal: it selects over key/mouse input,
//! session facts, a slow clock tick and termination signals, feeds them to
//! `App`, runs the resulting commands against the supervisor, and redraws
//! when something changed (at most ~30 frames a second, never in a loop).
//!
//! `run_main_loop` is generic over ratatui's `Backend` and takes its input as a
//! stream, so tests drive the real `App` and session on a `TestBackend`.

use super::action::{Command, Outcome, SignalChoice};
use super::app::{App, HeaderInfo, InstanceRow, LogLine, LOG_LINES};
use super::autokill::AutoKill;
use super::format::ClockStyle;
use super::keymap::Keymap;
use super::theme::Theme;
use super::view;
use crate::clock::now_ms;
use crate::recovery::{InstanceStatus, Tracker};
use crate::session::{Session, SessionHandle, WorkerExit};
use crate::signals::Termination;
use crate::supervisor::{
    Action as SupAction, InstanceSnapshot, Origin, ProcessSampler, ProcessStats,
};
use anyhow::{Context, Result};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event, EventStream};
use futures_util::{Stream, StreamExt};
use nix::sys::signal::Signal;
use ratatui::backend::Backend;
use ratatui::Terminal;
use std::collections::HashMap;
use std::future::Future;
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
    /// `--lang` (or the locale's).
    pub lang: crate::text::Lang,
    /// `--layout`: the screen to start with.
    pub layout: super::view::ScreenLayout,
}

pub async fn run(session: Session, options: TuiOptions) -> Result<()> {
    // ratatui::init's panic hook restores raw mode and the screen; release the
    // mouse too, before it runs.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
        previous(info);
    }));
    let mut signals = Termination::install()?;
    let mut terminal = ratatui::init();
    if options.mouse {
        let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    }
    let stop = async move {
        signals.recv().await;
    };
    let result = run_main_loop(&mut terminal, session, &options, EventStream::new(), stop).await;
    if options.mouse {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    }
    ratatui::restore();
    for line in result? {
        println!("plumdash: {line}");
    }
    Ok(())
}

/// The dashboard's App for this session, before the first frame.
fn new_app(session: &Session, options: &TuiOptions) -> App {
    let header = HeaderInfo {
        controller_url: session.controller_url().to_string(),
        embedded: session.embedded_controller().is_some(),
        app: session.config().app.clone(),
        namespace: session.client().namespace().to_string(),
        read_only: options.read_only,
        // Under `--nodes` the agents run what we started: not an attach.
        attached: session.is_attached() && session.local_nodes().is_none(),
        waiting_for_namespace: session.namespace_wait().map(|names| {
            format!(
                "namespace {:?} does not exist on {} yet: waiting for its first write (it has: {})",
                session.client().namespace(),
                session.controller_url(),
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
            zone: crate::clock::Zone::Local,
        }
    };
    let mut app = App::new(
        header,
        options.keymap.clone(),
        options.theme,
        clock,
        now_ms(),
    );
    app.board = session.new_board();
    if session.is_attached() {
        // Nobody here restarts attached workers: a crash left alone is news.
        app.board.set_restart_grace(session.config().restart_grace);
    }
    app.tour = options.tour.then(super::tour::Tour::new);
    app.auto_kill = options.kill_at.clone();
    app.lang = options.lang;
    app.layout = options.layout;
    app
}

/// Runs the dashboard on `terminal` until a quit key, the end of `input` or
/// `stop` (SIGINT/SIGTERM in the binary), then ends the session; returns what
/// to tell the person about workers left behind.
pub async fn run_main_loop<B, I>(
    terminal: &mut Terminal<B>,
    mut session: Session,
    options: &TuiOptions,
    mut input: I,
    stop: impl Future<Output = ()>,
) -> Result<Vec<String>>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    I: Stream<Item = std::io::Result<Event>> + Unpin,
{
    let mut app = new_app(&session, options);
    let mut stop = std::pin::pin!(stop);
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
    let mut log_seen = LogSeen::default();
    let mut quit: Option<WorkerExit> = None;

    refresh_rows(&mut app, &session, &stats);
    while quit.is_none() {
        tokio::select! {
            maybe = input.next() => {
                let Some(event) = maybe else { break };
                let event = event.context("reading the terminal")?;
                app.now = now_ms();
                if let Some(cmd) = app.on_event(&event) {
                    quit = run_command(&mut app, &mut session, cmd, &outcome_tx).await;
                }
                next_frame.get_or_insert(last_frame + FRAME);
            }
            observed = session.next_observed() => {
                let Some(o) = observed else { break };
                app.board.apply(o.at, o.namespace.as_deref(), o.fact);
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
                app.on_outcome(outcome);
                next_frame.get_or_insert(last_frame + FRAME);
            }
            _ = tick.tick() => {
                ticks = ticks.wrapping_add(1);
                app.now = now_ms();
                if app.board.tick(app.now) {
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
                    || app.instances.iter().any(|r| r.status.restart_at.is_some_and(|t| t > app.now));
                if slow || moving {
                    rows_stale = true;
                    next_frame.get_or_insert(last_frame + FRAME);
                }
            }
            _ = &mut stop => {
                quit = Some(WorkerExit::StopGracefully);
            }
            _ = async { if let Some(at) = next_frame { tokio::time::sleep_until(at).await } }, if next_frame.is_some() => {
                app.now = now_ms();
                if rows_stale {
                    refresh_rows(&mut app, &session, &stats);
                    rows_stale = false;
                }
                if let (true, Some(status)) = (status_stale, &options.status) {
                    // Until the runtime runs on the driver (next commit).
                    let view: Vec<InstanceStatus> = session.instances().iter().map(|s| InstanceStatus::of(s, app.board.tracker_of(&s.id), app.now)).collect();
                    status.publish(&app.board, &view, app.now);
                    status_stale = false;
                }
                log_seen.refresh(&mut app, &session);
                draw(terminal, &mut app)?;
                last_frame = Instant::now();
                next_frame = None;
            }
        }
    }
    let workers = quit.unwrap_or(WorkerExit::StopGracefully);
    if workers == WorkerExit::StopGracefully && !session.supervisor().instances().is_empty() {
        app.now = now_ms();
        app.flash(
            "stopping workers gracefully (their crash flags are cleared)…",
            false,
        );
        let _ = draw(terminal, &mut app);
    }
    // Workers left behind keep talking to the embedded controller, which
    // stops with us: say how to give them one again.
    let embedded = session
        .embedded_controller()
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

/// One frame; what it put where is kept for the next mouse event.
fn draw<B>(terminal: &mut Terminal<B>, app: &mut App) -> Result<()>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
{
    let mut drawn = app.drawn;
    terminal
        .draw(|f| drawn = view::draw(f, app))
        .context("drawing")?;
    app.drawn = drawn;
    Ok(())
}

/// The supervisor action a command asks for, if it is one.
fn supervisor_action(cmd: &Command) -> Option<(&str, SupAction)> {
    match cmd {
        Command::Signal { instance, signal } if !signal.whole_tree() => {
            Some((instance, SupAction::Signal(to_nix(*signal))))
        }
        Command::Start { instance } => Some((instance, SupAction::Start)),
        Command::Stop { instance } => Some((instance, SupAction::Stop)),
        Command::Restart { instance } => Some((instance, SupAction::Restart)),
        Command::SetAutoRestart { instance, on } => {
            Some((instance, SupAction::SetAutoRestart(*on)))
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
    match cmd {
        Command::Quit { stop_workers } => {
            return Some(if stop_workers {
                WorkerExit::StopGracefully
            } else {
                WorkerExit::LeaveRunning
            })
        }
        Command::NewInstance => {
            let outcome = match session.new_instance().await {
                Ok(instance) => Outcome::Started { instance },
                Err(e) => Outcome::Failed {
                    command: cmd,
                    error: format!("{e:#}"),
                },
            };
            app.on_outcome(outcome);
            return None;
        }
        _ => {}
    }
    let handle = session.handle();
    let dm = session.client().clone();
    let tx = outcomes.clone();
    tokio::spawn(async move {
        if let Some(outcome) = perform(&handle, &dm, cmd).await {
            let _ = tx.send(outcome).await;
        }
    });
    None
}

/// What a background command did; `None` when its effect shows by itself
/// (a signal's exit, an auto-restart flag in the row).
async fn perform(
    session: &SessionHandle,
    dm: &crate::kv::DistributedMemory,
    cmd: Command,
) -> Option<Outcome> {
    let failed = |cmd: Command, error: String| {
        Some(Outcome::Failed {
            command: cmd,
            error,
        })
    };
    match &cmd {
        Command::ResetNamespace { namespace } => match reset_namespace(dm, namespace).await {
            Ok(removed) => Some(Outcome::NamespaceReset { removed }),
            Err(e) => failed(cmd, e.to_string()),
        },
        Command::Node { node, op } => match session.node_action(node, *op) {
            Ok(action) => Some(Outcome::Node {
                node: node.clone(),
                action,
            }),
            Err(e) => failed(cmd, format!("{e:#}")),
        },
        Command::Signal { instance, signal } if signal.whole_tree() => {
            match session.signal_tree(instance, to_nix(*signal)).await {
                Ok(_) => None,
                Err(e) => failed(cmd, e.to_string()),
            }
        }
        _ => {
            let (instance, action) = supervisor_action(&cmd)?;
            let instance = instance.to_string();
            match session.act(&instance, action).await {
                Ok(_) => match cmd {
                    Command::Stop { .. } => Some(Outcome::Stopped { instance }),
                    Command::Restart { .. } => Some(Outcome::Restarted { instance }),
                    _ => None,
                },
                Err(e) => failed(cmd, e.to_string()),
            }
        }
    }
}

async fn reset_namespace(
    dm: &crate::kv::DistributedMemory,
    namespace: &str,
) -> Result<usize, crate::kv::KvError> {
    let dm = dm.for_namespace(namespace)?;
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
                app.board.tracker_of(&s.id),
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
    InstanceRow {
        status: InstanceStatus::of(s, tracker, now),
        cpu_percent: stats.map(|p| p.cpu_percent),
        rss_bytes: stats.map(|p| p.rss_bytes),
        under: None,
    }
}

/// What the log pane has of which instance: only lines past `next_seq` are
/// copied in (`OutputBuffer::since`), a whole ring only when the selection changes.
#[derive(Default)]
struct LogSeen {
    instance: Option<String>,
    next_seq: u64,
}

impl LogSeen {
    fn refresh(&mut self, app: &mut App, session: &Session) {
        let Some(id) = app.selected_instance().map(|r| r.status.id.clone()) else {
            return;
        };
        let Some(buffer) = session.output(&id) else {
            return;
        };
        let total = buffer.total_lines();
        if self.instance.as_deref() != Some(id.as_str()) {
            app.set_log_lines(
                buffer
                    .recent(LOG_LINES)
                    .into_iter()
                    .map(LogLine::from)
                    .collect(),
            );
        } else if total > self.next_seq {
            app.append_log_lines(buffer.since(self.next_seq).into_iter().map(LogLine::from));
        }
        self.instance = Some(id);
        self.next_seq = total;
    }
}
