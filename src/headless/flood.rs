//! `up --headless` output under a flood stays bounded: of the kinds that can
//! repeat without end (a torn checkpoint, the flag toggling, the feed going
//! down and up, a fenced write, a checkpoint going back), one line per kind
//! and instance per second is written and the rest counted, then told once
//! the second is over (`kv-demo-001 torn ×4,212 in the last 1 s`). Lifecycle
//! events (starts, exits, restarts, recoveries, …) are never held back.

use crate::recovery::{TimelineEvent, TimelineKind, TsMs};
use std::collections::BTreeMap;

/// How long one kind of line about one instance is written once.
pub const WINDOW_MS: TsMs = 1_000;

/// The JSON kind of a repeatable event; `None` for the rest (never held).
fn repeatable(kind: &TimelineKind) -> Option<&'static str> {
    Some(match kind {
        TimelineKind::Torn(_) => "torn",
        TimelineKind::FlagSet => "flag_set",
        TimelineKind::FlagCleared => "flag_cleared",
        TimelineKind::FeedDown { .. } => "controller_down",
        TimelineKind::FeedUp { .. } => "controller_up",
        TimelineKind::Fenced { .. } => "fenced",
        TimelineKind::WentBack { .. } => "checkpoint_went_back",
        _ => return None,
    })
}

/// Lines held back in a window now over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Held {
    /// Always `coalesced`: a line of its own kind in `--events`.
    pub kind: &'static str,
    /// The kind of the lines held.
    pub of: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub count: u64,
    pub window_ms: TsMs,
    pub ts_ms: TsMs,
}

#[derive(Default)]
pub struct Flood {
    /// Open windows by kind and instance: when each ends, lines held in it.
    open: BTreeMap<(&'static str, Option<String>), (TsMs, u64)>,
}

impl Flood {
    /// True when `ev` is to be written now; false when it is counted instead.
    /// Call [`Flood::closed`] first, so a window that is over is told before.
    pub fn admit(&mut self, ev: &TimelineEvent, now: TsMs) -> bool {
        let Some(kind) = repeatable(&ev.kind) else {
            return true;
        };
        match self.open.get_mut(&(kind, ev.instance.clone())) {
            Some((until, held)) if now < *until => {
                *held += 1;
                false
            }
            _ => {
                self.open
                    .insert((kind, ev.instance.clone()), (now + WINDOW_MS, 0));
                true
            }
        }
    }

    /// The windows over by `now` that held lines back, to be told.
    pub fn closed(&mut self, now: TsMs) -> Vec<Held> {
        let mut told = Vec::new();
        self.open.retain(|(of, instance), (until, held)| {
            if now < *until {
                return true;
            }
            if *held > 0 {
                told.push(Held {
                    kind: "coalesced",
                    of,
                    instance: instance.clone(),
                    count: *held,
                    window_ms: WINDOW_MS,
                    ts_ms: now,
                });
            }
            false
        });
        told
    }

    /// When the next window holding lines is over.
    pub fn next_due(&self) -> Option<TsMs> {
        self.open
            .values()
            .filter(|(_, held)| *held > 0)
            .map(|(until, _)| *until)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::TornCheckpoint;

    fn ev(instance: &str, kind: TimelineKind) -> TimelineEvent {
        TimelineEvent {
            at: 0,
            instance: Some(instance.into()),
            kind,
        }
    }

    fn torn(instance: &str) -> TimelineEvent {
        ev(
            instance,
            TimelineKind::Torn(TornCheckpoint {
                progress: Some(60),
                counter: Some(5),
                checkpoint: None,
            }),
        )
    }

    #[test]
    fn a_flood_of_one_kind_is_one_line_and_a_count_per_second() {
        let mut flood = Flood::default();
        assert!(flood.admit(&torn("a"), 0));
        let written = (1..5000)
            .filter(|i| flood.admit(&torn("a"), i / 10))
            .count();
        assert_eq!(written, 0);
        // Another instance has its own window.
        assert!(flood.admit(&torn("b"), 10));
        assert_eq!(flood.next_due(), Some(1_000));
        assert_eq!(flood.closed(999), vec![]);
        let told = flood.closed(1_000);
        assert_eq!(told.len(), 1);
        assert_eq!((told[0].of, told[0].count), ("torn", 4999));
        assert_eq!(told[0].instance.as_deref(), Some("a"));
        // b held nothing: its window ends without a line.
        assert_eq!(flood.closed(2_000), vec![]);
        assert!(flood.admit(&torn("a"), 2_000));
    }

    #[test]
    fn lifecycle_events_are_never_held() {
        let mut flood = Flood::default();
        for i in 0..100 {
            assert!(flood.admit(&ev("a", TimelineKind::Recovering), i));
            assert!(flood.admit(&ev("a", TimelineKind::Started { pid: 1 }), i));
        }
        assert_eq!(flood.next_due(), None);
    }
}
