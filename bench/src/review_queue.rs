//! The review queue and the completeness of category answers after the main run, against the
//! generator's truth (`_truth/transactions.csv`: every valid unique row's brand, empty for a
//! local shop, and its true category; amounts, dates and states from the data files):
//!
//! - groups waiting for a person per million rows read, and the local shops held beside them
//!   (counted in their category, no brand in sight: `schema/0016_review_groups.sql`);
//! - the share of catalogue-brand spend attributed to a brand without a person (not held for
//!   review);
//! - the share of the waiting spend (|amount|) the 50 largest groups cover, and the same over
//!   every held group (local shops included);
//! - coffee shops in California over the last week: what the aggregates answer against the
//!   true spend at every coffee shop (chains and independents), and week-over-week growth.

use crate::sandbox::Sandbox;
use anyhow::Context;
use chrono::{Days, NaiveDate};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What the main run left to review, and how complete category answers are.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReviewQueue {
    pub rows_read: u64,
    /// Groups that need a person (spend counted in no category, or a brand suspected).
    pub groups_waiting: u64,
    pub groups_per_million_rows: f64,
    /// Held groups of local shops, counted in their category with no brand in sight.
    pub local_groups: u64,
    /// Of the held spend (|amount|), the share in the part that needs a person.
    pub waiting_share_of_held_spend: f64,
    /// Of catalogue-brand spend (|amount|), the share not held for review.
    pub brand_spend_attributed_automatically: f64,
    /// Of the waiting spend (|amount|), the share in the 50 largest groups.
    pub top50_share_of_waiting_spend: f64,
    /// Of the held spend (|amount|, local shops included), the share in the 50 largest groups.
    pub top50_share_of_held_spend: f64,
    pub coffee_ca: CategoryCheck,
}

/// One category answer beside the truth. What the pipeline counted (every cell, before the
/// disclosure rule) measures completeness; the released answer is what an analyst reads, the
/// counted spend less the cells the disclosure rule withholds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CategoryCheck {
    pub category: String,
    pub state: String,
    pub week_from: String,
    pub week_to: String,
    /// Net spend in every cell of the category (named and unattributed merchants).
    pub counted_cents: i64,
    /// Net spend in the released cells (the category rollup, as the gateway answers).
    pub answer_cents: i64,
    pub truth_cents: i64,
    /// counted / truth - 1.
    pub counted_gap: f64,
    pub counted_growth: Option<f64>,
    pub answer_growth: Option<f64>,
    pub truth_growth: Option<f64>,
    /// Of the counted spend, the share at named brands.
    pub attributed_share: Option<f64>,
}

/// One valid row of the truth.
struct TruthRow {
    branded: bool,
    category: String,
}

