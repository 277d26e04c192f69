//! No stranded orders. The checkout records an approved order `queued` and then sends its
//! message; if the send fails, or the function dies between the two, the order has no message and
//! no executor would ever take it. The sweeper, run on a schedule, finds orders `queued` for
//! longer than [`SweepSettings::stranded_after`] and sends their message again. An order it has
//! sent once is the executors' from then on (a message that cannot be executed ends in the
//! dead-letter queue and its order `failed`); an order whose message it could not send in
//! [`SweepSettings::max_attempts`] tries is failed with a reason, so every order ends `committed`
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
    /// How often the sweeper tried to send its message before.
    pub attempts: u32,
}

/// The orders table, as the sweeper uses it. Times are seconds since the Unix epoch.
pub trait QueuedOrders: Send + Sync {
    /// Orders `queued` since before `cutoff` whose message the sweeper has not sent.
    fn stranded(&self, cutoff: u64) -> impl Future<Output = Result<Vec<StrandedOrder>, Unavailable>> + Send;
    /// Counts an attempt to send the order's message, restarting its wait at `now`, if it is still
    /// stranded as of `cutoff` (a conditional write, so two sweeps cannot both send): whether it was.
    fn begin_attempt(
        &self,
        order_id: &str,
        cutoff: u64,
        now: u64,
    ) -> impl Future<Output = Result<bool, Unavailable>> + Send;
    /// Notes that the message was sent: the order is no longer the sweeper's.
    fn sent(&self, order_id: &str) -> impl Future<Output = Result<(), Unavailable>> + Send;
    /// `queued → failed` with `reason`, at `at` (RFC 3339), if it is still queued: whether it was.
    fn fail(&self, order_id: &str, reason: &str, at: &str) -> impl Future<Output = Result<bool, Unavailable>> + Send;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepSettings {
    /// Seconds an order may wait `queued` before it counts as stranded: well past a checkout's
    /// own send, so that the sweeper seldom sends a message twice.
    pub stranded_after: u64,
    /// Tries to send an order's message before the order is failed.
    pub max_attempts: u32,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Orders whose message was sent.
    pub queued: Vec<String>,
    /// Orders failed after their last try.
    pub failed: Vec<String>,
    /// Orders whose message could not be sent this time; they are tried again.
    pub retrying: Vec<String>,
}

/// The reason a failed order shows.
pub const UNQUEUED_REASON: &str = "the order could not be queued for execution";

pub struct OrderSweeper<O, Q> {
    pub orders: O,
    pub queue: Q,
    pub settings: SweepSettings,
}

impl<O: QueuedOrders, Q: OrderQueue> OrderSweeper<O, Q> {
    /// One sweep at `now` (seconds since the epoch; `at` the same as RFC 3339). An error means
    /// the table could not be read; the next sweep tries again.
    pub async fn sweep(&self, now: u64, at: &str) -> Result<SweepReport, Unavailable> {
        let cutoff = now.saturating_sub(self.settings.stranded_after);
        let mut report = SweepReport::default();
        for order in self.orders.stranded(cutoff).await? {
            let id = order.order_id;
            if order.attempts >= self.settings.max_attempts {
                if self.orders.fail(&id, UNQUEUED_REASON, at).await? {
                    tracing::error!(order_id = id, attempts = order.attempts, "a stranded order was failed");
                    report.failed.push(id);
                }
                continue;
            }
            if !self.orders.begin_attempt(&id, cutoff, now).await? {
                continue;
            }
            match self.queue.enqueue(&id).await {
                Ok(()) => {
                    self.orders.sent(&id).await?;
                    tracing::warn!(order_id = id, "a stranded order was queued again");
                    report.queued.push(id);
                }
                Err(e) => {
                    tracing::warn!(order_id = id, error = %e, "a stranded order could not be queued; trying later");
                    report.retrying.push(id);
                }
            }
        }
        Ok(report)
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
        waiting_since: u64,
        attempts: u32,
        sent: bool,
    }

    #[derive(Default)]
    struct Table(Mutex<BTreeMap<String, Row>>);

    impl Table {
        fn with(orders: &[(&str, OrderStatus, u64)]) -> Self {
            let rows = orders.iter().map(|(id, status, since)| {
                (id.to_string(), Row { status: *status, waiting_since: *since, attempts: 0, sent: false })
            });
            Self(Mutex::new(rows.collect()))
        }

        fn row(&self, id: &str) -> Row {
            self.0.lock().unwrap()[id].clone()
        }
    }

    fn is_stranded(row: &Row, cutoff: u64) -> bool {
        row.status == OrderStatus::Queued && row.waiting_since < cutoff && !row.sent
    }

    impl QueuedOrders for Table {
        async fn stranded(&self, cutoff: u64) -> Result<Vec<StrandedOrder>, Unavailable> {
            let rows = self.0.lock().unwrap();
            let stranded = rows.iter().filter(|(_, row)| is_stranded(row, cutoff));
            Ok(stranded.map(|(id, row)| StrandedOrder { order_id: id.clone(), attempts: row.attempts }).collect())
        }

        async fn begin_attempt(&self, order_id: &str, cutoff: u64, now: u64) -> Result<bool, Unavailable> {
            let mut rows = self.0.lock().unwrap();
            let row = rows.get_mut(order_id).filter(|row| is_stranded(row, cutoff));
            Ok(row.map(|row| (row.attempts, row.waiting_since) = (row.attempts + 1, now)).is_some())
        }

        async fn sent(&self, order_id: &str) -> Result<(), Unavailable> {
            if let Some(row) = self.0.lock().unwrap().get_mut(order_id) {
                row.sent = true;
            }
            Ok(())
        }

        async fn fail(&self, order_id: &str, _: &str, _: &str) -> Result<bool, Unavailable> {
            let mut rows = self.0.lock().unwrap();
            let row = rows.get_mut(order_id).filter(|row| row.status == OrderStatus::Queued);
            Ok(row.map(|row| row.status = OrderStatus::Failed).is_some())
        }
    }

    fn sweeper(orders: &[(&str, OrderStatus, u64)]) -> OrderSweeper<Table, MemoryQueue> {
        let settings = SweepSettings { stranded_after: 60, max_attempts: 3 };
        OrderSweeper { orders: Table::with(orders), queue: MemoryQueue::default(), settings }
    }

    #[test]
    fn only_orders_queued_too_long_are_sent_again_and_only_once() {
        let s = sweeper(&[
            ("stranded", OrderStatus::Queued, 1000),
            ("recent", OrderStatus::Queued, 1050),
            ("executing", OrderStatus::Executing, 1000),
            ("committed", OrderStatus::Committed, 1000),
        ]);
        let report = block_on(s.sweep(1100, "t")).unwrap();
        assert_eq!(report, SweepReport { queued: vec!["stranded".into()], ..Default::default() });
        // Sent: it is the executors' now, however long it waits.
        let later = block_on(s.sweep(5000, "t")).unwrap();
        assert_eq!(later.queued, ["recent"]);
        assert_eq!(*s.queue.sent.lock().unwrap(), ["stranded", "recent"]);
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
        assert_eq!(
            s.orders.row("o1"),
            Row { status: OrderStatus::Queued, waiting_since: 1200, attempts: 2, sent: true }
        );
    }
}
