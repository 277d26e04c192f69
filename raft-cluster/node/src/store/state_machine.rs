//! The replicated state machine: applies committed entries to the key-value tables, builds and
//! installs snapshots.

use std::io::{self, Cursor};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::TryStreamExt;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::kv::{self, AppliedRequest, KV, REQUESTS, REQUESTS_BY_TIME, StoredValue, remember_request};
use super::meta::{META, get_meta, put_meta};
use crate::command::CommandResult;
use crate::{Entry, LogId, Snapshot, SnapshotMeta, StoredMembership, TypeConfig};

const APPLIED: &str = "sm.applied";
const MEMBERSHIP: &str = "sm.membership";
const SNAPSHOT_META: &str = "snapshot.meta";
const SNAPSHOT_DATA: &str = "snapshot.data";

/// Entries applied between two durable commits of the state machine: bounds how much of the log a
/// restarted node applies again.
const DURABLE_EVERY: u64 = 4096;

/// Handle on the state machine; clones share the same database.
#[derive(Clone)]
pub struct StateMachineStore {
    db: Arc<Database>,
    /// Entries applied since the last durable commit.
    not_durable: Arc<AtomicU64>,
}

/// A snapshot's contents: every key and every remembered idempotency key, so a node that installs
/// it answers retries exactly like the nodes that applied the log.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct SnapshotContents {
    kv: Vec<(String, StoredValue)>,
    requests: Vec<(String, AppliedRequest)>,
}

impl SnapshotContents {
    fn decode(data: &[u8]) -> Result<Self, StoreError> {
        Ok(serde_json::from_slice(data)?)
    }
}

/// Checks that `data` is a snapshot this node can install, before openraft is handed it: a
/// snapshot that fails to install stops the state machine.
pub fn validate_snapshot(data: &[u8]) -> Result<(), StoreError> {
    SnapshotContents::decode(data).map(drop)
}

