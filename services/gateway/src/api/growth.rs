//! `GET /v1/growth` and `GET /v1/growth/states`: growth of a metric between two periods of
//! equal length, for chosen states or for every state at once.

use super::answer::{
    cached, negotiate, resolve_scope, subject_of, suppression_note, today, Subject,
};
use super::panel::{self, PerCard};
use super::timeseries::value_or_reason;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::query::{
    self, attributed_share, DateRange, GrowthByStateParams, GrowthParams, GrowthPeriod,
    GrowthQuery, Metric, Missing, Normalize, PanelCoverage, PanelTotals, RowSet, Scope, Totals,
};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryFutureExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Growth of a metric between two periods of equal length.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrowthAnswer {
    pub query: GrowthEcho,
    pub subject: Subject,
    pub unit: String,
    /// The metric over the current period's released cells; null without data (see
    /// `current_reason`).
    pub current: Option<f64>,
    /// The metric over the previous period's released cells; null without data (see
    /// `previous_reason`): before the panel starts it is null, never 0.
    pub previous: Option<f64>,
    /// (current - previous) / previous as a fraction (0.05 = +5 %); null with
    /// `growth_reason` when either value is missing, a period is only partly covered by the
    /// panel, or the base is not positive. With normalize=panel, the growth per active card.
    pub growth: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_reason: Option<Missing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_reason: Option<Missing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_reason: Option<Missing>,
    pub current_period: DateRange,
    pub previous_period: DateRange,
    /// Part of the current period is outside the panel (after its last delivered day).
    pub current_partial: bool,
    /// Part of the previous period is outside the panel (before it starts).
    pub previous_partial: bool,
    pub current_suppressed: bool,
    pub previous_suppressed: bool,
    /// For a category or all merchants: the share of the current period's net spend at named
    /// brands (the rest is at shops whose brand is not known, counted by category); null for a
    /// merchant, without net spend, or when withheld.
    pub attributed_share: Option<f64>,
    /// The same for the previous period.
    pub previous_attributed_share: Option<f64>,
    /// The newest aggregator commit included.
    pub as_of_data: Option<DateTime<Utc>>,
    pub k_anonymity: u32,
    /// Cells (merchant × state × day) of either period left out: fewer than k customers.
    pub withheld_cells: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
    /// The days with data.
    pub panel: PanelCoverage,
    /// normalize=panel: the metric over the current period, not divided; null otherwise.
    pub raw_current: Option<f64>,
    /// normalize=panel: the metric over the previous period, not divided; null otherwise.
    pub raw_previous: Option<f64>,
    /// normalize=panel: active cards of the panel (distinct cards with an accepted
    /// transaction) in the states and current period, over panel cells (provider × state ×
    /// day) with at least k cards; an HLL estimate (relative standard error 0.81 %). Null
    /// otherwise, or when withheld.
    pub panel_current: Option<f64>,
    /// normalize=panel: the same for the previous period.
    pub panel_previous: Option<f64>,
    /// normalize=panel: panel cells of either period with fewer than k cards, left out of the
    /// panel counts; null otherwise.
    pub panel_withheld_cells: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrowthEcho {
    pub metric: Metric,
    pub period: GrowthPeriod,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    pub states: Vec<String>,
    /// panel when the values are per active card; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<Normalize>,
}

/// The two values of a growth answer over released cells (per active card with
/// normalize=panel, [`PerCard`]) and the growth between them: a value outside the panel or
/// whose every cell is withheld is null with its reason, and so is any growth computed from
/// it. `/v1/growth` and `/v1/growth/states` both use it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GrowthCells {
    values: PerCard,
    growth: Option<f64>,
    growth_reason: Option<Missing>,
    current_partial: bool,
    previous_partial: bool,
    current_suppressed: bool,
    previous_suppressed: bool,
    attributed_share: Option<f64>,
    previous_attributed_share: Option<f64>,
    withheld_cells: i64,
}

