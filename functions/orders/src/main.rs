//! `GET /orders/{orderId}`: an order with its status, history and events with vector clocks.

use bookstore_aws::{DynamoOrders, env_or, error_response, json_response, preflight_response, sdk_config, serve_http};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = sdk_config().await;
    let orders = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&config), env_or("ORDERS_TABLE", "bookstore-orders"));
    serve_http(orders, |orders, request| async move { order(&orders, &request).await }).await
}

async fn order(orders: &DynamoOrders, request: &Request) -> Response<Body> {
    if request.method() == Method::OPTIONS {
        return preflight_response();
    }
    if request.method() != Method::GET {
        return error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET /orders/{orderId}");
    }
    // The id is the path's last segment: the same under API Gateway and function URLs.
    let order_id = request.uri().path().rsplit('/').next().unwrap_or_default();
    if order_id.is_empty() || order_id.len() > 64 || !order_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return error_response(StatusCode::BAD_REQUEST, "invalid_order_id", "the order id is malformed");
    }
    match orders.get(order_id).await {
        Ok(Some(order)) => json_response(StatusCode::OK, &order),
        Ok(None) => error_response(StatusCode::NOT_FOUND, "not_found", "no such order"),
        Err(e) => error_response(StatusCode::SERVICE_UNAVAILABLE, "orders_unavailable", &e.to_string()),
    }
}
