//! What ingest writes to PostgreSQL: the file ledger (`ingest_files`), rejects, and the
//! transactions held for review (`unmapped_transactions`). Rows are written in batches.

use crate::error::IngestError;
use crate::reader::{RejectRow, UnmappedRow};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// A file's counts; always
/// `rows_read = published + unattributed + unmapped + rejected + duplicates + corrected`:
/// `published` rows count under a named brand, `unattributed` ones under their category's
/// unattributed merchant (and are held for review), `unmapped` ones are held only,
/// `duplicates` were accepted before with the same content, `corrected` with other content
/// (the earlier version retracted). `retracted` counts rows of restated days the file no
/// longer carries: retracted, and not rows of this file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileCounts {
    pub rows_read: u64,
    pub published: u64,
    pub unattributed: u64,
    pub unmapped: u64,
    pub rejected: u64,
    pub duplicates: u64,
    pub corrected: u64,
    pub retracted: u64,
}

impl FileCounts {
    pub fn conserved(&self) -> bool {
        self.rows_read
            == self.published
                + self.unattributed
                + self.unmapped
                + self.rejected
                + self.duplicates
                + self.corrected
    }
}

impl std::ops::AddAssign for FileCounts {
    fn add_assign(&mut self, other: FileCounts) {
        self.rows_read += other.rows_read;
        self.published += other.published;
        self.unattributed += other.unattributed;
        self.unmapped += other.unmapped;
        self.rejected += other.rejected;
        self.duplicates += other.duplicates;
        self.corrected += other.corrected;
        self.retracted += other.retracted;
    }
}

/// What the ledger says about a file's content.
pub enum Claim {
    /// New content: process from the first row.
    Fresh { file_id: i64 },
    /// An earlier run stopped mid-file: resume at `resume_line` with its counts.
    Resume {
        file_id: i64,
        resume_line: u64,
        counts: FileCounts,
    },
    /// Already processed (possibly under another name).
    AlreadyDone { file_id: i64, path: String },
    /// Failed before (possibly under another name), and not to be retried.
    AlreadyFailed { path: String, error: String },
    /// Another instance is processing it (or another file of its provider) right now.
    Busy,
    /// An older file of the same provider is unfinished: it resumes first, so that rows are
    /// classified against the identity record in the order they were delivered.
    Blocked { unfinished: String },
}

/// The advisory-lock class of "a file of this provider is being processed" (two-key locks do
/// not overlap the one-key locks of single files).
const PROVIDER_LOCK: i32 = 0x616c_7470; // "altp"

/// Records a delivery by content hash, or finds the earlier one. Advisory locks held by
/// `client` for the file's duration keep two instances off one file, and off two files of one
/// provider (their rows are classified against one identity record). A file that failed is
/// resumed only when `retry_failed` says so.
pub async fn claim(
    client: &deadpool_postgres::Client,
    sha256: &str,
    path: &str,
    provider: &str,
    size: u64,
    retry_failed: bool,
) -> Result<Claim, IngestError> {
    let row = client
        .query_one(
            "INSERT INTO ingest_files (content_sha256, path, provider, size_bytes, status)
             VALUES ($1, $2, $3, $4, 'processing')
             ON CONFLICT (content_sha256) DO UPDATE SET content_sha256 = excluded.content_sha256
             RETURNING id, status, path, checkpoint_line, rows_read, published, unmapped, rejected,
                       duplicates, (xmax = 0) AS inserted, unattributed, corrected, retracted,
                       coalesce(error, '')",
            &[&sha256, &path, &provider, &(size as i64)],
        )
        .await?;
    let file_id: i64 = row.get(0);
    let status: &str = row.get(1);
    let inserted: bool = row.get(9);
    if status == "done" && !inserted {
        return Ok(Claim::AlreadyDone {
            file_id,
            path: row.get(2),
        });
    }
    if status == "failed" && !inserted && !retry_failed {
        return Ok(Claim::AlreadyFailed {
            path: row.get(2),
            error: row.get(13),
        });
    }
    let file_locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&file_id])
        .await?
        .get(0);
    if !file_locked {
        return Ok(Claim::Busy);
    }
    let provider_locked: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            &[&PROVIDER_LOCK, &provider],
        )
        .await?
        .get(0);
    if !provider_locked {
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&file_id])
            .await?;
        return Ok(Claim::Busy);
    }
    let unfinished = client
        .query_opt(
            "SELECT path FROM ingest_files
             WHERE provider = $1 AND status = 'processing' AND id < $2 ORDER BY id LIMIT 1",
            &[&provider, &file_id],
        )
        .await?;
    if let Some(unfinished) = unfinished {
        release(client, file_id, provider).await?;
        return Ok(Claim::Blocked {
            unfinished: unfinished.get(0),
        });
    }
    if inserted {
        return Ok(Claim::Fresh { file_id });
    }
    let counts = FileCounts {
        rows_read: row.get::<_, i64>(4) as u64,
        published: row.get::<_, i64>(5) as u64,
        unmapped: row.get::<_, i64>(6) as u64,
        rejected: row.get::<_, i64>(7) as u64,
        duplicates: row.get::<_, i64>(8) as u64,
        unattributed: row.get::<_, i64>(10) as u64,
        corrected: row.get::<_, i64>(11) as u64,
        retracted: row.get::<_, i64>(12) as u64,
    };
    client
        .execute(
            "UPDATE ingest_files SET status = 'processing', error = NULL WHERE id = $1",
            &[&file_id],
        )
        .await?;
    Ok(Claim::Resume {
        file_id,
        resume_line: row.get::<_, i64>(3) as u64,
        counts,
    })
}

