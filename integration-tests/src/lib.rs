//! The integration-test harness: [`spawn_app`] gives each test a fresh database (migrated,
//! catalogue loaded), its own `ALTDATA_PREFIX` (subjects, streams, consumers, Redis keys)
//! and connections to the real PostgreSQL, NATS and Redis from `make stack` (`.stack/env`).
//! Everything is removed when the [`TestApp`] is dropped, so tests run in parallel and leave
//! nothing behind. [`gateway::spawn_gateway`] adds a gateway (router, state, API keys) on top.

pub mod gateway;

use altdata_common::connect::{self, StreamLimits, Subjects};
use altdata_common::settings::{
    ConnectionSettings, Prefix, DEFAULT_DATABASE_URL, DEFAULT_NATS_URL, DEFAULT_REDIS_URL,
};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

/// A per-test pipeline namespace on the shared servers.
pub struct TestApp {
    pub prefix: Prefix,
    pub database_name: String,
    pub connections: ConnectionSettings,
    pub pool: deadpool_postgres::Pool,
    pub nats: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    pub subjects: Subjects,
    admin_url: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// A URL on the same server as `base`, naming another database (query string kept).
pub fn with_database(base: &str, database: &str) -> String {
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let (server, rest) = match base[authority_start..].find('/') {
        Some(slash) => base.split_at(authority_start + slash),
        None => (base, ""),
    };
    let query = rest.find('?').map_or("", |q| &rest[q..]);
    format!("{server}/{database}{query}")
}

/// Creates a fresh, migrated database and a unique prefix with its streams.
pub async fn spawn_app() -> TestApp {
    spawn_app_with_txn_streams(1).await
}

/// [`spawn_app`] with the 4 shards spread over `txn_streams` transaction streams.
pub async fn spawn_app_with_txn_streams(txn_streams: u32) -> TestApp {
    altdata_common::telemetry::init_for_tests();
    let suffix: String = {
        let mut rng = rand::thread_rng();
        (0..10)
            .map(|_| char::from(b'a' + rng.gen_range(0..26)))
            .collect()
    };
    let prefix = Prefix::parse(&format!("t_{suffix}")).unwrap_or_default();
    let database_name = format!("altdata_test_{suffix}");
    let base_url = env_or("DATABASE_URL", DEFAULT_DATABASE_URL);
    let admin_url = with_database(&base_url, "postgres");
    let database_url = with_database(&base_url, &database_name);

    let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot reach PostgreSQL at {admin_url} (run `make stack`): {e}")
        });
    tokio::spawn(connection);
    admin
        .batch_execute(&format!("CREATE DATABASE {database_name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create the test database: {e}"));

    let (mut client, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
    tokio::spawn(connection);
    altdata_common::migrate::run(&mut client)
        .await
        .unwrap_or_else(|e| panic!("migrations failed: {e}"));
    altdata_common::migrate::load_catalogue(
        &mut client,
        "embedded",
        altdata_domain::catalogue::EMBEDDED_CATALOGUE,
    )
    .await
    .unwrap_or_else(|e| panic!("catalogue load failed: {e}"));

    // Small reservations: many tests share the server's store limit at once.
    let limits = StreamLimits {
        txn_max_bytes: 256 * 1024 * 1024,
        agg_max_bytes: 32 * 1024 * 1024,
        cache_max_bytes: 16 * 1024 * 1024,
        txn_streams,
        ..StreamLimits::default()
    };
    let connections = ConnectionSettings {
        database_url: SecretString::from(database_url),
        nats_url: env_or("NATS_URL", DEFAULT_NATS_URL),
        redis_url: env_or("REDIS_URL", DEFAULT_REDIS_URL),
        prefix: prefix.clone(),
        shard_count: 4,
        database_pool_size: 8,
        streams: limits.clone(),
        redis_command_timeout: Duration::from_secs(2),
    };
    let pool = connect::postgres_pool(&connections)
        .await
        .unwrap_or_else(|e| panic!("pool: {e}"));
    let nats = connect::nats(&connections.nats_url)
        .await
        .unwrap_or_else(|e| panic!("NATS (run `make stack`): {e}"));
    let jetstream = async_nats::jetstream::new(nats.clone());
    let subjects = connections.subjects();
    connect::ensure_streams(&jetstream, &subjects, &limits)
        .await
        .unwrap_or_else(|e| panic!("streams: {e}"));
    TestApp {
        prefix,
        database_name,
        connections,
        pool,
        nats,
        jetstream,
        subjects,
        admin_url,
    }
}

