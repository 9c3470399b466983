//! `plumdash verify`'s files for CI and people: JUnit XML (parsed back and
//! validated against the JUnit schema with xmllint) and the HTML report
//! (rendered by headless Chromium). Real runs of the binary, 50 ms steps.

use crate::support::{self, fixture, need};
use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn verify(args: &[&str]) -> Output {
    support::plumdash()
        .arg("verify")
        .args(["--step", "50ms"])
        .args(args)
        .output()
        .expect("running plumdash verify")
}

/// A passing run: two cycles killed at random points (seed 7), its report
/// written by `flag` (`--junit`, `--html`) to `path`.
fn verify_two_random_kills(flag: &str, path: &Path) -> Output {
    let path = path.to_str().unwrap();
    verify(&["--cycles", "2", "--kill-random", "--seed", "7", flag, path])
}

/// What a JUnit document holds, read back with an XML parser.
#[derive(Debug, Default)]
struct Junit {
    /// The suite's `tests`, `failures`, `skipped` attributes.
    attrs: (usize, usize, usize),
    /// Test case names with their outcome: `pass`, `failure` or `skipped`.
    cases: Vec<(String, &'static str)>,
    /// `<failure message>` and text, by test case.
    failures: Vec<(String, String, String)>,
    properties: Vec<(String, String)>,
}

fn attr(e: &quick_xml::events::BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).unwrap().map(|a| {
        a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
            .unwrap()
            .into_owned()
    })
}

fn parse_junit(xml: &str) -> Junit {
    let mut reader = Reader::from_str(xml);
    let mut j = Junit::default();
    let mut in_failure: Option<String> = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "testsuite" => {
                    let n = |k| attr(&e, k).unwrap().parse::<usize>().unwrap();
                    j.attrs = (n("tests"), n("failures"), n("skipped"));
                }
                "testcase" => j.cases.push((attr(&e, "name").unwrap(), "pass")),
                "failure" => {
                    j.cases.last_mut().unwrap().1 = "failure";
                    in_failure = Some(attr(&e, "message").unwrap());
                    j.failures.push((
                        j.cases.last().unwrap().0.clone(),
                        attr(&e, "message").unwrap(),
                        String::new(),
                    ));
                }
                "skipped" => j.cases.last_mut().unwrap().1 = "skipped",
                "property" => j
                    .properties
                    .push((attr(&e, "name").unwrap(), attr(&e, "value").unwrap())),
                _ => {}
            },
            Event::Text(t) if in_failure.is_some() => {
                j.failures.last_mut().unwrap().2 += &t.html_content();
            }
            Event::GeneralRef(r) if in_failure.is_some() => {
                // Entities (&amp; …) arrive on their own.
                let name = r.html_content().into_owned();
                let ch = match name.as_str() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected entity {other}"),
                };
                j.failures.last_mut().unwrap().2 += ch;
            }
            Event::End(e) if e.name().as_ref() == "failure" => in_failure = None,
            _ => {}
        }
    }
    j
}

