//! Transaction verification (events a, b, c): the cart, the user data, the card.

use bookstore_aws::settings::{self, ServiceSettings};
use bookstore_domain::checks::TransactionVerification;
use bookstore_domain::events::Service;

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings: ServiceSettings = settings::load()?;
    let checks = TransactionVerification { clock: bookstore_aws::SystemClock };
    bookstore_aws::serve_service(Service::TransactionVerification, settings, checks).await
}
