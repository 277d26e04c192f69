//! What the storefront's cluster view shows: each books-database node's own view of the Raft
//! cluster, and how many messages wait in the order queue and its dead-letter queue.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use books_db_client::{BooksDb, ClientOptions};
use serde::Serialize;

/// A paused or partitioned node must not hold the whole view: it is shown as unreachable.
const NODE_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemStatus {
    pub books_db: Vec<NodeView>,
    pub queues: Vec<QueueView>,
}

/// One node as it sees itself, or why it could not be asked.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    pub url: String,
    #[serde(flatten)]
    pub status: Option<books_db_client::api::ClusterStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A queue's approximate depth, as SQS counts it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    pub name: String,
    /// Messages waiting to be received.
    pub waiting: Option<u64>,
    /// Received and not yet deleted: being executed, or waiting out a retry delay.
    pub in_flight: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub struct SystemStatusReader {
    books_db: BooksDb,
    sqs: aws_sdk_sqs::Client,
    /// `(name shown, queue URL)`.
    queues: Vec<(String, String)>,
}

impl SystemStatusReader {
    /// `books_db_urls` is the comma-separated node list every function gets.
    pub fn new(
        books_db_urls: &str,
        sqs: aws_sdk_sqs::Client,
        queues: Vec<(String, String)>,
    ) -> Result<Self, books_db_client::Error> {
        let endpoints = books_db_urls.split(',').map(str::trim).filter(|u| !u.is_empty());
        let options = ClientOptions { attempt_timeout: NODE_TIMEOUT, ..ClientOptions::default() };
        Ok(Self { books_db: BooksDb::with_options(endpoints, options)?, sqs, queues })
    }

    /// Asks every node and queue at once; each part that fails says why, the others still show.
    pub async fn read(&self) -> SystemStatus {
        let nodes = futures::future::join_all(self.books_db.endpoints().iter().map(|url| async move {
            match self.books_db.status_of(url).await {
                Ok(status) => NodeView { url: url.clone(), status: Some(status), error: None },
                Err(e) => NodeView { url: url.clone(), status: None, error: Some(e.to_string()) },
            }
        }));
        let queues = futures::future::join_all(self.queues.iter().map(|(name, url)| self.queue(name, url)));
        let (books_db, queues) = futures::join!(nodes, queues);
        SystemStatus { books_db, queues }
    }

    async fn queue(&self, name: &str, url: &str) -> QueueView {
        let answer = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await;
        match answer {
            Ok(answer) => {
                let count = |attribute: QueueAttributeName| {
                    answer.attributes().and_then(|a| a.get(&attribute)).and_then(|n| n.parse().ok())
                };
                QueueView {
                    name: name.to_string(),
                    waiting: count(QueueAttributeName::ApproximateNumberOfMessages),
                    in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
                    error: None,
                }
            }
            Err(e) => QueueView {
                name: name.to_string(),
                waiting: None,
                in_flight: None,
                error: Some(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()),
            },
        }
    }
}
