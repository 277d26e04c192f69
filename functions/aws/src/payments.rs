//! The payments table (the payment participant's state) and the payment function as a
//! two-phase-commit participant of the order executor.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use bookstore_domain::execution::{ExecutableOrder, Participant, Vote};
use bookstore_domain::payment::{PaymentLedger, PaymentRequest, PaymentResponse, PaymentState};
use bookstore_domain::port_error::PortError;
use bookstore_domain::service::Unavailable;
use serde::{Deserialize, Serialize};

use crate::invoke::invoke_json;
use crate::table::{Written, conditional, from_item, get_consistent, to_item, to_value, update_item};

/// One item per order, keyed `orderId`, with `state` and `amountCents`.
pub struct DynamoPayments {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// A payment as the table holds it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentItem {
    order_id: String,
    state: PaymentState,
    amount_cents: u64,
}

/// What is read back: only the state is needed.
#[derive(Deserialize)]
struct StoredState {
    state: Option<PaymentState>,
}

impl DynamoPayments {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    async fn state(&self, order_id: &str) -> Result<Option<PaymentState>, Unavailable> {
        let key = ("orderId", AttributeValue::S(order_id.into()));
        let Some(item) = get_consistent(&self.client, &self.table, key, "reading the payment").await? else {
            return Ok(None);
        };
        Ok(from_item::<StoredState>(item, "decoding the payment state")?.state)
    }
}

impl PaymentLedger for DynamoPayments {
    async fn create(
        &self,
        order_id: &str,
        state: PaymentState,
        amount_cents: u64,
    ) -> Result<PaymentState, Unavailable> {
        let item = to_item(PaymentItem { order_id: order_id.into(), state, amount_cents }, "encoding the payment")?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(orderId)");
        match conditional(put.send(), "recording the payment").await? {
            Written::Applied(_) => Ok(state),
            Written::ConditionFailed => {
                self.state(order_id).await?.ok_or_else(|| Unavailable("reading the payment: it vanished".into()))
            }
        }
    }

    async fn transition(
        &self,
        order_id: &str,
        from: PaymentState,
        to: PaymentState,
    ) -> Result<Option<PaymentState>, Unavailable> {
        let update = update_item(&self.client, &self.table, ("orderId", AttributeValue::S(order_id.into())))
            .update_expression("SET #state = :to")
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", to_value(to, "encoding the payment state")?)
            .expression_attribute_values(":from", to_value(from, "encoding the payment state")?)
            .return_values(ReturnValue::None);
        match conditional(update.send(), "changing the payment").await? {
            Written::Applied(_) => Ok(Some(to)),
            Written::ConditionFailed => self.state(order_id).await,
        }
    }
}

/// The payment function, called through the Lambda Invoke API.
pub struct LambdaPayment {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaPayment {
    /// `client` should not retry (see [`crate::LambdaServices::new`]).
    pub fn new(client: aws_sdk_lambda::Client, function: String) -> Self {
        Self { client, function }
    }

    async fn send(&self, request: &PaymentRequest) -> Result<PaymentResponse, Unavailable> {
        invoke_json(&self.client, &self.function, request).await
    }

    /// A step that must end in `expected`: anything else is out of protocol, and asking again
    /// would get the same answer.
    async fn step(&self, request: PaymentRequest, expected: PaymentState) -> Result<(), PortError> {
        match self.send(&request).await? {
            PaymentResponse::Done { state } if state == expected => Ok(()),
            PaymentResponse::Done { state } => {
                Err(PortError::Permanent(format!("payment is {}, not {}", state.as_str(), expected.as_str())))
            }
            PaymentResponse::Refused { reason } => Err(PortError::Permanent(format!("payment refused: {reason}"))),
        }
    }
}

impl Participant for LambdaPayment {
    async fn prepare(&self, order: &ExecutableOrder) -> Result<Vote, PortError> {
        let request = PaymentRequest::Prepare { order_id: order.order_id.clone(), amount_cents: order.amount_cents };
        Ok(match self.send(&request).await? {
            PaymentResponse::Done { .. } => Vote::YES,
            PaymentResponse::Refused { reason } => Vote::No(reason),
        })
    }

    async fn commit(&self, order: &ExecutableOrder) -> Result<(), PortError> {
        self.step(PaymentRequest::Commit { order_id: order.order_id.clone() }, PaymentState::Charged).await
    }

    async fn abort(&self, order: &ExecutableOrder) -> Result<(), PortError> {
        self.step(PaymentRequest::Abort { order_id: order.order_id.clone() }, PaymentState::Released).await
    }
}

#[cfg(test)]
mod tests {
    //! The payments table's item shape and conditions, pinned: the payment function and tests read it.

    use serde_json::json;

    use super::*;
    use crate::table::replay::{condition_failed, replay};

    #[tokio::test]
    async fn create_puts_state_and_amount_once_or_answers_the_state_there() {
        let there = json!({"Item": {"orderId": {"S": "o1"}, "state": {"S": "released"}, "amountCents": {"N": "1998"}}});
        let table = replay(vec![(200, json!({})), condition_failed(), (200, there)]);
        let payments = DynamoPayments::new(table.client.clone(), "payments".into());
        assert_eq!(payments.create("o1", PaymentState::Authorized, 1998).await.unwrap(), PaymentState::Authorized);
        assert_eq!(payments.create("o1", PaymentState::Authorized, 1998).await.unwrap(), PaymentState::Released);
        let put = json!({
            "TableName": "payments",
            "Item": {"orderId": {"S": "o1"}, "state": {"S": "authorized"}, "amountCents": {"N": "1998"}},
            "ConditionExpression": "attribute_not_exists(orderId)",
        });
        let read = json!({"TableName": "payments", "Key": {"orderId": {"S": "o1"}}, "ConsistentRead": true});
        let calls = table.calls();
        assert_eq!(calls, [("PutItem".into(), put.clone()), ("PutItem".into(), put), ("GetItem".into(), read)]);
    }

    #[tokio::test]
    async fn transition_is_one_conditional_update_or_answers_the_state_there() {
        let table = replay(vec![(200, json!({})), condition_failed(), (200, json!({}))]);
        let payments = DynamoPayments::new(table.client.clone(), "payments".into());
        let (from, to) = (PaymentState::Authorized, PaymentState::Charged);
        assert_eq!(payments.transition("o1", from, to).await.unwrap(), Some(PaymentState::Charged));
        assert_eq!(payments.transition("o1", from, to).await.unwrap(), None);
        let update = json!({
            "TableName": "payments",
            "Key": {"orderId": {"S": "o1"}},
            "UpdateExpression": "SET #state = :to",
            "ConditionExpression": "#state = :from",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {":to": {"S": "charged"}, ":from": {"S": "authorized"}},
            "ReturnValues": "NONE",
        });
        let calls = table.calls();
        assert_eq!(calls[0], ("UpdateItem".into(), update));
        assert_eq!(calls[2].0, "GetItem");
    }
}
