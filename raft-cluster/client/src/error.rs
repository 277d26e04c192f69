use crate::api::ErrorBody;

/// What a books-database call can end in besides success.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `update` of a key that does not exist.
    #[error("key not found")]
    NotFound,
    /// `update` with an `ifVersion` that is not the key's current version.
    #[error("version mismatch: {0}")]
    VersionMismatch(String),
    /// The node refused the request as malformed (4xx): retrying will not help.
    #[error("rejected by the books database ({status}): {code}: {message}")]
    Rejected { status: u16, code: String, message: String },
    /// No node answered successfully before the retry budget ran out.
    #[error("books database unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: usize, last: String },
    /// The answer did not have the documented shape.
    #[error("unexpected answer from the books database: {0}")]
    Protocol(String),
    /// The key cannot be stored (empty, too long, control characters, dot segments).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The client was configured without a usable endpoint.
    #[error("invalid books database configuration: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn from_body(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { error }) => Error::Rejected { status, code: error.code, message: error.message },
            Err(_) => Error::Rejected {
                status,
                code: "unknown".into(),
                message: String::from_utf8_lossy(body).chars().take(200).collect(),
            },
        }
    }
}
