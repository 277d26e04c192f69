//! The embedded default's API gateway: serves `web/` and sends each route of `template.yaml` to
//! its function through `cargo lambda watch`'s function-URL endpoint.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};

use crate::faults::FaultControls;
use crate::gateway_telemetry::{GatewayTelemetry, RequestSpan};
use crate::rate_limit::{self, CheckoutLimit};
use crate::template::Route;

/// Largest request body the gateway passes on (API Gateway's limit is 10 MiB).
const MAX_BODY: usize = 10 * 1024 * 1024;

struct Upstream {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT` of `cargo lambda watch`.
    watch: String,
    telemetry: Option<Arc<GatewayTelemetry>>,
}

/// What the gateway serves besides the functions and `web/`.
#[derive(Default)]
pub struct Extras {
    /// POSTs to `/checkout` beyond it are a 429.
    pub limit: Option<CheckoutLimit>,
    /// The fault controls' `/faults` routes.
    pub faults: Option<Arc<FaultControls>>,
    /// A span and a count per request, its trace passed on to the function.
    pub telemetry: Option<Arc<GatewayTelemetry>>,
    /// `http://127.0.0.1:PORT/prometheus` of Prometheus, served under `/prometheus` (the
    /// dashboard's queries); without it, `/prometheus` says how to get it.
    pub prometheus: Option<String>,
}

/// The route whose requests `limit` counts.
const LIMITED_PATH: &str = "/checkout";

