//! The worker's task as the namespace shows it (keys of DESIGN.md).

use super::key_map::{KeyMap, ProgressKeys, Role};
use super::pattern::{FsmView, Pattern, TxLogView};
use crate::kv::Entry;
use std::collections::BTreeMap;

pub const CRASH_FLAG_KEY: &str = "app.crashed";
/// Keys every kv-demo run (and the original) writes when it starts: the
/// restarted run "announces" itself with them (RESUMED shown at once), and
/// under `up --nodes` they tell that a new worker is there to be found.
pub const START_KEYS: [&str; 2] = [CRASH_FLAG_KEY, "app.crash_time"];

/// What a progress, counter and checkpoint name that disagree look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornCheckpoint {
    pub progress: Option<i64>,
    pub counter: Option<i64>,
    pub checkpoint: Option<String>,
}

impl std::fmt::Display for TornCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: Option<String>| v.unwrap_or_else(|| "—".into());
        write!(
            f,
            "progress {}, counter {}, checkpoint {}",
            show(self.progress.map(|p| format!("{p}%"))),
            show(self.counter.map(|c| c.to_string())),
            show(self.checkpoint.clone())
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskView {
    /// The flag key is present (and not "false").
    pub crash_flag: bool,
    pub progress: Option<i64>,
    pub counter: Option<i64>,
    pub checkpoint: Option<String>,
    pub status: Option<String>,
    /// Checkpoint pattern: steps whose work is done (`work_done`), when written.
    pub work_done: Option<i64>,
    /// Which recovery pattern the keys present show (`None`: none of its keys yet).
    pub pattern: Option<Pattern>,
    pub txlog: TxLogView,
    pub fsm: FsmView,
    /// Task keys present but not readable (a malformed entry, a progress of
    /// `"fifty"`), with why: shown as unreadable, never as 0 or absent.
    pub unreadable: BTreeMap<Role, String>,
    /// Progress, counter or checkpoint are another app's keys (`--key`): kv-demo's
    /// rule between them does not apply.
    pub foreign_keys: bool,
}

impl TaskView {
    /// The task in `entries`, read through `keys`; `unreadable`: keys the
    /// controller sent in a form that does not read as an entry, with why.
    pub fn from_entries(
        entries: &BTreeMap<String, Entry>,
        unreadable: &BTreeMap<String, String>,
        keys: &KeyMap,
    ) -> TaskView {
        let mut bad = BTreeMap::new();
        for (key, why) in unreadable {
            if let Some(role) = keys.role_of(key) {
                bad.insert(role, why.clone());
            }
        }
        let value = |k: &str| {
            (!unreadable.contains_key(k))
                .then(|| entries.get(k).map(|e| e.value.clone()))
                .flatten()
        };
        let mut int_of = |role: Role, k: &str| {
            let v = value(k)?;
            let parsed = v.trim().parse::<i64>().ok();
            if parsed.is_none() {
                let why = format!("{:?} is not a whole number", crate::kv::model::preview(&v));
                bad.insert(role, why);
            }
            parsed
        };
        let progress = match keys.progress() {
            ProgressKeys::Percent(k) => int_of(Role::Progress, k),
            ProgressKeys::Fraction { done, total } => {
                match (int_of(Role::Progress, done), int_of(Role::Progress, total)) {
                    (Some(d), Some(t)) if t > 0 => Some(d.saturating_mul(100) / t),
                    _ => None,
                }
            }
        };
        let counter = int_of(Role::Counter, keys.name(Role::Counter));
        let work_done = int_of(Role::WorkDone, keys.name(Role::WorkDone));
        let txlog = TxLogView {
            logged: int_of(Role::OpCounter, keys.name(Role::OpCounter)),
            last: value(keys.name(Role::OpLast)),
            applied: int_of(Role::Applied, keys.name(Role::Applied)),
            applied_op: int_of(Role::AppliedOp, keys.name(Role::AppliedOp)),
        };
        let fsm = FsmView {
            state: value(keys.name(Role::FsmState)),
            data: value(keys.name(Role::FsmData)),
        };
        let checkpoint = value(keys.name(Role::Checkpoint));
        let pattern = if txlog.seen() {
            Some(Pattern::TxLog)
        } else if fsm.seen() {
            Some(Pattern::Fsm)
        } else if counter.is_some() || checkpoint.is_some() || work_done.is_some() {
            Some(Pattern::Checkpoint)
        } else {
            None
        };
        TaskView {
            crash_flag: value(keys.name(Role::Flag)).is_some_and(|v| v != "false" && v != "0"),
            progress,
            counter,
            checkpoint,
            status: value(keys.name(Role::Status)),
            work_done,
            pattern,
            txlog,
            fsm,
            unreadable: bad,
            foreign_keys: !keys.checkpoint_rule_applies(),
        }
    }

    /// Why the progress is not known though its key is there.
    pub fn progress_unreadable(&self) -> Option<&str> {
        self.unreadable.get(&Role::Progress).map(String::as_str)
    }

    /// The step the checkpoint name says (`step_5` → 5).
    pub fn checkpoint_step(&self) -> Option<i64> {
        self.checkpoint
            .as_deref()?
            .strip_prefix("step_")?
            .parse()
            .ok()
    }

    pub fn is_completed(&self) -> bool {
        self.status.as_deref() == Some("completed")
    }

    /// Progress, counter and checkpoint agree (progress = 10 × counter,
    /// checkpoint = `step_<counter>`), or `None` if they do not. An empty
    /// namespace is consistent.
    pub fn torn(&self) -> Option<TornCheckpoint> {
        // A key that does not read is unknown, not torn; another app's keys
        // and the other patterns (their progress alone) follow no such rule.
        if [Role::Progress, Role::Counter, Role::Checkpoint]
            .iter()
            .any(|k| self.unreadable.contains_key(k))
            || self.foreign_keys
            || matches!(self.pattern, Some(Pattern::TxLog | Pattern::Fsm))
        {
            return None;
        }
        let any = self.progress.is_some() || self.counter.is_some() || self.checkpoint.is_some();
        let consistent = match (self.progress, self.counter, &self.checkpoint) {
            (Some(p), Some(c), Some(cp)) => p == c * 10 && *cp == format!("step_{c}"),
            // Before the first step a worker may have written nothing yet.
            (Some(0), None, None) | (Some(0), Some(0), None) => true,
            _ => !any,
        };
        (!consistent).then(|| TornCheckpoint {
            progress: self.progress,
            counter: self.counter,
            checkpoint: self.checkpoint.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A namespace of string entries, by key.
    pub(super) fn ns(pairs: &[(&str, &str)]) -> BTreeMap<String, Entry> {
        Entry::strings("ns", pairs)
            .into_iter()
            .map(|e| (e.key.clone(), e))
            .collect()
    }

    #[test]
    fn a_whole_checkpoint_is_consistent_and_a_partial_one_is_torn() {
        let none = BTreeMap::new();
        let whole = TaskView::from_entries(
            &ns(&[
                ("task.progress", "50"),
                ("task.counter", "5"),
                ("task.checkpoint", "step_5"),
                ("app.crashed", "true"),
            ]),
            &none,
            &KeyMap::kv_demo(),
        );
        assert!(whole.crash_flag);
        assert_eq!(whole.torn(), None);
        let torn = TaskView::from_entries(
            &ns(&[
                ("task.progress", "60"),
                ("task.counter", "5"),
                ("task.checkpoint", "step_5"),
            ]),
            &none,
            &KeyMap::kv_demo(),
        );
        assert_eq!(
            torn.torn().map(|t| t.to_string()).as_deref(),
            Some("progress 60%, counter 5, checkpoint step_5")
        );
        assert_eq!(
            TaskView::from_entries(&ns(&[]), &none, &KeyMap::kv_demo()).torn(),
            None
        );
        assert!(
            !TaskView::from_entries(&ns(&[("app.crashed", "false")]), &none, &KeyMap::kv_demo())
                .crash_flag
        );
    }

    #[test]
    fn an_unreadable_progress_is_neither_zero_nor_torn() {
        let none = BTreeMap::new();
        let fifty = TaskView::from_entries(
            &ns(&[
                ("task.progress", "fifty"),
                ("task.counter", "5"),
                ("task.checkpoint", "step_5"),
            ]),
            &none,
            &KeyMap::kv_demo(),
        );
        assert_eq!(fifty.progress, None);
        assert_eq!(
            fifty.progress_unreadable(),
            Some("\"fifty\" is not a whole number")
        );
        assert_eq!(fifty.torn(), None);
        let bad: BTreeMap<String, String> =
            [("task.counter".to_string(), "invalid type: null".to_string())].into();
        let view =
            TaskView::from_entries(&ns(&[("task.progress", "50")]), &bad, &KeyMap::kv_demo());
        assert_eq!(view.progress, Some(50));
        assert_eq!(view.counter, None);
        assert_eq!(view.torn(), None);
    }
}

#[cfg(test)]
mod key_map_tests {
    use super::tests::ns;
    use super::*;

    #[test]
    fn the_seeds_bare_names_read_through_a_key_map() {
        let keys =
            KeyMap::with_mappings(&["flag=crashed", "progress=progress", "checkpoint=checkpoint"])
                .unwrap();
        let entries = ns(&[
            ("crashed", "true"),
            ("progress", "40"),
            ("checkpoint", "phase-b"),
        ]);
        let view = TaskView::from_entries(&entries, &BTreeMap::new(), &keys);
        assert!(view.crash_flag);
        assert_eq!(view.progress, Some(40));
        assert_eq!(view.checkpoint.as_deref(), Some("phase-b"));
        assert_eq!(view.counter, None, "never seen: unknown, not guessed");
        assert_eq!(view.torn(), None, "another app's keys follow no step rule");
        // The same keys under kv-demo's map are nothing.
        let plain = TaskView::from_entries(&entries, &BTreeMap::new(), &KeyMap::kv_demo());
        assert!(!plain.crash_flag);
        assert_eq!(plain.progress, None);
    }

    #[test]
    fn progress_as_done_over_total_and_the_pattern_from_its_keys() {
        let keys = KeyMap::with_mappings(&["progress=done/total"]).unwrap();
        let view = TaskView::from_entries(
            &ns(&[("done", "3"), ("total", "12")]),
            &BTreeMap::new(),
            &keys,
        );
        assert_eq!(view.progress, Some(25));
        let none = BTreeMap::new();
        let k = KeyMap::kv_demo();
        let tx = TaskView::from_entries(
            &ns(&[("task.progress", "30"), ("operation.counter", "3")]),
            &none,
            &k,
        );
        assert_eq!(tx.pattern, Some(Pattern::TxLog));
        assert_eq!(tx.torn(), None, "a txlog's progress alone is whole");
        let fsm = TaskView::from_entries(&ns(&[("fsm.state", "LOAD")]), &none, &k);
        assert_eq!(fsm.pattern, Some(Pattern::Fsm));
    }
}
