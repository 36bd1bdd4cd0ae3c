//! `GET /v1/tickers` and `GET /v1/tickers/{symbol}/sales`: the catalogue's brands grouped under
//! their listed parent (`data/companies.csv`: exchange and fiscal calendar), and the net spend
//! of all of a company's brands over its own fiscal quarters or years: the last four complete
//! periods against the same periods a fiscal year earlier, and the current period to date
//! against the same point of the year before.

use super::answer::{cached, negotiate, today, uncached};
use super::growth::growth_of;
use crate::cache::Dependency;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::query::{
    self, Brand, Day, FiscalPeriodKind, FormatParams, RowSet, TickerPath, TickerSalesParams, Totals,
};
use crate::AppState;
use altdata_domain::fiscal::{Company, FiscalCalendar, FiscalPeriod, YearEnd};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use utoipa::ToSchema;

/// How many complete periods an answer lists.
const COMPLETE_PERIODS: usize = 4;

/// The embedded companies, parsed once (their file is checked by the domain crate's tests).
fn companies() -> &'static [Company] {
    static COMPANIES: OnceLock<Vec<Company>> = OnceLock::new();
    COMPANIES.get_or_init(|| altdata_domain::fiscal::companies().unwrap_or_default())
}

/// A listed company and its fiscal calendar.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompanyInfo {
    /// e.g. `SBUX`.
    pub symbol: String,
    /// e.g. `NASDAQ`.
    pub exchange: String,
    pub name: String,
    /// The month the fiscal year ends in (1-12); for a 52/53-week year, the month it ends
    /// nearest to or in.
    pub fiscal_year_end_month: u32,
    /// `month` (quarters of calendar months) or `52_53_week` (a retail calendar of whole weeks,
    /// 4-4-5 and its kin).
    pub calendar: String,
    /// For a 52/53-week year: the weeks of each quarter, e.g. `13-13-13-13` (the 53rd week in
    /// the fourth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarter_weeks: Option<String>,
    /// `end`: fiscal year N ends in N; `start`: it begins in N.
    pub year_named_by: String,
    /// How far SEC EDGAR documents confirm the fiscal calendar (compiled from the company's
    /// 10-K filings by hand): `SEC EDGAR periods: <filings>` when the start and end dates of
    /// fiscal years or quarters in those filings agree with it, `SEC EDGAR year-end month:
    /// <files>` when only the fiscal year-end does, `unverified` when no document was found
    /// (check the latest 10-K before relying on the periods). The symbol and exchange are
    /// checked against the exchanges' listing files.
    pub calendar_source: String,
    /// The catalogue's brands of the company, by name.
    pub brands: Vec<BrandRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BrandRef {
    pub merchant_id: i64,
    pub name: String,
}

impl CompanyInfo {
    fn of(company: &Company, brands: &[Brand]) -> CompanyInfo {
        let calendar = company.calendar;
        let (kind, weeks) = match calendar.year_end {
            YearEnd::LastDayOfMonth => ("month", None),
            YearEnd::Weeks { quarter_weeks, .. } => (
                "52_53_week",
                Some(
                    quarter_weeks
                        .iter()
                        .map(u8::to_string)
                        .collect::<Vec<_>>()
                        .join("-"),
                ),
            ),
        };
        CompanyInfo {
            symbol: company.symbol.clone(),
            exchange: company.exchange.clone(),
            name: company.name.clone(),
            fiscal_year_end_month: calendar.end_month,
            calendar: kind.to_owned(),
            quarter_weeks: weeks,
            year_named_by: if calendar.named_by_end {
                "end"
            } else {
                "start"
            }
            .to_owned(),
            calendar_source: company.calendar_source.clone(),
            brands: brands
                .iter()
                .map(|b| BrandRef {
                    merchant_id: b.merchant_id,
                    name: b.name.clone(),
                })
                .collect(),
        }
    }
}

/// The listed companies with brands in the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TickersAnswer {
    pub tickers: Vec<CompanyInfo>,
}

