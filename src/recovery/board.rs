//! Every namespace watched, each judged by its own [`Tracker`]: one, the
//! app's, shared by all its instances (the seed's 方案A: active and standby
//! work one task), or one per instance (`--namespace-by instance`, 方案B: each
//! instance its own task, crash flag and recoveries). The board routes each
//! fact to the tracker it concerns and merges their timelines by time.

use super::facts::{Fact, TsMs};
use super::timeline::TimelineEvent;
use super::tracker::{Cycle, Tracker};
use crate::kv::NamespaceBy;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Board {
    by: NamespaceBy,
    app: String,
    /// Namespace → its tracker. Shared: one, under the app's name.
    trackers: BTreeMap<String, Tracker>,
    /// Attach: the restart grace every tracker is given.
    restart_grace: Option<std::time::Duration>,
    /// What an instance whose namespace has told nothing yet is judged with.
    empty: Tracker,
}

/// How many timeline events of each namespace a reader has printed
/// ([`Board::events_since`]).
#[derive(Debug, Default, Clone)]
pub struct EventsSeen(BTreeMap<String, u64>);

impl Board {
    /// The trackers of `app`'s instances, whose namespace is chosen `by`.
    pub fn new(app: &str, by: NamespaceBy) -> Board {
        let mut trackers = BTreeMap::new();
        if by == NamespaceBy::App {
            trackers.insert(app.to_string(), Tracker::new());
        }
        Board {
            by,
            app: app.to_string(),
            trackers,
            restart_grace: None,
            empty: Tracker::new(),
        }
    }

    /// One namespace shared by every instance (the default).
    pub fn shared(app: &str) -> Board {
        Board::new(app, NamespaceBy::App)
    }

    /// Each instance works in its own namespace.
    pub fn per_instance(&self) -> bool {
        self.by == NamespaceBy::Instance
    }

    /// Attach: report crashed instances nobody restarts within `grace`.
    pub fn set_restart_grace(&mut self, grace: std::time::Duration) {
        self.restart_grace = Some(grace);
        for tracker in self.trackers.values_mut() {
            tracker.set_restart_grace(grace);
        }
    }

    /// The namespace `instance` keeps its task in.
    pub fn namespace_of<'a>(&'a self, instance: &'a str) -> &'a str {
        self.by.namespace(&self.app, instance)
    }

    /// The tracker that judges `instance` (an empty one before its namespace
    /// told anything).
    pub fn tracker_of(&self, instance: &str) -> &Tracker {
        self.trackers
            .get(self.namespace_of(instance))
            .unwrap_or(&self.empty)
    }

    /// The first namespace's tracker: the shared one, or (per instance) the
    /// first instance's (an empty one before any).
    pub fn first(&self) -> &Tracker {
        self.trackers.values().next().unwrap_or(&self.empty)
    }

    /// Every namespace watched and its tracker, by name.
    pub fn trackers(&self) -> impl Iterator<Item = (&str, &Tracker)> {
        self.trackers.iter().map(|(ns, t)| (ns.as_str(), t))
    }

    /// `fact`, at `at`, to the tracker it concerns: a namespace's change to
    /// that namespace's (`namespace`: where it was read), a process fact to its
    /// instance's, anything else (the cluster, node actions) to every one.
    pub fn apply(&mut self, at: TsMs, namespace: Option<&str>, fact: Fact) {
        if self.by == NamespaceBy::App {
            if let Some(tracker) = self.trackers.values_mut().next() {
                tracker.apply(at, fact);
            }
            return;
        }
        let target = namespace.or_else(|| instance_of(&fact)).map(str::to_string);
        match target {
            Some(ns) => self.tracker_mut(&ns).apply(at, fact),
            None => {
                for tracker in self.trackers.values_mut() {
                    tracker.apply(at, fact.clone());
                }
            }
        }
    }

    fn tracker_mut(&mut self, namespace: &str) -> &mut Tracker {
        let grace = self.restart_grace;
        // The first one tells the cluster's news; the others only their own.
        let voice = self.trackers.is_empty();
        self.trackers
            .entry(namespace.to_string())
            .or_insert_with(|| {
                let mut tracker = Tracker::of_instance(namespace, voice);
                if let Some(grace) = grace {
                    tracker.set_restart_grace(grace);
                }
                tracker
            })
    }

