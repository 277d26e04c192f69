//! Payment, the order executor's second two-phase-commit participant: authorise (prepare),
//! charge (commit), release (abort). The money is a dummy; the protocol state is in DynamoDB.

use std::sync::Arc;

use bookstore_aws::settings::{self, AwsSettings, DEFAULT_PAYMENT_FUNCTION, DEFAULT_PAYMENTS_TABLE, or_default};
use bookstore_aws::{DynamoPayments, Traced, in_span, sdk_config};
use bookstore_domain::payment::{PaymentRequest, handle};
use clap::Parser;
use lambda_runtime::{LambdaEvent, service_fn};

#[derive(Debug, Parser)]
struct Settings {
    #[command(flatten)]
    aws: AwsSettings,
    #[arg(long, env = "PAYMENTS_TABLE", default_value = DEFAULT_PAYMENTS_TABLE, value_parser = or_default(DEFAULT_PAYMENTS_TABLE))]
    payments_table: String,
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let _telemetry = bookstore_aws::init_telemetry(DEFAULT_PAYMENT_FUNCTION, "info");
    let settings: Settings = settings::load()?;
    let config = sdk_config(&settings.aws).await;
    let ledger = Arc::new(DynamoPayments::new(aws_sdk_dynamodb::Client::new(&config), settings.payments_table));
    lambda_runtime::run_concurrent(service_fn(move |event: LambdaEvent<Traced<PaymentRequest>>| {
        let ledger = Arc::clone(&ledger);
        async move {
            let Traced { request, trace } = event.payload;
            let order_id = request.order_id().to_string();
            let span = tracing::info_span!("payment", order_id);
            let answer = in_span(span, &trace, async {
                let answer = handle(request, ledger.as_ref()).await;
                match &answer {
                    Ok(response) => tracing::info!(order_id, ?response, "payment step"),
                    Err(e) => tracing::error!(order_id, error = %e, "payment step failed"),
                }
                answer
            })
            .await;
            answer.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
