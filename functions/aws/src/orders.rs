//! The orders table: one item per order, keyed by `orderId`. `status` and `history` are
//! attributes of their own so that a status change is one conditional update; the rest of the
//! record (items, events, clocks) is written once, as JSON in `record`. A `queued` order carries
//! `queuedAt` (seconds since the epoch), and `sweeps`/`sweepAfter` once the sweeper took it up.
//! Executors add `decision` and `trail` (the two-phase commit's steps, `L` of `M`), each in the
//! write of the change it belongs to.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use bookstore_domain::execution::{Claim, Decision, ExecutableOrder, OrderLedger, TrailEntry};
use bookstore_domain::orchestrator::{OrderRecord, OrderStore, Recorded, StatusChange};
use bookstore_domain::order::OrderStatus;
use bookstore_domain::port_error::PortError;
use bookstore_domain::service::Unavailable;
use bookstore_domain::sweeper::{QueuedOrders, StrandedOrder};
use serde::{Deserialize, Serialize};

use crate::table::{Item, Written, conditional, from_item, get_consistent, to_item, to_value, update_item};
use crate::{now_rfc3339, unavailable, unix_seconds};

pub struct DynamoOrders {
    client: Client,
    table: String,
}

/// The item `create` puts: `status` (`S`, the serde name), `history` (`L` of `M`), `record` (`S`, JSON).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder<'a> {
    order_id: &'a str,
    status: OrderStatus,
    history: &'a [StatusChange],
    record: String,
    /// When it began to wait for an executor: the sweeper's clue.
    #[serde(skip_serializing_if = "Option::is_none")]
    queued_at: Option<u64>,
}

/// The values [`STRANDED`] names.
fn stranded_values(cutoff: u64, now: u64) -> Result<Item, Unavailable> {
    Ok(Item::from([
        (":queued".to_string(), to_value(OrderStatus::Queued, "encoding the order status")?),
        (":cutoff".to_string(), AttributeValue::N(cutoff.to_string())),
        (":now".to_string(), AttributeValue::N(now.to_string())),
    ]))
}

/// Appends `:trail` to the order's trail, which the first step creates.
const APPEND_TRAIL: &str = "trail = list_append(if_not_exists(trail, :noTrail), :trail)";

/// `update` setting `clauses` and appending `trail` to the order's trail (each entry stamped
/// `at`), or setting only `clauses` when `trail` is empty.
fn set_appending_trail(
    update: UpdateItemFluentBuilder,
    clauses: &[&str],
    trail: &[TrailEntry],
    at: &str,
) -> Result<UpdateItemFluentBuilder, Unavailable> {
    if trail.is_empty() {
        return Ok(update.update_expression(format!("SET {}", clauses.join(", "))));
    }
    let stamped: Vec<TrailEntry> = trail.iter().map(|e| TrailEntry { at: at.to_string(), ..e.clone() }).collect();
    let clauses: Vec<&str> = clauses.iter().copied().chain([APPEND_TRAIL]).collect();
    Ok(update
        .update_expression(format!("SET {}", clauses.join(", ")))
        .expression_attribute_values(":trail", to_value(stamped, "encoding the trail")?)
        .expression_attribute_values(":noTrail", AttributeValue::L(Vec::new())))
}

/// An order `queued` since before `:cutoff` (or since a time not recorded: an order from before
/// `queuedAt` was written), which the sweeper has not put off past `:now`.
const STRANDED: &str = "#status = :queued AND (queuedAt < :cutoff OR attribute_not_exists(queuedAt)) \
                        AND (attribute_not_exists(sweepAfter) OR sweepAfter < :now)";

/// An item as read back, with what status changes and the executor added since.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredOrder {
    record: Option<String>,
    status: Option<OrderStatus>,
    failure_reason: Option<String>,
    history: Option<Vec<StatusChange>>,
    /// The two-phase commit's decision, as JSON.
    decision: Option<String>,
    trail: Option<Vec<TrailEntry>>,
}

impl StoredOrder {
    fn decode(item: Item) -> Result<Self, Unavailable> {
        from_item(item, "decoding the order")
    }

