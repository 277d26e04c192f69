//! Order execution on the embedded default (MiniStack, and moto as the cross-check; `cargo lambda watch`, three raft-node
//! processes, the queue pollers), with the course's unreliable executors switched on: half of all
//! deliveries fail midway (before prepare or between the decision and phase two) and each waits
//! a random moment. Orders must still end `committed` or `failed`, once, with stock conserved.
//! The sweeper runs every second and takes up orders queued for two seconds, so it also sends
//! duplicates of slow orders' messages, which must change nothing.

// A test fails by panicking: its helpers unwrap too, not only its #[test] functions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageAttributeValue, QueueAttributeName};

use bookstore_aws::DEAD_LETTER_REASON;
use bookstore_domain::order::OrderStatus;
use serde_json::{Value, json};
use xtask::emulator::emulator_clients;
use xtask::stack::{AwsEmulator, Stack, StackOptions};

mod common;
use common::{Client, order};

/// The trace the bad messages are sent in (W3C `traceparent`).
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_commit_exactly_once_on_ministack() {
    orders_commit_exactly_once_through_executor_failures_and_a_lost_leader(AwsEmulator::Ministack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_commit_exactly_once_on_moto() {
    orders_commit_exactly_once_through_executor_failures_and_a_lost_leader(AwsEmulator::Moto).await;
}

async fn orders_commit_exactly_once_through_executor_failures_and_a_lost_leader(aws: AwsEmulator) {
    let _one_stack_at_a_time = common::one_stack_at_a_time().await;
    let options = StackOptions {
        parameters: vec![
            ("ExecutorFailureRate".into(), "0.5".into()),
            ("ExecutorDelayMs".into(), "0-300".into()),
            ("StrandedAfterSeconds".into(), "2".into()),
        ],
        schedule_every: Some(Duration::from_secs(1)),
        ..StackOptions::ephemeral(aws)
    };
    let stack = Stack::start(options).await.expect("the embedded default starts");
    let mut client = Client::new(stack);

    // Sent first: they take several deliveries to settle, while the scenarios after them run.
    // They carry a trace, as the checkout's messages do.
    let (_, sqs) = emulator_clients(&client.stack.aws_endpoint);
    let trace = MessageAttributeValue::builder().data_type("String").string_value(TRACEPARENT).build().unwrap();
    for body in ["not an order", r#"{"orderId":"no-such-order"}"#] {
        sqs.send_message()
            .queue_url(&client.stack.resources["OrderQueue"])
            .message_body(body)
            .message_attributes("traceparent", trace.clone())
            .send()
            .await
            .unwrap();
    }
    the_last_copies_go_to_exactly_as_many_orders(&client).await;
    stock_is_conserved_when_the_books_database_loses_its_leader(&mut client).await;
    an_order_whose_message_was_lost_is_queued_again_and_commits(&mut client).await;
    bad_messages_end_in_the_dead_letter_queue_or_are_dropped_and_can_be_redriven(&client).await;
    the_emulated_failures_happened(&client);
}

async fn bad_messages_end_in_the_dead_letter_queue_or_are_dropped_and_can_be_redriven(client: &Client) {
    let (_, sqs) = emulator_clients(&client.stack.aws_endpoint);
    let (queue, dead_letters) =
        (&client.stack.resources["OrderQueue"], &client.stack.resources["OrderDeadLetterQueue"]);
    let count = |url: &String| {
        let sqs = sqs.clone();
        let url = url.clone();
        async move {
            let answer = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .unwrap();
            answer.attributes().into_iter().flatten().map(|(_, n)| n.parse::<u64>().unwrap_or(0)).sum::<u64>()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    // The message that is no order dead-letters; the unknown order is dropped on its last
    // delivery.
    while count(queue).await > 0 || count(dead_letters).await < 1 {
        assert!(Instant::now() < deadline, "the bad messages did not settle");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(count(dead_letters).await, 1);
    // Dead-lettered by the executor at its first delivery (a message that is no order fails on
    // every one), saying why; not by the redrive policy after five.
    let held = sqs
        .receive_message()
        .queue_url(dead_letters)
        .message_attribute_names("All")
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let message = &held.messages()[0];
    assert_eq!(message.body(), Some("not an order"));
    let attribute = |message: &Message, name: &str| {
        message.message_attributes().and_then(|a| a.get(name)).and_then(|v| v.string_value()).map(str::to_string)
    };
    assert_eq!(attribute(message, DEAD_LETTER_REASON).as_deref(), Some("not an order"), "{message:?}");
    assert_eq!(attribute(message, "traceparent").as_deref(), Some(TRACEPARENT), "the copy keeps the trace");
    let receipt = message.receipt_handle().unwrap();
    sqs.change_message_visibility()
        .queue_url(dead_letters)
        .receipt_handle(receipt)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(xtask::redrive::redrive(&sqs, dead_letters, queue).await.unwrap(), 1);
    // Redriven, it meets an executor again, which dead-letters it again (it is still no order):
    // a new message, once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let again = loop {
        assert!(Instant::now() < deadline, "the redriven message did not come back");
        let received = sqs
            .receive_message()
            .queue_url(dead_letters)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(message) = received.messages().first() {
            break message.clone();
        }
    };
    assert_eq!(again.body(), Some("not an order"));
    // Redriven with its trace, and dead-lettered again in it.
    assert_eq!(attribute(&again, "traceparent").as_deref(), Some(TRACEPARENT), "{again:?}");
    assert_eq!(count(dead_letters).await, 1, "once");
}

/// The fault between recording an order and queueing it: the checkout records the order and
/// sends its message, and the message is lost (taken off the queue before any executor sees it),
/// as when the checkout dies between the two or the queue refuses the send.
async fn an_order_whose_message_was_lost_is_queued_again_and_commits(client: &mut Client) {
    let (_, sqs) = emulator_clients(&client.stack.aws_endpoint);
    let queue = client.stack.resources["OrderQueue"].clone();
    client.stack.stop_pollers().await;
    let order_id = client.checkout(&order(json!({}))).await["orderId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    'lost: loop {
        assert!(Instant::now() < deadline, "the order's message never reached the queue");
        let received = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.unwrap();
        for message in received.messages() {
            let receipt = message.receipt_handle().unwrap();
            if message.body().unwrap_or_default().contains(&order_id) {
                sqs.delete_message().queue_url(&queue).receipt_handle(receipt).send().await.unwrap();
                break 'lost;
            }
            // Another test's message: back to the queue at once.
            sqs.change_message_visibility()
                .queue_url(&queue)
                .receipt_handle(receipt)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        }
    }
    client.stack.start_pollers();
    let executed = client.wait_until_executed(&order_id).await;
    assert_eq!(executed["status"], "committed", "{executed}");
    let item = client.item("OrdersTable", &order_id).await;
    let sweeps = item.as_ref().and_then(|i| i.get("sweeps")).and_then(|n| n.as_n().ok());
    assert_eq!(sweeps.map(String::as_str), Some("1"), "the sweeper sent the order's message once: {item:?}");
}

/// The knobs reached the executors: some deliveries failed. Which point each failure picks is a
/// coin toss, and a run has only some twenty deliveries that reach the first point, so requiring
/// both points here failed now and then by chance; that both are drawn is the executor's unit
/// test, and recovery from each is the domain's.
fn the_emulated_failures_happened(client: &Client) {
    let log = std::fs::read(client.stack.logs.join("cargo-lambda-watch.log")).expect("cargo lambda watch's log");
    let log = String::from_utf8_lossy(&log);
    assert!(log.contains("emulated executor failure at"), "no delivery failed");
}

/// However many deliveries took an executed order up (retries after emulated failures, the
/// sweeper's duplicate messages), its trail holds one run of the protocol: the votes, one
/// decision, and both participants told it, each once, in that order.
fn the_trail_is_one_run_of_the_protocol(order: &Value) {
    let trail = order["trail"].as_array().unwrap_or_else(|| panic!("no trail: {order}"));
    let claims: Vec<&Value> = trail.iter().filter(|e| e["step"] == "claim").collect();
    assert!(!claims.is_empty() && claims.iter().all(|c| c["delivery"].as_u64().is_some_and(|n| n >= 1)), "{order}");
    let steps: Vec<(&str, &str)> = trail
        .iter()
        .filter(|e| e["step"] != "claim")
        .map(|e| (e["step"].as_str().unwrap_or_default(), e["participant"].as_str().unwrap_or_default()))
        .collect();
    let voted = [("prepare", "stock"), ("prepare", "payment")];
    let committed = [("decide", ""), ("commit", "stock"), ("commit", "payment")];
    let aborted = [("decide", ""), ("abort", "stock"), ("abort", "payment")];
    match order["status"].as_str() {
        Some("committed") => assert_eq!(steps, [&voted[..], &committed[..]].concat(), "{order}"),
        // Given up without a vote, or after the votes.
        Some("failed") => assert!(steps == aborted || steps == [&voted[..], &aborted[..]].concat(), "{order}"),
        _ => panic!("not executed: {order}"),
    }
}

/// Buys one copy each of `book` in `count` concurrent checkouts; answers the executed orders.
async fn buy_concurrently(client: &Client, book: &str, quantities: &[i64]) -> Vec<Value> {
    let answers = futures::future::join_all(quantities.iter().map(|quantity| async move {
        client.checkout(&order(json!({"items": [{"bookId": book, "quantity": quantity}]}))).await
    }))
    .await;
    let mut executed = Vec::new();
    for answer in answers {
        assert_eq!(answer["status"], "Order Approved", "{answer}");
        let order = client.wait_until_executed(answer["orderId"].as_str().unwrap()).await;
        the_trail_is_one_run_of_the_protocol(&order);
        executed.push(order);
    }
    executed
}

async fn stock(client: &Client, book: &str) -> i64 {
    let db = client.stack.books_db.client().expect("a books database client");
    let entry = db.get(&format!("stock/{book}")).await.expect("the books database answers");
    entry.and_then(|e| e.value.as_i64()).expect("the book has stock")
}

async fn the_last_copies_go_to_exactly_as_many_orders(client: &Client) {
    let db = client.stack.books_db.client().unwrap();
    db.set("stock/solaris", json!(3)).await.unwrap();
    let executed = buy_concurrently(client, "solaris", &[1; 8]).await;
    let committed = executed.iter().filter(|o| o["status"] == "committed").count();
    assert_eq!(committed, 3, "{executed:#?}");
    for failed in executed.iter().filter(|o| o["status"] == "failed") {
        let reason = failed["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("out of stock"), "{failed}");
    }
    assert_eq!(stock(client, "solaris").await, 0);
}

async fn stock_is_conserved_when_the_books_database_loses_its_leader(client: &mut Client) {
    let before = stock(client, "dune").await;
    let quantities = [1, 2, 1, 3, 1, 2, 1, 1];
    let orders = {
        let client = &*client;
        futures::future::join_all(quantities.iter().map(|quantity| async move {
            client.checkout(&order(json!({"items": [{"bookId": "dune", "quantity": quantity}]}))).await
        }))
        .await
    };
    // Orders are executing (or waiting to be retried): take the leader away.
    let leader = client.stack.books_db.wait_for_leader(Duration::from_secs(10)).await.unwrap();
    client.stack.books_db.kill(leader).await.unwrap();
    client.stack.books_db.wait_for_leader(Duration::from_secs(30)).await.expect("a new leader");
    client.stack.books_db.restart(leader).await.unwrap();

    let mut committed_copies = 0;
    let db = client.stack.books_db.client().unwrap();
    for (answer, quantity) in orders.iter().zip(quantities) {
        assert_eq!(answer["status"], "Order Approved", "{answer}");
        let order_id = answer["orderId"].as_str().unwrap();
        let executed = client.wait_until_executed(order_id).await;
        the_trail_is_one_run_of_the_protocol(&executed);
        let status: OrderStatus = serde_json::from_value(executed["status"].clone()).unwrap();
        let payment_state = client.payment_state(order_id).await;
        let reservation = db.get(&format!("reservation/{order_id}")).await.unwrap().map(|e| e.value["state"].clone());
        match status {
            OrderStatus::Committed => {
                committed_copies += quantity;
                assert_eq!(payment_state.as_deref(), Some("charged"), "{executed}");
                assert_eq!(reservation, Some(json!("committed")), "{executed}");
            }
            OrderStatus::Failed => {
                assert_eq!(payment_state.as_deref(), Some("released"), "{executed}");
                assert_eq!(reservation, Some(json!("aborted")), "{executed}");
            }
            other => panic!("order {order_id} ended {other:?}"),
        }
    }
    assert!(committed_copies > 0, "no order committed");
    assert_eq!(stock(client, "dune").await + committed_copies, before, "stock plus what was sold is what there was");
}