pub async fn measure(
    sandbox: &Sandbox,
    data_dir: &Path,
    files: &[PathBuf],
    as_of: NaiveDate,
) -> anyhow::Result<ReviewQueue> {
    let truth = read_truth(&data_dir.join("_truth/transactions.csv"))?;
    let client = sandbox.client().await?;
    let held: HashSet<String> = client
        .query("SELECT txn_id FROM unmapped_transactions", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let week = (as_of - Days::new(6), as_of);
    let previous = (week.0 - Days::new(7), week.1 - Days::new(7));
    let (mut brand_cents, mut brand_held_cents) = (0i64, 0i64);
    let (mut truth_week, mut truth_previous) = (0i64, 0i64);
    let mut seen = HashSet::new();
    for file in files {
        let mut reader =
            csv::Reader::from_path(file).with_context(|| file.display().to_string())?;
        for record in reader.records() {
            let Ok(record) = record else { continue };
            let txn_id = record.get(0).unwrap_or_default();
            let Some(row) = truth.get(txn_id) else {
                continue;
            };
            if !seen.insert(txn_id.to_owned()) {
                continue;
            }
            let Some(cents) = cents_of(record.get(4).unwrap_or_default()) else {
                continue;
            };
            if row.branded {
                brand_cents += cents.abs();
                if held.contains(txn_id) {
                    brand_held_cents += cents.abs();
                }
            }
            let day = record
                .get(1)
                .and_then(|posted| NaiveDate::parse_from_str(posted.get(..10)?, "%Y-%m-%d").ok());
            if row.category == "coffee_shop" && record.get(8) == Some("CA") {
                match day {
                    Some(d) if d >= week.0 && d <= week.1 => truth_week += cents,
                    Some(d) if d >= previous.0 && d <= previous.1 => truth_previous += cents,
                    _ => {}
                }
            }
        }
    }
    let rows_read: i64 = client
        .query_one(
            "SELECT coalesce(sum(rows_read), 0)::bigint FROM ingest_files",
            &[],
        )
        .await?
        .get(0);
    // (at stake, needs a person), largest first.
    let groups: Vec<(i64, bool)> = client
        .query(
            "SELECT at_stake, needs_person FROM review_groups
             ORDER BY at_stake DESC",
            &[],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let share_of_top50 = |groups: &[i64]| {
        let top50: i64 = groups.iter().take(50).sum();
        top50 as f64 / (groups.iter().sum::<i64>() as f64).max(1.0)
    };
    let held: Vec<i64> = groups.iter().map(|(cents, _)| *cents).collect();
    let waiting: Vec<i64> = groups
        .iter()
        .filter(|(_, needs_person)| *needs_person)
        .map(|(cents, _)| *cents)
        .collect();
    // Net spend over the days: (released, counted, counted at unattributed merchants).
    let sums = |from: NaiveDate, to: NaiveDate| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    "SELECT (SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint
                             FROM agg_daily_category_region
                             WHERE category = 'coffee_shop' AND region = 'CA'
                               AND metric_date BETWEEN $1 AND $2),
                            coalesce(sum(d.total_spend_cents - d.refund_cents), 0)::bigint,
                            coalesce(sum(d.total_spend_cents - d.refund_cents)
                                     FILTER (WHERE m.unattributed), 0)::bigint
                     FROM agg_daily_merchant_spend d JOIN dim_merchants m ON m.id = d.merchant_id
                     WHERE m.category = 'coffee_shop' AND d.region = 'CA'
                       AND d.metric_date BETWEEN $1 AND $2",
                    &[&from, &to],
                )
                .await?;
            anyhow::Ok((
                row.get::<_, i64>(0),
                row.get::<_, i64>(1),
                row.get::<_, i64>(2),
            ))
        }
    };
    let (answer_week, counted_week, unattributed_week) = sums(week.0, week.1).await?;
    let (answer_previous, counted_previous, _) = sums(previous.0, previous.1).await?;
    let growth = |current: i64, previous: i64| {
        (previous > 0).then(|| (current - previous) as f64 / previous as f64)
    };
    Ok(ReviewQueue {
        rows_read: rows_read as u64,
        groups_waiting: waiting.len() as u64,
        groups_per_million_rows: waiting.len() as f64 / (rows_read as f64 / 1e6).max(1e-9),
        local_groups: (held.len() - waiting.len()) as u64,
        waiting_share_of_held_spend: waiting.iter().sum::<i64>() as f64
            / (held.iter().sum::<i64>() as f64).max(1.0),
        brand_spend_attributed_automatically: 1.0
            - brand_held_cents as f64 / (brand_cents as f64).max(1.0),
        top50_share_of_waiting_spend: share_of_top50(&waiting),
        top50_share_of_held_spend: share_of_top50(&held),
        coffee_ca: CategoryCheck {
            category: "coffee_shop".to_owned(),
            state: "CA".to_owned(),
            week_from: week.0.to_string(),
            week_to: week.1.to_string(),
            counted_cents: counted_week,
            answer_cents: answer_week,
            truth_cents: truth_week,
            counted_gap: counted_week as f64 / (truth_week as f64).max(1.0) - 1.0,
            counted_growth: growth(counted_week, counted_previous),
            answer_growth: growth(answer_week, answer_previous),
            truth_growth: growth(truth_week, truth_previous),
            attributed_share: (counted_week > 0)
                .then(|| 1.0 - unattributed_week as f64 / counted_week as f64),
        },
    })
}

fn read_truth(path: &Path) -> anyhow::Result<HashMap<String, TruthRow>> {
    let mut reader = csv::Reader::from_path(path).with_context(|| path.display().to_string())?;
    let mut truth = HashMap::new();
    for record in reader.records() {
        let record = record?;
        truth.insert(
            record.get(1).unwrap_or_default().to_owned(),
            TruthRow {
                branded: !record.get(2).unwrap_or_default().is_empty(),
                category: record.get(3).unwrap_or_default().to_owned(),
            },
        );
    }
    Ok(truth)
}

fn cents_of(amount: &str) -> Option<i64> {
    altdata_domain::parse_dollars_to_cents(amount).ok()
}
