//! Test support: a request sent to a function's router in memory, its answer read back.

// Test support only (the `testing` feature): a test that builds a bad request should panic.
#![allow(clippy::expect_used)]

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use lambda_runtime::tower::ServiceExt;

/// An answer: its status, headers, and body as JSON (`Null` when it is not).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

impl Answer {
    /// A header's value, when it is there and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `method path` with `body` to `router`, without a network.
pub async fn send(router: Router, method: Method, path: &str, body: impl Into<Body>) -> Answer {
    let request = Request::builder().method(method).uri(path).body(body.into()).expect("a valid request");
    send_request(router, request).await
}

/// Sends `request` (headers and all) to `router`, without a network.
pub async fn send_request(router: Router, request: Request<Body>) -> Answer {
    let response = router.oneshot(request).await.unwrap_or_else(|never| match never {});
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.expect("the whole body");
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}
