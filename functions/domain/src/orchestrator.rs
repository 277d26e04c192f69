//! The checkout orchestrator: runs an order's event graph across the three services with vector
//! clocks, decides, records the order and queues it when approved.
//!
//! The graph runs as two chains, a → c and b → d, side by side, then e, then f. A failed event
//! rejects the order: no later event starts (the other chain stops before its next event), but an
//! event already running is awaited, so that its clock is part of the final clock and the
//! services can clear the order.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::catalog::Book;
use crate::checkout::{BodyError, CheckoutResponse, Decision, SuggestedBook, parse_checkout};
use crate::events::{Event, PROCESSES, Service};
use crate::execution::TrailEntry;
use crate::order::OrderStatus;
use crate::service::{EventRecord, OrderData, OrderLine, ServiceRequest, ServiceResponse, Unavailable};
use crate::vector_clock::VectorClock;

/// Calls a service (a Lambda invoke, in production).
pub trait ServiceClient: Send + Sync {
    fn call(
        &self,
        service: Service,
        request: &ServiceRequest,
    ) -> impl Future<Output = Result<ServiceResponse, Unavailable>> + Send;
}

/// The orders table.
pub trait OrderStore: Send + Sync {
    /// Records a new order, unless one with its id is recorded already (a conditional write):
    /// then that one is answered, untouched.
    fn create(&self, order: &OrderRecord) -> impl Future<Output = Result<Recorded, Unavailable>> + Send;
}

/// What recording an order found.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    New,
    /// A checkout with the same id (the same `Idempotency-Key` and body) recorded this before
    /// it could answer.
    Existing(Box<OrderRecord>),
}

/// The order queue.
pub trait OrderQueue: Send + Sync {
    fn enqueue(&self, order_id: &str) -> impl Future<Output = Result<(), Unavailable>> + Send;
}

/// The catalog (the books database): the books to resolve and price the cart with; their stock
/// is not needed and may be stale.
pub trait CatalogSource: Send + Sync {
    fn books(&self) -> impl Future<Output = Result<Vec<Book>, Unavailable>> + Send;
}

/// One change of an order's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: OrderStatus,
    /// RFC 3339 time.
    pub at: String,
}

/// An order as the orders table keeps it and `GET /orders/{orderId}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRecord {
    pub order_id: String,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    pub amount_cents: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub suggested_books: Vec<SuggestedBook>,
    pub history: Vec<StatusChange>,
    pub events: Vec<EventRecord>,
    pub final_clock: VectorClock,
    /// The two-phase commit as the executors ran it: empty until one takes the order up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trail: Vec<TrailEntry>,
}

/// Why a checkout got no decision.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The body cannot be a checkout: a 4xx.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// A service or store failed: a 5xx; the shopper may try again.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// What the orchestrator talks to.
pub struct Dependencies<'a, S, O, Q, C> {
    pub services: &'a S,
    pub orders: &'a O,
    pub queue: &'a Q,
    pub catalog: &'a C,
}

/// Runs one checkout. `order_id` is new, or the id an earlier run of the same keyed checkout
/// used (then that run's recorded order is answered); `now` is the RFC 3339 time of the decision.
pub async fn checkout<S, O, Q, C>(
    deps: &Dependencies<'_, S, O, Q, C>,
    order_id: String,
    now: &str,
    body: &[u8],
) -> Result<CheckoutResponse, CheckoutError>
where
    S: ServiceClient,
    O: OrderStore,
    Q: OrderQueue,
    C: CatalogSource,
{
    let request = parse_checkout(body)?;
    let catalog = deps.catalog.books().await?;
    let order = OrderData::from_request(&request, &catalog);

    let services = [Service::TransactionVerification, Service::FraudDetection, Service::Suggestions];
    let init = ServiceRequest::Init { order_id: order_id.clone(), order: Box::new(order.clone()) };
    for answer in futures::future::join_all(services.map(|s| call(deps.services, s, &init))).await {
        answer?;
    }

    let graph = Graph { services: deps.services, order_id: &order_id, rejected: AtomicBool::new(false) };
    let Ran { records, failure } = graph.run().await;
    let mut final_clock = VectorClock::zero(PROCESSES);
    for record in &records {
        final_clock.merge(&record.vector_clock);
    }
    // Every service forgets the order whatever the outcome, while the decision is recorded.
    let clear = ServiceRequest::Clear { order_id: order_id.clone(), final_clock: final_clock.clone() };
    let clear_all = async {
        let answers = futures::future::join_all(services.map(|s| call(deps.services, s, &clear))).await;
        for (service, answer) in services.iter().zip(answers) {
            if let Err(e) = answer {
                tracing::error!(order_id = %order_id, ?service, error = %e, "a service did not clear the order");
            }
        }
    };
    let decide = async {
        if let Some(failure) = failure {
            return Err(failure.into());
        }
        decide(deps, &order_id, order, records, final_clock.clone(), now).await
    };
    futures::join!(clear_all, decide).1
}

