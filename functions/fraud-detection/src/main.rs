//! Fraud detection (events d, e): rules and the committed logistic-regression model.

use bookstore_aws::settings::{self, ServiceSettings};
use bookstore_domain::checks::FraudDetection;
use bookstore_domain::events::Service;
use bookstore_domain::fraud::FraudModel;

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings: ServiceSettings = settings::load()?;
    let checks = FraudDetection { model: FraudModel::embedded()? };
    bookstore_aws::serve_service(Service::FraudDetection, settings, checks).await
}
