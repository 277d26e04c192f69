//! `POST /checkout`: the orchestrator. Runs the order's event graph across the three services
//! with vector clocks, records the decision, queues approved orders.

mod timing;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::post;
use books_db_client::BooksDb;
use bookstore_aws::settings::{
    self, AwsSettings, BooksDbSettings, OrderQueueSettings, OrdersTableSettings, ServiceFunctions,
};
use bookstore_aws::{
    BooksDbCatalog, DynamoOrders, LambdaServices, SqsOrderQueue, error_response, http_router, json_response,
    lambda_client, now_rfc3339, route_with_stage, sdk_config, serve_http,
};
use bookstore_domain::orchestrator::{
    CatalogSource, CheckoutError, Dependencies, OrderQueue, OrderStore, ServiceClient, checkout,
};
use clap::Parser;

use crate::timing::{Timed, server_timing};

#[derive(Debug, Parser)]
struct Settings {
    #[command(flatten)]
    aws: AwsSettings,
    #[command(flatten)]
    books_db: BooksDbSettings,
    #[command(flatten)]
    orders: OrdersTableSettings,
    #[command(flatten)]
    queue: OrderQueueSettings,
    #[command(flatten)]
    functions: ServiceFunctions,
}

/// The orchestrator's ports, each timed for `Server-Timing`.
struct Checkout<S, O, Q, C> {
    services: Timed<S>,
    orders: Timed<O>,
    queue: Timed<Q>,
    catalog: Timed<C>,
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let settings: Settings = settings::load()?;
    let config = sdk_config(&settings.aws).await;
    let lambda = lambda_client(&config, &settings.aws);
    let catalog = BooksDbCatalog::new(BooksDb::from_url_list(&settings.books_db.books_db_url)?);
    if let Err(e) = catalog.seed_if_empty().await {
        tracing::warn!(error = %e, "could not check the catalog");
    }
    let app = Checkout {
        services: Timed(LambdaServices::new(lambda, settings.functions)),
        orders: Timed(DynamoOrders::new(aws_sdk_dynamodb::Client::new(&config), settings.orders.orders_table)),
        queue: Timed(SqsOrderQueue::new(aws_sdk_sqs::Client::new(&config), settings.queue.order_queue_url)),
        catalog: Timed(catalog),
    };
    serve_http(router(Arc::new(app))).await
}

fn router<S, O, Q, C>(app: Arc<Checkout<S, O, Q, C>>) -> Router
where
    S: ServiceClient + 'static,
    O: OrderStore + 'static,
    Q: OrderQueue + 'static,
    C: CatalogSource + 'static,
{
    let routes = route_with_stage(Router::new(), "/checkout", post(handle::<S, O, Q, C>)).with_state(app);
    // Outermost, so that every answer (preflight and errors too) carries the header, as before.
    http_router(routes, "use POST /checkout").layer(middleware::from_fn(server_timing))
}