/// Paths and sizes of the files this ledger has finished (done, and failed unless they are to
/// be retried): a restarted watcher skips them without reading them again (new names of old
/// content are still caught by the hash).
pub async fn finished_files(
    client: &deadpool_postgres::Client,
    retry_failed: bool,
) -> Result<std::collections::HashSet<(String, u64)>, IngestError> {
    let rows = client
        .query(
            "SELECT path, size_bytes FROM ingest_files
              WHERE status = 'done' OR (status = 'failed' AND NOT $1)",
            &[&retry_failed],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1) as u64))
        .collect())
}

/// Lets go of the file's and its provider's locks.
pub async fn release(
    client: &deadpool_postgres::Client,
    file_id: i64,
    provider: &str,
) -> Result<(), IngestError> {
    client
        .execute(
            "SELECT pg_advisory_unlock($1), pg_advisory_unlock($2, hashtext($3))",
            &[&file_id, &PROVIDER_LOCK, &provider],
        )
        .await?;
    Ok(())
}

/// Durable progress: rows before `next_line` are done, with these counts. Runs in the
/// transaction that also writes the file's identities and changes.
pub async fn checkpoint(
    client: &deadpool_postgres::Transaction<'_>,
    file_id: i64,
    next_line: u64,
    counts: &FileCounts,
    lossy_utf8: bool,
) -> Result<(), IngestError> {
    client
        .execute(
            "UPDATE ingest_files SET checkpoint_line = $2, rows_read = $3, published = $4,
                    unmapped = $5, rejected = $6, duplicates = $7, lossy_utf8 = lossy_utf8 OR $8,
                    unattributed = $9, corrected = $10, retracted = $11
              WHERE id = $1",
            &[
                &file_id,
                &(next_line as i64),
                &(counts.rows_read as i64),
                &(counts.published as i64),
                &(counts.unmapped as i64),
                &(counts.rejected as i64),
                &(counts.duplicates as i64),
                &lossy_utf8,
                &(counts.unattributed as i64),
                &(counts.corrected as i64),
                &(counts.retracted as i64),
            ],
        )
        .await?;
    Ok(())
}

/// Marks the file done, or failed with the reason (cleaned as a row is: an error may quote
/// the file's bytes).
pub async fn finish(
    client: &deadpool_postgres::Client,
    file_id: i64,
    status: &str,
    error: Option<&str>,
) -> Result<(), IngestError> {
    let error = error.map(|e| crate::sanitize::for_storage(e).into_owned());
    client
        .execute(
            "UPDATE ingest_files SET status = $2, error = $3, finished_at = now() WHERE id = $1",
            &[&file_id, &status, &error],
        )
        .await?;
    Ok(())
}

