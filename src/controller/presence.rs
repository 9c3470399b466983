//! What this controller has seen of each node since it started, in memory and
//! to the millisecond: its last heartbeat, and whether its agent holds a
//! presence stream (`/v1/stream?nodeId=N&presence=1`).
//!
//! Two ways a node stops being Healthy:
//! - **Missed beats:** its last beat is older than the TTL (the original's rule,
//!   here in milliseconds, not whole seconds).
//! - **Presence lost:** its agent held a presence stream, the last one closed,
//!   none re-opened within the grace, and no beat came after the close. A
//!   killed agent's connections close at once (the kernel closes them), so this
//!   is seen in well under a second, not after the TTL. Only plumdash's agent
//!   opens a presence stream: its workers die with it (the orphan guard) and it
//!   re-opens a dropped stream at once. The original agent opens a plain
//!   `nodeId` stream, re-opens it after 1 s and its apps outlive it, so for it
//!   the TTL alone decides.
//!
//! A frozen agent's connections stay open, so a frozen node is judged by the TTL.

use super::relock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Seen {
    last_beat: Option<Instant>,
    streams: usize,
    /// When the last presence stream closed (None while one is open).
    closed_at: Option<Instant>,
}

/// The in-memory liveness of every node seen since start.
#[derive(Debug)]
pub struct Presence {
    ttl: Duration,
    grace: Duration,
    nodes: Mutex<HashMap<String, Seen>>,
    /// Woken when a presence stream closes or opens, so the failover loop
    /// re-plans its next pass.
    changed: Notify,
}

/// Held by a presence stream while it is open; closing it is dropping it.
pub struct PresenceGuard {
    presence: Arc<Presence>,
    node: String,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        self.presence.closed(&self.node, Instant::now());
    }
}

impl Presence {
    pub fn new(ttl: Duration, grace: Duration) -> Presence {
        Presence {
            ttl,
            grace,
            nodes: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        }
    }

    fn nodes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Seen>> {
        // Every update is one field write: a panic leaves nothing half-done.
        relock(&self.nodes)
    }

    pub fn beat(&self, node: &str, at: Instant) {
        self.nodes().entry(node.to_string()).or_default().last_beat = Some(at);
    }

    /// A presence stream of `node` opened; it counts until the guard drops.
    pub fn open(self: &Arc<Self>, node: &str) -> PresenceGuard {
        {
            let mut nodes = self.nodes();
            let seen = nodes.entry(node.to_string()).or_default();
            seen.streams += 1;
            seen.closed_at = None;
        }
        self.changed.notify_one();
        PresenceGuard {
            presence: self.clone(),
            node: node.to_string(),
        }
    }

    fn closed(&self, node: &str, at: Instant) {
        {
            let mut nodes = self.nodes();
            let seen = nodes.entry(node.to_string()).or_default();
            seen.streams = seen.streams.saturating_sub(1);
            if seen.streams == 0 {
                seen.closed_at = Some(at);
            }
        }
        self.changed.notify_one();
    }

    /// Whether `node` is healthy at `now`, when this controller has seen it
    /// beat or hold a stream; None when it has not (judge by the stored beat).
    pub fn healthy(&self, node: &str, now: Instant) -> Option<bool> {
        let nodes = self.nodes();
        let seen = nodes.get(node)?;
        if self.presence_lost(seen, now) {
            return Some(false);
        }
        seen.last_beat
            .map(|b| now.saturating_duration_since(b) <= self.ttl)
    }

    fn presence_lost(&self, seen: &Seen, now: Instant) -> bool {
        match seen.closed_at {
            Some(closed) if seen.streams == 0 => {
                now.saturating_duration_since(closed) >= self.grace
                    && seen.last_beat.is_none_or(|b| b <= closed)
            }
            _ => false,
        }
    }

    /// The next moment a node seen healthy now may stop being so: its TTL
    /// running out, or a closed stream's grace ending.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        let nodes = self.nodes();
        nodes
            .values()
            .filter(|seen| !self.presence_lost(seen, now))
            .flat_map(|seen| {
                let ttl_end = seen
                    .last_beat
                    .map(|b| b + self.ttl + Duration::from_millis(1));
                let grace_end = seen
                    .closed_at
                    .filter(|_| seen.streams == 0)
                    .map(|c| c + self.grace);
                [ttl_end, grace_end]
            })
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// Resolves when a presence stream opens or closes.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);
    const GRACE: Duration = Duration::from_millis(300);

    #[test]
    fn a_closed_presence_stream_is_a_lost_node_after_the_grace_unless_it_beats_again() {
        let p = Arc::new(Presence::new(TTL, GRACE));
        let t0 = Instant::now();
        p.beat("nodeA", t0);
        let guard = p.open("nodeA");
        assert_eq!(p.healthy("nodeA", t0), Some(true));
        drop(guard);
        let closed = Instant::now();
        assert_eq!(p.healthy("nodeA", closed), Some(true), "within the grace");
        let next = p.next_change(closed);
        assert!(
            next.is_some_and(|t| t > closed && t <= closed + GRACE),
            "the grace's end comes before the TTL's: {next:?}"
        );
        assert_eq!(p.healthy("nodeA", closed + GRACE), Some(false));
        // A beat after the close: the agent lives (its stream merely dropped).
        p.beat("nodeA", closed + Duration::from_millis(100));
        assert_eq!(p.healthy("nodeA", closed + GRACE), Some(true));
        // Re-opening clears the close.
        let again = p.open("nodeA");
        assert_eq!(
            p.healthy("nodeA", closed + Duration::from_secs(2)),
            Some(true)
        );
        drop(again);
    }

    #[test]
    fn missed_beats_count_in_milliseconds_and_the_next_change_is_the_ttl_end() {
        let p = Arc::new(Presence::new(TTL, GRACE));
        let t0 = Instant::now();
        p.beat("nodeA", t0);
        assert_eq!(p.healthy("nodeA", t0 + TTL), Some(true));
        assert_eq!(
            p.healthy("nodeA", t0 + TTL + Duration::from_millis(1)),
            Some(false)
        );
        assert_eq!(p.next_change(t0), Some(t0 + TTL + Duration::from_millis(1)));
        assert_eq!(
            p.healthy("nodeB", t0),
            None,
            "never seen: the stored beat decides"
        );
        // Two streams: closing one is not a loss.
        let a = p.open("nodeA");
        let b = p.open("nodeA");
        drop(a);
        assert_eq!(p.healthy("nodeA", t0 + Duration::from_secs(1)), Some(true));
        drop(b);
    }
}
