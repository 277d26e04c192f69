//! The books database's HTTP JSON interface: the bodies a node accepts and answers with.
//!
//! The node and the client both use these types, so the wire format is written down once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Header that makes a write idempotent: a retried write carrying the same key is applied once,
/// and the retry gets the first attempt's answer.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Largest key, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// `GET /kv/{key}` answer, and one item of `GET /kv?prefix=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvEntry {
    pub key: String,
    pub value: Value,
    /// The Raft log index of the write that last changed this key: unique and increasing.
    pub version: u64,
}

/// `GET /kv?prefix=P` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvList {
    pub items: Vec<KvEntry>,
}

// Request bodies refuse unknown fields: `{"value": 1, "if_version": 3}` (a misspelt `ifVersion`)
// must not become an unconditional update.

/// `PUT /kv/{key}` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRequest {
    pub value: Value,
}

/// `PATCH /kv/{key}` body: replace the value of an existing key, optionally only at a version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateRequest {
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_version: Option<u64>,
}

/// Answer to a successful `PUT`, `PATCH` or `DELETE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResponse {
    pub version: u64,
}

/// `POST /txn` body: if every compare holds, `success` is applied, else `failure` — atomically.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxnRequest {
    #[serde(default)]
    pub compare: Vec<Compare>,
    #[serde(default)]
    pub success: Vec<TxnOp>,
    #[serde(default)]
    pub failure: Vec<TxnOp>,
}

/// One condition of a transaction, on one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compare {
    pub key: String,
    #[serde(flatten)]
    pub check: Check,
}

/// What a [`Compare`] checks. On the wire: `{"key": "k", "version": 3}`, `{"key": "k", "exists":
/// false}`, `{"key": "k", "value": ...}` or `{"key": "k", "atLeast": 2}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    /// The key's version equals this (0 means the key does not exist).
    Version(u64),
    /// The key exists (or not).
    Exists(bool),
    /// The key's value equals this JSON value.
    Value(Value),
    /// The key's value is an integer at least this large.
    AtLeast(i64),
}

/// One write of a transaction. On the wire: `{"put": {"key", "value"}}`, `{"delete": {"key"}}` or
/// `{"add": {"key", "delta"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum TxnOp {
    Put {
        key: String,
        value: Value,
    },
    Delete {
        key: String,
    },
    /// Add `delta` to the integer value of an existing key (stock reservations).
    Add {
        key: String,
        delta: i64,
    },
}

impl TxnOp {
    pub fn key(&self) -> &str {
        match self {
            TxnOp::Put { key, .. } | TxnOp::Delete { key } | TxnOp::Add { key, .. } => key,
        }
    }
}

/// `POST /txn` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxnResponse {
    /// Whether every compare held (and so `success` was applied rather than `failure`).
    pub succeeded: bool,
    /// The log index of the transaction: the version of every key it wrote.
    pub version: u64,
    /// Indexes into `compare` of the conditions that did not hold.
    #[serde(default)]
    pub failed_compares: Vec<usize>,
}

/// A voter or learner of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub id: u64,
    /// Its client address.
    pub addr: String,
    /// Where it takes Raft RPCs, when not at `addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_addr: Option<String>,
}

/// `GET /cluster/status` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    pub id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    pub leader: Option<u64>,
    pub term: u64,
    /// The node this one voted for in `term` (itself when it is the leader or a candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voted_for: Option<u64>,
    pub members: Vec<Member>,
    #[serde(default)]
    pub learners: Vec<Member>,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    #[serde(default)]
    pub committed: Option<u64>,
    /// Last log index included in this node's latest snapshot.
    #[serde(default)]
    pub snapshot: Option<u64>,
    /// Last log index removed from the log by compaction.
    #[serde(default)]
    pub purged: Option<u64>,
}

/// `GET /cluster/log` answer: some entries of one node's Raft log, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogWindow {
    /// The node's first and last index still in its log (earlier ones are in its snapshot).
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub entries: Vec<LogEntryView>,
}

