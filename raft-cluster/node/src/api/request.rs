use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, Uri};
use books_db_client::api::IDEMPOTENCY_KEY;

use super::error::ApiError;

/// A whole client request, kept so that it can be forwarded to the leader unchanged.
pub struct Incoming {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Incoming {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let method = request.method().clone();
        let uri = request.uri().clone();
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state).await?;
        Ok(Self { method, uri, headers, body })
    }
}

impl Incoming {
    /// The client's idempotency key, if it sent one.
    pub fn idempotency_key(&self) -> Result<Option<String>, ApiError> {
        match self.headers.get(IDEMPOTENCY_KEY) {
            None => Ok(None),
            Some(v) => match v.to_str() {
                Ok(id) if !id.is_empty() && id.len() <= 200 => Ok(Some(id.to_string())),
                _ => Err(ApiError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 200 visible ASCII characters",
                )),
            },
        }
    }
}
