//! Across machines, as Plum does it: `plumdash package` → upload → `deploy`
//! on nodeB → nodeB's agent runs the unpacked zip (`sh → bash → kv-demo |
//! tee`) → a dashboard that cannot see those processes (its own PID
//! namespace) lists the instance with its node, kills it through the agent
//! with `k`, and shows the agent's restart as RESUMED in the same row.
//! Also: the app API in the original's shapes and statuses
//! (`../shared/plum-cluster-api.md` §9), zip-slip and oversized uploads
//! refused, an artifact the agent cannot unpack a `Failed` with its reason,
//! and signals refused, with the reason, where there is no plumdash agent.

use crate::support::process::{is_dead, processes_of_instance};
use crate::support::tmux::{gauge_percent, Tmux};
use crate::support::{self, http, obj_keys, send, ControllerProcess, PATIENCE};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// A child process stopped (SIGTERM, then SIGKILL) when the test ends.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `plumdash agent --node NODE` for `url`, its work folders under `data`.
fn agent(url: &str, node: &str, data: &Path, step_ms: &str) -> Stopped {
    let child = support::plumdash()
        .args(["agent", "--node", node, "--controller", url, "--data-dir"])
        .arg(data)
        .env("KV_DEMO_STEP_MS", step_ms)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the agent");
    Stopped(child)
}

