//! The data routes: what each answers, how it is computed, and the cache-aside path every
//! cacheable answer takes (lookup by canonical query and generations, compute from one
//! read-only snapshot on a miss, store, and say which in `X-Cache`, `Age`, `X-Data-As-Of`).

use crate::cache::{CacheStatus, CachedAnswer, Dependency};
use crate::csv::{render_csv, CsvTable};
use crate::error::{ApiError, ErrorBody};
use crate::query::{
    self, ApiQuery, DateRange, FormatParams, Granularity, GrowthByStateParams, GrowthParams,
    GrowthPeriod, GrowthQuery, MerchantSearch, MerchantsParams, Metric, RankBy, Scope, ScopeParam,
    TimeseriesParams, TimeseriesQuery, TopParams, TopQuery, Totals,
};
use crate::{header_value, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::future::Future;
use utoipa::ToSchema;

/// JSON (default) or CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Json,
    Csv,
}

impl OutputFormat {
    /// `?format=` wins; otherwise `Accept: text/csv` selects CSV.
    pub fn negotiate(param: Option<&str>, headers: &HeaderMap) -> Result<OutputFormat, ApiError> {
        match param {
            Some("json") => Ok(OutputFormat::Json),
            Some("csv") => Ok(OutputFormat::Csv),
            Some(other) => Err(ApiError::invalid(format!(
                "format={other:?} is not valid: expected json or csv"
            ))),
            None => {
                let wants_csv = headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|accept| accept.contains("text/csv"));
                Ok(if wants_csv {
                    OutputFormat::Csv
                } else {
                    OutputFormat::Json
                })
            }
        }
    }
}

/// An answer with what the cache did and how fresh it is.
pub struct Answer<T> {
    pub body: T,
    pub cache: CacheStatus,
    pub data_as_of: Option<DateTime<Utc>>,
    pub age_seconds: i64,
}

impl<T: Serialize + CsvTable> Answer<T> {
    pub fn respond(self, format: OutputFormat) -> Response {
        let mut response = match format {
            OutputFormat::Json => Json(&self.body).into_response(),
            OutputFormat::Csv => render_csv(&self.body),
        };
        let headers = response.headers_mut();
        headers.insert("x-cache", header_value(self.cache.as_str()));
        headers.insert(
            header::AGE,
            header_value(&self.age_seconds.max(0).to_string()),
        );
        if let Some(as_of) = self.data_as_of {
            headers.insert(
                "x-data-as-of",
                header_value(&as_of.to_rfc3339_opts(SecondsFormat::Millis, true)),
            );
        }
        response
    }
}

fn wants_fresh(headers: &HeaderMap) -> bool {
    let says_no_cache = |name: header::HeaderName| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("no-cache"))
    };
    says_no_cache(header::CACHE_CONTROL) || says_no_cache(header::PRAGMA)
}

/// The cache-aside path. Generations are read before computing, so an answer computed from
/// data older than an invalidation is stored under the old fingerprint and never served
/// after it.
pub async fn cached<T, F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    canonical: String,
    dependency: Dependency,
    compute: F,
) -> Result<Answer<T>, ApiError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(T, Option<DateTime<Utc>>), ApiError>>,
{
    let metrics = &state.inner.metrics;
    let cache = &state.inner.cache;
    let bypass = wants_fresh(headers);
    let slot = match cache.lookup(&canonical, &dependency, bypass).await {
        Ok((slot, Some(hit))) => match serde_json::from_value::<T>(hit.body) {
            Ok(body) => {
                metrics.cache_hit.increment(1);
                let age = (Utc::now().timestamp_millis() - hit.computed_at_ms) / 1000;
                return Ok(Answer {
                    body,
                    cache: CacheStatus::Hit,
                    data_as_of: hit.data_as_of,
                    age_seconds: age,
                });
            }
            Err(error) => {
                tracing::warn!(error = %error, "cached answer has an old shape; recomputing");
                Some(slot)
            }
        },
        Ok((slot, None)) => Some(slot),
        Err(()) => None,
    };
    let (body, data_as_of) = compute().await?;
    let status = match &slot {
        None => CacheStatus::Unavailable,
        Some(_) if bypass => CacheStatus::Bypass,
        Some(_) => CacheStatus::Miss,
    };
    match status {
        CacheStatus::Bypass => metrics.cache_bypass.increment(1),
        CacheStatus::Miss => metrics.cache_miss.increment(1),
        _ => {}
    }
    if let Some(slot) = slot {
        match serde_json::to_value(&body) {
            Ok(value) => {
                let answer = CachedAnswer {
                    computed_at_ms: Utc::now().timestamp_millis(),
                    data_as_of,
                    body: value,
                };
                cache.store(&slot, &answer).await;
            }
            Err(error) => tracing::error!(error = %error, "cannot serialise an answer"),
        }
    }
    Ok(Answer {
        body,
        cache: status,
        data_as_of,
        age_seconds: 0,
    })
}

