//! `GET /v1/overlap`: how many customers two groups (merchants, brands or categories) share,
//! by inclusion–exclusion over their HyperLogLog sketches: |A ∩ B| = |A| + |B| - |A ∪ B|.
//!
//! Every count respects k: the sketches are unions of released cells (each with at least k
//! customers), and the shared customers (and the union, which gives them by subtraction) are
//! published only when they, and the customers of each group outside the other (which the
//! answer would reveal by subtraction), number at least k.

use super::answer::{cached, negotiate, resolve_scope, subject_of, today, Subject};
use crate::cache::Dependency;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::query::{self, DateRange, OverlapCounts, OverlapParams, OverlapQuery};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures::TryFutureExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The relative standard error of one customer count: HLL with 2^11 registers (the
/// extension's default, schema/0002), 1.04 / sqrt(2048).
pub const SKETCH_RELATIVE_ERROR: f64 = 0.023;

/// The customers two groups share.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OverlapAnswer {
    pub query: OverlapEcho,
    /// The first group.
    pub a: Subject,
    /// The second group.
    pub b: Subject,
    /// Distinct customers of a in the states and range, over released cells; null when
    /// fewer than k (or none).
    pub customers_a: Option<f64>,
    /// The same for b.
    pub customers_b: Option<f64>,
    /// Customers of a or b (the union of the sketches); null whenever customers_both is
    /// (with a and b it would give customers_both by subtraction).
    pub customers_either: Option<f64>,
    /// Customers of both: customers_a + customers_b - customers_either; null when fewer than
    /// k, or when the customers of a not at b, or of b not at a, are fewer than k.
    pub customers_both: Option<f64>,
    /// customers_both / customers_a: the share of a's customers who also shop at b.
    pub share_of_a_in_b: Option<f64>,
    /// customers_both / customers_b: the share of b's customers who also shop at a.
    pub share_of_b_in_a: Option<f64>,
    /// About 95 % of estimates of customers_both fall within this many customers of the true
    /// count (two standard errors, the three counts' errors taken as independent).
    pub customers_both_error: Option<f64>,
    /// The same bound for share_of_a_in_b (a fraction).
    pub share_of_a_in_b_error: Option<f64>,
    /// The same bound for share_of_b_in_a (a fraction).
    pub share_of_b_in_a_error: Option<f64>,
    /// The relative standard error of each customer count (HLL, 2^11 registers).
    pub relative_standard_error: f64,
    /// How the error bounds are computed, in a sentence.
    pub error_note: String,
    /// The newest aggregator commit included.
    pub as_of_data: Option<DateTime<Utc>>,
    pub k_anonymity: u32,
    /// Cells (merchant × state × day) of either group left out: fewer than k customers.
    pub withheld_cells: i64,
    /// Why a count is null, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppression: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OverlapEcho {
    pub period: DateRange,
    /// Empty: every region.
    pub states: Vec<String>,
}

/// Customers of two merchants, brands or categories, of either, and of both, with the error
/// of each estimate.
#[utoipa::path(
    get, path = "/v1/overlap", tag = "data", params(OverlapParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The overlap (also text/csv)", body = OverlapAnswer),
        (status = 404, description = "Unknown merchant or brand", body = ErrorBody),
    )
)]
pub async fn overlap(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<OverlapParams>,
) -> Result<Response, ApiError> {
    let format = negotiate(params.format, &headers);
    let limits = state.inner.settings.limits;
    let query = OverlapQuery::parse(&params, &limits, today())?;
    let a = resolve_scope(&state, &query.a).await?;
    let b = resolve_scope(&state, &query.b).await?;
    // Two groups: any change may reach either.
    let answer = cached(
        &state,
        &headers,
        query.canonical(),
        Dependency::All,
        || async {
            let mut client = state.inner.read_db.get().await?;
            let snapshot = query::read_snapshot(&mut client).await?;
            let period = DateRange {
                from: query.from,
                to: query.to,
            };
            let (basis, a_subject, b_subject, counts) = tokio::try_join!(
                query::basis(&snapshot).err_into(),
                subject_of(&snapshot, &query.a, &a),
                subject_of(&snapshot, &query.b, &b),
                query::overlap_counts(&snapshot, &a, &b, period, &query.states).err_into(),
            )?;
            let (as_of, k) = (basis.as_of, basis.k);
            snapshot.commit().await?;
            let echo = OverlapEcho {
                period,
                states: query.states.clone(),
            };
            let body = answer_of(counts, k, echo, [a_subject, b_subject], as_of);
            Ok((body, as_of))
        },
    )
    .await?;
    Ok(answer.respond(format))
}

