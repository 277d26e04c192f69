//! The key-value state: applying commands to the tables, and reading them.
//!
//! Everything here runs inside one redb transaction, so a command is applied whole or not at all,
//! together with the log position it came from.

use std::collections::BTreeMap;

use books_db_client::api::{Check, Compare, KvEntry, TxnOp, TxnRequest, TxnResponse};
use redb::{ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::StoreError;
use crate::command::{Command, CommandResult, Operation};

/// Key → [`StoredValue`] as JSON.
pub(crate) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// Idempotency key → [`AppliedRequest`] as JSON.
pub(crate) const REQUESTS: TableDefinition<&str, &[u8]> = TableDefinition::new("requests");
/// (time applied, idempotency key) → log index, to expire old idempotency keys in time order.
pub(crate) const REQUESTS_BY_TIME: TableDefinition<(u64, &str), u64> = TableDefinition::new("requests_by_time");

/// How long an idempotency key is remembered. Clients retry for seconds, not minutes.
pub const REQUEST_TTL_MS: u64 = 10 * 60 * 1000;
/// An idempotency key is also kept until this many log entries have followed it, so that a
/// leader whose clock runs far ahead cannot expire the keys of retries still in flight.
pub const REQUEST_MIN_KEPT_ENTRIES: u64 = 100_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredValue {
    pub value: Value,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AppliedRequest {
    pub at_ms: u64,
    pub index: u64,
    pub result: CommandResult,
}

/// Applies one client command at log index `index`. A command whose idempotency key was seen
/// before is not applied again: its first result is returned.
pub(crate) fn apply_command(
    txn: &WriteTransaction,
    index: u64,
    command: &Command,
) -> Result<CommandResult, StoreError> {
    let mut requests = txn.open_table(REQUESTS)?;
    let mut by_time = txn.open_table(REQUESTS_BY_TIME)?;
    expire_requests(
        &mut requests,
        &mut by_time,
        command.at_ms.saturating_sub(REQUEST_TTL_MS),
        index.saturating_sub(REQUEST_MIN_KEPT_ENTRIES),
    )?;

    if let Some(id) = &command.request_id
        && let Some(previous) = requests.get(id.as_str())?
    {
        let previous: AppliedRequest = serde_json::from_slice(previous.value())?;
        return Ok(previous.result);
    }

    let mut kv = txn.open_table(KV)?;
    let result = execute(&mut kv, index, &command.operation)?;

    if let Some(id) = &command.request_id {
        let applied = AppliedRequest { at_ms: command.at_ms, index, result: result.clone() };
        remember_request(&mut requests, &mut by_time, id, &applied)?;
    }
    Ok(result)
}

pub(crate) fn remember_request(
    requests: &mut Table<&str, &[u8]>,
    by_time: &mut Table<(u64, &str), u64>,
    id: &str,
    applied: &AppliedRequest,
) -> Result<(), StoreError> {
    requests.insert(id, serde_json::to_vec(applied)?.as_slice())?;
    by_time.insert((applied.at_ms, id), applied.index)?;
    Ok(())
}

/// Forgets idempotency keys applied before `before_ms` and below log index `below_index`.
fn expire_requests(
    requests: &mut Table<&str, &[u8]>,
    by_time: &mut Table<(u64, &str), u64>,
    before_ms: u64,
    below_index: u64,
) -> Result<(), StoreError> {
    let mut expired = Vec::new();
    for item in by_time.range(..(before_ms, ""))? {
        let (key, index) = item?;
        // Time and index order agree but for clock skew between leaders; stopping at the first
        // key that is too recent by index only delays the expiry of a few.
        if index.value() >= below_index {
            break;
        }
        expired.push((key.value().0, key.value().1.to_string()));
    }
    for (at, id) in expired {
        by_time.remove((at, id.as_str()))?;
        requests.remove(id.as_str())?;
    }
    Ok(())
}

fn execute(kv: &mut Table<&str, &[u8]>, index: u64, operation: &Operation) -> Result<CommandResult, StoreError> {
    Ok(match operation {
        Operation::Set { key, value } => {
            put(kv, key, &StoredValue { value: value.clone(), version: index })?;
            CommandResult::Written { version: index }
        }
        Operation::Update { key, value, if_version } => match get(kv, key)? {
            None => CommandResult::NotFound,
            Some(current) if if_version.is_some_and(|v| v != current.version) => {
                CommandResult::VersionMismatch { expected: if_version.unwrap_or_default(), actual: current.version }
            }
            Some(_) => {
                put(kv, key, &StoredValue { value: value.clone(), version: index })?;
                CommandResult::Written { version: index }
            }
        },
        Operation::Delete { key } => match kv.remove(key.as_str())? {
            Some(_) => CommandResult::Written { version: index },
            None => CommandResult::NotFound,
        },
        Operation::Txn(txn) => execute_txn(kv, index, txn)?,
    })
}

fn execute_txn(kv: &mut Table<&str, &[u8]>, index: u64, txn: &TxnRequest) -> Result<CommandResult, StoreError> {
    let mut failed_compares = Vec::new();
    for (i, compare) in txn.compare.iter().enumerate() {
        if !holds(compare, get(kv, &compare.key)?.as_ref()) {
            failed_compares.push(i);
        }
    }
    let succeeded = failed_compares.is_empty();
    let ops = if succeeded { &txn.success } else { &txn.failure };

    // Work out every write before making any, so a failing op leaves the table untouched.
    let mut writes: BTreeMap<&str, Option<StoredValue>> = BTreeMap::new();
    for op in ops {
        let key = op.key();
        let current = match writes.get(key) {
            Some(pending) => pending.clone(),
            None => get(kv, key)?,
        };
        let next = match op {
            TxnOp::Put { value, .. } => Some(StoredValue { value: value.clone(), version: index }),
            TxnOp::Delete { .. } => None,
            TxnOp::Add { delta, .. } => {
                let Some(current) = current else {
                    return Ok(CommandResult::TxnRejected {
                        message: format!("add to {key:?}: the key does not exist"),
                    });
                };
                let Some(sum) = current.value.as_i64().and_then(|n| n.checked_add(*delta)) else {
                    return Ok(CommandResult::TxnRejected {
                        message: format!("add to {key:?}: its value {} is not an integer in range", current.value),
                    });
                };
                Some(StoredValue { value: Value::from(sum), version: index })
            }
        };
        writes.insert(key, next);
    }
    for (key, value) in writes {
        match value {
            Some(value) => put(kv, key, &value)?,
            None => {
                kv.remove(key)?;
            }
        }
    }
    Ok(CommandResult::Txn(TxnResponse { succeeded, version: index, failed_compares }))
}

fn holds(compare: &Compare, current: Option<&StoredValue>) -> bool {
    match &compare.check {
        Check::Version(version) => current.map_or(0, |c| c.version) == *version,
        Check::Exists(exists) => current.is_some() == *exists,
        Check::Value(value) => current.is_some_and(|c| &c.value == value),
        Check::AtLeast(min) => current.and_then(|c| c.value.as_i64()).is_some_and(|n| n >= *min),
    }
}

fn get(kv: &Table<&str, &[u8]>, key: &str) -> Result<Option<StoredValue>, StoreError> {
    match kv.get(key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(bytes.value())?)),
        None => Ok(None),
    }
}

