//! Ingest: provider files from the landing zone become validated, pseudonymised,
//! merchant-resolved `TransactionEvent`s on JetStream; rows that need a person go to
//! `unmapped_transactions`, bad rows to `ingest_rejects`. Nothing is dropped silently:
//! for every file, rows read = published + unmapped + rejected + duplicates.
//!
//! Two modes: [`run`] watches the landing zone; [`run_once`] processes named files and exits.

pub mod batch;
pub mod changes;
pub mod config;
pub mod error;
pub mod file;
pub mod held;
pub mod identity;
pub mod landing;
pub mod metrics;
pub mod profile;
pub mod publish;
pub mod reader;
pub mod records;
pub mod run;
pub mod sanitize;
pub mod store;
pub mod validate;

pub use config::IngestSettings;
pub use error::IngestError;
pub use file::{FileOutcome, FileReport};

use altdata_common::connect::{self, Subjects};
use altdata_common::Shutdown;
use altdata_domain::catalogue::Catalogue;
use altdata_domain::{Category, CustomerKeyer};
use altdata_resolver::{Alias, MerchantRef, ResolutionCache, Resolver, Rule, RuleKind};
use async_nats::jetstream;
use futures::StreamExt;
use secrecy::ExposeSecret;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

/// Shared state of an ingest process.
pub struct IngestContext {
    pub settings: IngestSettings,
    pub pool: deadpool_postgres::Pool,
    pub jetstream: jetstream::Context,
    pub shard_subjects: Vec<async_nats::Subject>,
    pub resolver: RwLock<Arc<Resolver>>,
    pub cache: Arc<Mutex<ResolutionCache>>,
    pub keyer: CustomerKeyer,
    pub shutdown: Shutdown,
    pub metrics: metrics::IngestMetrics,
    pub progress: Option<indicatif::ProgressBar>,
    profiles: Mutex<HashMap<String, profile::ProviderProfile>>,
}

impl IngestContext {
    /// Connects, makes sure the streams exist and loads the resolver.
    pub async fn connect(
        settings: IngestSettings,
        shutdown: Shutdown,
    ) -> Result<Arc<IngestContext>, IngestError> {
        let pool = connect::postgres_pool(&settings.connections).await?;
        let client = connect::nats(&settings.connections.nats_url).await?;
        let jetstream = jetstream::new(client.clone());
        let subjects = settings.connections.subjects();
        connect::ensure_streams(&jetstream, &subjects, &settings.connections.streams).await?;
        let resolver = load_resolver(&pool).await?;
        let horizon =
            chrono::Utc::now().date_naive() - chrono::Duration::days(settings.restatement_days);
        let purged = identity::purge_before(&pool.get().await?, horizon).await?;
        if purged > 0 {
            tracing::info!(purged, %horizon, "identities older than the restatement horizon purged");
        }
        let shard_subjects = (0..settings.connections.shard_count)
            .map(|shard| async_nats::Subject::from(subjects.txn_shard(shard)))
            .collect();
        let progress = settings.progress.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {pos} rows  {per_sec}  {elapsed}  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        let context = Arc::new(IngestContext {
            keyer: CustomerKeyer::new(settings.customer_key_secret.expose_secret().as_bytes()),
            cache: Arc::new(Mutex::new(ResolutionCache::new(
                settings.resolution_cache_size,
            ))),
            settings,
            pool,
            jetstream,
            shard_subjects,
            resolver: RwLock::new(Arc::new(resolver)),
            shutdown,
            metrics: metrics::IngestMetrics::new(),
            progress,
            profiles: Mutex::new(HashMap::new()),
        });
        spawn_mapping_reloader(Arc::downgrade(&context), client, subjects);
        Ok(context)
    }

