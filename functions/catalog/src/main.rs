//! `GET /books`: the catalog with live stock, loaded into the books database first if empty.

use books_db_client::BooksDb;
use bookstore_aws::{BooksDbCatalog, env_or, error_response, json_response, preflight_response, serve_http};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

// One thread: an instance runs one invocation at a time (or a few, all waiting on I/O), and
// idle worker threads cost CPU on every wake-up.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let catalog = BooksDbCatalog::new(BooksDb::from_url_list(&env_or("BOOKS_DB_URL", "http://127.0.0.1:7001"))?);
    match catalog.seed_if_empty().await {
        Ok(true) => tracing::info!("loaded the default catalog into the books database"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not check the catalog; will serve what there is"),
    }
    serve_http(catalog, |catalog, request| async move { books(&catalog, &request).await }).await
}

async fn books(catalog: &BooksDbCatalog, request: &Request) -> Response<Body> {
    match *request.method() {
        Method::OPTIONS => preflight_response(),
        Method::GET => match catalog.books().await {
            Ok(books) => json_response(StatusCode::OK, &books),
            Err(e) => error_response(StatusCode::SERVICE_UNAVAILABLE, "catalog_unavailable", &e.to_string()),
        },
        _ => error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use GET /books"),
    }
}
