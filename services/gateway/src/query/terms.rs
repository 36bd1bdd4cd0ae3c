//! The vocabulary of questions: metrics, scopes, granularities, growth periods, date ranges and
//! states, each parsed from text once with a message that names the parameter and what was
//! expected. Table and column names in SQL come only from these enums, never from input.

use crate::config::QueryLimits;
use crate::error::ApiError;
use altdata_domain::{Category, Region};
use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The oldest and newest dates any parameter may name.
const EARLIEST_DATE: (i32, u32, u32) = (2000, 1, 1);
const LATEST_DATE: (i32, u32, u32) = (2100, 12, 31);
/// At most this many states in one `state=` list.
const MAX_STATES: usize = 60;

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
    pub(crate) fn canonical(&self, params: &mut BTreeMap<&'static str, String>) {
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
