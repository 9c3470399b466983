//! Drives the stand-ins for Plum's agent in `tests/fixtures/`: an instance folder
//! laid out as the agent's (`<dir>/app/start.sh` and the `kv-demo` program),
//! started as the agent starts it (`plum-agent-start.sh`), and optionally a
//! restarter that polls it (`plum-agent-restarter.sh`).

use super::process::processes_of_instance;
use super::{fixture, fixture_command, wait_until};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct PlumInstance {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub app: String,
    env: Vec<(String, String)>,
    restarter: Option<Child>,
}

impl PlumInstance {
    /// Lays out an instance folder for the bundled kv-demo of `app`, writing to
    /// `controller` every `step`. `reaps`: the agent stand-in reaps its dead child
    /// (a fixed agent); otherwise it leaves a zombie, as the original does.
    pub fn new(app: &str, id: &str, controller: &str, step: &str, reaps: bool) -> PlumInstance {
        let dir = tempfile::tempdir().expect("tempdir");
        let app_dir = dir.path().join("app");
        std::fs::create_dir(&app_dir).expect("app dir");
        std::fs::copy(fixture("plum-app-start.sh"), app_dir.join("start.sh")).expect("start.sh");
        // Named `kv-demo` in the process table, as the original program is.
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kv-demo"), app_dir.join("kv-demo"))
            .expect("kv-demo link");
        let env = [
            ("CONTROLLER_BASE", controller),
            ("KV_DEMO_STEP_MS", step),
            ("PLUM_AGENT_REAPS", if reaps { "1" } else { "0" }),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        PlumInstance {
            dir,
            id: id.to_string(),
            app: app.to_string(),
            env,
            restarter: None,
        }
    }

    fn command(&self, script: &str) -> Command {
        let mut cmd = fixture_command(script);
        cmd.arg(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }

    /// Starts the instance as the agent does and waits for its worker.
    pub fn start(&self) -> u32 {
        let status = self
            .command("plum-agent-start.sh")
            .args([&self.id, &self.app])
            .status()
            .expect("start");
        assert!(status.success(), "plum-agent-start.sh failed");
        self.wait_for_worker(Duration::from_secs(10), None)
    }

    /// Polls for its death every `interval` (e.g. "0.5") and restarts it.
    pub fn start_restarter(&mut self, interval: &str) {
        let child = self
            .command("plum-agent-restarter.sh")
            .args([interval, &self.id, &self.app])
            .spawn()
            .expect("restarter");
        self.restarter = Some(child);
    }

    /// The pid in `runtime.pid` (the `sh -c ./start.sh`).
    pub fn sh_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("runtime.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The live `kv-demo` of the instance, if there is one.
    pub fn worker_pid(&self) -> Option<u32> {
        processes_of_instance(&self.id)
            .into_iter()
            .find(|p| p.name == "kv-demo")
            .map(|p| p.pid)
    }

    /// Waits for a live worker other than `not`.
    pub fn wait_for_worker(&self, timeout: Duration, not: Option<u32>) -> u32 {
        let mut pid = None;
        wait_until("the instance's kv-demo", timeout, || {
            pid = self.worker_pid().filter(|p| Some(*p) != not);
            pid.is_some()
        });
        pid.unwrap()
    }

    /// Times the restarter started the instance again.
    pub fn restarts(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("restarts.log"))
            .map_or(0, |t| t.lines().count())
    }
}

fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

impl Drop for PlumInstance {
    fn drop(&mut self) {
        if let Some(mut restarter) = self.restarter.take() {
            let _ = restarter.kill();
            let _ = restarter.wait();
        }
        if let Some(sh) = self.sh_pid() {
            // The instance runs in its own session: its process group is the sh's pid.
            sigkill(-(sh as i32));
        }
        for p in processes_of_instance(&self.id) {
            sigkill(p.pid as i32);
        }
        // The agent stand-ins (holding zombies when they do not reap).
        if let Ok(pids) = std::fs::read_to_string(self.dir.path().join("agent.pids")) {
            for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                sigkill(pid);
            }
        }
    }
}
