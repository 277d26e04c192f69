//! The Lambda edge shared by the functions: serving a service, HTTP answers with CORS, the clock.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use bookstore_domain::card::YearMonth;
use bookstore_domain::events::Service;
use bookstore_domain::service::{EventChecks, ServiceRequest, ServiceResponse, handle};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;

use crate::{DynamoStateStore, env_or, sdk_config};

/// Runs one of the three services: each invocation is a `ServiceRequest`, answered with a
/// `ServiceResponse`. A store failure is a function error (the orchestrator reports it).
pub async fn serve_service<C: EventChecks + 'static>(service: Service, checks: C) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = sdk_config().await;
    let store = DynamoStateStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        env_or("SERVICE_STATE_TABLE", "bookstore-service-state"),
        service,
    );
    let shared = Arc::new((store, checks));
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<ServiceRequest>| {
        let shared = Arc::clone(&shared);
        async move {
            let order_id = event.payload.order_id().to_string();
            let answer = handle(event.payload, &shared.0, &shared.1).await;
            match &answer {
                Ok(ServiceResponse::Refused { code, message }) => {
                    tracing::warn!(order_id, code, message, "refused");
                }
                Ok(_) => {}
                Err(e) => tracing::error!(order_id, error = %e, "failed"),
            }
            answer.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}

/// Serves the function's HTTP requests with `handler`, given the function's shared `state`. The
/// handler builds every answer itself (errors included), so the runtime never reports one.
pub async fn serve_http<S, F, Fut>(state: S, handler: F) -> Result<(), lambda_http::Error>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let state = Arc::new(state);
    let handler = Arc::new(handler);
    lambda_http::run_concurrent(lambda_http::service_fn(move |request: Request| {
        let (state, handler) = (Arc::clone(&state), Arc::clone(&handler));
        async move { Ok::<_, lambda_http::Error>(handler(state, request).await) }
    }))
    .await
}

/// A JSON answer that any origin may read.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    cors(response)
}

/// `{"error": {"code", "message"}}` with `status`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(status, &serde_json::json!({ "error": { "code": code, "message": message } }))
}

/// The answer to a CORS preflight (`OPTIONS`).
pub fn preflight_response() -> Response<Body> {
    let mut response = cors(Response::new(Body::Empty));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

fn cors(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
    response
}

/// Now, as RFC 3339 UTC to the millisecond (`2026-11-24T01:50:00.123Z`): order histories are read
/// for latencies.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The current month, for card expiry.
pub fn current_month() -> YearMonth {
    let now = now_rfc3339();
    let year = now.get(0..4).and_then(|y| y.parse().ok()).unwrap_or(1970);
    let month = now.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    YearMonth { year, month }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_month_is_read_from_the_clock() {
        let month = current_month();
        assert!(month.year >= 2025 && (1..=12).contains(&month.month), "{month:?}");
    }

    #[test]
    fn error_answers_have_the_documented_shape_and_cors() {
        let response = error_response(StatusCode::BAD_REQUEST, "invalid_json", "nope");
        assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let Body::Text(text) = response.body() else { panic!("text body") };
        assert_eq!(text, r#"{"error":{"code":"invalid_json","message":"nope"}}"#);
    }
}
