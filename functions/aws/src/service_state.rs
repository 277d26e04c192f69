//! A service's per-order state in DynamoDB: one item per service and order, keyed
//! `{service}#{order_id}`, holding the order's data (`order`, JSON) and one attribute per event
//! that ran (`clock_a`, …: the event's vector clock as a map of numbers). Keeping the clocks as
//! numbers lets condition expressions compare them, so recording an event and clearing an order
//! are each one conditional write, with no read first.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use bookstore_domain::events::{Event, PROCESSES, Service};
use bookstore_domain::service::{OrderData, OrderState, StateStore, Unavailable};
use bookstore_domain::vector_clock::VectorClock;

use crate::table::{Item, Written, conditional, from_value, get_consistent, to_value};
use crate::unavailable;

const KEY: &str = "pk";
const ORDER: &str = "order";

pub struct DynamoStateStore {
    client: Client,
    table: String,
    service: Service,
}

impl DynamoStateStore {
    pub fn new(client: Client, table: String, service: Service) -> Self {
        Self { client, table, service }
    }

    /// `{service}#{order_id}`, the service by its serde name (`fraud-detection`, …).
    fn key(&self, order_id: &str) -> Result<AttributeValue, Unavailable> {
        let service: String = from_value(to_value(self.service, "naming the service")?, "naming the service")?;
        Ok(AttributeValue::S(format!("{service}#{order_id}")))
    }
}

fn clock_attribute(event: Event) -> String {
    format!("clock_{event}")
}

/// A condition that the clock under the attribute named `#{clock}` is ≤ `bound`, component by
/// component (a missing component is 0). Adds the names and values it uses.
fn clock_at_most(
    clock: &str,
    bound: &VectorClock,
    names: &mut HashMap<String, String>,
    values: &mut HashMap<String, AttributeValue>,
) -> String {
    let mut clauses = Vec::new();
    for process in processes(bound) {
        let (name, value) = (format!("#p{}", names.len()), format!(":v{}", values.len()));
        clauses.push(format!("(attribute_not_exists(#{clock}.{name}) OR #{clock}.{name} <= {value})"));
        names.insert(name, process.to_string());
        values.insert(value, AttributeValue::N(bound.get(process).to_string()));
    }
    clauses.join(" AND ")
}

/// Every process a clock may count: the order's, and any other the bound names.
fn processes(bound: &VectorClock) -> Vec<&str> {
    let mut all: Vec<&str> = PROCESSES.to_vec();
    all.extend(bound.iter().map(|(p, _)| p).filter(|p| !PROCESSES.contains(p)));
    all
}

/// A clock as a map of numbers (`M` of `N`), so that conditions can compare its components.
fn clock_value(clock: &VectorClock) -> Result<AttributeValue, Unavailable> {
    to_value(clock, "encoding a clock")
}

/// The attribute names are built from the events (`clock_a`, …), so the item is read attribute by
/// attribute rather than into one struct.
fn decode_state(mut item: Item) -> Result<Option<OrderState>, Unavailable> {
    let Some(order) = item.remove(ORDER) else { return Ok(None) };
    let order: String = from_value(order, "decoding the order")?;
    let order: OrderData = serde_json::from_str(&order).map_err(|e| unavailable("decoding the order", e))?;
    let mut clocks = std::collections::BTreeMap::new();
    for event in Event::ALL {
        if let Some(value) = item.remove(&clock_attribute(event)) {
            clocks.insert(event, from_value(value, "decoding a clock")?);
        }
    }
    Ok(Some(OrderState { order, clocks }))
}

