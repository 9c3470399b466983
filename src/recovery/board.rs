//! Every namespace watched, each judged by its own [`Tracker`]: one, the
//! app's, shared by all its instances (the seed's 方案A: active and standby
//! work one task), or one per instance (`--namespace-by instance`, 方案B: each
//! instance its own task, crash flag and recoveries). The board routes each
//! fact to the tracker it concerns and merges their timelines by time, as the
//! events arrive (so reading the newest few never sorts them all).

use super::facts::{Fact, TsMs};
use super::timeline::TimelineEvent;
use super::tracker::{Cycle, Keep, Tracker};
use crate::kv::NamespaceBy;
use std::collections::BTreeMap;

/// The merged timeline is swept of events their tracker dropped (it keeps the
/// newest only) once it holds this many, or twice as many as after the last sweep.
const SWEEP_AT_LEAST: usize = 1024;

#[derive(Debug)]
pub struct Board {
    by: NamespaceBy,
    app: String,
    /// The trackers, in the order their namespaces were first told of (an
    /// event's [`Place`] names its tracker by this index).
    trackers: Vec<Tracker>,
    /// Each tracker's namespace, by the same index.
    names: Vec<String>,
    /// Namespace → index, in name order: the order trackers are read in.
    by_name: BTreeMap<String, usize>,
    /// Attach: the restart grace every tracker is given.
    restart_grace: Option<std::time::Duration>,
    /// The controller's node TTL every tracker is given.
    node_ttl: Option<std::time::Duration>,
    /// How every tracker reads its namespace: the key names and the pattern told.
    reading: Option<(super::KeyMap, Option<super::Pattern>)>,
    /// What an instance whose namespace has told nothing yet is judged with.
    empty: Tracker,
    /// Every namespace's events in timeline order (time, then namespace, then
    /// as pushed), inserted as they are pushed. Kept with more than one tracker
    /// possible (per instance); one tracker's own order is the timeline.
    merged: Vec<Place>,
    /// `merged`'s length at which the dropped events are swept out of it.
    sweep_at: usize,
    /// Per instance: every event placed, in the order pushed (what
    /// [`Board::events_since`] reads, so a reader's news costs what is new,
    /// not one look per namespace); the oldest are let go.
    journal: std::collections::VecDeque<Place>,
    /// Places let go from the journal's front.
    journal_base: u64,
    /// Every namespace's recovery cycles by when their kill was (then as
    /// [`Board::cycles`] orders them), kept as they are opened.
    cycle_order: Vec<CyclePlace>,
    /// How many of each tracker's cycles are in `cycle_order`.
    cycles_placed: Vec<usize>,
}

/// Where a cycle of the merged list is: its tracker and its index there.
#[derive(Debug, Clone, Copy)]
struct CyclePlace {
    killed_at: TsMs,
    tracker: usize,
    index: usize,
}

/// The journal keeps at least this many places (a reader further behind
/// misses the oldest of its news).
const JOURNAL_KEEP: usize = 8192;

/// Where an event of the merged timeline is: its tracker and its number there.
#[derive(Debug, Clone, Copy)]
struct Place {
    at: TsMs,
    tracker: usize,
    seq: u64,
}

/// How far a reader has read ([`Board::events_since`]): the shared tracker's
/// events pushed, or (per instance) places of the board's journal.
#[derive(Debug, Default, Clone)]
pub struct EventsSeen(u64);

