//! The trace context between processes, as a W3C `traceparent` (and `tracestate`): taken from the
//! current span to go with a request, and set as the parent of the span that handles it.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The header (and payload field, and message attribute) that carries a trace.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// A request with the trace it belongs to, as the functions' invoke payloads carry it: the
/// request's own JSON fields with `traceparent` (and `tracestate`) beside them. A payload without
/// them (an older caller, a test event) is still the request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Traced<T> {
    #[serde(flatten)]
    pub request: T,
    #[serde(flatten)]
    pub trace: TraceHeaders,
}

/// A trace's context as text: empty when there is no trace (nothing is exported, or no span).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceHeaders {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
}

impl<T> Traced<T> {
    /// `request` in the current span's trace.
    pub fn current(request: T) -> Self {
        Self { request, trace: TraceHeaders::current() }
    }
}

impl TraceHeaders {
    /// The current span's context (empty if it is not being traced).
    pub fn current() -> Self {
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(&tracing::Span::current().context(), &mut carrier);
        Self { traceparent: carrier.remove(TRACEPARENT), tracestate: carrier.remove(TRACESTATE) }
    }

    /// Makes the trace these name (if any, and well formed) the parent of `span`, which must not
    /// have been entered yet.
    pub fn follow(&self, span: &tracing::Span) {
        let Some(traceparent) = &self.traceparent else { return };
        let mut carrier = HashMap::from([(TRACEPARENT.to_string(), traceparent.clone())]);
        if let Some(state) = &self.tracestate {
            carrier.insert(TRACESTATE.to_string(), state.clone());
        }
        let parent = TraceContextPropagator::new().extract(&carrier);
        // A span not sampled or already started keeps its own trace: nothing is lost but the link.
        let _ = span.set_parent(parent);
    }

    /// From any name → value lookup (HTTP headers, SQS message attributes).
    pub fn from_lookup<'a>(lookup: impl Fn(&str) -> Option<&'a str>) -> Self {
        Self {
            traceparent: lookup(TRACEPARENT).map(str::to_string),
            tracestate: lookup(TRACESTATE).map(str::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "camelCase", rename_all_fields = "camelCase")]
    enum Request {
        Check { order_id: String },
        Forget { order_id: String },
    }

    #[test]
    fn a_traced_request_is_the_request_with_its_trace_beside_it() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string();
        let traced = Traced {
            request: Request::Check { order_id: "o-1".into() },
            trace: TraceHeaders { traceparent: Some(traceparent.clone()), tracestate: None },
        };
        let json = serde_json::to_value(&traced).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "check", "orderId": "o-1", "traceparent": traceparent}));
        let back: Traced<Request> = serde_json::from_value(json).unwrap();
        assert_eq!((back.request, back.trace), (traced.request, traced.trace));
    }

    #[test]
    fn a_payload_without_a_trace_is_still_the_request() {
        let back: Traced<Request> = serde_json::from_str(r#"{"kind":"forget","orderId":"o-2"}"#).unwrap();
        assert_eq!(back.request, Request::Forget { order_id: "o-2".into() });
        assert_eq!(back.trace, TraceHeaders::default());
        let json = serde_json::to_value(Traced::current(Request::Forget { order_id: "o-2".into() })).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "forget", "orderId": "o-2"}), "no span, no trace fields");
    }

    /// With a tracer, as every process has one: a span follows a well-formed traceparent (its
    /// trace id, its own span id) and passes its own on; a malformed one leaves it a trace of its
    /// own.
    #[test]
    fn a_span_follows_a_well_formed_traceparent_and_passes_its_own_on() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let caller = TraceHeaders {
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
                tracestate: None,
            };
            let span = tracing::info_span!("handling");
            caller.follow(&span);
            let passed = span.in_scope(TraceHeaders::current).traceparent.unwrap();
            assert!(passed.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "the caller's trace: {passed}");
            assert!(!passed.contains("00f067aa0ba902b7"), "its own span id, not the caller's: {passed}");
            let other = tracing::info_span!("other");
            TraceHeaders { traceparent: Some("not a trace".into()), tracestate: None }.follow(&other);
            let own = other.in_scope(TraceHeaders::current).traceparent.unwrap();
            assert!(!own.contains("4bf92f3577b34da6a3ce929d0e0e4736"), "a trace of its own: {own}");
        });
    }
}
