//! Which key of the namespace plays which role (`--key ROLE=NAME`, a scenario's
//! `[keys]` table). The one owner of key names on the reading side: the
//! mirror, the tracker, the panes and `verify` ask it, so an app whose keys
//! are named differently (the seed's snippets: `crashed`, `progress`,
//! `checkpoint`) is read the same way as kv-demo.

use std::collections::BTreeMap;
use std::fmt;

/// What a key means to plumdash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The crash flag: set while a worker runs, still set after a crash.
    Flag,
    /// The task's progress, 0–100 (or `done/total`, two keys).
    Progress,
    /// The checkpoint's name (`step_N`).
    Checkpoint,
    /// Steps done.
    Counter,
    /// `running` / `completed`.
    Status,
    /// Transaction log: operations logged.
    OpCounter,
    /// Transaction log: the last operation logged (`OP_k`).
    OpLast,
    /// Transaction log: effects applied.
    Applied,
    /// Transaction log: the operation the last effect belongs to.
    AppliedOp,
    /// Checkpoint pattern: steps whose work is done.
    WorkDone,
    /// State machine: the current state's name.
    FsmState,
    /// State machine: the state's data (JSON).
    FsmData,
}

impl Role {
    pub const ALL: [Role; 12] = [
        Role::Flag,
        Role::Progress,
        Role::Checkpoint,
        Role::Counter,
        Role::Status,
        Role::OpCounter,
        Role::OpLast,
        Role::Applied,
        Role::AppliedOp,
        Role::WorkDone,
        Role::FsmState,
        Role::FsmData,
    ];

    /// How `--key` and a scenario's `[keys]` spell it.
    pub fn word(self) -> &'static str {
        match self {
            Role::Flag => "flag",
            Role::Progress => "progress",
            Role::Checkpoint => "checkpoint",
            Role::Counter => "counter",
            Role::Status => "status",
            Role::OpCounter => "op_counter",
            Role::OpLast => "op_last",
            Role::Applied => "applied",
            Role::AppliedOp => "applied_op",
            Role::WorkDone => "work_done",
            Role::FsmState => "fsm_state",
            Role::FsmData => "fsm_data",
        }
    }

    /// kv-demo's name for it (DESIGN.md, "The worker's keys" and "Recovery patterns").
    pub fn kv_demo_name(self) -> &'static str {
        match self {
            Role::Flag => "app.crashed",
            Role::Progress => "task.progress",
            Role::Checkpoint => "task.checkpoint",
            Role::Counter => "task.counter",
            Role::Status => "task.status",
            Role::OpCounter => "operation.counter",
            Role::OpLast => "operation.last",
            Role::Applied => "ledger.applied",
            Role::AppliedOp => "ledger.applied_op",
            Role::WorkDone => "task.work_done",
            Role::FsmState => "fsm.state",
            Role::FsmData => "fsm.data",
        }
    }

    pub fn from_word(word: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.word() == word)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// Where the progress is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressKeys {
    /// One key holding 0–100.
    Percent(String),
    /// Two keys, steps done and steps in all: progress = 100 × done / total.
    Fraction { done: String, total: String },
}

/// Role → key name. Roles not mapped keep kv-demo's names; a role whose key
/// never appears in the namespace is unknown (never guessed from another).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    names: BTreeMap<Role, String>,
    progress: ProgressKeys,
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap::kv_demo()
    }
}

/// kv-demo's own "when the flag was set" key, written with the flag at every start.
const KV_DEMO_CRASH_TIME: &str = "app.crash_time";

impl KeyMap {
    /// kv-demo's names for every role.
    pub fn kv_demo() -> KeyMap {
        KeyMap {
            names: Role::ALL
                .into_iter()
                .map(|r| (r, r.kv_demo_name().to_string()))
                .collect(),
            progress: ProgressKeys::Percent(Role::Progress.kv_demo_name().to_string()),
        }
    }

    /// kv-demo's names, with each `ROLE=NAME` of `mappings` instead.
    pub fn with_mappings<S: AsRef<str>>(mappings: &[S]) -> Result<KeyMap, String> {
        let mut map = KeyMap::kv_demo();
        for m in mappings {
            let (role, name) = parse_mapping(m.as_ref())?;
            map.set(role, &name)?;
        }
        Ok(map)
    }

    /// Maps `role` to `name` (for `progress`, `DONE/TOTAL` names two keys).
    pub fn set(&mut self, role: Role, name: &str) -> Result<(), String> {
        check_name(role, name)?;
        if role == Role::Progress {
            self.progress = match name.split_once('/') {
                Some((done, total)) => {
                    check_name(role, done)?;
                    check_name(role, total)?;
                    ProgressKeys::Fraction {
                        done: done.to_string(),
                        total: total.to_string(),
                    }
                }
                None => ProgressKeys::Percent(name.to_string()),
            };
        }
        self.names.insert(role, name.to_string());
        Ok(())
    }

