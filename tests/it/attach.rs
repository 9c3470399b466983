//! Attach mode: a kv-demo started by someone else is found, followed and
//! signalled only through an identity re-check; a missing namespace is waited for.

use crate::support::{self, TestController};
use nix::sys::signal::Signal;
use plumdash::kv::NamespaceBy;
use plumdash::recovery::{Fact, ProcessExit};
use plumdash::session::{Session, SessionConfig};
use plumdash::supervisor::InstanceAction;
use std::process::Stdio;
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
    let mut worker = support::kv_demo(&c.url(), &app, "100")
        .env("PLUM_INSTANCE_ID", "kv-demo-007")
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
    let err = session
        .act(&instance, InstanceAction::Stop)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only signals"), "{err}");

    session
        .act(&instance, InstanceAction::Signal(Signal::SIGKILL))
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
        .act(&instance, InstanceAction::Signal(Signal::SIGKILL))
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
    support::attach_waits_for_the_missing_namespace(c.url()).await;
}

/// `attach --namespace-by instance`: workers keeping their tasks in their own
/// namespaces (`PLUM_INSTANCE_ID`) are each watched as found, their namespace
/// read before they are told as found, and a kill of one is judged in its
/// namespace alone.
#[tokio::test(flavor = "multi_thread")]
async fn attach_per_instance_reads_each_found_workers_own_namespace_first() {
    let c = TestController::start().await;
    let app = format!("own-{}", std::process::id());
    let ids = [format!("{app}-a"), format!("{app}-b")];
    let mut workers: Vec<_> = ids
        .iter()
        .map(|id| {
            support::kv_demo(&c.url(), &app, "100")
                .env("PLUM_INSTANCE_ID", id)
                .env("KV_DEMO_NAMESPACE_BY", "instance")
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for id in &ids {
        support::wait_for_progress(id, &c.url(), 20).await;
    }
    let mut session = Session::attach(SessionConfig {
        remote_controller: Some(c.url()),
        app: app.clone(),
        namespace_by: plumdash::kv::NamespaceBy::Instance,
        instances: 0,
        ..SessionConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(
        session.namespace_wait(),
        None,
        "no app namespace is waited for"
    );
    let mut board = plumdash::recovery::Board::new(&app, plumdash::kv::NamespaceBy::Instance);
    let mut read_first = std::collections::BTreeSet::new();
    let mut found = std::collections::BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while found.len() < 2 {
            let o = session.next_observed().await.expect("session ended");
            if let (Some(ns), Fact::Snapshot(_)) = (&o.namespace, &o.fact) {
                read_first.insert(ns.clone());
            }
            if let Fact::Attached { instance, .. } = &o.fact {
                assert!(
                    read_first.contains(instance),
                    "{instance} told before its namespace"
                );
                found.insert(instance.clone());
            }
            board.apply(o.at, o.namespace.as_deref(), o.fact);
        }
    })
    .await
    .expect("both workers found");
    for id in &ids {
        let tracker = board.tracker_of(id);
        assert!(
            tracker.task().progress.unwrap_or(0) >= 20,
            "{id}'s own task"
        );
        assert_eq!(
            tracker.instances().count(),
            1,
            "{id}'s namespace judges only it"
        );
    }

    session
        .act(&ids[1], InstanceAction::Signal(Signal::SIGKILL))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let o = session.next_observed().await.expect("session ended");
            let gone = matches!(&o.fact, Fact::Exited { instance, .. } if *instance == ids[1]);
            board.apply(o.at, o.namespace.as_deref(), o.fact);
            if gone {
                break;
            }
        }
    })
    .await
    .expect("the kill seen");
    let phase = |id: &String| board.tracker_of(id).instance(id).map(|i| i.phase.clone());
    assert_eq!(phase(&ids[1]), Some(plumdash::recovery::Phase::Crashed));
    assert_eq!(phase(&ids[0]), Some(plumdash::recovery::Phase::Running));
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    session
        .shutdown(plumdash::session::WorkerExit::LeaveRunning)
        .await
        .unwrap();
}

/// A session of `app` with its own controller in `dir`, its workers (none
/// yet) sleepers.
fn own_sleepers(dir: &tempfile::TempDir, app: &str, by: NamespaceBy) -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: dir.path().join("kv.db"),
        app: app.into(),
        namespace_by: by,
        instances: 0,
        cmd: Some("sleep 600".into()),
        stop_grace: Duration::from_millis(200),
        ..SessionConfig::default()
    }
}

/// With its own controller, the dashboard reads it through a loopback port
/// of its own (served apart from the workers' requests); the workers are
/// given the other. Both serve the same store.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_reads_its_own_controller_through_a_port_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::start(own_sleepers(&dir, "ports", NamespaceBy::App))
        .await
        .unwrap();
    let workers = session.controller_url().to_string();
    let own = session.client().base_url().to_string();
    assert_ne!(workers, own, "two ports");
    assert!(own.starts_with("http://127.0.0.1:"), "{own}");
    session.client().put("written.here", "1").await.unwrap();
    let theirs =
        plumdash::kv::DistributedMemory::with_options("ports", &workers, Default::default())
            .unwrap();
    assert_eq!(
        theirs.get("written.here").await.unwrap().as_deref(),
        Some("1"),
        "the workers' port serves the same store"
    );
    session
        .shutdown(plumdash::session::WorkerExit::StopGracefully)
        .await
        .unwrap();
}

/// Own namespaces share one feed, but a session still watches at most
/// `MAX_FEEDS`, and an instance beyond them is refused, not started blind.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_watches_at_most_max_feeds_own_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = Session::start(own_sleepers(&dir, "many", NamespaceBy::Instance))
        .await
        .unwrap();
    for _ in 0..plumdash::session::MAX_FEEDS {
        session.new_instance().await.unwrap();
    }
    let err = session.new_instance().await.unwrap_err();
    assert!(
        format!("{err:#}").contains(&format!(
            "{} are watched already",
            plumdash::session::MAX_FEEDS
        )),
        "{err:#}"
    );
    assert_eq!(
        session.instances().len(),
        plumdash::session::MAX_FEEDS,
        "the refused one was not left behind"
    );
    session
        .shutdown(plumdash::session::WorkerExit::StopGracefully)
        .await
        .unwrap();
}

/// `n` in a shared namespace where one of ours runs adds an instance without
/// starting it (two writers of one task race), and names the one running;
/// with none running, it starts one.
#[tokio::test(flavor = "multi_thread")]
async fn n_beside_a_running_instance_of_a_shared_namespace_adds_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = Session::start(own_sleepers(&dir, "beside", NamespaceBy::App))
        .await
        .unwrap();
    let first = match session.new_instance_beside().await.unwrap() {
        plumdash::session::NewInstance::Started(id) => id,
        other => panic!("nothing ran yet, so it starts: {other:?}"),
    };
    match session.new_instance_beside().await.unwrap() {
        plumdash::session::NewInstance::Added { instance, beside } => {
            assert_eq!(beside, first);
            let added = session
                .instances()
                .into_iter()
                .find(|s| s.id == instance)
                .unwrap();
            assert_eq!(added.pid, None, "added, not started");
        }
        other => panic!("{first} runs: {other:?}"),
    }
    session
        .shutdown(plumdash::session::WorkerExit::StopGracefully)
        .await
        .unwrap();
}
