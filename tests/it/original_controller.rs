//! plumdash against a stand-in of the original Plum controller (`support/original.rs`):
//! its `null` lists are empty, its text/plain errors are errors, its 400 on
//! `/v1/stream` means polling, its bytes-as-length listing is worked around, and
//! `attach` waits for a namespace that does not exist yet.

use crate::support::original::OriginalController;
use crate::support::{self, plum_agent::PlumInstance};
use plumdash::kv::{DistributedMemory, FeedStatus, KvError, WatchEvent, WatchOptions};
use plumdash::session::{Session, SessionConfig};
use std::time::Duration;

#[tokio::test]
async fn null_lists_read_as_empty() {
    let c = OriginalController::start();
    let dm = DistributedMemory::create("kv-demo", &c.url()).unwrap();
    assert_eq!(dm.namespaces().await.unwrap(), Vec::<String>::new());
    assert!(dm.get_all().await.unwrap().is_empty());
    dm.put("k", "v").await.unwrap();
    assert_eq!(dm.namespaces().await.unwrap(), vec!["kv-demo".to_string()]);

    // The CLI too: `kv ls --namespaces` on an empty controller is an empty answer.
    let empty = OriginalController::start();
    for args in [&["ls", "--namespaces"][..], &["ls"][..]] {
        let out = support::plumdash()
            .arg("kv")
            .args(args)
            .args(["--controller", &empty.url(), "--json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "kv {args:?}: {stderr}");
        assert!(!stderr.contains("bad JSON"), "{stderr}");
    }
}

#[tokio::test]
async fn text_plain_errors_are_read_as_errors() {
    let c = OriginalController::start();
    let dm = DistributedMemory::create("kv-demo", &c.url()).unwrap();
    // The original routes `batch` before keys: a PUT there is refused, in plain text.
    match dm.put("batch", "v").await {
        Err(KvError::Rejected { status, reason }) => {
            assert_eq!(status, 405);
            assert_eq!(reason, "Method Not Allowed");
        }
        other => panic!("expected a plain-text rejection, got {other:?}"),
    }
    assert_eq!(dm.get("absent").await.unwrap(), None, "404 is absence");
}

async fn next(feed: &mut plumdash::kv::Watcher) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(5), feed.recv())
        .await
        .expect("a feed event in time")
        .expect("the feed runs")
}

#[tokio::test]
async fn the_feed_polls_when_the_stream_answers_400() {
    let c = OriginalController::start();
    let dm = DistributedMemory::create("kv-demo", &c.url()).unwrap();
    let mut feed = dm.subscribe(WatchOptions {
        poll_interval: Duration::from_millis(50),
        ..WatchOptions::default()
    });
    assert_eq!(
        next(&mut feed).await,
        WatchEvent::Status(FeedStatus::Polling(Duration::from_millis(50)))
    );
    assert_eq!(next(&mut feed).await, WatchEvent::Snapshot(vec![]));
    dm.put_int("task.progress", 30).await.unwrap();
    match next(&mut feed).await {
        WatchEvent::Put(e) => {
            assert_eq!((e.key.as_str(), e.value.as_str()), ("task.progress", "30"))
        }
        other => panic!("expected the write, got {other:?}"),
    }
}

#[tokio::test]
async fn bytes_listed_as_their_length_are_fetched_whole() {
    let c = OriginalController::start();
    let dm = DistributedMemory::create("kv-demo", &c.url()).unwrap();
    let data: Vec<u8> = (0..48).collect();
    dm.put_bytes("binary.checkpoint", &data).await.unwrap();
    let all = dm.get_all().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].bytes(), Some(data));
}

#[tokio::test]
async fn attach_waits_for_a_namespace_that_does_not_exist_yet() {
    let c = OriginalController::start();
    support::attach_waits_for_the_missing_namespace(c.url()).await;
}

/// `plumdash verify --controller` against the stand-in, with the bundled worker:
/// exit code, verdict line and report.
fn verify_against_the_original(step: &str, app: &str) -> (i32, String) {
    let server = OriginalController::start();
    let out = support::plumdash()
        .args(["verify", "--controller", &server.url(), "--step", step])
        .args(["--cycles", "1", "--app", app])
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn passes_over_polling(step: &str) {
    let app = format!("verify-{}-{step}", std::process::id());
    let (code, text) = verify_against_the_original(step, &app);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("verify: PASS"), "{text}");
    // Its resolution is stated: the original controller can only be polled.
    assert!(
        text.contains("observed: polled every")
            && text.contains("shorter states are not observable"),
        "{text}"
    );
    assert!(
        text.contains("ok   4."),
        "the graceful stop was judged: {text}"
    );
    assert!(
        text.contains("ok   5."),
        "the completions were seen: {text}"
    );
}