    /// Time passing, in every tracker; true when something changed.
    pub fn tick(&mut self, now: TsMs) -> bool {
        let mut changed = false;
        for tracker in self.trackers.values_mut() {
            changed |= tracker.tick(now);
        }
        changed
    }

    /// What happened in every namespace, oldest first (events of one time in
    /// namespace order).
    pub fn timeline(&self) -> Vec<&TimelineEvent> {
        let mut events: Vec<&TimelineEvent> =
            self.trackers.values().flat_map(Tracker::timeline).collect();
        if self.trackers.len() > 1 {
            events.sort_by_key(|e| e.at);
        }
        events
    }

    /// The recovery cycles of every namespace, by when their kill was.
    pub fn cycles(&self) -> Vec<&Cycle> {
        let mut cycles: Vec<&Cycle> = self.trackers.values().flat_map(Tracker::cycles).collect();
        if self.trackers.len() > 1 {
            cycles.sort_by_key(|c| c.killed_at);
        }
        cycles
    }

    /// The events pushed since `seen` was last passed, oldest first; `seen`
    /// is moved on.
    pub fn events_since(&self, seen: &mut EventsSeen) -> Vec<&TimelineEvent> {
        let mut new = Vec::new();
        for (ns, tracker) in &self.trackers {
            // Called per fact: a namespace's name is copied only once.
            let before = match seen.0.get_mut(ns) {
                Some(count) => count,
                None => seen.0.entry(ns.clone()).or_insert(0),
            };
            let (events, count) = tracker.events_since(*before);
            new.extend(events);
            *before = count;
        }
        if self.trackers.len() > 1 {
            new.sort_by_key(|e| e.at);
        }
        new
    }
}