// The body is taken as bytes: it is JSON whatever the Content-Type says (browsers posting
// without headers send text/plain).
async fn handle<S, O, Q, C>(
    State(app): State<Arc<Checkout<S, O, Q, C>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response
where
    S: ServiceClient,
    O: OrderStore,
    Q: OrderQueue,
    C: CatalogSource,
{
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e.body_text(), "the checkout's body could not be read");
            return error_response(e.status(), "invalid_body", "the request body could not be read");
        }
    };
    let deps = Dependencies { services: &app.services, orders: &app.orders, queue: &app.queue, catalog: &app.catalog };
    let order_id = uuid::Uuid::new_v4().to_string();
    match checkout(&deps, order_id.clone(), &now_rfc3339(), &body).await {
        Ok(response) => json_response(StatusCode::OK, &response),
        Err(CheckoutError::Body(e)) => {
            let status =
                if e.code() == "body_too_large" { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
            error_response(status, e.code(), &e.to_string())
        }
        Err(CheckoutError::Unavailable(e)) => {
            tracing::error!(order_id, error = %e, "checkout failed");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the checkout is unavailable; try again")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::http::Method;
    use bookstore_aws::testing::{Answer, send};
    use bookstore_domain::catalog::{Book, default_catalog};
    use bookstore_domain::events::Service;
    use bookstore_domain::orchestrator::OrderRecord;
    use bookstore_domain::order::OrderStatus;
    use bookstore_domain::service::{ServiceRequest, ServiceResponse, Unavailable};

    use super::*;

    /// The three services, all down.
    struct Down;

    impl ServiceClient for Down {
        async fn call(&self, _: Service, _: &ServiceRequest) -> Result<ServiceResponse, Unavailable> {
            Err(Unavailable("no such function".into()))
        }
    }

    /// The orders table in memory.
    #[derive(Default)]
    struct Orders(Mutex<Vec<OrderRecord>>);

    impl OrderStore for Orders {
        async fn create(&self, order: &OrderRecord) -> Result<(), Unavailable> {
            self.0.lock().unwrap().push(order.clone());
            Ok(())
        }

        async fn transition(&self, _: &str, _: OrderStatus, _: OrderStatus, _: &str) -> Result<(), Unavailable> {
            Ok(())
        }
    }

    struct Queue;

    impl OrderQueue for Queue {
        async fn enqueue(&self, _: &str) -> Result<(), Unavailable> {
            Ok(())
        }
    }

    struct Catalog(Vec<Book>);

    impl CatalogSource for Catalog {
        async fn books(&self) -> Result<Vec<Book>, Unavailable> {
            Ok(self.0.clone())
        }
    }

    async fn post(method: Method, path: &str, body: impl Into<axum::body::Body>) -> Answer {
        let app = Checkout {
            services: Timed(Down),
            orders: Timed(Orders::default()),
            queue: Timed(Queue),
            catalog: Timed(Catalog(default_catalog().unwrap())),
        };
        send(router(Arc::new(app)), method, path, body).await
    }

    fn assert_timed(answer: &Answer) {
        let timing = answer.header("server-timing").unwrap_or_default();
        assert!(timing.starts_with("total;dur=") && timing.contains("transaction-verification;dur="), "{timing:?}");
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    }

    // The only test here that touches the process's environment.
    #[test]
    fn an_empty_queue_url_is_refused_at_start() {
        // SAFETY: no other test of this crate reads or writes the environment.
        unsafe { std::env::set_var("ORDER_QUEUE_URL", "") };
        let error = settings::load::<Settings>().unwrap_err().to_string();
        assert!(error.contains("ORDER_QUEUE_URL") && !error.contains('\n'), "{error}");
        unsafe { std::env::set_var("ORDER_QUEUE_URL", "http://queue") };
        let settings: Settings = settings::load().unwrap();
        assert_eq!(settings.functions.fraud_detection, settings::DEFAULT_FRAUD_DETECTION_FUNCTION);
    }

    #[tokio::test]
    async fn bodies_that_are_not_a_checkout_are_4xx_in_the_error_shape() {
        for path in ["/checkout", "/Prod/checkout"] {
            let answer = post(Method::POST, path, "{not json").await;
            assert_eq!(
                (answer.status, &answer.body["error"]["code"]),
                (StatusCode::BAD_REQUEST, &"invalid_json".into())
            );
            assert_timed(&answer);
        }
        let answer = post(Method::POST, "/checkout", r#"{"items": "many"}"#).await;
        assert_eq!((answer.status, &answer.body["error"]["code"]), (StatusCode::BAD_REQUEST, &"invalid_body".into()));
        let big = vec![b' '; bookstore_domain::checkout::MAX_BODY_BYTES + 1];
        let answer = post(Method::POST, "/checkout", big).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer.body["error"]["code"], "body_too_large");
    }

    #[tokio::test]
    async fn services_that_are_down_make_a_503_with_its_timings() {
        let answer = post(Method::POST, "/checkout", r#"{"items": [{"name": "Dune", "quantity": 1}]}"#).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.body["error"]["code"], "unavailable");
        assert_timed(&answer);
    }

    #[tokio::test]
    async fn other_methods_are_refused_and_preflight_is_answered_all_timed() {
        let answer = post(Method::GET, "/checkout", "").await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.body["error"]["message"], "use POST /checkout");
        assert_timed(&answer);
        let answer = post(Method::OPTIONS, "/checkout", "").await;
        assert!(answer.status.is_success(), "{}", answer.status);
        assert_eq!(answer.header("access-control-allow-methods"), Some("GET,POST,OPTIONS"));
        assert_timed(&answer);
    }
}
