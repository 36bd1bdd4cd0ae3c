//! The gateway: the HTTP query API (time series, growth overall and per state, top merchants,
//! search, freshness) with its OpenAPI document, the Redis answer cache and its invalidator,
//! API keys, the review queue for unresolved descriptors, and the dashboard's static files.
//!
//! # Layout
//! - [`config`]: typed settings from the environment.
//! - [`error`]: [`ApiError`] (one JSON error shape) and [`GatewayError`] (start-up).
//! - [`query`]: validated, bounded query parameters and the SQL that answers them.
//! - [`api`]: the data routes, their answers and the cache-aside glue.
//! - [`cache`]: answers in Redis keyed by canonical query and generation counters.
//! - [`invalidation`]: the durable JetStream consumer that bumps generation counters.
//! - [`auth`]: API keys (store, cache, revocation on NATS), roles, the per-key rate limit and
//!   the per-address limit on failed authentications.
//! - [`review`]: the review queue, assignment (with aggregate replay), rules, undo, audit.
//! - [`csv`]: CSV renderings of the answers.
//! - [`openapi`]: the OpenAPI 3 document, generated from the handlers.
//! - [`metrics`]: request latency and cache counters.
//! - [`serve`]: the accept loop (HTTP/1.1 with a header-read timeout, peer addresses).
//!
//! Start with [`build`] (binds the listener, so port 0 works in tests) and
//! [`Gateway::run_until_stopped`], or [`run`] for both; [`app`] builds the router alone so
//! handler tests need no socket.

pub mod api;
pub mod auth;
pub mod cache;
pub mod config;
pub mod csv;
pub mod error;
pub mod extract;
pub mod invalidation;
pub mod metrics;
pub mod openapi;
pub mod query;
pub mod review;
pub mod serve;

pub use auth::{create_key, Role};
pub use config::GatewaySettings;
pub use error::{ApiError, GatewayError};

use altdata_common::connect::{self, Subjects};
use altdata_common::ops::{ops_router, prometheus, Readiness};
use altdata_common::{Shutdown, TaskGroup};
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// How long tasks get to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);
/// How often readiness (PostgreSQL reachable) is checked.
const READINESS_INTERVAL: Duration = Duration::from_secs(2);
/// The pages' policy: scripts, styles and everything else from the gateway itself, no inline
/// script or style, no plugins, and no framing by any site (clickjacking of the review tool).
/// `data:` images: the pages' empty favicon.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

pub struct Inner {
    pub settings: GatewaySettings,
    /// The primary: admin writes and API keys.
    pub db: deadpool_postgres::Pool,
    /// Queries (may be a replica or a read-only role).
    pub read_db: deadpool_postgres::Pool,
    pub cache: cache::Cache,
    /// For `mapping.v1.changed` after a review decision; absent in socket-less tests.
    pub nats: Option<async_nats::Client>,
    pub subjects: Subjects,
    pub keys: auth::KeyCache,
    pub rate_limiter: auth::RateLimiter,
    pub auth_failures: auth::AuthFailureLimiter,
    pub metrics: metrics::Metrics,
    pub readiness: Readiness,
    /// Brand id -> merchant id; brands never change merchant, so this never expires.
    pub brands: Mutex<HashMap<String, i64>>,
    /// The disclosure rule's k as last read from the database (0 until then), part of every
    /// cache key; each answer reads its own from its snapshot.
    pub disclosure_k: std::sync::atomic::AtomicU32,
}

impl AppState {
    /// Builds the state without waiting for any server: pools connect on first use and Redis
    /// connects in the background, so the gateway starts (and degrades) while they are down.
    /// Remembers the disclosure rule's k read from the database.
    pub fn note_disclosure_k(&self, k: u32) {
        self.inner
            .disclosure_k
            .store(k, std::sync::atomic::Ordering::Relaxed);
    }