/// Listed companies whose brands the catalogue holds, with exchange and fiscal calendar.
#[utoipa::path(
    get, path = "/v1/tickers", tag = "reference", params(FormatParams),
    security(("bearer" = [])),
    responses((status = 200, description = "Listed companies (also text/csv)", body = TickersAnswer))
)]
pub async fn list_tickers(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<FormatParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let mut client = state.inner.read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let (brands, basis) =
        tokio::try_join!(query::brands_by_symbol(&snapshot), query::basis(&snapshot))?;
    let as_of = basis.as_of;
    snapshot.commit().await?;
    let tickers = companies()
        .iter()
        .filter_map(|company| {
            let brands = brands.get(&company.symbol)?;
            Some(CompanyInfo::of(company, brands))
        })
        .collect();
    Ok(uncached(TickersAnswer { tickers }, as_of).respond(format))
}

/// A company's net spend over one fiscal period (or part of one), against the same days a
/// fiscal year earlier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TickerPeriod {
    /// e.g. `FY2025 Q1`.
    pub label: String,
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// Net spend (sales minus refunds) in dollars at all the company's brands, over released
    /// cells; null when no cell of the period is released (no data, or all withheld).
    pub sales: Option<f64>,
    /// The same period a fiscal year earlier, e.g. `FY2024 Q1`.
    pub previous_label: String,
    #[schema(value_type = String, format = Date)]
    pub previous_from: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub previous_to: NaiveDate,
    pub previous_sales: Option<f64>,
    /// (sales - previous_sales) / previous_sales; null when either is null or the base is 0.
    pub yoy_growth: Option<f64>,
    /// Cells (merchant × state × day) of either period left out: fewer than k customers.
    pub withheld_cells: i64,
}

/// A company's sales over its fiscal periods.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TickerSalesAnswer {
    pub company: CompanyInfo,
    pub period: FiscalPeriodKind,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    /// Empty: every region.
    pub states: Vec<String>,
    pub unit: String,
    /// The last complete fiscal periods up to `as_of`, oldest first, each against the same
    /// period a fiscal year earlier (year over year).
    pub periods: Vec<TickerPeriod>,
    /// The period holding `as_of`, from its first day to `as_of`, against the same number of
    /// days from the first day of the same period a fiscal year earlier.
    pub to_date: TickerPeriod,
    /// The newest aggregator commit included.
    pub as_of_data: Option<DateTime<Utc>>,
    pub k_anonymity: u32,
}

/// A listed company's net spend on its fiscal quarters or years, with year-over-year growth
/// and the current period to date.
#[utoipa::path(
    get, path = "/v1/tickers/{symbol}/sales", tag = "data", params(TickerPath, TickerSalesParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Sales by fiscal period (also text/csv)", body = TickerSalesAnswer),
        (status = 404, description = "No listed company with brands in the catalogue has this symbol", body = ErrorBody),
    )
)]
pub async fn ticker_sales(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(path): ApiPath<TickerPath>,
    ApiQuery(params): ApiQuery<TickerSalesParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let symbol = path.symbol.0;
    let company = companies()
        .iter()
        .find(|c| c.symbol == symbol)
        .ok_or_else(|| ApiError::NotFound(format!("no listed company {symbol:?}")))?;
    let period = params.period.unwrap_or(FiscalPeriodKind::FiscalQuarter);
    let as_of = params.as_of.map_or(today() - Days::new(1), |Day(day)| day);
    let states = params.state.unwrap_or_default().0;
    let canonical = format!(
        "/v1/tickers/{symbol}/sales?as_of={as_of}&period={}&state={}",
        query::Word::as_str(period),
        states.join(",")
    );
    // A company's brands span merchants and categories: any change may reach it.
    let answer = cached(&state, &headers, canonical, Dependency::All, || async {
        let body = compute_sales(&state, company, period, as_of, &states).await?;
        let data_as_of = body.as_of_data;
        Ok((body, data_as_of))
    })
    .await?;
    Ok(answer.respond(format))
}

