//! What the three services (transaction verification, fraud detection, suggestions) do with a
//! request from the orchestrator, whatever carries it (a Lambda invoke) and wherever their state
//! lives (DynamoDB): initialise an order, run one event, clear the order.
//!
//! A service keeps, per order, the order data it was initialised with and one clock per process
//! it runs (transaction verification runs two: `tv-a` and `tv-b`). Each process's state is its own
//! record, so the concurrent events a and b never overwrite each other's.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::card::CardFacts;
use crate::catalog::{self, Book};
use crate::checkout::{Address, CheckoutRequest, SuggestedBook, User};
use crate::events::{Event, Service};
use crate::fraud::OrderFacts;
use crate::vector_clock::VectorClock;

/// One cart line, resolved against the catalog when it could be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// `None` when no catalog book matches the line.
    pub book_id: Option<String>,
    /// The title, or what the shopper sent when no book matched.
    pub title: String,
    pub quantity: Option<i64>,
    pub unit_price_cents: Option<u32>,
}

/// The order as the services see it: everything the checks need, and no card number. Missing
/// fields are empty (and fail the checks that need them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OrderData {
    pub lines: Vec<OrderLine>,
    pub user: User,
    pub billing_address: Address,
    pub terms_accepted: bool,
    pub card: Option<CardFacts>,
    pub shipping_method: String,
    /// User comment and gift message.
    pub free_text: String,
}

impl OrderData {
    /// Builds the services' view of a checkout: lines resolved against `catalog`, the card
    /// reduced to its facts.
    pub fn from_request(request: &CheckoutRequest, catalog: &[Book]) -> Self {
        let lines = request
            .items
            .iter()
            .flatten()
            .map(|item| match catalog::resolve_item(catalog, item) {
                Ok(book) => OrderLine {
                    book_id: Some(book.book_id.clone()),
                    title: book.title.clone(),
                    quantity: item.quantity,
                    unit_price_cents: Some(book.price_cents),
                },
                Err(_) => OrderLine {
                    book_id: None,
                    title: item.name.clone().or(item.book_id.clone()).unwrap_or_default(),
                    quantity: item.quantity,
                    unit_price_cents: None,
                },
            })
            .collect();
        let card = request.credit_card.as_ref().map(|card| {
            CardFacts::new(
                card.number.as_deref().unwrap_or_default(),
                card.expiration_date.as_deref().unwrap_or_default(),
                card.cvv.as_deref().unwrap_or_default(),
            )
        });
        let free_text = [request.user_comment.as_deref(), request.gift_message.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
        OrderData {
            lines,
            user: request.user.clone().unwrap_or_default(),
            billing_address: request.billing_address.clone().unwrap_or_default(),
            terms_accepted: request.terms_and_conditions_accepted == Some(true),
            card,
            shipping_method: request.shipping_method.clone().unwrap_or_default(),
            free_text,
        }
    }

    /// The order's total, counting only lines with a known price and a positive quantity.
    pub fn amount_cents(&self) -> u64 {
        self.lines.iter().filter_map(|l| Some(u64::from(l.unit_price_cents?) * u64::try_from(l.quantity?).ok()?)).sum()
    }

    pub fn book_ids(&self) -> Vec<String> {
        self.lines.iter().filter_map(|l| l.book_id.clone()).collect()
    }

    /// What fraud detection scores.
    pub fn fraud_facts(&self) -> OrderFacts {
        let quantities = self.lines.iter().filter_map(|l| l.quantity).filter(|q| *q > 0);
        OrderFacts {
            name: self.user.name.clone().unwrap_or_default(),
            contact: self.user.contact.clone().unwrap_or_default(),
            amount_eur: self.amount_cents() as f64 / 100.0,
            total_quantity: u32::try_from(quantities.sum::<i64>()).unwrap_or(u32::MAX),
            lines: u32::try_from(self.lines.len()).unwrap_or(u32::MAX),
            shipping_method: self.shipping_method.clone(),
            free_text: self.free_text.clone(),
            card: self.card.clone(),
        }
    }
}

/// A request from the orchestrator to a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum ServiceRequest {
    /// Keep this order's data for the events to come.
    #[serde(rename_all = "camelCase")]
    Init { order_id: String, order: Box<OrderData> },
    /// Run one event, given the clock of its predecessors.
    #[serde(rename_all = "camelCase")]
    Run { order_id: String, event: Event, clock: VectorClock },
    /// The order is decided: forget it if nothing here is newer than the final clock.
    #[serde(rename_all = "camelCase")]
    Clear { order_id: String, final_clock: VectorClock },
}

