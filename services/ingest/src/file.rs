//! One file, start to finish: hash → claim → read/validate/resolve/encode (blocking thread)
//! → classify against the identity record, publish and hold ([`crate::run`]) → checkpoint →
//! finish. A file interrupted by a crash or shutdown resumes at its last checkpoint, where the
//! identity record is as the interrupted run left it, so its rows are classified as before
//! and republished under the same Msg-Ids, which the stream de-duplicates.

use crate::error::IngestError;
use crate::landing::{Landing, LandingFile};
use crate::profile::Restates;
use crate::reader::{Chunk, FileProblem};
use crate::run::{Durable, FileRun};
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
    /// The file could not be finished (unreadable bytes, a bad header, its provider's profile,
    /// a value PostgreSQL refused): marked failed on the ledger with the reason.
    Failed {
        reason: String,
    },
    /// The ledger says this content failed before (possibly under another name); it is tried
    /// again only with `--retry-failed`.
    FailedBefore {
        earlier_path: String,
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
    let sha256 = match content_sha256(landing, file).await {
        Ok(sha256) => sha256,
        Err(error) => {
            // Unreadable before it has a hash, so before it has a row on the ledger: the log
            // and the metric say so, and the others go on.
            let reason = crate::sanitize::for_storage(&error.to_string()).into_owned();
            tracing::error!(%reason, "file unreadable; the others go on");
            context.metrics.files_failed.increment(1);
            let outcome = FileOutcome::Failed { reason };
            return Ok(report(
                display,
                provider,
                outcome,
                FileCounts::default(),
                started,
                false,
            ));
        }
    };
    let mut client = context.pool.get().await?;
    let claim = store::claim(
        &client,
        &sha256,
        &display,
        provider,
        file.size,
        context.settings.retry_failed,
    )
    .await?;
    let skipped = |outcome| {
        report(
            display.clone(),
            provider,
            outcome,
            FileCounts::default(),
            started,
            false,
        )
    };
    let (file_id, resume_line, mut counts, resumed) = match claim {
        Claim::Fresh { file_id } => (file_id, 0, FileCounts::default(), false),
        Claim::Resume {
            file_id,
            resume_line,
            counts,
        } => (file_id, resume_line, counts, true),
        Claim::AlreadyDone { path, .. } => {
            tracing::info!(earlier = %path, "same content already processed, skipped");
            return Ok(skipped(FileOutcome::Skipped { earlier_path: path }));
        }
        Claim::AlreadyFailed { path, error } => {
            tracing::warn!(earlier = %path, reason = %error, "this content failed before; skipped (--retry-failed tries it again)");
            return Ok(skipped(FileOutcome::FailedBefore {
                earlier_path: path,
                reason: error,
            }));
        }
        Claim::Busy => return Ok(skipped(FileOutcome::Busy)),
        Claim::Blocked { unfinished } => {
            tracing::info!(%unfinished, "an older file of this provider is unfinished; it goes first");
            return Ok(skipped(FileOutcome::Blocked { unfinished }));
        }
    };
    let result = ingest_rows(
        context,
        landing,
        file,
        provider,
        &sha256,
        file_id,
        resume_line,
        &mut counts,
        &mut client,
    )
    .await;
    let lossy = result.as_ref().is_ok_and(|(_, lossy)| *lossy);
    let problem = match result {
        Ok((problem, _)) => problem,
        Err(error) if error.is_the_files() => Some(error.to_string()),
        Err(error) => {
            // Leave the file 'processing' at its last checkpoint: the next run resumes it.
            let _ = store::release(&client, file_id, provider).await;
            return Err(error);
        }
    };
    let outcome = match problem {
        None => {
            store::finish(&client, file_id, "done", None).await?;
            if resumed {
                FileOutcome::Resumed
            } else {
                FileOutcome::Done
            }
        }
        Some(reason) => {
            // Never an endless 'processing': the ledger says failed, and why.
            let reason = crate::sanitize::for_storage(&reason).into_owned();
            tracing::error!(%reason, "file failed; the others go on");
            context.metrics.files_failed.increment(1);
            store::finish(&client, file_id, "failed", Some(&reason)).await?;
            FileOutcome::Failed { reason }
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
    sha256: &str,
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
    let mut run = FileRun::start(context, provider, file_id, &file_name, sha256, *counts).await?;
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
        if context.shutdown.is_triggered() {
            run.checkpoint(next_line, Durable::Now).await?;
            interrupted = true;
            break;
        }
        if run.rows_since_checkpoint >= context.settings.checkpoint_rows {
            run.checkpoint(next_line, Durable::Behind).await?;
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
    run.checkpoint(next_line, Durable::Now).await?;
    if parsed.is_ok() && restates == Some(Restates::Day) {
        run.retract_missing_rows(client).await?;
        run.checkpoint(next_line, Durable::Now).await?;
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
