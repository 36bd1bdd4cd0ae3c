//! `GET /v1/timeseries`: a metric per day, week or month.

use super::answer::{
    cached, dependency_of, resolve_scope, subject_of, suppression_note, today, OutputFormat,
    Subject,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::query::{self, Granularity, Metric, TimeseriesParams, TimeseriesQuery};
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
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Point {
    /// The first day of the period (weeks start on Monday).
    #[schema(value_type = String, format = Date)]
    pub period_start: NaiveDate,
    /// Null when suppressed (or an average ticket without sales).
    pub value: Option<f64>,
    pub suppressed: bool,
}

/// Time series of a metric for a category, a merchant, a brand or everything.
#[utoipa::path(
    get, path = "/v1/timeseries", tag = "data", params(TimeseriesParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The series; also text/csv", body = TimeseriesAnswer,
         headers(("X-Cache" = String, description = "hit, miss, bypass or unavailable"),
                 ("X-Data-As-Of" = String, description = "newest aggregator commit included"),
                 ("Age" = u64, description = "seconds since the answer was computed"))),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 404, description = "Unknown merchant or brand", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn timeseries(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<TimeseriesParams>,
) -> Result<Response, ApiError> {
    let format = OutputFormat::negotiate(params.format.as_deref(), &headers)?;
    let limits = state.inner.settings.limits;
    let query = TimeseriesQuery::parse(&params, &limits, today())?;
    let scope = resolve_scope(&state, &query.scope).await?;
    let answer = cached(
        &state,
        &headers,
        query.canonical(),
        dependency_of(&scope),
        || async {
            let mut client = state.inner.read_db.get().await?;
            let snapshot = query::read_snapshot(&mut client).await?;
            let as_of = query::data_as_of(&snapshot).await?;
            let subject = subject_of(&snapshot, &query.scope, &scope).await?;
            let starts = query.granularity.period_starts(query.from, query.to);
            let totals =
                query::series(&snapshot, &scope, query.granularity, &starts, &query.states).await?;
            snapshot.commit().await?;
            let k = limits.k_anonymity;
            let points: Vec<Point> = starts
                .iter()
                .zip(&totals)
                .map(|(start, cell)| {
                    let suppressed = cell.suppressed(k);
                    Point {
                        period_start: *start,
                        value: if suppressed {
                            None
                        } else {
                            cell.value(query.metric)
                        },
                        suppressed,
                    }
                })
                .collect();
            let withheld = points.iter().filter(|p| p.suppressed).count();
            let body = TimeseriesAnswer {
                suppression: suppression_note(withheld, points.len(), k),
                query: TimeseriesEcho {
                    metric: query.metric,
                    granularity: query.granularity,
                    from: query.from,
                    to: query.to,
                    states: query.states.clone(),
                },
                subject,
                unit: query.metric.unit().to_owned(),
                points,
                as_of,
                k_anonymity: k,
            };
            Ok((body, as_of))
        },
    )
    .await?;
    Ok(answer.respond(format))
}
