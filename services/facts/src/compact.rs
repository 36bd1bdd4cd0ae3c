//! Folding the writers' category rows into one row per period (`compact_category_rows`,
//! schema/0015). Each aggregator shard adds to category rows of its own, so that flushes do
//! not queue on one row's lock; a reader sums over them. Compaction keeps that sum to one row:
//! after it, a category in a state over two weeks is 14 rows instead of up to 14 per shard.
//! Answers are the same before and after (sums added, sketches unioned).

use chrono::{Datelike, Months, NaiveDate};

/// The category tables and the column that dates their rows, in the order writers take them.
pub const CATEGORY_TABLES: [(&str, &str); 5] = [
    ("agg_daily_category_region", "metric_date"),
    ("agg_weekly_category_region", "week_start"),
    ("agg_monthly_category_region", "month_start"),
    ("agg_daily_category_national", "metric_date"),
    ("agg_weekly_category_national", "week_start"),
];

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compacted {
    /// Writers' rows folded into the shard -2 rows.
    pub folded: u64,
    /// Tables left for the next compaction: a writer's transaction held the table past the
    /// lock timeout, and compaction does not make every flush queue behind it.
    pub skipped: Vec<&'static str>,
}

/// Folds every writer's category rows into the shard -2 rows, a table and a calendar month of
/// periods per transaction, so that a flush waits at most for one month of one table.
pub async fn compact(client: &tokio_postgres::Client) -> Result<Compacted, tokio_postgres::Error> {
    let fold = client
        .prepare("SELECT compact_category_rows($1, $2, $3)")
        .await?;
    let mut done = Compacted::default();
    for (table, day_column) in CATEGORY_TABLES {
        let row = client
            .query_one(
                &format!(
                    "SELECT min({day_column}), max({day_column}) FROM {table} WHERE shard <> -2"
                ),
                &[],
            )
            .await?;
        let (Some(first), Some(last)) = (row.get::<_, Option<NaiveDate>>(0), row.get(1)) else {
            continue;
        };
        for (from, to) in months(first, last) {
            match client.query_one(&fold, &[&table, &from, &to]).await {
                Ok(row) => done.folded += u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                Err(error)
                    if error.code()
                        == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) =>
                {
                    done.skipped.push(table);
                    break;
                }
                Err(error) => return Err(error),
            }
        }
    }
    Ok(done)
}

/// The calendar months from `first`'s to `last`'s, as inclusive date ranges.
fn months(first: NaiveDate, last: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let mut ranges = Vec::new();
    let mut start = first.with_day(1).unwrap_or(first);
    while start <= last {
        let next = start + Months::new(1);
        ranges.push((start, next.pred_opt().unwrap_or(next)));
        start = next;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn months_cover_the_range_in_calendar_months() {
        assert_eq!(
            months(day("2026-11-28"), day("2027-01-02")),
            vec![
                (day("2026-11-01"), day("2026-11-30")),
                (day("2026-12-01"), day("2026-12-31")),
                (day("2027-01-01"), day("2027-01-31")),
            ]
        );
        assert_eq!(
            months(day("2026-02-10"), day("2026-02-10")),
            vec![(day("2026-02-01"), day("2026-02-28"))]
        );
    }
}
