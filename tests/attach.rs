//! Attach mode: a kv-demo started by someone else is found, followed and
//! signalled only through an identity re-check; a missing namespace is waited for.

mod common;

use common::TestController;
use nix::sys::signal::Signal;
use plumdash::recovery::{Fact, ProcessExit};
use plumdash::session::{Session, SessionConfig};
use plumdash::supervisor::Action;
use std::process::{Command, Stdio};
use std::time::Duration;

async fn next_matching(session: &mut Session, mut pick: impl FnMut(&Fact) -> bool) -> Fact {
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let (_, fact) = session.next_fact().await.expect("session ended");
            if pick(&fact) {
                return fact;
            }
        }
    })
    .await
    .expect("no matching fact")
}

#[tokio::test(flavor = "multi_thread")]
async fn attach_finds_an_outside_worker_and_signals_it_safely() {
    let c = TestController::start().await;
    let app = format!("attach-{}", std::process::id());
    let mut worker = Command::new(env!("CARGO_BIN_EXE_kv-demo"))
        .env("PLUM_APP_NAME", &app)
        .env("PLUM_INSTANCE_ID", "kv-demo-007")
        .env("CONTROLLER_BASE", c.url())
        .env("KV_DEMO_STEP_MS", "100")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = worker.id();
    // Its namespace exists once it has written its flag.
    let dm = plumdash::kv::DistributedMemory::create(&app, &c.url()).unwrap();
    for _ in 0..200 {
        if dm.exists("app.crashed").await.unwrap() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut session = Session::attach(SessionConfig {
        remote_controller: Some(c.url()),
        app: app.clone(),
        instances: 0,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    assert!(session.is_attached());
    // Running before attach began: found, its start not seen.
    let started = next_matching(
        &mut session,
        |f| matches!(f, Fact::Attached { pid: p, .. } if *p == pid),
    )
    .await;
    let Fact::Attached { instance, .. } = started else {
        unreachable!()
    };
    assert_eq!(session.instances().len(), 1);

    // Only signals: its own agent starts and stops it.
    let err = session.act(&instance, Action::Stop).await.unwrap_err();
    assert!(err.to_string().contains("only signals"), "{err}");

    session
        .act(&instance, Action::Signal(Signal::SIGKILL))
        .await
        .unwrap();
    let status = worker.wait().unwrap();
    assert!(!status.success());
    // Its exit status is not ours to read; the namespace is read fresh first. The
    // facts are asked for with tiny timeouts, as a busy `select!` drops the future
    // mid-way: nothing may be lost for it (the fresh read is simply redone).
    let mut snapshot_first = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        assert!(std::time::Instant::now() < deadline, "no exit seen");
        let Ok(next) = tokio::time::timeout(Duration::from_micros(300), session.next_fact()).await
        else {
            continue;
        };
        let (_, fact) = next.expect("session ended");
        if matches!(fact, Fact::Snapshot(_)) {
            snapshot_first = true;
        }
        if matches!(
            fact,
            Fact::Exited {
                exit: ProcessExit::Unknown,
                ..
            }
        ) {
            break;
        }
    }
    assert!(snapshot_first, "a fresh read precedes the exit");
    // The pid is gone: a second signal is refused rather than sent blindly.
    assert!(session
        .act(&instance, Action::Signal(Signal::SIGKILL))
        .await
        .is_err());
    session
        .shutdown(plumdash::session::WorkerExit::StopGracefully)
        .await
        .unwrap();
}

#[tokio::test]
async fn attach_to_a_missing_namespace_waits_and_names_the_ones_that_exist() {
    let c = TestController::start().await;
    let dm = plumdash::kv::DistributedMemory::create("present", &c.url()).unwrap();
    dm.put("k", "v").await.unwrap();
    let session = Session::attach(SessionConfig {
        remote_controller: Some(c.url()),
        app: "absent".into(),
        instances: 0,
        ..SessionConfig::default()
    })
    .await
    .expect("waits instead of failing");
    assert_eq!(session.namespace_wait(), Some(&["present".to_string()][..]));
    session
        .shutdown(plumdash::session::WorkerExit::LeaveRunning)
        .await
        .unwrap();
}
