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
    BooksDbStock, DeliverySettings, DynamoOrders, EmulatedFaults, LambdaPayment, RetryQueue, execute_batch,
    lambda_client, sdk_config,
};
use bookstore_domain::execution::OrderExecutor;
use clap::Parser;
use lambda_runtime::{LambdaEvent, service_fn};

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
    #[arg(long, env = "PAYMENT_FUNCTION", default_value = DEFAULT_PAYMENT_FUNCTION, value_parser = or_default(DEFAULT_PAYMENT_FUNCTION))]
    payment_function: String,
    #[arg(long, env = "MAX_RECEIVES", default_value_t = 5, value_parser = number_or(5u32))]
    max_receives: u32,
    #[arg(long, env = "RETRY_DELAY_SECONDS", default_value_t = 2, value_parser = number_or(2i32))]
    retry_delay_seconds: i32,
    #[arg(long, env = "VISIBILITY_TIMEOUT_SECONDS", default_value_t = 240, value_parser = number_or(240i32))]
    visibility_timeout_seconds: i32,
    #[arg(long, env = "EXECUTION_LIMIT_SECONDS", default_value_t = 35, value_parser = number_or(35u64))]
    execution_limit_seconds: u64,
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let settings: Settings = settings::load()?;
    let delivery = DeliverySettings {
        max_receives: settings.max_receives,
        retry_delay_seconds: settings.retry_delay_seconds,
        visibility_timeout_seconds: settings.visibility_timeout_seconds,
        execution_limit: Duration::from_secs(settings.execution_limit_seconds),
        // EXECUTOR_DELAY_MS and EXECUTOR_FAILURE_RATE, read (and checked) by the executor module.
        faults: EmulatedFaults::from_env()?,
    };
    let config = sdk_config(&settings.aws).await;
    let executor = OrderExecutor {
        ledger: DynamoOrders::new(aws_sdk_dynamodb::Client::new(&config), settings.orders.orders_table),
        stock: BooksDbStock::new(BooksDb::from_url_list(&settings.books_db.books_db_url)?),
        payment: LambdaPayment::new(lambda_client(&config, &settings.aws), settings.payment_function),
    };
    // The queue URL is required (see OrderQueueSettings), so failed messages can always be told
    // when to come back.
    let queue =
        Some(RetryQueue { client: aws_sdk_sqs::Client::new(&config), queue_url: settings.queue.order_queue_url });
    let shared = Arc::new((executor, delivery, queue));
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let shared = Arc::clone(&shared);
        async move {
            let (executor, settings, queue) = shared.as_ref();
            Ok::<_, lambda_runtime::Error>(execute_batch(executor, settings, queue.as_ref(), event.payload).await)
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
        assert_eq!((settings.max_receives, settings.execution_limit_seconds), (5, 35));
        assert_eq!(settings.payment_function, DEFAULT_PAYMENT_FUNCTION);
        unsafe { std::env::set_var("MAX_RECEIVES", "five") };
        let error = settings::load::<Settings>().unwrap_err().to_string();
        assert!(error.contains("MAX_RECEIVES") && error.contains("whole number"), "{error}");
    }
}
