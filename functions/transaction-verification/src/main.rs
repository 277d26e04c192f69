//! Transaction verification (events a, b, c): the cart, the user data, the card.

use bookstore_domain::checks::TransactionVerification;
use bookstore_domain::events::Service;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let checks = TransactionVerification { today: bookstore_aws::current_month() };
    bookstore_aws::serve_service(Service::TransactionVerification, checks).await
}
