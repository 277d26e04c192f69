//! The order executor: consumes the order queue (an SQS event source with
//! `ReportBatchItemFailures`) and commits each order exactly once with a two-phase commit across
//! the books database's stock and the payment function.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use books_db_client::BooksDb;
use bookstore_aws::{
    BooksDbStock, DeliverySettings, DynamoOrders, EmulatedFaults, LambdaPayment, RetryQueue, env_or, execute_batch,
    lambda_client, sdk_config,
};
use bookstore_domain::execution::OrderExecutor;
use lambda_runtime::{LambdaEvent, service_fn};

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings = DeliverySettings {
        max_receives: number("MAX_RECEIVES", 5)?,
        retry_delay_seconds: number("RETRY_DELAY_SECONDS", 2)?,
        visibility_timeout_seconds: number("VISIBILITY_TIMEOUT_SECONDS", 240)?,
        execution_limit: Duration::from_secs(number("EXECUTION_LIMIT_SECONDS", 35)?),
        faults: EmulatedFaults::from_env()?,
    };
    let config = sdk_config().await;
    let executor = OrderExecutor {
        ledger: DynamoOrders::new(aws_sdk_dynamodb::Client::new(&config), env_or("ORDERS_TABLE", "bookstore-orders")),
        stock: BooksDbStock::new(BooksDb::from_url_list(&env_or("BOOKS_DB_URL", "http://127.0.0.1:7001"))?),
        payment: LambdaPayment::from_env(lambda_client(&config)),
    };
    let queue_url = env_or("ORDER_QUEUE_URL", "");
    let queue = (!queue_url.is_empty()).then(|| RetryQueue { client: aws_sdk_sqs::Client::new(&config), queue_url });
    let shared = Arc::new((executor, settings, queue));
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let shared = Arc::clone(&shared);
        async move {
            let (executor, settings, queue) = shared.as_ref();
            Ok::<_, lambda_runtime::Error>(execute_batch(executor, settings, queue.as_ref(), event.payload).await)
        }
    }))
    .await
}

/// A whole-number setting from the environment, or `default`; a malformed one stops the start.
fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| format!("{name} must be a whole number, not {text:?}")),
    }
}
