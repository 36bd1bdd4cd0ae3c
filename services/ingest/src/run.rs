//! One run over a file's rows, between the reader and PostgreSQL and JetStream: each chunk's
//! valid rows are classified against the identity record (new, duplicate, correction), then
//! published (one batch per shard per chunk, [`crate::batch`]) and held accordingly; rejects
//! are recorded; at every checkpoint what was decided
//! is made durable in one transaction (identities, changes, counts, the line to resume at);
//! at the end, a restating provider's missing rows are retracted.

use crate::batch::{Batches, EventKind};
use crate::changes::{Cause, ChangeLog};
use crate::error::IngestError;
use crate::held::HeldRows;
use crate::identity::{self, Contribution, IdentityBook, Known, Segment};
use crate::publish::Publisher;
use crate::reader::{retraction_event, Action, Chunk, Event, RowIdentity, RowOutcome};
use crate::store::{self, FileCounts};
use crate::IngestContext;

/// What this run counted when classifying (the rest is counted by acknowledgements and
/// inserts).
#[derive(Debug, Default, Clone, Copy)]
struct Classified {
    duplicates: u64,
    corrected: u64,
    retracted: u64,
}

/// The state of one file's run.
pub struct FileRun<'c> {
    context: &'c IngestContext,
    provider: String,
    file_id: i64,
    file_name: String,
    publisher: Publisher,
    batches: Batches,
    held: HeldRows,
    book: IdentityBook,
    changes: ChangeLog,
    /// Counts restored from the checkpoint this run resumed at.
    base: FileCounts,
    /// Counts of this run.
    pub counts: FileCounts,
    classified: Classified,
    pub lossy: bool,
    pub rows_since_checkpoint: u64,
    /// The checkpoint transaction in flight.
    record: Option<tokio::task::JoinHandle<Result<(), IngestError>>>,
}

/// Whether a checkpoint returns once its transaction has committed (`Now`: the end of a file,
/// a shutdown) or while it commits (`Behind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durable {
    Now,
    Behind,
}

/// One checkpoint's transaction: the segment's identities, its changes, the counts and the
/// line to resume at.
struct Record {
    segment: std::sync::Arc<Segment>,
    changes: ChangeLog,
    counts: FileCounts,
    next_line: u64,
    lossy: bool,
    provider: String,
    file_id: i64,
    file_name: String,
}

impl Record {
    async fn write(mut self, client: &mut deadpool_postgres::Client) -> Result<(), IngestError> {
        let started = std::time::Instant::now();
        let transaction = client.transaction().await?;
        self.segment
            .write(&transaction, &self.provider, self.file_id)
            .await?;
        self.changes
            .write(&transaction, &self.provider, self.file_id, &self.file_name)
            .await?;
        store::checkpoint(
            &transaction,
            self.file_id,
            self.next_line,
            &self.counts,
            self.lossy,
        )
        .await?;
        transaction.commit().await?;
        tracing::debug!(
            next_line = self.next_line,
            ms = started.elapsed().as_millis() as u64,
            "checkpoint committed"
        );
        Ok(())
    }
}

