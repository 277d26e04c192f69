//! `GET /cluster/log`: some of this node's Raft log, for a reader to watch replication (the
//! storefront's Raft view). Read-only, from the log kept in memory; values are not shown.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use books_db_client::api::{LogEntryView, LogWindow, MAX_LOG_WINDOW, validate_key};
use openraft::EntryPayload;
use serde::Deserialize;

use super::error::ApiError;
use crate::Entry;
use crate::app::App;

/// Entries answered when no limit is asked for.
const DEFAULT_LIMIT: usize = 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// The first index wanted; without it, the last entries.
    from: Option<u64>,
    limit: Option<usize>,
    /// Only commands that compare or write this key.
    key: Option<String>,
}

pub async fn window(
    State(app): State<Arc<App>>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<LogWindow>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LOG_WINDOW).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {MAX_LOG_WINDOW}")));
    }
    if let Some(key) = &query.key {
        validate_key(key).map_err(|m| ApiError::bad_request("invalid_key", m))?;
    }
    let touches = |entry: &Entry| match (&query.key, &entry.payload) {
        (None, _) => true,
        (Some(key), EntryPayload::Normal(command)) => command.touches(key),
        (Some(_), _) => false,
    };
    let (first, last, entries) = app.log.window(query.from, limit, touches);
    Ok(Json(LogWindow { first, last, entries: entries.iter().map(view).collect() }))
}

fn view(entry: &Entry) -> LogEntryView {
    let (kind, summary, keys, at_ms) = match &entry.payload {
        EntryPayload::Blank => ("blank", "a new leader's first entry".to_string(), Vec::new(), None),
        EntryPayload::Normal(command) => ("command", command.to_string(), command.keys(), Some(command.at_ms)),
        EntryPayload::Membership(membership) => {
            let voters: Vec<u64> = membership.voter_ids().collect();
            ("membership", format!("voters {voters:?}"), Vec::new(), None)
        }
    };
    LogEntryView {
        index: entry.log_id.index(),
        term: entry.log_id.committed_leader_id().term,
        kind: kind.into(),
        summary,
        keys,
        at_ms,
    }
}
