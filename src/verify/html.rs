//! The report as one self-contained HTML page for people: the verdict, the
//! progress of the worker over time with the kills, restarts, resumes, the
//! graceful stop and the controller outage marked and the fault windows
//! shaded (as Jepsen's timelines do), the per-cycle table, each violated
//! invariant with its history excerpt, and the run's settings.
//!
//! No scripts, no network, no external assets: inline CSS and an inline SVG
//! drawn with plotters. Everything from outside is escaped (control
//! characters made visible, then HTML-escaped).

use super::history::line;
use super::report::Report;
use crate::clock::{self, Zone};
use crate::recovery::TsMs;
use crate::text_safety::escape_controls_keep_newlines;
use plotters::prelude::*;
use std::fmt::Write as _;

const PLOT_SIZE: (u32, u32) = (1000, 420);

const KILL: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const RESTART: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const RESUME: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const OUTAGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const SIGINT: RGBColor = RGBColor(0x94, 0x67, 0xbd);
const PROGRESS: RGBColor = RGBColor(0x33, 0x33, 0x33);

/// Text from outside, safe inside HTML.
fn esc(s: &str) -> String {
    quick_xml::escape::escape(escape_controls_keep_newlines(s).as_ref()).into_owned()
}

/// `2026-12-02 06:00:04.239 UTC`.
fn utc(ms: TsMs) -> String {
    clock::utc(ms, "%Y-%m-%d %H:%M:%S%.3f UTC").unwrap_or_else(|| format!("{ms} ms"))
}

/// Seconds since the run started.
fn secs(report: &Report, ts: TsMs) -> f64 {
    ts.saturating_sub(report.started_ms) as f64 / 1000.0
}

/// Points in time marked on the plot: (seconds, what).
#[derive(Default)]
struct Marks {
    kills: Vec<f64>,
    restarts: Vec<f64>,
    resumes: Vec<f64>,
    sigints: Vec<f64>,
    outage_edges: Vec<f64>,
    /// Shaded: (from, to, is the controller outage).
    windows: Vec<(f64, f64, bool)>,
}

fn marks(report: &Report) -> Marks {
    let mut m = Marks::default();
    for c in report.cycles.iter().chain(report.outage.iter()) {
        let Some(killed) = c.killed_at_ms else {
            continue;
        };
        let k = secs(report, killed);
        m.kills.push(k);
        if let Some(d) = c.kill_to_restart_ms {
            m.restarts.push(k + d as f64 / 1000.0);
        }
        // The fault window: from the kill until the worker checkpoints again.
        let end = match c.kill_to_checkpoint_ms {
            Some(d) => {
                m.resumes.push(k + d as f64 / 1000.0);
                k + d as f64 / 1000.0
            }
            None => secs(report, report.finished_ms),
        };
        m.windows.push((k, end, false));
    }
    if let Some((down, up)) = report.outage_window {
        let (a, b) = (secs(report, down), secs(report, up));
        m.outage_edges.extend([a, b]);
        m.windows.push((a, b, true));
    }
    if let Some(at) = report.graceful_stop.as_ref().and_then(|g| g.stopped_at_ms) {
        m.sigints.push(secs(report, at));
    }
    m
}