/// Inserts rejects; a line already recorded (a resumed file) is not recorded twice.
pub async fn insert_rejects(
    client: &deadpool_postgres::Client,
    file_id: i64,
    file: &str,
    rejects: &[RejectRow],
) -> Result<u64, IngestError> {
    if rejects.is_empty() {
        return Ok(0);
    }
    let lines: Vec<i64> = rejects.iter().map(|r| r.line as i64).collect();
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason.as_str()).collect();
    let raws: Vec<&str> = rejects.iter().map(|r| r.raw_row.as_str()).collect();
    Ok(client
        .execute(
            "INSERT INTO ingest_rejects (file_id, file, line, reason, raw_row)
             SELECT $1, $2, * FROM unnest($3::bigint[], $4::text[], $5::text[])
             ON CONFLICT (file_id, line) DO NOTHING",
            &[&file_id, &file, &lines, &reasons, &raws],
        )
        .await?)
}

/// Inserts held transactions; returns how many held-only rows (no counted merchant) were new
/// (the rest were duplicates). A row counted under an unattributed merchant is counted by its
/// event.
///
/// The rows are copied in: the identity record lets only identities it has never held this
/// far, so a stored row of the same identity is rare (a resumed file's rows written before its
/// crash, or another file's rows written before that file's checkpoint). When one exists the
/// copy fails whole, and the checked insert skips it. Copying costs PostgreSQL about half as
/// much as the checked insert.
pub async fn insert_unmapped(
    client: &deadpool_postgres::Client,
    file_id: i64,
    provider: &str,
    rows: &[&UnmappedRow],
) -> Result<u64, IngestError> {
    if rows.is_empty() {
        return Ok(0);
    }
    match copy_unmapped(client, file_id, provider, rows).await {
        Ok(()) => Ok(rows
            .iter()
            .filter(|row| row.counted_merchant_id.is_none())
            .count() as u64),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            insert_unmapped_checked(client, file_id, provider, rows).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn copy_unmapped(
    client: &deadpool_postgres::Client,
    file_id: i64,
    provider: &str,
    rows: &[&UnmappedRow],
) -> Result<(), tokio_postgres::Error> {
    let sink = client
        .copy_in(
            "COPY unmapped_transactions (file_id, provider, txn_id, raw_descriptor,
                 normalized_descriptor, amount_cents, metric_date, region, mcc, customer_key,
                 candidates, counted_merchant_id) FROM STDIN BINARY",
        )
        .await?;
    let types = [
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::DATE,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::JSONB,
        Type::INT8,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for row in rows {
        writer
            .as_mut()
            .write(&[
                &file_id,
                &provider,
                &row.txn_id,
                &row.raw_descriptor,
                &row.normalized_descriptor,
                &row.amount_cents,
                &row.metric_date,
                &row.region,
                &row.mcc,
                &row.customer_key,
                &JsonText(&row.candidates),
                &row.counted_merchant_id,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

/// JSON text sent as `jsonb` in the binary protocol: a version byte, then the text.
#[derive(Debug)]
struct JsonText<'a>(&'a str);

impl ToSql for JsonText<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

/// [`insert_unmapped`] skipping identities already held.
async fn insert_unmapped_checked(
    client: &deadpool_postgres::Client,
    file_id: i64,
    provider: &str,
    rows: &[&UnmappedRow],
) -> Result<u64, IngestError> {
    let txn_ids: Vec<&str> = rows.iter().map(|r| r.txn_id.as_str()).collect();
    let raws: Vec<&str> = rows.iter().map(|r| r.raw_descriptor.as_str()).collect();
    let normalized: Vec<&str> = rows
        .iter()
        .map(|r| r.normalized_descriptor.as_str())
        .collect();
    let amounts: Vec<i64> = rows.iter().map(|r| r.amount_cents).collect();
    let dates: Vec<chrono::NaiveDate> = rows.iter().map(|r| r.metric_date).collect();
    let regions: Vec<&str> = rows.iter().map(|r| r.region.as_str()).collect();
    let mccs: Vec<&str> = rows.iter().map(|r| r.mcc.as_str()).collect();
    let keys: Vec<i64> = rows.iter().map(|r| r.customer_key).collect();
    let candidates: Vec<&str> = rows.iter().map(|r| &*r.candidates).collect();
    let counted: Vec<Option<i64>> = rows.iter().map(|r| r.counted_merchant_id).collect();
    let inserted: i64 = client
        .query_one(
            "WITH inserted AS (
                 INSERT INTO unmapped_transactions
                     (file_id, provider, txn_id, raw_descriptor, normalized_descriptor, amount_cents,
                      metric_date, region, mcc, customer_key, candidates, counted_merchant_id)
                 SELECT $1, $2, t, r, n, a, d, g, m, k, c::jsonb, cm
                   FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::date[],
                               $8::text[], $9::text[], $10::bigint[], $11::text[], $12::bigint[])
                        AS u(t, r, n, a, d, g, m, k, c, cm)
                 ON CONFLICT (provider, txn_id) DO NOTHING
                 RETURNING counted_merchant_id)
             SELECT count(*) FILTER (WHERE counted_merchant_id IS NULL) FROM inserted",
            &[
                &file_id,
                &provider,
                &txn_ids,
                &raws,
                &normalized,
                &amounts,
                &dates,
                &regions,
                &mccs,
                &keys,
                &candidates,
                &counted,
            ],
        )
        .await?
        .get(0);
    Ok(inserted as u64)
}

/// Writes corrected versions of held rows over any earlier row of the same identity (a held
/// version, or one superseded when an earlier correction resolved): back in the queue, pending.
pub async fn write_corrected_held(
    client: &deadpool_postgres::Client,
    file_id: i64,
    provider: &str,
    rows: &[&UnmappedRow],
) -> Result<(), IngestError> {
    if rows.is_empty() {
        return Ok(());
    }
    let txn_ids: Vec<&str> = rows.iter().map(|r| r.txn_id.as_str()).collect();
    let raws: Vec<&str> = rows.iter().map(|r| r.raw_descriptor.as_str()).collect();
    let normalized: Vec<&str> = rows
        .iter()
        .map(|r| r.normalized_descriptor.as_str())
        .collect();
    let amounts: Vec<i64> = rows.iter().map(|r| r.amount_cents).collect();
    let dates: Vec<chrono::NaiveDate> = rows.iter().map(|r| r.metric_date).collect();
    let regions: Vec<&str> = rows.iter().map(|r| r.region.as_str()).collect();
    let mccs: Vec<&str> = rows.iter().map(|r| r.mcc.as_str()).collect();
    let keys: Vec<i64> = rows.iter().map(|r| r.customer_key).collect();
    let candidates: Vec<&str> = rows.iter().map(|r| &*r.candidates).collect();
    let counted: Vec<Option<i64>> = rows.iter().map(|r| r.counted_merchant_id).collect();
    client
        .execute(
            "INSERT INTO unmapped_transactions AS t
                 (file_id, provider, txn_id, raw_descriptor, normalized_descriptor, amount_cents,
                  metric_date, region, mcc, customer_key, candidates, counted_merchant_id)
             SELECT $1, $2, t, r, n, a, d, g, m, k, c::jsonb, cm
               FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::date[],
                           $8::text[], $9::text[], $10::bigint[], $11::text[], $12::bigint[])
                    AS u(t, r, n, a, d, g, m, k, c, cm)
             ON CONFLICT (provider, txn_id) DO UPDATE SET
                 file_id = excluded.file_id, raw_descriptor = excluded.raw_descriptor,
                 normalized_descriptor = excluded.normalized_descriptor,
                 amount_cents = excluded.amount_cents, metric_date = excluded.metric_date,
                 region = excluded.region, mcc = excluded.mcc,
                 customer_key = excluded.customer_key, candidates = excluded.candidates,
                 counted_merchant_id = excluded.counted_merchant_id, status = 'pending',
                 merchant_id = NULL, resolved_by = NULL, resolved_at = NULL",
            &[
                &file_id,
                &provider,
                &txn_ids,
                &raws,
                &normalized,
                &amounts,
                &dates,
                &regions,
                &mccs,
                &keys,
                &candidates,
                &counted,
            ],
        )
        .await?;
    Ok(())
}

/// The day most of a file's accepted rows fall on: the day a restating file restates.
pub async fn file_day(
    client: &deadpool_postgres::Client,
    provider: &str,
    file_id: i64,
) -> Result<Option<chrono::NaiveDate>, IngestError> {
    Ok(client
        .query_opt(
            "SELECT metric_date FROM txn_identity WHERE provider = $1 AND file_id = $2
             GROUP BY metric_date ORDER BY count(*) DESC, metric_date DESC LIMIT 1",
            &[&provider, &file_id],
        )
        .await?
        .map(|row| row.get(0)))
}