impl StateMachineStore {
    pub(crate) fn open(db: Arc<Database>) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        txn.open_table(META)?;
        txn.open_table(KV)?;
        txn.open_table(REQUESTS)?;
        txn.open_table(REQUESTS_BY_TIME)?;
        txn.commit()?;
        Ok(Self { db, not_durable: Arc::new(AtomicU64::new(0)) })
    }

    /// The database, for reads of the applied state.
    pub fn database(&self) -> &Database {
        &self.db
    }

    fn applied(&self) -> Result<(Option<LogId>, StoredMembership), StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok((get_meta(&meta, APPLIED)?, get_meta(&meta, MEMBERSHIP)?.unwrap_or_default()))
    }

    /// Applies a batch of committed entries in one transaction. Most commits are not fsynced: see
    /// the module docs of `store` for why that is safe.
    fn apply_entries(&self, entries: &[Entry]) -> Result<Vec<CommandResult>, StoreError> {
        let mut txn = self.db.begin_write()?;
        let pending = self.not_durable.fetch_add(entries.len() as u64, Ordering::Relaxed) + entries.len() as u64;
        if pending < DURABLE_EVERY {
            txn.set_durability(Durability::None).map_err(|e| StoreError::Db(redb::Error::from(e)))?;
        } else {
            self.not_durable.store(0, Ordering::Relaxed);
        }
        let mut results = Vec::with_capacity(entries.len());
        let mut membership = None;
        for entry in entries {
            results.push(match &entry.payload {
                EntryPayload::Blank => CommandResult::None,
                EntryPayload::Normal(command) => kv::apply_command(&txn, entry.log_id.index(), command)?,
                EntryPayload::Membership(m) => {
                    membership = Some(StoredMembership::new(Some(entry.log_id), m.clone()));
                    CommandResult::None
                }
            });
        }
        {
            let mut meta = txn.open_table(META)?;
            if let Some(last) = entries.last() {
                put_meta(&mut meta, APPLIED, &last.log_id)?;
            }
            if let Some(membership) = membership {
                put_meta(&mut meta, MEMBERSHIP, &membership)?;
            }
        }
        txn.commit()?;
        Ok(results)
    }

    fn build(&self) -> Result<Snapshot, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let last_log_id: Option<LogId> = get_meta(&meta, APPLIED)?;
        let last_membership: StoredMembership = get_meta(&meta, MEMBERSHIP)?.unwrap_or_default();
        let mut contents = SnapshotContents::default();
        for item in txn.open_table(KV)?.iter()? {
            let (key, value) = item?;
            contents.kv.push((key.value().to_string(), serde_json::from_slice(value.value())?));
        }
        for item in txn.open_table(REQUESTS)?.iter()? {
            let (id, applied) = item?;
            contents.requests.push((id.value().to_string(), serde_json::from_slice(applied.value())?));
        }
        drop(txn);

        let meta = SnapshotMeta { last_log_id, last_membership };
        let data = serde_json::to_vec(&contents)?;
        if !self.save_snapshot(&meta, &data, None)? {
            tracing::info!(last_log_index = ?meta.last_log_id.map(|id| id.index()), "a newer snapshot was installed meanwhile; not keeping this one");
        }
        tracing::info!(last_log_index = ?meta.last_log_id.map(|id| id.index()), bytes = data.len(), keys = contents.kv.len(), "built snapshot");
        Ok(Snapshot { meta, snapshot: Cursor::new(data) })
    }

    /// Stores a snapshot as the current one; with `contents`, also replaces the state with it.
    /// A built snapshot (no `contents`) is not stored over a newer one, which an install may have
    /// put there while it was being built. Answers whether the snapshot was stored.
    fn save_snapshot(
        &self,
        meta: &SnapshotMeta,
        data: &[u8],
        contents: Option<&SnapshotContents>,
    ) -> Result<bool, StoreError> {
        // Durable: openraft purges the log up to a snapshot, so the state it reflects must be on
        // disk first; this commit also makes every earlier non-durable one durable.
        let txn = self.db.begin_write()?;
        self.not_durable.store(0, Ordering::Relaxed);
        if contents.is_none() {
            let table = txn.open_table(META)?;
            let stored: Option<SnapshotMeta> = get_meta(&table, SNAPSHOT_META)?;
            if stored.is_some_and(|stored| stored.last_log_id >= meta.last_log_id) {
                return Ok(false);
            }
        }
        if let Some(contents) = contents {
            replace_state(&txn, contents)?;
            let mut table = txn.open_table(META)?;
            put_meta(&mut table, APPLIED, &meta.last_log_id)?;
            put_meta(&mut table, MEMBERSHIP, &meta.last_membership)?;
        }
        {
            let mut table = txn.open_table(META)?;
            put_meta(&mut table, SNAPSHOT_META, meta)?;
            table.insert(SNAPSHOT_DATA, data)?;
        }
        txn.commit()?;
        Ok(true)
    }

    fn current_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let Some(snapshot_meta) = get_meta::<SnapshotMeta>(&meta, SNAPSHOT_META)? else {
            return Ok(None);
        };
        let data = meta.get(SNAPSHOT_DATA)?.map(|d| d.value().to_vec()).unwrap_or_default();
        Ok(Some(Snapshot { meta: snapshot_meta, snapshot: Cursor::new(data) }))
    }
}

