use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::*;
use std::collections::BTreeSet;

/// The collector on a free port: its URL.
async fn serve(collector: Arc<Collector>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, routes(collector)).await });
    url
}

fn resource(service: &'static str) -> Resource {
    Resource::builder().with_service_name(service).with_attribute(KeyValue::new("service.instance.id", "i-1")).build()
}

/// The real SDK's OTLP/HTTP exporters, as every process of the bookstore has them, send to the
/// collector: counters, up-down counters and histograms come out as Prometheus series.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_sent_by_the_sdk_are_served_as_prometheus_text() {
    let collector = Arc::new(Collector::default());
    let url = serve(collector.clone()).await;
    let provider = tokio::task::spawn_blocking(move || {
        let exporter =
            MetricExporter::builder().with_http().with_endpoint(format!("{url}/v1/metrics")).build().unwrap();
        let reader = PeriodicReader::builder(exporter).with_interval(Duration::from_secs(3600)).build();
        SdkMeterProvider::builder().with_reader(reader).with_resource(resource("checkout")).build()
    })
    .await
    .unwrap();
    let meter = provider.meter("test");
    let orders = meter.u64_counter("bookstore_orders").with_description("checkouts decided").build();
    orders.add(2, &[KeyValue::new("outcome", "approved")]);
    orders.add(1, &[KeyValue::new("outcome", "rejected")]);
    let in_flight = meter.i64_up_down_counter("bookstore.checkouts.in-flight").build();
    in_flight.add(3, &[]);
    in_flight.add(-1, &[]);
    let seconds = meter.f64_histogram("bookstore_checkout_seconds").with_boundaries(vec![0.1, 1.0]).build();
    for value in [0.05, 0.5, 0.7, 3.0] {
        seconds.record(value, &[]);
    }
    let flushed = provider.clone();
    tokio::task::spawn_blocking(move || flushed.force_flush()).await.unwrap().unwrap();
    let text = collector.prometheus_text();
    let labels = r#"outcome="approved",service="checkout""#;
    for line in [
        "# TYPE bookstore_orders_total counter".to_string(),
        format!("bookstore_orders_total{{{labels}}} 2"),
        "# TYPE bookstore_checkouts_in_flight gauge".into(),
        r#"bookstore_checkouts_in_flight{service="checkout"} 2"#.into(),
        r#"bookstore_checkout_seconds_bucket{service="checkout",le="0.1"} 1"#.into(),
        r#"bookstore_checkout_seconds_bucket{service="checkout",le="1"} 3"#.into(),
        r#"bookstore_checkout_seconds_bucket{service="checkout",le="+Inf"} 4"#.into(),
        r#"bookstore_checkout_seconds_count{service="checkout"} 4"#.into(),
        r#"bookstore_checkout_seconds_sum{service="checkout"} 4.25"#.into(),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // Cumulative points replace the last: another export does not double anything.
    orders.add(1, &[KeyValue::new("outcome", "approved")]);
    let flushed = provider.clone();
    tokio::task::spawn_blocking(move || flushed.force_flush()).await.unwrap().unwrap();
    let text = collector.prometheus_text();
    assert!(text.lines().any(|l| l == format!("bookstore_orders_total{{{labels}}} 3")), "{text}");
    tokio::task::spawn_blocking(move || provider.shutdown()).await.unwrap().unwrap();
}

/// Spans sent by the SDK are kept by trace, and found by an attribute of any of them.
#[tokio::test(flavor = "multi_thread")]
async fn spans_sent_by_the_sdk_are_found_by_their_trace() {
    let collector = Arc::new(Collector::default());
    let url = serve(collector.clone()).await;
    let provider = tokio::task::spawn_blocking(move || {
        let exporter = SpanExporter::builder().with_http().with_endpoint(format!("{url}/v1/traces")).build().unwrap();
        SdkTracerProvider::builder().with_simple_exporter(exporter).with_resource(resource("order-executor")).build()
    })
    .await
    .unwrap();
    let spans = tokio::task::spawn_blocking(move || {
        let tracer = provider.tracer("test");
        tracer.in_span("order message", |cx| {
            cx.span().set_attribute(KeyValue::new("order_id", "o-1"));
            tracer.in_span("invoke", |_| {});
        });
        tracer.in_span("order message", |cx| cx.span().set_attribute(KeyValue::new("order_id", "o-2")));
        provider.shutdown().unwrap();
    });
    spans.await.unwrap();
    let found = collector.traces_with("order_id", "o-1");
    assert_eq!(
        found.iter().map(|s| s.name.as_str()).collect::<BTreeSet<_>>(),
        BTreeSet::from(["invoke", "order message"])
    );
    assert!(found.iter().all(|s| s.trace_id == found[0].trace_id && s.service == "order-executor"), "{found:?}");
    let root = found.iter().find(|s| s.parent_span_id.is_empty()).unwrap();
    let child = found.iter().find(|s| s.name == "invoke").unwrap();
    assert_eq!(child.parent_span_id, root.span_id);
    assert!(collector.traces_with("order_id", "o-3").is_empty());
}

