//! What every request handler shares: the Raft node, its state machine, and the way to the leader.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use books_db_client::api::IDEMPOTENCY_KEY;
use openraft::ReadPolicy;
use openraft::errors::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};

use crate::api::{ApiError, Incoming};
use crate::command::{Command, CommandResult, Operation, now_ms};
use crate::peer::PeerAddr;
use crate::secret::ClusterSecret;
use crate::store::StateMachineStore;
use crate::{NodeConfig, NodeId, Raft, TypeConfig};

/// Marks a request one node forwarded to another, so it is forwarded at most once.
pub const FORWARDED_BY: &str = "x-forwarded-by";

pub struct App {
    pub id: NodeId,
    pub raft: Raft,
    pub state: StateMachineStore,
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

impl App {
    /// Wraps a client's operation into a log command, with its idempotency key if it sent one.
    pub fn command(&self, headers: &HeaderMap, operation: Operation) -> Result<Command, ApiError> {
        let request_id = match headers.get(IDEMPOTENCY_KEY) {
            None => None,
            Some(v) => match v.to_str() {
                Ok(id) if !id.is_empty() && id.len() <= 200 => Some(id.to_string()),
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be 1 to 200 visible ASCII characters",
                    ));
                }
            },
        };
        Ok(Command { request_id, at_ms: now_ms(), operation })
    }

    /// Commits a command through Raft if this node leads; otherwise says where the leader is.
    pub async fn write(&self, command: Command) -> Result<Placed<CommandResult>, ApiError> {
        if let Some(leader) = self.leader_elsewhere().await? {
            return Ok(Placed::Leader(leader));
        }
        let written = tokio::time::timeout(self.config.request_timeout(), self.raft.client_write(command)).await;
        match written {
            Ok(Ok(response)) => Ok(Placed::Here(response.data)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => {
                leader_of(forward).map(Placed::Leader)
            }
            Ok(Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)))) => Err(ApiError::unavailable(
                "leader_changed",
                "the leader changed while the write was pending; it may or may not have been applied: retry it with the same Idempotency-Key",
            )),
            Ok(Err(RaftError::APIError(e))) => Err(ApiError::new(StatusCode::CONFLICT, "write_refused", e.to_string())),
            Ok(Err(RaftError::Fatal(e))) => Err(ApiError::unavailable("node_stopped", e.to_string())),
            Err(_) => Err(self.timed_out("write")),
        }
    }

    /// Makes a following local read linearizable (ReadIndex), or says where the leader is.
    pub async fn linearize(&self) -> Result<Placed<()>, ApiError> {
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
                Err(ApiError::unavailable("no_quorum", e.to_string()))
            }
            Ok(Err(RaftError::Fatal(e))) => Err(ApiError::unavailable("node_stopped", e.to_string())),
            Err(_) => Err(self.timed_out("read")),
        }
    }

    /// The leader's address when another node leads, `None` when this one does. While no leader
    /// is known it waits for one, within the request timeout, rather than failing at once: a
    /// follower that has not yet heard from a just-elected leader would otherwise refuse clients
    /// of a healthy cluster.
    async fn leader_elsewhere(&self) -> Result<Option<PeerAddr>, ApiError> {
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
            .map_err(|_| no_leader())?;
        match metrics.current_leader {
            Some(id) if id == self.id => Ok(None),
            Some(id) => metrics.membership_config.get_node(&id).cloned().map(Some).ok_or_else(no_leader),
            None => Err(no_leader()),
        }
    }

    fn timed_out(&self, what: &str) -> ApiError {
        let ms = self.config.request_timeout_ms;
        ApiError::unavailable(
            "timeout",
            format!(
                "the cluster did not confirm the {what} within {ms} ms (no quorum?); retry with the same Idempotency-Key"
            ),
        )
    }

    /// Sends a request on to the leader and relays its answer; `timeout` is how long the leader
    /// may take to do it.
    pub async fn forward(&self, leader: &PeerAddr, request: &Incoming, timeout: Duration) -> Response {
        if request.headers.contains_key(FORWARDED_BY) {
            // The node that forwarded this thought we lead; we think someone else does. Let the
            // client retry rather than bounce the request around during an election.
            return ApiError::unavailable("not_leader", format!("node {} is not the leader; retry", self.id))
                .into_response();
        }
        let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut forwarded = self
            .http
            .request(request.method.clone(), format!("http://{}{path}", leader.addr))
            .timeout(timeout + Duration::from_millis(500))
            .header(FORWARDED_BY, self.id.to_string())
            .body(request.body.clone());
        // The secret travels on with a membership change: the leader checks it again.
        let names =
            [axum::http::header::CONTENT_TYPE.as_str(), axum::http::header::AUTHORIZATION.as_str(), IDEMPOTENCY_KEY];
        for name in names {
            if let Some(value) = request.headers.get(name) {
                forwarded = forwarded.header(name, value.as_bytes());
            }
        }
        let answer = match forwarded.send().await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::warn!(leader = %leader.addr, error = %e, "forwarding to the leader failed");
                return ApiError::unavailable(
                    "leader_unreachable",
                    format!("the leader at {} did not answer", leader.addr),
                )
                .into_response();
            }
        };
        let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        match answer.bytes().await {
            Ok(body) => (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => {
                ApiError::unavailable("leader_unreachable", format!("reading the leader's answer: {e}")).into_response()
            }
        }
    }
}

fn leader_of(forward: ForwardToLeader<TypeConfig>) -> Result<PeerAddr, ApiError> {
    forward.leader_node.ok_or_else(no_leader)
}

pub(crate) fn no_leader() -> ApiError {
    ApiError::unavailable("no_leader", "the cluster has no leader right now; retry")
}
