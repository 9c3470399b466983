//! A broken or hostile controller never blinds, fools or pins plumdash: the
//! library feed, the `kv` CLI and `attach` (the real binary in tmux) against
//! `support/hostile.rs`, one way of misbehaving per test.

use crate::support::hostile::{HostileController, Mode, EVIL_KEY, EVIL_KEY_SHOWN, NS};
use crate::support::need;
use crate::support::tmux::{gauge_percent, Tmux};
use plumdash::kv::{DistributedMemory, FeedMode, FeedTrouble, KvError, WatchEvent, WatchOptions};
use std::process::Output;
use std::time::{Duration, Instant};

fn stream_only() -> WatchOptions {
    WatchOptions {
        mode: FeedMode::Stream,
        max_backoff: Duration::from_secs(2),
        ..WatchOptions::default()
    }
}

/// Every event the feed hands on within `span`.
async fn events_for(feed: &mut plumdash::kv::Watcher, span: Duration) -> Vec<WatchEvent> {
    let until = tokio::time::Instant::now() + span;
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(until, feed.recv()).await {
        seen.push(event);
    }
    seen
}

fn last_trouble(events: &[WatchEvent]) -> Option<&FeedTrouble> {
    events.iter().rev().find_map(|e| match e {
        WatchEvent::Trouble(t) => Some(t),
        _ => None,
    })
}

fn kv(url: &str, args: &[&str]) -> Output {
    crate::support::plumdash()
        .arg("kv")
        .args(args)
        .args(["--controller", url, "--namespace", NS])
        .env_remove("PLUM_TOKEN")
        .env_remove("CONTROLLER_BASE")
        .env_remove("PLUM_APP_NAME")
        .output()
        .expect("plumdash kv runs")
}

/// Nothing a terminal acts on, and no markup, in what was printed.
fn assert_clean(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters: {text:?}"
    );
    assert!(!text.contains('<'), "markup printed: {text}");
}

/// `plumdash attach --app hx` in tmux, in a shell that says when it ended.
fn attach(url: &str) -> Tmux {
    let bin = crate::support::PLUMDASH;
    let line = format!(
        "{bin} attach --controller {url} --app {NS} --lang en; echo ATTACH-EXITED $?; sleep 600"
    );
    Tmux::shell_running(120, 40, "$ ", &["sh", "-c", &line])
}

fn assert_q_quits(tmux: &Tmux) {
    tmux.send(&["q"]);
    let asked = Instant::now();
    tmux.wait_for("attach to end after q", Duration::from_secs(3), |s| {
        s.contains("ATTACH-EXITED").then_some(())
    });
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "q took {:?}",
        asked.elapsed()
    );
}

#[tokio::test]
async fn another_namespaces_events_are_dropped_not_applied() {
    let c = HostileController::start(Mode::OtherNamespace);
    let dm = DistributedMemory::create(NS, &c.url()).unwrap();
    let mut feed = dm.subscribe(stream_only());
    let events = events_for(&mut feed, Duration::from_millis(2500)).await;
    let snapshot = events.iter().find_map(|e| match e {
        WatchEvent::Snapshot(entries) => Some(entries),
        _ => None,
    });
    let snapshot = snapshot.expect("a snapshot");
    assert_eq!(snapshot.len(), 5);
    assert!(snapshot.iter().all(|e| e.namespace == NS));
    assert!(
        !events.iter().any(|e| matches!(
            e,
            WatchEvent::Put(_) | WatchEvent::Batch(_) | WatchEvent::Deleted { .. }
        )),
        "another namespace's (or a stale) change was applied: {events:?}"
    );
    // Two writes and a delete of other-app's, one change numbered before the snapshot.
    let trouble = last_trouble(&events).expect("the dropped events are reported");
    assert_eq!(trouble.dropped, 4, "{trouble:?}");
    assert_eq!(trouble.skipped, 0, "{trouble:?}");
    assert_eq!(c.stream_requests(), 1, "no reconnect for it");

    // The listing's other-app entry is left out, counted.
    let listing = dm.listing(None).await.unwrap();
    assert_eq!((listing.entries.len(), listing.foreign), (5, 1));

    // `kv watch` prints none of it as hx's, and says what it dropped.
    let mut watch = crate::support::plumdash()
        .args(["kv", "watch", "--controller", &c.url(), "--namespace", NS])
        .env_remove("PLUM_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    watch.kill().unwrap();
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(" put ") && !text.contains(" del "), "{text}");
    assert!(text.contains("4 dropped"), "{text}");
    assert_clean(&text);
}

