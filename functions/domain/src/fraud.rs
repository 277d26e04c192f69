//! Fraud detection (events d and e): rule checks plus a small logistic-regression model.
//!
//! The model is trained by `cargo xtask train-fraud-model` on a labelled data set that the same
//! command generates (see `xtask/src/fraud_model.rs` for how each class is drawn); its weights are
//! committed in `functions/domain/models/fraud-model.json` and embedded here. Scoring is a dot
//! product, so the functions carry no ML library.

use serde::{Deserialize, Serialize};

use crate::card::CardFacts;

/// What fraud detection knows about an order: no card number, only the card's facts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFacts {
    pub name: String,
    pub contact: String,
    pub amount_eur: f64,
    pub total_quantity: u32,
    pub lines: u32,
    pub shipping_method: String,
    /// The user comment and gift message, joined.
    pub free_text: String,
    pub card: Option<CardFacts>,
}

/// The model's inputs, in [`FEATURES`] order.
pub const FEATURES: [&str; 7] = [
    "log_amount",
    "total_quantity",
    "copies_per_line",
    "disposable_contact",
    "contact_digit_ratio",
    "name_in_contact",
    "express_shipping",
];

/// Email domains that hand out throw-away addresses.
const DISPOSABLE_DOMAINS: [&str; 8] = [
    "mailinator.com",
    "guerrillamail.com",
    "10minutemail.com",
    "trashmail.com",
    "yopmail.com",
    "tempmail.com",
    "sharklasers.com",
    "dispostable.com",
];

/// Card number prefixes reserved for tests, never issued to a real holder.
const TEST_CARD_PREFIXES: [&str; 2] = ["000000", "999999"];

/// Largest order amount accepted without a manual check.
pub const MAX_AMOUNT_EUR: f64 = 5_000.0;

impl OrderFacts {
    /// The model's inputs for this order. Each is documented where the training data is drawn.
    pub fn features(&self) -> [f64; FEATURES.len()] {
        let contact = self.contact.trim().to_lowercase();
        let local_part = contact.split('@').next().unwrap_or_default();
        let digits = local_part.chars().filter(char::is_ascii_digit).count();
        let name_in_contact = self
            .name
            .to_lowercase()
            .split_whitespace()
            .filter(|token| token.chars().count() >= 3)
            .any(|token| contact.contains(token));
        let shipping = self.shipping_method.to_lowercase();
        [
            (1.0 + self.amount_eur.max(0.0)).ln(),
            f64::from(self.total_quantity),
            f64::from(self.total_quantity) / f64::from(self.lines.max(1)),
            f64::from(u8::from(is_disposable(&contact))),
            if local_part.is_empty() { 0.0 } else { digits as f64 / local_part.chars().count() as f64 },
            f64::from(u8::from(name_in_contact)),
            f64::from(u8::from(shipping.contains("express") || shipping.contains("next"))),
        ]
    }
}

fn is_disposable(contact: &str) -> bool {
    contact.rsplit_once('@').is_some_and(|(_, domain)| DISPOSABLE_DOMAINS.contains(&domain))
}

/// Event d: the user data looks legitimate.
pub fn check_user(order: &OrderFacts) -> Result<(), String> {
    let name = order.name.trim();
    if !name.chars().any(char::is_alphabetic) {
        return Err("the name does not look like a name".into());
    }
    let contact = order.contact.trim().to_lowercase();
    if !looks_like_email(&contact) && !looks_like_phone(&contact) {
        return Err("the contact is neither an email address nor a phone number".into());
    }
    if is_disposable(&contact) {
        return Err("the contact uses a disposable email address".into());
    }
    Ok(())
}

fn looks_like_email(contact: &str) -> bool {
    match contact.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(|part| !part.is_empty())
                && !contact.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn looks_like_phone(contact: &str) -> bool {
    let digits = contact.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits) && contact.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
}

/// A trained logistic-regression model over standardized [`FEATURES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FraudModel {
    pub features: Vec<String>,
    /// Per-feature mean and standard deviation of the training data, for standardizing.
    pub means: Vec<f64>,
    pub stds: Vec<f64>,
    pub weights: Vec<f64>,
    pub intercept: f64,
    /// Orders scoring at or above this probability of fraud are rejected.
    pub threshold: f64,
    /// How it was trained and how it did on held-out data, for the record.
    #[serde(default)]
    pub provenance: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the fraud model cannot be read: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the fraud model does not fit this code: {0}")]
    Shape(String),
}

