//! The SQS event source mapping that `cargo lambda watch` lacks, with AWS's contract: receive up
//! to a batch from the queue (long polling), invoke the function with an SQS event, delete what
//! succeeded, and leave the rest to come back after their visibility timeout (with
//! `ReportBatchItemFailures`, only the messages the function names; without it, or when the
//! invoke fails, the whole batch). One poller per concurrent batch the template allows.
//!
//! When the stack stops while a batch is in hand (its function killed), the poller makes the
//! batch visible again at once: the messages would otherwise stay hidden for the rest of their
//! visibility timeout, which the emulator keeps across a restart.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::emulator::REGION;
use crate::functions::invoke_url;
use crate::template::{FunctionSpec, Resolver};

#[derive(Clone)]
pub struct QueuePoller {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    /// The function's Lambda Invoke URL.
    pub invoke_url: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
}

impl QueuePoller {
    /// The event source mappings of the functions' `SQS` events, the queues found in `resources`
    /// (logical id → URL) and `resolver` (their ARNs): as many pollers per event as it lets
    /// batches run at once.
    pub fn for_functions(
        functions: &[FunctionSpec],
        resources: &BTreeMap<String, String>,
        resolver: &Resolver,
        sqs: &aws_sdk_sqs::Client,
        watch_url: &str,
    ) -> Result<Vec<QueuePoller>> {
        let mut pollers = Vec::new();
        for function in functions {
            for event in &function.queue_events {
                let queue_url = resources.get(&event.queue).with_context(|| format!("no queue {}", event.queue))?;
                let queue_arn =
                    resolver.attributes.get(&(event.queue.clone(), "Arn".into())).context("no queue ARN")?;
                for _ in 0..event.maximum_concurrency {
                    pollers.push(QueuePoller {
                        sqs: sqs.clone(),
                        queue_url: queue_url.clone(),
                        queue_arn: queue_arn.clone(),
                        invoke_url: invoke_url(watch_url, &function.binary),
                        batch_size: event.batch_size,
                        report_batch_item_failures: event.report_batch_item_failures,
                    });
                }
            }
        }
        Ok(pollers)
    }

    /// Polls until `stop` is cancelled (finishing the batch in hand) or the task is aborted.
    pub async fn run(self, stop: CancellationToken) {
        let http = match reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(900)).build() {
            Ok(http) => http,
            Err(e) => return eprintln!("queue poller: {e}"),
        };
        while !stop.is_cancelled() {
            if let Err(e) = self.poll_once(&http, &stop).await {
                eprintln!("queue poller for {}: {e:#}", self.queue_arn);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => {}
                }
            }
        }
    }

    async fn poll_once(&self, http: &reqwest::Client, stop: &CancellationToken) -> Result<()> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size.clamp(1, 10))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            // The order's trace is one of them.
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("receiving: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let messages = received.messages();
        if messages.is_empty() {
            return Ok(());
        }
        let event = json!({ "Records": messages.iter().map(|m| self.record(m)).collect::<Vec<_>>() });
        let all: HashSet<String> = messages.iter().filter_map(|m| m.message_id().map(str::to_string)).collect();
        let failed = match http.post(&self.invoke_url).json(&event).send().await {
            Ok(answer) if answer.status().is_success() && !answer.headers().contains_key("x-amz-function-error") => {
                if self.report_batch_item_failures {
                    let text = answer.text().await.unwrap_or_default();
                    match serde_json::from_str::<SqsBatchResponse>(&text) {
                        Ok(response) => {
                            let failed: HashSet<String> =
                                response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
                            // A failure naming no message of the batch fails it whole, as on AWS.
                            if failed.is_subset(&all) { failed } else { all.clone() }
                        }
                        // An answer that is not a batch response fails the batch, as on AWS.
                        Err(_) => all.clone(),
                    }
                } else {
                    HashSet::new()
                }
            }
            _ if stop.is_cancelled() => return self.release(messages).await,
            _ => all.clone(),
        };
        let done: Vec<&Message> =
            messages.iter().filter(|m| m.message_id().is_some_and(|id| !failed.contains(id))).collect();
        if done.is_empty() {
            return Ok(());
        }
        let entries = done
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .context("a delete entry")
            })
            .collect::<Result<Vec<_>>>()?;
        let deleted = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("deleting: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        for failed in deleted.failed() {
            // It comes back and is found finished: harmless, but worth saying.
            eprintln!("queue poller for {}: could not delete a message: {}", self.queue_arn, failed.code());
        }
        Ok(())
    }

    /// Makes `messages` visible again now.
    async fn release(&self, messages: &[Message]) -> Result<()> {
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .visibility_timeout(0)
                    .build()
                    .context("a visibility entry")
            })
            .collect::<Result<Vec<_>>>()?;
        self.sqs
            .change_message_visibility_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("releasing: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    /// A message as a record of a Lambda SQS event: what AWS's event source mapping hands on.
    fn record(&self, message: &Message) -> Value {
        let attributes: serde_json::Map<String, Value> = message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str().to_string(), Value::String(value.clone())))
            .collect();
        json!({
            "messageId": message.message_id(),
            "receiptHandle": message.receipt_handle(),
            "body": message.body(),
            "md5OfBody": message.md5_of_body(),
            "attributes": attributes,
            "messageAttributes": message_attributes(message),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        })
    }
}

/// A message's own attributes as a Lambda SQS event has them (`stringValue`, `binaryValue` in
/// base64, `dataType`).
fn message_attributes(message: &Message) -> Value {
    use base64::Engine as _;
    let attributes = message.message_attributes().into_iter().flatten().map(|(name, value)| {
        let binary = value.binary_value().map(|b| base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
        let attribute = json!({
            "stringValue": value.string_value(),
            "binaryValue": binary,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.data_type(),
        });
        (name.clone(), attribute)
    });
    Value::Object(attributes.collect())
}
