//! One file, start to finish: hash → claim → read/validate/resolve/encode (blocking thread)
//! → publish and record → checkpoint → finish. A file interrupted by a crash or shutdown
//! resumes at its last checkpoint; rows re-published after it are de-duplicated by the
//! stream (`Nats-Msg-Id` = provider + txn_id) and by `unmapped_transactions`' unique key.

use crate::error::IngestError;
use crate::landing::{Landing, LandingFile};
use crate::publish::{EventKind, Publisher};
use crate::reader::{Chunk, FileProblem, RejectRow, RowOutcome, UnmappedRow};
use crate::store::{self, Claim, FileCounts};
use crate::IngestContext;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::{Duration, Instant};

/// Rows buffered before a database write.
const DB_BATCH: usize = 2_000;

/// What happened to one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: String,
    pub provider: String,
    pub outcome: FileOutcome,
    pub counts: FileCounts,
    pub elapsed: Duration,
    pub lossy_utf8: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    Done,
    Resumed,
    /// Same content already processed, under this path.
    Skipped {
        earlier_path: String,
    },
    /// Another instance holds it.
    Busy,
    /// The file as a whole could not be read (bad header, broken quoting).
    Failed {
        reason: String,
    },
}

/// The path a file is recorded under in `ingest_files`: the landing zone's location joined
/// with the file's path in it (the location alone when it names the file itself).
pub fn ledger_path(landing: &Landing, file: &LandingFile) -> String {
    if landing.prefix.as_ref() == file.path.as_ref() {
        return landing.location.clone();
    }
    format!("{}/{}", landing.location.trim_end_matches('/'), file.path).replace("//", "/")
}

#[tracing::instrument(name = "ingest file", skip_all, fields(path = %file.path, provider))]
pub async fn process_file(
    context: &IngestContext,
    landing: &Landing,
    file: &LandingFile,
    provider: &str,
) -> Result<FileReport, IngestError> {
    let started = Instant::now();
    let display = ledger_path(landing, file);
    let sha256 = content_sha256(landing, file).await?;
    let mut client = context.pool.get().await?;
    let claim = store::claim(&client, &sha256, &display, provider, file.size).await?;
    let (file_id, resume_line, mut counts, resumed) = match claim {
        Claim::Fresh { file_id } => (file_id, 0, FileCounts::default(), false),
        Claim::Resume {
            file_id,
            resume_line,
            counts,
        } => (file_id, resume_line, counts, true),
        Claim::AlreadyDone { path, .. } => {
            tracing::info!(earlier = %path, "same content already processed, skipped");
            return Ok(report(
                display,
                provider,
                FileOutcome::Skipped { earlier_path: path },
                FileCounts::default(),
                started,
                false,
            ));
        }
        Claim::Busy => {
            return Ok(report(
                display,
                provider,
                FileOutcome::Busy,
                FileCounts::default(),
                started,
                false,
            ));
        }
    };
    let result = ingest_rows(
        context,
        landing,
        file,
        provider,
        file_id,
        resume_line,
        &mut counts,
        &mut client,
    )
    .await;
    let lossy = match &result {
        Ok((_, lossy)) => *lossy,
        Err(_) => false,
    };
    let outcome = match result {
        Ok((None, _)) => {
            store::finish(&client, file_id, "done", None).await?;
            if resumed {
                FileOutcome::Resumed
            } else {
                FileOutcome::Done
            }
        }
        Ok((Some(problem), _)) => {
            store::finish(&client, file_id, "failed", Some(&problem)).await?;
            FileOutcome::Failed { reason: problem }
        }
        Err(error) => {
            // Leave the file 'processing' at its last checkpoint: the next run resumes it.
            let _ = store::release(&client, file_id).await;
            return Err(error);
        }
    };
    store::release(&client, file_id).await?;
    if !counts.conserved() {
        tracing::error!(?counts, "row counts do not add up");
    }
    Ok(report(display, provider, outcome, counts, started, lossy))
}

fn report(
    path: String,
    provider: &str,
    outcome: FileOutcome,
    counts: FileCounts,
    started: Instant,
    lossy_utf8: bool,
) -> FileReport {
    FileReport {
        path,
        provider: provider.to_owned(),
        outcome,
        counts,
        elapsed: started.elapsed(),
        lossy_utf8,
    }
}

/// Streams the file once through SHA-256, with bounded memory.
async fn content_sha256(landing: &Landing, file: &LandingFile) -> Result<String, IngestError> {
    let mut reader = landing.open_reader(&file.path).await?;
    let path = file.path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let n = reader.read(&mut buffer).map_err(|e| IngestError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        Ok(hex::encode(hasher.finalize()))
    })
    .await
    .map_err(|e| IngestError::Read {
        path: file.path.to_string(),
        reason: e.to_string(),
    })?
}