    /// The row path for one file of `provider`, starting at `resume_line`.
    pub fn row_path(
        &self,
        provider: &str,
        resume_line: u64,
    ) -> Result<reader::RowPath, IngestError> {
        let profile = {
            let mut profiles = self
                .profiles
                .lock()
                .map_err(|_| IngestError::Resolver("profile cache poisoned".into()))?;
            match profiles.get(provider) {
                Some(profile) => profile.clone(),
                None => {
                    let profile =
                        profile::ProviderProfile::load(&self.settings.profiles_dir, provider)?;
                    profiles.insert(provider.to_owned(), profile.clone());
                    profile
                }
            }
        };
        let today = chrono::Utc::now().date_naive();
        let resolver = self
            .resolver
            .read()
            .map(|r| r.clone())
            .map_err(|_| IngestError::Resolver("resolver lock poisoned".into()))?;
        Ok(reader::RowPath {
            provider: provider.to_owned(),
            profile,
            resolver,
            cache: self.cache.clone(),
            keyer: self.keyer.clone(),
            shard_count: self.settings.connections.shard_count,
            latest_date: today + chrono::Duration::days(self.settings.max_future_days),
            earliest_date: today - chrono::Duration::days(self.settings.restatement_days),
            resume_line,
            max_record_bytes: self.settings.max_record_bytes,
        })
    }

    /// Reloads aliases and rules from PostgreSQL and empties the resolution cache.
    pub async fn reload_resolver(&self) -> Result<(), IngestError> {
        let resolver = load_resolver(&self.pool).await?;
        if let Ok(mut current) = self.resolver.write() {
            *current = Arc::new(resolver);
        }
        if let Ok(mut cache) = self.cache.lock() {
            *cache = ResolutionCache::new(self.settings.resolution_cache_size);
        }
        tracing::info!("merchant aliases and rules reloaded");
        Ok(())
    }

    /// The provider of a file: the `provider=NAME` segment of its full path (the landing
    /// zone's location and the path in it), else the default.
    fn provider_for(&self, path: &str) -> String {
        landing::provider_of(path)
            .unwrap_or(&self.settings.default_provider)
            .to_owned()
    }
}

/// The resolver over the embedded catalogue plus what people added in PostgreSQL: merchants
/// created in review, aliases and rules.
pub async fn load_resolver(pool: &deadpool_postgres::Pool) -> Result<Resolver, IngestError> {
    let catalogue = Catalogue::embedded().map_err(IngestError::Resolver)?;
    let catalogue_ids: HashSet<i64> = catalogue.merchants.iter().map(|m| m.id).collect();
    let client = pool.get().await?;
    let extra_merchants = client
        .query(
            "SELECT id, name, category FROM dim_merchants WHERE NOT unattributed",
            &[],
        )
        .await?
        .into_iter()
        .filter(|row| !catalogue_ids.contains(&row.get::<_, i64>(0)))
        .map(|row| MerchantRef {
            id: row.get(0),
            name: row.get(1),
            category: Category::parse(row.get(2)).unwrap_or(Category::Other),
        })
        .collect();
    let aliases = client
        .query("SELECT alias, merchant_id FROM merchant_aliases", &[])
        .await?
        .into_iter()
        .map(|row| Alias {
            alias: row.get(0),
            merchant_id: row.get(1),
        })
        .collect();
    let rules = client
        .query(
            "SELECT id, kind, pattern, merchant_id, priority FROM merchant_rules WHERE active",
            &[],
        )
        .await?
        .into_iter()
        .map(|row| Rule {
            id: row.get(0),
            kind: if row.get::<_, &str>(1) == "regex" {
                RuleKind::Regex
            } else {
                RuleKind::Prefix
            },
            pattern: row.get(2),
            merchant_id: row.get(3),
            priority: row.get(4),
        })
        .collect();
    let resolver = Resolver::new(&catalogue, extra_merchants, aliases, rules);
    // A stored rule the resolver cannot use is skipped, never fatal: one bad rule must not stop
    // ingest. The review tool lists it with the same reason (`GET /v1/admin/rules`).
    for skipped in resolver.skipped_rules() {
        tracing::warn!(rule_id = skipped.id, problem = %skipped.problem, "merchant rule skipped");
    }
    ::metrics::gauge!("altdata_ingest_rules_skipped").set(resolver.skipped_rules().len() as f64);
    Ok(resolver)
}

