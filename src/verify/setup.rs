//! Before the worker starts: an empty namespace on a remote controller, or a scratch directory.

use super::config::VerifyConfig;
use crate::clock::now_ms;
use crate::kv::{ClientOptions, DistributedMemory};
use anyhow::{Context, Result};
use std::path::PathBuf;

pub(super) async fn clear_namespace(url: &str, config: &VerifyConfig) -> Result<()> {
    let dm = DistributedMemory::with_options(
        &config.app,
        url,
        ClientOptions {
            token: config.token.clone(),
            ..ClientOptions::default()
        },
    )?;
    let entries = dm
        .get_all()
        .await
        .with_context(|| format!("cannot reach the controller at {url}"))?;
    if !entries.is_empty() && !config.reset_namespace {
        anyhow::bail!(
            "namespace {} on {url} holds {} keys; verify needs it empty: pass --reset-namespace \
             to delete them, or --app another name",
            config.app,
            entries.len()
        );
    }
    for e in &entries {
        dm.remove(&e.key)
            .await
            .with_context(|| format!("clearing {} in namespace {}", e.key, config.app))?;
    }
    if !entries.is_empty() {
        eprintln!(
            "plumdash verify: cleared {} keys of namespace {} for a fresh start",
            entries.len(),
            config.app
        );
    }
    Ok(())
}

/// A private directory for the embedded controller's database.
pub(super) struct Scratch {
    pub(super) dir: PathBuf,
}

impl Scratch {
    pub(super) fn new() -> Result<Scratch> {
        let dir = std::env::temp_dir().join(format!(
            "plumdash-verify-{}-{}",
            std::process::id(),
            now_ms()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch { dir })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