/// The progress plot as an SVG document.
fn plot(report: &Report) -> Result<String, String> {
    let mut svg = String::new();
    let end = secs(report, report.finished_ms).max(1.0);
    let m = marks(report);
    {
        let root = SVGBackend::with_string(&mut svg, PLOT_SIZE).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| format!("drawing the plot: {e}");
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("task progress over time", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..end, 0f64..105f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the start of the run")
            .y_desc("progress %")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()
            .map_err(err)?;
        // Fault windows first, under everything else.
        for (from, to, outage) in &m.windows {
            let color = if *outage {
                OUTAGE.mix(0.18)
            } else {
                KILL.mix(0.12)
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(*from, 0.0), (to.max(from + 0.01), 105.0)],
                    color.filled(),
                )))
                .map_err(err)?;
        }
        // One step line per instance: stored progress holds until it changes.
        let instances: std::collections::BTreeSet<&str> = report
            .progress
            .iter()
            .map(|p| p.instance.as_str())
            .collect();
        for instance in instances {
            let mut points = Vec::new();
            let mut last = 0.0;
            for p in report.progress.iter().filter(|p| p.instance == instance) {
                let t = secs(report, p.ts_ms);
                points.push((t, last));
                last = p.progress.unwrap_or(0) as f64;
                points.push((t, last));
            }
            points.push((end, last));
            chart
                .draw_series(LineSeries::new(points, PROGRESS.stroke_width(2)))
                .map_err(err)?
                .label(format!(
                    "progress of {}",
                    crate::text_safety::escape_controls(instance)
                ))
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], PROGRESS.stroke_width(2))
                });
        }
        let lines: [(&str, &Vec<f64>, RGBColor); 5] = [
            ("SIGKILL", &m.kills, KILL),
            ("restarted", &m.restarts, RESTART),
            ("resumed (first checkpoint)", &m.resumes, RESUME),
            ("SIGINT (graceful stop)", &m.sigints, SIGINT),
            ("controller down / back", &m.outage_edges, OUTAGE),
        ];
        for (label, at, color) in lines {
            if at.is_empty() {
                continue;
            }
            chart
                .draw_series(
                    at.iter().map(|t| {
                        PathElement::new(vec![(*t, 0.0), (*t, 105.0)], color.stroke_width(2))
                    }),
                )
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A labelled line of the pattern's plot: its points and colour.
type Series = (&'static str, Vec<(f64, f64)>, RGBColor);

/// The pattern's own plot: a transaction log's operations logged against
/// effects applied (an effect applied twice shows as the gap), or a state
/// machine's state over time (a restore to INIT shows as the drop); the
/// kills marked. `None` for the checkpoint pattern.
fn pattern_plot(report: &Report) -> Result<Option<String>, String> {
    use crate::recovery::{fsm_index, Pattern, FSM_STATES};
    let Some(pattern @ (Pattern::TxLog | Pattern::Fsm)) = report.pattern else {
        return Ok(None);
    };
    let samples = &report.pattern_samples;
    let mut svg = String::new();
    let end = secs(report, report.finished_ms).max(1.0);
    let m = marks(report);
    {
        let root = SVGBackend::with_string(&mut svg, (PLOT_SIZE.0, 300)).into_drawing_area();
        let err = |e: DrawingAreaErrorKind<_>| format!("drawing the pattern plot: {e}");
        root.fill(&WHITE).map_err(err)?;
        let (caption, top) = match pattern {
            Pattern::TxLog => (
                "transaction log: operations logged and effects applied",
                13.0,
            ),
            _ => ("state machine: the state over time", 4.5),
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..end, 0f64..top)
            .map_err(err)?;
        let state_name = |v: &f64| {
            let i = v.round() as usize;
            match FSM_STATES.get(i) {
                Some(s) if (v - i as f64).abs() < 0.01 => s.to_string(),
                _ => String::new(),
            }
        };
        let count = |v: &f64| format!("{v:.0}");
        let y_fmt: &dyn Fn(&f64) -> String = match pattern {
            Pattern::TxLog => &count,
            _ => &state_name,
        };
        chart
            .configure_mesh()
            .x_desc("seconds since the start of the run")
            .y_label_formatter(y_fmt)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .light_line_style(RGBColor(0xee, 0xee, 0xee))
            .draw()
            .map_err(err)?;
        let step_line = |value: &dyn Fn(&super::report::PatternSample) -> Option<f64>| {
            let mut points = Vec::new();
            let mut last = 0.0;
            for p in samples {
                let t = secs(report, p.ts_ms);
                points.push((t, last));
                last = value(p).unwrap_or(last);
                points.push((t, last));
            }
            points.push((end, last));
            points
        };
        let series: Vec<Series> = match pattern {
            Pattern::TxLog => vec![
                (
                    "operations logged (operation.counter)",
                    step_line(&|p| p.logged.map(|v| v as f64)),
                    PROGRESS,
                ),
                (
                    "effects applied (ledger.applied)",
                    step_line(&|p| p.applied.map(|v| v as f64)),
                    RESUME,
                ),
            ],
            _ => vec![(
                "fsm.state",
                step_line(&|p| p.state.as_deref().and_then(fsm_index).map(|i| i as f64)),
                PROGRESS,
            )],
        };
        for (label, points, color) in series {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        if !m.kills.is_empty() {
            chart
                .draw_series(
                    m.kills.iter().map(|t| {
                        PathElement::new(vec![(*t, 0.0), (*t, top)], KILL.stroke_width(2))
                    }),
                )
                .map_err(err)?
                .label("SIGKILL")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], KILL.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(Some(svg))
}

/// The pattern's section: its plot and every replay or restore seen.
fn pattern_section(h: &mut String, report: &Report) -> Result<(), String> {
    let Some(pattern) = report.pattern else {
        return Ok(());
    };
    let _ = writeln!(h, "<h2>Recovery pattern: {pattern}</h2>");
    if !report.keys.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"sub\">keys: <code>{}</code></p>",
            esc(&report.keys.join(", "))
        );
    }
    if let Some(svg) = pattern_plot(report)? {
        let _ = writeln!(h, "<figure id=\"pattern-plot\">{svg}</figure>");
    }
    if !report.recoveries.is_empty() {
        let _ = writeln!(h, "<ul id=\"recoveries\">");
        for r in &report.recoveries {
            let _ = writeln!(h, "<li>{}</li>", esc(r));
        }
        let _ = writeln!(h, "</ul>");
    }
    Ok(())
}

/// The whole HTML document.
pub fn to_html(report: &Report) -> Result<String, String> {
    let svg = plot(report)?;
    let violated = report.violated();
    let (verdict, class) = if report.ok {
        (
            format!(
                "PASS — every checked invariant held ({} kill cycles)",
                report.cycles.len()
            ),
            "pass",
        )
    } else if violated.is_empty() {
        (
            "FAIL — the run did not complete its plan".to_string(),
            "fail",
        )
    } else {
        let list: Vec<String> = violated.iter().map(|i| i.to_string()).collect();
        (
            format!("FAIL — invariant {} violated", list.join(", ")),
            "fail",
        )
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>plumdash verify: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&verdict)
    );
    let _ = writeln!(
        h,
        "<h1 class=\"{class}\" id=\"verdict\">verify: {}</h1>",
        esc(&verdict)
    );
    let _ = writeln!(
        h,
        "<p class=\"sub\">worker <code>{}</code> · app <code>{}</code> · started {} · {:.1} s</p>",
        esc(&report.worker),
        esc(&report.app),
        utc(report.started_ms),
        report.finished_ms.saturating_sub(report.started_ms) as f64 / 1000.0
    );
    if let Some(why) = &report.ended_early {
        let _ = writeln!(h, "<p class=\"fail\">run ended early: {}</p>", esc(why));
    }
    let _ = writeln!(h, "<h2>Progress</h2>\n<figure id=\"plot\">{svg}</figure>");
    let _ = writeln!(
        h,
        "<p class=\"sub\">Shaded red: from a SIGKILL until the restarted worker wrote its \
         first checkpoint. Shaded orange: the controller was down.</p>"
    );
    pattern_section(&mut h, report)?;
    cycles_table(&mut h, report);
    invariants_list(&mut h, report);
    violations(&mut h, report);
    if !report.warnings.is_empty() {
        let _ = writeln!(h, "<h2>Warnings</h2>\n<ul>");
        for w in &report.warnings {
            let _ = writeln!(h, "<li>{}</li>", esc(w));
        }
        let _ = writeln!(h, "</ul>");
    }
    settings(&mut h, report);
    let _ = writeln!(
        h,
        "<details><summary>Full history ({} entries, UTC)</summary><pre>",
        report.history.len()
    );
    for e in report.history.entries() {
        let _ = writeln!(h, "{}", esc(&line(e, Zone::UTC)));
    }
    let _ = writeln!(h, "</pre></details>\n</body>\n</html>");
    Ok(h)
}

fn cycles_table(h: &mut String, report: &Report) {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    let _ = writeln!(
        h,
        "<h2>Kill cycles</h2>\n<table id=\"cycles\">\n<tr><th>cycle</th><th>kind</th><th>task</th>\
         <th>kill at</th><th>resumed from</th><th>steps lost</th><th>kill→restart ms</th>\
         <th>kill→checkpoint ms</th><th>verdict</th></tr>"
    );
    for c in report.cycles.iter().chain(report.outage.iter()) {
        let class = if c.violated.is_empty() {
            "pass"
        } else {
            "fail"
        };
        let kind = if c.kind == "outage" {
            "SIGKILL, controller down"
        } else {
            "SIGKILL"
        };
        let [kill_at, resumed, lost, restart, checkpoint] = c.figure_cells();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{kind}</td><td>{}</td><td>{kill_at}</td><td>{resumed}</td><td>{lost}</td><td>{restart}</td><td>{checkpoint}</td><td class=\"{class}\">{}</td></tr>",
            c.cycle,
            c.task,
            esc(&c.verdict)
        );
    }
    let _ = writeln!(h, "</table>");
    if let Some(g) = &report.graceful_stop {
        let _ = writeln!(
            h,
            "<p>Graceful stop (SIGINT) at {}: {}, crash flag {}, next start {}, continued from {}.</p>",
            opt(g.at_pct.map(|p| format!("{p}%"))),
            esc(&opt(g.exit.clone())),
            match g.flag_after_stop {
                Some(true) => "<b class=\"fail\">still set</b>",
                Some(false) => "cleared",
                None => "?",
            },
            match g.next_start_was_recovery {
                Some(true) => "<b class=\"fail\">taken for a recovery</b>",
                Some(false) => "normal",
                None => "?",
            },
            opt(g.continued_from.map(|p| format!("{p}%"))),
        );
    }
}