/// Who or what an answer is about.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Subject {
    /// all, category or merchant.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
}

/// Resolves a brand to its merchant (remembered: brands never move).
async fn resolve_scope(state: &AppState, scope: &ScopeParam) -> Result<Scope, ApiError> {
    Ok(match scope {
        ScopeParam::All => Scope::All,
        ScopeParam::Category(category) => Scope::Category(*category),
        ScopeParam::Merchant(id) => Scope::Merchant(*id),
        ScopeParam::Brand(brand) => {
            let known = state
                .inner
                .brands
                .lock()
                .ok()
                .and_then(|brands| brands.get(brand).copied());
            let id = match known {
                Some(id) => id,
                None => {
                    let client = state.inner.read_db.get().await?;
                    let row = client
                        .query_opt("SELECT id FROM dim_merchants WHERE brand_id = $1", &[brand])
                        .await?
                        .ok_or_else(|| ApiError::NotFound(format!("no brand {brand:?}")))?;
                    let id: i64 = row.get(0);
                    if let Ok(mut brands) = state.inner.brands.lock() {
                        if brands.len() < 100_000 {
                            brands.insert(brand.clone(), id);
                        }
                    }
                    id
                }
            };
            Scope::Merchant(id)
        }
    })
}

fn dependency_of(scope: &Scope) -> Dependency {
    match scope {
        Scope::All => Dependency::All,
        Scope::Category(category) => Dependency::Category(*category),
        Scope::Merchant(id) => Dependency::Merchant(*id),
    }
}

/// The subject of an answer; a merchant must exist (404 otherwise).
async fn subject_of(
    client: &deadpool_postgres::Transaction<'_>,
    asked: &ScopeParam,
    scope: &Scope,
) -> Result<Subject, ApiError> {
    let brand = match asked {
        ScopeParam::Brand(brand) => Some(brand.clone()),
        _ => None,
    };
    Ok(match scope {
        Scope::All => Subject {
            kind: "all".to_owned(),
            category: None,
            merchant_id: None,
            merchant_name: None,
            brand,
        },
        Scope::Category(category) => Subject {
            kind: "category".to_owned(),
            category: Some(category.as_str().to_owned()),
            merchant_id: None,
            merchant_name: None,
            brand,
        },
        Scope::Merchant(id) => {
            let statement = client
                .prepare_cached("SELECT name, category FROM dim_merchants WHERE id = $1")
                .await?;
            let row = client
                .query_opt(&statement, &[id])
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no merchant {id}")))?;
            Subject {
                kind: "merchant".to_owned(),
                merchant_id: Some(*id),
                merchant_name: Some(row.get(0)),
                category: Some(row.get(1)),
                brand,
            }
        }
    })
}

