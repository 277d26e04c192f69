//! The orders table: one item per order, keyed by `orderId`. `status` and `history` are
//! attributes of their own so that a status change is one conditional update; the rest of the
//! record (items, events, clocks) is written once, as JSON in `record`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use bookstore_domain::orchestrator::{OrderRecord, OrderStore, StatusChange};
use bookstore_domain::order::OrderStatus;
use bookstore_domain::service::Unavailable;

use crate::service_state::string;
use crate::unavailable;

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
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(order_id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("reading the order", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        let Some(item) = answer.item() else { return Ok(None) };
        let record = string(item, "record").ok_or_else(|| unavailable("reading the order", "no record"))?;
        let mut record: OrderRecord = serde_json::from_str(record).map_err(|e| unavailable("decoding the order", e))?;
        if let Some(status) = string(item, "status") {
            record.status = serde_json::from_value(serde_json::Value::from(status))
                .map_err(|e| unavailable("decoding the order status", e))?;
        }
        if let Some(history) = item.get("history").and_then(|h| h.as_l().ok()) {
            record.history = history.iter().filter_map(status_change).collect();
        }
        Ok(Some(record))
    }
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
            .send()
            .await
            .map_err(|e| unavailable("changing the order status", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}