    fn record(&self) -> Result<OrderRecord, Unavailable> {
        let record = self.record.as_deref().ok_or_else(|| unavailable("reading the order", "no record"))?;
        let mut record: OrderRecord = serde_json::from_str(record).map_err(|e| unavailable("decoding the order", e))?;
        if let Some(status) = self.status {
            record.status = status;
        }
        if let Some(reason) = &self.failure_reason {
            record.reason = Some(reason.clone());
        }
        if let Some(history) = &self.history {
            record.history = history.clone();
        }
        if let Some(trail) = &self.trail {
            record.trail = trail.clone();
        }
        Ok(record)
    }

    fn decision(&self) -> Result<Option<Decision>, Unavailable> {
        let decode = |d: &String| serde_json::from_str(d).map_err(|e| unavailable("decoding the decision", e));
        self.decision.as_ref().map(decode).transpose()
    }
}

impl DynamoOrders {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// The order as `GET /orders/{orderId}` shows it; `None` for an unknown id.
    pub async fn get(&self, order_id: &str) -> Result<Option<OrderRecord>, Unavailable> {
        self.item(order_id).await?.map(|item| StoredOrder::decode(item)?.record()).transpose()
    }

    async fn item(&self, order_id: &str) -> Result<Option<Item>, Unavailable> {
        let key = ("orderId", AttributeValue::S(order_id.into()));
        get_consistent(&self.client, &self.table, key, "reading the order").await
    }

    /// `from → to`, appending the change to `history` (and setting `failureReason` when given,
    /// appending `trail` when not empty), if the order is still `from`.
    fn change_status(
        &self,
        order_id: &str,
        from: OrderStatus,
        to: OrderStatus,
        at: &str,
        reason: Option<&str>,
        trail: &[TrailEntry],
    ) -> Result<UpdateItemFluentBuilder, Unavailable> {
        let change = [StatusChange { status: to, at: at.into() }];
        let mut clauses = vec!["#status = :to", "history = list_append(history, :change)"];
        let mut update = update_item(&self.client, &self.table, ("orderId", AttributeValue::S(order_id.into())))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", to_value(to, "encoding the order status")?)
            .expression_attribute_values(":from", to_value(from, "encoding the order status")?)
            .expression_attribute_values(":change", to_value(change, "encoding the status change")?);
        if let Some(reason) = reason {
            clauses.push("failureReason = :reason");
            update = update.expression_attribute_values(":reason", AttributeValue::S(reason.into()));
        }
        set_appending_trail(update, &clauses, trail, at)
    }

    /// The order's status, read consistently.
    async fn status(&self, order_id: &str) -> Result<Option<OrderStatus>, Unavailable> {
        Ok(self.item(order_id).await?.map(StoredOrder::decode).transpose()?.and_then(|o| o.status))
    }
}

impl OrderStore for DynamoOrders {
    async fn create(&self, order: &OrderRecord) -> Result<Recorded, Unavailable> {
        let record = serde_json::to_string(order).map_err(|e| unavailable("encoding the order", e))?;
        let queued_at = (order.status == OrderStatus::Queued).then(unix_seconds);
        let item =
            NewOrder { order_id: &order.order_id, status: order.status, history: &order.history, record, queued_at };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(item, "encoding the order")?))
            .condition_expression("attribute_not_exists(orderId)");
        match conditional(put.send(), "recording the order").await? {
            Written::Applied(_) => Ok(Recorded::New),
            Written::ConditionFailed => {
                let existing = self.get(&order.order_id).await?;
                let existing = existing.ok_or_else(|| unavailable("recording the order", "it exists and does not"))?;
                Ok(Recorded::Existing(Box::new(existing)))
            }
        }
    }
}

