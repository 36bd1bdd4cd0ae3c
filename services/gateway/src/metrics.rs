//! Prometheus metrics of the gateway: handles made once, labels bounded (route patterns,
//! never raw paths).

use crate::auth::KeyStatus;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, histogram, Counter};
use std::time::Instant;

/// Counter handles, created once at start.
#[derive(Clone)]
pub struct Metrics {
    pub cache_hit: Counter,
    pub cache_miss: Counter,
    pub cache_bypass: Counter,
    /// Every time Redis could not be used (lookup, store or not connected).
    pub cache_unavailable: Counter,
    pub invalidations_applied: Counter,
    pub invalidations_rejected: Counter,
    pub invalidation_failures: Counter,
    pub rate_limited: Counter,
    /// Requests refused with 429 because their address failed to authenticate too often.
    pub auth_throttled: Counter,
    auth_unknown: Counter,
    auth_revoked: Counter,
    auth_expired: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let lookups = "altdata_gateway_cache_lookups_total";
        let failures = "altdata_gateway_auth_failures_total";
        Metrics {
            cache_hit: counter!(lookups, "result" => "hit"),
            cache_miss: counter!(lookups, "result" => "miss"),
            cache_bypass: counter!(lookups, "result" => "bypass"),
            cache_unavailable: counter!("altdata_gateway_cache_unavailable_total"),
            invalidations_applied: counter!("altdata_gateway_invalidations_applied_total"),
            invalidations_rejected: counter!("altdata_gateway_invalidations_rejected_total"),
            invalidation_failures: counter!("altdata_gateway_invalidation_failures_total"),
            rate_limited: counter!("altdata_gateway_rate_limited_total"),
            auth_throttled: counter!("altdata_gateway_auth_throttled_total"),
            auth_unknown: counter!(failures, "reason" => "unknown"),
            auth_revoked: counter!(failures, "reason" => "revoked"),
            auth_expired: counter!(failures, "reason" => "expired"),
        }
    }
}

impl Metrics {
    /// Counts a refused key by why it was refused.
    pub fn auth_failure(&self, status: &KeyStatus) {
        match status {
            KeyStatus::Valid(_) => {}
            KeyStatus::Unknown => self.auth_unknown.increment(1),
            KeyStatus::Revoked => self.auth_revoked.increment(1),
            KeyStatus::Expired => self.auth_expired.increment(1),
        }
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// Records the latency of every request by route pattern, method and status.
pub async fn track_latency(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method: &'static str = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    };
    let response = next.run(request).await;
    histogram!(
        "altdata_gateway_request_duration_seconds",
        "route" => route,
        "method" => method,
        "status" => response.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}
