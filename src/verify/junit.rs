//! The report as JUnit XML, the format GitHub Actions, GitLab and Jenkins show
//! natively: one `<testsuite>` per run, a `<testcase>` per invariant, and for
//! the invariants judged on every kill cycle (1, 2, 3 and 6) one per cycle.
//! A violation is a `<failure>` whose message is the invariant's statement and
//! whose text is what was found with the history around it.
//!
//! Written with quick-xml, which escapes every attribute and text. Control
//! characters (worker output, stored values) are escaped to visible text
//! first: XML 1.0 cannot carry most of them at all.

use super::history::line;
use super::report::{CycleReport, InvariantResult, Report, Violation};
use crate::clock::{self, Zone};
use crate::text_safety::{escape_controls, escape_controls_keep_newlines};
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use std::io;

/// Counts of one suite, as its attributes say them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub tests: usize,
    pub failures: usize,
    pub skipped: usize,
}

/// One `<testcase>` before it is written.
struct Case {
    name: String,
    classname: String,
    time_ms: u64,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    Failed {
        message: String,
        kind: String,
        text: String,
    },
    Skipped(String),
}

/// The JUnit XML document of a run.
pub fn to_junit(report: &Report) -> io::Result<String> {
    let cases = cases(report);
    let counts = count(&cases);
    let time = seconds(report.finished_ms.saturating_sub(report.started_ms));
    let timestamp = clock::utc(report.started_ms, "%Y-%m-%dT%H:%M:%S").unwrap_or_default();
    let suite_name = format!("plumdash verify ({})", clean(&report.app));
    let (tests, failures, skipped) = (
        counts.tests.to_string(),
        counts.failures.to_string(),
        counts.skipped.to_string(),
    );
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites")
        .with_attributes([
            ("name", "plumdash verify"),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", "0"),
            ("skipped", skipped.as_str()),
            ("time", time.as_str()),
        ])
        .write_inner_content(|w| {
            w.create_element("testsuite")
                .with_attributes([
                    ("name", suite_name.as_str()),
                    ("tests", tests.as_str()),
                    ("failures", failures.as_str()),
                    ("errors", "0"),
                    ("skipped", skipped.as_str()),
                    ("time", time.as_str()),
                    ("timestamp", timestamp.as_str()),
                ])
                .write_inner_content(|w| {
                    w.create_element("properties").write_inner_content(|w| {
                        for (name, value) in properties(report) {
                            w.create_element("property")
                                .with_attributes([("name", name), ("value", value.as_str())])
                                .write_empty()?;
                        }
                        Ok(())
                    })?;
                    for case in &cases {
                        write_case(w, case)?;
                    }
                    // The human report too, for CI pages that show a suite's output.
                    let text =
                        escape_controls_keep_newlines(&report.render(Zone::UTC)).into_owned();
                    w.create_element("system-out")
                        .write_text_content(BytesText::new(&text))?;
                    Ok(())
                })?;
            Ok(())
        })?;
    let mut xml = String::from_utf8(w.into_inner()).map_err(io::Error::other)?;
    xml.push('\n');
    Ok(xml)
}

/// The counts the document will carry.
pub fn counts(report: &Report) -> Counts {
    count(&cases(report))
}

fn count(cases: &[Case]) -> Counts {
    Counts {
        tests: cases.len(),
        failures: cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
            .count(),
        skipped: cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
            .count(),
    }
}

