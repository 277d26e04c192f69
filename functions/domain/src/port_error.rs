//! What went wrong at a port, by what the caller should do about it: the order executor retries
//! a transient fault, fails the order (or dead-letters its message) on a permanent one, and
//! treats a missing thing as possibly not visible yet.

use crate::service::Unavailable;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Down, slow, throttled, or the outcome unknown: the same call may succeed later.
    #[error("{0}")]
    Transient(String),
    /// The other side answered and refuses, or its answer breaks the protocol: the same call
    /// would fail again.
    #[error("{0}")]
    Permanent(String),
    /// What the call is about is not there.
    #[error("not found: {0}")]
    NotFound(String),
}

impl PortError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, PortError::Permanent(_))
    }
}

impl From<Unavailable> for PortError {
    fn from(error: Unavailable) -> Self {
        PortError::Transient(error.0)
    }
}
