//! Snapshot tests of every dashboard state at 40×15, 80×24 and 120×40,
//! rendered with ratatui's TestBackend from replayed recovery facts.

use nix::sys::signal::Signal;
use plumdash::kv::{Entry, ValueType};
use plumdash::recovery::{Fact, InstanceStatus, Phase, ProcessExit};
use plumdash::supervisor::ExitKind;
use plumdash::tui::app::{App, ClockStyle, HeaderInfo, InstanceRow, LogLine, Mode};
use plumdash::tui::keymap::Keymap;
use plumdash::tui::theme::{Theme, ThemeName};
use plumdash::tui::view;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const T0: u64 = 1_800_000_000_000;
const SIZES: [(u16, u16); 3] = [(40, 15), (80, 24), (120, 40)];

fn entry(key: &str, value: &str, ty: ValueType) -> Entry {
    Entry {
        namespace: "kv-demo".into(),
        key: key.into(),
        value: value.into(),
        value_type: ty,
        updated_at: (T0 / 1000) as i64,
        updated_at_ms: None,
        writer: None,
    }
}

fn started(id: &str, pid: u32) -> Fact {
    Fact::Started {
        instance: id.into(),
        pid,
    }
}

fn checkpoint(n: i64) -> Fact {
    Fact::Written(vec![
        entry("task.progress", &(n * 10).to_string(), ValueType::Int),
        entry("task.counter", &n.to_string(), ValueType::Int),
        entry("task.checkpoint", &format!("step_{n}"), ValueType::String),
        entry("task.status", "running", ValueType::String),
    ])
}

struct Scenario {
    app: App,
    at: u64,
    pid: u32,
}

/// The dashboard of app `kv-demo` with its stream up, nothing read yet;
/// `attached`: watching a controller it did not start.
fn fresh_app(attached: bool) -> App {
    let header = HeaderInfo {
        controller_url: "http://127.0.0.1:8080".into(),
        embedded: !attached,
        app: "kv-demo".into(),
        namespace: "kv-demo".into(),
        read_only: false,
        attached,
        waiting_for_namespace: None,
        archived: None,
    };
    let theme = Theme::new(ThemeName::Dark, false);
    let mut app = App::new(header, Keymap::default(), theme, ClockStyle::Relative, T0);
    app.board.apply(
        T0,
        None,
        Fact::FeedUp {
            via: "stream".into(),
        },
    );
    app
}

impl Scenario {
    fn new() -> Scenario {
        let mut app = fresh_app(false);
        app.board.apply(T0, None, Fact::Snapshot(vec![]));
        let mut s = Scenario {
            app,
            at: T0,
            pid: 4242,
        };
        s.start();
        s.fact(Fact::Written(vec![
            entry("app.crashed", "true", ValueType::Bool),
            entry("app.crash_time", "1800000000", ValueType::String),
        ]));
        s
    }

    fn fact(&mut self, f: Fact) {
        self.at += 100;
        self.app.board.apply(self.at, None, f);
    }

    fn start(&mut self) {
        self.pid += 1;
        let pid = self.pid;
        self.fact(Fact::Started {
            instance: "kv-demo-001".into(),
            pid,
        });
        self.separator(&format!("── run · pid {pid} ──"));
        self.log("🆕 正常启动（无崩溃记录）");
    }

    fn steps(&mut self, from: i64, to: i64) {
        for n in from..=to {
            self.at += 2_000;
            self.fact(checkpoint(n));
            if n == 3 {
                self.fact(Fact::Written(vec![entry(
                    "important.data",
                    "critical_value_3",
                    ValueType::String,
                )]));
            }
            if n == 5 {
                self.fact(Fact::Written(vec![
                    entry("calculation.result", "15.707950", ValueType::Double),
                    entry("binary.checkpoint", "OTAAADIAAAA=", ValueType::Bytes),
                ]));
            }
            self.log(&format!(
                "📊 进度: {}% | 计数: {n} | 检查点: step_{n}",
                n * 10
            ));
        }
    }

    fn log(&mut self, line: &str) {
        self.app.append_log_lines([LogLine::output(line)]);
    }

    fn separator(&mut self, line: &str) {
        self.app.append_log_lines([LogLine::separator(line)]);
    }

    fn kill(&mut self) {
        self.fact(Fact::Exited {
            instance: "kv-demo-001".into(),
            exit: ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
            requested: false,
        });
    }

    /// Syncs the instance row from the tracker, as the runtime does.
    fn rows(&mut self, restart_at: Option<u64>, manual: u32, last_exit: Option<ExitKind>) {
        let inst = self.app.tracker().instance("kv-demo-001").unwrap().clone();
        self.app.now = self.at + 50;
        self.app.set_instances(vec![InstanceRow {
            status: InstanceStatus {
                id: inst.id.clone(),
                node: "nodeA".into(),
                pid: inst.pid,
                phase: inst.phase.clone(),
                detail: None,
                restart_at,
                crash_loop: None,
                started_at: inst.started_at,
                crashes: inst.crashes,
                manual_restarts: manual,
                last_exit,
                auto_restart: true,
                paused: None,
                attached: false,
                remote: false,
            },
            cpu_percent: inst.pid.map(|_| 0.3),
            rss_bytes: inst.pid.map(|_| 3 * 1024 * 1024),
            under: None,
        }]);
    }
}

fn render(app: &App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal
        .draw(|f| {
            view::draw(f, app);
        })
        .unwrap();
    terminal.backend().to_string()
}

fn snap_all(name: &str, app: &App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), render(app, w, h));
    }
}

fn running() -> Scenario {
    let mut s = Scenario::new();
    s.steps(1, 4);
    s.rows(None, 0, None);
    s
}

fn just_killed() -> Scenario {
    let mut s = Scenario::new();
    s.steps(1, 5);
    s.kill();
    s.separator("── exited: killed by SIGKILL ──");
    s.rows(None, 0, Some(ExitKind::KilledBySignal(Signal::SIGKILL)));
    s.app.flash("SIGKILL → pid 4243 (kv-demo-001)", false);
    s
}

fn restarting() -> Scenario {
    let mut s = just_killed();
    s.app.flash = None;
    s.fact(Fact::RestartScheduled {
        instance: "kv-demo-001".into(),
        delay_ms: 1000,
    });
    let due = s.at + 1000;
    s.rows(
        Some(due),
        0,
        Some(ExitKind::KilledBySignal(Signal::SIGKILL)),
    );
    s
}

fn resumed() -> Scenario {
    let mut s = restarting();
    s.at += 1000;
    s.start();
    s.log("🔄 检测到崩溃标记，正在恢复...");
    s.log("✅ 状态恢复完成，从 50% 继续执行");
    s.steps(6, 7);
    s.rows(None, 0, Some(ExitKind::KilledBySignal(Signal::SIGKILL)));
    s
}

fn completed() -> Scenario {
    let mut s = resumed();
    s.steps(8, 10);
    s.fact(Fact::Deleted {
        key: "app.crashed".into(),
        writer: None,
    });
    s.fact(Fact::Written(vec![entry(
        "task.status",
        "completed",
        ValueType::String,
    )]));
    s.log("✅ 任务完成！");
    s.fact(Fact::Exited {
        instance: "kv-demo-001".into(),
        exit: ProcessExit::Clean,
        requested: false,
    });
    s.rows(None, 0, Some(ExitKind::Completed));
    s
}

fn stopped() -> Scenario {
    let mut s = Scenario::new();
    s.steps(1, 3);
    s.log("[KV Demo] Received signal 2, shutting down gracefully...");
    s.log("[KV Demo] Cleared crash flag");
    s.fact(Fact::Deleted {
        key: "app.crashed".into(),
        writer: None,
    });
    s.fact(Fact::Written(vec![entry(
        "app.status",
        "stopped",
        ValueType::String,
    )]));
    s.fact(Fact::Exited {
        instance: "kv-demo-001".into(),
        exit: ProcessExit::Clean,
        requested: false,
    });
    s.rows(None, 0, Some(ExitKind::Completed));
    s
}

fn failed() -> Scenario {
    let mut s = Scenario::new();
    for _ in 0..3 {
        s.fact(Fact::Exited {
            instance: "kv-demo-001".into(),
            exit: ProcessExit::Code(1),
            requested: false,
        });
        s.start();
    }
    s.fact(Fact::Exited {
        instance: "kv-demo-001".into(),
        exit: ProcessExit::Code(1),
        requested: false,
    });
    s.fact(Fact::Failed {
        instance: "kv-demo-001".into(),
        reason: "crashed 3 times in a row (max-restarts 3)".into(),
    });
    s.rows(None, 0, Some(ExitKind::ExitCode(1)));
    s
}

fn controller_down() -> Scenario {
    let mut s = running();
    s.fact(Fact::FeedDown {
        error: "connection refused".into(),
    });
    s.rows(None, 0, None);
    s
}

#[test]
fn running_state() {
    snap_all("running", &running().app);
}

