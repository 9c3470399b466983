//! `plumdash ctl`: one request to a running `up`'s control socket, its
//! answer printed for a person (or as JSON).

use crate::ctl_socket::{default_socket_path, request, Request, TaskStatus};
use anyhow::Result;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// `plumdash ctl` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CtlArgs {
    /// The control socket [default: $XDG_RUNTIME_DIR/plumdash/<app>.sock].
    #[arg(long, global = true)]
    pub to: Option<PathBuf>,
    /// App name (picks the default socket).
    #[arg(long, default_value = "kv-demo", global = true)]
    pub app: String,
    #[command(subcommand)]
    pub command: Request,
}

/// Runs `plumdash ctl`: prints the answer; exit 1 when it was refused.
pub async fn run(args: CtlArgs) -> Result<ExitCode> {
    let path = args.to.unwrap_or_else(|| default_socket_path(&args.app));
    let human = matches!(args.command, Request::Status { json: false });
    let human_nodes = matches!(args.command, Request::Nodes { json: false });
    let answer = request(&path, &args.command).await?;
    // The answer quotes stored values (the checkpoint name): never raw to a terminal.
    let safe =
        |v: &Value| crate::text_safety::escape_controls(v.as_str().unwrap_or("?")).into_owned();
    if answer["ok"] != true {
        eprintln!("plumdash ctl: {}", safe(&answer["error"]));
        return Ok(ExitCode::FAILURE);
    }
    if human_nodes {
        let nodes = answer["nodes"].as_array().cloned().unwrap_or_default();
        if nodes.is_empty() {
            println!("no nodes (the controller serves no cluster API, or none has beaten)");
        }
        for n in &nodes {
            let instances: Vec<String> = n["instances"]
                .as_array()
                .into_iter()
                .flatten()
                .map(safe)
                .collect();
            println!(
                "{:<10} {:<9}{} agent {:<8} beat {:<6} instances {}",
                safe(&n["name"]),
                safe(&n["health"]),
                if n["frozen"] == true { " FROZEN" } else { "" },
                n["agent_pid"]
                    .as_u64()
                    .map_or("—".into(), |p| p.to_string()),
                n["heartbeat_age_s"]
                    .as_i64()
                    .map_or("—".into(), |s| format!("{s}s ago")),
                if instances.is_empty() {
                    "—".to_string()
                } else {
                    instances.join(", ")
                }
            );
        }
    } else if let Some(done) = answer["done"].as_str() {
        let done = crate::text_safety::escape_controls(done);
        match answer["node"].as_str() {
            Some(_) => println!("{} {done}", safe(&answer["node"])),
            // A remote instance's signal: the agent's own words name the node.
            None => println!("{done}"),
        }
    } else if human {
        for i in answer["instances"].as_array().into_iter().flatten() {
            println!(
                "{:<14} {:<20} pid {:<8} crashes {}",
                safe(&i["id"]),
                safe(&i["recovery"]["phase"]),
                i["pid"].as_u64().map_or("—".into(), |p| p.to_string()),
                i["crashes"]
            );
            let own = &i["recovery"]["task"];
            if own.is_object() {
                println!("  its task: {}", TaskStatus::describe(own));
            }
        }
        let t = &answer["task"];
        if t.is_object() {
            println!("task: {}", TaskStatus::describe(t));
        }
    } else {
        println!(
            "{}",
            crate::text_safety::escape_json_controls(&answer.to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_arguments_parse_into_requests() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            ctl: CtlArgs,
        }
        let cli = Cli::try_parse_from(["ctl", "signal", "INT", "kv-demo-002"]).unwrap();
        assert_eq!(
            cli.ctl.command,
            Request::Signal {
                signal: "INT".into(),
                instance: "kv-demo-002".into()
            }
        );
        let cli = Cli::try_parse_from(["ctl", "status", "--json"]).unwrap();
        assert_eq!(cli.ctl.command, Request::Status { json: true });
    }
}
