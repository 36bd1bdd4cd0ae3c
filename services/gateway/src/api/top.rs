//! `GET /v1/top`: merchants ranked by net spend or by its growth.

use super::answer::{cached, negotiate, today};
use super::growth::growth_of;
use crate::cache::Dependency;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::query::{
    self, DateRange, Direction, GrowthPeriod, Missing, PanelCoverage, RankBy, TopParams, TopQuery,
};
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
    /// up: largest first; down: smallest first.
    pub direction: Direction,
    /// The size floor applied, in whole dollars (current spend by spend, previous by growth).
    pub min_spend: i64,
    pub period: GrowthPeriod,
    #[schema(value_type = Option<String>)]
    pub category: Option<String>,
    pub states: Vec<String>,
    pub current_period: DateRange,
    pub previous_period: DateRange,
    pub merchants: Vec<TopMerchant>,
    /// Why no merchant has a growth: a period is wholly or partly outside the panel (the same
    /// rule as `/v1/growth`); absent when growth is defined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_reason: Option<Missing>,
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
        (status = 200, description = "Ranked merchants (also text/csv)", body = TopAnswer,
         links(("growth" = (operation_id = "growth",
                            parameters(("merchant" = "$response.body#/merchants/0/merchant_id")))))),
    )
)]
pub async fn top(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<TopParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let query = TopQuery::parse(&params, today());
    let dependency = match query.category {
        Some(category) => Dependency::Category(category),
        None => Dependency::All,
    };
    let answer = cached(&state, &headers, query.canonical(), dependency, || async {
        let (current_period, previous_period) = query.period.ranges(query.as_of);
        let mut client = state.inner.read_db.get().await?;
        let snapshot = query::read_snapshot(&mut client).await?;
        let (basis, rows) = tokio::try_join!(
            query::basis(&snapshot),
            query::merchant_periods(
                &snapshot,
                query.category,
                &query.states,
                current_period,
                previous_period,
            ),
        )?;
        let (as_of, k, coverage) = (basis.as_of, basis.k, basis.coverage);
        let growth_reason = incomparable(&coverage, current_period, previous_period);
        snapshot.commit().await?;
        let total = rows.len();
        // A merchant without a released cell in the current period is left out entirely:
        // ranking it would reveal where it stands.
        let mut ranked: Vec<TopMerchant> = rows
            .into_iter()
            .filter(|row| row.current.released())
            .map(|row| {
                let current_spend = row.current.spend();
                let previous_spend = row.previous.released().then(|| row.previous.spend());
                TopMerchant {
                    rank: 0,
                    merchant_id: row.merchant_id,
                    name: row.name,
                    category: row.category,
                    current_spend,
                    previous_spend,
                    growth: growth_of(Some(current_spend), previous_spend)
                        .filter(|_| growth_reason.is_none()),
                }
            })
            .collect();
        let eligible = ranked.len();
        rank(&mut ranked, &query);
        ranked.truncate(usize::try_from(query.limit).unwrap_or(10));
        for (index, merchant) in ranked.iter_mut().enumerate() {
            merchant.rank = u32::try_from(index + 1).unwrap_or(u32::MAX);
        }
        let body = TopAnswer {
            by: query.by,
            direction: query.direction,
            min_spend: query.min_spend,
            period: query.period,
            category: query.category.map(|c| c.as_str().to_owned()),
            states: query.states.clone(),
            current_period,
            previous_period,
            merchants: ranked,
            growth_reason,
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

/// Keeps the merchants above the size floor and sorts them: by spend or growth, largest first
/// (up) or smallest first (down); ties by merchant id. Ranking by growth leaves out merchants
/// without one (no released previous period, or no positive base).
fn rank(merchants: &mut Vec<TopMerchant>, query: &TopQuery) {
    let floor = query.min_spend as f64;
    let key = |m: &TopMerchant| match query.by {
        RankBy::Spend => Some(m.current_spend),
        RankBy::Growth => m.growth,
    };
    merchants.retain(|m| {
        let size = match query.by {
            RankBy::Spend => Some(m.current_spend),
            RankBy::Growth => m.previous_spend,
        };
        key(m).is_some() && size.is_some_and(|size| size >= floor)
    });
    merchants.sort_by(|a, b| {
        let (a_key, b_key) = (key(a).unwrap_or(0.0), key(b).unwrap_or(0.0));
        let order = match query.direction {
            Direction::Up => b_key.total_cmp(&a_key),
            Direction::Down => a_key.total_cmp(&b_key),
        };
        order.then(a.merchant_id.cmp(&b.merchant_id))
    });
}

/// Why two periods cannot be compared: either has no data, or only part of it has (the rule
/// of `/v1/growth`, which a ranking shares so that no growth is computed from missing days).
fn incomparable(
    coverage: &PanelCoverage,
    current: DateRange,
    previous: DateRange,
) -> Option<Missing> {
    let missing = coverage
        .covered(previous)
        .err()
        .or_else(|| coverage.covered(current).err());
    missing.or_else(|| {
        (coverage.covers_part(previous) || coverage.covers_part(current))
            .then_some(Missing::PartialPeriod)
    })
}
