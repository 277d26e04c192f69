//! The order sweeper: run on a schedule (every minute in `template.yaml`, and so in the embedded
//! default), it queues again the orders left `queued` without a message, and fails those taken up
//! three times (see `bookstore_domain::sweeper`).

use bookstore_aws::settings::{self, AwsSettings, OrderQueueSettings, OrdersTableSettings, number_or};
use bookstore_aws::{DynamoOrders, SqsOrderQueue, now_rfc3339, sdk_config, unix_seconds};
use bookstore_domain::sweeper::{OrderSweeper, SweepSettings};
use clap::Parser;
use lambda_runtime::{LambdaEvent, service_fn};

/// Seconds an order may wait `queued` before the sweeper takes it up.
const DEFAULT_STRANDED_AFTER_SECONDS: u64 = 120;
/// Seconds a message the sweeper sent has to be executed: past the order queue's five
/// deliveries of 240 s each.
const DEFAULT_RESEND_AFTER_SECONDS: u64 = 1800;
/// Times a stranded order is taken up before it is failed.
const DEFAULT_MAX_SWEEPS: u32 = 3;

#[derive(Debug, Parser)]
struct Settings {
    #[command(flatten)]
    aws: AwsSettings,
    #[command(flatten)]
    orders: OrdersTableSettings,
    #[command(flatten)]
    queue: OrderQueueSettings,
    #[arg(long, env = "STRANDED_AFTER_SECONDS", default_value_t = DEFAULT_STRANDED_AFTER_SECONDS, value_parser = number_or(DEFAULT_STRANDED_AFTER_SECONDS))]
    stranded_after_seconds: u64,
    #[arg(long, env = "RESEND_AFTER_SECONDS", default_value_t = DEFAULT_RESEND_AFTER_SECONDS, value_parser = number_or(DEFAULT_RESEND_AFTER_SECONDS))]
    resend_after_seconds: u64,
    #[arg(long, env = "MAX_SWEEPS", default_value_t = DEFAULT_MAX_SWEEPS, value_parser = number_or(DEFAULT_MAX_SWEEPS))]
    max_sweeps: u32,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let _telemetry = bookstore_aws::init_telemetry("order-sweeper", "info");
    let settings: Settings = settings::load()?;
    let config = sdk_config(&settings.aws).await;
    let sweeper = OrderSweeper {
        orders: DynamoOrders::new(aws_sdk_dynamodb::Client::new(&config), settings.orders.orders_table),
        queue: SqsOrderQueue::new(aws_sdk_sqs::Client::new(&config), settings.queue.order_queue_url),
        settings: SweepSettings {
            stranded_after: settings.stranded_after_seconds,
            resend_after: settings.resend_after_seconds,
            max_attempts: settings.max_sweeps,
        },
    };
    let sweeper = &sweeper;
    // The event (a scheduled event, or anything) says nothing the sweep needs.
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        let report = sweeper.sweep(unix_seconds(), &now_rfc3339()).await;
        if let Err(e) = &report {
            tracing::error!(error = %e, "the sweep could not read the orders table");
        }
        report.map_err(lambda_runtime::Error::from)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    // The only test here that touches the process's environment.
    #[test]
    fn the_queue_is_required_and_the_sweep_has_defaults() {
        // SAFETY: no other test of this crate reads or writes the environment.
        unsafe { std::env::set_var("ORDER_QUEUE_URL", "") };
        let error = settings::load::<Settings>().unwrap_err().to_string();
        assert!(error.contains("ORDER_QUEUE_URL"), "{error}");
        unsafe {
            std::env::set_var("ORDER_QUEUE_URL", "http://queue");
            std::env::set_var("STRANDED_AFTER_SECONDS", "");
        }
        let settings: Settings = settings::load().unwrap();
        assert_eq!(
            (settings.stranded_after_seconds, settings.resend_after_seconds, settings.max_sweeps),
            (120, 1800, 3)
        );
    }
}
