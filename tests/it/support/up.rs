//! `plumdash up --headless` as a child process, driven from outside as a user
//! or a QA script would: its `--events` file, its control socket (`ctl`),
//! SIGINT to stop it.
//!
//! `Up::builder()` runs `up --headless --listen 127.0.0.1:PORT --db DIR/kv.db
//! --events DIR/events.jsonl --control-socket DIR/ctl.sock` on a free port, in
//! a temporary folder of its own unless given one; a test adds its own flags.

use super::{interrupt_and_wait, plumdash, plumdash_under, read_events, PATIENCE};
use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `plumdash up --headless`. Dropped, it is stopped as a person
/// would (SIGINT, 15 s), then killed.
pub struct Up {
    pub child: Child,
    /// The port of its embedded controller.
    pub port: u16,
    /// Its `--control-socket` (not served after `without_control_socket`).
    pub socket: PathBuf,
    /// Its `--events` file.
    pub events: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// What an `Up` runs: the common flags and the test's own.
pub struct UpBuilder {
    dir: Option<PathBuf>,
    wrapper: Vec<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    control_socket: bool,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

impl Up {
    pub fn builder() -> UpBuilder {
        UpBuilder {
            dir: None,
            wrapper: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            control_socket: true,
            stdout: None,
            stderr: None,
        }
    }

    /// `up --nodes 2` (nodeA and nodeB, each an agent process) running `app`
    /// at 300 ms steps, the agents' logs in `dir/logs`; stderr to /dev/null.
    pub fn two_nodes(dir: &Path, app: &str) -> UpBuilder {
        Up::builder()
            .dir(dir)
            .args(["--nodes", "2", "--step", "300ms", "--app", app, "--log-dir"])
            .args([dir.join("logs")])
            .stderr(Stdio::null())
    }

    /// Its embedded controller's address.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The events written so far.
    pub fn events(&self) -> Vec<Value> {
        read_events(&self.events)
    }

    /// The first event `pick` accepts, waited for `PATIENCE` at most.
    pub fn wait_event(&self, what: &str, pick: impl Fn(&Value) -> bool) -> Value {
        self.wait_event_within(what, PATIENCE, pick)
    }

    /// The first event `pick` accepts, waited for `timeout` at most.
    pub fn wait_event_within(
        &self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ev) = self.events().into_iter().find(|e| pick(e)) {
                return ev;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} event within {timeout:?}; events: {:#?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `plumdash ctl --to SOCKET ARGS…`, to run.
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = plumdash();
        cmd.arg("ctl").arg("--to").arg(&self.socket).args(args);
        cmd
    }

    /// `plumdash ctl --to SOCKET ARGS…`: exit code, stdout, stderr.
    pub fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let out = self
            .ctl_command(args)
            .output()
            .expect("running plumdash ctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `plumdash ctl status --json` of this `up`.
    pub fn ctl_status(&self) -> Value {
        let (_, stdout, stderr) = self.ctl(&["status", "--json"]);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("ctl status --json: {e}; {stderr}"))
    }

    /// SIGINT, and its exit within 15 s.
    pub fn interrupt_and_wait(&mut self) -> ExitStatus {
        interrupt_and_wait(&mut self.child, Duration::from_secs(15))
            .expect("plumdash did not stop after SIGINT")
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if interrupt_and_wait(&mut self.child, Duration::from_secs(15)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl UpBuilder {
    /// Its database, events file and control socket in `dir` (which the
    /// test keeps) instead of a temporary folder.
    pub fn dir(mut self, dir: &Path) -> UpBuilder {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Run through `wrapper` (e.g. `["prlimit", "--nofile=64:64", "--"]`).
    pub fn under(mut self, wrapper: &[&str]) -> UpBuilder {
        self.wrapper = wrapper.iter().map(|w| w.to_string()).collect();
        self
    }

    /// Flags of the test, after the common ones.
    pub fn args<I, S>(mut self, args: I) -> UpBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> UpBuilder {
        self.env
            .push((name.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// No `--control-socket`: `up` serves its default one.
    pub fn without_control_socket(mut self) -> UpBuilder {
        self.control_socket = false;
        self
    }

    /// Its stdout (`/dev/null` unless set).
    pub fn stdout(mut self, stdout: Stdio) -> UpBuilder {
        self.stdout = Some(stdout);
        self
    }

    /// Its stderr (the test's unless set).
    pub fn stderr(mut self, stderr: Stdio) -> UpBuilder {
        self.stderr = Some(stderr);
        self
    }

    pub fn spawn(self) -> Up {
        let (owned, dir) = match self.dir {
            Some(dir) => (None, dir),
            None => {
                let owned = tempfile::tempdir().expect("tempdir");
                let dir = owned.path().to_path_buf();
                (Some(owned), dir)
            }
        };
        let port = super::free_port();
        let socket = dir.join("ctl.sock");
        let events = dir.join("events.jsonl");
        let wrapper: Vec<&str> = self.wrapper.iter().map(String::as_str).collect();
        let mut cmd = plumdash_under(&wrapper);
        cmd.args(["up", "--headless", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--db")
            .arg(dir.join("kv.db"))
            .arg("--events")
            .arg(&events);
        if self.control_socket {
            cmd.arg("--control-socket").arg(&socket);
        }
        cmd.args(&self.args)
            .envs(self.env)
            .stdin(Stdio::null())
            .stdout(self.stdout.unwrap_or_else(Stdio::null))
            .stderr(self.stderr.unwrap_or_else(Stdio::inherit));
        Up {
            child: cmd.spawn().expect("spawning plumdash up"),
            port,
            socket,
            events,
            _dir: owned,
        }
    }
}
