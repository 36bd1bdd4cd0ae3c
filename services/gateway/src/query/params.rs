//! The query parameters of each route, typed: serde parses every value (the words of
//! `terms.rs`, the values of `values.rs`) while the query is read, unknown parameters are
//! refused, and the OpenAPI document describes each parameter from the same type.

use super::terms::{
    Direction, FiscalPeriodKind, Granularity, GrowthPeriod, Metric, Normalize, OutputFormat,
    QueuePart, RankBy,
};
use super::values::{
    BrandId, CategoryName, Day, MerchantId, MinSpend, Offset, PageLimit, RangeDay, SearchText,
    Shop, States, TickerSymbol, TopLimit,
};
use serde::Deserialize;
use utoipa::IntoParams;

/// Parameters of `GET /v1/timeseries`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimeseriesParams {
    /// Default spend (net: sales minus refunds).
    pub metric: Option<Metric>,
    /// At most one of category, merchant and brand (a 400 with code `conflicting_parameters`
    /// otherwise); none means all merchants.
    pub category: Option<CategoryName>,
    /// A merchant id.
    #[param(inline)]
    pub merchant: Option<MerchantId>,
    /// A brand id from the catalogue.
    #[param(inline)]
    pub brand: Option<BrandId>,
    /// Comma-separated US state codes, e.g. `CA,NY`. Default: every region.
    #[param(inline)]
    pub state: Option<States>,
    /// day, week (Monday to Sunday), month or quarter (calendar). A period reaching outside
    /// from/to counts only the days inside and is flagged `clipped`. Default day.
    pub granularity: Option<Granularity>,
    /// First day. Default: 90 days (day), 26 weeks (week) or 12 months (month) before `to`.
    /// Not after `to`, and at most `x-max-range-days` days from `to` (a 400 with code
    /// `conflicting_parameters` or `range_too_long` otherwise).
    #[param(inline)]
    pub from: Option<RangeDay>,
    /// Last day. Default today (UTC).
    #[param(inline)]
    pub to: Option<RangeDay>,
    /// panel: the metric per active card of the panel (cards with an accepted transaction) in
    /// the same states and period, with the raw values and the panel counts beside it; only for
    /// spend, gross, refunds and transactions (a 400 with code `conflicting_parameters`
    /// otherwise). Default none.
    pub normalize: Option<Normalize>,
    /// Default json; `Accept: text/csv` also selects CSV.
    pub format: Option<OutputFormat>,
}

/// Parameters of `GET /v1/growth`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrowthParams {
    /// Default spend.
    pub metric: Option<Metric>,
    /// At most one of category, merchant and brand; none means all merchants.
    pub category: Option<CategoryName>,
    #[param(inline)]
    pub merchant: Option<MerchantId>,
    #[param(inline)]
    pub brand: Option<BrandId>,
    /// Comma-separated US state codes. Default: every region.
    #[param(inline)]
    pub state: Option<States>,
    /// Trailing windows: wow (7 days vs the 7 before), mom (28 days vs the 28 before) or yoy
    /// (7 days vs the same 7 days 364 days earlier). Calendar: month or quarter to date vs as
    /// many days from the start of the previous month or quarter. Default wow.
    pub period: Option<GrowthPeriod>,
    /// Last day of the current period. Default yesterday (UTC).
    #[param(inline)]
    pub as_of: Option<Day>,
    /// panel: the metric per active card of the panel (cards with an accepted transaction) in
    /// the same states and period, with the raw values and the panel counts beside it; only for
    /// spend, gross, refunds and transactions (a 400 with code `conflicting_parameters`
    /// otherwise). Default none.
    pub normalize: Option<Normalize>,
    /// Default json; `Accept: text/csv` also selects CSV.
    pub format: Option<OutputFormat>,
}

/// Parameters of `GET /v1/growth/states`: those of `/v1/growth` but `state`, since the answer
/// covers every state.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrowthByStateParams {
    /// Default spend.
    pub metric: Option<Metric>,
    /// At most one of category, merchant and brand; none means all merchants.
    pub category: Option<CategoryName>,
    #[param(inline)]
    pub merchant: Option<MerchantId>,
    #[param(inline)]
    pub brand: Option<BrandId>,
    /// wow, mom, yoy, month or quarter, as for `/v1/growth`. Default wow.
    pub period: Option<GrowthPeriod>,
    /// Last day of the current period. Default yesterday (UTC).
    #[param(inline)]
    pub as_of: Option<Day>,
    /// panel: the metric per active card of the panel (cards with an accepted transaction) in
    /// the same states and period, with the raw values and the panel counts beside it; only for
    /// spend, gross, refunds and transactions (a 400 with code `conflicting_parameters`
    /// otherwise). Default none.
    pub normalize: Option<Normalize>,
    /// Default json; `Accept: text/csv` also selects CSV.
    pub format: Option<OutputFormat>,
    /// Refused with a 400 that says why (rather than serde's "unknown field"); not documented.
    #[param(ignore)]
    pub state: Option<String>,
}

