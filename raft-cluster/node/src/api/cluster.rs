//! `/cluster/*`: a node's view of the cluster, and membership changes.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use books_db_client::api::{AddLearnerRequest, ChangeMembershipRequest, ClusterStatus, Member, validate_addr};
use openraft::ServerState;
use openraft::type_config::async_runtime::WatchReceiver;
use openraft::vote::RaftLeaderId;

use super::error::{ApiError, parse_json};
use super::forward;
use super::request::Incoming;
use crate::NodeId;
use crate::app::{App, MEMBERSHIP_TIMEOUT, Placed};
use crate::peer::PeerAddr;

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
        // Term 0 is before any election: no vote cast yet.
        voted_for: (metrics.vote.leader_id().term() > 0).then(|| *metrics.vote.leader_id().node_id()),
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
    let placed = app.add_learner(id, PeerAddr { addr, raft_addr }).await?;
    membership_answer(&app, placed, &request).await
}

pub async fn change_membership(State(app): State<Arc<App>>, request: Incoming) -> Result<Response, ApiError> {
    let ChangeMembershipRequest { voters } = parse_json(&request.body)?;
    if voters.is_empty() {
        return Err(ApiError::bad_request("invalid_body", "voters must not be empty"));
    }
    let placed = app.change_membership(voters.into_iter().collect()).await?;
    membership_answer(&app, placed, &request).await
}

async fn membership_answer(app: &App, placed: Placed<u64>, request: &Incoming) -> Result<Response, ApiError> {
    match placed {
        Placed::Here(version) => Ok(Json(serde_json::json!({ "version": version })).into_response()),
        Placed::Leader(leader) => Ok(forward::to_leader(app, &leader, request, MEMBERSHIP_TIMEOUT).await),
    }
}
