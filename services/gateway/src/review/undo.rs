//! `POST /v1/admin/review/undo`: reverses one review decision, by its audit id.
//!
//! - An **assign**: its rows are subtracted from the aggregates through the fact writer and put
//!   back in the queue, and the descriptor's previous alias is restored. Distinct customers are
//!   HyperLogLog sketches, which cannot subtract: after an undo, `customers` of the affected
//!   cells may over-count by up to the customers the undone rows added.
//! - An **ignore**: its rows go back to the queue. Ignoring moved no spend (the rows count
//!   under their category's unattributed merchant either way), so no aggregate changes.
//! - A **rule**: it is deactivated, so ingest stops applying it to new rows; rows it resolved
//!   while it was active keep their merchant (a re-sent file re-resolves them).

use super::moved::{Direction, Moved, MOVED_COLUMNS};
use super::{dollars, publish_mapping_changed, with_retries, Failure, REVIEW_LOCK};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
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
    /// The audit id of an assign, an ignore or a rule.
    pub audit_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UndoAnswer {
    pub audit_id: i64,
    /// What was undone: assign, ignore or rule.
    pub action: String,
    /// Rows put back in the queue.
    pub transactions: i64,
    pub net_spend: f64,
    /// What the undo could not take back, for the reviewer to see.
    pub note: String,
    pub mapping_change_published: bool,
}

/// Reverses one assign, ignore or rule.
#[utoipa::path(
    post, path = "/v1/admin/review/undo", tag = "admin", request_body = UndoRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Undone", body = UndoAnswer),
        (status = 400, description = "Not an assign, an ignore or a rule", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "Unknown audit id", body = ErrorBody),
        (status = 409, description = "Already undone", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
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

async fn undo_once(
    client: &mut deadpool_postgres::Client,
    audit_id: i64,
    actor: &str,
) -> Result<UndoAnswer, Failure> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&REVIEW_LOCK])
        .await?;
    let record = audit_record(&transaction, audit_id).await?;
    let answer = match record.action.as_str() {
        "assign" => undo_assign(&transaction, &record, actor).await?,
        "ignore" => undo_ignore(&transaction, &record).await?,
        "rule" => undo_rule(&transaction, &record).await?,
        other => {
            return Err(ApiError::invalid(format!(
                "audit entry {audit_id} is a {other:?}; only an assign, an ignore or a rule can be undone"
            ))
            .into())
        }
    };
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
                &record.descriptor,
                &record.merchant_id,
                &json!({"undoes": audit_id, "undone_action": record.action,
                        "transactions": answer.transactions,
                        "net_cents": (answer.net_spend * 100.0).round() as i64,
                        "category": record.detail.get("category")}),
            ],
        )
        .await?;
    transaction.commit().await?;
    Ok(answer)
}

/// An assign's rows subtracted and put back in the queue, the previous alias restored.
async fn undo_assign(
    transaction: &deadpool_postgres::Transaction<'_>,
    record: &AuditRecord,
    actor: &str,
) -> Result<UndoAnswer, Failure> {
    let (Some(descriptor), Some(merchant_id)) = (&record.descriptor, record.merchant_id) else {
        return Err(ApiError::invalid("the assign names no descriptor or merchant").into());
    };
    let rows = transaction
        .query(
            &format!(
                "UPDATE unmapped_transactions
                    SET status = 'pending', merchant_id = NULL, resolved_by = NULL, resolved_at = NULL
                  WHERE status = 'assigned' AND normalized_descriptor = $1 AND merchant_id = $2
                 RETURNING {MOVED_COLUMNS}"
            ),
            &[descriptor, &merchant_id],
        )
        .await?;
    let moved = Moved::fold(&rows, merchant_id, Direction::Subtract);
    altdata_facts::apply(transaction, &moved.cells, CategoryShard::Review, "review")
        .await?
        .log_changes(transaction, "review")
        .await?;
    restore_alias(transaction, descriptor, merchant_id, &record.detail, actor).await?;
    let group = moved.groups.get(descriptor).cloned().unwrap_or_default();
    Ok(UndoAnswer {
        audit_id: record.id,
        action: record.action.clone(),
        transactions: group.transactions,
        net_spend: dollars(group.net_cents()),
        note: "distinct-customer counts cannot be subtracted (HyperLogLog): the affected cells \
               may over-count customers"
            .to_owned(),
        mapping_change_published: false,
    })
}

