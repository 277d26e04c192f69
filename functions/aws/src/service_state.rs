//! A service's per-order state in DynamoDB: one item for the order's data and one per process,
//! under the partition key `{service}#{order_id}`, so one query loads it all.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use bookstore_domain::events::{Event, Service};
use bookstore_domain::service::{OrderData, OrderState, ProcessState, StateStore, Unavailable};

use crate::unavailable;

const ORDER_ITEM: &str = "order";
const PROCESS_PREFIX: &str = "process#";

pub struct DynamoStateStore {
    client: Client,
    table: String,
    service: Service,
}

impl DynamoStateStore {
    pub fn new(client: Client, table: String, service: Service) -> Self {
        Self { client, table, service }
    }

    fn partition(&self, order_id: &str) -> AttributeValue {
        let service = match self.service {
            Service::TransactionVerification => "transaction-verification",
            Service::FraudDetection => "fraud-detection",
            Service::Suggestions => "suggestions",
        };
        AttributeValue::S(format!("{service}#{order_id}"))
    }

    async fn put(&self, order_id: &str, sort: String, data: String) -> Result<(), Unavailable> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", self.partition(order_id))
            .item("sk", AttributeValue::S(sort))
            .item("data", AttributeValue::S(data))
            .send()
            .await
            .map_err(|e| unavailable("saving service state", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

impl StateStore for DynamoStateStore {
    async fn save_order(&self, order_id: &str, order: &OrderData) -> Result<(), Unavailable> {
        let data = serde_json::to_string(order).map_err(|e| unavailable("encoding the order", e))?;
        self.put(order_id, ORDER_ITEM.into(), data).await
    }

    async fn load(&self, order_id: &str) -> Result<Option<OrderState>, Unavailable> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", self.partition(order_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("loading service state", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        let mut order = None;
        let mut processes = std::collections::BTreeMap::new();
        for item in answer.items() {
            let (Some(sort), Some(data)) = (string(item, "sk"), string(item, "data")) else { continue };
            if sort == ORDER_ITEM {
                order = Some(serde_json::from_str(data).map_err(|e| unavailable("decoding the order", e))?);
            } else if let Some(process) = sort.strip_prefix(PROCESS_PREFIX) {
                let state: ProcessState =
                    serde_json::from_str(data).map_err(|e| unavailable("decoding a process", e))?;
                processes.insert(process.to_string(), state);
            }
        }
        Ok(order.map(|order| OrderState { order, processes }))
    }

    async fn save_process(&self, order_id: &str, process: &str, state: &ProcessState) -> Result<(), Unavailable> {
        let data = serde_json::to_string(state).map_err(|e| unavailable("encoding a process", e))?;
        self.put(order_id, format!("{PROCESS_PREFIX}{process}"), data).await
    }

    async fn delete(&self, order_id: &str) -> Result<(), Unavailable> {
        // The items are known without a read: the order and this service's processes.
        let mut sorts = vec![ORDER_ITEM.to_string()];
        for event in Event::ALL.into_iter().filter(|e| e.service() == self.service) {
            let sort = format!("{PROCESS_PREFIX}{}", event.process());
            if !sorts.contains(&sort) {
                sorts.push(sort);
            }
        }
        let mut deletes = Vec::new();
        for sort in sorts {
            let key = HashMap::from([
                ("pk".to_string(), self.partition(order_id)),
                ("sk".to_string(), AttributeValue::S(sort)),
            ]);
            let request =
                DeleteRequest::builder().set_key(Some(key)).build().map_err(|e| unavailable("delete request", e))?;
            deletes.push(WriteRequest::builder().delete_request(request).build());
        }
        self.client
            .batch_write_item()
            .request_items(&self.table, deletes)
            .send()
            .await
            .map_err(|e| unavailable("clearing service state", aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

pub(crate) fn string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}
