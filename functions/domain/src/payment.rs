//! The payment participant of the order executor's two-phase commit. Money movement is a dummy;
//! the protocol state is real: `authorized` (prepared) → `charged` (committed) or `released`
//! (aborted), each step idempotent, a release without an authorisation refusing a later one.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::service::Unavailable;

/// Authorisations above this are declined (the dummy card's limit): 10,000 EUR.
pub const LIMIT_CENTS: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum PaymentRequest {
    #[serde(rename_all = "camelCase")]
    Prepare { order_id: String, amount_cents: u64 },
    #[serde(rename_all = "camelCase")]
    Commit { order_id: String },
    #[serde(rename_all = "camelCase")]
    Abort { order_id: String },
}

impl PaymentRequest {
    pub fn order_id(&self) -> &str {
        match self {
            PaymentRequest::Prepare { order_id, .. }
            | PaymentRequest::Commit { order_id }
            | PaymentRequest::Abort { order_id } => order_id,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PaymentState {
    Authorized,
    Charged,
    Released,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Authorized => "authorized",
            PaymentState::Charged => "charged",
            PaymentState::Released => "released",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum PaymentResponse {
    /// The state the payment is in now.
    Done { state: PaymentState },
    /// Prepare declined, or a step the protocol forbids (commit after release); nothing changed.
    Refused { reason: String },
}

/// Where payments are kept. Each call is one conditional write.
pub trait PaymentLedger: Send + Sync {
    /// Creates the payment in `state` unless it exists; answers the state it is in afterwards.
    fn create(
        &self,
        order_id: &str,
        state: PaymentState,
        amount_cents: u64,
    ) -> impl Future<Output = Result<PaymentState, Unavailable>> + Send;
    /// Moves the payment from `from` to `to`; answers the state it is in afterwards (`None`
    /// when it does not exist).
    fn transition(
        &self,
        order_id: &str,
        from: PaymentState,
        to: PaymentState,
    ) -> impl Future<Output = Result<Option<PaymentState>, Unavailable>> + Send;
}

pub async fn handle<L: PaymentLedger>(request: PaymentRequest, ledger: &L) -> Result<PaymentResponse, Unavailable> {
    use PaymentState::*;
    let done = |state| Ok(PaymentResponse::Done { state });
    let refused = |reason: String| Ok(PaymentResponse::Refused { reason });
    match request {
        PaymentRequest::Prepare { order_id, amount_cents } => {
            if amount_cents > LIMIT_CENTS {
                // Declined: remembered as released, so that the answer stays the same.
                ledger.create(&order_id, Released, amount_cents).await?;
                return refused("payment declined: over the card's limit".into());
            }
            match ledger.create(&order_id, Authorized, amount_cents).await? {
                Released => refused("payment was released".into()),
                state => done(state),
            }
        }
        PaymentRequest::Commit { order_id } => match ledger.transition(&order_id, Authorized, Charged).await? {
            Some(Charged) => done(Charged),
            other => refused(format!("cannot charge a payment that is {}", describe(other))),
        },
        PaymentRequest::Abort { order_id } => {
            let state = match ledger.transition(&order_id, Authorized, Released).await? {
                // Nothing to release: remember the release, so that a late prepare is refused...
                None => match ledger.create(&order_id, Released, 0).await? {
                    // ...unless a prepare got in first: release that.
                    Authorized => ledger.transition(&order_id, Authorized, Released).await?,
                    state => Some(state),
                },
                state => state,
            };
            match state {
                Some(Released) => done(Released),
                other => refused(format!("cannot release a payment that is {}", describe(other))),
            }
        }
    }
}

fn describe(state: Option<PaymentState>) -> &'static str {
    state.map_or("not authorised", PaymentState::as_str)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::service::tests::block_on;

    #[test]
    fn a_states_name_is_its_wire_name() {
        for state in [PaymentState::Authorized, PaymentState::Charged, PaymentState::Released] {
            assert_eq!(serde_json::to_value(state).unwrap(), serde_json::json!(state.as_str()));
        }
    }

    #[derive(Default)]
    struct Ledger(Mutex<BTreeMap<String, PaymentState>>);

    impl PaymentLedger for Ledger {
        async fn create(&self, order_id: &str, state: PaymentState, _: u64) -> Result<PaymentState, Unavailable> {
            Ok(*self.0.lock().unwrap().entry(order_id.into()).or_insert(state))
        }

        async fn transition(
            &self,
            order_id: &str,
            from: PaymentState,
            to: PaymentState,
        ) -> Result<Option<PaymentState>, Unavailable> {
            let mut payments = self.0.lock().unwrap();
            let state = payments.get_mut(order_id);
            Ok(state.map(|state| {
                if *state == from {
                    *state = to;
                }
                *state
            }))
        }
    }

    fn send(ledger: &Ledger, request: PaymentRequest) -> PaymentResponse {
        block_on(handle(request, ledger)).unwrap()
    }

    fn prepare(amount_cents: u64) -> PaymentRequest {
        PaymentRequest::Prepare { order_id: "o1".into(), amount_cents }
    }

    #[test]
    fn prepare_then_commit_charges_once_and_every_step_repeats() {
        let ledger = Ledger::default();
        let commit = PaymentRequest::Commit { order_id: "o1".into() };
        assert_eq!(send(&ledger, prepare(500)), PaymentResponse::Done { state: PaymentState::Authorized });
        assert_eq!(send(&ledger, prepare(500)), PaymentResponse::Done { state: PaymentState::Authorized });
        assert_eq!(send(&ledger, commit.clone()), PaymentResponse::Done { state: PaymentState::Charged });
        assert_eq!(send(&ledger, commit), PaymentResponse::Done { state: PaymentState::Charged });
        let abort = send(&ledger, PaymentRequest::Abort { order_id: "o1".into() });
        assert!(matches!(abort, PaymentResponse::Refused { .. }), "{abort:?}");
    }

    #[test]
    fn an_abort_before_prepare_refuses_the_late_prepare() {
        let ledger = Ledger::default();
        let abort = PaymentRequest::Abort { order_id: "o1".into() };
        assert_eq!(send(&ledger, abort.clone()), PaymentResponse::Done { state: PaymentState::Released });
        assert!(matches!(send(&ledger, prepare(500)), PaymentResponse::Refused { .. }));
        assert_eq!(send(&ledger, abort), PaymentResponse::Done { state: PaymentState::Released });
        assert!(matches!(
            send(&ledger, PaymentRequest::Commit { order_id: "o1".into() }),
            PaymentResponse::Refused { .. }
        ));
    }

    /// A ledger where a prepare lands right after abort finds no payment.
    struct PrepareLandsDuringAbort(Ledger, Mutex<bool>);

    impl PaymentLedger for PrepareLandsDuringAbort {
        async fn create(&self, order_id: &str, state: PaymentState, amount: u64) -> Result<PaymentState, Unavailable> {
            self.0.create(order_id, state, amount).await
        }

        async fn transition(
            &self,
            order_id: &str,
            from: PaymentState,
            to: PaymentState,
        ) -> Result<Option<PaymentState>, Unavailable> {
            let answer = self.0.transition(order_id, from, to).await;
            if std::mem::take(&mut *self.1.lock().unwrap()) {
                self.0.create(order_id, PaymentState::Authorized, 1).await?;
            }
            answer
        }
    }

    #[test]
    fn an_abort_racing_a_late_prepare_still_releases() {
        let ledger = PrepareLandsDuringAbort(Ledger::default(), Mutex::new(true));
        let answer = block_on(handle(PaymentRequest::Abort { order_id: "o1".into() }, &ledger)).unwrap();
        assert_eq!(answer, PaymentResponse::Done { state: PaymentState::Released });
        assert_eq!(ledger.0.0.lock().unwrap()["o1"], PaymentState::Released);
    }

    #[test]
    fn an_amount_over_the_limit_is_declined() {
        let ledger = Ledger::default();
        let answer = send(&ledger, prepare(LIMIT_CENTS + 1));
        assert!(matches!(&answer, PaymentResponse::Refused { reason } if reason.contains("declined")), "{answer:?}");
    }
}
