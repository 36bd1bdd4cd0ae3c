//! `GET /v1/admin/review`: pending descriptors, grouped and ranked by money at stake.

use super::dollars;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::query::{parse_bounded, PageParams, MAX_OFFSET};
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
    /// Up to 5 raw descriptors as the providers sent them.
    pub samples: Vec<String>,
    /// The resolver's candidates, from the latest row: `merchant_id`, `name`, `category`,
    /// `score`, `why`.
    #[schema(value_type = Vec<Object>)]
    pub candidates: serde_json::Value,
    /// The two best candidates score within [`NEAR_TIE`] of each other: the name alone does
    /// not decide between them (a chain and its sibling brand); the MCC mix may.
    pub near_tie: bool,
    /// The group's merchant category codes, most rows first (up to 5).
    pub mcc_mix: Vec<Share>,
    /// The group's states, most rows first (up to 5).
    pub states: Vec<Share>,
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

/// One value of a group's rows (an MCC, a state) and how many rows have it.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct Share {
    pub value: String,
    pub transactions: i64,
}

/// Candidates this close in score are shown as tied.
pub const NEAR_TIE: f64 = 0.02;

/// Whether the two best candidates of a resolver candidate list are within [`NEAR_TIE`].
fn near_tie(candidates: &serde_json::Value) -> bool {
    let mut scores: Vec<f64> = candidates
        .as_array()
        .map(|list| list.iter().filter_map(|c| c["score"].as_f64()).collect())
        .unwrap_or_default();
    scores.sort_by(|a, b| b.total_cmp(a));
    matches!(scores.as_slice(), [best, second, ..] if best - second <= NEAR_TIE)
}

/// The most common values of `column` among a pending group's rows, as JSON [`Share`]s.
fn top_values(column: &str) -> String {
    format!(
        "coalesce((SELECT jsonb_agg(jsonb_build_object('value', v, 'transactions', n) ORDER BY n DESC, v)
                   FROM (SELECT {column} AS v, count(*) AS n FROM unmapped_transactions u
                         WHERE u.status = 'pending' AND u.normalized_descriptor = g.normalized_descriptor
                         GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5) x), '[]'::jsonb)"
    )
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
           ORDER BY u.raw_descriptor LIMIT 5) s), '{}') AS samples,
       coalesce((SELECT u.candidates FROM unmapped_transactions u
           WHERE u.status = 'pending' AND u.normalized_descriptor = g.normalized_descriptor
           ORDER BY u.created_at DESC, u.id DESC LIMIT 1), '[]'::jsonb) AS candidates,
       {MCC_MIX} AS mcc_mix, {STATES} AS states
FROM g ORDER BY g.at_stake DESC, g.normalized_descriptor";

/// Pending unresolved descriptors, grouped and ranked by money at stake.
#[utoipa::path(
    get, path = "/v1/admin/review", tag = "admin", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending groups", body = ReviewQueue),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn list_queue(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<ReviewQueue>, ApiError> {
    let max = state.inner.settings.limits.max_page_size;
    let limit = parse_bounded("limit", params.limit.as_deref(), 50, 1, max)?;
    let offset = parse_bounded("offset", params.offset.as_deref(), 0, 0, MAX_OFFSET)?;
    let client = state.inner.db.get().await?;
    let sql = QUEUE
        .replace(
            "{MCC_MIX}",
            &top_values("coalesce(nullif(u.mcc, ''), 'unknown')"),
        )
        .replace("{STATES}", &top_values("u.region"));
    let rows = client.query(&sql, &[&limit, &offset]).await?;
    let shares = |value: serde_json::Value| -> Vec<Share> {
        serde_json::from_value(value).unwrap_or_default()
    };
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
                near_tie: near_tie(&row.get(10)),
                candidates: row.get(10),
                mcc_mix: shares(row.get(11)),
                states: shares(row.get(12)),
            })
            .collect(),
        total_groups,
        limit,
        offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_within_two_points_are_a_near_tie() {
        let tie = serde_json::json!([{"score": 1.0}, {"score": 0.985}, {"score": 0.5}]);
        assert!(near_tie(&tie));
        let clear = serde_json::json!([{"score": 0.97}, {"score": 0.9}]);
        assert!(!near_tie(&clear));
        assert!(!near_tie(&serde_json::json!([{"score": 1.0}])));
        assert!(!near_tie(&serde_json::json!([])));
    }
}
