//! The order executor's Lambda edge: a batch of order-queue messages in, the ids of the messages
//! to deliver again out (`batchItemFailures`), as an SQS event source mapping with
//! `ReportBatchItemFailures` expects. Also the course's emulation knobs.

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use books_db_client::{BooksDb, ClientOptions};
use bookstore_domain::execution::{Delivery, Executed, FaultPoint, Faults, OrderExecutor, OrderLedger, Participant};
use bookstore_domain::port_error::PortError;
use bookstore_domain::service::Unavailable;
use bookstore_telemetry::context::TraceHeaders;
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

use crate::metrics::{self, InFlight};

/// How the executor treats deliveries.
pub struct DeliverySettings {
    /// The queue's `maxReceiveCount`: the delivery with this count is the last one.
    pub max_receives: u32,
    /// A failed message comes back after this many seconds times its receive count (instead of the
    /// whole visibility timeout), when the queue can be told.
    pub retry_delay_seconds: i32,
    /// The queue's visibility timeout: a message in hand is made invisible for this long again
    /// every third of it, while its execution runs.
    pub visibility_timeout_seconds: i32,
    /// An execution still running after this long is given up (the message comes back), so the
    /// function answers before its own timeout.
    pub execution_limit: Duration,
    pub faults: FaultKnobs,
}

