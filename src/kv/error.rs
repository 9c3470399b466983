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

/// How a [`KvError::Rejected`] and a [`KvError::Protocol`] message start:
/// [`is_an_answer`] tells them from an unreachable controller by these.
const REJECTED_LEAD: &str = "controller rejected the request";
const PROTOCOL_LEAD: &str = "unexpected answer from the controller";

/// Does this error message (as a feed tells it, a string by then) say the
/// controller answered, with an error or with what is not the API, rather
/// than that it could not be reached? The screen words the two apart.
pub fn is_an_answer(message: &str) -> bool {
    message.starts_with(REJECTED_LEAD) || message.starts_with(PROTOCOL_LEAD)
}

/// How a [`KvError::Protocol`] for bytes that are not HTTP starts.
pub(crate) const NOT_HTTP: &str = "an answer that is not HTTP";

impl KvError {
    /// True when the controller could not be reached (worth retrying).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, KvError::Unreachable { .. })
    }

    /// True when what came back did not even parse as HTTP (a proxy or a
    /// controller half-started): worth retrying, as an outage is.
    pub fn is_not_http(&self) -> bool {
        matches!(self, KvError::Protocol(why) if why.starts_with(NOT_HTTP))
    }

    /// True when the controller refused a write because a failover gave this
    /// instance's work to another (409 `fenced: …`).
    pub fn is_fenced(&self) -> bool {
        matches!(self, KvError::Rejected { status: 409, reason } if reason.starts_with(super::model::FENCED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_told_from_an_unreachable_controller_by_its_message() {
        let rejected = KvError::Rejected {
            status: 502,
            reason: "an HTML page".into(),
        };
        let protocol = KvError::Protocol("bad JSON".into());
        let unreachable = KvError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "connection refused".into(),
        };
        assert!(is_an_answer(&rejected.to_string()));
        assert!(is_an_answer(&protocol.to_string()));
        assert!(!is_an_answer(&unreachable.to_string()));
        assert!(!is_an_answer("change stream went silent"));
    }
}
