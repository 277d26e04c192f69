//! Suggestions (event f): books from the books database's catalog for this cart.

use books_db_client::BooksDb;
use bookstore_aws::BooksDbCatalog;
use bookstore_aws::settings::{self, BooksDbSettings, ServiceSettings};
use bookstore_domain::checks::Suggestions;
use bookstore_domain::events::Service;
use clap::Parser;

#[derive(Debug, Parser)]
struct Settings {
    #[command(flatten)]
    service: ServiceSettings,
    #[command(flatten)]
    books_db: BooksDbSettings,
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let settings: Settings = settings::load()?;
    let db = BooksDb::from_url_list(&settings.books_db.books_db_url)?;
    bookstore_aws::serve_service(Service::Suggestions, settings.service, Suggestions { books: BooksDbCatalog::new(db) })
        .await
}
