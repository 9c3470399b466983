//! `plumdash controller`: the Plum-compatible KV controller in the foreground,
//! and the cluster clocks it shares with `up`.

use super::auth::AuthArgs;
use crate::controller::{self, ClusterTiming, ControllerConfig};
use anyhow::Result;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
#[command(mut_arg("token", |a| a.help("Require `Authorization: Bearer TOKEN` on every request.")))]
pub struct ControllerArgs {
    /// Address to listen on. Anything but loopback needs a token.
    #[arg(long, default_value = controller::DEFAULT_LISTEN, value_parser = super::listen_addr)]
    listen: SocketAddr,
    /// SQLite database file [default: $XDG_STATE_HOME/plumdash/plum-kv.db]
    #[arg(long)]
    db: Option<PathBuf>,
    /// Largest app package `POST /v1/apps/upload` takes, e.g. 64MiB or 1GiB
    /// (413 above it).
    #[arg(long, default_value = "256MiB", value_parser = byte_size)]
    max_upload: u64,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// `512KiB`, `64MiB`, `1GiB` (or `M`, `G`, `MB`…, all powers of 1024) or plain bytes.
fn byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{text:?} is not a size; write e.g. 64MiB or 1GiB")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not a size; write e.g. 64MiB or 1GiB"))
}

/// The embedded controller's cluster clocks.
#[derive(Args, Clone)]
pub struct ClusterArgs {
    /// A node whose last heartbeat is older than this is Unhealthy and its
    /// instances move (a plumdash agent that dies is seen at once).
    #[arg(long, default_value = "3s", value_parser = positive_duration)]
    node_ttl: Duration,
    /// The failover pass runs at least this often (and whenever a node's TTL
    /// runs out).
    #[arg(long, default_value = "1s", value_parser = positive_duration)]
    failover_interval: Duration,
}

impl ClusterArgs {
    pub fn timing(&self) -> ClusterTiming {
        ClusterTiming {
            node_ttl: self.node_ttl,
            failover_interval: self.failover_interval,
            ..Default::default()
        }
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match super::duration(text)? {
        d if d.is_zero() => Err("must be longer than 0 (e.g. 500ms)".into()),
        d => Ok(d),
    }
}

pub async fn run(args: ControllerArgs) -> Result<()> {
    let config = ControllerConfig {
        listen: args.listen,
        db: args.db.unwrap_or_else(crate::paths::default_db_path),
        token: args.auth.token()?,
        fallback_to_free_port: false,
        cluster: args.cluster.timing(),
        max_upload: args.max_upload,
    };
    if let Some(why) = controller::exposure_refused(config.listen, config.token.as_deref()) {
        return Err(super::UsageError(why).into());
    }
    controller::run_foreground(config).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_powers_of_1024_and_nonsense_says_how_to_write_one() {
        assert_eq!(byte_size("256MiB"), Ok(256 << 20));
        assert_eq!(byte_size("1g"), Ok(1 << 30));
        assert_eq!(byte_size("512 KB"), Ok(512 << 10));
        assert_eq!(byte_size("4096"), Ok(4096));
        for bad in ["", "0", "1.5MiB", "lots", "12PB"] {
            assert!(byte_size(bad).is_err_and(|e| e.contains("64MiB")), "{bad}");
        }
    }
}