/// One log entry, told without the values it writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntryView {
    pub index: u64,
    pub term: u64,
    /// `command`, `membership` (a configuration change) or `blank` (a new leader's first entry).
    pub kind: String,
    /// What it does, in words: `set "k"`, `txn of 2 compares, 3/0 ops`, `voters [1, 2, 3]`.
    pub summary: String,
    /// The keys a command compares or writes.
    #[serde(default)]
    pub keys: Vec<String>,
    /// When the proposing leader stamped a command (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// Most entries one `GET /cluster/log` answers.
pub const MAX_LOG_WINDOW: usize = 100;

/// `POST /cluster/learners` body: add a node that then catches up with the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddLearnerRequest {
    pub id: u64,
    pub addr: String,
    /// Where the node takes Raft RPCs, when it was started with `--raft-addr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_addr: Option<String>,
}

/// `POST /cluster/membership` body: the ids of the voters from now on (each must be a member or a
/// learner already).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeMembershipRequest {
    pub voters: Vec<u64>,
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Checks a key: 1 to [`MAX_KEY_LEN`] bytes, no control characters, and no `.` or `..` between
/// slashes (HTTP clients rewrite such paths, so the key could not be addressed in a URL).
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("the key is {} bytes long; at most {MAX_KEY_LEN} are allowed", key.len()));
    }
    if key.chars().any(char::is_control) {
        return Err("the key contains a control character".into());
    }
    if key.split('/').any(|segment| segment == "." || segment == "..") {
        return Err("the key has a `.` or `..` segment".into());
    }
    Ok(())
}

/// Checks a node address: `HOST:PORT`.
pub fn validate_addr(addr: &str) -> Result<(), String> {
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => Err(format!("{addr:?} is not HOST:PORT")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compare_and_ops_have_the_documented_wire_shape() {
        let txn: TxnRequest = serde_json::from_value(json!({
            "compare": [
                {"key": "a", "version": 3},
                {"key": "b", "exists": false},
                {"key": "c", "value": {"x": 1}},
                {"key": "stock/1", "atLeast": 2}
            ],
            "success": [
                {"put": {"key": "a", "value": "v"}},
                {"delete": {"key": "b"}},
                {"add": {"key": "stock/1", "delta": -2}}
            ]
        }))
        .unwrap();
        assert_eq!(txn.compare[0].check, Check::Version(3));
        assert_eq!(txn.compare[1].check, Check::Exists(false));
        assert_eq!(txn.compare[3].check, Check::AtLeast(2));
        assert_eq!(txn.success[2], TxnOp::Add { key: "stock/1".into(), delta: -2 });
        assert!(txn.failure.is_empty());
        let back = serde_json::to_value(&txn).unwrap();
        assert_eq!(back["compare"][3], json!({"key": "stock/1", "atLeast": 2}));
    }

    #[test]
    fn keys_are_checked() {
        assert!(validate_key("book/1").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("a\nb").is_err());
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        assert!(validate_key("ключ/📚").is_ok());
        assert!(validate_key("a/../b").is_err());
        assert!(validate_key(".").is_err());
        assert!(validate_key("a/.b/c.").is_ok());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<UpdateRequest>(r#"{"value": 1, "if_version": 3}"#).is_err());
        assert!(serde_json::from_str::<UpdateRequest>(r#"{"value": 1, "ifVersion": 3}"#).is_ok());
        assert!(serde_json::from_str::<SetRequest>(r#"{"value": 1, "extra": 0}"#).is_err());
    }

    #[test]
    fn addresses_are_checked() {
        assert!(validate_addr("127.0.0.1:7001").is_ok());
        assert!(validate_addr("[::1]:7001").is_ok());
        assert!(validate_addr("nohost").is_err());
        assert!(validate_addr(":7001").is_err());
        assert!(validate_addr("h:99999").is_err());
    }
}
