//! The seed's three recovery patterns (模式1–3) as the namespace shows them
//! (the transaction log's and the state machine's keys as they stand), and
//! the news a pattern's run makes around a crash. What watches them change
//! is `pattern_watch.rs`.

/// Which recovery pattern a worker follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// 模式1: resume from the last checkpoint (kv-demo's default).
    Checkpoint,
    /// 模式2: replay the transaction log from the last logged operation.
    #[serde(rename = "txlog")]
    TxLog,
    /// 模式3: restore the state machine in its saved state.
    Fsm,
}

impl Pattern {
    pub const ALL: [Pattern; 3] = [Pattern::Checkpoint, Pattern::TxLog, Pattern::Fsm];

    /// How the command line and the reports spell it.
    pub fn word(self) -> &'static str {
        match self {
            Pattern::Checkpoint => "checkpoint",
            Pattern::TxLog => "txlog",
            Pattern::Fsm => "fsm",
        }
    }

    pub fn from_word(word: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.word() == word)
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// The state machine's states, in order (DESIGN.md, "Recovery patterns").
pub const FSM_STATES: [&str; 5] = ["INIT", "LOAD", "TRANSFORM", "SAVE", "DONE"];

/// Where `state` is in the machine.
pub fn fsm_index(state: &str) -> Option<usize> {
    FSM_STATES.iter().position(|s| *s == state)
}

/// The transaction log's keys as they stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxLogView {
    /// Operations logged (`operation.counter`).
    pub logged: Option<i64>,
    /// The last operation logged (`operation.last`, `OP_k`).
    pub last: Option<String>,
    /// Effects applied (`ledger.applied`).
    pub applied: Option<i64>,
    /// The operation the last effect belongs to (`ledger.applied_op`).
    pub applied_op: Option<i64>,
}

impl TxLogView {
    pub fn seen(&self) -> bool {
        self.logged.is_some() || self.last.is_some() || self.applied.is_some()
    }
}

/// The state machine's keys as they stand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsmView {
    pub state: Option<String>,
    pub data: Option<String>,
}

impl FsmView {
    pub fn seen(&self) -> bool {
        self.state.is_some()
    }
}

/// What a pattern's run did that is worth a timeline line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternNews {
    /// A restarted run replayed operation `op`: it was already applied, so
    /// the replay logged it without applying it again.
    ReplaySkipped { op: i64 },
    /// Operation `op`'s effect was applied a second time (`applied` effects
    /// against `logged` operations logged).
    AppliedTwice { op: i64, applied: i64, logged: i64 },
    /// A restarted machine wrote its state: `crashed_in` is where the dead run left it.
    Restored {
        state: String,
        crashed_in: Option<String>,
    },
    /// A transition not along the machine (`from` → `to`).
    BadTransition { from: String, to: String },
    /// DONE reached again within one task.
    DoneTwice,
    /// A checkpoint saved before its work: the dead run left `step_{step}`
    /// with the work done only up to `work_done`; the restart goes on past
    /// work never done.
    StepLost { step: i64, work_done: i64 },
}

impl PatternNews {
    /// Something that breaks the pattern's invariant, and which one (the
    /// verify numbering: 7 transaction log, 8 state machine).
    pub fn breaks(&self) -> Option<u8> {
        match self {
            PatternNews::ReplaySkipped { .. } => None,
            PatternNews::AppliedTwice { .. } => Some(7),
            PatternNews::Restored { state, crashed_in } => {
                restored_wrongly(state, crashed_in.as_deref()).then_some(8)
            }
            PatternNews::BadTransition { .. } | PatternNews::DoneTwice => Some(8),
            PatternNews::StepLost { .. } => Some(2),
        }
    }
}

/// A machine that crashed in `crashed_in` must continue there or in the next
/// state: never back, never beyond.
pub fn restored_wrongly(state: &str, crashed_in: Option<&str>) -> bool {
    let (Some(to), Some(from)) = (fsm_index(state), crashed_in.and_then(fsm_index)) else {
        return false;
    };
    // A machine that had finished (DONE) begins a new task at INIT.
    !(to == from || to == from + 1 || (from == FSM_STATES.len() - 1 && to == 0))
}