impl QueuedOrders for DynamoOrders {
    async fn stranded(&self, cutoff: u64, now: u64) -> Result<Vec<StrandedOrder>, Unavailable> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Row {
            order_id: String,
            #[serde(default)]
            sweeps: u32,
        }
        // A scan: the sweeper runs once a minute, and stranded orders are rare.
        let pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression(STRANDED)
            .projection_expression("orderId, sweeps")
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(stranded_values(cutoff, now)?))
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut stranded = Vec::new();
        for item in pages {
            let item = item.map_err(|e| unavailable("finding stranded orders", DisplayErrorContext(e)))?;
            let Row { order_id, sweeps } = from_item(item, "decoding a stranded order")?;
            stranded.push(StrandedOrder { order_id, attempts: sweeps });
        }
        Ok(stranded)
    }

    async fn begin_attempt(&self, order_id: &str, cutoff: u64, now: u64, until: u64) -> Result<bool, Unavailable> {
        let update = update_item(&self.client, &self.table, ("orderId", AttributeValue::S(order_id.into())))
            .update_expression("SET sweepAfter = :until, sweeps = if_not_exists(sweeps, :zero) + :one")
            .condition_expression(STRANDED)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(stranded_values(cutoff, now)?))
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()));
        Ok(matches!(conditional(update.send(), "sweeping the order").await?, Written::Applied(_)))
    }

    async fn put_off(&self, order_id: &str, until: u64) -> Result<(), Unavailable> {
        let update = update_item(&self.client, &self.table, ("orderId", AttributeValue::S(order_id.into())))
            .update_expression("SET sweepAfter = :until")
            .condition_expression("attribute_exists(orderId)")
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()));
        conditional(update.send(), "putting the order off").await?;
        Ok(())
    }

    async fn fail(&self, order_id: &str, reason: &str, at: &str) -> Result<bool, Unavailable> {
        let update = self.change_status(order_id, OrderStatus::Queued, OrderStatus::Failed, at, Some(reason), &[])?;
        Ok(matches!(conditional(update.send(), "failing the order").await?, Written::Applied(_)))
    }
}

impl OrderLedger for DynamoOrders {
    async fn claim(&self, order_id: &str, trail: &[TrailEntry]) -> Result<Claim, PortError> {
        let at = now_rfc3339();
        let claim = self.change_status(order_id, OrderStatus::Queued, OrderStatus::Executing, &at, None, trail)?;
        let mut claimed = conditional(claim.return_values(ReturnValue::AllNew).send(), "claiming the order").await?;
        if matches!(claimed, Written::ConditionFailed) && !trail.is_empty() {
            // Not queued: taken over from a delivery that failed, if it is executing (its trail
            // then says so); otherwise read below what it is.
            let take_over = update_item(&self.client, &self.table, ("orderId", AttributeValue::S(order_id.into())))
                .condition_expression("#status = :executing")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(
                    ":executing",
                    to_value(OrderStatus::Executing, "encoding the order status")?,
                )
                .return_values(ReturnValue::AllNew);
            let take_over = set_appending_trail(take_over, &[], trail, &at)?;
            claimed = conditional(take_over.send(), "taking the order over").await?;
        }
        let item = match claimed {
            Written::Applied(answer) => {
                let item = answer.attributes.ok_or_else(|| unavailable("claiming the order", "no item"))?;
                return Ok(Claim::Executing(executable(order_id, item).map_err(unreadable)?));
            }
            Written::ConditionFailed => self.item(order_id).await?,
        };
        let Some(item) = item else { return Ok(Claim::Unknown) };
        let order = executable(order_id, item).map_err(unreadable)?;
        Ok(match order.status {
            // Taken over from an executor that died.
            OrderStatus::Executing => Claim::Executing(order),
            status if status.is_final() => Claim::Finished(status),
            status => Claim::NotQueued(status),
        })
    }

    async fn decide(&self, order_id: &str, decision: &Decision, trail: &[TrailEntry]) -> Result<Decision, PortError> {
        let encoded = serde_json::to_string(decision).map_err(|e| unavailable("encoding the decision", e))?;
        let update = update_item(&self.client, &self.table, ("orderId", AttributeValue::S(order_id.into())))
            .condition_expression("attribute_exists(orderId) AND attribute_not_exists(decision)")
            .expression_attribute_values(":decision", AttributeValue::S(encoded));
        let update = set_appending_trail(update, &["decision = :decision"], trail, &now_rfc3339())?;
        if let Written::Applied(_) = conditional(update.send(), "recording the decision").await? {
            return Ok(decision.clone());
        }
        let item = self.item(order_id).await?;
        let item = item.ok_or_else(|| PortError::NotFound(format!("order {order_id}, to record its decision")))?;
        let recorded = StoredOrder::decode(item).and_then(|o| o.decision()).map_err(unreadable)?;
        // Not there although the write's condition said it was: a decision being written now.
        recorded.ok_or_else(|| PortError::Transient(format!("order {order_id} has no decision yet")))
    }

