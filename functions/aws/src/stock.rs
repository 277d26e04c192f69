//! The books database as a two-phase-commit participant: prepare reserves the stock of every
//! line of an order in one Raft transaction (refused when any is short), commit keeps the
//! reservation, abort gives the copies back. `reservation/{orderId}` records the step reached, so
//! every step is idempotent and an abort before prepare refuses a late prepare.

use books_db_client::BooksDb;
use books_db_client::api::{Check, Compare, TxnOp, TxnRequest};
use bookstore_domain::execution::{ExecutableOrder, Participant, Vote};
use bookstore_domain::port_error::PortError;
use serde::{Deserialize, Serialize};

use crate::books::STOCK_PREFIX;
use crate::unavailable;

/// A books database failure by kind: no node could answer, a node's own fault (5xx, a storage
/// error), throttling, or a write that raced this one is transient; a refusal of the request
/// (4xx) or an answer out of protocol is permanent.
fn books_db_error(what: &str, error: books_db_client::Error) -> PortError {
    use books_db_client::Error;
    let message = format!("{what}: {error}");
    match error {
        Error::Unavailable { .. } | Error::VersionMismatch(_) => PortError::Transient(message),
        Error::Rejected { status, .. } if status >= 500 || status == 429 => PortError::Transient(message),
        Error::NotFound => PortError::NotFound(message),
        Error::Rejected { .. } | Error::Protocol(_) | Error::InvalidKey(_) | Error::Config(_) => {
            PortError::Permanent(message)
        }
    }
}

/// A reservation that is not what the protocol allows at this step.
fn out_of_protocol(message: String) -> PortError {
    PortError::Permanent(message)
}

