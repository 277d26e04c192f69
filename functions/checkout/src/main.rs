//! `POST /checkout`: the orchestrator. Runs the order's event graph across the three services
//! with vector clocks, records the decision, queues approved orders.

mod timing;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use books_db_client::BooksDb;
use bookstore_aws::metrics::{self, InFlight};
use bookstore_aws::settings::{
    self, AwsSettings, BooksDbSettings, IdempotencySettings, OrderQueueSettings, OrdersTableSettings, ServiceFunctions,
};
use bookstore_aws::{
    BooksDbCatalog, DynamoIdempotency, DynamoOrders, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, LambdaServices,
    SqsOrderQueue, error_body, error_response, http_router, lambda_client, now_rfc3339, route_with_stage, sdk_config,
    serve_http, unix_seconds,
};
use bookstore_domain::checkout::Decision;
use bookstore_domain::idempotency::{
    IdempotencyKey, IdempotencyStore, Keyed, StoredAnswer, fingerprint, order_id, run_once,
};
use bookstore_domain::orchestrator::{
    CatalogSource, CheckoutError, Dependencies, OrderQueue, OrderStore, ServiceClient, checkout,
};
use clap::Parser;
use tracing::Instrument as _;

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
    idempotency: IdempotencySettings,
    #[command(flatten)]
    functions: ServiceFunctions,
}

/// The orchestrator's ports, each timed for `Server-Timing`, and the idempotency keys.
struct Checkout<S, O, Q, C, K> {
    services: Timed<S>,
    orders: Timed<O>,
    queue: Timed<Q>,
    catalog: Timed<C>,
    keys: K,
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let _telemetry = bookstore_aws::init_telemetry("checkout", "info");
    let settings: Settings = settings::load()?;
    let config = sdk_config(&settings.aws).await;
    let lambda = lambda_client(&config, &settings.aws);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let catalog = BooksDbCatalog::new(BooksDb::from_url_list(&settings.books_db.books_db_url)?);
    if let Err(e) = catalog.seed_if_empty().await {
        tracing::warn!(error = %e, "could not check the catalog");
    }
    let app = Checkout {
        services: Timed(LambdaServices::new(lambda, settings.functions)),
        orders: Timed(DynamoOrders::new(dynamodb.clone(), settings.orders.orders_table)),
        queue: Timed(SqsOrderQueue::new(aws_sdk_sqs::Client::new(&config), settings.queue.order_queue_url)),
        catalog: Timed(catalog),
        keys: DynamoIdempotency::new(dynamodb, settings.idempotency.idempotency_table),
    };
    serve_http(router(Arc::new(app))).await
}

fn router<S, O, Q, C, K>(app: Arc<Checkout<S, O, Q, C, K>>) -> Router
where
    S: ServiceClient + 'static,
    O: OrderStore + 'static,
    Q: OrderQueue + 'static,
    C: CatalogSource + 'static,
    K: IdempotencyStore + 'static,
{
    let routes = route_with_stage(Router::new(), "/checkout", post(handle::<S, O, Q, C, K>)).with_state(app);
    // Outermost, so that every answer (preflight and errors too) carries the header, as before.
    http_router(routes, "use POST /checkout").layer(middleware::from_fn(server_timing))
}

type Shared<S, O, Q, C, K> = Arc<Checkout<S, O, Q, C, K>>;

// The body is taken as bytes: it is JSON whatever the Content-Type says (browsers posting
// without headers send text/plain).
async fn handle<S, O, Q, C, K>(
    State(app): State<Shared<S, O, Q, C, K>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response
where
    S: ServiceClient,
    O: OrderStore,
    Q: OrderQueue,
    C: CatalogSource,
    K: IdempotencyStore,
{
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(error = %e.body_text(), "the checkout's body could not be read");
            return error_response(e.status(), "invalid_body", "the request body could not be read");
        }
    };
    let Some(key) = headers.get(IDEMPOTENCY_KEY) else {
        let order_id = uuid::Uuid::new_v4().to_string();
        return stored_response(run_checkout(&app, order_id, &body).await, false);
    };
    let key = match IdempotencyKey::parse(key.as_bytes()) {
        Ok(key) => key,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "invalid_idempotency_key", &e.to_string()),
    };
    let print = fingerprint(&body);
    let order_id = order_id(&key, &print);
    let once = run_once(&app.keys, &key, &print, unix_seconds(), || run_checkout(&app, order_id, &body)).await;
    match once {
        Ok(Keyed::Ran(answer)) => stored_response(answer, false),
        Ok(Keyed::Replayed(answer)) => stored_response(answer, true),
        Ok(Keyed::Reused) => error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with another body; use a new key for a new order",
        ),
        Ok(Keyed::InProgress) => error_response(
            StatusCode::CONFLICT,
            "idempotency_key_in_progress",
            "a checkout with this Idempotency-Key is still running; retry in a moment",
        ),
        Err(e) => {
            tracing::error!(key = key.as_str(), error = %e, "the idempotency key could not be claimed");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "unavailable", UNAVAILABLE)
        }
    }
}

const UNAVAILABLE: &str = "the checkout is unavailable; try again";

