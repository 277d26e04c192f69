//! `/cluster/*`: a node's view of the cluster, and membership changes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use books_db_client::api::{AddLearnerRequest, ChangeMembershipRequest, ClusterStatus, Member, validate_addr};
use openraft::ServerState;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::type_config::async_runtime::WatchReceiver;

use super::error::parse_json;
use super::{ApiError, Incoming};
use crate::app::App;
use crate::peer::PeerAddr;
use crate::{NodeId, TypeConfig};

/// A learner may need to receive a snapshot and the log before `add_learner` returns.
pub const MEMBERSHIP_TIMEOUT: Duration = books_db_client::MEMBERSHIP_TIMEOUT;

pub async fn status(State(app): State<Arc<App>>) -> Json<ClusterStatus> {
    let metrics = app.raft.metrics().borrow_watched().clone();
    let membership = metrics.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let (members, learners) = membership
        .nodes()
        .map(|(id, node)| Member { id: *id, addr: node.addr.clone(), raft_addr: node.raft_addr.clone() })
        .partition(|m| voters.contains(&m.id));
    let role = match metrics.state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    };
    Json(ClusterStatus {
        id: app.id,
        role: role.into(),
        leader: metrics.current_leader,
        term: metrics.current_term,
        members,
        learners,
        last_log_index: metrics.last_log_index,
        last_applied: metrics.last_applied.map(|id| id.index()),
        committed: metrics.local_committed.map(|id| id.index()),
        snapshot: metrics.snapshot.map(|id| id.index()),
        purged: metrics.purged.map(|id| id.index()),
    })
}

pub async fn add_learner(State(app): State<Arc<App>>, request: Incoming) -> Result<Response, ApiError> {
    let AddLearnerRequest { id, addr, raft_addr } = parse_json(&request.body)?;
    for a in std::iter::once(&addr).chain(&raft_addr) {
        validate_addr(a).map_err(|e| ApiError::bad_request("invalid_addr", e))?;
    }
    let node = PeerAddr { addr, raft_addr };
    let change = tokio::time::timeout(MEMBERSHIP_TIMEOUT, app.raft.add_learner(id, node, true)).await;
    membership_answer(&app, change, &request).await
}

pub async fn change_membership(State(app): State<Arc<App>>, request: Incoming) -> Result<Response, ApiError> {
    let ChangeMembershipRequest { voters } = parse_json(&request.body)?;
    if voters.is_empty() {
        return Err(ApiError::bad_request("invalid_body", "voters must not be empty"));
    }
    let voters: BTreeSet<NodeId> = voters.into_iter().collect();
    let change = tokio::time::timeout(MEMBERSHIP_TIMEOUT, app.raft.change_membership(voters, false)).await;
    membership_answer(&app, change, &request).await
}

type Change = Result<
    Result<openraft::raft::ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
    tokio::time::error::Elapsed,
>;

async fn membership_answer(app: &App, change: Change, request: &Incoming) -> Result<Response, ApiError> {
    match change {
        Ok(Ok(written)) => Ok(Json(serde_json::json!({ "version": written.log_id.index() })).into_response()),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward)))) => match forward.leader_node {
            Some(leader) => Ok(app.forward(&leader, request, MEMBERSHIP_TIMEOUT).await),
            None => Err(crate::app::no_leader()),
        },
        Ok(Err(RaftError::APIError(e))) => {
            Err(ApiError::new(StatusCode::CONFLICT, "membership_change_refused", e.to_string()))
        }
        Ok(Err(RaftError::Fatal(e))) => Err(ApiError::unavailable("node_stopped", e.to_string())),
        Err(_) => Err(ApiError::unavailable("timeout", "the membership change did not finish in time")),
    }
}
