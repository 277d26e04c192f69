//! Sending a request on to the leader, and relaying its answer.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use books_db_client::api::IDEMPOTENCY_KEY;

use super::error::ApiError;
use super::request::Incoming;
use crate::app::App;
use crate::peer::PeerAddr;

/// Marks a request one node forwarded to another, so it is forwarded at most once.
pub const FORWARDED_BY: &str = "x-forwarded-by";

/// Sends `request` on to the leader and relays its answer; `timeout` is how long the leader may
/// take to do it.
pub async fn to_leader(app: &App, leader: &PeerAddr, request: &Incoming, timeout: Duration) -> Response {
    if request.headers.contains_key(FORWARDED_BY) {
        // The node that forwarded this thought we lead; we think someone else does. Let the
        // client retry rather than bounce the request around during an election.
        return ApiError::unavailable("not_leader", format!("node {} is not the leader; retry", app.id))
            .into_response();
    }
    let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forwarded = app
        .http
        .request(request.method.clone(), format!("http://{}{path}", leader.addr))
        .timeout(timeout + Duration::from_millis(500))
        .header(FORWARDED_BY, app.id.to_string())
        .body(request.body.clone());
    // The secret travels on with a membership change: the leader checks it again.
    for name in [header::CONTENT_TYPE.as_str(), header::AUTHORIZATION.as_str(), IDEMPOTENCY_KEY] {
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
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            ApiError::unavailable("leader_unreachable", format!("reading the leader's answer: {e}")).into_response()
        }
    }
}