/// Routes `(route, function binary)` to the functions; a known path with another method is a
/// JSON 405, anything else that is not a file of `web/` a JSON 404; and what `extras` adds
/// (serve with `into_make_service_with_connect_info`, so that each client address is counted
/// alone, and the fault controls know who asks).
pub fn router(routes: &[(Route, String)], watch: String, extras: Extras) -> anyhow::Result<Router> {
    let Extras { limit, faults, telemetry, prometheus } = extras;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let upstream = Arc::new(Upstream { http: http.clone(), watch, telemetry });
    // One method router per path, so that each has the one 405 fallback.
    let mut paths: BTreeMap<&str, MethodRouter<Arc<Upstream>>> = BTreeMap::new();
    for (route, function) in routes {
        let method = Method::from_bytes(route.method.as_bytes())?;
        let filter = MethodFilter::try_from(method)?;
        let (function, path) = (function.clone(), route.path.clone());
        let handler = move |State(upstream): State<Arc<Upstream>>, request: Request| {
            let (function, path) = (function.clone(), path.clone());
            async move { forward(&upstream, &function, &path, request).await }
        };
        let methods = paths.remove(route.path.as_str()).unwrap_or_default();
        paths.insert(&route.path, methods.on(filter, handler));
    }
    let mut router = Router::new();
    for (path, methods) in paths {
        let allowed: Vec<&str> =
            routes.iter().filter(|(r, _)| r.path == path).map(|(r, _)| r.method.as_str()).collect();
        let usage = format!("{path} takes {}", allowed.join(", "));
        let mut methods = methods.fallback(move || {
            let usage = usage.clone();
            async move { error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", &usage) }
        });
        if let Some(limit) = limit.as_ref().filter(|_| path == LIMITED_PATH) {
            methods = methods.layer(axum::middleware::from_fn_with_state(limit.clone(), rate_limit::limit));
        }
        // API Gateway's `{orderId}` is axum's path syntax too.
        router = router.route(path, methods);
    }
    let web = crate::workspace_root().join("web");
    // Anything else that is not a file of web/ (a POST to an unknown path too) is a JSON 404.
    let files = tower_http::services::ServeDir::new(web)
        .call_fallback_on_method_not_allowed(true)
        .fallback(axum::routing::any(not_found));
    let router = router.fallback_service(files).with_state(upstream);
    let router = router.merge(prometheus_routes(http, prometheus));
    Ok(match faults {
        Some(controls) => router.merge(crate::faults::routes(controls)),
        None => router,
    })
}

/// The storefront alone, its API elsewhere: `web/` with the page's `bookstore-api` meta set to
/// `api_url` (the API answers cross-origin requests: its functions send CORS headers).
pub fn storefront(api_url: &str) -> anyhow::Result<Router> {
    let web = crate::workspace_root().join("web");
    let index = std::fs::read_to_string(web.join("index.html"))?;
    let empty = r#"<meta name="bookstore-api" content="">"#;
    anyhow::ensure!(index.contains(empty), "web/index.html has no empty bookstore-api meta to fill in");
    let escaped = api_url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;");
    let page = index.replace(empty, &format!(r#"<meta name="bookstore-api" content="{escaped}">"#));
    let page = move || {
        let page = page.clone();
        async move { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page) }
    };
    let files = tower_http::services::ServeDir::new(web).fallback(axum::routing::any(not_found));
    Ok(Router::new()
        .route("/", axum::routing::get(page.clone()))
        .route("/index.html", axum::routing::get(page))
        .fallback_service(files))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// `/prometheus/…` to Prometheus (GET only: its UI and query API), or a 503 saying how to get it.
fn prometheus_routes(http: reqwest::Client, prometheus: Option<String>) -> Router {
    let proxy = move |request: Request| {
        let (http, prometheus) = (http.clone(), prometheus.clone());
        async move {
            let Some(base) = prometheus else {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_prometheus",
                    "Prometheus is not running: install Debian's prometheus package and start the stack again",
                );
            };
            let path = request.uri().path_and_query().map_or("", |p| p.as_str());
            let rest = path.strip_prefix(crate::prometheus::ROUTE_PREFIX).unwrap_or(path);
            match http.get(format!("{base}{rest}")).send().await {
                Ok(answer) => {
                    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
                    match answer.bytes().await {
                        // Prometheus's own error (a bad query, say) in the error shape.
                        Ok(bytes) if !status.is_success() => {
                            let said: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                            let message = said["error"].as_str().unwrap_or("Prometheus refused the request");
                            error(status, "prometheus_error", message)
                        }
                        Ok(bytes) => {
                            let mut response = (status, bytes).into_response();
                            if let Some(content_type) = content_type {
                                response.headers_mut().insert(header::CONTENT_TYPE, content_type);
                            }
                            response
                        }
                        Err(_) => error(StatusCode::BAD_GATEWAY, "prometheus_unreachable", "Prometheus did not answer"),
                    }
                }
                Err(_) => error(StatusCode::BAD_GATEWAY, "prometheus_unreachable", "Prometheus did not answer"),
            }
        }
    };
    let prefix = crate::prometheus::ROUTE_PREFIX;
    let only_get = || async { error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "/prometheus takes GET") };
    Router::new()
        .route(prefix, axum::routing::get(proxy.clone()).fallback(only_get))
        .route(&format!("{prefix}/{{*rest}}"), axum::routing::get(proxy).fallback(only_get))
}

async fn forward(upstream: &Upstream, function: &str, route: &str, request: Request) -> Response {
    let span = upstream.telemetry.as_ref().map(|t| t.start(request.method().as_str(), route, request.headers()));
    let answer = send_to_function(upstream, function, span.as_ref(), request).await;
    if let (Some(telemetry), Some(span)) = (&upstream.telemetry, span) {
        telemetry.end(span, route, answer.status().as_u16());
    }
    answer
}

async fn send_to_function(
    upstream: &Upstream,
    function: &str,
    span: Option<&RequestSpan>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is larger than 10 MiB");
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}/lambda-url/{function}{path}", upstream.watch);
    let mut forwarded = upstream.http.request(parts.method.clone(), url).body(body);
    let idempotency_key = header::HeaderName::from_static("idempotency-key");
    for name in [header::CONTENT_TYPE, header::ORIGIN, header::ACCEPT, idempotency_key] {
        if let Some(value) = parts.headers.get(&name) {
            forwarded = forwarded.header(name.as_str(), value.as_bytes());
        }
    }
    // The function continues the gateway's span, or else the client's trace.
    match span {
        Some(span) => {
            for (name, value) in span.headers() {
                forwarded = forwarded.header(name, value);
            }
        }
        None => {
            for name in ["traceparent", "tracestate"] {
                if let Some(value) = parts.headers.get(name) {
                    forwarded = forwarded.header(name, value.as_bytes());
                }
            }
        }
    }
    match forwarded.send().await {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut headers = HeaderMap::new();
            for (name, value) in answer.headers() {
                if name == "content-length" || name == "transfer-encoding" || name == "connection" {
                    continue;
                }
                if let (Ok(name), Ok(value)) = (
                    header::HeaderName::from_bytes(name.as_str().as_bytes()),
                    HeaderValue::from_bytes(value.as_bytes()),
                ) {
                    headers.append(name, value);
                }
            }
            match answer.bytes().await {
                Ok(bytes) => (status, headers, bytes).into_response(),
                Err(e) => unreachable_function(function, &e),
            }
        }
        Err(e) => unreachable_function(function, &e),
    }
}

/// A 502 that names nothing internal; the address and the cause go to the log.
fn unreachable_function(function: &str, cause: &reqwest::Error) -> Response {
    eprintln!("gateway: function {function} unreachable: {cause}");
    error(StatusCode::BAD_GATEWAY, "function_unreachable", "the service did not answer; try again")
}

pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (
        status,
        [(header::CONTENT_TYPE, "application/json"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        Bytes::from(body.to_string()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// The gateway on a free port, its functions' endpoint closed; its URL.
    async fn serve(routes: &[(&str, &str, &str)], limit: Option<CheckoutLimit>) -> String {
        let routes: Vec<(Route, String)> = routes
            .iter()
            .map(|(method, path, function)| {
                (Route { method: method.to_string(), path: path.to_string() }, function.to_string())
            })
            .collect();
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let watch = format!("http://{}", closed.local_addr().expect("its address"));
        drop(closed);
        let extras = Extras { limit, ..Extras::default() };
        let router = router(&routes, watch, extras).expect("the gateway's router");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        url
    }

    async fn call(method: reqwest::Method, url: String) -> (u16, Value) {
        let http = reqwest::Client::builder().no_proxy().build().expect("a client");
        let answer = http.request(method, url).send().await.expect("the gateway answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.expect("a JSON body"))
    }

    #[tokio::test]
    async fn every_error_of_the_gateway_itself_is_in_the_error_shape_and_names_nothing_internal() {
        let url = serve(&[("POST", "/checkout", "checkout"), ("OPTIONS", "/checkout", "checkout")], None).await;
        let (status, body) = call(reqwest::Method::DELETE, format!("{url}/checkout")).await;
        assert_eq!((status, &body["error"]["code"]), (405, &Value::from("method_not_allowed")), "{body}");
        assert_eq!(body["error"]["message"], "/checkout takes POST, OPTIONS");
        for path in ["/nowhere", "/faults", "/faults/nodes/1/kill"] {
            let (status, body) = call(reqwest::Method::GET, format!("{url}{path}")).await;
            assert_eq!((status, &body["error"]["code"]), (404, &Value::from("not_found")), "{path}: {body}");
        }
        // Without the flag there are no fault controls to reach, by any method.
        let (status, body) = call(reqwest::Method::POST, format!("{url}/faults/nodes/1/kill")).await;
        assert_eq!((status, &body["error"]["code"]), (404, &Value::from("not_found")), "{body}");
        let (status, body) = call(reqwest::Method::POST, format!("{url}/checkout")).await;
        assert_eq!((status, &body["error"]["code"]), (502, &Value::from("function_unreachable")), "{body}");
        // Without Prometheus, the dashboard's path says what to install; it only takes GETs.
        let (status, body) = call(reqwest::Method::GET, format!("{url}/prometheus/api/v1/query?query=up")).await;
        assert_eq!((status, &body["error"]["code"]), (503, &Value::from("no_prometheus")), "{body}");
        let (status, body) = call(reqwest::Method::POST, format!("{url}/prometheus/api/v1/query")).await;
        assert_eq!((status, &body["error"]["code"]), (405, &Value::from("method_not_allowed")), "{body}");
        assert!(!body.to_string().contains("127.0.0.1"), "no address in an answer: {body}");
    }

    #[tokio::test]
    async fn checkouts_past_the_limit_are_a_429_and_other_routes_are_not_counted() {
        let routes =
            [("POST", "/checkout", "checkout"), ("OPTIONS", "/checkout", "checkout"), ("GET", "/books", "catalog")];
        let limit = CheckoutLimit::per_minute(std::num::NonZeroU32::new(3).expect("not zero"));
        let url = serve(&routes, Some(limit)).await;
        for _ in 0..5 {
            let (status, _) = call(reqwest::Method::GET, format!("{url}/books")).await;
            assert_eq!(status, 502, "reads are not limited");
        }
        for _ in 0..3 {
            let (status, body) = call(reqwest::Method::POST, format!("{url}/checkout")).await;
            assert_eq!(status, 502, "within the limit the checkout reaches its function: {body}");
        }
        let http = reqwest::Client::builder().no_proxy().build().expect("a client");
        let answer = http.post(format!("{url}/checkout")).send().await.expect("the gateway answers");
        assert_eq!(answer.status().as_u16(), 429);
        let wait: u64 = answer.headers()["retry-after"].to_str().expect("text").parse().expect("seconds");
        assert!((1..=20).contains(&wait), "one checkout's share of a minute: {wait}");
        let body: Value = answer.json().await.expect("a JSON body");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        let (status, _) = call(reqwest::Method::OPTIONS, format!("{url}/checkout")).await;
        assert_ne!(status, 429, "a preflight is not a checkout");
    }
}
