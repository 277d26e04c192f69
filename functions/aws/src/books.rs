//! The catalog in the books database: `book/{id}` holds a book, `stock/{id}` its live stock (an
//! integer, so that a transaction can reserve copies with `add`), `stats/bought-together` the
//! co-purchase counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use books_db_client::BooksDb;
use books_db_client::api::{Check, Compare, TxnOp, TxnRequest};
use bookstore_domain::catalog::{self, BOOK_PREFIX, Book};
use bookstore_domain::checks::BookSource;
use bookstore_domain::orchestrator::CatalogSource;
use bookstore_domain::service::Unavailable;
use bookstore_domain::suggestions::BoughtTogether;

use crate::unavailable;

pub const STOCK_PREFIX: &str = "stock/";
pub const BOUGHT_TOGETHER_KEY: &str = "stats/bought-together";
/// Written with the catalog, so that seeding happens once however many functions start at once.
const SEEDED_KEY: &str = "catalog/seeded";

/// How long an instance trusts the books it read: only seeding writes them, and stock, which does
/// change, is always read live.
const BOOKS_FRESH_FOR: Duration = Duration::from_secs(60);

pub struct BooksDbCatalog {
    db: BooksDb,
    /// The books (without stock) and when they were read.
    books: Mutex<Option<(Instant, Arc<Vec<Book>>)>>,
}

impl BooksDbCatalog {
    pub fn new(db: BooksDb) -> Self {
        Self { db, books: Mutex::new(None) }
    }

    /// Loads the default catalog into the books database unless it was loaded before; one
    /// transaction, so concurrent callers load it once. Answers whether this call loaded it.
    pub async fn seed_if_empty(&self) -> Result<bool, Unavailable> {
        let books = catalog::default_catalog().map_err(|e| unavailable("the default catalog", e))?;
        let mut success = vec![TxnOp::Put { key: SEEDED_KEY.into(), value: serde_json::json!(books.len()) }];
        for book in &books {
            let mut value = serde_json::to_value(book).map_err(|e| unavailable("encoding a book", e))?;
            if let Some(fields) = value.as_object_mut() {
                fields.remove("stock");
            }
            success.push(TxnOp::Put { key: catalog::book_key(&book.book_id), value });
            success.push(TxnOp::Put { key: format!("{STOCK_PREFIX}{}", book.book_id), value: book.stock.into() });
        }
        let txn = TxnRequest {
            compare: vec![Compare { key: SEEDED_KEY.into(), check: Check::Exists(false) }],
            success,
            failure: vec![],
        };
        let answer = self.db.txn(&txn).await.map_err(|e| unavailable("seeding the catalog", e))?;
        Ok(answer.succeeded)
    }

    /// Every book with its live stock (the checkout's [`CatalogSource::books`] leaves stock out).
    pub async fn books_with_stock(&self) -> Result<Vec<Book>, Unavailable> {
        let (books, stock) = futures::try_join!(self.books_without_stock(), async {
            self.db.list(STOCK_PREFIX).await.map_err(|e| unavailable("reading the stock", e))
        })?;
        let stock: HashMap<&str, u32> = stock
            .iter()
            .filter_map(|e| Some((e.key.strip_prefix(STOCK_PREFIX)?, u32::try_from(e.value.as_i64()?).ok()?)))
            .collect();
        Ok(books
            .iter()
            .map(|book| Book { stock: stock.get(book.book_id.as_str()).copied().unwrap_or(0), ..book.clone() })
            .collect())
    }

    /// Every book, with stock 0: read once a minute, not once a request.
    async fn books_without_stock(&self) -> Result<Arc<Vec<Book>>, Unavailable> {
        let cached = self.books.lock().ok().and_then(|cached| cached.clone());
        if let Some((read_at, books)) = cached
            && read_at.elapsed() < BOOKS_FRESH_FOR
        {
            return Ok(books);
        }
        let entries = self.db.list(BOOK_PREFIX).await.map_err(|e| unavailable("reading the catalog", e))?;
        let mut books = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut value = entry.value;
            if let Some(fields) = value.as_object_mut() {
                fields.insert("stock".into(), 0.into());
            }
            match serde_json::from_value::<Book>(value) {
                Ok(book) if catalog::book_id_from_key(&entry.key) == Some(book.book_id.as_str()) => books.push(book),
                Ok(_) => tracing::warn!(key = %entry.key, "skipping a book stored under another id"),
                Err(e) => tracing::warn!(key = %entry.key, error = %e, "skipping a malformed book"),
            }
        }
        let books = Arc::new(books);
        if let Ok(mut cached) = self.books.lock() {
            *cached = Some((Instant::now(), books.clone()));
        }
        Ok(books)
    }

    pub async fn bought_together(&self) -> Result<BoughtTogether, Unavailable> {
        match self.db.get(BOUGHT_TOGETHER_KEY).await.map_err(|e| unavailable("reading co-purchases", e))? {
            Some(entry) => serde_json::from_value(entry.value).map_err(|e| unavailable("decoding co-purchases", e)),
            None => Ok(BoughtTogether::new()),
        }
    }
}

/// The checkout prices and resolves the cart: it needs the books, not their stock.
impl CatalogSource for BooksDbCatalog {
    async fn books(&self) -> Result<Vec<Book>, Unavailable> {
        Ok(self.books_without_stock().await?.as_ref().clone())
    }
}

impl BookSource for BooksDbCatalog {
    async fn catalog(&self) -> Result<(Vec<Book>, BoughtTogether), Unavailable> {
        futures::try_join!(self.books_with_stock(), self.bought_together())
    }
}
