//! Validated questions: each route's parameters parsed into one typed query with defaults
//! filled in, and its canonical form (the cache key: every normalised parameter, sorted).

use super::coverage::PeriodSpan;
use super::params::{
    GrowthByStateParams, GrowthParams, MerchantsParams, OverlapParams, TimeseriesParams, TopParams,
};
use super::terms::{
    check_range, DateRange, Direction, Granularity, GrowthPeriod, Metric, Normalize, RankBy,
    ScopeParam,
};
use super::values::{Bounded, CategoryName, Day, PageLimit, RangeDay, SearchText};
use crate::config::QueryLimits;
use crate::error::ApiError;
use crate::query::values::Word;
use altdata_domain::Category;
use chrono::{Days, NaiveDate};
use std::collections::BTreeMap;

/// A validated `GET /v1/timeseries`.
#[derive(Debug, Clone)]
pub struct TimeseriesQuery {
    pub metric: Metric,
    pub scope: ScopeParam,
    pub states: Vec<String>,
    pub granularity: Granularity,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub normalize: Normalize,
}

impl TimeseriesQuery {
    pub fn parse(
        params: &TimeseriesParams,
        limits: &QueryLimits,
        today: NaiveDate,
    ) -> Result<TimeseriesQuery, ApiError> {
        let granularity = params.granularity.unwrap_or(Granularity::Day);
        let to = params.to.map_or(today, |RangeDay(day)| day);
        let from = match params.from {
            Some(RangeDay(day)) => day,
            None => {
                let back = match granularity {
                    Granularity::Day => 89,
                    Granularity::Week => 26 * 7 - 1,
                    Granularity::Month | Granularity::Quarter => 364,
                };
                to - Days::new(back)
            }
        };
        check_range(from, to, limits)?;
        let metric = params.metric.unwrap_or(Metric::Spend);
        Ok(TimeseriesQuery {
            normalize: params.normalize.unwrap_or(Normalize::None).check(metric)?,
            metric,
            scope: ScopeParam::of(params.category, params.merchant, params.brand.as_ref())?,
            states: params.state.clone().unwrap_or_default().0,
            granularity,
            from,
            to,
        })
    }