    async fn finish(
        &self,
        order_id: &str,
        status: OrderStatus,
        reason: Option<&str>,
        trail: &[TrailEntry],
    ) -> Result<(), PortError> {
        let update = self.change_status(order_id, OrderStatus::Executing, status, &now_rfc3339(), reason, trail)?;
        if let Written::Applied(_) = conditional(update.send(), "finishing the order").await? {
            return Ok(());
        }
        match self.status(order_id).await? {
            // A duplicate that raced this one finished it first.
            Some(current) if current == status => Ok(()),
            current => {
                let current = current.map(OrderStatus::as_str);
                let wanted = status.as_str();
                Err(PortError::Permanent(format!("order {order_id} is {current:?}, cannot become {wanted}")))
            }
        }
    }
}

/// An order item that cannot be decoded reads the same on every delivery.
fn unreadable(error: Unavailable) -> PortError {
    PortError::Permanent(error.0)
}

/// The order as an executor sees it: its lines merged per book.
fn executable(order_id: &str, item: Item) -> Result<ExecutableOrder, Unavailable> {
    let stored = StoredOrder::decode(item)?;
    let record = stored.record()?;
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
        decision: stored.decision()?,
    })
}

#[cfg(test)]
mod tests {
    //! The requests pinned here are the orders table's item shapes and conditions: other code and
    //! tests read the table, so these must not change.

    use bookstore_domain::execution::{Delivery, ParticipantName};
    use serde_json::{Value, json};

    use super::*;
    use crate::table::replay::{condition_failed, replay};

    fn order() -> OrderRecord {
        serde_json::from_value(json!({
            "orderId": "o1", "status": "approved", "amountCents": 1998, "suggestedBooks": [], "events": [],
            "items": [
                {"bookId": "b1", "title": "One", "quantity": 1, "unitPriceCents": 999},
                {"bookId": "b1", "title": "One", "quantity": 1, "unitPriceCents": 999},
            ],
            "history": [{"status": "approved", "at": "t0"}],
            "finalClock": {"tv-a": 1},
        }))
        .unwrap()
    }

    /// The item as the table holds it once the order is `status`, with `history` and `extra` attributes.
    fn stored(status: &str, history: Value, extra: Value) -> Value {
        let mut item = json!({
            "orderId": {"S": "o1"},
            "status": {"S": status},
            "history": history,
            "record": {"S": serde_json::to_string(&order()).unwrap()},
        });
        item.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        item
    }

    fn change(status: &str, at: &str) -> Value {
        json!({"M": {"status": {"S": status}, "at": {"S": at}}})
    }

    #[tokio::test]
    async fn create_puts_status_history_and_record_once_or_answers_the_order_there() {
        let mut queued = order();
        queued.status = OrderStatus::Queued;
        let there = stored("committed", json!({"L": []}), json!({}));
        let table = replay(vec![(200, json!({})), (200, json!({})), condition_failed(), (200, json!({"Item": there}))]);
        let orders = DynamoOrders::new(table.client.clone(), "orders".into());
        assert_eq!(orders.create(&order()).await.unwrap(), Recorded::New);
        assert_eq!(orders.create(&queued).await.unwrap(), Recorded::New);
        let Recorded::Existing(existing) = orders.create(&order()).await.unwrap() else { panic!("not found there") };
        assert_eq!(existing.status, OrderStatus::Committed);
        let calls = table.calls();
        let expected = json!({
            "TableName": "orders",
            "Item": stored("approved", json!({"L": [change("approved", "t0")]}), json!({})),
            "ConditionExpression": "attribute_not_exists(orderId)",
        });
        assert_eq!(calls[0], ("PutItem".to_string(), expected));
        // A queued order says since when, for the sweeper.
        let since: u64 = calls[1].1["Item"]["queuedAt"]["N"].as_str().unwrap().parse().unwrap();
        assert!(since.abs_diff(unix_seconds()) < 60, "{since}");
        assert_eq!(calls[3].1["ConsistentRead"], true);
    }

