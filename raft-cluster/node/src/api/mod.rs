//! The HTTP routes of a node: the key-value API, cluster admin, and the Raft RPCs of its peers.
//! Membership changes and Raft RPCs need the cluster secret when the node has one.

mod auth;
mod cluster;
mod error;
mod forward;
mod kv;
mod log;
mod raft_rpc;
mod request;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{any, get, post};
use axum::{Router, middleware};

use crate::app::App;

use self::error::ApiError;

/// Raft RPCs carry snapshots and batches of entries: far larger than a client's request.
const MAX_RAFT_RPC_BYTES: usize = 512 * 1024 * 1024;

/// The client port's routes; with `with_raft`, the Raft RPCs too (a node without --raft-addr).
pub fn router(app: Arc<App>, with_raft: bool) -> Router {
    let client_api = Router::new()
        .route("/kv", get(kv::list))
        .route("/kv/", any(kv::empty_key))
        .route("/kv/{*key}", get(kv::get).put(kv::set).patch(kv::update).delete(kv::delete))
        .route("/txn", post(kv::txn))
        .route("/cluster/status", get(cluster::status))
        .route("/cluster/log", get(log::window))
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes));
    let membership = Router::new()
        .route("/cluster/learners", post(cluster::add_learner))
        .route("/cluster/membership", post(cluster::change_membership))
        .route_layer(middleware::from_fn_with_state(app.clone(), auth::require_cluster_secret))
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes));
    let routes = client_api.merge(membership);
    let routes = if with_raft { routes.merge(raft_routes(&app)) } else { routes };
    with_fallbacks(routes).with_state(app)
}

/// The Raft RPC listener's routes (a node with --raft-addr).
pub fn raft_router(app: Arc<App>) -> Router {
    with_fallbacks(raft_routes(&app)).with_state(app)
}

fn raft_routes(app: &Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/raft/append", post(raft_rpc::append))
        .route("/raft/vote", post(raft_rpc::vote))
        .route("/raft/pre-vote", post(raft_rpc::pre_vote))
        .route("/raft/snapshot", post(raft_rpc::snapshot))
        .route_layer(middleware::from_fn_with_state(app.clone(), auth::require_cluster_secret))
        .layer(DefaultBodyLimit::max(MAX_RAFT_RPC_BYTES))
}

fn with_fallbacks(routes: Router<Arc<App>>) -> Router<Arc<App>> {
    routes
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
}