fn replace_state(txn: &WriteTransaction, contents: &SnapshotContents) -> Result<(), StoreError> {
    let mut kv_table = txn.open_table(KV)?;
    kv_table.retain(|_, _| false)?;
    for (key, value) in &contents.kv {
        kv_table.insert(key.as_str(), serde_json::to_vec(value)?.as_slice())?;
    }
    let mut requests = txn.open_table(REQUESTS)?;
    let mut by_time = txn.open_table(REQUESTS_BY_TIME)?;
    requests.retain(|_, _| false)?;
    by_time.retain(|_, _| false)?;
    for (id, applied) in &contents.requests {
        remember_request(&mut requests, &mut by_time, id, applied)?;
    }
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.build()).await.map_err(io::Error::other)?.map_err(Into::into)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok(self.applied()?)
    }

    async fn apply<Strm>(&mut self, mut stream: Strm) -> Result<(), io::Error>
    where
        Strm: futures::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut entries = Vec::new();
        let mut responders = Vec::new();
        while let Some((entry, responder)) = stream.try_next().await? {
            entries.push(entry);
            responders.push(responder);
        }
        if entries.is_empty() {
            return Ok(());
        }
        let this = self.clone();
        let results =
            tokio::task::spawn_blocking(move || this.apply_entries(&entries)).await.map_err(io::Error::other)??;
        for (responder, result) in responders.into_iter().zip(results) {
            if let Some(responder) = responder {
                responder.send(result);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Cursor<Vec<u8>>) -> Result<(), io::Error> {
        let this = self.clone();
        let meta = meta.clone();
        tokio::task::spawn_blocking(move || {
            let data = snapshot.into_inner();
            let contents = SnapshotContents::decode(&data)?;
            tracing::info!(last_log_index = ?meta.last_log_id.map(|id| id.index()), keys = contents.kv.len(), "installing snapshot");
            this.save_snapshot(&meta, &data, Some(&contents))
        })
        .await
        .map_err(io::Error::other)??;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let this = self.clone();
        Ok(tokio::task::spawn_blocking(move || this.current_snapshot()).await.map_err(io::Error::other)??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, Operation};
    use openraft::entry::RaftEntry;
    use serde_json::json;

    fn entry_with_id(index: u64, request_id: &str, operation: Operation) -> Entry {
        let command = Command { request_id: Some(request_id.into()), at_ms: 1_000 + index, operation };
        Entry::new_normal(LogId::new(openraft::vote::RaftLeaderId::new(1, 1), index), command)
    }

    fn entry(index: u64, operation: Operation) -> Entry {
        entry_with_id(index, &format!("c:{index}"), operation)
    }

    fn set(key: &str, value: serde_json::Value) -> Operation {
        Operation::Set { key: key.into(), value }
    }

    #[test]
    fn snapshot_build_then_install_gives_an_equal_state() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let source_dir = tempfile::tempdir().unwrap();
            let (_log, mut source) = crate::store::open(source_dir.path(), 1).unwrap();
            let entries = vec![
                entry(1, set("book/1", json!({"title": "Dune", "stock": 3}))),
                entry(2, set("book/2", json!("Emma"))),
                entry(3, Operation::Delete { key: "book/2".into() }),
                entry(4, set("stock/1", json!(7))),
            ];
            source.apply_entries(&entries).unwrap();
            let snapshot = source.build_snapshot().await.unwrap();
            assert_eq!(snapshot.meta.last_log_id.map(|id| id.index()), Some(4));

            let target_dir = tempfile::tempdir().unwrap();
            let (_log2, mut target) = crate::store::open(target_dir.path(), 2).unwrap();
            target.apply_entries(&[entry(1, set("stale", json!(true)))]).unwrap();
            target.install_snapshot(&snapshot.meta, snapshot.snapshot).await.unwrap();

            assert_eq!(crate::store::list(&source.db, "").unwrap(), crate::store::list(&target.db, "").unwrap());
            assert_eq!(crate::store::read(&target.db, "stale").unwrap(), None);
            assert_eq!(target.applied_state().await.unwrap().0, source.applied_state().await.unwrap().0);
            let current = target.get_current_snapshot().await.unwrap().unwrap();
            assert_eq!(current.meta, source.get_current_snapshot().await.unwrap().unwrap().meta);

            // The idempotency keys came along: replaying entry 4 on the target changes nothing.
            let replay = entry_with_id(5, "c:4", set("stock/1", json!(0)));
            let results = target.apply_entries(&[replay]).unwrap();
            assert_eq!(results, vec![CommandResult::Written { version: 4 }]);
            assert_eq!(crate::store::read(&target.db, "stock/1").unwrap().unwrap().value, json!(7));
        });
    }

    #[test]
    fn a_built_snapshot_never_replaces_a_newer_installed_one() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let (_log_a, mut older) = crate::store::open(dir_a.path(), 1).unwrap();
            let (_log_b, mut newer) = crate::store::open(dir_b.path(), 2).unwrap();
            older.apply_entries(&[entry(1, set("k", json!(1)))]).unwrap();
            let stale = older.build().unwrap();
            newer.apply_entries(&[entry(1, set("k", json!(1))), entry(2, set("k", json!(2)))]).unwrap();
            let fresh = newer.build_snapshot().await.unwrap();

            // The install lands while the older snapshot was being built; then the build saves.
            older.install_snapshot(&fresh.meta, fresh.snapshot).await.unwrap();
            let data = stale.snapshot.into_inner();
            assert!(!older.save_snapshot(&stale.meta, &data, None).unwrap());
            let current = older.get_current_snapshot().await.unwrap().unwrap();
            assert_eq!(current.meta.last_log_id.map(|id| id.index()), Some(2));
            assert!(validate_snapshot(&current.snapshot.into_inner()).is_ok());
            assert!(validate_snapshot(b"{\"kv\": 7}").is_err());
        });
    }
}
