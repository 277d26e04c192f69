//! `POST /checkout`: the orchestrator. Runs the order's event graph across the three services
//! with vector clocks, records the decision, queues approved orders.

mod timing;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use books_db_client::BooksDb;
use bookstore_aws::{
    BooksDbCatalog, DynamoOrders, LambdaServices, SqsOrderQueue, env_or, error_response, json_response, lambda_client,
    now_rfc3339, preflight_response, sdk_config,
};
use bookstore_domain::orchestrator::{CheckoutError, Dependencies, checkout};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response, service_fn};

use crate::timing::{TIMINGS, Timed, Timings};

struct Checkout {
    services: Timed<LambdaServices>,
    orders: Timed<DynamoOrders>,
    queue: Timed<SqsOrderQueue>,
    catalog: Timed<BooksDbCatalog>,
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = sdk_config().await;
    let lambda = lambda_client(&config);
    let catalog = BooksDbCatalog::new(BooksDb::from_url_list(&env_or("BOOKS_DB_URL", "http://127.0.0.1:7001"))?);
    if let Err(e) = catalog.seed_if_empty().await {
        tracing::warn!(error = %e, "could not check the catalog");
    }
    let app = Arc::new(Checkout {
        services: Timed(LambdaServices::from_env(lambda)),
        orders: Timed(DynamoOrders::new(
            aws_sdk_dynamodb::Client::new(&config),
            env_or("ORDERS_TABLE", "bookstore-orders"),
        )),
        queue: Timed(SqsOrderQueue::new(aws_sdk_sqs::Client::new(&config), env_or("ORDER_QUEUE_URL", ""))),
        catalog: Timed(catalog),
    });
    lambda_http::run_concurrent(service_fn(move |request: Request| {
        let app = Arc::clone(&app);
        async move {
            let started = Instant::now();
            let (mut response, timings) = TIMINGS
                .scope(RefCell::new(Timings::default()), async {
                    let response = handle(&app, &request).await;
                    (response, TIMINGS.with(|t| t.borrow().clone()))
                })
                .await;
            if let Ok(value) = timings.header(started.elapsed()).parse() {
                response.headers_mut().insert("server-timing", value);
            }
            Ok::<_, lambda_http::Error>(response)
        }
    }))
    .await
}

async fn handle(app: &Checkout, request: &Request) -> Response<Body> {
    match *request.method() {
        Method::OPTIONS => return preflight_response(),
        Method::POST => {}
        _ => return error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use POST /checkout"),
    }
    let deps = Dependencies { services: &app.services, orders: &app.orders, queue: &app.queue, catalog: &app.catalog };
    let order_id = uuid::Uuid::new_v4().to_string();
    // The body is JSON whatever the Content-Type says (browsers posting without headers send
    // text/plain).
    match checkout(&deps, order_id.clone(), &now_rfc3339(), request.body().as_ref()).await {
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
