//! Executing an approved order exactly once. The order executor is the coordinator of a
//! two-phase commit across two participants, the books database (stock) and payment: it prepares
//! both, records the decision durably in the orders table, then commits both or aborts both.
//!
//! Every step is idempotent and the decision is recorded before phase two, so a delivery of the
//! same message after an executor died anywhere finishes the protocol with the same decision.
//! The order's status changes only by conditional writes (`queued → executing → committed |
//! failed`), so a duplicate delivery of a finished order changes nothing.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::order::OrderStatus;
use crate::port_error::PortError;
use crate::service::Unavailable;

/// What an executor needs to know of an order.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutableOrder {
    pub order_id: String,
    pub status: OrderStatus,
    /// Book id → copies, one entry per book.
    pub lines: Vec<(String, i64)>,
    pub amount_cents: u64,
    /// The two-phase commit's decision, once recorded.
    pub decision: Option<Decision>,
}

impl ExecutableOrder {
    /// Every line names a book and a positive number of copies, and there is one.
    pub fn has_valid_lines(&self) -> bool {
        !self.lines.is_empty() && self.lines.iter().all(|(book, copies)| !book.is_empty() && *copies > 0)
    }
}

/// The coordinator's decision, recorded before phase two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum Decision {
    Commit,
    Abort { reason: String },
}

/// A participant's answer to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    /// It promises to carry out either decision; `receipt` says where it recorded the promise,
    /// when it can tell (the books database: the Raft log index of its transaction).
    Yes { receipt: Option<String> },
    /// It cannot take part; the reason is the order's.
    No(String),
}

impl Vote {
    /// A yes with nothing to show for it.
    pub const YES: Vote = Vote::Yes { receipt: None };
}

/// One delivery of an order's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The message's receive count: 1 the first time.
    pub receives: u32,
    /// The queue will not deliver it again.
    pub last: bool,
}

/// The two participants, as the trail names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ParticipantName {
    Stock,
    Payment,
}

/// A step of the two-phase commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TrailStep {
    /// A delivery took the order up.
    Claim,
    /// A participant voted.
    Prepare,
    /// The coordinator's decision was recorded.
    Decide,
    /// A participant was told to commit, and did.
    Commit,
    /// A participant was told to abort, and did.
    Abort,
}

/// One step of the protocol as the coordinator took it, kept with the order (its trail) in the
/// same write as the state change it belongs to, so that a learner sees the protocol as it ran:
/// each delivery that took the order up, each vote, the decision, what each participant was told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrailEntry {
    pub step: TrailStep,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<ParticipantName>,
    /// A vote (`yes`, or the participant's reason for no) or the decision (`commit`, or `abort:`
    /// and the reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The receive count of the delivery that claimed the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<u32>,
    /// When the step was recorded (RFC 3339), stamped by the ledger.
    #[serde(default)]
    pub at: String,
}

impl TrailEntry {
    fn new(step: TrailStep) -> Self {
        Self { step, participant: None, outcome: None, delivery: None, at: String::new() }
    }

    pub fn claimed(delivery: Delivery) -> Self {
        Self { delivery: Some(delivery.receives), ..Self::new(TrailStep::Claim) }
    }

    pub fn voted(participant: ParticipantName, vote: &Vote) -> Self {
        let outcome = match vote {
            Vote::Yes { receipt: None } => "yes".to_string(),
            Vote::Yes { receipt: Some(receipt) } => format!("yes ({receipt})"),
            Vote::No(reason) => format!("no: {reason}"),
        };
        Self { participant: Some(participant), outcome: Some(outcome), ..Self::new(TrailStep::Prepare) }
    }

    pub fn decided(decision: &Decision) -> Self {
        let outcome = match decision {
            Decision::Commit => "commit".to_string(),
            Decision::Abort { reason } => format!("abort: {reason}"),
        };
        Self { outcome: Some(outcome), ..Self::new(TrailStep::Decide) }
    }

    /// `participant` carried out `decision`.
    pub fn told(participant: ParticipantName, decision: &Decision) -> Self {
        let step = match decision {
            Decision::Commit => TrailStep::Commit,
            Decision::Abort { .. } => TrailStep::Abort,
        };
        Self { participant: Some(participant), ..Self::new(step) }
    }
}

