//! `GET /v1/admin/review`: pending descriptors, grouped and ranked by money at stake, in two
//! parts: the groups that need a person, and the local shops already counted in their
//! category (`schema/0016_review_groups.sql` tells them apart).

use super::dollars;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::query::{Bounded, PageLimit, QueueParams, QueuePart};
use crate::AppState;
use altdata_domain::Category;
use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQueue {
    /// The part listed: `review` or `local`.
    pub part: QueuePart,
    pub groups: Vec<ReviewGroup>,
    /// Pending groups of this part in all pages.
    pub total_groups: i64,
    /// Pending groups in the part that needs a person.
    pub review_groups: i64,
    /// Pending groups in the local shops' part.
    pub local_groups: i64,
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
    /// The resolver's candidates, from the latest row, best first.
    #[schema(value_type = Vec<ReviewCandidate>)]
    pub candidates: serde_json::Value,
    /// The two best candidates score within [`NEAR_TIE`] of each other: the name alone does
    /// not decide between them (a chain and its sibling brand); the MCC mix may.
    pub near_tie: bool,
    /// A candidate's whole name starts the descriptor, or a candidate scores at the automatic
    /// threshold without being decided: the group may be a brand.
    pub brand_suspected: bool,
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
WITH groups AS (SELECT * FROM review_groups),
g AS (
    SELECT *, count(*) OVER () AS total FROM groups WHERE needs_person = $3
    ORDER BY at_stake DESC, normalized_descriptor
    LIMIT $1 OFFSET $2)
SELECT g.normalized_descriptor, g.transactions, g.at_stake, g.net, g.first_date, g.last_date,
       g.total, g.counted_merchant, g.counted_net,
       coalesce((SELECT array_agg(s.raw_descriptor) FROM (
           SELECT DISTINCT u.raw_descriptor FROM unmapped_transactions u
           WHERE u.status = 'pending' AND u.normalized_descriptor = g.normalized_descriptor
           ORDER BY u.raw_descriptor LIMIT 5) s), '{}') AS samples,
       coalesce((SELECT u.candidates FROM unmapped_transactions u
           WHERE u.status = 'pending' AND u.normalized_descriptor = g.normalized_descriptor
           ORDER BY u.created_at DESC, u.id DESC LIMIT 1), '[]'::jsonb) AS candidates,
       {MCC_MIX} AS mcc_mix, {STATES} AS states, g.brand_suspected,
       (SELECT count(*) FILTER (WHERE needs_person) FROM groups) AS review_groups,
       (SELECT count(*) FILTER (WHERE NOT needs_person) FROM groups) AS local_groups
FROM g ORDER BY g.at_stake DESC, g.normalized_descriptor";

/// The counts of both parts when the page is empty (past the last group, or a part with none).
const PART_COUNTS: &str = "
SELECT count(*) FILTER (WHERE needs_person), count(*) FILTER (WHERE NOT needs_person)
FROM review_groups";

/// Pending unresolved descriptors, grouped and ranked by money at stake: the part that needs a
/// person (default), or the local shops counted in their category.
#[utoipa::path(
    get, path = "/v1/admin/review", tag = "admin", params(QueueParams),
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
    ApiQuery(params): ApiQuery<QueueParams>,
) -> Result<Json<ReviewQueue>, ApiError> {
    let limit = PageLimit::or(params.limit, 50, state.inner.settings.limits.max_page_size)?;
    let offset = params.offset.map_or(0, |Bounded(offset)| offset);
    let client = state.inner.db.get().await?;
    let sql = QUEUE
        .replace(
            "{MCC_MIX}",
            &top_values("coalesce(nullif(u.mcc, ''), 'unknown')"),
        )
        .replace("{STATES}", &top_values("u.region"));
    let part = params.part.unwrap_or(QueuePart::Review);
    let needs_person = part == QueuePart::Review;
    let rows = client
        .query(&sql, &[&limit, &offset, &needs_person])
        .await?;
    let shares = |value: serde_json::Value| -> Vec<Share> {
        serde_json::from_value(value).unwrap_or_default()
    };
    let (total_groups, review_groups, local_groups): (i64, i64, i64) = match rows.first() {
        Some(row) => (row.get(6), row.get(14), row.get(15)),
        None => {
            let counts = client.query_one(PART_COUNTS, &[]).await?;
            let (review, local) = (counts.get(0), counts.get(1));
            (if needs_person { review } else { local }, review, local)
        }
    };
    Ok(Json(ReviewQueue {
        part,
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
                brand_suspected: row.get(13),
            })
            .collect(),
        total_groups,
        review_groups,
        local_groups,
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
