//! `GET /v1/admin/review`: pending descriptors, grouped and ranked by money at stake.

use super::dollars;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::query::{Bounded, PageLimit, PageParams};
use crate::AppState;
use altdata_domain::Category;
use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQueue {
    pub groups: Vec<ReviewGroup>,
    /// Pending groups in all pages.
    pub total_groups: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewGroup {
    pub normalized_descriptor: String,
    pub transactions: i64,
    /// Sum of |amount| in dollars: what ranking is by.
    pub at_stake: f64,
    /// Sales minus refunds, in dollars.
    pub net_spend: f64,
    /// Up to 3 raw descriptors as the providers sent them.
    pub samples: Vec<String>,
    /// The resolver's candidates, from the latest row, best first.
    #[schema(value_type = Vec<ReviewCandidate>)]
    pub candidates: serde_json::Value,
    /// The category the group's spend counts in meanwhile (at shops whose brand is not known),
    /// for the rows whose category could be told; null when it is held only. Assigning the
    /// group moves that spend to the brand.
    pub counted_category: Option<String>,
    /// Net spend of the group already counted in `counted_category`, in dollars.
    pub counted_net_spend: f64,
    #[schema(value_type = String, format = Date)]
    pub first_date: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub last_date: NaiveDate,
}

/// A merchant the resolver proposed for a group (stored by ingest as JSON with the row).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewCandidate {
    pub merchant_id: i64,
    pub name: String,
    pub category: String,
    /// 0 to 1.
    pub score: f64,
    /// Why the resolver proposed it.
    pub why: String,
}

const QUEUE: &str = "
WITH g AS (
    SELECT normalized_descriptor, count(*) AS n,
           sum(abs(amount_cents))::bigint AS at_stake,
           sum(amount_cents)::bigint AS net,
           min(metric_date) AS first_date, max(metric_date) AS last_date,
           count(*) OVER () AS total,
           mode() WITHIN GROUP (ORDER BY counted_merchant_id)
               FILTER (WHERE counted_merchant_id IS NOT NULL) AS counted_merchant,
           coalesce(sum(amount_cents) FILTER (WHERE counted_merchant_id IS NOT NULL), 0)::bigint
               AS counted_net
    FROM unmapped_transactions WHERE status = 'pending'
    GROUP BY normalized_descriptor
    ORDER BY at_stake DESC, normalized_descriptor
    LIMIT $1 OFFSET $2)
SELECT g.normalized_descriptor, g.n, g.at_stake, g.net, g.first_date, g.last_date, g.total,
       g.counted_merchant, g.counted_net,
       coalesce((SELECT array_agg(s.raw_descriptor) FROM (
           SELECT DISTINCT u.raw_descriptor FROM unmapped_transactions u
           WHERE u.status = 'pending' AND u.normalized_descriptor = g.normalized_descriptor
           ORDER BY u.raw_descriptor LIMIT 3) s), '{}') AS samples,
       coalesce((SELECT u.candidates FROM unmapped_transactions u
           WHERE u.status = 'pending' AND u.normalized_descriptor = g.normalized_descriptor
           ORDER BY u.created_at DESC, u.id DESC LIMIT 1), '[]'::jsonb) AS candidates
FROM g ORDER BY g.at_stake DESC, g.normalized_descriptor";

/// Pending unresolved descriptors, grouped and ranked by money at stake.
#[utoipa::path(
    get, path = "/v1/admin/review", tag = "admin", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending groups", body = ReviewQueue,
         links(
             ("assign" = (operation_id = "assign", request_body = json!(
                 {"normalized_descriptors": ["$response.body#/groups/0/normalized_descriptor"]}))),
             ("ignore" = (operation_id = "ignore", request_body = json!(
                 {"normalized_descriptors": ["$response.body#/groups/0/normalized_descriptor"]}))),
         )),
    )
)]
pub async fn list_queue(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ReviewQueue>, ApiError> {
    let limit = PageLimit::or(params.limit, 50, state.inner.settings.limits.max_page_size)?;
    let offset = params.offset.map_or(0, |Bounded(offset)| offset);
    let client = state.inner.db.get().await?;
    let rows = client.query(QUEUE, &[&limit, &offset]).await?;
    let total_groups = rows.first().map_or(0, |row| row.get::<_, i64>(6));
    Ok(Json(ReviewQueue {
        groups: rows
            .iter()
            .map(|row| ReviewGroup {
                normalized_descriptor: row.get(0),
                transactions: row.get(1),
                at_stake: dollars(row.get(2)),
                net_spend: dollars(row.get(3)),
                first_date: row.get(4),
                last_date: row.get(5),
                counted_category: row
                    .get::<_, Option<i64>>(7)
                    .and_then(Category::of_unattributed_merchant)
                    .map(|c| c.as_str().to_owned()),
                counted_net_spend: dollars(row.get(8)),
                samples: row.get(9),
                candidates: row.get(10),
            })
            .collect(),
        total_groups,
        limit,
        offset,
    }))
}