/// The totals of a growth answer's two periods, and of their unattributed part (for a category
/// or all merchants).
#[derive(Debug, Clone, Copy, Default)]
struct Periods {
    current: Totals,
    previous: Totals,
    unattributed: Option<(Totals, Totals)>,
}

impl Periods {
    /// From totals per range (current, previous), as the range reads return them.
    fn of(totals: &[Totals], unattributed: Option<&[Totals]>) -> Periods {
        let pair = |t: &[Totals]| {
            (
                t.first().copied().unwrap_or_default(),
                t.get(1).copied().unwrap_or_default(),
            )
        };
        let (current, previous) = pair(totals);
        Periods {
            current,
            previous,
            unattributed: unattributed.map(pair),
        }
    }
}

impl GrowthCells {
    /// The values over released cells, each null with its reason when the panel has no data
    /// for its period or every cell is withheld; growth only between two periods the panel
    /// covers whole, over a positive base.
    /// With `panel` (normalize=panel: the active cards of each period), the values are per
    /// active card and growth is between them.
    fn of(
        periods: Periods,
        metric: Metric,
        ranges: (DateRange, DateRange),
        coverage: &PanelCoverage,
        panel: Option<&[PanelTotals]>,
    ) -> GrowthCells {
        let Periods {
            current,
            previous,
            unattributed,
        } = periods;
        let share = |whole: &Totals, part: Option<&Totals>| {
            part.filter(|_| !whole.suppressed())
                .and_then(|part| attributed_share(whole, part))
        };
        let value = |cell: &Totals, range: DateRange| {
            value_or_reason(cell, metric, coverage.covered(range).err())
        };
        let values = PerCard::of(value(&current, ranges.0), value(&previous, ranges.1), panel);
        let current_partial = coverage.covers_part(ranges.0);
        let previous_partial = coverage.covers_part(ranges.1);
        let growth = match (values.previous, values.current) {
            (Err(reason), _) | (_, Err(reason)) => Err(reason),
            _ if current_partial || previous_partial => Err(Missing::PartialPeriod),
            (Ok(previous), Ok(current)) => {
                growth_of(Some(current), Some(previous)).ok_or(Missing::ZeroBase)
            }
        };
        GrowthCells {
            values,
            growth: growth.ok(),
            growth_reason: growth.err(),
            current_partial,
            previous_partial,
            current_suppressed: current.suppressed(),
            previous_suppressed: previous.suppressed(),
            attributed_share: share(&current, unattributed.as_ref().map(|u| &u.0)),
            previous_attributed_share: share(&previous, unattributed.as_ref().map(|u| &u.1)),
            withheld_cells: current.withheld_cells + previous.withheld_cells,
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
        (status = 200, description = "Growth (also text/csv)", body = GrowthAnswer),
        (status = 404, description = "Unknown merchant or brand", body = ErrorBody),
    )
)]
pub async fn growth(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<GrowthParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let query = GrowthQuery::parse(&params, today())?;
    let scope = resolve_scope(&state, &query.scope).await?;
    let answer = cached(
        &state,
        &headers,
        query.canonical(),
        panel::dependency(query.normalize, &scope),
        || async {
            let body = compute_growth(&state.inner.read_db, &query, &scope).await?;
            let as_of = body.as_of_data;
            Ok((body, as_of))
        },
    )
    .await?;
    Ok(answer.respond(format))
}

