//! `GET /books`: the catalog with live stock, loaded into the books database first if empty.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use books_db_client::BooksDb;
use bookstore_aws::settings::{self, BooksDbSettings};
use bookstore_aws::{BooksDbCatalog, error_response, http_router, json_response, route_with_stage, serve_http};
use bookstore_domain::catalog::Book;
use bookstore_domain::service::Unavailable;
use clap::Parser;

#[derive(Debug, Parser)]
struct Settings {
    #[command(flatten)]
    books_db: BooksDbSettings,
}

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let _telemetry = bookstore_aws::init_telemetry("catalog", "info");
    let settings: Settings = settings::load()?;
    let catalog = BooksDbCatalog::new(BooksDb::from_url_list(&settings.books_db.books_db_url)?);
    match catalog.seed_if_empty().await {
        Ok(true) => tracing::info!("loaded the default catalog into the books database"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not check the catalog; will serve what there is"),
    }
    serve_http(app(Arc::new(catalog))).await
}

/// What a shopper reads when the books database cannot answer (its cause goes to the log).
const CATALOG_UNAVAILABLE: &str = "the catalog is unavailable; try again in a moment";

/// The books with their live stock: what `GET /books` lists.
trait Shelf: Send + Sync {
    fn books_with_stock(&self) -> impl Future<Output = Result<Vec<Book>, Unavailable>> + Send;
}

impl Shelf for BooksDbCatalog {
    async fn books_with_stock(&self) -> Result<Vec<Book>, Unavailable> {
        BooksDbCatalog::books_with_stock(self).await
    }
}

fn app<S: Shelf + 'static>(shelf: Arc<S>) -> Router {
    http_router(route_with_stage(Router::new(), "/books", get(books::<S>)).with_state(shelf), "use GET /books")
}

async fn books<S: Shelf>(State(shelf): State<Arc<S>>) -> Response {
    match shelf.books_with_stock().await {
        Ok(books) => json_response(StatusCode::OK, &books),
        Err(e) => {
            // The cause names the books database's nodes: the log's, not the shopper's.
            tracing::error!(error = %e, "the catalog could not be read");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "catalog_unavailable", CATALOG_UNAVAILABLE)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;
    use bookstore_aws::testing::send;
    use bookstore_domain::catalog::default_catalog;

    use super::*;

    /// The books database in memory: its books, or down.
    struct FakeCatalog(Option<Vec<Book>>);

    impl Shelf for FakeCatalog {
        async fn books_with_stock(&self) -> Result<Vec<Book>, Unavailable> {
            self.0.clone().ok_or_else(|| Unavailable("http://127.0.0.1:7202: 503 no leader".into()))
        }
    }

    fn with(books: Option<Vec<Book>>) -> Router {
        app(Arc::new(FakeCatalog(books)))
    }

    #[tokio::test]
    async fn the_books_are_listed_with_their_stock_behind_any_stage() {
        let books = default_catalog().unwrap();
        for path in ["/books", "/Prod/books"] {
            let answer = send(with(Some(books.clone())), Method::GET, path, "").await;
            assert_eq!(answer.status, StatusCode::OK, "{path}");
            assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
            assert_eq!(answer.body.as_array().map(Vec::len), Some(books.len()));
            assert_eq!(answer.body[0]["bookId"], books[0].book_id.as_str());
            assert_eq!(answer.body[0]["stock"], books[0].stock, "{}", answer.body);
        }
    }

    #[tokio::test]
    async fn a_down_database_is_a_503_in_the_error_shape() {
        let answer = send(with(None), Method::GET, "/books", "").await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.body["error"]["code"], "catalog_unavailable");
        assert_eq!(answer.body["error"]["message"], CATALOG_UNAVAILABLE, "no address reaches the shopper");
    }

    #[tokio::test]
    async fn other_methods_are_refused_and_preflight_is_answered() {
        let answer = send(with(Some(vec![])), Method::POST, "/books", "").await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
        assert_eq!(answer.body["error"]["code"], "method_not_allowed");
        assert_eq!(answer.body["error"]["message"], "use GET /books");
        let answer = send(with(Some(vec![])), Method::OPTIONS, "/books", "").await;
        assert!(answer.status.is_success(), "{}", answer.status);
        assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    }
}