#[test]
fn just_killed_state() {
    snap_all("just_killed", &just_killed().app);
}

#[test]
fn restarting_state() {
    snap_all("restarting", &restarting().app);
}

/// A restart that waits because of a crash loop says so beside the countdown when the
/// column has room (120 columns, the compact view); at 80 columns only the countdown fits.
#[test]
fn crash_loop_wait_says_why() {
    let mut s = restarting();
    let row = &mut s.app.instances[0].status;
    row.crash_loop = Some(plumdash::supervisor::CrashLoopNote {
        runs: 6,
        over: std::time::Duration::from_secs(40),
    });
    row.restart_at = Some(s.app.now + 3_200);
    for (w, h) in [(120, 40), (80, 24), (56, 15)] {
        insta::assert_snapshot!(format!("crash_loop_{w}x{h}"), render(&s.app, w, h));
    }
    let wide = render(&s.app, 120, 40);
    assert!(wide.contains("↻ 3.2s (crash loop: 6 in 40s)"), "{wide}");
}

#[test]
fn resumed_state() {
    let s = resumed();
    assert_eq!(
        s.app.instances[0].status.phase.to_string(),
        "RESUMED from 50%"
    );
    snap_all("resumed", &s.app);
}

#[test]
fn completed_state() {
    let s = completed();
    assert_eq!(s.app.instances[0].status.phase, Phase::Completed);
    snap_all("completed", &s.app);
}

#[test]
fn stopped_state() {
    snap_all("stopped", &stopped().app);
}

#[test]
fn failed_state() {
    snap_all("failed", &failed().app);
}

/// A stream that is open but has not delivered the namespace yet (a
/// controller that trickles bytes, or a first read that failed): the screen
/// says it has not read it, not 0 %, no keys and no flag; the first
/// snapshot turns that into what it holds.
#[test]
fn before_the_first_read_the_namespace_is_not_read_yet() {
    let mut app = fresh_app(true);
    let screen = render(&app, 120, 40);
    assert!(
        screen.contains("not read yet: waiting for the controller"),
        "{screen}"
    );
    assert!(
        screen.contains("Namespace kv-demo (not read yet)"),
        "{screen}"
    );
    assert!(
        screen.contains("app.crashed UNKNOWN (not read)"),
        "{screen}"
    );
    for claim in ["0%", "(0 keys)", "NO FLAG"] {
        assert!(
            !screen.contains(claim),
            "{claim} before any read:\n{screen}"
        );
    }
    app.board.apply(
        T0 + 100,
        None,
        Fact::Snapshot(vec![
            entry("task.progress", "50", ValueType::Int),
            entry("task.counter", "5", ValueType::Int),
            entry("task.checkpoint", "step_5", ValueType::String),
            entry("app.crashed", "true", ValueType::Bool),
        ]),
    );
    let screen = render(&app, 120, 40);
    assert!(screen.contains("50% · step_5 · counter 5"), "{screen}");
    assert!(screen.contains("(4 keys)"), "{screen}");
    assert!(!screen.contains("not read"), "{screen}");
}

/// A checkpoint holding control characters is drawn escaped in the gauge,
/// as everywhere else (ratatui would drop them without a trace).
#[test]
fn the_gauge_escapes_a_stored_checkpoints_control_characters() {
    let mut s = Scenario::new();
    s.steps(1, 2);
    s.fact(Fact::Written(vec![entry(
        "task.checkpoint",
        "step_2\x1b[2J\u{202e}",
        ValueType::String,
    )]));
    s.rows(None, 0, None);
    let screen = render(&s.app, 120, 40);
    assert!(
        screen.contains(r"│TORN: progress 20%, counter 2, checkpoint step_2\x1b[2J\u{202e}"),
        "{screen}"
    );
}

/// A row that comes in above the selected one (a failover's new instance,
/// listed first) leaves the selection on the instance it was on: the next
/// `k` or `P` acts where the person pointed, not on the newcomer.
#[test]
fn the_selection_follows_its_instance_when_a_row_comes_in_above_it() {
    let mut s = running();
    let row = s.app.instances[0].clone();
    let mut newcomer = row.clone();
    newcomer.status.id = "kv-demo-002".into();
    newcomer.status.node = "nodeB".into();
    s.app.selected = 0;
    s.app.set_instances(vec![newcomer.clone(), row.clone()]);
    let picked = s.app.selected_instance().map(|r| r.status.id.as_str());
    assert_eq!(picked, Some("kv-demo-001"));
    // Gone: the place is kept, within the list.
    s.app.set_instances(vec![newcomer]);
    let picked = s.app.selected_instance().map(|r| r.status.id.as_str());
    assert_eq!(picked, Some("kv-demo-002"));
}

/// `a` on an instance that is down turns auto-restart on for its next end
/// and says which key starts it now (it does not start by itself).
#[test]
fn auto_restart_on_for_a_stopped_instance_names_the_start_key() {
    let mut s = just_killed();
    if let Some(row) = s.app.instances.first_mut() {
        row.status.auto_restart = false;
    }
    let command = s.app.on_event(&key('a'));
    assert!(
        matches!(
            command,
            Some(plumdash::tui::action::Command::SetAutoRestart { on: true, .. })
        ),
        "{command:?}"
    );
    let flash = s
        .app
        .active_flash()
        .map(|f| f.text.clone())
        .unwrap_or_default();
    assert!(flash.contains("not running: s starts it now"), "{flash}");
}

/// A checkpoint named by a long path is a stored value: at 120×40 the full
/// layout stays (its label cut in the pane), not the presenter layout.
#[test]
fn a_long_checkpoint_value_keeps_the_full_layout() {
    let mut s = running();
    let path = "/data/jobs/2026-12-06/run-000042/shard-17/checkpoint-step-000005.bin";
    s.fact(Fact::Written(vec![entry(
        "task.checkpoint",
        path,
        ValueType::String,
    )]));
    assert!(view::full_fits(
        ratatui::layout::Rect::new(0, 0, 120, 40),
        &s.app
    ));
}

/// A run that crashed with exit 1 is not written up as killed: the cycle
/// line says how it ended.
#[test]
fn a_cycle_says_how_its_run_ended() {
    let mut s = Scenario::new();
    s.steps(1, 5);
    s.fact(Fact::Exited {
        instance: "kv-demo-001".into(),
        exit: ProcessExit::Code(1),
        requested: false,
    });
    s.rows(None, 0, Some(ExitKind::ExitCode(1)));
    let screen = render(&s.app, 120, 40);
    assert!(screen.contains("exit 1 at 50%"), "{screen}");
    assert!(!screen.contains("killed at"), "{screen}");
}

#[test]
fn controller_down_state() {
    snap_all("controller_down", &controller_down().app);
}

#[test]
fn help_open() {
    let mut s = running();
    s.app.mode = Mode::Help { scroll: 0 };
    snap_all("help", &s.app);
}

/// Every line of the help as it reads with nothing cut: the dashboard's
/// bindings (the first is `k`, the last Ctrl-c), the dialogs and the mouse.
const HELP_LINES: [&str; 6] = [
    "k  SIGKILL the selected instance",
    "Q  quit and leave workers running",
    "Ctrl-c  quit (as q), in every mode",
    "menu  ↑ up · ↓/j down · Enter send · Esc/q close · 1-6 by number",
    "search  Enter find · Esc clear · Backspace delete · other keys type",
    "mouse: click an instance to select it, wheel scrolls the log",
];

