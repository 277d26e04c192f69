//! The table of small records (vote, applied position, membership, snapshot) both files keep.

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::StoreError;

/// Small records, JSON-encoded, by name.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub(crate) fn get_meta<T: DeserializeOwned>(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<T>, StoreError> {
    match meta.get(name)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(bytes.value())?)),
        None => Ok(None),
    }
}

pub(crate) fn put_meta<T: Serialize>(
    meta: &mut redb::Table<&str, &[u8]>,
    name: &str,
    value: &T,
) -> Result<(), StoreError> {
    meta.insert(name, serde_json::to_vec(value)?.as_slice())?;
    Ok(())
}
