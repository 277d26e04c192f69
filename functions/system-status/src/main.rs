//! `GET /status`: each books-database node's view of the Raft cluster (role, term, applied
//! index) and the depth of the order queue and its dead-letter queue.

use bookstore_aws::{
    SystemStatusReader, env_or, error_response, json_response, preflight_response, sdk_config, serve_http,
};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = sdk_config().await;
    let queues = [("orders", "ORDER_QUEUE_URL"), ("dead-letter", "DEAD_LETTER_QUEUE_URL")]
        .into_iter()
        .filter_map(|(name, variable)| std::env::var(variable).ok().map(|url| (name.to_string(), url)))
        .collect();
    let reader = SystemStatusReader::new(
        &env_or("BOOKS_DB_URL", "http://127.0.0.1:7001"),
        aws_sdk_sqs::Client::new(&config),
        queues,
    )?;
    serve_http(reader, |reader, request| async move { status(&reader, &request).await }).await
}

async fn status(reader: &SystemStatusReader, request: &Request) -> Response<Body> {
    match *request.method() {
        Method::OPTIONS => preflight_response(),
        // Always a 200: a node or queue that cannot be read is part of the picture.
        Method::GET => json_response(StatusCode::OK, &reader.read().await),
        _ => error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET /status"),
    }
}
