//! The Lambda edge shared by the functions: serving a service, serving an axum router over
//! `lambda_http` with CORS and JSON errors.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use bookstore_domain::events::Service;
use bookstore_domain::service::{EventChecks, ServiceRequest, ServiceResponse, handle};
use bookstore_telemetry::context::{TraceHeaders, Traced};
use bookstore_telemetry::flush;
use lambda_runtime::tower::ServiceExt;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use tracing::Instrument as _;

use crate::settings::{
    DEFAULT_FRAUD_DETECTION_FUNCTION, DEFAULT_SUGGESTIONS_FUNCTION, DEFAULT_TRANSACTION_VERIFICATION_FUNCTION,
    ServiceSettings,
};
use crate::{DynamoStateStore, init_telemetry, metrics, sdk_config};

/// Runs one of the three services: each invocation is a `ServiceRequest`, answered with a
/// `ServiceResponse`. A store failure is a function error (the orchestrator reports it).
pub async fn serve_service<C: EventChecks + 'static>(
    service: Service,
    settings: ServiceSettings,
    checks: C,
) -> Result<(), lambda_runtime::Error> {
    let _telemetry = init_telemetry(function_name(service), "info");
    let config = sdk_config(&settings.aws).await;
    let store = DynamoStateStore::new(aws_sdk_dynamodb::Client::new(&config), settings.service_state_table, service);
    let shared = Arc::new((store, checks));
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<Traced<ServiceRequest>>| {
        let shared = Arc::clone(&shared);
        async move {
            let Traced { request, trace } = event.payload;
            let order_id = request.order_id().to_string();
            let span =
                tracing::info_span!("service", service = function_name(service), order_id, action = request.action());
            let answer = in_span(span, &trace, async {
                let answer = handle(request, &shared.0, &shared.1).await;
                match &answer {
                    Ok(ServiceResponse::Refused { code, message }) => {
                        tracing::warn!(order_id, code, message, "refused");
                        if service == Service::FraudDetection {
                            metrics::fraud_rejected();
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(order_id, error = %e, "failed"),
                }
                answer
            })
            .await;
            answer.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}

/// The function a service runs as (its default name, which is also its name in telemetry).
pub fn function_name(service: Service) -> &'static str {
    match service {
        Service::TransactionVerification => DEFAULT_TRANSACTION_VERIFICATION_FUNCTION,
        Service::FraudDetection => DEFAULT_FRAUD_DETECTION_FUNCTION,
        Service::Suggestions => DEFAULT_SUGGESTIONS_FUNCTION,
    }
}

/// Runs one invocation's `work` in `span`, continuing the caller's `trace`, then sends its spans
/// and metrics before the instance can be frozen.
pub async fn in_span<F: Future>(span: tracing::Span, trace: &TraceHeaders, work: F) -> F::Output {
    trace.follow(&span);
    // Boxed: the runtime's futures, the span's and the handler's would otherwise nest beyond the
    // compiler's recursion limit when their layout is computed.
    let output = Box::pin(work.instrument(span)).await;
    flush().await;
    output
}

/// Serves `router` (made with [`http_router`]) as the function's HTTP handler, several
/// invocations at a time where the runtime asks for it.
pub async fn serve_http(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::run_concurrent(lambda_http::service_fn(move |request: lambda_http::Request| {
        let router = router.clone();
        let trace = TraceHeaders::from_lookup(|name| request.headers().get(name)?.to_str().ok());
        let span = tracing::info_span!("request", method = %request.method(), path = request.uri().path());
        async move { lambda_response(in_span(span, &trace, router.oneshot(request)).await?).await }
    }))
    .await
}

/// An axum answer as lambda_http's, whose concurrent runtime needs a `Sync` body (axum's is not):
/// the whole body, as text where it is text (JSON is), so that API Gateway gets it unencoded.
async fn lambda_response(response: Response) -> Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await?;
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => lambda_http::Body::Text(text),
            Err(e) => lambda_http::Body::Binary(e.into_bytes()),
        }
    };
    Ok(lambda_http::Response::from_parts(parts, body))
}

/// Adds `route` at `path` as API Gateway and `cargo lambda watch` present it: bare (function
/// URLs, HTTP APIs, `$default` stages) and behind a REST API's stage (`/Prod/books`), which
/// lambda_http puts in front of the resource path.
pub fn route_with_stage<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    path: &str,
    route: MethodRouter<S>,
) -> Router<S> {
    router.route(path, route.clone()).route(&format!("/{{stage}}{path}"), route)
}

/// The function's routes with what every function's HTTP answers share: CORS for any origin
/// (preflight `OPTIONS` answered on every path), the JSON error shape for an unknown route
/// (404 `not_found`) or method (405 `method_not_allowed`, with `usage`), and no body limit of
/// axum's own (the domain enforces its own, with its own error code).
pub fn http_router(routes: Router, usage: &'static str) -> Router {
    routes
        .method_not_allowed_fallback(move || async move {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", usage)
        })
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::disable())
        .layer(cors())
}

