//! OpenTelemetry for every process of the bookstore (the functions, the books database's nodes,
//! the embedded default's gateway): logs as before, and, where `OTEL_EXPORTER_OTLP_ENDPOINT` names
//! a collector, traces and metrics sent to it over OTLP/HTTP. The standard `OTEL_*` variables
//! tune the exporters (`OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_BSP_SCHEDULE_DELAY`, headers, …).
//!
//! A checkout is one trace: [`context`] carries it between processes, through a
//! `traceparent` (W3C Trace Context) in HTTP headers, in the functions' invoke payloads and in the
//! order queue's message attributes.

pub mod context;
mod setup;

pub use setup::{Providers, Telemetry, flush, init, init_to, providers};

/// Histogram buckets for latencies of a few milliseconds to a minute, in seconds (the SDK's
/// default ones are for milliseconds).
pub const SECONDS_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0];

/// The meter every instrument of the bookstore is made from (a no-op one where metrics are not
/// exported).
pub fn meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter("bookstore")
}
