//! `altdata generate`: deterministic, realistic provider files in the canonical layout, with
//! descriptor noise, deliberate defects and a ground-truth sidecar that tests check against.
//!
//! # Layout
//! - [`run`]: the entry point; days are generated two at a time on blocking threads and
//!   streamed to the output, the truth is merged in day order.
//! - `world`: brands (popularity, trends, ticket sizes, name forms) and local merchants.
//! - `day`: one day's file: the card panel's activity, row writing, defects, day truth.
//! - `descriptor`: descriptor noise. `calendar`: seasonality. `geo`: states and cities.
//! - `truth`: the `_truth/` sidecar. `output`: local directories and object store URLs.
//!
//! # Output
//! - `<out>/provider=<provider>/<YYYY-MM-DD>.csv[.gz]`, one file per day.
//! - `<out>/_truth/ground_truth.csv`: `brand_id,merchant_id,state,date,gross_cents,
//!   refund_cents,sale_count,refund_count,distinct_cards` per brand, region (`XX` when the
//!   row has no state) and sale date, over valid unique rows of catalogue brands.
//! - `<out>/_truth/summary.json`: totals, broken rows per reason, per-file counts.
//! - `<out>/_truth/transactions.csv` (with `truth_detail`): `provider,txn_id,brand_id,category` of
//!   every valid unique row, `brand_id` empty for local merchants.

mod calendar;
mod day;
mod descriptor;
mod error;
mod geo;
mod output;
mod resend;
mod truth;
mod util;
mod world;

pub use error::GenerateError;
pub use truth::{FileSummary, Summary};

use altdata_common::Shutdown;
use altdata_domain::catalogue::Catalogue;
use altdata_domain::date_to_epoch_days;
use bytes::Bytes;
use chrono::{Duration, NaiveDate};
use day::{generate_day, DayResult, RunParams};
use futures::StreamExt;
use output::Output;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use truth::{TruthWindow, TRUTH_HEADER};
use world::World;

/// What to generate and where.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    pub days: u32,
    pub cards: u64,
    pub seed: u64,
    pub start: NaiveDate,
    /// A local directory or an object store URL (`s3://bucket/prefix`, `file:///dir`).
    pub out: String,
    pub gzip: bool,
    /// Provider name in the layout `provider=<provider>`; `default` by default.
    pub provider: String,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Also write `_truth/transactions.csv`, one line per valid unique row.
    pub truth_detail: bool,
    /// Days sent again two days later with corrections, removed and late rows (and a profile
    /// in `_profiles/` saying the provider restates whole days).
    pub resends: u32,
    /// Panel growth: this share of the panel (0.25 = +25 %) joins on `panel_growth_day`, cards
    /// with the same habits as the others, so raw spend grows by about the share while spend
    /// per active card does not. `cards` counts the panel after they join. 0 for none.
    pub panel_growth: f64,
    /// The day (0-based) the joining cards start to transact; default the middle day.
    pub panel_growth_day: Option<u32>,
}

impl GenerateConfig {
    /// A config with the defaults of the command line.
    pub fn new(out: impl Into<String>) -> GenerateConfig {
        GenerateConfig {
            days: 7,
            cards: 10_000,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2025, 11, 1).unwrap_or_default(),
            out: out.into(),
            gzip: false,
            provider: DEFAULT_PROVIDER.to_owned(),
            progress: false,
            truth_detail: false,
            resends: 0,
            panel_growth: 0.0,
            panel_growth_day: None,
        }
    }

    /// The cards transacting before the joining day: those of the panel without the share
    /// that joins, `cards / (1 + panel_growth)`.
    fn cards_before_growth(&self) -> u32 {
        let before = (self.cards as f64 / (1.0 + self.panel_growth.max(0.0))).round();
        (before as u32).clamp(1, self.cards as u32)
    }

    fn validate(&self) -> Result<(), GenerateError> {
        let mut problems = Vec::new();
        if self.days == 0 {
            problems.push("days must be at least 1".to_owned());
        }
        if self.days > 3660 {
            problems.push("days must be at most 3660".to_owned());
        }
        if self.cards == 0 || self.cards > u64::from(u32::MAX) {
            problems.push(format!("cards must be between 1 and {}", u32::MAX));
        }
        let valid_provider = !self.provider.is_empty()
            && self
                .provider
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_provider {
            problems.push(format!(
                "provider {:?} must be letters, digits, '_', '-' or '.'",
                self.provider
            ));
        }
        if !(0.0..=10.0).contains(&self.panel_growth) {
            problems.push("panel growth must be between 0 and 10 (a share)".to_owned());
        }
        if self.panel_growth_day.is_some_and(|day| day >= self.days) {
            problems.push("panel growth day must be one of the generated days".to_owned());
        }
        if self.out.trim().is_empty() {
            problems.push("out must not be empty".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(GenerateError::InvalidConfig(problems.join("; ")))
        }
    }
}

pub const DEFAULT_PROVIDER: &str = "default";

