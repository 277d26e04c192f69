//! The payments table (the payment participant's state) and the payment function as a
//! two-phase-commit participant of the order executor.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use bookstore_domain::execution::{ExecutableOrder, Participant, Vote};
use bookstore_domain::payment::{PaymentLedger, PaymentRequest, PaymentResponse, PaymentState};
use bookstore_domain::service::Unavailable;

use crate::invoke::invoke_json;
use crate::service_state::string;
use crate::unavailable;

/// One item per order, keyed `orderId`, with `state` and `amountCents`.
pub struct DynamoPayments {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoPayments {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    async fn state(&self, order_id: &str) -> Result<Option<PaymentState>, Unavailable> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(order_id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("reading the payment", DisplayErrorContext(e)))?;
        answer.item().and_then(|item| string(item, "state")).map(parse_state).transpose()
    }
}

fn parse_state(state: &str) -> Result<PaymentState, Unavailable> {
    serde_json::from_value(serde_json::Value::from(state)).map_err(|e| unavailable("decoding the payment state", e))
}

impl PaymentLedger for DynamoPayments {
    async fn create(
        &self,
        order_id: &str,
        state: PaymentState,
        amount_cents: u64,
    ) -> Result<PaymentState, Unavailable> {
        let answer = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("orderId", AttributeValue::S(order_id.into()))
            .item("state", AttributeValue::S(state.as_str().into()))
            .item("amountCents", AttributeValue::N(amount_cents.to_string()))
            .condition_expression("attribute_not_exists(orderId)")
            .send()
            .await;
        match answer {
            Ok(_) => Ok(state),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                self.state(order_id).await?.ok_or_else(|| unavailable("reading the payment", "it vanished"))
            }
            Err(e) => Err(unavailable("recording the payment", DisplayErrorContext(e))),
        }
    }

    async fn transition(
        &self,
        order_id: &str,
        from: PaymentState,
        to: PaymentState,
    ) -> Result<Option<PaymentState>, Unavailable> {
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("orderId", AttributeValue::S(order_id.into()))
            .update_expression("SET #state = :to")
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":to", AttributeValue::S(to.as_str().into()))
            .expression_attribute_values(":from", AttributeValue::S(from.as_str().into()))
            .return_values(ReturnValue::None)
            .send()
            .await;
        match answer {
            Ok(_) => Ok(Some(to)),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                self.state(order_id).await
            }
            Err(e) => Err(unavailable("changing the payment", DisplayErrorContext(e))),
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

    /// A step that must end in `expected`: anything else is a protocol fault, retried later.
    async fn step(&self, request: PaymentRequest, expected: PaymentState) -> Result<(), Unavailable> {
        match self.send(&request).await? {
            PaymentResponse::Done { state } if state == expected => Ok(()),
            PaymentResponse::Done { state } => {
                Err(Unavailable(format!("payment is {}, not {}", state.as_str(), expected.as_str())))
            }
            PaymentResponse::Refused { reason } => Err(Unavailable(format!("payment refused: {reason}"))),
        }
    }
}

impl Participant for LambdaPayment {
    async fn prepare(&self, order: &ExecutableOrder) -> Result<Vote, Unavailable> {
        let request = PaymentRequest::Prepare { order_id: order.order_id.clone(), amount_cents: order.amount_cents };
        Ok(match self.send(&request).await? {
            PaymentResponse::Done { .. } => Vote::Yes,
            PaymentResponse::Refused { reason } => Vote::No(reason),
        })
    }

    async fn commit(&self, order: &ExecutableOrder) -> Result<(), Unavailable> {
        self.step(PaymentRequest::Commit { order_id: order.order_id.clone() }, PaymentState::Charged).await
    }

    async fn abort(&self, order: &ExecutableOrder) -> Result<(), Unavailable> {
        self.step(PaymentRequest::Abort { order_id: order.order_id.clone() }, PaymentState::Released).await
    }
}
