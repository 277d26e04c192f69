//! What the Raft log carries: a client's write, and what applying it produced.

use books_db_client::api::{TxnRequest, TxnResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One client write, as proposed by the node that received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The client's idempotency key: a command whose key was applied before is not applied again.
    pub request_id: Option<String>,
    /// Wall-clock milliseconds at the proposing node. Being in the log, it is the same on every
    /// node, so expiring old idempotency keys by it is deterministic.
    pub at_ms: u64,
    pub operation: Operation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Operation {
    Set { key: String, value: Value },
    Update { key: String, value: Value, if_version: Option<u64> },
    Delete { key: String },
    Txn(TxnRequest),
}

/// What applying a command produced; the node turns it into the HTTP answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    /// For log entries that are not client commands (blank and membership entries).
    None,
    Written {
        version: u64,
    },
    NotFound,
    VersionMismatch {
        expected: u64,
        actual: u64,
    },
    Txn(TxnResponse),
    /// A transaction whose compares held but whose writes could not apply; nothing was written.
    TxnRejected {
        message: String,
    },
}

impl Command {
    /// Whether it compares or writes `key` (without building the list of [`Command::keys`]).
    pub fn touches(&self, key: &str) -> bool {
        match &self.operation {
            Operation::Set { key: k, .. } | Operation::Update { key: k, .. } | Operation::Delete { key: k } => k == key,
            Operation::Txn(txn) => {
                txn.compare.iter().any(|c| c.key == key)
                    || txn.success.iter().chain(&txn.failure).any(|op| op.key() == key)
            }
        }
    }

    /// The keys it compares or writes, each once, in the order they appear.
    pub fn keys(&self) -> Vec<String> {
        let keys: Vec<&str> = match &self.operation {
            Operation::Set { key, .. } | Operation::Update { key, .. } | Operation::Delete { key } => vec![key],
            Operation::Txn(txn) => txn
                .compare
                .iter()
                .map(|c| c.key.as_str())
                .chain(txn.success.iter().chain(&txn.failure).map(|op| op.key()))
                .collect(),
        };
        let mut unique: Vec<String> = Vec::new();
        for key in keys {
            if !unique.iter().any(|k| k == key) {
                unique.push(key.to_string());
            }
        }
        unique
    }
}

/// Short form for Raft's logs: the operation and its keys, never the values.
impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.operation {
            Operation::Set { key, .. } => write!(f, "set {key:?}"),
            Operation::Update { key, .. } => write!(f, "update {key:?}"),
            Operation::Delete { key } => write!(f, "delete {key:?}"),
            Operation::Txn(txn) => {
                write!(f, "txn of {} compares, {}/{} ops", txn.compare.len(), txn.success.len(), txn.failure.len())
            }
        }
    }
}

impl std::fmt::Display for CommandResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// Milliseconds since the Unix epoch, to stamp a command with.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
