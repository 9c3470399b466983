//! Scenario files (`--scenario FILE`, TOML) for `up`, `tour` and `verify`:
//! the worker, its restart rules, the kill schedule and the controller outage
//! in one reviewable file. Flags given on the command line override it.
//!
//! A bad file is refused before anything starts, in one line naming the file,
//! the line and the key (toml's spans, `deny_unknown_fields` for typos).

use crate::supervisor::RestartPolicy;
use serde::{Deserialize, Deserializer};
use std::path::Path;
use std::time::Duration;

/// A commented example that runs as is (`plumdash scenario example`).
pub const EXAMPLE: &str = include_str!("scenario/example.toml");

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub worker: Worker,
    #[serde(default)]
    pub restart: Restart,
    #[serde(default)]
    pub kills: Kills,
    #[serde(default)]
    pub outage: Outage,
    /// Which of the app's keys plays which role (`role = "name"`, as `--key`).
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    /// Command line of the worker [default: the bundled kv-demo].
    pub cmd: Option<String>,
    #[serde(default, deserialize_with = "duration")]
    pub step: Option<Duration>,
    /// `up` and `tour` only: `verify` follows one worker.
    #[serde(default, deserialize_with = "instances")]
    pub instances: Option<u16>,
    pub app: Option<String>,
    /// `up` and `tour`: `app` (one shared namespace) or `instance` (each its own).
    #[serde(default, deserialize_with = "namespace_by")]
    pub namespace_by: Option<crate::kv::NamespaceBy>,
    /// `up` and `tour`: node agents to run (1..=26); 2 or more fail over.
    #[serde(default, deserialize_with = "nodes")]
    pub nodes: Option<u8>,
    /// Keep the last run's keys instead of a fresh demo (`--keep-state`).
    pub keep_state: Option<bool>,
    /// The recovery pattern: checkpoint, txlog or fsm (`--pattern`).
    #[serde(default, deserialize_with = "pattern")]
    pub pattern: Option<crate::recovery::Pattern>,
    /// The bundled kv-demo makes its pattern's classic mistake (`--unsafe`).
    #[serde(rename = "unsafe")]
    pub unsafe_worker: Option<bool>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    #[serde(default, deserialize_with = "policy")]
    pub policy: Option<RestartPolicy>,
    #[serde(default, deserialize_with = "duration")]
    pub delay: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub crash_loop_under: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub backoff_initial: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub backoff_max: Option<Duration>,
    pub max_restarts: Option<u32>,
    /// `up` and `tour`: the same as `worker.nodes = 2`.
    pub failover: Option<bool>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kills {
    /// `verify`: kill cycles to run.
    pub cycles: Option<u32>,
    /// SIGKILL when the task's progress reaches this (1..99).
    #[serde(default, deserialize_with = "percent")]
    pub at: Option<u8>,
    /// Dashboard: kill again in every new task, not just once.
    pub every_cycle: Option<bool>,
    /// Dashboard, with nodes: kill the instance's node, not its worker (once).
    pub node: Option<bool>,
    /// `verify`: random progress points, reproducible with `seed`.
    pub random: Option<bool>,
    pub seed: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// `verify`: how long the embedded controller stays down.
    #[serde(default, deserialize_with = "duration")]
    pub duration: Option<Duration>,
}

impl Scenario {
    /// Reads and checks a scenario file; the error is one line
    /// `FILE:LINE:COLUMN: key KEY: what is wrong`.
    pub fn load(path: &Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("scenario {}: {e}", path.display()))?;
        Scenario::parse(&text).map_err(|e| format!("scenario {}:{e}", path.display()))
    }

    /// Parses scenario text; the error is `LINE:COLUMN: key KEY: message`.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let sc: Scenario = toml::from_str(text).map_err(|e| describe(text, &e))?;
        // One kill schedule: a fixed point, or random ones from a seed.
        let k = &sc.kills;
        if k.at.is_some() && k.random == Some(true) {
            return Err(format!(
                "{}:1: key kills.random: excludes kills.at (a fixed point or random ones)",
                key_line(text, "kills", "random")
            ));
        }
        if k.seed.is_some() && k.random != Some(true) {
            return Err(format!(
                "{}:1: key kills.seed: only applies to random = true",
                key_line(text, "kills", "seed")
            ));
        }
        for (role, name) in &sc.keys {
            if let Err(e) = crate::recovery::parse_key_mapping(&format!("{role}={name}"))
                .and_then(|_| crate::recovery::KeyMap::with_mappings(&[format!("{role}={name}")]))
            {
                let why = e.trim_start_matches("--key ");
                return Err(format!(
                    "{}:1: key keys.{role}: {why}",
                    key_line(text, "keys", role)
                ));
            }
        }
        Ok(sc)
    }

    /// The `[keys]` table as `--key` mappings (`ROLE=NAME`).
    pub fn key_mappings(&self) -> Vec<String> {
        self.keys.iter().map(|(r, n)| format!("{r}={n}")).collect()
    }
}

/// `LINE:COLUMN: key SECTION.KEY: message` from toml's error and its span.
fn describe(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    let Some(span) = err.span() else {
        return format!(" {message}");
    };
    let start = span.start.min(text.len());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let this_line = text[line_start..].lines().next().unwrap_or("");
    let key = key_of(this_line).map(|k| match section_before(before) {
        Some(s) => format!("{s}.{k}"),
        None => k,
    });
    match key {
        Some(k) => format!("{line}:{column}: key {k}: {message}"),
        None => format!("{line}:{column}: {message}"),
    }
}

