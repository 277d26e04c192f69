//! An order's life: `approved → queued → executing → committed | failed`, or `rejected` at
//! checkout. The checkout records an approved order `queued` in its one write; executors take
//! `queued → executing → committed | failed`, and the sweeper fails a stranded one
//! `queued → failed`. The orders table is the truth; every change is a conditional write from one
//! of the states [`OrderStatus::may_follow`] allows.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Approved,
    Rejected,
    Queued,
    Executing,
    Committed,
    Failed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Approved => "approved",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Queued => "queued",
            OrderStatus::Executing => "executing",
            OrderStatus::Committed => "committed",
            OrderStatus::Failed => "failed",
        }
    }

    /// The states an order may be in right before it enters `self`.
    pub fn may_follow(self) -> &'static [OrderStatus] {
        match self {
            OrderStatus::Approved | OrderStatus::Rejected => &[],
            OrderStatus::Queued => &[OrderStatus::Approved],
            // An executor that died mid-way leaves `executing`; the next delivery takes it over.
            OrderStatus::Executing => &[OrderStatus::Queued, OrderStatus::Executing],
            OrderStatus::Committed => &[OrderStatus::Executing],
            OrderStatus::Failed => &[OrderStatus::Queued, OrderStatus::Executing],
        }
    }

    /// No change leaves this state.
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Rejected | OrderStatus::Committed | OrderStatus::Failed)
    }
}

/// Whether `text` can be an order id (the checkout makes UUIDs): 1 to 64 letters, digits and
/// dashes. Checked before an id from a request reaches a table or a key.
pub fn is_order_id(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn an_order_id_is_a_short_word_of_letters_digits_and_dashes() {
        assert!(is_order_id("4b02e55a-ec74-4977-8530-ead7d4bab48c"));
        for bad in ["", "a/b", "a b", "ä", &"a".repeat(65), "..", "%00"] {
            assert!(!is_order_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn final_states_lead_nowhere() {
        let all = [Approved, Rejected, Queued, Executing, Committed, Failed];
        for to in all {
            for from in to.may_follow() {
                assert!(!from.is_final(), "{from:?} → {to:?}");
            }
        }
        assert_eq!(serde_json::to_value(Committed).unwrap(), serde_json::json!("committed"));
        assert_eq!(Executing.as_str(), "executing");
        // as_str (logs, messages) and the wire name (tables, JSON) are one spelling.
        for status in all {
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(status.as_str()));
        }
    }
}
