//! What the tests on the embedded default share: a checkout body and a client of the stack.

#![allow(dead_code)] // Each test crate uses part of it.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use xtask::stack::Stack;

/// A DynamoDB item.
pub type Item = std::collections::HashMap<String, AttributeValue>;

pub const CARD: &str = "4111 1111 1111 1111";

/// Held while a test runs its stack: the tests of one file run one stack at a time, since two
/// (each with its emulator, functions and books database) on two cores slow each other into
/// time-outs.
pub async fn one_stack_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static STACKS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    STACKS.lock().await
}

pub fn order(overrides: Value) -> Value {
    let mut body = json!({
        "user": {"name": "Ada Lovelace", "contact": "ada.lovelace@example.org"},
        "creditCard": {"number": CARD, "expirationDate": "12/30", "cvv": "123"},
        "items": [{"name": "Dune", "quantity": 1}, {"bookId": "the-hobbit", "quantity": 1}],
        "billingAddress": {"street": "Narva mnt 18", "city": "Tartu", "zip": "51009", "country": "Estonia"},
        "shippingMethod": "Standard",
        "termsAccepted": true
    });
    for (key, value) in overrides.as_object().into_iter().flatten() {
        body[key] = value.clone();
    }
    body
}

pub struct Client {
    pub http: reqwest::Client,
    pub stack: Stack,
}

impl Client {
    pub fn new(stack: Stack) -> Self {
        Self { http: reqwest::Client::builder().no_proxy().build().expect("an HTTP client"), stack }
    }

    /// Polls `GET /orders/{id}` until the order is committed or failed (two minutes at most:
    /// retries of failed deliveries wait a few seconds each).
    pub async fn wait_until_executed(&self, order_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, order) = self.get(&format!("/orders/{order_id}")).await;
            assert_eq!(status, 200, "{order}");
            if order["status"] == "committed" || order["status"] == "failed" {
                return order;
            }
            assert!(Instant::now() < deadline, "order {order_id} is stuck: {order}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// POST /checkout with a raw body and content type; (status, JSON answer).
    pub async fn checkout_raw(&self, body: impl Into<reqwest::Body>, content_type: &str) -> (u16, Value) {
        let answer = self
            .http
            .post(format!("{}/checkout", self.stack.gateway_url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the gateway answers");
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    pub async fn checkout(&self, body: &Value) -> Value {
        let (status, answer) = self.checkout_raw(body.to_string(), "application/json").await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let answer =
            self.http.get(format!("{}{path}", self.stack.gateway_url)).send().await.expect("the gateway answers");
        (answer.status().as_u16(), answer.json().await.unwrap_or(Value::Null))
    }

    /// An order's item in `table` (the template's logical id of a table keyed `orderId`), read
    /// consistently.
    pub async fn item(&self, table: &str, order_id: &str) -> Option<Item> {
        let (dynamodb, _) = xtask::emulator::emulator_clients(&self.stack.aws_endpoint);
        let answer = dynamodb
            .get_item()
            .table_name(&self.stack.resources[table])
            .key("orderId", AttributeValue::S(order_id.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("the table answers");
        answer.item().cloned()
    }

    /// The order's payment as the payments table holds it (one item per order): its `state`.
    pub async fn payment_state(&self, order_id: &str) -> Option<String> {
        self.item("PaymentsTable", order_id).await?.get("state")?.as_s().ok().cloned()
    }

    /// Invokes a function through `cargo lambda watch`'s Lambda Invoke API.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Value {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.stack.watch_url);
        let answer = self.http.post(url).json(payload).send().await.expect("the Lambda API answers");
        assert!(answer.status().is_success(), "{function}: {}", answer.status());
        answer.json().await.expect("a JSON answer")
    }
}
