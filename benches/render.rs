//! Rendering: one 120×40 frame of the dashboard (`tui::view::draw` through
//! `Terminal::draw` on ratatui's `TestBackend`) with 1, 10 and 100 instances
//! and a 10,000-key namespace. Baseline in the same run: a frame holding a
//! single `Paragraph` on the same backend.
//!
//! `cargo bench --bench render`

mod common;

use common::{fmt_d, Samples, Table};
use plumdash::kv::{Entry, ValueType};
use plumdash::recovery::{Fact, InstanceStatus, Phase};
use plumdash::supervisor::ExitKind;
use plumdash::tui::app::{App, ClockStyle, HeaderInfo, InstanceRow};
use plumdash::tui::keymap::Keymap;
use plumdash::tui::theme::{Theme, ThemeName};
use plumdash::tui::view;
use ratatui::backend::TestBackend;
use ratatui::widgets::Paragraph;
use ratatui::Terminal;
use std::time::{Duration, Instant};

const T0: u64 = 1_800_000_000_000;
const FRAMES: usize = 3_000;
const W: u16 = 120;
const H: u16 = 40;

fn main() {
    if !common::benchmarking("render") {
        return;
    }
    let mut table = Table::new(&["frame 120×40", "frames", "p50", "p99", "p50 vs empty frame"]);
    let baseline = frames(|t, _| {
        t.draw(|f| f.render_widget(Paragraph::new("plumdash"), f.area()))
            .map(|_| ())
    });
    table.row(vec![
        "empty frame: one Paragraph (baseline)".into(),
        baseline.len().to_string(),
        fmt_d(baseline.median()),
        fmt_d(baseline.p99()),
        "1.0×".into(),
    ]);
    let mut worst = Duration::ZERO;
    for (instances, keys) in [(1, 12), (1, 10_000), (10, 10_000), (100, 10_000)] {
        let mut app = scenario(instances, keys);
        let s = frames(|t, i| {
            // The clock moves as it does on the tick, so ages and uptimes change.
            app.now = T0 + 60_000 + i as u64 * 250;
            t.draw(|f| {
                view::draw(f, &app);
            })
            .map(|_| ())
        });
        worst = worst.max(s.p99());
        table.row(vec![
            format!("dashboard: {instances} instance(s), {keys} keys"),
            s.len().to_string(),
            fmt_d(s.median()),
            fmt_d(s.p99()),
            format!(
                "{:.1}×",
                s.median().as_secs_f64() / baseline.median().as_secs_f64()
            ),
        ]);
    }
    table.print();
    println!(
        "goal: ≤ 1 ms per frame (worst p99 above): {} {}",
        fmt_d(worst),
        if worst <= Duration::from_millis(1) {
            "MET"
        } else {
            "MISSED"
        }
    );
}

fn frames(
    mut draw: impl FnMut(&mut Terminal<TestBackend>, usize) -> Result<(), std::convert::Infallible>,
) -> Samples {
    let mut terminal = Terminal::new(TestBackend::new(W, H)).expect("terminal");
    for i in 0..100 {
        draw(&mut terminal, i).expect("draw");
    }
    let mut s = Samples::default();
    for i in 0..FRAMES {
        let t = Instant::now();
        draw(&mut terminal, i).expect("draw");
        s.push(t.elapsed());
    }
    s
}

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

/// A dashboard that has run for a minute: `instances` workers (one killed
/// and resumed), checkpoints for the chart, a log, and `keys` keys.
fn scenario(instances: usize, keys: usize) -> App {
    let header = HeaderInfo {
        controller_url: "http://127.0.0.1:8080".into(),
        embedded: true,
        app: "kv-demo".into(),
        namespace: "kv-demo".into(),
        read_only: false,
        attached: false,
        waiting_for_namespace: None,
        archived: None,
    };
    let mut app = App::new(
        header,
        Keymap::default(),
        Theme::new(ThemeName::Dark, true),
        ClockStyle::Relative,
        T0,
    );
    let mut at = T0;
    let mut apply = |app: &mut App, f: Fact| {
        at += 100;
        app.board.apply(at, None, f);
    };
    apply(
        &mut app,
        Fact::FeedUp {
            via: "stream".into(),
        },
    );
    let mut snapshot: Vec<Entry> = (0..keys.saturating_sub(8))
        .map(|i| {
            entry(
                &format!("bulk.key{i:05}"),
                &format!("value-{i}"),
                ValueType::String,
            )
        })
        .collect();
    snapshot.push(entry("app.crashed", "true", ValueType::Bool));
    apply(&mut app, Fact::Snapshot(snapshot));
    for i in 0..instances {
        apply(
            &mut app,
            Fact::Started {
                instance: format!("kv-demo-{:03}", i + 1),
                pid: 1000 + i as u32,
            },
        );
    }
    for n in 1..=9 {
        apply(
            &mut app,
            Fact::Written(vec![
                entry("task.progress", &(n * 10).to_string(), ValueType::Int),
                entry("task.counter", &n.to_string(), ValueType::Int),
                entry("task.checkpoint", &format!("step_{n}"), ValueType::String),
                entry("task.status", "running", ValueType::String),
            ]),
        );
        if n == 5 {
            apply(
                &mut app,
                Fact::Exited {
                    instance: "kv-demo-001".into(),
                    exit: plumdash::recovery::ProcessExit::Signal(
                        nix::sys::signal::Signal::SIGKILL,
                    ),
                    requested: false,
                },
            );
            apply(
                &mut app,
                Fact::Started {
                    instance: "kv-demo-001".into(),
                    pid: 999,
                },
            );
        }
    }
    let rows = (0..instances)
        .map(|i| {
            let id = format!("kv-demo-{:03}", i + 1);
            let phase = app
                .tracker()
                .instance(&id)
                .map_or(Phase::Running, |v| v.phase.clone());
            InstanceRow {
                status: InstanceStatus {
                    id,
                    node: "nodeA".into(),
                    pid: Some(1000 + i as u32),
                    phase,
                    detail: None,
                    restart_at: None,
                    crash_loop: None,
                    started_at: Some(T0),
                    crashes: u32::from(i == 0),
                    manual_restarts: 0,
                    last_exit: (i == 0)
                        .then_some(ExitKind::KilledBySignal(nix::sys::signal::Signal::SIGKILL)),
                    auto_restart: true,
                    paused: None,
                    attached: false,
                    remote: false,
                },
                cpu_percent: Some(0.3),
                rss_bytes: Some(3 * 1024 * 1024),
                under: None,
            }
        })
        .collect();
    app.set_instances(rows);
    let log: Vec<plumdash::tui::app::LogLine> = (0..500)
        .map(|n| {
            plumdash::tui::app::LogLine::output(format!(
                "📊 进度: {}% | 计数: {n} | 检查点: step_{n}",
                n % 100
            ))
        })
        .collect();
    app.set_log_lines(log);
    app
}
