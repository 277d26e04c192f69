//! Each service's checks, as the [`EventChecks`] the request handling runs.

use std::future::Future;

use crate::card::YearMonth;
use crate::catalog::Book;
use crate::events::{Event, Service};
use crate::fraud::{self, FraudModel};
use crate::service::{EventChecks, OrderData, Unavailable, Verdict};
use crate::suggestions::{self, BoughtTogether};
use crate::verification;

/// Transaction verification: events a, b and c.
pub struct TransactionVerification {
    /// The month against which card expiry is checked.
    pub today: YearMonth,
}

impl EventChecks for TransactionVerification {
    fn service(&self) -> Service {
        Service::TransactionVerification
    }

    async fn check(&self, event: Event, order: &OrderData) -> Result<Verdict, Unavailable> {
        Ok(Verdict::from_check(match event {
            Event::A => verification::check_cart(&order.lines),
            Event::B => verification::check_user_data(order),
            _ => verification::check_card(order.card.as_ref(), self.today),
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
