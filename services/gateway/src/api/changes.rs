//! `GET /v1/changes`: why a number changed. Every correction, retraction (a restated day) and
//! review decision that moved a published aggregate, per merchant × region × day, with the
//! provider's file that caused it. A change to a cell covering fewer than k distinct customers
//! is withheld like the cell itself: a one-row correction would otherwise show one person's
//! transaction.

use super::answer::{negotiate, resolve_scope, today, uncached};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::query::{self, Bounded, ChangesParams, Day, PageLimit, Scope, ScopeParam};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangesAnswer {
    pub changes: Vec<Change>,
    /// Changes in all pages.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    #[schema(value_type = String, format = Date)]
    pub since: NaiveDate,
    pub k_anonymity: u32,
}

/// One change to one (merchant, state, day) cell.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// correction, retraction or review.
    pub cause: String,
    /// The provider and file that restated it (null for a review decision).
    pub provider: Option<String>,
    pub file: Option<String>,
    pub merchant_id: i64,
    pub merchant_name: String,
    pub category: String,
    pub state: String,
    #[schema(value_type = String, format = Date)]
    pub day: NaiveDate,
    /// Provider rows changed (null when withheld).
    pub rows: Option<i64>,
    /// Net spend added (negative: taken out), dollars; null when withheld.
    pub delta_spend: Option<f64>,
    /// Transactions added (negative: taken out); null when withheld.
    pub delta_transactions: Option<i64>,
    /// The cell covers fewer than `k_anonymity` distinct customers: the amounts are withheld.
    pub withheld: bool,
    pub recorded_at: DateTime<Utc>,
}

const CHANGES: &str = "
SELECT c.cause, c.provider, c.file, c.merchant_id, m.name, m.category, c.region, c.metric_date,
       c.rows_changed, c.delta_spend_cents, c.delta_transactions, c.created_at,
       coalesce(hll_cardinality(d.customers), 0)::float8, count(*) OVER ()
FROM aggregate_changes c
JOIN dim_merchants m ON m.id = c.merchant_id
LEFT JOIN agg_daily_merchant_spend d
  ON d.merchant_id = c.merchant_id AND d.region = c.region AND d.metric_date = c.metric_date
WHERE c.created_at >= $1::date
  AND ($2::bigint IS NULL OR c.merchant_id = $2)
  AND (cardinality($3::text[]) = 0 OR m.category = ANY($3))
  AND (cardinality($4::text[]) = 0 OR c.region = ANY($4))
  AND ($5::date IS NULL OR c.metric_date >= $5) AND ($6::date IS NULL OR c.metric_date <= $6)
ORDER BY c.created_at DESC, c.id DESC
LIMIT $7 OFFSET $8";

/// Why numbers changed: corrections, retractions and review decisions, newest first.
#[utoipa::path(
    get, path = "/v1/changes", tag = "data", params(ChangesParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Changes, newest first (also text/csv)", body = ChangesAnswer),
        (status = 404, description = "Unknown merchant or brand", body = ErrorBody),
    )
)]
pub async fn changes(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ChangesParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let limits = state.inner.settings.limits;
    let scope = ScopeParam::of(params.category, params.merchant, params.brand.as_ref())?;
    let scope = resolve_scope(&state, &scope).await?;
    let states = params.state.unwrap_or_default().0;
    let since = params.since.map_or(today() - Days::new(30), |Day(day)| day);
    let from = params.from.map(|Day(day)| day);
    let to = params.to.map(|Day(day)| day);
    let limit = PageLimit::or(params.limit, 100, limits.max_page_size)?;
    let offset = params.offset.map_or(0, |Bounded(offset)| offset);
    let (merchant, categories): (Option<i64>, Vec<String>) = match scope {
        Scope::All => (None, Vec::new()),
        Scope::Category(category) => (None, vec![category.as_str().to_owned()]),
        Scope::Merchant(id) => (Some(id), Vec::new()),
    };
    let mut client = state.inner.read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let basis = query::basis(&snapshot).await?;
    let (as_of, k) = (basis.as_of, basis.k);
    let rows = snapshot
        .query(
            CHANGES,
            &[
                &since,
                &merchant,
                &categories,
                &states,
                &from,
                &to,
                &limit,
                &offset,
            ],
        )
        .await?;
    snapshot.commit().await?;
    let total = rows.first().map_or(0, |row| row.get::<_, i64>(13));
    let changes = rows
        .iter()
        .map(|row| {
            let customers: f64 = row.get(12);
            let withheld = customers.round() < f64::from(k);
            let merchant_id: i64 = row.get(3);
            Change {
                cause: row.get(0),
                provider: row.get(1),
                file: row.get(2),
                merchant_id,
                merchant_name: row.get(4),
                category: row.get(5),
                state: row.get(6),
                day: row.get(7),
                rows: (!withheld).then(|| row.get(8)),
                delta_spend: (!withheld).then(|| row.get::<_, i64>(9) as f64 / 100.0),
                delta_transactions: (!withheld).then(|| row.get(10)),
                withheld,
                recorded_at: row.get(11),
            }
        })
        .collect();
    let body = ChangesAnswer {
        changes,
        total,
        limit,
        offset,
        since,
        k_anonymity: k,
    };
    Ok(uncached(body, as_of).respond(format))
}
