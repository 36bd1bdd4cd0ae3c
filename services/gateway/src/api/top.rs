//! `GET /v1/top`: merchants ranked by net spend or by its growth.

use super::answer::{cached, today, OutputFormat};
use super::growth::growth_of;
use crate::cache::Dependency;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::query::{self, DateRange, GrowthPeriod, Metric, RankBy, TopParams, TopQuery};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Merchants ranked by net spend or by its growth.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopAnswer {
    pub by: RankBy,
    pub period: GrowthPeriod,
    #[schema(value_type = Option<String>)]
    pub category: Option<String>,
    pub states: Vec<String>,
    pub current_period: DateRange,
    pub previous_period: DateRange,
    pub merchants: Vec<TopMerchant>,
    pub as_of_data: Option<DateTime<Utc>>,
    pub k_anonymity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TopMerchant {
    pub rank: u32,
    pub merchant_id: i64,
    pub name: String,
    pub category: String,
    /// Net spend in dollars over the current period.
    pub current_spend: f64,
    /// Net spend over the previous period; null when withheld.
    pub previous_spend: Option<f64>,
    pub growth: Option<f64>,
}

/// Top merchants by net spend or growth.
#[utoipa::path(
    get, path = "/v1/top", tag = "data", params(TopParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Ranked merchants; also text/csv", body = TopAnswer),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn top(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<TopParams>,
) -> Result<Response, ApiError> {
    let format = OutputFormat::negotiate(params.format.as_deref(), &headers)?;
    let query = TopQuery::parse(&params, today())?;
    let dependency = match query.category {
        Some(category) => Dependency::Category(category),
        None => Dependency::All,
    };
    let answer = cached(&state, &headers, query.canonical(), dependency, || async {
        let (current_period, previous_period) = query.period.ranges(query.as_of);
        let mut client = state.inner.read_db.get().await?;
        let snapshot = query::read_snapshot(&mut client).await?;
        let as_of = query::data_as_of(&snapshot).await?;
        let k = query::disclosure_k(&snapshot).await?;
        let rows = query::merchant_periods(
            &snapshot,
            query.category,
            &query.states,
            current_period,
            previous_period,
        )
        .await?;
        snapshot.commit().await?;
        let total = rows.len();
        // A merchant without a released cell in the current period is left out entirely:
        // ranking it would reveal where it stands.
        let mut ranked: Vec<TopMerchant> = rows
            .into_iter()
            .filter(|row| row.current.released())
            .map(|row| {
                let current_spend = row.current.value(Metric::Spend).unwrap_or(0.0);
                let previous_spend = row
                    .previous
                    .released()
                    .then(|| row.previous.value(Metric::Spend))
                    .flatten();
                TopMerchant {
                    rank: 0,
                    merchant_id: row.merchant_id,
                    name: row.name,
                    category: row.category,
                    current_spend,
                    previous_spend,
                    growth: growth_of(Some(current_spend), previous_spend),
                }
            })
            .collect();
        let eligible = ranked.len();
        match query.by {
            RankBy::Spend => ranked.sort_by(|a, b| {
                b.current_spend
                    .total_cmp(&a.current_spend)
                    .then(a.merchant_id.cmp(&b.merchant_id))
            }),
            RankBy::Growth => {
                ranked.retain(|m| m.growth.is_some());
                ranked.sort_by(|a, b| {
                    b.growth
                        .unwrap_or(f64::MIN)
                        .total_cmp(&a.growth.unwrap_or(f64::MIN))
                        .then(a.merchant_id.cmp(&b.merchant_id))
                });
            }
        }
        ranked.truncate(usize::try_from(query.limit).unwrap_or(10));
        for (index, merchant) in ranked.iter_mut().enumerate() {
            merchant.rank = u32::try_from(index + 1).unwrap_or(u32::MAX);
        }
        let body = TopAnswer {
            by: query.by,
            period: query.period,
            category: query.category.map(|c| c.as_str().to_owned()),
            states: query.states.clone(),
            current_period,
            previous_period,
            merchants: ranked,
            as_of_data: as_of,
            k_anonymity: k,
            suppression: (eligible < total).then(|| {
                format!(
                    "{} merchant(s) are left out: their current period covers fewer than {k} \
                     distinct customers (HyperLogLog estimate)",
                    total - eligible
                )
            }),
        };
        Ok((body, as_of))
    })
    .await?;
    Ok(answer.respond(format))
}