impl ServiceRequest {
    pub fn order_id(&self) -> &str {
        match self {
            ServiceRequest::Init { order_id, .. }
            | ServiceRequest::Run { order_id, .. }
            | ServiceRequest::Clear { order_id, .. } => order_id,
        }
    }

    /// What is asked, in a word (`init`, `run a`…`run f`, `clear`), as traces name it.
    pub fn action(&self) -> &'static str {
        match self {
            ServiceRequest::Init { .. } => "init",
            ServiceRequest::Run { event, .. } => match event {
                Event::A => "run a",
                Event::B => "run b",
                Event::C => "run c",
                Event::D => "run d",
                Event::E => "run e",
                Event::F => "run f",
            },
            ServiceRequest::Clear { .. } => "clear",
        }
    }
}

/// A service's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum ServiceResponse {
    Initialized,
    Ran(EventRecord),
    Cleared,
    /// The request breaks the protocol (an event out of order, an unknown order, a clock newer
    /// than the final one); nothing was changed.
    Refused {
        code: String,
        message: String,
    },
}

/// An event that ran: its clock, and what the check found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub event: Event,
    pub service: Service,
    pub vector_clock: VectorClock,
    pub passed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Event f's suggestions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<SuggestedBook>,
}

/// What a check concluded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    pub reason: Option<String>,
    pub suggestions: Vec<SuggestedBook>,
}

impl Verdict {
    pub fn pass() -> Self {
        Self::default()
    }

    pub fn from_check(result: Result<(), String>) -> Self {
        Self { reason: result.err(), suggestions: Vec::new() }
    }
}

/// Everything a service keeps for one order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderState {
    pub order: OrderData,
    /// The clock of every event of this service that ran for the order.
    pub clocks: BTreeMap<Event, VectorClock>,
}

impl OrderState {
    /// The service's own clock for the order: the merge of its events' clocks.
    pub fn clock(&self) -> VectorClock {
        let mut own = VectorClock::new();
        for clock in self.clocks.values() {
            own.merge(clock);
        }
        own
    }
}

/// A failure of the store or of a dependency: the request may be retried.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

/// Where a service keeps its per-order state. Every change is one conditional write, so that no
/// change needs a read first and concurrent requests (a and b, a retry racing its original)
/// cannot undo each other.
pub trait StateStore: Send + Sync {
    /// Keeps the order's data. Keeping an order again changes nothing (a retried init).
    fn init(&self, order_id: &str, order: &OrderData) -> impl Future<Output = Result<(), Unavailable>> + Send;
    /// Records that `event` ran with `clock`, on three conditions: the order is kept here, `event`
    /// has not run, and the event before it in its process (if it has one) ran here with a clock
    /// that `incoming` covers. Answers the state after the write, or `None` when a condition
    /// failed and nothing was written.
    fn record(
        &self,
        order_id: &str,
        event: Event,
        incoming: &VectorClock,
        clock: &VectorClock,
    ) -> impl Future<Output = Result<Option<OrderState>, Unavailable>> + Send;
    /// The order's state, or `None` for an order not kept here.
    fn load(&self, order_id: &str) -> impl Future<Output = Result<Option<OrderState>, Unavailable>> + Send;
    /// Forgets the order if every clock recorded for it is ≤ `final_clock` (or it is not kept);
    /// answers whether it is gone.
    fn clear(
        &self,
        order_id: &str,
        final_clock: &VectorClock,
    ) -> impl Future<Output = Result<bool, Unavailable>> + Send;
}

/// A service's checks: what its events look at.
pub trait EventChecks: Send + Sync {
    fn service(&self) -> Service;
    fn check(&self, event: Event, order: &OrderData) -> impl Future<Output = Result<Verdict, Unavailable>> + Send;
}

