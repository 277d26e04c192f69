//! The orders table: one item per order, keyed by `orderId`. `status` and `history` are
//! attributes of their own so that a status change is one conditional update; the rest of the
//! record (items, events, clocks) is written once, as JSON in `record`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use bookstore_domain::execution::{Claim, Decision, ExecutableOrder, OrderLedger};
use bookstore_domain::orchestrator::{OrderRecord, OrderStore, StatusChange};
use bookstore_domain::order::OrderStatus;
use bookstore_domain::service::Unavailable;

use crate::service_state::string;
use crate::{now_rfc3339, unavailable};

pub struct DynamoOrders {
    client: Client,
    table: String,
}

impl DynamoOrders {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// The order as `GET /orders/{orderId}` shows it; `None` for an unknown id.
    pub async fn get(&self, order_id: &str) -> Result<Option<OrderRecord>, Unavailable> {
        self.item(order_id).await?.as_ref().map(decode_record).transpose()
    }
}

fn decode_record(item: &HashMap<String, AttributeValue>) -> Result<OrderRecord, Unavailable> {
    let record = string(item, "record").ok_or_else(|| unavailable("reading the order", "no record"))?;
    let mut record: OrderRecord = serde_json::from_str(record).map_err(|e| unavailable("decoding the order", e))?;
    if let Some(status) = string(item, "status") {
        record.status = serde_json::from_value(serde_json::Value::from(status))
            .map_err(|e| unavailable("decoding the order status", e))?;
    }
    if let Some(reason) = string(item, "failureReason") {
        record.reason = Some(reason.to_string());
    }
    if let Some(history) = item.get("history").and_then(|h| h.as_l().ok()) {
        record.history = history.iter().filter_map(status_change).collect();
    }
    Ok(record)
}

fn change_attribute(status: OrderStatus, at: &str) -> AttributeValue {
    AttributeValue::M(
        [
            ("status".to_string(), AttributeValue::S(status.as_str().into())),
            ("at".to_string(), AttributeValue::S(at.into())),
        ]
        .into(),
    )
}

fn status_change(value: &AttributeValue) -> Option<StatusChange> {
    let map = value.as_m().ok()?;
    let status = serde_json::from_value(serde_json::Value::from(map.get("status")?.as_s().ok()?.as_str())).ok()?;
    Some(StatusChange { status, at: map.get("at")?.as_s().ok()?.clone() })
}