    #[tokio::test]
    async fn the_sweeper_finds_counts_and_fails_stranded_orders_by_conditional_writes() {
        let page = json!({"Items": [{"orderId": {"S": "o1"}}, {"orderId": {"S": "o2"}, "sweeps": {"N": "2"}}]});
        let table = replay(vec![(200, page), (200, json!({})), condition_failed(), (200, json!({})), (200, json!({}))]);
        let orders = DynamoOrders::new(table.client.clone(), "orders".into());
        let stranded = orders.stranded(1000, 1060).await.unwrap();
        let expected = [
            StrandedOrder { order_id: "o1".into(), attempts: 0 },
            StrandedOrder { order_id: "o2".into(), attempts: 2 },
        ];
        assert_eq!(stranded, expected);
        assert!(orders.begin_attempt("o1", 1000, 1060, 1120).await.unwrap());
        assert!(!orders.begin_attempt("o1", 1000, 1060, 1120).await.unwrap(), "another sweep took it");
        orders.put_off("o1", 2860).await.unwrap();
        assert!(orders.fail("o2", "never queued", "t3").await.unwrap());
        let calls = table.calls();
        let scan = &calls[0].1;
        assert_eq!(calls[0].0, "Scan");
        assert_eq!(scan["FilterExpression"], STRANDED);
        let values = json!({":queued": {"S": "queued"}, ":cutoff": {"N": "1000"}, ":now": {"N": "1060"}});
        assert_eq!(scan["ExpressionAttributeValues"], values);
        assert_eq!(scan["ConsistentRead"], true);
        let attempt = &calls[1].1;
        assert_eq!(attempt["ConditionExpression"], STRANDED);
        assert_eq!(
            attempt["UpdateExpression"],
            "SET sweepAfter = :until, sweeps = if_not_exists(sweeps, :zero) + :one"
        );
        assert_eq!(attempt["ExpressionAttributeValues"][":until"], json!({"N": "1120"}));
        assert_eq!(calls[3].1["UpdateExpression"], "SET sweepAfter = :until");
        assert_eq!(calls[3].1["ExpressionAttributeValues"][":until"], json!({"N": "2860"}));
        let fail = &calls[4].1;
        assert_eq!(
            fail["UpdateExpression"],
            "SET #status = :to, history = list_append(history, :change), failureReason = :reason"
        );
        assert_eq!(fail["ConditionExpression"], "#status = :from");
        assert_eq!(fail["ExpressionAttributeValues"][":from"], json!({"S": "queued"}));
        assert_eq!(fail["ExpressionAttributeValues"][":to"], json!({"S": "failed"}));
        assert_eq!(fail["ExpressionAttributeValues"][":change"], json!({"L": [change("failed", "t3")]}));
    }

    #[tokio::test]
    async fn get_reads_consistently_and_decodes_status_history_and_reason() {
        let history = json!({"L": [change("approved", "t0"), change("failed", "t2")]});
        let trail = json!({"L": [{"M": {"step": {"S": "claim"}, "delivery": {"N": "1"}, "at": {"S": "t1"}}}]});
        let item = stored("failed", history, json!({"failureReason": {"S": "out of stock"}, "trail": trail}));
        let table = replay(vec![(200, json!({"Item": item})), (200, json!({}))]);
        let orders = DynamoOrders::new(table.client.clone(), "orders".into());
        let record = orders.get("o1").await.unwrap().unwrap();
        assert_eq!(record.status, OrderStatus::Failed);
        assert_eq!(record.reason.as_deref(), Some("out of stock"));
        let statuses: Vec<_> = record.history.iter().map(|c| (c.status, c.at.as_str())).collect();
        assert_eq!(statuses, [(OrderStatus::Approved, "t0"), (OrderStatus::Failed, "t2")]);
        let claimed = TrailEntry { at: "t1".into(), ..TrailEntry::claimed(Delivery { receives: 1, last: false }) };
        assert_eq!(record.trail, [claimed]);
        assert_eq!(orders.get("o2").await.unwrap(), None);
        let read = json!({"TableName": "orders", "Key": {"orderId": {"S": "o1"}}, "ConsistentRead": true});
        assert_eq!(table.calls()[0], ("GetItem".to_string(), read));
    }

