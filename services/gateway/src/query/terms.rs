//! The vocabulary of questions: metrics, scopes, granularities, growth periods, formats and
//! date ranges. Words are parsed by serde through [`Word`] (see `values.rs`), with a message
//! that names the parameter and what was expected. Table and column names in SQL come only
//! from these enums, never from input.

use super::values::{deserialize_from_text, BrandId, CategoryName, MerchantId, Word};
use crate::config::QueryLimits;
use crate::error::{ApiError, RANGE_TOO_LONG};
use altdata_domain::Category;
use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Spend,
    Gross,
    Refunds,
    Transactions,
    Customers,
    AvgTicket,
    SpendPerCustomer,
    TransactionsPerCustomer,
}

impl Word for Metric {
    const ALL: &'static [Metric] = &[
        Metric::Spend,
        Metric::Gross,
        Metric::Refunds,
        Metric::Transactions,
        Metric::Customers,
        Metric::AvgTicket,
        Metric::SpendPerCustomer,
        Metric::TransactionsPerCustomer,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Metric::Spend => "spend",
            Metric::Gross => "gross",
            Metric::Refunds => "refunds",
            Metric::Transactions => "transactions",
            Metric::Customers => "customers",
            Metric::AvgTicket => "avg_ticket",
            Metric::SpendPerCustomer => "spend_per_customer",
            Metric::TransactionsPerCustomer => "transactions_per_customer",
        }
    }
}

impl Metric {
    /// `usd` for money, `count` otherwise.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Spend
            | Metric::Gross
            | Metric::Refunds
            | Metric::AvgTicket
            | Metric::SpendPerCustomer => "usd",
            Metric::Transactions | Metric::Customers | Metric::TransactionsPerCustomer => "count",
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
    /// At most one of a category, a merchant and a brand; none means all merchants. The rule
    /// spans three parameters, which a schema cannot say: a refusal has its own code.
    pub fn of(
        category: Option<CategoryName>,
        merchant: Option<MerchantId>,
        brand: Option<&BrandId>,
    ) -> Result<ScopeParam, ApiError> {
        Ok(match (category, merchant, brand) {
            (None, None, None) => ScopeParam::All,
            (Some(CategoryName(category)), None, None) => ScopeParam::Category(category),
            (None, Some(MerchantId(id)), None) => ScopeParam::Merchant(id),
            (None, None, Some(BrandId(brand))) => ScopeParam::Brand(brand.clone()),
            _ => {
                return Err(ApiError::conflicting(
                    "give at most one of category, merchant and brand",
                ))
            }
        })
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Day,
    Week,
    Month,
    Quarter,
}

impl Word for Granularity {
    const ALL: &'static [Granularity] = &[
        Granularity::Day,
        Granularity::Week,
        Granularity::Month,
        Granularity::Quarter,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
            Granularity::Quarter => "quarter",
        }
    }
}

impl Granularity {
    /// The last day of the period starting at `start`.
    pub fn period_end(self, start: NaiveDate) -> NaiveDate {
        self.next(start)
            .and_then(|next| next.pred_opt())
            .unwrap_or(start)
    }

    /// The first day of the period containing `date` (weeks start on Monday, as PostgreSQL's
    /// `date_trunc('week', ..)` and the aggregator's rollups).
    pub fn period_start(self, date: NaiveDate) -> NaiveDate {
        match self {
            Granularity::Day => date,
            Granularity::Week => date - Days::new(u64::from(date.weekday().num_days_from_monday())),
            Granularity::Month => date.with_day(1).unwrap_or(date),
            Granularity::Quarter => {
                let month = (date.month0() / 3) * 3 + 1;
                NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date)
            }
        }
    }

    fn next(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Granularity::Day => start.checked_add_days(Days::new(1)),
            Granularity::Week => start.checked_add_days(Days::new(7)),
            Granularity::Month => start.checked_add_months(Months::new(1)),
            Granularity::Quarter => start.checked_add_months(Months::new(3)),
        }
    }

    /// The whole calendar period starting at `start` (a period start), both days inclusive.
    pub fn period(self, start: NaiveDate) -> DateRange {
        let to = self
            .next(start)
            .and_then(|next| next.pred_opt())
            .unwrap_or(start);
        DateRange { from: start, to }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrowthPeriod {
    Wow,
    Mom,
    Yoy,
    Month,
    Quarter,
}

impl Word for GrowthPeriod {
    const ALL: &'static [GrowthPeriod] = &[
        GrowthPeriod::Wow,
        GrowthPeriod::Mom,
        GrowthPeriod::Yoy,
        GrowthPeriod::Month,
        GrowthPeriod::Quarter,
    ];

    fn as_str(self) -> &'static str {
        match self {
            GrowthPeriod::Wow => "wow",
            GrowthPeriod::Mom => "mom",
            GrowthPeriod::Yoy => "yoy",
            GrowthPeriod::Month => "month",
            GrowthPeriod::Quarter => "quarter",
        }
    }
}