/// The 1-based line that sets `key` in `[section]` (1 if not found).
fn key_line(text: &str, section: &str, key: &str) -> usize {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some((name, _)) = t.strip_prefix('[').and_then(|r| r.split_once(']')) {
            current = name.trim().to_string();
        } else if current == section && key_of(t).as_deref() == Some(key) {
            return i + 1;
        }
    }
    1
}

/// The key a `key = value` line sets.
fn key_of(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

/// The `[section]` a position is in.
fn section_before(before: &str) -> Option<String> {
    before.lines().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .map(|(name, _)| name.trim().to_string())
    })
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map(Some).map_err(|e| {
        serde::de::Error::custom(format!(
            "{text:?} is no duration ({e}); e.g. \"200ms\" or \"2s\""
        ))
    })
}

fn policy<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RestartPolicy>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse()
        .map(Some)
        .map_err(|e: anyhow::Error| serde::de::Error::custom(e.to_string()))
}

fn namespace_by<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::kv::NamespaceBy>, D::Error> {
    use clap::ValueEnum;
    let text = String::deserialize(d)?;
    crate::kv::NamespaceBy::from_str(&text, false)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{text:?} is not app or instance")))
}

fn pattern<'de, D: Deserializer<'de>>(d: D) -> Result<Option<crate::recovery::Pattern>, D::Error> {
    let text = String::deserialize(d)?;
    crate::recovery::Pattern::from_word(&text)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not checkpoint, txlog or fsm"))
        })
}

fn percent<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    let n = i64::deserialize(d)?;
    match u8::try_from(n) {
        Ok(p) if (1..=99).contains(&p) => Ok(Some(p)),
        _ => Err(serde::de::Error::custom(format!("{n} is outside 1..99"))),
    }
}

fn instances<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let n = i64::deserialize(d)?;
    match u16::try_from(n) {
        Ok(i) if i <= 1000 => Ok(Some(i)),
        _ => Err(serde::de::Error::custom(format!("{n} is outside 0..1000"))),
    }
}

fn nodes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    let n = i64::deserialize(d)?;
    match u8::try_from(n) {
        Ok(i) if (1..=26).contains(&i) => Ok(Some(i)),
        _ => Err(serde::de::Error::custom(format!("{n} is outside 1..26"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_and_sets_something_in_every_section() {
        let s = Scenario::parse(EXAMPLE).unwrap();
        assert!(s.worker.step.is_some());
        assert!(s.restart.delay.is_some());
        assert!(s.kills.cycles.is_some());
        assert!(s.outage.duration.is_some());
    }

    #[test]
    fn the_keys_table_maps_roles_and_refuses_an_unknown_one() {
        let s = Scenario::parse(
            "[worker]\npattern = \"txlog\"\n\n[keys]\nflag = \"crashed\"\nprogress = \"done/total\"\n",
        )
        .unwrap();
        assert_eq!(s.worker.pattern, Some(crate::recovery::Pattern::TxLog));
        assert_eq!(s.key_mappings(), ["flag=crashed", "progress=done/total"]);
        let err = Scenario::parse("[keys]\nflag = \"crashed\"\nflags = \"x\"\n").unwrap_err();
        assert!(err.starts_with("3:1: key keys.flags: "), "{err}");
        assert!(err.contains("unknown role"), "{err}");
        let err = Scenario::parse("[worker]\npattern = \"wal\"\n").unwrap_err();
        assert!(err.contains("not checkpoint, txlog or fsm"), "{err}");
    }

    #[test]
    fn a_typo_names_its_line_and_key() {
        let err =
            Scenario::parse("[worker]\nstep = \"50ms\"\n\n[kills]\ncylces = 3\n").unwrap_err();
        assert!(err.starts_with("5:1: key kills.cylces: "), "{err}");
        assert!(err.contains("unknown field `cylces`"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn a_bad_value_names_its_line_and_key() {
        let err = Scenario::parse("[restart]\ndelay = \"soon\"\n").unwrap_err();
        assert!(err.starts_with("2:9: key restart.delay: "), "{err}");
        assert!(err.contains("no duration"), "{err}");
        let err = Scenario::parse("[kills]\nat = 100\n").unwrap_err();
        assert!(err.starts_with("2:6: key kills.at: "), "{err}");
        let err = Scenario::parse("[worker]\ninstances = \"two\"\n").unwrap_err();
        assert!(err.contains("key worker.instances"), "{err}");
        let err = Scenario::parse("[worker]\nnamespace_by = \"node\"\n").unwrap_err();
        assert!(
            err.starts_with("2:16: key worker.namespace_by: \"node\" is not app or instance"),
            "{err}"
        );
        let s = Scenario::parse("[worker]\nnamespace_by = \"instance\"\n").unwrap();
        assert_eq!(
            s.worker.namespace_by,
            Some(crate::kv::NamespaceBy::Instance)
        );
        let err = Scenario::parse("[kills]\nat = 50\n# random\nrandom = true\n").unwrap_err();
        assert!(err.starts_with("4:1: key kills.random: excludes"), "{err}");
        let err = Scenario::parse("[kills]\nseed = 7\n").unwrap_err();
        assert!(err.starts_with("2:1: key kills.seed: "), "{err}");
        let err = Scenario::parse("[restart]\npolicy = \"sometimes\"\n").unwrap_err();
        assert!(
            err.contains("key restart.policy") && err.contains("on-failure"),
            "{err}"
        );
    }
}
