//! What the storefront's cluster view shows: each books-database node's own view of the Raft
//! cluster, and how many messages wait in the order queue and its dead-letter queue.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use books_db_client::api::LogEntryView;
use books_db_client::{BooksDb, ClientOptions};
use serde::Serialize;

/// A paused or partitioned node, or a queue that does not answer, must not hold the whole view:
/// it is shown as unreachable.
const PART_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemStatus {
    pub books_db: Vec<NodeView>,
    pub queues: Vec<QueueView>,
    /// The leader's log: its last entries, or those of one order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raft_log: Option<RaftLogView>,
}

/// Entries of the leader's Raft log, oldest first.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RaftLogView {
    /// The leader's position in `BOOKS_DB_URL`, from 1, as in [`NodeView::node`].
    pub node: usize,
    pub entries: Vec<LogEntryView>,
}

/// Entries shown of the leader's log when no order is asked about.
const LOG_TAIL: &str = "8";

/// Key prefixes whose keys are public (the catalog, the stock, the executors' knobs); any other
/// key (a reservation names its order, and an order id is what lets one read the order) is shown
/// as its prefix only, unless it is the key of the order asked about.
const PUBLIC_KEY_PREFIXES: [&str; 4] = ["book/", "stock/", "catalog/", "config/"];

/// One node as it sees itself, or why it could not be asked. No addresses: the view may be public.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// Position in `BOOKS_DB_URL`, from 1: a name for a node that does not answer.
    pub node: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// Whom it voted for in `term`: the leader it follows, or itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voted_for: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_log_index: Option<u64>,
    /// The last log index it knows a majority holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_applied: Option<u64>,
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
        let options = ClientOptions { attempt_timeout: PART_TIMEOUT, ..ClientOptions::default() };
        Ok(Self { books_db: BooksDb::with_options(endpoints, options)?, sqs, queues })
    }

    /// Asks every node and queue at once; each part that fails says why, the others still show.
    /// The leader's log follows: its tail, or with `order_id` the entries that reserved or
    /// released that order's stock.
    pub async fn read(&self, order_id: Option<&str>) -> SystemStatus {
        let nodes =
            futures::future::join_all(self.books_db.endpoints().iter().enumerate().map(|(i, url)| async move {
                match self.books_db.status_of(url).await {
                    Ok(status) => NodeView {
                        node: i + 1,
                        id: Some(status.id),
                        role: Some(status.role),
                        leader: status.leader,
                        term: Some(status.term),
                        voted_for: status.voted_for,
                        last_log_index: status.last_log_index,
                        committed: status.committed,
                        last_applied: status.last_applied,
                        error: None,
                    },
                    Err(e) => {
                        // The details name the node's address: logged, not shown.
                        tracing::warn!(node = i + 1, error = %e, "a books-database node did not answer");
                        NodeView { node: i + 1, error: Some("no answer".into()), ..NodeView::default() }
                    }
                }
            }));
        let queues = futures::future::join_all(self.queues.iter().map(|(name, url)| self.queue(name, url)));
        let (books_db, queues) = futures::join!(nodes, queues);
        let leader = books_db.iter().find(|node| node.role.as_deref() == Some("leader")).map(|node| node.node);
        let raft_log = match leader {
            Some(node) => self.raft_log(node, order_id).await,
            None => None,
        };
        SystemStatus { books_db, queues, raft_log }
    }

    /// The log of the node at `position` (from 1); `None` if it cannot be read.
    async fn raft_log(&self, position: usize, order_id: Option<&str>) -> Option<RaftLogView> {
        let url = self.books_db.endpoints().get(position - 1)?;
        let asked = order_id.map(crate::stock::reservation_key);
        let query: Vec<(&str, &str)> = match &asked {
            Some(key) => vec![("key", key.as_str()), ("limit", "20")],
            None => vec![("limit", LOG_TAIL)],
        };
        match self.books_db.log_of(url, &query).await {
            Ok(window) => {
                let entries = window.entries.into_iter().map(|entry| shown_entry(entry, asked.as_deref())).collect();
                Some(RaftLogView { node: position, entries })
            }
            Err(e) => {
                tracing::warn!(node = position, error = %e, "the leader's log could not be read");
                None
            }
        }
    }

    async fn queue(&self, name: &str, url: &str) -> QueueView {
        let request = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send();
        let failed =
            |error: String| QueueView { name: name.to_string(), waiting: None, in_flight: None, error: Some(error) };
        match tokio::time::timeout(PART_TIMEOUT, request).await {
            Err(_) => failed(format!("no answer within {PART_TIMEOUT:?}")),
            Ok(Err(e)) => {
                // The details may name the queue's URL: logged, not shown.
                tracing::warn!(queue = name, error = %aws_sdk_sqs::error::DisplayErrorContext(e), "a queue could not be read");
                failed("unreadable".into())
            }
            Ok(Ok(answer)) => {
                let count = |attribute: QueueAttributeName| {
                    answer.attributes().and_then(|a| a.get(&attribute)).and_then(|n| n.parse().ok())
                };
                let view = QueueView {
                    name: name.to_string(),
                    waiting: count(QueueAttributeName::ApproximateNumberOfMessages),
                    in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
                    error: None,
                };
                crate::metrics::queue_depth(name, view.waiting, view.in_flight);
                view
            }
        }
    }
}

