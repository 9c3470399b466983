//! `plumdash agent`: one node of the cluster API.

use super::auth::AuthArgs;
use crate::agent::AgentConfig;
use crate::kv::DEFAULT_CONTROLLER_BASE;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
#[command(mut_arg("token", |a| a.help(
    "Bearer token for the controller (also given to the workers as PLUM_TOKEN)."
)))]
pub struct AgentArgs {
    /// This node's id (nodeId in the cluster API, WORKER_NODE_ID for its workers).
    #[arg(long, env = "AGENT_NODE_ID", default_value = "nodeA")]
    node: String,
    /// The controller that assigns instances to this node.
    #[arg(long, env = "CONTROLLER_BASE", default_value = DEFAULT_CONTROLLER_BASE, value_parser = super::controller_url)]
    controller: String,
    /// The ip sent in heartbeats.
    #[arg(long, env = "AGENT_IP", default_value = "127.0.0.1")]
    ip: String,
    /// Work folders go to DIR/<node>/<instanceId>/ [default: plumdash-agent in the temp folder]
    #[arg(long, env = "AGENT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL when an instance is stopped.
    #[arg(long, default_value = "3s", value_parser = super::duration)]
    stop_grace: Duration,
    #[command(flatten)]
    auth: AuthArgs,
}

pub async fn run(args: AgentArgs) -> Result<()> {
    let config = AgentConfig {
        token: args.auth.token()?,
        ip: args.ip,
        data_dir: args.data_dir.unwrap_or_else(crate::paths::agent_data_dir),
        stop_grace: args.stop_grace,
        orphan_guard: Some(super::this_binary()?),
        ..AgentConfig::new(args.node, args.controller)
    };
    crate::agent::run(config).await
}
