use aws_sdk_sqs::Client;
use bookstore_domain::orchestrator::OrderQueue;
use bookstore_domain::service::Unavailable;

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
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| unavailable("queueing the order", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}
