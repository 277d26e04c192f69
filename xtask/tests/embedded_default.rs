//! The checkout against the real emulators, started by the test itself: MiniStack, and moto as
//! the cross-check (DynamoDB, SQS), `cargo lambda watch` serving every function, three raft-node processes, the gateway.
//! One stack serves every scenario below (starting one takes a while); each scenario says what
//! failed.

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use bookstore_domain::events::Event;
use bookstore_domain::vector_clock::VectorClock;
use serde_json::{Value, json};
use xtask::emulator::emulator_clients;
use xtask::stack::{AwsEmulator, Stack, StackOptions};

mod common;
use common::{CARD, Client, order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_on_ministack() {
    checkout_on_the_embedded_default(AwsEmulator::Ministack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_on_moto() {
    checkout_on_the_embedded_default(AwsEmulator::Moto).await;
}

async fn checkout_on_the_embedded_default(aws: AwsEmulator) {
    let _one_stack_at_a_time = common::one_stack_at_a_time().await;
    let stack = Stack::start(StackOptions::ephemeral(aws)).await.expect("the embedded default starts");
    let mut client = Client::new(stack);

    the_stack_matches_the_template(&client).await;
    one_checkout_moves_the_metrics_and_is_one_trace(&client).await;
    an_approved_order_is_committed_and_its_clocks_capture_the_graph(&client).await;
    each_kind_of_rejection_has_its_reason(&client).await;
    bad_input_gets_its_answer_and_never_a_5xx(&client).await;
    every_error_of_every_route_is_in_the_error_shape(&client).await;
    a_retried_or_concurrent_checkout_with_one_key_makes_one_order(&client).await;
    a_service_refuses_an_event_out_of_order(&client).await;
    a_service_clears_only_what_the_final_clock_covers(&client).await;
    concurrent_checkouts_do_not_mix_their_clocks(&client).await;
    every_service_cleared_its_orders(&client).await;
    no_card_number_is_logged_or_stored(&client).await;
    // Last: it stops the books database.
    with_the_books_database_down_the_shopper_reads_no_address(&mut client).await;
}

async fn the_stack_matches_the_template(client: &Client) {
    let stack = &client.stack;
    let (dynamodb, sqs) = emulator_clients(&stack.aws_endpoint);
    for table in ["OrdersTable", "PaymentsTable", "IdempotencyTable", "ServiceStateTable"] {
        assert!(dynamodb.describe_table().table_name(table).send().await.is_ok(), "table {table} exists");
    }
    let queue_url = &stack.resources["OrderQueue"];
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("the order queue exists");
    let attributes = attributes.attributes().unwrap();
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "240");
    let redrive: Value = serde_json::from_str(&attributes[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert!(redrive["deadLetterTargetArn"].as_str().unwrap().ends_with(":OrderDeadLetterQueue"), "{redrive}");
    assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), "5");
    assert_eq!(&stack.function_env["ORDER_QUEUE_URL"], queue_url);
    assert_eq!(stack.function_env["TRANSACTION_VERIFICATION_FUNCTION"], "transaction-verification");
    assert_eq!(stack.function_env["PAYMENT_FUNCTION"], "payment");
    assert_eq!(stack.function_env["MAX_RECEIVES"], "5");
    assert_eq!(stack.function_env["BOOKS_DB_URL"], stack.books_db.urls().join(","));

    let (status, books) = client.get("/books").await;
    assert_eq!(status, 200);
    let books = books.as_array().expect("an array of books");
    assert!(books.len() >= 50, "{} books", books.len());
    assert!(books.iter().all(|b| b["bookId"].is_string() && b["stock"].is_u64() && b["price"].is_number()));
    assert!(books.iter().any(|b| b["stock"].as_u64() > Some(0)), "the live stock is listed, not zeros");
    let (status, answer) = client.get("/nowhere").await;
    assert_eq!((status, &answer["error"]["code"]), (404, &json!("not_found")));
}

/// The sum of the series of `metric` whose labels include every one of `labels`, in Prometheus
/// text as the collector serves it.
fn metric_sum(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, rest) = series.split_once('{').unwrap_or((series, ""));
            (name == metric && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

async fn collector_get(client: &Client, path: &str) -> reqwest::Response {
    let url = format!("{}{path}", client.stack.collector_url);
    client.http.get(url).send().await.expect("the collector answers")
}

/// OpenTelemetry end to end: the functions, the nodes and the gateway export to the stack's
/// collector. One checkout moves the order, execution and latency series by one, the nodes'
/// gauges are there, Prometheus scrapes them; and the checkout is one trace, from the gateway
/// through the checkout, the three services and, across the queue, the executor and payment.
async fn one_checkout_moves_the_metrics_and_is_one_trace(client: &Client) {
    let counted: [(&str, &[(&str, &str)]); 5] = [
        ("bookstore_orders_total", &[("outcome", "approved")]),
        ("bookstore_checkout_seconds_count", &[("outcome", "approved")]),
        ("bookstore_executions_total", &[("outcome", "committed")]),
        ("bookstore_two_phase_commit_seconds_count", &[("outcome", "committed")]),
        ("bookstore_order_queued_seconds_count", &[("delivery", "first")]),
    ];
    let before = collector_get(client, "/metrics").await.text().await.unwrap();
    let before: Vec<f64> = counted.iter().map(|(name, labels)| metric_sum(&before, name, labels)).collect();
    let answer = client.checkout(&order(json!({}))).await;
    assert_eq!(answer["status"], "Order Approved", "{answer}");
    let order_id = answer["orderId"].as_str().unwrap().to_string();
    let recorded = client.wait_until_executed(&order_id).await;
    assert_eq!(recorded["status"], "committed", "{recorded}");
    client.get("/status").await;

    // Metrics go out every five seconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = collector_get(client, "/metrics").await.text().await.unwrap();
        let now: Vec<f64> = counted.iter().map(|(name, labels)| metric_sum(&text, name, labels)).collect();
        let moved = now.iter().zip(&before).all(|(now, before)| *now == before + 1.0);
        let present = [
            "raft_term",
            "raft_commit_lag",
            "bookstore_queue_messages",
            "gateway_requests_total",
            "bookstore_checkouts_in_flight",
            "bookstore_executions_in_flight",
        ];
        let gauges = present.iter().all(|name| text.lines().any(|l| l.starts_with(&format!("{name}{{"))));
        if moved && gauges {
            break text;
        }
        assert!(Instant::now() < deadline, "the counters did not move by one checkout ({before:?} → {now:?}):\n{text}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for node in client.stack.books_db.urls().iter().enumerate().map(|(i, _)| (i + 1).to_string()) {
        assert!(metric_sum(&text, "raft_term", &[("node_id", &node)]) >= 1.0, "node {node}'s term:\n{text}");
    }
    assert_eq!(metric_sum(&text, "raft_is_leader", &[]), 1.0, "one leader:\n{text}");
    assert_eq!(metric_sum(&text, "bookstore_checkouts_in_flight", &[]), 0.0, "{text}");
    assert_eq!(metric_sum(&text, "bookstore_executions_in_flight", &[]), 0.0, "{text}");
    assert!(metric_sum(&text, "bookstore_checkout_seconds_sum", &[("outcome", "approved")]) > 0.0, "{text}");

    // Prometheus scrapes the collector, and the dashboard's queries reach it through the gateway.
    assert!(client.stack.prometheus_url.is_some(), "Prometheus runs (install Debian's prometheus package)");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) = client.get("/prometheus/api/v1/query?query=sum(bookstore_orders_total)").await;
        assert_eq!(status, 200, "{answer}");
        let value = answer["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
        if value.is_some_and(|v| v >= 1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus has no orders: {answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The trace: every span that names the order, and every span of their traces.
    let wanted = [
        "gateway",
        "checkout",
        "transaction-verification",
        "fraud-detection",
        "suggestions",
        "order-executor",
        "payment",
    ];
    // Spans go out in batches, a child's before its parent's: wait for the whole trace.
    let deadline = Instant::now() + Duration::from_secs(60);
    let spans = loop {
        let answer: Value = collector_get(client, &format!("/traces?orderId={order_id}")).await.json().await.unwrap();
        let spans = answer["spans"].as_array().unwrap().clone();
        let services: std::collections::BTreeSet<&str> = spans.iter().filter_map(|s| s["service"].as_str()).collect();
        let ids: std::collections::BTreeSet<&str> = spans.iter().filter_map(|s| s["spanId"].as_str()).collect();
        let whole = spans.iter().all(|s| s["parentSpanId"] == "" || ids.contains(s["parentSpanId"].as_str().unwrap()));
        let named = |service: &str, name: &str| spans.iter().any(|s| s["service"] == service && s["name"] == name);
        let ends = named("gateway", "POST /checkout") && named("order-executor", "order message");
        if wanted.iter().all(|w| services.contains(w)) && whole && ends {
            break spans;
        }
        assert!(Instant::now() < deadline, "not the whole trace ({services:?}): {answer}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let traces: std::collections::BTreeSet<&str> = spans.iter().filter_map(|s| s["traceId"].as_str()).collect();
    assert_eq!(traces.len(), 1, "one trace id across the checkout, the queue and the executor: {spans:#?}");
    let ids: std::collections::BTreeSet<&str> = spans.iter().filter_map(|s| s["spanId"].as_str()).collect();
    let roots: Vec<&Value> = spans.iter().filter(|s| s["parentSpanId"] == "").collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    assert_eq!((roots[0]["service"].as_str(), roots[0]["name"].as_str()), (Some("gateway"), Some("POST /checkout")));
    for span in &spans {
        let parent = span["parentSpanId"].as_str().unwrap();
        assert!(parent.is_empty() || ids.contains(parent), "a span whose parent is not in the trace: {span}");
    }
    let executed = spans.iter().find(|s| s["service"] == "order-executor" && s["name"] == "order message").unwrap();
    assert_eq!(executed["attributes"]["order_id"], order_id.as_str(), "{executed}");
}

async fn an_approved_order_is_committed_and_its_clocks_capture_the_graph(client: &Client) {
    let answer = client.checkout(&order(json!({}))).await;
    assert_eq!(answer["status"], "Order Approved", "{answer}");
    let suggested = answer["suggestedBooks"].as_array().unwrap();
    assert!(!suggested.is_empty());
    for book in suggested {
        assert!(book["bookId"] != "dune" && book["bookId"] != "the-hobbit", "suggested a book in the cart: {book}");
        assert!(book["title"].is_string() && book["author"].is_string());
    }
    let order_id = answer["orderId"].as_str().unwrap();
    // The executors commit it: the whole history is there.
    let recorded = client.wait_until_executed(order_id).await;
    assert_eq!(recorded["status"], "committed", "{recorded}");
    let history: Vec<&str> =
        recorded["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["approved", "queued", "executing", "committed"]);
    // The two-phase commit as it ran, stamped.
    let trail: Vec<String> = recorded["trail"]
        .as_array()
        .unwrap_or_else(|| panic!("no trail: {recorded}"))
        .iter()
        .map(|e| {
            assert!(e["at"].as_str().is_some_and(|at| !at.is_empty()), "{e}");
            ["step", "participant", "outcome", "delivery"]
                .iter()
                .filter_map(|field| e.get(field).map(|v| v.to_string().trim_matches('"').to_string()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    // The books database's yes names the Raft log entry that reserved the stock.
    let index = trail[1].strip_prefix("prepare stock yes (Raft log index ").and_then(|t| t.strip_suffix(')'));
    let index: u64 = index.and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("{}", trail[1]));
    let status = client.stack.books_db.client().unwrap().status().await.unwrap();
    assert!(index > 0 && Some(index) <= status.last_applied, "log index {index}: {status:?}");
    let expected = [
        "claim 1".to_string(),
        format!("prepare stock yes (Raft log index {index})"),
        "prepare payment yes".into(),
        "decide commit".into(),
        "commit stock".into(),
        "commit payment".into(),
    ];
    assert_eq!(trail, expected, "{recorded}");

    // The order's entries in the leader's log: the reservation the prepare wrote, at that index,
    // and phase two's; the public tail masks other orders' keys.
    let reservation = format!("reservation/{order_id}");
    let (code, status) = client.get(&format!("/status?order={order_id}")).await;
    assert_eq!(code, 200, "{status}");
    let entries = status["raftLog"]["entries"].as_array().unwrap_or_else(|| panic!("no log: {status}"));
    let indexes: Vec<u64> = entries.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    // (A write retried after a timeout is one entry more, applied once.)
    assert!(indexes.len() >= 2, "the prepare's and phase two's: {status}");
    assert_eq!(indexes[0], index, "the first is the entry the trail names: {status}");
    for entry in entries {
        assert!(entry["keys"].as_array().unwrap().contains(&json!(reservation)), "{entry}");
    }
    let (_, tail) = client.get("/status").await;
    let keys: Vec<&str> = tail["raftLog"]["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no log: {tail}"))
        .iter()
        .flat_map(|e| e["keys"].as_array().unwrap().iter().filter_map(Value::as_str))
        .collect();
    assert!(keys.contains(&"reservation/…"), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains(order_id)), "an order's id is not public: {keys:?}");

    let clocks: BTreeMap<Event, VectorClock> = recorded["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                serde_json::from_value(e["event"].clone()).unwrap(),
                serde_json::from_value(e["vectorClock"].clone()).unwrap(),
            )
        })
        .collect();
    assert_eq!(clocks.len(), 6, "every event ran: {recorded}");
    for x in Event::ALL {
        for y in Event::ALL {
            assert_eq!(x.precedes(y), clocks[&x].happened_before(&clocks[&y]), "{x} → {y} iff VC({x}) < VC({y})");
        }
    }
    assert!(clocks[&Event::A].concurrent_with(&clocks[&Event::B]));
}

async fn each_kind_of_rejection_has_its_reason(client: &Client) {
    let cases = [
        (json!({"items": []}), "the cart is empty"),
        (json!({"items": [{"name": "Dune", "quantity": 0}]}), "positive quantity"),
        (json!({"items": [{"name": "Dune", "quantity": 1000000}]}), "at most"),
        (json!({"items": [{"name": "The Necronomicon", "quantity": 1}]}), "not in our catalog"),
        (json!({"termsAccepted": false}), "terms"),
        (json!({"billingAddress": {}}), "billing street"),
        (json!({"creditCard": {"number": "4111 1111 1111 1112", "expirationDate": "12/30", "cvv": "123"}}), "checksum"),
        (json!({"creditCard": {"number": CARD, "expirationDate": "01/20", "cvv": "123"}}), "expired"),
        (json!({"user": {"name": "Ada", "contact": "ada@yopmail.com"}}), "disposable"),
        (
            json!({"items": [{"name": "Dune", "quantity": 90}, {"name": "Emma", "quantity": 90}], "shippingMethod": "Express",
                   "user": {"name": "Z", "contact": "z77123456@example.org"}}),
            "fraudulent",
        ),
    ];
    for (overrides, reason) in cases {
        let answer = client.checkout(&order(overrides.clone())).await;
        assert_eq!(answer["status"], "Order Rejected", "{overrides}: {answer}");
        assert!(answer["reason"].as_str().is_some_and(|r| r.contains(reason)), "{overrides}: {answer}");
        assert_eq!(answer["suggestedBooks"], json!([]));
    }
}

async fn bad_input_gets_its_answer_and_never_a_5xx(client: &Client) {
    let (status, answer) = client.checkout_raw("this is not json", "application/json").await;
    assert_eq!((status, &answer["error"]["code"]), (400, &json!("invalid_json")));
    // Browsers posting without headers send text/plain: still JSON to us.
    let (status, answer) = client.checkout_raw(order(json!({})).to_string(), "text/plain").await;
    assert_eq!((status, &answer["status"]), (200, &json!("Order Approved")), "{answer}");
    let (status, answer) = client.checkout_raw(json!({"items": "lots"}).to_string(), "application/json").await;
    assert_eq!((status, &answer["error"]["code"]), (400, &json!("invalid_body")));
    let (status, answer) = client
        .checkout_raw(json!({"creditCard": {"number": 4111111111111111u64}}).to_string(), "application/json")
        .await;
    assert_eq!(status, 400);
    assert!(!answer.to_string().contains("4111111111111111"), "the card number is not echoed: {answer}");
    let huge = order(json!({"userComment": "x".repeat(200_000)}));
    let (status, answer) = client.checkout_raw(huge.to_string(), "application/json").await;
    assert_eq!((status, &answer["error"]["code"]), (413, &json!("body_too_large")));
    let unicode = order(json!({"user": {"name": "Jüri Õun 🦉", "contact": "juri.oun@example.ee"}}));
    assert_eq!(client.checkout(&unicode).await["status"], "Order Approved");
    let spaced =
        order(json!({"creditCard": {"number": " 4111-1111 1111 1111 ", "expirationDate": "12/2030", "cvv": "123"}}));
    assert_eq!(client.checkout(&spaced).await["status"], "Order Approved");
    let (status, _) = client.checkout_raw(json!({}).to_string(), "application/json").await;
    assert_eq!(status, 200, "an empty body is a checkout to reject, not an error");
}

async fn every_error_of_every_route_is_in_the_error_shape(client: &Client) {
    let http = &client.http;
    let url = &client.stack.gateway_url;
    let cases = [
        (reqwest::Method::DELETE, "/checkout", 405, "method_not_allowed"),
        (reqwest::Method::POST, "/books", 405, "method_not_allowed"),
        (reqwest::Method::GET, "/orders/%00%ff", 400, "invalid_order_id"),
        (reqwest::Method::GET, "/orders/no-such-order", 404, "not_found"),
        (reqwest::Method::PUT, "/nowhere", 404, "not_found"),
        // Started without `--fault-controls`: there are none to reach.
        (reqwest::Method::GET, "/faults", 404, "not_found"),
        (reqwest::Method::POST, "/faults/nodes/1/kill", 404, "not_found"),
        (reqwest::Method::PUT, "/faults/executor", 404, "not_found"),
    ];
    for (method, path, status, code) in cases {
        let answer = http.request(method.clone(), format!("{url}{path}")).send().await.unwrap();
        let got = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        assert_eq!((got, &body["error"]["code"]), (status, &json!(code)), "{method} {path}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {path}: {body}");
    }
}

/// POST /checkout of `body` with `Idempotency-Key: key`: status, whether it was replayed, answer.
async fn keyed_checkout(client: &Client, key: &str, body: &Value) -> (u16, bool, Value) {
    let answer = client
        .http
        .post(format!("{}/checkout", client.stack.gateway_url))
        .header("idempotency-key", key)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let replayed = answer.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    (answer.status().as_u16(), replayed, answer.json().await.unwrap_or(Value::Null))
}

async fn a_retried_or_concurrent_checkout_with_one_key_makes_one_order(client: &Client) {
    let (dynamodb, _) = emulator_clients(&client.stack.aws_endpoint);
    let orders_table = &client.stack.resources["OrdersTable"];
    let count_orders =
        || async { dynamodb.scan().table_name(orders_table).consistent_read(true).send().await.unwrap().count() };
    let orders_before = count_orders().await;
    let body = order(json!({"userComment": "placed once"}));
    let key = "retry-key".to_string();
    let (status, replayed, first) = keyed_checkout(client, &key, &body).await;
    assert_eq!((status, replayed, &first["status"]), (200, false, &json!("Order Approved")), "{first}");
    let (status, replayed, again) = keyed_checkout(client, &key, &body).await;
    assert_eq!((status, replayed), (200, true), "{again}");
    assert_eq!(again, first, "the retry gets the first answer: the same order");
    let other = order(json!({"userComment": "another order"}));
    let (status, _, reused) = keyed_checkout(client, &key, &other).await;
    assert_eq!((status, &reused["error"]["code"]), (422, &json!("idempotency_key_reused")), "{reused}");

    // Two at the same moment: one runs, the other waits its turn (409) and then gets its answer.
    let key = "concurrent-key".to_string();
    let (one, two) = tokio::join!(keyed_checkout(client, &key, &body), keyed_checkout(client, &key, &body));
    let mut order_ids = Vec::new();
    for (status, _, mut answer) in [one, two] {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut status = status;
        while status == 409 {
            assert_eq!(answer["error"]["code"], "idempotency_key_in_progress", "{answer}");
            assert!(std::time::Instant::now() < deadline, "the key's first checkout never answered");
            tokio::time::sleep(Duration::from_millis(200)).await;
            (status, _, answer) = keyed_checkout(client, &key, &body).await;
        }
        assert_eq!(status, 200, "{answer}");
        order_ids.push(answer["orderId"].as_str().unwrap().to_string());
    }
    assert_eq!(order_ids[0], order_ids[1], "one order for one key");
    let executed = client.wait_until_executed(&order_ids[0]).await;
    assert_eq!(executed["status"], "committed", "{executed}");
    // Five requests, two keys: two orders in the table, the refused body placed none.
    assert_eq!(count_orders().await, orders_before + 2, "one order per key");
    // The payments table holds one item per order: the order was charged, once.
    assert_eq!(client.payment_state(&order_ids[0]).await.as_deref(), Some("charged"));
}

async fn a_service_refuses_an_event_out_of_order(client: &Client) {
    let init = json!({"action": "init", "orderId": "out-of-order", "order": {}});
    assert_eq!(client.invoke("transaction-verification", &init).await["outcome"], "initialized");
    let c_first = json!({"action": "run", "orderId": "out-of-order", "event": "c", "clock": {}});
    let answer = client.invoke("transaction-verification", &c_first).await;
    assert_eq!((&answer["outcome"], &answer["code"]), (&json!("refused"), &json!("out_of_order")), "{answer}");
    let e_early = json!({"action": "run", "orderId": "out-of-order", "event": "e", "clock": {"tv-a": 2}});
    assert_eq!(client.invoke("fraud-detection", &e_early).await["outcome"], "refused");
    // A clock that claims a ran, when a never ran here: the service's conditional write refuses it.
    let forged = json!({"action": "run", "orderId": "out-of-order", "event": "c", "clock": {"tv-a": 1}});
    let answer = client.invoke("transaction-verification", &forged).await;
    assert_eq!((&answer["outcome"], &answer["code"]), (&json!("refused"), &json!("out_of_order")), "{answer}");
    // In order it runs; a retried a then gets the clock it was recorded with.
    let run = |event: &str, clock: &Value| json!({"action": "run", "orderId": "out-of-order", "event": event, "clock": clock});
    let a = client.invoke("transaction-verification", &run("a", &json!({}))).await;
    let c = client.invoke("transaction-verification", &run("c", &a["vectorClock"])).await;
    assert_eq!(c["vectorClock"], json!({"tv-a": 2}), "{c}");
    let again = client.invoke("transaction-verification", &run("a", &json!({}))).await;
    assert_eq!((&again["outcome"], &again["vectorClock"]), (&json!("ran"), &a["vectorClock"]), "{again}");
}

async fn a_service_clears_only_what_the_final_clock_covers(client: &Client) {
    let init = json!({"action": "init", "orderId": "clearing", "order": {}});
    client.invoke("transaction-verification", &init).await;
    let a = client
        .invoke("transaction-verification", &json!({"action": "run", "orderId": "clearing", "event": "a", "clock": {}}))
        .await;
    assert_eq!(a["outcome"], "ran", "{a}");
    let behind = json!({"action": "clear", "orderId": "clearing", "finalClock": {"tv-b": 1}});
    let answer = client.invoke("transaction-verification", &behind).await;
    assert_eq!((&answer["outcome"], &answer["code"]), (&json!("refused"), &json!("clock_ahead")), "{answer}");
    let covering = json!({"action": "clear", "orderId": "clearing", "finalClock": a["vectorClock"]});
    assert_eq!(client.invoke("transaction-verification", &covering).await["outcome"], "cleared");
    // Gone: running an event now finds no order.
    let after = client
        .invoke("transaction-verification", &json!({"action": "run", "orderId": "clearing", "event": "b", "clock": {}}))
        .await;
    assert_eq!(after["code"], "unknown_order");
    // Leave nothing behind for the final check.
    client
        .invoke(
            "transaction-verification",
            &json!({"action": "clear", "orderId": "out-of-order", "finalClock": {"tv-a": 9, "tv-b": 9}}),
        )
        .await;
}

async fn concurrent_checkouts_do_not_mix_their_clocks(client: &Client) {
    let carts = ["dune", "emma", "the-hobbit", "foundation", "frankenstein", "neuromancer", "solaris", "cosmos"];
    let answers = futures::future::join_all(
        carts
            .iter()
            .map(|id| async move { client.checkout(&order(json!({"items": [{"bookId": id, "quantity": 1}]}))).await }),
    )
    .await;
    for answer in answers {
        let order_id = answer["orderId"].as_str().unwrap_or_default();
        let (status, recorded) = client.get(&format!("/orders/{order_id}")).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["status"], "Order Approved", "{answer}");
        let events = recorded["events"].as_array().unwrap();
        let f = events.iter().find(|e| e["event"] == "f").expect("f ran");
        assert_eq!(f["vectorClock"], json!({"tv-a": 2, "tv-b": 1, "fraud": 2, "suggestions": 1}), "{order_id}");
        assert_eq!(recorded["finalClock"], f["vectorClock"]);
    }
}

async fn every_service_cleared_its_orders(client: &Client) {
    let (dynamodb, _) = emulator_clients(&client.stack.aws_endpoint);
    let scan = dynamodb.scan().table_name(&client.stack.resources["ServiceStateTable"]).send().await.unwrap();
    assert_eq!(scan.count(), 0, "left behind: {:?}", scan.items());
}

async fn no_card_number_is_logged_or_stored(client: &Client) {
    // Give the function logs a moment to reach the files.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for entry in std::fs::read_dir(&client.stack.logs).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for number in ["4111111111111111", CARD] {
            assert!(!text.contains(number), "{} contains a card number", path.display());
        }
    }
    let (dynamodb, _) = emulator_clients(&client.stack.aws_endpoint);
    let scan = dynamodb.scan().table_name(&client.stack.resources["OrdersTable"]).send().await.unwrap();
    assert!(scan.count() > 10);
    let stored = format!("{:?}", scan.items());
    assert!(!stored.contains("4111111111111111") && !stored.contains(CARD), "an order holds a card number");
    // Nor does any telemetry: the spans, their events (the log lines), the metrics. Spans go out
    // in batches: one more order with the card, and its spans from every service, first.
    let answer = client.checkout(&order(json!({}))).await;
    let order_id = answer["orderId"].as_str().unwrap_or_else(|| panic!("{answer}")).to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let traced = client.stack.collector.traces_with("order_id", &order_id);
        let services: std::collections::BTreeSet<&str> = traced.iter().map(|s| s.service.as_str()).collect();
        let checked = ["checkout", "transaction-verification", "fraud-detection", "suggestions"];
        if checked.iter().all(|s| services.contains(s)) && traced.iter().any(|s| !s.events.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the order's spans did not arrive: {services:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let spans = serde_json::to_string(&client.stack.collector.spans()).unwrap();
    let metrics = client.stack.collector.prometheus_text();
    for number in ["4111111111111111", CARD] {
        assert!(!spans.contains(number) && !metrics.contains(number), "telemetry holds a card number");
    }
}

/// The catalog's 503 says what happened in fixed words; the cause, which names the nodes, is the
/// log's.
async fn with_the_books_database_down_the_shopper_reads_no_address(client: &mut Client) {
    let urls = client.stack.books_db.urls();
    for id in 1..=3 {
        client.stack.books_db.kill(id).await.unwrap();
    }
    let answer = client.http.get(format!("{}/books", client.stack.gateway_url)).send().await.unwrap();
    let status = answer.status().as_u16();
    let body = answer.text().await.unwrap();
    let error: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!((status, &error["error"]["code"]), (503, &json!("catalog_unavailable")), "{body}");
    for url in &urls {
        let address = url.trim_start_matches("http://");
        assert!(!body.contains(address), "the answer names {address}: {body}");
    }
    assert!(!body.contains("127.0.0.1") && !body.contains("http"), "{body}");
    // The function's output reaches the log through cargo lambda watch, a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read(client.stack.logs.join("cargo-lambda-watch.log")).unwrap();
        if String::from_utf8_lossy(&log).contains("the catalog could not be read") {
            break;
        }
        assert!(Instant::now() < deadline, "the cause is not logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
