//! `plumdash deploy` and `plumdash deployments`: the Web UI's 创建部署 →
//! 选择节点 → 启动, from the shell, against any controller that serves the
//! cluster API (ours or the original).

use super::apps::json_line;
use super::auth::ClusterClientArgs;
use crate::text_safety::escape_controls;
use anyhow::{bail, Result};
use clap::Args;

#[derive(Args)]
pub struct DeployArgs {
    /// The uploaded app: NAME (its newest version) or NAME:VERSION.
    #[arg(long, value_name = "NAME[:VERSION]")]
    app: String,
    /// The node to run it on (its agent's --node).
    #[arg(long)]
    node: String,
    /// Instances of it on that node.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    replicas: u32,
    /// Start it at once (a deployment is created Stopped, as the original's).
    #[arg(long)]
    start: bool,
    /// The deployment's name [default: the app's name]
    #[arg(long)]
    name: Option<String>,
    /// Run this in the unpacked folder instead of ./start.sh (`sh -c CMD`).
    #[arg(long, value_name = "CMD")]
    start_cmd: Option<String>,
    #[command(flatten)]
    cluster: ClusterClientArgs,
}

pub async fn run_deploy(args: DeployArgs) -> Result<()> {
    if args.node.trim().is_empty() || args.node.chars().any(char::is_control) {
        bail!("--node {:?} is not a node name", args.node);
    }
    let client = args.cluster.client()?;
    // A node the controller has never heard from runs nothing: a mistyped
    // name would leave the deployment waiting for an agent that never comes.
    let nodes = client.nodes().await?;
    if !nodes.iter().any(|n| n.node_id == args.node) {
        let known: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
        let known = if known.is_empty() {
            "none yet".to_string()
        } else {
            known.join(", ")
        };
        bail!(
            "no node {:?} has sent a heartbeat to {} (known: {}); start its agent first (`plumdash agent --node {}`)",
            args.node,
            client.base(),
            escape_controls(&known),
            escape_controls(&args.node)
        );
    }
    let app = client.find_app(&args.app).await?;
    let name = args.name.unwrap_or_else(|| app.name.clone());
    let created = client
        .deploy(
            &name,
            &app,
            &args.node,
            args.replicas,
            args.start_cmd.as_deref().unwrap_or(""),
        )
        .await?;
    if args.start {
        client.set_running(&created.deployment_id, true).await?;
    }
    if args.cluster.json {
        println!("{}", json_line(&created)?);
        return Ok(());
    }
    let state = if args.start {
        "Running".to_string()
    } else {
        format!(
            "Stopped (start it: plumdash deployments start {})",
            created.deployment_id
        )
    };
    let line = format!(
        "deployment {} ({} {} on {} ×{}): {state}",
        created.deployment_id, app.name, app.version, args.node, args.replicas,
    );
    println!("{}", escape_controls(&line));
    println!(
        "instances: {}",
        escape_controls(&created.instances.join(", "))
    );
    Ok(())
}

#[derive(Args)]
#[command(mut_arg("token", |a| a.global(true)), mut_arg("token_file", |a| a.global(true)))]
pub struct DeploymentsArgs {
    #[command(flatten)]
    cluster: ClusterClientArgs,
    #[command(subcommand)]
    command: Option<DeploymentsCommand>,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum DeploymentsCommand {
    /// List the deployments: id, name, status, instances (the default).
    #[command(name = "ls")]
    List,
    /// Start a deployment: its instances run on their nodes.
    Start { id: String },
    /// Stop a deployment: its agents stop its instances.
    Stop { id: String },
    /// Delete a deployment and its assignments (their agents stop them).
    Delete { id: String },
}

pub async fn run_deployments(args: DeploymentsArgs) -> Result<()> {
    let client = args.cluster.client()?;
    let (id, done) = match args.command.unwrap_or(DeploymentsCommand::List) {
        DeploymentsCommand::List => {
            let list = client.deployments().await?;
            if args.cluster.json {
                println!("{}", json_line(&list)?);
            } else if list.is_empty() {
                println!("no deployments on {}", client.base());
            } else {
                for d in &list {
                    let line = format!(
                        "{}  {}  {}  {} instance(s)",
                        d.deployment_id, d.name, d.status, d.instances
                    );
                    println!("{}", escape_controls(&line));
                }
            }
            return Ok(());
        }
        DeploymentsCommand::Start { id } => {
            client.set_running(&id, true).await?;
            (id, "started")
        }
        DeploymentsCommand::Stop { id } => {
            client.set_running(&id, false).await?;
            (id, "stopped")
        }
        DeploymentsCommand::Delete { id } => {
            client.delete_deployment(&id).await?;
            (id, "deleted")
        }
    };
    if !args.cluster.json {
        println!("deployment {} {done}", escape_controls(&id));
    }
    Ok(())
}
