//! Health, readiness and Prometheus metrics routes, shared by every service.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Buckets, in seconds, of every `*request_duration_seconds` metric. A histogram rather than
/// the exporter's default summary: summaries' quantiles cannot be combined across replicas,
/// and the latency alert (k8s/overlays/prod/prometheusrule.yaml) takes one over all gateways.
const REQUEST_SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the global metrics recorder once per process and returns its handle.
pub fn prometheus() -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("request_duration_seconds".to_owned()),
                    REQUEST_SECONDS_BUCKETS,
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Whether this service is ready to take work; flipped by the service itself.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `/healthz` (the process answers), `/readyz` (it can do its work) and `/metrics`.
pub fn ops_router(readiness: Readiness) -> Router {
    let handle = prometheus();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(readiness): State<Readiness>| async move {
                if readiness.is_ready() {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }),
        )
        .with_state(readiness)
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move { handle.map(|h| h.render()).unwrap_or_default() }
            }),
        )
}

/// Serves the ops routes on `addr` until shutdown (for roles without their own HTTP server).
pub async fn serve_ops(
    addr: std::net::SocketAddr,
    readiness: Readiness,
    shutdown: crate::Shutdown,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, ops_router(readiness))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
