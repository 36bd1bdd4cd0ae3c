//! The compaction task: every `ALTDATA_AGG_COMPACT_INTERVAL`, the writers' category rows are
//! folded into one row per period (`altdata_facts::compact`), so that a category question reads
//! a row per day instead of one per shard. Every replica runs it; a replica that finds another
//! compacting a table leaves it. A failure, or a table a writer held past the lock timeout, is
//! logged and left to the next interval: answers are the same compacted or not, only cheaper
//! to read.

use crate::error::AggregatorError;
use altdata_common::Shutdown;
use std::time::{Duration, Instant};

pub async fn run(pool: deadpool_postgres::Pool, interval: Duration, shutdown: Shutdown) {
    let folded_total = metrics::counter!("altdata_aggregator_category_rows_compacted_total");
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let started = Instant::now();
        match compact_once(&pool).await {
            Ok(done) => {
                folded_total.increment(done.folded);
                tracing::debug!(
                    folded = done.folded,
                    skipped = ?done.skipped,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "category rows compacted"
                );
            }
            Err(error) => {
                tracing::warn!(error = %error, "category compaction failed; retrying next interval")
            }
        }
    }
}

async fn compact_once(
    pool: &deadpool_postgres::Pool,
) -> Result<altdata_facts::Compacted, AggregatorError> {
    let client = pool.get().await?;
    Ok(altdata_facts::compact(&client).await?)
}