/// Records the decision the events reached and queues an approved order.
async fn decide<S, O: OrderStore, Q: OrderQueue, C>(
    deps: &Dependencies<'_, S, O, Q, C>,
    order_id: &str,
    order: OrderData,
    records: Vec<EventRecord>,
    final_clock: VectorClock,
    now: &str,
) -> Result<CheckoutResponse, CheckoutError> {
    let rejection = records.iter().find(|r| !r.passed);
    let suggested_books = match rejection {
        Some(_) => Vec::new(),
        None => records.iter().find(|r| r.event == Event::F).map(|r| r.suggestions.clone()).unwrap_or_default(),
    };
    let status = if rejection.is_some() { OrderStatus::Rejected } else { OrderStatus::Approved };
    let reason = rejection.and_then(|r| r.reason.clone());
    // An approved order is recorded `queued` at once, in the same write (its message is not sent
    // yet, so nothing can tell the two states apart): one emulator call less per checkout, and no
    // order can be left `approved` between two writes.
    let mut history = vec![StatusChange { status, at: now.to_string() }];
    if status == OrderStatus::Approved {
        history.push(StatusChange { status: OrderStatus::Queued, at: now.to_string() });
    }
    let record = OrderRecord {
        order_id: order_id.to_string(),
        status: if status == OrderStatus::Approved { OrderStatus::Queued } else { status },
        amount_cents: order.amount_cents(),
        items: order.lines,
        reason: reason.clone(),
        suggested_books: suggested_books.clone(),
        history,
        events: records,
        final_clock: final_clock.clone(),
        trail: Vec::new(),
    };
    if let Recorded::Existing(existing) = deps.orders.create(&record).await? {
        // Its decision stands, and it was queued or the sweeper queues it.
        tracing::info!(order_id, status = existing.status.as_str(), "order recorded before; answering it");
        return Ok(response_of(&existing));
    }
    tracing::info!(order_id = %order_id, status = status.as_str(), vector_clock = %final_clock, "order decided");
    if status == OrderStatus::Approved
        && let Err(e) = deps.queue.enqueue(order_id).await
    {
        // The order is recorded `queued`: the sweeper sends its message (see `sweeper`), so the
        // shopper is told the decision, which stands.
        tracing::warn!(order_id, error = %e, "an approved order could not be queued; the sweeper will queue it");
    }
    Ok(response_of(&record))
}

/// The answer a recorded order gives its shopper.
fn response_of(order: &OrderRecord) -> CheckoutResponse {
    let rejected = order.status == OrderStatus::Rejected;
    CheckoutResponse {
        order_id: order.order_id.clone(),
        status: if rejected { Decision::Rejected } else { Decision::Approved },
        suggested_books: if rejected { Vec::new() } else { order.suggested_books.clone() },
        reason: order.reason.clone().filter(|_| rejected),
    }
}

/// Calls a service and turns a refusal into a failure: the orchestrator itself keeps the protocol,
/// so a refusal means something is wrong on the service's side.
async fn call<S: ServiceClient>(
    services: &S,
    service: Service,
    request: &ServiceRequest,
) -> Result<ServiceResponse, Unavailable> {
    match services.call(service, request).await? {
        ServiceResponse::Refused { code, message } => {
            Err(Unavailable(format!("{service:?} refused: {code}: {message}")))
        }
        answer => Ok(answer),
    }
}

/// One run of the event graph for one order.
struct Graph<'a, S> {
    services: &'a S,
    order_id: &'a str,
    /// Set when an event fails, so that no later event starts.
    rejected: AtomicBool,
}