const RESERVATION_PREFIX: &str = "reservation/";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Reservation {
    state: Step,
    /// Book id → copies.
    lines: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Step {
    Prepared,
    Committed,
    Aborted,
}

pub struct BooksDbStock {
    db: BooksDb,
}

impl BooksDbStock {
    pub fn new(db: BooksDb) -> Self {
        Self { db }
    }

    async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, PortError> {
        let entry =
            self.db.get(&reservation_key(order_id)).await.map_err(|e| books_db_error("reading a reservation", e))?;
        let decode = |e| serde_json::from_value(e).map_err(|e| out_of_protocol(format!("a reservation: {e}")));
        entry.map(|e| decode(e.value)).transpose()
    }

    /// Moves the order's prepared reservation to `to` (giving its copies back when aborting), in
    /// one transaction that holds only while the reservation is the prepared one. The common
    /// case needs no read: the reservation is what prepare wrote for these lines.
    async fn finish(&self, order_id: &str, lines: &[(String, i64)], to: Step) -> Result<(), PortError> {
        let prepared = Reservation { state: Step::Prepared, lines: lines.to_vec() };
        if self.txn(&move_txn(order_id, &prepared, to)?).await? {
            return Ok(());
        }
        // Two tries: a concurrent step of the same order can change the reservation in between.
        for _ in 0..2 {
            match self.reservation(order_id).await? {
                Some(reservation) if reservation.state == to => return Ok(()),
                Some(reservation) if reservation.state == Step::Prepared => {
                    if self.txn(&move_txn(order_id, &reservation, to)?).await? {
                        return Ok(());
                    }
                }
                Some(reservation) => {
                    let state = reservation.state;
                    return Err(out_of_protocol(format!("reservation of {order_id} is {state:?}, cannot be {to:?}")));
                }
                None if to == Step::Aborted => {
                    // Abort before prepare: remember it, so that a late prepare is refused.
                    let aborted = Reservation { state: Step::Aborted, lines: Vec::new() };
                    let txn = TxnRequest {
                        compare: vec![Compare { key: reservation_key(order_id), check: Check::Exists(false) }],
                        success: vec![put(order_id, &aborted)?],
                        failure: vec![],
                    };
                    if self.txn(&txn).await? {
                        return Ok(());
                    }
                }
                None => return Err(out_of_protocol(format!("commit of {order_id}, which was never prepared"))),
            }
        }
        Err(PortError::Transient(format!("reservation of {order_id} kept changing")))
    }

    /// The orders whose copies are reserved and not yet committed or given back.
    pub async fn prepared_orders(&self) -> Result<Vec<String>, PortError> {
        let entries = self.db.list(RESERVATION_PREFIX).await.map_err(|e| books_db_error("listing reservations", e))?;
        Ok(entries
            .into_iter()
            .filter(|entry| {
                serde_json::from_value::<Reservation>(entry.value.clone()).is_ok_and(|r| r.state == Step::Prepared)
            })
            .filter_map(|entry| entry.key.strip_prefix(RESERVATION_PREFIX).map(str::to_string))
            .collect())
    }

    /// Gives back the copies reserved for an order that no longer exists anywhere else (its
    /// record lost with the orders table): aborts its prepared reservation, whatever its lines.
    pub async fn release(&self, order_id: &str) -> Result<(), PortError> {
        let lines = match self.reservation(order_id).await? {
            Some(reservation) if reservation.state == Step::Prepared => reservation.lines,
            _ => return Ok(()),
        };
        self.finish(order_id, &lines, Step::Aborted).await
    }

    async fn txn(&self, txn: &TxnRequest) -> Result<bool, PortError> {
        Ok(self.db.txn(txn).await.map_err(|e| books_db_error("a books database transaction", e))?.succeeded)
    }
}

/// Moves `reservation` to `to` if it is still exactly what is stored.
fn move_txn(order_id: &str, reservation: &Reservation, to: Step) -> Result<TxnRequest, PortError> {
    let stored = serde_json::to_value(reservation).map_err(|e| unavailable("encoding a reservation", e))?;
    let mut success: Vec<TxnOp> = match to {
        Step::Aborted => {
            reservation.lines.iter().map(|(book, n)| TxnOp::Add { key: stock_key(book), delta: *n }).collect()
        }
        _ => Vec::new(),
    };
    success.push(put(order_id, &Reservation { state: to, lines: reservation.lines.clone() })?);
    Ok(TxnRequest {
        compare: vec![Compare { key: reservation_key(order_id), check: Check::Value(stored) }],
        success,
        failure: vec![],
    })
}

/// The books database's key of an order's reservation.
pub fn reservation_key(order_id: &str) -> String {
    format!("{RESERVATION_PREFIX}{order_id}")
}

fn stock_key(book_id: &str) -> String {
    format!("{STOCK_PREFIX}{book_id}")
}

fn put(order_id: &str, reservation: &Reservation) -> Result<TxnOp, PortError> {
    let value = serde_json::to_value(reservation).map_err(|e| unavailable("encoding a reservation", e))?;
    Ok(TxnOp::Put { key: reservation_key(order_id), value })
}

impl Participant for BooksDbStock {
    async fn prepare(&self, order: &ExecutableOrder) -> Result<Vote, PortError> {
        let mut compare = vec![Compare { key: reservation_key(&order.order_id), check: Check::Exists(false) }];
        let mut success = Vec::new();
        for (book, copies) in &order.lines {
            compare.push(Compare { key: stock_key(book), check: Check::AtLeast(*copies) });
            success.push(TxnOp::Add { key: stock_key(book), delta: -copies });
        }
        let reservation = Reservation { state: Step::Prepared, lines: order.lines.clone() };
        success.push(put(&order.order_id, &reservation)?);
        let answer = self
            .db
            .txn(&TxnRequest { compare, success, failure: vec![] })
            .await
            .map_err(|e| books_db_error("reserving stock", e))?;
        if answer.succeeded {
            // The transaction's version is the index of the Raft log entry that reserved the stock.
            return Ok(Vote::Yes { receipt: Some(format!("Raft log index {}", answer.version)) });
        }
        if answer.failed_compares.contains(&0) {
            // Prepared before (a retry), or aborted before.
            return match self.reservation(&order.order_id).await? {
                Some(reservation) if reservation.state == Step::Aborted => Ok(Vote::No("aborted".into())),
                Some(_) => Ok(Vote::YES),
                // Gone between the transaction and the read: ask again on the next delivery.
                None => {
                    Err(PortError::Transient(format!("the reservation of {} changed while preparing", order.order_id)))
                }
            };
        }
        let short: Vec<&str> = answer
            .failed_compares
            .iter()
            .filter_map(|i| order.lines.get(i.checked_sub(1)?))
            .map(|(book, _)| book.as_str())
            .collect();
        Ok(Vote::No(format!("out of stock: {}", short.join(", "))))
    }

    async fn commit(&self, order: &ExecutableOrder) -> Result<(), PortError> {
        self.finish(&order.order_id, &order.lines, Step::Committed).await
    }

    async fn abort(&self, order: &ExecutableOrder) -> Result<(), PortError> {
        self.finish(&order.order_id, &order.lines, Step::Aborted).await
    }
}

#[cfg(test)]
mod tests {
    use books_db_client::Error;

    use super::*;

    #[test]
    fn a_node_fault_is_transient_and_a_refused_request_permanent() {
        let rejected = |status| Error::Rejected { status, code: "x".into(), message: "y".into() };
        for error in [rejected(500), rejected(429), Error::Unavailable { attempts: 3, last: "no leader".into() }] {
            assert!(matches!(books_db_error("a txn", error), PortError::Transient(_)));
        }
        for error in [rejected(400), rejected(422), Error::Protocol("no body".into())] {
            assert!(matches!(books_db_error("a txn", error), PortError::Permanent(_)));
        }
        assert!(matches!(books_db_error("a key", Error::NotFound), PortError::NotFound(_)));
    }
}
