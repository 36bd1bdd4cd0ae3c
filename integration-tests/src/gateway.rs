//! The gateway's test harness, built on [`spawn_app`]: [`spawn_gateway`] adds API keys, a
//! gateway state and its router (requests go through `tower::ServiceExt::oneshot`, no
//! socket), and helpers to seed merchants, aggregate cells and commit markers. The database,
//! prefix, server URLs and clean-up are the [`TestApp`]'s, so they come from the environment
//! (`.stack/env`) and are removed when the [`GatewayApp`] is dropped, even on panic.
//! [`GatewayApp::serve`] runs a further gateway over the same database and prefix on a socket,
//! with NATS (cache invalidations, key revocations); [`http`] talks to it from any loopback
//! address, so a test can be several clients.

use crate::{spawn_app, TestApp};
use altdata_common::{EnvReader, Shutdown};
use altdata_gateway::{app, create_key, AppState, GatewaySettings, Role};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use fred::interfaces::ClientLike;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tower::ServiceExt;

/// A test's gateway over its own [`TestApp`].
pub struct GatewayApp {
    pub router: Router,
    pub state: AppState,
    pub admin_key: String,
    pub analyst_key: String,
    /// The gateway's settings as variables: the app's, the gateway's test defaults, then the
    /// test's overrides. [`settings_from`] turns them (or a changed copy) into settings.
    pub env: HashMap<String, String>,
    /// Declared last so that it is dropped last: its `Drop` removes the database, the streams
    /// and the Redis keys once the gateway state above has let go of them.
    pub test_app: TestApp,
}

/// One answer of the router.
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

/// A [`spawn_app`] world with a gateway over it. `overrides` replace gateway settings
/// (`ALTDATA_K_ANONYMITY`, `REDIS_URL`, ...) for this test only.
///
/// The merchant catalogue that `spawn_app` loads is removed: the gateway tests seed their own
/// few merchants (with ids the catalogue also uses) and assert exact counts and search results.
pub async fn spawn_gateway(overrides: &[(&str, &str)]) -> GatewayApp {
    let test_app = spawn_app().await;
    test_app
        .client()
        .await
        .batch_execute(
            "DELETE FROM dim_merchants WHERE NOT unattributed;
             SELECT ensure_daily_partitions('2025-01-01', '2026-12-31');",
        )
        .await
        .unwrap_or_else(|e| panic!("empty catalogue and partitions: {e}"));
    gateway_over(test_app, overrides).await
}

/// A gateway over an existing [`TestApp`], its catalogue and data as they are (a test that ran
/// the pipeline first); `overrides` as for [`spawn_gateway`].
pub async fn gateway_over(test_app: TestApp, overrides: &[(&str, &str)]) -> GatewayApp {
    // k is the database's: an override sets it there (before the test seeds any cell).
    if let Some((_, k)) = overrides
        .iter()
        .find(|(name, _)| *name == "ALTDATA_K_ANONYMITY")
    {
        let k = k
            .parse()
            .unwrap_or_else(|e| panic!("ALTDATA_K_ANONYMITY={k}: {e}"));
        test_app.set_disclosure_k(k).await;
    }
    let overrides: Vec<(&str, &str)> = overrides
        .iter()
        .copied()
        .filter(|(name, _)| *name != "ALTDATA_K_ANONYMITY")
        .collect();
    let mut env = test_app.env();
    // Answers read as deployments read them: through a login user in `altdata_reader`
    // (schema/0010), so a read the role may not make fails here.
    env.insert(
        "ALTDATA_READONLY_DATABASE_URL".to_owned(),
        test_app.reader_database_url().await,
    );
    for (name, value) in [
        ("ALTDATA_HTTP_ADDR", "127.0.0.1:0"),
        ("ALTDATA_WEB_DIR", "/nonexistent/web/dist"),
        ("ALTDATA_DB_POOL_SIZE", "4"),
    ]
    .into_iter()
    .chain(overrides.iter().copied())
    {
        env.insert(name.to_owned(), value.to_owned());
    }
    let state = AppState::connect(settings_from(&env), None)
        .await
        .unwrap_or_else(|e| panic!("gateway state: {e}"));
    wait_for_redis(&state, &test_app).await;
    let admin_key = create_key(&test_app.pool, Role::Admin, "test admin")
        .await
        .unwrap_or_else(|e| panic!("admin key: {e}"));
    let analyst_key = create_key(&test_app.pool, Role::Analyst, "test analyst")
        .await
        .unwrap_or_else(|e| panic!("analyst key: {e}"));
    GatewayApp {
        router: app(state.clone()),
        state,
        admin_key,
        analyst_key,
        env,
        test_app,
    }
}

/// A gateway serving on a socket (`altdata_gateway::build` and `run_until_stopped`, as
/// `altdata gateway` does); stopped when dropped.
pub struct ServedGateway {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The same gateway's router, for requests without a socket.
    pub router: Router,
    shutdown: Shutdown,
}