fn invariants_list(h: &mut String, report: &Report) {
    let _ = writeln!(h, "<h2>Invariants</h2>\n<table id=\"invariants\">");
    for inv in &report.invariants {
        let (mark, class) = match inv.status {
            "held" => ("held", "pass"),
            "violated" => ("VIOLATED", "fail"),
            other => (other, "skip"),
        };
        let reason = inv
            .reason
            .as_deref()
            .map(|r| format!(" — {}", esc(r)))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td class=\"{class}\">{}</td><td>{}. {}{reason}</td></tr>",
            mark.replace('_', " "),
            inv.id,
            esc(inv.name)
        );
    }
    let _ = writeln!(h, "</table>");
}

fn violations(h: &mut String, report: &Report) {
    let found: Vec<_> = report
        .invariants
        .iter()
        .flat_map(|i| i.violations.iter().map(move |v| (i, v)))
        .collect();
    if found.is_empty() {
        return;
    }
    let _ = writeln!(h, "<h2>Violations</h2>");
    for (inv, v) in found {
        let _ = writeln!(
            h,
            "<div class=\"violation\"><h3>invariant {}: {}</h3>\n<p>{}</p>\n<pre>",
            inv.id,
            esc(inv.name),
            esc(&v.message)
        );
        for e in &v.evidence {
            let _ = writeln!(h, "{}", esc(&line(e, Zone::UTC)));
        }
        let _ = writeln!(h, "</pre></div>");
    }
}

