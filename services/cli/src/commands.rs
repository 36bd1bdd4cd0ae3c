//! The subcommands: each reads its typed settings, builds its role and runs it with the one
//! shutdown mechanism (SIGINT/SIGTERM).

use crate::keys::KeysCommand;
use altdata_common::{connect, migrate, EnvReader, Shutdown};
use altdata_domain::catalogue::Catalogue;
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "altdata",
    version,
    about = "Altdata Explorer: card transactions in, exact fresh aggregates out"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply the schema migrations in schema/ and load the merchant catalogue (idempotent).
    Migrate,
    /// Write deterministic, realistic provider files plus a ground-truth sidecar.
    Generate {
        #[arg(long, default_value_t = 7)]
        days: u32,
        #[arg(long, default_value_t = 10_000)]
        cards: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// First day, YYYY-MM-DD (default: `days` days before today).
        #[arg(long)]
        start: Option<chrono::NaiveDate>,
        /// Local directory or object-store URL.
        #[arg(long, default_value = "landing")]
        out: String,
        #[arg(long)]
        gzip: bool,
        #[arg(long, default_value = "default")]
        provider: String,
        /// Also write _truth/transactions.csv (txn_id -> brand) for tests.
        #[arg(long)]
        truth_detail: bool,
        /// Send this many days again, two days later, with corrected amounts, removed rows and
        /// late rows (the provider restates whole days: _profiles/<provider>.toml says so).
        #[arg(long, default_value_t = 0)]
        resends: u32,
        /// Plant panel growth: this share of the cards (0.25 = +25 %) joins the panel on
        /// --panel-growth-day with the same habits, so raw spend grows and spend per card
        /// does not.
        #[arg(long, default_value_t = 0.0)]
        panel_growth: f64,
        /// The 0-based day the joining cards start (default: the middle day).
        #[arg(long)]
        panel_growth_day: Option<u32>,
    },
    /// Ingest provider files: watch the landing zone, or process PATH|URL... once and exit.
    Ingest {
        /// Process these files or prefixes, then exit.
        #[arg(long, num_args = 1.., value_name = "PATH|URL")]
        once: Option<Vec<String>>,
        /// Provider of files whose path has no provider=NAME segment.
        #[arg(long)]
        provider: Option<String>,
        /// Try files the ledger marks failed again (resumed at their last checkpoint);
        /// without it they are skipped, with the reason they failed, until their bytes change.
        #[arg(long)]
        retry_failed: bool,
    },
    /// Aggregate transactions into PostgreSQL, exactly once.
    Aggregate {
        /// Exit once every owned shard has caught up.
        #[arg(long)]
        until_idle: bool,
        /// Shards to own, e.g. 0-7 or 0,3,5 (default: all, or by StatefulSet ordinal).
        #[arg(long)]
        shards: Option<String>,
    },
    /// Rebuild a shard whose events expired from the stream before they were applied (the
    /// aggregator refuses such a shard and says so), from the identity record. Stop ingest first.
    RecoverShard {
        #[arg(long)]
        shard: u32,
        /// First day to rebuild (default: the earliest day of the files the gap covers).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
    },
    /// Show the disclosure rule's k (cells with fewer distinct customers are withheld from
    /// every answer), or set it: every rollup is recomputed at the new k and every cached
    /// answer dropped. Writers wait while it runs.
    Disclosure {
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        k: Option<u32>,
    },
    /// Fold the writers' category rows into one row per period now (the aggregator does it
    /// every ALTDATA_AGG_COMPACT_INTERVAL); answers are the same, cheaper to read.
    Compact,
    /// Resolve the review queue again with today's resolver (catalogue, aliases, rules): rows
    /// regrouped under today's group keys, and groups assigned where every text of theirs now
    /// resolves automatically to one merchant (an ordinary assign: audited, undoable). Run it
    /// after a resolver release.
    ReviewAgain {
        /// Say what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Serve the HTTP API, the dashboard and the review tool.
    Gateway,
    /// Every role in one process: migrate, ingest the landing zone, aggregate, serve.
    Demo {
        #[arg(long, default_value = "demo-data")]
        landing: String,
    },
    /// Resolve descriptors from a CSV with a `descriptor` column; needs no running service.
    Resolve {
        /// Input CSV file, or - for standard input.
        #[arg(long, default_value = "-")]
        input: String,
    },
    /// Manage API keys: create (optionally expiring), list, revoke, rotate.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// List each prefix's JetStream streams and storage reservation, or remove leftovers.
    Prefixes {
        #[command(subcommand)]
        command: Option<PrefixesCommand>,
    },
    /// Print aggregate updates as they arrive (altdata.agg.v1.daily.>).
    Tail {
        /// Only this merchant.
        #[arg(long)]
        merchant: Option<i64>,
    },
    /// Answer the canonical question straight from PostgreSQL.
    Ask {
        #[arg(long, default_value = "coffee_shop")]
        category: String,
        #[arg(long, default_value = "CA")]
        state: String,
        /// Last day of the current week (default: the newest day with data).
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
    },
}