fn key(c: char) -> crossterm::event::Event {
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

/// At 80×24 the help is taller than the screen: it opens at the top (the first
/// binding shows, and `↓ more` on its bottom border), `j` scrolls it down to the
/// last binding and the mouse line, `k` back up (neither kills), any other key
/// closes it. Long descriptions wrap under themselves instead of being cut.
#[test]
fn help_scrolls_to_its_last_binding_at_80x24() {
    let mut s = running();
    assert_eq!(s.app.on_event(&key('?')), None);
    let top = draw_as_runtime(&mut s.app, 80, 24);
    assert!(top.contains(HELP_LINES[0]), "{top}");
    assert!(
        last_row(&top).contains("↓ more · ↓/j down · ↑/k up"),
        "{top}"
    );
    assert!(!top.contains(HELP_LINES[5]), "{top}");
    let max = s.app.drawn.help_scroll_max;
    assert!(max > 0, "{top}");

    let mut seen = top.clone();
    for _ in 0..max + 3 {
        assert_eq!(s.app.on_event(&key('j')), None, "j scrolls, never kills");
        seen.push_str(&draw_as_runtime(&mut s.app, 80, 24));
    }
    assert_eq!(s.app.mode, Mode::Help { scroll: max }, "stops at the end");
    let bottom = draw_as_runtime(&mut s.app, 80, 24);
    for line in &HELP_LINES[1..] {
        assert!(bottom.contains(line), "{line:?} at the end:\n{bottom}");
    }
    // The mouse line, the last, wraps: how to close is not cut off.
    assert!(bottom.contains("any key"), "{bottom}");
    assert!(bottom.contains("closes"), "{bottom}");
    assert!(last_row(&bottom).contains("↑ more"), "{bottom}");
    // Nothing lost on the way: every description, whole, wrapped or not.
    assert!(seen.contains("(SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGSTOP,"));
    assert!(seen.contains("SIGCONT)"), "{seen}");

    assert_eq!(
        s.app.on_event(&key('k')),
        None,
        "k scrolls back, never kills"
    );
    assert_eq!(s.app.mode, Mode::Help { scroll: max - 1 });
    // The wheel scrolls the help too, not the log under it.
    let wheel = |kind| {
        crossterm::event::Event::Mouse(crossterm::event::MouseEvent {
            kind,
            column: 10,
            row: 10,
            modifiers: crossterm::event::KeyModifiers::NONE,
        })
    };
    s.app
        .on_event(&wheel(crossterm::event::MouseEventKind::ScrollUp));
    assert_eq!(s.app.mode, Mode::Help { scroll: max - 2 });
    s.app
        .on_event(&wheel(crossterm::event::MouseEventKind::ScrollDown));
    assert_eq!(s.app.mode, Mode::Help { scroll: max - 1 });
    assert!(s.app.log.follow, "the log did not move");
    draw_as_runtime(&mut s.app, 80, 24);
    assert_eq!(s.app.on_event(&key('w')), None);
    assert_eq!(s.app.mode, Mode::Normal, "any other key closes");
    assert!(!s.app.log.wrap, "and does nothing else");
}

/// Where the help fits (120×40) nothing scrolls: every line shows at once, no
/// `more`, and `j` closes it like any other key, as before.
#[test]
fn help_that_fits_shows_everything_and_any_key_closes_it() {
    let mut s = running();
    s.app.on_event(&key('?'));
    let screen = draw_as_runtime(&mut s.app, 120, 40);
    for line in HELP_LINES {
        assert!(screen.contains(line), "{line:?}:\n{screen}");
    }
    assert!(!screen.contains("more"), "{screen}");
    assert_eq!(s.app.drawn.help_scroll_max, 0);
    assert_eq!(s.app.on_event(&key('j')), None);
    assert_eq!(s.app.mode, Mode::Normal);
}

#[test]
fn signal_menu_open() {
    let mut s = running();
    s.app.mode = Mode::SignalMenu { selected: 2 };
    insta::assert_snapshot!("signal_menu_120x40", render(&s.app, 120, 40));
}

#[test]
fn any_size_down_to_1x1_draws_without_panic() {
    let apps = [running().app, completed().app, controller_down().app];
    for app in &apps {
        for w in [1, 2, 5, 20, 59, 60, 61] {
            for h in [1, 2, 3, 8, 15, 16, 17] {
                render(app, w, h);
            }
        }
    }
}

#[test]
fn tour_captions_follow_the_recovery() {
    use plumdash::tui::tour::{Step, Tour};
    // Running at 40%: the tour asks for the kill.
    let mut s = running();
    s.app.tour = Some(Tour::new());
    assert_eq!(s.app.after_facts(), None);
    assert_eq!(s.app.tour.as_ref().unwrap().step, Step::Crash);
    insta::assert_snapshot!("tour_crash_80x24", render(&s.app, 80, 24));

    // Resumed: the caption tells the whole cycle, and asks for SIGINT.
    let mut s = resumed();
    s.app.tour = Some(Tour::new());
    s.app.after_facts();
    assert_eq!(s.app.tour.as_ref().unwrap().step, Step::Exit);
    insta::assert_snapshot!("tour_resumed_120x40", render(&s.app, 120, 40));
    insta::assert_snapshot!("tour_resumed_40x15", render(&s.app, 40, 15));
}

/// The cluster API's view: nodeA and nodeB healthy at `ip`, kv-demo-001
/// desired running on nodeA.
fn two_nodes_running_kv_demo_001_on_node_a(ip: &str) -> Fact {
    use plumdash::cluster::{Assignment, ClusterView, DesiredState, HealthState, Node};
    let node = |id: &str| Node {
        node_id: id.into(),
        ip: ip.into(),
        last_seen: (T0 / 1000) as i64,
        health: Some(HealthState::Healthy),
        ..Default::default()
    };
    Fact::Cluster(ClusterView {
        nodes: vec![node("nodeA"), node("nodeB")],
        assignments: vec![Assignment {
            instance_id: "kv-demo-001".into(),
            deployment_id: "d1".into(),
            node_id: "nodeA".into(),
            desired: DesiredState::Running,
            fenced_writes: Some(0),
            ..Default::default()
        }],
    })
}

#[test]
fn kill_at_with_kill_node_kills_the_instances_node_not_its_worker() {
    use plumdash::session::NodeOp;
    use plumdash::tui::action::Command;
    use plumdash::tui::autokill::AutoKill;
    let mut s = Scenario::new();
    s.fact(two_nodes_running_kv_demo_001_on_node_a("127.0.0.1"));
    // The node key is in the footer only where there are nodes.
    assert!(render(&s.app, 120, 40).contains(" K node "));
    assert!(!render(&Scenario::new().app, 120, 40).contains(" K node "));
    s.app.auto_kill = Some(AutoKill::new(30, false).node(true));
    s.steps(1, 2);
    assert_eq!(s.app.after_facts(), None);
    s.steps(3, 3);
    assert_eq!(
        s.app.after_facts(),
        Some(Command::Node {
            node: "nodeA".into(),
            op: NodeOp::Kill
        })
    );
}

#[test]
fn p_partitions_the_selected_instances_node_and_the_nodes_pane_says_cut_off_until_healed() {
    use plumdash::recovery::NodeAction;
    use plumdash::session::NodeOp;
    use plumdash::tui::action::{Action, Command};
    let mut s = running();
    s.fact(two_nodes_running_kv_demo_001_on_node_a("10.213.0.2"));
    assert_eq!(
        s.app.update(Action::PartitionNode),
        Some(Command::Node {
            node: "nodeA".into(),
            op: NodeOp::TogglePartition
        })
    );
    let act = |s: &mut Scenario, action| {
        s.fact(Fact::NodeAction {
            node: "nodeA".into(),
            action,
        })
    };
    act(&mut s, NodeAction::Partitioned);
    let screen = render(&s.app, 120, 40);
    assert!(screen.contains("CUT OFF"), "{screen}");
    assert!(screen.contains("node nodeA PARTITIONED"), "{screen}");
    act(&mut s, NodeAction::Healed);
    let screen = render(&s.app, 120, 40);
    assert!(!screen.contains("CUT OFF"), "{screen}");
    assert!(screen.contains("node nodeA healed"), "{screen}");
}

/// Hostile keys, values, worker output and reasons: no cell of the screen
/// holds a control character; they show escaped (`\x1b`, `\x07`, `\u{9b}`).
/// A worker's colours (SGR) are drawn as styles, any other escape (a window
/// title, clearing the screen) is dropped.
#[test]
fn nothing_from_outside_reaches_the_terminal_raw() {
    use ratatui::style::Color;
    let mut s = running();
    s.fact(Fact::Written(vec![
        entry(
            "evil\x1b]0;pwned\x07",
            "v\x1b[2J\r\u{9b}31m",
            ValueType::String,
        ),
        entry("bell", "ding\x07\x08\x7f", ValueType::String),
    ]));
    s.log("\x1b[31mRED\x1b[0m plain \x1b]0;TITLE\x07 after\x07\u{9b}2J\rend");
    s.log("\x1b[2J\x1b[Hcleared?");
    s.app.flash("reason \x1b[5mblink\x1b[0m", true);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    terminal
        .draw(|f| {
            view::draw(f, &s.app);
        })
        .unwrap();
    let buffer = terminal.backend().buffer().clone();
    for cell in buffer.content() {
        assert!(
            !cell.symbol().chars().any(char::is_control),
            "a cell holds a control character: {:?}",
            cell.symbol()
        );
    }
    let screen = terminal.backend().to_string();
    for shown in [
        r"evil\x1b]0;pwned\x07",
        r"v\x1b[2J\r\u{9b}31m",
        r"ding\x07\x08\x7f",
        r"RED plain  after\x07\u{9b}2J\rend",
        "cleared?",
        r"reason \x1b[5mblink\x1b[0m",
    ] {
        assert!(screen.contains(shown), "{shown:?} not on screen:\n{screen}");
    }
    assert!(!screen.contains("TITLE"), "an OSC title passed:\n{screen}");
    assert!(!screen.contains("[31m"), "SGR shown as text:\n{screen}");

    // The worker's red is a style on the cells of "RED".
    let (x, y) = (0..buffer.area.height)
        .flat_map(|y| (0..buffer.area.width).map(move |x| (x, y)))
        .find(|&(x, y)| {
            (0..3).all(|i| buffer[(x + i, y)].symbol() == &"RED"[i as usize..=i as usize])
        })
        .expect("RED on screen");
    assert_eq!(buffer[(x, y)].fg, Color::Red);
    assert_ne!(
        buffer[(x + 4, y)].fg,
        Color::Red,
        "the colour ends at reset"
    );
}

/// Attach: the wait for a namespace that does not exist yet is on screen (header and
/// namespace pane); an attached row names its wrappers; the signal menu offers the
/// whole tree, and choosing it says which processes it goes to.
#[test]
fn attach_screens_name_the_wait_the_wrappers_and_the_tree_signals() {
    let header = HeaderInfo {
        controller_url: "http://plum-controller:8080".into(),
        embedded: false,
        app: "kv-demo".into(),
        namespace: "kv-demo".into(),
        read_only: false,
        attached: true,
        waiting_for_namespace: Some(
            "namespace \"kv-demo\" does not exist on http://plum-controller:8080 yet: \
             waiting for its first write (it has: other-app)"
                .into(),
        ),
        archived: None,
    };
    let theme = Theme::new(ThemeName::Dark, false);
    let mut app = App::new(header, Keymap::default(), theme, ClockStyle::Relative, T0);
    app.board.apply(T0, None, Fact::Snapshot(vec![]));
    let waiting = render(&app, 100, 30);
    assert!(waiting.contains("(not there yet)"), "{waiting}");
    assert!(waiting.contains("it has: other-app"), "{waiting}");

    app.board.apply(
        T0 + 100,
        None,
        Fact::Attached {
            instance: "3f2a9c1b4d5e6f708192a3b4c5d6e7f8-0a1b2c3d".into(),
            pid: 4711,
        },
    );
    app.board.apply(T0 + 200, None, checkpoint(2));
    app.now = T0 + 300;
    app.set_instances(vec![InstanceRow {
        status: InstanceStatus {
            id: "3f2a9c1b4d5e6f708192a3b4c5d6e7f8-0a1b2c3d".into(),
            node: "nodeA".into(),
            pid: Some(4711),
            phase: Phase::Running,
            detail: Some(plumdash::recovery::Detail::Attached { at_pct: Some(20) }),
            started_at: Some(T0),
            attached: true,
            ..InstanceStatus::default()
        },
        under: Some("sh→bash".into()),
        ..InstanceRow::default()
    }]);
    let attached = render(&app, 100, 30);
    assert!(!attached.contains("not there yet"), "{attached}");
    assert!(attached.contains("3f…0a1b2c3d"), "{attached}");
    assert!(attached.contains("RUNNING · attached at 20%"), "{attached}");
    assert!(attached.contains("pid 4711 under sh→bash"), "{attached}");
    assert!(
        !attached.contains("(no auto)"),
        "its agent restarts it, not us"
    );

    let key = |c| crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c));
    assert_eq!(app.on_key(&key('x')), None);
    let menu = render(&app, 100, 30);
    assert!(menu.contains("Enter/1-8"), "{menu}");
    assert!(
        menu.contains("to the whole tree (sh, bash, tee too)"),
        "{menu}"
    );
    let cmd = app.on_key(&key('8'));
    assert_eq!(
        cmd,
        Some(plumdash::tui::action::Command::Signal {
            instance: "3f2a9c1b4d5e6f708192a3b4c5d6e7f8-0a1b2c3d".into(),
            signal: plumdash::tui::action::SignalChoice::TreeKill,
        })
    );
    assert!(
        app.active_flash().is_some_and(|f| f.text
            == "SIGKILL → pid 4711 and sh→bash (3f2a9c1b4d5e6f708192a3b4c5d6e7f8-0a1b2c3d)"),
        "{:?}",
        app.flash
    );
}

