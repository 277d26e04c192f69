//! The latest point of every metric series, as Prometheus text. A series is one sender (its
//! `service.name` and `service.instance.id`, as the labels `service` and `instance`) and one set
//! of attributes: cumulative points replace the last one, delta points are added to it, so that
//! Prometheus sums over instances (`sum by (outcome) (…)`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric, metric, number_data_point};

use super::attributes;

#[derive(Default)]
pub struct MetricStore {
    families: BTreeMap<String, Family>,
}

struct Family {
    kind: Kind,
    help: String,
    series: BTreeMap<Labels, Point>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

type Labels = Vec<(String, String)>;

enum Point {
    Number(f64),
    Histogram { bounds: Vec<f64>, counts: Vec<u64>, sum: f64, count: u64 },
}

impl MetricStore {
    pub fn ingest(&mut self, request: ExportMetricsServiceRequest) {
        for resource in request.resource_metrics {
            let sender = sender_labels(&resource.resource.map(|r| attributes(&r.attributes)).unwrap_or_default());
            for metric in resource.scope_metrics.into_iter().flat_map(|scope| scope.metrics) {
                self.ingest_metric(&sender, metric);
            }
        }
    }

    fn ingest_metric(&mut self, sender: &Labels, metric: Metric) {
        let name = sanitize(&metric.name);
        let Some(data) = metric.data else { return };
        let delta = |temporality: i32| temporality == AggregationTemporality::Delta as i32;
        let (kind, name) = match &data {
            metric::Data::Sum(sum) if sum.is_monotonic => {
                (Kind::Counter, if name.ends_with("_total") { name } else { format!("{name}_total") })
            }
            metric::Data::Sum(_) | metric::Data::Gauge(_) => (Kind::Gauge, name),
            metric::Data::Histogram(_) => (Kind::Histogram, name),
            // Not sent by the bookstore's processes.
            metric::Data::ExponentialHistogram(_) | metric::Data::Summary(_) => return,
        };
        let family = self.families.entry(name).or_insert_with(|| Family {
            kind,
            help: metric.description.clone(),
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            return;
        }
        match data {
            metric::Data::Sum(sum) => {
                let adds = delta(sum.aggregation_temporality);
                for point in sum.data_points {
                    let value = number(point.value);
                    let entry = family.series.entry(labels(sender, &point.attributes)).or_insert(Point::Number(0.0));
                    if let Point::Number(current) = entry {
                        *current = if adds { *current + value } else { value };
                    }
                }
            }
            metric::Data::Gauge(gauge) => {
                for point in gauge.data_points {
                    family.series.insert(labels(sender, &point.attributes), Point::Number(number(point.value)));
                }
            }
            metric::Data::Histogram(histogram) => {
                let adds = delta(histogram.aggregation_temporality);
                for point in histogram.data_points {
                    let key = labels(sender, &point.attributes);
                    let (mut counts, mut sum, mut count) = (point.bucket_counts, point.sum.unwrap_or(0.0), point.count);
                    if adds
                        && let Some(Point::Histogram { bounds, counts: old, sum: old_sum, count: old_count }) =
                            family.series.get(&key)
                        && *bounds == point.explicit_bounds
                        && old.len() == counts.len()
                    {
                        counts.iter_mut().zip(old).for_each(|(c, o)| *c += o);
                        sum += old_sum;
                        count += old_count;
                    }
                    family.series.insert(key, Point::Histogram { bounds: point.explicit_bounds, counts, sum, count });
                }
            }
            metric::Data::ExponentialHistogram(_) | metric::Data::Summary(_) => {}
        }
    }

    /// Every series in Prometheus's text exposition format (0.0.4).
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        for (name, family) in &self.families {
            let kind = match family.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {}", family.help.replace('\\', "\\\\").replace('\n', "\\n"));
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, point) in &family.series {
                match point {
                    Point::Number(value) => {
                        let _ = writeln!(out, "{name}{} {}", render(labels, None), float(*value));
                    }
                    Point::Histogram { bounds, counts, sum, count } => {
                        let mut cumulative = 0;
                        for (bound, bucket) in bounds.iter().zip(counts) {
                            cumulative += bucket;
                            let le = float(*bound);
                            let _ = writeln!(out, "{name}_bucket{} {cumulative}", render(labels, Some(&le)));
                        }
                        let _ = writeln!(out, "{name}_bucket{} {count}", render(labels, Some("+Inf")));
                        let _ = writeln!(out, "{name}_sum{} {}", render(labels, None), float(*sum));
                        let _ = writeln!(out, "{name}_count{} {count}", render(labels, None));
                    }
                }
            }
        }
        out
    }
}

/// The sender's labels: `service`, `instance`.
fn sender_labels(resource: &BTreeMap<String, String>) -> Labels {
    [("service.name", "service"), ("service.instance.id", "instance")]
        .into_iter()
        .filter_map(|(attribute, label)| Some((label.to_string(), resource.get(attribute)?.clone())))
        .collect()
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