impl GrowthPeriod {
    /// The current and previous periods ending at `as_of`, both inclusive, both trailing
    /// (not calendar-aligned), so that they always hold the same number of days and the same
    /// weekdays:
    /// - wow: the 7 days ending at `as_of` vs the 7 days before;
    /// - mom: the 28 days ending at `as_of` vs the 28 days before (4 whole weeks, so weekday
    ///   mix does not bias the comparison);
    /// - yoy: the 7 days ending at `as_of` vs the same 7 days 364 days (52 weeks) earlier;
    /// - month, quarter: the calendar month (quarter) to date, from its first day to `as_of`,
    ///   vs as many days from the first day of the previous month (quarter), cut at its end.
    pub fn ranges(self, as_of: NaiveDate) -> (DateRange, DateRange) {
        let (length, lag) = match self {
            GrowthPeriod::Wow => (7, 7),
            GrowthPeriod::Mom => (28, 28),
            GrowthPeriod::Yoy => (7, 364),
            GrowthPeriod::Month => return calendar_to_date(Granularity::Month, as_of),
            GrowthPeriod::Quarter => return calendar_to_date(Granularity::Quarter, as_of),
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

/// A calendar period to date and the same days of the period before it.
fn calendar_to_date(granularity: Granularity, as_of: NaiveDate) -> (DateRange, DateRange) {
    let first = granularity.period_start(as_of);
    let current = DateRange {
        from: first,
        to: as_of,
    };
    let before = granularity.period(granularity.period_start(first - Days::new(1)));
    let to = (before.from + (as_of - first)).min(before.to);
    let previous = DateRange {
        from: before.from,
        to,
    };
    (current, previous)
}

/// An inclusive range of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DateRange {
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
}

impl DateRange {
    /// The days of both ranges; `None` when they do not overlap.
    pub fn intersect(self, other: DateRange) -> Option<DateRange> {
        let range = DateRange {
            from: self.from.max(other.from),
            to: self.to.min(other.to),
        };
        (range.from <= range.to).then_some(range)
    }

    pub fn days(self) -> i64 {
        (self.to - self.from).num_days() + 1
    }
}

/// JSON (default) or CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    Json,
    Csv,
}

impl Word for OutputFormat {
    const ALL: &'static [OutputFormat] = &[OutputFormat::Json, OutputFormat::Csv];

    fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::Csv => "csv",
        }
    }
}

/// How `/v1/top` ranks merchants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    Spend,
    Growth,
}

impl Word for RankBy {
    const ALL: &'static [RankBy] = &[RankBy::Spend, RankBy::Growth];

    fn as_str(self) -> &'static str {
        match self {
            RankBy::Spend => "spend",
            RankBy::Growth => "growth",
        }
    }
}

/// Which end of a ranking `/v1/top` lists: the largest first (up) or the smallest (down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

impl Word for Direction {
    const ALL: &'static [Direction] = &[Direction::Up, Direction::Down];

    fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// What a value is divided by: nothing (`none`), or the active cards of the panel in the
/// same states and period (`panel`: spend per active card, so that a growing or shrinking
/// panel does not read as consumer behaviour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    None,
    Panel,
}

impl Word for Normalize {
    const ALL: &'static [Normalize] = &[Normalize::None, Normalize::Panel];

    fn as_str(self) -> &'static str {
        match self {
            Normalize::None => "none",
            Normalize::Panel => "panel",
        }
    }
}

impl Normalize {
    /// Checks that `metric` can be read per active card: sums can, a count of distinct
    /// customers or an average ticket cannot (a 400 `conflicting_parameters`).
    pub fn check(self, metric: Metric) -> Result<Normalize, ApiError> {
        let per_card = matches!(
            metric,
            Metric::Spend | Metric::Gross | Metric::Refunds | Metric::Transactions
        );
        if self == Normalize::Panel && !per_card {
            return Err(ApiError::conflicting(format!(
                "normalize=panel divides a sum by the active cards; metric {} is not a sum \
                 (use spend, gross, refunds or transactions)",
                metric.as_str()
            )));
        }
        Ok(self)
    }
}

/// The company's own periods a ticker's sales are summed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FiscalPeriodKind {
    FiscalQuarter,
    FiscalYear,
}