/// What claiming an order for execution found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The order is `executing` now (it was `queued`, or an executor that died left it so).
    Executing(ExecutableOrder),
    /// A duplicate delivery of a finished order.
    Finished(OrderStatus),
    /// The order is in a state executors do not take (`approved`: not queued yet).
    NotQueued(OrderStatus),
    Unknown,
}

/// The orders table, as executors use it. Each change appends `trail` (stamped with the time) to
/// the order's trail in the same write, and only if the change is made.
pub trait OrderLedger: Send + Sync {
    /// `queued → executing` (stamped with the time), answering the order as it is then: one
    /// conditional write in the common case. An order already `executing` (taken over from a
    /// delivery that failed) gets `trail` too.
    fn claim(&self, order_id: &str, trail: &[TrailEntry]) -> impl Future<Output = Result<Claim, PortError>> + Send;
    /// Records `decision` unless one is recorded already; answers the decision in force.
    fn decide(
        &self,
        order_id: &str,
        decision: &Decision,
        trail: &[TrailEntry],
    ) -> impl Future<Output = Result<Decision, PortError>> + Send;
    /// `executing → committed | failed` (with the reason when failed), stamped with the time.
    fn finish(
        &self,
        order_id: &str,
        status: OrderStatus,
        reason: Option<&str>,
        trail: &[TrailEntry],
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// A participant of the two-phase commit. Each step is idempotent; abort is allowed without a
/// prepare (and then refuses a later prepare).
pub trait Participant: Send + Sync {
    fn prepare(&self, order: &ExecutableOrder) -> impl Future<Output = Result<Vote, PortError>> + Send;
    fn commit(&self, order: &ExecutableOrder) -> impl Future<Output = Result<(), PortError>> + Send;
    fn abort(&self, order: &ExecutableOrder) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Where an executor may be made to stall or fail, to emulate the course's unreliable executors
/// and to test recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    BeforePrepare,
    /// After the decision is recorded, before phase two.
    BeforePhaseTwo,
}

pub trait Faults: Send + Sync {
    fn at(&self, point: FaultPoint) -> impl Future<Output = Result<(), Unavailable>> + Send;
}

/// No faults.
pub struct Reliable;

impl Faults for Reliable {
    async fn at(&self, _: FaultPoint) -> Result<(), Unavailable> {
        Ok(())
    }
}

/// The reason an order given up shows: the cause goes to the logs, with the order id, since the
/// reason is the shopper's to read.
pub const GAVE_UP: &str = "the order could not be executed: a service it needs kept failing";
/// ... and one a participant or the orders table refused for good.
pub const REFUSED: &str = "the order could not be executed: a service refused it";

/// How a delivery ended for an order that need not come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executed {
    Committed,
    Failed(String),
    /// A duplicate delivery of a finished order.
    AlreadyFinished(OrderStatus),
    /// No such order, and this was its last delivery.
    Unknown,
}

pub struct OrderExecutor<L, S, P> {
    pub ledger: L,
    pub stock: S,
    pub payment: P,
}

impl<L: OrderLedger, S: Participant, P: Participant> OrderExecutor<L, S, P> {
    /// Executes one delivery of `order_id`, with `faults` injected. A transient error (or a
    /// missing order, whose write may not be visible yet) means "deliver again later"; on the
    /// `last_delivery`, an order that has no commit decision is aborted and fails instead. A
    /// permanent error would come back on every delivery: the order is aborted and fails at once
    /// with it as the reason, or, where it cannot be (it is not executing, or commit was
    /// decided), the error is answered for the message to be dead-lettered.
    pub async fn execute(
        &self,
        order_id: &str,
        delivery: Delivery,
        faults: &impl Faults,
    ) -> Result<Executed, PortError> {
        match self.try_execute(order_id, delivery, faults).await {
            Err(error) if delivery.last || error.is_permanent() => self.give_up(order_id, error).await,
            answer => answer,
        }
    }

