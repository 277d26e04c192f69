//! No stranded orders. The checkout records an approved order `queued` and then sends its
//! message; if the send fails, or the function dies between the two, the order has no message and
//! no executor would ever take it. The sweeper, run on a schedule, finds orders `queued` for
//! longer than [`SweepSettings::stranded_after`] and sends their message again. A message it sent
//! is given [`SweepSettings::resend_after`] to be executed (its deliveries and the dead-letter
//! queue's rules bound that); an order still `queued` after it (its message was lost, expired or
//! dead-lettered before any executor claimed the order) is taken up again. An order taken up
//! [`SweepSettings::max_attempts`] times is failed with a reason, so every order ends `committed`
//! or `failed` in bounded time. A message sent twice (the checkout's was only slow) is harmless:
//! executors apply an order once.

use std::future::Future;

use serde::Serialize;

use crate::orchestrator::OrderQueue;
use crate::service::Unavailable;

/// An order found `queued` for too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrandedOrder {
    pub order_id: String,
    /// How often the sweeper took it up before.
    pub attempts: u32,
}

/// The orders table, as the sweeper uses it. Times are seconds since the Unix epoch. An order is
/// stranded at `now` when it is `queued` since before `cutoff` (or since a time not recorded) and
/// the sweeper has not put it off past `now`.
pub trait QueuedOrders: Send + Sync {
    fn stranded(&self, cutoff: u64, now: u64) -> impl Future<Output = Result<Vec<StrandedOrder>, Unavailable>> + Send;
    /// Counts an attempt and puts the order off until `until`, if it is still stranded (a
    /// conditional write, so two sweeps cannot both send): whether it was.
    fn begin_attempt(
        &self,
        order_id: &str,
        cutoff: u64,
        now: u64,
        until: u64,
    ) -> impl Future<Output = Result<bool, Unavailable>> + Send;
    /// Puts the order off until `until`: its message was sent.
    fn put_off(&self, order_id: &str, until: u64) -> impl Future<Output = Result<(), Unavailable>> + Send;
    /// `queued → failed` with `reason`, at `at` (RFC 3339), if it is still queued: whether it was.
    fn fail(&self, order_id: &str, reason: &str, at: &str) -> impl Future<Output = Result<bool, Unavailable>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepSettings {
    /// Seconds an order may wait `queued` before it counts as stranded: well past a checkout's
    /// own send, so that the sweeper seldom sends a message twice. A send that failed is tried
    /// again this long after.
    pub stranded_after: u64,
    /// Seconds a message the sweeper sent has to be executed before its order is taken up again:
    /// past all its deliveries (the queue's `maxReceiveCount` times its visibility timeout).
    pub resend_after: u64,
    /// Times an order is taken up before it is failed.
    pub max_attempts: u32,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Orders whose message was sent.
    pub queued: Vec<String>,
    /// Orders failed after their last attempt.
    pub failed: Vec<String>,
    /// Orders whose message could not be sent, or whose record could not be written, this time;
    /// they are taken up again.
    pub retrying: Vec<String>,
}

/// The reason a failed order shows.
pub const UNQUEUED_REASON: &str = "the order could not be queued for execution";

pub struct OrderSweeper<O, Q> {
    pub orders: O,
    pub queue: Q,
    pub settings: SweepSettings,
}

/// What taking up one order did.
enum TakenUp {
    Queued,
    Failed,
    Retrying,
    /// Another sweep took it, or it was executed meanwhile.
    Skipped,
}

impl<O: QueuedOrders, Q: OrderQueue> OrderSweeper<O, Q> {
    /// One sweep at `now` (seconds since the epoch; `at` the same as RFC 3339). An error means
    /// the table could not be read; the next sweep tries again. An order whose writes fail is
    /// logged and left for the next sweep, and the others are still taken up.
    pub async fn sweep(&self, now: u64, at: &str) -> Result<SweepReport, Unavailable> {
        let cutoff = now.saturating_sub(self.settings.stranded_after);
        let mut report = SweepReport::default();
        for order in self.orders.stranded(cutoff, now).await? {
            let id = order.order_id.clone();
            match self.take_up(order, cutoff, now, at).await {
                Ok(TakenUp::Queued) => report.queued.push(id),
                Ok(TakenUp::Failed) => report.failed.push(id),
                Ok(TakenUp::Retrying) => report.retrying.push(id),
                Ok(TakenUp::Skipped) => {}
                Err(e) => {
                    tracing::warn!(order_id = id, error = %e, "a stranded order could not be taken up; trying later");
                    report.retrying.push(id);
                }
            }
        }
        Ok(report)
    }