/// Inclusion–exclusion over the counts, under k, with the error bounds.
fn answer_of(
    counts: OverlapCounts,
    k: u32,
    query: OverlapEcho,
    [a, b]: [Subject; 2],
    as_of_data: Option<DateTime<Utc>>,
) -> OverlapAnswer {
    let k = f64::from(k);
    let (count_a, count_b, either) = (counts.a.round(), counts.b.round(), counts.either.round());
    let published = |count: f64| (count >= k).then_some(count);
    let (customers_a, customers_b) = (published(count_a), published(count_b));
    let both = (count_a + count_b - either).max(0.0);
    let both_published = customers_a.is_some()
        && customers_b.is_some()
        && both >= k
        && count_a - both >= k
        && count_b - both >= k;
    let r = SKETCH_RELATIVE_ERROR;
    let both_sigma = r * (count_a.powi(2) + count_b.powi(2) + either.powi(2)).sqrt();
    let share = |whole: f64| round4(both / whole);
    let share_error = |whole: f64| {
        let relative = ((both_sigma / both).powi(2) + r.powi(2)).sqrt();
        round4(2.0 * (both / whole) * relative)
    };
    let shown = |value: f64| both_published.then_some(value);
    OverlapAnswer {
        query,
        a,
        b,
        customers_a,
        customers_b,
        customers_either: shown(either),
        customers_both: shown(both),
        share_of_a_in_b: shown(share(count_a)),
        share_of_b_in_a: shown(share(count_b)),
        customers_both_error: shown((2.0 * both_sigma).round()),
        share_of_a_in_b_error: shown(share_error(count_a)),
        share_of_b_in_a_error: shown(share_error(count_b)),
        relative_standard_error: r,
        error_note: format!(
            "each customer count is a HyperLogLog estimate with a relative standard error of \
             {:.1} % (1.04 / sqrt(2048)); customers_both = customers_a + customers_b - \
             customers_either carries the three errors (taken as independent), and each bound \
             is two standard errors (about 95 %)",
            r * 100.0
        ),
        as_of_data,
        k_anonymity: k as u32,
        withheld_cells: counts.a_withheld_cells + counts.b_withheld_cells,
        suppression: (!both_published).then(|| {
            format!(
                "customers_both, customers_either and the shares are published only when the \
                 customers of both groups, of a alone and of b alone each number at least {k} \
                 (the k-anonymity threshold); each group counts only cells (one merchant, state \
                 and day) with at least {k} distinct customers"
            )
        }),
    }
}

fn round4(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            kind: "merchant".into(),
            category: None,
            merchant_id: Some(1),
            merchant_name: None,
            brand: None,
        }
    }

    /// The answer for these counts at k = 10.
    fn answer(a: f64, b: f64, either: f64) -> OverlapAnswer {
        let counts = OverlapCounts {
            a,
            b,
            either,
            ..OverlapCounts::default()
        };
        let day = chrono::NaiveDate::MIN;
        let echo = OverlapEcho {
            period: DateRange { from: day, to: day },
            states: Vec::new(),
        };
        answer_of(counts, 10, echo, [subject(), subject()], None)
    }

    #[test]
    fn inclusion_exclusion_gives_the_shared_customers_and_shares() {
        let answer = answer(1000.0, 500.0, 1300.0);
        assert_eq!(answer.customers_both, Some(200.0));
        assert_eq!(answer.share_of_a_in_b, Some(0.2));
        assert_eq!(answer.share_of_b_in_a, Some(0.4));
        // 2 × 0.023 × sqrt(1000² + 500² + 1300²) = 79.
        assert_eq!(answer.customers_both_error, Some(79.0));
        assert!(answer.suppression.is_none());
    }

    #[test]
    fn counts_under_k_are_withheld_including_those_a_subtraction_would_reveal() {
        let few_shared = answer(1000.0, 500.0, 1495.0);
        assert_eq!(few_shared.customers_both, None);
        assert_eq!(few_shared.customers_a, Some(1000.0));
        // b almost inside a: b alone would be 3 customers.
        let b_inside = answer(1000.0, 500.0, 1003.0);
        assert_eq!(b_inside.customers_both, None);
        assert_eq!(b_inside.share_of_b_in_a, None);
        // With a and b published, the union would give the shared customers by subtraction.
        assert_eq!(b_inside.customers_either, None);
        assert_eq!(b_inside.customers_a, Some(1000.0));
        assert!(b_inside.suppression.is_some());
        let small_group = answer(6.0, 500.0, 503.0);
        assert_eq!(small_group.customers_a, None);
        assert_eq!(small_group.customers_either, None);
    }
}
