//! `plumdash package` (the seed's `build.sh`: kv-demo.zip) and `plumdash
//! apps` (the controller's app API: list, upload, delete), as the original's
//! Web UI uploads a package before it is deployed.

use super::auth::ClusterClientArgs;
use crate::cluster::model::AppInfo;
use crate::text_safety::{escape_controls, escape_json_controls};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct PackageArgs {
    /// Where to write the zip.
    #[arg(long, default_value = "kv-demo.zip")]
    out: PathBuf,
    /// meta.ini's name: the app name (its workers' PLUM_APP_NAME and KV namespace).
    #[arg(long, default_value = "kv-demo")]
    name: String,
    /// meta.ini's version (a controller takes one name and version once).
    #[arg(long = "app-version", value_name = "VERSION", default_value = env!("CARGO_PKG_VERSION"))]
    version: String,
    /// The worker program to package as `kv-demo` [default: the kv-demo beside plumdash]
    #[arg(long, value_name = "PATH")]
    worker: Option<PathBuf>,
}

/// Writes the zip; prints where and what is in it.
pub fn run_package(args: PackageArgs) -> Result<()> {
    for (what, text) in [("--name", &args.name), ("--app-version", &args.version)] {
        if text.trim().is_empty() || text.chars().any(char::is_control) || text.trim() != text {
            bail!("{what} {text:?} must be one line of text without surrounding spaces");
        }
    }
    let worker = match args.worker {
        Some(path) => path,
        None => crate::supervisor::bundled_worker_path()?,
    };
    let made = crate::artifact::package(&args.out, &args.name, &args.version, &worker)?;
    println!(
        "{}: start.sh, meta.ini (name={}, version={}), kv-demo from {}; the zip is {:.1} MiB",
        made.path.display(),
        args.name,
        args.version,
        worker.display(),
        made.bytes as f64 / f64::from(1 << 20)
    );
    Ok(())
}

#[derive(Args)]
#[command(mut_arg("token", |a| a.global(true)), mut_arg("token_file", |a| a.global(true)))]
pub struct AppsArgs {
    #[command(flatten)]
    cluster: ClusterClientArgs,
    #[command(subcommand)]
    command: Option<AppsCommand>,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum AppsCommand {
    /// List the uploaded apps, newest first (the default).
    #[command(name = "ls")]
    List,
    /// Upload a package (a zip with start.sh and meta.ini, e.g. from `plumdash package`).
    Upload { file: PathBuf },
    /// Delete an uploaded app by its id (refused while a deployment uses it).
    #[command(name = "rm")]
    Remove { id: String },
}

pub async fn run_apps(args: AppsArgs) -> Result<()> {
    let client = args.cluster.client()?;
    match args.command.unwrap_or(AppsCommand::List) {
        AppsCommand::List => {
            let apps = client.apps().await?;
            if args.cluster.json {
                println!("{}", json_line(&apps)?);
            } else if apps.is_empty() {
                println!("no apps uploaded to {}", client.base());
            } else {
                for app in &apps {
                    println!("{}", app_line(app));
                }
            }
        }
        AppsCommand::Upload { file } => {
            let app = client.upload(&file).await?;
            if args.cluster.json {
                println!("{}", json_line(&app)?);
            } else {
                println!("uploaded {}", app_line(&app));
            }
        }
        AppsCommand::Remove { id } => {
            client.delete_app(&id).await?;
            if !args.cluster.json {
                println!("deleted app {}", escape_controls(&id));
            }
        }
    }
    Ok(())
}

/// `kv-demo 0.1.0  /artifacts/…zip  45.1 MiB  id …`, escaped.
fn app_line(app: &AppInfo) -> String {
    let line = format!(
        "{} {}  {}  {:.1} MiB  id {}",
        app.name,
        app.version,
        app.url,
        app.size_bytes as f64 / f64::from(1 << 20),
        app.artifact_id
    );
    escape_controls(&line).into_owned()
}

pub(super) fn json_line(value: &impl serde::Serialize) -> Result<String> {
    let text = serde_json::to_string(value).context("writing JSON")?;
    Ok(escape_json_controls(&text).into_owned())
}
