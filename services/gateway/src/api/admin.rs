//! `POST /v1/admin/cache/flush`.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlushAnswer {
    /// The new value of the flush generation; every earlier cached answer is unreachable.
    pub flush_generation: i64,
}

/// Makes every cached answer unreachable (one generation bump, O(1)).
#[utoipa::path(
    post, path = "/v1/admin/cache/flush", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Flushed", body = FlushAnswer),
    )
)]
pub async fn flush_cache(State(state): State<AppState>) -> Result<Json<FlushAnswer>, ApiError> {
    match state.inner.cache.flush_all().await {
        Ok(generation) => Ok(Json(FlushAnswer {
            flush_generation: generation,
        })),
        Err(error) => {
            tracing::warn!(error = %error, "cannot flush the cache");
            Err(ApiError::Unavailable {
                message: "the cache (Redis) is unavailable; nothing to flush is reachable either"
                    .to_owned(),
                retry_after_seconds: 5,
            })
        }
    }
}