impl OrderStore for DynamoOrders {
    async fn create(&self, order: &OrderRecord) -> Result<(), Unavailable> {
        let record = serde_json::to_string(order).map_err(|e| unavailable("encoding the order", e))?;
        let history = order.history.iter().map(|c| change_attribute(c.status, &c.at)).collect();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("orderId", AttributeValue::S(order.order_id.clone()))
            .item("status", AttributeValue::S(order.status.as_str().into()))
            .item("history", AttributeValue::L(history))
            .item("record", AttributeValue::S(record))
            .condition_expression("attribute_not_exists(orderId)")
            .send()
            .await
            .map_err(|e| unavailable("recording the order", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn transition(
        &self,
        order_id: &str,
        from: OrderStatus,
        to: OrderStatus,
        at: &str,
    ) -> Result<(), Unavailable> {
        self.change_status(order_id, from, to, at)
            .send()
            .await
            .map_err(|e| unavailable("changing the order status", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

impl DynamoOrders {
    async fn item(&self, order_id: &str) -> Result<Option<HashMap<String, AttributeValue>>, Unavailable> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(order_id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("reading the order", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(answer.item().cloned())
    }

    /// A conditional update; answers `false` when the condition did not hold.
    async fn update(&self, update: UpdateItemFluentBuilder, what: &str) -> Result<bool, Unavailable> {
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(unavailable(what, aws_sdk_dynamodb::error::DisplayErrorContext(e))),
        }
    }

    fn change_status(&self, order_id: &str, from: OrderStatus, to: OrderStatus, at: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(order_id.into()))
            .update_expression("SET #status = :to, history = list_append(history, :change)")
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", AttributeValue::S(to.as_str().into()))
            .expression_attribute_values(":from", AttributeValue::S(from.as_str().into()))
            .expression_attribute_values(":change", AttributeValue::L(vec![change_attribute(to, at)]))
    }
}

fn decode_decision(item: &HashMap<String, AttributeValue>) -> Result<Option<Decision>, Unavailable> {
    string(item, "decision")
        .map(|d| serde_json::from_str(d).map_err(|e| unavailable("decoding the decision", e)))
        .transpose()
}

impl OrderLedger for DynamoOrders {
    async fn claim(&self, order_id: &str) -> Result<Claim, Unavailable> {
        let claimed = self
            .change_status(order_id, OrderStatus::Queued, OrderStatus::Executing, &now_rfc3339())
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let item = match claimed {
            Ok(answer) => {
                let item = answer.attributes().ok_or_else(|| unavailable("claiming the order", "no item"))?;
                return Ok(Claim::Executing(executable(order_id, item)?));
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                self.item(order_id).await?
            }
            Err(e) => return Err(unavailable("claiming the order", aws_sdk_dynamodb::error::DisplayErrorContext(e))),
        };
        let Some(item) = item else { return Ok(Claim::Unknown) };
        let order = executable(order_id, &item)?;
        Ok(match order.status {
            // Taken over from an executor that died.
            OrderStatus::Executing => Claim::Executing(order),
            status if status.is_final() => Claim::Finished(status),
            status => Claim::NotQueued(status),
        })
    }

    async fn decide(&self, order_id: &str, decision: &Decision) -> Result<Decision, Unavailable> {
        let encoded = serde_json::to_string(decision).map_err(|e| unavailable("encoding the decision", e))?;
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(order_id.into()))
            .update_expression("SET decision = :decision")
            .condition_expression("attribute_exists(orderId) AND attribute_not_exists(decision)")
            .expression_attribute_values(":decision", AttributeValue::S(encoded));
        if self.update(update, "recording the decision").await? {
            return Ok(decision.clone());
        }
        let item = self.item(order_id).await?.ok_or_else(|| unavailable("recording the decision", "no such order"))?;
        decode_decision(&item)?.ok_or_else(|| unavailable("recording the decision", "the order has none"))
    }

    async fn finish(&self, order_id: &str, status: OrderStatus, reason: Option<&str>) -> Result<(), Unavailable> {
        let mut update = self.change_status(order_id, OrderStatus::Executing, status, &now_rfc3339());
        if let Some(reason) = reason {
            update = update
                .update_expression(
                    "SET #status = :to, history = list_append(history, :change), failureReason = :reason",
                )
                .expression_attribute_values(":reason", AttributeValue::S(reason.into()));
        }
        if self.update(update, "finishing the order").await? {
            return Ok(());
        }
        let item = self.item(order_id).await?;
        match item.as_ref().and_then(|i| string(i, "status")) {
            // A duplicate that raced this one finished it first.
            Some(current) if current == status.as_str() => Ok(()),
            current => Err(Unavailable(format!("order {order_id} is {current:?}, cannot become {}", status.as_str()))),
        }
    }
}

/// The order as an executor sees it: its lines merged per book.
fn executable(order_id: &str, item: &HashMap<String, AttributeValue>) -> Result<ExecutableOrder, Unavailable> {
    let record = decode_record(item)?;
    let mut lines: Vec<(String, i64)> = Vec::new();
    for line in &record.items {
        // A line with no book or no quantity stays, empty, for the executor to refuse.
        let (book, copies) = (line.book_id.clone().unwrap_or_default(), line.quantity.unwrap_or(0));
        match lines.iter_mut().find(|(b, _)| *b == book) {
            Some((_, total)) => *total += copies,
            None => lines.push((book, copies)),
        }
    }
    Ok(ExecutableOrder {
        order_id: order_id.into(),
        status: record.status,
        lines,
        amount_cents: record.amount_cents,
        decision: decode_decision(item)?,
    })
}
