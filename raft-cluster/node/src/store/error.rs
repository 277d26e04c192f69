//! What can go wrong reading or writing a node's storage.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Db(#[from] redb::Error),
    #[error("stored data cannot be decoded: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error("the storage writer has stopped")]
    WriterStopped,
    #[error("cannot start the storage writer thread: {0}")]
    Thread(std::io::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
from_redb!(redb::TableError, redb::StorageError, redb::TransactionError, redb::CommitError);

impl From<StoreError> for io::Error {
    fn from(e: StoreError) -> Self {
        io::Error::other(e)
    }
}
