//! The one task that owns the terminal: it selects over key/mouse input,
//! the driver's steps (a session's facts applied to `App`'s board, `ctl
//! status` published: `crate::driver`), a slow clock tick and termination
//! signals, feeds them to `App`, runs the resulting commands against the
//! supervisor, and redraws when something changed (at most ~60 frames a
//! second, never in a loop). Rows are drawn from the driver's merged view.
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
use crate::driver::{Driver, HoldsBoard};
use crate::recovery::Board;
use crate::session::{Session, SessionHandle, WorkerExit};
use crate::signals::Termination;
use crate::supervisor::{InstanceAction, ProcessSampler, ProcessStats};
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
    /// `--theme auto`: ask the terminal its background before taking the screen.
    pub detect_background: bool,
    /// What the terminal can draw (ASCII borders, no emoji on a limited one).
    pub glyphs: super::terminal::Glyphs,
    pub mouse: bool,
    pub read_only: bool,
    /// Relative clock, for recordings.
    pub recording: bool,
    /// Updated as facts change it (by the driver), for `plumdash ctl status`.
    pub status: Option<crate::ctl_socket::StatusPublisher>,
    /// `plumdash tour`: show the guided tour's captions.
    pub tour: bool,
    /// `--kill-at PCT [--kill-every-cycle]`: SIGKILL when progress crosses PCT.
    pub kill_at: Option<AutoKill>,
    /// `--lang` (or the locale's).
    pub lang: crate::text::Lang,
    /// `--layout`: the screen to start with.
    pub layout: super::view::ScreenLayout,
}

/// `signals`: installed by the caller before the session started, so a
/// Ctrl-C during start-up still ends the dashboard as `q` does.
pub async fn run(
    session: Session,
    mut options: TuiOptions,
    mut signals: Termination,
) -> Result<()> {
    // Before the alternate screen: the answer is read in raw mode, once.
    if options.detect_background {
        options.theme.name = super::terminal::background_theme();
    }
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
    let stop = async move {
        signals.recv().await;
    };
    let result = run_main_loop(&mut terminal, session, &options, EventStream::new(), stop).await;
    if options.mouse {
        let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    }
    // A terminal that is gone (its window closed: SIGHUP) cannot be
    // restored, nor its cursor shown: nothing to say about it on stderr.
    let gone = ratatui::try_restore().is_err();
    if gone {
        std::mem::forget(terminal);
    } else {
        drop(terminal);
    }
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
        archived: session.archived().map(|a| a.archives.join(", ")),
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
    app.glyphs = options.glyphs;
    app
}

