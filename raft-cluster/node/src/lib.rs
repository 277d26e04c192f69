//! A node of the books database: an openraft Raft node with its log and state machine in redb,
//! serving the key-value API and the Raft RPCs over HTTP (on one address, or the Raft RPCs on a
//! listener of their own).
//!
//! - [`store`]: durable log and state machine
//! - [`network`]: how this node sends Raft RPCs to its peers
//! - [`snapshot`]: the snapshot as it travels between nodes
//! - [`api`]: the HTTP routes (client API, cluster admin, Raft RPCs), forwarding to the leader,
//!   and how domain results become HTTP answers
//! - [`app`]: what the handlers share, and what the cluster answers (`Placed`, `ClusterError`)
//! - [`command`]: what the Raft log carries
//! - [`metrics`]: the node's Raft state as OpenTelemetry gauges
//! - [`node`]: starting a node from its [`config`]
//! - [`peer`]: how the cluster reaches a node (what the membership stores)
//! - [`secret`]: the cluster secret that guards the Raft RPCs and membership changes

pub mod api;
pub mod app;
pub mod command;
pub mod config;
pub mod health;
pub mod metrics;
pub mod network;
pub mod node;
pub mod peer;
pub mod secret;
pub mod snapshot;
pub mod store;

pub use config::NodeConfig;

pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The Raft types of the books database.
    pub TypeConfig:
        D = command::Command,
        R = command::CommandResult,
        Node = peer::PeerAddr,
);

pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, std::io::Cursor<Vec<u8>>>;