impl Board {
    /// The trackers of `app`'s instances, whose namespace is chosen `by`.
    pub fn new(app: &str, by: NamespaceBy) -> Board {
        let mut board = Board {
            by,
            app: app.to_string(),
            trackers: Vec::new(),
            names: Vec::new(),
            by_name: BTreeMap::new(),
            restart_grace: None,
            node_ttl: None,
            reading: None,
            empty: Tracker::new(),
            merged: Vec::new(),
            sweep_at: SWEEP_AT_LEAST,
            journal: std::collections::VecDeque::new(),
            journal_base: 0,
            cycle_order: Vec::new(),
            cycles_placed: Vec::new(),
        };
        if by == NamespaceBy::App {
            board.add(app, Tracker::new());
        }
        board
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
    /// The controller's `--node-ttl`: how a lost node's loss is told apart.
    pub fn set_node_ttl(&mut self, ttl: std::time::Duration) {
        self.node_ttl = Some(ttl);
        for tracker in &mut self.trackers {
            tracker.set_node_ttl(ttl);
        }
    }

    /// Every namespace is read through `keys`, its pattern as told (`None`: learnt).
    pub fn set_reading(&mut self, keys: super::KeyMap, pattern: Option<super::Pattern>) {
        for tracker in self
            .trackers
            .iter_mut()
            .chain(std::iter::once(&mut self.empty))
        {
            tracker.set_keys(keys.clone());
            tracker.set_pattern(pattern);
        }
        self.reading = Some((keys, pattern));
    }

    pub fn set_restart_grace(&mut self, grace: std::time::Duration) {
        self.restart_grace = Some(grace);
        for tracker in &mut self.trackers {
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
        self.by_name
            .get(self.namespace_of(instance))
            .map_or(&self.empty, |&i| &self.trackers[i])
    }

    /// The first namespace's tracker: the shared one, or (per instance) the
    /// first instance's (an empty one before any).
    pub fn first(&self) -> &Tracker {
        self.by_name
            .values()
            .next()
            .map_or(&self.empty, |&i| &self.trackers[i])
    }

    /// Every namespace watched and its tracker, by name.
    pub fn trackers(&self) -> impl Iterator<Item = (&str, &Tracker)> {
        self.by_name
            .iter()
            .map(|(ns, &i)| (ns.as_str(), &self.trackers[i]))
    }

    /// `fact`, at `at`, to the tracker it concerns: a namespace's change to
    /// that namespace's (`namespace`: where it was read), a process fact to its
    /// instance's, anything else (the cluster, node actions) to every one.
    pub fn apply(&mut self, at: TsMs, namespace: Option<&str>, fact: Fact) {
        if self.by == NamespaceBy::App {
            if let Some(tracker) = self.trackers.first_mut() {
                tracker.apply(at, fact);
            }
            return;
        }
        let target = namespace.or_else(|| instance_of(&fact)).map(str::to_string);
        match target {
            Some(ns) => {
                let i = self.tracker_index(&ns);
                let from = self.trackers[i].pushed();
                self.trackers[i].apply(at, fact);
                self.merge_new(i, from);
            }
            None => {
                for i in 0..self.trackers.len() {
                    let from = self.trackers[i].pushed();
                    self.trackers[i].apply(at, fact.clone());
                    self.merge_new(i, from);
                }
            }
        }
    }

    /// The index of `namespace`'s tracker, made on first use.
    fn tracker_index(&mut self, namespace: &str) -> usize {
        if let Some(&i) = self.by_name.get(namespace) {
            return i;
        }
        // The first one tells the cluster's news; the others only their own.
        let voice = self.trackers.is_empty();
        let mut tracker = Tracker::of_instance(namespace, voice);
        if let Some(grace) = self.restart_grace {
            tracker.set_restart_grace(grace);
        }
        if let Some(ttl) = self.node_ttl {
            tracker.set_node_ttl(ttl);
        }
        if let Some((keys, pattern)) = &self.reading {
            tracker.set_keys(keys.clone());
            tracker.set_pattern(*pattern);
        }
        self.add(namespace, tracker)
    }

    fn add(&mut self, namespace: &str, mut tracker: Tracker) -> usize {
        let i = self.trackers.len();
        // The history each tracker keeps is shared out when there are many.
        let keep = Keep::shared_by(i + 1);
        if keep != Keep::shared_by(i) {
            for t in &mut self.trackers {
                t.set_keep(keep);
            }
        }
        tracker.set_keep(keep);
        self.trackers.push(tracker);
        self.cycles_placed.push(0);
        self.names.push(namespace.to_string());
        self.by_name.insert(namespace.to_string(), i);
        i
    }

    /// Time passing, in every tracker; true when something changed.
    pub fn tick(&mut self, now: TsMs) -> bool {
        let mut changed = false;
        for i in 0..self.trackers.len() {
            let from = self.trackers[i].pushed();
            changed |= self.trackers[i].tick(now);
            self.merge_new(i, from);
        }
        changed
    }

    /// Places tracker `i`'s events from number `from` on in the merged
    /// timeline: almost always at its end (facts come nearly in time order).
    fn merge_new(&mut self, i: usize, from: u64) {
        self.place_cycles(i);
        if self.by == NamespaceBy::App {
            return;
        }
        for seq in from..self.trackers[i].pushed() {
            // Dropped by its tracker already: nothing to place.
            let Some(ev) = self.trackers[i].event(seq) else {
                continue;
            };
            let place = Place {
                at: ev.at,
                tracker: i,
                seq,
            };
            let names = &self.names;
            let at_end = self
                .merged
                .last()
                .is_none_or(|last| !comes_after(names, last, &place));
            let pos = if at_end {
                self.merged.len()
            } else {
                self.merged
                    .partition_point(|p| !comes_after(names, p, &place))
            };
            self.merged.insert(pos, place);
            self.journal.push_back(place);
        }
        let keep = JOURNAL_KEEP.max(2 * self.trackers.len());
        if self.journal.len() > 2 * keep {
            let gone = self.journal.len() - keep;
            self.journal.drain(..gone);
            self.journal_base += gone as u64;
        }
        if self.merged.len() >= self.sweep_at {
            let trackers = &self.trackers;
            self.merged
                .retain(|p| trackers[p.tracker].event(p.seq).is_some());
            self.sweep_at = (self.merged.len() * 2).max(SWEEP_AT_LEAST);
        }
    }

    /// The event at `place`, unless its tracker has dropped it.
    fn event_at(&self, place: &Place) -> Option<&TimelineEvent> {
        self.trackers[place.tracker].event(place.seq)
    }

    /// Reads one tracker's own order rather than the merged one.
    fn single(&self) -> bool {
        self.by_name.len() <= 1
    }

    /// What happened in every namespace, oldest first (events of one time in
    /// namespace order).
    pub fn timeline(&self) -> Vec<&TimelineEvent> {
        if self.single() {
            return self.first().timeline().collect();
        }
        self.merged
            .iter()
            .filter_map(|p| self.event_at(p))
            .collect()
    }

    /// How many events [`Board::timeline`] holds.
    pub fn timeline_len(&self) -> usize {
        self.trackers.iter().map(|t| t.timeline().len()).sum()
    }

    /// The `room` events before the newest `back` ones, oldest first (a pane of
    /// `room` lines scrolled `back`): the same as slicing [`Board::timeline`],
    /// without collecting all of it.
    pub fn latest(&self, room: usize, back: usize) -> Vec<&TimelineEvent> {
        let mut events: Vec<&TimelineEvent> = if self.single() {
            self.first()
                .timeline()
                .rev()
                .skip(back)
                .take(room)
                .collect()
        } else {
            self.merged
                .iter()
                .rev()
                .filter_map(|p| self.event_at(p))
                .skip(back)
                .take(room)
                .collect()
        };
        events.reverse();
        events
    }

    /// The recovery cycles of every namespace, by when their kill was.
    pub fn cycles(&self) -> Vec<&Cycle> {
        if self.single() {
            return self.first().cycles().iter().collect();
        }
        self.cycle_order.iter().map(|p| self.cycle_at(p)).collect()
    }

    /// How many recovery cycles [`Board::cycles`] holds.
    pub fn cycle_count(&self) -> usize {
        if self.single() {
            return self.first().cycles().len();
        }
        self.cycle_order.len()
    }

    /// The newest `n` of [`Board::cycles`] with their index there, newest
    /// first, without collecting all of them.
    pub fn latest_cycles(&self, n: usize) -> Vec<(usize, &Cycle)> {
        if self.single() {
            return self
                .first()
                .cycles()
                .iter()
                .enumerate()
                .rev()
                .take(n)
                .collect();
        }
        self.cycle_order
            .iter()
            .enumerate()
            .rev()
            .take(n)
            .map(|(i, p)| (i, self.cycle_at(p)))
            .collect()
    }

    fn cycle_at(&self, place: &CyclePlace) -> &Cycle {
        &self.trackers[place.tracker].cycles()[place.index]
    }

    /// Places tracker `i`'s cycles opened since the last look in the
    /// merged cycle list (by kill time, then namespace name, then index).
    fn place_cycles(&mut self, i: usize) {
        let count = self.trackers[i].cycles().len();
        for index in self.cycles_placed[i]..count {
            let killed_at = self.trackers[i].cycles()[index].killed_at;
            let place = CyclePlace {
                killed_at,
                tracker: i,
                index,
            };
            let names = &self.names;
            let key = |p: &CyclePlace| (p.killed_at, &names[p.tracker], p.index);
            let pos = self.cycle_order.partition_point(|p| key(p) <= key(&place));
            self.cycle_order.insert(pos, place);
        }
        self.cycles_placed[i] = count;
    }

    /// The events pushed since `seen` was last passed, oldest first (events
    /// of one time in namespace order); `seen` is moved on.
    pub fn events_since(&self, seen: &mut EventsSeen) -> Vec<&TimelineEvent> {
        if self.by == NamespaceBy::App {
            let (events, count) = self.first().events_since(seen.0);
            seen.0 = count;
            return events;
        }
        let end = self.journal_base + self.journal.len() as u64;
        let from = seen.0.clamp(self.journal_base, end);
        seen.0 = end;
        let skip = usize::try_from(from - self.journal_base).unwrap_or(usize::MAX);
        let mut new: Vec<&Place> = self.journal.iter().skip(skip).collect();
        let names = &self.names;
        new.sort_by(|a, b| (a.at, &names[a.tracker], a.seq).cmp(&(b.at, &names[b.tracker], b.seq)));
        new.into_iter().filter_map(|p| self.event_at(p)).collect()
    }
}

/// Whether the event at `a` comes after the one at `b` in the merged timeline:
/// by time, then namespace name, then as its tracker pushed them (what a stable
/// sort by time of every namespace's timeline, in name order, gives).
fn comes_after(names: &[String], a: &Place, b: &Place) -> bool {
    (a.at, &names[a.tracker], a.seq) > (b.at, &names[b.tracker], b.seq)
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
            exit: ProcessExit::Signal(nix::sys::signal::Signal::SIGKILL),
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

    /// A thousand trackers share the history budget out: one that had a
    /// long timeline while it was alone keeps only its share once the others
    /// come, and each newcomer is held to it too; a few keep the whole caps.
    #[test]
    fn per_instance_many_trackers_share_the_history_kept() {
        let mut board = Board::new("kv-demo", NamespaceBy::Instance);
        let mut at = 0;
        for run in 0..400 {
            at += 1;
            board.apply(at, None, started("kv-demo-0000", run));
            at += 1;
            board.apply(at, None, killed("kv-demo-0000"));
        }
        let alone = board.tracker_of("kv-demo-0000").timeline().len();
        assert!(alone >= 800, "alone, it keeps its whole timeline ({alone})");
        for i in 1..1000 {
            at += 1;
            board.apply(at, None, started(&format!("kv-demo-{i:04}"), 1000 + i));
        }
        let share = Keep::shared_by(1000);
        assert!(share.timeline < alone && share.timeline >= 40);
        assert_eq!(
            board.tracker_of("kv-demo-0000").timeline().len(),
            share.timeline
        );
        for run in 0..300 {
            at += 1;
            board.apply(at, None, started("kv-demo-0999", 5000 + run));
            at += 1;
            board.apply(at, None, killed("kv-demo-0999"));
        }
        assert_eq!(
            board.tracker_of("kv-demo-0999").timeline().len(),
            share.timeline
        );
        assert_eq!(Keep::shared_by(3), Keep::default());
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

    /// What `timeline()` was before it was kept merged: every namespace's
    /// timeline in name order, sorted by time (stable) when there are several.
    fn fully_sorted(board: &Board) -> Vec<&TimelineEvent> {
        let mut all: Vec<&TimelineEvent> =
            board.trackers().flat_map(|(_, t)| t.timeline()).collect();
        if board.trackers().count() > 1 {
            all.sort_by_key(|e| e.at);
        }
        all
    }

    fn same_events(a: &[&TimelineEvent], b: &[&TimelineEvent]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| std::ptr::eq(*x, *y))
    }

    /// What `events_since` was before the journal: each namespace's news
    /// (counted per namespace), in name order, sorted by time (stable).
    fn news_by_scan<'a>(
        board: &'a Board,
        seen: &mut BTreeMap<String, u64>,
    ) -> Vec<&'a TimelineEvent> {
        let mut new = Vec::new();
        for (ns, tracker) in board.trackers() {
            let before = seen.entry(ns.to_string()).or_insert(0);
            let (events, count) = tracker.events_since(*before);
            new.extend(events);
            *before = count;
        }
        new.sort_by_key(|e| e.at);
        new
    }