fn suppression_note(withheld: usize, total: usize, k: u32) -> Option<String> {
    (withheld > 0).then(|| {
        format!(
            "{withheld} of {total} values are withheld (value null, suppressed true): they cover \
             fewer than {k} distinct customers (HyperLogLog estimate), the k-anonymity threshold"
        )
    })
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

// ---------------------------------------------------------------------------------------
// GET /v1/timeseries
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// GET /v1/growth
// ---------------------------------------------------------------------------------------

/// Growth of a metric between two periods of equal length.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrowthAnswer {
    pub query: GrowthEcho,
    pub subject: Subject,
    pub unit: String,
    /// The metric over the current period; null when suppressed.
    pub current: Option<f64>,
    /// The metric over the previous period; null when suppressed.
    pub previous: Option<f64>,
    /// (current - previous) / previous as a fraction (0.05 = +5 %); null when previous is 0
    /// or either value is withheld.
    pub growth: Option<f64>,
    pub current_period: DateRange,
    pub previous_period: DateRange,
    pub current_suppressed: bool,
    pub previous_suppressed: bool,
    /// The newest aggregator commit included.
    pub as_of_data: Option<DateTime<Utc>>,
    pub k_anonymity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrowthEcho {
    pub metric: Metric,
    pub period: GrowthPeriod,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    pub states: Vec<String>,
}

/// The two values of a growth answer and the growth between them, with the k-anonymity rule
/// applied: a period covering fewer than k distinct customers is withheld (null, flagged),
/// and so is any growth computed from it. `/v1/growth` and `/v1/growth/states` both use it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GrowthCells {
    current: Option<f64>,
    previous: Option<f64>,
    growth: Option<f64>,
    current_suppressed: bool,
    previous_suppressed: bool,
}

impl GrowthCells {
    fn of(current: Totals, previous: Totals, metric: Metric, k: u32) -> GrowthCells {
        let value = |cell: &Totals| {
            if cell.suppressed(k) {
                None
            } else {
                cell.value(metric)
            }
        };
        let (current_value, previous_value) = (value(&current), value(&previous));
        GrowthCells {
            current: current_value,
            previous: previous_value,
            growth: growth_of(current_value, previous_value),
            current_suppressed: current.suppressed(k),
            previous_suppressed: previous.suppressed(k),
        }
    }

    /// How many of the two values are withheld.
    fn withheld(&self) -> usize {
        usize::from(self.current_suppressed) + usize::from(self.previous_suppressed)
    }
}

/// Growth, rounded to 6 decimal places; `None` when the base is not positive.
pub fn growth_of(current: Option<f64>, previous: Option<f64>) -> Option<f64> {
    let (current, previous) = (current?, previous?);
    (previous > 0.0).then(|| (((current - previous) / previous) * 1e6).round() / 1e6)
}

/// Week-over-week, month-over-month (28 days) or year-over-year growth.
#[utoipa::path(
    get, path = "/v1/growth", tag = "data", params(GrowthParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Growth; also text/csv", body = GrowthAnswer),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 404, description = "Unknown merchant or brand", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn growth(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<GrowthParams>,
) -> Result<Response, ApiError> {
    let format = OutputFormat::negotiate(params.format.as_deref(), &headers)?;
    let query = GrowthQuery::parse(&params, today())?;
    let scope = resolve_scope(&state, &query.scope).await?;
    let k = state.inner.settings.limits.k_anonymity;
    let answer = cached(
        &state,
        &headers,
        query.canonical(),
        dependency_of(&scope),
        || async {
            let (current_period, previous_period) = query.period.ranges(query.as_of);
            let mut client = state.inner.read_db.get().await?;
            let snapshot = query::read_snapshot(&mut client).await?;
            let as_of = query::data_as_of(&snapshot).await?;
            let subject = subject_of(&snapshot, &query.scope, &scope).await?;
            let totals = query::range_totals(
                &snapshot,
                &scope,
                &[current_period, previous_period],
                &query.states,
            )
            .await?;
            snapshot.commit().await?;
            let cells = GrowthCells::of(
                totals.first().copied().unwrap_or_default(),
                totals.get(1).copied().unwrap_or_default(),
                query.metric,
                k,
            );
            let body = GrowthAnswer {
                query: GrowthEcho {
                    metric: query.metric,
                    period: query.period,
                    as_of: query.as_of,
                    states: query.states.clone(),
                },
                subject,
                unit: query.metric.unit().to_owned(),
                current: cells.current,
                previous: cells.previous,
                growth: cells.growth,
                current_period,
                previous_period,
                current_suppressed: cells.current_suppressed,
                previous_suppressed: cells.previous_suppressed,
                as_of_data: as_of,
                k_anonymity: k,
                suppression: suppression_note(cells.withheld(), 2, k),
            };
            Ok((body, as_of))
        },
    )
    .await?;
    Ok(answer.respond(format))
}

// ---------------------------------------------------------------------------------------
// GET /v1/growth/states
// ---------------------------------------------------------------------------------------