#[derive(Subcommand)]
enum PrefixesCommand {
    /// One line per prefix: streams, reserved and stored MiB, idle time (the default).
    List,
    /// Delete the streams and Redis keys of the named prefixes (never ALTDATA_PREFIX's).
    Remove {
        prefixes: Vec<String>,
        /// Also every test (t_...) and benchmark (bench_...) prefix idle this long, e.g. 1h.
        #[arg(long, value_name = "IDLE", value_parser = humantime::parse_duration)]
        leftovers: Option<Duration>,
    },
}

/// Reads a role's settings, turning every problem into one readable error.
fn settings<T>(read: impl FnOnce(&mut EnvReader) -> T) -> anyhow::Result<T> {
    let mut env = EnvReader::from_process();
    let value = read(&mut env);
    env.finish().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(value)
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate => migrate_command().await,
        Command::Generate {
            days,
            cards,
            seed,
            start,
            out,
            gzip,
            provider,
            truth_detail,
            resends,
            panel_growth,
            panel_growth_day,
        } => {
            let start = start.unwrap_or_else(|| {
                chrono::Utc::now().date_naive() - chrono::Duration::days(i64::from(days))
            });
            let config = altdata_generate::GenerateConfig {
                days,
                cards,
                seed,
                start,
                out,
                gzip,
                provider,
                progress: true,
                truth_detail,
                resends,
                panel_growth,
                panel_growth_day,
            };
            let catalogue = Catalogue::embedded().map_err(|e| anyhow::anyhow!("catalogue: {e}"))?;
            let report =
                altdata_generate::run(&config, &catalogue, &Shutdown::on_signals()).await?;
            let seconds = report.elapsed.as_secs_f64().max(1e-9);
            println!(
                "generated {} rows in {} files ({:.1} MB) in {:.2}s: {:.0} rows/s; valid {}, broken {}, duplicates {}, local merchants {}",
                report.rows,
                report.files.len(),
                report.bytes as f64 / 1e6,
                seconds,
                report.rows as f64 / seconds,
                report.valid_rows,
                report.broken_rows,
                report.duplicate_rows,
                report.local_rows
            );
            Ok(())
        }
        Command::Ingest {
            once,
            provider,
            retry_failed,
        } => {
            let mut ingest = settings(altdata_ingest::IngestSettings::from_env)?;
            ingest.retry_failed = retry_failed;
            if let Some(provider) = provider {
                ingest.default_provider = provider;
            }
            let shutdown = Shutdown::on_signals();
            match once {
                Some(locations) => {
                    ingest.progress = true;
                    let reports = altdata_ingest::run_once(ingest, &locations, shutdown).await?;
                    for report in &reports {
                        println!("{}", altdata_ingest::summary_line(report));
                    }
                    println!("{}", altdata_ingest::total_line(&reports));
                    if reports.iter().any(|r| {
                        matches!(
                            r.outcome,
                            altdata_ingest::FileOutcome::Failed { .. }
                                | altdata_ingest::FileOutcome::FailedBefore { .. }
                        )
                    }) {
                        bail!("some files failed; see above");
                    }
                    Ok(())
                }
                None => Ok(altdata_ingest::run(ingest, shutdown).await?),
            }
        }
        Command::Aggregate { until_idle, shards } => {
            let mut aggregator = settings(|env| {
                if let Some(shards) = &shards {
                    // The flag wins over the environment.
                    let count = env.integer("ALTDATA_SHARDS", 16u32, 1, 1024);
                    if let Err(problem) =
                        altdata_aggregator::config::parse_shard_list(shards, count)
                    {
                        env.problem(format!("--shards {shards}: {problem}"));
                    }
                }
                altdata_aggregator::AggregatorSettings::from_env(env)
            })?;
            if let Some(shards) = shards {
                aggregator.shards = altdata_aggregator::config::parse_shard_list(
                    &shards,
                    aggregator.connections.shard_count,
                )
                .map_err(|e| anyhow::anyhow!(e))?;
            }
            aggregator.until_idle = until_idle;
            let report = altdata_aggregator::run(aggregator, Shutdown::on_signals()).await?;
            for (shard, exit) in &report.shards {
                tracing::info!(shard, exit = ?exit, "shard finished");
            }
            Ok(())
        }
        Command::RecoverShard { shard, from } => {
            let aggregator = settings(altdata_aggregator::AggregatorSettings::from_env)?;
            let recovery =
                altdata_aggregator::recover::recover_shard(aggregator, shard, from).await?;
            println!(
                "shard {}: rebuilt from the identity record from {} ({} merchants: {} merchant days; every rollup recomputed from {} daily cells); offset now {}",
                recovery.shard,
                recovery.from,
                recovery.merchants,
                recovery.rebuilt.merchant_days,
                recovery.rebuilt.cells,
                recovery.offset
            );
            Ok(())
        }
        Command::Compact => {
            let connections = settings(altdata_common::ConnectionSettings::read)?;
            let pool = connect::postgres_pool(&connections).await?;
            let client = pool.get().await?;
            let started = std::time::Instant::now();
            let done = altdata_facts::compact(&client).await?;
            println!(
                "{} category rows folded into one row per period in {:.2} s",
                done.folded,
                started.elapsed().as_secs_f64()
            );
            if !done.skipped.is_empty() {
                println!(
                    "left for the next run (a writer held the table past the lock timeout): {}",
                    done.skipped.join(", ")
                );
            }
            Ok(())
        }
        Command::ReviewAgain { dry_run } => {
            let connections = settings(altdata_common::ConnectionSettings::read)?;
            let pool = connect::postgres_pool(&connections).await?;
            let resolver = altdata_ingest::load_resolver(&pool).await?;
            let mut client = pool.get().await?;
            let report = altdata_gateway::review::again::resolve_again(
                &mut client,
                &resolver,
                "review-again (resolver)",
                dry_run,
            )
            .await
            .map_err(altdata_gateway::error::ApiError::from)?;
            let verb = if dry_run { "would be" } else { "were" };
            println!(
                "{} groups waiting: {} {verb} regrouped ({} rows); {} {verb} assigned ({} rows, ${:.2}) to {} merchants; {} resolve to more than one merchant and wait for a person",
                report.groups_examined,
                report.groups_regrouped,
                report.rows_regrouped,
                report.groups_assigned,
                report.rows_assigned,
                altdata_gateway::review::dollars(report.cents_assigned),
                report.assigned.len(),
                report.groups_split
            );
            for (merchant_id, groups) in &report.assigned {
                let name = resolver
                    .merchant(*merchant_id)
                    .map_or("?", |m| m.name.as_str());
                let sample: Vec<&str> = groups.iter().take(3).map(String::as_str).collect();
                println!(
                    "  {merchant_id} {name}: {} groups, e.g. {}",
                    groups.len(),
                    sample.join(" | ")
                );
            }
            Ok(())
        }
        Command::Disclosure { k } => {
            let connections = settings(altdata_common::ConnectionSettings::read)?;
            let pool = connect::postgres_pool(&connections).await?;
            let mut client = pool.get().await?;
            let rule = match k {
                Some(k) => {
                    let transaction = client.transaction().await?;
                    let rule = altdata_facts::set_disclosure_k(&transaction, k).await?;
                    transaction.commit().await?;
                    rule
                }
                None => altdata_facts::disclosure(&**client).await?,
            };
            println!(
                "k = {}: {} of {} daily cells (merchant x state x day) released",
                rule.k, rule.released_cells, rule.cells
            );
            Ok(())
        }
        Command::Gateway => {
            let gateway = settings(altdata_gateway::GatewaySettings::read)?;
            altdata_gateway::run(gateway, Shutdown::on_signals()).await?;
            Ok(())
        }
        Command::Demo { landing } => demo(landing).await,
        Command::Resolve { input } => resolve_command(&input),
        Command::Keys { command } => crate::keys::run(command).await,
        Command::Prefixes { command } => {
            let connections = settings(altdata_common::ConnectionSettings::read)?;
            match command.unwrap_or(PrefixesCommand::List) {
                PrefixesCommand::List => crate::prefixes::list(&connections).await,
                PrefixesCommand::Remove {
                    prefixes,
                    leftovers,
                } => crate::prefixes::remove(&connections, &prefixes, leftovers).await,
            }
        }
        Command::Tail { merchant } => tail(merchant).await,
        Command::Ask {
            category,
            state,
            as_of,
        } => {
            let gateway = settings(altdata_gateway::GatewaySettings::read)?;
            let pool = connect::postgres_pool(&gateway.connections).await?;
            println!("{}", ask(&pool, &category, &state, as_of).await?);
            Ok(())
        }
    }
}