fn put(kv: &mut Table<&str, &[u8]>, key: &str, value: &StoredValue) -> Result<(), StoreError> {
    kv.insert(key, serde_json::to_vec(value)?.as_slice())?;
    Ok(())
}

/// Reads one key from the applied state.
pub fn read(db: &redb::Database, key: &str) -> Result<Option<KvEntry>, StoreError> {
    let txn = db.begin_read()?;
    let kv = txn.open_table(KV)?;
    match kv.get(key)? {
        Some(bytes) => {
            let stored: StoredValue = serde_json::from_slice(bytes.value())?;
            Ok(Some(KvEntry { key: key.to_string(), value: stored.value, version: stored.version }))
        }
        None => Ok(None),
    }
}

/// Reads every key that starts with `prefix`, in key order.
pub fn list(db: &redb::Database, prefix: &str) -> Result<Vec<KvEntry>, StoreError> {
    let txn = db.begin_read()?;
    let kv = txn.open_table(KV)?;
    let mut items = Vec::new();
    for item in kv.range(prefix..)? {
        let (key, bytes) = item?;
        if !key.value().starts_with(prefix) {
            break;
        }
        let stored: StoredValue = serde_json::from_slice(bytes.value())?;
        items.push(KvEntry { key: key.value().to_string(), value: stored.value, version: stored.version });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use books_db_client::api::Compare;
    use redb::{Database, ReadableTableMetadata};
    use serde_json::json;

    struct Fixture {
        _dir: tempfile::TempDir,
        db: Database,
        index: u64,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::create(dir.path().join("kv.redb")).unwrap();
            Fixture { _dir: dir, db, index: 0 }
        }

        fn apply(&mut self, request_id: Option<&str>, at_ms: u64, operation: Operation) -> CommandResult {
            self.index += 1;
            let command = Command { request_id: request_id.map(str::to_string), at_ms, operation };
            let txn = self.db.begin_write().unwrap();
            let result = apply_command(&txn, self.index, &command).unwrap();
            txn.commit().unwrap();
            result
        }

        fn run(&mut self, operation: Operation) -> CommandResult {
            self.apply(None, 1, operation)
        }

        fn value(&self, key: &str) -> Option<Value> {
            read(&self.db, key).unwrap().map(|e| e.value)
        }
    }

    fn set(key: &str, value: Value) -> Operation {
        Operation::Set { key: key.into(), value }
    }

    #[test]
    fn set_update_delete() {
        let mut f = Fixture::new();
        assert_eq!(f.run(set("a", json!(1))), CommandResult::Written { version: 1 });
        assert_eq!(read(&f.db, "a").unwrap(), Some(KvEntry { key: "a".into(), value: json!(1), version: 1 }));
        let update = |v: Option<u64>| Operation::Update { key: "a".into(), value: json!(2), if_version: v };
        assert_eq!(f.run(update(Some(7))), CommandResult::VersionMismatch { expected: 7, actual: 1 });
        assert_eq!(f.value("a"), Some(json!(1)));
        assert_eq!(f.run(update(Some(1))), CommandResult::Written { version: 3 });
        assert_eq!(f.run(update(None)), CommandResult::Written { version: 4 });
        let missing = Operation::Update { key: "zzz".into(), value: json!(0), if_version: None };
        assert_eq!(f.run(missing), CommandResult::NotFound);
        assert_eq!(f.value("zzz"), None);
        assert_eq!(f.run(Operation::Delete { key: "a".into() }), CommandResult::Written { version: 6 });
        assert_eq!(f.run(Operation::Delete { key: "a".into() }), CommandResult::NotFound);
        assert_eq!(f.value("a"), None);
    }

    #[test]
    fn a_retried_request_is_applied_once_and_answered_the_same() {
        let mut f = Fixture::new();
        f.run(set("stock", json!(5)));
        let take = Operation::Txn(TxnRequest {
            compare: vec![Compare { key: "stock".into(), check: Check::AtLeast(2) }],
            success: vec![TxnOp::Add { key: "stock".into(), delta: -2 }],
            failure: vec![],
        });
        let first = f.apply(Some("client:1"), 1_000, take.clone());
        let retry = f.apply(Some("client:1"), 2_000, take.clone());
        assert_eq!(first, retry);
        assert_eq!(f.value("stock"), Some(json!(3)));
        f.apply(Some("client:2"), 3_000, take);
        assert_eq!(f.value("stock"), Some(json!(1)));
    }

    #[test]
    fn idempotency_keys_expire_after_their_ttl_and_enough_entries() {
        let mut f = Fixture::new();
        f.apply(Some("old"), 1_000, set("k", json!("first")));
        f.apply(Some("old"), 1_000 + REQUEST_TTL_MS + 1, set("k", json!("second")));
        assert_eq!(f.value("k"), Some(json!("first")), "too few entries since: still remembered");
        f.index += REQUEST_MIN_KEPT_ENTRIES;
        f.apply(Some("old"), 1_000 + REQUEST_TTL_MS + 1, set("k", json!("third")));
        assert_eq!(f.value("k"), Some(json!("third")), "an expired key no longer suppresses a write");
        let txn = f.db.begin_read().unwrap();
        assert_eq!(txn.open_table(REQUESTS_BY_TIME).unwrap().len().unwrap(), 1);
    }

    #[test]
    fn txn_applies_success_or_failure_branch_atomically() {
        let mut f = Fixture::new();
        f.run(set("stock/1", json!(3)));
        f.run(set("stock/2", json!(1)));
        let reserve = |q1: i64, q2: i64| {
            Operation::Txn(TxnRequest {
                compare: vec![
                    Compare { key: "stock/1".into(), check: Check::AtLeast(q1) },
                    Compare { key: "stock/2".into(), check: Check::AtLeast(q2) },
                    Compare { key: "order/9".into(), check: Check::Exists(false) },
                ],
                success: vec![
                    TxnOp::Add { key: "stock/1".into(), delta: -q1 },
                    TxnOp::Add { key: "stock/2".into(), delta: -q2 },
                    TxnOp::Put { key: "order/9".into(), value: json!("reserved") },
                ],
                failure: vec![TxnOp::Put { key: "last-failure".into(), value: json!("short") }],
            })
        };
        let CommandResult::Txn(resp) = f.run(reserve(2, 2)) else { panic!() };
        assert!(!resp.succeeded);
        assert_eq!(resp.failed_compares, vec![1]);
        assert_eq!((f.value("stock/1"), f.value("stock/2")), (Some(json!(3)), Some(json!(1))));
        assert_eq!(f.value("last-failure"), Some(json!("short")));

        let CommandResult::Txn(resp) = f.run(reserve(2, 1)) else { panic!() };
        assert!(resp.succeeded);
        assert_eq!((f.value("stock/1"), f.value("stock/2")), (Some(json!(1)), Some(json!(0))));
        assert_eq!(read(&f.db, "order/9").unwrap().unwrap().version, resp.version);

        let CommandResult::Txn(resp) = f.run(reserve(1, 0)) else { panic!() };
        assert_eq!(resp.failed_compares, vec![2], "the order exists now");
    }

    #[test]
    fn txn_with_a_bad_op_writes_nothing() {
        let mut f = Fixture::new();
        f.run(set("name", json!("text")));
        let bad = Operation::Txn(TxnRequest {
            compare: vec![Compare { key: "name".into(), check: Check::Version(1) }],
            success: vec![
                TxnOp::Put { key: "other".into(), value: json!(1) },
                TxnOp::Add { key: "name".into(), delta: 1 },
            ],
            failure: vec![],
        });
        assert!(matches!(f.run(bad), CommandResult::TxnRejected { .. }));
        assert_eq!(f.value("other"), None);
        let missing = Operation::Txn(TxnRequest {
            success: vec![TxnOp::Add { key: "nope".into(), delta: 1 }],
            ..Default::default()
        });
        assert!(matches!(f.run(missing), CommandResult::TxnRejected { .. }));
    }

    #[test]
    fn txn_ops_see_earlier_ops_of_the_same_txn() {
        let mut f = Fixture::new();
        let ops = Operation::Txn(TxnRequest {
            success: vec![
                TxnOp::Put { key: "n".into(), value: json!(1) },
                TxnOp::Add { key: "n".into(), delta: 4 },
                TxnOp::Put { key: "gone".into(), value: json!(1) },
                TxnOp::Delete { key: "gone".into() },
            ],
            ..Default::default()
        });
        assert!(matches!(f.run(ops), CommandResult::Txn(TxnResponse { succeeded: true, .. })));
        assert_eq!(f.value("n"), Some(json!(5)));
        assert_eq!(f.value("gone"), None);
    }

    #[test]
    fn compares_check_version_existence_and_value() {
        let mut f = Fixture::new();
        f.run(set("a", json!({"x": 1})));
        let check = |check: Check| {
            let txn = f.db.begin_read().unwrap();
            let kv = txn.open_table(KV).unwrap();
            let current = kv.get("a").unwrap().map(|b| serde_json::from_slice::<StoredValue>(b.value()).unwrap());
            holds(&Compare { key: "a".into(), check }, current.as_ref())
        };
        assert!(check(Check::Version(1)));
        assert!(!check(Check::Version(0)));
        assert!(check(Check::Exists(true)));
        assert!(check(Check::Value(json!({"x": 1}))));
        assert!(!check(Check::Value(json!({"x": 2}))));
        assert!(!check(Check::AtLeast(0)), "not an integer");
        assert!(holds(&Compare { key: "b".into(), check: Check::Version(0) }, None));
    }

    #[test]
    fn list_returns_keys_with_the_prefix_in_order() {
        let mut f = Fixture::new();
        for key in ["book/2", "book/1", "bookmark", "author/1", "book0"] {
            f.run(set(key, json!(key)));
        }
        let keys: Vec<String> = list(&f.db, "book/").unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["book/1", "book/2"]);
        assert_eq!(list(&f.db, "").unwrap().len(), 5);
    }
}
