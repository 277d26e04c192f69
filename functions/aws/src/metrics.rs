//! The bookstore's instruments (OpenTelemetry; no-ops where metrics are not exported). Each is
//! made once, on first use, after the function's telemetry is set up. Units are in the names as
//! Prometheus has them (`…_seconds`); `…_total` is added to counters by the exporter's receiver.

use std::sync::OnceLock;

use bookstore_telemetry::{SECONDS_BUCKETS, meter};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, UpDownCounter};

struct Instruments {
    orders: Counter<u64>,
    checkout_seconds: Histogram<f64>,
    checkouts_in_flight: UpDownCounter<i64>,
    fraud_rejections: Counter<u64>,
    executions: Counter<u64>,
    queued_seconds: Histogram<f64>,
    two_phase_commit_seconds: Histogram<f64>,
    executions_in_flight: UpDownCounter<i64>,
    queue_messages: Gauge<u64>,
}

fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let meter = meter();
        let seconds = |name: &'static str, what: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(what)
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build()
        };
        Instruments {
            orders: meter.u64_counter("bookstore_orders").with_description("checkouts decided, by outcome").build(),
            checkout_seconds: seconds("bookstore_checkout_seconds", "a checkout's time, by outcome"),
            checkouts_in_flight: meter
                .i64_up_down_counter("bookstore_checkouts_in_flight")
                .with_description("checkouts running now")
                .build(),
            fraud_rejections: meter
                .u64_counter("bookstore_fraud_rejections")
                .with_description("orders fraud detection refused")
                .build(),
            executions: meter
                .u64_counter("bookstore_executions")
                .with_description("deliveries of an order to the executor, by outcome")
                .build(),
            queued_seconds: seconds(
                "bookstore_order_queued_seconds",
                "from an order's message being sent to its delivery",
            ),
            two_phase_commit_seconds: seconds(
                "bookstore_two_phase_commit_seconds",
                "an order's execution: claim, prepare, decision, commit or abort",
            ),
            executions_in_flight: meter
                .i64_up_down_counter("bookstore_executions_in_flight")
                .with_description("orders being executed now")
                .build(),
            queue_messages: meter
                .u64_gauge("bookstore_queue_messages")
                .with_description("messages in the order queues, by queue and state (waiting, in_flight)")
                .build(),
        }
    })
}

/// A checkout ended with `outcome` (`approved`, `rejected`, `invalid`, `unavailable`).
pub fn checkout_ended(outcome: &'static str, seconds: f64) {
    let attributes = [KeyValue::new("outcome", outcome)];
    let i = instruments();
    if matches!(outcome, "approved" | "rejected") {
        i.orders.add(1, &attributes);
    }
    i.checkout_seconds.record(seconds, &attributes);
}

/// Counts what runs while it is alive (checkouts or executions in flight).
pub struct InFlight(&'static UpDownCounter<i64>);

impl InFlight {
    pub fn checkout() -> Self {
        Self::start(&instruments().checkouts_in_flight)
    }

    pub fn execution() -> Self {
        Self::start(&instruments().executions_in_flight)
    }

    fn start(counter: &'static UpDownCounter<i64>) -> Self {
        counter.add(1, &[]);
        Self(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.add(-1, &[]);
    }
}

pub fn fraud_rejected() {
    instruments().fraud_rejections.add(1, &[]);
}

/// A delivery of an order ended with `outcome` (`committed`, `failed`, `duplicate`, `unknown`,
/// `retry`, `dead_lettered`); `seconds` is its execution's time, where it ran one.
pub fn execution_ended(outcome: &'static str, seconds: Option<f64>) {
    let attributes = [KeyValue::new("outcome", outcome)];
    let i = instruments();
    i.executions.add(1, &attributes);
    if let Some(seconds) = seconds {
        i.two_phase_commit_seconds.record(seconds, &attributes);
    }
}

/// A message reached the executor `seconds` after it was sent (its `receives`-th delivery).
pub fn delivered_after(seconds: f64, receives: u32) {
    let delivery = if receives <= 1 { "first" } else { "retry" };
    instruments().queued_seconds.record(seconds, &[KeyValue::new("delivery", delivery)]);
}

/// The messages a queue holds now.
pub fn queue_depth(queue: &str, waiting: Option<u64>, in_flight: Option<u64>) {
    let i = instruments();
    for (state, count) in [("waiting", waiting), ("in_flight", in_flight)] {
        if let Some(count) = count {
            i.queue_messages.record(count, &[KeyValue::new("queue", queue.to_string()), KeyValue::new("state", state)]);
        }
    }
}