async fn migrate_command() -> anyhow::Result<()> {
    let connections = settings(altdata_common::ConnectionSettings::read)?;
    let (mut client, connection) = tokio_postgres::connect(
        connections.database_url.expose_secret(),
        tokio_postgres::NoTls,
    )
    .await
    .context("cannot connect to DATABASE_URL")?;
    tokio::spawn(connection);
    let report = migrate::run(&mut client).await?;
    for name in &report.applied {
        println!("applied {name}");
    }
    let merchants = migrate::load_catalogue(
        &mut client,
        "data/merchants.csv (embedded)",
        altdata_domain::catalogue::EMBEDDED_CATALOGUE,
    )
    .await?;
    println!(
        "schema up to date: {} applied now, {} already applied; catalogue: {merchants} merchants",
        report.applied.len(),
        report.already_applied
    );
    if let Ok(key) = std::env::var("ALTDATA_BOOTSTRAP_ADMIN_KEY") {
        let installed =
            altdata_gateway::auth::store::install_bootstrap_key(&mut client, key.trim()).await?;
        println!(
            "bootstrap admin key: {}",
            if installed {
                "installed"
            } else {
                "already present (kept as it is, revoked or not)"
            }
        );
    }
    Ok(())
}

fn resolve_command(input: &str) -> anyhow::Result<()> {
    let catalogue = Catalogue::embedded().map_err(|e| anyhow::anyhow!("catalogue: {e}"))?;
    let resolver = altdata_resolver::Resolver::new(&catalogue, Vec::new(), Vec::new(), Vec::new());
    let stdout = std::io::stdout().lock();
    let report = if input == "-" {
        altdata_resolver::resolve_csv(&resolver, std::io::stdin().lock(), stdout)?
    } else {
        let file = std::fs::File::open(input).with_context(|| format!("cannot open {input}"))?;
        altdata_resolver::resolve_csv(&resolver, file, stdout)?
    };
    eprintln!("{report:?}");
    Ok(())
}