/// Handles one request for the service whose checks are `checks`.
pub async fn handle<S: StateStore, C: EventChecks>(
    request: ServiceRequest,
    store: &S,
    checks: &C,
) -> Result<ServiceResponse, Unavailable> {
    match request {
        ServiceRequest::Init { order_id, order } => {
            store.init(&order_id, &order).await?;
            Ok(ServiceResponse::Initialized)
        }
        ServiceRequest::Run { order_id, event, clock } => run(&order_id, event, &clock, store, checks).await,
        ServiceRequest::Clear { order_id, final_clock } => {
            if store.clear(&order_id, &final_clock).await? {
                return Ok(ServiceResponse::Cleared);
            }
            let own = store.load(&order_id).await?.map(|state| state.clock()).unwrap_or_default();
            Ok(refused(
                "clock_ahead",
                format!(
                    "this service's clock {own} is not covered by the final clock {final_clock}; keeping the order"
                ),
            ))
        }
    }
}

/// Runs an event with one conditional write: the clock is computed from the incoming one alone,
/// which is right exactly when the store's conditions hold (the process's previous clock is
/// covered by the incoming one, so merging it in would change nothing). Only a refused write
/// costs a read, to tell the caller why.
async fn run<S: StateStore, C: EventChecks>(
    order_id: &str,
    event: Event,
    incoming: &VectorClock,
    store: &S,
    checks: &C,
) -> Result<ServiceResponse, Unavailable> {
    if event.service() != checks.service() {
        return Ok(refused("wrong_service", format!("event {event} is not run by {:?}", checks.service())));
    }
    let clock = match event.advance(&VectorClock::new(), incoming) {
        Ok(clock) => clock,
        Err(violation) => return Ok(refused("out_of_order", violation.to_string())),
    };
    if clock.get(event.process()) != event.seq() {
        return Ok(refused(
            "out_of_order",
            format!("the clock {incoming} counts more events of {} than come before event {event}", event.process()),
        ));
    }
    let (state, clock) = match store.record(order_id, event, incoming, &clock).await? {
        Some(state) => (state, clock),
        None => match store.load(order_id).await? {
            None => return Ok(refused("unknown_order", format!("order {order_id} was not initialised here"))),
            // A retry of an event that ran: its clock again, and the check again.
            Some(state) => match state.clocks.get(&event).cloned() {
                Some(recorded) => (state, recorded),
                None => {
                    let previous = event.previous_in_process().map_or_else(String::new, |p| p.to_string());
                    return Ok(refused(
                        "out_of_order",
                        format!(
                            "event {event} needs event {previous} to have run here with a clock that {incoming} covers"
                        ),
                    ));
                }
            },
        },
    };
    let verdict = checks.check(event, &state.order).await?;
    Ok(ServiceResponse::Ran(EventRecord {
        event,
        service: checks.service(),
        vector_clock: clock,
        passed: verdict.reason.is_none(),
        reason: verdict.reason,
        suggestions: verdict.suggestions,
    }))
}