/// One (merchant, region, day) cell to seed: sums, counts and a range of customer keys.
#[derive(Debug, Clone)]
pub struct SeedCell<'a> {
    pub merchant_id: i64,
    pub region: &'a str,
    /// `YYYY-MM-DD`.
    pub day: &'a str,
    pub gross_cents: i64,
    pub sales: i64,
    pub refund_cents: i64,
    pub refunds: i64,
    pub customers: std::ops::Range<i64>,
}

impl TestApp {
    /// Sets the disclosure rule's k (`altdata disclosure --k`): every rollup recomputed at it.
    pub async fn set_disclosure_k(&self, k: u32) {
        let mut client = self.client().await;
        let transaction = client
            .transaction()
            .await
            .unwrap_or_else(|e| panic!("transaction: {e}"));
        altdata_facts::set_disclosure_k(&transaction, k)
            .await
            .unwrap_or_else(|e| panic!("set k: {e}"));
        transaction
            .commit()
            .await
            .unwrap_or_else(|e| panic!("commit: {e}"));
    }

    /// Adds cells to every aggregate table through the fact writer (the aggregator's own path),
    /// with category rows of `shard` (-1 for the review shard), in one transaction.
    pub async fn seed(&self, cells: &[SeedCell<'_>], shard: i32) {
        let mut batch = altdata_facts::Cells::default();
        for cell in cells {
            let day = chrono::NaiveDate::parse_from_str(cell.day, "%Y-%m-%d")
                .unwrap_or_else(|e| panic!("date {}: {e}", cell.day));
            let key = altdata_facts::CellKey::new(
                cell.merchant_id,
                cell.region,
                altdata_domain::date_to_epoch_days(day),
            );
            let delta = batch.cells.entry(key).or_default();
            delta.gross_cents += cell.gross_cents;
            delta.sale_count += cell.sales;
            delta.refund_cents += cell.refund_cents;
            delta.refund_count += cell.refunds;
            delta
                .customers
                .extend(cell.customers.clone().map(|k| k as u64));
            batch.transactions += usize::try_from(cell.sales + cell.refunds).unwrap_or(0);
        }
        let shard = match u32::try_from(shard) {
            Ok(shard) => altdata_facts::CategoryShard::Stream(shard),
            Err(_) => altdata_facts::CategoryShard::Review,
        };
        let mut client = self.client().await;
        let transaction = client
            .transaction()
            .await
            .unwrap_or_else(|e| panic!("seed transaction: {e}"));
        altdata_facts::apply(&transaction, &batch, shard, "seed")
            .await
            .unwrap_or_else(|e| panic!("seed cells: {e}"));
        transaction
            .commit()
            .await
            .unwrap_or_else(|e| panic!("seed commit: {e}"));
    }

    /// Ingests `locations` once, then aggregates until every shard is idle (bounded): the whole
    /// pipeline in this process. Returns ingest's reports.
    pub async fn run_pipeline(&self, locations: &[String]) -> Vec<altdata_ingest::FileReport> {
        self.run_pipeline_with(locations, &[]).await
    }

    /// [`TestApp::run_pipeline`] with extra ingest settings (`ALTDATA_PROFILES_DIR`, ...).
    pub async fn run_pipeline_with(
        &self,
        locations: &[String],
        extra: &[(&str, &str)],
    ) -> Vec<altdata_ingest::FileReport> {
        let mut env = self.env_reader(extra);
        let ingest = altdata_ingest::IngestSettings::from_env(&mut env);
        let reports = altdata_ingest::run_once(ingest, locations, altdata_common::Shutdown::new())
            .await
            .unwrap_or_else(|e| panic!("ingest: {e}"));
        let mut settings = extra.to_vec();
        settings.push(("ALTDATA_AGG_WINDOW_AGE", "200ms"));
        let mut env = self.env_reader(&settings);
        let mut aggregate = altdata_aggregator::AggregatorSettings::from_env(&mut env);
        aggregate.until_idle = true;
        tokio::time::timeout(
            Duration::from_secs(120),
            altdata_aggregator::run(aggregate, altdata_common::Shutdown::new()),
        )
        .await
        .unwrap_or_else(|_| panic!("aggregation did not finish"))
        .unwrap_or_else(|e| panic!("aggregate: {e}"));
        reports
    }

    /// Environment variables naming this app's servers and prefix, for settings readers.
    pub fn env(&self) -> std::collections::HashMap<String, String> {
        [
            (
                "DATABASE_URL",
                self.connections.database_url.expose_secret().to_owned(),
            ),
            ("NATS_URL", self.connections.nats_url.clone()),
            ("REDIS_URL", self.connections.redis_url.clone()),
            ("ALTDATA_PREFIX", self.prefix.to_string()),
            ("ALTDATA_SHARDS", self.connections.shard_count.to_string()),
            (
                "ALTDATA_TXN_STREAMS",
                self.connections.streams.txn_streams.to_string(),
            ),
            (
                "ALTDATA_CUSTOMER_KEY_SECRET",
                "test-secret-0123456789abcdef".to_owned(),
            ),
            ("ALTDATA_TXN_MAX_MB", "256".to_owned()),
            ("ALTDATA_AGG_MAX_MB", "32".to_owned()),
            ("ALTDATA_CACHE_MAX_MB", "16".to_owned()),
            // The production default (500 ms) makes a Redis reply delayed by a loaded CI
            // machine a cache miss, which tests that count hits would take for a bug.
            ("ALTDATA_REDIS_TIMEOUT", "2s".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A settings reader over [`TestApp::env`] plus `extra`.
    pub fn env_reader(&self, extra: &[(&str, &str)]) -> altdata_common::EnvReader {
        let mut vars = self.env();
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        altdata_common::EnvReader::from_map(vars)
    }

    /// This app's database as `altdata_gateway_test`, a login user in the read-only role
    /// `altdata_reader` (schema/0010), created on first use (trust authentication).
    pub async fn reader_database_url(&self) -> String {
        const READER: &str = "altdata_gateway_test";
        let (admin, connection) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL: {e}"));
        tokio::spawn(connection);
        // Roles are shared by every database of the server, and tests run in parallel.
        admin
            .batch_execute(&format!(
                "DO $$ BEGIN
                     CREATE ROLE {READER} LOGIN IN ROLE altdata_reader;
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                 END $$"
            ))
            .await
            .unwrap_or_else(|e| panic!("create the reader login: {e}"));
        let mut url = url::Url::parse(self.connections.database_url.expose_secret())
            .unwrap_or_else(|e| panic!("DATABASE_URL: {e}"));
        url.set_username(READER)
            .and_then(|()| url.set_password(None))
            .unwrap_or_else(|()| panic!("DATABASE_URL cannot take a user name"));
        url.to_string()
    }

    pub async fn client(&self) -> deadpool_postgres::Object {
        self.pool
            .get()
            .await
            .unwrap_or_else(|e| panic!("pool: {e}"))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Clean up on a thread of its own: Drop cannot await, and the test's runtime may be
        // shutting down.
        let admin_url = self.admin_url.clone();
        let database = self.database_name.clone();
        let nats_url = self.connections.nats_url.clone();
        let redis_url = self.connections.redis_url.clone();
        let prefix = self.prefix.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                // Every stream the prefix owns (found by subject) and its Redis keys.
                altdata_common::prefixes::remove(&nats_url, &redis_url, &prefix).await;
                if let Ok((admin, connection)) =
                    tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// The one value of a query returning one row of one column, on a pooled client
/// ([`TestApp::client`]); panics naming the query otherwise.
pub async fn scalar<T>(client: &deadpool_postgres::Object, sql: &str) -> T
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// Polls `check` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= until {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes events as ingest does, in `TransactionBatch`es of one shard each (up to 100
/// events, in order), and waits until the stream stored every one.
pub async fn publish_events(app: &TestApp, events: &[altdata_proto::v1::TransactionEvent]) {
    use altdata_proto::v1::TransactionBatch;
    use altdata_proto::Message;
    let shards = app.connections.shard_count;
    let mut by_shard: std::collections::BTreeMap<u32, Vec<_>> = Default::default();
    for event in events {
        by_shard
            .entry(altdata_domain::shard_of(event.merchant_id, shards))
            .or_default()
            .push(event.clone());
    }
    let mut acks = Vec::new();
    for (shard, events) in by_shard {
        for batch in events.chunks(100) {
            let id = format!(
                "t:{}:{}:{}",
                batch[0].provider,
                batch[0].txn_id,
                batch.len()
            );
            let payload = TransactionBatch {
                schema_version: altdata_proto::SCHEMA_VERSION,
                events: batch.to_vec(),
            }
            .encode_to_vec();
            let message = async_nats::jetstream::message::PublishMessage::build()
                .payload(payload.into())
                .message_id(id);
            let subject = app.subjects.txn_shard(shard);
            acks.push(
                app.jetstream
                    .send_publish(subject, message)
                    .await
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
    }
    for ack in acks {
        ack.await.unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Every transaction event in the app's stream, with the `Nats-Msg-Id` of the batch that
/// carried it, in stream order.
pub async fn stream_events(app: &TestApp) -> Vec<(String, altdata_proto::v1::TransactionEvent)> {
    stream_batches(app)
        .await
        .into_iter()
        .flat_map(|(id, events)| events.into_iter().map(move |event| (id.clone(), event)))
        .collect()
}

/// Asserts that the stream holds each batch once (distinct Msg-Ids) and each version of a
/// row once (a row's version, or its retraction, is never in two batches).
pub async fn assert_stream_holds_each_once(app: &TestApp) {
    let batches = stream_batches(app).await;
    let ids: HashSet<&str> = batches.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), batches.len(), "each Msg-Id once");
    let mut versions = HashSet::new();
    for event in batches.iter().flat_map(|(_, events)| events) {
        let version = (
            &event.provider,
            &event.txn_id,
            event.retraction,
            event.amount_cents,
            event.metric_date,
            event.customer_key,
            event.merchant_id,
        );
        assert!(versions.insert(version), "published twice: {event:?}");
    }
}

/// Every batch in the app's transaction streams: its `Nats-Msg-Id` and events, in stream
/// order (stream by stream).
pub async fn stream_batches(
    app: &TestApp,
) -> Vec<(String, Vec<altdata_proto::v1::TransactionEvent>)> {
    let mut batches = Vec::new();
    for (name, _) in app.subjects.txn_streams() {
        batches.extend(read_batches(app, &name).await);
    }
    batches
}

async fn read_batches(
    app: &TestApp,
    stream_name: &str,
) -> Vec<(String, Vec<altdata_proto::v1::TransactionEvent>)> {
    use altdata_proto::Message;
    use futures::StreamExt;
    let stream = app
        .jetstream
        .get_stream(stream_name)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: app.prefix.subject("txn.v1.*"),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut stream_info = stream.clone();
    let total = stream_info
        .info()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .state
        .messages;
    let mut messages = consumer.messages().await.unwrap_or_else(|e| panic!("{e}"));
    let mut batches = Vec::new();
    while (batches.len() as u64) < total {
        let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_secs(5), messages.next()).await
        else {
            break;
        };
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        let batch = altdata_proto::v1::TransactionBatch::decode(message.payload.as_ref())
            .unwrap_or_else(|e| panic!("undecodable batch: {e}"));
        batches.push((id, batch.events));
    }
    batches
}
