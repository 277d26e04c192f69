//! `template.yaml` against the project's own tools (cfn-lint, `sam validate --lint`, `sam build`),
//! and the sample events in `events/` against the template's routes and what the functions parse.
//!
//! `sam build` cross-compiles every function in release mode with cargo-lambda and Zig: about
//! ten minutes on a cold `target/` on a 2-core machine, seconds once `target/` is warm.

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use bookstore_domain::catalog::default_catalog;
use bookstore_domain::checkout::parse_checkout;
use bookstore_domain::clock::Clock;
use bookstore_domain::events::PROCESSES;
use bookstore_domain::fraud::{self, FraudModel};
use bookstore_domain::payment::PaymentRequest;
use bookstore_domain::service::{OrderData, ServiceRequest};
use bookstore_domain::verification;
use serde_json::Value;
use xtask::template::{FunctionSpec, Route, Template};
use xtask::{venv, workspace_root};

/// The HTTP functions' events: (file in `events/`, cargo binary).
const HTTP_EVENTS: [(&str, &str); 4] = [
    ("checkout.json", "checkout"),
    ("catalog.json", "catalog"),
    ("orders.json", "orders"),
    ("system-status.json", "system-status"),
];

/// The services' events: (file in `events/`, cargo binary).
const SERVICE_EVENTS: [(&str, &str); 3] = [
    ("transaction-verification.json", "transaction-verification"),
    ("fraud-detection.json", "fraud-detection"),
    ("suggestions.json", "suggestions"),
];

fn event(file: &str) -> Value {
    let path = workspace_root().join("events").join(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn template_functions() -> Vec<FunctionSpec> {
    let venv = venv::ensure().expect("the tools venv");
    let template = Template::load(&venv, &workspace_root().join("template.yaml")).expect("template.yaml decodes");
    template.functions().expect("the template's functions")
}

/// Runs a venv tool from the workspace root; panics with its output unless it succeeds.
fn run_tool(mut command: Command, what: &str) -> Output {
    let output = command.current_dir(workspace_root()).output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}):\n{printed}", output.status);
    println!("{what}: ok\n{}", printed.trim_end());
    output
}

#[test]
fn cfn_lint_passes() {
    let mut command = venv::ensure().expect("the tools venv").command("cfn-lint");
    command.arg("template.yaml");
    run_tool(command, "cfn-lint template.yaml");
}

/// `sam validate --lint` needs a region (it reads none from a profile here) and no credentials.
#[test]
fn sam_validate_lint_passes() {
    let mut command = venv::ensure().expect("the tools venv").command("sam");
    command.args(["validate", "--lint", "--template", "template.yaml"]).env("AWS_DEFAULT_REGION", "us-east-1");
    run_tool(command, "sam validate --lint");
}

/// `sam build` builds every function of the template into a `bootstrap` for Lambda's
/// `provided.al2023` x86_64 runtime. The build dir is a temporary one; cargo-lambda builds in
/// the workspace's (ignored) `target/`, and nothing else is left in the repository.
#[test]
fn sam_build_builds_every_function() {
    let root = workspace_root();
    let functions = template_functions();
    let aws_sam = root.join(".aws-sam");
    let aws_sam_existed = aws_sam.exists();
    let build = tempfile::tempdir().expect("a temporary build dir");
    let build_dir = build.path().join("build");

    let mut command = venv::ensure().expect("the tools venv").command("sam");
    // The Rust workflow always builds in the source tree; saying so spares a warning per function.
    command
        .args(["build", "--build-in-source", "--template", "template.yaml", "--build-dir"])
        .arg(&build_dir)
        .env("AWS_DEFAULT_REGION", "us-east-1");
    let started = Instant::now();
    run_tool(command, "sam build");
    println!("sam build took {:.1} s", started.elapsed().as_secs_f64());

    assert!(build_dir.join("template.yaml").is_file(), "sam build wrote no template to {}", build_dir.display());
    for function in &functions {
        let bootstrap = build_dir.join(&function.logical_id).join("bootstrap");
        assert_x86_64_executable(&bootstrap);
        println!("{} ({}): {} bytes", function.logical_id, function.binary, fs::metadata(&bootstrap).unwrap().len());
    }
    if !aws_sam_existed {
        assert!(!aws_sam.exists(), "sam build left {} in the repository", aws_sam.display());
    }
}