impl Drop for ServedGateway {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// One answer read off a socket.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: String,
}

impl RawAnswer {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (field, value) = line.split_once(':')?;
            field.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Sends one HTTP/1.1 request over a new connection from `from` (a loopback address such as
/// 127.0.0.2) and reads the answer to its end. `headers` are extra header lines.
pub async fn http(
    addr: SocketAddr,
    from: IpAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| panic!("socket: {e}"));
    socket
        .bind(SocketAddr::new(from, 0))
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    let mut stream = socket
        .connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .unwrap_or_else(|_| panic!("no answer to {method} {path} within 10 s"))
        .unwrap_or_else(|e| panic!("read: {e}"));
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"));
    RawAnswer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Gateway settings from variables such as [`GatewayApp::env`].
pub fn settings_from(env: &HashMap<String, String>) -> GatewaySettings {
    GatewaySettings::from_env(&mut EnvReader::from_map(env.clone()))
        .unwrap_or_else(|e| panic!("gateway settings: {e}"))
}

/// Waits (bounded) until the Redis client is connected, unless a test pointed the gateway at
/// another (unreachable) Redis on purpose.
async fn wait_for_redis(state: &AppState, test_app: &TestApp) {
    if let Some(client) = state.inner.cache.client() {
        if state.inner.settings.connections.redis_url == test_app.connections.redis_url {
            let _ = tokio::time::timeout(Duration::from_secs(5), client.wait_for_connect()).await;
        }
    }
}

impl GatewayApp {
    /// Starts another gateway over this app's database and prefix, serving on 127.0.0.1 (any
    /// port), with this app's settings and `overrides`.
    pub async fn serve(&self, overrides: &[(&str, &str)]) -> ServedGateway {
        let mut env = self.env.clone();
        for (name, value) in overrides {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        let gateway = altdata_gateway::build(settings_from(&env))
            .await
            .unwrap_or_else(|e| panic!("gateway builds (is the project's nats-server up?): {e}"));
        let addr = gateway.addr;
        let state = gateway.state.clone();
        wait_for_redis(&state, &self.test_app).await;
        let shutdown = Shutdown::new();
        tokio::spawn(gateway.run_until_stopped(shutdown.clone()));
        ServedGateway {
            addr,
            router: app(state.clone()),
            state,
            shutdown,
        }
    }

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
        let request = builder
            .body(body)
            .unwrap_or_else(|e| panic!("request: {e}"));
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {});
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("body: {e}"));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A GET with the analyst's key.
    pub async fn get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, Some(&self.analyst_key), &[], None)
            .await
    }

    /// A GET with the analyst's key and extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.request(Method::GET, path, Some(&self.analyst_key), headers, None)
            .await
    }

    /// A GET with the admin's key.
    pub async fn admin_get(&self, path: &str) -> Answer {
        self.request(Method::GET, path, Some(&self.admin_key), &[], None)
            .await
    }

    /// A JSON POST with the admin's key.
    pub async fn admin_post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.request(Method::POST, path, Some(&self.admin_key), &[], Some(body))
            .await
    }

    /// A connection to the test database.
    pub async fn db(&self) -> deadpool_postgres::Object {
        self.test_app.client().await
    }

    pub async fn merchant(&self, id: i64, name: &str, category: &str, brand: &str) {
        self.db()
            .await
            .execute(
                "INSERT INTO dim_merchants (id, name, category, brand_id) VALUES ($1, $2, $3, $4)",
                &[&id, &name, &category, &brand],
            )
            .await
            .unwrap_or_else(|e| panic!("insert merchant: {e}"));
    }

    /// Adds one (merchant, region, day) cell to every aggregate table through the fact writer,
    /// as the aggregator does: daily, weekly and monthly merchant rows, and category rows of
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
        let cell = crate::SeedCell {
            merchant_id,
            region,
            day,
            gross_cents,
            sales,
            refund_cents,
            refunds: i64::from(refund_cents > 0),
            customers: first_customer..first_customer + customers,
        };
        self.test_app.seed(&[cell], shard).await;
    }

    /// Marks the shard's last commit (what `X-Data-As-Of` reports).
    pub async fn commit_marker(&self, shard: i32, at: &str) {
        let at: chrono::DateTime<chrono::Utc> =
            at.parse().unwrap_or_else(|e| panic!("timestamp {at}: {e}"));
        self.db()
            .await
            .execute(
                "INSERT INTO shard_offsets (shard, stream_seq, applied_events, last_commit_at)
                 VALUES ($1, 10, 10, $2)
                 ON CONFLICT (shard) DO UPDATE SET last_commit_at = excluded.last_commit_at",
                &[&shard, &at],
            )
            .await
            .unwrap_or_else(|e| panic!("shard offset: {e}"));
    }
}
