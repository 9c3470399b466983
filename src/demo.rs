//! The `kv-demo` worker: a ten-step task that checkpoints every step into a
//! KV namespace and, after a crash, resumes from the last checkpoint.
//!
//! It prints the original Plum demo's lines (seed README) and writes its keys
//! (DESIGN.md), fixing the original's bugs: each checkpoint is one batch
//! (never torn), signals are awaited in the main loop rather than doing HTTP
//! inside a signal handler, and an unreachable controller is waited for
//! instead of being taken for a first start.
//!
//! Entry points: the `kv-demo` binary calls [`run_cli`]; `plumdash kv-demo`
//! embeds [`DemoArgs`] and awaits [`run`].

mod checkpoint;
mod config;
mod fsm;
pub mod keys;
mod recovery;
mod retry;
mod text;
mod txlog;
mod worker;

pub use checkpoint::{BinaryCheckpoint, Checkpoint, PERCENT_PER_STEP, TOTAL_STEPS};
pub use config::{Config, DemoArgs, NamespaceBy, NamespaceStrategy};
pub use recovery::{decide as decide_start, StartMode};
pub use worker::{Outcome, Worker};

use crate::kv::KvError;
use crate::signals::Termination;
use anyhow::{Context, Result};
use clap::Parser;
use std::process::ExitCode;

const LONG_ABOUT: &str = "\
Runs a ten-step task that checkpoints every step into a Plum KV namespace and \
resumes from the last checkpoint after a crash (kill -9).

Namespace: by default the app name (PLUM_APP_NAME), shared by every instance of \
the app, as in the original demo. `--namespace-by instance` uses the instance id \
(PLUM_INSTANCE_ID) instead; `--namespace NAME` (KV_DEMO_NAMESPACE) sets it outright.

On start: crash flag set and a task part-way → recovery block and resume; no flag \
but a task paused part-way (graceful stop) → normal start, resume; otherwise a new \
task from 0%. An unreachable controller is waited for (backoff up to 2 s), never \
taken for \"no saved state\".

Recovery pattern (the seed's 崩溃恢复模式): `--pattern checkpoint` (the default, \
above), `txlog` (operations applied then logged; replayed from the log, an operation \
already applied skipped) or `fsm` (a state machine restored in its saved state). \
`--unsafe` makes each wrong in its classic way, for teaching.

Exit status: 0 on completion or after SIGINT/SIGTERM, 1 on bad settings or when \
--give-up is reached.";

#[derive(Parser)]
#[command(
    name = "kv-demo",
    version,
    about = "Plum KV crash-recovery demo worker",
    long_about = LONG_ABOUT
)]
struct Cli {
    #[command(flatten)]
    args: DemoArgs,
}

/// Exit code of an instance the controller fenced off (its work was moved
/// to another node): it stops without writing again.
pub const EXIT_FENCED: u8 = 3;

/// Runs the worker until the task completes, SIGINT/SIGTERM stops it (both
/// exit 0), the controller fences it ([`EXIT_FENCED`]), or a fatal error (bad
/// settings, `--give-up` reached).
pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    // Handlers first, so a signal during start-up is a graceful stop too.
    let mut signals = Termination::install()?;
    let worker = Worker::new(Config::from_args(args)?)?;
    match worker.run(&mut signals).await {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(err) => match err.chain().find_map(|e| e.downcast_ref::<KvError>()) {
            Some(kv) if kv.is_fenced() => {
                eprintln!("kv-demo: stopping: {kv}");
                Ok(ExitCode::from(EXIT_FENCED))
            }
            _ => Err(err),
        },
    }
}

/// `main` of the `kv-demo` binary: parses arguments, runs, reports errors.
pub fn run_cli() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and succeed; a bad setting
        // is a fatal error like any other (exit 1, not clap's 2).
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(run(cli.args)));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("kv-demo: {err:#}");
            ExitCode::FAILURE
        }
    }
}