#[test]
fn verify_passes_against_the_original_controller_at_1s_steps() {
    passes_over_polling("1s");
}

#[test]
fn verify_passes_against_the_original_controller_at_2s_steps() {
    passes_over_polling("2s");
}

/// Steps far shorter than a poll can follow: whatever the verdict, the exit code
/// says the same.
#[test]
fn verify_exit_code_agrees_with_its_verdict_over_polling_at_50ms_steps() {
    let app = format!("verify-{}-fast", std::process::id());
    let (code, text) = verify_against_the_original("50ms", &app);
    let pass = text.contains("verify: PASS");
    let fail = text.contains("verify: FAIL");
    assert!(pass != fail, "one verdict: {text}");
    assert_eq!(code, if pass { 0 } else { 1 }, "{text}");
}

/// `up` beside an instance run by Plum's agent refuses to be a second writer and
/// names the worker, not its `sh`, `bash` and `tee`.
#[test]
fn up_beside_an_agent_run_instance_names_only_its_worker() {
    let server = OriginalController::start();
    let app = format!("second-{}", std::process::id());
    let inst = PlumInstance::new(&app, "d5-5555555", &server.url(), "300", true);
    let worker = inst.start();
    let out = support::plumdash()
        .args([
            "up",
            "--headless",
            "--controller",
            &server.url(),
            "--app",
            &app,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("1 worker(s) of app {app:?} already write")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {worker} (kv-demo)")),
        "{stderr}"
    );
}

/// `attach --namespace-by instance` against the original: no stream (each own
/// namespace is polled), no write times. A worker found in its own namespace
/// is judged there, and its kill is read afresh from that namespace.
#[tokio::test(flavor = "multi_thread")]
async fn attach_per_instance_polls_each_own_namespace_of_the_original() {
    use plumdash::recovery::{Board, Fact, Phase, ProcessExit};
    let c = OriginalController::start();
    let app = format!("orig-own-{}", std::process::id());
    let id = format!("{app}-a");
    let mut worker = support::kv_demo(&c.url(), &app, "150")
        .env("PLUM_INSTANCE_ID", &id)
        .env("KV_DEMO_NAMESPACE_BY", "instance")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    support::wait_for_progress(&id, &c.url(), 20).await;
    let mut session = Session::attach(SessionConfig {
        remote_controller: Some(c.url()),
        app: app.clone(),
        namespace_by: plumdash::kv::NamespaceBy::Instance,
        instances: 0,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    let mut board = Board::new(&app, plumdash::kv::NamespaceBy::Instance);
    let mut read_first = false;
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let o = session.next_observed().await.expect("session ended");
            if o.namespace.as_deref() == Some(id.as_str()) && matches!(o.fact, Fact::Snapshot(_)) {
                read_first = true;
            }
            let found = matches!(&o.fact, Fact::Attached { instance, .. } if *instance == id);
            board.apply(o.at, o.namespace.as_deref(), o.fact);
            if found {
                break;
            }
        }
    })
    .await
    .expect("the worker found");
    assert!(
        read_first,
        "its namespace was read before it was told as found"
    );
    assert!(board.tracker_of(&id).task().progress.unwrap_or(0) >= 20);
    session
        .act(
            &id,
            plumdash::supervisor::InstanceAction::Signal(nix::sys::signal::Signal::SIGKILL),
        )
        .await
        .unwrap();
    let _ = worker.wait();
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let o = session.next_observed().await.expect("session ended");
            let gone = matches!(
                &o.fact,
                Fact::Exited {
                    exit: ProcessExit::Unknown,
                    ..
                }
            );
            board.apply(o.at, o.namespace.as_deref(), o.fact);
            if gone {
                break;
            }
        }
    })
    .await
    .expect("the kill seen");
    let inst = board.tracker_of(&id).instance(&id).cloned();
    assert_eq!(
        inst.map(|i| i.phase),
        Some(Phase::Crashed),
        "flag still set in its namespace"
    );
    session
        .shutdown(plumdash::session::WorkerExit::LeaveRunning)
        .await
        .unwrap();
}
