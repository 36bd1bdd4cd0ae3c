//! Query parameters, validated and bounded, and the SQL that answers them.
//!
//! Every parameter arrives as text and is parsed here once, with a message that names the
//! parameter and what was expected; unknown parameters are refused. Table and column names in
//! SQL come only from the enums below, never from input; values are always bound parameters.

use crate::config::QueryLimits;
use crate::error::ApiError;
use altdata_common::domain::{Category, Region};
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio_postgres::types::ToSql;
use utoipa::{IntoParams, ToSchema};

/// The oldest and newest dates any parameter may name.
const EARLIEST_DATE: (i32, u32, u32) = (2000, 1, 1);
const LATEST_DATE: (i32, u32, u32) = (2100, 12, 31);
/// At most this many states in one `state=` list.
const MAX_STATES: usize = 60;
/// Longest merchant search text.
const MAX_SEARCH_CHARS: usize = 100;
/// Largest `offset` of any list.
pub const MAX_OFFSET: i64 = 100_000;

/// A query-string extractor whose rejection is an [`ApiError`] (JSON, 400) rather than
/// axum's plain-text one.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Raw parameters, as they arrive (all text, so that every message is ours).
// ---------------------------------------------------------------------------------------

/// Parameters of `GET /v1/timeseries`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimeseriesParams {
    /// spend (net: sales minus refunds), gross, refunds, transactions, customers, avg_ticket. Default spend.
    pub metric: Option<String>,
    /// A category such as `coffee_shop`. At most one of category, merchant, brand; none means all merchants.
    pub category: Option<String>,
    /// A merchant id.
    pub merchant: Option<String>,
    /// A brand id from the catalogue.
    pub brand: Option<String>,
    /// Comma-separated US state codes, e.g. `CA,NY`. Default: every region.
    pub state: Option<String>,
    /// day, week (ISO weeks, starting Monday) or month. Default day.
    pub granularity: Option<String>,
    /// First day, YYYY-MM-DD. Default: 90 days (day), 26 weeks (week) or 12 months (month) before `to`.
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD. Default today (UTC).
    pub to: Option<String>,
    /// json (default) or csv; `Accept: text/csv` also selects CSV.
    pub format: Option<String>,
}

/// Parameters of `GET /v1/growth`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrowthParams {
    /// As for `/v1/timeseries`. Default spend.
    pub metric: Option<String>,
    pub category: Option<String>,
    pub merchant: Option<String>,
    pub brand: Option<String>,
    /// Comma-separated US state codes. Default: every region.
    pub state: Option<String>,
    /// wow (7 days vs the 7 before), mom (28 days vs the 28 before) or yoy (7 days vs the same 7 days 364 days earlier). Default wow.
    pub period: Option<String>,
    /// Last day of the current period, YYYY-MM-DD. Default yesterday (UTC).
    pub as_of: Option<String>,
    pub format: Option<String>,
}

/// Parameters of `GET /v1/growth/states`: those of `/v1/growth` but `state`, since the answer
/// covers every state.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrowthByStateParams {
    /// As for `/v1/timeseries`. Default spend.
    pub metric: Option<String>,
    pub category: Option<String>,
    pub merchant: Option<String>,
    pub brand: Option<String>,
    /// wow, mom or yoy, as for `/v1/growth`. Default wow.
    pub period: Option<String>,
    /// Last day of the current period, YYYY-MM-DD. Default yesterday (UTC).
    pub as_of: Option<String>,
    pub format: Option<String>,
    /// Refused with a 400 that says why (rather than serde's "unknown field"); not documented.
    #[param(ignore)]
    pub state: Option<String>,
}

/// Parameters of `GET /v1/top`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    /// Only merchants of this category. Default: all categories.
    pub category: Option<String>,
    pub state: Option<String>,
    /// spend (net spend in the current period) or growth (of net spend). Default spend.
    pub by: Option<String>,
    /// wow, mom or yoy. Default wow.
    pub period: Option<String>,
    pub as_of: Option<String>,
    /// 1 to 100. Default 10.
    pub limit: Option<String>,
    pub format: Option<String>,
}

/// Parameters of `GET /v1/merchants`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MerchantsParams {
    /// Part of the name, case-insensitive; names starting with it come first.
    pub q: Option<String>,
    pub category: Option<String>,
    /// 1 to the maximum page size (500). Default 50.
    pub limit: Option<String>,
    /// Default 0.
    pub offset: Option<String>,
    pub format: Option<String>,
}

/// Parameters of lists without filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatParams {
    pub format: Option<String>,
}

/// Paging of admin lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    pub limit: Option<String>,
    pub offset: Option<String>,
}

/// A date range, for `GET /v1/admin/mapped-share`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// Default 30 days before `to`.
    pub from: Option<String>,
    /// Default today (UTC).
    pub to: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Typed, validated queries.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Spend,
    Gross,
    Refunds,
    Transactions,
    Customers,
    AvgTicket,
}

