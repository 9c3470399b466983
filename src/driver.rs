//! The one loop every front end runs on: a session's facts applied to the
//! recovery [`Board`], the `ctl status` snapshot published when that changed
//! something, and the one merged view of the instances (the supervisor's
//! lifecycle and the judgement, [`InstanceStatus`]) that the dashboard's rows
//! and `ctl status` both read, worked out once per change. `up --headless`,
//! the dashboard's runtime and `verify` hold a [`Driver`] and only print or draw.

use crate::clock::now_ms;
use crate::ctl_socket::StatusPublisher;
use crate::recovery::{Board, EventsSeen, Fact, InstanceStatus, TimelineEvent, TsMs};
use crate::session::{Observed, Session};
use std::time::Duration;
use tokio::time::Instant;

/// Longest a change without a timeline event (a plain checkpoint) waits before
/// `ctl status` shows it; an event is shown at once (see [`STATUS_AT_ONCE_UP_TO`]).
pub const STATUS_EVERY: Duration = Duration::from_millis(100);

/// Up to this many instances an event publishes `ctl status` at once, every
/// time. Beyond it (a publish is the whole view, O(instances)) an event is
/// published at once only if none went out in the last [`STATUS_EVERY`], else
/// at the end of it: a burst of events across a thousand instances costs ten
/// full views a second, not one per event.
pub const STATUS_AT_ONCE_UP_TO: usize = 100;

/// Where a front end keeps the board the driver feeds: the board itself, or
/// the dashboard's model around it (its panes read the board there).
pub trait HoldsBoard {
    fn board(&self) -> &Board;
    fn board_mut(&mut self) -> &mut Board;
}

impl HoldsBoard for Board {
    fn board(&self) -> &Board {
        self
    }

    fn board_mut(&mut self) -> &mut Board {
        self
    }
}

/// What one fact (or time passing) did.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// When it happened.
    pub at: TsMs,
    /// The timeline events it added, in every namespace, oldest first.
    pub events: Vec<TimelineEvent>,
    /// The fact itself, for a front end that asked to keep it
    /// ([`Driver::keep_facts`]: verify's history).
    pub fact: Option<Fact>,
}

/// A session, the board its facts are judged into, and who hears of changes.
pub struct Driver<M: HoldsBoard = Board> {
    session: Session,
    model: M,
    status: Option<StatusPublisher>,
    /// A change without an event not published yet: by then at the latest.
    status_due: Option<Instant>,
    /// When `ctl status` was last published.
    status_at: Option<Instant>,
    /// The timeline events already handed out in a [`Step`].
    seen: EventsSeen,
    /// The instances as rows and `ctl status` show them ([`Driver::instances`]).
    view: Vec<InstanceStatus>,
    /// Something changed since `view` was worked out.
    view_stale: bool,
    keep_facts: bool,
}

impl Driver<Board> {
    /// Drives `session` into a board of its own.
    pub fn new(session: Session) -> Driver<Board> {
        let board = session.new_board();
        Driver::with_model(session, board)
    }
}

impl<M: HoldsBoard> Driver<M> {
    /// Drives `session` into the board `model` holds.
    pub fn with_model(session: Session, model: M) -> Driver<M> {
        Driver {
            session,
            model,
            status: None,
            status_due: None,
            status_at: None,
            seen: EventsSeen::default(),
            view: Vec::new(),
            view_stale: true,
            keep_facts: false,
        }
    }

    /// Publishes `ctl status` through `status` as facts change it.
    pub fn publish_to(mut self, status: Option<StatusPublisher>) -> Driver<M> {
        self.status = status;
        self
    }

    /// Each [`Step`] carries its fact (a copy of it).
    pub fn keep_facts(mut self) -> Driver<M> {
        self.keep_facts = true;
        self
    }

    pub fn session(&self) -> &Session {
        &self.session
    }

    /// For what changes the session itself: new instances, verify's
    /// controller outage (`take_controller`, `restore_controller`).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    pub fn board(&self) -> &Board {
        self.model.board()
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// The session (to shut down) and the model, as they stand.
    pub fn into_parts(self) -> (Session, M) {
        (self.session, self.model)
    }

    /// Reads the next fact and applies it; `None` once the session has ended.
    /// A throttled `ctl status` is published while waiting.
    /// Cancel-safe: dropping it between facts (as `select!` does) loses none.
    pub async fn next(&mut self) -> Option<Step> {
        loop {
            // Checked first too, so that a steady stream of facts cannot put it off.
            if self.status_due.is_some_and(|due| due <= Instant::now()) {
                self.publish_status();
            }
            let due = self.status_due;
            tokio::select! {
                observed = self.session.next_observed() => {
                    return Some(self.apply(observed?));
                }
                _ = async { if let Some(due) = due { tokio::time::sleep_until(due).await } },
                    if due.is_some() => self.publish_status(),
            }
        }
    }

    fn apply(&mut self, observed: Observed) -> Step {
        let Observed {
            at,
            namespace,
            fact,
        } = observed;
        let kept = self.keep_facts.then(|| fact.clone());
        self.model.board_mut().apply(at, namespace.as_deref(), fact);
        let mut step = self.changed(at);
        step.fact = kept;
        step
    }

    /// Time passing (`now`): attached crashes nobody restarted become news.
    /// `None` when nothing changed.
    pub fn tick(&mut self, now: TsMs) -> Option<Step> {
        self.model.board_mut().tick(now).then(|| self.changed(now))
    }

    /// The supervisor's side may have changed without a fact (an automatic
    /// restart switched, a countdown's detail ageing): the view is worked out
    /// again when next read.
    pub fn refresh(&mut self) {
        self.view_stale = true;
    }

    /// The board changed at `at`: the new events, and `ctl status` told (at
    /// once for an event, else within [`STATUS_EVERY`]).
    fn changed(&mut self, at: TsMs) -> Step {
        self.view_stale = true;
        let events: Vec<TimelineEvent> = self
            .model
            .board()
            .events_since(&mut self.seen)
            .into_iter()
            .cloned()
            .collect();
        if self.status.is_some() {
            let now = Instant::now();
            let recent = self
                .status_at
                .is_some_and(|at| now.duration_since(at) < STATUS_EVERY);
            if events.is_empty() {
                self.status_due.get_or_insert(now + STATUS_EVERY);
            } else if recent && self.view.len() > STATUS_AT_ONCE_UP_TO {
                let next = self.status_at.map_or(now, |at| at + STATUS_EVERY);
                let due = self.status_due.map_or(next, |d| d.min(next));
                self.status_due = Some(due);
            } else {
                self.publish_status();
            }
        }
        Step {
            at,
            events,
            fact: None,
        }
    }

    /// Every instance, owned ones then attached ones: the supervisor's
    /// snapshot merged with the judgement, worked out again only after a change.
    pub fn instances(&mut self) -> &[InstanceStatus] {
        if self.view_stale {
            let now = now_ms();
            let board = self.model.board();
            self.view = self
                .session
                .instances()
                .iter()
                .map(|s| InstanceStatus::of(s, board.tracker_of(&s.id), now))
                .collect();
            self.view_stale = false;
        }
        &self.view
    }

    fn publish_status(&mut self) {
        self.status_due = None;
        self.status_at = Some(Instant::now());
        if self.status.is_none() {
            return;
        }
        self.instances();
        if let Some(status) = &self.status {
            status.publish(self.model.board(), &self.view, now_ms());
        }
    }
}
