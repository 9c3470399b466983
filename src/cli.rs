//! The command line: every argument struct and what each subcommand does.
//! Each subcommand's `run` is thin: its arguments are checked in one place
//! (a bad one is one line before anything starts), then the library does the
//! work (`session`, `controller`, `agent`, `verify`, `tui`, `headless`).
//! `main.rs` only calls [`main`].

mod agent;
mod apps;
mod attach;
pub mod auth;
mod controller;
mod ctl;
mod deploy;
mod generated;
mod kv;
mod reading;
mod scenario;
mod ui;
mod up;
mod verify;

use crate::scenario::Scenario;
use anyhow::{Context, Result};
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "plumdash",
    version,
    about = "A terminal dashboard for watching a program survive crashes",
    long_about = "plumdash runs (or attaches to) kv-demo workers that checkpoint their progress \
                  into a Plum-compatible KV store, shows the crash → restart → resume cycle \
                  live, and lets you cause it with one key.\n\n\
                  With no subcommand it runs `up`: an embedded controller, one supervised \
                  kv-demo worker, and the dashboard.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    up: up::UpArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller, supervised workers and the dashboard (the default).
    Up(up::UpArgs),
    /// `up` with a guided tour: captions walk through the demo's six steps
    /// (run, watch, crash with k, recovery, graceful exit with i, restart with s).
    Tour(up::UpArgs),
    /// Run the crash-recovering kv-demo worker (same as the `kv-demo` binary).
    #[command(name = "kv-demo")]
    KvDemo(crate::demo::DemoArgs),
    /// Run the Plum-compatible KV controller (HTTP + SQLite) in the foreground.
    Controller(controller::ControllerArgs),
    /// Run a node agent: heartbeat to a controller, run its assignments for this node
    /// under the supervisor, report their status (the workers die with the agent).
    Agent(agent::AgentArgs),
    /// Watch a running controller's namespace and the local workers of an app (no spawning).
    Attach(attach::AttachArgs),
    /// Write the seed's kv-demo.zip (start.sh, meta.ini, the kv-demo worker) for upload.
    Package(apps::PackageArgs),
    /// A controller's uploaded apps: list, upload a package, delete one.
    Apps(apps::AppsArgs),
    /// Deploy an uploaded app on a node (the Web UI's 创建部署 → 选择节点 → 启动).
    Deploy(deploy::DeployArgs),
    /// A controller's deployments: list, start, stop, delete.
    Deployments(deploy::DeploymentsArgs),
    /// Read and write a namespace of a KV controller.
    Kv(kv::KvArgs),
    /// Crash-recovery QA: kill a worker N times and check the recovery invariants
    /// (exit 0: all held, 1: one failed, 2: usage or setup error).
    Verify(verify::VerifyArgs),
    /// Control a running `plumdash up` from scripts (over its control socket).
    Ctl(ctl::CtlArgs),
    /// Print a shell completion script, e.g. `plumdash completions bash > ~/.local/share/bash-completion/completions/plumdash`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page plumdash(1), or with --dir write it and one page per subcommand there.
    Man {
        /// Write plumdash.1 and plumdash-SUBCOMMAND.1 into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Scenario files for --scenario: print a commented example, or check a file.
    #[command(subcommand)]
    Scenario(ScenarioSub),
}

#[derive(Subcommand)]
enum ScenarioSub {
    /// Print a commented scenario that runs as is (`plumdash scenario example > qa.toml`).
    Example,
    /// Check a scenario file without running anything (exit 2 with the line if it is bad).
    Check { file: PathBuf },
}