/// Validates against the JUnit schema (the test `need`s xmllint).
fn validate_junit(path: &Path) {
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(fixture("junit.xsd"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not validate: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn property<'a>(j: &'a Junit, name: &str) -> &'a str {
    j.properties
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no property {name}: {:?}", j.properties))
}

#[test]
fn junit_of_a_passing_run_has_a_case_per_invariant_and_cycle() {
    if !need(&["xmllint"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    let out = verify_two_random_kills("--junit", &path);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    validate_junit(&path);
    let j = parse_junit(&std::fs::read_to_string(&path).unwrap());
    // Two kill cycles and the outage cycle: invariants 1 and 3 on all three,
    // 2 on the kill cycles, 6 on the outage cycle, 4 and 5 once.
    assert_eq!(j.cases.len(), 3 + 2 + 3 + 1 + 1 + 1, "{:#?}", j.cases);
    assert_eq!(j.attrs, (11, 0, 0));
    assert!(j.cases.iter().all(|(_, o)| *o == "pass"), "{:#?}", j.cases);
    assert!(j
        .cases
        .iter()
        .any(|(n, _)| n.starts_with("invariant 2, cycle 2 (SIGKILL at ")));
    assert!(j
        .cases
        .iter()
        .any(|(n, _)| n.starts_with("invariant 6, cycle 3 (SIGKILL while the controller")));
    assert_eq!(property(&j, "seed"), "7");
    assert!(property(&j, "worker").contains("kv-demo"));
    assert_eq!(property(&j, "step_ms"), "50");
}

#[test]
fn junit_of_a_broken_worker_fails_the_right_cases_with_history() {
    // The broken worker speaks to the controller with curl (kv-lib.sh).
    if !need(&["xmllint", "curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (xml_path, json_path) = (dir.path().join("junit.xml"), dir.path().join("r.json"));
    let html_path = dir.path().join("report.html");
    // The worker lives in a folder whose name is markup: both files must escape it.
    let odd = dir.path().join("x<y&z");
    std::fs::create_dir(&odd).unwrap();
    for f in ["restart-from-zero.sh", "kv-lib.sh"] {
        std::fs::copy(fixture(f), odd.join(f)).unwrap();
    }
    let cmd = odd.join("restart-from-zero.sh");
    let out = verify(&[
        "--cycles",
        "1",
        "--kill-at",
        "50",
        "--cmd",
        cmd.to_str().unwrap(),
        "--junit",
        xml_path.to_str().unwrap(),
        "--report",
        json_path.to_str().unwrap(),
        "--html",
        html_path.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    validate_junit(&xml_path);
    let j = parse_junit(&std::fs::read_to_string(&xml_path).unwrap());
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    // One failing case per invariant broken in a cycle, plus one per
    // invariant broken outside the cycles.
    let mut expected = 0;
    for c in report["cycles"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&report["outage"]))
    {
        expected += c["violated"].as_array().unwrap().len();
    }
    for inv in report["invariants"].as_array().unwrap() {
        if inv["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["cycle"].is_null())
        {
            expected += 1;
        }
    }
    assert_eq!(j.attrs.1, expected, "{:#?}", j.cases);
    assert_eq!(
        j.cases.iter().filter(|(_, o)| *o == "failure").count(),
        expected
    );
    assert_eq!(j.attrs.0, j.cases.len());
    let (_, message, text) = j
        .failures
        .iter()
        .find(|(case, _, _)| case.starts_with("invariant 2, cycle 1 (SIGKILL at 50%)"))
        .unwrap_or_else(|| panic!("no failure for invariant 2, cycle 1: {:#?}", j.cases));
    assert_eq!(
        message,
        "2. a restarted worker resumes from the last checkpoint, never from 0 nor ahead"
    );
    assert!(
        text.contains("resumed from 0% but the last checkpoint was step_5"),
        "{text}"
    );
    // The history excerpt: the kill and the namespace around it.
    assert!(
        text.contains("verify  SIGKILL kv-demo-001 at 50%"),
        "{text}"
    );
    assert!(text.contains("kv      "), "{text}");
    assert!(property(&j, "worker").ends_with("/x<y&z/restart-from-zero.sh"));
    // The HTML page: the verdict, the violation with its history, escaped.
    let page = std::fs::read_to_string(&html_path).unwrap();
    // Which invariants a run under load breaks beyond these has varied once
    // (in CI): the verdict line and the report say which, for the next time.
    assert!(
        page.contains("verify: FAIL — invariant 2, 4, 6 violated"),
        "verdict: {:?}; invariants: {}",
        page.lines().find(|l| l.contains("verify: ")),
        report["invariants"]
    );
    assert!(page.contains("<h3>invariant 2: a restarted worker resumes"));
    assert!(page.contains("resumed from 0% but the last checkpoint was step_5"));
    assert!(page.contains("verify  SIGKILL kv-demo-001 at 50%"));
    assert!(page.contains("x&lt;y&amp;z/restart-from-zero.sh"));
    assert!(!page.contains("x<y&z"), "unescaped path in the page");
    // It also starts from 0 after the graceful stop; its batches are whole.
    assert!(j.cases.contains(&("invariant 4".to_string(), "failure")));
    assert!(j
        .cases
        .contains(&("invariant 3, cycle 1 (SIGKILL at 50%)".to_string(), "pass")));
}

/// `file` as headless Chromium renders it: the DOM after parsing and a PNG
/// screenshot (the test `need`s chromium).
fn chromium_render(file: &Path, png: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", file.display());
    let run = |what: &[String]| {
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--window-size=1100,1500",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(what)
            .arg(&url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting chromium");
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
            s
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "chromium {what:?}: {status}");
                break;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium {what:?} did not finish in 90 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        reader.join().unwrap()
    };
    run(&[format!("--screenshot={}", png.display())]);
    run(&["--dump-dom".to_string()])
}

/// Width, height and byte size of a PNG file (from its IHDR chunk).
fn png_facts(png: &Path) -> (u32, u32, usize) {
    let bytes = std::fs::read(png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    (be(16), be(20), bytes.len())
}

#[test]
fn the_html_report_is_self_contained_and_renders_in_chromium_with_the_plot() {
    if !need(&["chromium"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let out = verify_two_random_kills("--html", &html);
    assert_eq!(out.status.code(), Some(0));
    let page = std::fs::read_to_string(&html).unwrap();
    // Nothing to fetch: no scripts, no links, no external images or styles.
    for needle in ["<script", " src=", "href=", "url(", "@import", "<link"] {
        assert!(!page.contains(needle), "the page has {needle}");
    }
    assert!(page.contains("verify: PASS"));
    let png = std::env::var_os("PLUMDASH_REPORT_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("report.png"));
    let dom = chromium_render(&html, &png);
    // Chromium parsed the page into the plot and the tables.
    assert!(
        dom.contains("<h1 class=\"pass\" id=\"verdict\">verify: PASS"),
        "{dom}"
    );
    let svg = dom
        .split("<figure id=\"plot\">")
        .nth(1)
        .expect("the plot figure");
    assert!(svg.trim_start().starts_with("<svg"), "no SVG in the figure");
    assert!(svg.contains("<polyline"), "no progress line");
    for label in [
        "SIGKILL",
        "restarted",
        "resumed (first checkpoint)",
        "SIGINT (graceful stop)",
        "controller down / back",
    ] {
        assert!(svg.contains(label), "the legend lacks {label}");
    }
    assert_eq!(
        dom.matches("<tr><td>").count(),
        3,
        "cycle rows (2 kills + the outage)"
    );
    // A blank 1100×1500 page compresses to a few kB; the plot and tables do not.
    let (w, h, size) = png_facts(&png);
    assert_eq!((w, h), (1100, 1500));
    assert!(size > 40_000, "the screenshot looks blank ({size} bytes)");
}