/// The growth of `/v1/growth` for every state at once: what the dashboard's map shows.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrowthByStateAnswer {
    pub query: GrowthByStateEcho,
    pub subject: Subject,
    pub unit: String,
    pub current_period: DateRange,
    pub previous_period: DateRange,
    /// Every US state with activity in either period, by code; a state not listed had none.
    pub states: Vec<StateGrowth>,
    /// The newest aggregator commit included.
    pub as_of_data: Option<DateTime<Utc>>,
    pub k_anonymity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrowthByStateEcho {
    pub metric: Metric,
    pub period: GrowthPeriod,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
}

/// One state's growth: the same numbers as `/v1/growth?state=<state>`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StateGrowth {
    /// Two-letter code, e.g. `CA`.
    pub state: String,
    /// The metric over the current period; null when suppressed.
    pub current: Option<f64>,
    /// The metric over the previous period; null when suppressed.
    pub previous: Option<f64>,
    /// (current - previous) / previous as a fraction; null when previous is 0 or either value
    /// is withheld.
    pub growth: Option<f64>,
    /// True when either period covers fewer than `k_anonymity` distinct customers.
    pub suppressed: bool,
    pub current_suppressed: bool,
    pub previous_suppressed: bool,
}

/// Week-over-week, month-over-month (28 days) or year-over-year growth for every state, in
/// one answer.
#[utoipa::path(
    get, path = "/v1/growth/states", tag = "data", params(GrowthByStateParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Growth per state; also text/csv", body = GrowthByStateAnswer,
         headers(("X-Cache" = String, description = "hit, miss, bypass or unavailable"),
                 ("X-Data-As-Of" = String, description = "newest aggregator commit included"),
                 ("Age" = u64, description = "seconds since the answer was computed"))),
        (status = 400, description = "Invalid parameter (including `state`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 404, description = "Unknown merchant or brand", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn growth_by_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<GrowthByStateParams>,
) -> Result<Response, ApiError> {
    let format = OutputFormat::negotiate(params.format.as_deref(), &headers)?;
    let query = GrowthQuery::parse_by_state(&params, today())?;
    let scope = resolve_scope(&state, &query.scope).await?;
    let k = state.inner.settings.limits.k_anonymity;
    // The same dependency as `/v1/growth` for this scope: any change to it reaches every state.
    let answer = cached(
        &state,
        &headers,
        query.canonical_by_state(),
        dependency_of(&scope),
        || async {
            let (current_period, previous_period) = query.period.ranges(query.as_of);
            let mut client = state.inner.read_db.get().await?;
            let snapshot = query::read_snapshot(&mut client).await?;
            let as_of = query::data_as_of(&snapshot).await?;
            let subject = subject_of(&snapshot, &query.scope, &scope).await?;
            let rows =
                query::range_totals_by_state(&snapshot, &scope, &[current_period, previous_period])
                    .await?;
            snapshot.commit().await?;
            let states: Vec<StateGrowth> = rows
                .into_iter()
                .map(|row| {
                    let cells = GrowthCells::of(
                        row.totals.first().copied().unwrap_or_default(),
                        row.totals.get(1).copied().unwrap_or_default(),
                        query.metric,
                        k,
                    );
                    StateGrowth {
                        state: row.state,
                        current: cells.current,
                        previous: cells.previous,
                        growth: cells.growth,
                        suppressed: cells.withheld() > 0,
                        current_suppressed: cells.current_suppressed,
                        previous_suppressed: cells.previous_suppressed,
                    }
                })
                .collect();
            let withheld = states.iter().filter(|s| s.suppressed).count();
            let body = GrowthByStateAnswer {
                query: GrowthByStateEcho {
                    metric: query.metric,
                    period: query.period,
                    as_of: query.as_of,
                },
                subject,
                unit: query.metric.unit().to_owned(),
                current_period,
                previous_period,
                suppression: (withheld > 0).then(|| {
                    format!(
                        "{withheld} of {} states are suppressed (suppressed true, withheld values \
                         null): a period covers fewer than {k} distinct customers (HyperLogLog \
                         estimate), the k-anonymity threshold",
                        states.len()
                    )
                }),
                states,
                as_of_data: as_of,
                k_anonymity: k,
            };
            Ok((body, as_of))
        },
    )
    .await?;
    Ok(answer.respond(format))
}