/// Reloads the resolver whenever `altdata.mapping.v1.changed` arrives (core NATS). Holds the
/// context weakly, so it never keeps a finished (or aborted) ingest's connections alive.
fn spawn_mapping_reloader(
    context: std::sync::Weak<IngestContext>,
    client: async_nats::Client,
    subjects: Subjects,
) {
    tokio::spawn(async move {
        let Ok(mut changes) = client.subscribe(subjects.mapping_changed()).await else {
            tracing::warn!("cannot subscribe to mapping changes; aliases reload only on restart");
            return;
        };
        let idle_check = std::time::Duration::from_secs(1);
        loop {
            match tokio::time::timeout(idle_check, changes.next()).await {
                Ok(None) => return,
                Ok(Some(_change)) => {
                    let Some(context) = context.upgrade() else {
                        return;
                    };
                    if let Err(error) = context.reload_resolver().await {
                        tracing::warn!(error = %error, "reloading aliases and rules failed");
                    }
                }
                Err(_elapsed) => {
                    if context.upgrade().is_none_or(|c| c.shutdown.is_triggered()) {
                        return;
                    }
                }
            }
        }
    });
}

/// Processes the named files or prefixes (local paths or URLs), then returns.
pub async fn run_once(
    settings: IngestSettings,
    locations: &[String],
    shutdown: Shutdown,
) -> Result<Vec<FileReport>, IngestError> {
    let context = IngestContext::connect(settings, shutdown.clone()).await?;
    let mut reports = Vec::new();
    let mut waiting = Vec::new();
    let mut reported = HashSet::new();
    for location in locations {
        let landing = landing::Landing::open(location)?;
        let listing = landing.list().await?;
        report_unlistable(&context, &landing, &listing, &mut reported);
        for file in listing.files {
            if shutdown.is_triggered() {
                return Err(IngestError::Interrupted);
            }
            let provider = context.provider_for(&file::ledger_path(&landing, &file));
            let report = file::process_file(&context, &landing, &file, &provider).await?;
            context.metrics.files.increment(1);
            if let Some(progress) = &context.progress {
                progress.println(summary_line(&report));
            }
            if matches!(report.outcome, FileOutcome::Blocked { .. }) {
                waiting.push((landing.clone(), file, provider));
            } else {
                reports.push(report);
            }
        }
    }
    // A file that waited for an older unfinished one of its provider goes again, once: the
    // older one may have been in this run.
    for (landing, file, provider) in waiting {
        reports.push(file::process_file(&context, &landing, &file, &provider).await?);
    }
    if let Some(progress) = &context.progress {
        progress.finish_and_clear();
    }
    Ok(reports)
}