/// The header a checkout's retries carry (see `bookstore_domain::idempotency`).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Set on an answer replayed to a retry.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods(AllowMethods::list([Method::GET, Method::POST, Method::OPTIONS]))
        .allow_headers(AllowHeaders::list([header::CONTENT_TYPE, HeaderName::from_static(IDEMPOTENCY_KEY)]))
        .expose_headers([HeaderName::from_static(IDEMPOTENT_REPLAYED)])
}

/// A JSON answer (CORS is the router's layer).
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], text).into_response()
}

/// `{"error": {"code", "message"}}` with `status`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &error_body(code, message))
}

/// `{"error": {"code", "message"}}`: every error answer's body.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message } })
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::body::to_bytes;
    use axum::routing::get;

    use crate::testing::send;

    fn app() -> Router {
        http_router(route_with_stage(Router::new(), "/things", get(|| async { "ok" })), "use GET /things")
    }

    #[tokio::test]
    async fn lambda_answers_keep_text_as_text_and_no_body_as_empty() {
        let text = lambda_response(error_response(StatusCode::NOT_FOUND, "not_found", "x")).await.unwrap();
        assert_eq!(text.status(), StatusCode::NOT_FOUND);
        assert!(matches!(text.body(), lambda_http::Body::Text(t) if t.contains("not_found")));
        let empty = lambda_response(StatusCode::OK.into_response()).await.unwrap();
        assert!(matches!(empty.body(), lambda_http::Body::Empty));
    }

    #[tokio::test]
    async fn routes_answer_bare_and_behind_a_stage_with_cors() {
        for path in ["/things", "/Prod/things"] {
            let answer = send(app(), Method::GET, path, "").await;
            assert_eq!(answer.status, StatusCode::OK, "{path}");
            assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
        }
    }

    /// The sample API Gateway events (`events/`, stage `Prod`) reach their routes as lambda_http
    /// presents them, with the stage in front of the path.
    #[tokio::test]
    async fn api_gateway_events_reach_their_routes() {
        use axum::extract::Path;
        use lambda_http::request::LambdaRequest;

        let events = [
            (include_str!("../../../events/catalog.json"), "/books"),
            (include_str!("../../../events/orders.json"), "/orders/3f9a1c2e-7b4d-4e8f-a6b5-9c0d1e2f3a4b"),
            (include_str!("../../../events/system-status.json"), "/status"),
            (include_str!("../../../events/checkout.json"), "/checkout"),
        ];
        let echo = |Path(params): Path<std::collections::HashMap<String, String>>| async move {
            params.get("order_id").cloned().unwrap_or_default()
        };
        let routes = ["/books", "/status", "/checkout"]
            .into_iter()
            .fold(Router::new(), |r, path| route_with_stage(r, path, axum::routing::any(move || async move { path })));
        let routes = route_with_stage(routes, "/orders/{order_id}", get(echo));
        let router = http_router(routes, "usage");
        for (event, expected) in events {
            let event: LambdaRequest = serde_json::from_str(event).unwrap();
            let request: lambda_http::Request = event.into();
            assert_eq!(request.uri().path(), format!("/Prod{expected}"));
            let response = router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{expected}");
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert!(expected.ends_with(std::str::from_utf8(&body).unwrap()), "{expected}: {body:?}");
        }
    }

    #[tokio::test]
    async fn a_preflight_is_answered_on_any_path() {
        for path in ["/things", "/Prod/things", "/elsewhere"] {
            let answer = send(app(), Method::OPTIONS, path, "").await;
            assert!(answer.status.is_success(), "{path}: {}", answer.status);
            assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
            assert_eq!(answer.header("access-control-allow-methods"), Some("GET,POST,OPTIONS"));
            assert_eq!(answer.header("access-control-allow-headers"), Some("content-type,idempotency-key"));
        }
    }

    #[tokio::test]
    async fn unknown_methods_and_routes_answer_in_the_error_shape() {
        let answer = send(app(), Method::DELETE, "/things", "").await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
        let expected = serde_json::json!({"error": {"code": "method_not_allowed", "message": "use GET /things"}});
        assert_eq!(answer.body, expected);
        let answer = send(app(), Method::GET, "/nowhere/at/all", "").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        assert_eq!(answer.body, serde_json::json!({"error": {"code": "not_found", "message": "no such route"}}));
    }

    #[tokio::test]
    async fn error_answers_have_the_documented_shape() {
        let response = error_response(StatusCode::BAD_REQUEST, "invalid_json", "nope");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(body, r#"{"error":{"code":"invalid_json","message":"nope"}}"#);
    }
}