impl<'c> FileRun<'c> {
    pub async fn start(
        context: &'c IngestContext,
        provider: &str,
        file_id: i64,
        file_name: &str,
        sha256: &str,
        base: FileCounts,
    ) -> Result<FileRun<'c>, IngestError> {
        let publisher = Publisher::new(
            context.jetstream.client(),
            context.shard_subjects.clone(),
            context.settings.publish_window,
            context.shutdown.clone(),
        )
        .await?;
        Ok(FileRun {
            context,
            provider: provider.to_owned(),
            file_id,
            file_name: file_name.to_owned(),
            publisher,
            batches: Batches::new(sha256, context.settings.connections.shard_count),
            held: HeldRows::new(context, file_id, file_name, provider),
            book: IdentityBook::default(),
            changes: ChangeLog::default(),
            base,
            counts: base,
            classified: Classified::default(),
            lossy: false,
            rows_since_checkpoint: 0,
            record: None,
        })
    }

    /// Classifies and handles one chunk of rows.
    pub async fn take(
        &mut self,
        client: &deadpool_postgres::Client,
        chunk: Chunk,
    ) -> Result<(), IngestError> {
        let txn_ids: Vec<&str> = chunk
            .outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                RowOutcome::Valid(identity, _) => Some(identity.txn_id.as_str()),
                RowOutcome::Reject(_) => None,
            })
            .collect();
        let stored = identity::lookup(client, &self.provider, &txn_ids).await?;
        self.batches
            .begin(format!("{}-{}", chunk.first_line, chunk.next_line));
        for outcome in chunk.outcomes {
            match outcome {
                RowOutcome::Reject(row) => self.held.rejects.push(*row),
                RowOutcome::Valid(identity, action) => {
                    let known = self.book.classify(
                        &identity.txn_id,
                        identity.version.content_hash,
                        stored.get(&identity.txn_id),
                    );
                    self.take_valid(identity, action, known).await?;
                }
            }
        }
        self.publish_batches().await?;
        self.counts.rows_read += chunk.rows;
        self.rows_since_checkpoint += chunk.rows;
        self.lossy |= chunk.lossy_utf8;
        self.context.metrics.rows.increment(chunk.rows);
        if self.held.is_full() {
            if self.held.holds_corrections() {
                // A corrected held row must land after the checkpoint that superseded its
                // earlier version.
                self.record_written().await?;
            }
            self.held.write_behind(&mut self.counts).await?;
        }
        Ok(())
    }

    async fn take_valid(
        &mut self,
        identity: RowIdentity,
        action: Action,
        known: Known,
    ) -> Result<(), IngestError> {
        match known {
            Known::Duplicate => self.classified.duplicates += 1,
            Known::New { .. } => self.apply(action, None).await?,
            Known::Correction {
                previous_hash: _,
                current,
                held_row,
            } => {
                if let Some(previous) = current {
                    self.retract(&identity.txn_id, &previous, Cause::Correction)
                        .await?;
                }
                self.apply(action, Some(held_row)).await?;
                if let Some(new) = identity.version.contribution() {
                    self.changes.record(Cause::Correction, &new, 1, true);
                }
                if held_row {
                    self.book.fix_held(&identity.txn_id);
                }
                self.classified.corrected += 1;
            }
        }
        // Duplicates too: the record learns which file delivered the row last.
        self.book.decide(&identity.txn_id, identity.version, &known);
        Ok(())
    }

    /// Publishes or holds a new version; `correction` says whether it corrects an earlier one
    /// (and whether that one had a held row).
    async fn apply(&mut self, action: Action, correction: Option<bool>) -> Result<(), IngestError> {
        let kind = |named: EventKind| correction.map_or(named, |_| EventKind::Correction);
        match action {
            Action::Named(event) => self.publish(kind(EventKind::Named), event).await?,
            Action::Unattributed(event, mut row) => {
                self.publish(kind(EventKind::Unattributed), event).await?;
                row.correction = correction.is_some();
                row.replaces = correction.unwrap_or(false);
                self.held.unmapped.push(*row);
            }
            Action::Unmapped(mut row) => {
                row.correction = correction.is_some();
                row.replaces = correction.unwrap_or(false);
                self.held.unmapped.push(*row);
            }
        }
        Ok(())
    }

    /// Adds the event to its shard's batch, publishing a part cut for size.
    async fn publish(&mut self, kind: EventKind, event: Event) -> Result<(), IngestError> {
        match self.batches.push(kind, event.shard, &event.payload) {
            Some(part) => self.publisher.publish(part).await,
            None => Ok(()),
        }
    }

    /// Publishes the batches of the chunk (or block) just taken.
    async fn publish_batches(&mut self) -> Result<(), IngestError> {
        for batch in self.batches.finish() {
            self.publisher.publish(batch).await?;
        }
        Ok(())
    }

    /// Takes a version's contribution back out with a retraction event.
    async fn retract(
        &mut self,
        txn_id: &str,
        contribution: &Contribution,
        cause: Cause,
    ) -> Result<(), IngestError> {
        let event = retraction_event(
            &self.provider,
            txn_id,
            contribution,
            self.context.settings.connections.shard_count,
        );
        self.publish(EventKind::Retraction, event).await?;
        self.changes
            .record(cause, contribution, -1, cause == Cause::Retraction);
        Ok(())
    }

    /// Makes everything up to `next_line` durable: held rows and rejects written, events
    /// acknowledged, then identities, changes and counts in one transaction with the line.
    /// That transaction commits while the next rows are read, one at a time
    /// ([`Durable::Behind`]): at 100,000 rows it takes PostgreSQL ~1 s, which the file's
    /// reading, resolving and publishing used to wait out.
    pub async fn checkpoint(
        &mut self,
        next_line: u64,
        durable: Durable,
    ) -> Result<(), IngestError> {
        // The previous transaction first: a corrected held row of this segment must land after
        // the earlier version's row was superseded there.
        self.record_written().await?;
        self.held.write_all(&mut self.counts).await?;
        self.publisher.drain().await?;
        self.sync_counts();
        let record = Record {
            segment: self.book.seal(),
            changes: std::mem::take(&mut self.changes),
            counts: self.counts,
            next_line,
            lossy: self.lossy,
            provider: self.provider.clone(),
            file_id: self.file_id,
            file_name: self.file_name.clone(),
        };
        let pool = self.context.pool.clone();
        self.record = Some(tokio::spawn(async move {
            let mut client = pool.get().await?;
            record.write(&mut client).await
        }));
        self.rows_since_checkpoint = 0;
        if durable == Durable::Now {
            self.record_written().await?;
        }
        Ok(())
    }

    /// Waits for the checkpoint transaction in flight, if any.
    async fn record_written(&mut self) -> Result<(), IngestError> {
        if let Some(write) = self.record.take() {
            let started = std::time::Instant::now();
            write
                .await
                .map_err(|e| IngestError::Task(e.to_string()))??;
            self.book.written();
            tracing::debug!(
                waited_ms = started.elapsed().as_millis() as u64,
                "checkpoint transaction awaited"
            );
        }
        Ok(())
    }

    /// For a provider whose files restate whole days: retracts the rows of this file's day
    /// that earlier files delivered and this one does not. Run after the last checkpoint of
    /// the rows, so that every row of the file is in the record with this file's id.
    pub async fn retract_missing_rows(
        &mut self,
        client: &deadpool_postgres::Client,
    ) -> Result<(), IngestError> {
        let Some(day) = store::file_day(client, &self.provider, self.file_id).await? else {
            return Ok(());
        };
        let missing = identity::missing_from_day(client, &self.provider, day, self.file_id).await?;
        // In blocks of a chunk's size, in txn_id order: a re-run builds the same batches.
        let mut missing = missing.into_iter().peekable();
        let mut block = 0;
        while missing.peek().is_some() {
            self.batches.begin(format!("tail{block}"));
            for (txn_id, stored) in missing.by_ref().take(crate::reader::CHUNK_ROWS) {
                if let Some(contribution) = stored.current {
                    self.retract(&txn_id, &contribution, Cause::Retraction)
                        .await?;
                }
                self.book.note_retracted(txn_id);
                self.classified.retracted += 1;
            }
            self.publish_batches().await?;
            block += 1;
        }
        tracing::info!(%day, retracted = self.classified.retracted, "restated day");
        Ok(())
    }

    /// This run's counts on top of those the checkpoint restored.
    fn sync_counts(&mut self) {
        let published = self.publisher.counts;
        let base = &self.base;
        self.counts.published = base.published + published.published;
        self.counts.unattributed = base.unattributed + published.unattributed;
        self.counts.duplicates = base.duplicates
            + published.duplicates
            + self.held.duplicates
            + self.classified.duplicates;
        self.counts.corrected = base.corrected + self.classified.corrected;
        self.counts.retracted = base.retracted + self.classified.retracted;
    }

    /// The publisher's counts, for the service's metrics.
    pub fn publish_counts(&self) -> crate::publish::PublishCounts {
        self.publisher.counts
    }
}
