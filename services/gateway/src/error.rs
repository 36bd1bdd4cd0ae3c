//! Errors of the gateway: [`ApiError`] is what a request can end with, mapped to one JSON
//! shape by its `IntoResponse`; [`GatewayError`] is what starting the gateway can end with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Duration;

/// Seconds a client should wait before retrying while PostgreSQL is unreachable.
const DATABASE_RETRY_AFTER_SECONDS: u64 = 5;

/// The error of one request. Messages are lowercase sentences safe to show to the caller;
/// details that are not (SQL errors) are logged, never returned.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Well-formed, but refused for what it says (a rule the resolver could not use).
    #[error("{0}")]
    Unprocessable(String),
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("rate limit exceeded: retry in {retry_after_seconds} s")]
    TooManyRequests { retry_after_seconds: u64 },
    #[error("too many failed authentications from this address: retry in {retry_after_seconds} s")]
    AuthThrottled { retry_after_seconds: u64 },
    #[error("the database is unavailable; retry shortly")]
    DatabaseUnavailable,
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_seconds: u64,
    },
    #[error("internal error")]
    Internal,
}

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `invalid_parameter` or `rate_limited`.
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// The code of a 400 that refuses a combination of parameters each valid alone (two scopes,
/// `from` after `to`): a rule between parameters, which the OpenAPI document can only state
/// in prose. `make contract` tells these refusals apart by this code.
pub const CONFLICTING_PARAMETERS: &str = "conflicting_parameters";
/// The code of a 400 that refuses a `from`..`to` range longer than the limit.
pub const RANGE_TOO_LONG: &str = "range_too_long";

impl ApiError {
    /// A 400 with code `invalid_parameter`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code: "invalid_parameter",
            message: message.into(),
        }
    }

    /// A 400 with code [`CONFLICTING_PARAMETERS`].
    pub fn conflicting(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code: CONFLICTING_PARAMETERS,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } | ApiError::AuthThrottled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::DatabaseUnavailable | ApiError::Unavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::TooManyRequests { .. } | ApiError::AuthThrottled { .. } => "rate_limited",
            ApiError::DatabaseUnavailable => "database_unavailable",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal => "internal",
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests {
                retry_after_seconds,
            }
            | ApiError::AuthThrottled {
                retry_after_seconds,
            }
            | ApiError::Unavailable {
                retry_after_seconds,
                ..
            } => Some(*retry_after_seconds),
            ApiError::DatabaseUnavailable => Some(DATABASE_RETRY_AFTER_SECONDS),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> ApiError {
        // Every pool error means no connection could be had: the database is down, slow to
        // accept, or the pool is exhausted. All of them are worth a retry.
        tracing::warn!(error = %error, "no database connection for a request");
        ApiError::DatabaseUnavailable
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> ApiError {
        if database_error_is_retryable(&error) {
            tracing::warn!(error = %error, "database unavailable during a request");
            ApiError::DatabaseUnavailable
        } else {
            tracing::error!(error = %error, "database error during a request");
            ApiError::Internal
        }
    }
}

/// Connection loss, shutdown, resource exhaustion, statement timeouts, serialisation
/// failures and deadlocks are retryable; anything else (a bug) is not.
pub fn database_error_is_retryable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        None => true,
        Some(code) => {
            let code = code.code();
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "40001"
                || code == "40P01"
        }
    }
}

/// What can stop the gateway from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Settings(#[from] altdata_common::SettingsError),
    #[error(transparent)]
    Connect(#[from] altdata_common::connect::ConnectError),
    #[error("cannot bind the HTTP listener on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the cache invalidation consumer: {0}")]
    Consumer(String),
    #[error("a gateway task failed: {0}")]
    Task(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("invalid role {0:?}: expected analyst or admin")]
    InvalidRole(String),
}

impl From<tokio_postgres::Error> for GatewayError {
    fn from(error: tokio_postgres::Error) -> GatewayError {
        GatewayError::Database(error.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for GatewayError {
    fn from(error: deadpool_postgres::PoolError) -> GatewayError {
        GatewayError::Database(error.to_string())
    }
}

/// Rounds a wait up to whole seconds, at least one, for `Retry-After`.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}
