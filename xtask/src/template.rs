//! Reads `template.yaml`, the single source of truth, for the embedded default: its tables,
//! queues, functions with their environment, and HTTP routes.
//!
//! cfn-lint (in the project's venv) decodes the YAML, short-form intrinsics (`!Ref`, `!GetAtt`)
//! included, into plain JSON; this module reads that JSON.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::venv::Venv;

/// Prints a CloudFormation template as JSON, intrinsics as `{"Ref": ...}` objects.
const DECODE: &str = "import json, sys\nfrom cfnlint.decode import decode\ntemplate, problems = decode(sys.argv[1])\nif problems:\n    sys.exit('\\n'.join(str(p) for p in problems))\nprint(json.dumps(template))";

pub struct Template {
    document: Document,
}

/// The parts of a SAM template the embedded default reads. Values that may be intrinsics (`Ref`,
/// `Fn::GetAtt`) stay JSON, for [`Resolver`].
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    #[serde(default)]
    parameters: BTreeMap<String, Parameter>,
    #[serde(default)]
    globals: Globals,
    resources: BTreeMap<String, Resource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Parameter {
    default: Option<Value>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Globals {
    #[serde(default)]
    function: GlobalFunction,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GlobalFunction {
    #[serde(default)]
    environment: Environment,
}

#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Environment {
    #[serde(default)]
    variables: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(tag = "Type")]
enum Resource {
    #[serde(rename = "AWS::DynamoDB::Table")]
    Table {
        #[serde(rename = "Properties")]
        properties: TableProperties,
    },
    #[serde(rename = "AWS::SQS::Queue")]
    Queue {
        #[serde(rename = "Properties", default)]
        properties: Map<String, Value>,
    },
    #[serde(rename = "AWS::Serverless::Function")]
    Function {
        #[serde(rename = "Properties")]
        properties: FunctionProperties,
        #[serde(rename = "Metadata")]
        metadata: FunctionMetadata,
    },
    /// Resources the embedded default has no part of (the API, alarms, ...).
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableProperties {
    key_schema: Vec<KeySchemaElement>,
    attribute_definitions: Vec<AttributeDefinition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeySchemaElement {
    attribute_name: String,
    key_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeDefinition {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FunctionProperties {
    #[serde(default)]
    environment: Environment,
    #[serde(default)]
    events: BTreeMap<String, Event>,
    timeout: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FunctionMetadata {
    build_properties: BuildProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BuildProperties {
    binary: String,
}

#[derive(Deserialize)]
#[serde(tag = "Type", content = "Properties")]
enum Event {
    Api(ApiEvent),
    #[serde(rename = "SQS")]
    Sqs(SqsEvent),
    Schedule(ScheduleEvent),
    /// Others, which the embedded default does not run.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiEvent {
    method: String,
    path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SqsEvent {
    queue: GetAtt,
    batch_size: Option<i32>,
    scaling_config: Option<ScalingConfig>,
    #[serde(default)]
    function_response_types: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleEvent {
    /// `rate(N unit)`; `cron(...)` is not run by the embedded default.
    schedule: String,
}

/// `!GetAtt RESOURCE.ATTRIBUTE`.
#[derive(Deserialize)]
struct GetAtt {
    #[serde(rename = "Fn::GetAtt")]
    target: (String, String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScalingConfig {
    maximum_concurrency: Option<usize>,
}

pub struct TableSpec {
    pub logical_id: String,
    /// (attribute, HASH or RANGE)
    pub keys: Vec<(String, String)>,
    /// (attribute, S, N or B)
    pub attributes: Vec<(String, String)>,
}

pub struct QueueSpec {
    pub logical_id: String,
    pub properties: Map<String, Value>,
}

pub struct FunctionSpec {
    pub logical_id: String,
    /// The cargo binary that is the function.
    pub binary: String,
    /// Global and own environment variables, unresolved.
    pub environment: BTreeMap<String, Value>,
    pub routes: Vec<Route>,
    /// Its SQS event sources.
    pub queue_events: Vec<QueueEvent>,
    /// How often its `Schedule` events run it.
    pub schedules: Vec<Duration>,
    /// Its `Timeout` in seconds, where it sets one.
    pub timeout: Option<u64>,
}

/// An `SQS` event of a function: the event source mapping AWS would run.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEvent {
    /// The queue's logical id (from `Queue: !GetAtt X.Arn`).
    pub queue: String,
    pub batch_size: i32,
    /// How many batches may run at once (`ScalingConfig.MaximumConcurrency`).
    pub maximum_concurrency: usize,
    pub report_batch_item_failures: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upper case: `GET`, `POST`, `OPTIONS`.
    pub method: String,
    /// API Gateway form: `/orders/{orderId}`.
    pub path: String,
}

impl Template {
    pub fn load(venv: &Venv, path: &Path) -> Result<Self> {
        let output = venv
            .command("python")
            .args(["-c", DECODE])
            .arg(path)
            .output()
            .with_context(|| format!("decoding {} with cfn-lint", path.display()))?;
        if !output.status.success() {
            bail!("{} cannot be read: {}", path.display(), String::from_utf8_lossy(&output.stderr).trim());
        }
        Self::from_json(serde_json::from_slice(&output.stdout).context("cfn-lint's JSON")?)
    }

    pub fn from_json(json: Value) -> Result<Self> {
        let document = serde_json::from_value(json).context("the template's shape")?;
        Ok(Self { document })
    }

    /// Parameter name → default value.
    pub fn parameter_defaults(&self) -> BTreeMap<String, String> {
        let parameters = self.document.parameters.iter();
        parameters.filter_map(|(name, p)| Some((name.clone(), text(p.default.as_ref()?).ok()?))).collect()
    }

    pub fn tables(&self) -> Result<Vec<TableSpec>> {
        let tables = self.document.resources.iter().filter_map(|(id, resource)| match resource {
            Resource::Table { properties } => Some(TableSpec {
                logical_id: id.clone(),
                keys: properties.key_schema.iter().map(|k| (k.attribute_name.clone(), k.key_type.clone())).collect(),
                attributes: properties
                    .attribute_definitions
                    .iter()
                    .map(|a| (a.attribute_name.clone(), a.attribute_type.clone()))
                    .collect(),
            }),
            _ => None,
        });
        Ok(tables.collect())
    }

    pub fn queues(&self) -> Vec<QueueSpec> {
        let queues = self.document.resources.iter().filter_map(|(id, resource)| match resource {
            Resource::Queue { properties } => {
                Some(QueueSpec { logical_id: id.clone(), properties: properties.clone() })
            }
            _ => None,
        });
        queues.collect()
    }

    pub fn functions(&self) -> Result<Vec<FunctionSpec>> {
        let globals = &self.document.globals.function.environment.variables;
        let functions = self.document.resources.iter().filter_map(|(id, resource)| match resource {
            Resource::Function { properties, metadata } => Some(function_spec(id, properties, metadata, globals)),
            _ => None,
        });
        Ok(functions.collect())
    }
}

fn function_spec(
    id: &str,
    properties: &FunctionProperties,
    metadata: &FunctionMetadata,
    globals: &BTreeMap<String, Value>,
) -> FunctionSpec {
    let mut environment = globals.clone();
    environment.extend(properties.environment.variables.clone());
    let mut routes = Vec::new();
    let mut queue_events = Vec::new();
    let mut schedules = Vec::new();
    for event in properties.events.values() {
        match event {
            Event::Api(api) => routes.push(Route { method: api.method.to_uppercase(), path: api.path.clone() }),
            Event::Sqs(sqs) => queue_events.push(QueueEvent {
                queue: sqs.queue.target.0.clone(),
                // AWS's defaults: 10 messages, up to 1,000 batches at once.
                batch_size: sqs.batch_size.unwrap_or(10),
                maximum_concurrency: sqs.scaling_config.as_ref().and_then(|c| c.maximum_concurrency).unwrap_or(1000),
                report_batch_item_failures: sqs.function_response_types.iter().any(|r| r == "ReportBatchItemFailures"),
            }),
            // What the embedded default cannot run is left out, as AWS-only events are.
            Event::Schedule(schedule) => match rate(&schedule.schedule) {
                Ok(period) => schedules.push(period),
                Err(e) => eprintln!("xtask: {id}'s Schedule is not run here: {e:#}"),
            },
            Event::Other => {}
        }
    }
    FunctionSpec {
        logical_id: id.to_string(),
        binary: metadata.build_properties.binary.clone(),
        environment,
        routes,
        queue_events,
        schedules,
        timeout: properties.timeout,
    }
}

/// The period of an EventBridge `rate(N unit)` expression.
fn rate(expression: &str) -> Result<Duration> {
    let inner = expression.trim().strip_prefix("rate(").and_then(|e| e.strip_suffix(')'));
    let parsed = inner.and_then(|inner| {
        let (count, unit) = inner.trim().split_once(' ')?;
        let seconds = match unit.trim() {
            "minute" | "minutes" => 60,
            "hour" | "hours" => 3600,
            "day" | "days" => 86_400,
            _ => return None,
        };
        Some(Duration::from_secs(count.parse::<u64>().ok().filter(|n| *n > 0)? * seconds))
    });
    parsed.with_context(|| {
        format!("{expression:?} is not rate(N minutes|hours|days), which is all the embedded default runs")
    })
}

fn text(value: &Value) -> Result<String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => bail!("expected a string, found {other}"),
    }
}

/// Gives `Ref` and `Fn::GetAtt` their values in the embedded default.
#[derive(Default)]
pub struct Resolver {
    /// Logical id or parameter name → what `Ref` gives.
    pub refs: HashMap<String, String>,
    /// (logical id, attribute) → what `Fn::GetAtt` gives.
    pub attributes: HashMap<(String, String), String>,
}

impl Resolver {
    pub fn resolve(&self, value: &Value) -> Result<String> {
        if let Some(name) = value.get("Ref").and_then(Value::as_str) {
            return self.refs.get(name).cloned().with_context(|| format!("no value for Ref {name}"));
        }
        if let Some([id, attribute]) = value.get("Fn::GetAtt").and_then(Value::as_array).map(Vec::as_slice) {
            let key = (text(id)?, text(attribute)?);
            return self
                .attributes
                .get(&key)
                .cloned()
                .with_context(|| format!("no value for GetAtt {}.{}", key.0, key.1));
        }
        text(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real template, decoded by cfn-lint: its functions, routes and environment are what
    /// the embedded default and the checkout rely on.
    #[test]
    fn the_template_declares_the_checkout_and_its_services() {
        let venv = crate::venv::ensure().unwrap();
        let template = Template::load(&venv, &crate::workspace_root().join("template.yaml")).unwrap();
        let functions = template.functions().unwrap();
        let binaries: Vec<&str> = functions.iter().map(|f| f.binary.as_str()).collect();
        for binary in ["checkout", "transaction-verification", "fraud-detection", "suggestions", "catalog", "orders"] {
            assert!(binaries.contains(&binary), "{binary} missing from {binaries:?}");
        }
        let checkout = functions.iter().find(|f| f.binary == "checkout").unwrap();
        assert!(checkout.routes.contains(&Route { method: "POST".into(), path: "/checkout".into() }));
        assert_eq!(checkout.environment["ORDER_QUEUE_URL"], serde_json::json!({"Ref": "OrderQueue"}));
        assert!(checkout.environment.contains_key("BOOKS_DB_URL"), "globals are merged in");
        let tables: Vec<String> = template.tables().unwrap().into_iter().map(|t| t.logical_id).collect();
        assert_eq!(tables, ["IdempotencyTable", "OrdersTable", "PaymentsTable", "ServiceStateTable"]);
        let queues = template.queues();
        let order_queue = queues.iter().find(|q| q.logical_id == "OrderQueue").unwrap();
        let max_receives = &order_queue.properties["RedrivePolicy"]["maxReceiveCount"];
        assert_eq!(max_receives, 5);

        let executor = functions.iter().find(|f| f.binary == "order-executor").unwrap();
        let expected = QueueEvent {
            queue: "OrderQueue".into(),
            batch_size: 2,
            maximum_concurrency: 2,
            report_batch_item_failures: true,
        };
        assert_eq!(executor.queue_events, [expected]);
        assert_eq!(
            executor.environment["MAX_RECEIVES"],
            max_receives.to_string(),
            "the executor knows its last delivery"
        );
        // Lambda's environment values are strings; an emulator given a number fails the function.
        for function in &functions {
            for (name, value) in &function.environment {
                assert!(
                    value.is_string() || value.is_object(),
                    "{}: {name} is {value}, not a string",
                    function.logical_id
                );
            }
        }
        let timeout = executor.timeout.unwrap();
        let visibility = &order_queue.properties["VisibilityTimeout"];
        assert!(visibility.as_u64().unwrap() >= 6 * timeout, "the lock: {visibility} s vs {timeout} s");
        assert_eq!(executor.environment["VISIBILITY_TIMEOUT_SECONDS"], visibility.to_string());
        let limit: u64 = executor.environment["EXECUTION_LIMIT_SECONDS"].as_str().unwrap().parse().unwrap();
        assert!(limit < timeout, "an execution is given up before the function times out: {limit} s vs {timeout} s");

        let sweeper = functions.iter().find(|f| f.binary == "order-sweeper").unwrap();
        assert_eq!(sweeper.schedules, [Duration::from_secs(60)]);
        assert_eq!(sweeper.environment["ORDER_QUEUE_URL"], serde_json::json!({"Ref": "OrderQueue"}));
    }

    #[test]
    fn rates_are_read_and_other_schedules_refused() {
        assert_eq!(rate("rate(1 minute)").unwrap(), Duration::from_secs(60));
        assert_eq!(rate("rate(5 minutes)").unwrap(), Duration::from_secs(300));
        assert_eq!(rate("rate(2 hours)").unwrap(), Duration::from_secs(7200));
        for bad in ["rate(0 minutes)", "rate(1 fortnight)", "cron(0 12 * * ? *)", "rate(x minutes)"] {
            let error = rate(bad).unwrap_err().to_string();
            assert!(error.contains("rate(N minutes|hours|days)"), "{bad}: {error}");
        }
    }

    #[test]
    fn refs_and_getatts_resolve() {
        let mut resolver = Resolver::default();
        resolver.refs.insert("OrderQueue".into(), "http://q".into());
        resolver.attributes.insert(("OrderQueue".into(), "Arn".into()), "arn:q".into());
        assert_eq!(resolver.resolve(&serde_json::json!({"Ref": "OrderQueue"})).unwrap(), "http://q");
        assert_eq!(resolver.resolve(&serde_json::json!({"Fn::GetAtt": ["OrderQueue", "Arn"]})).unwrap(), "arn:q");
        assert_eq!(resolver.resolve(&serde_json::json!(90)).unwrap(), "90");
        assert!(resolver.resolve(&serde_json::json!({"Ref": "Nope"})).is_err());
    }
}
