//! The bookstore's domain, free of AWS and Lambda types so it is tested without a network.
//!
//! - [`checkout`]: the checkout request and response of the course's API
//! - [`vector_clock`]: vector clocks and their causal order
//! - [`events`]: the checkout's six events and the partial order the services enforce
//! - [`card`]: card facts (Luhn, expiry, CVV) and masking — the full number is never kept
//! - [`verification`]: transaction verification's checks (events a, b, c)
//! - [`checks`]: each service's checks as the service module runs them
//! - [`clock`]: where "now" comes from, asked on every use
//! - [`idempotency`]: one checkout per `Idempotency-Key`, its answer replayed to retries
//! - [`orchestrator`]: the checkout: the event graph across the services, the decision, the order
//! - [`order`]: an order's states and the transitions between them
//! - [`sweeper`]: no stranded orders: an approved order whose message was never sent is queued or failed
//! - [`execution`]: the order executor: a two-phase commit across stock and payment, exactly once
//! - [`port_error`]: a port's failure by kind: transient, permanent, not found
//! - [`payment`]: the payment participant: authorise, charge, release
//! - [`service`]: what a service does with a request: init, run an event (enforcing the order), clear
//! - [`catalog`]: books, the default catalog (`catalog/books.json`), its validation, lookups by id or title
//! - [`suggestions`]: books to suggest for a cart (event f), ranked by co-purchases, author, genre

pub mod card;
pub mod catalog;
pub mod checkout;
pub mod checks;
pub mod clock;
pub mod events;
pub mod execution;
pub mod fraud;
pub mod idempotency;
pub mod orchestrator;
pub mod order;
pub mod payment;
pub mod port_error;
pub mod service;
pub mod suggestions;
pub mod sweeper;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod vector_clock;
pub mod verification;