/// The events that ran, and the failure that stopped the run if one did.
#[derive(Default)]
struct Ran {
    records: Vec<EventRecord>,
    failure: Option<Unavailable>,
}

impl Ran {
    /// Adds what a later or parallel part of the run did; the first failure is kept.
    fn absorb(&mut self, other: Ran) {
        self.records.extend(other.records);
        if let Some(failure) = other.failure {
            self.failure.get_or_insert(failure);
        }
    }
}

impl<S: ServiceClient> Graph<'_, S> {
    async fn run(&self) -> Ran {
        let zero = VectorClock::zero(PROCESSES);
        let (left, right) =
            futures::join!(self.chain(&[Event::A, Event::C], &zero), self.chain(&[Event::B, Event::D], &zero));
        let mut ran = left;
        ran.absorb(right);
        if ran.failure.is_some() || self.rejected.load(Ordering::SeqCst) {
            return ran;
        }
        let mut clock = zero;
        for record in ran.records.iter().filter(|r| matches!(r.event, Event::C | Event::D)) {
            clock.merge(&record.vector_clock);
        }
        ran.absorb(self.chain(&[Event::E, Event::F], &clock).await);
        ran
    }

    /// Runs `events` one after the other, each given the previous one's clock; stops after a
    /// failed event, or before an event once the order is rejected.
    async fn chain(&self, events: &[Event], start: &VectorClock) -> Ran {
        let mut ran = Ran::default();
        let mut clock = start.clone();
        for event in events {
            if self.rejected.load(Ordering::SeqCst) {
                break;
            }
            let request =
                ServiceRequest::Run { order_id: self.order_id.to_string(), event: *event, clock: clock.clone() };
            let record = match call(self.services, event.service(), &request).await {
                Ok(ServiceResponse::Ran(record)) => record,
                Ok(other) => {
                    ran.failure = Some(Unavailable(format!("unexpected answer to event {event}: {other:?}")));
                    return ran;
                }
                Err(e) => {
                    ran.failure = Some(e);
                    return ran;
                }
            };
            tracing::info!(
                order_id = %self.order_id,
                event = %event,
                passed = record.passed,
                vector_clock = %record.vector_clock,
                "event ran"
            );
            clock = record.vector_clock.clone();
            let passed = record.passed;
            ran.records.push(record);
            if !passed {
                self.rejected.store(true, Ordering::SeqCst);
                break;
            }
        }
        ran
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::card::YearMonth;
    use crate::catalog::default_catalog;
    use crate::checks::{BookSource, FraudDetection, Suggestions, TransactionVerification};
    use crate::fraud::FraudModel;
    use crate::service::tests::{MemoryStore, block_on};
    use crate::service::{OrderState, StateStore, handle};
    use crate::suggestions::BoughtTogether;
    use crate::testing::MemoryQueue;

    struct Catalog;

    impl BookSource for Catalog {
        async fn catalog(&self) -> Result<(Vec<Book>, BoughtTogether), Unavailable> {
            Ok((default_catalog().map_err(|e| Unavailable(e.to_string()))?, BoughtTogether::new()))
        }
    }

    impl CatalogSource for Catalog {
        async fn books(&self) -> Result<Vec<Book>, Unavailable> {
            default_catalog().map_err(|e| Unavailable(e.to_string()))
        }
    }

    /// The three services in process, each with its own state store, as the functions run them.
    struct InProcess {
        tv: (MemoryStore, TransactionVerification<YearMonth>),
        fraud: (MemoryStore, FraudDetection),
        suggestions: (MemoryStore, Suggestions<Catalog>),
        calls: Mutex<Vec<(Service, String)>>,
    }

    impl InProcess {
        fn new() -> Self {
            Self {
                tv: (MemoryStore::default(), TransactionVerification { clock: YearMonth { year: 2026, month: 11 } }),
                fraud: (MemoryStore::default(), FraudDetection { model: FraudModel::embedded().unwrap() }),
                suggestions: (MemoryStore::default(), Suggestions { books: Catalog }),
                calls: Mutex::default(),
            }
        }

        fn state(&self, service: Service, order_id: &str) -> Option<OrderState> {
            let store = match service {
                Service::TransactionVerification => &self.tv.0,
                Service::FraudDetection => &self.fraud.0,
                Service::Suggestions => &self.suggestions.0,
            };
            block_on(store.load(order_id)).unwrap()
        }
    }

    impl ServiceClient for InProcess {
        async fn call(&self, service: Service, request: &ServiceRequest) -> Result<ServiceResponse, Unavailable> {
            let action = serde_json::to_value(request).unwrap()["action"].as_str().unwrap().to_string();
            self.calls.lock().unwrap().push((service, action));
            let request = request.clone();
            match service {
                Service::TransactionVerification => handle(request, &self.tv.0, &self.tv.1).await,
                Service::FraudDetection => handle(request, &self.fraud.0, &self.fraud.1).await,
                Service::Suggestions => handle(request, &self.suggestions.0, &self.suggestions.1).await,
            }
        }
    }

    #[derive(Default)]
    struct Orders(Mutex<Vec<OrderRecord>>);

    impl OrderStore for Orders {
        async fn create(&self, order: &OrderRecord) -> Result<Recorded, Unavailable> {
            let mut orders = self.0.lock().unwrap();
            if let Some(existing) = orders.iter().find(|o| o.order_id == order.order_id) {
                return Ok(Recorded::Existing(Box::new(existing.clone())));
            }
            orders.push(order.clone());
            Ok(Recorded::New)
        }
    }

    fn body(overrides: serde_json::Value) -> Vec<u8> {
        let mut body = json!({
            "user": {"name": "Ada Lovelace", "contact": "ada.lovelace@example.org"},
            "creditCard": {"number": "4111 1111 1111 1111", "expirationDate": "12/30", "cvv": "123"},
            "items": [{"name": "Dune", "quantity": 1}, {"bookId": "the-hobbit", "quantity": 1}],
            "billingAddress": {"street": "Narva mnt 18", "city": "Tartu", "zip": "51009", "country": "Estonia"},
            "shippingMethod": "Standard",
            "termsAccepted": true
        });
        for (key, value) in overrides.as_object().unwrap() {
            body[key] = value.clone();
        }
        body.to_string().into_bytes()
    }

    fn run(
        world: &(InProcess, Orders, MemoryQueue),
        order_id: &str,
        body: &[u8],
    ) -> Result<CheckoutResponse, CheckoutError> {
        let deps = Dependencies { services: &world.0, orders: &world.1, queue: &world.2, catalog: &Catalog };
        block_on(checkout(&deps, order_id.into(), "2026-11-24T00:00:00Z", body))
    }

    fn world() -> (InProcess, Orders, MemoryQueue) {
        (InProcess::new(), Orders::default(), MemoryQueue::default())
    }

    #[test]
    fn an_approved_order_is_recorded_queued_and_suggests_books_not_in_the_cart() {
        let w = world();
        let response = run(&w, "o-1", &body(json!({}))).unwrap();
        assert_eq!(response.status, Decision::Approved, "{response:?}");
        assert_eq!(response.suggested_books.len(), 3);
        assert!(response.suggested_books.iter().all(|b| b.book_id != "dune" && b.book_id != "the-hobbit"));
        let orders = w.1.0.lock().unwrap();
        let order = &orders[0];
        assert_eq!(order.status, OrderStatus::Queued);
        assert_eq!(
            order.history.iter().map(|h| h.status).collect::<Vec<_>>(),
            [OrderStatus::Approved, OrderStatus::Queued]
        );
        assert_eq!(*w.2.sent.lock().unwrap(), ["o-1"]);

        // The recorded clocks capture exactly the graph.
        let clock = |e: Event| &order.events.iter().find(|r| r.event == e).unwrap().vector_clock;
        for x in Event::ALL {
            for y in Event::ALL {
                assert_eq!(x.precedes(y), clock(x).happened_before(clock(y)), "{x} vs {y}");
            }
        }
        // Every service forgot the order.
        for service in [Service::TransactionVerification, Service::FraudDetection, Service::Suggestions] {
            assert!(w.0.state(service, "o-1").is_none(), "{service:?} kept the order");
        }
    }

    #[test]
    fn each_failed_event_rejects_with_its_reason_and_stops_later_events() {
        let cases = [
            (json!({"items": []}), Event::A, "the cart is empty"),
            (json!({"termsAccepted": false}), Event::B, "terms"),
            (
                json!({"creditCard": {"number": "4111 1111 1111 1112", "expirationDate": "12/30", "cvv": "123"}}),
                Event::C,
                "checksum",
            ),
            (json!({"user": {"name": "Ada", "contact": "ada@yopmail.com"}}), Event::D, "disposable"),
            (
                json!({"items": [{"name": "Dune", "quantity": 90}, {"name": "Emma", "quantity": 90}], "shippingMethod": "Express", "user": {"name": "Z", "contact": "z77123456@example.org"}}),
                Event::E,
                "fraudulent",
            ),
        ];
        for (overrides, failing, reason) in cases {
            let w = world();
            let response = run(&w, "o-2", &body(overrides)).unwrap();
            assert_eq!(response.status, Decision::Rejected, "{failing}: {response:?}");
            assert!(response.reason.as_deref().is_some_and(|r| r.contains(reason)), "{failing}: {:?}", response.reason);
            assert!(response.suggested_books.is_empty());
            let orders = w.1.0.lock().unwrap();
            let order = &orders[0];
            assert_eq!(order.status, OrderStatus::Rejected);
            assert!(w.2.sent.lock().unwrap().is_empty(), "rejected orders are not queued");
            assert!(order.events.iter().all(|r| !failing.precedes(r.event)), "{failing}: an event after it ran");
            assert!(!order.events.iter().any(|r| r.event == Event::F));
            for service in [Service::TransactionVerification, Service::FraudDetection, Service::Suggestions] {
                assert!(w.0.state(service, "o-2").is_none(), "{failing}: {service:?} kept the order");
            }
        }
    }

    #[test]
    fn an_approved_order_that_cannot_be_queued_stays_queued_for_the_sweeper_and_is_approved() {
        let w = world();
        w.2.down.store(true, Ordering::SeqCst);
        let response = run(&w, "o-4", &body(json!({}))).unwrap();
        assert_eq!(response.status, Decision::Approved);
        assert_eq!(w.1.0.lock().unwrap()[0].status, OrderStatus::Queued);
        assert!(w.2.sent.lock().unwrap().is_empty());
    }

    #[test]
    fn a_checkout_whose_order_was_recorded_before_answers_that_order_and_records_nothing() {
        let w = world();
        let first = run(&w, "o-5", &body(json!({}))).unwrap();
        // The same id again (a keyed retry after the first run died before answering), with a
        // body the services would reject: the recorded decision stands.
        let retry = run(&w, "o-5", &body(json!({"termsAccepted": false}))).unwrap();
        assert_eq!(retry, first);
        assert_eq!(w.1.0.lock().unwrap().len(), 1);
        assert_eq!(*w.2.sent.lock().unwrap(), ["o-5"], "queued once");
    }

    #[test]
    fn a_bad_body_reaches_no_service() {
        let w = world();
        let err = run(&w, "o-3", b"{\"items\": 5}").unwrap_err();
        assert!(matches!(err, CheckoutError::Body(BodyError::WrongShape(_))), "{err}");
        assert!(w.0.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn concurrent_checkouts_keep_their_own_clocks() {
        let w = world();
        let deps = Dependencies { services: &w.0, orders: &w.1, queue: &w.2, catalog: &Catalog };
        let (x, y) = (body(json!({})), body(json!({"items": [{"name": "Emma", "quantity": 2}]})));
        let (first, second) = block_on(async {
            futures::join!(checkout(&deps, "x".into(), "t", &x), checkout(&deps, "y".into(), "t", &y))
        });
        assert_eq!((first.unwrap().status, second.unwrap().status), (Decision::Approved, Decision::Approved));
        for order in w.1.0.lock().unwrap().iter() {
            let f = order.events.iter().find(|r| r.event == Event::F).unwrap();
            assert_eq!(
                f.vector_clock, order.final_clock,
                "{}: f has seen every event of its own order only",
                order.order_id
            );
            assert_eq!(
                order.final_clock.iter().map(|(_, c)| c).collect::<Vec<_>>(),
                [2, 1, 2, 1],
                "fraud, suggestions, tv-a, tv-b"
            );
        }
    }
}