#[test]
fn attach_shows_its_own_namespace_not_another_apps() {
    if !need(&["tmux"]) {
        return;
    }
    let c = HostileController::start(Mode::OtherNamespace);
    let tmux = attach(&c.url());
    let screen = tmux.wait_for("the task at 50 %", Duration::from_secs(15), |s| {
        (gauge_percent(s) == Some(50)).then(|| s.to_string())
    });
    // Give the other app's writes time to arrive (and be dropped).
    std::thread::sleep(Duration::from_millis(1500));
    let screen = tmux.screen() + &screen;
    assert!(!screen.contains("TORN"), "{screen}");
    assert_eq!(gauge_percent(&tmux.screen()), Some(50));
    assert!(
        tmux.screen()
            .contains("not this namespace's or out of order"),
        "{}",
        tmux.screen()
    );
    assert_q_quits(&tmux);
}

#[tokio::test]
async fn one_malformed_entry_does_not_blind_the_rest() {
    let c = HostileController::start(Mode::BadEntry);
    let dm = DistributedMemory::create(NS, &c.url()).unwrap();

    // The library: the good entries read, the bad ones apart, each with why.
    let listing = dm.listing(None).await.unwrap();
    assert_eq!(listing.entries.len(), 5);
    let bad: Vec<&str> = listing.unreadable.iter().map(|u| u.key_text()).collect();
    assert_eq!(bad, ["bad.number", "bad.null", "bad.time", EVIL_KEY]);
    // A worker's whole read refuses it in one line rather than taking it for absent.
    let err = dm.get_all().await.unwrap_err();
    assert!(matches!(err, KvError::Protocol(_)), "{err}");
    assert!(err.to_string().contains("bad.number") && !err.to_string().contains('\n'));

    // The feed: the snapshot of the good ones, the bad ones reported at once.
    let mut feed = dm.subscribe(stream_only());
    let events = events_for(&mut feed, Duration::from_millis(1500)).await;
    assert!(events
        .iter()
        .any(|e| matches!(e, WatchEvent::Snapshot(entries) if entries.len() == 5)));
    let trouble = last_trouble(&events).expect("unreadable entries reported");
    assert_eq!(trouble.unreadable.len(), 4, "{trouble:?}");
    assert!(!events
        .iter()
        .any(|e| matches!(e, WatchEvent::Status(plumdash::kv::FeedStatus::Down { .. }))));
    assert_eq!(c.stream_requests(), 1);

    // `kv ls`: every good row, each bad one as such, exit 0.
    let out = kv(&c.url(), &["ls"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("task.progress") && stdout.contains("50"),
        "{stdout}"
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("bad.number"))
        .expect("the bad entry's row");
    assert!(row.contains("unreadable: invalid type"), "{row}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 unreadable entries"));
    assert!(stdout.contains(EVIL_KEY_SHOWN), "{stdout}");
    assert_clean(&stdout);
    assert!(!stdout.contains('\u{202e}'), "{stdout}");
}

#[test]
fn attach_shows_progress_and_flag_beside_a_malformed_entry() {
    if !need(&["tmux"]) {
        return;
    }
    let c = HostileController::start(Mode::BadEntry);
    let tmux = attach(&c.url());
    let screen = tmux.wait_for(
        "50 %, the flag and the bad entries",
        Duration::from_secs(15),
        |s| {
            let shown = gauge_percent(s) == Some(50)
                && s.contains("app.crashed SET")
                && s.contains("4 entries unreadable");
            shown.then(|| s.to_string())
        },
    );
    assert!(screen.contains("unreadable: invalid"), "{screen}");
    assert!(screen.contains("4 entries unreadable"), "{screen}");
    // Escaped (the column may cut its end).
    assert!(screen.contains(&EVIL_KEY_SHOWN[..20]), "{screen}");
    assert!(!screen.contains("UNREACHABLE"), "{screen}");
    assert_q_quits(&tmux);
}