/// An ELF executable for x86-64, as the template's `Architectures: [x86_64]` asks.
fn assert_x86_64_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;

    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{} was not built: {e}", path.display()));
    assert!(bytes.len() > 20 && bytes.starts_with(b"\x7fELF"), "{} is not an ELF file", path.display());
    assert_eq!(bytes[4], 2, "{} is not a 64-bit ELF file", path.display());
    assert_eq!(u16::from_le_bytes([bytes[18], bytes[19]]), 0x3e, "{} is not built for x86-64", path.display());
    let mode = fs::metadata(path).unwrap().permissions().mode();
    assert!(mode & 0o111 != 0, "{} is not executable (mode {mode:o})", path.display());
}

/// What lambda_http needs to take an event as an API Gateway REST (v1) proxy event, checked by
/// hand: xtask does not depend on lambda_http or aws_lambda_events.
fn assert_rest_proxy_event(file: &str, event: &Value) {
    let method = event["httpMethod"].as_str().unwrap_or_else(|| panic!("{file}: no httpMethod"));
    assert!(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"].contains(&method), "{file}: {method}");
    let context = &event["requestContext"];
    assert_eq!(context["httpMethod"], method, "{file}: requestContext.httpMethod");
    assert_eq!(context["resourcePath"], event["resource"], "{file}: requestContext.resourcePath");
    let stage = context["stage"].as_str().unwrap_or_else(|| panic!("{file}: no requestContext.stage"));
    let path = event["path"].as_str().unwrap_or_else(|| panic!("{file}: no path"));
    assert_eq!(context["path"], format!("/{stage}{path}"), "{file}: requestContext.path");
    let headers = event["headers"].as_object().unwrap_or_else(|| panic!("{file}: no headers"));
    let multi = event["multiValueHeaders"].as_object().unwrap_or_else(|| panic!("{file}: no multiValueHeaders"));
    assert_eq!(headers.len(), multi.len(), "{file}: headers and multiValueHeaders differ");
    for (name, value) in headers {
        assert!(value.is_string(), "{file}: header {name} is not a string");
        assert_eq!(multi[name], Value::Array(vec![value.clone()]), "{file}: multiValueHeaders.{name}");
    }
    for field in ["queryStringParameters", "multiValueQueryStringParameters", "pathParameters", "stageVariables"] {
        assert!(event[field].is_null() || event[field].is_object(), "{file}: {field} must be null or an object");
    }
    assert!(event["body"].is_null() || event["body"].is_string(), "{file}: the body must be a string or null");
    assert_eq!(event["isBase64Encoded"], false, "{file}: isBase64Encoded");
}

/// Each HTTP event is a REST proxy event for one of its function's routes in the template, with
/// the path parameters that route declares.
#[test]
fn http_events_are_rest_proxy_events_for_the_templates_routes() {
    let functions = template_functions();
    for (file, binary) in HTTP_EVENTS {
        let event = event(file);
        assert_rest_proxy_event(file, &event);
        let function = functions.iter().find(|f| f.binary == binary).unwrap_or_else(|| panic!("no {binary} function"));
        let resource = event["resource"].as_str().unwrap();
        let route = Route { method: event["httpMethod"].as_str().unwrap().into(), path: resource.into() };
        assert!(function.routes.contains(&route), "{file}: {route:?} is not a route of {}", function.logical_id);

        let mut path = resource.to_string();
        let mut declared: Vec<&str> =
            resource.split('{').skip(1).filter_map(|s| s.split_once('}')).map(|p| p.0).collect();
        let given: BTreeMap<String, Value> =
            event["pathParameters"].as_object().cloned().unwrap_or_default().into_iter().collect();
        let mut given_names: Vec<&str> = given.keys().map(String::as_str).collect();
        declared.sort_unstable();
        given_names.sort_unstable();
        assert_eq!(given_names, declared, "{file}: pathParameters");
        for (name, value) in &given {
            path = path.replace(&format!("{{{name}}}"), value.as_str().expect("a path parameter is a string"));
        }
        assert_eq!(event["path"], path, "{file}: path");
    }
}

/// The checkout event's body is a checkout the services approve: it parses as the checkout API,
/// and the order the services' events carry is the one the orchestrator makes of it.
#[test]
fn the_checkout_event_is_the_services_order() {
    let checkout = event("checkout.json");
    assert_eq!(checkout["headers"]["Content-Type"], "application/json");
    let body = checkout["body"].as_str().expect("the checkout event has a body");
    let request = parse_checkout(body.as_bytes()).expect("the body is a checkout request");
    assert_eq!(request.terms_and_conditions_accepted, Some(true));
    let order = OrderData::from_request(&request, &default_catalog().unwrap());
    assert!(order.lines.iter().all(|l| l.book_id.is_some()), "every item is a catalog book: {:?}", order.lines);

    verification::check_cart(&order.lines).expect("event a passes");
    verification::check_user_data(&order).expect("event b passes");
    verification::check_card(order.card.as_ref(), bookstore_aws::SystemClock.this_month()).expect("event c passes");
    let facts = order.fraud_facts();
    fraud::check_user(&facts).expect("event d passes");
    fraud::check_order(&facts, &FraudModel::embedded().unwrap()).expect("event e passes");

    for (file, _) in SERVICE_EVENTS {
        if let ServiceRequest::Init { order: init, .. } = serde_json::from_value(event(file)).unwrap() {
            assert_eq!(*init, order, "{file}: the order differs from the checkout event's");
        }
    }
}

/// The services' events are requests the services take, all about the order that
/// `events/orders.json` asks for.
#[test]
fn service_events_are_service_requests() {
    let order_id = event("orders.json")["pathParameters"]["orderId"].clone();
    for (file, _) in SERVICE_EVENTS {
        let event = event(file);
        let request: ServiceRequest =
            serde_json::from_value(event.clone()).unwrap_or_else(|e| panic!("{file} is not a ServiceRequest: {e}"));
        assert_eq!(request.order_id(), order_id, "{file}: orderId");
        // Serde ignores unknown fields: a misspelt one would be lost without this.
        assert_eq!(serde_json::to_value(&request).unwrap(), event, "{file} has fields the services ignore");
        if let ServiceRequest::Clear { final_clock, .. } = &request {
            for process in PROCESSES {
                assert!(final_clock.get(process) > 0, "{file}: the final clock misses {process}");
            }
        }
    }
}

/// The order executor's event is an SQS event about that order, and payment's a request it takes.
#[test]
fn queue_and_payment_events_fit_their_functions() {
    let order_id = event("orders.json")["pathParameters"]["orderId"].clone();
    let queue_event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_value(event("order-executor.json")).expect("an SQS event");
    let body: Value = serde_json::from_str(queue_event.records[0].body.as_deref().unwrap_or_default()).unwrap();
    assert_eq!(body["orderId"], order_id);
    let payment: PaymentRequest = serde_json::from_value(event("payment.json")).expect("a payment request");
    assert_eq!(payment.order_id(), order_id);
    assert_eq!(serde_json::to_value(&payment).unwrap(), event("payment.json"), "fields payment ignores");
    let binaries: Vec<String> = template_functions().into_iter().map(|f| f.binary).collect();
    for binary in ["order-executor", "payment"] {
        assert!(binaries.iter().any(|b| b == binary), "{binary} is not in the template");
    }
}
