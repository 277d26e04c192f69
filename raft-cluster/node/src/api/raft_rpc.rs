//! `/raft/*`: the Raft RPCs this node's peers send it (see `network`).

use std::io::Cursor;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use openraft::errors::RaftError;

use super::error::{ApiError, parse_json};
use crate::app::App;
use crate::snapshot::SnapshotRequest;
use crate::{Snapshot, TypeConfig};

type Body = Result<Bytes, BytesRejection>;

pub async fn append(State(app): State<Arc<App>>, body: Body) -> Result<Response, ApiError> {
    let request = parse_json(&body?)?;
    Ok(Json(app.raft.append_entries(request).await).into_response())
}

pub async fn vote(State(app): State<Arc<App>>, body: Body) -> Result<Response, ApiError> {
    let request = parse_json(&body?)?;
    Ok(Json(app.raft.vote(request).await).into_response())
}

pub async fn pre_vote(State(app): State<Arc<App>>, body: Body) -> Result<Response, ApiError> {
    let request = parse_json(&body?)?;
    Ok(Json(app.raft.pre_vote(request).await).into_response())
}

pub async fn snapshot(State(app): State<Arc<App>>, body: Body) -> Result<Response, ApiError> {
    let SnapshotRequest { vote, meta, data } = parse_json(&body?)?;
    let data = data.get().as_bytes().to_vec();
    // A snapshot that fails to install would stop this node's state machine: refuse it here.
    crate::store::validate_snapshot(&data)
        .map_err(|e| ApiError::bad_request("invalid_snapshot", format!("the snapshot cannot be installed: {e}")))?;
    let snapshot = Snapshot { meta, snapshot: Cursor::new(data) };
    let answer = app.raft.install_full_snapshot(vote, snapshot).await.map_err(RaftError::<TypeConfig>::Fatal);
    Ok(Json(answer).into_response())
}
