//! `GET /orders/{orderId}`: an order with its status, history and events with vector clocks.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use bookstore_aws::settings::{self, AwsSettings, OrdersTableSettings};
use bookstore_aws::{
    DynamoOrders, error_response, http_router, json_response, route_with_stage, sdk_config, serve_http,
};
use bookstore_domain::orchestrator::OrderRecord;
use bookstore_domain::order::is_order_id;
use bookstore_domain::service::Unavailable;
use clap::Parser;
use serde::Deserialize;

#[derive(Debug, Parser)]
struct Settings {
    #[command(flatten)]
    aws: AwsSettings,
    #[command(flatten)]
    orders: OrdersTableSettings,
}

/// Reading one order: the orders table, or a fake in the tests.
trait OrderReader: Send + Sync {
    fn get(&self, order_id: &str) -> impl Future<Output = Result<Option<OrderRecord>, Unavailable>> + Send;
}

impl OrderReader for DynamoOrders {
    async fn get(&self, order_id: &str) -> Result<Option<OrderRecord>, Unavailable> {
        DynamoOrders::get(self, order_id).await
    }
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let _telemetry = bookstore_aws::init_telemetry("orders", "info");
    let settings: Settings = settings::load()?;
    let config = sdk_config(&settings.aws).await;
    let orders = DynamoOrders::new(aws_sdk_dynamodb::Client::new(&config), settings.orders.orders_table);
    serve_http(app(Arc::new(orders))).await
}

/// What a shopper reads when the orders table cannot answer (its cause goes to the log).
const ORDERS_UNAVAILABLE: &str = "the order cannot be read right now; try again in a moment";

fn app<R: OrderReader + 'static>(orders: Arc<R>) -> Router {
    let routes = route_with_stage(Router::new(), "/orders/{order_id}", get(order::<R>));
    http_router(routes.with_state(orders), "use GET /orders/{orderId}")
}

#[derive(Debug, Deserialize)]
struct OrderPath {
    order_id: String,
}

async fn order<R: OrderReader>(State(orders): State<Arc<R>>, path: Result<Path<OrderPath>, PathRejection>) -> Response {
    let order_id = path.map(|Path(p)| p.order_id).unwrap_or_default();
    if !is_order_id(&order_id) {
        return error_response(StatusCode::BAD_REQUEST, "invalid_order_id", "the order id is malformed");
    }
    match orders.get(&order_id).await {
        Ok(Some(order)) => json_response(StatusCode::OK, &order),
        Ok(None) => error_response(StatusCode::NOT_FOUND, "not_found", "no such order"),
        Err(e) => {
            // The cause is the SDK's text: the log's, not the shopper's.
            tracing::error!(order_id, error = %e, "the order could not be read");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "orders_unavailable", ORDERS_UNAVAILABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use bookstore_aws::testing::send;
    use serde_json::{Value, json};

    use super::*;

    const ID: &str = "3f9a1c2e-7b4d-4e8f-a6b5-9c0d1e2f3a4b";

    /// The orders table in memory: one order, or down.
    struct FakeOrders(Option<OrderRecord>);

    impl OrderReader for FakeOrders {
        async fn get(&self, order_id: &str) -> Result<Option<OrderRecord>, Unavailable> {
            match &self.0 {
                None => Err(Unavailable("dispatch failure: io error: Connection refused (os error 111)".into())),
                Some(order) => Ok((order.order_id == order_id).then(|| order.clone())),
            }
        }
    }

    fn stored() -> FakeOrders {
        let order = json!({
            "orderId": ID, "status": "committed", "items": [], "amountCents": 0, "suggestedBooks": [],
            "history": [{"status": "approved", "at": "2026-12-03T08:00:00.000Z"}], "events": [], "finalClock": {}
        });
        FakeOrders(Some(serde_json::from_value(order).unwrap()))
    }

    async fn ask(orders: FakeOrders, method: Method, path: &str) -> (StatusCode, Option<String>, Value) {
        let answer = send(app(Arc::new(orders)), method, path, "").await;
        (answer.status, answer.header("access-control-allow-origin").map(String::from), answer.body)
    }

    #[tokio::test]
    async fn an_order_is_read_by_its_id_behind_any_stage() {
        for path in [format!("/orders/{ID}"), format!("/Prod/orders/{ID}")] {
            let (status, origin, body) = ask(stored(), Method::GET, &path).await;
            assert_eq!((status, origin.as_deref()), (StatusCode::OK, Some("*")), "{path}");
            assert_eq!(body["orderId"], ID);
            assert_eq!(body["status"], "committed");
            assert_eq!(body["history"][0]["status"], "approved");
        }
    }

    #[tokio::test]
    async fn unknown_malformed_and_unreadable_orders_answer_in_the_error_shape() {
        let (status, _, body) = ask(stored(), Method::GET, "/orders/another-id").await;
        assert_eq!((status, &body["error"]["code"]), (StatusCode::NOT_FOUND, &json!("not_found")));
        for bad in ["/orders/not_an_id", "/orders/a%20b", "/orders/%00%ff", &format!("/orders/{}", "a".repeat(65))] {
            let (status, _, body) = ask(stored(), Method::GET, bad).await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (StatusCode::BAD_REQUEST, &json!("invalid_order_id")),
                "{bad}"
            );
        }
        let (status, _, body) = ask(FakeOrders(None), Method::GET, &format!("/orders/{ID}")).await;
        assert_eq!((status, &body["error"]["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("orders_unavailable")));
        assert_eq!(body["error"]["message"], ORDERS_UNAVAILABLE, "no SDK text reaches the shopper");
    }

    #[tokio::test]
    async fn other_methods_are_refused_and_preflight_is_answered() {
        let (status, origin, body) = ask(stored(), Method::POST, &format!("/orders/{ID}")).await;
        assert_eq!((status, origin.as_deref()), (StatusCode::METHOD_NOT_ALLOWED, Some("*")));
        assert_eq!(body["error"]["code"], "method_not_allowed");
        let (status, origin, _) = ask(stored(), Method::OPTIONS, &format!("/orders/{ID}")).await;
        assert!(status.is_success(), "{status}");
        assert_eq!(origin.as_deref(), Some("*"));
    }
}
