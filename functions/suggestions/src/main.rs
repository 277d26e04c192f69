//! Suggestions (event f): books from the books database's catalog for this cart.

use books_db_client::BooksDb;
use bookstore_aws::{BooksDbCatalog, env_or};
use bookstore_domain::checks::Suggestions;
use bookstore_domain::events::Service;

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let db = BooksDb::from_url_list(&env_or("BOOKS_DB_URL", "http://127.0.0.1:7001"))?;
    bookstore_aws::serve_service(Service::Suggestions, Suggestions { books: BooksDbCatalog::new(db) }).await
}
