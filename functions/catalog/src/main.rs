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
use bookstore_domain::orchestrator::CatalogSource;
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
    lambda_http::tracing::init_default_subscriber();
    let settings: Settings = settings::load()?;
    let catalog = BooksDbCatalog::new(BooksDb::from_url_list(&settings.books_db.books_db_url)?);
    match catalog.seed_if_empty().await {
        Ok(true) => tracing::info!("loaded the default catalog into the books database"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not check the catalog; will serve what there is"),
    }
    serve_http(app(Arc::new(catalog))).await
}

fn app<C: CatalogSource + 'static>(catalog: Arc<C>) -> Router {
    http_router(route_with_stage(Router::new(), "/books", get(books::<C>)).with_state(catalog), "use GET /books")
}

async fn books<C: CatalogSource>(State(catalog): State<Arc<C>>) -> Response {
    match catalog.books().await {
        Ok(books) => json_response(StatusCode::OK, &books),
        Err(e) => error_response(StatusCode::SERVICE_UNAVAILABLE, "catalog_unavailable", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::{Method, Request, header};
    use bookstore_domain::catalog::{Book, default_catalog};
    use bookstore_domain::service::Unavailable;
    use lambda_http::tower::ServiceExt;
    use serde_json::Value;

    use super::*;

    /// The books database in memory: its books, or down.
    struct FakeCatalog(Option<Vec<Book>>);

    impl CatalogSource for FakeCatalog {
        async fn books(&self) -> Result<Vec<Book>, Unavailable> {
            self.0.clone().ok_or_else(|| Unavailable("books database down".into()))
        }
    }

    async fn send(catalog: FakeCatalog, method: Method, path: &str) -> (StatusCode, Option<String>, Value) {
        let request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let response = app(Arc::new(catalog)).oneshot(request).await.unwrap();
        let status = response.status();
        let origin = response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).map(|v| v.to_str().unwrap().into());
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, origin, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn the_books_are_listed_with_their_stock_behind_any_stage() {
        let books = default_catalog().unwrap();
        for path in ["/books", "/Prod/books"] {
            let (status, origin, body) = send(FakeCatalog(Some(books.clone())), Method::GET, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(origin.as_deref(), Some("*"));
            assert_eq!(body.as_array().map(Vec::len), Some(books.len()));
            assert_eq!(body[0]["bookId"], books[0].book_id.as_str());
            assert!(body[0]["stock"].is_u64(), "{body}");
        }
    }

    #[tokio::test]
    async fn a_down_database_is_a_503_in_the_error_shape() {
        let (status, _, body) = send(FakeCatalog(None), Method::GET, "/books").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "catalog_unavailable");
    }

    #[tokio::test]
    async fn other_methods_are_refused_and_preflight_is_answered() {
        let (status, origin, body) = send(FakeCatalog(Some(vec![])), Method::POST, "/books").await;
        assert_eq!((status, origin.as_deref()), (StatusCode::METHOD_NOT_ALLOWED, Some("*")));
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert_eq!(body["error"]["message"], "use GET /books");
        let (status, origin, _) = send(FakeCatalog(Some(vec![])), Method::OPTIONS, "/books").await;
        assert!(status.is_success(), "{status}");
        assert_eq!(origin.as_deref(), Some("*"));
    }
}
