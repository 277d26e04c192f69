use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use books_db_client::api::{ErrorBody, ErrorDetail};
use serde::de::DeserializeOwned;

use crate::app::ClusterError;
use crate::store::StoreError;

/// An error answer: a status and `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 503: the cluster cannot serve this now (no leader, no quorum, timeout); a retry may work.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code.into(), message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "storage failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "storage_error", e.to_string())
    }
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        let (status, code) = match &e {
            ClusterError::NoLeader => (StatusCode::SERVICE_UNAVAILABLE, "no_leader"),
            ClusterError::LeaderChanged => (StatusCode::SERVICE_UNAVAILABLE, "leader_changed"),
            ClusterError::WriteRefused(_) => (StatusCode::CONFLICT, "write_refused"),
            ClusterError::MembershipRefused(_) => (StatusCode::CONFLICT, "membership_change_refused"),
            ClusterError::NoQuorum(_) => (StatusCode::SERVICE_UNAVAILABLE, "no_quorum"),
            ClusterError::Stopped(_) => (StatusCode::SERVICE_UNAVAILABLE, "node_stopped"),
            ClusterError::Timeout { .. } | ClusterError::MembershipTimeout => {
                (StatusCode::SERVICE_UNAVAILABLE, "timeout")
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(status, "body_too_large", "the body is larger than this node accepts (see --max-body-bytes)")
        } else {
            Self::new(status, "invalid_body", rejection.body_text())
        }
    }
}

/// Parses a JSON object body whatever its Content-Type says.
pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    // serde would also read a struct from an array (`[1]` as `{"value": 1}`): refuse that shape.
    if body.trim_ascii_start().first().is_some_and(|b| *b != b'{')
        && serde_json::from_slice::<serde_json::Value>(body).is_ok()
    {
        return Err(ApiError::bad_request("invalid_body", "the body must be a JSON object"));
    }
    serde_json::from_slice(body).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_body",
            _ => "invalid_json",
        };
        ApiError::bad_request(code, format!("the body is not valid: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::errors::{ChangeMembershipError, ClientWriteError, EmptyMembership};

    /// The status and exact body a client gets for `e`.
    fn answer(e: impl Into<ApiError>) -> (u16, String) {
        let response = e.into().into_response();
        let status = response.status().as_u16();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let body = rt.block_on(axum::body::to_bytes(response.into_body(), usize::MAX)).unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn body(code: &str, message: &str) -> String {
        serde_json::json!({ "error": { "code": code, "message": message } }).to_string()
    }

    #[test]
    fn cluster_errors_answer_as_they_did_when_app_made_them() {
        assert_eq!(
            answer(ClusterError::NoLeader),
            (503, body("no_leader", "the cluster has no leader right now; retry"))
        );
        assert_eq!(
            answer(ClusterError::LeaderChanged),
            (
                503,
                body(
                    "leader_changed",
                    "the leader changed while the write was pending; it may or may not have been applied: retry it with the same Idempotency-Key"
                )
            )
        );
        assert_eq!(
            answer(ClusterError::Timeout { what: "read", ms: 1500 }),
            (
                503,
                body(
                    "timeout",
                    "the cluster did not confirm the read within 1500 ms (no quorum?); retry with the same Idempotency-Key"
                )
            )
        );
        assert_eq!(
            answer(ClusterError::MembershipTimeout),
            (503, body("timeout", "the membership change did not finish in time"))
        );
        assert_eq!(answer(ClusterError::NoQuorum("only 1 of 3".into())), (503, body("no_quorum", "only 1 of 3")));
        let refused = || ClientWriteError::from(ChangeMembershipError::from(EmptyMembership {}));
        let message = refused().to_string();
        assert_eq!(answer(ClusterError::WriteRefused(refused())), (409, body("write_refused", &message)));
        assert_eq!(
            answer(ClusterError::MembershipRefused(refused())),
            (409, body("membership_change_refused", &message))
        );
    }
}