async fn tail(merchant: Option<i64>) -> anyhow::Result<()> {
    use altdata_proto::Message;
    use futures::StreamExt;
    let connections = settings(altdata_common::ConnectionSettings::read)?;
    let client = connect::nats(&connections.nats_url).await?;
    let subjects = connections.subjects();
    let subject = match merchant {
        Some(id) => subjects.agg_daily(id),
        None => connections.prefix.subject("agg.v1.daily.>"),
    };
    let mut updates = client.subscribe(subject.clone()).await?;
    eprintln!("listening on {subject} (Ctrl-C to stop)");
    let shutdown = Shutdown::on_signals();
    loop {
        let message = tokio::select! {
            message = updates.next() => message,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let Some(message) = message else {
            return Ok(());
        };
        match altdata_proto::v1::AggregateUpdate::decode(message.payload.as_ref()) {
            Ok(u) => println!(
                "merchant {} {} {} {}: gross ${:.2} ({} sales), refunds ${:.2} ({}), ~{} customers",
                u.merchant_id,
                u.category,
                u.region,
                altdata_domain::epoch_days_to_date(u.metric_date),
                u.total_spend_cents as f64 / 100.0,
                u.transaction_count,
                u.refund_cents as f64 / 100.0,
                u.refund_count,
                u.customers
            ),
            Err(error) => eprintln!("undecodable update on {}: {error}", message.subject),
        }
    }
}

/// Week-over-week growth of net spend in a category and state, answered by the gateway's own
/// growth query (the same k-anonymity rule as the API), without the cache.
pub async fn ask(
    pool: &deadpool_postgres::Pool,
    category: &str,
    state: &str,
    as_of: Option<chrono::NaiveDate>,
) -> anyhow::Result<String> {
    use altdata_gateway::query::{
        self, CategoryName, Day, FromText, GrowthParams, GrowthPeriod, GrowthQuery, Scope, States,
    };
    let as_of = match as_of {
        Some(day) => day,
        None => {
            let mut client = pool.get().await?;
            let snapshot = query::read_snapshot(&mut client).await?;
            query::newest_day(&snapshot)
                .await?
                .context("no aggregates yet")?
        }
    };
    let CategoryName(category) =
        CategoryName::from_text(category).map_err(|e| anyhow::anyhow!("category={e}"))?;
    let params = GrowthParams {
        category: Some(CategoryName(category)),
        state: Some(States::from_text(state).map_err(|e| anyhow::anyhow!("state={e}"))?),
        period: Some(GrowthPeriod::Wow),
        as_of: Some(Day(as_of)),
        ..Default::default()
    };
    let query = GrowthQuery::parse(&params, chrono::Utc::now().date_naive())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let scope = Scope::Category(category);
    let answer = altdata_gateway::api::growth::compute_growth(pool, &query, &scope)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let k = answer.k_anonymity;
    // A missing value says why (no data before the panel, withheld cells), never $0.
    let why = |reason: Option<query::Missing>| match reason {
        Some(query::Missing::Withheld) => format!("withheld (every cell under {k} customers)"),
        Some(reason) => reason.words().to_owned(),
        None => "n/a".to_owned(),
    };
    let dollars =
        |value: Option<f64>, reason| value.map_or_else(|| why(reason), |v| format!("${v:.2}"));
    let growth = answer.growth.map_or_else(
        || format!("n/a ({})", why(answer.growth_reason)),
        |g| format!("{:+.2}%", g * 100.0),
    );
    Ok(format!(
        "week-over-week net spend, {category} in {state}, week ending {as_of}: {} vs {} the week before: {growth} (data as of {})",
        dollars(answer.current, answer.current_reason),
        dollars(answer.previous, answer.previous_reason),
        answer.as_of_data.map_or("never".to_owned(), |t| t.to_rfc3339()),
    ))
}

async fn demo(landing: String) -> anyhow::Result<()> {
    migrate_command().await?;
    let shutdown = Shutdown::on_signals();
    let mut ingest = settings(altdata_ingest::IngestSettings::from_env)?;
    ingest.landing = landing.clone();
    ingest.progress = true;
    let reports = altdata_ingest::run_once(
        ingest.clone(),
        std::slice::from_ref(&landing),
        shutdown.clone(),
    )
    .await?;
    for report in &reports {
        println!("{}", altdata_ingest::summary_line(report));
    }
    let mut aggregator = settings(altdata_aggregator::AggregatorSettings::from_env)?;
    aggregator.until_idle = true;
    let started = std::time::Instant::now();
    altdata_aggregator::run(aggregator.clone(), shutdown.clone()).await?;
    println!(
        "aggregated to completion in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let pool = connect::postgres_pool(&aggregator.connections).await?;
    let gateway = settings(altdata_gateway::GatewaySettings::read)?;
    println!("{}", ask(&pool, "coffee_shop", "CA", None).await?);
    if std::env::var("ALTDATA_DEMO_EXIT").is_ok_and(|v| v == "1") {
        return Ok(());
    }
    // Keep running every role: new files dropped in the landing zone flow through.
    let analyst =
        altdata_gateway::create_key(&pool, altdata_gateway::Role::Analyst, "demo analyst").await?;
    let admin =
        altdata_gateway::create_key(&pool, altdata_gateway::Role::Admin, "demo admin").await?;
    let gateway = altdata_gateway::build(gateway).await?;
    let addr = gateway.addr;
    aggregator.until_idle = false;
    let mut tasks = altdata_common::TaskGroup::new(shutdown.clone());
    tasks.spawn("ingest", altdata_ingest::run(ingest, shutdown.clone()));
    let aggregate_shutdown = shutdown.clone();
    tasks.spawn("aggregate", async move {
        altdata_aggregator::run(aggregator, aggregate_shutdown)
            .await
            .map(|_| ())
    });
    tasks.spawn("gateway", gateway.run_until_stopped(shutdown.clone()));
    let as_of = {
        let mut client = pool.get().await?;
        let snapshot = altdata_gateway::query::read_snapshot(&mut client).await?;
        altdata_gateway::query::newest_day(&snapshot)
            .await?
            .context("no aggregates yet")?
    };
    let path =
        format!("/v1/growth?metric=spend&category=coffee_shop&state=CA&period=wow&as_of={as_of}");
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let answer = reqwest::Client::new()
        .get(format!("http://{host}:{}{path}", addr.port()))
        .bearer_auth(&analyst)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status);
    let answer = match answer {
        Ok(response) => response
            .text()
            .await
            .unwrap_or_else(|e| format!("(no answer: {e})")),
        Err(error) => format!("(no answer: {error})"),
    };
    println!();
    println!("The canonical question through the gateway:");
    println!(
        "  curl -s -H 'Authorization: Bearer {analyst}' 'http://{host}:{}{path}'",
        addr.port()
    );
    println!("  {answer}");
    println!();
    // The pages ask for a key in a sign-in form: a key in a URL would reach history and logs.
    println!(
        "Dashboard:    http://{host}:{}/  (sign in with the analyst key)",
        addr.port()
    );
    println!(
        "Review tool:  http://{host}:{}/review.html  (sign in with the admin key)",
        addr.port()
    );
    println!("API document: http://{host}:{}/openapi.json", addr.port());
    println!("Analyst key:  {analyst}");
    println!("Admin key:    {admin}");
    println!("Next: drop more provider files into the landing zone (they flow through), map held descriptors in the review tool, or run `altdata tail` to watch updates. Ctrl-C stops every role.");
    tasks
        .join(Duration::from_secs(20))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}
