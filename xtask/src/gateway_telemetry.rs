//! The gateway's own telemetry, as API Gateway's would be: a span per request that the function
//! continues (its `traceparent` goes with the request), and a count and duration of requests by
//! route and status. Its providers are the gateway's, not the process's globals: tests run
//! several stacks in one process, each with its own collector.

use std::time::Instant;

use axum::http::HeaderMap;
use bookstore_telemetry::Providers;
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub struct GatewayTelemetry {
    traces: Option<SdkTracerProvider>,
    metrics: Option<SdkMeterProvider>,
    tracer: SdkTracer,
    requests: Counter<u64>,
    seconds: Histogram<f64>,
}

/// One request in flight: its span's context, which the function's span continues.
pub struct RequestSpan {
    cx: Context,
    started: Instant,
}

impl GatewayTelemetry {
    /// Exporting to the OTLP/HTTP collector at `endpoint` (its base URL).
    pub fn new(endpoint: &str) -> Self {
        let Providers { traces, metrics } = bookstore_telemetry::providers("gateway", endpoint);
        // Without one, no-op instruments and spans.
        let meter = match &metrics {
            Some(provider) => provider.meter("gateway"),
            None => opentelemetry::metrics::noop::NoopMeterProvider::new().meter("gateway"),
        };
        let tracer = traces.clone().unwrap_or_default().tracer("gateway");
        Self {
            tracer,
            requests: meter.u64_counter("gateway_requests").with_description("requests by route and status").build(),
            seconds: meter
                .f64_histogram("gateway_request_seconds")
                .with_unit("s")
                .with_boundaries(bookstore_telemetry::SECONDS_BUCKETS.to_vec())
                .with_description("a request's time through the gateway, by route")
                .build(),
            traces,
            metrics,
        }
    }

    /// Starts the span of a request to `route`, continuing a trace its `headers` carry.
    pub fn start(&self, method: &str, route: &str, headers: &HeaderMap) -> RequestSpan {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let span = self
            .tracer
            .span_builder(format!("{method} {route}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.route", route.to_string()),
                KeyValue::new("http.request.method", method.to_string()),
            ])
            .start_with_context(&self.tracer, &parent);
        RequestSpan { cx: parent.with_span(span), started: Instant::now() }
    }

    /// Ends `request` with the function's `status`.
    pub fn end(&self, request: RequestSpan, route: &str, status: u16) {
        let attributes = [KeyValue::new("http.route", route.to_string()), KeyValue::new("status", i64::from(status))];
        self.requests.add(1, &attributes);
        self.seconds.record(request.started.elapsed().as_secs_f64(), &attributes[..1]);
        let span = request.cx.span();
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
        if status >= 500 {
            span.set_status(Status::error("the function failed"));
        }
        span.end();
    }
}

impl RequestSpan {
    /// The `traceparent` (and `tracestate`) headers that make the function's span this one's child.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut carrier = std::collections::HashMap::new();
        TraceContextPropagator::new().inject_context(&self.cx, &mut carrier);
        carrier.into_iter().collect()
    }
}

impl Drop for GatewayTelemetry {
    /// Sends what is left on a thread of its own: a shutdown blocks until its export is answered,
    /// and this may run on the async runtime.
    fn drop(&mut self) {
        let (traces, metrics) = (self.traces.take(), self.metrics.take());
        std::thread::spawn(move || {
            if let Some(traces) = traces {
                let _ = traces.shutdown();
            }
            if let Some(metrics) = metrics {
                let _ = metrics.shutdown();
            }
        });
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