/// A worker that never writes the crash flag (any `--cmd` that does not use the KV)
/// is never shown as "CLEARED (clean)": the flag was never seen.
#[test]
fn a_worker_that_never_writes_the_flag_shows_no_flag_not_cleared() {
    let mut s = Scenario::new();
    // Scenario::new has the worker write its flag; start over without it.
    let header = s.app.header.clone();
    let theme = Theme::new(ThemeName::Dark, false);
    s.app = App::new(header, Keymap::default(), theme, ClockStyle::Relative, T0);
    s.app.board.apply(T0, None, Fact::Snapshot(vec![]));
    s.start();
    s.rows(None, 0, None);
    let screen = render(&s.app, 120, 40);
    assert!(
        screen.contains("app.crashed NO FLAG (never seen)"),
        "{screen}"
    );
    assert!(!screen.contains("CLEARED"), "{screen}");
    s.fact(Fact::Exited {
        instance: "kv-demo-001".into(),
        exit: ProcessExit::Code(0),
        requested: false,
    });
    s.rows(None, 0, Some(ExitKind::Completed));
    let screen = render(&s.app, 120, 40);
    assert!(screen.contains("NO FLAG (never seen)"), "{screen}");
    // Once written and deleted, it is cleared.
    s.start();
    s.fact(Fact::Written(vec![entry(
        "app.crashed",
        "true",
        ValueType::Bool,
    )]));
    s.fact(Fact::Deleted {
        key: "app.crashed".into(),
        writer: None,
    });
    s.rows(None, 0, None);
    assert!(render(&s.app, 120, 40).contains("app.crashed CLEARED (clean)"));
}

/// A frame as the runtime draws it: the layout it reports is kept for clicks.
fn draw_as_runtime(app: &mut App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut drawn = app.drawn;
    terminal
        .draw(|f| {
            drawn = view::draw(f, app);
        })
        .unwrap();
    app.drawn = drawn;
    terminal.backend().to_string()
}

fn many_instances(n: usize) -> App {
    let mut s = running();
    let rows: Vec<InstanceRow> = (1..=n)
        .map(|i| InstanceRow {
            status: InstanceStatus {
                id: format!("kv-demo-{i:03}"),
                node: "nodeA".into(),
                pid: Some(5000 + i as u32),
                phase: Phase::Running,
                auto_restart: true,
                ..InstanceStatus::default()
            },
            ..InstanceRow::default()
        })
        .collect();
    s.app.set_instances(rows);
    s.app
}

fn click(app: &mut App, column: u16, row: u16) {
    use crossterm::event::{Event, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    app.on_event(&Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }));
}

/// The instances table scrolls: at 80×24 it shows eight of twelve, and moving
/// the selection onto the twelfth brings it into view; a click then selects the
/// instance drawn on the clicked row, not the one at that index from the top.
#[test]
fn the_instances_table_scrolls_to_the_twelfth_and_clicks_hit_what_is_drawn() {
    use plumdash::tui::action::Action;
    let mut app = many_instances(12);
    let first = draw_as_runtime(&mut app, 80, 24);
    assert!(
        first.contains("kv-demo-008") && !first.contains("kv-demo-009"),
        "{first}"
    );
    assert!(
        first.contains("Instances (1-8 of 12)"),
        "where it is:\n{first}"
    );
    for _ in 0..11 {
        app.update(Action::SelectNext);
        draw_as_runtime(&mut app, 80, 24);
    }
    assert_eq!(app.selected, 11);
    let last = draw_as_runtime(&mut app, 80, 24);
    assert!(last.contains("kv-demo-012"), "the twelfth shows:\n{last}");
    assert!(!last.contains("kv-demo-004"), "scrolled by four:\n{last}");
    assert!(
        last.contains("Instances (5-12 of 12)"),
        "where it is:\n{last}"
    );
    // The row the fifth instance is drawn on now holds the ninth.
    let row = last
        .lines()
        .position(|l| l.contains("kv-demo-009"))
        .unwrap();
    click(&mut app, 5, row as u16);
    assert_eq!(app.selected, 8, "the click selects kv-demo-009");
    // Moving up within the view does not scroll it.
    app.update(Action::SelectPrev);
    let after = draw_as_runtime(&mut app, 80, 24);
    assert!(after.contains("kv-demo-012"), "{after}");
}

/// The compact layout lists instances from its second row: a click there
/// selects the instance on that row (the old mapping assumed the full layout's
/// header and table border, and picked none or the wrong one).
#[test]
fn a_click_in_the_compact_layout_selects_the_row_clicked() {
    let mut app = many_instances(3);
    let screen = draw_as_runtime(&mut app, 50, 15);
    let row = screen
        .lines()
        .position(|l| l.starts_with("\"kv-demo-002"))
        .unwrap();
    assert_eq!(row, 2, "{screen}");
    click(&mut app, 1, row as u16);
    assert_eq!(app.selected, 1);
    click(&mut app, 1, 0);
    assert_eq!(app.selected, 1, "the title row selects nothing");
}

