//! The metrics as Prometheus text. A series is a metric, the sender's `service.name` (the label
//! `service`) and the point's attributes. The collector keeps the last point each process (each
//! `service.instance.id`) sent for it, and serves their sum (counters, histograms, up-down
//! counters) or the largest (gauges). Summed here because Lambda instances come and go: a series
//! per instance would start anew with each, and Prometheus's `rate` never counts a series' first
//! value. An instance that is gone keeps its last counts in a counter's or histogram's sum, so it
//! only grows; its up-down counters and gauges, which say how things are now, count only while it
//! sends (every process sends every few seconds). Cumulative points replace the instance's last
//! one; delta points add to it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric, metric, number_data_point};

use super::attributes;

/// An instance that has sent nothing for this long is gone: its gauges and up-down counters no
/// longer count (processes send every 5 s).
const GONE_AFTER: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct MetricStore {
    families: BTreeMap<String, Family>,
}

struct Family {
    kind: Kind,
    help: String,
    /// Series → instance → its last point.
    series: BTreeMap<Labels, BTreeMap<String, Kept>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    UpDownCounter,
    Gauge,
    Histogram,
}

type Labels = Vec<(String, String)>;

struct Kept {
    point: Point,
    at: Instant,
}

#[derive(Clone, PartialEq)]
enum Point {
    Number(f64),
    Histogram { bounds: Vec<f64>, counts: Vec<u64>, sum: f64, count: u64 },
}

/// Who sent a point: its service's labels, and which instance of it.
struct Sender {
    labels: Labels,
    instance: String,
}

impl MetricStore {
    pub fn ingest(&mut self, request: ExportMetricsServiceRequest) {
        for resource in request.resource_metrics {
            let attributes = resource.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
            let sender = Sender {
                labels: attributes
                    .get("service.name")
                    .map(|s| ("service".to_string(), s.clone()))
                    .into_iter()
                    .collect(),
                instance: attributes.get("service.instance.id").cloned().unwrap_or_default(),
            };
            for metric in resource.scope_metrics.into_iter().flat_map(|scope| scope.metrics) {
                self.ingest_metric(&sender, metric);
            }
        }
    }

    fn ingest_metric(&mut self, sender: &Sender, metric: Metric) {
        let Some(data) = metric.data else { return };
        let name = sanitize(&metric.name);
        let (kind, name, delta, points) = match data {
            metric::Data::Sum(sum) => {
                let delta = sum.aggregation_temporality == AggregationTemporality::Delta as i32;
                let points = sum.data_points.into_iter().map(|p| (p.attributes, Point::Number(number(p.value))));
                match sum.is_monotonic {
                    true => {
                        let name = if name.ends_with("_total") { name } else { format!("{name}_total") };
                        (Kind::Counter, name, delta, points.collect::<Vec<_>>())
                    }
                    false => (Kind::UpDownCounter, name, delta, points.collect()),
                }
            }
            metric::Data::Gauge(gauge) => {
                let points = gauge.data_points.into_iter().map(|p| (p.attributes, Point::Number(number(p.value))));
                (Kind::Gauge, name, false, points.collect())
            }
            metric::Data::Histogram(histogram) => {
                let delta = histogram.aggregation_temporality == AggregationTemporality::Delta as i32;
                let points = histogram.data_points.into_iter().map(|p| {
                    let point = Point::Histogram {
                        bounds: p.explicit_bounds,
                        counts: p.bucket_counts,
                        sum: p.sum.unwrap_or(0.0),
                        count: p.count,
                    };
                    (p.attributes, point)
                });
                (Kind::Histogram, name, delta, points.collect())
            }
            // Not sent by the bookstore's processes.
            metric::Data::ExponentialHistogram(_) | metric::Data::Summary(_) => return,
        };
        let family = self.families.entry(name).or_insert_with(|| Family {
            kind,
            help: metric.description.clone(),
            series: BTreeMap::new(),
        });
        // A name sent as two kinds keeps the first.
        if family.kind != kind {
            return;
        }
        for (attributes, point) in points {
            let instances = family.series.entry(labels(&sender.labels, &attributes)).or_default();
            let point = match (delta, instances.get(&sender.instance)) {
                (true, Some(kept)) => add(&kept.point, &point).unwrap_or(point),
                _ => point,
            };
            instances.insert(sender.instance.clone(), Kept { point, at: Instant::now() });
        }
    }

