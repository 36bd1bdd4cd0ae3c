//! `GET /v1/merchants`, `/v1/categories` and `/v1/freshness`: reference lists, never cached
//! (small and cheap).

use super::answer::{negotiate, uncached};
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::query::{self, FormatParams, MerchantSearch, MerchantsParams};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MerchantsAnswer {
    pub merchants: Vec<MerchantSummary>,
    /// Matches in all pages.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MerchantSummary {
    pub id: i64,
    pub name: String,
    pub category: String,
    pub brand_id: Option<String>,
    pub ticker_symbol: Option<String>,
}

/// Searches merchants by name.
#[utoipa::path(
    get, path = "/v1/merchants", tag = "reference", params(MerchantsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Matching merchants (also text/csv)", body = MerchantsAnswer,
         links(("timeseries" = (operation_id = "timeseries",
                                parameters(("merchant" = "$response.body#/merchants/0/id")))),
               ("growth" = (operation_id = "growth",
                            parameters(("merchant" = "$response.body#/merchants/0/id")))))),
    )
)]
pub async fn merchants(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<MerchantsParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let search = MerchantSearch::parse(&params, &state.inner.settings.limits)?;
    let (contains, starts_with) = match &search.text {
        Some(text) => {
            let escaped = query::escape_like(text);
            (Some(format!("%{escaped}%")), format!("{escaped}%"))
        }
        None => (None, "%".to_owned()),
    };
    let categories: Vec<String> = search
        .category
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let mut client = state.inner.read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let as_of = query::basis(&snapshot).await?.as_of;
    let rows = snapshot
        .query(
            "SELECT id, name, category, brand_id, ticker_symbol, count(*) OVER () AS total
             FROM dim_merchants
             WHERE NOT unattributed AND ($1::text IS NULL OR name ILIKE $1 ESCAPE '\\')
               AND (cardinality($2::text[]) = 0 OR category = ANY($2::text[]))
             ORDER BY (name ILIKE $3 ESCAPE '\\') DESC, lower(name), id
             LIMIT $4 OFFSET $5",
            &[
                &contains,
                &categories,
                &starts_with,
                &search.limit,
                &search.offset,
            ],
        )
        .await?;
    snapshot.commit().await?;
    let total = rows.first().map_or(0, |row| row.get::<_, i64>(5));
    let body = MerchantsAnswer {
        merchants: rows
            .iter()
            .map(|row| MerchantSummary {
                id: row.get(0),
                name: row.get(1),
                category: row.get(2),
                brand_id: row.get(3),
                ticker_symbol: row.get(4),
            })
            .collect(),
        total,
        limit: search.limit,
        offset: search.offset,
    };
    Ok(uncached(body, as_of).respond(format))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CategoriesAnswer {
    pub categories: Vec<CategorySummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CategorySummary {
    pub category: String,
    pub label: String,
    pub merchants: i64,
}

/// Every category, with its label and number of merchants.
#[utoipa::path(
    get, path = "/v1/categories", tag = "reference", params(FormatParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Categories (also text/csv)", body = CategoriesAnswer),
    )
)]
pub async fn categories(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<FormatParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let mut client = state.inner.read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let as_of = query::basis(&snapshot).await?.as_of;
    let rows = snapshot
        .query(
            "SELECT c.category, c.label, count(m.id)
             FROM categories c
             LEFT JOIN dim_merchants m ON m.category = c.category AND NOT m.unattributed
             GROUP BY c.category, c.label ORDER BY c.category",
            &[],
        )
        .await?;
    snapshot.commit().await?;
    let body = CategoriesAnswer {
        categories: rows
            .iter()
            .map(|row| CategorySummary {
                category: row.get(0),
                label: row.get(1),
                merchants: row.get(2),
            })
            .collect(),
    };
    Ok(uncached(body, as_of).respond(format))
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FreshnessAnswer {
    /// The newest commit of any shard: what every answer's `X-Data-As-Of` says.
    pub as_of: Option<DateTime<Utc>>,
    pub age_seconds: Option<f64>,
    /// The newest transaction day with data (`panel.last_day`): how far the data reaches, as
    /// against `as_of`, when it was last aggregated.
    #[schema(value_type = Option<String>, format = Date)]
    pub last_transaction_day: Option<chrono::NaiveDate>,
    pub panel: crate::query::PanelCoverage,
    pub shards: Vec<ShardFreshness>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShardFreshness {
    pub shard: i32,
    pub stream_seq: i64,
    pub applied_events: i64,
    pub last_commit_at: Option<DateTime<Utc>>,
    pub age_seconds: Option<f64>,
}

/// How fresh the aggregates are, per shard.
#[utoipa::path(
    get, path = "/v1/freshness", tag = "reference", params(FormatParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Freshness per shard (also text/csv)", body = FreshnessAnswer),
    )
)]
pub async fn freshness(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<FormatParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let mut client = state.inner.read_db.get().await?;
    let snapshot = crate::query::read_snapshot(&mut client).await?;
    let panel = crate::query::basis(&snapshot).await?.coverage;
    let rows = snapshot
        .query(
            "SELECT shard, stream_seq, applied_events, last_commit_at,
                    extract(epoch FROM now() - last_commit_at)::float8
             FROM shard_offsets ORDER BY shard",
            &[],
        )
        .await?;
    snapshot.commit().await?;
    let shards: Vec<ShardFreshness> = rows
        .iter()
        .map(|row| ShardFreshness {
            shard: row.get(0),
            stream_seq: row.get(1),
            applied_events: row.get(2),
            last_commit_at: row.get(3),
            age_seconds: row.get(4),
        })
        .collect();
    let newest = shards
        .iter()
        .filter_map(|s| s.last_commit_at.map(|at| (at, s.age_seconds)))
        .max_by_key(|(at, _)| *at);
    let body = FreshnessAnswer {
        as_of: newest.map(|(at, _)| at),
        age_seconds: newest.and_then(|(_, age)| age),
        last_transaction_day: panel.last_day,
        panel,
        shards,
    };
    let as_of = body.as_of;
    Ok(uncached(body, as_of).respond(format))
}