#[test]
fn attach_shows_a_progress_of_fifty_as_unreadable_not_zero() {
    if !need(&["tmux"]) {
        return;
    }
    let c = HostileController::start(Mode::WordProgress);
    let tmux = attach(&c.url());
    let screen = tmux.wait_for("the unreadable progress", Duration::from_secs(15), |s| {
        s.contains("progress unreadable: \"fifty\" is not a whole number")
            .then(|| s.to_string())
    });
    assert!(!screen.contains("0% ·"), "{screen}");
    assert!(!screen.contains("TORN"), "{screen}");
    assert!(screen.contains("app.crashed SET"), "{screen}");
    assert_q_quits(&tmux);
}

#[tokio::test]
async fn malformed_events_are_skipped_and_counted_not_reconnected_for() {
    let c = HostileController::start(Mode::BadEvent);
    let dm = DistributedMemory::create(NS, &c.url()).unwrap();
    let mut feed = dm.subscribe(stream_only());
    let events = events_for(&mut feed, Duration::from_secs(3)).await;
    assert_eq!(c.stream_requests(), 1, "one connection, kept");
    let trouble = last_trouble(&events).expect("skipped events reported");
    assert!(trouble.skipped >= 10, "{trouble:?}");
    assert!(
        trouble
            .last
            .as_deref()
            .is_some_and(|l| l.contains("not JSON")),
        "{trouble:?}"
    );
    // Counts are told at most once a second, not once per bad event.
    let reports = events
        .iter()
        .filter(|e| matches!(e, WatchEvent::Trouble(_)))
        .count();
    assert!(reports <= 5, "{reports} reports in 3 s");
    assert!(!events
        .iter()
        .any(|e| matches!(e, WatchEvent::Status(plumdash::kv::FeedStatus::Down { .. }))));
}

/// A change numbered 18446744073709551615 would make every later change look
/// stale for good: after three in a row below it, the stream is read again
/// from a fresh snapshot, and the later writes arrive.
#[tokio::test]
async fn change_numbers_that_go_backwards_get_a_fresh_snapshot_not_a_frozen_feed() {
    let c = HostileController::start(Mode::BigId);
    let dm = DistributedMemory::create(NS, &c.url()).unwrap();
    let mut feed = dm.subscribe(stream_only());
    let events = events_for(&mut feed, Duration::from_secs(4)).await;
    assert!(c.stream_requests() >= 2, "read again: {events:?}");
    let last_progress = events.iter().rev().find_map(|e| match e {
        WatchEvent::Put(entry) if entry.key == "task.progress" => Some(entry.value.clone()),
        _ => None,
    });
    assert_eq!(last_progress.as_deref(), Some("90"), "{events:?}");
    assert!(
        events.iter().any(|e| matches!(e, WatchEvent::Trouble(t)
            if t.broken.as_deref().is_some_and(|b| b.contains("went backwards")))),
        "told as the controller's fault: {events:?}"
    );
}

/// Task keys that do not read (numbers, not strings) are told before the
/// snapshot that lacks them, over the stream and over polling: the consumer
/// never sees a checkpoint without its progress and counter and takes it
/// for a torn one.
#[tokio::test]
async fn unreadable_task_keys_are_told_before_the_snapshot_that_lacks_them() {
    let c = HostileController::start(Mode::NumberTask);
    let dm = DistributedMemory::create(NS, &c.url()).unwrap();
    for options in [
        stream_only(),
        WatchOptions {
            mode: FeedMode::Polling(Duration::from_millis(200)),
            ..WatchOptions::default()
        },
    ] {
        let mut feed = dm.subscribe(options);
        let events = events_for(&mut feed, Duration::from_secs(1)).await;
        let snapshot = events
            .iter()
            .position(|e| matches!(e, WatchEvent::Snapshot(_)))
            .expect("a snapshot");
        let told = events[..snapshot].iter().any(|e| {
            matches!(e, WatchEvent::Trouble(t)
                if t.unreadable.iter().any(|u| u.key.as_deref() == Some("task.progress")))
        });
        assert!(told, "unreadable keys first: {events:?}");
    }
}

