//! `POST /v1/admin/review/undo`: reverses one assign. Its rows are subtracted from the
//! aggregates through the fact writer and put back in the queue, and the descriptor's previous
//! alias is restored. Distinct customers are HyperLogLog sketches, which cannot subtract:
//! after an undo, `customers` of the affected cells may over-count by up to the customers the
//! undone rows added.

use super::moved::{Direction, Moved, MOVED_COLUMNS};
use super::{dollars, publish_mapping_changed, with_retries, Failure, REVIEW_LOCK};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{integer, ApiJson};
use crate::AppState;
use altdata_facts::CategoryShard;
use axum::extract::State;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UndoRequest {
    /// The audit id of an assign (one descriptor).
    #[serde(deserialize_with = "integer")]
    pub audit_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UndoAnswer {
    pub audit_id: i64,
    /// Rows put back in the queue.
    pub transactions: i64,
    pub net_spend: f64,
    /// Distinct-customer sketches cannot subtract: they may over-count after an undo.
    pub note: String,
    pub mapping_change_published: bool,
}

/// Reverses one assign: subtracts its replayed sums, puts its rows back in the queue and
/// restores the descriptor's previous alias.
#[utoipa::path(
    post, path = "/v1/admin/review/undo", tag = "admin", request_body = UndoRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Undone", body = UndoAnswer,
         links(("review" = (operation_id = "list_queue")))),
        (status = 404, description = "Unknown audit id", body = ErrorBody),
        (status = 409, description = "Not an assign, or already undone", body = ErrorBody),
    )
)]
pub async fn undo(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<UndoRequest>,
) -> Result<Json<UndoAnswer>, ApiError> {
    let actor = principal.actor();
    let mut answer = with_retries(&state, "undo", |client| {
        let actor = actor.clone();
        Box::pin(async move { undo_once(client, request.audit_id, &actor).await })
    })
    .await?;
    answer.mapping_change_published = publish_mapping_changed(&state, "review undo").await;
    Ok(Json(answer))
}

/// The assign an audit entry records.
struct AssignRecord {
    descriptor: String,
    merchant_id: i64,
    detail: serde_json::Value,
}

async fn undo_once(
    client: &mut deadpool_postgres::Client,
    audit_id: i64,
    actor: &str,
) -> Result<UndoAnswer, Failure> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&REVIEW_LOCK])
        .await?;
    let assign = assign_record(&transaction, audit_id).await?;
    let rows = transaction
        .query(
            &format!(
                "UPDATE unmapped_transactions
                    SET status = 'pending', merchant_id = NULL, resolved_by = NULL, resolved_at = NULL
                  WHERE status = 'assigned' AND normalized_descriptor = $1 AND merchant_id = $2
                 RETURNING {MOVED_COLUMNS}"
            ),
            &[&assign.descriptor, &assign.merchant_id],
        )
        .await?;
    let moved = Moved::fold(&rows, assign.merchant_id, Direction::Subtract);
    altdata_facts::apply(&transaction, &moved.cells, CategoryShard::Review, "review")
        .await?
        .log_changes(&transaction, "review")
        .await?;
    restore_alias(&transaction, &assign, actor).await?;
    let group = moved
        .groups
        .get(&assign.descriptor)
        .cloned()
        .unwrap_or_default();
    transaction
        .execute(
            "UPDATE mapping_audit SET undone_at = now() WHERE id = $1",
            &[&audit_id],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO mapping_audit (actor, action, normalized_descriptor, merchant_id, detail)
             VALUES ($1, 'undo', $2, $3, $4)",
            &[
                &actor,
                &assign.descriptor,
                &assign.merchant_id,
                &json!({"undoes": audit_id, "transactions": group.transactions,
                        "gross_cents": group.gross_cents, "refund_cents": group.refund_cents,
                        "net_cents": group.net_cents(), "category": assign.detail.get("category")}),
            ],
        )
        .await?;
    transaction.commit().await?;
    Ok(UndoAnswer {
        audit_id,
        transactions: group.transactions,
        net_spend: dollars(group.net_cents()),
        note: "distinct-customer counts cannot be subtracted (HyperLogLog): the affected cells \
               may over-count customers"
            .to_owned(),
        mapping_change_published: false,
    })
}

/// The assign recorded by `audit_id`, locked; refused unless it is an assign not yet undone.
async fn assign_record(
    transaction: &deadpool_postgres::Transaction<'_>,
    audit_id: i64,
) -> Result<AssignRecord, Failure> {
    let audit = transaction
        .query_opt(
            "SELECT action, normalized_descriptor, merchant_id, detail, undone_at
             FROM mapping_audit WHERE id = $1 FOR UPDATE",
            &[&audit_id],
        )
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audit entry {audit_id}")))?;
    let action: String = audit.get(0);
    let undone_at: Option<DateTime<Utc>> = audit.get(4);
    // Another kind of entry is a well-formed request about the wrong thing: a conflict with
    // what the entry is, like an entry already undone.
    let (Some(descriptor), Some(merchant_id)) = (audit.get(1), audit.get(2)) else {
        return Err(ApiError::Conflict("only an assign can be undone".to_owned()).into());
    };
    if action != "assign" {
        return Err(ApiError::Conflict(format!(
            "audit entry {audit_id} is a {action:?}; only an assign can be undone"
        ))
        .into());
    }
    if undone_at.is_some() {
        return Err(ApiError::Conflict(format!("audit entry {audit_id} is already undone")).into());
    }
    Ok(AssignRecord {
        descriptor,
        merchant_id,
        detail: audit.get(3),
    })
}

/// Puts back the alias the descriptor had before the assign, or removes the assign's.
async fn restore_alias(
    transaction: &deadpool_postgres::Transaction<'_>,
    assign: &AssignRecord,
    actor: &str,
) -> Result<(), tokio_postgres::Error> {
    match assign
        .detail
        .get("previous_alias_merchant_id")
        .and_then(|v| v.as_i64())
    {
        Some(previous) => {
            transaction
                .execute(
                    "UPDATE merchant_aliases SET merchant_id = $2, created_by = $3, created_at = now()
                     WHERE alias = $1",
                    &[&assign.descriptor, &previous, &actor],
                )
                .await?;
        }
        None => {
            transaction
                .execute(
                    "DELETE FROM merchant_aliases WHERE alias = $1 AND merchant_id = $2",
                    &[&assign.descriptor, &assign.merchant_id],
                )
                .await?;
        }
    }
    Ok(())
}