impl StateStore for DynamoStateStore {
    async fn init(&self, order_id: &str, order: &OrderData) -> Result<(), Unavailable> {
        let data = serde_json::to_string(order).map_err(|e| unavailable("encoding the order", e))?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY, self.key(order_id)?)
            .item(ORDER, AttributeValue::S(data))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", KEY);
        // Already kept: an init retried.
        conditional(put.send(), "keeping the order").await?;
        Ok(())
    }

    async fn record(
        &self,
        order_id: &str,
        event: Event,
        incoming: &VectorClock,
        clock: &VectorClock,
    ) -> Result<Option<OrderState>, Unavailable> {
        let mut names =
            HashMap::from([("#order".to_string(), ORDER.to_string()), ("#event".to_string(), clock_attribute(event))]);
        let mut values = HashMap::from([(":clock".to_string(), clock_value(clock)?)]);
        let mut condition = "attribute_exists(#order) AND attribute_not_exists(#event)".to_string();
        if let Some(previous) = event.previous_in_process() {
            names.insert("#previous".into(), clock_attribute(previous));
            let covered = clock_at_most("previous", incoming, &mut names, &mut values);
            condition = format!("{condition} AND attribute_exists(#previous) AND {covered}");
        }
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, self.key(order_id)?)
            .update_expression("SET #event = :clock")
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew);
        match conditional(update.send(), "recording the event").await? {
            Written::Applied(answer) => decode_state(answer.attributes.unwrap_or_default()),
            Written::ConditionFailed => Ok(None),
        }
    }

    async fn load(&self, order_id: &str) -> Result<Option<OrderState>, Unavailable> {
        let item = get_consistent(&self.client, &self.table, (KEY, self.key(order_id)?), "loading service state");
        item.await?.map_or(Ok(None), decode_state)
    }

    async fn clear(&self, order_id: &str, final_clock: &VectorClock) -> Result<bool, Unavailable> {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut clauses = Vec::new();
        for event in Event::ALL.into_iter().filter(|e| e.service() == self.service) {
            let alias = format!("e{event}");
            names.insert(format!("#{alias}"), clock_attribute(event));
            clauses.push(clock_at_most(&alias, final_clock, &mut names, &mut values));
        }
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY, self.key(order_id)?)
            .condition_expression(clauses.join(" AND "))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values));
        Ok(matches!(conditional(delete.send(), "clearing service state").await?, Written::Applied(_)))
    }
}

#[cfg(test)]
mod tests {
    //! The service-state table's item shape and conditions, pinned: clocks are maps of numbers so
    //! that conditions compare them.

    use serde_json::{Value, json};

    use super::*;
    use crate::table::replay::{condition_failed, replay};

    fn clock(counts: [u64; 4]) -> VectorClock {
        PROCESSES.iter().zip(counts).map(|(p, n)| (p.to_string(), n)).collect()
    }

    fn clock_json(counts: [u64; 4]) -> Value {
        let map: serde_json::Map<_, _> =
            PROCESSES.iter().zip(counts).map(|(p, n)| (p.to_string(), json!({"N": n.to_string()}))).collect();
        json!({"M": map})
    }

    fn store(table: &crate::table::replay::Replay, service: Service) -> DynamoStateStore {
        DynamoStateStore::new(table.client.clone(), "state".into(), service)
    }

    #[tokio::test]
    async fn init_puts_the_order_once() {
        let table = replay(vec![(200, json!({})), condition_failed()]);
        let store = store(&table, Service::TransactionVerification);
        store.init("o1", &OrderData::default()).await.unwrap();
        store.init("o1", &OrderData::default()).await.unwrap();
        let put = json!({
            "TableName": "state",
            "Item": {
                "pk": {"S": "transaction-verification#o1"},
                "order": {"S": serde_json::to_string(&OrderData::default()).unwrap()},
            },
            "ConditionExpression": "attribute_not_exists(#key)",
            "ExpressionAttributeNames": {"#key": "pk"},
        });
        assert_eq!(table.calls(), [("PutItem".into(), put.clone()), ("PutItem".into(), put)]);
    }

