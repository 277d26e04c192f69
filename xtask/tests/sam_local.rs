//! `sam local invoke` of every function with its event in `events/`, and `sam local start-api`,
//! on the Lambda base image that `cargo xtask images` builds (nothing is pulled), against an
//! embedded default started here: the functions run in the SAM CLI's containers and reach its
//! emulator, its `cargo lambda watch` and its books database through the relays of
//! `xtask::sam_local`, and send their spans to its collector the same way.
//!
//! Needs a Docker engine and Debian's busybox-static (`.ci/run` installs it).

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bookstore_domain::payment::{PaymentResponse, PaymentState};
use bookstore_domain::service::ServiceResponse;
use serde_json::{Value, json};
use xtask::stack::{AwsEmulator, Stack, StackOptions};
use xtask::supervisor::{Processes, Stop, spawn_logged};
use xtask::{images, venv, workspace_root};

/// What the SAM CLI needs to find the functions' build and reach the stack.
struct SamLocal {
    venv: venv::Venv,
    template: PathBuf,
    env_vars: PathBuf,
}

impl SamLocal {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.venv.command("sam");
        command
            .args(["local"])
            .args(args)
            .arg("--template")
            .arg(&self.template)
            .arg("--env-vars")
            .arg(&self.env_vars)
            .arg("--skip-pull-image")
            .current_dir(workspace_root())
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
        command
    }

    /// `sam local invoke FUNCTION -e EVENT`: the function's answer (SAM prints it on stdout).
    fn invoke(&self, function: &str, event: &Path) -> Value {
        let event = event.to_string_lossy();
        let output = self.command(&["invoke", function, "--event", &event]).output().expect("running sam");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "sam local invoke {function} failed ({}):\n{stderr}", output.status);
        let stdout = String::from_utf8_lossy(&output.stdout);
        // The answer is the last line; anything before it is SAM's own.
        let answer = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
        serde_json::from_str(answer)
            .unwrap_or_else(|e| panic!("{function}: the answer is not JSON ({e}): {stdout}\nstderr:\n{stderr}"))
    }
}

/// An API Gateway answer's status and its body as JSON.
fn http_answer(function: &str, answer: &Value) -> (u64, Value) {
    let status = answer["statusCode"].as_u64().unwrap_or_else(|| panic!("{function}: no statusCode in {answer}"));
    let body = answer["body"].as_str().unwrap_or_else(|| panic!("{function}: no body in {answer}"));
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{function}: the body is not JSON ({e}): {body}")))
}

fn event_file(name: &str) -> PathBuf {
    workspace_root().join("events").join(name)
}