impl Word for FiscalPeriodKind {
    const ALL: &'static [FiscalPeriodKind] = &[
        FiscalPeriodKind::FiscalQuarter,
        FiscalPeriodKind::FiscalYear,
    ];

    fn as_str(self) -> &'static str {
        match self {
            FiscalPeriodKind::FiscalQuarter => "fiscal_quarter",
            FiscalPeriodKind::FiscalYear => "fiscal_year",
        }
    }
}

/// Which part of the review queue `GET /v1/admin/review` lists: the groups that need a person
/// (`review`: spend counted in no category, or a brand suspected) or the local shops (`local`:
/// counted in their category, no brand in sight). See `schema/0016_review_groups.sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueuePart {
    Review,
    Local,
}

impl Word for QueuePart {
    const ALL: &'static [QueuePart] = &[QueuePart::Review, QueuePart::Local];

    fn as_str(self) -> &'static str {
        match self {
            QueuePart::Review => "review",
            QueuePart::Local => "local",
        }
    }
}

deserialize_from_text!(
    QueuePart,
    Metric,
    Granularity,
    GrowthPeriod,
    OutputFormat,
    RankBy,
    Direction,
    Normalize,
    FiscalPeriodKind
);

/// Checks `from <= to` and the maximum range.
pub fn check_range(from: NaiveDate, to: NaiveDate, limits: &QueryLimits) -> Result<(), ApiError> {
    if from > to {
        return Err(ApiError::conflicting(format!(
            "from={from} is after to={to}"
        )));
    }
    let days = (to - from).num_days() + 1;
    if days > limits.max_range_days {
        return Err(ApiError::BadRequest {
            code: RANGE_TOO_LONG,
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
    fn quarters_are_calendar_quarters_and_periods_end_the_day_before_the_next() {
        assert_eq!(
            Granularity::Quarter.period_start(date("2026-11-26")),
            date("2026-10-01")
        );
        let quarter = Granularity::Quarter.period(date("2026-10-01"));
        assert_eq!(
            (quarter.from, quarter.to),
            (date("2026-10-01"), date("2026-12-31"))
        );
        let week = Granularity::Week.period(date("2026-11-23"));
        assert_eq!(week.days(), 7);
        assert_eq!(Granularity::Month.period(date("2026-02-01")).days(), 28);
    }

    #[test]
    fn calendar_growth_compares_to_date_with_the_same_days_before() {
        let (current, previous) = GrowthPeriod::Month.ranges(date("2026-03-31"));
        assert_eq!(
            (current.from, current.to),
            (date("2026-03-01"), date("2026-03-31"))
        );
        // February has fewer days: the previous period ends with it.
        assert_eq!(
            (previous.from, previous.to),
            (date("2026-02-01"), date("2026-02-28"))
        );
        let (current, previous) = GrowthPeriod::Quarter.ranges(date("2026-11-05"));
        assert_eq!(current.from, date("2026-10-01"));
        assert_eq!(
            (previous.from, previous.to),
            (date("2026-07-01"), date("2026-08-05"))
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
    fn only_one_scope_may_be_given() {
        let coffee = Some(CategoryName(Category::CoffeeShop));
        assert!(ScopeParam::of(coffee, Some(MerchantId(1)), None).is_err());
        assert_eq!(ScopeParam::of(None, None, None).ok(), Some(ScopeParam::All));
        assert_eq!(
            ScopeParam::of(coffee, None, None).ok(),
            Some(ScopeParam::Category(Category::CoffeeShop))
        );
    }

    #[test]
    fn words_are_named_as_serde_names_them() {
        fn check<T: Word + Serialize>() {
            for word in T::ALL {
                assert_eq!(
                    serde_json::to_value(word).ok(),
                    Some(serde_json::Value::from(word.as_str()))
                );
            }
        }
        check::<Metric>();
        check::<Granularity>();
        check::<GrowthPeriod>();
        check::<OutputFormat>();
        check::<RankBy>();
        check::<Direction>();
        check::<Normalize>();
        check::<FiscalPeriodKind>();
        check::<QueuePart>();
        let error = serde_json::from_str::<Metric>("\"profit\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.starts_with(
                "\"profit\" is not valid: expected spend, gross, refunds, transactions, customers, avg_ticket, spend_per_customer or transactions_per_customer"
            ),
            "{error}"
        );
    }

    #[test]
    fn ranges_past_the_limit_are_refused() {
        let limits = QueryLimits::default();
        assert!(check_range(date("2020-01-01"), date("2026-01-01"), &limits).is_err());
        assert!(check_range(date("2026-01-02"), date("2026-01-01"), &limits).is_err());
        assert!(check_range(date("2025-01-01"), date("2026-01-01"), &limits).is_ok());
    }
}
