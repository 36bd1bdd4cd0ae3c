//! One file, start to finish: hash → claim → read/validate/resolve/encode (blocking thread)
//! → classify against the identity record, publish and hold ([`crate::run`]) → checkpoint →
//! finish. A file interrupted by a crash or shutdown resumes at its last checkpoint, where the
//! identity record is as the interrupted run left it, so its rows are classified as before
//! and republished under the same Msg-Ids, which the stream de-duplicates.

use crate::error::IngestError;
use crate::landing::{Landing, LandingFile};
use crate::profile::Restates;
use crate::reader::{Chunk, FileProblem};
use crate::run::FileRun;
use crate::store::{self, Claim, FileCounts};
use crate::IngestContext;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::{Duration, Instant};

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
    /// Another instance holds it (or another file of its provider).
    Busy,
    /// An older file of the same provider is unfinished and goes first.
    Blocked {
        unfinished: String,
    },
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
        Claim::Blocked { unfinished } => {
            tracing::info!(%unfinished, "an older file of this provider is unfinished; it goes first");
            return Ok(report(
                display,
                provider,
                FileOutcome::Blocked { unfinished },
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
            let _ = store::release(&client, file_id, provider).await;
            return Err(error);
        }
    };
    store::release(&client, file_id, provider).await?;
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
    let restates = row_path.profile.restates;
    let gzip = file.path.as_ref().to_ascii_lowercase().ends_with(".gz");
    let reader = landing.open_reader(&file.path).await?;
    let (sender, mut chunks) = tokio::sync::mpsc::channel::<Chunk>(4);
    let parser = tokio::task::spawn_blocking(move || row_path.run(reader, gzip, sender));

    let file_name = file.path.to_string();
    let mut run = FileRun::start(context, provider, file_id, &file_name, *counts).await?;
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
        run.take(client, chunk).await?;
        if run.rows_since_checkpoint >= context.settings.checkpoint_rows
            || context.shutdown.is_triggered()
        {
            run.checkpoint(client, next_line).await?;
            if context.shutdown.is_triggered() {
                interrupted = true;
                break;
            }
        }
        if let Some(progress) = &context.progress {
            progress.set_position(run.counts.rows_read);
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
        *counts = run.counts;
        return Err(IngestError::Interrupted);
    }
    run.checkpoint(client, next_line).await?;
    if parsed.is_ok() && restates == Some(Restates::Day) {
        run.retract_missing_rows(client).await?;
        run.checkpoint(client, next_line).await?;
    }
    let published = run.publish_counts();
    context.metrics.published.increment(published.published);
    context.metrics.duplicates.increment(published.duplicates);
    *counts = run.counts;
    Ok(match parsed {
        Ok(()) => (None, run.lossy),
        Err(FileProblem::Header(missing)) => (
            Some(
                IngestError::Header {
                    path: file_name,
                    missing,
                }
                .to_string(),
            ),
            run.lossy,
        ),
        Err(FileProblem::Read(reason)) => (Some(reason), run.lossy),
    })
}