/// A paused log stays on the same lines while new ones arrive, also once the
/// 5,000-line ring is full and the oldest fall out.
#[test]
fn a_paused_log_does_not_drift_when_the_ring_is_full() {
    use plumdash::tui::action::Action;
    use plumdash::tui::app::LOG_LINES;
    let mut s = running();
    s.app.set_log_lines(
        (0..LOG_LINES)
            .map(|i| LogLine::output(format!("line {i}")))
            .collect(),
    );
    s.app.focus = plumdash::tui::app::Focus::Log;
    s.app.update(Action::ScrollUp);
    assert!(!s.app.log.follow);
    let before = render(&s.app, 120, 40);
    assert!(before.contains("line 4989"), "{before}");
    s.app
        .append_log_lines((0..25).map(|i| LogLine::output(format!("new {i}"))));
    assert_eq!(s.app.log.lines.len(), LOG_LINES);
    assert_eq!(render(&s.app, 120, 40), before, "the view did not move");
    s.app.update(Action::Follow);
    assert!(render(&s.app, 120, 40).contains("new 24"));
}

/// Namespace columns are sized by what they hold: at 80×24 every key shown is
/// whole, and VALUE keeps at least half the room (`critical_value_3` loses two
/// columns, not five as under fixed shares).
#[test]
fn namespace_keys_are_not_cut_while_values_have_room() {
    let s = running();
    let screen = render(&s.app, 80, 24);
    for key in [
        "app.crash_time ",
        "task.checkpoint ",
        "important.data ",
        "critical_value ",
    ] {
        assert!(screen.contains(key), "{key:?} whole:\n{screen}");
    }
}

/// Keys are data in every mode: a keys file's `kill = "ctrl-k"` shows in
/// help and in the normal and compact footers, and the dialogs' own keys,
/// rebound, show in the signal menu's title and the reset prompt and work there.
#[test]
fn rebound_keys_show_in_help_both_footers_and_the_dialogs() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use plumdash::tui::action::{Command, SignalChoice};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    std::fs::write(
        &path,
        "kill = \"ctrl-k\"\nmenu_choose = \"l\"\nconfirm_yes = \"o\"\n",
    )
    .unwrap();
    let keys = plumdash::tui::keymap::load_keys_file(&path, Keymap::default()).unwrap();
    let mut s = running();
    s.app.keymap = keys;
    let full = render(&s.app, 80, 24);
    assert!(
        last_row(&full).starts_with("\" Ctrl-k kill  x signal"),
        "{full}"
    );
    let compact = render(&s.app, 40, 15);
    assert!(
        last_row(&compact).starts_with("\"Ctrl-k kill ? help q quit"),
        "{compact}"
    );
    s.app.mode = Mode::Help { scroll: 0 };
    let help = render(&s.app, 120, 40);
    assert!(
        help.contains("Ctrl-k  SIGKILL the selected instance"),
        "{help}"
    );
    assert!(help.contains("l send"), "{help}");
    assert!(help.contains("o yes · any other key no"), "{help}");

    let press = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
    s.app.mode = Mode::Normal;
    assert_eq!(s.app.on_key(&press('k')), None, "k no longer kills");
    s.app.on_key(&press('x'));
    let menu = render(&s.app, 120, 40);
    assert!(menu.contains("· l/1-6, Esc"), "{menu}");
    s.app.on_key(&KeyEvent::from(KeyCode::Down));
    assert_eq!(
        s.app.on_key(&press('l')),
        Some(Command::Signal {
            instance: "kv-demo-001".into(),
            signal: SignalChoice::Term,
        })
    );
    s.app.on_key(&press('c'));
    s.app.flash = None;
    let prompt = render(&s.app, 80, 24);
    assert!(
        last_row(&prompt).contains("reset namespace kv-demo? o = yes"),
        "{prompt}"
    );
    assert_eq!(
        s.app.on_key(&press('o')),
        Some(Command::ResetNamespace {
            namespace: "kv-demo".into()
        })
    );
    // Ctrl-C quits from any mode, whatever the file says.
    s.app.on_key(&press('/'));
    assert_eq!(
        s.app
            .on_key(&KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Command::Quit { stop_workers: true })
    );
}

fn last_row(screen: &str) -> &str {
    screen.lines().last().unwrap_or("")
}

/// The room's screens: Chinese labels around English state words, and the
/// presenter layout, at the sizes a projector gets.
mod room {
    use super::*;
    use plumdash::text::Lang;
    use plumdash::tui::tour::Tour;
    use plumdash::tui::view::ScreenLayout;

    const ROOM_SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

    fn lang_name(lang: Lang) -> &'static str {
        match lang {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// Every row of the screen is exactly `w` columns of display width (a CJK
    /// character is two cells, so a miscounted width shows as a ragged row).
    fn assert_rows_fit(screen: &str, w: u16) {
        for row in screen.lines() {
            // TestBackend notes the cells a wide symbol covers after the row.
            let row = row.split(" Hidden by multi-width symbols").next().unwrap();
            let inner = row.trim_start_matches('"').trim_end_matches('"');
            assert_eq!(
                plumdash::text::width(inner),
                usize::from(w),
                "row {inner:?}"
            );
        }
    }

    fn resumed_in(lang: Lang) -> Scenario {
        let mut s = resumed();
        s.app.lang = lang;
        s
    }

    #[test]
    fn main_screen_and_help_in_chinese_keep_the_state_words() {
        for (w, h) in ROOM_SIZES {
            let s = resumed_in(Lang::Zh);
            let screen = render(&s.app, w, h);
            assert_rows_fit(&screen, w);
            for word in ["实例", "命名空间", "恢复时间线", "日志", "杀死", "退出"]
            {
                assert!(screen.contains(word), "{word} at {w}x{h}:\n{screen}");
            }
            // Wider heads never cut a value: the exit column still says SIGKILL.
            for kept in ["RESUMED from 50%", "app.crashed ARMED", "SIGKILL 0.3%"] {
                assert!(screen.contains(kept), "{kept} at {w}x{h}:\n{screen}");
            }
            assert!(!screen.contains("Instances"), "{screen}");
            insta::assert_snapshot!(format!("room_zh_main_{w}x{h}"), screen);

            let mut s = resumed_in(Lang::Zh);
            s.app.mode = Mode::Help { scroll: 0 };
            let screen = render(&s.app, w, h);
            assert!(screen.contains("按键（? 关闭）"), "{screen}");
            assert!(screen.contains("发送 SIGKILL"), "{screen}");
            insta::assert_snapshot!(format!("room_zh_help_{w}x{h}"), screen);
        }
    }

    #[test]
    fn tour_captions_in_both_languages() {
        for lang in [Lang::En, Lang::Zh] {
            for (w, h) in ROOM_SIZES {
                let mut s = resumed_in(lang);
                s.app.tour = Some(Tour::new());
                s.app.after_facts();
                let screen = render(&s.app, w, h);
                assert_rows_fit(&screen, w);
                let (title, caption) = match lang {
                    Lang::En => ("Tour 5/6 · Exit gracefully", "press i to send SIGINT"),
                    Lang::Zh => ("导览 5/6 · 优雅退出", "按 i 发送 SIGINT"),
                };
                assert!(screen.contains(title), "{screen}");
                assert!(screen.contains(caption), "{screen}");
                insta::assert_snapshot!(format!("room_{}_tour_{w}x{h}", lang_name(lang)), screen);
            }
        }
    }

    #[test]
    fn presenter_layout_in_both_languages_down_to_60x20() {
        for lang in [Lang::En, Lang::Zh] {
            for (w, h) in [(60, 20), (80, 24), (120, 40)] {
                let mut s = resumed_in(lang);
                s.app.layout = ScreenLayout::Presenter;
                let screen = render(&s.app, w, h);
                assert_rows_fit(&screen, w);
                // The state word, the percentage, the flag and the newest event.
                // The newest event, in the screen's language, state word kept.
                let newest = match lang {
                    Lang::En => "RESUMED from 50%, 0 steps lost",
                    Lang::Zh => "RESUMED from 50% 已恢复，丢失 0 步",
                };
                for must in [
                    "RESUMED from 50%",
                    "70% · step_7",
                    "app.crashed ARMED",
                    newest,
                ] {
                    assert!(screen.contains(must), "{must} at {w}x{h}:\n{screen}");
                }
                if lang == Lang::Zh {
                    assert!(screen.contains("已恢复"), "the gloss follows:\n{screen}");
                }
                insta::assert_snapshot!(
                    format!("room_{}_presenter_{w}x{h}", lang_name(lang)),
                    screen
                );
            }
        }
        // Just killed: the flag says SET, the state CRASHED, in both languages.
        for lang in [Lang::En, Lang::Zh] {
            let mut s = just_killed();
            s.app.flash = None;
            s.app.lang = lang;
            s.app.layout = ScreenLayout::Presenter;
            let screen = render(&s.app, 80, 24);
            assert!(screen.contains("CRASHED"), "{screen}");
            assert!(screen.contains("app.crashed SET"), "{screen}");
        }
    }

    #[test]
    fn the_layout_key_switches_and_back() {
        use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
        let mut s = resumed_in(Lang::En);
        let p = Event::Key(KeyEvent::new(KeyCode::Char('p'), KeyModifiers::NONE));
        assert!(render(&s.app, 80, 24).contains("Namespace"));
        s.app.on_event(&p);
        assert_eq!(s.app.layout, ScreenLayout::Presenter);
        let screen = render(&s.app, 80, 24);
        assert!(!screen.contains("Namespace"), "{screen}");
        assert!(screen.contains("p layout"), "{screen}");
        s.app.on_event(&p);
        assert_eq!(s.app.layout, ScreenLayout::Full);
    }
}

/// The separator between runs is dimmed because it is one (a typed line from the
/// supervisor), not because of its text: a worker printing `──` is shown as printed.
#[test]
fn only_the_supervisors_separator_is_dimmed_not_a_worker_line_that_looks_like_one() {
    use ratatui::style::Modifier;
    let mut s = running();
    s.separator("── run 2 · pid 77 ──");
    s.log("── worker banner ──");
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).unwrap();
    terminal
        .draw(|f| {
            view::draw(f, &s.app);
        })
        .unwrap();
    let buffer = terminal.backend().buffer().clone();
    let find = |text: &str| {
        let first = text.chars().nth(3).expect("text").to_string();
        (0..buffer.area.height)
            .flat_map(|y| (0..buffer.area.width).map(move |x| (x, y)))
            .find(|&(x, y)| {
                buffer[(x, y)].symbol() == first
                    && text
                        .chars()
                        .skip(3)
                        .enumerate()
                        .all(|(i, c)| buffer[(x + i as u16, y)].symbol() == c.to_string())
            })
            .unwrap_or_else(|| panic!("{text:?} not on screen"))
    };
    let dim = s.app.theme.dim();
    let is_dim = |(x, y): (u16, u16)| {
        let cell = &buffer[(x, y)];
        dim.fg.is_some_and(|fg| cell.fg == fg) || cell.modifier.contains(Modifier::DIM)
    };
    assert!(is_dim(find("── run 2 · pid 77 ──")), "the separator is dim");
    assert!(
        !is_dim(find("── worker banner ──")),
        "a worker's own line is not"
    );
}