    pub async fn connect(
        settings: GatewaySettings,
        nats: Option<async_nats::Client>,
    ) -> Result<AppState, GatewayError> {
        let connections = &settings.connections;
        let db = connect::postgres_pool_lazy_bounded(
            connections.database_url.expose_secret(),
            connections.database_pool_size,
            query::STATEMENT_TIMEOUT,
        )?;
        let read_db = if settings.readonly_database_url.expose_secret()
            == connections.database_url.expose_secret()
        {
            db.clone()
        } else {
            connect::postgres_pool_lazy_bounded(
                settings.readonly_database_url.expose_secret(),
                connections.database_pool_size,
                query::STATEMENT_TIMEOUT,
            )?
        };
        let metrics = metrics::Metrics::new();
        let redis = match connect::redis(&connections.redis_url, connections.redis_command_timeout)
            .await
        {
            Ok(client) => Some(client),
            Err(error) => {
                tracing::warn!(error = %error, "no Redis client; every answer will come from PostgreSQL");
                None
            }
        };
        let cache = cache::Cache::new(
            redis,
            connections.prefix.clone(),
            settings.cache_ttl,
            metrics.clone(),
        );
        Ok(AppState {
            inner: Arc::new(Inner {
                subjects: connections.subjects(),
                keys: auth::KeyCache::new(settings.api_key_cache_ttl),
                rate_limiter: auth::RateLimiter::new(settings.rate_limit),
                auth_failures: auth::AuthFailureLimiter::new(settings.auth_failure_limit),
                settings,
                db,
                read_db,
                cache,
                nats,
                metrics,
                readiness: Readiness::default(),
                brands: Mutex::new(HashMap::new()),
                disclosure_k: std::sync::atomic::AtomicU32::new(0),
            }),
        })
    }
}

/// The whole HTTP surface. Data and admin routes need a key; health, metrics, the OpenAPI
/// document and the dashboard do not.
pub fn app(state: AppState) -> Router {
    let settings = &state.inner.settings;
    let admin = Router::new()
        .route("/v1/admin/review", get(review::queue::list_queue))
        .route("/v1/admin/review/assign", post(review::assign::assign))
        .route("/v1/admin/review/ignore", post(review::ignore::ignore))
        .route("/v1/admin/review/undo", post(review::undo::undo))
        .route(
            "/v1/admin/rules",
            post(review::rules::add_rule).get(review::rules::list_rules),
        )
        .route("/v1/admin/rules/preview", post(review::rules::preview_rule))
        .route("/v1/admin/audit", get(review::audit::audit_log))
        .route("/v1/admin/mapped-share", get(review::audit::mapped_share))
        .route("/v1/admin/files", get(review::files::list_files))
        .route("/v1/admin/cache/flush", post(api::admin::flush_cache))
        .route(
            "/v1/admin/keys",
            get(api::keys::list).post(api::keys::create),
        )
        .route("/v1/admin/keys/{id}/revoke", post(api::keys::revoke))
        .route("/v1/admin/keys/{id}/rotate", post(api::keys::rotate))
        .route_layer(middleware::from_fn(auth::require_admin));
    let keyed = Router::new()
        .route("/v1/timeseries", get(api::timeseries::timeseries))
        .route("/v1/growth", get(api::growth::growth))
        .route("/v1/growth/states", get(api::growth::growth_by_state))
        .route("/v1/overlap", get(api::overlap::overlap))
        .route("/v1/tickers", get(api::tickers::list_tickers))
        .route(
            "/v1/tickers/{symbol}/sales",
            get(api::tickers::ticker_sales),
        )
        .route("/v1/top", get(api::top::top))
        .route("/v1/changes", get(api::changes::changes))
        .route("/v1/merchants", get(api::reference::merchants))
        .route("/v1/categories", get(api::reference::categories))
        .route("/v1/freshness", get(api::reference::freshness))
        .merge(admin)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    let router = Router::new()
        .merge(keyed)
        .route("/openapi.json", get(openapi::serve))
        .route("/v1/{*rest}", any(unknown_route))
        .with_state(state.clone())
        .merge(ops_router(state.inner.readiness.clone()));
    let router = if settings.web_dir.is_dir() {
        // ServeDir refuses `..` and absolute components, so nothing outside the directory
        // can be read.
        router.fallback_service(ServeDir::new(&settings.web_dir))
    } else {
        router.route("/", get(placeholder_page))
    };
    let router = router
        .route_layer(middleware::from_fn(metrics::track_latency))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(RequestBodyLimitLayer::new(
            settings.request_body_limit_bytes,
        ))
        .layer(middleware::map_response_with_state(
            state.clone(),
            json_for_layer_errors,
        ))
        .layer(TraceLayer::new_for_http());
    with_security_headers(router)
}

/// Headers that make the pages safe to open: the content security policy, no framing, no
/// MIME sniffing, no referrer. On every answer (harmless on JSON and CSV), so no page can
/// be served without them.
fn with_security_headers(router: Router) -> Router {
    let headers = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    headers.into_iter().fold(
        router,
        |router, (name, value): (HeaderName, &'static str)| {
            router.layer(SetResponseHeaderLayer::overriding(
                name,
                HeaderValue::from_static(value),
            ))
        },
    )
}

async fn unknown_route() -> ApiError {
    ApiError::NotFound("no such route; see /openapi.json".to_owned())
}