#[tokio::test]
async fn what_is_not_otlp_protobuf_is_refused_in_the_error_shape() {
    let collector = Arc::new(Collector::default());
    let url = serve(collector.clone()).await;
    let http = reqwest::Client::new();
    let json = http.post(format!("{url}/v1/metrics")).header("content-type", "application/json").body("{}");
    let answer = json.send().await.unwrap();
    assert_eq!(answer.status(), 415);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let garbage =
        http.post(format!("{url}/v1/traces")).header("content-type", "application/x-protobuf").body(vec![0xff; 7]);
    let answer = garbage.send().await.unwrap();
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_otlp");
    for query in ["", "?orderId=a&orderId=b"] {
        let answer = http.get(format!("{url}/traces{query}")).send().await.unwrap();
        assert_eq!(answer.status(), 400, "{query:?}: one of orderId or traceId, once");
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_query");
    }
    assert!(collector.prometheus_text().is_empty(), "nothing was taken");
}

/// One point of `metric` from `instance` of service `x`, with the attribute `route`.
fn sent(
    instance: &str,
    metric: &str,
    data: opentelemetry_proto::tonic::metrics::v1::metric::Data,
) -> ExportMetricsServiceRequest {
    use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
    use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(OtlpResource {
                attributes: vec![pair("service.name", "x"), pair("service.instance.id", instance)],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric { name: metric.into(), data: Some(data), ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn pair(key: &str, value: &str) -> opentelemetry_proto::tonic::common::v1::KeyValue {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as Pair, any_value};
    Pair {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn number_points(value: i64, route: &str) -> Vec<opentelemetry_proto::tonic::metrics::v1::NumberDataPoint> {
    use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, number_data_point};
    vec![NumberDataPoint {
        attributes: vec![pair("http.route", route)],
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }]
}

fn sum(value: i64, route: &str, temporality: AggregationTemporality, monotonic: bool) -> metric::Data {
    metric::Data::Sum(Sum {
        data_points: number_points(value, route),
        aggregation_temporality: temporality as i32,
        is_monotonic: monotonic,
    })
}

use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Gauge, Sum, metric};

#[test]
fn delta_sums_add_up_and_names_and_labels_are_made_safe() {
    let mut store = MetricStore::default();
    let route = "say \"hi\"\n";
    store.ingest(sent("a", "http.requests", sum(2, route, AggregationTemporality::Delta, true)));
    store.ingest(sent("a", "http.requests", sum(5, route, AggregationTemporality::Delta, true)));
    let text = store.prometheus_text();
    assert!(text.contains(r#"http_requests_total{http_route="say \"hi\"\n",service="x"} 7"#), "{text}");
}

/// Lambda instances come and go: a series is the sum over them (a gone one keeps its counts),
/// so it grows with each; a gauge is the largest any live one says; a gone one's gauges and
/// up-down counters no longer count.
#[test]
fn instances_are_summed_a_gauge_is_the_largest_and_gone_ones_keep_only_their_counts() {
    let mut store = MetricStore::default();
    let cumulative = AggregationTemporality::Cumulative;
    store.ingest(sent("a", "orders", sum(3, "/", cumulative, true)));
    store.ingest(sent("b", "orders", sum(1, "/", cumulative, true)));
    store.ingest(sent("a", "orders", sum(4, "/", cumulative, true)));
    store.ingest(sent("a", "in_flight", sum(2, "/", cumulative, false)));
    store.ingest(sent("b", "in_flight", sum(-1, "/", cumulative, false)));
    let gauge = |value| metric::Data::Gauge(Gauge { data_points: number_points(value, "/") });
    store.ingest(sent("b", "depth", gauge(9)));
    store.ingest(sent("a", "depth", gauge(5)));
    let text = store.prometheus_text();
    for line in [
        r#"orders_total{http_route="/",service="x"} 5"#,
        "# TYPE in_flight gauge",
        r#"in_flight{http_route="/",service="x"} 1"#,
        r#"depth{http_route="/",service="x"} 9"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    let later = store.prometheus_text_at(std::time::Instant::now() + std::time::Duration::from_secs(31));
    assert!(later.lines().any(|l| l == r#"orders_total{http_route="/",service="x"} 5"#), "{later}");
    assert!(!later.lines().any(|l| l.starts_with("in_flight{") || l.starts_with("depth{")), "{later}");
}