/// `--namespace-by instance`: two instances, each its own namespace; the
/// second was killed at 50%. The TASK column shows each one's own progress
/// and flag, and the panes follow the selected instance.
#[test]
fn each_instance_its_own_namespace() {
    let mut s = Scenario::new();
    s.app.board = plumdash::recovery::Board::new("kv-demo", plumdash::kv::NamespaceBy::Instance);
    let own = |ns: &str, f: Fact| match f {
        Fact::Written(entries) => Fact::Written(
            entries
                .into_iter()
                .map(|e| Entry {
                    namespace: ns.into(),
                    ..e
                })
                .collect(),
        ),
        other => other,
    };
    let mut at = T0;
    let mut apply = |app: &mut App, ns: Option<&str>, f: Fact| {
        at += 100;
        app.board.apply(at, ns, f);
    };
    for (id, pid, steps) in [("kv-demo-001", 4301, 4), ("kv-demo-002", 4302, 5)] {
        apply(
            &mut s.app,
            Some(id),
            Fact::FeedUp {
                via: "stream".into(),
            },
        );
        apply(&mut s.app, Some(id), Fact::Snapshot(vec![]));
        apply(&mut s.app, None, started(id, pid));
        let flag = Fact::Written(vec![entry("app.crashed", "true", ValueType::Bool)]);
        apply(&mut s.app, Some(id), own(id, flag));
        for n in 1..=steps {
            apply(&mut s.app, Some(id), own(id, checkpoint(n)));
        }
    }
    apply(
        &mut s.app,
        None,
        Fact::Exited {
            instance: "kv-demo-002".into(),
            exit: ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
            requested: false,
        },
    );
    s.app.now = at + 50;
    let rows = ["kv-demo-001", "kv-demo-002"]
        .map(|id| {
            let tracker = s.app.board.tracker_of(id);
            let inst = tracker.instance(id).unwrap().clone();
            InstanceRow {
                status: InstanceStatus {
                    id: inst.id.clone(),
                    pid: inst.pid,
                    phase: inst.phase.clone(),
                    started_at: inst.started_at,
                    crashes: inst.crashes,
                    last_exit: inst
                        .last_exit
                        .as_ref()
                        .map(|_| ExitKind::KilledBySignal(Signal::SIGKILL)),
                    ..InstanceStatus::default()
                },
                ..InstanceRow::default()
            }
        })
        .to_vec();
    s.app.set_instances(rows);
    let first = render(&s.app, 120, 40);
    let row = |screen: &str, id: &str| {
        screen
            .lines()
            .find(|l| l.contains(&format!("│{id} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(first.contains("TASK"), "{first}");
    assert!(row(&first, "kv-demo-001").contains("40%⚑"), "{first}");
    assert!(row(&first, "kv-demo-002").contains("50%⚑"), "{first}");
    assert!(row(&first, "kv-demo-002").contains("CRASHED"), "{first}");
    assert!(
        first.contains("ns kv-demo-001 (one per instance)"),
        "{first}"
    );
    assert!(first.contains("ARMED"), "kv-demo-001 runs: {first}");
    // The timeline is every namespace's: kv-demo-002's cycle, named.
    assert!(first.contains("Recovery timeline (1 cycle)"), "{first}");
    assert!(first.contains("#1 kv-demo-002 killed at 50%"), "{first}");
    insta::assert_snapshot!("per_instance_first_120x40", first);
    s.app.selected = 1;
    let second = render(&s.app, 80, 24);
    assert!(second.contains("ns kv-demo-002"), "{second}");
    assert!(
        second.contains("app.crashed SET"),
        "nobody runs in it: {second}"
    );
    assert!(second.contains("50% · step_5"), "its own gauge: {second}");
    insta::assert_snapshot!("per_instance_second_80x24", second);
}

/// Each instance its own namespace and none selected (attach before any worker
/// is found): no namespace is claimed, and `c` has nothing to reset.
#[test]
fn per_instance_without_instances_names_no_namespace_and_resets_nothing() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let mut s = Scenario::new();
    s.app.board = plumdash::recovery::Board::new("kv-demo", plumdash::kv::NamespaceBy::Instance);
    s.app.set_instances(Vec::new());
    let screen = render(&s.app, 120, 40);
    assert!(screen.contains("ns — (one per instance)"), "{screen}");
    assert!(screen.contains("Namespace —"), "{screen}");
    let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
    assert_eq!(s.app.on_key(&c), None);
    assert_eq!(s.app.mode, Mode::Normal, "no prompt");
    let flash = s.app.active_flash().map(|f| f.text.clone());
    assert_eq!(flash.as_deref(), Some("no instance selected"));
}

/// `--kill-at` with each instance in its own namespace: each task is watched
/// on its own, so each instance is killed once, when its own progress crosses.
#[test]
fn kill_at_watches_each_own_namespace_on_its_own() {
    use plumdash::tui::action::{Command, SignalChoice};
    use plumdash::tui::autokill::AutoKill;
    let mut s = Scenario::new();
    s.app.board = plumdash::recovery::Board::new("kv-demo", plumdash::kv::NamespaceBy::Instance);
    s.app.auto_kill = Some(AutoKill::new(30, false));
    let mut at = T0;
    let mut apply = |app: &mut App, ns: Option<&str>, f: Fact| {
        at += 100;
        app.board.apply(at, ns, f);
        app.after_facts()
    };
    for (id, pid) in [("kv-demo-001", 4301), ("kv-demo-002", 4302)] {
        apply(&mut s.app, None, started(id, pid));
        apply(&mut s.app, Some(id), checkpoint(1));
    }
    let kill = |id: &str| {
        Some(Command::Signal {
            instance: id.into(),
            signal: SignalChoice::Kill,
        })
    };
    assert_eq!(apply(&mut s.app, Some("kv-demo-002"), checkpoint(2)), None);
    assert_eq!(
        apply(&mut s.app, Some("kv-demo-002"), checkpoint(3)),
        kill("kv-demo-002"),
        "kv-demo-002 crossed 30% first"
    );
    assert_eq!(
        apply(&mut s.app, Some("kv-demo-002"), checkpoint(4)),
        None,
        "once"
    );
    assert_eq!(apply(&mut s.app, Some("kv-demo-001"), checkpoint(2)), None);
    assert_eq!(
        apply(&mut s.app, Some("kv-demo-001"), checkpoint(3)),
        kill("kv-demo-001"),
        "kv-demo-001's own crossing"
    );
}

/// Every letter of every state, in both themes, both layouts, the dialogs and
/// the tour, reads at 4.5:1 or more (WCAG AA) against the theme's background,
/// the terminal's own colours standing in as the theme assumes them.
#[test]
fn every_letter_reads_in_both_themes_in_every_state() {
    use plumdash::tui::theme::{contrast, rgb};
    use plumdash::tui::tour::Tour;
    use ratatui::style::{Color, Modifier};
    let mut states: Vec<(&str, App)> = vec![
        ("running", running().app),
        ("just killed", just_killed().app),
        ("restarting", restarting().app),
        ("resumed", resumed().app),
        ("completed", completed().app),
        ("stopped", stopped().app),
        ("failed", failed().app),
        ("controller down", controller_down().app),
    ];
    let mut help = running().app;
    help.mode = Mode::Help { scroll: 0 };
    let mut menu = running().app;
    menu.mode = Mode::SignalMenu { selected: 2 };
    let mut tour = resumed().app;
    tour.tour = Some(Tour::new());
    tour.after_facts();
    let mut search = running().app;
    search.log.search = Some("进度".into());
    states.extend([
        ("help", help),
        ("menu", menu),
        ("tour", tour),
        ("search", search),
    ]);
    let mut failures = Vec::new();
    for (what, mut app) in states {
        for name in [ThemeName::Dark, ThemeName::Light] {
            app.theme = Theme::new(name, true);
            let (fg0, bg0) = match name {
                ThemeName::Dark => ((255, 255, 255), (0, 0, 0)),
                ThemeName::Light => ((0, 0, 0), (255, 255, 255)),
            };
            for layout in [view::ScreenLayout::Full, view::ScreenLayout::Presenter] {
                app.layout = layout;
                for (w, h) in [(120, 40), (80, 24)] {
                    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
                    terminal
                        .draw(|f| {
                            view::draw(f, &app);
                        })
                        .unwrap();
                    let buffer = terminal.backend().buffer();
                    for cell in buffer.content() {
                        let Some(c) = cell.symbol().chars().next() else {
                            continue;
                        };
                        if !c.is_alphanumeric() {
                            continue;
                        }
                        let value = |c: Color, default| match c {
                            Color::Reset => Some(default),
                            c => rgb(c),
                        };
                        let (mut fg, mut bg) = (value(cell.fg, fg0), value(cell.bg, bg0));
                        if cell.modifier.contains(Modifier::REVERSED) {
                            std::mem::swap(&mut fg, &mut bg);
                        }
                        let ok = fg.zip(bg).is_some_and(|(f, b)| contrast(f, b) >= 4.5);
                        if !ok {
                            failures.push(format!(
                                "{what} {name:?} {layout:?} {w}x{h}: {c:?} {:?} on {:?}",
                                cell.fg, cell.bg
                            ));
                        }
                    }
                }
            }
        }
    }
    failures.dedup();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The colours of one screen line holding `text`: the set of (fg, bg) of its letters.
fn colours_of(
    app: &App,
    (w, h): (u16, u16),
    text: &str,
) -> Vec<(ratatui::style::Color, ratatui::style::Color)> {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal
        .draw(|f| {
            view::draw(f, app);
        })
        .unwrap();
    let buffer = terminal.backend().buffer();
    let row = (0..h)
        .find(|y| {
            let line: String = (0..w).map(|x| buffer[(x, *y)].symbol()).collect();
            line.contains(text)
        })
        .unwrap_or_else(|| panic!("{text:?} not on screen:\n{}", render(app, w, h)));
    let line: String = (0..w).map(|x| buffer[(x, row)].symbol()).collect();
    let start = line[..line.find(text).unwrap()].chars().count() as u16;
    let mut colours: Vec<_> = (start..start + text.chars().count() as u16)
        .map(|x| &buffer[(x, row)])
        .filter(|c| c.symbol().chars().any(char::is_alphanumeric))
        .map(|c| (c.fg, c.bg))
        .collect();
    colours.dedup();
    colours
}

/// Colours mean what happened: the SIGKILL's exit line is red; a graceful
/// stop's and a completion's exits are not (the theme's "ended" colour), a
/// completion is green; `k` flashes the alarm, `i` (a graceful stop) does not.
#[test]
fn a_clean_exit_and_a_completion_are_not_red_like_a_kill() {
    let theme = Theme::new(ThemeName::Dark, true);
    let red = theme.bad().fg.unwrap();
    let ended = theme.ended().fg.unwrap();
    let size = (120, 40);
    let mut killed = just_killed().app;
    killed.theme = theme;
    let kill = colours_of(&killed, size, "killed by SIGKILL");
    assert_eq!(kill.iter().map(|c| c.0).collect::<Vec<_>>(), [red]);

    let mut stopped = stopped().app;
    stopped.theme = theme;
    let exit = colours_of(&stopped, size, "exited (exit 0)");
    assert_eq!(exit.iter().map(|c| c.0).collect::<Vec<_>>(), [ended]);

    let mut done = completed().app;
    done.theme = theme;
    let exit = colours_of(&done, size, "exited (exit 0)");
    assert_eq!(exit.iter().map(|c| c.0).collect::<Vec<_>>(), [ended]);
    let completed = colours_of(&done, size, "completed the task");
    assert_eq!(
        completed.iter().map(|c| c.0).collect::<Vec<_>>(),
        [theme.good().fg.unwrap()]
    );
    let state = colours_of(&done, size, "COMPLETED");
    assert!(state.iter().all(|c| c.0 != red && c.1 != red), "{state:?}");

    // The flash of a kill is the alarm; a graceful stop's is not.
    let alarm = theme.alarm().bg.unwrap();
    let mut s = running();
    s.app.theme = theme;
    s.app.on_event(&key('k'));
    let flash = colours_of(&s.app, size, "SIGKILL → pid");
    assert!(flash.iter().all(|c| c.1 == alarm), "{flash:?}");
    s.app.on_event(&key('i'));
    let flash = colours_of(&s.app, size, "SIGINT → pid");
    assert!(
        flash.iter().all(|c| c.1 != alarm && c.0 != red),
        "{flash:?}"
    );
}

/// From 60×16 up, whatever the size and language, the dashboard shows every
/// state word, the flag's text and the progress label whole: the full layout
/// where it can (its namespace keys whole too, the chart giving way), else the
/// presenter layout, which says why in its footer.
#[test]
fn no_size_cuts_the_state_the_flag_or_the_progress() {
    use plumdash::text::Lang;
    use plumdash::tui::panes::{flag, progress};
    let keys = [
        "app.crash_time",
        "app.crashed",
        "binary.checkpoint",
        "calculation.result",
    ];
    for (what, mut app) in [
        ("running", running().app),
        ("just killed", just_killed().app),
        ("resumed", resumed().app),
        ("completed", completed().app),
    ] {
        for lang in [Lang::En, Lang::Zh] {
            app.lang = lang;
            for w in (60..=124).step_by(4) {
                for h in (16..=40).step_by(3) {
                    let screen = render(&app, w, h);
                    let flag = flag::text(&app, flag::state(&app), lang);
                    let label = progress::label(&app);
                    let phase = app.instances[0].status.phase.to_string();
                    for whole in [&flag, &label, &phase] {
                        assert!(
                            screen.contains(whole.as_str()),
                            "{what} {lang:?} {w}x{h}: {whole:?} cut:\n{screen}"
                        );
                    }
                    let presenter = screen.contains("┏ State ") || screen.contains("┏ 状态 ");
                    let full = view::full_fits(ratatui::layout::Rect::new(0, 0, w, h), &app);
                    assert_eq!(presenter, !full, "{what} {lang:?} {w}x{h}:\n{screen}");
                    // A flash has the footer for a moment; the note comes back after it.
                    if presenter && app.active_flash().is_some() {
                        continue;
                    }
                    if presenter {
                        assert!(
                            screen.contains("small screen: presenter layout")
                                || screen.contains("屏幕较小：演示布局"),
                            "{what} {lang:?} {w}x{h}:\n{screen}"
                        );
                        continue;
                    }
                    // Every key row shown is whole: no two rows read `app.crash`.
                    for line in screen.lines().filter(|l| l.contains("│app.crash")) {
                        assert!(
                            keys.iter().any(|k| line.contains(&format!("│{k} "))),
                            "{what} {lang:?} {w}x{h}: {line}\n{screen}"
                        );
                    }
                }
            }
        }
    }
}

/// Search: the query shows in the footer while it is typed (with how many
/// lines match), Enter moves to the newest match and says `10/10`, `n` steps
/// up (older) and `N` down, wrapping; `/` starts a new query instead of
/// adding to the last one; Esc ends the search, and `n` makes a new instance
/// again only then.
#[test]
fn search_shows_its_query_counts_its_matches_and_n_steps_through_them() {
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
    use plumdash::tui::action::Command;
    let press = |code| Event::Key(KeyEvent::new(code, KeyModifiers::NONE));
    let mut s = running();
    s.steps(5, 10);
    let app = &mut s.app;
    let footer = |app: &mut App| {
        let screen = draw_as_runtime(app, 120, 40);
        last_row(&screen).to_string()
    };
    app.on_event(&key('/'));
    for c in "进度".chars() {
        app.on_event(&key(c));
    }
    let typing = footer(app);
    assert!(typing.contains("/进度▏"), "{typing}");
    assert!(typing.contains("10 matches"), "{typing}");
    app.on_event(&press(KeyCode::Enter));
    let found = footer(app);
    assert!(found.contains("/进度 10/10"), "{found}");
    assert!(
        found.contains("n next ↑") && found.contains("N prev ↓"),
        "{found}"
    );
    assert!(
        draw_as_runtime(app, 120, 40).contains("/进度 10/10"),
        "the log's title too"
    );
    assert_eq!(app.on_event(&key('n')), None, "n steps, no new instance");
    assert!(footer(app).contains("/进度 9/10"));
    app.on_event(&key('n'));
    assert!(footer(app).contains("/进度 8/10"));
    app.on_event(&key('N'));
    assert!(footer(app).contains("/进度 9/10"));
    for _ in 0..9 {
        app.on_event(&key('n'));
    }
    assert!(
        footer(app).contains("/进度 10/10"),
        "n wraps: {}",
        footer(app)
    );
    // The log shows the match as its bottom line, paused above the newest.
    app.on_event(&key('n'));
    assert!(!app.log.follow);
    let bottom = app.log.lines.len() - app.log.scroll_back - 1;
    assert_eq!(app.log.match_at, Some(bottom));

    // `/` is a new query, not the last one with more typed after it.
    app.on_event(&key('/'));
    assert!(footer(app).contains("/▏"), "{}", footer(app));
    for c in "step_3".chars() {
        app.on_event(&key(c));
    }
    app.on_event(&press(KeyCode::Enter));
    assert!(footer(app).contains("/step_3 1/1"), "{}", footer(app));
    app.on_event(&press(KeyCode::Esc));
    assert_eq!(app.log.search, None);
    assert!(!footer(app).contains("step_3"));
    assert_eq!(app.on_event(&key('n')), Some(Command::NewInstance));
}

/// No frame sends half a wide character: in Chinese, with the help or the
/// signal menu over the panes and at every layout, each wide character's
/// second cell is its own (a space), never a border drawn over it.
#[test]
fn no_frame_holds_a_wide_character_something_was_drawn_over() {
    use plumdash::text::Lang;
    for mode in [
        Mode::Normal,
        Mode::Help { scroll: 0 },
        Mode::SignalMenu { selected: 0 },
    ] {
        let mut s = resumed();
        s.app.lang = Lang::Zh;
        s.app.tour = Some(plumdash::tui::tour::Tour::new());
        s.app.after_facts();
        s.app.mode = mode.clone();
        for layout in [view::ScreenLayout::Full, view::ScreenLayout::Presenter] {
            s.app.layout = layout;
            for (w, h) in [(100, 30), (80, 24), (61, 20), (120, 40)] {
                let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
                terminal
                    .draw(|f| {
                        view::draw(f, &s.app);
                    })
                    .unwrap();
                let buf = terminal.backend().buffer();
                for y in 0..h {
                    for x in 0..w {
                        let wide = unicode_width::UnicodeWidthStr::width(buf[(x, y)].symbol()) > 1;
                        let second = (x + 1 < w).then(|| buf[(x + 1, y)].symbol());
                        assert!(
                            !wide || second == Some(" "),
                            "{mode:?} {layout:?} {w}x{h}: {:?} at ({x},{y}) over {second:?}",
                            buf[(x, y)].symbol()
                        );
                    }
                }
            }
        }
    }
}

/// Skipped events are news while they come; a minute after the last one the
/// header tells them as past (the counts run from the feed's start), and the
/// feed's ⚠ goes.
#[test]
fn skipped_events_are_told_as_past_a_minute_after_the_last() {
    let mut s = running();
    let trouble = |skipped: u64| {
        Fact::FeedTrouble(plumdash::kv::FeedTrouble {
            skipped,
            last: Some("not JSON".into()),
            ..Default::default()
        })
    };
    s.fact(trouble(3));
    let since = s.at;
    s.app.now = since + 5_000;
    let screen = render(&s.app, 120, 40);
    assert!(
        screen.contains("controller sends malformed data: 3 events skipped — not JSON"),
        "{screen}"
    );
    assert!(screen.contains("● stream ⚠"), "{screen}");
    s.app.now = since + 61_000;
    let screen = render(&s.app, 120, 40);
    assert!(
        screen.contains("controller sent malformed data (last 1m01s ago): 3 events skipped"),
        "{screen}"
    );
    assert!(!screen.contains("⚠"), "{screen}");
    // The same counts told again (a report without anything new) do not
    // make it news; one more skipped event does.
    s.fact(trouble(3));
    s.app.now = since + 62_000;
    assert!(render(&s.app, 120, 40).contains("controller sent malformed data"));
    s.fact(trouble(4));
    s.app.now = s.at + 1_000;
    let screen = render(&s.app, 120, 40);
    assert!(
        screen.contains("controller sends malformed data: 4 events skipped"),
        "{screen}"
    );
}

/// A restart while the controller was unreachable: writes before the first
/// one seen may have been refused unseen (the original SDK drops them), so
/// where it went on from is told as a bound, not as seen.
#[test]
fn a_resume_after_the_controller_was_down_is_told_as_a_bound() {
    let mut s = restarting();
    s.fact(Fact::FeedDown {
        error: "connection refused".into(),
    });
    s.at += 1000;
    s.start();
    s.fact(Fact::FeedUp {
        via: "stream".into(),
    });
    // Its first write seen: 30%, below the 50% saved at the kill.
    s.steps(3, 3);
    s.rows(None, 0, Some(ExitKind::KilledBySignal(Signal::SIGKILL)));
    let screen = render(&s.app, 120, 40);
    assert!(screen.contains("RESUMED from ≤20%"), "{screen}");
    assert!(screen.contains("≥3 steps lost"), "{screen}");
    let phase = &s.app.tracker().instance("kv-demo-001").unwrap().phase;
    assert_eq!(phase.to_string(), "RESUMED from ≤20%");
    // The same restart with the controller up all along is told as seen.
    let mut s = restarting();
    s.at += 1000;
    s.start();
    s.steps(3, 3);
    s.rows(None, 0, Some(ExitKind::KilledBySignal(Signal::SIGKILL)));
    let screen = render(&s.app, 120, 40);
    assert!(
        screen.contains("RESUMED from 20%, 3 steps lost"),
        "{screen}"
    );
    assert!(!screen.contains('≤'), "{screen}");
}

/// A worker on another node (no pid here) that its agent reports running
/// arms the flag, as a local one does: SET would say it crashed.
#[test]
fn a_running_remote_worker_arms_the_flag() {
    let mut s = running();
    let inst = s.app.tracker().instance("kv-demo-001").unwrap().clone();
    let row = |phase: Phase| InstanceRow {
        status: InstanceStatus {
            id: inst.id.clone(),
            node: "nodeB".into(),
            pid: None,
            phase,
            detail: None,
            restart_at: None,
            crash_loop: None,
            started_at: inst.started_at,
            crashes: 0,
            manual_restarts: 0,
            last_exit: None,
            auto_restart: true,
            paused: None,
            attached: true,
            remote: true,
        },
        cpu_percent: None,
        rss_bytes: None,
        under: None,
    };
    s.app.set_instances(vec![row(Phase::Running)]);
    let screen = render(&s.app, 120, 40);
    assert!(screen.contains("app.crashed ARMED (running)"), "{screen}");
    s.app.set_instances(vec![row(Phase::Crashed)]);
    let screen = render(&s.app, 120, 40);
    assert!(screen.contains("app.crashed SET (crashed!)"), "{screen}");
    // Its node found down: RUNNING is its agent's last word, and says so.
    s.app.set_instances(vec![row(Phase::Running)]);
    let screen = render(&s.app, 120, 40);
    assert!(!screen.contains("RUNNING? (node DOWN)"), "{screen}");
    let node = |id: &str, healthy: bool| plumdash::cluster::Node {
        node_id: id.into(),
        last_seen: 100,
        health: Some(if healthy {
            plumdash::cluster::HealthState::Healthy
        } else {
            plumdash::cluster::HealthState::Unhealthy
        }),
        ..Default::default()
    };
    s.app.board.apply(
        s.at + 100,
        None,
        Fact::Cluster(plumdash::cluster::ClusterView {
            nodes: vec![node("nodeA", true), node("nodeB", false)],
            assignments: vec![],
        }),
    );
    let screen = render(&s.app, 120, 40);
    assert!(screen.contains("RUNNING? (node DOWN)"), "{screen}");
}

/// Read-only, the footer offers no key that signals or acts (each would
/// only answer "read-only").
#[test]
fn a_read_only_footer_offers_no_control_keys() {
    let mut s = running();
    let screen = render(&s.app, 120, 40);
    let footer = screen.lines().nth(39).unwrap_or_default().to_string();
    assert!(footer.contains("k kill"), "{footer}");
    s.app.header.read_only = true;
    let screen = render(&s.app, 120, 40);
    let footer = screen.lines().nth(39).unwrap_or_default().to_string();
    for control in [
        "k kill",
        "x signal",
        "i SIGINT",
        "s start/stop",
        "r restart",
    ] {
        assert!(!footer.contains(control), "{control}: {footer}");
    }
    assert!(footer.contains("q quit"), "{footer}");
}