/// A stream that trickles bytes but never completes a line is not live:
/// after `line_patience` it is ended as the controller's fault and tried
/// again, never taken for a quiet namespace.
#[tokio::test]
async fn a_stream_of_bytes_without_a_line_is_ended_as_misbehaving() {
    let c = HostileController::start(Mode::Trickle);
    let dm = DistributedMemory::create(NS, &c.url()).unwrap();
    let mut feed = dm.subscribe(WatchOptions {
        line_patience: Duration::from_secs(1),
        ..stream_only()
    });
    let events = events_for(&mut feed, Duration::from_secs(3)).await;
    assert!(c.stream_requests() >= 2, "tried again: {events:?}");
    assert!(
        events.iter().any(|e| matches!(e, WatchEvent::Trouble(t)
            if t.broken.as_deref().is_some_and(|b| b.contains("no complete line")))),
        "told as the controller's fault: {events:?}"
    );
}

#[test]
fn attach_tells_a_misbehaving_controller_from_an_unreachable_one() {
    if !need(&["tmux"]) {
        return;
    }
    let c = HostileController::start(Mode::BadEvent);
    let tmux = attach(&c.url());
    let screen = tmux.wait_for(
        "50 % and the malformed-data line",
        Duration::from_secs(15),
        |s| {
            let shown =
                gauge_percent(s) == Some(50) && s.contains("controller sends malformed data");
            shown.then(|| s.to_string())
        },
    );
    assert!(
        screen.contains("skipped — a kv event that is not JSON"),
        "{screen}"
    );
    assert!(!screen.contains("UNREACHABLE"), "{screen}");
    assert_q_quits(&tmux);
    assert_eq!(c.stream_requests(), 1, "no reconnect loop");
}

#[tokio::test]
async fn an_endless_line_ends_the_connection_at_the_cap_with_a_reason() {
    let c = HostileController::start(Mode::EndlessLine);
    let dm = DistributedMemory::create(NS, &c.url()).unwrap();
    let mut feed = dm.subscribe(WatchOptions {
        max_line: 1 << 20,
        ..stream_only()
    });
    let events = events_for(&mut feed, Duration::from_secs(3)).await;
    let trouble = last_trouble(&events).expect("the broken stream is reported");
    let broken = trouble.broken.as_deref().expect("a reason");
    assert_eq!(
        broken,
        "change stream: a line longer than 1 MiB without an end"
    );
    // Retried with backoff (200 ms, 400 ms, 800 ms, …), not in a loop.
    let tries = c.stream_requests();
    assert!((2..=6).contains(&tries), "{tries} connections in 3 s");
}

#[test]
fn attach_says_the_controller_misbehaves_on_an_endless_line() {
    if !need(&["tmux"]) {
        return;
    }
    let c = HostileController::start(Mode::EndlessLine);
    let tmux = attach(&c.url());
    let screen = tmux.wait_for("the misbehaving line", Duration::from_secs(20), |s| {
        s.contains("CONTROLLER MISBEHAVING").then(|| s.to_string())
    });
    assert!(screen.contains("a line longer than 64 MiB"), "{screen}");
    assert!(!screen.contains("UNREACHABLE"), "{screen}");
    assert_q_quits(&tmux);
}

#[tokio::test]
async fn a_huge_snapshot_on_one_unframed_line_arrives_whole() {
    let keys = 60_000;
    let c = HostileController::start(Mode::HugeUnframed(keys));
    let dm = DistributedMemory::create(NS, &c.url()).unwrap();
    let mut feed = dm.subscribe(stream_only());
    let started = Instant::now();
    let entries = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Some(WatchEvent::Snapshot(entries)) = feed.recv().await {
                return entries;
            }
        }
    })
    .await
    .expect("the snapshot in time");
    assert_eq!(entries.len(), keys);
    eprintln!("{keys}-key unframed snapshot in {:?}", started.elapsed());
}