    /// The key playing `role` (for `progress` given as `done/total`, that text).
    pub fn name(&self, role: Role) -> &str {
        self.names
            .get(&role)
            .map_or(role.kv_demo_name(), String::as_str)
    }

    pub fn progress(&self) -> &ProgressKeys {
        &self.progress
    }

    /// The role `key` plays, if any.
    pub fn role_of(&self, key: &str) -> Option<Role> {
        if let ProgressKeys::Fraction { done, total } = &self.progress {
            if key == done || key == total {
                return Some(Role::Progress);
            }
        }
        Role::ALL
            .into_iter()
            .filter(|r| *r != Role::Progress || matches!(self.progress, ProgressKeys::Percent(_)))
            .find(|r| self.name(*r) == key)
    }

    /// Keys a run writes as it starts: the flag, and with kv-demo's flag its time.
    pub fn is_start_key(&self, key: &str) -> bool {
        key == self.name(Role::Flag)
            || (self.name(Role::Flag) == Role::Flag.kv_demo_name() && key == KV_DEMO_CRASH_TIME)
    }

    /// Progress, counter and checkpoint keep kv-demo's names, so its rule
    /// between them (progress = 10 × counter, checkpoint = `step_<counter>`)
    /// may be checked. Another app's keys need not follow it: not judged torn.
    pub fn checkpoint_rule_applies(&self) -> bool {
        [Role::Progress, Role::Counter, Role::Checkpoint]
            .iter()
            .all(|r| self.name(*r) == r.kv_demo_name())
    }

    /// The mappings that differ from kv-demo's, as `ROLE=NAME` (for a banner).
    pub fn custom(&self) -> Vec<String> {
        Role::ALL
            .into_iter()
            .filter(|r| self.name(*r) != r.kv_demo_name())
            .map(|r| format!("{r}={}", self.name(r)))
            .collect()
    }
}

/// `ROLE=NAME`, as `--key` takes it.
pub fn parse_mapping(text: &str) -> Result<(Role, String), String> {
    let Some((role, name)) = text.split_once('=') else {
        return Err(format!(
            "--key {text:?}: expected ROLE=NAME (e.g. flag=crashed)"
        ));
    };
    let role = Role::from_word(role.trim()).ok_or_else(|| {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.word()).collect();
        format!(
            "--key {text:?}: unknown role {:?} (roles: {})",
            role.trim(),
            known.join(", ")
        )
    })?;
    check_name(role, name)?;
    Ok((role, name.to_string()))
}

fn check_name(role: Role, name: &str) -> Result<(), String> {
    if name.is_empty() || name.trim() != name || name.chars().any(char::is_control) {
        return Err(format!(
            "--key {role}={name:?}: the key name must be non-empty, without surrounding spaces or control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_demo_names_are_the_default_and_mappings_replace_them() {
        let m = KeyMap::kv_demo();
        assert_eq!(m.name(Role::Flag), "app.crashed");
        assert!(m.checkpoint_rule_applies());
        assert!(m.is_start_key("app.crash_time"));
        let m = KeyMap::with_mappings(&["flag=crashed", "progress=progress"]).unwrap();
        assert_eq!(m.name(Role::Flag), "crashed");
        assert_eq!(m.role_of("progress"), Some(Role::Progress));
        assert_eq!(m.role_of("app.crashed"), None);
        assert!(!m.is_start_key("app.crash_time"));
        assert!(!m.checkpoint_rule_applies());
        assert_eq!(m.custom(), ["flag=crashed", "progress=progress"]);
    }

    #[test]
    fn progress_may_be_done_over_total() {
        let m = KeyMap::with_mappings(&["progress=steps.done/steps.total"]).unwrap();
        assert_eq!(
            m.progress(),
            &ProgressKeys::Fraction {
                done: "steps.done".into(),
                total: "steps.total".into()
            }
        );
        assert_eq!(m.role_of("steps.total"), Some(Role::Progress));
    }

    #[test]
    fn bad_mappings_say_what_was_wrong() {
        assert!(parse_mapping("flag")
            .unwrap_err()
            .contains("expected ROLE=NAME"));
        assert!(parse_mapping("flags=x")
            .unwrap_err()
            .contains("unknown role \"flags\""));
        assert!(parse_mapping("flag=").unwrap_err().contains("non-empty"));
        assert!(KeyMap::with_mappings(&["progress=a/"]).is_err());
    }
}