/// The answer to a validated growth question, computed from one read-only snapshot without
/// the cache: `/v1/growth` and `altdata ask` both use it, so there is one growth query and one
/// k-anonymity rule.
pub async fn compute_growth(
    read_db: &deadpool_postgres::Pool,
    query: &GrowthQuery,
    scope: &Scope,
) -> Result<GrowthAnswer, ApiError> {
    let (current_period, previous_period) = query.period.ranges(query.as_of);
    let mut client = read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let ranges = [current_period, previous_period];
    let (rows, unattributed_rows) = (RowSet::of(scope), RowSet::unattributed_of(scope));
    let panel_asked = matches!(query.normalize, Normalize::Panel);
    let (basis, subject, totals, unattributed, panel) = tokio::try_join!(
        query::basis(&snapshot).err_into(),
        subject_of(&snapshot, &query.scope, scope),
        query::range_totals(&snapshot, &rows, &ranges, &query.states).err_into(),
        query::optional(unattributed_rows.as_ref().map(|rows| query::range_totals(
            &snapshot,
            rows,
            &ranges,
            &query.states
        )))
        .err_into(),
        query::optional(panel_asked.then(|| query::panel_totals(
            &snapshot,
            &ranges,
            &query.states
        )))
        .err_into(),
    )?;
    let (as_of, k, coverage) = (basis.as_of, basis.k, basis.coverage);
    snapshot.commit().await?;
    let cells = GrowthCells::of(
        Periods::of(&totals, unattributed.as_deref()),
        query.metric,
        (current_period, previous_period),
        &coverage,
        panel.as_deref(),
    );
    let values = cells.values;
    Ok(GrowthAnswer {
        query: GrowthEcho {
            metric: query.metric,
            period: query.period,
            as_of: query.as_of,
            states: query.states.clone(),
            normalize: panel::echo(query.normalize),
        },
        subject,
        unit: query.metric.unit().to_owned(),
        current: values.current.ok(),
        previous: values.previous.ok(),
        growth: cells.growth,
        current_reason: values.current.err(),
        previous_reason: values.previous.err(),
        growth_reason: cells.growth_reason,
        raw_current: values.raw_current,
        raw_previous: values.raw_previous,
        panel_current: values.panel_current,
        panel_previous: values.panel_previous,
        panel_withheld_cells: values.panel_withheld_cells,
        current_period,
        previous_period,
        current_partial: cells.current_partial,
        previous_partial: cells.previous_partial,
        current_suppressed: cells.current_suppressed,
        previous_suppressed: cells.previous_suppressed,
        attributed_share: cells.attributed_share,
        previous_attributed_share: cells.previous_attributed_share,
        as_of_data: as_of,
        k_anonymity: k,
        withheld_cells: cells.withheld_cells,
        suppression: suppression_note(cells.withheld(), 2, cells.withheld_cells, k),
        panel: coverage,
    })
}

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
    /// The days with data.
    pub panel: PanelCoverage,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrowthByStateEcho {
    pub metric: Metric,
    pub period: GrowthPeriod,
    #[schema(value_type = String, format = Date)]
    pub as_of: NaiveDate,
    /// panel when the values are per active card; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<Normalize>,
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
    /// (current - previous) / previous as a fraction; null with `growth_reason` as for
    /// `/v1/growth`.
    pub growth: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth_reason: Option<Missing>,
    /// True when either period is withheld: all its activity in the state is in cells with
    /// fewer than `k_anonymity` distinct customers.
    pub suppressed: bool,
    pub current_suppressed: bool,
    pub previous_suppressed: bool,
    /// Cells (merchant × day) of either period left out: fewer than k customers.
    pub withheld_cells: i64,
    /// For a category or all merchants: the share of the current period's net spend at named
    /// brands (the rest is at shops whose brand is not known, counted by category); null for a
    /// merchant, without net spend, or when withheld.
    pub attributed_share: Option<f64>,
    /// The same for the previous period.
    pub previous_attributed_share: Option<f64>,
    /// normalize=panel: the metric over the current period, not divided; null otherwise.
    pub raw_current: Option<f64>,
    /// normalize=panel: the metric over the previous period, not divided; null otherwise.
    pub raw_previous: Option<f64>,
    /// normalize=panel: active cards of the panel (distinct cards with an accepted
    /// transaction) in the state and current period, over panel cells (provider × state ×
    /// day) with at least k cards; an HLL estimate (relative standard error 0.81 %). Null
    /// otherwise, or when withheld.
    pub panel_current: Option<f64>,
    /// normalize=panel: the same for the previous period.
    pub panel_previous: Option<f64>,
    /// normalize=panel: panel cells of either period with fewer than k cards, left out of the
    /// panel counts; null otherwise.
    pub panel_withheld_cells: Option<i64>,
}