fn refused(code: &str, message: String) -> ServiceResponse {
    ServiceResponse::Refused { code: code.into(), message }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::events::PROCESSES;

    /// A [`StateStore`] in memory, for unit tests.
    #[derive(Default)]
    pub struct MemoryStore(Mutex<BTreeMap<String, OrderState>>);

    impl StateStore for MemoryStore {
        async fn init(&self, order_id: &str, order: &OrderData) -> Result<(), Unavailable> {
            let mut orders = self.0.lock().unwrap();
            orders.entry(order_id.into()).or_insert_with(|| OrderState { order: order.clone(), ..Default::default() });
            Ok(())
        }

        async fn record(
            &self,
            order_id: &str,
            event: Event,
            incoming: &VectorClock,
            clock: &VectorClock,
        ) -> Result<Option<OrderState>, Unavailable> {
            let mut orders = self.0.lock().unwrap();
            let Some(state) = orders.get_mut(order_id) else { return Ok(None) };
            let previous_covered = event
                .previous_in_process()
                .is_none_or(|previous| state.clocks.get(&previous).is_some_and(|c| c.le(incoming)));
            if state.clocks.contains_key(&event) || !previous_covered {
                return Ok(None);
            }
            state.clocks.insert(event, clock.clone());
            Ok(Some(state.clone()))
        }

        async fn load(&self, order_id: &str) -> Result<Option<OrderState>, Unavailable> {
            Ok(self.0.lock().unwrap().get(order_id).cloned())
        }

        async fn clear(&self, order_id: &str, final_clock: &VectorClock) -> Result<bool, Unavailable> {
            let mut orders = self.0.lock().unwrap();
            if orders.get(order_id).is_some_and(|state| !state.clock().le(final_clock)) {
                return Ok(false);
            }
            orders.remove(order_id);
            Ok(true)
        }
    }

    /// Checks that fail the events listed.
    struct Failing(Service, Vec<Event>);

    impl EventChecks for Failing {
        fn service(&self) -> Service {
            self.0
        }

        async fn check(&self, event: Event, _: &OrderData) -> Result<Verdict, Unavailable> {
            Ok(Verdict::from_check(if self.1.contains(&event) { Err(format!("{event} failed")) } else { Ok(()) }))
        }
    }

    /// The fakes never wait, so any executor will do; other modules' tests use it from here.
    pub use futures::executor::block_on;

    fn run_event(store: &MemoryStore, checks: &Failing, event: Event, clock: &VectorClock) -> ServiceResponse {
        block_on(handle(ServiceRequest::Run { order_id: "o1".into(), event, clock: clock.clone() }, store, checks))
            .unwrap()
    }

    fn ran(response: ServiceResponse) -> EventRecord {
        match response {
            ServiceResponse::Ran(record) => record,
            other => panic!("expected Ran, got {other:?}"),
        }
    }

    #[test]
    fn transaction_verification_runs_a_and_b_concurrently_and_c_after_a() {
        let store = MemoryStore::default();
        let tv = Failing(Service::TransactionVerification, vec![]);
        let init = ServiceRequest::Init { order_id: "o1".into(), order: Box::default() };
        assert_eq!(block_on(handle(init, &store, &tv)).unwrap(), ServiceResponse::Initialized);
        let zero = VectorClock::zero(PROCESSES);
        let a = ran(run_event(&store, &tv, Event::A, &zero));
        let b = ran(run_event(&store, &tv, Event::B, &zero));
        assert!(a.vector_clock.concurrent_with(&b.vector_clock), "{} vs {}", a.vector_clock, b.vector_clock);
        let c = ran(run_event(&store, &tv, Event::C, &a.vector_clock));
        assert!(a.vector_clock.happened_before(&c.vector_clock));
        assert!(b.vector_clock.concurrent_with(&c.vector_clock));
    }

    #[test]
    fn an_event_out_of_order_is_refused_and_changes_nothing() {
        let store = MemoryStore::default();
        let tv = Failing(Service::TransactionVerification, vec![]);
        block_on(handle(ServiceRequest::Init { order_id: "o1".into(), order: Box::default() }, &store, &tv)).unwrap();
        let response = run_event(&store, &tv, Event::C, &VectorClock::zero(PROCESSES));
        assert!(matches!(&response, ServiceResponse::Refused { code, .. } if code == "out_of_order"), "{response:?}");
        assert!(block_on(store.load("o1")).unwrap().unwrap().clocks.is_empty());
        let fraud = Failing(Service::FraudDetection, vec![]);
        let response = run_event(&store, &fraud, Event::A, &VectorClock::zero(PROCESSES));
        assert!(matches!(response, ServiceResponse::Refused { code, .. } if code == "wrong_service"));
        let response = block_on(handle(
            ServiceRequest::Run { order_id: "nope".into(), event: Event::A, clock: VectorClock::new() },
            &store,
            &tv,
        ))
        .unwrap();
        assert!(matches!(response, ServiceResponse::Refused { code, .. } if code == "unknown_order"));
    }

    #[test]
    fn a_clock_that_claims_an_event_which_never_ran_here_is_refused() {
        let store = MemoryStore::default();
        let tv = Failing(Service::TransactionVerification, vec![]);
        block_on(handle(ServiceRequest::Init { order_id: "o1".into(), order: Box::default() }, &store, &tv)).unwrap();
        let mut forged = VectorClock::zero(PROCESSES);
        forged.tick("tv-a");
        let response = run_event(&store, &tv, Event::C, &forged);
        assert!(matches!(&response, ServiceResponse::Refused { code, .. } if code == "out_of_order"), "{response:?}");
        // A clock that already counts c cannot run c.
        forged.tick("tv-a");
        let response = run_event(&store, &tv, Event::C, &forged);
        assert!(matches!(&response, ServiceResponse::Refused { code, .. } if code == "out_of_order"), "{response:?}");
        assert!(block_on(store.load("o1")).unwrap().unwrap().clocks.is_empty());
    }

    #[test]
    fn a_retried_event_gets_its_recorded_clock_even_after_later_events() {
        let store = MemoryStore::default();
        let tv = Failing(Service::TransactionVerification, vec![]);
        block_on(handle(ServiceRequest::Init { order_id: "o1".into(), order: Box::default() }, &store, &tv)).unwrap();
        let zero = VectorClock::zero(PROCESSES);
        let a = ran(run_event(&store, &tv, Event::A, &zero));
        let c = ran(run_event(&store, &tv, Event::C, &a.vector_clock));
        assert_eq!(ran(run_event(&store, &tv, Event::A, &zero)), a);
        assert_eq!(ran(run_event(&store, &tv, Event::C, &a.vector_clock)), c);
    }

    #[test]
    fn a_retried_event_gets_the_same_record() {
        let store = MemoryStore::default();
        let tv = Failing(Service::TransactionVerification, vec![Event::A]);
        block_on(handle(ServiceRequest::Init { order_id: "o1".into(), order: Box::default() }, &store, &tv)).unwrap();
        let first = ran(run_event(&store, &tv, Event::A, &VectorClock::new()));
        assert!(!first.passed && first.reason.as_deref() == Some("a failed"));
        assert_eq!(ran(run_event(&store, &tv, Event::A, &VectorClock::new())), first);
    }

    #[test]
    fn clear_forgets_only_when_the_final_clock_covers_the_service() {
        let store = MemoryStore::default();
        let tv = Failing(Service::TransactionVerification, vec![]);
        block_on(handle(ServiceRequest::Init { order_id: "o1".into(), order: Box::default() }, &store, &tv)).unwrap();
        let a = ran(run_event(&store, &tv, Event::A, &VectorClock::new()));
        let b = ran(run_event(&store, &tv, Event::B, &VectorClock::new()));
        let clear = |final_clock: &VectorClock| {
            block_on(handle(
                ServiceRequest::Clear { order_id: "o1".into(), final_clock: final_clock.clone() },
                &store,
                &tv,
            ))
            .unwrap()
        };
        // a's clock alone does not cover b.
        assert!(matches!(clear(&a.vector_clock), ServiceResponse::Refused { code, .. } if code == "clock_ahead"));
        assert!(block_on(store.load("o1")).unwrap().is_some());
        let mut both = a.vector_clock.clone();
        both.merge(&b.vector_clock);
        assert_eq!(clear(&both), ServiceResponse::Cleared);
        assert!(block_on(store.load("o1")).unwrap().is_none());
    }

    #[test]
    fn order_data_keeps_no_card_number_and_prices_the_cart() {
        let request: CheckoutRequest = serde_json::from_value(serde_json::json!({
            "creditCard": {"number": "4111 1111 1111 1111", "expirationDate": "12/30", "cvv": "123"},
            "items": [{"bookId": "dune", "quantity": 2}, {"name": "No Such Book", "quantity": 1}],
            "userComment": "quick please"
        }))
        .unwrap();
        let catalog = catalog::default_catalog().unwrap();
        let order = OrderData::from_request(&request, &catalog);
        let stored = serde_json::to_string(&order).unwrap();
        assert!(!stored.contains("4111 1111 1111 1111") && !stored.contains("4111111111111111"));
        let dune = catalog::find_by_id(&catalog, "dune").unwrap();
        assert_eq!(order.amount_cents(), 2 * u64::from(dune.price_cents));
        assert_eq!(order.book_ids(), vec!["dune".to_string()]);
        assert_eq!(order.lines[1].book_id, None);
        assert_eq!(order.fraud_facts().total_quantity, 3);
    }
}