async fn placeholder_page() -> Html<&'static str> {
    Html(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Altdata Explorer</title></head>\
         <body><h1>Altdata Explorer</h1><p>The dashboard is not built on this server. \
         The API is described in <a href=\"/openapi.json\">/openapi.json</a>.</p></body></html>",
    )
}

/// The timeout and body-limit layers answer in plain text; give them the JSON error shape.
async fn json_for_layer_errors(State(state): State<AppState>, response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge {
            limit_bytes: state.inner.settings.request_body_limit_bytes,
        }
        .into_response(),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable {
            message: "the request took too long; retry shortly or narrow the query".to_owned(),
            retry_after_seconds: 1,
        }
        .into_response(),
        _ => response,
    }
}

/// A gateway whose listener is bound, ready to serve.
pub struct Gateway {
    pub addr: SocketAddr,
    pub state: AppState,
    listener: tokio::net::TcpListener,
    invalidator: invalidation::Invalidator,
    revocations: auth::revocation::RevocationListener,
}

/// Connects, creates the invalidation consumer, subscribes to key revocations, and binds
/// `ALTDATA_HTTP_ADDR`.
pub async fn build(settings: GatewaySettings) -> Result<Gateway, GatewayError> {
    let _ = prometheus();
    let nats = connect::nats(&settings.connections.nats_url).await?;
    let subjects = settings.connections.subjects();
    let invalidator =
        invalidation::Invalidator::create(&nats, &subjects, &settings.connections.streams).await?;
    let revocations = auth::revocation::RevocationListener::subscribe(&nats, &subjects).await?;
    let addr = settings.http_addr;
    let state = AppState::connect(settings, Some(nats)).await?;
    // The first answers' cache keys carry the real k, not the 0 of "not read yet".
    read_disclosure_k(&state).await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| GatewayError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| GatewayError::Bind { addr, source })?;
    Ok(Gateway {
        addr,
        state,
        listener,
        invalidator,
        revocations,
    })
}

impl Gateway {
    /// Serves until `shutdown`, then drains in-flight requests (bounded).
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), GatewayError> {
        let Gateway {
            addr,
            state,
            listener,
            invalidator,
            revocations,
        } = self;
        tracing::info!(%addr, "gateway listening");
        let mut tasks = TaskGroup::new(shutdown.clone());
        let router = app(state.clone());
        tasks.spawn(
            "http server",
            serve::serve(
                listener,
                router,
                state.inner.settings.header_read_timeout,
                shutdown.clone(),
            ),
        );
        tasks.spawn(
            "key revocations",
            revocations.run(state.clone(), shutdown.clone()),
        );
        tasks.spawn(
            "cache invalidator",
            invalidator.run(state.inner.cache_handle(), shutdown.clone()),
        );
        let probe_state = state.clone();
        let probe_shutdown = shutdown.clone();
        tasks.spawn("readiness probe", async move {
            probe_readiness(probe_state, probe_shutdown).await;
            Ok::<(), GatewayError>(())
        });
        tasks
            .join(DRAIN)
            .await
            .map_err(|error| GatewayError::Task(error.to_string()))
    }
}

/// Builds and serves until `shutdown`.
pub async fn run(settings: GatewaySettings, shutdown: Shutdown) -> Result<(), GatewayError> {
    build(settings).await?.run_until_stopped(shutdown).await
}

impl Inner {
    /// What the invalidator needs to bump generations.
    pub fn cache_handle(&self) -> invalidation::GenerationWriter {
        invalidation::GenerationWriter::new(
            self.cache.client(),
            self.settings.connections.prefix.clone(),
            self.metrics.clone(),
        )
    }
}

/// Reads the disclosure rule's k (within a second) and remembers it; `None` while PostgreSQL
/// does not answer.
async fn read_disclosure_k(state: &AppState) -> Option<u32> {
    let k = tokio::time::timeout(Duration::from_secs(1), async {
        let client = state.inner.read_db.get().await.ok()?;
        let row = client
            .query_one("SELECT k FROM disclosure", &[])
            .await
            .ok()?;
        u32::try_from(row.get::<_, i32>(0)).ok()
    })
    .await
    .ok()
    .flatten();
    if let Some(k) = k {
        state.note_disclosure_k(k);
    }
    k
}

/// Ready while PostgreSQL answers within a second; the answer is the disclosure rule's k.
async fn probe_readiness(state: AppState, shutdown: Shutdown) {
    loop {
        let k = read_disclosure_k(&state).await;
        state.inner.readiness.set(k.is_some());
        tokio::select! {
            _ = tokio::time::sleep(READINESS_INTERVAL) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// A header value from text that is ASCII by construction (numbers, dates, fixed words).
pub(crate) fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
