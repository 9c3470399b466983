//! How a namespace is read, for `up`, `tour`, `attach` and `verify` alike: which
//! of the app's keys plays which role (`--key ROLE=NAME`, repeatable) and which
//! recovery pattern the app follows (`--pattern`, else learnt from its keys).

use crate::recovery::{KeyMap, Pattern};
use clap::Args;

#[derive(Args, Debug, Clone, Default)]
pub struct ReadingArgs {
    /// Which of the app's keys plays which role, e.g. `--key flag=crashed --key
    /// progress=progress` (repeatable). Roles: flag, progress (0–100, or DONE/TOTAL:
    /// two keys), checkpoint, counter, status, op_counter, op_last, applied,
    /// applied_op, work_done, fsm_state, fsm_data. Roles not given keep kv-demo's
    /// names; a role whose key never appears is shown as unknown.
    #[arg(long = "key", value_name = "ROLE=NAME", value_parser = parse_key)]
    pub key: Vec<String>,
    /// The recovery pattern: checkpoint (模式1), txlog (模式2, transaction log) or
    /// fsm (模式3, state machine) [default: learnt from the keys]. The bundled
    /// kv-demo runs it.
    #[arg(long, value_parser = parse_pattern)]
    pub pattern: Option<Pattern>,
}

impl ReadingArgs {
    /// The key map, checked at parse time already.
    pub fn key_map(&self) -> Result<KeyMap, String> {
        KeyMap::with_mappings(&self.key)
    }
}

/// One mapping, checked whole at parse time (a bad one is exit 2 before anything starts).
fn parse_key(s: &str) -> Result<String, String> {
    KeyMap::with_mappings(&[s]).map(|_| s.to_string())
}

pub fn parse_pattern(s: &str) -> Result<Pattern, String> {
    Pattern::from_word(s.trim())
        .ok_or_else(|| format!("{s:?} is not a pattern (checkpoint, txlog, fsm)"))
}