fn write_case(w: &mut Writer<Vec<u8>>, case: &Case) -> io::Result<()> {
    let time = seconds(case.time_ms);
    let el = w.create_element("testcase").with_attributes([
        ("name", case.name.as_str()),
        ("classname", case.classname.as_str()),
        ("time", time.as_str()),
    ]);
    match &case.outcome {
        Outcome::Passed => {
            el.write_empty()?;
        }
        Outcome::Skipped(reason) => {
            el.write_inner_content(|w| {
                w.create_element("skipped")
                    .with_attribute(("message", reason.as_str()))
                    .write_empty()?;
                Ok(())
            })?;
        }
        Outcome::Failed {
            message,
            kind,
            text,
        } => {
            el.write_inner_content(|w| {
                w.create_element("failure")
                    .with_attributes([("message", message.as_str()), ("type", kind.as_str())])
                    .write_text_content(BytesText::new(text))?;
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// The worker command, seed and the other settings of the run.
fn properties(report: &Report) -> Vec<(&'static str, String)> {
    let mut props = vec![
        ("worker", clean(&report.worker)),
        ("controller", clean(&report.controller)),
        (
            "embedded_controller",
            report.embedded_controller.to_string(),
        ),
        ("app", clean(&report.app)),
    ];
    if let Some(step) = report.step_ms {
        props.push(("step_ms", step.to_string()));
    }
    if let Some(seed) = report.seed {
        props.push(("seed", seed.to_string()));
    }
    let points: Vec<String> = report.kill_points.iter().map(|p| p.to_string()).collect();
    props.push(("kill_points", points.join(",")));
    if let Some(ms) = report.outage_ms {
        props.push(("outage_ms", ms.to_string()));
    }
    if let Some(resolution) = &report.resolution {
        props.push(("observed", clean(resolution)));
    }
    props.push(("basis", clean(&report.basis.text)));
    props
}

/// The kill cycles an invariant is judged on, one by one.
fn cycles_for(report: &Report, id: u8) -> Vec<&CycleReport> {
    match id {
        1 | 3 => report.cycles.iter().chain(report.outage.iter()).collect(),
        2 => report.cycles.iter().collect(),
        6 => report.outage.iter().collect(),
        _ => Vec::new(),
    }
}

fn cases(report: &Report) -> Vec<Case> {
    let mut cases = Vec::new();
    for inv in &report.invariants {
        let classname = format!("plumdash.verify.invariant{}", inv.id);
        let per_cycle = cycles_for(report, inv.id);
        for c in &per_cycle {
            let found: Vec<&Violation> = inv
                .violations
                .iter()
                .filter(|v| v.cycle == Some(c.cycle))
                .collect();
            let what = if c.kind == "outage" {
                "SIGKILL while the controller was down"
            } else {
                "SIGKILL"
            };
            cases.push(Case {
                name: format!(
                    "invariant {}, cycle {} ({what} at {}%)",
                    inv.id,
                    c.cycle,
                    c.kill_at_pct.unwrap_or(c.planned_pct)
                ),
                classname: classname.clone(),
                time_ms: c.kill_to_checkpoint_ms.unwrap_or(0),
                outcome: outcome(inv, &found),
            });
        }
        // Found outside any cycle (or an invariant judged once per run).
        let rest: Vec<&Violation> = inv
            .violations
            .iter()
            .filter(|v| v.cycle.is_none() || !per_cycle.iter().any(|c| Some(c.cycle) == v.cycle))
            .collect();
        if per_cycle.is_empty() || !rest.is_empty() {
            cases.push(Case {
                name: format!("invariant {}", inv.id),
                classname,
                time_ms: 0,
                outcome: if rest.is_empty() && inv.status != "held" {
                    let why = inv.reason.as_deref().unwrap_or("not checked");
                    Outcome::Skipped(clean(&format!("{}: {why}", inv.status.replace('_', " "))))
                } else {
                    outcome(inv, &rest)
                },
            });
        }
    }
    if let Some(why) = &report.ended_early {
        cases.push(Case {
            name: "the run completes its plan".into(),
            classname: "plumdash.verify.run".into(),
            time_ms: report.finished_ms.saturating_sub(report.started_ms),
            outcome: Outcome::Failed {
                message: clean(&format!("run ended early: {why}")),
                kind: "ended early".into(),
                text: clean(why),
            },
        });
    }
    cases
}

fn outcome(inv: &InvariantResult, found: &[&Violation]) -> Outcome {
    if found.is_empty() {
        return Outcome::Passed;
    }
    let mut text = String::new();
    for v in found {
        text.push_str(&format!(
            "invariant {} violated: {}\nhistory (UTC):\n",
            v.invariant, v.message
        ));
        for e in &v.evidence {
            text.push_str("    ");
            text.push_str(&line(e, Zone::UTC));
            text.push('\n');
        }
    }
    Outcome::Failed {
        message: format!("{}. {}", inv.id, inv.name),
        kind: format!("invariant {}", inv.id),
        text: escape_controls_keep_newlines(&text).into_owned(),
    }
}

/// Text from outside, made fit for XML (no control characters).
fn clean(s: &str) -> String {
    escape_controls(s).into_owned()
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}
