//! `GET /v1/admin/audit` (who mapped what, newest first) and `GET /v1/admin/mapped-share` (the
//! share of spend that is mapped to merchants).

use super::dollars;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::query::{self, check_range, Bounded, PageLimit, PageParams, RangeDay, RangeParams};
use crate::AppState;
use altdata_domain::Category;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Days, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub normalized_descriptor: Option<String>,
    pub merchant_id: Option<i64>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub undone_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Who mapped what, newest first.
#[utoipa::path(
    get, path = "/v1/admin/audit", tag = "admin", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Audit entries", body = AuditLog),
    )
)]
pub async fn audit_log(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<AuditLog>, ApiError> {
    let limit = PageLimit::or(params.limit, 50, state.inner.settings.limits.max_page_size)?;
    let offset = params.offset.map_or(0, |Bounded(offset)| offset);
    let client = state.inner.db.get().await?;
    let rows = client
        .query(
            "SELECT id, actor, action, normalized_descriptor, merchant_id, detail, undone_at, created_at
             FROM mapping_audit ORDER BY id DESC LIMIT $1 OFFSET $2",
            &[&limit, &offset],
        )
        .await?;
    Ok(Json(AuditLog {
        entries: rows
            .iter()
            .map(|row| AuditEntry {
                id: row.get(0),
                actor: row.get(1),
                action: row.get(2),
                normalized_descriptor: row.get(3),
                merchant_id: row.get(4),
                detail: row.get(5),
                undone_at: row.get(6),
                created_at: row.get(7),
            })
            .collect(),
        limit,
        offset,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MappedShare {
    pub range: query::DateRange,
    /// Net spend in the aggregates, dollars: at named brands and unattributed.
    pub mapped_net_spend: f64,
    /// Of it, net spend at named brands.
    pub named_net_spend: f64,
    /// Of it, net spend counted by category at shops whose brand is not known (also waiting
    /// for review).
    pub unattributed_net_spend: f64,
    /// Net spend held for review and counted nowhere (neither brand nor category known).
    pub held_only_net_spend: f64,
    /// Net spend of every row waiting in the review queue (unattributed and held only).
    pub unmapped_net_spend: f64,
    pub unmapped_transactions: i64,
    /// Spend in the aggregates / all spend, as a fraction; null without any spend.
    pub mapped_share: Option<f64>,
    /// Spend at named brands / all spend, as a fraction; null without any spend.
    pub attributed_share: Option<f64>,
}

/// The share of spend that is mapped to merchants, and attributed to named brands, over a range.
#[utoipa::path(
    get, path = "/v1/admin/mapped-share", tag = "admin", params(RangeParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Mapped share", body = MappedShare),
    )
)]
pub async fn mapped_share(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<RangeParams>,
) -> Result<Json<MappedShare>, ApiError> {
    let today = Utc::now().date_naive();
    let to = params.to.map_or(today, |RangeDay(day)| day);
    let from = params.from.map_or(to - Days::new(29), |RangeDay(day)| day);
    check_range(from, to, &state.inner.settings.limits)?;
    let categories: Vec<String> = Category::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let unattributed_ids: Vec<i64> = Category::ALL
        .iter()
        .map(|c| c.unattributed_merchant_id())
        .collect();
    let mut client = state.inner.read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let mapped: i64 = snapshot
        .query_one(
            "SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint
             FROM agg_daily_category_region
             WHERE category = ANY($3) AND metric_date BETWEEN $1 AND $2",
            &[&from, &to, &categories],
        )
        .await?
        .get(0);
    let unattributed: i64 = snapshot
        .query_one(
            "SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint
             FROM agg_daily_merchant_spend
             WHERE merchant_id = ANY($3) AND metric_date BETWEEN $1 AND $2",
            &[&from, &to, &unattributed_ids],
        )
        .await?
        .get(0);
    let waiting = snapshot
        .query_one(
            "SELECT coalesce(sum(amount_cents), 0)::bigint, count(*),
                    coalesce(sum(amount_cents) FILTER (WHERE counted_merchant_id IS NULL), 0)::bigint
             FROM unmapped_transactions
             WHERE status = 'pending' AND metric_date BETWEEN $1 AND $2",
            &[&from, &to],
        )
        .await?;
    snapshot.commit().await?;
    let held_only: i64 = waiting.get(2);
    let total = mapped + held_only;
    let share = |part: i64| (total > 0).then(|| ((part as f64 / total as f64) * 1e6).round() / 1e6);
    Ok(Json(MappedShare {
        range: query::DateRange { from, to },
        mapped_net_spend: dollars(mapped),
        named_net_spend: dollars(mapped - unattributed),
        unattributed_net_spend: dollars(unattributed),
        held_only_net_spend: dollars(held_only),
        unmapped_net_spend: dollars(waiting.get(0)),
        unmapped_transactions: waiting.get(1),
        mapped_share: share(mapped),
        attributed_share: share(mapped - unattributed),
    }))
}
