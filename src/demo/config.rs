//! The worker's settings: command-line flags, each with the environment
//! variable the Plum agent (or a test) sets, resolved into a `Config`.

pub use crate::kv::NamespaceBy;
use crate::kv::{model::validate_namespace, DEFAULT_CONTROLLER_BASE};
pub use crate::recovery::Pattern;
use anyhow::{anyhow, Result};
use std::time::Duration;

/// Arguments of `kv-demo` (and of `plumdash kv-demo`, which embeds them).
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Instance id (the Plum agent injects it).
    #[arg(long, env = "PLUM_INSTANCE_ID", default_value = "kv-demo-001")]
    pub instance_id: String,

    /// Application name (the Plum agent injects it).
    #[arg(long, env = "PLUM_APP_NAME", default_value = "kv-demo")]
    pub app_name: String,

    /// KV controller base URL.
    #[arg(long, env = "CONTROLLER_BASE", default_value = DEFAULT_CONTROLLER_BASE)]
    pub controller: String,

    /// Which name is the KV namespace: `app` shares one state between all
    /// instances of the app (the original's choice, allows fail-over),
    /// `instance` gives each instance its own. Ignored when --namespace is set.
    #[arg(long, env = "KV_DEMO_NAMESPACE_BY", value_enum, default_value_t = NamespaceBy::App)]
    pub namespace_by: NamespaceBy,

    /// A custom namespace; takes precedence over --namespace-by.
    #[arg(long, env = "KV_DEMO_NAMESPACE")]
    pub namespace: Option<String>,

    /// Time between steps: `2s`, `50ms`, … or a bare number of milliseconds.
    #[arg(long, env = "KV_DEMO_STEP_MS", default_value = "2s", value_parser = parse_step)]
    pub step: Duration,

    /// Exit 1 once the controller has been unreachable this long without a
    /// break (`30s`, `5m`, or milliseconds) [default: wait forever].
    #[arg(long, env = "KV_DEMO_GIVE_UP", value_parser = parse_duration)]
    pub give_up: Option<Duration>,

    /// The seed's recovery pattern: `checkpoint` (模式1, resume from the last
    /// checkpoint), `txlog` (模式2, replay the transaction log) or `fsm`
    /// (模式3, restore the state machine).
    #[arg(long, env = "KV_DEMO_PATTERN", default_value = "checkpoint", value_parser = parse_pattern)]
    pub pattern: Pattern,

    /// Make the pattern wrong in its classic way, for teaching: checkpoint
    /// before the work (a step lost), replay without idempotence (an
    /// operation applied twice), restart the machine from INIT.
    #[arg(long = "unsafe", env = "KV_DEMO_UNSAFE")]
    pub unsafe_mode: bool,
}

fn parse_pattern(s: &str) -> Result<Pattern, String> {
    Pattern::from_word(s.trim())
        .ok_or_else(|| format!("{s:?} is not a pattern (checkpoint, txlog, fsm)"))
}

/// Where the namespace name came from; the banner shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceStrategy {
    AppName,
    InstanceId,
    Custom,
}

/// Resolved, validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub instance_id: String,
    pub app_name: String,
    pub controller: String,
    pub namespace: String,
    pub strategy: NamespaceStrategy,
    pub step: Duration,
    pub give_up: Option<Duration>,
    pub pattern: Pattern,
    /// `--unsafe`: the pattern's classic mistake, on purpose.
    pub unsafe_mode: bool,
}

impl Config {
    pub fn from_args(args: DemoArgs) -> Result<Config> {
        let (namespace, strategy) = match (args.namespace, args.namespace_by) {
            (Some(custom), _) => (custom, NamespaceStrategy::Custom),
            (None, by) => (
                by.namespace(&args.app_name, &args.instance_id).to_string(),
                match by {
                    NamespaceBy::App => NamespaceStrategy::AppName,
                    NamespaceBy::Instance => NamespaceStrategy::InstanceId,
                },
            ),
        };
        validate_namespace(&namespace).map_err(|e| anyhow!("bad namespace: {e}"))?;
        Ok(Config {
            instance_id: args.instance_id,
            app_name: args.app_name,
            controller: args.controller,
            namespace,
            strategy,
            step: args.step,
            give_up: args.give_up,
            pattern: args.pattern,
            unsafe_mode: args.unsafe_mode,
        })
    }
}

/// A humantime duration (`50ms`, `2s`) or bare milliseconds (`50`), so
/// `KV_DEMO_STEP_MS=50` and `--step 50ms` both work.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration ({e})"))
}

fn parse_step(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) {
        return Err("the step must be at least 1ms".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: DemoArgs,
    }

    fn config(argv: &[&str]) -> Result<Config> {
        let cli = Cli::try_parse_from(std::iter::once("kv-demo").chain(argv.iter().copied()))?;
        Config::from_args(cli.args)
    }

    #[test]
    fn durations_accept_humantime_and_bare_milliseconds() {
        assert_eq!(parse_duration("50"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_step("0").is_err());
    }

    #[test]
    fn namespace_follows_the_chosen_strategy() {
        let c = config(&["--app-name", "shop", "--instance-id", "shop-7"]).unwrap();
        assert_eq!(
            (c.namespace.as_str(), c.strategy),
            ("shop", NamespaceStrategy::AppName)
        );
        let c = config(&["--instance-id", "shop-7", "--namespace-by", "instance"]).unwrap();
        assert_eq!(c.namespace, "shop-7");
        assert_eq!(c.strategy, NamespaceStrategy::InstanceId);
        let c = config(&["--namespace", "global", "--namespace-by", "instance"]).unwrap();
        assert_eq!(
            (c.namespace.as_str(), c.strategy),
            ("global", NamespaceStrategy::Custom)
        );
        assert!(config(&["--namespace", "a/b"]).is_err());
        assert!(config(&["--step", "0ms"]).is_err());
    }

    #[test]
    fn the_pattern_defaults_to_checkpoint() {
        let c = config(&[]).unwrap();
        assert_eq!((c.pattern, c.unsafe_mode), (Pattern::Checkpoint, false));
        let c = config(&["--pattern", "txlog", "--unsafe"]).unwrap();
        assert_eq!((c.pattern, c.unsafe_mode), (Pattern::TxLog, true));
        assert!(config(&["--pattern", "wal"]).is_err());
    }
}