    /// Every calendar period overlapping from/to, each with the days of it inside from/to.
    pub fn spans(&self) -> Vec<PeriodSpan> {
        let asked = DateRange {
            from: self.from,
            to: self.to,
        };
        self.granularity
            .period_starts(self.from, self.to)
            .into_iter()
            .map(|start| {
                let whole = self.granularity.period(start);
                PeriodSpan {
                    whole,
                    counted: whole.intersect(asked).unwrap_or(whole),
                }
            })
            .collect()
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
        normalize_canonical(self.normalize, &mut params);
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
    pub normalize: Normalize,
}

impl GrowthQuery {
    pub fn parse(params: &GrowthParams, today: NaiveDate) -> Result<GrowthQuery, ApiError> {
        let metric = params.metric.unwrap_or(Metric::Spend);
        Ok(GrowthQuery {
            normalize: params.normalize.unwrap_or(Normalize::None).check(metric)?,
            metric,
            scope: ScopeParam::of(params.category, params.merchant, params.brand.as_ref())?,
            states: params.state.clone().unwrap_or_default().0,
            period: params.period.unwrap_or(GrowthPeriod::Wow),
            as_of: as_of_or_yesterday(params.as_of, today),
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
            normalize,
            format,
            state: _,
        } = params.clone();
        GrowthQuery::parse(
            &GrowthParams {
                metric,
                category,
                merchant,
                brand,
                state: None,
                period,
                as_of,
                normalize,
                format,
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
        normalize_canonical(self.normalize, &mut params);
        canonical(route, &params)
    }
}

/// A validated `GET /v1/top`.
#[derive(Debug, Clone)]
pub struct TopQuery {
    pub category: Option<Category>,
    pub states: Vec<String>,
    pub by: RankBy,
    pub direction: Direction,
    /// Whole dollars.
    pub min_spend: i64,
    pub period: GrowthPeriod,
    pub as_of: NaiveDate,
    pub limit: i64,
}

impl TopQuery {
    pub fn parse(params: &TopParams, today: NaiveDate) -> TopQuery {
        TopQuery {
            category: params.category.map(|CategoryName(category)| category),
            states: params.state.clone().unwrap_or_default().0,
            by: params.by.unwrap_or(RankBy::Spend),
            direction: params.direction.unwrap_or(Direction::Up),
            min_spend: params.min_spend.map_or(0, |Bounded(dollars)| dollars),
            period: params.period.unwrap_or(GrowthPeriod::Wow),
            as_of: as_of_or_yesterday(params.as_of, today),
            limit: params.limit.map_or(10, |Bounded(limit)| limit),
        }
    }

    pub fn canonical(&self) -> String {
        let mut params = BTreeMap::new();
        if let Some(category) = self.category {
            params.insert("category", category.as_str().to_owned());
        }
        params.insert("state", self.states.join(","));
        params.insert("by", self.by.as_str().to_owned());
        params.insert("direction", self.direction.as_str().to_owned());
        params.insert("min_spend", self.min_spend.to_string());
        params.insert("period", self.period.as_str().to_owned());
        params.insert("as_of", self.as_of.to_string());
        params.insert("limit", self.limit.to_string());
        canonical("/v1/top", &params)
    }
}

/// A validated `GET /v1/overlap`.
#[derive(Debug, Clone)]
pub struct OverlapQuery {
    pub a: ScopeParam,
    pub b: ScopeParam,
    pub states: Vec<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl OverlapQuery {
    pub fn parse(
        params: &OverlapParams,
        limits: &QueryLimits,
        today: NaiveDate,
    ) -> Result<OverlapQuery, ApiError> {
        let to = params.to.map_or(today - Days::new(1), |RangeDay(day)| day);
        let from = params.from.map_or(to - Days::new(27), |RangeDay(day)| day);
        check_range(from, to, limits)?;
        Ok(OverlapQuery {
            a: params.a.0.clone(),
            b: params.b.0.clone(),
            states: params.state.clone().unwrap_or_default().0,
            from,
            to,
        })
    }

    pub fn canonical(&self) -> String {
        let side = |scope: &ScopeParam| {
            let mut one = BTreeMap::new();
            scope.canonical(&mut one);
            one.iter()
                .map(|(kind, value)| format!("{kind}:{value}"))
                .collect::<String>()
        };
        let mut params = BTreeMap::new();
        params.insert("a", side(&self.a));
        params.insert("b", side(&self.b));
        params.insert("state", self.states.join(","));
        params.insert("from", self.from.to_string());
        params.insert("to", self.to.to_string());
        canonical("/v1/overlap", &params)
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
        Ok(MerchantSearch {
            text: params
                .q
                .clone()
                .map(|SearchText(text)| text)
                .filter(|text| !text.is_empty()),
            category: params.category.map(|CategoryName(category)| category),
            limit: PageLimit::or(params.limit, 50, limits.max_page_size)?,
            offset: params.offset.map_or(0, |Bounded(offset)| offset),
        })
    }
}

fn as_of_or_yesterday(as_of: Option<Day>, today: NaiveDate) -> NaiveDate {
    as_of.map_or(today - Days::new(1), |Day(day)| day)
}

/// `normalize` in a canonical form only when it changes the answer, so the answers without
/// it keep their cache keys.
fn normalize_canonical(normalize: Normalize, params: &mut BTreeMap<&'static str, String>) {
    if normalize != Normalize::None {
        params.insert("normalize", normalize.as_str().to_owned());
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

    /// Parameters read from a query string, as the extractor reads them.
    fn params<T: serde::de::DeserializeOwned>(query: &str) -> T {
        serde_urlencoded::from_str(query).unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    #[test]
    fn canonical_queries_do_not_depend_on_parameter_order_or_case() {
        let today = date("2026-11-26");
        let limits = QueryLimits::default();
        let a: TimeseriesParams = params("state=ny,CA&category=coffee_shop");
        let b: TimeseriesParams =
            params("category=coffee_shop&state=CA,NY&metric=spend&to=2026-11-26");
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
        let with_state: GrowthByStateParams = params("state=CA");
        let error = GrowthQuery::parse_by_state(&with_state, today)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("state is not accepted"), "{error}");
        let by_state: GrowthByStateParams = params("category=coffee_shop&period=mom");
        let growth: GrowthParams = params("category=coffee_shop&period=mom");
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
        assert!(serde_urlencoded::from_str::<GrowthByStateParams>("period=qoq").is_err());
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    }
}
