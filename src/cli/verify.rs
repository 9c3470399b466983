//! `plumdash verify`: its arguments, checked in one place into a
//! [`VerifyConfig`] (a bad one is one line and exit 2), then the run.

use super::auth::AuthArgs;
use crate::clock::now_ms;
use crate::supervisor::split_command_line;
use crate::verify::nodes::{NodeFault, NodeScenario};
use crate::verify::schedule::KillSchedule;
use crate::verify::{ReportOutputs, VerifyConfig, DEFAULT_STEP};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub async fn run(args: VerifyArgs) -> ExitCode {
    let config = match args.config() {
        Ok(config) => config,
        Err(reason) => {
            eprintln!("plumdash verify: {reason}");
            return ExitCode::from(2);
        }
    };
    // Ctrl-C, SIGTERM or a closed terminal: the run is dropped (its workers
    // and embedded controller with it) and says so, instead of dying silent.
    let mut signals = match crate::signals::Termination::install_with_hangup() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("plumdash verify: {e:#}");
            return ExitCode::from(2);
        }
    };
    tokio::select! {
        code = crate::verify::main(config) => code,
        signal = signals.recv() => {
            eprintln!("plumdash verify: interrupted by signal {signal}: no verdict");
            ExitCode::from(u8::try_from(128 + signal).unwrap_or(130))
        }
    }
}

/// `plumdash verify` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Read the worker, restart, kill and outage settings from this scenario file
    /// (TOML, see `plumdash scenario example`); flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Kill cycles (SIGKILL → restart → resume) to run [default: 3; with
    /// --kill-node or --freeze-node: 1].
    #[arg(long)]
    pub cycles: Option<u32>,
    /// Kill every cycle at this progress (1..99, rounded up to the next step).
    #[arg(long)]
    pub kill_at: Option<u8>,
    /// Kill at random progress points (reproducible with --seed).
    #[arg(long)]
    pub kill_random: bool,
    /// Seed for --kill-random [default: from the clock, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker step interval (KV_DEMO_STEP_MS), e.g. 50ms [default: the worker's, 2s].
    #[arg(long, value_parser = super::duration)]
    pub step: Option<Duration>,
    /// Verify this worker instead of the bundled kv-demo, e.g. "./kv-demo-cpp".
    #[arg(long)]
    pub cmd: Option<String>,
    /// Use this controller instead of an embedded one (invariant 6 is then skipped).
    /// Its app namespace must be empty, or --reset-namespace given.
    #[arg(long, value_parser = super::controller_url)]
    pub controller: Option<String>,
    /// With --controller: delete the keys already in the app's namespace first.
    #[arg(long, requires = "controller")]
    pub reset_namespace: bool,
    /// App name: PLUM_APP_NAME and the namespace.
    #[arg(long, default_value = "kv-demo")]
    pub app: String,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Print the JSON report to stdout instead of the table (live lines go to stderr).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Also write a JUnit XML report to this file (for CI test views).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write a self-contained HTML report with the progress plot to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// How long the controller stays down for invariant 6 [default: 30 steps, 1–5 s].
    #[arg(long, hide = true, value_parser = super::duration)]
    pub outage: Option<Duration>,
    /// Wait before the supervisor restarts a killed worker.
    #[arg(long, hide = true, default_value = "200ms", value_parser = super::duration)]
    pub restart_delay: Duration,
    /// Longest wait for any one expected event [default: 10 s + 10 steps].
    #[arg(long, hide = true, value_parser = super::duration)]
    pub patience: Option<Duration>,
    /// The node scenario: run N node agents (2..26) and, at each kill point,
    /// kill (--kill-node) or freeze (--freeze-node) the node running the instance.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=26))]
    pub nodes: Option<u8>,
    /// With --nodes: SIGKILL the node (its agent and workers): a machine dying.
    #[arg(long)]
    pub kill_node: bool,
    /// With --nodes: freeze the node (SIGSTOP), thaw it once its work has moved.
    #[arg(long)]
    pub freeze_node: bool,
    #[command(flatten)]
    pub reading: super::reading::ReadingArgs,
    /// The bundled kv-demo makes its pattern's classic mistake (checkpoint
    /// before the work, replay without idempotence, restart the machine from
    /// INIT): verify must fail it.
    #[arg(long = "unsafe")]
    pub unsafe_worker: bool,
    /// With --nodes: cut the node's link both ways (each node a test host:
    /// needs root, ip, nft, unshare), heal it once its work has moved.
    #[arg(long)]
    pub partition_node: bool,
    /// With --nodes: cut the node's link one way (it hears the controller but
    /// cannot reach it; with --cycles 2 the reverse next), heal it after the move.
    #[arg(long)]
    pub partition_oneway: bool,
    /// With --nodes: degrade the node's link, e.g. "loss 30%" or "delay 200ms
    /// loss 5%" (delay needs the kernel's netem; loss is done with nftables),
    /// then heal it.
    #[arg(long, value_name = "SPEC")]
    pub netem: Option<String>,
}

