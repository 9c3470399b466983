//! What can go wrong talking to a controller. "Absent" is not an error (reads
//! return `Ok(None)`), so a caller can never take a server that is down for a
//! namespace with no saved state.
//!
//! Every reason may come from outside (a server's answer, a stored value), so
//! each is printed with its control characters escaped.

use crate::text_safety::escape_controls;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KvError {
    /// No answer: connection refused, reset, or timed out.
    #[error("controller at {} is unreachable: {}", escape_controls(.url), escape_controls(.reason))]
    Unreachable { url: String, reason: String },

    /// The controller answered with an error status.
    #[error("controller rejected the request ({status}): {}", escape_controls(.reason))]
    Rejected { status: u16, reason: String },

    /// The controller answered something that is not the Plum API.
    #[error("unexpected answer from the controller: {}", escape_controls(.0))]
    Protocol(String),

    /// The stored value does not read as the asked-for type.
    #[error("key {key:?} holds {value:?} ({stored_type}), not {wanted}")]
    WrongType {
        key: String,
        value: String,
        stored_type: String,
        wanted: &'static str,
    },

    /// Input refused before anything was sent.
    #[error("{}", escape_controls(.0))]
    Invalid(String),
}

impl KvError {
    /// True when the controller could not be reached (worth retrying).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, KvError::Unreachable { .. })
    }

    /// True when the controller refused a write because a failover gave this
    /// instance's work to another (409 `fenced: …`).
    pub fn is_fenced(&self) -> bool {
        matches!(self, KvError::Rejected { status: 409, reason } if reason.starts_with(super::model::FENCED))
    }
}