/// Week-over-week, month-over-month (28 days) or year-over-year growth for every state, in
/// one answer.
#[utoipa::path(
    get, path = "/v1/growth/states", tag = "data", params(GrowthByStateParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Growth per state (also text/csv)", body = GrowthByStateAnswer),
        (status = 404, description = "Unknown merchant or brand", body = ErrorBody),
    )
)]
pub async fn growth_by_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<GrowthByStateParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let query = GrowthQuery::parse_by_state(&params, today())?;
    let scope = resolve_scope(&state, &query.scope).await?;
    // The same dependency as `/v1/growth` for this scope: any change to it reaches every state.
    let answer = cached(
        &state,
        &headers,
        query.canonical_by_state(),
        panel::dependency(query.normalize, &scope),
        || async {
            let body = compute_growth_by_state(&state.inner.read_db, &query, &scope).await?;
            let as_of = body.as_of_data;
            Ok((body, as_of))
        },
    )
    .await?;
    Ok(answer.respond(format))
}

/// The answer of `/v1/growth/states` for a validated query, from one read-only snapshot.
pub async fn compute_growth_by_state(
    read_db: &deadpool_postgres::Pool,
    query: &GrowthQuery,
    scope: &Scope,
) -> Result<GrowthByStateAnswer, ApiError> {
    let (current_period, previous_period) = query.period.ranges(query.as_of);
    let ranges = [current_period, previous_period];
    let mut client = read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let (whole, part) = (RowSet::of(scope), RowSet::unattributed_of(scope));
    let panel_asked = matches!(query.normalize, Normalize::Panel);
    let (basis, subject, rows, unattributed, panel_by_state) = tokio::try_join!(
        query::basis(&snapshot).err_into(),
        subject_of(&snapshot, &query.scope, scope),
        query::range_totals_by_state(&snapshot, &whole, &ranges).err_into(),
        query::optional(
            part.as_ref()
                .map(|part| query::range_totals_by_state(&snapshot, part, &ranges))
        )
        .err_into(),
        query::optional(panel_asked.then(|| query::panel_totals_by_state(&snapshot, &ranges)))
            .err_into(),
    )?;
    let (as_of, k, coverage) = (basis.as_of, basis.k, basis.coverage);
    let unattributed: Option<BTreeMap<String, Vec<Totals>>> = unattributed.map(|by_state| {
        by_state
            .into_iter()
            .map(|row| (row.state, row.totals))
            .collect()
    });
    snapshot.commit().await?;
    let states: Vec<StateGrowth> = rows
        .into_iter()
        .map(|row| {
            // A state with no unattributed spend has zero of it, not an unknown share.
            let part = unattributed.as_ref().map(|by_state| {
                by_state
                    .get(&row.state)
                    .cloned()
                    .unwrap_or_else(|| vec![Totals::default(); 2])
            });
            // A state without panel cells has no active cards: nothing to divide by.
            let panel = panel_by_state.as_ref().map(|by_state| {
                by_state
                    .get(&row.state)
                    .cloned()
                    .unwrap_or_else(|| vec![PanelTotals::default(); 2])
            });
            let cells = GrowthCells::of(
                Periods::of(&row.totals, part.as_deref()),
                query.metric,
                (current_period, previous_period),
                &coverage,
                panel.as_deref(),
            );
            let values = cells.values;
            StateGrowth {
                state: row.state,
                current: values.current.ok(),
                previous: values.previous.ok(),
                growth: cells.growth,
                growth_reason: cells.growth_reason,
                raw_current: values.raw_current,
                raw_previous: values.raw_previous,
                panel_current: values.panel_current,
                panel_previous: values.panel_previous,
                panel_withheld_cells: values.panel_withheld_cells,
                suppressed: cells.withheld() > 0,
                current_suppressed: cells.current_suppressed,
                previous_suppressed: cells.previous_suppressed,
                withheld_cells: cells.withheld_cells,
                attributed_share: cells.attributed_share,
                previous_attributed_share: cells.previous_attributed_share,
            }
        })
        .collect();
    let withheld = states.iter().filter(|s| s.suppressed).count();
    Ok(GrowthByStateAnswer {
        query: GrowthByStateEcho {
            metric: query.metric,
            period: query.period,
            as_of: query.as_of,
            normalize: panel::echo(query.normalize),
        },
        subject,
        unit: query.metric.unit().to_owned(),
        current_period,
        previous_period,
        suppression: (withheld > 0).then(|| {
            format!(
                "{withheld} of {} states are suppressed (suppressed true, withheld values \
                 null): all their activity in a period is in cells (one merchant, state and \
                 day) with fewer than {k} distinct customers, the k-anonymity threshold; such \
                 cells are left out of every value",
                states.len()
            )
        }),
        states,
        as_of_data: as_of,
        k_anonymity: k,
        panel: coverage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    fn range(from: &str, to: &str) -> DateRange {
        DateRange {
            from: date(from),
            to: date(to),
        }
    }

    fn spend(dollars: i64) -> Totals {
        Totals {
            gross_cents: dollars * 100,
            sales: 10,
            customers: 10.0,
            ..Totals::default()
        }
    }

    fn cards(cards: f64) -> PanelTotals {
        PanelTotals {
            cards,
            withheld_cells: 0,
        }
    }

    /// normalize=panel divides only what the panel of days has: a previous week before the
    /// data starts stays null with its reason (no raw value, no growth), a period partly
    /// outside it gives no growth per card, and a whole pair is per card.
    #[test]
    fn per_card_values_keep_the_reasons_of_the_days_outside_the_panel() {
        let coverage = PanelCoverage {
            first_day: Some(date("2026-03-02")),
            last_day: Some(date("2026-03-15")),
        };
        let periods = Periods {
            current: spend(1_200),
            previous: spend(1_000),
            unattributed: None,
        };
        let panel = [cards(120.0), cards(100.0)];
        let whole = (
            range("2026-03-09", "2026-03-15"),
            range("2026-03-02", "2026-03-08"),
        );
        let cells = GrowthCells::of(periods, Metric::Spend, whole, &coverage, Some(&panel));
        assert_eq!(
            (cells.values.current, cells.values.previous),
            (Ok(10.0), Ok(10.0))
        );
        assert_eq!((cells.growth, cells.growth_reason), (Some(0.0), None));
        assert_eq!(cells.values.raw_current, Some(1_200.0));

        let before = (
            range("2026-03-02", "2026-03-08"),
            range("2026-02-23", "2026-03-01"),
        );
        let cells = GrowthCells::of(periods, Metric::Spend, before, &coverage, Some(&panel));
        assert_eq!(cells.values.previous, Err(Missing::BeforePanelStart));
        assert_eq!(cells.values.raw_previous, None);
        assert_eq!(cells.growth_reason, Some(Missing::BeforePanelStart));

        let straddling = (
            range("2026-03-10", "2026-03-16"),
            range("2026-03-03", "2026-03-09"),
        );
        let cells = GrowthCells::of(periods, Metric::Spend, straddling, &coverage, Some(&panel));
        assert!(cells.values.current.is_ok() && cells.current_partial);
        assert_eq!(cells.growth_reason, Some(Missing::PartialPeriod));

        let no_cards = [cards(0.0), cards(100.0)];
        let cells = GrowthCells::of(periods, Metric::Spend, whole, &coverage, Some(&no_cards));
        assert_eq!(cells.values.current, Err(Missing::NoActiveCards));
        assert_eq!(cells.growth_reason, Some(Missing::NoActiveCards));
    }
}
