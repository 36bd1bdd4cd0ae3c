//! `POST /v1/admin/review/ignore`: descriptor groups taken out of the queue without counting
//! them anywhere.

use super::{check_descriptors, descriptors_schema};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRequest {
    /// Normalised descriptors, as listed by the queue.
    #[schema(schema_with = descriptors_schema)]
    pub normalized_descriptors: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IgnoreAnswer {
    /// Rows taken out of the queue.
    pub transactions: i64,
    /// One decision per distinct descriptor: what `/v1/admin/review/undo` takes to put it
    /// back.
    pub audit_ids: Vec<i64>,
}

/// Takes descriptor groups out of the queue without counting them anywhere.
#[utoipa::path(
    post, path = "/v1/admin/review/ignore", tag = "admin", request_body = IgnoreRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Ignored", body = IgnoreAnswer),
    )
)]
pub async fn ignore(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<IgnoreRequest>,
) -> Result<Json<IgnoreAnswer>, ApiError> {
    let descriptors = check_descriptors(&request.normalized_descriptors)?;
    let actor = principal.actor();
    let mut client = state.inner.db.get().await?;
    let transaction = client.transaction().await?;
    let rows = transaction
        .query(
            "WITH ignored AS (
                 UPDATE unmapped_transactions SET status = 'ignored', resolved_by = $1, resolved_at = now()
                 WHERE status = 'pending' AND normalized_descriptor = ANY($2)
                 RETURNING normalized_descriptor, amount_cents)
             SELECT d, count(i.amount_cents), coalesce(sum(i.amount_cents), 0)::bigint
             FROM unnest($2::text[]) AS d LEFT JOIN ignored i ON i.normalized_descriptor = d
             GROUP BY d",
            &[&actor, &descriptors],
        )
        .await?;
    let mut total = 0;
    let mut audit_ids = Vec::with_capacity(rows.len());
    for row in &rows {
        let descriptor: String = row.get(0);
        let count: i64 = row.get(1);
        let net: i64 = row.get(2);
        total += count;
        let audit = transaction
            .query_one(
                "INSERT INTO mapping_audit (actor, action, normalized_descriptor, detail)
                 VALUES ($1, 'ignore', $2, $3) RETURNING id",
                &[
                    &actor,
                    &descriptor,
                    &json!({"transactions": count, "net_cents": net}),
                ],
            )
            .await?;
        audit_ids.push(audit.get(0));
    }
    transaction.commit().await?;
    Ok(Json(IgnoreAnswer {
        transactions: total,
        audit_ids,
    }))
}