    #[tokio::test]
    async fn claim_moves_queued_to_executing_or_reads_what_it_is() {
        let executing = stored("executing", json!({"L": []}), json!({}));
        let committed = stored("committed", json!({"L": []}), json!({}));
        let table = replay(vec![
            (200, json!({"Attributes": executing})),
            condition_failed(),
            condition_failed(),
            (200, json!({"Item": committed})),
            condition_failed(),
            (200, json!({})),
            condition_failed(),
            (200, json!({"Attributes": executing})),
        ]);
        let orders = DynamoOrders::new(table.client.clone(), "orders".into());
        let first = [TrailEntry::claimed(Delivery { receives: 1, last: false })];
        let Claim::Executing(order) = orders.claim("o1", &first).await.unwrap() else { panic!("not claimed") };
        assert_eq!(order.lines, [("b1".to_string(), 2)]);
        assert_eq!((order.amount_cents, order.decision), (1998, None));
        assert_eq!(orders.claim("o1", &first).await.unwrap(), Claim::Finished(OrderStatus::Committed));
        assert_eq!(orders.claim("o1", &[]).await.unwrap(), Claim::Unknown);
        // Executing already: a delivery after one that failed takes it over, and says so.
        let again = [TrailEntry::claimed(Delivery { receives: 2, last: false })];
        assert!(matches!(orders.claim("o1", &again).await.unwrap(), Claim::Executing(_)));
        let calls = table.calls();
        let operations: Vec<_> = calls.iter().map(|(op, _)| op.as_str()).collect();
        let expected =
            ["UpdateItem", "UpdateItem", "UpdateItem", "GetItem", "UpdateItem", "GetItem", "UpdateItem", "UpdateItem"];
        assert_eq!(operations, expected);
        let update = &calls[0].1;
        assert_eq!(update["ReturnValues"], "ALL_NEW");
        assert_eq!(update["ConditionExpression"], "#status = :from");
        assert_eq!(
            update["UpdateExpression"],
            "SET #status = :to, history = list_append(history, :change), \
             trail = list_append(if_not_exists(trail, :noTrail), :trail)"
        );
        assert_eq!(update["ExpressionAttributeValues"][":from"], json!({"S": "queued"}));
        assert_eq!(update["ExpressionAttributeValues"][":to"], json!({"S": "executing"}));
        assert_eq!(update["ExpressionAttributeValues"][":noTrail"], json!({"L": []}));
        let at = &update["ExpressionAttributeValues"][":change"]["L"][0]["M"]["at"];
        let claimed = json!({"L": [{"M": {"step": {"S": "claim"}, "delivery": {"N": "1"}, "at": at}}]});
        assert_eq!(update["ExpressionAttributeValues"][":trail"], claimed, "stamped as the status change");
        let take_over = &calls[2].1;
        assert_eq!(take_over["ConditionExpression"], "#status = :executing");
        assert_eq!(take_over["UpdateExpression"], "SET trail = list_append(if_not_exists(trail, :noTrail), :trail)");
        assert_eq!(take_over["ReturnValues"], "ALL_NEW");
        assert_eq!(calls[3].1["ConsistentRead"], true);
        // With nothing for the trail, no take-over write: the order is read.
        assert_eq!(calls[4].1["UpdateExpression"], "SET #status = :to, history = list_append(history, :change)");
        assert_eq!(calls[7].1["ExpressionAttributeValues"][":trail"]["L"][0]["M"]["delivery"], json!({"N": "2"}));
    }