/// Runs the checkout of `body` as order `order_id`: its answer, as it is sent and kept.
async fn run_checkout<S, O, Q, C, K>(app: &Checkout<S, O, Q, C, K>, order_id: String, body: &[u8]) -> StoredAnswer
where
    S: ServiceClient,
    O: OrderStore,
    Q: OrderQueue,
    C: CatalogSource,
{
    let deps = Dependencies { services: &app.services, orders: &app.orders, queue: &app.queue, catalog: &app.catalog };
    let _in_flight = InFlight::checkout();
    let started = Instant::now();
    let decided = checkout(&deps, order_id.clone(), &now_rfc3339(), body)
        .instrument(tracing::info_span!("checkout", order_id = order_id.as_str()))
        .await;
    let (status, body, outcome) = match decided {
        Ok(response) => {
            let outcome = match response.status {
                Decision::Approved => "approved",
                Decision::Rejected => "rejected",
            };
            (StatusCode::OK, serde_json::to_string(&response).unwrap_or_else(|_| "{}".into()), outcome)
        }
        Err(CheckoutError::Body(e)) => {
            let status =
                if e.code() == "body_too_large" { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
            (status, error_body(e.code(), &e.to_string()).to_string(), "invalid")
        }
        Err(CheckoutError::Unavailable(e)) => {
            tracing::error!(order_id, error = %e, "checkout failed");
            (StatusCode::SERVICE_UNAVAILABLE, error_body("unavailable", UNAVAILABLE).to_string(), "unavailable")
        }
    };
    metrics::checkout_ended(outcome, started.elapsed().as_secs_f64());
    StoredAnswer { status: status.as_u16(), body }
}

/// A kept answer as sent; a replayed one says so (`Idempotent-Replayed: true`).
fn stored_response(answer: StoredAnswer, replayed: bool) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], answer.body).into_response();
    if replayed {
        response.headers_mut().insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::http::Method;
    use bookstore_aws::testing::{Answer, send, send_request};
    use bookstore_domain::catalog::{Book, default_catalog};
    use bookstore_domain::events::Service;
    use bookstore_domain::idempotency::{Claim, IdempotencyKey};
    use bookstore_domain::orchestrator::{OrderRecord, Recorded};
    use bookstore_domain::service::{ServiceRequest, ServiceResponse, Unavailable};
    use bookstore_domain::testing::{MemoryKeys, MemoryQueue};

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
        async fn create(&self, order: &OrderRecord) -> Result<Recorded, Unavailable> {
            self.0.lock().unwrap().push(order.clone());
            Ok(Recorded::New)
        }
    }

    struct Catalog(Vec<Book>);

    impl CatalogSource for Catalog {
        async fn books(&self) -> Result<Vec<Book>, Unavailable> {
            Ok(self.0.clone())
        }
    }

    type TestCheckout = Checkout<Down, Orders, MemoryQueue, Catalog, MemoryKeys>;

    fn app() -> Arc<TestCheckout> {
        Arc::new(Checkout {
            services: Timed(Down),
            orders: Timed(Orders::default()),
            queue: Timed(MemoryQueue::default()),
            catalog: Timed(Catalog(default_catalog().unwrap())),
            keys: MemoryKeys::default(),
        })
    }

    async fn post(method: Method, path: &str, body: impl Into<axum::body::Body>) -> Answer {
        send(router(app()), method, path, body).await
    }

    /// `POST /checkout` of `body` with `Idempotency-Key: key` to `app`.
    async fn post_keyed(app: &Arc<TestCheckout>, key: &[u8], body: &'static str) -> Answer {
        let request = axum::http::Request::post("/checkout")
            .header(IDEMPOTENCY_KEY, HeaderValue::from_bytes(key).unwrap())
            .body(axum::body::Body::from(body))
            .unwrap();
        send_request(router(app.clone()), request).await
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

    #[tokio::test]
    async fn a_keyed_retry_gets_the_first_answer_and_another_body_is_refused() {
        let app = app();
        let first = post_keyed(&app, b"key-1", "{not json").await;
        assert_eq!((first.status, &first.body["error"]["code"]), (StatusCode::BAD_REQUEST, &"invalid_json".into()));
        assert_eq!(first.header("idempotent-replayed"), None);
        let retry = post_keyed(&app, b"key-1", "{not json").await;
        assert_eq!((retry.status, &retry.body), (first.status, &first.body));
        assert_eq!(retry.header("idempotent-replayed"), Some("true"));
        assert_eq!(retry.header("access-control-expose-headers"), Some("idempotent-replayed"), "readable cross-origin");
        assert_timed(&retry);
        let other = post_keyed(&app, b"key-1", "{}").await;
        assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(other.body["error"]["code"], "idempotency_key_reused");
    }

    #[tokio::test]
    async fn a_5xx_is_not_kept_a_running_key_is_a_409_and_a_bad_key_a_400() {
        let app = app();
        let body = r#"{"items": [{"name": "Dune", "quantity": 1}]}"#;
        for _ in 0..2 {
            let answer = post_keyed(&app, b"key-2", body).await;
            assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(answer.header("idempotent-replayed"), None, "a failed checkout runs again");
        }
        let key = IdempotencyKey::parse(b"key-3").unwrap();
        let print = fingerprint(body.as_bytes());
        assert!(matches!(app.keys.claim(&key, &print, unix_seconds()).await.unwrap(), Claim::Won(_)));
        let meanwhile = post_keyed(&app, b"key-3", body).await;
        assert_eq!(meanwhile.status, StatusCode::CONFLICT);
        assert_eq!(meanwhile.body["error"]["code"], "idempotency_key_in_progress");
        for bad in [&b"caf\xc3\xa9"[..], &[b'k'; 256]] {
            let answer = post_keyed(&app, bad, body).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST);
            assert_eq!(answer.body["error"]["code"], "invalid_idempotency_key");
        }
    }
}