    #[tokio::test]
    async fn record_sets_the_clock_if_the_previous_event_is_covered() {
        let order = json!({"S": serde_json::to_string(&OrderData::default()).unwrap()});
        let item = json!({"pk": {"S": "transaction-verification#o1"}, "order": order,
            "clock_a": clock_json([1, 0, 0, 0]), "clock_c": clock_json([2, 0, 0, 0])});
        let table = replay(vec![(200, json!({"Attributes": item})), condition_failed()]);
        let store = store(&table, Service::TransactionVerification);
        let state = store.record("o1", Event::C, &clock([1, 0, 0, 0]), &clock([2, 0, 0, 0])).await.unwrap();
        let clocks = state.unwrap().clocks;
        assert_eq!(
            clocks.into_iter().collect::<Vec<_>>(),
            [(Event::A, clock([1, 0, 0, 0])), (Event::C, clock([2, 0, 0, 0]))]
        );
        assert_eq!(store.record("o1", Event::C, &clock([1, 0, 0, 0]), &clock([2, 0, 0, 0])).await.unwrap(), None);
        let covered = (3..7)
            .map(|i| format!("(attribute_not_exists(#previous.#p{i}) OR #previous.#p{i} <= :v{})", i - 2))
            .collect::<Vec<_>>()
            .join(" AND ");
        let update = json!({
            "TableName": "state",
            "Key": {"pk": {"S": "transaction-verification#o1"}},
            "UpdateExpression": "SET #event = :clock",
            "ConditionExpression": format!(
                "attribute_exists(#order) AND attribute_not_exists(#event) AND attribute_exists(#previous) AND {covered}"
            ),
            "ExpressionAttributeNames": {"#order": "order", "#event": "clock_c", "#previous": "clock_a",
                "#p3": "tv-a", "#p4": "tv-b", "#p5": "fraud", "#p6": "suggestions"},
            "ExpressionAttributeValues": {":clock": clock_json([2, 0, 0, 0]),
                ":v1": {"N": "1"}, ":v2": {"N": "0"}, ":v3": {"N": "0"}, ":v4": {"N": "0"}},
            "ReturnValues": "ALL_NEW",
        });
        assert_eq!(table.calls()[0], ("UpdateItem".into(), update));
    }

    #[tokio::test]
    async fn load_reads_consistently() {
        let order = json!({"S": serde_json::to_string(&OrderData::default()).unwrap()});
        let item = json!({"pk": {"S": "suggestions#o1"}, "order": order, "clock_f": clock_json([3, 2, 2, 1])});
        let table = replay(vec![(200, json!({"Item": item})), (200, json!({}))]);
        let store = store(&table, Service::Suggestions);
        let state = store.load("o1").await.unwrap().unwrap();
        assert_eq!(state.clocks.into_iter().collect::<Vec<_>>(), [(Event::F, clock([3, 2, 2, 1]))]);
        assert_eq!(store.load("o1").await.unwrap(), None);
        let read = json!({"TableName": "state", "Key": {"pk": {"S": "suggestions#o1"}}, "ConsistentRead": true});
        assert_eq!(table.calls()[0], ("GetItem".into(), read));
    }

    #[tokio::test]
    async fn clear_deletes_only_if_the_final_clock_covers_every_event_of_the_service() {
        let table = replay(vec![(200, json!({})), condition_failed()]);
        let store = store(&table, Service::FraudDetection);
        assert!(store.clear("o1", &clock([1, 1, 2, 0])).await.unwrap());
        assert!(!store.clear("o1", &clock([1, 1, 2, 0])).await.unwrap());
        let covered = |alias: &str, first_name: usize, first_value: usize| {
            (0..4)
                .map(|i| {
                    let (p, v) = (first_name + i, first_value + i);
                    format!("(attribute_not_exists(#{alias}.#p{p}) OR #{alias}.#p{p} <= :v{v})")
                })
                .collect::<Vec<_>>()
                .join(" AND ")
        };
        let delete = json!({
            "TableName": "state",
            "Key": {"pk": {"S": "fraud-detection#o1"}},
            "ConditionExpression": format!("{} AND {}", covered("ed", 1, 0), covered("ee", 6, 4)),
            "ExpressionAttributeNames": {"#ed": "clock_d", "#ee": "clock_e",
                "#p1": "tv-a", "#p2": "tv-b", "#p3": "fraud", "#p4": "suggestions",
                "#p6": "tv-a", "#p7": "tv-b", "#p8": "fraud", "#p9": "suggestions"},
            "ExpressionAttributeValues": {":v0": {"N": "1"}, ":v1": {"N": "1"}, ":v2": {"N": "2"}, ":v3": {"N": "0"},
                ":v4": {"N": "1"}, ":v5": {"N": "1"}, ":v6": {"N": "2"}, ":v7": {"N": "0"}},
        });
        assert_eq!(table.calls(), [("DeleteItem".into(), delete.clone()), ("DeleteItem".into(), delete)]);
    }
}
