//! What every request handler shares: the Raft node, its state machine, and what it takes to have
//! the cluster do something. Answers are domain results; `api` turns them into HTTP.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::ReadPolicy;
use openraft::errors::{ClientWriteError, Fatal, ForwardToLeader, LinearizableReadError, RaftError};
use openraft::raft::ClientWriteResponse;

use crate::command::{Command, CommandResult};
use crate::peer::PeerAddr;
use crate::secret::ClusterSecret;
use crate::store::{LogStore, StateMachineStore};
use crate::{NodeConfig, NodeId, TypeConfig};

/// The Raft node with its state machine. Here rather than beside [`TypeConfig`] in the crate root,
/// so that the root does not depend on `store`, which depends on the root's types.
pub type Raft = openraft::Raft<TypeConfig, StateMachineStore>;

/// A learner may need to receive a snapshot and the log before `add_learner` returns.
pub const MEMBERSHIP_TIMEOUT: Duration = books_db_client::MEMBERSHIP_TIMEOUT;

pub struct App {
    pub id: NodeId,
    pub raft: Raft,
    pub state: StateMachineStore,
    /// The log, for reading (Raft owns the writing).
    pub log: LogStore,
    pub config: NodeConfig,
    /// For forwarding requests to the leader.
    pub http: reqwest::Client,
    /// What `/raft/*` and membership changes need, if the node was given one.
    pub secret: Option<ClusterSecret>,
}

/// Where a request is served.
pub enum Placed<T> {
    /// Here: this node is the leader and did it.
    Here(T),
    /// At the leader, to which the request must be forwarded.
    Leader(PeerAddr),
}

/// Why the cluster did not do what was asked. The messages are what clients are told.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the cluster has no leader right now; retry")]
    NoLeader,
    /// The entry was proposed but a new leader discarded it: whether it applies is unknown.
    #[error(
        "the leader changed while the write was pending; it may or may not have been applied: retry it with the same Idempotency-Key"
    )]
    LeaderChanged,
    #[error("{0}")]
    WriteRefused(ClientWriteError<TypeConfig>),
    #[error("{0}")]
    MembershipRefused(ClientWriteError<TypeConfig>),
    /// No quorum confirmed this node's leadership for a linearizable read.
    #[error("{0}")]
    NoQuorum(String),
    /// This node's Raft has stopped (shut down, or a storage failure).
    #[error("{0}")]
    Stopped(Fatal<TypeConfig>),
    #[error("the cluster did not confirm the {what} within {ms} ms (no quorum?); retry with the same Idempotency-Key")]
    Timeout { what: &'static str, ms: u64 },
    #[error("the membership change did not finish in time")]
    MembershipTimeout,
}

impl App {
    /// Commits a command through Raft if this node leads; otherwise says where the leader is.
    pub async fn write(&self, command: Command) -> Result<Placed<CommandResult>, ClusterError> {
        if let Some(leader) = self.leader_elsewhere().await? {
            return Ok(Placed::Leader(leader));
        }
        let written = tokio::time::timeout(self.config.request_timeout(), self.raft.client_write(command)).await;
        match written {
            Ok(Ok(response)) => Ok(Placed::Here(response.data)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                leader_of(forward).map(Placed::Leader)
            }
            Ok(Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)))) => Err(ClusterError::LeaderChanged),
            Ok(Err(RaftError::APIError(e))) => Err(ClusterError::WriteRefused(e)),
            Ok(Err(RaftError::Fatal(e))) => Err(ClusterError::Stopped(e)),
            Err(_) => Err(self.timed_out("write")),
        }
    }

    /// Makes a following local read linearizable (ReadIndex), or says where the leader is.
    pub async fn linearize(&self) -> Result<Placed<()>, ClusterError> {
        if let Some(leader) = self.leader_elsewhere().await? {
            return Ok(Placed::Leader(leader));
        }
        let confirmed =
            tokio::time::timeout(self.config.request_timeout(), self.raft.ensure_linearizable(ReadPolicy::ReadIndex))
                .await;
        match confirmed {
            Ok(Ok(_)) => Ok(Placed::Here(())),
            Ok(Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(forward)))) => {
                leader_of(forward).map(Placed::Leader)
            }
            Ok(Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(e)))) => {
                Err(ClusterError::NoQuorum(e.to_string()))
            }
            Ok(Err(RaftError::Fatal(e))) => Err(ClusterError::Stopped(e)),
            Err(_) => Err(self.timed_out("read")),
        }
    }

    /// Adds `node` as a learner, once it has caught up; answers the log index of the change.
    pub async fn add_learner(&self, id: NodeId, node: PeerAddr) -> Result<Placed<u64>, ClusterError> {
        membership_placed(tokio::time::timeout(MEMBERSHIP_TIMEOUT, self.raft.add_learner(id, node, true)).await)
    }

    /// Makes `voters` the voting members; answers the log index of the change.
    pub async fn change_membership(&self, voters: BTreeSet<NodeId>) -> Result<Placed<u64>, ClusterError> {
        membership_placed(tokio::time::timeout(MEMBERSHIP_TIMEOUT, self.raft.change_membership(voters, false)).await)
    }

    /// The leader's address when another node leads, `None` when this one does. While no leader
    /// is known it waits for one, within the request timeout, rather than failing at once: a
    /// follower that has not yet heard from a just-elected leader would otherwise refuse clients
    /// of a healthy cluster.
    async fn leader_elsewhere(&self) -> Result<Option<PeerAddr>, ClusterError> {
        let forward = match self.raft.as_leader() {
            Ok(_) => return Ok(None),
            Err(forward) => forward,
        };
        if let Some(leader) = forward.leader_node {
            return Ok(Some(leader));
        }
        let metrics = self
            .raft
            .wait(Some(self.config.request_timeout()))
            .metrics(|m| m.current_leader.is_some(), "a known leader")
            .await
            .map_err(|_| ClusterError::NoLeader)?;
        match metrics.current_leader {
            Some(id) if id == self.id => Ok(None),
            Some(id) => metrics.membership_config.get_node(&id).cloned().map(Some).ok_or(ClusterError::NoLeader),
            None => Err(ClusterError::NoLeader),
        }
    }

    fn timed_out(&self, what: &'static str) -> ClusterError {
        ClusterError::Timeout { what, ms: self.config.request_timeout_ms }
    }
}

type MembershipChange = Result<
    Result<ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
    tokio::time::error::Elapsed,
>;

fn membership_placed(change: MembershipChange) -> Result<Placed<u64>, ClusterError> {
    match change {
        Ok(Ok(written)) => Ok(Placed::Here(written.log_id.index())),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
            leader_of(forward).map(Placed::Leader)
        }
        Ok(Err(RaftError::APIError(e))) => Err(ClusterError::MembershipRefused(e)),
        Ok(Err(RaftError::Fatal(e))) => Err(ClusterError::Stopped(e)),
        Err(_) => Err(ClusterError::MembershipTimeout),
    }
}

fn leader_of(forward: ForwardToLeader<TypeConfig>) -> Result<PeerAddr, ClusterError> {
    forward.leader_node.ok_or(ClusterError::NoLeader)
}
