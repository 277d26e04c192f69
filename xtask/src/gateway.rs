//! The embedded default's API gateway: serves `web/` and sends each route of `template.yaml` to
//! its function through `cargo lambda watch`'s function-URL endpoint.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};

use crate::template::Route;

/// Largest request body the gateway passes on (API Gateway's limit is 10 MiB).
const MAX_BODY: usize = 10 * 1024 * 1024;

struct Upstream {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT` of `cargo lambda watch`.
    watch: String,
}

/// Routes `(route, function binary)` to the functions; everything else is a JSON 404.
pub fn router(routes: &[(Route, String)], watch: String) -> anyhow::Result<Router> {
    let upstream = Arc::new(Upstream { http: reqwest::Client::builder().no_proxy().build()?, watch });
    let mut router = Router::new();
    for (route, function) in routes {
        let method = Method::from_bytes(route.method.as_bytes())?;
        let filter = MethodFilter::try_from(method)?;
        let function = function.clone();
        // API Gateway's `{orderId}` is axum's path syntax too.
        router = router.route(
            &route.path,
            on(filter, move |State(upstream): State<Arc<Upstream>>, request: Request| {
                let function = function.clone();
                async move { forward(&upstream, &function, request).await }
            }),
        );
    }
    let web = crate::workspace_root().join("web");
    // Anything else that is not a file of web/ (a POST to an unknown path too) is a JSON 404.
    let files = tower_http::services::ServeDir::new(web)
        .call_fallback_on_method_not_allowed(true)
        .fallback(axum::routing::any(not_found));
    let router = router.fallback_service(files);
    Ok(router.with_state(upstream))
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

async fn forward(upstream: &Upstream, function: &str, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is larger than 10 MiB");
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}/lambda-url/{function}{path}", upstream.watch);
    let mut forwarded = upstream.http.request(parts.method.clone(), url).body(body);
    for name in [header::CONTENT_TYPE, header::ORIGIN, header::ACCEPT] {
        if let Some(value) = parts.headers.get(&name) {
            forwarded = forwarded.header(name.as_str(), value.as_bytes());
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
                Err(e) => error(StatusCode::BAD_GATEWAY, "function_unreachable", &format!("{function}: {e}")),
            }
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, "function_unreachable", &format!("{function}: {e}")),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (
        status,
        [(header::CONTENT_TYPE, "application/json"), (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        Bytes::from(body.to_string()),
    )
        .into_response()
}
