//! The namespace as the feed told it: every entry, when each last changed
//! (as seen here), the task those entries describe, and whether the crash
//! flag was ever seen. Facts in, no judgement: the tracker judges.

use super::facts::TsMs;
use super::key_map::{KeyMap, Role};
use super::task::TaskView;
use crate::kv::Entry;
use std::collections::BTreeMap;

/// The crash flag as this tracker has seen it. A worker that does not use the
/// KV (any `--cmd`) never writes it: that is `NeverSeen`, not a clean stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashFlag {
    Set,
    Cleared,
    /// Deleted by a client that is no run (a reset), as the controller named it.
    Removed,
    #[default]
    NeverSeen,
    /// The namespace has not been read yet: nothing is known of the flag.
    Unknown,
}

#[derive(Debug, Default)]
pub struct NamespaceMirror {
    entries: BTreeMap<String, Entry>,
    changed_at: BTreeMap<String, TsMs>,
    /// Keys the controller sent in a form that does not read, with why.
    unreadable: BTreeMap<String, String>,
    task: TaskView,
    /// The crash flag has been seen (set, or written false) at least once: its
    /// absence is then a clearing, not a worker that never uses it.
    flag_ever_seen: bool,
    /// Which key plays which role.
    keys: KeyMap,
    /// A whole listing has been read (a snapshot or a poll): until then an
    /// absent key is not known to be absent.
    read: bool,
}

impl NamespaceMirror {
    /// Reads the namespace through `keys` from now on.
    pub fn set_keys(&mut self, keys: KeyMap) {
        self.keys = keys;
        self.refresh();
    }

    pub fn keys(&self) -> &KeyMap {
        &self.keys
    }

    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    /// Keys present but unreadable as sent, with why (shown as such).
    pub fn unreadable(&self) -> &BTreeMap<String, String> {
        &self.unreadable
    }

    /// The feed's list of unreadable entries, as of now; true when it changed.
    pub fn set_unreadable(&mut self, unreadable: &[crate::kv::Unreadable]) -> bool {
        let fresh: BTreeMap<String, String> = unreadable
            .iter()
            .map(|u| (u.key_text().to_string(), u.reason.clone()))
            .collect();
        if fresh == self.unreadable {
            return false;
        }
        self.unreadable = fresh;
        self.refresh();
        true
    }

    /// When a key last changed, as seen here.
    pub fn changed_at(&self, key: &str) -> Option<TsMs> {
        self.changed_at.get(key).copied()
    }

    pub fn task(&self) -> &TaskView {
        &self.task
    }

    pub fn crash_flag(&self) -> CrashFlag {
        if self.task.crash_flag {
            CrashFlag::Set
        } else if self.flag_ever_seen {
            CrashFlag::Cleared
        } else if self.read {
            CrashFlag::NeverSeen
        } else {
            CrashFlag::Unknown
        }
    }

    /// Has a whole listing of the namespace been read yet?
    pub fn read(&self) -> bool {
        self.read
    }

    /// A whole listing (first read, re-read after a gap, or a poll). Keys seen
    /// for the first time in the first listing are dated by the store's
    /// `updatedAtMs` (else `updatedAt`); later changes by when they were seen.
    pub fn replace_all(&mut self, at: TsMs, entries: Vec<Entry>) {
        let fresh: BTreeMap<String, Entry> =
            entries.into_iter().map(|e| (e.key.clone(), e)).collect();
        for (key, entry) in &fresh {
            let changed = self.entries.get(key) != Some(entry);
            if changed || !self.changed_at.contains_key(key) {
                let when = if self.entries.is_empty() {
                    match entry.updated_at_ms {
                        Some(ms) => ms.max(0) as u64,
                        None => (entry.updated_at.max(0) as u64) * 1000,
                    }
                } else {
                    at
                };
                self.changed_at.insert(key.clone(), when);
            }
        }
        self.changed_at.retain(|k, _| fresh.contains_key(k));
        self.entries = fresh;
        self.read = true;
        // The feed tells a snapshot's unreadable keys just before it: those
        // stay (they are absent from the entries); a key that reads now is
        // no longer unreadable.
        self.unreadable.retain(|k, _| !self.entries.contains_key(k));
        self.refresh();
    }

    pub fn write(&mut self, at: TsMs, entries: Vec<Entry>) {
        for entry in entries {
            self.unreadable.remove(&entry.key);
            self.changed_at.insert(entry.key.clone(), at);
            self.entries.insert(entry.key.clone(), entry);
        }
        self.refresh();
    }

    pub fn delete(&mut self, key: &str) {
        self.entries.remove(key);
        self.unreadable.remove(key);
        self.changed_at.remove(key);
        self.refresh();
    }

    fn refresh(&mut self) {
        self.task = TaskView::from_entries(&self.entries, &self.unreadable, &self.keys);
        if self.entries.contains_key(self.keys.name(Role::Flag)) {
            self.flag_ever_seen = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Unreadable, ValueType};

    fn entry(key: &str, value: &str) -> Entry {
        Entry {
            namespace: "ns".into(),
            key: key.into(),
            value: value.into(),
            value_type: ValueType::Int,
            updated_at: 0,
            updated_at_ms: None,
            writer: None,
        }
    }

    #[test]
    fn unreadable_keys_last_until_a_good_write_or_a_snapshot_that_reads_them() {
        let mut m = NamespaceMirror::default();
        m.replace_all(0, vec![entry("task.counter", "5")]);
        let bad = Unreadable {
            key: Some("task.progress".into()),
            reason: "invalid type: null".into(),
        };
        assert!(m.set_unreadable(std::slice::from_ref(&bad)));
        assert!(!m.set_unreadable(&[bad]), "the same list is no change");
        assert_eq!(m.task().progress_unreadable(), Some("invalid type: null"));
        assert_eq!(m.task().torn(), None, "unknown, not torn");
        m.write(1, vec![entry("task.progress", "50")]);
        assert!(m.unreadable().is_empty());
        assert_eq!(m.task().progress, Some(50));
        m.set_unreadable(&[Unreadable {
            key: Some("x".into()),
            reason: "r".into(),
        }]);
        // A snapshot's unreadable keys are told just before it: one it does
        // not hold stays unreadable, one it holds readable is read.
        m.replace_all(2, vec![entry("task.progress", "50")]);
        assert_eq!(m.unreadable().len(), 1, "absent from it: still unreadable");
        m.replace_all(3, vec![entry("task.progress", "50"), entry("x", "1")]);
        assert!(m.unreadable().is_empty(), "held readable by the snapshot");
    }
}
