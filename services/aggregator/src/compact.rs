//! The compaction task: every `ALTDATA_AGG_COMPACT_INTERVAL`, the writers' category rows are
//! folded into one row per period (`altdata_facts::compact`), so that a category question reads
//! a row per day instead of one per shard. Every replica runs it; the table locks serialise
//! them, and a second run in the same interval finds little to fold. A failure is logged and
//! the next interval tries again: answers are the same compacted or not, only cheaper to read.

use altdata_common::Shutdown;
use std::time::{Duration, Instant};

pub async fn run(pool: deadpool_postgres::Pool, interval: Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let started = Instant::now();
        let outcome = match pool.get().await {
            Ok(client) => altdata_facts::compact(&client)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(folded) => {
                metrics::counter!("altdata_aggregator_category_rows_compacted_total")
                    .increment(folded);
                tracing::debug!(
                    folded,
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