    #[tokio::test]
    async fn decide_records_once_and_answers_the_recorded_decision() {
        let recorded = json!({"decision": {"S": r#"{"decision":"abort","reason":"no stock"}"#}});
        let table = replay(vec![
            (200, json!({})),
            condition_failed(),
            (200, json!({"Item": stored("executing", json!({"L": []}), recorded)})),
        ]);
        let orders = DynamoOrders::new(table.client.clone(), "orders".into());
        assert_eq!(orders.decide("o1", &Decision::Commit, &[]).await.unwrap(), Decision::Commit);
        let trail = [TrailEntry::decided(&Decision::Commit)];
        let first = orders.decide("o1", &Decision::Commit, &trail).await.unwrap();
        assert_eq!(first, Decision::Abort { reason: "no stock".into() });
        let expected = json!({
            "TableName": "orders",
            "Key": {"orderId": {"S": "o1"}},
            "UpdateExpression": "SET decision = :decision",
            "ConditionExpression": "attribute_exists(orderId) AND attribute_not_exists(decision)",
            "ExpressionAttributeValues": {":decision": {"S": r#"{"decision":"commit"}"#}},
        });
        let calls = table.calls();
        assert_eq!(calls[0], ("UpdateItem".to_string(), expected));
        // With its trail, in the same write.
        assert_eq!(
            calls[1].1["UpdateExpression"],
            "SET decision = :decision, trail = list_append(if_not_exists(trail, :noTrail), :trail)"
        );
        let decided = &calls[1].1["ExpressionAttributeValues"][":trail"]["L"][0]["M"];
        assert_eq!((&decided["step"], &decided["outcome"]), (&json!({"S": "decide"}), &json!({"S": "commit"})));
    }

    #[tokio::test]
    async fn finish_records_the_reason_and_accepts_a_duplicate_that_won() {
        let table = replay(vec![
            (200, json!({})),
            condition_failed(),
            (200, json!({"Item": stored("committed", json!({"L": []}), json!({}))})),
            condition_failed(),
            (200, json!({"Item": stored("failed", json!({"L": []}), json!({}))})),
        ]);
        let orders = DynamoOrders::new(table.client.clone(), "orders".into());
        let told = [TrailEntry::told(ParticipantName::Stock, &Decision::Abort { reason: "out of stock".into() })];
        orders.finish("o1", OrderStatus::Failed, Some("out of stock"), &told).await.unwrap();
        orders.finish("o1", OrderStatus::Committed, None, &[]).await.unwrap();
        let error = orders.finish("o1", OrderStatus::Committed, None, &[]).await.unwrap_err();
        assert_eq!(error, PortError::Permanent(r#"order o1 is Some("failed"), cannot become committed"#.into()));
        let calls = table.calls();
        let update = &calls[0].1;
        let expression = "SET #status = :to, history = list_append(history, :change), failureReason = :reason, \
                          trail = list_append(if_not_exists(trail, :noTrail), :trail)";
        assert_eq!(update["UpdateExpression"], expression);
        let aborted = &update["ExpressionAttributeValues"][":trail"]["L"][0]["M"];
        assert_eq!((&aborted["step"], &aborted["participant"]), (&json!({"S": "abort"}), &json!({"S": "stock"})));
        assert_eq!(update["ConditionExpression"], "#status = :from");
        assert_eq!(update["ExpressionAttributeValues"][":reason"], json!({"S": "out of stock"}));
        assert_eq!(update["ExpressionAttributeValues"][":from"], json!({"S": "executing"}));
        assert_eq!(update["ExpressionAttributeValues"][":to"], json!({"S": "failed"}));
        let change = &update["ExpressionAttributeValues"][":change"]["L"][0]["M"];
        assert_eq!(change["status"], json!({"S": "failed"}));
        assert!(change["at"]["S"].is_string());
        let plain = &calls[1].1;
        assert_eq!(plain["UpdateExpression"], "SET #status = :to, history = list_append(history, :change)");
        assert_eq!(plain.get("ExpressionAttributeValues").and_then(|v| v.get(":reason")), None);
    }
}
