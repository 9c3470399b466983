//! `plumdash agent` as real node processes against a real controller process:
//! a deployment on nodeA runs there, nodeA's whole process group is SIGKILLed
//! (a machine dying), and the controller's failover moves the instance to
//! nodeB under a new instance id, where it resumes from the checkpoint.

use crate::support;
use crate::support::process::{is_dead, pids_of_instance};
use crate::support::{http, ControllerProcess, Up};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use plumdash::kv::DistributedMemory;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const APP: &str = "agent-failover";

/// One `plumdash agent`, leader of its own process group (its machine).
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn spawn(node: &str, controller: &str, dir: &Path) -> Agent {
        let log = dir.join(format!("{node}.log"));
        let child = support::plumdash()
            .args(["agent", "--node", node, "--controller", controller])
            .arg("--data-dir")
            .arg(dir.join("agents"))
            .args(["--stop-grace", "1s"])
            .env("KV_DEMO_STEP_MS", "300")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .process_group(0)
            .spawn()
            .expect("spawn agent");
        Agent { child, log }
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The whole machine at once: the agent and everything in its group.
    fn kill_machine(&mut self) {
        killpg(self.pgid(), Signal::SIGKILL).expect("killpg");
        self.child.wait().expect("reap agent");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SIGTERM: the agent stops its workers; then make sure.
        let _ = nix::sys::signal::kill(self.pgid(), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(self.pgid(), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

async fn progress(kv: &DistributedMemory) -> Option<i64> {
    kv.get_int("task.progress").await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_nodes_instance_resumes_on_the_other_node_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let base = controller.url();
    let mut node_a = Agent::spawn("nodeA", &base, dir.path());
    let node_b = Agent::spawn("nodeB", &base, dir.path());
    let logs = |a: &Agent, b: &Agent| format!("nodeA:\n{}\nnodeB:\n{}", a.log(), b.log());

    // Both nodes beat before the deployment exists, so nodeB is a healthy target.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nodes: Vec<Value> = http()
            .get(format!("{base}/v1/nodes"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if nodes.iter().filter(|n| n["health"] == "Healthy").count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "nodes never beat: {nodes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let created = support::deploy(
        &base,
        json!({
            "name": "failover",
            "entries": [{"artifactUrl": "", "startCmd": "", "appName": APP,
                         "replicas": {"nodeA": 1}}]
        }),
    )
    .await;
    let dep = created["deploymentId"].as_str().unwrap().to_string();

    let kv = DistributedMemory::create(APP, &base).unwrap();
    // Running on nodeA, as reported by its agent, and writing progress.
    let deadline = Instant::now() + Duration::from_secs(10);
    let old_id = loop {
        let items = support::assignments(&base, "nodeA").await;
        if let Some(item) = items.iter().find(|i| i["phase"] == "Running") {
            if progress(&kv).await.unwrap_or(0) >= 30 {
                break item["instanceId"].as_str().unwrap().to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "nodeA never ran it to 30%: {items:?}\n{}",
            logs(&node_a, &node_b)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(pids_of_instance(&old_id).len(), 1, "one worker on nodeA");

    node_a.kill_machine();
    let killed_at = Instant::now();
    let at_kill = progress(&kv).await.unwrap();
    assert!(at_kill < 100, "killed too late: {at_kill}%");

    // The orphan guard takes nodeA's worker down with it: nothing of the old
    // instance keeps writing the namespace.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !pids_of_instance(&old_id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "nodeA's worker outlived its agent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Within the TTL (3 s, whole seconds) + the pass interval + a start: a new
    // instance id Running on nodeB; progress never below the kill point.
    let mut samples = Vec::new();
    let deadline = killed_at + Duration::from_secs(8);
    let new_id = loop {
        if let Some(p) = progress(&kv).await {
            samples.push(p);
        }
        let items = support::assignments(&base, "nodeB").await;
        if let Some(item) = items.iter().find(|i| i["phase"] == "Running") {
            break item["instanceId"].as_str().unwrap().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no instance running on nodeB {:?} after the kill: {items:?}\n{}",
            killed_at.elapsed(),
            logs(&node_a, &node_b)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(new_id, old_id, "a migration is a new instance id");
    // nodeB's worker knows where it runs.
    if let Some(pid) = pids_of_instance(&new_id).first() {
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        assert!(
            env.split(|b| *b == 0)
                .any(|kv| kv == b"WORKER_NODE_ID=nodeB"),
            "{}",
            String::from_utf8_lossy(&env)
        );
    }
    assert!(new_id.starts_with(&dep), "{new_id} of deployment {dep}");
    let old_row = support::assignments(&base, "nodeA").await;
    assert_eq!(old_row.len(), 1);
    assert_eq!(old_row[0]["instanceId"], old_id.as_str());
    assert_eq!(old_row[0]["desired"], "Stopped", "the old row is parked");

    // Resumed from the checkpoint: up to 100 without ever going back.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let p = progress(&kv).await.unwrap_or(-1);
        samples.push(p);
        if p == 100 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never reached 100: {samples:?}\n{}",
            logs(&node_a, &node_b)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        samples.iter().all(|p| *p >= at_kill),
        "progress went below the kill point {at_kill}%: {samples:?}"
    );
    assert!(
        samples.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {samples:?}"
    );
    // The completion is written after the 100% checkpoint, not with it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while kv.get("task.status").await.unwrap().as_deref() != Some("completed") {
        assert!(Instant::now() < deadline, "never marked completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Done once: the finished worker is not restarted into a new task.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(progress(&kv).await, Some(100), "a second task started");
    let items = support::assignments(&base, "nodeB").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["instanceId"], new_id.as_str());
    assert_eq!(items[0]["phase"], "Exited", "{items:?}");
    assert!(pids_of_instance(&new_id).is_empty());
    // The worker itself says it recovered from the checkpoint at the kill point.
    let out = std::fs::read_to_string(dir.path().join(format!("agents/nodeB/{new_id}.log")))
        .expect("nodeB's instance log");
    let resumed = format!("从 {at_kill}% 继续执行");
    assert!(
        out.contains("检测到崩溃标记") && out.contains(&resumed),
        "no recovery from {at_kill}% in:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn desired_stopped_stops_the_worker_and_running_starts_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let base = controller.url();
    let node = Agent::spawn("nodeA", &base, dir.path());
    let created = support::deploy(
        &base,
        json!({
            "name": "stop-start",
            "entries": [{"artifactUrl": "", "startCmd": "sh -c 'exec sleep 30'",
                         "appName": "sleeper", "replicas": {"nodeA": 1}}]
        }),
    )
    .await;
    let iid = created["instances"][0].as_str().unwrap().to_string();

    let wait_phase = |want: &'static str, running: usize| {
        let (base, iid, node) = (base.clone(), iid.clone(), &node);
        async move {
            let deadline = Instant::now() + Duration::from_secs(6);
            loop {
                let items = support::assignments(&base, "nodeA").await;
                let phase = items[0]["phase"].as_str().unwrap_or("").to_string();
                if phase == want && pids_of_instance(&iid).len() == running {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "{iid} never {want} with {running} process(es): {items:?}\n{}",
                    node.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // The startCmd runs split by shell rules, with the original's env.
    wait_phase("Running", 1).await;
    let pid = pids_of_instance(&iid)[0];
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env = String::from_utf8_lossy(&env);
    for want in [
        "PLUM_APP_NAME=sleeper".to_string(),
        "WORKER_NODE_ID=nodeA".to_string(),
        format!("CONTROLLER_BASE={base}"),
        "PLUM_APP_VERSION=".to_string(),
    ] {
        assert!(
            env.split('\0').any(|kv| kv.starts_with(&want)),
            "{want} in {env}"
        );
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert!(cwd.ends_with(format!("nodeA/{iid}")), "{cwd:?}");

    // The stream wakes the agent: well under the grace + a sync.
    let stop = |desired: &'static str| {
        let (base, iid) = (base.clone(), iid.clone());
        async move {
            let s = http()
                .patch(format!("{base}/v1/assignments/{iid}"))
                .json(&json!({ "desired": desired }))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(s, 204);
        }
    };
    stop("Stopped").await;
    wait_phase("Stopped", 0).await;
    stop("Running").await;
    wait_phase("Running", 1).await;

    // A crash is seen at once: Failed, then Running again by the restart policy.
    let pid = pids_of_instance(&iid)[0];
    nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    wait_phase("Failed", 0).await;
    wait_phase("Running", 1).await;
}

/// An agent stopped normally (SIGTERM) reports what it stops, and only that:
/// a worker that had finished keeps `Exited`, so the controller does not take
/// its task for unfinished and run it again on another node.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_agent_leaves_a_finished_worker_exited() {
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let base = controller.url();
    let mut node = Agent::spawn("nodeA", &base, dir.path());
    let created = support::deploy(
        &base,
        json!({
            "name": "finishes",
            "entries": [
                {"artifactUrl": "", "startCmd": "sh -c 'exit 0'",
                 "appName": "done-at-once", "replicas": {"nodeA": 1}},
                {"artifactUrl": "", "startCmd": "sh -c 'exec sleep 30'",
                 "appName": "still-running", "replicas": {"nodeA": 1}}
            ]
        }),
    )
    .await;
    let finished = created["instances"][0].as_str().unwrap().to_string();
    let running = created["instances"][1].as_str().unwrap().to_string();
    let phases = || async {
        let items = support::assignments(&base, "nodeA").await;
        let phase = |iid: &str| {
            items
                .iter()
                .find(|a| a["instanceId"] == iid)
                .and_then(|a| a["phase"].as_str())
                .unwrap_or("")
                .to_string()
        };
        (phase(&finished), phase(&running))
    };
    let deadline = Instant::now() + Duration::from_secs(6);
    while phases().await != ("Exited".into(), "Running".into()) {
        assert!(
            Instant::now() < deadline,
            "{:?}\n{}",
            phases().await,
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nix::sys::signal::kill(Pid::from_raw(node.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = node.child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", node.log());
    assert_eq!(
        phases().await,
        ("Exited".to_string(), "Stopped".to_string()),
        "{}",
        node.log()
    );
}

/// `plumdash agent` for nodeA as the first process of a PID namespace of its
/// own (`unshare --pid --fork`, which passes on how it ended), with its log.
fn agent_as_first_process(dir: &Path, base: &str) -> (Child, PathBuf) {
    let log = dir.join("nodeA.log");
    let child =
        support::plumdash_under(&["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"])
            .args(["agent", "--node", "nodeA", "--controller", base])
            .arg("--data-dir")
            .arg(dir.join("agents"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn unshare");
    (child, log)
}

/// `K` for a node whose agent is the first process of its PID namespace (a
/// container's, `up --hosts`'): the kernel spares such a process its own
/// SIGKILL, so the agent must end by itself, and the namespace's workers with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_kill_ends_an_agent_that_is_its_namespaces_first_process() {
    if !support::need(&["unshare"]) || !nix::unistd::geteuid().is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let base = controller.url();
    let (mut agent, log) = agent_as_first_process(dir.path(), &base);
    let created = support::deploy(
        &base,
        json!({
            "name": "pid-one",
            "entries": [{"artifactUrl": "", "startCmd": "sh -c 'exec sleep 30'",
                         "appName": "sleeper", "replicas": {"nodeA": 1}}]
        }),
    )
    .await;
    let iid = created["instances"][0].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids_of_instance(&iid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "never started:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let worker = pids_of_instance(&iid)[0];
    let answer = http()
        .post(format!("{base}/v1/nodes/nodeA/action"))
        .json(&json!({ "action": "kill" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(status) = agent.try_wait().unwrap() {
            // unshare passes on how its child (the agent) ended.
            assert!(!status.success(), "{status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent outlived its node's kill:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(is_dead(worker), "worker {worker} outlived its node");
}

/// The pids whose parent is `parent`, with their state (`/proc`).
fn children_of(parent: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if rest.next().and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            out.push((pid, state));
        }
    }
    out
}

/// An agent that is its PID namespace's first process adopts every orphan
/// there (a background job whose shell ended) and reaps it: no zombies pile up.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_is_its_namespaces_first_process_reaps_orphans() {
    if !support::need(&["unshare"]) || !nix::unistd::geteuid().is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let base = controller.url();
    let (mut unshare, log) = agent_as_first_process(dir.path(), &base);
    // Each run leaves an orphan that ends at once: its shell backgrounds a
    // short sleep and ends before it.
    support::deploy(
        &base,
        json!({
            "name": "orphans",
            "entries": [{"artifactUrl": "", "startCmd": "sh -c '(sleep 0.2 &); exec sleep 30'",
                         "appName": "orphaner", "replicas": {"nodeA": 1}}]
        }),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let agent = loop {
        if let Some((pid, _)) = children_of(unshare.id()).first() {
            break *pid;
        }
        assert!(Instant::now() < deadline, "no agent under unshare");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The worker runs, its orphan has ended; give the reaper its second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while children_of(agent).is_empty() {
        assert!(
            Instant::now() < deadline,
            "nothing started:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let zombies: Vec<_> = children_of(agent)
        .into_iter()
        .filter(|(_, s)| *s == 'Z')
        .collect();
    let _ = nix::sys::signal::kill(Pid::from_raw(unshare.id() as i32), Signal::SIGKILL);
    let _ = unshare.wait();
    assert!(zombies.is_empty(), "zombies under the agent: {zombies:?}");
}

/// `up --nodes 2 --headless`: the embedded controller and two agent processes;
/// killing nodeA's group moves the work to nodeB, and Ctrl-C leaves nothing.
#[tokio::test(flavor = "multi_thread")]
async fn up_with_two_nodes_fails_over_when_node_a_dies() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Up::two_nodes(dir.path(), "up-nodes")
        .stdout(Stdio::piped())
        .spawn();
    let lines = support::read_lines(up.child.stdout.take().unwrap());
    let mut seen = Vec::new();
    let next_line = |timeout: Duration, seen: &mut Vec<String>| {
        let line = lines.recv_timeout(timeout).ok();
        seen.extend(line.clone());
        line
    };
    let banner = loop {
        let line = next_line(Duration::from_secs(15), &mut seen)
            .unwrap_or_else(|| panic!("no banner: {seen:?}"));
        if line.contains("agent pids") {
            break line;
        }
    };
    let pids: Vec<i32> = banner
        .split("agent pids ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .split(", ")
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{banner}");
    assert!(banner.contains("nodes nodeA, nodeB"), "{banner}");

    let base = up.url();
    let kv = DistributedMemory::create("up-nodes", &base).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while progress(&kv).await.unwrap_or(0) < 30 {
        assert!(Instant::now() < deadline, "no progress: {seen:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    killpg(Pid::from_raw(pids[0]), Signal::SIGKILL).unwrap();
    let at_kill = progress(&kv).await.unwrap();
    let items = support::assignments(&base, "nodeA").await;
    let old_id = items[0]["instanceId"].as_str().unwrap().to_string();

    // The headless log shows the new instance start (found on nodeB).
    let deadline = Instant::now() + Duration::from_secs(9);
    let new_id = loop {
        let line = next_line(Duration::from_millis(200), &mut seen);
        if let Some(line) = line {
            if !line.contains(&old_id) && (line.contains("started") || line.contains("found")) {
                break line.split_whitespace().nth(1).unwrap().to_string();
            }
        }
        assert!(Instant::now() < deadline, "no new instance: {seen:?}");
    };
    let on_b = support::assignments(&base, "nodeB").await;
    assert_eq!(on_b[0]["instanceId"], new_id.as_str(), "{on_b:?}");
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let p = progress(&kv).await.unwrap_or(-1);
        assert!(p >= at_kill, "{p}% is below the kill point {at_kill}%");
        if p == 100 {
            break;
        }
        assert!(Instant::now() < deadline, "never 100: {seen:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    let status = up.interrupt_and_wait();
    assert!(status.success(), "{status:?}");
    for pid in pids {
        assert!(is_dead(pid as u32), "agent {pid} outlived up");
    }
    assert!(pids_of_instance(&new_id).is_empty());
}

/// With a token the agent authenticates every call, and its workers get the
/// token to write the namespace.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_with_a_token_file_beats_syncs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let mut controller =
        ControllerProcess::command(&format!("127.0.0.1:{port}"), &support::db_in(&dir));
    controller.arg("--token-file").arg(&token_file);
    let _controller = ControllerProcess::start(controller, port);
    let log = dir.path().join("agent.log");
    let mut agent = support::plumdash()
        .args(["agent", "--node", "nodeT", "--controller", &base])
        .arg("--data-dir")
        .arg(dir.path().join("agents"))
        .arg("--token-file")
        .arg(&token_file)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let authed = |req: reqwest::RequestBuilder| req.bearer_auth("s3cret");
    // Without the token the cluster API is closed, so the agent's calls carry it.
    for path in ["/v1/nodes", "/v1/assignments?nodeId=nodeT"] {
        let s = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(s.status(), 401, "{path}");
    }
    let created: Value = authed(http().post(format!("{base}/v1/deployments")))
        .json(&json!({
            "name": "token",
            "entries": [{"startCmd": "sh -c 'exec sleep 30'", "replicas": {"nodeT": 1}}]
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dep = created["deploymentId"].as_str().unwrap();
    let iid = created["instances"][0].as_str().unwrap().to_string();
    authed(http().post(format!("{base}/v1/deployments/{dep}?action=start")))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // nodeT's assignments, read with the token.
    let assignments = || async {
        authed(http().get(format!("{base}/v1/assignments")))
            .query(&[("nodeId", "nodeT")])
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let v = assignments().await;
        if v["items"][0]["phase"] == "Running" && pids_of_instance(&iid).len() == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{v}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = pids_of_instance(&iid)[0];
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(env.split(|b| *b == 0).any(|kv| kv == b"PLUM_TOKEN=s3cret"));
    // The token stays out of the agent's arguments.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", agent.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("s3cret"));

    nix::sys::signal::kill(Pid::from_raw(agent.id() as i32), Signal::SIGTERM).unwrap();
    agent.wait().unwrap();
    assert!(
        pids_of_instance(&iid).is_empty(),
        "SIGTERM stops the workers"
    );
    let v = assignments().await;
    assert_eq!(v["items"][0]["phase"], "Stopped", "{v}");
}

/// A SIGKILLed `up --nodes` takes its agents, and so their workers, with it.
#[test]
fn a_sigkilled_up_leaves_no_agent_or_worker() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Up::two_nodes(dir.path(), "up-killed")
        .stdout(Stdio::piped())
        .spawn();
    let lines = support::read_lines(up.child.stdout.take().unwrap());
    let mut agents = Vec::new();
    let mut instance = None;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while instance.is_none() && Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if let Some(rest) = line.split("agent pids ").nth(1) {
            agents = rest
                .split(')')
                .next()
                .unwrap()
                .split(", ")
                .map(|p| p.parse::<u32>().unwrap())
                .collect();
        }
        // The watcher finds the worker at its first scan or sees it start.
        if line.contains("found running") || line.contains(" started (pid") {
            instance = line.split_whitespace().nth(1).map(str::to_string);
        }
        seen.push(line);
    }
    if instance.is_none() {
        let _ = up.child.kill();
    }
    let instance = instance.unwrap_or_else(|| panic!("no worker seen on nodeA: {seen:?}"));
    assert_eq!(agents.len(), 2);
    assert_eq!(pids_of_instance(&instance).len(), 1);
    nix::sys::signal::kill(Pid::from_raw(up.child.id() as i32), Signal::SIGKILL).unwrap();
    up.child.wait().unwrap();
    let alive = |pid: u32| !is_dead(pid);
    let deadline = Instant::now() + Duration::from_secs(3);
    while agents.iter().any(|p| alive(*p)) || !pids_of_instance(&instance).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left behind: agents {:?}, workers {:?}",
            agents.iter().filter(|p| alive(**p)).collect::<Vec<_>>(),
            pids_of_instance(&instance)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