    /// What `cycles` was before the kept order: every namespace's cycles in
    /// name order, sorted by kill time (stable).
    fn cycles_by_sort(board: &Board) -> Vec<&Cycle> {
        let mut all: Vec<&Cycle> = board.trackers().flat_map(|(_, t)| t.cycles()).collect();
        all.sort_by_key(|c| c.killed_at);
        all
    }

    fn assert_merged_as_sorted(board: &Board, when: usize) {
        let cycles = cycles_by_sort(board);
        let kept = board.cycles();
        assert!(
            kept.len() == cycles.len()
                && kept.iter().zip(&cycles).all(|(a, b)| std::ptr::eq(*a, *b)),
            "after fact {when}: cycles"
        );
        assert_eq!(board.cycle_count(), cycles.len());
        let newest: Vec<(usize, &Cycle)> =
            cycles.iter().copied().enumerate().rev().take(3).collect();
        let latest = board.latest_cycles(3);
        assert!(
            latest.len() == newest.len()
                && latest
                    .iter()
                    .zip(&newest)
                    .all(|(a, b)| a.0 == b.0 && std::ptr::eq(a.1, b.1)),
            "after fact {when}: latest cycles"
        );
        let sorted = fully_sorted(board);
        assert!(
            same_events(&board.timeline(), &sorted),
            "after fact {when}: merged {:?}\nsorted {:?}",
            board.timeline(),
            sorted
        );
        assert_eq!(board.timeline_len(), sorted.len());
        for (room, back) in [
            (0, 0),
            (1, 0),
            (5, 0),
            (20, 3),
            (7, 40),
            (10_000, 0),
            (3, 10_000),
        ] {
            let end = sorted.len().saturating_sub(back);
            let start = end.saturating_sub(room);
            assert!(
                same_events(&board.latest(room, back), &sorted[start..end]),
                "after fact {when}: latest({room}, {back})"
            );
        }
    }

