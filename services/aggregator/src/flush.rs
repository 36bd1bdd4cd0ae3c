//! One flush = one PostgreSQL transaction: fence check and offset advance, then the window's
//! cells through the fact writer (every aggregate table and the outbox rows). Acknowledging
//! the messages is the caller's job, after this commits.

use crate::error::AggregatorError;
use crate::window::Window;
use altdata_domain::epoch_days_to_date;
use altdata_facts::CategoryShard;
use chrono::{Datelike, NaiveDate};
use std::collections::{BTreeSet, HashSet};

/// Advances the shard's offset only while this instance still holds the epoch it acquired.
const ADVANCE_OFFSET: &str = "
UPDATE shard_offsets
   SET stream_seq = $2, applied_events = applied_events + $3, last_commit_at = now()
 WHERE shard = $1 AND epoch = $4";

/// What a committed flush did.
#[derive(Debug, Default)]
pub struct FlushOutcome {
    pub cells: usize,
    pub events: usize,
}

/// Why a flush did not commit.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// Another instance acquired the shard: this one must stop consuming it.
    #[error("shard {shard} is owned by a newer instance (our epoch {epoch} is stale)")]
    Fenced { shard: u32, epoch: i64 },
    #[error(transparent)]
    Other(#[from] AggregatorError),
}

impl From<tokio_postgres::Error> for FlushError {
    fn from(e: tokio_postgres::Error) -> FlushError {
        FlushError::Other(e.into())
    }
}

/// Makes sure the monthly partitions for the window's days exist (outside the flush
/// transaction, so the DDL lock is short) and remembers the months already made.
pub async fn ensure_partitions(
    client: &deadpool_postgres::Client,
    window: &Window,
    known_months: &mut HashSet<(i32, u32)>,
) -> Result<(), AggregatorError> {
    let missing: BTreeSet<NaiveDate> = window
        .cells
        .cells
        .keys()
        .map(|k| epoch_days_to_date(k.metric_date))
        .filter(|d| !known_months.contains(&(d.year(), d.month())))
        .collect();
    let (Some(first), Some(last)) = (missing.first(), missing.last()) else {
        return Ok(());
    };
    client
        .execute("SELECT ensure_daily_partitions($1, $2)", &[first, last])
        .await?;
    for date in missing {
        known_months.insert((date.year(), date.month()));
    }
    Ok(())
}

/// Commits the window: offset (fenced), aggregates and outbox. Nothing is acknowledged here.
pub async fn flush_window(
    client: &mut deadpool_postgres::Client,
    shard: u32,
    epoch: i64,
    window: &Window,
) -> Result<FlushOutcome, FlushError> {
    let transaction = client.transaction().await?;
    let advanced = transaction
        .execute(
            ADVANCE_OFFSET,
            &[
                &(shard as i32),
                &(window.last_stream_seq as i64),
                &(window.events() as i64),
                &epoch,
            ],
        )
        .await?;
    if advanced != 1 {
        // Dropping the transaction rolls it back.
        return Err(FlushError::Fenced { shard, epoch });
    }
    altdata_facts::apply(
        &transaction,
        &window.cells,
        CategoryShard::Stream(shard),
        "flush",
    )
    .await?;
    transaction.commit().await?;
    Ok(FlushOutcome {
        cells: window.cells.len(),
        events: window.events(),
    })
}
