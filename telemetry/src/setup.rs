//! Setting up a process's logs, traces and metrics.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Where OTLP goes; unset, nothing is exported.
const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// How often metrics go out unless `OTEL_METRIC_EXPORT_INTERVAL` says: often enough for a live
/// dashboard (the SDK's own default is a minute).
const METRIC_INTERVAL: Duration = Duration::from_secs(5);
const METRIC_INTERVAL_VARIABLE: &str = "OTEL_METRIC_EXPORT_INTERVAL";

/// This process's exporters, flushed when dropped.
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    metrics: Option<SdkMeterProvider>,
}

/// Sets up logs to stderr (filtered by `RUST_LOG`, else `default_filter`), and, where
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, traces and metrics as `service` (see [`init_to`]).
pub fn init(service: &'static str, default_filter: &str) -> Telemetry {
    init_to(service, default_filter, std::env::var(ENDPOINT).ok().as_deref())
}

/// As [`init`], exporting to `endpoint` (the collector's base URL: `/v1/traces` and
/// `/v1/metrics` are added; see [`providers`]), or to nothing if it is `None` or blank.
pub fn init_to(service: &'static str, default_filter: &str, endpoint: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false);
    let Providers { traces, metrics } = endpoint.map(|url| providers(service, url)).unwrap_or_default();
    // The Lambda runtime's own span of each invocation would be a trace of its own: the
    // handler's span continues the caller's trace instead.
    let otel = traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_filter(filter_fn(|metadata| !metadata.target().starts_with("lambda_runtime")))
    });
    let installed = tracing_subscriber::registry().with(logs.and_then(otel).with_filter(filter)).try_init();
    if let Err(e) = installed {
        eprintln!("{service}: logging was set up already: {e}");
    }
    if flushes_each_invocation() {
        let _ = FLUSHED.set(Providers { traces: traces.clone(), metrics: metrics.clone() });
    }
    if let Some(provider) = &metrics {
        opentelemetry::global::set_meter_provider(provider.clone());
    }
    Telemetry { traces, metrics }
}

/// A process's exporters of traces and metrics, not installed anywhere: [`init_to`] makes them
/// the process's; a part of a process with its own identity (the embedded default's gateway)
/// uses them directly.
#[derive(Default, Clone)]
pub struct Providers {
    pub traces: Option<SdkTracerProvider>,
    pub metrics: Option<SdkMeterProvider>,
}

/// Exporters to the OTLP/HTTP collector at `endpoint` (its base URL; none if blank), as one
/// instance of `service` (a `service.instance.id` of its own). An exporter that cannot be made is
/// said on stderr and left out: telemetry never stops a process.
pub fn providers(service: &'static str, endpoint: &str) -> Providers {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.is_empty() {
        return Providers::default();
    }
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()))
        .build();
    Providers {
        traces: tracer_provider(service, endpoint, resource.clone()),
        metrics: meter_provider(service, endpoint, resource),
    }
}

fn tracer_provider(service: &'static str, endpoint: &str, resource: Resource) -> Option<SdkTracerProvider> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()
        .map_err(|e| eprintln!("{service}: no traces: {e}"))
        .ok()?;
    Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}

fn meter_provider(service: &'static str, endpoint: &str, resource: Resource) -> Option<SdkMeterProvider> {
    let exporter = MetricExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/metrics"))
        .build()
        .map_err(|e| eprintln!("{service}: no metrics: {e}"))
        .ok()?;
    let mut reader = PeriodicReader::builder(exporter);
    if std::env::var_os(METRIC_INTERVAL_VARIABLE).is_none() {
        reader = reader.with_interval(METRIC_INTERVAL);
    }
    Some(SdkMeterProvider::builder().with_reader(reader.build()).with_resource(resource).build())
}

/// Whether spans and metrics are sent at the end of each invocation (see [`flush`]).
const FLUSH_VARIABLE: &str = "TELEMETRY_FLUSH_EACH_INVOCATION";

/// On unless `TELEMETRY_FLUSH_EACH_INVOCATION` is `false` (or `0`): where the process is never
/// frozen (`cargo lambda watch`, the embedded default), the batch exporter's own schedule does it
/// for far less.
fn flushes_each_invocation() -> bool {
    std::env::var(FLUSH_VARIABLE).map_or(true, |value| !matches!(value.trim(), "false" | "0"))
}

/// The process's exporters, for [`flush`], where it flushes each invocation.
static FLUSHED: OnceLock<Providers> = OnceLock::new();

/// Sends the spans ended and the metrics recorded so far, before a Lambda instance may be frozen
/// between invocations (the exporters' own threads would not run then). Off the async runtime:
/// the exports block. A no-op where each invocation is not flushed
/// (`TELEMETRY_FLUSH_EACH_INVOCATION=false`).
pub async fn flush() {
    let Some(Providers { traces, metrics }) = FLUSHED.get() else { return };
    let (traces, metrics) = (traces.clone(), metrics.clone());
    let flushed = tokio::task::spawn_blocking(move || {
        let spans = traces.map(|provider| provider.force_flush());
        let points = metrics.map(|provider| provider.force_flush());
        (spans, points)
    })
    .await;
    if let Ok((Some(Err(e)), _) | (_, Some(Err(e)))) = flushed {
        tracing::debug!(error = %e, "telemetry could not be sent");
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take() {
            let _ = provider.shutdown();
        }
        if let Some(provider) = self.metrics.take() {
            let _ = provider.shutdown();
        }
    }
}