impl VerifyArgs {
    /// Checks the arguments; the error is the one-line reason for exit 2.
    pub fn config(&self) -> Result<VerifyConfig, String> {
        let args = self;
        let nodes = node_scenario(args)?;
        let cycles = args.cycles.unwrap_or(if nodes.is_some() { 1 } else { 3 });
        if cycles == 0 {
            return Err("--cycles must be at least 1".into());
        }
        if nodes.is_some() && args.kill_at.is_some() && cycles > 1 {
            return Err(
                "--kill-at with --nodes takes --cycles 1 (the faults share one task)".into(),
            );
        }
        if args.kill_at.is_some() && args.kill_random {
            return Err("--kill-at and --kill-random exclude each other".into());
        }
        if args.seed.is_some() && !args.kill_random {
            return Err("--seed only applies to --kill-random".into());
        }
        let schedule = match (args.kill_at, args.kill_random) {
            (Some(pct), _) if !(1..=99).contains(&pct) => {
                return Err(format!("--kill-at {pct} is outside 1..99"))
            }
            (Some(pct), _) => KillSchedule::At(pct),
            (None, true) => KillSchedule::Random {
                seed: args.seed.unwrap_or_else(now_ms),
            },
            (None, false) => KillSchedule::Spread,
        };
        if args.step.is_some_and(|s| s.is_zero()) {
            return Err("--step must be more than 0".into());
        }
        if let Some(cmd) = &args.cmd {
            check_program(cmd)?;
        }
        if let Some(url) = &args.controller {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("--controller {url:?} is not an http(s) URL"));
            }
        }
        for (flag, path) in [
            ("--report", &args.report),
            ("--junit", &args.junit),
            ("--html", &args.html),
        ] {
            if let Some(path) = path {
                check_output(flag, path)?;
            }
        }
        let step = args.step.unwrap_or(DEFAULT_STEP);
        Ok(VerifyConfig {
            cycles,
            schedule,
            step: args.step,
            cmd: args.cmd.clone(),
            controller: args.controller.clone(),
            app: args.app.clone(),
            token: args.auth.token().map_err(|e| format!("{e:#}"))?,
            reset_namespace: args.reset_namespace,
            outage: args.outage.unwrap_or_else(|| {
                (step * 30).clamp(Duration::from_secs(1), Duration::from_secs(5))
            }),
            restart_delay: args.restart_delay,
            patience: args
                .patience
                .unwrap_or_else(|| Duration::from_secs(10) + step * 10),
            live_to_stderr: args.json,
            orphan_guard: None,
            nodes,
            keys: args.reading.key_map()?,
            pattern: args.reading.pattern,
            unsafe_worker: args.unsafe_worker,
            outputs: ReportOutputs {
                json: args.json,
                report: args.report.clone(),
                junit: args.junit.clone(),
                html: args.html.clone(),
            },
        })
    }
}

/// `--nodes` with exactly one of `--kill-node` / `--freeze-node`, and none of
/// what only the kill cycles have.
fn node_scenario(args: &VerifyArgs) -> Result<Option<NodeScenario>, String> {
    let faults: Vec<(&str, NodeFault)> = [
        ("--kill-node", args.kill_node, NodeFault::Kill),
        ("--freeze-node", args.freeze_node, NodeFault::Freeze),
        (
            "--partition-node",
            args.partition_node,
            NodeFault::Partition,
        ),
        (
            "--partition-oneway",
            args.partition_oneway,
            NodeFault::PartitionOneway,
        ),
        ("--netem", args.netem.is_some(), NodeFault::Netem),
    ]
    .into_iter()
    .filter(|(_, given, _)| *given)
    .map(|(flag, _, fault)| (flag, fault))
    .collect();
    let fault = match faults.as_slice() {
        [] => None,
        [(_, fault)] => Some(*fault),
        [(a, _), (b, _), ..] => return Err(format!("{a} and {b} exclude each other")),
    };
    let netem = match &args.netem {
        Some(spec) => Some(
            spec.parse::<crate::hosts::Netem>()
                .map_err(|e| format!("--netem: {e}"))?,
        ),
        None => None,
    };
    let (nodes, fault) = match (args.nodes, fault) {
        (None, None) => return Ok(None),
        (Some(nodes), Some(fault)) => (nodes, fault),
        (Some(_), None) => {
            return Err("--nodes needs a fault: --kill-node or --freeze-node (or \
                 --partition-node, --partition-oneway, --netem SPEC)"
                .into())
        }
        (None, Some(fault)) if fault.needs_hosts() => {
            return Err(
                "--partition-node, --partition-oneway and --netem need --nodes N (2 or more)"
                    .into(),
            )
        }
        (None, Some(_)) => {
            return Err("--kill-node and --freeze-node need --nodes N (2 or more)".into())
        }
    };
    for (flag, given) in [
        ("--controller", args.controller.is_some()),
        ("--kill-random", args.kill_random),
        ("--junit", args.junit.is_some()),
        ("--html", args.html.is_some()),
    ] {
        if given {
            return Err(format!("{flag} is not for the node scenario (--nodes)"));
        }
    }
    Ok(Some(NodeScenario {
        nodes,
        fault,
        netem,
    }))
}

/// A report file must be writable where it is asked for; found out before
/// the run rather than after it.
fn check_output(flag: &str, path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(format!("{flag} {}: is a folder", path.display()));
    }
    if !dir.is_dir() {
        return Err(format!(
            "{flag} {}: no folder {}",
            path.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// The program of a `--cmd` line must exist and be executable.
fn check_program(cmd: &str) -> Result<(), String> {
    let words = split_command_line(cmd).map_err(|e| format!("--cmd: {e}"))?;
    let Some(program) = words.first() else {
        return Err("--cmd is empty".into());
    };
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        executable(Path::new(program))
    } else {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| executable(&d.join(program))))
    };
    if found {
        Ok(())
    } else {
        Err(format!("--cmd: {program}: no such executable"))
    }
}