    async fn take_up(&self, order: StrandedOrder, cutoff: u64, now: u64, at: &str) -> Result<TakenUp, Unavailable> {
        let id = order.order_id;
        if order.attempts >= self.settings.max_attempts {
            if !self.orders.fail(&id, UNQUEUED_REASON, at).await? {
                return Ok(TakenUp::Skipped);
            }
            tracing::error!(order_id = id, attempts = order.attempts, "a stranded order was failed");
            return Ok(TakenUp::Failed);
        }
        let retry_at = now.saturating_add(self.settings.stranded_after);
        if !self.orders.begin_attempt(&id, cutoff, now, retry_at).await? {
            return Ok(TakenUp::Skipped);
        }
        if let Err(e) = self.queue.enqueue(&id).await {
            tracing::warn!(order_id = id, error = %e, "a stranded order could not be queued; trying later");
            return Ok(TakenUp::Retrying);
        }
        tracing::warn!(order_id = id, attempt = order.attempts + 1, "a stranded order was queued again");
        self.orders.put_off(&id, now.saturating_add(self.settings.resend_after)).await?;
        Ok(TakenUp::Queued)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::order::OrderStatus;
    use crate::service::tests::block_on;
    use crate::testing::MemoryQueue;

    /// An order as the sweeper's part of the table sees it.
    #[derive(Debug, Clone, PartialEq)]
    struct Row {
        status: OrderStatus,
        queued_at: u64,
        put_off_until: Option<u64>,
        attempts: u32,
    }

    /// The orders table in memory; writes for the order `broken` fail.
    #[derive(Default)]
    struct Table {
        rows: Mutex<BTreeMap<String, Row>>,
        broken: Mutex<Option<String>>,
    }

    impl Table {
        fn with(orders: &[(&str, OrderStatus, u64)]) -> Self {
            let rows = orders.iter().map(|(id, status, since)| {
                (id.to_string(), Row { status: *status, queued_at: *since, put_off_until: None, attempts: 0 })
            });
            Self { rows: Mutex::new(rows.collect()), broken: Mutex::default() }
        }

        fn row(&self, id: &str) -> Row {
            self.rows.lock().unwrap()[id].clone()
        }

        fn check(&self, order_id: &str) -> Result<(), Unavailable> {
            match self.broken.lock().unwrap().as_deref() {
                Some(broken) if broken == order_id => Err(Unavailable("the table is down".into())),
                _ => Ok(()),
            }
        }
    }

    fn is_stranded(row: &Row, cutoff: u64, now: u64) -> bool {
        row.status == OrderStatus::Queued && row.queued_at < cutoff && row.put_off_until.is_none_or(|t| t < now)
    }

    impl QueuedOrders for Table {
        async fn stranded(&self, cutoff: u64, now: u64) -> Result<Vec<StrandedOrder>, Unavailable> {
            let rows = self.rows.lock().unwrap();
            let stranded = rows.iter().filter(|(_, row)| is_stranded(row, cutoff, now));
            Ok(stranded.map(|(id, row)| StrandedOrder { order_id: id.clone(), attempts: row.attempts }).collect())
        }

        async fn begin_attempt(&self, order_id: &str, cutoff: u64, now: u64, until: u64) -> Result<bool, Unavailable> {
            self.check(order_id)?;
            let mut rows = self.rows.lock().unwrap();
            let row = rows.get_mut(order_id).filter(|row| is_stranded(row, cutoff, now));
            Ok(row.map(|row| (row.attempts, row.put_off_until) = (row.attempts + 1, Some(until))).is_some())
        }

        async fn put_off(&self, order_id: &str, until: u64) -> Result<(), Unavailable> {
            if let Some(row) = self.rows.lock().unwrap().get_mut(order_id) {
                row.put_off_until = Some(until);
            }
            Ok(())
        }

        async fn fail(&self, order_id: &str, _: &str, _: &str) -> Result<bool, Unavailable> {
            let mut rows = self.rows.lock().unwrap();
            let row = rows.get_mut(order_id).filter(|row| row.status == OrderStatus::Queued);
            Ok(row.map(|row| row.status = OrderStatus::Failed).is_some())
        }
    }

    fn sweeper(orders: &[(&str, OrderStatus, u64)]) -> OrderSweeper<Table, MemoryQueue> {
        let settings = SweepSettings { stranded_after: 60, resend_after: 1000, max_attempts: 3 };
        OrderSweeper { orders: Table::with(orders), queue: MemoryQueue::default(), settings }
    }

    #[test]
    fn orders_queued_too_long_are_sent_again_and_given_time_to_be_executed() {
        let s = sweeper(&[
            ("stranded", OrderStatus::Queued, 1000),
            ("recent", OrderStatus::Queued, 1050),
            ("executing", OrderStatus::Executing, 1000),
            ("committed", OrderStatus::Committed, 1000),
        ]);
        let report = block_on(s.sweep(1100, "t")).unwrap();
        assert_eq!(report, SweepReport { queued: vec!["stranded".into()], ..Default::default() });
        // Sent: left to the executors for `resend_after`.
        assert_eq!(block_on(s.sweep(1500, "t")).unwrap().queued, ["recent"]);
        // Still queued after it: its message was lost too, so it is sent once more.
        assert_eq!(block_on(s.sweep(2101, "t")).unwrap().queued, ["stranded"]);
        assert_eq!(*s.queue.sent.lock().unwrap(), ["stranded", "recent", "stranded"]);
        assert_eq!(s.orders.row("stranded").attempts, 2);
    }

    #[test]
    fn an_order_whose_message_cannot_be_sent_is_tried_again_then_failed() {
        let s = sweeper(&[("o1", OrderStatus::Queued, 1000)]);
        s.queue.down.store(true, Ordering::SeqCst);
        let mut now = 1100;
        for attempt in 1..=3 {
            let report = block_on(s.sweep(now, "t")).unwrap();
            assert_eq!(report.retrying, ["o1"], "attempt {attempt}");
            // Not tried again before it waited `stranded_after` once more.
            assert_eq!(block_on(s.sweep(now + 30, "t")).unwrap(), SweepReport::default());
            now += 61;
        }
        let report = block_on(s.sweep(now, "t")).unwrap();
        assert_eq!(report.failed, ["o1"]);
        assert_eq!(s.orders.row("o1").status, OrderStatus::Failed);
        assert!(s.queue.sent.lock().unwrap().is_empty());
    }

    #[test]
    fn a_queue_that_comes_back_gets_the_message() {
        let s = sweeper(&[("o1", OrderStatus::Queued, 1000)]);
        s.queue.down.store(true, Ordering::SeqCst);
        assert_eq!(block_on(s.sweep(1100, "t")).unwrap().retrying, ["o1"]);
        s.queue.down.store(false, Ordering::SeqCst);
        assert_eq!(block_on(s.sweep(1200, "t")).unwrap().queued, ["o1"]);
        let row = Row { status: OrderStatus::Queued, queued_at: 1000, put_off_until: Some(2200), attempts: 2 };
        assert_eq!(s.orders.row("o1"), row);
    }

    #[test]
    fn an_order_whose_record_cannot_be_written_does_not_stop_the_sweep() {
        let s = sweeper(&[("a", OrderStatus::Queued, 1000), ("b", OrderStatus::Queued, 1000)]);
        *s.orders.broken.lock().unwrap() = Some("a".into());
        let report = block_on(s.sweep(1100, "t")).unwrap();
        assert_eq!((report.queued, report.retrying), (vec!["b".to_string()], vec!["a".to_string()]));
    }
}