#[test]
fn attach_to_a_controller_that_never_answers_says_so_and_quits_on_q() {
    if !need(&["tmux"]) {
        return;
    }
    let c = HostileController::start(Mode::Hang);
    let tmux = attach(&c.url());
    let started = Instant::now();
    let url = c.url();
    tmux.wait_for("the first frame", Duration::from_secs(5), |s| {
        s.contains(&format!("connecting to {url}…")).then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "first frame after {:?}",
        started.elapsed()
    );
    tmux.wait_for("the wait counted", Duration::from_secs(5), |s| {
        s.contains("… 2 s").then_some(())
    });
    assert_q_quits(&tmux);
}

#[tokio::test]
async fn writes_are_not_redirected_and_reads_not_to_another_origin() {
    let c = HostileController::start(Mode::Redirect);
    let dm = DistributedMemory::create(NS, &c.url()).unwrap();
    let err = dm.put("k", "v").await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, KvError::Rejected { status: 307, .. }),
        "{text}"
    );
    assert!(
        text.contains(&c.url()) && text.contains("http://127.0.0.2:9/v1/kv/hx/k"),
        "{text}"
    );
    let err = dm.get_all().await.unwrap_err().to_string();
    assert!(
        err.contains(&c.url()) && err.contains("127.0.0.2:9") && err.contains("another origin"),
        "{err}"
    );
    let out = kv(&c.url(), &["ls"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("another origin"), "{stderr}");
}

/// A controller that answers every request with an error page (a proxy in
/// front of a dead one) does not end `attach` at its first read: the
/// dashboard comes up, says what the controller answered (an error, not an
/// unreachable controller), and keeps trying;
/// the namespace is "not read yet", not empty.
#[test]
fn attach_stays_up_and_says_so_when_the_first_read_fails() {
    if !need(&["tmux"]) {
        return;
    }
    let c = HostileController::start(Mode::HtmlError);
    let tmux = attach(&c.url());
    tmux.wait_for(
        "the dashboard with the error",
        Duration::from_secs(15),
        |s| (s.contains("502") && s.contains("not read yet")).then_some(()),
    );
    let screen = tmux.screen();
    assert!(!screen.contains("ATTACH-EXITED"), "{screen}");
    assert!(!screen.contains("(0 keys)"), "{screen}");
    // It answered: an error, not an unreachable controller.
    assert!(screen.contains("CONTROLLER ERROR:"), "{screen}");
    assert!(!screen.contains("UNREACHABLE"), "{screen}");
    assert_q_quits(&tmux);
}

/// `kv get` of a key whose answer is JSON but not an entry (a `null` value
/// and type) names the field that does not read, not "bad JSON"; a good key
/// of the same controller reads.
#[test]
fn a_key_that_does_not_read_is_named_with_why() {
    let c = HostileController::start(Mode::BadEntry);
    let out = kv(&c.url(), &["get", "bad.null"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("\"bad.null\" does not read as an entry"),
        "{err}"
    );
    assert!(!err.contains("bad JSON"), "{err}");
    let out = kv(&c.url(), &["get", "task.progress"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "50");
}

/// Bytes that are not HTTP (a TLS port given by mistake) are an answer, not
/// an outage: said so in one line, for a read and for a write.
#[test]
fn an_answer_that_is_not_http_is_not_called_unreachable() {
    let c = HostileController::start(Mode::NotHttp);
    for args in [&["ls"][..], &["put", "k", "v"][..]] {
        let out = kv(&c.url(), args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("an answer that is not HTTP"), "{err}");
        assert!(!err.contains("unreachable"), "{err}");
    }
}

#[test]
fn an_html_error_page_is_one_short_line() {
    let c = HostileController::start(Mode::HtmlError);
    for args in [&["ls"][..], &["put", "k", "v"][..]] {
        let out = kv(&c.url(), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        let line = stderr.trim();
        assert_eq!(line.lines().count(), 1, "{stderr}");
        assert!(
            line.contains("(502)") && line.contains("502 Bad Gateway"),
            "{line}"
        );
        assert!(line.chars().count() < 160, "{} chars: {line}", line.len());
        assert_clean(line);
    }
    // verify against it: refused up front, in one line.
    let out = crate::support::plumdash()
        .args([
            "verify",
            "--controller",
            &c.url(),
            "--app",
            NS,
            "--cycles",
            "1",
        ])
        .env_remove("PLUM_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("502 Bad Gateway"), "{stderr}");
    assert_clean(&stderr);
}