/// The instance a process fact is about.
fn instance_of(fact: &Fact) -> Option<&str> {
    match fact {
        Fact::Started { instance, .. }
        | Fact::Attached { instance, .. }
        | Fact::Exited { instance, .. }
        | Fact::RestartScheduled { instance, .. }
        | Fact::TakeoverScheduled { instance, .. }
        | Fact::Frozen { instance, .. }
        | Fact::Continued { instance }
        | Fact::Failed { instance, .. } => Some(instance),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::sample::{checkpoint, flag};
    use crate::recovery::{Phase, ProcessExit, TimelineKind};

    fn started(id: &str, pid: u32) -> Fact {
        Fact::Started {
            instance: id.into(),
            pid,
        }
    }

    fn killed(id: &str) -> Fact {
        Fact::Exited {
            instance: id.into(),
            exit: ProcessExit::Signal("SIGKILL".into()),
            requested: false,
        }
    }

    #[test]
    fn shared_every_fact_goes_to_the_one_tracker() {
        let mut board = Board::shared("kv-demo");
        board.apply(1, None, started("kv-demo-001", 10));
        board.apply(2, Some("kv-demo"), flag());
        board.apply(3, None, started("kv-demo-002", 11));
        assert_eq!(board.trackers().count(), 1);
        assert_eq!(board.namespace_of("kv-demo-002"), "kv-demo");
        let t = board.tracker_of("kv-demo-001");
        assert_eq!(t.instances().count(), 2);
        assert!(t.task().crash_flag);
        assert!(std::ptr::eq(t, board.first()));
    }

    #[test]
    fn per_instance_a_crash_in_one_namespace_leaves_the_other_alone() {
        let mut board = Board::new("kv-demo", NamespaceBy::Instance);
        for (i, id) in ["kv-demo-001", "kv-demo-002"].into_iter().enumerate() {
            board.apply(1, None, started(id, 10 + i as u32));
            board.apply(2, Some(id), flag());
        }
        board.apply(3, Some("kv-demo-001"), checkpoint(3));
        board.apply(4, Some("kv-demo-002"), checkpoint(7));
        board.apply(5, None, killed("kv-demo-002"));
        board.apply(6, None, started("kv-demo-002", 12));

        let one = board.tracker_of("kv-demo-001");
        let two = board.tracker_of("kv-demo-002");
        assert_eq!(one.task().counter, Some(3));
        assert_eq!(two.task().counter, Some(7));
        assert_eq!(one.cycles().len(), 0);
        assert_eq!(
            two.cycles().len(),
            1,
            "the kill opened a cycle in its own namespace"
        );
        assert_eq!(
            one.instance("kv-demo-001").map(|i| &i.phase),
            Some(&Phase::Running)
        );
        assert_eq!(
            two.instance("kv-demo-002").map(|i| &i.phase),
            Some(&Phase::Recovering)
        );
        assert!(
            one.instance("kv-demo-002").is_none(),
            "each judges only its own"
        );
        let cycles = board.cycles();
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].killed_instance, "kv-demo-002");
    }

    #[test]
    fn per_instance_timeline_is_merged_by_time_and_namespace_events_name_their_instance() {
        let mut board = Board::new("kv-demo", NamespaceBy::Instance);
        board.apply(1, None, started("kv-demo-002", 11));
        board.apply(2, None, started("kv-demo-001", 10));
        board.apply(3, Some("kv-demo-002"), flag());
        board.apply(4, Some("kv-demo-001"), flag());
        let lines: Vec<(TsMs, Option<&str>)> = board
            .timeline()
            .iter()
            .map(|e| (e.at, e.instance.as_deref()))
            .collect();
        assert_eq!(
            lines,
            [
                (1, Some("kv-demo-002")),
                (2, Some("kv-demo-001")),
                (3, Some("kv-demo-002")),
                (4, Some("kv-demo-001")),
            ]
        );
        assert!(matches!(board.timeline()[2].kind, TimelineKind::FlagSet));

        let mut seen = EventsSeen::default();
        assert_eq!(board.events_since(&mut seen).len(), 4);
        assert!(board.events_since(&mut seen).is_empty());
        board.apply(5, None, killed("kv-demo-001"));
        let new = board.events_since(&mut seen);
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].instance.as_deref(), Some("kv-demo-001"));
    }

    #[test]
    fn per_instance_the_cluster_news_is_told_once_and_a_move_by_its_instance() {
        use crate::cluster::DesiredState;
        use crate::recovery::sample::{assignment, node};
        let view = |a_healthy: bool, rows: Vec<crate::cluster::Assignment>| {
            Fact::Cluster(crate::cluster::ClusterView {
                nodes: vec![node("nodeA", a_healthy), node("nodeB", true)],
                assignments: rows,
            })
        };
        let mut board = Board::new("kv-demo", NamespaceBy::Instance);
        for (i, id) in ["i-1", "i-2"].into_iter().enumerate() {
            board.apply(1, None, started(id, 10 + i as u32));
        }
        let both_on_a = vec![
            assignment("i-1", "nodeA", DesiredState::Running),
            assignment("i-2", "nodeA", DesiredState::Running),
        ];
        board.apply(2, None, view(true, both_on_a));
        // nodeA dies: i-2's work moves to i-3 on nodeB.
        let moved = vec![
            assignment("i-1", "nodeA", DesiredState::Running),
            assignment("i-2", "nodeA", DesiredState::Stopped),
            assignment("i-3", "nodeB", DesiredState::Running),
        ];
        board.apply(3, None, view(false, moved));
        let count = |pick: &dyn Fn(&TimelineKind) -> bool| {
            board.timeline().iter().filter(|e| pick(&e.kind)).count()
        };
        assert_eq!(
            count(&|k| matches!(k, TimelineKind::NodeUp { .. })),
            2,
            "nodeA, nodeB once each"
        );
        assert_eq!(count(&|k| matches!(k, TimelineKind::NodeDown { .. })), 1);
        let migrated: Vec<_> = board
            .timeline()
            .into_iter()
            .filter(|e| matches!(e.kind, TimelineKind::Migrated { .. }))
            .collect();
        assert_eq!(migrated.len(), 1, "{migrated:?}");
        assert_eq!(migrated[0].instance.as_deref(), Some("i-2"));
        // Every tracker knows where the work went (its rows say so).
        assert!(board.tracker_of("i-2").nodes().replaced_by("i-2").is_some());
    }

    #[test]
    fn per_instance_an_instance_not_yet_heard_of_is_judged_empty_and_grace_reaches_new_trackers() {
        let mut board = Board::new("kv-demo", NamespaceBy::Instance);
        assert_eq!(board.tracker_of("kv-demo-009").instances().count(), 0);
        board.set_restart_grace(std::time::Duration::from_millis(100));
        board.apply(
            1,
            None,
            Fact::Attached {
                instance: "kv-demo-001".into(),
                pid: 5,
            },
        );
        board.apply(2, Some("kv-demo-001"), flag());
        board.apply(
            3,
            None,
            Fact::Exited {
                instance: "kv-demo-001".into(),
                exit: ProcessExit::Unknown,
                requested: false,
            },
        );
        assert!(board.tick(500), "the new tracker got the grace");
    }
}