/// The whole `plumdash` binary: parse, apply `--scenario`, run, and turn an
/// error into one escaped line on stderr.
pub fn main() -> ExitCode {
    // The orphan guard is plumdash itself, run bare: no runtime, no clap.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(
            crate::supervisor::orphan_guard::GUARD_SUBCOMMAND,
        ))
    {
        return ExitCode::from(crate::supervisor::orphan_guard::run_guard());
    }
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        // `verify` is driven by scripts: a usage error is one line and exit 2.
        Err(err) if err.use_stderr() && std::env::args().nth(1).as_deref() == Some("verify") => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!("plumdash verify: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(err) => err.exit(),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    // `up`, `tour` and `verify` read their arguments from the subcommand's matches.
    let sub = matches.subcommand().map_or(&matches, |(_, m)| m);
    let cli = match with_scenario(cli, sub) {
        Ok(cli) => cli,
        Err((prefix, e)) => {
            eprintln!("{prefix}: {}", crate::text_safety::escape_controls(&e));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            let usage = err.downcast_ref::<UsageError>().is_some();
            // Errors may quote text from outside: never raw on the terminal.
            let err = format!("{err:#}");
            eprintln!("plumdash: {}", crate::text_safety::escape_controls(&err));
            if usage {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Applies `--scenario` to `up`, `tour` or `verify`; a bad file is exit 2
/// before anything starts.
fn with_scenario(mut cli: Cli, matches: &ArgMatches) -> Result<Cli, (&'static str, String)> {
    let load = |path: Option<&std::path::Path>| path.map(Scenario::load).transpose();
    match &mut cli.command {
        None => {
            if let Some(sc) = load(cli.up.scenario.as_deref()).map_err(|e| ("plumdash", e))? {
                scenario::apply_to_up(&sc, &mut cli.up, matches);
            }
        }
        Some(Command::Up(args) | Command::Tour(args)) => {
            if let Some(sc) = load(args.scenario.as_deref()).map_err(|e| ("plumdash", e))? {
                scenario::apply_to_up(&sc, args, matches);
            }
        }
        Some(Command::Verify(args)) => {
            if let Some(sc) = load(args.scenario.as_deref()).map_err(|e| ("plumdash verify", e))? {
                scenario::apply_to_verify(&sc, args, matches);
            }
        }
        _ => {}
    }
    Ok(cli)
}

fn run(cli: Cli) -> Result<ExitCode> {
    if cli.command.as_ref().is_some_and(Command::prints_for_a_pipe) {
        pipe_closes_quietly();
    }
    if let Some(command) = &cli.command {
        if let Some(code) = generated::run(command)? {
            return Ok(code);
        }
    }
    // Under the dashboard the terminal is the screen's: diagnostics go to a file.
    let dashboard = match &cli.command {
        None => cli.up.is_dashboard(),
        Some(Command::Up(args) | Command::Tour(args)) => args.is_dashboard(),
        Some(Command::Attach(_)) => true,
        Some(_) => false,
    };
    let file_log = if dashboard {
        let path = crate::paths::default_log_path();
        match crate::logging::to_file(&path) {
            Ok(log) => Some(log),
            Err(e) => {
                eprintln!("plumdash: {e:#}; diagnostics will not be kept");
                None
            }
        }
    } else {
        crate::logging::to_stderr();
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(run_command(cli));
    if let Some(log) = file_log.filter(|log| log.lines() > 0) {
        eprintln!(
            "plumdash: {} diagnostic line(s) in {}",
            log.lines(),
            log.path.display()
        );
    }
    outcome
}

async fn run_command(cli: Cli) -> Result<ExitCode> {
    match cli.command.unwrap_or(Command::Up(cli.up)) {
        Command::Up(args) => up::run(args, false).await?,
        Command::Tour(args) => up::run(args, true).await?,
        Command::Attach(args) => attach::run(args).await?,
        Command::Agent(args) => agent::run(args).await?,
        Command::KvDemo(args) => {
            // Show as `kv-demo` in ps/top and to attach's name match, as the
            // separate binary does. (Renames only this thread: the main one.)
            let _ = nix::sys::prctl::set_name(c"kv-demo");
            return crate::demo::run(args).await;
        }
        Command::Verify(args) => return Ok(verify::run(args).await),
        Command::Ctl(args) => return ctl::run(args).await,
        Command::Controller(args) => controller::run(args).await?,
        Command::Kv(args) => kv::run(args).await?,
        Command::Package(args) => apps::run_package(args)?,
        Command::Apps(args) => apps::run_apps(args).await?,
        Command::Deploy(args) => deploy::run_deploy(args).await?,
        Command::Deployments(args) => deploy::run_deployments(args).await?,
        // Handled before the runtime starts.
        Command::Completions { .. } | Command::Man { .. } | Command::Scenario(_) => {}
    }
    Ok(ExitCode::SUCCESS)
}

impl Command {
    /// Commands whose output is read by pipes (`| head`, `| grep -q`) and that
    /// own no terminal or workers a signal death would leave behind (verify's
    /// workers have the orphan guard).
    fn prints_for_a_pipe(&self) -> bool {
        matches!(
            self,
            Command::Completions { .. }
                | Command::Man { .. }
                | Command::Scenario(_)
                | Command::Verify(_)
                | Command::Kv(_)
                | Command::Ctl(_)
                | Command::Apps(_)
                | Command::Deploy(_)
                | Command::Package(_)
                | Command::Deployments(_)
        )
    }
}

/// A reader that stops early (`plumdash man | head`) ends us as it ends any
/// Unix filter: by SIGPIPE, status 141 in the shell, quietly. Rust ignores
/// SIGPIPE by default, so a closed pipe would be a write error or a panic.
fn pipe_closes_quietly() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: restores the default disposition before any thread is started;
    // no handler of ours runs.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// A controller URL argument (`--controller`, or `CONTROLLER_BASE`): checked
/// before anything starts, so a mistake is a usage error (exit 2).
fn controller_url(text: &str) -> Result<String, String> {
    crate::kv::check_base(text).map(|_| text.trim().to_string())
}

/// A duration argument: `200ms`, `2s`, `1m30s`. The error says how to write
/// one (humantime's alone says only where it stopped reading).
fn duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration ({e}); write e.g. 200ms, 2s or 1m30s"))
}

/// A listen address: `127.0.0.1:8080`, `[::1]:8080`, or a name and a port
/// (`localhost:8080`), the name resolved now; a loopback address is taken
/// first when the name has several.
fn listen_addr(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let addrs: Vec<std::net::SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| {
            format!("{text:?} is not an address to listen on ({e}); write e.g. 127.0.0.1:8080")
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.ip().is_loopback())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{text:?} names no address; write e.g. 127.0.0.1:8080"))
}

/// A command line whose flags do not go together: exit 2, like clap's own
/// usage errors, before anything starts.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The running plumdash, which also serves as the orphan guard.
fn this_binary() -> Result<PathBuf> {
    std::env::current_exe().context("finding the plumdash binary (for the orphan guard)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::NamespaceBy;
    use crate::supervisor::{RestartConfig, RestartPolicy};
    use std::time::Duration;

    /// Parses like `main` does, scenario applied.
    fn parse_with_scenario(args: &[&str]) -> Result<Cli, String> {
        let matches = Cli::command().try_get_matches_from(args).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let sub = matches.subcommand().map_or(&matches, |(_, m)| m);
        with_scenario(cli, sub).map_err(|(_, e)| e)
    }

    #[test]
    fn tour_and_bare_up_take_the_scenario_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[worker]\nstep = \"300ms\"\ninstances = 2\nnamespace_by = \"instance\"\n[restart]\npolicy = \"always\"\n\
             delay = \"0s\"\nmax_restarts = 4\nfailover = true\n[kills]\nat = 30\nevery_cycle = true\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let cli = parse_with_scenario(&["plumdash", "tour", "--scenario", file]).unwrap();
        let Some(Command::Tour(t)) = cli.command else {
            panic!("not tour")
        };
        assert_eq!(t.step, Some(Duration::from_millis(300)));
        assert_eq!(t.instances, 2);
        assert_eq!(t.namespace_by, NamespaceBy::Instance);
        assert_eq!(t.restart, RestartPolicy::Always);
        assert_eq!(t.restart_delay, Duration::ZERO);
        assert_eq!(t.max_restarts, Some(4));
        assert!(t.failover && t.kill_every_cycle);
        assert_eq!(t.kill_at, Some(30));
        // Untouched by the file: the defaults stay.
        assert_eq!(t.backoff_max, RestartConfig::default().backoff_max);
        let cli = parse_with_scenario(&[
            "plumdash",
            "--scenario",
            file,
            "--instances",
            "1",
            "--restart-delay",
            "2s",
            "--kill-at",
            "70",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.up.instances, 1);
        assert_eq!(cli.up.restart_delay, Duration::from_secs(2));
        assert_eq!(cli.up.kill_at, Some(70));
        assert_eq!(cli.up.step, Some(Duration::from_millis(300)));
        let err = parse_with_scenario(&["plumdash", "up", "--scenario", "/no/such.toml"]);
        assert!(err.is_err_and(|e| e.contains("/no/such.toml")));
    }

    /// `--listen` named, even as the default address, is that address or an
    /// error; left out, the default may give way to a free port.
    #[test]
    fn a_listen_address_named_is_exact_even_the_default_one() {
        let named =
            Cli::try_parse_from(["plumdash", "--listen", crate::controller::DEFAULT_LISTEN])
                .unwrap();
        assert!(named.up.listen.is_some());
        assert_eq!(
            named.up.listen_addr().to_string(),
            crate::controller::DEFAULT_LISTEN
        );
        let left_out = Cli::try_parse_from(["plumdash"]).unwrap();
        assert!(left_out.up.listen.is_none());
        assert_eq!(
            left_out.up.listen_addr().to_string(),
            crate::controller::DEFAULT_LISTEN
        );
    }

    /// `--listen` takes an address, or a name and a port (resolved now).
    #[test]
    fn a_listen_address_may_be_a_name_and_a_port() {
        assert_eq!(
            listen_addr("127.0.0.1:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        let local = listen_addr("localhost:8081").unwrap();
        assert!(local.ip().is_loopback() && local.port() == 8081, "{local}");
        let err = listen_addr("localhost").unwrap_err();
        assert!(err.contains("e.g. 127.0.0.1:8080"), "{err}");
    }

    /// `--help` shows the defaults as text; they must be the policy's own.
    #[test]
    fn restart_option_defaults_are_the_policy_defaults() {
        let cli = Cli::try_parse_from(["plumdash"]).unwrap();
        let defaults = RestartConfig::default();
        assert_eq!(cli.up.restart_delay, defaults.delay);
        assert_eq!(cli.up.crash_loop_under, defaults.crash_loop_under);
        assert_eq!(cli.up.backoff_initial, defaults.backoff_initial);
        assert_eq!(cli.up.backoff_max, defaults.backoff_max);
        assert_eq!(cli.up.max_restarts, defaults.max_restarts);
    }
}
