//! `/kv` and `/txn`: reads, writes and transactions on keys.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use books_db_client::api::{KvList, SetRequest, TxnRequest, UpdateRequest, WriteResponse, validate_key};
use serde::Deserialize;

use super::error::{ApiError, parse_json};
use super::forward;
use super::request::Incoming;
use crate::app::{App, Placed};
use crate::command::{Command, CommandResult, Operation, now_ms};
use crate::store;

/// Most compares or ops one transaction may hold.
const MAX_TXN_ITEMS: usize = 256;

#[derive(Deserialize)]
pub struct ReadOptions {
    /// `linearizable` (the default) or `stale`: serve from this node without asking the leader.
    #[serde(default)]
    consistency: Consistency,
    #[serde(default)]
    prefix: String,
}

#[derive(Deserialize, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Consistency {
    #[default]
    Linearizable,
    Stale,
}

type KeyPath = Result<Path<String>, PathRejection>;
type ReadQuery = Result<Query<ReadOptions>, QueryRejection>;

fn checked_key(path: KeyPath) -> Result<String, ApiError> {
    let Path(key) = path.map_err(|e| ApiError::bad_request("invalid_key", e.body_text()))?;
    validate_key(&key).map_err(|m| ApiError::bad_request("invalid_key", m))?;
    Ok(key)
}

fn read_options(query: ReadQuery) -> Result<ReadOptions, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// Runs `read` here once this node has confirmed it leads (or at once for stale reads);
/// forwards the request to the leader otherwise.
async fn read_at_leader(
    app: &App,
    consistency: Consistency,
    request: &Incoming,
    read: impl FnOnce() -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    if consistency == Consistency::Linearizable
        && let Placed::Leader(leader) = app.linearize().await?
    {
        return Ok(forward::to_leader(app, &leader, request, app.config.request_timeout()).await);
    }
    read()
}

pub async fn get(
    State(app): State<Arc<App>>,
    key: KeyPath,
    query: ReadQuery,
    request: Incoming,
) -> Result<Response, ApiError> {
    let key = checked_key(key)?;
    let options = read_options(query)?;
    read_at_leader(&app, options.consistency, &request, || match store::read(app.state.database(), &key)? {
        Some(entry) => Ok(Json(entry).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("key {key:?} not found"))),
    })
    .await
}

/// `/kv/` has no key.
pub async fn empty_key() -> ApiError {
    ApiError::bad_request("invalid_key", "the key is empty")
}

pub async fn list(State(app): State<Arc<App>>, query: ReadQuery, request: Incoming) -> Result<Response, ApiError> {
    let options = read_options(query)?;
    read_at_leader(&app, options.consistency, &request, || {
        let items = store::list(app.state.database(), &options.prefix)?;
        Ok(Json(KvList { items }).into_response())
    })
    .await
}

pub async fn set(State(app): State<Arc<App>>, key: KeyPath, request: Incoming) -> Result<Response, ApiError> {
    let key = checked_key(key)?;
    let SetRequest { value } = parse_json(&request.body)?;
    write(&app, Operation::Set { key, value }, &request).await
}

pub async fn update(State(app): State<Arc<App>>, key: KeyPath, request: Incoming) -> Result<Response, ApiError> {
    let key = checked_key(key)?;
    let UpdateRequest { value, if_version } = parse_json(&request.body)?;
    write(&app, Operation::Update { key, value, if_version }, &request).await
}

pub async fn delete(State(app): State<Arc<App>>, key: KeyPath, request: Incoming) -> Result<Response, ApiError> {
    let key = checked_key(key)?;
    write(&app, Operation::Delete { key }, &request).await
}

pub async fn txn(State(app): State<Arc<App>>, request: Incoming) -> Result<Response, ApiError> {
    let txn: TxnRequest = parse_json(&request.body)?;
    if txn.compare.len().max(txn.success.len()).max(txn.failure.len()) > MAX_TXN_ITEMS {
        return Err(ApiError::bad_request(
            "txn_too_large",
            format!("at most {MAX_TXN_ITEMS} compares and ops per branch"),
        ));
    }
    let keys =
        txn.compare.iter().map(|c| c.key.as_str()).chain(txn.success.iter().chain(&txn.failure).map(|op| op.key()));
    for key in keys {
        validate_key(key).map_err(|m| ApiError::bad_request("invalid_key", format!("{key:?}: {m}")))?;
    }
    write(&app, Operation::Txn(txn), &request).await
}

async fn write(app: &App, operation: Operation, request: &Incoming) -> Result<Response, ApiError> {
    let command = Command { request_id: request.idempotency_key()?, at_ms: now_ms(), operation };
    match app.write(command).await? {
        Placed::Here(result) => result_response(result),
        Placed::Leader(leader) => Ok(forward::to_leader(app, &leader, request, app.config.request_timeout()).await),
    }
}

fn result_response(result: CommandResult) -> Result<Response, ApiError> {
    match result {
        CommandResult::Written { version } => Ok(Json(WriteResponse { version }).into_response()),
        CommandResult::Txn(answer) => Ok(Json(answer).into_response()),
        CommandResult::None => Ok(Json(serde_json::json!({})).into_response()),
        CommandResult::NotFound => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "key not found")),
        CommandResult::VersionMismatch { expected, actual } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "version_mismatch",
            format!("ifVersion is {expected} but the key is at version {actual}"),
        )),
        CommandResult::TxnRejected { message } => Err(ApiError::new(StatusCode::CONFLICT, "txn_rejected", message)),
    }
}
