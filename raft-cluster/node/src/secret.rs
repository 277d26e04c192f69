//! The cluster secret: what a peer or an operator shows to send Raft RPCs or change the
//! membership. Clients reading and writing keys need none.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq;

/// Shortest secret accepted: anything shorter can be guessed by a patient script.
pub const MIN_SECRET_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the cluster secret {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the cluster secret in {path} must be at least {MIN_SECRET_BYTES} visible ASCII characters (one line)")]
    Invalid { path: PathBuf },
}

/// The secret, ready to be sent (`Authorization: Bearer …`) and checked.
#[derive(Clone)]
pub struct ClusterSecret {
    bearer: HeaderValue,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// Reads the secret from the first line of `path` (a trailing newline is not part of it).
    pub fn read(path: &Path) -> Result<Self, SecretError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| SecretError::Read { path: path.to_path_buf(), source })?;
        Self::new(text.trim_end_matches(['\n', '\r'])).ok_or_else(|| SecretError::Invalid { path: path.to_path_buf() })
    }

    /// `None` when `secret` is too short or not visible ASCII.
    pub fn new(secret: &str) -> Option<Self> {
        let visible = secret.bytes().all(|b| b.is_ascii_graphic());
        if secret.len() < MIN_SECRET_BYTES || !visible {
            return None;
        }
        let mut bearer = HeaderValue::from_str(&format!("Bearer {secret}")).ok()?;
        bearer.set_sensitive(true);
        Some(Self { bearer })
    }

    /// The `Authorization` value that carries it.
    pub fn bearer(&self) -> &HeaderValue {
        &self.bearer
    }

    /// Whether `headers` carry this secret; compared in constant time.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(self.bearer.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_the_exact_bearer() {
        let secret = ClusterSecret::new("0123456789abcdef-secret").unwrap();
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(secret.admits(&with("Bearer 0123456789abcdef-secret")));
        assert!(!secret.admits(&with("Bearer 0123456789abcdef-secreT")));
        assert!(!secret.admits(&with("Bearer 0123456789abcdef")));
        assert!(!secret.admits(&with("0123456789abcdef-secret")));
        assert!(!secret.admits(&HeaderMap::new()));
        assert!(format!("{secret:?}").find("0123").is_none(), "never printed");
    }

    #[test]
    fn short_or_invisible_secrets_and_missing_files_are_refused() {
        assert!(ClusterSecret::new("short").is_none());
        assert!(ClusterSecret::new("0123456789 abcdef").is_none());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "0123456789abcdef\n").unwrap();
        assert!(ClusterSecret::read(&file).is_ok(), "a trailing newline is allowed");
        std::fs::write(&file, "tiny\n").unwrap();
        assert!(ClusterSecret::read(&file).unwrap_err().to_string().contains("at least 16"));
        let missing = ClusterSecret::read(&dir.path().join("none")).unwrap_err().to_string();
        assert!(missing.contains("cannot read the cluster secret"), "{missing}");
    }
}