/// Parameters of `GET /v1/top`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    /// Only merchants of this category. Default: all categories.
    pub category: Option<CategoryName>,
    /// Comma-separated US state codes. Default: every region.
    #[param(inline)]
    pub state: Option<States>,
    /// spend (net spend in the current period) or growth (of net spend). Default spend.
    pub by: Option<RankBy>,
    /// up (largest first: top spenders, gainers) or down (smallest first: decliners).
    /// Default up.
    pub direction: Option<Direction>,
    /// The size floor, in whole dollars: by spend, a merchant's current net spend must reach
    /// it; by growth, its previous net spend (the base). Default 0.
    #[param(inline)]
    pub min_spend: Option<MinSpend>,
    /// Default wow.
    pub period: Option<GrowthPeriod>,
    /// Last day of the current period. Default yesterday (UTC).
    #[param(inline)]
    pub as_of: Option<Day>,
    /// Default 10.
    #[param(inline)]
    pub limit: Option<TopLimit>,
    /// Default json; `Accept: text/csv` also selects CSV.
    pub format: Option<OutputFormat>,
}

/// Parameters of `GET /v1/changes`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// At most one of category, merchant and brand; none means all merchants.
    pub category: Option<CategoryName>,
    #[param(inline)]
    pub merchant: Option<MerchantId>,
    #[param(inline)]
    pub brand: Option<BrandId>,
    /// Comma-separated US state codes. Default: every region.
    #[param(inline)]
    pub state: Option<States>,
    /// Changes recorded on or after this day. Default: 30 days before today.
    #[param(inline)]
    pub since: Option<Day>,
    /// Only changes to days from this one.
    #[param(inline)]
    pub from: Option<Day>,
    /// Only changes to days up to this one.
    #[param(inline)]
    pub to: Option<Day>,
    /// Default 100.
    #[param(inline)]
    pub limit: Option<PageLimit>,
    /// Default 0.
    #[param(inline)]
    pub offset: Option<Offset>,
    /// Default json; `Accept: text/csv` also selects CSV.
    pub format: Option<OutputFormat>,
}

/// Parameters of `GET /v1/merchants`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MerchantsParams {
    /// Part of the name, case-insensitive; names starting with it come first.
    #[param(inline)]
    pub q: Option<SearchText>,
    pub category: Option<CategoryName>,
    /// Default 50.
    #[param(inline)]
    pub limit: Option<PageLimit>,
    /// Default 0.
    #[param(inline)]
    pub offset: Option<Offset>,
    /// Default json; `Accept: text/csv` also selects CSV.
    pub format: Option<OutputFormat>,
}

/// Parameters of lists without filters.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FormatParams {
    /// Default json; `Accept: text/csv` also selects CSV.
    pub format: Option<OutputFormat>,
}

/// Paging of admin lists.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Default 50.
    #[param(inline)]
    pub limit: Option<PageLimit>,
    /// Default 0.
    #[param(inline)]
    pub offset: Option<Offset>,
}

/// Parameters of `GET /v1/admin/review`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    /// review (default): groups that need a person; local: local shops already counted in
    /// their category.
    pub part: Option<QueuePart>,
    /// Default 50.
    #[param(inline)]
    pub limit: Option<PageLimit>,
    /// Default 0.
    #[param(inline)]
    pub offset: Option<Offset>,
}

/// A date range, for `GET /v1/admin/mapped-share`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// Default 30 days before `to`. Not after `to`, and at most `x-max-range-days` days from
    /// it.
    #[param(inline)]
    pub from: Option<RangeDay>,
    /// Default today (UTC).
    #[param(inline)]
    pub to: Option<RangeDay>,
}

/// Parameters of `GET /v1/overlap`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverlapParams {
    /// The first group of customers: a category (e.g. `coffee_shop`), a merchant id (a
    /// number) or a brand id (e.g. `starbucks`), read in that order.
    #[param(inline)]
    pub a: Shop,
    /// The second group, in the same forms.
    #[param(inline)]
    pub b: Shop,
    /// Comma-separated US state codes. Default: every region.
    #[param(inline)]
    pub state: Option<States>,
    /// First day. Default: 27 days before `to` (four weeks). Not after `to`, and at most
    /// `x-max-range-days` days from it (a 400 with code `conflicting_parameters` or
    /// `range_too_long` otherwise).
    #[param(inline)]
    pub from: Option<RangeDay>,
    /// Last day. Default yesterday (UTC).
    #[param(inline)]
    pub to: Option<RangeDay>,
    /// Default json; `Accept: text/csv` also selects CSV.
    pub format: Option<OutputFormat>,
}

/// The path of `GET /v1/tickers/{symbol}/sales`.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TickerPath {
    /// The listed company's symbol, e.g. `SBUX` (see `GET /v1/tickers`); any case.
    #[param(inline)]
    pub symbol: TickerSymbol,
}

/// Parameters of `GET /v1/tickers/{symbol}/sales`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TickerSalesParams {
    /// fiscal_quarter or fiscal_year, on the company's own calendar. Default fiscal_quarter.
    pub period: Option<FiscalPeriodKind>,
    /// The day the current period is read to (period to date). Default yesterday (UTC).
    #[param(inline)]
    pub as_of: Option<Day>,
    /// Comma-separated US state codes. Default: every region.
    #[param(inline)]
    pub state: Option<States>,
    /// Default json; `Accept: text/csv` also selects CSV.
    pub format: Option<OutputFormat>,
}