/// Watches the landing zone until shutdown, processing each new file once.
pub async fn run(settings: IngestSettings, shutdown: Shutdown) -> Result<(), IngestError> {
    let landing = landing::Landing::open(&settings.landing)?;
    let poll = settings.poll_interval;
    let ops_addr = settings.ops_addr;
    let context = IngestContext::connect(settings, shutdown.clone()).await?;
    let readiness = altdata_common::ops::Readiness::default();
    if let Some(addr) = ops_addr {
        let (readiness, shutdown) = (readiness.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Err(error) = altdata_common::ops::serve_ops(addr, readiness, shutdown).await {
                tracing::error!(error = %error, "ops listener failed");
            }
        });
    }
    readiness.set(true);
    tracing::info!(landing = %landing.location, "ingest watching the landing zone");
    // Files already finished (by this process, or before a restart, from the ledger) are not
    // read again: a restart in a landing zone of months of files must not hash them all.
    let mut seen: HashSet<(String, u64)> =
        store::finished_files(&context.pool.get().await?, context.settings.retry_failed).await?;
    tracing::info!(
        files = seen.len(),
        "files already in the ledger will not be read again"
    );
    let mut reported = HashSet::new();
    while !shutdown.is_triggered() {
        match landing.list().await {
            Ok(listing) => {
                report_unlistable(&context, &landing, &listing, &mut reported);
                for file in listing.files {
                    let key = (file::ledger_path(&landing, &file), file.size);
                    if seen.contains(&key) || shutdown.is_triggered() {
                        continue;
                    }
                    let provider = context.provider_for(&file::ledger_path(&landing, &file));
                    match file::process_file(&context, &landing, &file, &provider).await {
                        Ok(report) => {
                            tracing::info!("{}", summary_line(&report));
                            context.metrics.files.increment(1);
                            // Busy or blocked files are tried again on the next listing.
                            if !matches!(
                                report.outcome,
                                FileOutcome::Busy | FileOutcome::Blocked { .. }
                            ) {
                                seen.insert(key);
                            }
                        }
                        Err(IngestError::Interrupted) => break,
                        // A database's message may quote a value: cleaned like a row.
                        Err(error) if error.retryable() => {
                            let error = sanitize::for_storage(&error.to_string()).into_owned();
                            tracing::warn!(%error, "file failed, retrying on the next poll");
                        }
                        Err(error) => {
                            let error = sanitize::for_storage(&error.to_string()).into_owned();
                            tracing::error!(%error, "file failed");
                            seen.insert(key);
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(error = %error, "listing the landing zone failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.cancelled() => {}
        }
    }
    readiness.set(false);
    Ok(())
}

/// Logs and counts the names a listing left out, each once per process (the watcher lists
/// every few seconds).
fn report_unlistable(
    context: &IngestContext,
    landing: &landing::Landing,
    listing: &landing::Listing,
    reported: &mut HashSet<String>,
) {
    for name in &listing.unlistable {
        if reported.insert(name.clone()) {
            let name = sanitize::for_storage(name);
            tracing::warn!(landing = %landing.location, %name, "a name in the landing zone cannot be listed; skipped, the others go on");
            context.metrics.names_skipped.increment(1);
        }
    }
}

/// The conservation line of some counts: `read N = published … + corrected C (conserved);
/// retracted T`.
pub fn conservation(c: &store::FileCounts) -> String {
    format!(
        "read {} = published {} + unattributed {} + unmapped {} + rejected {} + duplicates {} + corrected {} ({}); retracted {}",
        c.rows_read,
        c.published,
        c.unattributed,
        c.unmapped,
        c.rejected,
        c.duplicates,
        c.corrected,
        if c.conserved() { "conserved" } else { "NOT CONSERVED" },
        c.retracted
    )
}

/// The last line of `altdata ingest --once`: every file's rows, summed, and whether they are
/// conserved.
pub fn total_line(reports: &[FileReport]) -> String {
    let mut total = store::FileCounts::default();
    for report in reports {
        total += report.counts;
    }
    let elapsed = reports
        .iter()
        .map(|r| r.elapsed)
        .sum::<std::time::Duration>()
        .as_secs_f64();
    format!(
        "total: {} files; {} in {:.2}s, {:.0} rows/s",
        reports.len(),
        conservation(&total),
        elapsed,
        total.rows_read as f64 / elapsed.max(1e-9)
    )
}

/// One line per file: what happened and the conservation of its rows.
pub fn summary_line(report: &FileReport) -> String {
    let c = &report.counts;
    let rate = c.rows_read as f64 / report.elapsed.as_secs_f64().max(1e-9);
    match &report.outcome {
        FileOutcome::Skipped { earlier_path } => {
            format!("{}: skipped, same content already processed as {earlier_path}", report.path)
        }
        FileOutcome::Busy => format!(
            "{}: skipped, another instance is processing it or another file of its provider",
            report.path
        ),
        FileOutcome::Blocked { unfinished } => format!(
            "{}: waiting: an older file of provider {} is unfinished and resumes first: {unfinished}",
            report.path, report.provider
        ),
        FileOutcome::Failed { reason } => format!(
            "{}: FAILED after {} rows: {reason} ({})",
            report.path,
            c.rows_read,
            conservation(c)
        ),
        FileOutcome::FailedBefore { earlier_path, reason } => format!(
            "{}: skipped, this content failed before as {earlier_path}: {reason} (--retry-failed tries it again)",
            report.path
        ),
        FileOutcome::Done | FileOutcome::Resumed => format!(
            "{}: {}{} in {:.2}s ({:.0} rows/s){}",
            report.path,
            if report.outcome == FileOutcome::Resumed { "resumed; " } else { "" },
            conservation(c),
            report.elapsed.as_secs_f64(),
            rate,
            if report.lossy_utf8 { "; some fields were not UTF-8 and were decoded lossily" } else { "" },
        ),
    }
}
