//! Reads `template.yaml`, the single source of truth, for the embedded default: its tables,
//! queues, functions with their environment, and HTTP routes.
//!
//! cfn-lint (in the project's venv) decodes the YAML, short-form intrinsics (`!Ref`, `!GetAtt`)
//! included, into plain JSON; this module reads that JSON.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use crate::venv::Venv;

/// Prints a CloudFormation template as JSON, intrinsics as `{"Ref": ...}` objects.
const DECODE: &str = "import json, sys\nfrom cfnlint.decode import decode\ntemplate, problems = decode(sys.argv[1])\nif problems:\n    sys.exit('\\n'.join(str(p) for p in problems))\nprint(json.dumps(template))";

pub struct Template {
    json: Value,
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
        if !json["Resources"].is_object() {
            bail!("the template has no Resources");
        }
        Ok(Self { json })
    }

    fn resources(&self, kind: &str) -> impl Iterator<Item = (&String, &Value)> {
        self.json["Resources"].as_object().into_iter().flatten().filter(move |(_, r)| r["Type"] == kind)
    }

    /// Parameter name → default value.
    pub fn parameter_defaults(&self) -> BTreeMap<String, String> {
        let parameters = self.json["Parameters"].as_object().into_iter().flatten();
        parameters.filter_map(|(name, p)| Some((name.clone(), p["Default"].as_str()?.to_string()))).collect()
    }

    pub fn tables(&self) -> Result<Vec<TableSpec>> {
        self.resources("AWS::DynamoDB::Table")
            .map(|(id, table)| {
                let props = &table["Properties"];
                let pairs = |list: &Value, a: &str, b: &str| -> Result<Vec<(String, String)>> {
                    list.as_array()
                        .with_context(|| format!("{id}: no {a}"))?
                        .iter()
                        .map(|item| Ok((text(&item[a])?, text(&item[b])?)))
                        .collect()
                };
                Ok(TableSpec {
                    logical_id: id.clone(),
                    keys: pairs(&props["KeySchema"], "AttributeName", "KeyType")?,
                    attributes: pairs(&props["AttributeDefinitions"], "AttributeName", "AttributeType")?,
                })
            })
            .collect()
    }

    pub fn queues(&self) -> Vec<QueueSpec> {
        self.resources("AWS::SQS::Queue")
            .map(|(id, queue)| QueueSpec {
                logical_id: id.clone(),
                properties: queue["Properties"].as_object().cloned().unwrap_or_default(),
            })
            .collect()
    }

    pub fn functions(&self) -> Result<Vec<FunctionSpec>> {
        let globals =
            self.json["Globals"]["Function"]["Environment"]["Variables"].as_object().cloned().unwrap_or_default();
        self.resources("AWS::Serverless::Function")
            .map(|(id, function)| {
                let binary = text(&function["Metadata"]["BuildProperties"]["Binary"])
                    .with_context(|| format!("{id}: Metadata.BuildProperties.Binary names no cargo binary"))?;
                let mut environment: BTreeMap<String, Value> = globals.clone().into_iter().collect();
                let own = function["Properties"]["Environment"]["Variables"].as_object().cloned().unwrap_or_default();
                environment.extend(own);
                let mut routes = Vec::new();
                let mut queue_events = Vec::new();
                for event in function["Properties"]["Events"].as_object().into_iter().flatten().map(|(_, e)| e) {
                    let properties = &event["Properties"];
                    if event["Type"] == "Api" {
                        let method = text(&properties["Method"])?.to_uppercase();
                        routes.push(Route { method, path: text(&properties["Path"])? });
                    } else if event["Type"] == "SQS" {
                        let queue = properties["Queue"]["Fn::GetAtt"][0]
                            .as_str()
                            .with_context(|| format!("{id}: an SQS event's Queue is not !GetAtt QUEUE.Arn"))?;
                        let responses = properties["FunctionResponseTypes"].as_array().into_iter().flatten();
                        queue_events.push(QueueEvent {
                            queue: queue.to_string(),
                            // AWS's defaults: 10 messages, up to 1,000 batches at once.
                            batch_size: properties["BatchSize"].as_i64().and_then(|n| n.try_into().ok()).unwrap_or(10),
                            maximum_concurrency: properties["ScalingConfig"]["MaximumConcurrency"]
                                .as_u64()
                                .and_then(|n| n.try_into().ok())
                                .unwrap_or(1000),
                            report_batch_item_failures: responses.into_iter().any(|r| r == "ReportBatchItemFailures"),
                        });
                    }
                }
                Ok(FunctionSpec { logical_id: id.clone(), binary, environment, routes, queue_events })
            })
            .collect()
    }
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
        assert_eq!(tables, ["OrdersTable", "PaymentsTable", "ServiceStateTable"]);
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
        let timeout = template.json["Resources"][&executor.logical_id]["Properties"]["Timeout"].as_u64().unwrap();
        let visibility = &order_queue.properties["VisibilityTimeout"];
        assert!(visibility.as_u64().unwrap() >= 6 * timeout, "the lock: {visibility} s vs {timeout} s");
        assert_eq!(executor.environment["VISIBILITY_TIMEOUT_SECONDS"], visibility.to_string());
        let limit: u64 = executor.environment["EXECUTION_LIMIT_SECONDS"].as_str().unwrap().parse().unwrap();
        assert!(limit < timeout, "an execution is given up before the function times out: {limit} s vs {timeout} s");
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
