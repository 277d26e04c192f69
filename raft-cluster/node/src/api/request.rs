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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_key(key: Option<HeaderValue>) -> Incoming {
        let mut headers = HeaderMap::new();
        if let Some(key) = key {
            headers.insert(IDEMPOTENCY_KEY, key);
        }
        Incoming { method: Method::PUT, uri: Uri::from_static("/kv/a"), headers, body: Bytes::new() }
    }

    #[test]
    fn idempotency_keys_are_one_to_200_visible_ascii_characters() {
        assert_eq!(with_key(None).idempotency_key().unwrap(), None);
        let key = HeaderValue::from_static("order-17/prepare");
        assert_eq!(with_key(Some(key)).idempotency_key().unwrap().as_deref(), Some("order-17/prepare"));
        let longest = "k".repeat(200);
        let key = HeaderValue::from_str(&longest).unwrap();
        assert_eq!(with_key(Some(key)).idempotency_key().unwrap(), Some(longest));
        let refused = [
            HeaderValue::from_static(""),
            HeaderValue::from_str(&"k".repeat(201)).unwrap(),
            HeaderValue::from_bytes("bücher".as_bytes()).unwrap(),
        ];
        for key in refused {
            let err = with_key(Some(key.clone())).idempotency_key().unwrap_err();
            assert_eq!((err.status.as_u16(), err.code), (400, "invalid_idempotency_key"), "{key:?}");
        }
    }
}
