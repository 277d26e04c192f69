//! DynamoDB access shared by the orders, payments and service-state tables: a consistent read,
//! a conditional write that answers whether its condition held, and the mapping of items to
//! serde types (via `serde_dynamo`), each written once.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use bookstore_domain::service::Unavailable;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::unavailable;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// What a conditional write did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Written<T> {
    /// The condition held and the write was applied; the call's output.
    Applied(T),
    /// Only the condition failed: nothing was written.
    ConditionFailed,
}

/// The errors of the calls that take a condition expression.
pub(crate) trait ConditionalError {
    fn is_condition_failed(&self) -> bool;
}

impl ConditionalError for PutItemError {
    fn is_condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalError for UpdateItemError {
    fn is_condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalError for DeleteItemError {
    fn is_condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// Awaits a conditional write (`builder.send()`); a failed condition is an answer, any other
/// failure is `Unavailable` saying `what` was being done.
pub(crate) async fn conditional<T, E, R>(
    send: impl Future<Output = Result<T, SdkError<E, R>>>,
    what: &str,
) -> Result<Written<T>, Unavailable>
where
    E: ConditionalError + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    match send.await {
        Ok(output) => Ok(Written::Applied(output)),
        Err(e) if e.as_service_error().is_some_and(ConditionalError::is_condition_failed) => {
            Ok(Written::ConditionFailed)
        }
        Err(e) => Err(unavailable(what, DisplayErrorContext(e))),
    }
}

/// The item under `key` (its name and value), read consistently: the tables are the truth of a
/// state machine, so a stale read could undo a transition.
pub(crate) async fn get_consistent(
    client: &Client,
    table: &str,
    key: (&str, AttributeValue),
    what: &str,
) -> Result<Option<Item>, Unavailable> {
    let answer = client
        .get_item()
        .table_name(table)
        .key(key.0, key.1)
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| unavailable(what, DisplayErrorContext(e)))?;
    Ok(answer.item)
}

/// An update of the item under `key` (its name and value) in `table`, for the caller to give its
/// expressions.
pub(crate) fn update_item(client: &Client, table: &str, key: (&str, AttributeValue)) -> UpdateItemFluentBuilder {
    client.update_item().table_name(table).key(key.0, key.1)
}

/// `value` as an item (a struct's fields as attributes).
pub(crate) fn to_item(value: impl Serialize, what: &str) -> Result<Item, Unavailable> {
    serde_dynamo::aws_sdk_dynamodb_1::to_item(value).map_err(|e| unavailable(what, e))
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item, what: &str) -> Result<T, Unavailable> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(|e| unavailable(what, e))
}

/// `value` as one attribute value: a unit enum variant is `S` of its serde name, a number `N`,
/// a struct or map `M`, a sequence `L`.
pub(crate) fn to_value(value: impl Serialize, what: &str) -> Result<AttributeValue, Unavailable> {
    serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(value).map_err(|e| unavailable(what, e))
}

pub(crate) fn from_value<T: DeserializeOwned>(value: AttributeValue, what: &str) -> Result<T, Unavailable> {
    serde_dynamo::aws_sdk_dynamodb_1::from_attribute_value(value).map_err(|e| unavailable(what, e))
}

#[cfg(test)]
pub(crate) mod replay {
    //! A DynamoDB client that answers each call from a script and keeps the requests, so tests
    //! pin the exact wire shape of items and conditions.

    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
    use aws_smithy_types::body::SdkBody;
    use serde_json::{Value, json};

    pub(crate) struct Replay {
        pub client: Client,
        http: StaticReplayClient,
    }

    /// The answer DynamoDB gives when a condition expression did not hold.
    pub(crate) fn condition_failed() -> (u16, Value) {
        let kind = "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException";
        (400, json!({"__type": kind, "message": "The conditional request failed"}))
    }

    /// A client whose calls get `answers` (status, JSON body), in order.
    pub(crate) fn replay(answers: Vec<(u16, Value)>) -> Replay {
        let events = answers
            .into_iter()
            .map(|(status, body)| {
                let request = http::Request::builder().body(SdkBody::empty()).unwrap();
                let response = http::Response::builder()
                    .status(status)
                    .header("content-type", "application/x-amz-json-1.0")
                    .body(SdkBody::from(body.to_string()))
                    .unwrap();
                ReplayEvent::new(request, response)
            })
            .collect();
        let http = StaticReplayClient::new(events);
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url("http://dynamodb.test")
            .http_client(http.clone())
            .build();
        Replay { client: Client::from_conf(config), http }
    }

    impl Replay {
        /// Every call made: its operation (`PutItem`, …) and its JSON body.
        pub(crate) fn calls(&self) -> Vec<(String, Value)> {
            self.http
                .actual_requests()
                .map(|request| {
                    let target = request.headers().get("x-amz-target").unwrap_or_default();
                    let operation = target.trim_start_matches("DynamoDB_20120810.").to_string();
                    (operation, serde_json::from_slice(request.body().bytes().unwrap()).unwrap())
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::replay::{condition_failed, replay};
    use super::*;

    #[tokio::test]
    async fn only_a_failed_condition_is_an_answer() {
        let refused = json!({"__type": "com.amazonaws.dynamodb.v20120810#ValidationException", "message": "bad"});
        let table = replay(vec![(200, json!({})), condition_failed(), (400, refused)]);
        let put = || table.client.put_item().table_name("t").item("k", AttributeValue::S("1".into()));
        assert!(matches!(conditional(put().send(), "putting").await, Ok(Written::Applied(_))));
        assert!(matches!(conditional(put().send(), "putting").await, Ok(Written::ConditionFailed)));
        let error = conditional(put().send(), "putting").await.unwrap_err();
        assert!(error.0.starts_with("putting: ") && error.0.contains("ValidationException"), "{}", error.0);
    }
}