/// What a run produced.
#[derive(Debug, Clone, Default)]
pub struct GenerateReport {
    pub rows: u64,
    /// Full locations of the provider files, in day order.
    pub files: Vec<String>,
    pub bytes: u64,
    pub elapsed: std::time::Duration,
    pub valid_rows: u64,
    pub broken_rows: u64,
    pub duplicate_rows: u64,
    pub local_rows: u64,
}

impl GenerateReport {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Days generated at once (each on a blocking thread).
const PARALLEL_DAYS: usize = 2;

/// Generates the files, the ground truth and the summary. Stops between chunks when
/// `shutdown` fires, leaving only complete provider files, and returns
/// [`GenerateError::Cancelled`].
pub async fn run(
    config: &GenerateConfig,
    catalogue: &Catalogue,
    shutdown: &Shutdown,
) -> Result<GenerateReport, GenerateError> {
    config.validate()?;
    let started = Instant::now();
    let output = Arc::new(Output::open(&config.out)?);
    let world = Arc::new(World::new(catalogue, config.seed));
    let params = Arc::new(RunParams {
        seed: config.seed,
        cards: config.cards as u32,
        start: config.start,
        provider: config.provider.clone(),
        truth_detail: config.truth_detail,
        overlap_day: (config.days >= 2).then_some(config.days / 2),
        cards_before_growth: config.cards_before_growth(),
        growth_day: config.panel_growth_day.unwrap_or(config.days / 2),
    });
    let progress = progress_bar(config);
    tracing::info!(
        days = config.days,
        cards = config.cards,
        seed = config.seed,
        out = %config.out,
        brands = world.brands.len(),
        "generating provider files"
    );

    let mut truth_file = output.writer("_truth/ground_truth.csv")?;
    let mut detail_file = if config.truth_detail {
        let mut writer = output.writer("_truth/transactions.csv")?;
        writer
            .put(Bytes::from_static(b"provider,txn_id,brand_id,category\n"))
            .await?;
        Some(writer)
    } else {
        None
    };
    truth_file
        .put(Bytes::from_static(TRUTH_HEADER.as_bytes()))
        .await?;

    let mut summary = Summary {
        provider: config.provider.clone(),
        seed: config.seed,
        start: config.start.format("%Y-%m-%d").to_string(),
        days: config.days,
        cards: config.cards,
        gzip: config.gzip,
        ..Summary::default()
    };
    let mut report = GenerateReport::default();
    let mut window = TruthWindow::default();
    let extension = if config.gzip { "csv.gz" } else { "csv" };

    let mut days = futures::stream::iter(0..config.days)
        .map(|day_index| {
            let date = config.start + Duration::days(i64::from(day_index));
            let relative = format!(
                "provider={}/{}.{extension}",
                config.provider,
                date.format("%Y-%m-%d")
            );
            write_day(
                Arc::clone(&output),
                Arc::clone(&world),
                Arc::clone(&params),
                day_index,
                relative,
                config.gzip,
                shutdown.clone(),
            )
        })
        .buffered(PARALLEL_DAYS);

    let mut failure = None;
    let mut truth_chunk = Vec::new();
    while let Some(outcome) = days.next().await {
        let (day_index, relative, bytes, result) = match outcome {
            Ok(done) => done,
            Err(error) => {
                failure = Some(error);
                break;
            }
        };
        report.files.push(output.display(&relative));
        report.bytes += bytes;
        summary.add_file(relative, &result.stats, bytes);
        window.merge(result.truth);
        let file_day = date_to_epoch_days(config.start + Duration::days(i64::from(day_index)));
        truth_chunk.clear();
        window.drain(Some(file_day), &world, &mut truth_chunk);
        if !truth_chunk.is_empty() {
            truth_file
                .put(Bytes::from(std::mem::take(&mut truth_chunk)))
                .await?;
        }
        if let Some(writer) = &mut detail_file {
            if !result.detail.is_empty() {
                writer.put(Bytes::from(result.detail)).await?;
            }
        }
        progress.inc(1);
        progress.set_message(format!("{} rows", summary.rows));
    }
    drop(days);
    if let Some(error) = failure {
        progress.abandon();
        truth_file.abort().await;
        if let Some(writer) = detail_file {
            writer.abort().await;
        }
        return Err(error);
    }

    write_resends(
        config,
        &output,
        &world,
        &params,
        &mut summary,
        &mut report,
        &mut detail_file,
    )
    .await?;

    truth_chunk.clear();
    window.drain(None, &world, &mut truth_chunk);
    if !truth_chunk.is_empty() {
        truth_file.put(Bytes::from(truth_chunk)).await?;
    }
    summary.truth_rows = window.keys_written;
    truth_file.finish().await?;
    if let Some(writer) = detail_file {
        writer.finish().await?;
    }
    let mut summary_file = output.writer("_truth/summary.json")?;
    let mut json = serde_json::to_vec_pretty(&summary)?;
    json.push(b'\n');
    summary_file.put(Bytes::from(json)).await?;
    summary_file.finish().await?;
    progress.finish_and_clear();

    report.rows = summary.rows;
    report.valid_rows = summary.valid_rows;
    report.broken_rows = summary.broken_rows;
    report.duplicate_rows = summary.duplicate_rows;
    report.local_rows = summary.local_rows;
    report.elapsed = started.elapsed();
    tracing::info!(
        rows = report.rows,
        files = report.files.len(),
        bytes = report.bytes,
        rows_per_second = report.rows_per_second() as u64,
        "provider files written"
    );
    Ok(report)
}

/// Writes the re-sent days' files (after every day, so a re-send sorts after its original)
/// and restates the summary.
async fn write_resends(
    config: &GenerateConfig,
    output: &Output,
    world: &World,
    params: &RunParams,
    summary: &mut Summary,
    report: &mut GenerateReport,
    detail_file: &mut Option<output::FileWriter>,
) -> Result<(), GenerateError> {
    let plan = resend::plan(config.days, config.resends);
    if plan.is_empty() {
        return Ok(());
    }
    let mut profile = output.writer(&format!("_profiles/{}.toml", config.provider))?;
    profile
        .put(Bytes::from(resend::restating_profile(&config.provider)))
        .await?;
    profile.finish().await?;
    for (day_index, file_day) in plan {
        let day = config.start + Duration::days(i64::from(day_index));
        let sent = config.start + Duration::days(i64::from(file_day));
        let resent = resend::build(world, params, day_index, file_day)?;
        let relative = format!(
            "provider={}/{}.resend-{}.csv{}",
            config.provider,
            sent.format("%Y-%m-%d"),
            day.format("%Y-%m-%d"),
            if config.gzip { ".gz" } else { "" }
        );
        let bytes = if config.gzip {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder
                .write_all(&resent.bytes)
                .and_then(|()| encoder.finish())
                .map_err(|source| GenerateError::Compress {
                    path: relative.clone(),
                    source,
                })?
        } else {
            resent.bytes
        };
        let size = bytes.len() as u64;
        let mut writer = output.writer(&relative)?;
        writer.put(Bytes::from(bytes)).await?;
        writer.finish().await?;
        if let Some(detail) = detail_file {
            if !resent.detail.is_empty() {
                detail.put(Bytes::from(resent.detail)).await?;
            }
        }
        report.files.push(output.display(&relative));
        report.bytes += size;
        summary.add_resend(
            relative,
            day.format("%Y-%m-%d").to_string(),
            &resent.stats,
            size,
        );
    }
    Ok(())
}

fn progress_bar(config: &GenerateConfig) -> indicatif::ProgressBar {
    if !config.progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(u64::from(config.days));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} days, {msg} ({eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Generates one day on a blocking thread and streams its chunks to the output. The file
/// appears only when complete; on failure or shutdown the partial upload is dropped.
async fn write_day(
    output: Arc<Output>,
    world: Arc<World>,
    params: Arc<RunParams>,
    day_index: u32,
    relative: String,
    gzip: bool,
    shutdown: Shutdown,
) -> Result<(u32, String, u64, DayResult), GenerateError> {
    if shutdown.is_triggered() {
        return Err(GenerateError::Cancelled);
    }
    let mut writer = output.writer(&relative)?;
    let name = writer.name().to_owned();
    // Two chunks in flight bound the memory of a day to a few chunk sizes.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Bytes>(2);
    let task_name = name.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut encoder =
            gzip.then(|| flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let compress_error = |source| GenerateError::Compress {
            path: task_name.clone(),
            source,
        };
        let closed = || GenerateError::WriterClosed {
            path: task_name.clone(),
        };
        let result = {
            let mut sink = |chunk: Vec<u8>| -> Result<(), GenerateError> {
                let bytes = match &mut encoder {
                    Some(encoder) => {
                        encoder.write_all(&chunk).map_err(compress_error)?;
                        std::mem::take(encoder.get_mut())
                    }
                    None => chunk,
                };
                if !bytes.is_empty() {
                    sender
                        .blocking_send(Bytes::from(bytes))
                        .map_err(|_| closed())?;
                }
                Ok(())
            };
            generate_day(&world, &params, day_index, &mut sink, &shutdown)?
        };
        if let Some(encoder) = encoder {
            let rest = encoder.finish().map_err(compress_error)?;
            if !rest.is_empty() {
                sender
                    .blocking_send(Bytes::from(rest))
                    .map_err(|_| closed())?;
            }
        }
        Ok::<DayResult, GenerateError>(result)
    });
    while let Some(chunk) = receiver.recv().await {
        if let Err(error) = writer.put(chunk).await {
            drop(receiver);
            writer.abort().await;
            return Err(error);
        }
    }
    let result = match task.await {
        Ok(Ok(result)) => result,
        Ok(Err(error)) => {
            writer.abort().await;
            return Err(error);
        }
        Err(join_error) => {
            writer.abort().await;
            return Err(GenerateError::Task(join_error.to_string()));
        }
    };
    let bytes = writer.finish().await?;
    tracing::debug!(file = %name, rows = result.stats.rows, bytes, "day written");
    Ok((day_index, relative, bytes, result))
}
