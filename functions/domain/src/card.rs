//! Payment card checks. The full number is reduced to [`CardFacts`] as soon as it arrives: what
//! the checks need (length, Luhn, issuer prefix, last four digits), never the number itself.

use serde::{Deserialize, Serialize};

/// A calendar month, for card expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct YearMonth {
    pub year: u32,
    pub month: u32,
}

/// What the checks know about a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardFacts {
    /// Digits in the number (spaces and dashes removed), 0 when it has other characters.
    pub length: usize,
    pub luhn_valid: bool,
    /// The first six digits: the issuer, for fraud rules.
    pub issuer_prefix: String,
    pub last4: String,
    pub expiry: Option<YearMonth>,
    pub cvv_well_formed: bool,
}

impl CardFacts {
    pub fn new(number: &str, expiration_date: &str, cvv: &str) -> Self {
        let digits = card_digits(number);
        let digits = digits.as_deref().unwrap_or("");
        Self {
            length: digits.len(),
            luhn_valid: !digits.is_empty() && luhn_valid(digits),
            issuer_prefix: digits.chars().take(6).collect(),
            last4: digits.chars().skip(digits.len().saturating_sub(4)).collect(),
            expiry: parse_expiry(expiration_date),
            cvv_well_formed: (3..=4).contains(&cvv.trim().len()) && cvv.trim().bytes().all(|b| b.is_ascii_digit()),
        }
    }

    /// The card as it may be shown or logged: `•••• 1234`.
    pub fn masked(&self) -> String {
        format!("•••• {}", self.last4)
    }

    /// Why the card is not well formed at `today`, if it is not.
    pub fn problem(&self, today: YearMonth) -> Option<&'static str> {
        if !(12..=19).contains(&self.length) {
            return Some("the card number must have 12 to 19 digits");
        }
        if !self.luhn_valid {
            return Some("the card number is not valid (checksum)");
        }
        match self.expiry {
            None => return Some("the expiry date must be MM/YY"),
            Some(expiry) if expiry < today => return Some("the card has expired"),
            Some(_) => {}
        }
        if !self.cvv_well_formed {
            return Some("the CVV must be 3 or 4 digits");
        }
        None
    }
}

/// The digits of a card number written with optional spaces or dashes; `None` if anything else
/// is in it.
pub fn card_digits(number: &str) -> Option<String> {
    let digits: String = number.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The Luhn checksum of a string of ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

/// `MM/YY` or `MM/YYYY` (also with `-`), the last month the card is valid.
pub fn parse_expiry(text: &str) -> Option<YearMonth> {
    let (month, year) = text.trim().split_once(['/', '-'])?;
    let month: u32 = month.trim().parse().ok().filter(|m| (1..=12).contains(m))?;
    let year = year.trim();
    let year: u32 = match year.len() {
        2 => 2000 + year.parse::<u32>().ok()?,
        4 => year.parse().ok()?,
        _ => return None,
    };
    Some(YearMonth { year, month })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: YearMonth = YearMonth { year: 2026, month: 11 };

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("41x1"));
    }

    #[test]
    fn facts_keep_no_full_number() {
        let facts = CardFacts::new("4111 1111-1111 1111", "12/30", "123");
        assert_eq!((facts.length, facts.luhn_valid), (16, true));
        assert_eq!((facts.issuer_prefix.as_str(), facts.last4.as_str()), ("411111", "1111"));
        assert_eq!(facts.masked(), "•••• 1111");
        let stored = serde_json::to_string(&facts).unwrap();
        assert!(!stored.contains("4111111111111111") && !stored.contains("4111 1111"), "{stored}");
        assert_eq!(facts.problem(TODAY), None);
    }

    #[test]
    fn each_malformed_part_is_named() {
        let problem = |n: &str, e: &str, c: &str| CardFacts::new(n, e, c).problem(TODAY);
        assert_eq!(problem("4111", "12/30", "123"), Some("the card number must have 12 to 19 digits"));
        assert_eq!(problem("4111 1111 1111 1112", "12/30", "123"), Some("the card number is not valid (checksum)"));
        assert_eq!(problem("4111-abcd", "12/30", "123"), Some("the card number must have 12 to 19 digits"));
        assert_eq!(problem("4111111111111111", "13/30", "123"), Some("the expiry date must be MM/YY"));
        assert_eq!(problem("4111111111111111", "10/26", "123"), Some("the card has expired"));
        assert_eq!(problem("4111111111111111", "11/2026", "123"), None, "valid through its month");
        assert_eq!(problem("4111111111111111", "12/30", "12a"), Some("the CVV must be 3 or 4 digits"));
    }
}
