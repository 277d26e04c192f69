use std::collections::HashMap;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use bookstore_domain::orchestrator::OrderQueue;
use bookstore_domain::service::Unavailable;
use bookstore_telemetry::context::{TRACEPARENT, TRACESTATE, TraceHeaders};

use crate::unavailable;

/// A trace as a message's attributes (`traceparent`, `tracestate`), as the executor reads them.
pub(crate) fn trace_attributes(trace: TraceHeaders) -> HashMap<String, MessageAttributeValue> {
    [(TRACEPARENT, trace.traceparent), (TRACESTATE, trace.tracestate)]
        .into_iter()
        .filter_map(|(name, value)| {
            let attribute = MessageAttributeValue::builder().data_type("String").string_value(value?).build();
            Some((name.to_string(), attribute.ok()?))
        })
        .collect()
}

/// The order queue: a message carries the order id only; the orders table is the truth.
pub struct SqsOrderQueue {
    client: Client,
    queue_url: String,
}

impl SqsOrderQueue {
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

impl OrderQueue for SqsOrderQueue {
    async fn enqueue(&self, order_id: &str) -> Result<(), Unavailable> {
        let body = serde_json::json!({ "orderId": order_id }).to_string();
        // The order's trace goes on to the executor in its message.
        let send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .set_message_attributes(Some(trace_attributes(TraceHeaders::current())));
        send.send().await.map_err(|e| unavailable("queueing the order", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}
