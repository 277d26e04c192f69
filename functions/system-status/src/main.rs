//! `GET /status`: each books-database node's view of the Raft cluster (role, term, applied
//! index) and the depth of the order queue and its dead-letter queue.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use bookstore_aws::settings::{self, AwsSettings, BooksDbSettings};
use bookstore_aws::{
    SystemStatus, SystemStatusReader, error_response, http_router, json_response, route_with_stage, sdk_config,
    serve_http,
};
use bookstore_domain::order::is_order_id;
use clap::Parser;
use serde::Deserialize;

#[derive(Debug, Parser)]
struct Settings {
    #[command(flatten)]
    aws: AwsSettings,
    #[command(flatten)]
    books_db: BooksDbSettings,
    /// Shown when set (even empty, as before: an unreadable queue is part of the picture).
    #[arg(long, env = "ORDER_QUEUE_URL")]
    order_queue_url: Option<String>,
    #[arg(long, env = "DEAD_LETTER_QUEUE_URL")]
    dead_letter_queue_url: Option<String>,
}

/// The picture: read from the nodes and queues, or a fake in the tests.
trait StatusSource: Send + Sync {
    fn read(&self, order_id: Option<&str>) -> impl Future<Output = SystemStatus> + Send;
}

impl StatusSource for SystemStatusReader {
    async fn read(&self, order_id: Option<&str>) -> SystemStatus {
        SystemStatusReader::read(self, order_id).await
    }
}

/// `?order=ID`: the leader's log entries of that order instead of its tail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusQuery {
    order: Option<String>,
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let _telemetry = bookstore_aws::init_telemetry("system-status", "info");
    let settings: Settings = settings::load()?;
    let config = sdk_config(&settings.aws).await;
    let queues = [("orders", settings.order_queue_url), ("dead-letter", settings.dead_letter_queue_url)]
        .into_iter()
        .filter_map(|(name, url)| url.map(|url| (name.to_string(), url)))
        .collect();
    let reader = SystemStatusReader::new(&settings.books_db.books_db_url, aws_sdk_sqs::Client::new(&config), queues)?;
    serve_http(app(Arc::new(reader))).await
}

fn app<S: StatusSource + 'static>(source: Arc<S>) -> Router {
    http_router(route_with_stage(Router::new(), "/status", get(status::<S>)).with_state(source), "use GET /status")
}

// A 200 for any well-formed request: a node or queue that cannot be read is part of the picture.
async fn status<S: StatusSource>(
    State(source): State<Arc<S>>,
    query: Result<Query<StatusQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(StatusQuery { order })) = query else {
        return error_response(StatusCode::BAD_REQUEST, "invalid_query", "the only parameter is order=ORDER_ID");
    };
    if let Some(order_id) = &order
        && !is_order_id(order_id)
    {
        return error_response(StatusCode::BAD_REQUEST, "invalid_order_id", "the order id is malformed");
    }
    json_response(StatusCode::OK, &source.read(order.as_deref()).await)
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use bookstore_aws::testing::send;
    use serde_json::Value;

    use super::*;

    /// A cluster with nothing to show.
    struct Empty;

    impl StatusSource for Empty {
        async fn read(&self, _: Option<&str>) -> SystemStatus {
            SystemStatus { books_db: vec![], queues: vec![], raft_log: None }
        }
    }

    async fn ask(method: Method, path: &str) -> (StatusCode, Option<String>, Value) {
        let answer = send(app(Arc::new(Empty)), method, path, "").await;
        (answer.status, answer.header("access-control-allow-origin").map(String::from), answer.body)
    }

    #[tokio::test]
    async fn the_status_is_a_200_behind_any_stage() {
        for path in ["/status", "/Prod/status"] {
            let (status, origin, body) = ask(Method::GET, path).await;
            assert_eq!((status, origin.as_deref()), (StatusCode::OK, Some("*")), "{path}");
            assert!(body.is_object(), "{body}");
        }
    }

    #[tokio::test]
    async fn a_malformed_query_is_a_400_in_the_error_shape() {
        for (path, code) in [
            ("/status?order=%00", "invalid_order_id"),
            ("/status?order=", "invalid_order_id"),
            ("/status?orders=o-1", "invalid_query"),
        ] {
            let (status, _, body) = ask(Method::GET, path).await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (StatusCode::BAD_REQUEST, &Value::from(code)),
                "{path}: {body}"
            );
        }
        let (status, _, _) = ask(Method::GET, "/status?order=4b02e55a-ec74-4977-8530-ead7d4bab48c").await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn other_methods_are_refused_and_preflight_is_answered() {
        let (status, _, body) = ask(Method::DELETE, "/status").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["message"], "use GET /status");
        let (status, origin, _) = ask(Method::OPTIONS, "/status").await;
        assert!(status.is_success(), "{status}");
        assert_eq!(origin.as_deref(), Some("*"));
    }
}