impl Metric {
    pub fn parse(text: Option<&str>) -> Result<Metric, ApiError> {
        Ok(match text.unwrap_or("spend") {
            "spend" => Metric::Spend,
            "gross" => Metric::Gross,
            "refunds" => Metric::Refunds,
            "transactions" => Metric::Transactions,
            "customers" => Metric::Customers,
            "avg_ticket" => Metric::AvgTicket,
            other => {
                return Err(ApiError::invalid(format!(
                    "metric={other:?} is not valid: expected spend, gross, refunds, transactions, customers or avg_ticket"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Spend => "spend",
            Metric::Gross => "gross",
            Metric::Refunds => "refunds",
            Metric::Transactions => "transactions",
            Metric::Customers => "customers",
            Metric::AvgTicket => "avg_ticket",
        }
    }

    /// `usd` for money, `count` otherwise.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Spend | Metric::Gross | Metric::Refunds | Metric::AvgTicket => "usd",
            Metric::Transactions | Metric::Customers => "count",
        }
    }
}

/// What a question is about, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeParam {
    All,
    Category(Category),
    Merchant(i64),
    Brand(String),
}

impl ScopeParam {
    pub fn parse(
        category: Option<&str>,
        merchant: Option<&str>,
        brand: Option<&str>,
    ) -> Result<ScopeParam, ApiError> {
        let given = [category, merchant, brand].iter().flatten().count();
        if given > 1 {
            return Err(ApiError::invalid(
                "give at most one of category, merchant and brand",
            ));
        }
        if let Some(text) = category {
            return Ok(ScopeParam::Category(parse_category(text)?));
        }
        if let Some(text) = merchant {
            return Ok(ScopeParam::Merchant(parse_merchant_id("merchant", text)?));
        }
        if let Some(text) = brand {
            let valid = !text.is_empty()
                && text.len() <= 64
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid {
                return Err(ApiError::invalid(format!(
                    "brand={text:?} is not valid: expected a brand id of 1-64 letters, digits, _, - or ."
                )));
            }
            return Ok(ScopeParam::Brand(text.to_owned()));
        }
        Ok(ScopeParam::All)
    }

    /// Adds this scope to a canonical parameter map.
    fn canonical(&self, params: &mut BTreeMap<&'static str, String>) {
        match self {
            ScopeParam::All => {}
            ScopeParam::Category(c) => {
                params.insert("category", c.as_str().to_owned());
            }
            ScopeParam::Merchant(id) => {
                params.insert("merchant", id.to_string());
            }
            ScopeParam::Brand(brand) => {
                params.insert("brand", brand.clone());
            }
        }
    }
}

/// What a question is about, resolved (a brand becomes its merchant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Category(Category),
    Merchant(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Day,
    Week,
    Month,
}

impl Granularity {
    pub fn parse(text: Option<&str>) -> Result<Granularity, ApiError> {
        Ok(match text.unwrap_or("day") {
            "day" => Granularity::Day,
            "week" => Granularity::Week,
            "month" => Granularity::Month,
            other => {
                return Err(ApiError::invalid(format!(
                    "granularity={other:?} is not valid: expected day, week or month"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    /// The first day of the period containing `date` (weeks start on Monday, as PostgreSQL's
    /// `date_trunc('week', ..)` and the aggregator's rollups).
    pub fn period_start(self, date: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => date,
            Granularity::Week => date - Days::new(u64::from(date.weekday().num_days_from_monday())),
            Granularity::Month => date.with_day(1).unwrap_or(date),
        }
    }

    fn next(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Granularity::Day => start.checked_add_days(Days::new(1)),
            Granularity::Week => start.checked_add_days(Days::new(7)),
            Granularity::Month => start.checked_add_months(Months::new(1)),
        }
    }

    /// The starts of every period overlapping `[from, to]`.
    pub fn period_starts(self, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
        let mut starts = Vec::new();
        let mut current = Some(self.period_start(from));
        while let Some(start) = current.filter(|s| *s <= to) {
            starts.push(start);
            current = self.next(start);
        }
        starts
    }

    /// (table, date column) of the rollup to read for this scope.
    fn source(self, merchant: bool) -> (&'static str, &'static str) {
        match (self, merchant) {
            (Granularity::Day, true) => ("agg_daily_merchant_spend", "metric_date"),
            (Granularity::Week, true) => ("agg_weekly_merchant_spend", "week_start"),
            (Granularity::Month, true) => ("agg_monthly_merchant_spend", "month_start"),
            (Granularity::Day, false) => ("agg_daily_category_region", "metric_date"),
            (Granularity::Week, false) => ("agg_weekly_category_region", "week_start"),
            (Granularity::Month, false) => ("agg_monthly_category_region", "month_start"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrowthPeriod {
    Wow,
    Mom,
    Yoy,
}

impl GrowthPeriod {
    pub fn parse(text: Option<&str>) -> Result<GrowthPeriod, ApiError> {
        Ok(match text.unwrap_or("wow") {
            "wow" => GrowthPeriod::Wow,
            "mom" => GrowthPeriod::Mom,
            "yoy" => GrowthPeriod::Yoy,
            other => {
                return Err(ApiError::invalid(format!(
                    "period={other:?} is not valid: expected wow, mom or yoy"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GrowthPeriod::Wow => "wow",
            GrowthPeriod::Mom => "mom",
            GrowthPeriod::Yoy => "yoy",
        }
    }

    /// The current and previous periods ending at `as_of`, both inclusive, both trailing
    /// (not calendar-aligned), so that they always hold the same number of days and the same
    /// weekdays:
    /// - wow: the 7 days ending at `as_of` vs the 7 days before;
    /// - mom: the 28 days ending at `as_of` vs the 28 days before (4 whole weeks, so weekday
    ///   mix does not bias the comparison);
    /// - yoy: the 7 days ending at `as_of` vs the same 7 days 364 days (52 weeks) earlier.
    pub fn ranges(self, as_of: NaiveDate) -> (DateRange, DateRange) {
        let (length, lag) = match self {
            GrowthPeriod::Wow => (7, 7),
            GrowthPeriod::Mom => (28, 28),
            GrowthPeriod::Yoy => (7, 364),
        };
        let current = DateRange {
            from: as_of - Days::new(length - 1),
            to: as_of,
        };
        let previous = DateRange {
            from: current.from - Days::new(lag),
            to: current.to - Days::new(lag),
        };
        (current, previous)
    }
}

/// An inclusive range of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DateRange {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
}

/// Comma-separated US states, upper case, sorted, without duplicates; empty means all.
pub fn parse_states(text: Option<&str>) -> Result<Vec<String>, ApiError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let mut states = Vec::new();
    for part in text.split(',') {
        let region = Region::parse(part).ok_or_else(|| {
            ApiError::invalid(format!(
                "state={part:?} is not valid: expected two-letter US state codes such as CA or CA,NY"
            ))
        })?;
        states.push(region.as_str().to_owned());
    }
    states.sort();
    states.dedup();
    if states.len() > MAX_STATES {
        return Err(ApiError::invalid(format!(
            "state lists at most {MAX_STATES} states"
        )));
    }
    Ok(states)
}

pub fn parse_category(text: &str) -> Result<Category, ApiError> {
    Category::parse(text).ok_or_else(|| {
        let known: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
        ApiError::invalid(format!(
            "category={text:?} is not valid: expected one of {}",
            known.join(", ")
        ))
    })
}

pub fn parse_merchant_id(name: &str, text: &str) -> Result<i64, ApiError> {
    match text.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::invalid(format!(
            "{name}={text:?} is not valid: expected a positive merchant id"
        ))),
    }
}

/// A date `YYYY-MM-DD` between 2000-01-01 and 2100-12-31.
pub fn parse_date(name: &str, text: &str) -> Result<NaiveDate, ApiError> {
    let invalid = || {
        ApiError::invalid(format!(
            "{name}={text:?} is not valid: expected a date YYYY-MM-DD between 2000-01-01 and 2100-12-31"
        ))
    };
    if text.len() != 10 {
        return Err(invalid());
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| invalid())?;
    let earliest = NaiveDate::from_ymd_opt(EARLIEST_DATE.0, EARLIEST_DATE.1, EARLIEST_DATE.2);
    let latest = NaiveDate::from_ymd_opt(LATEST_DATE.0, LATEST_DATE.1, LATEST_DATE.2);
    match (earliest, latest) {
        (Some(earliest), Some(latest)) if date >= earliest && date <= latest => Ok(date),
        _ => Err(invalid()),
    }
}

/// An integer parameter in `[min, max]`, or `default` when absent.
pub fn parse_bounded(
    name: &str,
    text: Option<&str>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    match text.parse::<i64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(ApiError::invalid(format!(
            "{name}={text:?} is not valid: expected an integer from {min} to {max}"
        ))),
    }
}

/// Checks `from <= to` and the maximum range.
pub fn check_range(from: NaiveDate, to: NaiveDate, limits: &QueryLimits) -> Result<(), ApiError> {
    if from > to {
        return Err(ApiError::invalid(format!("from={from} is after to={to}")));
    }
    let days = (to - from).num_days() + 1;
    if days > limits.max_range_days {
        return Err(ApiError::BadRequest {
            code: "range_too_long",
            message: format!(
                "the range {from} to {to} spans {days} days; at most {} are allowed",
                limits.max_range_days
            ),
        });
    }
    Ok(())
}

/// A validated `GET /v1/timeseries`.
#[derive(Debug, Clone)]
pub struct TimeseriesQuery {
    pub metric: Metric,
    pub scope: ScopeParam,
    pub states: Vec<String>,
    pub granularity: Granularity,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl TimeseriesQuery {
    pub fn parse(
        params: &TimeseriesParams,
        limits: &QueryLimits,
        today: NaiveDate,
    ) -> Result<TimeseriesQuery, ApiError> {
        let metric = Metric::parse(params.metric.as_deref())?;
        let scope = ScopeParam::parse(
            params.category.as_deref(),
            params.merchant.as_deref(),
            params.brand.as_deref(),
        )?;
        let states = parse_states(params.state.as_deref())?;
        let granularity = Granularity::parse(params.granularity.as_deref())?;
        let to = match params.to.as_deref() {
            Some(text) => parse_date("to", text)?,
            None => today,
        };
        let from = match params.from.as_deref() {
            Some(text) => parse_date("from", text)?,
            None => {
                let back = match granularity {
                    Granularity::Day => 89,
                    Granularity::Week => 26 * 7 - 1,
                    Granularity::Month => 364,
                };
                to - Days::new(back)
            }
        };
        check_range(from, to, limits)?;
        Ok(TimeseriesQuery {
            metric,
            scope,
            states,
            granularity,
            from,
            to,
        })
    }

    /// The canonical form: route and every normalised parameter, sorted.
    pub fn canonical(&self) -> String {
        let mut params = BTreeMap::new();
        params.insert("metric", self.metric.as_str().to_owned());
        self.scope.canonical(&mut params);
        params.insert("state", self.states.join(","));
        params.insert("granularity", self.granularity.as_str().to_owned());
        params.insert("from", self.from.to_string());
        params.insert("to", self.to.to_string());
        canonical("/v1/timeseries", &params)
    }
}

/// A validated `GET /v1/growth`.
#[derive(Debug, Clone)]
pub struct GrowthQuery {
    pub metric: Metric,
    pub scope: ScopeParam,
    pub states: Vec<String>,
    pub period: GrowthPeriod,
    pub as_of: NaiveDate,
}

impl GrowthQuery {
    pub fn parse(params: &GrowthParams, today: NaiveDate) -> Result<GrowthQuery, ApiError> {
        Ok(GrowthQuery {
            metric: Metric::parse(params.metric.as_deref())?,
            scope: ScopeParam::parse(
                params.category.as_deref(),
                params.merchant.as_deref(),
                params.brand.as_deref(),
            )?,
            states: parse_states(params.state.as_deref())?,
            period: GrowthPeriod::parse(params.period.as_deref())?,
            as_of: parse_as_of(params.as_of.as_deref(), today)?,
        })
    }

    /// A `GET /v1/growth/states`: the same validation, and no `state`.
    pub fn parse_by_state(
        params: &GrowthByStateParams,
        today: NaiveDate,
    ) -> Result<GrowthQuery, ApiError> {
        if params.state.is_some() {
            return Err(ApiError::invalid(
                "state is not accepted here: /v1/growth/states answers for every state; \
                 ask /v1/growth?state=.. for chosen states",
            ));
        }
        let GrowthByStateParams {
            metric,
            category,
            merchant,
            brand,
            period,
            as_of,
            format,
            state: _,
        } = params;
        GrowthQuery::parse(
            &GrowthParams {
                metric: metric.clone(),
                category: category.clone(),
                merchant: merchant.clone(),
                brand: brand.clone(),
                state: None,
                period: period.clone(),
                as_of: as_of.clone(),
                format: format.clone(),
            },
            today,
        )
    }

    pub fn canonical(&self) -> String {
        self.canonical_at("/v1/growth")
    }

    /// The canonical form of the same question asked of `/v1/growth/states`.
    pub fn canonical_by_state(&self) -> String {
        self.canonical_at("/v1/growth/states")
    }

    fn canonical_at(&self, route: &str) -> String {
        let mut params = BTreeMap::new();
        params.insert("metric", self.metric.as_str().to_owned());
        self.scope.canonical(&mut params);
        params.insert("state", self.states.join(","));
        params.insert("period", self.period.as_str().to_owned());
        params.insert("as_of", self.as_of.to_string());
        canonical(route, &params)
    }
}

/// How `/v1/top` ranks merchants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    Spend,
    Growth,
}

/// A validated `GET /v1/top`.
#[derive(Debug, Clone)]
pub struct TopQuery {
    pub category: Option<Category>,
    pub states: Vec<String>,
    pub by: RankBy,
    pub period: GrowthPeriod,
    pub as_of: NaiveDate,
    pub limit: i64,
}

impl TopQuery {
    pub fn parse(params: &TopParams, today: NaiveDate) -> Result<TopQuery, ApiError> {
        let by = match params.by.as_deref().unwrap_or("spend") {
            "spend" => RankBy::Spend,
            "growth" => RankBy::Growth,
            other => {
                return Err(ApiError::invalid(format!(
                    "by={other:?} is not valid: expected spend or growth"
                )))
            }
        };
        Ok(TopQuery {
            category: params.category.as_deref().map(parse_category).transpose()?,
            states: parse_states(params.state.as_deref())?,
            by,
            period: GrowthPeriod::parse(params.period.as_deref())?,
            as_of: parse_as_of(params.as_of.as_deref(), today)?,
            limit: parse_bounded("limit", params.limit.as_deref(), 10, 1, 100)?,
        })
    }

    pub fn canonical(&self) -> String {
        let mut params = BTreeMap::new();
        if let Some(category) = self.category {
            params.insert("category", category.as_str().to_owned());
        }
        params.insert("state", self.states.join(","));
        params.insert(
            "by",
            match self.by {
                RankBy::Spend => "spend",
                RankBy::Growth => "growth",
            }
            .to_owned(),
        );
        params.insert("period", self.period.as_str().to_owned());
        params.insert("as_of", self.as_of.to_string());
        params.insert("limit", self.limit.to_string());
        canonical("/v1/top", &params)
    }
}

/// A validated `GET /v1/merchants`.
#[derive(Debug, Clone)]
pub struct MerchantSearch {
    pub text: Option<String>,
    pub category: Option<Category>,
    pub limit: i64,
    pub offset: i64,
}

impl MerchantSearch {
    pub fn parse(
        params: &MerchantsParams,
        limits: &QueryLimits,
    ) -> Result<MerchantSearch, ApiError> {
        let text = params
            .q
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        if let Some(q) = &text {
            if q.chars().count() > MAX_SEARCH_CHARS || q.chars().any(char::is_control) {
                return Err(ApiError::invalid(format!(
                    "q is not valid: expected at most {MAX_SEARCH_CHARS} printable characters"
                )));
            }
        }
        Ok(MerchantSearch {
            text,
            category: params.category.as_deref().map(parse_category).transpose()?,
            limit: parse_bounded(
                "limit",
                params.limit.as_deref(),
                50,
                1,
                limits.max_page_size,
            )?,
            offset: parse_bounded("offset", params.offset.as_deref(), 0, 0, MAX_OFFSET)?,
        })
    }
}

fn parse_as_of(text: Option<&str>, today: NaiveDate) -> Result<NaiveDate, ApiError> {
    match text {
        Some(text) => parse_date("as_of", text),
        None => Ok(today - Days::new(1)),
    }
}

fn canonical(route: &str, params: &BTreeMap<&'static str, String>) -> String {
    let mut text = route.to_owned();
    for (index, (name, value)) in params.iter().enumerate() {
        text.push(if index == 0 { '?' } else { '&' });
        text.push_str(name);
        text.push('=');
        text.push_str(value);
    }
    text
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

// ---------------------------------------------------------------------------------------
// Totals and the SQL that reads them.
// ---------------------------------------------------------------------------------------

/// The sums of one cell (a point, a period): gross sales, sales count, refunds, refund
/// count, and the HLL estimate of distinct customers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub gross_cents: i64,
    pub sales: i64,
    pub refund_cents: i64,
    pub refunds: i64,
    pub customers: f64,
}

impl Totals {
    fn from_row(row: &tokio_postgres::Row, first: usize) -> Totals {
        Totals {
            gross_cents: row.get(first),
            sales: row.get(first + 1),
            refund_cents: row.get(first + 2),
            refunds: row.get(first + 3),
            customers: row.get(first + 4),
        }
    }

    /// A cell is withheld when it has some customers, but fewer than `k`. A cell without any
    /// activity reveals nothing about anyone and is reported as zero.
    pub fn suppressed(&self, k: u32) -> bool {
        self.customers > 0.0 && self.customers.round() < f64::from(k)
    }

    /// The value of `metric`; money in dollars with cents precision. `None` only for an
    /// average ticket without sales.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        let dollars = |cents: i64| cents as f64 / 100.0;
        match metric {
            Metric::Spend => Some(dollars(self.gross_cents - self.refund_cents)),
            Metric::Gross => Some(dollars(self.gross_cents)),
            Metric::Refunds => Some(dollars(self.refund_cents)),
            Metric::Transactions => Some(self.sales as f64),
            Metric::Customers => Some(self.customers.round()),
            Metric::AvgTicket => (self.sales > 0)
                .then(|| (self.gross_cents as f64 / self.sales as f64).round() / 100.0),
        }
    }
}

/// The aggregate columns of every read, in [`Totals::from_row`] order.
const TOTALS_COLUMNS: &str = "
       coalesce(sum(t.total_spend_cents), 0)::bigint,
       coalesce(sum(t.transaction_count), 0)::bigint,
       coalesce(sum(t.refund_cents), 0)::bigint,
       coalesce(sum(t.refund_count), 0)::bigint,
       coalesce(hll_cardinality(hll_union_agg(t.customers)), 0)::float8";

/// The `WHERE` fragment and bound value for a scope, always parameter `$3`. "All" reads the
/// category tables with every category listed, so the primary key (category first) is used.
fn scope_filter(scope: &Scope) -> (&'static str, Box<dyn ToSql + Sync + Send>) {
    match scope {
        Scope::Merchant(id) => ("t.merchant_id = $3::bigint", Box::new(*id)),
        Scope::Category(category) => (
            "t.category = ANY($3::text[])",
            Box::new(vec![category.as_str().to_owned()]),
        ),
        Scope::All => (
            "t.category = ANY($3::text[])",
            Box::new(
                Category::ALL
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect::<Vec<String>>(),
            ),
        ),
    }
}

const REGION_FILTER: &str = "(cardinality($2::text[]) = 0 OR t.region = ANY($2::text[]))";

/// The totals of each period starting at `starts`, in that order. Merchant series read the
/// merchant rollups; category and "all" series read the category rollups, summed over shards.
pub async fn series(
    client: &deadpool_postgres::Transaction<'_>,
    scope: &Scope,
    granularity: Granularity,
    starts: &[NaiveDate],
    states: &[String],
) -> Result<Vec<Totals>, tokio_postgres::Error> {
    let (table, date_column) = granularity.source(matches!(scope, Scope::Merchant(_)));
    let (scope_clause, scope_value) = scope_filter(scope);
    let sql = format!(
        "SELECT p.period_start, {TOTALS_COLUMNS}
         FROM unnest($1::date[]) AS p(period_start)
         LEFT JOIN {table} t ON t.{date_column} = p.period_start AND {scope_clause} AND {REGION_FILTER}
         GROUP BY p.period_start ORDER BY p.period_start"
    );
    let starts = starts.to_vec();
    let states = states.to_vec();
    let rows = client
        .query(
            &client.prepare_cached(&sql).await?,
            &[&starts, &states, scope_value.as_ref()],
        )
        .await?;
    Ok(rows.iter().map(|row| Totals::from_row(row, 1)).collect())
}

/// The totals of each inclusive date range, in that order, from the daily tables.
pub async fn range_totals(
    client: &deadpool_postgres::Transaction<'_>,
    scope: &Scope,
    ranges: &[DateRange],
    states: &[String],
) -> Result<Vec<Totals>, tokio_postgres::Error> {
    let cells = range_cells(client, scope, ranges, states, RangeSplit::Whole).await?;
    Ok(cells.into_iter().map(|cell| cell.totals).collect())
}

/// One state's totals over each range of [`range_totals_by_state`].
#[derive(Debug, Clone, PartialEq)]
pub struct StateTotals {
    pub state: String,
    /// One per range, in the order asked; zero where the state had no activity.
    pub totals: Vec<Totals>,
}

/// The totals of each inclusive date range, per state, in one statement: every US state with
/// activity in at least one of the ranges, sorted by code. Each state's totals are exactly
/// what [`range_totals`] answers for that state alone (the same rows, sums and sketch
/// unions). Rows without a location (region `XX`) belong to no state and are left out.
pub async fn range_totals_by_state(
    client: &deadpool_postgres::Transaction<'_>,
    scope: &Scope,
    ranges: &[DateRange],
) -> Result<Vec<StateTotals>, tokio_postgres::Error> {
    let cells = range_cells(client, scope, ranges, &[], RangeSplit::ByState).await?;
    let mut by_state: BTreeMap<String, Vec<Totals>> = BTreeMap::new();
    for cell in cells {
        let Some(region) = cell.region.as_deref().and_then(Region::parse) else {
            continue;
        };
        let totals = by_state
            .entry(region.as_str().to_owned())
            .or_insert_with(|| vec![Totals::default(); ranges.len()]);
        if let Some(slot) = totals.get_mut(cell.index) {
            *slot = cell.totals;
        }
    }
    Ok(by_state
        .into_iter()
        .map(|(state, totals)| StateTotals { state, totals })
        .collect())
}

/// Whether [`range_cells`] sums each range as a whole or per region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSplit {
    Whole,
    ByState,
}

/// One row of [`range_cells`]: a range (0-based, in the order asked), the region when split
/// by state (`None` for a range without any row), and its totals.
struct RangeCell {
    index: usize,
    region: Option<String>,
    totals: Totals,
}

/// The one statement behind [`range_totals`] and [`range_totals_by_state`]. Unsplit, it
/// returns exactly one row per range, in order; split by state, one row per (range, region)
/// with activity, and one row with no region for a range without any.
async fn range_cells(
    client: &deadpool_postgres::Transaction<'_>,
    scope: &Scope,
    ranges: &[DateRange],
    states: &[String],
    split: RangeSplit,
) -> Result<Vec<RangeCell>, tokio_postgres::Error> {
    let (table, date_column) = Granularity::Day.source(matches!(scope, Scope::Merchant(_)));
    let (scope_clause, scope_value) = scope_filter(scope);
    let (region_column, region_group) = match split {
        RangeSplit::Whole => ("NULL::text", ""),
        RangeSplit::ByState => ("t.region", ", t.region"),
    };
    let sql = format!(
        "SELECT p.idx, {region_column}, {TOTALS_COLUMNS}
         FROM unnest($1::date[], $4::date[]) WITH ORDINALITY AS p(first_day, last_day, idx)
         LEFT JOIN {table} t ON t.{date_column} BETWEEN p.first_day AND p.last_day
              AND {scope_clause} AND {REGION_FILTER}
         GROUP BY p.idx{region_group} ORDER BY p.idx{region_group}"
    );
    let firsts: Vec<NaiveDate> = ranges.iter().map(|r| r.from).collect();
    let lasts: Vec<NaiveDate> = ranges.iter().map(|r| r.to).collect();
    let states = states.to_vec();
    let rows = client
        .query(
            &client.prepare_cached(&sql).await?,
            &[&firsts, &states, scope_value.as_ref(), &lasts],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| RangeCell {
            // WITH ORDINALITY counts from 1.
            index: usize::try_from(row.get::<_, i64>(0) - 1).unwrap_or(usize::MAX),
            region: row.get(1),
            totals: Totals::from_row(row, 2),
        })
        .collect())
}

/// One merchant's totals in the current and previous period of `/v1/top`.
#[derive(Debug, Clone)]
pub struct MerchantPeriods {
    pub merchant_id: i64,
    pub name: String,
    pub category: String,
    pub current: Totals,
    pub previous: Totals,
}

/// Every merchant with activity in either period, with both periods' totals.
pub async fn merchant_periods(
    client: &deadpool_postgres::Transaction<'_>,
    category: Option<Category>,
    states: &[String],
    current: DateRange,
    previous: DateRange,
) -> Result<Vec<MerchantPeriods>, tokio_postgres::Error> {
    let columns = |first: &str, last: &str| {
        format!(
            "coalesce(sum(t.total_spend_cents) FILTER (WHERE t.metric_date BETWEEN {first} AND {last}), 0)::bigint,
             coalesce(sum(t.transaction_count) FILTER (WHERE t.metric_date BETWEEN {first} AND {last}), 0)::bigint,
             coalesce(sum(t.refund_cents) FILTER (WHERE t.metric_date BETWEEN {first} AND {last}), 0)::bigint,
             coalesce(sum(t.refund_count) FILTER (WHERE t.metric_date BETWEEN {first} AND {last}), 0)::bigint,
             coalesce(hll_cardinality(hll_union_agg(t.customers) FILTER (WHERE t.metric_date BETWEEN {first} AND {last})), 0)::float8"
        )
    };
    let sql = format!(
        "SELECT m.id, m.name, m.category, {}, {}
         FROM agg_daily_merchant_spend t JOIN dim_merchants m ON m.id = t.merchant_id
         WHERE (t.metric_date BETWEEN $1::date AND $2::date OR t.metric_date BETWEEN $3::date AND $4::date)
           AND m.category = ANY($5::text[])
           AND (cardinality($6::text[]) = 0 OR t.region = ANY($6::text[]))
         GROUP BY m.id, m.name, m.category",
        columns("$1::date", "$2::date"),
        columns("$3::date", "$4::date"),
    );
    let categories: Vec<String> = match category {
        Some(category) => vec![category.as_str().to_owned()],
        None => Category::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
    };
    let states = states.to_vec();
    let rows = client
        .query(
            &client.prepare_cached(&sql).await?,
            &[
                &current.from,
                &current.to,
                &previous.from,
                &previous.to,
                &categories,
                &states,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| MerchantPeriods {
            merchant_id: row.get(0),
            name: row.get(1),
            category: row.get(2),
            current: Totals::from_row(row, 3),
            previous: Totals::from_row(row, 8),
        })
        .collect())
}

/// The newest commit of any shard: what "as of" means for every answer.
pub async fn data_as_of(
    client: &deadpool_postgres::Transaction<'_>,
) -> Result<Option<DateTime<Utc>>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached("SELECT max(last_commit_at) FROM shard_offsets")
        .await?;
    let row = client.query_one(&statement, &[]).await?;
    row.try_get(0)
}

/// The longest any gateway statement may run: set on every connection of the gateway's pools
/// (`connect::postgres_pool_lazy_bounded`).
pub const STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// Starts the read-only, repeatable-read transaction every answer is computed in, so that
/// its "as of" and its numbers come from one snapshot; [`STATEMENT_TIMEOUT`], set on the
/// pool's connections, bounds it.
pub async fn read_snapshot(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    Ok(transaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-11-26 is a Thursday.
        assert_eq!(
            Granularity::Week.period_start(date("2026-11-26")),
            date("2026-11-23")
        );
        assert_eq!(
            Granularity::Month.period_start(date("2026-11-26")),
            date("2026-11-01")
        );
        let starts = Granularity::Week.period_starts(date("2026-11-26"), date("2026-12-08"));
        assert_eq!(
            starts,
            vec![date("2026-11-23"), date("2026-11-30"), date("2026-12-07")]
        );
    }

    #[test]
    fn growth_periods_have_equal_lengths() {
        let as_of = date("2026-11-26");
        let (current, previous) = GrowthPeriod::Wow.ranges(as_of);
        assert_eq!((current.from, current.to), (date("2026-11-20"), as_of));
        assert_eq!(
            (previous.from, previous.to),
            (date("2026-11-13"), date("2026-11-19"))
        );
        let (current, previous) = GrowthPeriod::Yoy.ranges(as_of);
        assert_eq!((current.to - previous.to).num_days(), 364);
        assert_eq!((current.to - current.from).num_days(), 6);
        let (current, previous) = GrowthPeriod::Mom.ranges(as_of);
        assert_eq!(current.from - previous.to, chrono::Duration::days(1));
    }

    #[test]
    fn states_are_normalised_and_bad_ones_named() {
        assert_eq!(
            parse_states(Some("ny,CA,ca")).ok(),
            Some(vec!["CA".to_owned(), "NY".to_owned()])
        );
        let error = parse_states(Some("CA,ZZ"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("\"ZZ\""), "{error}");
    }

    #[test]
    fn only_one_scope_may_be_given() {
        assert!(ScopeParam::parse(Some("coffee_shop"), Some("1"), None).is_err());
        assert_eq!(
            ScopeParam::parse(None, None, None).ok(),
            Some(ScopeParam::All)
        );
        assert!(ScopeParam::parse(None, Some("-3"), None).is_err());
        assert!(ScopeParam::parse(None, None, Some("a b")).is_err());
    }

    #[test]
    fn ranges_past_the_limit_are_refused() {
        let limits = QueryLimits::default();
        assert!(check_range(date("2020-01-01"), date("2026-01-01"), &limits).is_err());
        assert!(check_range(date("2026-01-02"), date("2026-01-01"), &limits).is_err());
        assert!(check_range(date("2025-01-01"), date("2026-01-01"), &limits).is_ok());
    }

    #[test]
    fn canonical_queries_do_not_depend_on_parameter_order_or_case() {
        let today = date("2026-11-26");
        let limits = QueryLimits::default();
        let a = TimeseriesParams {
            state: Some("ny,CA".into()),
            category: Some("coffee_shop".into()),
            ..Default::default()
        };
        let b = TimeseriesParams {
            category: Some("coffee_shop".into()),
            state: Some("CA,NY".into()),
            metric: Some("spend".into()),
            to: Some("2026-11-26".into()),
            ..Default::default()
        };
        let a = TimeseriesQuery::parse(&a, &limits, today)
            .map(|q| q.canonical())
            .ok();
        let b = TimeseriesQuery::parse(&b, &limits, today)
            .map(|q| q.canonical())
            .ok();
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    #[test]
    fn growth_by_state_refuses_state_and_is_cached_apart_from_growth() {
        let today = date("2026-11-26");
        let with_state = GrowthByStateParams {
            state: Some("CA".into()),
            ..Default::default()
        };
        let error = GrowthQuery::parse_by_state(&with_state, today)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("state is not accepted"), "{error}");
        let by_state = GrowthByStateParams {
            category: Some("coffee_shop".into()),
            period: Some("mom".into()),
            ..Default::default()
        };
        let growth = GrowthParams {
            category: Some("coffee_shop".into()),
            period: Some("mom".into()),
            ..Default::default()
        };
        let by_state = GrowthQuery::parse_by_state(&by_state, today).ok();
        let growth = GrowthQuery::parse(&growth, today).ok();
        assert_eq!(
            by_state.as_ref().map(|q| (q.metric, q.period, q.as_of)),
            growth.as_ref().map(|q| (q.metric, q.period, q.as_of))
        );
        let by_state = by_state.map(|q| q.canonical_by_state()).unwrap_or_default();
        let growth = growth.map(|q| q.canonical()).unwrap_or_default();
        assert!(by_state.starts_with("/v1/growth/states?"), "{by_state}");
        assert_ne!(by_state, growth);
        let bad_period = GrowthByStateParams {
            period: Some("qoq".into()),
            ..Default::default()
        };
        assert!(GrowthQuery::parse_by_state(&bad_period, today).is_err());
    }

    #[test]
    fn small_cells_are_suppressed_but_empty_ones_are_not() {
        let cell = Totals {
            customers: 3.0,
            ..Default::default()
        };
        assert!(cell.suppressed(10));
        assert!(!Totals::default().suppressed(10));
        let cell = Totals {
            customers: 10.0,
            gross_cents: 12345,
            refund_cents: 45,
            sales: 3,
            ..Default::default()
        };
        assert!(!cell.suppressed(10));
        assert_eq!(cell.value(Metric::Spend), Some(123.0));
        assert_eq!(cell.value(Metric::AvgTicket), Some(41.15));
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }

    #[test]
    fn dates_are_strict() {
        assert!(parse_date("from", "2026-1-5").is_err());
        assert!(parse_date("from", "1999-12-31").is_err());
        assert!(parse_date("from", "2026-02-30").is_err());
        assert_eq!(
            parse_date("from", "2026-02-28").ok(),
            Some(date("2026-02-28"))
        );
    }
}
