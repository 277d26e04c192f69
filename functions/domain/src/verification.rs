//! Transaction verification's checks, one per event: a (the cart), b (the user data),
//! c (the card). Each answers the reason for a rejection, in words for the shopper.

use crate::card::{CardFacts, YearMonth};
use crate::checkout::{CheckoutRequest, Item};

/// Most lines one order may have.
pub const MAX_LINES: usize = 50;
/// Most copies of one book one order may have.
pub const MAX_QUANTITY: i64 = 100;
/// Longest free-text field accepted (names, contact, address parts).
pub const MAX_TEXT: usize = 200;

/// Event a: the cart is not empty and every quantity is positive (and sane).
pub fn check_cart(items: Option<&[Item]>) -> Result<(), String> {
    let items = items.unwrap_or_default();
    if items.is_empty() {
        return Err("the cart is empty".into());
    }
    if items.len() > MAX_LINES {
        return Err(format!("an order may have at most {MAX_LINES} lines"));
    }
    for (i, item) in items.iter().enumerate() {
        let named = item.book_id.as_deref().or(item.name.as_deref()).is_some_and(|n| !n.trim().is_empty());
        if !named {
            return Err(format!("item {} names no book", i + 1));
        }
        match item.quantity {
            Some(q) if (1..=MAX_QUANTITY).contains(&q) => {}
            Some(q) if q > MAX_QUANTITY => {
                return Err(format!("item {} asks for {q} copies; at most {MAX_QUANTITY}", i + 1));
            }
            _ => return Err(format!("item {} needs a positive quantity", i + 1)),
        }
    }
    Ok(())
}

/// Event b: name, contact and billing address are filled in and the terms are accepted.
pub fn check_user_data(request: &CheckoutRequest) -> Result<(), String> {
    let user = request.user.clone().unwrap_or_default();
    filled("the name", user.name.as_deref())?;
    filled("the contact", user.contact.as_deref())?;
    let address = request.billing_address.clone().unwrap_or_default();
    filled("the billing street", address.street.as_deref())?;
    filled("the billing city", address.city.as_deref())?;
    filled("the billing zip code", address.zip.as_deref())?;
    filled("the billing country", address.country.as_deref())?;
    if request.terms_and_conditions_accepted != Some(true) {
        return Err("the terms and conditions must be accepted".into());
    }
    Ok(())
}

/// Event c: the card number, expiry and CVV are well formed (Luhn, not expired).
pub fn check_card(card: &CardFacts, today: YearMonth) -> Result<(), String> {
    card.problem(today).map_or(Ok(()), |problem| Err(problem.to_string()))
}

fn filled(what: &str, text: Option<&str>) -> Result<(), String> {
    match text.map(str::trim) {
        None | Some("") => Err(format!("{what} is missing")),
        Some(t) if t.chars().count() > MAX_TEXT => Err(format!("{what} is longer than {MAX_TEXT} characters")),
        Some(t) if t.chars().any(char::is_control) => Err(format!("{what} contains control characters")),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkout::{Address, User};

    fn item(name: &str, quantity: i64) -> Item {
        Item { name: Some(name.into()), quantity: Some(quantity), book_id: None }
    }

    fn complete() -> CheckoutRequest {
        CheckoutRequest {
            user: Some(User { name: Some("Jüri Õun 🦉".into()), contact: Some("juri@example.ee".into()) }),
            billing_address: Some(Address {
                street: Some("Narva mnt 18".into()),
                city: Some("Tartu".into()),
                state: None,
                zip: Some("51009".into()),
                country: Some("Estonia".into()),
            }),
            terms_and_conditions_accepted: Some(true),
            items: Some(vec![item("Dune", 2)]),
            ..Default::default()
        }
    }

    #[test]
    fn cart_rules() {
        assert!(check_cart(Some(&[item("Dune", 1)])).is_ok());
        assert_eq!(check_cart(None).unwrap_err(), "the cart is empty");
        assert_eq!(check_cart(Some(&[])).unwrap_err(), "the cart is empty");
        assert!(check_cart(Some(&[item("Dune", 0)])).unwrap_err().contains("positive"));
        assert!(check_cart(Some(&[item("Dune", -3)])).unwrap_err().contains("positive"));
        assert!(check_cart(Some(&[item("Dune", 1_000_000_000)])).unwrap_err().contains("at most 100"));
        assert!(check_cart(Some(&[item(" ", 1)])).unwrap_err().contains("names no book"));
        let no_quantity = Item { name: Some("Dune".into()), quantity: None, book_id: None };
        assert!(check_cart(Some(&[no_quantity])).is_err());
        assert!(check_cart(Some(&vec![item("Dune", 1); MAX_LINES + 1])).is_err());
    }

    #[test]
    fn user_data_rules_accept_unicode_and_name_what_is_missing() {
        assert!(check_user_data(&complete()).is_ok());
        let mut r = complete();
        r.user = None;
        assert_eq!(check_user_data(&r).unwrap_err(), "the name is missing");
        let mut r = complete();
        r.terms_and_conditions_accepted = Some(false);
        assert!(check_user_data(&r).unwrap_err().contains("terms"));
        let mut r = complete();
        r.billing_address.as_mut().unwrap().city = Some("  ".into());
        assert_eq!(check_user_data(&r).unwrap_err(), "the billing city is missing");
        let mut r = complete();
        r.user.as_mut().unwrap().name = Some("x".repeat(MAX_TEXT + 1));
        assert!(check_user_data(&r).unwrap_err().contains("longer"));
    }

    #[test]
    fn card_rule_reports_the_problem() {
        let today = YearMonth { year: 2026, month: 11 };
        assert!(check_card(&CardFacts::new("4111 1111 1111 1111", "12/30", "123"), today).is_ok());
        assert_eq!(
            check_card(&CardFacts::new("4111 1111 1111 1111", "01/20", "123"), today).unwrap_err(),
            "the card has expired"
        );
    }
}
