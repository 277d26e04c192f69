//! Fraud detection (events d, e): rules and the committed logistic-regression model.

use bookstore_domain::checks::FraudDetection;
use bookstore_domain::events::Service;
use bookstore_domain::fraud::FraudModel;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let checks = FraudDetection { model: FraudModel::embedded()? };
    bookstore_aws::serve_service(Service::FraudDetection, checks).await
}
