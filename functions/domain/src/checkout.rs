//! The checkout request and response, compatible with the course's bookstore API. Every field is
//! optional on the wire; the services validate what they need. Unknown fields are ignored.

use serde::{Deserialize, Serialize};

/// Largest checkout body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRequest {
    pub user: Option<User>,
    pub credit_card: Option<CreditCard>,
    pub user_comment: Option<String>,
    pub items: Option<Vec<Item>>,
    pub discount_code: Option<String>,
    pub shipping_method: Option<String>,
    pub gift_message: Option<String>,
    pub billing_address: Option<Address>,
    pub gift_wrapping: Option<bool>,
    /// The course's example page sends `termsAccepted`.
    #[serde(alias = "termsAccepted")]
    pub terms_and_conditions_accepted: Option<bool>,
    pub notification_preferences: Option<Vec<String>>,
    pub device: Option<Device>,
    pub browser: Option<Browser>,
    pub app_version: Option<String>,
    pub screen_resolution: Option<String>,
    pub referrer: Option<String>,
    pub device_language: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: Option<String>,
    pub contact: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditCard {
    pub number: Option<String>,
    pub expiration_date: Option<String>,
    pub cvv: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub name: Option<String>,
    pub quantity: Option<i64>,
    /// Sent by the storefront; the course's page sends only `name`.
    pub book_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub zip: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Device {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub model: Option<String>,
    pub os: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Browser {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// `200` answer to a checkout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutResponse {
    pub order_id: String,
    pub status: Decision,
    /// Always present; empty when the order is rejected.
    pub suggested_books: Vec<SuggestedBook>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    #[serde(rename = "Order Approved")]
    Approved,
    #[serde(rename = "Order Rejected")]
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestedBook {
    pub book_id: String,
    pub title: String,
    pub author: String,
}

/// Why a checkout body was refused before any service saw it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    WrongShape(String),
}

impl BodyError {
    /// The `code` of the `{"error": {"code", "message"}}` answer.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::TooLarge => "body_too_large",
            BodyError::NotJson(_) => "invalid_json",
            BodyError::WrongShape(_) => "invalid_body",
        }
    }
}

/// Parses a checkout body, whatever its Content-Type. Error messages name the field and the
/// position but never repeat a value, so a card number sent with the wrong type is not echoed.
pub fn parse_checkout(body: &[u8]) -> Result<CheckoutRequest, BodyError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    // Syntax first, so that "not JSON" and "wrong shape" are told apart.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        return Err(BodyError::NotJson(format!("line {} column {}", e.line(), e.column())));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            BodyError::WrongShape("the body must be a JSON object".into())
        } else {
            BodyError::WrongShape(format!("{path} has the wrong type"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_course_body_parses_with_its_alias() {
        let body = json!({
            "user": {"name": "Ada Lovelace", "contact": "ada@example.org"},
            "creditCard": {"number": "4111 1111 1111 1111", "expirationDate": "12/30", "cvv": "123"},
            "items": [{"name": "Dune", "quantity": 1}],
            "billingAddress": {"street": "1 Main", "city": "Tartu", "state": "", "zip": "50090", "country": "Estonia"},
            "termsAccepted": true,
            "device": {"type": "Smartphone", "model": "X", "os": "iOS"},
            "somethingNew": [1, 2, 3]
        });
        let request = parse_checkout(body.to_string().as_bytes()).unwrap();
        assert_eq!(request.terms_and_conditions_accepted, Some(true));
        assert_eq!(request.items.unwrap()[0].quantity, Some(1));
        assert_eq!(request.device.unwrap().kind.as_deref(), Some("Smartphone"));
        assert_eq!(parse_checkout(b"{}").unwrap(), CheckoutRequest::default());
    }

    #[test]
    fn bad_bodies_get_their_code_and_never_echo_a_value() {
        assert_eq!(parse_checkout(b"not json").unwrap_err().code(), "invalid_json");
        assert_eq!(parse_checkout(b"[1, 2]").unwrap_err().code(), "invalid_body");
        assert_eq!(parse_checkout(&vec![b' '; MAX_BODY_BYTES + 1]).unwrap_err().code(), "body_too_large");
        let err = parse_checkout(br#"{"creditCard": {"number": 4111111111111111}}"#).unwrap_err();
        assert_eq!(err.code(), "invalid_body");
        assert_eq!(err.to_string(), "creditCard.number has the wrong type");
        let err = parse_checkout(br#"{"items": [{"name": "x", "quantity": "lots"}]}"#).unwrap_err();
        assert_eq!(err.to_string(), "items[0].quantity has the wrong type");
    }

    #[test]
    fn responses_have_the_course_shape() {
        let approved = CheckoutResponse {
            order_id: "o-1".into(),
            status: Decision::Approved,
            suggested_books: vec![SuggestedBook { book_id: "7".into(), title: "Emma".into(), author: "Austen".into() }],
            reason: None,
        };
        assert_eq!(
            serde_json::to_value(&approved).unwrap(),
            json!({"orderId": "o-1", "status": "Order Approved", "suggestedBooks": [{"bookId": "7", "title": "Emma", "author": "Austen"}]})
        );
    }
}
