//! `GET /v1/timeseries`: a metric per day, week, calendar month or calendar quarter.

use super::answer::{
    cached, negotiate, resolve_scope, subject_of, suppression_note, today, Subject,
};
use super::panel;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::query::{
    self, attributed_share, DateRange, Granularity, Metric, Missing, Normalize, PanelCoverage,
    PanelTotals, PeriodSpan, RowSet, Scope, TimeseriesParams, TimeseriesQuery, Totals,
};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryFutureExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A series: one point per day, week, calendar month or calendar quarter.
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
    /// The days with data: the first point before `panel.first_day` is where the panel starts.
    pub panel: PanelCoverage,
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

/// One period. A week is Monday to Sunday, a month and a quarter are calendar ones; a period
/// that reaches outside from/to counts only the days inside (`clipped`), so no point includes
/// a day that was not asked for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Point {
    /// The first day of the calendar period (weeks start on Monday).
    #[schema(value_type = String, format = Date)]
    pub period_start: NaiveDate,
    /// The last day of the calendar period.
    #[schema(value_type = String, format = Date)]
    pub period_end: NaiveDate,
    /// The days the value counts: the period within from/to.
    pub counted: DateRange,
    /// The metric over the counted days' released cells; null when there is no data (see
    /// `reason`), never a zero standing for missing data. With normalize=panel, per active
    /// card of the panel over the same days.
    pub value: Option<f64>,
    /// Why `value` is null; absent when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Missing>,
    /// The period reaches outside from/to: only the days inside are counted.
    pub clipped: bool,
    /// The value covers fewer days than the whole period: clipped, or partly before the panel
    /// starts or after its last delivered day.
    pub partial: bool,
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
    /// normalize=panel: active cards of the panel in the states and the counted days, over
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
    let spans = query.spans();
    let (rows, unattributed_rows) = (RowSet::of(scope), RowSet::unattributed_of(scope));
    // Over the days each point counts, so a clipped point divides like for like.
    let panel_ranges: Option<Vec<DateRange>> = matches!(query.normalize, Normalize::Panel)
        .then(|| spans.iter().map(|span| span.counted).collect());
    let (basis, subject, totals, unattributed, panel_totals) = tokio::try_join!(
        query::basis(&snapshot).err_into(),
        subject_of(&snapshot, &query.scope, scope),
        query::series(&snapshot, &rows, query.granularity, &spans, &query.states).err_into(),
        query::optional(unattributed_rows.as_ref().map(|rows| {
            query::series(&snapshot, rows, query.granularity, &spans, &query.states)
        }))
        .err_into(),
        query::optional(panel_ranges.as_ref().map(|ranges| query::panel_totals(
            &snapshot,
            ranges,
            &query.states
        )))
        .err_into(),
    )?;
    let (as_of, k, coverage) = (basis.as_of, basis.k, basis.coverage);
    snapshot.commit().await?;
    let points: Vec<Point> = spans
        .iter()
        .zip(&totals)
        .enumerate()
        .map(|(index, (span, cell))| {
            let part = unattributed.as_ref().and_then(|u| u.get(index));
            let cards = panel_totals.as_ref().and_then(|p| p.get(index));
            point(span, cell, part, cards, query.metric, &coverage)
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
        panel: coverage,
    })
}

/// One point: its value over the released cells of the counted days (per active card over the
/// same days when `cards` is given: normalize=panel), or null with the reason.
fn point(
    span: &PeriodSpan,
    cell: &Totals,
    unattributed: Option<&Totals>,
    cards: Option<&PanelTotals>,
    metric: Metric,
    coverage: &PanelCoverage,
) -> Point {
    let raw = value_or_reason(cell, metric, coverage.covered(span.counted).err());
    let value = cards.map_or(raw, |cards| panel::divide(raw, cards));
    let suppressed = cell.suppressed();
    Point {
        period_start: span.whole.from,
        period_end: span.whole.to,
        counted: span.counted,
        value: value.ok(),
        reason: value.err(),
        clipped: span.clipped(),
        partial: span.partial(coverage),
        suppressed,
        withheld_cells: cell.withheld_cells,
        attributed_share: unattributed
            .and_then(|u| attributed_share(cell, u))
            .filter(|_| !suppressed),
        raw_value: cards.and(raw.ok()),
        panel_cards: cards.and_then(panel::cards),
    }
}

/// The value of `metric` over released cells, or why there is none: no data for the days
/// (`outside`, the panel's reason), every cell withheld, or a ratio without a base.
pub(crate) fn value_or_reason(
    cell: &Totals,
    metric: Metric,
    outside: Option<Missing>,
) -> Result<f64, Missing> {
    if let Some(reason) = outside {
        return Err(reason);
    }
    if cell.suppressed() {
        return Err(Missing::Withheld);
    }
    cell.value(metric).ok_or(match metric {
        Metric::AvgTicket => Missing::NoSales,
        _ => Missing::NoCustomers,
    })
}
