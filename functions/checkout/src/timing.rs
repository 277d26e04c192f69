//! Where a checkout spends its time, per hop, answered in a `Server-Timing` header so that the
//! benchmark can break a checkout's latency down. Each port is wrapped in [`Timed`], which adds
//! the duration of every call to the running request's [`Timings`]; [`server_timing`] is the
//! middleware that gives each request its own and answers them.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use bookstore_domain::catalog::Book;
use bookstore_domain::events::Service;
use bookstore_domain::orchestrator::{CatalogSource, OrderQueue, OrderRecord, OrderStore, Recorded, ServiceClient};
use bookstore_domain::service::{ServiceRequest, ServiceResponse, Unavailable};

/// Time spent in each hop during one checkout. Calls that run side by side both count, so the
/// hops can add up to more than the checkout took.
#[derive(Debug, Default, Clone)]
pub struct Timings {
    pub books_db: Duration,
    pub transaction_verification: Duration,
    pub fraud_detection: Duration,
    pub suggestions: Duration,
    pub dynamodb: Duration,
    pub sqs: Duration,
}

tokio::task_local! {
    pub static TIMINGS: RefCell<Timings>;
}

impl Timings {
    /// The `Server-Timing` header value, durations in milliseconds.
    pub fn header(&self, total: Duration) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "total;dur={:.2}, books-db;dur={:.2}, transaction-verification;dur={:.2}, fraud-detection;dur={:.2}, suggestions;dur={:.2}, dynamodb;dur={:.2}, sqs;dur={:.2}",
            ms(total),
            ms(self.books_db),
            ms(self.transaction_verification),
            ms(self.fraud_detection),
            ms(self.suggestions),
            ms(self.dynamodb),
            ms(self.sqs)
        )
    }
}

/// Runs the request with fresh [`TIMINGS`] and adds them to its answer as `Server-Timing`.
pub async fn server_timing(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let (mut response, timings) = TIMINGS
        .scope(RefCell::new(Timings::default()), async {
            let response = next.run(request).await;
            (response, TIMINGS.with(|t| t.borrow().clone()))
        })
        .await;
    if let Ok(value) = timings.header(started.elapsed()).parse() {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// A port whose calls are timed into [`TIMINGS`].
pub struct Timed<P>(pub P);

async fn timed<T>(record: impl FnOnce(&mut Timings, Duration), call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = call.await;
    let elapsed = started.elapsed();
    // Outside a timed request (none here, but harmless) there is nothing to record into.
    let _ = TIMINGS.try_with(|t| record(&mut t.borrow_mut(), elapsed));
    out
}

impl<P: ServiceClient> ServiceClient for Timed<P> {
    async fn call(&self, service: Service, request: &ServiceRequest) -> Result<ServiceResponse, Unavailable> {
        let record = move |t: &mut Timings, d| match service {
            Service::TransactionVerification => t.transaction_verification += d,
            Service::FraudDetection => t.fraud_detection += d,
            Service::Suggestions => t.suggestions += d,
        };
        timed(record, self.0.call(service, request)).await
    }
}

impl<P: OrderStore> OrderStore for Timed<P> {
    async fn create(&self, order: &OrderRecord) -> Result<Recorded, Unavailable> {
        timed(|t, d| t.dynamodb += d, self.0.create(order)).await
    }
}

impl<P: OrderQueue> OrderQueue for Timed<P> {
    async fn enqueue(&self, order_id: &str) -> Result<(), Unavailable> {
        timed(|t, d| t.sqs += d, self.0.enqueue(order_id)).await
    }
}

impl<P: CatalogSource> CatalogSource for Timed<P> {
    async fn books(&self) -> Result<Vec<Book>, Unavailable> {
        timed(|t, d| t.books_db += d, self.0.books()).await
    }
}
