//! Transaction verification's checks, one per event: a (the cart), b (the user data),
//! c (the card). Each answers the reason for a rejection, in words for the shopper.

use crate::card::{CardFacts, YearMonth};
use crate::service::{OrderData, OrderLine};

/// Most lines one order may have.
pub const MAX_LINES: usize = 50;
/// Most copies of one book one order may have.
pub const MAX_QUANTITY: i64 = 100;
/// Longest free-text field accepted (names, contact, address parts).
pub const MAX_TEXT: usize = 200;

/// Event a: the cart is not empty, every line is a book we sell, and every quantity is positive
/// (and sane).
pub fn check_cart(lines: &[OrderLine]) -> Result<(), String> {
    if lines.is_empty() {
        return Err("the cart is empty".into());
    }
    if lines.len() > MAX_LINES {
        return Err(format!("an order may have at most {MAX_LINES} lines"));
    }
    for (i, line) in lines.iter().enumerate() {
        if line.title.trim().is_empty() && line.book_id.is_none() {
            return Err(format!("item {} names no book", i + 1));
        }
        if line.book_id.is_none() {
            return Err(format!("{:?} is not in our catalog", line.title.chars().take(MAX_TEXT).collect::<String>()));
        }
        match line.quantity {
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
pub fn check_user_data(order: &OrderData) -> Result<(), String> {
    filled("the name", order.user.name.as_deref())?;
    filled("the contact", order.user.contact.as_deref())?;
    let address = &order.billing_address;
    filled("the billing street", address.street.as_deref())?;
    filled("the billing city", address.city.as_deref())?;
    filled("the billing zip code", address.zip.as_deref())?;
    filled("the billing country", address.country.as_deref())?;
    if !order.terms_accepted {
        return Err("the terms and conditions must be accepted".into());
    }
    Ok(())
}

/// Event c: the card number, expiry and CVV are well formed (Luhn, not expired).
pub fn check_card(card: Option<&CardFacts>, today: YearMonth) -> Result<(), String> {
    let Some(card) = card else {
        return Err("the card details are missing".into());
    };
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

    fn line(title: &str, quantity: i64) -> OrderLine {
        OrderLine {
            book_id: Some(title.to_lowercase()),
            title: title.into(),
            quantity: Some(quantity),
            unit_price_cents: Some(999),
        }
    }

    fn complete() -> OrderData {
        OrderData {
            user: User { name: Some("Jüri Õun 🦉".into()), contact: Some("juri@example.ee".into()) },
            billing_address: Address {
                street: Some("Narva mnt 18".into()),
                city: Some("Tartu".into()),
                state: None,
                zip: Some("51009".into()),
                country: Some("Estonia".into()),
            },
            terms_accepted: true,
            lines: vec![line("Dune", 2)],
            ..Default::default()
        }
    }

    #[test]
    fn cart_rules() {
        assert!(check_cart(&[line("Dune", 1)]).is_ok());
        assert_eq!(check_cart(&[]).unwrap_err(), "the cart is empty");
        assert!(check_cart(&[line("Dune", 0)]).unwrap_err().contains("positive"));
        assert!(check_cart(&[line("Dune", -3)]).unwrap_err().contains("positive"));
        assert!(check_cart(&[line("Dune", 1_000_000_000)]).unwrap_err().contains("at most 100"));
        let unknown = OrderLine { book_id: None, ..line("Necronomicon", 1) };
        assert_eq!(check_cart(&[unknown]).unwrap_err(), "\"Necronomicon\" is not in our catalog");
        let unnamed = OrderLine { book_id: None, ..line(" ", 1) };
        assert!(check_cart(&[unnamed]).unwrap_err().contains("names no book"));
        let no_quantity = OrderLine { quantity: None, ..line("Dune", 1) };
        assert!(check_cart(&[no_quantity]).is_err());
        assert!(check_cart(&vec![line("Dune", 1); MAX_LINES + 1]).is_err());
    }

    #[test]
    fn user_data_rules_accept_unicode_and_name_what_is_missing() {
        assert!(check_user_data(&complete()).is_ok());
        let mut r = complete();
        r.user = User::default();
        assert_eq!(check_user_data(&r).unwrap_err(), "the name is missing");
        let mut r = complete();
        r.terms_accepted = false;
        assert!(check_user_data(&r).unwrap_err().contains("terms"));
        let mut r = complete();
        r.billing_address.city = Some("  ".into());
        assert_eq!(check_user_data(&r).unwrap_err(), "the billing city is missing");
        let mut r = complete();
        r.user.name = Some("x".repeat(MAX_TEXT + 1));
        assert!(check_user_data(&r).unwrap_err().contains("longer"));
    }

    #[test]
    fn card_rule_reports_the_problem() {
        let today = YearMonth { year: 2026, month: 11 };
        assert!(check_card(Some(&CardFacts::new("4111 1111 1111 1111", "12/30", "123")), today).is_ok());
        let expired = CardFacts::new("4111 1111 1111 1111", "01/20", "123");
        assert_eq!(check_card(Some(&expired), today).unwrap_err(), "the card has expired");
        assert_eq!(check_card(None, today).unwrap_err(), "the card details are missing");
    }
}
