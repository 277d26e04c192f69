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

pub use setup::{Providers, Telemetry, flush_traces, init, init_to, providers};

/// The meter every instrument of the bookstore is made from (a no-op one where metrics are not
/// exported).
pub fn meter() -> opentelemetry::metrics::Meter {
    opentelemetry::global::meter("bookstore")
}