// ---------------------------------------------------------------------------------------
// GET /v1/top
// ---------------------------------------------------------------------------------------

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
    let k = state.inner.settings.limits.k_anonymity;
    let dependency = match query.category {
        Some(category) => Dependency::Category(category),
        None => Dependency::All,
    };
    let answer = cached(&state, &headers, query.canonical(), dependency, || async {
        let (current_period, previous_period) = query.period.ranges(query.as_of);
        let mut client = state.inner.read_db.get().await?;
        let snapshot = query::read_snapshot(&mut client).await?;
        let as_of = query::data_as_of(&snapshot).await?;
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
        // A merchant whose current period covers too few customers is left out entirely:
        // ranking it would reveal where it stands.
        let mut ranked: Vec<TopMerchant> = rows
            .into_iter()
            .filter(|row| row.current.customers > 0.0 && !row.current.suppressed(k))
            .map(|row| {
                let current_spend = row.current.value(Metric::Spend).unwrap_or(0.0);
                let previous_spend = (!row.previous.suppressed(k))
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

// ---------------------------------------------------------------------------------------
// GET /v1/merchants, /v1/categories, /v1/freshness (never cached: small and cheap)
// ---------------------------------------------------------------------------------------

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
        (status = 200, description = "Matching merchants; also text/csv", body = MerchantsAnswer),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn merchants(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<MerchantsParams>,
) -> Result<Response, ApiError> {
    let format = OutputFormat::negotiate(params.format.as_deref(), &headers)?;
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
    let as_of = query::data_as_of(&snapshot).await?;
    let rows = snapshot
        .query(
            "SELECT id, name, category, brand_id, ticker_symbol, count(*) OVER () AS total
             FROM dim_merchants
             WHERE ($1::text IS NULL OR name ILIKE $1 ESCAPE '\\')
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

fn uncached<T>(body: T, data_as_of: Option<DateTime<Utc>>) -> Answer<T> {
    Answer {
        body,
        cache: CacheStatus::Bypass,
        data_as_of,
        age_seconds: 0,
    }
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
        (status = 200, description = "Categories; also text/csv", body = CategoriesAnswer),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn categories(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<FormatParams>,
) -> Result<Response, ApiError> {
    let format = OutputFormat::negotiate(params.format.as_deref(), &headers)?;
    let mut client = state.inner.read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let as_of = query::data_as_of(&snapshot).await?;
    let rows = snapshot
        .query(
            "SELECT c.category, c.label, count(m.id)
             FROM categories c LEFT JOIN dim_merchants m ON m.category = c.category
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
        (status = 200, description = "Freshness per shard; also text/csv", body = FreshnessAnswer),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn freshness(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<FormatParams>,
) -> Result<Response, ApiError> {
    let format = OutputFormat::negotiate(params.format.as_deref(), &headers)?;
    let client = state.inner.read_db.get().await?;
    let rows = client
        .query(
            "SELECT shard, stream_seq, applied_events, last_commit_at,
                    extract(epoch FROM now() - last_commit_at)::float8
             FROM shard_offsets ORDER BY shard",
            &[],
        )
        .await?;
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
        shards,
    };
    let as_of = body.as_of;
    Ok(uncached(body, as_of).respond(format))
}

// ---------------------------------------------------------------------------------------
// POST /v1/admin/cache/flush
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlushAnswer {
    /// The new value of the flush generation; every earlier cached answer is unreachable.
    pub flush_generation: i64,
}

/// Makes every cached answer unreachable (one generation bump, O(1)).
#[utoipa::path(
    post, path = "/v1/admin/cache/flush", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Flushed", body = FlushAnswer),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 503, description = "Redis unavailable", body = ErrorBody),
    )
)]
pub async fn flush_cache(State(state): State<AppState>) -> Result<Json<FlushAnswer>, ApiError> {
    match state.inner.cache.flush_all().await {
        Ok(generation) => Ok(Json(FlushAnswer {
            flush_generation: generation,
        })),
        Err(error) => {
            tracing::warn!(error = %error, "cannot flush the cache");
            Err(ApiError::Unavailable {
                message: "the cache (Redis) is unavailable; nothing to flush is reachable either"
                    .to_owned(),
                retry_after_seconds: 5,
            })
        }
    }
}
