//! `GET /v1/admin/files`: the ingest ledger, newest first: each provider file's status, its
//! conservation counts and, for a failed file, why (so a failure is seen in the review tool,
//! not only in ingest's log).

use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::query::{deserialize_from_text, Bounded, Offset, PageLimit, Word};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Where a file stands on the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Processing,
    Done,
    Failed,
}

impl Word for FileStatus {
    const ALL: &'static [FileStatus] =
        &[FileStatus::Processing, FileStatus::Done, FileStatus::Failed];

    fn as_str(self) -> &'static str {
        match self {
            FileStatus::Processing => "processing",
            FileStatus::Done => "done",
            FileStatus::Failed => "failed",
        }
    }
}

deserialize_from_text!(FileStatus);

/// Paging, and a status to keep.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FileParams {
    /// Default: every status.
    #[param(inline)]
    pub status: Option<FileStatus>,
    /// Default 50.
    #[param(inline)]
    pub limit: Option<PageLimit>,
    /// Default 0.
    #[param(inline)]
    pub offset: Option<Offset>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestFiles {
    pub files: Vec<IngestFile>,
    pub limit: i64,
    pub offset: i64,
}

/// One file on the ledger. `rows_read = published + unattributed + unmapped + rejected +
/// duplicates + corrected`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestFile {
    pub id: i64,
    pub path: String,
    pub provider: String,
    /// `processing`, `done` or `failed`.
    pub status: String,
    /// Why the file failed (its text is cleaned of control characters and card numbers).
    pub error: Option<String>,
    pub rows_read: i64,
    pub published: i64,
    pub unattributed: i64,
    pub unmapped: i64,
    pub rejected: i64,
    pub duplicates: i64,
    pub corrected: i64,
    pub retracted: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Ingest's files, newest first, with their status, counts and error.
#[utoipa::path(
    get, path = "/v1/admin/files", tag = "admin", params(FileParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Ledger entries", body = IngestFiles),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn list_files(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<FileParams>,
) -> Result<Json<IngestFiles>, ApiError> {
    let limit = PageLimit::or(params.limit, 50, state.inner.settings.limits.max_page_size)?;
    let offset = params.offset.map_or(0, |Bounded(offset)| offset);
    let status = params.status.map(Word::as_str);
    let client = state.inner.db.get().await?;
    let rows = client
        .query(
            "SELECT id, path, provider, status, error, rows_read, published, unattributed,
                    unmapped, rejected, duplicates, corrected, retracted, started_at, finished_at
               FROM ingest_files WHERE $1::text IS NULL OR status = $1
              ORDER BY id DESC LIMIT $2 OFFSET $3",
            &[&status, &limit, &offset],
        )
        .await?;
    Ok(Json(IngestFiles {
        files: rows
            .iter()
            .map(|row| IngestFile {
                id: row.get(0),
                path: row.get(1),
                provider: row.get(2),
                status: row.get(3),
                error: row.get(4),
                rows_read: row.get(5),
                published: row.get(6),
                unattributed: row.get(7),
                unmapped: row.get(8),
                rejected: row.get(9),
                duplicates: row.get(10),
                corrected: row.get(11),
                retracted: row.get(12),
                started_at: row.get(13),
                finished_at: row.get(14),
            })
            .collect(),
        limit,
        offset,
    }))
}
