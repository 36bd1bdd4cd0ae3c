//! Validated questions: each route's parameters parsed into one typed query with defaults
//! filled in, and its canonical form (the cache key: every normalised parameter, sorted).

use super::params::{
    GrowthByStateParams, GrowthParams, MerchantsParams, TimeseriesParams, TopParams,
};
use super::terms::{
    check_range, parse_bounded, parse_category, parse_date, parse_states, Granularity,
    GrowthPeriod, Metric, ScopeParam,
};
use crate::config::QueryLimits;
use crate::error::ApiError;
use altdata_domain::Category;
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Longest merchant search text.
const MAX_SEARCH_CHARS: usize = 100;
/// Largest `offset` of any list.
pub const MAX_OFFSET: i64 = 100_000;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
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
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