/// Runs a plumdash command to its end; its stdout, or the test fails with stderr.
fn run_ok(args: &[&str]) -> String {
    let out = support::output_within(
        {
            let mut cmd = support::plumdash();
            cmd.args(args);
            cmd
        },
        Duration::from_secs(60),
    )
    .expect("the command ends");
    assert!(
        out.status.success(),
        "plumdash {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A zip of `entries` (a name ending in `/` is a folder).
fn zip_of(path: &Path, entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, data) in entries {
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        if name.ends_with('/') {
            zip.add_directory(*name, options).unwrap();
        } else {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
    }
    zip.finish().unwrap();
    std::fs::read(path).unwrap()
}

async fn upload(base: &str, name: &str, data: Vec<u8>) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(data).file_name(name.to_string());
    let form = reqwest::multipart::Form::new().part("file", part);
    let resp = http()
        .post(format!("{base}/v1/apps/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Sends `head` and `body` on a fresh connection, leaves it open, and reads
/// the answer: its status and JSON body.
fn raw_request(addr: &std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, Value) {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the server closes (it does after refusing a body it did not read).
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let json = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        status,
        serde_json::from_str(json).unwrap_or(Value::String(json.into())),
    )
}

/// The pids of a process's parent chain, from `/proc`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    stat[close + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// The instance's processes as the agent runs an artifact: `sh -c ./start.sh`
/// → `bash ./start.sh` (named start.sh) → {kv-demo, tee}; the kv-demo pid.
fn worker_tree(iid: &str, app_dir: &Path) -> Option<u32> {
    let procs = processes_of_instance(iid);
    let named = |n: &str| procs.iter().find(|p| p.name == n).map(|p| p.pid);
    let (sh, bash, worker, tee) = (
        named("sh")?,
        named("start.sh")?,
        named("kv-demo")?,
        named("tee")?,
    );
    let chain = parent_of(worker) == Some(bash)
        && parent_of(tee) == Some(bash)
        && parent_of(bash) == Some(sh);
    let exe = std::fs::read_link(format!("/proc/{worker}/exe")).ok()?;
    let cwd = std::fs::read_link(format!("/proc/{worker}/cwd")).ok()?;
    (chain && exe == app_dir.join("kv-demo") && cwd == app_dir).then_some(worker)
}

#[test]
fn a_package_deployed_on_node_b_is_killed_from_a_dashboard_that_cannot_see_it() {
    if !support::need(&["tmux", "unshare"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let url = controller.url();
    let data = dir.path().join("agent-data");
    let _node_b = agent(&url, "nodeB", &data, "1000");

    // The seed's build.sh and the Web UI's upload.
    let zip = dir.path().join("kv-demo.zip");
    let zip_arg = zip.to_str().unwrap();
    let packaged = run_ok(&["package", "--out", zip_arg]);
    assert!(
        packaged.contains("start.sh, meta.ini (name=kv-demo"),
        "{packaged}"
    );
    let uploaded = run_ok(&["apps", "upload", zip_arg, "--controller", &url]);
    assert!(uploaded.contains("/artifacts/kv-demo_"), "{uploaded}");

    // The dashboard, in a PID namespace of its own: no agent or worker of
    // this test is in its /proc.
    let mut command = support::own_env_args();
    command.extend(
        [
            "TERM=xterm-256color",
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            support::PLUMDASH,
            "attach",
            "--controller",
            &url,
            "--app",
            "kv-demo",
        ]
        .map(String::from),
    );
    let tmux = Tmux::start(160, 40, &command);
    tmux.wait_for("the dashboard", PATIENCE, |s| {
        s.contains("Recovery timeline").then_some(())
    });

    // 创建部署 → 选择节点 → 启动.
    let deployed = run_ok(&[
        "deploy",
        "--app",
        "kv-demo",
        "--node",
        "nodeB",
        "--start",
        "--controller",
        &url,
    ]);
    let iid = deployed
        .lines()
        .find_map(|l| l.strip_prefix("instances: "))
        .expect("the instance id")
        .trim()
        .to_string();
    let app_dir = data.join("nodeB").join(&iid).join("app");
    let mut first = None;
    support::wait_until(
        "nodeB runs the unpacked zip under sh → bash → kv-demo | tee",
        PATIENCE,
        || {
            first = worker_tree(&iid, &app_dir);
            first.is_some()
        },
    );
    let first = first.unwrap();
    assert!(data.join("nodeB").join(&iid).join("pkg.zip").is_file());
    // tee is named so from its exec on, but opens its file a moment later.
    support::wait_until("tee writes kv-demo.log in app/", PATIENCE, || {
        app_dir.join("kv-demo.log").is_file()
    });

    // Listed with its node, no pid here, progress from the namespace.
    // The row shows an alias and the id cut to its head and tail (`B1 4c…0da11`).
    let short = &iid[iid.len() - 5..];
    tmux.wait_for("the remote row, running at 20% or more", PATIENCE, |s| {
        let row = s.lines().find(|l| l.contains(short))?;
        let listed = row.contains("nodeB") && row.contains("remote") && row.contains("RUNNING");
        (listed && gauge_percent(s)? >= 20).then_some(())
    });
    let screen = tmux.screen();
    assert!(
        screen.contains("remote: no pid here"),
        "the log pane says so:\n{screen}"
    );

    // k: through the agent, which names the pid it signalled.
    tmux.send(&["k"]);
    let said = format!("SIGKILL sent to pid {first} (kv-demo under sh→bash)");
    tmux.wait_for("the agent's answer", PATIENCE, |s| {
        s.contains(&said).then_some(())
    });
    support::wait_until("the first worker dead", PATIENCE, || is_dead(first));

    // The agent restarts it in the same folder; the same row says RESUMED.
    let mut second = None;
    support::wait_until("the agent's restart", PATIENCE, || {
        second = worker_tree(&iid, &app_dir).filter(|pid| *pid != first);
        second.is_some()
    });
    let screen = tmux.wait_for("RESUMED in the same row", PATIENCE, |s| {
        let row = s.lines().find(|l| l.contains(short))?;
        row.contains("RESUMED from").then(|| s.to_string())
    });
    let row = format!("{short} nodeB");
    assert_eq!(
        screen.lines().filter(|l| l.contains(&row)).count(),
        1,
        "one row for the instance across its runs:\n{screen}"
    );
    assert!(screen.contains("Instances (1)"), "{screen}");
    // Its first start was a fresh one, its restart the recovery.
    assert_eq!(
        screen.matches("found the crash flag: recovering").count(),
        1,
        "{screen}"
    );
    tmux.send(&["q"]);
}

/// `ctl` of an `up --controller --headless` reaches an instance on another
/// node through its agent (here the bundled kv-demo, no wrappers): the kill
/// is the agent's, the restart too, and the events tell the recovery; what
/// only its deployment can do is refused, saying why.
#[test]
fn ctl_kills_a_remote_instance_through_its_agent() {
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let url = controller.url();
    let _node_b = agent(&url, "nodeB", &dir.path().join("data"), "400");
    let up = support::Up::builder()
        .args(["--controller", &url, "--instances", "0"])
        .stderr(Stdio::null())
        .spawn();
    // Watching before the deployment: its start is seen, not found.
    up.wait_event("nodeB seen", |e| e["kind"] == "node_up");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt.block_on(support::deploy(
        &url,
        json!({"name": "d", "entries": [{"artifactUrl": "", "appName": "kv-demo", "replicas": {"nodeB": 1}}]}),
    ));
    let iid = created["instances"][0].as_str().unwrap().to_string();
    let mine = |e: &Value| e["instance"] == iid.as_str();
    up.wait_event("the remote start", |e| {
        mine(e) && e["kind"] == "started" && e["node"] == "nodeB"
    });
    rt.block_on(support::wait_for_progress("kv-demo", &url, 20));
    let (code, out, err) = up.ctl(&["kill", &iid]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("nodeB's agent: SIGKILL sent to pid "),
        "{out}"
    );
    assert!(out.contains("(kv-demo)"), "{out}");
    up.wait_event("the crash", |e| mine(e) && e["kind"] == "crashed");
    up.wait_event("the resume in the same instance", |e| {
        mine(e) && e["kind"] == "resumed"
    });
    let (code, _, err) = up.ctl(&["stop", &iid]);
    assert_eq!(code, 1);
    assert!(
        err.contains("runs on node nodeB: only signals reach it"),
        "{err}"
    );
}

/// `F` and `K` (here `ctl freeze-node`, `kill-node`) for nodes on other
/// machines, through their agents: a frozen node stops beating and its work
/// moves, thawed it stops its replaced worker; a killed node's agent and
/// worker are gone.
#[test]
fn nodes_elsewhere_are_frozen_thawed_and_killed_through_their_agents() {
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let url = controller.url();
    let _node_a = agent(&url, "nodeA", &dir.path().join("a"), "500");
    let mut node_b = agent(&url, "nodeB", &dir.path().join("b"), "500");
    let up = support::Up::builder()
        .args(["--controller", &url, "--instances", "0"])
        .stderr(Stdio::null())
        .spawn();
    for node in ["nodeA", "nodeB"] {
        up.wait_event(node, |e| e["kind"] == "node_up" && e["node"] == node);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt.block_on(support::deploy(
        &url,
        json!({"name": "d", "entries": [{"artifactUrl": "", "appName": "kv-demo", "replicas": {"nodeA": 1}}]}),
    ));
    let old = created["instances"][0].as_str().unwrap().to_string();
    up.wait_event("the start on nodeA", |e| {
        e["instance"] == old.as_str() && e["kind"] == "started"
    });
    rt.block_on(support::wait_for_progress("kv-demo", &url, 20));

    let (code, out, err) = up.ctl(&["freeze-node", "nodeA"]);
    assert_eq!((code, out.trim()), (0, "nodeA frozen"), "{err}");
    let worker = processes_of_instance(&old);
    assert!(
        !worker.is_empty() && worker.iter().all(|p| p.state == 'T'),
        "{worker:?}"
    );
    up.wait_event("nodeA unhealthy", |e| {
        e["kind"] == "node_down" && e["node"] == "nodeA"
    });
    let moved = up.wait_event("the move", |e| {
        e["kind"] == "migrated" && e["instance"] == old.as_str()
    });
    assert_eq!(moved["to_node"], "nodeB");
    let new = moved["new_instance"].as_str().unwrap().to_string();
    up.wait_event("the resume on nodeB", |e| {
        e["kind"] == "resumed" && e["instance"] == new.as_str()
    });

    let (code, out, err) = up.ctl(&["freeze-node", "nodeA"]);
    assert_eq!((code, out.trim()), (0, "nodeA thawed"), "{err}");
    support::wait_until("the replaced worker stopped by its agent", PATIENCE, || {
        processes_of_instance(&old).is_empty()
    });

    let (code, out, err) = up.ctl(&["kill-node", "nodeB"]);
    assert_eq!((code, out.trim()), (0, "nodeB killed"), "{err}");
    support::wait_until("nodeB's agent gone", PATIENCE, || {
        matches!(node_b.0.try_wait(), Ok(Some(_)))
    });
    support::wait_until("its worker gone", PATIENCE, || {
        processes_of_instance(&new).is_empty()
    });
    up.wait_event("nodeB unhealthy", |e| {
        e["kind"] == "node_down" && e["node"] == "nodeB"
    });
    let (code, _, err) = up.ctl(&["revive-node", "nodeB"]);
    assert_eq!(code, 1);
    assert!(err.contains("start its agent there again"), "{err}");
}

/// The app API as the original answers it (§9), and plumdash's limits.
#[tokio::test(flavor = "multi_thread")]
async fn the_app_api_answers_as_the_originals_and_refuses_zip_slip_and_oversized_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let db = support::db_in(&dir);
    let port = support::free_port();
    let mut cmd = ControllerProcess::command(&format!("127.0.0.1:{port}"), &db);
    cmd.args(["--max-upload", "1MiB"]);
    let controller = ControllerProcess::start(cmd, port);
    let base = controller.url();
    let artifacts = dir.path().join("artifacts");

    let meta: &[u8] = b"# demo\nname = demo-app\nversion: 1.2.3\n";
    let good = zip_of(
        &dir.path().join("good.zip"),
        &[
            ("pkg/", b""),
            ("pkg/start.sh", b"#!/bin/sh\necho hi\n"),
            ("pkg/META.ini", meta),
        ],
    );
    let (s, app) = upload(&base, "good.zip", good.clone()).await;
    assert_eq!(s, 200, "{app}");
    assert_eq!(
        obj_keys(&app),
        [
            "artifactId",
            "createdAt",
            "name",
            "sha256",
            "sizeBytes",
            "type",
            "url",
            "version"
        ]
    );
    let sha = sha256_hex(&good);
    assert_eq!(app["sha256"], sha.as_str());
    assert_eq!(app["sizeBytes"], good.len());
    assert_eq!(
        (
            app["name"].as_str(),
            app["version"].as_str(),
            app["type"].as_str()
        ),
        (Some("demo-app"), Some("1.2.3"), Some("zip"))
    );
    assert_eq!(
        app["url"],
        format!("/artifacts/demo-app_1.2.3_{}.zip", &sha[..8]).as_str()
    );
    assert_eq!(app["artifactId"].as_str().unwrap().len(), 32);

    // The same name and version again: 409, the original's sentence.
    let (s, body) = upload(&base, "good.zip", good.clone()).await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("应用 demo-app 版本 1.2.3 已存在"),
        "{body}"
    );

    // What the original refuses, with its reasons.
    let (s, body) = upload(&base, "x.zip", b"not a zip at all".to_vec()).await;
    assert_eq!((s, body), (400, json!({"error": "not a zip"})));
    let no_meta = zip_of(&dir.path().join("m.zip"), &[("start.sh", b"")]);
    let (s, body) = upload(&base, "m.zip", no_meta).await;
    assert_eq!(
        (s, body),
        (
            400,
            json!({"error": "zip must contain start.sh and meta.ini(name,version)"})
        )
    );
    let form = reqwest::multipart::Form::new().text("other", "x");
    let resp = http()
        .post(format!("{base}/v1/apps/upload"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "file required"})
    );

    // What plumdash refuses besides: an entry outside its folder.
    for bad in ["../../evil.sh", "/tmp/evil.sh", "app/../../evil.sh"] {
        let slip = zip_of(
            &dir.path().join("slip.zip"),
            &[
                ("start.sh", b""),
                ("meta.ini", b"name=slip\nversion=1\n"),
                (bad, b"echo owned\n"),
            ],
        );
        let (s, body) = upload(&base, "slip.zip", slip).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert_eq!(
            body["error"],
            format!("zip entry {bad:?} would be written outside its folder").as_str()
        );
    }
    // An upload past --max-upload, declared or streamed. Raw HTTP: the
    // controller answers and closes without reading the rest, so a client
    // still sending would see a broken pipe instead of the answer.
    let head = |length: &str| {
        format!(
            "POST /v1/apps/upload HTTP/1.1\r\nHost: x\r\n{length}\r\n\
             Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )
    };
    let (s, body) = raw_request(&controller.addr, &head("Content-Length: 2097152"), b"");
    assert_eq!(
        (s, body),
        (413, json!({"error": "the upload is larger than 1 MiB"}))
    );
    let prelude =
        "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.zip\"\r\n\r\n";
    let mut chunked = Vec::new();
    let mut data = prelude.as_bytes().to_vec();
    data.extend(std::iter::repeat_n(0u8, (1 << 20) + 1));
    chunked.extend(format!("{:x}\r\n", data.len()).as_bytes());
    chunked.extend(&data);
    chunked.extend(b"\r\n");
    let (s, body) = raw_request(
        &controller.addr,
        &head("Transfer-Encoding: chunked"),
        &chunked,
    );
    assert_eq!(
        (s, body),
        (413, json!({"error": "the upload is larger than 1 MiB"}))
    );
    // Nothing of the refused uploads is left: only the stored zip.
    let left: Vec<String> = std::fs::read_dir(&artifacts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, [format!("demo-app_1.2.3_{}.zip", &sha[..8])]);
    assert!(!dir.path().join("evil.sh").exists());

    // GET /v1/apps: the same objects; the zip under its URL, nothing else there.
    let (s, body) = send("GET", &format!("{base}/v1/apps"), None).await;
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!([app]));
    let zip_url = format!("{base}{}", app["url"].as_str().unwrap());
    let served = http().get(&zip_url).send().await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap().to_vec(), good);
    for bad in ["/artifacts/..%2Fkv.db", "/artifacts/nope.zip"] {
        let (s, _) = send("GET", &format!("{base}{bad}"), None).await;
        assert_eq!(s, 404, "{bad}");
    }

    // A deployment naming it gets the app's name and version from meta.ini,
    // as the original's; the app cannot be deleted while it is used.
    let created = support::deploy(
        &base,
        json!({"name": "d", "entries": [{"artifactUrl": app["url"], "replicas": {"nodeB": 1}}]}),
    )
    .await;
    let dep = created["deploymentId"].as_str().unwrap().to_string();
    let (_, detail) = send("GET", &format!("{base}/v1/deployments/{dep}"), None).await;
    let detail: Value = serde_json::from_str(&detail).unwrap();
    let row = &detail["assignments"][0];
    assert_eq!(
        (row["appName"].as_str(), row["appVersion"].as_str()),
        (Some("demo-app"), Some("1.2.3"))
    );
    let id = app["artifactId"].as_str().unwrap();
    let (s, body) = send("DELETE", &format!("{base}/v1/apps/{id}"), None).await;
    assert_eq!(s, 409, "{body}");
    let (s, _) = send("DELETE", &format!("{base}/v1/deployments/{dep}"), None).await;
    assert_eq!(s, 204);
    let (s, _) = send("DELETE", &format!("{base}/v1/apps/{id}"), None).await;
    assert_eq!(s, 204);
    assert!(
        std::fs::read_dir(&artifacts).unwrap().next().is_none(),
        "its file is gone"
    );
    let (s, _) = send("DELETE", &format!("{base}/v1/apps/{id}"), None).await;
    assert_eq!(s, 404);
    let (_, body) = send("GET", &format!("{base}/v1/apps"), None).await;
    assert_eq!(body, "[]");
}

/// An artifact that would write outside its folder, placed where the upload
/// check cannot refuse it: the agent refuses to unpack it and reports
/// `Failed` with the reason, which a dashboard (`up --headless`) tells.
#[test]
fn an_artifact_the_agent_cannot_unpack_is_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let controller = ControllerProcess::spawn(&support::db_in(&dir), support::free_port());
    let url = controller.url();
    let artifacts = dir.path().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    zip_of(
        &artifacts.join("evil_1_00000000.zip"),
        &[
            ("start.sh", b"#!/bin/sh\n"),
            ("meta.ini", b"name=kv-demo\nversion=1\n"),
            ("../../../evil.sh", b"echo owned\n"),
        ],
    );
    let data = dir.path().join("a").join("b").join("c");
    let _node_b = agent(&url, "nodeB", &data, "1000");
    let events = dir.path().join("events.jsonl");
    let up = support::plumdash()
        .args([
            "up",
            "--headless",
            "--instances",
            "0",
            "--controller",
            &url,
            "--events",
        ])
        .arg(&events)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _up = Stopped(up);
    let deployed = run_ok(&["deployments", "--controller", &url, "ls"]);
    assert!(deployed.contains("no deployments"), "{deployed}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let created = rt.block_on(support::deploy(
        &url,
        json!({"name": "evil", "entries": [{"artifactUrl": "/artifacts/evil_1_00000000.zip",
               "appName": "kv-demo", "replicas": {"nodeB": 1}}]}),
    ));
    let dep = created["deploymentId"].as_str().unwrap().to_string();
    run_ok(&["deployments", "start", &dep, "--controller", &url]);
    let why = "would be written outside its folder";
    support::wait_until("the agent's Failed with its reason", PATIENCE, || {
        let items = rt.block_on(support::assignments(&url, "nodeB"));
        items.first().is_some_and(|a| {
            a["phase"] == "Failed" && a["reason"].as_str().is_some_and(|r| r.contains(why))
        })
    });
    support::wait_until("the dashboard's failed event", PATIENCE, || {
        support::read_events(&events)
            .iter()
            .any(|e| e["kind"] == "failed" && e["reason"].as_str().is_some_and(|r| r.contains(why)))
    });
    for p in [
        dir.path().join("evil.sh"),
        dir.path().join("a").join("evil.sh"),
        data.join("evil.sh"),
    ] {
        assert!(!p.exists(), "{} written", p.display());
    }
    assert!(
        std::fs::read_dir(data.join("nodeB")).unwrap().all(|e| {
            let p: PathBuf = e.unwrap().path();
            !p.join("app").exists()
        }),
        "nothing unpacked"
    );
}

