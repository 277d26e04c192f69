//! The embedded default's telemetry collector: it receives OTLP over HTTP (protobuf) from the
//! functions and the books database's nodes, keeps the latest point of every metric series and
//! the recent spans, and serves the metrics in Prometheus's text format (`GET /metrics`, which
//! Debian's `prometheus` scrapes) and the spans of a trace as JSON (`GET /traces`). The tests use
//! it as their in-process OTLP receiver.

mod metrics;
mod traces;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde::Deserialize;
use tokio_util::task::AbortOnDropHandle;

pub use metrics::MetricStore;
pub use traces::{SpanEvent, SpanRecord, SpanStore};

/// What the collector has received.
#[derive(Default)]
pub struct Collector {
    metrics: Mutex<MetricStore>,
    spans: Mutex<SpanStore>,
}

impl Collector {
    /// The metrics as Prometheus text.
    pub fn prometheus_text(&self) -> String {
        self.metrics.lock().unwrap_or_else(PoisonError::into_inner).prometheus_text()
    }

    /// Every kept span.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).all()
    }

    /// Every kept span of the traces that have a span with `attribute` = `value`.
    pub fn traces_with(&self, attribute: &str, value: &str) -> Vec<SpanRecord> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).traces_with(attribute, value)
    }
}

/// Serves `collector` on a free port of 127.0.0.1; its URL and task.
pub async fn serve(collector: Arc<Collector>) -> anyhow::Result<(String, AbortOnDropHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.context("binding the telemetry collector")?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, routes(collector)).await {
            eprintln!("telemetry collector stopped: {e}");
        }
    });
    Ok((url, AbortOnDropHandle::new(task)))
}

/// The collector's routes: OTLP/HTTP in (`/v1/traces`, `/v1/metrics`), `/metrics` and `/traces` out.
pub fn routes(collector: Arc<Collector>) -> Router {
    Router::new()
        .route("/v1/traces", post(receive_traces))
        .route("/v1/metrics", post(receive_metrics))
        .route("/metrics", get(metrics_text))
        .route("/traces", get(traces))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(collector)
}

async fn receive_traces(State(collector): State<Arc<Collector>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = match decode::<ExportTraceServiceRequest>(&headers, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    collector.spans.lock().unwrap_or_else(PoisonError::into_inner).ingest(request);
    protobuf(ExportTraceServiceResponse::default())
}

async fn receive_metrics(State(collector): State<Arc<Collector>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = match decode::<ExportMetricsServiceRequest>(&headers, &body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    collector.metrics.lock().unwrap_or_else(PoisonError::into_inner).ingest(request);
    protobuf(ExportMetricsServiceResponse::default())
}

async fn metrics_text(State(collector): State<Arc<Collector>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], collector.prometheus_text()).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TraceQuery {
    order_id: Option<String>,
    trace_id: Option<String>,
}

/// `?orderId=…`: the traces of that order's checkout and execution; `?traceId=…`: that trace.
async fn traces(State(collector): State<Arc<Collector>>, query: Result<Query<TraceQuery>, QueryRejection>) -> Response {
    let Ok(Query(query)) = query else {
        return error(StatusCode::BAD_REQUEST, "invalid_query", "give one of orderId or traceId");
    };
    let spans = match (query.order_id, query.trace_id) {
        (Some(order), None) => collector.traces_with("order_id", &order),
        (None, Some(trace)) => collector.spans.lock().unwrap_or_else(PoisonError::into_inner).trace(&trace),
        _ => return error(StatusCode::BAD_REQUEST, "invalid_query", "give one of orderId or traceId"),
    };
    axum::Json(serde_json::json!({ "spans": spans })).into_response()
}

/// Why an OTLP body is not taken.
enum Refusal {
    NotProtobuf,
    Malformed(prost::DecodeError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotProtobuf => error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send OTLP as application/x-protobuf (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)",
            ),
            Refusal::Malformed(e) => error(StatusCode::BAD_REQUEST, "invalid_otlp", &format!("not OTLP protobuf: {e}")),
        }
    }
}

/// The OTLP body, which must be protobuf (the exporters' `http/protobuf`; JSON is not taken).
fn decode<M: prost::Message + Default>(headers: &HeaderMap, body: &[u8]) -> Result<M, Refusal> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("application/x-protobuf") {
        return Err(Refusal::NotProtobuf);
    }
    M::decode(body).map_err(Refusal::Malformed)
}

fn protobuf(message: impl prost::Message) -> Response {
    ([(header::CONTENT_TYPE, "application/x-protobuf")], message.encode_to_vec()).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": { "code": code, "message": message } }))).into_response()
}

/// OTLP attributes as text, by name (lists and maps as their debug form: none are sent here).
fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs.iter().map(|pair| (pair.key.clone(), pair.value.as_ref().map(text).unwrap_or_default())).collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