/// Runs the dashboard on `terminal` until a quit key, the end of `input` or
/// `stop` (SIGINT/SIGTERM in the binary), then ends the session; returns what
/// to tell the person about workers left behind.
pub async fn run_main_loop<B, I>(
    terminal: &mut Terminal<B>,
    session: Session,
    options: &TuiOptions,
    mut input: I,
    stop: impl Future<Output = ()>,
) -> Result<Vec<String>>
where
    B: Backend,
    B::Error: Send + Sync + 'static,
    I: Stream<Item = std::io::Result<Event>> + Unpin,
{
    let app = new_app(&session, options);
    let mut driver = Driver::with_model(session, app).publish_to(options.status.clone());
    let mut stop = std::pin::pin!(stop);
    let (outcome_tx, mut outcomes) = mpsc::channel::<Outcome>(64);
    let mut sampler = ProcessSampler::new();
    let mut stats: HashMap<u32, ProcessStats> = HashMap::new();
    let mut ticks: u32 = 0;
    let mut rows_stale = true;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next_frame: Option<Instant> = Some(Instant::now());
    let mut last_frame = Instant::now() - FRAME;
    let mut log_seen = LogSeen::default();
    let mut quit: Option<WorkerExit> = None;

    refresh_rows(&mut driver, &stats);
    while quit.is_none() {
        tokio::select! {
            maybe = input.next() => {
                let Some(event) = maybe else { break };
                let event = event.context("reading the terminal")?;
                let app = driver.model_mut();
                app.now = now_ms();
                if let Some(cmd) = app.on_event(&event) {
                    quit = run_command(&mut driver, cmd, &outcome_tx).await;
                }
                next_frame.get_or_insert(last_frame + FRAME);
            }
            step = driver.next() => {
                if step.is_none() { break }
                // Rows are rebuilt once per frame, not per fact.
                rows_stale = true;
                if let Some(cmd) = driver.model_mut().after_facts() {
                    quit = run_command(&mut driver, cmd, &outcome_tx).await;
                }
                next_frame.get_or_insert(last_frame + FRAME);
            }
            Some(outcome) = outcomes.recv() => {
                let app = driver.model_mut();
                app.now = now_ms();
                app.on_outcome(outcome);
                next_frame.get_or_insert(last_frame + FRAME);
            }
            _ = tick.tick() => {
                ticks = ticks.wrapping_add(1);
                let now = now_ms();
                driver.model_mut().now = now;
                if driver.tick(now).is_some() {
                    rows_stale = true;
                    next_frame.get_or_insert(last_frame + FRAME);
                }
                let slow = ticks.is_multiple_of(SLOW_TICKS);
                if slow {
                    // Clocks age and the supervisor's side may change without a
                    // fact (an automatic restart switched): the view, once a second.
                    driver.refresh();
                    let pids: Vec<u32> = driver.instances().iter().filter_map(|s| s.pid).collect();
                    stats = sampler.sample(&pids).into_iter().map(|p| (p.pid, p)).collect();
                }
                // Idle, the screen changes once a second (clocks); faster only
                // while a countdown or a flash is showing.
                let app = driver.model();
                let moving = app.active_flash().is_some()
                    || app.instances.iter().any(|r| r.status.restart_at.is_some_and(|t| t > app.now));
                // A countdown is drawn from its due time: only stats need new rows.
                rows_stale |= slow;
                if slow || moving {
                    next_frame.get_or_insert(last_frame + FRAME);
                }
            }
            _ = &mut stop => {
                quit = Some(WorkerExit::StopGracefully);
            }
            _ = async { if let Some(at) = next_frame { tokio::time::sleep_until(at).await } }, if next_frame.is_some() => {
                driver.model_mut().now = now_ms();
                if rows_stale {
                    refresh_rows(&mut driver, &stats);
                    rows_stale = false;
                }
                log_seen.refresh(&mut driver);
                draw(terminal, driver.model_mut())?;
                last_frame = Instant::now();
                next_frame = None;
            }
        }
    }
    let (session, mut app) = driver.into_parts();
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

/// The dashboard's model holds the board its driver feeds (the panes read it there).
impl HoldsBoard for App {
    fn board(&self) -> &Board {
        &self.board
    }

    fn board_mut(&mut self) -> &mut Board {
        &mut self.board
    }
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
fn supervisor_action(cmd: &Command) -> Option<(&str, InstanceAction)> {
    match cmd {
        Command::Signal { instance, signal } if !signal.whole_tree() => {
            Some((instance, InstanceAction::Signal(to_nix(*signal))))
        }
        Command::Start { instance } => Some((instance, InstanceAction::Start)),
        Command::Stop { instance } => Some((instance, InstanceAction::Stop)),
        Command::Restart { instance } => Some((instance, InstanceAction::Restart)),
        Command::SetAutoRestart { instance, on } => {
            Some((instance, InstanceAction::SetAutoRestart(*on)))
        }
        _ => None,
    }
}

/// Performs a command. Slow ones (stop waits out a grace period) run in the
/// background and report back, so drawing never waits on them.
async fn run_command(
    driver: &mut Driver<App>,
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
            let outcome = match driver.session_mut().new_instance_beside().await {
                Ok(crate::session::NewInstance::Started(instance)) => Outcome::Started { instance },
                Ok(crate::session::NewInstance::Added { instance, beside }) => {
                    Outcome::Added { instance, beside }
                }
                Err(e) => Outcome::Failed {
                    command: cmd,
                    error: format!("{e:#}"),
                },
            };
            driver.model_mut().on_outcome(outcome);
            return None;
        }
        _ => {}
    }
    let handle = driver.session().handle();
    let dm = driver.session().client().clone();
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
        Command::Node { node, op } => match session.node_action_anywhere(node, *op).await {
            // A node elsewhere: its agent's words.
            Ok((_, Some(said))) => Some(Outcome::Signalled {
                instance: node.clone(),
                done: said,
            }),
            Ok((action, None)) => Some(Outcome::Node {
                node: node.clone(),
                action,
            }),
            Err(e) => failed(cmd, format!("{e:#}")),
        },
        // On another machine: through its agent, which says what it did.
        Command::Signal { instance, signal } if session.remote_node(instance).is_some() => {
            match session
                .signal_remote(instance, to_nix(*signal), signal.whole_tree())
                .await
            {
                Ok(done) => Some(Outcome::Signalled {
                    instance: instance.clone(),
                    done,
                }),
                Err(e) => failed(cmd, format!("{e:#}")),
            }
        }
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

/// Rebuilds the instance rows from the driver's view of the instances and the
/// last process stats.
fn refresh_rows(driver: &mut Driver<App>, stats: &HashMap<u32, ProcessStats>) {
    let statuses = driver.instances().to_vec();
    let rows = statuses
        .into_iter()
        .map(|status| {
            let stats = status.pid.and_then(|pid| stats.get(&pid));
            let under = if status.attached {
                driver
                    .session()
                    .attached_process(&status.id)
                    .and_then(|p| p.wrapper_chain())
            } else {
                None
            };
            InstanceRow {
                cpu_percent: stats.map(|p| p.cpu_percent),
                rss_bytes: stats.map(|p| p.rss_bytes),
                under,
                status,
            }
        })
        .collect();
    driver.model_mut().set_instances(rows);
}

/// What the log pane has of which instance: only lines past `next_seq` are
/// copied in (`OutputBuffer::since`), a whole ring only when the selection changes.
#[derive(Default)]
struct LogSeen {
    instance: Option<String>,
    next_seq: u64,
}

impl LogSeen {
    fn refresh(&mut self, driver: &mut Driver<App>) {
        let Some(id) = driver
            .model()
            .selected_instance()
            .map(|r| r.status.id.clone())
        else {
            return;
        };
        let Some(buffer) = driver.session().output(&id) else {
            return;
        };
        let app = driver.model_mut();
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