    async fn try_execute(
        &self,
        order_id: &str,
        delivery: Delivery,
        faults: &impl Faults,
    ) -> Result<Executed, PortError> {
        let order = match self.ledger.claim(order_id, &[TrailEntry::claimed(delivery)]).await? {
            Claim::Executing(order) => order,
            Claim::Finished(status) => return Ok(Executed::AlreadyFinished(status)),
            Claim::NotQueued(status) => {
                return Err(PortError::Permanent(format!("order {order_id} is {}, not queued", status.as_str())));
            }
            Claim::Unknown => return Err(PortError::NotFound(format!("order {order_id} in the orders table"))),
        };
        let decision = match order.decision.clone() {
            Some(decision) => decision,
            None if !order.has_valid_lines() => {
                let reason = "the order has no book and positive quantity on every line".to_string();
                let proposal = Decision::Abort { reason };
                self.ledger.decide(order_id, &proposal, &[TrailEntry::decided(&proposal)]).await?
            }
            None => {
                faults.at(FaultPoint::BeforePrepare).await?;
                let (stock, payment) = futures::join!(self.stock.prepare(&order), self.payment.prepare(&order));
                let (stock, payment) = (stock?, payment?);
                let mut trail = vec![
                    TrailEntry::voted(ParticipantName::Stock, &stock),
                    TrailEntry::voted(ParticipantName::Payment, &payment),
                ];
                let proposal = match (stock, payment) {
                    (Vote::Yes { .. }, Vote::Yes { .. }) => Decision::Commit,
                    (Vote::No(reason), _) | (_, Vote::No(reason)) => Decision::Abort { reason },
                };
                trail.push(TrailEntry::decided(&proposal));
                self.ledger.decide(order_id, &proposal, &trail).await?
            }
        };
        tracing::info!(order_id, ?decision, "decided");
        faults.at(FaultPoint::BeforePhaseTwo).await?;
        self.phase_two(&order, &decision).await?;
        self.finish(order_id, &decision).await
    }

    /// Tells both participants the decision; both are told even when one fails.
    async fn phase_two(&self, order: &ExecutableOrder, decision: &Decision) -> Result<(), PortError> {
        let (stock, payment) = match decision {
            Decision::Commit => futures::join!(self.stock.commit(order), self.payment.commit(order)),
            Decision::Abort { .. } => futures::join!(self.stock.abort(order), self.payment.abort(order)),
        };
        stock.and(payment)
    }

    async fn finish(&self, order_id: &str, decision: &Decision) -> Result<Executed, PortError> {
        let (status, reason, executed) = match decision {
            Decision::Commit => (OrderStatus::Committed, None, Executed::Committed),
            Decision::Abort { reason } => {
                (OrderStatus::Failed, Some(reason.as_str()), Executed::Failed(reason.clone()))
            }
        };
        let told = [ParticipantName::Stock, ParticipantName::Payment].map(|p| TrailEntry::told(p, decision));
        self.ledger.finish(order_id, status, reason, &told).await?;
        tracing::info!(order_id, status = status.as_str(), "order executed");
        Ok(executed)
    }