/// The answer from one read-only snapshot.
async fn compute_sales(
    state: &AppState,
    company: &Company,
    period: FiscalPeriodKind,
    as_of: NaiveDate,
    states: &[String],
) -> Result<TickerSalesAnswer, ApiError> {
    let calendar = company.calendar;
    let plan = plan(&calendar, period, as_of);
    let mut client = state.inner.read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let (basis, mut by_symbol) =
        tokio::try_join!(query::basis(&snapshot), query::brands_by_symbol(&snapshot))?;
    let (data_as_of, k) = (basis.as_of, basis.k);
    let brands = by_symbol.remove(&company.symbol).ok_or_else(|| {
        ApiError::NotFound(format!("no brand of {} in the catalogue", company.symbol))
    })?;
    let rows = RowSet::merchants(brands.iter().map(|b| b.merchant_id).collect());
    let ranges: Vec<query::DateRange> = plan
        .iter()
        .flat_map(|(current, previous)| [range(current), range(previous)])
        .collect();
    let totals = query::range_totals(&snapshot, &rows, &ranges, states).await?;
    snapshot.commit().await?;
    let mut periods: Vec<TickerPeriod> = plan
        .iter()
        .zip(totals.chunks(2))
        .map(|((current, previous), pair)| ticker_period(current, previous, pair))
        .collect();
    let to_date = periods.pop().ok_or(ApiError::Internal)?;
    Ok(TickerSalesAnswer {
        company: CompanyInfo::of(company, &brands),
        period,
        as_of,
        states: states.to_vec(),
        unit: "usd".to_owned(),
        periods,
        to_date,
        as_of_data: data_as_of,
        k_anonymity: k,
    })
}

/// The periods to read, each with its year-earlier twin: the last complete ones before the
/// period holding `as_of`, oldest first, then that period to date (as the last pair).
fn plan(
    calendar: &FiscalCalendar,
    kind: FiscalPeriodKind,
    as_of: NaiveDate,
) -> Vec<(FiscalPeriod, FiscalPeriod)> {
    let period_of = |day: NaiveDate| match kind {
        FiscalPeriodKind::FiscalQuarter => calendar.quarter_of(day),
        FiscalPeriodKind::FiscalYear => calendar.year_of(day),
    };
    let current = period_of(as_of);
    let mut pairs = Vec::with_capacity(COMPLETE_PERIODS + 1);
    let mut end = current.start;
    for _ in 0..COMPLETE_PERIODS {
        let Some(day) = end.pred_opt() else { break };
        let complete = period_of(day);
        end = complete.start;
        pairs.push((complete.clone(), calendar.year_before(&complete)));
    }
    pairs.reverse();
    // To date: the same number of days into the year-earlier period, within it.
    let elapsed = as_of - current.start;
    let before = calendar.year_before(&current);
    let before_to = (before.start + elapsed).min(before.end);
    pairs.push((
        FiscalPeriod {
            end: as_of,
            ..current
        },
        FiscalPeriod {
            end: before_to,
            ..before
        },
    ));
    pairs
}

fn range(period: &FiscalPeriod) -> query::DateRange {
    query::DateRange {
        from: period.start,
        to: period.end,
    }
}

fn ticker_period(
    current: &FiscalPeriod,
    previous: &FiscalPeriod,
    totals: &[Totals],
) -> TickerPeriod {
    let sales = |t: Option<&Totals>| {
        t.filter(|t| t.released())
            .map(|t| (t.gross_cents - t.refund_cents) as f64 / 100.0)
    };
    let (now, before) = (sales(totals.first()), sales(totals.get(1)));
    TickerPeriod {
        label: current.label(),
        from: current.start,
        to: current.end,
        sales: now,
        previous_label: previous.label(),
        previous_from: previous.start,
        previous_to: previous.end,
        previous_sales: before,
        yoy_growth: growth_of(now, before),
        withheld_cells: totals.iter().map(|t| t.withheld_cells).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn quarter_to_date_is_compared_with_the_same_point_a_year_earlier() {
        let sbux = companies()
            .iter()
            .find(|c| c.symbol == "SBUX")
            .map(|c| c.calendar)
            .unwrap_or_else(|| panic!("SBUX"));
        let pairs = plan(&sbux, FiscalPeriodKind::FiscalQuarter, date("2024-11-15"));
        assert_eq!(pairs.len(), COMPLETE_PERIODS + 1);
        let (now, before) = &pairs[COMPLETE_PERIODS];
        assert_eq!(
            (now.label(), now.start, now.end),
            (
                "FY2025 Q1".to_owned(),
                date("2024-09-30"),
                date("2024-11-15")
            )
        );
        assert_eq!(
            (before.label(), before.start, before.end),
            (
                "FY2024 Q1".to_owned(),
                date("2023-10-02"),
                date("2023-11-17")
            )
        );
        let (last, last_before) = &pairs[COMPLETE_PERIODS - 1];
        assert_eq!(
            (last.label(), last.end),
            ("FY2024 Q4".to_owned(), date("2024-09-29"))
        );
        assert_eq!(last_before.label(), "FY2023 Q4");
        assert_eq!(pairs[0].0.label(), "FY2024 Q1");
    }
}
