//! One harness for the gateway's integration tests: a fresh PostgreSQL database per test
//! (migrated), a unique prefix for Redis keys and NATS streams, API keys, and helpers to
//! seed aggregates and send requests. Everything is dropped at the end, even on panic.

#![allow(dead_code)]

use altdata_common::EnvReader;
use altdata_gateway::{app, create_key, AppState, GatewaySettings, Role};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use fred::prelude::*;
use rand::Rng;
use std::collections::HashMap;
use std::time::Duration;
use tower::ServiceExt;

pub const POSTGRES_ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const NATS_URL: &str = "nats://127.0.0.1:14222";

/// A test's own world.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub pool: deadpool_postgres::Pool,
    pub db_name: String,
    pub prefix: String,
    pub admin_key: String,
    pub analyst_key: String,
    pub env: HashMap<String, String>,
}

/// One answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn unique_suffix() -> String {
    format!(
        "{:012x}",
        rand::thread_rng().gen::<u64>() & 0xffff_ffff_ffff
    )
}

pub fn database_url(db_name: &str) -> String {
    format!("postgres://postgres@127.0.0.1:5432/{db_name}")
}

/// A migrated database of its own and a gateway state over it. `env` overrides settings.
pub async fn spawn_app(overrides: &[(&str, &str)]) -> TestApp {
    altdata_common::telemetry::init_for_tests();
    let suffix = unique_suffix();
    let db_name = format!("gw_test_{suffix}");
    let prefix = format!("gwt{suffix}");
    let (admin, connection) = tokio_postgres::connect(POSTGRES_ADMIN, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL must run on 127.0.0.1:5432");
    tokio::spawn(connection);
    admin
        .batch_execute(&format!("CREATE DATABASE {db_name}"))
        .await
        .expect("create the test database");
    let (mut client, connection) =
        tokio_postgres::connect(&database_url(&db_name), tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
    tokio::spawn(connection);
    altdata_common::migrate::run(&mut client)
        .await
        .expect("migrations apply");
    client
        .batch_execute("SELECT ensure_daily_partitions('2025-01-01', '2026-12-31')")
        .await
        .expect("partitions");

    let mut env: HashMap<String, String> = [
        ("DATABASE_URL", database_url(&db_name)),
        ("REDIS_URL", REDIS_URL.to_owned()),
        ("NATS_URL", NATS_URL.to_owned()),
        ("ALTDATA_PREFIX", prefix.clone()),
        ("ALTDATA_HTTP_ADDR", "127.0.0.1:0".to_owned()),
        ("ALTDATA_WEB_DIR", "/nonexistent/web/dist".to_owned()),
        ("ALTDATA_DB_POOL_SIZE", "4".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, value) in overrides {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    let settings = settings_from(&env);
    let state = AppState::connect(settings, None)
        .await
        .expect("state builds without servers");
    wait_for_redis(&state).await;
    let pool =
        altdata_common::connect::postgres_pool_lazy(&database_url(&db_name), 2).expect("test pool");
    let admin_key = create_key(&pool, Role::Admin, "test admin")
        .await
        .expect("admin key");
    let analyst_key = create_key(&pool, Role::Analyst, "test analyst")
        .await
        .expect("analyst key");
    TestApp {
        router: app(state.clone()),
        state,
        pool,
        db_name,
        prefix,
        admin_key,
        analyst_key,
        env,
    }
}

pub fn settings_from(env: &HashMap<String, String>) -> GatewaySettings {
    GatewaySettings::from_env(&mut EnvReader::from_map(env.clone())).expect("valid settings")
}

/// Waits (bounded) until the Redis client is connected, when Redis is supposed to be up.
async fn wait_for_redis(state: &AppState) {
    if let Some(client) = state.inner.cache.client() {
        if state.inner.settings.connections.redis_url == REDIS_URL {
            let _ = tokio::time::timeout(Duration::from_secs(5), client.wait_for_connect()).await;
        }
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some(json) => {
                builder = builder.header("content-type", "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let request = builder.body(body).expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, Some(&self.analyst_key), &[], None)
            .await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.request(Method::GET, path, Some(&self.analyst_key), headers, None)
            .await
    }

    pub async fn admin_post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.request(Method::POST, path, Some(&self.admin_key), &[], Some(body))
            .await
    }

    pub async fn db(&self) -> deadpool_postgres::Object {
        self.pool.get().await.expect("test database connection")
    }

    pub async fn merchant(&self, id: i64, name: &str, category: &str, brand: &str) {
        self.db()
            .await
            .execute(
                "INSERT INTO dim_merchants (id, name, category, brand_id) VALUES ($1, $2, $3, $4)",
                &[&id, &name, &category, &brand],
            )
            .await
            .expect("insert merchant");
    }

    /// Adds one (merchant, region, day) cell to every aggregate table, the way the
    /// aggregator does: daily, weekly and monthly merchant rows, and category rows of
    /// `shard`. Customers are keys `first_customer..first_customer + customers`.
    #[allow(clippy::too_many_arguments)]
    pub async fn cell(
        &self,
        merchant_id: i64,
        region: &str,
        day: &str,
        gross_cents: i64,
        sales: i64,
        refund_cents: i64,
        first_customer: i64,
        customers: i64,
        shard: i32,
    ) {
        let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("date");
        let refunds: i64 = i64::from(refund_cents > 0);
        self.db()
            .await
            .execute(
                SEED_CELL,
                &[
                    &merchant_id,
                    &region,
                    &day,
                    &gross_cents,
                    &sales,
                    &refund_cents,
                    &refunds,
                    &first_customer,
                    &customers,
                    &shard,
                ],
            )
            .await
            .expect("seed cell");
    }

    /// Marks the shards' last commit (what `X-Data-As-Of` reports).
    pub async fn commit_marker(&self, shard: i32, at: &str) {
        let at: chrono::DateTime<chrono::Utc> = at.parse().expect("timestamp");
        self.db()
            .await
            .execute(
                "INSERT INTO shard_offsets (shard, stream_seq, applied_events, last_commit_at)
                 VALUES ($1, 10, 10, $2)
                 ON CONFLICT (shard) DO UPDATE SET last_commit_at = excluded.last_commit_at",
                &[&shard, &at],
            )
            .await
            .expect("shard offset");
    }
}

const SEED_CELL: &str = "
WITH cell AS MATERIALIZED (
    SELECT $1::bigint AS merchant_id, $2::text AS region, $3::date AS metric_date,
           $4::bigint AS gross, $5::bigint AS sales, $6::bigint AS refund, $7::bigint AS refunds,
           coalesce((SELECT hll_add_agg(hll_hash_bigint(k)) FROM generate_series($8::bigint, $8::bigint + $9::bigint - 1) k), hll_empty()) AS customers,
           (SELECT category FROM dim_merchants WHERE id = $1) AS category
),
d AS (
    INSERT INTO agg_daily_merchant_spend AS t (merchant_id, region, metric_date, total_spend_cents, transaction_count, refund_cents, refund_count, customers)
    SELECT merchant_id, region, metric_date, gross, sales, refund, refunds, customers FROM cell
    ON CONFLICT (merchant_id, region, metric_date) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
),
w AS (
    INSERT INTO agg_weekly_merchant_spend AS t (merchant_id, region, week_start, total_spend_cents, transaction_count, refund_cents, refund_count, customers)
    SELECT merchant_id, region, date_trunc('week', metric_date::timestamp)::date, gross, sales, refund, refunds, customers FROM cell
    ON CONFLICT (merchant_id, region, week_start) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
),
m AS (
    INSERT INTO agg_monthly_merchant_spend AS t (merchant_id, region, month_start, total_spend_cents, transaction_count, refund_cents, refund_count, customers)
    SELECT merchant_id, region, date_trunc('month', metric_date::timestamp)::date, gross, sales, refund, refunds, customers FROM cell
    ON CONFLICT (merchant_id, region, month_start) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
),
cd AS (
    INSERT INTO agg_daily_category_region AS t (category, region, metric_date, shard, total_spend_cents, transaction_count, refund_cents, refund_count, customers)
    SELECT category, region, metric_date, $10::integer, gross, sales, refund, refunds, customers FROM cell
    ON CONFLICT (category, region, metric_date, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
),
cw AS (
    INSERT INTO agg_weekly_category_region AS t (category, region, week_start, shard, total_spend_cents, transaction_count, refund_cents, refund_count, customers)
    SELECT category, region, date_trunc('week', metric_date::timestamp)::date, $10::integer, gross, sales, refund, refunds, customers FROM cell
    ON CONFLICT (category, region, week_start, shard) DO UPDATE SET
        total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
        transaction_count = t.transaction_count + excluded.transaction_count,
        refund_cents = t.refund_cents + excluded.refund_cents,
        refund_count = t.refund_count + excluded.refund_count,
        customers = hll_union(t.customers, excluded.customers)
)
INSERT INTO agg_monthly_category_region AS t (category, region, month_start, shard, total_spend_cents, transaction_count, refund_cents, refund_count, customers)
SELECT category, region, date_trunc('month', metric_date::timestamp)::date, $10::integer, gross, sales, refund, refunds, customers FROM cell
ON CONFLICT (category, region, month_start, shard) DO UPDATE SET
    total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
    transaction_count = t.transaction_count + excluded.transaction_count,
    refund_cents = t.refund_cents + excluded.refund_cents,
    refund_count = t.refund_count + excluded.refund_count,
    customers = hll_union(t.customers, excluded.customers)";

impl Drop for TestApp {
    fn drop(&mut self) {
        let db_name = self.db_name.clone();
        let prefix = self.prefix.clone();
        // Clean up on a thread of its own: Drop cannot await, and this also runs on panic.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(cleanup(db_name, prefix));
        });
        let _ = cleanup.join();
    }
}

async fn cleanup(db_name: String, prefix: String) {
    if let Ok((admin, connection)) =
        tokio_postgres::connect(POSTGRES_ADMIN, tokio_postgres::NoTls).await
    {
        tokio::spawn(connection);
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
            .await;
    }
    if let Ok(config) = Config::from_url(REDIS_URL) {
        if let Ok(client) = Builder::from_config(config).build() {
            if client.init().await.is_ok() {
                let keys: Vec<String> = client
                    .custom(fred::cmd!("KEYS"), vec![format!("{prefix}:*")])
                    .await
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<i64, _> = client.del(keys).await;
                }
                let _ = client.quit().await;
            }
        }
    }
    if let Ok(Ok(nats)) =
        tokio::time::timeout(Duration::from_secs(2), async_nats::connect(NATS_URL)).await
    {
        let js = async_nats::jetstream::new(nats);
        let upper = prefix.to_ascii_uppercase();
        for name in ["TXN", "AGG", "CACHE"] {
            let _ = js.delete_stream(format!("{upper}_{name}")).await;
        }
    }
}