/// A node with no plumdash agent (an original agent beats and reports, but
/// opens no signal stream), and an original controller (no signal API): the
/// signal is refused, saying why.
#[tokio::test(flavor = "multi_thread")]
async fn a_signal_where_no_plumdash_agent_listens_is_refused_with_the_reason() {
    let c = support::TestController::start().await;
    let base = c.url();
    support::beat(&base, "nodeC").await;
    let created = support::deploy(
        &base,
        json!({"name": "old", "entries": [{"artifactUrl": "/artifacts/x.zip", "replicas": {"nodeC": 1}}]}),
    )
    .await;
    let iid = created["instances"][0].as_str().unwrap().to_string();
    let dep = created["deploymentId"].as_str().unwrap();
    send(
        "POST",
        &format!("{base}/v1/deployments/{dep}?action=start"),
        None,
    )
    .await;
    send(
        "POST",
        &format!("{base}/v1/instances/status"),
        Some(json!({"instanceId": iid, "phase": "Running", "exitCode": 0, "healthy": true, "tsUnix": 1}).to_string()),
    )
    .await;
    let client = plumdash::cluster::admin::ClusterClient::new(&base, None).unwrap();
    let order = plumdash::cluster::model::SignalOrder {
        signal: "SIGKILL".into(),
        scope: Default::default(),
        worker: String::new(),
    };
    let err = format!("{:#}", client.signal(&iid, &order).await.unwrap_err());
    assert!(err.contains("node nodeC's agent takes no signals"), "{err}");
    let err = format!("{:#}", client.signal("nope", &order).await.unwrap_err());
    assert!(err.contains("no instance \"nope\""), "{err}");

    let original = crate::support::original::OriginalController::start();
    let client = plumdash::cluster::admin::ClusterClient::new(&original.url(), None).unwrap();
    let err = format!("{:#}", client.signal(&iid, &order).await.unwrap_err());
    assert!(
        err.contains("has no signal API (an original Plum controller)"),
        "{err}"
    );
}
