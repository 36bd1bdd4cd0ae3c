//! `GET /v1/timeseries`: a metric per day, week or month.

use super::answer::{
    cached, negotiate, resolve_scope, subject_of, suppression_note, today, Subject,
};
use super::panel;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::query::{
    self, attributed_share, DateRange, Granularity, Metric, Normalize, RowSet, Scope,
    TimeseriesParams, TimeseriesQuery, Totals,
};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A series: one point per day, week or month.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimeseriesAnswer {
    pub query: TimeseriesEcho,
    pub subject: Subject,
    /// usd (dollars, cents precision) or count.
    pub unit: String,
    pub points: Vec<Point>,
    /// The newest aggregator commit included (RFC 3339); null before the first.
    pub as_of: Option<DateTime<Utc>>,
    pub k_anonymity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
    /// For a category or all merchants: the share of the series' net spend at named brands (the
    /// rest is at shops whose brand is not known, counted by category), over released cells.
    /// Null for a merchant or without net spend.
    pub attributed_share: Option<f64>,
}

/// The query as understood, with defaults filled in.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimeseriesEcho {
    pub metric: Metric,
    pub granularity: Granularity,
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// Empty: every region.
    pub states: Vec<String>,
    /// panel when the values are per active card; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<Normalize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Point {
    /// The first day of the period (weeks start on Monday).
    #[schema(value_type = String, format = Date)]
    pub period_start: NaiveDate,
    /// The metric over the period's released cells; null when suppressed (or an average
    /// ticket without sales). With normalize=panel, per active card of the panel.
    pub value: Option<f64>,
    /// Every cell of the period with activity covers fewer than k customers.
    pub suppressed: bool,
    /// Cells (merchant × state × day) left out of the value: fewer than k customers.
    pub withheld_cells: i64,
    /// For a category or all merchants: the share of this period's net spend at named brands;
    /// null for a merchant, without net spend, or when withheld.
    pub attributed_share: Option<f64>,
    /// normalize=panel: the metric, not divided; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_value: Option<f64>,
    /// normalize=panel: active cards of the panel in the states and the whole period, over
    /// panel cells (provider × state × day) with at least k cards, an HLL estimate (relative
    /// standard error 0.81 %); absent otherwise or when withheld.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panel_cards: Option<f64>,
}

/// Time series of a metric for a category, a merchant, a brand or everything.
#[utoipa::path(
    get, path = "/v1/timeseries", tag = "data", params(TimeseriesParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The series (also text/csv)", body = TimeseriesAnswer),
        (status = 404, description = "Unknown merchant or brand", body = ErrorBody),
    )
)]
pub async fn timeseries(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<TimeseriesParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let limits = state.inner.settings.limits;
    let query = TimeseriesQuery::parse(&params, &limits, today())?;
    let scope = resolve_scope(&state, &query.scope).await?;
    let answer = cached(
        &state,
        &headers,
        query.canonical(),
        panel::dependency(query.normalize, &scope),
        || async {
            let body = compute_timeseries(&state.inner.read_db, &query, &scope).await?;
            let as_of = body.as_of;
            Ok((body, as_of))
        },
    )
    .await?;
    Ok(answer.respond(format))
}

/// The series for a validated query, computed from one read-only snapshot without the cache.
pub async fn compute_timeseries(
    read_db: &deadpool_postgres::Pool,
    query: &TimeseriesQuery,
    scope: &Scope,
) -> Result<TimeseriesAnswer, ApiError> {
    let mut client = read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let as_of = query::data_as_of(&snapshot).await?;
    let k = query::disclosure_k(&snapshot).await?;
    let subject = subject_of(&snapshot, &query.scope, scope).await?;
    let starts = query.granularity.period_starts(query.from, query.to);
    let totals = query::series(
        &snapshot,
        &RowSet::of(scope),
        query.granularity,
        &starts,
        &query.states,
    )
    .await?;
    let unattributed = match RowSet::unattributed_of(scope) {
        Some(rows) => {
            Some(query::series(&snapshot, &rows, query.granularity, &starts, &query.states).await?)
        }
        None => None,
    };
    let panel_totals = match query.normalize {
        Normalize::Panel => {
            let ranges: Vec<DateRange> = starts
                .iter()
                .map(|&from| DateRange {
                    from,
                    to: query.granularity.period_end(from),
                })
                .collect();
            Some(query::panel_totals(&snapshot, &ranges, &query.states).await?)
        }
        Normalize::None => None,
    };
    snapshot.commit().await?;
    let points: Vec<Point> = starts
        .iter()
        .zip(&totals)
        .enumerate()
        .map(|(index, (start, cell))| {
            let suppressed = cell.suppressed();
            let share = unattributed
                .as_ref()
                .and_then(|u| u.get(index))
                .and_then(|u| attributed_share(cell, u));
            let value = if suppressed {
                None
            } else {
                cell.value(query.metric)
            };
            let cards = panel_totals.as_ref().and_then(|p| p.get(index));
            Point {
                period_start: *start,
                value: cards.map_or(value, |cards| panel::per_card(value, cards)),
                suppressed,
                withheld_cells: cell.withheld_cells,
                attributed_share: share.filter(|_| !suppressed),
                raw_value: cards.and(value),
                panel_cards: cards.and_then(panel::cards),
            }
        })
        .collect();
    let sum = |cells: &[Totals]| {
        cells
            .iter()
            .fold(Totals::default(), |acc, t| acc.plus_sums(t))
    };
    let whole = sum(&totals);
    let whole_share = unattributed
        .as_ref()
        .and_then(|u| attributed_share(&whole, &sum(u)));
    let suppressed = points.iter().filter(|p| p.suppressed).count();
    Ok(TimeseriesAnswer {
        suppression: suppression_note(suppressed, points.len(), whole.withheld_cells, k),
        query: TimeseriesEcho {
            metric: query.metric,
            granularity: query.granularity,
            from: query.from,
            to: query.to,
            states: query.states.clone(),
            normalize: panel::echo(query.normalize),
        },
        subject,
        unit: query.metric.unit().to_owned(),
        points,
        as_of,
        k_anonymity: k,
        attributed_share: whole_share,
    })
}
