//! Folding the writers' category rows into one row per period (`compact_category_rows`,
//! schema/0015). Each aggregator shard adds to category rows of its own, so that flushes do
//! not queue on one row's lock; a reader sums over them. Compaction keeps that sum to one row
//! for what is settled: after it, a category in a state over two weeks is 14 rows instead of
//! up to 14 per shard. Answers are the same before and after (sums added, sketches unioned).

/// The category tables, in the order writers take them.
pub const CATEGORY_TABLES: [&str; 5] = [
    "agg_daily_category_region",
    "agg_weekly_category_region",
    "agg_monthly_category_region",
    "agg_daily_category_national",
    "agg_weekly_category_national",
];

/// Folds every writer's category rows into the shard -2 rows, one table per transaction (a
/// flush waits at most for one table), and returns how many rows it folded.
pub async fn compact(client: &tokio_postgres::Client) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare("SELECT compact_category_rows($1)").await?;
    let mut folded = 0;
    for table in CATEGORY_TABLES {
        let row = client.query_one(&statement, &[&table]).await?;
        folded += u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    }
    Ok(folded)
}