impl FraudModel {
    /// The committed model.
    pub fn embedded() -> Result<Self, ModelError> {
        Self::from_json(include_str!("../models/fraud-model.json"))
    }

    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let model: FraudModel = serde_json::from_str(text)?;
        let n = FEATURES.len();
        if model.features != FEATURES || [model.means.len(), model.stds.len(), model.weights.len()] != [n, n, n] {
            return Err(ModelError::Shape(format!("expected the features {FEATURES:?}")));
        }
        if model.stds.iter().any(|s| *s <= 0.0) || !(0.0..=1.0).contains(&model.threshold) {
            return Err(ModelError::Shape("standard deviations must be positive, the threshold a probability".into()));
        }
        Ok(model)
    }

    /// The probability that an order with these features is fraudulent.
    pub fn probability(&self, features: &[f64; FEATURES.len()]) -> f64 {
        let z = self.intercept
            + features
                .iter()
                .zip(&self.means)
                .zip(&self.stds)
                .zip(&self.weights)
                .map(|(((x, mean), std), w)| w * (x - mean) / std)
                .sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// Event e: the card and the order look legitimate, by rules and then by the model.
pub fn check_order(order: &OrderFacts, model: &FraudModel) -> Result<(), String> {
    if let Some(card) = &order.card
        && TEST_CARD_PREFIXES.contains(&card.issuer_prefix.as_str())
    {
        return Err("the card is a test card".into());
    }
    if order.amount_eur > MAX_AMOUNT_EUR {
        return Err(format!("orders over {MAX_AMOUNT_EUR:.0} EUR need a manual check"));
    }
    let probability = model.probability(&order.features());
    if probability >= model.threshold {
        return Err(format!("the order looks fraudulent (risk {:.0}%)", probability * 100.0));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shopper() -> OrderFacts {
        OrderFacts {
            name: "Ada Lovelace".into(),
            contact: "ada.lovelace@example.org".into(),
            amount_eur: 34.5,
            total_quantity: 2,
            lines: 2,
            shipping_method: "Standard".into(),
            free_text: String::new(),
            card: Some(CardFacts::new("4111 1111 1111 1111", "12/30", "123")),
        }
    }

    fn fraudster() -> OrderFacts {
        OrderFacts {
            name: "J".into(),
            contact: "x8812734@mailinator.com".into(),
            amount_eur: 2_400.0,
            total_quantity: 60,
            lines: 2,
            shipping_method: "Express".into(),
            ..shopper()
        }
    }

    #[test]
    fn features_are_computed_as_documented() {
        let f = fraudster().features();
        assert!((f[0] - 2401f64.ln()).abs() < 1e-9);
        assert_eq!(&f[1..], &[60.0, 30.0, 1.0, 7.0 / 8.0, 0.0, 1.0]);
        let f = shopper().features();
        assert_eq!((f[3], f[4], f[5], f[6]), (0.0, 0.0, 1.0, 0.0));
    }

    #[test]
    fn user_rules() {
        assert!(check_user(&shopper()).is_ok());
        let phone = OrderFacts { contact: "+372 5555 1234".into(), ..shopper() };
        assert!(check_user(&phone).is_ok());
        for contact in ["nobody", "a@b", "a b@c.de", "12"] {
            let o = OrderFacts { contact: contact.into(), ..shopper() };
            assert!(check_user(&o).is_err(), "{contact}");
        }
        let o = OrderFacts { contact: "me@yopmail.com".into(), ..shopper() };
        assert!(check_user(&o).unwrap_err().contains("disposable"));
        let o = OrderFacts { name: "1234".into(), ..shopper() };
        assert!(check_user(&o).is_err());
    }

    #[test]
    fn the_committed_model_approves_a_shopper_and_rejects_a_fraudster() {
        let model = FraudModel::embedded().unwrap();
        assert!(check_order(&shopper(), &model).is_ok(), "p = {}", model.probability(&shopper().features()));
        let err = check_order(&fraudster(), &model).unwrap_err();
        assert!(err.contains("looks fraudulent"), "{err}");
    }

    #[test]
    fn rules_run_before_the_model() {
        let model = FraudModel::embedded().unwrap();
        let test_card = OrderFacts { card: Some(CardFacts::new("0000 0012 3456 7890", "12/30", "123")), ..shopper() };
        assert_eq!(check_order(&test_card, &model).unwrap_err(), "the card is a test card");
        let huge = OrderFacts { amount_eur: 9_999.0, ..shopper() };
        assert!(check_order(&huge, &model).unwrap_err().contains("manual check"));
    }

    #[test]
    fn a_model_that_does_not_fit_is_refused() {
        let model = FraudModel::embedded().unwrap();
        let mut wrong = serde_json::to_value(&model).unwrap();
        wrong["weights"] = serde_json::json!([1.0]);
        assert!(matches!(FraudModel::from_json(&wrong.to_string()), Err(ModelError::Shape(_))));
        assert!(matches!(FraudModel::from_json("{"), Err(ModelError::Decode(_))));
    }
}