fn settings(h: &mut String, report: &Report) {
    let mut rows: Vec<(&str, String)> = vec![
        ("worker", report.worker.clone()),
        (
            "controller",
            format!(
                "{}{}",
                report.controller,
                if report.embedded_controller {
                    " (embedded)"
                } else {
                    " (remote)"
                }
            ),
        ),
        ("app", report.app.clone()),
        (
            "step",
            report
                .step_ms
                .map_or("the worker's default".into(), |s| format!("{s} ms")),
        ),
    ];
    if let Some(seed) = report.seed {
        rows.push(("seed", seed.to_string()));
    }
    let points: Vec<String> = report.kill_points.iter().map(|p| format!("{p}%")).collect();
    rows.push(("kill points", points.join(", ")));
    if let Some(ms) = report.outage_ms {
        rows.push(("controller outage", format!("{ms} ms")));
    }
    if let Some(resolution) = &report.resolution {
        rows.push(("observed", resolution.clone()));
    }
    rows.push(("judged", report.basis.text.clone()));
    rows.push(("started", utc(report.started_ms)));
    rows.push(("finished", utc(report.finished_ms)));
    let _ = writeln!(h, "<h2>Settings</h2>\n<table id=\"settings\">");
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{k}</th><td><code>{}</code></td></tr>", esc(&v));
    }
    let _ = writeln!(h, "</table>");
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1040px;color:#222}\
h1.pass{color:#1a7f37}h1.fail{color:#c62828}.sub{color:#666}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}\
td.pass{color:#1a7f37}td.fail,b.fail,p.fail{color:#c62828;font-weight:bold}td.skip{color:#888}\
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}\
.violation{border-left:4px solid #c62828;padding-left:10px;margin:1em 0}figure{margin:0}";