/// An ignore's rows back in the queue. No aggregate changes: ignored rows keep counting
/// under their category's unattributed merchant, as pending ones do.
async fn undo_ignore(
    transaction: &deadpool_postgres::Transaction<'_>,
    record: &AuditRecord,
) -> Result<UndoAnswer, Failure> {
    let Some(descriptor) = &record.descriptor else {
        return Err(ApiError::invalid("the ignore names no descriptor").into());
    };
    let row = transaction
        .query_one(
            "WITH back AS (
                 UPDATE unmapped_transactions
                    SET status = 'pending', resolved_by = NULL, resolved_at = NULL
                  WHERE status = 'ignored' AND normalized_descriptor = $1
                 RETURNING amount_cents)
             SELECT count(*), coalesce(sum(amount_cents), 0)::bigint FROM back",
            &[descriptor],
        )
        .await?;
    Ok(UndoAnswer {
        audit_id: record.id,
        action: record.action.clone(),
        transactions: row.get(0),
        net_spend: dollars(row.get(1)),
        note: "the rows are back in the queue; no aggregate changed".to_owned(),
        mapping_change_published: false,
    })
}

/// A rule deactivated: ingest stops applying it.
async fn undo_rule(
    transaction: &deadpool_postgres::Transaction<'_>,
    record: &AuditRecord,
) -> Result<UndoAnswer, Failure> {
    let Some(rule_id) = record.detail.get("rule_id").and_then(|v| v.as_i64()) else {
        return Err(ApiError::invalid("the audit entry names no rule").into());
    };
    transaction
        .execute(
            "UPDATE merchant_rules SET active = false WHERE id = $1",
            &[&rule_id],
        )
        .await?;
    Ok(UndoAnswer {
        audit_id: record.id,
        action: record.action.clone(),
        transactions: 0,
        net_spend: 0.0,
        note: format!(
            "rule {rule_id} no longer resolves new rows; rows it resolved while active keep \
             their merchant until their file is sent again"
        ),
        mapping_change_published: false,
    })
}

/// One review decision from the audit, locked.
struct AuditRecord {
    id: i64,
    action: String,
    descriptor: Option<String>,
    merchant_id: Option<i64>,
    detail: serde_json::Value,
}

/// The decision recorded by `audit_id`, locked; refused when it is already undone.
async fn audit_record(
    transaction: &deadpool_postgres::Transaction<'_>,
    audit_id: i64,
) -> Result<AuditRecord, Failure> {
    let audit = transaction
        .query_opt(
            "SELECT action, normalized_descriptor, merchant_id, detail, undone_at
             FROM mapping_audit WHERE id = $1 FOR UPDATE",
            &[&audit_id],
        )
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audit entry {audit_id}")))?;
    let undone_at: Option<DateTime<Utc>> = audit.get(4);
    if undone_at.is_some() {
        return Err(ApiError::Conflict(format!("audit entry {audit_id} is already undone")).into());
    }
    Ok(AuditRecord {
        id: audit_id,
        action: audit.get(0),
        descriptor: audit.get(1),
        merchant_id: audit.get(2),
        detail: audit.get(3),
    })
}

/// Puts back the alias the descriptor had before the assign, or removes the assign's.
async fn restore_alias(
    transaction: &deadpool_postgres::Transaction<'_>,
    descriptor: &str,
    merchant_id: i64,
    detail: &serde_json::Value,
    actor: &str,
) -> Result<(), tokio_postgres::Error> {
    match detail
        .get("previous_alias_merchant_id")
        .and_then(|v| v.as_i64())
    {
        Some(previous) => {
            transaction
                .execute(
                    "UPDATE merchant_aliases SET merchant_id = $2, created_by = $3, created_at = now()
                     WHERE alias = $1",
                    &[&descriptor, &previous, &actor],
                )
                .await?;
        }
        None => {
            transaction
                .execute(
                    "DELETE FROM merchant_aliases WHERE alias = $1 AND merchant_id = $2",
                    &[&descriptor, &merchant_id],
                )
                .await?;
        }
    }
    Ok(())
}
