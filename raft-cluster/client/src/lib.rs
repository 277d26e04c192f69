//! Client of the books database, the three-node Raft cluster of `raft-node` processes.
//!
//! [`BooksDb`] talks to any node (each forwards to the leader), fails over to the next node when
//! one is down or has no leader, retries with backoff, and makes writes idempotent so that a retry
//! is applied once. [`api`] holds the wire types shared with the node.

pub mod api;
mod client;
mod error;

pub use client::{BooksDb, ClientOptions, MEMBERSHIP_TIMEOUT};
pub use error::Error;