/// `sam build` of the template into `dir`; its built template.
fn sam_build(venv: &venv::Venv, dir: &Path) -> PathBuf {
    let output = venv
        .command("sam")
        .args(["build", "--build-in-source", "--template", "template.yaml", "--build-dir"])
        .arg(dir)
        .current_dir(workspace_root())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("running sam build");
    assert!(output.status.success(), "sam build failed:\n{}", String::from_utf8_lossy(&output.stderr));
    dir.join("template.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sam_local_runs_every_function_against_the_embedded_default() {
    images::build_lambda_base().expect("the Lambda base image builds");
    let venv = venv::ensure().expect("the tools venv");
    let build = tempfile::tempdir().expect("a build dir");
    let template = sam_build(&venv, &build.path().join("build"));
    let stack = Stack::start(StackOptions { sam_local: true, ..StackOptions::ephemeral(AwsEmulator::Ministack) })
        .await
        .expect("the embedded default starts");
    let env_vars = stack.sam_local.as_ref().expect("the stack serves sam local").env_vars_file.clone();
    let sam = std::sync::Arc::new(SamLocal { venv, template, env_vars });

    // Each invoke blocks for a container's life: off the runtime's threads, which serve the relays.
    let invoke = |function: &'static str, event: PathBuf| {
        let sam = sam.clone();
        async move { tokio::task::spawn_blocking(move || sam.invoke(function, &event)).await.expect("sam ran") }
    };

    let answer = invoke("CheckoutFunction", event_file("checkout.json")).await;
    let (status, checkout) = http_answer("checkout", &answer);
    assert_eq!((status, &checkout["status"]), (200, &json!("Order Approved")), "{checkout}");
    let order_id = checkout["orderId"].as_str().expect("an order id").to_string();
    // Its telemetry reached the stack's collector from the container, through the relay: the
    // checkout's span of that order can only come from `sam local`'s invocation.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stack
        .collector
        .traces_with("order_id", &order_id)
        .iter()
        .any(|span| span.service == "checkout" && span.name == "checkout")
    {
        assert!(Instant::now() < deadline, "no checkout span of {order_id} from sam local");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The orders function finds that order: its event, asking for it.
    let mut orders_event: Value =
        serde_json::from_str(&std::fs::read_to_string(event_file("orders.json")).unwrap()).unwrap();
    let sample_id = orders_event["pathParameters"]["orderId"].as_str().unwrap().to_string();
    orders_event["pathParameters"]["orderId"] = json!(order_id);
    orders_event["path"] = json!(orders_event["path"].as_str().unwrap().replace(&sample_id, &order_id));
    let orders_event_file = build.path().join("orders.json");
    std::fs::write(&orders_event_file, orders_event.to_string()).unwrap();
    let (status, order) = http_answer("orders", &invoke("OrdersFunction", orders_event_file).await);
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["orderId"], json!(order_id), "{order}");

    // The sample order itself was never placed.
    let (status, missing) = http_answer("orders", &invoke("OrdersFunction", event_file("orders.json")).await);
    assert_eq!((status, &missing["error"]["code"]), (404, &json!("not_found")), "{missing}");

    let (status, catalog) = http_answer("catalog", &invoke("CatalogFunction", event_file("catalog.json")).await);
    assert_eq!(status, 200, "{catalog}");
    let books = catalog.as_array().unwrap_or_else(|| panic!("not a list of books: {catalog}"));
    assert!(books.iter().any(|b| b["bookId"] == "dune" && b["stock"].as_u64().is_some()), "{catalog}");

    let (status, system) =
        http_answer("system-status", &invoke("SystemStatusFunction", event_file("system-status.json")).await);
    assert_eq!(status, 200, "{system}");
    let nodes = system["booksDb"].as_array().unwrap_or_else(|| panic!("no books-db nodes: {system}"));
    assert_eq!(nodes.len(), 3, "{system}");
    assert_eq!(nodes.iter().filter(|n| n["role"] == "leader").count(), 1, "{system}");

    // The services: the sample order is initialised at two of them; the third clears it, which
    // it has never kept (clearing is idempotent: a retried clear must not fail).
    for (function, event) in [
        ("TransactionVerificationFunction", "transaction-verification.json"),
        ("FraudDetectionFunction", "fraud-detection.json"),
    ] {
        let answer: ServiceResponse = serde_json::from_value(invoke(function, event_file(event)).await).unwrap();
        assert_eq!(answer, ServiceResponse::Initialized, "{function}");
    }
    let answer: ServiceResponse =
        serde_json::from_value(invoke("SuggestionsFunction", event_file("suggestions.json")).await).unwrap();
    assert_eq!(answer, ServiceResponse::Cleared);

    let answer: PaymentResponse =
        serde_json::from_value(invoke("PaymentFunction", event_file("payment.json")).await).unwrap();
    assert_eq!(answer, PaymentResponse::Done { state: PaymentState::Authorized });

    // The executor is handed a message about an order the orders table does not have: it keeps
    // the message for a retry (the order's write may not be visible yet), so it reports it.
    let answer = invoke("OrderExecutorFunction", event_file("order-executor.json")).await;
    let failures = answer["batchItemFailures"].as_array().unwrap_or_else(|| panic!("no batchItemFailures: {answer}"));
    let message_id: Value = serde_json::from_str::<Value>(
        &std::fs::read_to_string(event_file("order-executor.json")).unwrap(),
    )
    .unwrap()["Records"][0]["messageId"]
        .clone();
    assert_eq!(failures, &vec![json!({ "itemIdentifier": message_id })], "{answer}");

    // The sweeper, given a scheduled rule's event, finds no order stranded.
    let answer = invoke("OrderSweeperFunction", event_file("order-sweeper.json")).await;
    assert_eq!(answer, json!({"queued": [], "failed": [], "retrying": []}));

    start_api_approves_a_checkout(&sam).await;
    drop(stack);
}

/// `sam local start-api`: the API on a free port; a checkout through it is approved.
async fn start_api_approves_a_checkout(sam: &SamLocal) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let port_arg = port.to_string();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("start-api.log");
    let command = sam.command(&["start-api", "--host", "127.0.0.1", "--port", &port_arg]);
    let mut api = Processes::default();
    api.push("sam local start-api", spawn_logged(command, &log).expect("sam starts"), Stop::Terminate);

    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(60)).build().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{url}/books")).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "sam local start-api did not listen:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answer = http.post(format!("{url}/checkout")).json(&common::order(json!({}))).send().await.unwrap();
    let status = answer.status().as_u16();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    assert_eq!((status, &body["status"]), (200, &json!("Order Approved")), "{body}");
    drop(api);
}
