use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use bookstore_domain::orchestrator::OrderQueue;
use bookstore_domain::service::Unavailable;
use bookstore_telemetry::context::{TRACEPARENT, TRACESTATE, TraceHeaders};

use crate::unavailable;

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
        let mut send = self.client.send_message().queue_url(&self.queue_url).message_body(body);
        // The order's trace goes on to the executor in its message.
        let trace = TraceHeaders::current();
        for (name, value) in [(TRACEPARENT, trace.traceparent), (TRACESTATE, trace.tracestate)] {
            let Some(value) = value else { continue };
            let attribute = MessageAttributeValue::builder().data_type("String").string_value(value).build();
            match attribute {
                Ok(attribute) => send = send.message_attributes(name, attribute),
                Err(e) => tracing::debug!(order_id, error = %e, "the trace cannot go with the message"),
            }
        }
        send.send().await.map_err(|e| unavailable("queueing the order", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}
