//! Guards the routes that can change who is in the cluster or what its log holds.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::App;

/// Lets the request through when the node has no secret or the request carries it; 401 otherwise.
pub async fn require_cluster_secret(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    match &app.secret {
        Some(secret) if !secret.admits(request.headers()) => {
            tracing::warn!(node_id = app.id, path = %request.uri().path(), "refused a request without the cluster secret");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this route needs the cluster secret: Authorization: Bearer SECRET",
            )
            .into_response()
        }
        _ => next.run(request).await,
    }
}
