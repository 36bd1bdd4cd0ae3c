//! Held rows (waiting for review) and rejects on their way to PostgreSQL, written beside the
//! publishing, every one of them before each checkpoint.

use crate::error::IngestError;
use crate::reader::{RejectRow, UnmappedRow};
use crate::store::{self, FileCounts};
use crate::IngestContext;

/// Rows buffered before a database write.
const DB_BATCH: usize = 2_000;

/// Unmapped and rejected rows on their way to PostgreSQL. A full batch is written by a task
/// of its own while the rows after it are published (one write in flight): written inline,
/// the 81 batches of 2,000 of a 1M-row file stalled publishing for ~55 ms each, 4.5 s in all
/// (the file took 12 s; with the writes overlapped, ~0.5 s less: the two cores were the limit).
/// Before a checkpoint every held row is written ([`HeldRows::write_all`]), so the checkpoint
/// never covers a row that is not stored.
pub struct HeldRows {
    pub unmapped: Vec<UnmappedRow>,
    pub rejects: Vec<RejectRow>,
    /// Held rows already in `unmapped_transactions` (same provider and txn_id).
    pub duplicates: u64,
    in_flight: Option<tokio::task::JoinHandle<Result<HeldWritten, IngestError>>>,
    pool: deadpool_postgres::Pool,
    metrics: crate::metrics::IngestMetrics,
    file_id: i64,
    file_name: String,
    provider: String,
}

/// What one write stored. Rows counted under an unattributed merchant are counted by their
/// event's acknowledgement, so only held-only rows count here.
struct HeldWritten {
    held_only_offered: u64,
    held_only_inserted: u64,
    rejected: u64,
}

impl HeldRows {
    pub fn new(context: &IngestContext, file_id: i64, file_name: &str, provider: &str) -> HeldRows {
        HeldRows {
            unmapped: Vec::with_capacity(DB_BATCH),
            rejects: Vec::with_capacity(DB_BATCH),
            duplicates: 0,
            in_flight: None,
            pool: context.pool.clone(),
            metrics: context.metrics.clone(),
            file_id,
            file_name: file_name.to_owned(),
            provider: provider.to_owned(),
        }
    }

    pub fn is_full(&self) -> bool {
        self.unmapped.len() >= DB_BATCH || self.rejects.len() >= DB_BATCH
    }

    /// Whether a buffered held row is a corrected version (rare: it replaces a stored row).
    pub fn holds_corrections(&self) -> bool {
        self.unmapped.iter().any(|row| row.correction)
    }

    /// Hands the held rows to a write task, after the previous write has finished.
    pub async fn write_behind(&mut self, counts: &mut FileCounts) -> Result<(), IngestError> {
        self.settle(counts).await?;
        let unmapped = std::mem::replace(&mut self.unmapped, Vec::with_capacity(DB_BATCH));
        let rejects = std::mem::replace(&mut self.rejects, Vec::with_capacity(DB_BATCH));
        let (pool, file_id) = (self.pool.clone(), self.file_id);
        let (file_name, provider) = (self.file_name.clone(), self.provider.clone());
        self.in_flight = Some(tokio::spawn(async move {
            let client = pool.get().await?;
            write_held(&client, file_id, &file_name, &provider, &unmapped, &rejects).await
        }));
        Ok(())
    }

    /// Writes every held row, the one in flight included, and counts them.
    pub async fn write_all(&mut self, counts: &mut FileCounts) -> Result<(), IngestError> {
        self.settle(counts).await?;
        if self.unmapped.is_empty() && self.rejects.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await?;
        let written = write_held(
            &client,
            self.file_id,
            &self.file_name,
            &self.provider,
            &self.unmapped,
            &self.rejects,
        )
        .await?;
        self.count(written, counts);
        self.unmapped.clear();
        self.rejects.clear();
        Ok(())
    }

    async fn settle(&mut self, counts: &mut FileCounts) -> Result<(), IngestError> {
        if let Some(task) = self.in_flight.take() {
            let written = task
                .await
                .map_err(|e| IngestError::Task(format!("held-row writer: {e}")))??;
            self.count(written, counts);
        }
        Ok(())
    }

    fn count(&mut self, written: HeldWritten, counts: &mut FileCounts) {
        self.duplicates += written.held_only_offered - written.held_only_inserted;
        counts.unmapped += written.held_only_inserted;
        counts.rejected += written.rejected;
        self.metrics.unmapped.increment(written.held_only_inserted);
        self.metrics.rejected.increment(written.rejected);
    }
}

async fn write_held(
    client: &deadpool_postgres::Client,
    file_id: i64,
    file_name: &str,
    provider: &str,
    unmapped: &[UnmappedRow],
    rejects: &[RejectRow],
) -> Result<HeldWritten, IngestError> {
    // Corrected versions are counted as corrected when classified; only new rows count here.
    let (corrections, new): (Vec<&UnmappedRow>, Vec<&UnmappedRow>) =
        unmapped.iter().partition(|row| row.correction);
    let held_only_inserted = store::insert_unmapped(client, file_id, provider, &new).await?;
    store::write_corrected_held(client, file_id, provider, &corrections).await?;
    store::insert_rejects(client, file_id, file_name, rejects).await?;
    Ok(HeldWritten {
        held_only_offered: new
            .iter()
            .filter(|row| row.counted_merchant_id.is_none())
            .count() as u64,
        held_only_inserted,
        rejected: rejects.len() as u64,
    })
}
