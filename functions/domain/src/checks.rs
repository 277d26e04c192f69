//! Each service's checks, as the [`EventChecks`] the request handling runs.

use std::future::Future;

use crate::catalog::Book;
use crate::clock::Clock;
use crate::events::{Event, Service};
use crate::fraud::{self, FraudModel};
use crate::service::{EventChecks, OrderData, Unavailable, Verdict};
use crate::suggestions::{self, BoughtTogether};
use crate::verification;

/// Transaction verification: events a, b and c.
pub struct TransactionVerification<C> {
    /// Card expiry is checked against its month, read at each check.
    pub clock: C,
}

impl<C: Clock> EventChecks for TransactionVerification<C> {
    fn service(&self) -> Service {
        Service::TransactionVerification
    }

    async fn check(&self, event: Event, order: &OrderData) -> Result<Verdict, Unavailable> {
        Ok(Verdict::from_check(match event {
            Event::A => verification::check_cart(&order.lines),
            Event::B => verification::check_user_data(order),
            _ => verification::check_card(order.card.as_ref(), self.clock.this_month()),
        }))
    }
}

/// Fraud detection: events d and e.
pub struct FraudDetection {
    pub model: FraudModel,
}

impl EventChecks for FraudDetection {
    fn service(&self) -> Service {
        Service::FraudDetection
    }

    async fn check(&self, event: Event, order: &OrderData) -> Result<Verdict, Unavailable> {
        let facts = order.fraud_facts();
        Ok(Verdict::from_check(match event {
            Event::D => fraud::check_user(&facts),
            _ => fraud::check_order(&facts, &self.model),
        }))
    }
}

/// Where suggestions get the live catalog and what was bought together.
pub trait BookSource: Send + Sync {
    fn catalog(&self) -> impl Future<Output = Result<(Vec<Book>, BoughtTogether), Unavailable>> + Send;
}

/// Suggestions: event f.
pub struct Suggestions<B> {
    pub books: B,
}

impl<B: BookSource> EventChecks for Suggestions<B> {
    fn service(&self) -> Service {
        Service::Suggestions
    }

    async fn check(&self, _event: Event, order: &OrderData) -> Result<Verdict, Unavailable> {
        let (catalog, bought_together) = self.books.catalog().await?;
        let suggestions =
            suggestions::suggest(&catalog, &order.book_ids(), &bought_together, suggestions::DEFAULT_LIMIT);
        Ok(Verdict { reason: None, suggestions })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::executor::block_on;

    use super::*;
    use crate::card::{CardFacts, YearMonth};

    /// A clock the test turns.
    struct TestClock(Mutex<YearMonth>);

    impl Clock for TestClock {
        fn this_month(&self) -> YearMonth {
            *self.0.lock().unwrap()
        }
    }

    fn card_check(service: &TransactionVerification<TestClock>, expiry: &str) -> Option<String> {
        let order =
            OrderData { card: Some(CardFacts::new("4111 1111 1111 1111", expiry, "123")), ..Default::default() };
        block_on(service.check(Event::C, &order)).unwrap().reason
    }

    #[test]
    fn a_warm_instance_checks_expiry_against_the_month_it_is_now() {
        let service = TransactionVerification { clock: TestClock(Mutex::new(YearMonth { year: 2026, month: 12 })) };
        assert_eq!(card_check(&service, "12/26"), None, "a card expiring this month is accepted");
        assert_eq!(card_check(&service, "11/26").as_deref(), Some("the card has expired"));
        // The same instance, still warm, after the month turns.
        *service.clock.0.lock().unwrap() = YearMonth { year: 2027, month: 1 };
        assert_eq!(card_check(&service, "12/26").as_deref(), Some("the card has expired"), "last month's card");
        assert_eq!(card_check(&service, "01/27"), None);
    }
}