    /// The merged timeline, kept as facts arrive, is the full sort of every
    /// namespace's events: with timestamps out of order, namespaces that appear
    /// late (one sorting first, one last), events told to every namespace, ticks, and
    /// more events than a tracker keeps.
    #[test]
    fn per_instance_the_timeline_kept_merged_is_the_full_sort_of_a_replay() {
        let mut board = Board::new("kv-demo", NamespaceBy::Instance);
        board.set_restart_grace(std::time::Duration::from_millis(50));
        let mut ids = vec!["kv-demo-003", "kv-demo-002"];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut random = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        const FACTS: usize = 12_000;
        let mut t: TsMs = 1_000;
        let (mut seen, mut seen_by_scan) = (EventsSeen::default(), BTreeMap::new());
        let mut news = 0;
        for n in 0..FACTS {
            if n == 700 {
                ids.push("kv-demo-001");
            }
            // Late, so fewer events than the others: one sorting first, one last.
            if n == 1_500 {
                ids.push("a-late");
            }
            if n == 6_000 {
                ids.push("z-late");
            }
            t += 3;
            // Up to 40 ms early or late (facts from several sources), and in
            // whole 10 ms, so that namespaces' events share times.
            let at = (t + random(80) - 40) / 10 * 10;
            let id = ids[random(ids.len() as u64) as usize];
            match random(20) {
                0 => board.apply(at, None, started(id, 100 + n as u32)),
                1 => board.apply(at, None, killed(id)),
                2 => board.apply(
                    at,
                    None,
                    Fact::Exited {
                        instance: id.into(),
                        exit: ProcessExit::Unknown,
                        requested: false,
                    },
                ),
                3 => board.apply(
                    at,
                    None,
                    Fact::NodeAction {
                        node: "nodeA".into(),
                        action: crate::recovery::NodeAction::Frozen,
                    },
                ),
                4 => {
                    board.tick(at);
                }
                5..=11 => board.apply(at, Some(id), flag()),
                12..=17 => board.apply(
                    at,
                    Some(id),
                    Fact::Deleted {
                        key: crate::recovery::CRASH_FLAG_KEY.into(),
                        writer: None,
                    },
                ),
                _ => board.apply(at, Some(id), checkpoint(random(10) as i64)),
            }
            // The news a reader gets after each fact, as the scan of every
            // namespace gave it.
            let got = board.events_since(&mut seen);
            let want = news_by_scan(&board, &mut seen_by_scan);
            assert!(
                same_events(&got, &want),
                "after fact {n}: news {got:?} vs {want:?}"
            );
            news += got.len();
            if n % 97 == 0 {
                assert_merged_as_sorted(&board, n);
            }
        }
        assert!(news > FACTS / 4, "{news} events told");
        assert!(board.cycle_count() > 10, "{} cycles", board.cycle_count());
        assert_merged_as_sorted(&board, FACTS);
        assert_eq!(board.trackers().count(), 5);
        assert!(
            board
                .trackers()
                .any(|(_, t)| t.pushed() > t.timeline().len() as u64),
            "a tracker dropped its oldest events"
        );
        assert!(board.merged.len() < 2 * board.timeline_len() + SWEEP_AT_LEAST);
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
