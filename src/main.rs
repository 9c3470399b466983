//! `plumdash`: argument parsing and dispatch. What each command does lives in
//! the library (`plumdash::commands`, `controller`, `supervisor`, `tui`, …).

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use plumdash::commands::kv::KvCommand;
use plumdash::controller::{self, ControllerConfig};
use plumdash::kv::{DistributedMemory, ValueType, DEFAULT_CONTROLLER_BASE};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "plumdash",
    version,
    about = "A terminal dashboard for watching a program survive crashes",
    long_about = "plumdash runs (or attaches to) kv-demo workers that checkpoint their progress \
                  into a Plum-compatible KV store, shows the crash → restart → resume cycle \
                  live, and lets you cause it with one key."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Plum-compatible KV controller (HTTP + SQLite) in the foreground.
    Controller(ControllerArgs),
    /// Read and write a namespace of a KV controller.
    Kv(KvArgs),
}

#[derive(Args)]
struct ControllerArgs {
    /// Address to listen on. Anything but loopback must be given explicitly.
    #[arg(long, default_value = controller::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// SQLite database file [default: $XDG_STATE_HOME/plumdash/plum-kv.db]
    #[arg(long)]
    db: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on every request.
    #[arg(long, env = "PLUM_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Args)]
struct KvArgs {
    /// Controller base URL.
    #[arg(long, env = "CONTROLLER_BASE", default_value = DEFAULT_CONTROLLER_BASE, global = true)]
    controller: String,
    /// Namespace (the worker uses its app name).
    #[arg(
        short,
        long,
        env = "PLUM_APP_NAME",
        default_value = "kv-demo",
        global = true
    )]
    namespace: String,
    /// Print JSON instead of a human table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: KvSub,
}

#[derive(Subcommand)]
enum KvSub {
    /// List the namespace's keys (or, with --namespaces, every namespace).
    Ls {
        /// Only keys starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// List namespaces instead of keys.
        #[arg(long)]
        namespaces: bool,
    },
    /// Print one key's value (exit 1 if absent).
    Get { key: String },
    /// Write one key.
    Put {
        key: String,
        value: String,
        /// string, int, double, bool or bytes (base64).
        #[arg(short = 't', long = "type", default_value = "string")]
        value_type: ValueType,
    },
    /// Delete one key.
    Rm { key: String },
    /// Print every change to the namespace as it happens.
    Watch,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("plumdash: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Controller(args) => {
                let config = ControllerConfig {
                    listen: args.listen,
                    db: args.db.unwrap_or_else(controller::default_db_path),
                    token: args.token.filter(|t| !t.is_empty()),
                    fallback_to_free_port: false,
                };
                controller::run_foreground(config).await?;
            }
            Command::Kv(args) => {
                let dm = DistributedMemory::create(&args.namespace, &args.controller)?;
                let cmd = match args.command {
                    KvSub::Ls { prefix, namespaces } => KvCommand::List { namespaces, prefix },
                    KvSub::Get { key } => KvCommand::Get { key },
                    KvSub::Put {
                        key,
                        value,
                        value_type,
                    } => KvCommand::Put {
                        key,
                        value,
                        value_type,
                    },
                    KvSub::Rm { key } => KvCommand::Remove { key },
                    KvSub::Watch => KvCommand::Watch,
                };
                plumdash::commands::kv::run(&dm, cmd, args.json).await?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
