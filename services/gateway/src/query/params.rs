//! The query parameters of each route, as they arrive: all text, so that every message about
//! a bad value is ours, and unknown parameters are refused.

use serde::Deserialize;
use utoipa::IntoParams;

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

/// Parameters of `GET /v1/changes`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// A category such as `coffee_shop`. At most one of category, merchant, brand; none means all merchants.
    pub category: Option<String>,
    /// A merchant id.
    pub merchant: Option<String>,
    /// A brand id from the catalogue.
    pub brand: Option<String>,
    /// Comma-separated US state codes. Default: every region.
    pub state: Option<String>,
    /// Changes recorded on or after this day, YYYY-MM-DD. Default: 30 days before today.
    pub since: Option<String>,
    /// Only changes to days from this one, YYYY-MM-DD.
    pub from: Option<String>,
    /// Only changes to days up to this one, YYYY-MM-DD.
    pub to: Option<String>,
    /// 1 to the maximum page size (500). Default 100.
    pub limit: Option<String>,
    /// Default 0.
    pub offset: Option<String>,
    /// json (default) or csv; `Accept: text/csv` also selects CSV.
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
