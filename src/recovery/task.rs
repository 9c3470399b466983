//! The worker's task as the namespace shows it (keys of DESIGN.md).

use crate::kv::Entry;
use std::collections::BTreeMap;

pub const CRASH_FLAG_KEY: &str = "app.crashed";
/// Keys every kv-demo run (and the original) writes when it starts: the
/// restarted run "announces" itself with them (RESUMED shown at once), and
/// under `up --nodes` they tell that a new worker is there to be found.
pub const START_KEYS: [&str; 2] = [CRASH_FLAG_KEY, "app.crash_time"];
pub const PROGRESS_KEY: &str = "task.progress";
pub const COUNTER_KEY: &str = "task.counter";
pub const CHECKPOINT_KEY: &str = "task.checkpoint";
pub const STATUS_KEY: &str = "task.status";

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
    /// `app.crashed` is present (and not "false").
    pub crash_flag: bool,
    pub progress: Option<i64>,
    pub counter: Option<i64>,
    pub checkpoint: Option<String>,
    pub status: Option<String>,
    /// Task keys present but not readable (a malformed entry, a progress of
    /// `"fifty"`), with why: shown as unreadable, never as 0 or absent.
    pub unreadable: BTreeMap<&'static str, String>,
}

impl TaskView {
    /// The task in `entries`; `unreadable`: keys the controller sent in a
    /// form that does not read as an entry, with why.
    pub fn from_entries(
        entries: &BTreeMap<String, Entry>,
        unreadable: &BTreeMap<String, String>,
    ) -> TaskView {
        let mut bad = BTreeMap::new();
        for key in [PROGRESS_KEY, COUNTER_KEY, CHECKPOINT_KEY, STATUS_KEY] {
            if let Some(why) = unreadable.get(key) {
                bad.insert(key, why.clone());
            }
        }
        let value = |k: &str| {
            (!unreadable.contains_key(k))
                .then(|| entries.get(k).map(|e| e.value.clone()))
                .flatten()
        };
        let mut int = |k: &'static str| {
            let v = value(k)?;
            let parsed = v.trim().parse::<i64>().ok();
            if parsed.is_none() {
                let why = format!("{:?} is not a whole number", crate::kv::model::preview(&v));
                bad.insert(k, why);
            }
            parsed
        };
        let progress = int(PROGRESS_KEY);
        let counter = int(COUNTER_KEY);
        TaskView {
            crash_flag: value(CRASH_FLAG_KEY).is_some_and(|v| v != "false" && v != "0"),
            progress,
            counter,
            checkpoint: value(CHECKPOINT_KEY),
            status: value(STATUS_KEY),
            unreadable: bad,
        }
    }

    /// Why the progress is not known though its key is there.
    pub fn progress_unreadable(&self) -> Option<&str> {
        self.unreadable.get(PROGRESS_KEY).map(String::as_str)
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
        // A key that does not read is unknown, not torn.
        if [PROGRESS_KEY, COUNTER_KEY, CHECKPOINT_KEY]
            .iter()
            .any(|k| self.unreadable.contains_key(k))
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
    use crate::kv::ValueType;

    fn ns(pairs: &[(&str, &str)]) -> BTreeMap<String, Entry> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Entry {
                        namespace: "ns".into(),
                        key: k.to_string(),
                        value: v.to_string(),
                        value_type: ValueType::String,
                        updated_at: 0,
                        updated_at_ms: None,
                        writer: None,
                    },
                )
            })
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
        );
        assert_eq!(
            torn.torn().map(|t| t.to_string()).as_deref(),
            Some("progress 60%, counter 5, checkpoint step_5")
        );
        assert_eq!(TaskView::from_entries(&ns(&[]), &none).torn(), None);
        assert!(!TaskView::from_entries(&ns(&[("app.crashed", "false")]), &none).crash_flag);
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
        );
        assert_eq!(fifty.progress, None);
        assert_eq!(
            fifty.progress_unreadable(),
            Some("\"fifty\" is not a whole number")
        );
        assert_eq!(fifty.torn(), None);
        let bad: BTreeMap<String, String> =
            [("task.counter".to_string(), "invalid type: null".to_string())].into();
        let view = TaskView::from_entries(&ns(&[("task.progress", "50")]), &bad);
        assert_eq!(view.progress, Some(50));
        assert_eq!(view.counter, None);
        assert_eq!(view.torn(), None);
    }
}
