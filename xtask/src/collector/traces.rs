//! The recent spans, by trace.

use std::collections::{BTreeSet, VecDeque};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde::Serialize;

use super::attributes;

/// How many spans are kept: the oldest go first.
const KEPT_SPANS: usize = 50_000;

/// One span as received, ids in hex.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanRecord {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a trace's root.
    pub parent_span_id: String,
    pub name: String,
    /// The sender's `service.name`.
    pub service: String,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// What happened in it: the log lines written while it ran, with their fields.
    pub events: Vec<SpanEvent>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpanEvent {
    pub name: String,
    pub attributes: std::collections::BTreeMap<String, String>,
}

#[derive(Default)]
pub struct SpanStore {
    spans: VecDeque<SpanRecord>,
}

impl SpanStore {
    pub fn ingest(&mut self, request: ExportTraceServiceRequest) {
        for resource in request.resource_spans {
            let resource_attributes = resource.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
            let service = resource_attributes.get("service.name").cloned().unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                self.spans.push_back(SpanRecord {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    service: service.clone(),
                    attributes: attributes(&span.attributes),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    events: span
                        .events
                        .into_iter()
                        .map(|e| SpanEvent { name: e.name, attributes: attributes(&e.attributes) })
                        .collect(),
                });
            }
        }
        let excess = self.spans.len().saturating_sub(KEPT_SPANS);
        self.spans.drain(..excess);
    }

    /// Every kept span, as received.
    pub fn all(&self) -> Vec<SpanRecord> {
        self.spans.iter().cloned().collect()
    }

    /// The spans of trace `trace_id`, oldest first.
    pub fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        let mut spans: Vec<SpanRecord> = self.spans.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
        spans.sort_by_key(|s| s.start_unix_nano);
        spans
    }

    /// The spans of every trace that has a span with `attribute` = `value`, oldest first.
    pub fn traces_with(&self, attribute: &str, value: &str) -> Vec<SpanRecord> {
        let traces: BTreeSet<&str> = self
            .spans
            .iter()
            .filter(|s| s.attributes.get(attribute).is_some_and(|v| v == value))
            .map(|s| s.trace_id.as_str())
            .collect();
        let mut spans: Vec<SpanRecord> =
            self.spans.iter().filter(|s| traces.contains(s.trace_id.as_str())).cloned().collect();
        spans.sort_by_key(|s| s.start_unix_nano);
        spans
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
