//! The snapshot as it travels between nodes: what `network` sends and `api::raft_rpc` receives.
//! A module of its own so that neither side depends on the other for it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{SnapshotMeta, Vote};

/// `POST /raft/snapshot` body: a whole snapshot in one request (the books database is small).
#[derive(Serialize, Deserialize)]
pub struct SnapshotRequest {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    /// The state machine's snapshot, which is JSON: embedded as is rather than as an array of
    /// byte values.
    pub data: Box<RawValue>,
}
