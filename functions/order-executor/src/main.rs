//! The order executor: consumes the order queue (an SQS event source with
//! `ReportBatchItemFailures`) and commits each order exactly once with a two-phase commit across
//! the books database's stock and the payment function.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use books_db_client::BooksDb;
use bookstore_aws::settings::{
    self, AwsSettings, BooksDbSettings, DEFAULT_PAYMENT_FUNCTION, OrderQueueSettings, OrdersTableSettings, number_or,
    or_default,
};
use bookstore_aws::{
    BooksDbStock, DeliverySettings, DynamoOrders, EmulatedFaults, FaultKnobs, LambdaPayment, RetryQueue, execute_batch,
    lambda_client, sdk_config,
};
use bookstore_domain::execution::OrderExecutor;
use clap::Parser;
use lambda_runtime::{LambdaEvent, service_fn};

/// Deliveries of a message before it goes to the dead-letter queue (the queue's `maxReceiveCount`).
const DEFAULT_MAX_RECEIVES: u32 = 5;
/// When a failed delivery comes back.
const DEFAULT_RETRY_DELAY_SECONDS: i32 = 2;
/// The queue's visibility timeout: how long a delivery holds its order.
const DEFAULT_VISIBILITY_TIMEOUT_SECONDS: i32 = 240;
/// When an execution is given up, before the function's own timeout.
const DEFAULT_EXECUTION_LIMIT_SECONDS: u64 = 35;

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
    /// Where a message no delivery could finish goes at once (blank: after its last delivery,
    /// by the queue's redrive policy).
    #[arg(long, env = "DEAD_LETTER_QUEUE_URL")]
    dead_letter_queue_url: Option<String>,
    #[arg(long, env = "PAYMENT_FUNCTION", default_value = DEFAULT_PAYMENT_FUNCTION, value_parser = or_default(DEFAULT_PAYMENT_FUNCTION))]
    payment_function: String,
    #[arg(long, env = "MAX_RECEIVES", default_value_t = DEFAULT_MAX_RECEIVES, value_parser = number_or(DEFAULT_MAX_RECEIVES))]
    max_receives: u32,
    #[arg(long, env = "RETRY_DELAY_SECONDS", default_value_t = DEFAULT_RETRY_DELAY_SECONDS, value_parser = number_or(DEFAULT_RETRY_DELAY_SECONDS))]
    retry_delay_seconds: i32,
    #[arg(long, env = "VISIBILITY_TIMEOUT_SECONDS", default_value_t = DEFAULT_VISIBILITY_TIMEOUT_SECONDS, value_parser = number_or(DEFAULT_VISIBILITY_TIMEOUT_SECONDS))]
    visibility_timeout_seconds: i32,
    #[arg(long, env = "EXECUTION_LIMIT_SECONDS", default_value_t = DEFAULT_EXECUTION_LIMIT_SECONDS, value_parser = number_or(DEFAULT_EXECUTION_LIMIT_SECONDS))]
    execution_limit_seconds: u64,
    /// The course's unreliable executor: a random delay before preparing, `MIN-MAX` ms.
    #[arg(long, env = "EXECUTOR_DELAY_MS")]
    executor_delay_ms: Option<String>,
    /// ... and the probability (0 to 1) of failing at a random step.
    #[arg(long, env = "EXECUTOR_FAILURE_RATE")]
    executor_failure_rate: Option<String>,
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let _telemetry = bookstore_aws::init_telemetry("order-executor", "info");
    let settings: Settings = settings::load()?;
    let delivery = DeliverySettings {
        max_receives: settings.max_receives,
        retry_delay_seconds: settings.retry_delay_seconds,
        visibility_timeout_seconds: settings.visibility_timeout_seconds,
        execution_limit: Duration::from_secs(settings.execution_limit_seconds),
        // Set while running (the fault controls) over configured.
        faults: FaultKnobs::new(
            EmulatedFaults::parse(settings.executor_delay_ms.as_deref(), settings.executor_failure_rate.as_deref())?,
            &settings.books_db.books_db_url,
        )?,
    };
    let config = sdk_config(&settings.aws).await;
    let executor = OrderExecutor {
        ledger: DynamoOrders::new(aws_sdk_dynamodb::Client::new(&config), settings.orders.orders_table),
        stock: BooksDbStock::new(BooksDb::from_url_list(&settings.books_db.books_db_url)?),
        payment: LambdaPayment::new(lambda_client(&config, &settings.aws), settings.payment_function),
    };
    // The queue URL is required (see OrderQueueSettings), so failed messages can always be told
    // when to come back.
    let queue = Some(RetryQueue {
        client: aws_sdk_sqs::Client::new(&config),
        queue_url: settings.queue.order_queue_url,
        dead_letter_queue_url: settings.dead_letter_queue_url.filter(|url| !url.trim().is_empty()),
    });
    let shared = Arc::new((executor, delivery, queue));
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let shared = Arc::clone(&shared);
        async move {
            let (executor, settings, queue) = shared.as_ref();
            let answer = execute_batch(executor, settings, queue.as_ref(), event.payload).await;
            bookstore_aws::flush_telemetry().await;
            Ok::<_, lambda_runtime::Error>(answer)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only test here that touches the process's environment.
    #[test]
    fn the_queue_is_required_and_blank_numbers_are_the_defaults() {
        // SAFETY: no other test of this crate reads or writes the environment.
        unsafe {
            std::env::set_var("ORDER_QUEUE_URL", "");
            std::env::set_var("MAX_RECEIVES", " ");
        }
        let error = settings::load::<Settings>().unwrap_err().to_string();
        assert!(error.contains("ORDER_QUEUE_URL") && !error.contains('\n'), "{error}");
        unsafe { std::env::set_var("ORDER_QUEUE_URL", "http://queue") };
        let settings: Settings = settings::load().unwrap();
        assert_eq!(
            (settings.max_receives, settings.execution_limit_seconds),
            (DEFAULT_MAX_RECEIVES, DEFAULT_EXECUTION_LIMIT_SECONDS)
        );
        assert_eq!(settings.payment_function, DEFAULT_PAYMENT_FUNCTION);
        unsafe { std::env::set_var("MAX_RECEIVES", "five") };
        let error = settings::load::<Settings>().unwrap_err().to_string();
        assert!(error.contains("MAX_RECEIVES") && error.contains("whole number"), "{error}");
    }
}