    /// The last delivery could not finish, or no delivery could: abort unless commit was decided
    /// (a commit decision must be carried out, so that order stays `executing` and its message
    /// goes to the DLQ).
    async fn give_up(&self, order_id: &str, error: PortError) -> Result<Executed, PortError> {
        // This delivery's claim is on the trail already.
        let order = match self.ledger.claim(order_id, &[]).await? {
            Claim::Executing(order) => order,
            Claim::Finished(status) => return Ok(Executed::AlreadyFinished(status)),
            Claim::NotQueued(_) => return Err(error),
            Claim::Unknown => {
                tracing::error!(order_id, %error, "dropping a message for an order that does not exist");
                return Ok(Executed::Unknown);
            }
        };
        tracing::error!(order_id, %error, permanent = error.is_permanent(), "giving the order up");
        let reason = if error.is_permanent() { REFUSED } else { GAVE_UP };
        let proposal = Decision::Abort { reason: reason.to_string() };
        let decision = self.ledger.decide(order_id, &proposal, &[TrailEntry::decided(&proposal)]).await?;
        if decision == Decision::Commit {
            return Err(error);
        }
        // A participant that cannot be told keeps its reservation: the order stays `executing`
        // with its abort decision, for a redrive from the dead-letter queue to finish.
        self.phase_two(&order, &decision).await?;
        self.finish(order_id, &decision).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::service::tests::block_on;

    /// Orders, and each order's trail.
    #[derive(Default)]
    struct Ledger(Mutex<BTreeMap<String, ExecutableOrder>>, Mutex<BTreeMap<String, Vec<TrailEntry>>>);

    impl Ledger {
        fn append(&self, order_id: &str, trail: &[TrailEntry]) {
            self.1.lock().unwrap().entry(order_id.to_string()).or_default().extend_from_slice(trail);
        }

        /// The order's trail, a line per step: `step [participant] [outcome] [#delivery]`.
        fn trail(&self, order_id: &str) -> Vec<String> {
            let trails = self.1.lock().unwrap();
            let entries = trails.get(order_id).map(Vec::as_slice).unwrap_or_default();
            let line = |e: &TrailEntry| {
                let mut words = vec![format!("{:?}", e.step).to_lowercase()];
                words.extend(e.participant.map(|p| format!("{p:?}").to_lowercase()));
                words.extend(e.outcome.clone());
                words.extend(e.delivery.map(|d| format!("#{d}")));
                words.join(" ")
            };
            entries.iter().map(line).collect()
        }
    }

    impl OrderLedger for Ledger {
        async fn claim(&self, order_id: &str, trail: &[TrailEntry]) -> Result<Claim, PortError> {
            let mut orders = self.0.lock().unwrap();
            let Some(order) = orders.get_mut(order_id) else { return Ok(Claim::Unknown) };
            if order.status.is_final() {
                return Ok(Claim::Finished(order.status));
            }
            if !OrderStatus::Executing.may_follow().contains(&order.status) {
                return Ok(Claim::NotQueued(order.status));
            }
            order.status = OrderStatus::Executing;
            self.append(order_id, trail);
            Ok(Claim::Executing(order.clone()))
        }

        async fn decide(
            &self,
            order_id: &str,
            decision: &Decision,
            trail: &[TrailEntry],
        ) -> Result<Decision, PortError> {
            let mut orders = self.0.lock().unwrap();
            let order = orders.get_mut(order_id).ok_or_else(|| PortError::NotFound("no order".into()))?;
            if order.decision.is_none() {
                order.decision = Some(decision.clone());
                self.append(order_id, trail);
            }
            Ok(order.decision.clone().unwrap())
        }

        async fn finish(
            &self,
            order_id: &str,
            status: OrderStatus,
            _: Option<&str>,
            trail: &[TrailEntry],
        ) -> Result<(), PortError> {
            let mut orders = self.0.lock().unwrap();
            let order = orders.get_mut(order_id).ok_or_else(|| PortError::NotFound("no order".into()))?;
            assert_eq!(order.status, OrderStatus::Executing, "finish only from executing");
            order.status = status;
            self.append(order_id, trail);
            Ok(())
        }
    }

    const FIRST: Delivery = Delivery { receives: 1, last: false };
    const SECOND: Delivery = Delivery { receives: 2, last: false };
    const LAST: Delivery = Delivery { receives: 5, last: true };

    /// Copies of one book: prepared reservations hold copies; commit keeps them, abort returns
    /// them.
    struct Stock {
        copies: Mutex<i64>,
        reservations: Mutex<BTreeMap<String, (i64, &'static str)>>,
        down: Mutex<bool>,
        /// What prepare fails with, if anything.
        prepare_fault: Mutex<Option<PortError>>,
    }

    impl Stock {
        fn new(copies: i64) -> Self {
            Self {
                copies: Mutex::new(copies),
                reservations: Mutex::default(),
                down: Mutex::new(false),
                prepare_fault: Mutex::new(None),
            }
        }

        fn check_up(&self) -> Result<(), PortError> {
            if *self.down.lock().unwrap() { Err(PortError::Transient("books database down".into())) } else { Ok(()) }
        }
    }

    impl Participant for Stock {
        async fn prepare(&self, order: &ExecutableOrder) -> Result<Vote, PortError> {
            self.check_up()?;
            if let Some(fault) = self.prepare_fault.lock().unwrap().clone() {
                return Err(fault);
            }
            let wanted: i64 = order.lines.iter().map(|(_, n)| n).sum();
            let mut reservations = self.reservations.lock().unwrap();
            if let Some((_, state)) = reservations.get(&order.order_id) {
                return Ok(if *state == "aborted" { Vote::No("aborted".into()) } else { Vote::YES });
            }
            let mut copies = self.copies.lock().unwrap();
            if *copies < wanted {
                return Ok(Vote::No("out of stock".into()));
            }
            *copies -= wanted;
            reservations.insert(order.order_id.clone(), (wanted, "prepared"));
            Ok(Vote::Yes { receipt: Some(format!("reservation {}", reservations.len())) })
        }

        async fn commit(&self, order: &ExecutableOrder) -> Result<(), PortError> {
            self.check_up()?;
            let mut reservations = self.reservations.lock().unwrap();
            let reservation = reservations.get_mut(&order.order_id).expect("commit after prepare");
            assert_ne!(reservation.1, "aborted");
            reservation.1 = "committed";
            Ok(())
        }

        async fn abort(&self, order: &ExecutableOrder) -> Result<(), PortError> {
            self.check_up()?;
            let mut reservations = self.reservations.lock().unwrap();
            let reservation = reservations.entry(order.order_id.clone()).or_insert((0, "aborted"));
            assert_ne!(reservation.1, "committed");
            if reservation.1 == "prepared" {
                *self.copies.lock().unwrap() += reservation.0;
            }
            reservation.1 = "aborted";
            Ok(())
        }
    }

    /// Payment that authorises everything and counts charges.
    #[derive(Default)]
    struct Payment {
        charged: AtomicUsize,
        states: Mutex<BTreeMap<String, &'static str>>,
    }

    impl Participant for Payment {
        async fn prepare(&self, order: &ExecutableOrder) -> Result<Vote, PortError> {
            let mut states = self.states.lock().unwrap();
            let state = states.entry(order.order_id.clone()).or_insert("authorized");
            Ok(if *state == "released" { Vote::No("payment released".into()) } else { Vote::YES })
        }

        async fn commit(&self, order: &ExecutableOrder) -> Result<(), PortError> {
            let mut states = self.states.lock().unwrap();
            if states.insert(order.order_id.clone(), "charged") != Some("charged") {
                self.charged.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        }

        async fn abort(&self, order: &ExecutableOrder) -> Result<(), PortError> {
            let mut states = self.states.lock().unwrap();
            assert_ne!(states.get(&order.order_id), Some(&"charged"));
            states.insert(order.order_id.clone(), "released");
            Ok(())
        }
    }

    /// Fails the first `n` times execution reaches `point`.
    struct FailAt(FaultPoint, AtomicUsize);

    impl Faults for FailAt {
        async fn at(&self, point: FaultPoint) -> Result<(), Unavailable> {
            if point == self.0 && self.1.load(Ordering::SeqCst) > 0 {
                self.1.fetch_sub(1, Ordering::SeqCst);
                return Err(Unavailable(format!("injected failure at {point:?}")));
            }
            Ok(())
        }
    }

    fn executor(copies: i64, orders: &[(&str, i64)]) -> OrderExecutor<Ledger, Stock, Payment> {
        let ledger = Ledger::default();
        for (id, quantity) in orders {
            ledger.0.lock().unwrap().insert(
                id.to_string(),
                ExecutableOrder {
                    order_id: id.to_string(),
                    status: OrderStatus::Queued,
                    lines: vec![("dune".into(), *quantity)],
                    amount_cents: 1000,
                    decision: None,
                },
            );
        }
        OrderExecutor { ledger, stock: Stock::new(copies), payment: Payment::default() }
    }

    fn status(executor: &OrderExecutor<Ledger, Stock, Payment>, id: &str) -> OrderStatus {
        executor.ledger.0.lock().unwrap()[id].status
    }

    #[test]
    fn orders_commit_while_there_is_stock_and_then_fail_with_the_reason() {
        let executor = executor(3, &[("o1", 2), ("o2", 2), ("o3", 1)]);
        let faults = Reliable;
        assert_eq!(block_on(executor.execute("o1", FIRST, &faults)), Ok(Executed::Committed));
        assert_eq!(block_on(executor.execute("o2", FIRST, &faults)), Ok(Executed::Failed("out of stock".into())));
        assert_eq!(block_on(executor.execute("o3", FIRST, &faults)), Ok(Executed::Committed));
        assert_eq!(*executor.stock.copies.lock().unwrap(), 0);
        assert_eq!(executor.payment.charged.load(Ordering::SeqCst), 2);
        assert_eq!(executor.payment.states.lock().unwrap()["o2"], "released");
        assert_eq!(status(&executor, "o2"), OrderStatus::Failed);
    }

    #[test]
    fn the_trail_shows_each_delivery_each_vote_the_decision_and_what_each_participant_was_told() {
        let executor = executor(2, &[("o1", 1), ("o2", 5)]);
        let faults = FailAt(FaultPoint::BeforePhaseTwo, AtomicUsize::new(1));
        assert!(block_on(executor.execute("o1", FIRST, &faults)).is_err());
        assert_eq!(block_on(executor.execute("o1", SECOND, &faults)), Ok(Executed::Committed));
        let committed = [
            "claim #1",
            "prepare stock yes (reservation 1)",
            "prepare payment yes",
            "decide commit",
            "claim #2",
            "commit stock",
            "commit payment",
        ];
        assert_eq!(executor.ledger.trail("o1"), committed);
        assert!(block_on(executor.execute("o2", FIRST, &Reliable)).is_ok());
        let aborted = [
            "claim #1",
            "prepare stock no: out of stock",
            "prepare payment yes",
            "decide abort: out of stock",
            "abort stock",
            "abort payment",
        ];
        assert_eq!(executor.ledger.trail("o2"), aborted);
        // A duplicate delivery of a finished order adds nothing.
        assert!(block_on(executor.execute("o1", SECOND, &Reliable)).is_ok());
        assert_eq!(executor.ledger.trail("o1").len(), committed.len());
    }

    #[test]
    fn a_duplicate_delivery_applies_nothing_twice() {
        let executor = executor(5, &[("o1", 2)]);
        let faults = Reliable;
        assert_eq!(block_on(executor.execute("o1", FIRST, &faults)), Ok(Executed::Committed));
        assert_eq!(
            block_on(executor.execute("o1", FIRST, &faults)),
            Ok(Executed::AlreadyFinished(OrderStatus::Committed))
        );
        assert_eq!(*executor.stock.copies.lock().unwrap(), 3);
        assert_eq!(executor.payment.charged.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_coordinator_that_died_after_deciding_is_finished_by_the_next_delivery_with_the_same_decision() {
        let executor = executor(1, &[("o1", 1)]);
        let faults = FailAt(FaultPoint::BeforePhaseTwo, AtomicUsize::new(1));
        assert!(block_on(executor.execute("o1", FIRST, &faults)).is_err());
        assert_eq!(status(&executor, "o1"), OrderStatus::Executing);
        assert_eq!(executor.ledger.0.lock().unwrap()["o1"].decision, Some(Decision::Commit));
        // Between the deliveries the stock would no longer allow it: the recorded decision wins.
        assert_eq!(block_on(executor.execute("o1", FIRST, &faults)), Ok(Executed::Committed));
        assert_eq!(*executor.stock.copies.lock().unwrap(), 0);
        assert_eq!(executor.payment.charged.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_last_delivery_aborts_an_undecided_order_and_fails_it_with_the_reason() {
        let executor = executor(5, &[("o1", 1)]);
        let faults = FailAt(FaultPoint::BeforePrepare, AtomicUsize::new(2));
        assert!(block_on(executor.execute("o1", FIRST, &faults)).is_err());
        let answer = block_on(executor.execute("o1", LAST, &faults)).unwrap();
        assert_eq!(answer, Executed::Failed(GAVE_UP.into()), "the cause is logged, not shown");
        let gave_up = ["claim #1", "claim #5", &format!("decide abort: {GAVE_UP}"), "abort stock", "abort payment"];
        assert_eq!(executor.ledger.trail("o1"), gave_up);
        assert_eq!(status(&executor, "o1"), OrderStatus::Failed);
        assert_eq!(executor.payment.states.lock().unwrap()["o1"], "released");
        // A late prepare of the aborted order is refused.
        let order = executor.ledger.0.lock().unwrap()["o1"].clone();
        assert_eq!(block_on(executor.stock.prepare(&order)), Ok(Vote::No("aborted".into())));
        assert_eq!(*executor.stock.copies.lock().unwrap(), 5);
    }

    #[test]
    fn an_abort_that_cannot_reach_a_participant_keeps_the_order_for_a_redrive() {
        let executor = executor(5, &[("o1", 1)]);
        let faults = Reliable;
        *executor.stock.down.lock().unwrap() = true;
        assert!(block_on(executor.execute("o1", LAST, &faults)).is_err());
        assert_eq!(status(&executor, "o1"), OrderStatus::Executing);
        assert!(matches!(executor.ledger.0.lock().unwrap()["o1"].decision, Some(Decision::Abort { .. })));
        *executor.stock.down.lock().unwrap() = false;
        let answer = block_on(executor.execute("o1", FIRST, &faults)).unwrap();
        assert_eq!(answer, Executed::Failed(GAVE_UP.into()));
        assert_eq!(*executor.stock.copies.lock().unwrap(), 5);
    }

    #[test]
    fn the_last_delivery_never_fails_an_order_decided_to_commit() {
        let executor = executor(5, &[("o1", 1)]);
        let faults = FailAt(FaultPoint::BeforePhaseTwo, AtomicUsize::new(2));
        assert!(block_on(executor.execute("o1", FIRST, &faults)).is_err());
        assert!(block_on(executor.execute("o1", LAST, &faults)).is_err());
        assert_eq!(status(&executor, "o1"), OrderStatus::Executing);
        assert_eq!(block_on(executor.execute("o1", FIRST, &faults)), Ok(Executed::Committed));
    }

    #[test]
    fn an_order_with_a_line_that_is_no_book_or_no_copies_fails_without_touching_stock() {
        let executor = executor(5, &[("o1", -2), ("o2", 0)]);
        for id in ["o1", "o2"] {
            let answer = block_on(executor.execute(id, FIRST, &Reliable)).unwrap();
            assert!(matches!(&answer, Executed::Failed(reason) if reason.contains("positive")), "{answer:?}");
        }
        assert_eq!(*executor.stock.copies.lock().unwrap(), 5);
    }

    #[test]
    fn a_transient_fault_is_retried_and_a_permanent_one_fails_the_order_at_once() {
        let executor = executor(5, &[("o1", 1), ("o2", 1)]);
        *executor.stock.prepare_fault.lock().unwrap() = Some(PortError::Transient("no leader".into()));
        assert_eq!(block_on(executor.execute("o1", FIRST, &Reliable)), Err(PortError::Transient("no leader".into())));
        assert_eq!(
            (status(&executor, "o1"), executor.ledger.0.lock().unwrap()["o1"].decision.clone()),
            (OrderStatus::Executing, None)
        );
        // Refused for good: no delivery could do better, so this first one ends the order.
        *executor.stock.prepare_fault.lock().unwrap() = Some(PortError::Permanent("malformed transaction".into()));
        assert_eq!(block_on(executor.execute("o2", FIRST, &Reliable)), Ok(Executed::Failed(REFUSED.into())));
        assert_eq!(status(&executor, "o2"), OrderStatus::Failed);
        assert_eq!(executor.payment.states.lock().unwrap()["o2"], "released");
        assert_eq!(*executor.stock.copies.lock().unwrap(), 5);
    }

    #[test]
    fn an_order_that_is_not_queued_is_refused_for_good_and_left_as_it_is() {
        let executor = executor(5, &[("o1", 1)]);
        executor.ledger.0.lock().unwrap().get_mut("o1").unwrap().status = OrderStatus::Approved;
        let answer = block_on(executor.execute("o1", FIRST, &Reliable));
        assert!(matches!(&answer, Err(PortError::Permanent(e)) if e.contains("approved, not queued")), "{answer:?}");
        assert_eq!(status(&executor, "o1"), OrderStatus::Approved);
    }

    #[test]
    fn an_unknown_order_is_retried_then_dropped() {
        let executor = executor(5, &[]);
        let faults = Reliable;
        assert!(block_on(executor.execute("nope", FIRST, &faults)).is_err());
        assert_eq!(block_on(executor.execute("nope", LAST, &faults)), Ok(Executed::Unknown));
    }
}