/// The order queue, for making a failed message visible again sooner, and its dead-letter
/// queue, for a message that would fail on every delivery.
pub struct RetryQueue {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
    /// Where such a message goes at once; without one it comes back until the queue's redrive
    /// policy moves it.
    pub dead_letter_queue_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderMessage {
    order_id: String,
}

/// Executes every message of the batch side by side; answers the ones to deliver again.
pub async fn execute_batch<L: OrderLedger, S: Participant, P: Participant>(
    executor: &OrderExecutor<L, S, P>,
    settings: &DeliverySettings,
    queue: Option<&RetryQueue>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let results = futures::future::join_all(event.records.iter().map(|message| {
        // Each message continues the trace of the checkout that queued it.
        let span = tracing::info_span!(
            "order message",
            message_id = message.message_id.as_deref(),
            receives = receive_count(message),
            order_id = tracing::field::Empty,
        );
        message_trace(message).follow(&span);
        async move {
            let execution = std::pin::pin!(async {
                let limited =
                    tokio::time::timeout(settings.execution_limit, execute_one(executor, settings, queue, message));
                limited.await.unwrap_or_else(|_| {
                    let (message_id, limit) = (message.message_id.as_deref(), settings.execution_limit);
                    tracing::warn!(message_id, ?limit, "execution took too long; the message will come back");
                    metrics::execution_ended("timed_out", None);
                    false
                })
            });
            let keep_hidden = std::pin::pin!(keep_invisible(queue, settings, message));
            match futures::future::select(execution, keep_hidden).await {
                futures::future::Either::Left((done, _)) => done,
                futures::future::Either::Right(((), execution)) => execution.await,
            }
        }
        .instrument(span)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    for (message, ok) in event.records.iter().zip(results) {
        if ok {
            continue;
        }
        // A failure without an id fails the whole batch, as on AWS.
        let id = message.message_id.clone().unwrap_or_default();
        if let (Some(queue), Some(receipt)) = (queue, &message.receipt_handle) {
            let delay = settings.retry_delay_seconds.saturating_mul(receive_count(message).try_into().unwrap_or(1));
            let change = queue
                .client
                .change_message_visibility()
                .queue_url(&queue.queue_url)
                .receipt_handle(receipt)
                .visibility_timeout(delay.clamp(0, 43_200))
                .send()
                .await;
            if let Err(e) = change {
                tracing::warn!(message_id = id, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not shorten the retry");
            }
        }
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}

/// Renews the message's invisibility every third of the visibility timeout, so that a long
/// execution keeps its lock; returns only if the queue cannot be told.
async fn keep_invisible(queue: Option<&RetryQueue>, settings: &DeliverySettings, message: &SqsMessage) {
    let (Some(queue), Some(receipt)) = (queue, &message.receipt_handle) else { return };
    let period = Duration::from_secs(u64::try_from(settings.visibility_timeout_seconds / 3).unwrap_or(0).max(1));
    loop {
        tokio::time::sleep(period).await;
        let renewed = queue
            .client
            .change_message_visibility()
            .queue_url(&queue.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(settings.visibility_timeout_seconds)
            .send()
            .await;
        if let Err(e) = renewed {
            let error = aws_sdk_sqs::error::DisplayErrorContext(e);
            tracing::warn!(message_id = message.message_id.as_deref(), %error, "could not keep the message hidden");
            return;
        }
    }
}

/// The trace a message carries in its attributes (see `SqsOrderQueue`).
fn message_trace(message: &SqsMessage) -> TraceHeaders {
    TraceHeaders::from_lookup(|name| message.message_attributes.get(name)?.string_value.as_deref())
}

/// How long ago the message was first sent, from its `SentTimestamp` (milliseconds).
fn since_sent(message: &SqsMessage) -> Option<f64> {
    let sent: u128 = message.attributes.get("SentTimestamp")?.parse().ok()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    Some(now.saturating_sub(sent) as f64 / 1000.0)
}

fn receive_count(message: &SqsMessage) -> u32 {
    message.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1)
}

/// Whether the message is done with (it must not come back).
async fn execute_one<L: OrderLedger, S: Participant, P: Participant>(
    executor: &OrderExecutor<L, S, P>,
    settings: &DeliverySettings,
    queue: Option<&RetryQueue>,
    message: &SqsMessage,
) -> bool {
    let message_id = message.message_id.as_deref().unwrap_or_default();
    let receives = receive_count(message);
    let body = message.body.as_deref().unwrap_or_default();
    let Ok(OrderMessage { order_id }) = serde_json::from_str(body) else {
        // Kept in the dead-letter queue, where it can be looked at.
        tracing::error!(message_id, receives, "a message that is not an order; dead-lettering it");
        let done = dead_letter(queue, message, "not an order").await;
        metrics::execution_ended(if done { "dead_lettered" } else { "retry" }, None);
        return done;
    };
    tracing::Span::current().record("order_id", order_id.as_str());
    if let Some(seconds) = since_sent(message) {
        metrics::delivered_after(seconds, receives);
    }
    let last = receives >= settings.max_receives;
    let faults = settings.faults.current().await.for_delivery(last);
    let _in_flight = InFlight::execution();
    let started = Instant::now();
    let executed = executor.execute(&order_id, Delivery { receives, last }, &faults).await;
    let seconds = Some(started.elapsed().as_secs_f64());
    match executed {
        Ok(executed) => {
            tracing::info!(order_id, message_id, receives, ?executed, "message done");
            let outcome = match executed {
                Executed::Committed => "committed",
                Executed::Failed(_) => "failed",
                Executed::AlreadyFinished(_) => "duplicate",
                Executed::Unknown => "unknown",
            };
            metrics::execution_ended(outcome, seconds);
            true
        }
        Err(e @ PortError::Permanent(_)) => {
            tracing::error!(order_id, message_id, receives, error = %e, "refused for good; dead-lettering the message");
            let done = dead_letter(queue, message, "refused").await;
            // If the copy could not be sent, the message comes back.
            metrics::execution_ended(if done { "dead_lettered" } else { "retry" }, seconds);
            done
        }
        Err(e) => {
            tracing::warn!(order_id, message_id, receives, last, error = %e, "order not finished; it will come back");
            metrics::execution_ended("retry", seconds);
            false
        }
    }
}

/// The message attribute a message dead-lettered by the executor carries: why.
pub const DEAD_LETTER_REASON: &str = "deadLetterReason";

/// Sends a copy of `message` to the dead-letter queue, for a message no delivery could finish,
/// with `reason` (a fixed word; the cause is in the logs): whether it is there (then the
/// original is done with). If not, the message comes back, and the queue's redrive policy moves
/// it after its last delivery.
async fn dead_letter(queue: Option<&RetryQueue>, message: &SqsMessage, reason: &str) -> bool {
    let Some((queue, url)) = queue.and_then(|q| Some((q, q.dead_letter_queue_url.as_deref()?))) else {
        return false;
    };
    let body = message.body.clone().unwrap_or_default();
    let attribute =
        aws_sdk_sqs::types::MessageAttributeValue::builder().data_type("String").string_value(reason).build();
    let attribute = match attribute {
        Ok(attribute) => attribute,
        Err(e) => {
            tracing::error!(error = %e, "could not make the dead-letter reason");
            return false;
        }
    };
    // The copy keeps the order's trace, for whoever looks into the dead-letter queue.
    let mut attributes = crate::queue::trace_attributes(message_trace(message));
    attributes.insert(DEAD_LETTER_REASON.to_string(), attribute);
    let send = queue.client.send_message().queue_url(url).message_body(body).set_message_attributes(Some(attributes));
    match send.send().await {
        Ok(_) => true,
        Err(e) => {
            let error = aws_sdk_sqs::error::DisplayErrorContext(e);
            tracing::warn!(message_id = message.message_id.as_deref(), %error, "could not dead-letter the message");
            false
        }
    }
}

/// Where the emulation knobs set while the system runs are kept (the fault controls write it):
/// `{"delayMs": [MIN, MAX] | null, "failureRate": 0..1}`. Absent, the configured ones hold.
pub const EXECUTOR_KNOBS_KEY: &str = "config/executor";

/// The longest emulated delay: the course's, and well inside the execution limit.
pub const MAX_DELAY_MS: u64 = 30_000;

/// The course's unreliable executor, off unless configured: a random delay before preparing,
/// and a failure at a random step with the given probability. Never on a message's last
/// delivery, so the knobs exercise recovery without sending orders to the dead-letter queue.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmulatedFaults {
    /// Milliseconds, inclusive.
    pub delay_ms: Option<(u64, u64)>,
    pub failure_rate: f64,
}

impl EmulatedFaults {
    /// From `EXECUTOR_DELAY_MS` (`min-max`) and `EXECUTOR_FAILURE_RATE` (0 to 1), blank meaning
    /// unset; a malformed value is an error naming the variable.
    pub fn parse(delay_ms: Option<&str>, failure_rate: Option<&str>) -> Result<Self, String> {
        let delay_error = |text: &str| {
            format!(
                "EXECUTOR_DELAY_MS must be MIN-MAX milliseconds, MIN at most MAX at most {MAX_DELAY_MS}, not {text:?}"
            )
        };
        let rate_error = |text: &str| format!("EXECUTOR_FAILURE_RATE must be between 0 and 1, not {text:?}");
        let mut faults = Self::default();
        if let Some(text) = delay_ms.map(str::trim).filter(|v| !v.is_empty()) {
            let range = text.split_once('-').map(|(a, b)| (a.trim().parse::<u64>(), b.trim().parse::<u64>()));
            let Some((Ok(min), Ok(max))) = range else { return Err(delay_error(text)) };
            faults.delay_ms = Some((min, max));
            if faults.validate() == Err(KnobError::Delay) {
                return Err(delay_error(text));
            }
        }
        if let Some(text) = failure_rate.map(str::trim).filter(|v| !v.is_empty()) {
            faults.failure_rate = text.parse::<f64>().map_err(|_| rate_error(text))?;
            if faults.validate().is_err() {
                return Err(rate_error(text));
            }
        }
        Ok(faults)
    }

    /// Whether the knobs make sense: a delay range within [`MAX_DELAY_MS`], a probability.
    pub fn validate(&self) -> Result<(), KnobError> {
        if self.delay_ms.is_some_and(|(min, max)| min > max || max > MAX_DELAY_MS) {
            return Err(KnobError::Delay);
        }
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return Err(KnobError::Rate);
        }
        Ok(())
    }

    /// These faults for one delivery: none on the last.
    pub fn for_delivery(&self, last: bool) -> DeliveryFaults {
        let point = [FaultPoint::BeforePrepare, FaultPoint::BeforePhaseTwo][fastrand::usize(0..2)];
        let fail = !last && fastrand::f64() < self.failure_rate;
        DeliveryFaults { delay_ms: self.delay_ms, fail_at: fail.then_some(point) }
    }
}

/// The faults of one delivery, drawn in advance.
pub struct DeliveryFaults {
    delay_ms: Option<(u64, u64)>,
    fail_at: Option<FaultPoint>,
}

impl Faults for DeliveryFaults {
    async fn at(&self, point: FaultPoint) -> Result<(), Unavailable> {
        if let (FaultPoint::BeforePrepare, Some((min, max))) = (point, self.delay_ms) {
            tokio::time::sleep(Duration::from_millis(fastrand::u64(min..=max))).await;
        }
        if self.fail_at == Some(point) {
            return Err(Unavailable(format!("emulated executor failure at {point:?}")));
        }
        Ok(())
    }
}

/// Knobs out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KnobError {
    #[error("the delay must be MIN-MAX with MIN at most MAX and MAX at most {MAX_DELAY_MS} ms")]
    Delay,
    #[error("the failure rate must be between 0 and 1")]
    Rate,
}

/// The knobs in force for a delivery: those kept under [`EXECUTOR_KNOBS_KEY`] in the books
/// database when set, else the configured ones.
pub struct FaultKnobs {
    configured: EmulatedFaults,
    /// Where set knobs are read from; `None` keeps the configured ones.
    books_db: Option<BooksDb>,
    /// The knobs last read, and when: a busy executor reads them at most every
    /// [`KNOBS_KEPT_FOR`], not once per delivery.
    last_read: std::sync::Mutex<Option<(Instant, EmulatedFaults)>>,
    kept_for: Duration,
}

/// How long knobs read from the books database are used before they are read again.
pub const KNOBS_KEPT_FOR: Duration = Duration::from_millis(500);

impl FaultKnobs {
    /// The configured knobs, and a client of the books database that gives up on a node that
    /// does not answer within a fraction of a second (a paused leader must not hold up the
    /// delivery for long: the knobs are then the configured ones).
    pub fn new(configured: EmulatedFaults, books_db_urls: &str) -> Result<Self, books_db_client::Error> {
        let endpoints = books_db_urls.split(',').map(str::trim).filter(|s| !s.is_empty());
        let books_db = Some(BooksDb::with_options(endpoints, ClientOptions::glance())?);
        Ok(Self { configured, books_db, last_read: std::sync::Mutex::default(), kept_for: KNOBS_KEPT_FOR })
    }

    /// Only these knobs, never changed while running.
    pub fn fixed(configured: EmulatedFaults) -> Self {
        Self { configured, books_db: None, last_read: std::sync::Mutex::default(), kept_for: KNOBS_KEPT_FOR }
    }

    /// The knobs for the next delivery: a change takes effect within [`KNOBS_KEPT_FOR`] and a
    /// read (a possibly stale one), not at a linearization point.
    pub async fn current(&self) -> EmulatedFaults {
        let Some(books_db) = &self.books_db else { return self.configured.clone() };
        // A poisoned lock holds a whole value still (each update is one assignment).
        let kept = self.last_read.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some((at, knobs)) = kept
            && at.elapsed() < self.kept_for
        {
            return knobs;
        }
        let knobs = self.read(books_db).await;
        *self.last_read.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((Instant::now(), knobs.clone()));
        knobs
    }

    async fn read(&self, books_db: &BooksDb) -> EmulatedFaults {
        match books_db.get_stale(EXECUTOR_KNOBS_KEY).await {
            Ok(None) => self.configured.clone(),
            Ok(Some(entry)) => match serde_json::from_value::<EmulatedFaults>(entry.value) {
                Ok(set) if set.validate().is_ok() => set,
                _ => {
                    tracing::warn!(key = EXECUTOR_KNOBS_KEY, "unreadable executor knobs; using the configured ones");
                    self.configured.clone()
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "executor knobs unread; using the configured ones");
                self.configured.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bookstore_domain::execution::{Claim, Decision, ExecutableOrder, TrailEntry, Vote};
    use bookstore_domain::order::OrderStatus;
    use lambda_runtime::{Context, LambdaEvent};
    use serde_json::json;

    use super::*;

    /// The orders table in memory: `o-down` cannot be read (its execution fails); any other order
    /// is queued with one copy of one book.
    #[derive(Default)]
    struct Ledger {
        finished: Mutex<Vec<(String, OrderStatus)>>,
    }

    impl OrderLedger for Ledger {
        async fn claim(&self, order_id: &str, _: &[TrailEntry]) -> Result<Claim, PortError> {
            if order_id == "o-down" {
                return Err(PortError::Transient("the orders table is down".into()));
            }
            if order_id == "o-garbled" {
                return Err(PortError::Permanent("the order's item cannot be read".into()));
            }
            Ok(Claim::Executing(ExecutableOrder {
                order_id: order_id.into(),
                status: OrderStatus::Executing,
                lines: vec![("b1".into(), 1)],
                amount_cents: 999,
                decision: None,
            }))
        }

        async fn decide(&self, _: &str, decision: &Decision, _: &[TrailEntry]) -> Result<Decision, PortError> {
            Ok(decision.clone())
        }

        async fn finish(
            &self,
            order_id: &str,
            status: OrderStatus,
            _: Option<&str>,
            _: &[TrailEntry],
        ) -> Result<(), PortError> {
            self.finished.lock().unwrap().push((order_id.into(), status));
            Ok(())
        }
    }

    /// A participant that agrees to everything.
    struct Agreeing;

    impl Participant for Agreeing {
        async fn prepare(&self, _: &ExecutableOrder) -> Result<Vote, PortError> {
            Ok(Vote::YES)
        }

        async fn commit(&self, _: &ExecutableOrder) -> Result<(), PortError> {
            Ok(())
        }

        async fn abort(&self, _: &ExecutableOrder) -> Result<(), PortError> {
            Ok(())
        }
    }

    fn message(id: &str, body: &str) -> serde_json::Value {
        json!({
            "messageId": id, "receiptHandle": format!("receipt-{id}"), "body": body,
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:orders",
            "awsRegion": "us-east-1",
        })
    }

    #[tokio::test]
    async fn a_batch_reports_exactly_the_messages_to_deliver_again() {
        let records = [
            message("m-good", r#"{"orderId": "o-good"}"#),
            message("m-malformed", "not an order"),
            message("m-down", r#"{"orderId": "o-down"}"#),
            message("m-garbled", r#"{"orderId": "o-garbled"}"#),
        ];
        // As the runtime hands it to the function's handler.
        let payload: SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap();
        let event = LambdaEvent::new(payload, Context::default());
        let executor = OrderExecutor { ledger: Ledger::default(), stock: Agreeing, payment: Agreeing };
        let settings = DeliverySettings {
            max_receives: 5,
            retry_delay_seconds: 2,
            visibility_timeout_seconds: 240,
            execution_limit: Duration::from_secs(10),
            faults: FaultKnobs::fixed(EmulatedFaults::default()),
        };
        let response = execute_batch(&executor, &settings, None, event.payload).await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        // With no dead-letter queue to send them to, the refused ones come back too.
        assert_eq!(failed, ["m-malformed", "m-down", "m-garbled"]);
        assert_eq!(*executor.ledger.finished.lock().unwrap(), [("o-good".to_string(), OrderStatus::Committed)]);
        // On the wire, as the event source mapping reads it.
        let wire = serde_json::to_value(&response).unwrap();
        let expected =
            json!([{"itemIdentifier": "m-malformed"}, {"itemIdentifier": "m-down"}, {"itemIdentifier": "m-garbled"}]);
        assert_eq!(wire["batchItemFailures"], expected);
    }

    #[test]
    fn the_knobs_are_off_unless_set_and_a_bad_value_is_named() {
        let off = EmulatedFaults::parse(None, Some(" ")).unwrap();
        assert_eq!((off.delay_ms, off.failure_rate), (None, 0.0));
        let course = EmulatedFaults::parse(Some("5000-30000"), Some("0.5")).unwrap();
        assert_eq!((course.delay_ms, course.failure_rate), (Some((5000, 30000)), 0.5));
        for (delay, rate, named) in [
            (Some("30-5"), None, "EXECUTOR_DELAY_MS"),
            (Some("soon"), None, "EXECUTOR_DELAY_MS"),
            (None, Some("2"), "EXECUTOR_FAILURE_RATE"),
            (None, Some("half"), "EXECUTOR_FAILURE_RATE"),
            (Some("0-30001"), None, "EXECUTOR_DELAY_MS"),
        ] {
            let error = EmulatedFaults::parse(delay, rate).unwrap_err();
            assert!(error.starts_with(named), "{error}");
        }
    }

    #[test]
    fn knobs_set_at_run_time_are_read_from_their_json_and_checked() {
        let set: EmulatedFaults = serde_json::from_value(json!({"delayMs": [10, 20], "failureRate": 0.25})).unwrap();
        assert_eq!(set, EmulatedFaults { delay_ms: Some((10, 20)), failure_rate: 0.25 });
        assert_eq!(serde_json::to_value(&set).unwrap(), json!({"delayMs": [10, 20], "failureRate": 0.25}));
        let off: EmulatedFaults = serde_json::from_value(json!({"delayMs": null, "failureRate": 0})).unwrap();
        assert_eq!(off, EmulatedFaults::default());
        assert!(serde_json::from_value::<EmulatedFaults>(json!({"failureRate": 0, "rate": 1})).is_err());
        let bad = [
            (EmulatedFaults { delay_ms: Some((20, 10)), failure_rate: 0.0 }, KnobError::Delay),
            (EmulatedFaults { delay_ms: Some((0, MAX_DELAY_MS + 1)), failure_rate: 0.0 }, KnobError::Delay),
            (EmulatedFaults { delay_ms: None, failure_rate: 1.5 }, KnobError::Rate),
            (EmulatedFaults { delay_ms: None, failure_rate: f64::NAN }, KnobError::Rate),
        ];
        for (knobs, error) in bad {
            assert_eq!(knobs.validate(), Err(error), "{knobs:?}");
        }
    }

    #[tokio::test]
    async fn knobs_read_are_kept_for_a_moment_then_read_again() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let nowhere = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let configured = EmulatedFaults::default();
        let set = EmulatedFaults { delay_ms: Some((5, 5)), failure_rate: 0.5 };
        let mut knobs = FaultKnobs::new(configured.clone(), &nowhere).unwrap();
        *knobs.last_read.lock().unwrap() = Some((Instant::now(), set.clone()));
        assert_eq!(knobs.current().await, set, "kept: no read");
        knobs.kept_for = Duration::ZERO;
        assert_eq!(knobs.current().await, configured, "read again; a books database that does not answer");
    }

    #[tokio::test]
    async fn without_a_books_database_the_configured_knobs_hold() {
        let configured = EmulatedFaults { delay_ms: Some((1, 2)), failure_rate: 0.5 };
        assert_eq!(FaultKnobs::fixed(configured.clone()).current().await, configured);
    }

    #[test]
    fn no_failure_is_drawn_for_a_last_delivery() {
        let always = EmulatedFaults { delay_ms: None, failure_rate: 1.0 };
        assert!(always.for_delivery(false).fail_at.is_some());
        assert!(always.for_delivery(true).fail_at.is_none());
    }

    #[test]
    fn failures_are_drawn_at_both_points_and_only_at_the_rate() {
        let always = EmulatedFaults { delay_ms: None, failure_rate: 1.0 };
        let drawn: Vec<_> = (0..200).filter_map(|_| always.for_delivery(false).fail_at).collect();
        assert_eq!(drawn.len(), 200);
        for point in [FaultPoint::BeforePrepare, FaultPoint::BeforePhaseTwo] {
            assert!(drawn.contains(&point), "{point:?} is never drawn");
        }
        let never = EmulatedFaults { delay_ms: None, failure_rate: 0.0 };
        assert!((0..200).all(|_| never.for_delivery(false).fail_at.is_none()));
    }
}
