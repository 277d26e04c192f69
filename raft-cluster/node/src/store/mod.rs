//! Durable storage of a node, in two redb files: the Raft log with the vote, and the state machine
//! with its latest snapshot.
//!
//! Every log append and vote is fsynced before openraft hears it is done. The state machine
//! commits without an fsync (redb makes such commits durable with the next durable one), and
//! durably at every snapshot and every few thousand entries. After a crash it is therefore at a
//! consistent earlier point of the log, and openraft applies the rest again from the log. Two
//! files, because redb has one writer per file: the state machine's commits must not wait behind
//! the log's fsyncs.

mod error;
mod kv;
mod log_store;
mod meta;
mod state_machine;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable};

use self::meta::META;

pub use error::StoreError;
pub use kv::{REQUEST_MIN_KEPT_ENTRIES, REQUEST_TTL_MS, list, read};
pub use log_store::LogStore;
pub use state_machine::{StateMachineStore, validate_snapshot};

/// The log's file in a data dir; its presence marks a raft-node data dir.
pub const LOG_FILE: &str = "raft-log.redb";
/// The state machine's file in a data dir.
pub const STATE_FILE: &str = "raft-state.redb";

const NODE_ID: &str = "node.id";

/// Why a data dir cannot be used; each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create or read data dir {dir}: {source}")]
    Access { dir: PathBuf, source: io::Error },
    #[error("data dir {dir} is not empty and holds no {LOG_FILE}: refusing to use a foreign directory")]
    Foreign { dir: PathBuf },
    #[error("data dir {dir} cannot be opened (corrupt, or not a raft-node data dir): {source}")]
    Corrupt { dir: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("data dir {dir} is in use by another process (is this node already running?)")]
    InUse { dir: PathBuf },
    #[error("data dir {dir} belongs to node {stored}, not to --id {requested}")]
    WrongNode { dir: PathBuf, stored: u64, requested: u64 },
}

/// Opens (or creates) the node's storage in `dir`, checking that it is this node's.
pub fn open(dir: &Path, node_id: u64) -> Result<(LogStore, StateMachineStore), OpenError> {
    std::fs::create_dir_all(dir).map_err(|source| OpenError::Access { dir: dir.into(), source })?;
    let path = dir.join(LOG_FILE);
    if !path.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|source| OpenError::Access { dir: dir.into(), source })?;
        if entries.next().is_some() {
            return Err(OpenError::Foreign { dir: dir.into() });
        }
    }
    let corrupt = |e: Box<dyn std::error::Error + Send + Sync>| OpenError::Corrupt { dir: dir.into(), source: e };
    let create = |path: PathBuf| {
        Database::create(path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => OpenError::InUse { dir: dir.into() },
            e => corrupt(e.into()),
        })
    };
    let log_db = create(path)?;
    let stored_id = claim(&log_db, node_id).map_err(|e| corrupt(e.into()))?;
    if stored_id != node_id {
        return Err(OpenError::WrongNode { dir: dir.into(), stored: stored_id, requested: node_id });
    }
    let state_db = create(dir.join(STATE_FILE))?;
    let log = LogStore::open(Arc::new(log_db)).map_err(|e| corrupt(e.into()))?;
    let sm = StateMachineStore::open(Arc::new(state_db)).map_err(|e| corrupt(e.into()))?;
    Ok((log, sm))
}

/// Records which node owns the log file, unless one is recorded; returns the owner.
fn claim(db: &Database, node_id: u64) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let owner = {
        let mut meta = txn.open_table(META)?;
        let stored = meta.get(NODE_ID)?.map(|v| serde_json::from_slice::<u64>(v.value())).transpose()?;
        match stored {
            Some(owner) => owner,
            None => {
                meta.insert(NODE_ID, serde_json::to_vec(&node_id)?.as_slice())?;
                node_id
            }
        }
    };
    txn.open_table(log_store::LOG)?;
    txn.commit()?;
    Ok(owner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::testing::log::{StoreBuilder, Suite};

    struct TempStores;

    impl StoreBuilder<crate::TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for TempStores {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), openraft::StorageError<crate::TypeConfig>>
        {
            use openraft::errors::ErrorSource;
            let fail = |e: &dyn std::fmt::Display| openraft::StorageError::read(ErrorSource::from_string(e));
            let dir = tempfile::tempdir().map_err(|e| fail(&e))?;
            let (log, sm) = open(dir.path(), 0).map_err(|e| fail(&e))?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn passes_openraft_storage_suite() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(Suite::test_all(TempStores)).unwrap();
    }

    #[test]
    fn a_data_dir_belongs_to_one_node() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), 1).unwrap());
        assert!(open(dir.path(), 1).is_ok(), "reopening as the same node works");
        let err = open(dir.path(), 2).err().unwrap();
        assert!(matches!(err, OpenError::WrongNode { stored: 1, requested: 2, .. }), "{err}");
    }

    #[test]
    fn foreign_and_corrupt_dirs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        assert!(matches!(open(dir.path(), 1), Err(OpenError::Foreign { .. })));

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOG_FILE), vec![7u8; 10_000]).unwrap();
        let err = open(dir.path(), 1).err().unwrap();
        assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
        assert_eq!(err.to_string().lines().count(), 1);
    }
}
