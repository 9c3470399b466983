//! The token flags, declared once and flattened into every command that
//! talks to (or is) a controller; and with them the flags of the cluster
//! commands (`apps`, `deploy`, `deployments`).

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// `--token` (or `PLUM_TOKEN`) and `--token-file`.
#[derive(Args, Clone, Debug, Default)]
pub struct AuthArgs {
    /// Bearer token for the controller.
    #[arg(long, env = "PLUM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the bearer token from this file's first line (keeps it out of `ps`;
    /// overrides --token and PLUM_TOKEN).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

/// `--controller`, `--json` and the token flags: what `apps`, `deploy` and
/// `deployments` share (global: they may follow a subcommand).
#[derive(Args, Clone, Debug)]
pub struct ClusterClientArgs {
    /// Controller base URL.
    #[arg(long, env = "CONTROLLER_BASE", default_value = crate::kv::DEFAULT_CONTROLLER_BASE, global = true, value_parser = super::controller_url)]
    pub controller: String,
    /// Print the controller's own answer as JSON instead of lines.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub auth: AuthArgs,
}

impl ClusterClientArgs {
    /// A client of the controller, with the token.
    pub fn client(&self) -> Result<crate::cluster::admin::ClusterClient> {
        crate::cluster::admin::ClusterClient::new(&self.controller, self.auth.token()?)
    }
}

impl AuthArgs {
    /// The token to use, if any (see [`resolve_token`]).
    pub fn token(&self) -> Result<Option<String>> {
        resolve_token(self.token.clone(), self.token_file.as_deref())
    }
}

/// The token from `--token` (or `PLUM_TOKEN`) or `--token-file` (its first
/// line, trimmed; it overrides the other two). An empty one is refused: it
/// would turn authentication off.
pub fn resolve_token(token: Option<String>, token_file: Option<&Path>) -> Result<Option<String>> {
    if let Some(path) = token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --token-file {}", path.display()))?;
        let first = text.lines().next().unwrap_or("").trim();
        if first.is_empty() {
            return Err(
                super::UsageError(format!("--token-file {} is empty", path.display())).into(),
            );
        }
        return Ok(Some(first.to_string()));
    }
    // A command-line mistake, told before anything starts (exit 2).
    match token {
        Some(t) if t.trim().is_empty() => Err(super::UsageError(
            "the token (--token or PLUM_TOKEN) is empty; give a real one, or leave both unset"
                .into(),
        )
        .into()),
        other => Ok(other),
    }
}
