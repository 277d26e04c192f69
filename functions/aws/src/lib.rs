//! Adapters from the bookstore's domain ports to AWS and the books database. Every function
//! reads where its dependencies are from the environment only, so one binary runs under
//! `cargo lambda watch` with moto, under LocalStack, and on AWS:
//!
//! Each function reads its settings once at start ([`settings`]); an empty value means the default.
//!
//! | variable | what | default |
//! | --- | --- | --- |
//! | `EMULATOR_ENDPOINT_URL` (or the SDK's `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, …) | the AWS endpoint: a local emulator | AWS |
//! | `LAMBDA_ENDPOINT_URL` | the Lambda API, where the functions invoke each other | the AWS endpoint |
//! | `SERVICE_STATE_TABLE` | the services' per-order state | `bookstore-service-state` |
//! | `ORDERS_TABLE` | the orders | `bookstore-orders` |
//! | `IDEMPOTENCY_TABLE` | the checkout's `Idempotency-Key`s and their answers | `bookstore-idempotency` |
//! | `ORDER_QUEUE_URL` | the order queue | required (not empty) by checkout and order-executor |
//! | `DEAD_LETTER_QUEUE_URL` | where the order queue's undeliverable messages go (shown by `GET /status`; the executor sends there a message no delivery could finish) | — |
//! | `STRANDED_AFTER_SECONDS`, `MAX_SWEEPS` | the order sweeper: how long an order may wait queued, how often its message is sent before it fails | 120, 3 |
//! | `TRANSACTION_VERIFICATION_FUNCTION`, `FRAUD_DETECTION_FUNCTION`, `SUGGESTIONS_FUNCTION` | the services' function names | `transaction-verification`, … |
//! | `PAYMENTS_TABLE` | the payment participant's state | `bookstore-payments` |
//! | `PAYMENT_FUNCTION` | the payment function's name | `payment` |
//! | `BOOKS_DB_URL` | the books database's nodes, comma-separated | `http://127.0.0.1:7001` |
//! | `MAX_RECEIVES` | the order queue's `maxReceiveCount`: the executor's last delivery | 5 |
//! | `RETRY_DELAY_SECONDS` | a failed message comes back after this × its receive count | 2 |
//! | `VISIBILITY_TIMEOUT_SECONDS` | the order queue's visibility timeout, renewed during long executions | 240 |
//! | `EXECUTION_LIMIT_SECONDS` | an execution still running then is given up, and its message comes back | 35 |
//! | `EXECUTOR_DELAY_MS`, `EXECUTOR_FAILURE_RATE` | the course's slow, unreliable executors (`MIN-MAX`, 0-1); knobs set while running (the books database's `config/executor`, which the fault controls write) take over | off |

mod books;
mod clock;
mod config;
mod executor;
mod idempotency;
mod invoke;
mod lambda;
pub mod metrics;
mod orders;
mod payments;
mod queue;
mod service_state;
pub mod settings;
mod stock;
mod system_status;
mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use books::BooksDbCatalog;
pub use bookstore_telemetry::context::{TraceHeaders, Traced};
pub use bookstore_telemetry::{Telemetry, flush as flush_telemetry, init as init_telemetry};
pub use clock::{SystemClock, now_rfc3339, unix_seconds};
pub use config::{http_client, lambda_client, sdk_config};
pub use executor::{
    DEAD_LETTER_REASON, DeliverySettings, EXECUTOR_KNOBS_KEY, EmulatedFaults, FaultKnobs, KnobError, MAX_DELAY_MS,
    RetryQueue, execute_batch,
};
pub use idempotency::DynamoIdempotency;
pub use invoke::LambdaServices;
pub use lambda::{
    IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, error_body, error_response, http_router, in_span, json_response,
    route_with_stage, serve_http, serve_service,
};
pub use orders::DynamoOrders;
pub use payments::{DynamoPayments, LambdaPayment};
pub use queue::SqsOrderQueue;
pub use service_state::DynamoStateStore;
pub use stock::BooksDbStock;
pub use system_status::{NodeView, QueueView, RaftLogView, SystemStatus, SystemStatusReader};

use bookstore_domain::service::Unavailable;

/// Any failure of a call to AWS, as the domain's retryable failure.
pub(crate) fn unavailable(what: &str, error: impl std::fmt::Display) -> Unavailable {
    Unavailable(format!("{what}: {error}"))
}
