//! What to run for a worker: program, arguments, environment, directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{anyhow, bail, Context, Result};
use tokio::process::Command;

/// The name of the worker executable shipped beside `plumdash`.
pub const WORKER_EXECUTABLE: &str = "kv-demo";

/// How to start one worker process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Extra environment on top of ours and the agent variables (these win).
    pub env: BTreeMap<String, String>,
    pub working_dir: Option<PathBuf>,
    /// Node to run on; the supervisor's first node when absent.
    pub node: Option<String>,
}

impl WorkerSpec {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        WorkerSpec {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            working_dir: None,
            node: None,
        }
    }

    /// Parses a command line such as `kv-demo --step-ms 200` or `sh -c 'exec sleep 5'`:
    /// split by shell rules, with single and double quotes and backslash escapes.
    pub fn from_command_line(line: &str) -> Result<Self> {
        let mut words = split_command_line(line)?;
        if words.is_empty() {
            bail!("empty worker command line");
        }
        let program = words.remove(0);
        Ok(WorkerSpec::new(program).args(words))
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// The command line as a person would type it (for titles and logs).
    pub fn display_command(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(
                self.args
                    .iter()
                    .map(|arg| shell_words::quote(arg).into_owned()),
            )
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A command ready to spawn: own process group, stdin closed, output piped,
    /// agent variables set first so the spec's own `env` can override them.
    pub(crate) fn command(&self, agent_env: &AgentEnv) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(agent_env.pairs())
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Leader of a new group, so a signal reaches the worker and anything it forked.
            .process_group(0);
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        command
    }
}

/// The variables a Plum agent gives every instance it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentEnv {
    pub instance_id: String,
    pub app_name: String,
    pub app_version: String,
    pub node_id: String,
    pub controller_base: Option<String>,
}

impl AgentEnv {
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("PLUM_INSTANCE_ID", self.instance_id.clone()),
            ("PLUM_APP_NAME", self.app_name.clone()),
            ("PLUM_APP_VERSION", self.app_version.clone()),
            ("WORKER_NODE_ID", self.node_id.clone()),
        ];
        // Like the Plum agent: only when we know one, so the worker's default applies otherwise.
        if let Some(base) = &self.controller_base {
            pairs.push(("CONTROLLER_BASE", base.clone()));
        }
        pairs
    }
}

/// Splits a command line into words by POSIX shell rules (quotes, backslash
/// escapes); an unbalanced quote is a one-line error naming the line.
pub fn split_command_line(line: &str) -> Result<Vec<String>> {
    // One message, not a context chain: callers print it with `{e}` on one line.
    shell_words::split(line).map_err(|e| anyhow!("cannot split {line:?}: {e}"))
}

/// Finds the `kv-demo` executable shipped beside the running executable. Also looks
/// one directory up, for test binaries that run from `target/debug/deps`.
pub fn bundled_worker_path() -> Result<PathBuf> {
    let current =
        std::env::current_exe().context("cannot find the path of the running executable")?;
    let tried = candidate_dirs(&current)
        .into_iter()
        .map(|dir| dir.join(WORKER_EXECUTABLE))
        .collect::<Vec<_>>();
    if let Some(found) = tried.iter().find(|path| is_executable_file(path)) {
        return Ok(found.clone());
    }
    let listed = tried
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    bail!("cannot find the {WORKER_EXECUTABLE} executable; tried {listed} (build it with `cargo build --bin {WORKER_EXECUTABLE}`)")
}

fn candidate_dirs(current_exe: &Path) -> Vec<PathBuf> {
    current_exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(Path::to_path_buf)
        .collect()
}

fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_and_quotes() {
        assert_eq!(
            split_command_line("  a  b\tc ").unwrap(),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            split_command_line(r#"sh -c 'exec sleep 5' "x \"y\"" a\ b"#).unwrap(),
            vec!["sh", "-c", "exec sleep 5", r#"x "y""#, "a b"]
        );
        assert_eq!(split_command_line("''").unwrap(), vec![""]);
        let err = split_command_line("sh -c 'oops").unwrap_err().to_string();
        assert_eq!(err, r#"cannot split "sh -c 'oops": missing closing quote"#);
        assert!(!err.contains('\n'));
    }

    #[test]
    fn spec_from_command_line() {
        let spec = WorkerSpec::from_command_line("kv-demo --step-ms 200").unwrap();
        assert_eq!(spec.program, PathBuf::from("kv-demo"));
        assert_eq!(spec.args, vec!["--step-ms", "200"]);
        assert_eq!(spec.display_command(), "kv-demo --step-ms 200");
        assert!(WorkerSpec::from_command_line("   ").is_err());
    }

    #[test]
    fn display_quotes_shell_words() {
        let spec = WorkerSpec::new("sh").args(["-c", "exec sleep 5"]);
        assert_eq!(spec.display_command(), "sh -c 'exec sleep 5'");
    }

    #[test]
    fn agent_env_omits_unknown_controller() {
        let env = AgentEnv {
            instance_id: "kv-demo-001".into(),
            app_name: "kv-demo".into(),
            app_version: "1.0.0".into(),
            node_id: "nodeA".into(),
            controller_base: None,
        };
        let keys: Vec<_> = env.pairs().into_iter().map(|(key, _)| key).collect();
        assert_eq!(
            keys,
            vec![
                "PLUM_INSTANCE_ID",
                "PLUM_APP_NAME",
                "PLUM_APP_VERSION",
                "WORKER_NODE_ID"
            ]
        );
    }

    #[test]
    fn candidates_are_exe_dir_then_parent() {
        let dirs = candidate_dirs(Path::new("/x/target/debug/deps/test-123"));
        assert_eq!(
            dirs,
            vec![
                PathBuf::from("/x/target/debug/deps"),
                PathBuf::from("/x/target/debug")
            ]
        );
    }
}
