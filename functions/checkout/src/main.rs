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
        Err(e) => return error_response(e.status(), "invalid_body", &e.body_text()),
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