/// An entry as the public view shows it: its keys, and the key a single write's summary names
/// (`set "k"`), masked alike.
fn shown_entry(mut entry: LogEntryView, asked: Option<&str>) -> LogEntryView {
    for key in std::mem::take(&mut entry.keys) {
        let shown = shown_key(key.clone(), asked);
        if shown != key {
            entry.summary = entry.summary.replace(&key, &shown);
        }
        entry.keys.push(shown);
    }
    entry
}

/// A key as the public view shows it (see [`PUBLIC_KEY_PREFIXES`]).
fn shown_key(key: String, asked: Option<&str>) -> String {
    if PUBLIC_KEY_PREFIXES.iter().any(|prefix| key.starts_with(prefix)) || asked == Some(key.as_str()) {
        return key;
    }
    match key.split_once('/') {
        Some((prefix, _)) => format!("{prefix}/…"),
        None => "…".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_keys_and_the_asked_orders_are_shown_whole() {
        let shown = |key: &str, asked| shown_key(key.into(), asked);
        assert_eq!(shown("stock/dune", None), "stock/dune");
        assert_eq!(shown("book/dune", None), "book/dune");
        assert_eq!(shown("config/executor", None), "config/executor");
        assert_eq!(shown("reservation/o-1", None), "reservation/…");
        assert_eq!(shown("reservation/o-1", Some("reservation/o-1")), "reservation/o-1");
        assert_eq!(shown("reservation/o-2", Some("reservation/o-1")), "reservation/…");
        assert_eq!(shown("secret", None), "…");
    }

    #[test]
    fn a_masked_key_is_masked_in_the_summary_too() {
        let entry = |summary: &str, keys: &[&str]| LogEntryView {
            index: 7,
            term: 2,
            kind: "command".into(),
            summary: summary.into(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            at_ms: None,
        };
        let set = shown_entry(entry("set \"reservation/o-1\"", &["reservation/o-1"]), None);
        assert_eq!(
            (set.summary.as_str(), set.keys.as_slice()),
            ("set \"reservation/…\"", ["reservation/…".to_string()].as_slice())
        );
        let own = shown_entry(entry("delete \"reservation/o-1\"", &["reservation/o-1"]), Some("reservation/o-1"));
        assert_eq!(own.summary, "delete \"reservation/o-1\"", "the order asked about sees its own key");
        let txn = shown_entry(entry("txn of 2 compares, 3/0 ops", &["stock/a", "reservation/o-2"]), None);
        assert_eq!(
            (txn.summary.as_str(), txn.keys),
            ("txn of 2 compares, 3/0 ops", vec!["stock/a".into(), "reservation/…".into()])
        );
    }
}