/// Returns `Some(reason)` when the file as a whole is unreadable, and whether any field was
/// decoded lossily.
#[allow(clippy::too_many_arguments)]
async fn ingest_rows(
    context: &IngestContext,
    landing: &Landing,
    file: &LandingFile,
    provider: &str,
    file_id: i64,
    resume_line: u64,
    counts: &mut FileCounts,
    client: &mut deadpool_postgres::Client,
) -> Result<(Option<String>, bool), IngestError> {
    let row_path = context.row_path(provider, resume_line)?;
    let gzip = file.path.as_ref().to_ascii_lowercase().ends_with(".gz");
    let reader = landing.open_reader(&file.path).await?;
    let (sender, mut chunks) = tokio::sync::mpsc::channel::<Chunk>(4);
    let parser = tokio::task::spawn_blocking(move || row_path.run(reader, gzip, sender));

    let mut publisher = Publisher::new(
        context.jetstream.client(),
        context.shard_subjects.clone(),
        context.settings.publish_window,
        context.shutdown.clone(),
    )
    .await?;
    let file_name = file.path.to_string();
    let mut held = HeldRows::new(context, file_id, &file_name, provider);
    let mut rows_since_checkpoint = 0u64;
    let mut lossy = false;
    let base = *counts;
    let mut interrupted = false;

    let mut next_line = resume_line;
    let (mut cache_hits, mut cache_misses) = (0u64, 0u64);
    while let Some(chunk) = chunks.recv().await {
        next_line = chunk.next_line;
        cache_hits += chunk.resolution_cache_hits;
        cache_misses += chunk.resolution_cache_misses;
        context
            .metrics
            .resolution_cache_hits
            .increment(chunk.resolution_cache_hits);
        context
            .metrics
            .resolution_cache_misses
            .increment(chunk.resolution_cache_misses);
        for outcome in chunk.outcomes {
            match outcome {
                RowOutcome::Named(event) => {
                    publisher
                        .publish(EventKind::Named, event.shard, event.msg_id, event.payload)
                        .await?
                }
                RowOutcome::Unattributed(event, row) => {
                    publisher
                        .publish(
                            EventKind::Unattributed,
                            event.shard,
                            event.msg_id,
                            event.payload,
                        )
                        .await?;
                    held.unmapped.push(*row);
                }
                RowOutcome::Unmapped(row) => held.unmapped.push(*row),
                RowOutcome::Reject(row) => held.rejects.push(*row),
            }
        }
        counts.rows_read += chunk.rows;
        rows_since_checkpoint += chunk.rows;
        lossy |= chunk.lossy_utf8;
        context.metrics.rows.increment(chunk.rows);
        if held.is_full() {
            held.write_behind(counts).await?;
        }
        if rows_since_checkpoint >= context.settings.checkpoint_rows
            || context.shutdown.is_triggered()
        {
            held.write_all(counts).await?;
            publisher.drain().await?;
            sync_publish_counts(counts, &base, &publisher, held.duplicates);
            store::checkpoint(client, file_id, chunk.next_line, counts, lossy).await?;
            rows_since_checkpoint = 0;
            if context.shutdown.is_triggered() {
                interrupted = true;
                break;
            }
        }
        if let Some(progress) = &context.progress {
            progress.set_position(counts.rows_read);
        }
    }
    drop(chunks);
    tracing::info!(
        cache_hits,
        cache_misses,
        hit_rate = cache_hits as f64 / (cache_hits + cache_misses).max(1) as f64,
        "resolution cache"
    );
    let parsed = parser.await.map_err(|e| IngestError::Read {
        path: file_name.clone(),
        reason: e.to_string(),
    })?;
    if interrupted {
        return Err(IngestError::Interrupted);
    }
    held.write_all(counts).await?;
    publisher.drain().await?;
    sync_publish_counts(counts, &base, &publisher, held.duplicates);
    context
        .metrics
        .published
        .increment(publisher.counts.published);
    context
        .metrics
        .duplicates
        .increment(publisher.counts.duplicates);
    store::checkpoint(client, file_id, next_line, counts, lossy).await?;
    Ok(match parsed {
        Ok(()) => (None, lossy),
        Err(FileProblem::Header(missing)) => (
            Some(
                IngestError::Header {
                    path: file_name,
                    missing,
                }
                .to_string(),
            ),
            lossy,
        ),
        Err(FileProblem::Read(reason)) => (Some(reason), lossy),
    })
}

/// Counts of this run on top of those restored from the checkpoint.
fn sync_publish_counts(
    counts: &mut FileCounts,
    base: &FileCounts,
    publisher: &Publisher,
    db_duplicates: u64,
) {
    counts.published = base.published + publisher.counts.published;
    counts.unattributed = base.unattributed + publisher.counts.unattributed;
    counts.duplicates = base.duplicates + publisher.counts.duplicates + db_duplicates;
}

/// Unmapped and rejected rows on their way to PostgreSQL. A full batch is written by a task
/// of its own while the rows after it are published (one write in flight): written inline,
/// the 81 batches of 2,000 of a 1M-row file stalled publishing for ~55 ms each, 4.5 s in all
/// (the file took 12 s; with the writes overlapped, ~0.5 s less: the two cores were the limit).
/// Before a checkpoint every held row is written ([`HeldRows::write_all`]), so the checkpoint
/// never covers a row that is not stored.
struct HeldRows {
    unmapped: Vec<UnmappedRow>,
    rejects: Vec<RejectRow>,
    /// Held rows already in `unmapped_transactions` (same provider and txn_id).
    duplicates: u64,
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
    fn new(context: &IngestContext, file_id: i64, file_name: &str, provider: &str) -> HeldRows {
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

    fn is_full(&self) -> bool {
        self.unmapped.len() >= DB_BATCH || self.rejects.len() >= DB_BATCH
    }

    /// Hands the held rows to a write task, after the previous write has finished.
    async fn write_behind(&mut self, counts: &mut FileCounts) -> Result<(), IngestError> {
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
    async fn write_all(&mut self, counts: &mut FileCounts) -> Result<(), IngestError> {
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
    let held_only_inserted = store::insert_unmapped(client, file_id, provider, unmapped).await?;
    store::insert_rejects(client, file_id, file_name, rejects).await?;
    Ok(HeldWritten {
        held_only_offered: unmapped
            .iter()
            .filter(|row| row.counted_merchant_id.is_none())
            .count() as u64,
        held_only_inserted,
        rejected: rejects.len() as u64,
    })
}