    /// Every series in Prometheus's text exposition format (0.0.4).
    pub fn prometheus_text(&self) -> String {
        self.prometheus_text_at(Instant::now())
    }

    /// As served at `now`.
    pub(super) fn prometheus_text_at(&self, now: Instant) -> String {
        let mut out = String::new();
        for (name, family) in &self.families {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::UpDownCounter | Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help.replace('\\', "\\\\").replace('\n', "\\n"));
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, instances) in &family.series {
                let live = |kept: &&Kept| now.saturating_duration_since(kept.at) < GONE_AFTER;
                let points = instances.values();
                let point = match family.kind {
                    Kind::Counter | Kind::Histogram => {
                        points.map(|kept| kept.point.clone()).reduce(|a, b| add(&a, &b).unwrap_or(a))
                    }
                    Kind::UpDownCounter => {
                        points.filter(live).map(|kept| kept.point.clone()).reduce(|a, b| add(&a, &b).unwrap_or(a))
                    }
                    Kind::Gauge => points.filter(live).map(|kept| kept.point.clone()).reduce(larger),
                };
                match point {
                    Some(Point::Number(value)) => {
                        let _ = writeln!(out, "{name}{} {}", render(labels, None), float(value));
                    }
                    Some(Point::Histogram { bounds, counts, sum, count }) => {
                        let mut cumulative = 0;
                        for (bound, bucket) in bounds.iter().zip(&counts) {
                            cumulative += bucket;
                            let le = float(*bound);
                            let _ = writeln!(out, "{name}_bucket{} {cumulative}", render(labels, Some(&le)));
                        }
                        let _ = writeln!(out, "{name}_bucket{} {count}", render(labels, Some("+Inf")));
                        let _ = writeln!(out, "{name}_sum{} {}", render(labels, None), float(sum));
                        let _ = writeln!(out, "{name}_count{} {count}", render(labels, None));
                    }
                    None => {}
                }
            }
        }
        out
    }
}

/// The larger of two gauge values.
fn larger(a: Point, b: Point) -> Point {
    match (&a, &b) {
        (Point::Number(x), Point::Number(y)) if y > x => b,
        _ => a,
    }
}

/// `a + b`, where they can be added (numbers; histograms with the same buckets).
fn add(a: &Point, b: &Point) -> Option<Point> {
    match (a, b) {
        (Point::Number(a), Point::Number(b)) => Some(Point::Number(a + b)),
        (
            Point::Histogram { bounds, counts, sum, count },
            Point::Histogram { bounds: other_bounds, counts: other_counts, sum: other_sum, count: other_count },
        ) if bounds == other_bounds && counts.len() == other_counts.len() => Some(Point::Histogram {
            bounds: bounds.clone(),
            counts: counts.iter().zip(other_counts).map(|(a, b)| a + b).collect(),
            sum: sum + other_sum,
            count: count + other_count,
        }),
        _ => None,
    }
}

fn labels(sender: &Labels, attributes_of_point: &[KeyValue]) -> Labels {
    let mut all = sender.clone();
    all.extend(attributes(attributes_of_point).into_iter().map(|(k, v)| (sanitize(&k), v)));
    all.sort();
    all
}

fn number(value: Option<number_data_point::Value>) -> f64 {
    match value {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    }
}

/// A metric or label name as Prometheus allows it: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn sanitize(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn render(labels: &Labels, le: Option<&str>) -> String {
    let pairs = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(le.map(|le| ("le", le)));
    let body: Vec<String> = pairs.map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    if body.is_empty() { String::new() } else { format!("{{{}}}", body.join(",")) }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        value.to_string()
    }
}
