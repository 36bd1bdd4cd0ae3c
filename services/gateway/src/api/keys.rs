//! `/v1/admin/keys`: list, create, revoke and rotate API keys (admin keys only). Lists never
//! carry a secret; a created or rotated key is shown once, in an answer that no cache keeps.
//! Every action writes its audit row (`api_key_audit`), and a revocation (a rotation revokes
//! the old key) is announced on NATS so that every gateway refuses the key within a second.

use crate::auth::revocation;
use crate::auth::store::{self, KeyInfo, NewKey, Revocation};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::query::{Bounded, PageLimit, PageParams};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
    pub limit: i64,
    pub offset: i64,
}

/// The schema of the names [`store::check_name`] accepts: at most
/// [`store::MAX_NAME_CHARS`] characters, none a control character.
fn name_schema() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .max_length(Some(store::MAX_NAME_CHARS))
        .pattern(Some(crate::query::PRINTABLE_PATTERN))
        .into()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub role: Role,
    /// Who or what the key is for; shown in lists and the audit trail.
    #[serde(default)]
    #[schema(schema_with = name_schema)]
    pub name: String,
    /// A lifetime such as `30d`, `12h` or `90m` (1 minute to 3660 days); without it the key
    /// never expires.
    #[schema(
        pattern = r"^([1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d|[12][0-9]{3}d|3[0-5][0-9]{2}d|36[0-5][0-9]d|3660d)$",
        example = "30d"
    )]
    pub expires_in: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// The new key's lifetime (as `expires_in` of a new key); without it the new key keeps the
    /// old one's expiry.
    #[schema(
        pattern = r"^([1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d|[12][0-9]{3}d|3[0-5][0-9]{2}d|36[0-5][0-9]d|3660d)$",
        example = "30d"
    )]
    pub expires_in: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RevokeAnswer {
    #[serde(flatten)]
    pub revocation: Revocation,
    /// Whether the revocation reached NATS, so that every gateway refuses the key within a
    /// second; when false they do so within `ALTDATA_API_KEY_CACHE_TTL`.
    pub revocation_announced: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RotateAnswer {
    /// The new key: `key` is its secret, shown this once.
    #[serde(flatten)]
    pub new_key: NewKey,
    /// Whether the old key's revocation reached NATS (see [`RevokeAnswer`]).
    pub revocation_announced: bool,
}

/// Every key, newest first: id, prefix, name, role, state and dates; never a secret.
#[utoipa::path(
    get, path = "/v1/admin/keys", tag = "admin", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Keys", body = KeyList),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<KeyList>, ApiError> {
    let limit = PageLimit::or(params.limit, 100, state.inner.settings.limits.max_page_size)?;
    let offset = params.offset.map_or(0, |Bounded(offset)| offset);
    let keys = store::list(&state.inner.db, limit, offset).await?;
    Ok(Json(KeyList {
        keys,
        limit,
        offset,
    }))
}

/// Creates a key; the answer holds the key, which cannot be shown again.
#[utoipa::path(
    post, path = "/v1/admin/keys", tag = "admin", request_body = CreateKey,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; `key` is shown this once", body = NewKey),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<Response, ApiError> {
    let lifetime = lifetime(body.expires_in.as_deref())?;
    let created = store::create(
        &state.inner.db,
        body.role,
        &body.name,
        lifetime,
        &principal.actor(),
    )
    .await?;
    tracing::info!(key_id = created.info.id, prefix = %created.info.prefix, role = body.role.as_str(), actor = %principal.actor(), "API key created");
    Ok(secret_answer(StatusCode::CREATED, &created))
}

/// Revokes a key: every gateway refuses it within a second. Revoking a revoked key changes
/// nothing.
#[utoipa::path(
    post, path = "/v1/admin/keys/{id}/revoke", tag = "admin",
    params(("id" = i64, Path, description = "The key's id (see GET /v1/admin/keys)")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked", body = RevokeAnswer),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "The key making the request", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RevokeAnswer>, ApiError> {
    not_itself(&principal, id, "revoke")?;
    let revocation = store::revoke(&state.inner.db, id, &principal.actor()).await?;
    let revocation_announced = forget_everywhere(&state, id).await;
    if revocation.newly_revoked {
        tracing::info!(key_id = id, prefix = %revocation.info.prefix, actor = %principal.actor(), "API key revoked");
    }
    Ok(Json(RevokeAnswer {
        revocation,
        revocation_announced,
    }))
}

/// Replaces a key by a new secret with the same name and role; the old key stops working at
/// once (on every gateway within a second). The answer holds the new key, shown this once.
#[utoipa::path(
    post, path = "/v1/admin/keys/{id}/rotate", tag = "admin",
    params(("id" = i64, Path, description = "The key's id (see GET /v1/admin/keys)")),
    request_body(content = Option<RotateKey>, description = "Optional: the new key's lifetime"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rotated; `key` is the new key, shown this once", body = RotateAnswer),
        (status = 400, description = "Invalid id or body", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "The key is revoked, or expired without a new lifetime, or is the key making the request", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn rotate(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The body is optional: none, `null` and `{}` all keep the old expiry.
    let body: RotateKey = if body.is_empty() {
        RotateKey::default()
    } else {
        serde_json::from_slice::<Option<RotateKey>>(&body)
            .map_err(|error| ApiError::invalid(format!("invalid JSON body: {error}")))?
            .unwrap_or_default()
    };
    not_itself(&principal, id, "rotate")?;
    let lifetime = lifetime(body.expires_in.as_deref())?;
    let rotated = store::rotate(&state.inner.db, id, lifetime, &principal.actor()).await?;
    let announced = forget_everywhere(&state, id).await;
    tracing::info!(key_id = id, new_key_id = rotated.info.id, prefix = %rotated.info.prefix, actor = %principal.actor(), "API key rotated");
    Ok(secret_answer(
        StatusCode::OK,
        &RotateAnswer {
            new_key: rotated,
            revocation_announced: announced,
        },
    ))
}

/// A key does not revoke or rotate itself through the API: an admin who did would lock
/// themselves out mid-session. Another admin key or `altdata keys` can.
fn not_itself(principal: &Principal, id: i64, action: &str) -> Result<(), ApiError> {
    if principal.key_id == id {
        return Err(ApiError::Conflict(format!(
            "key {id} is the key making this request: {action} it with another admin key or \
             `altdata keys {action} {id}`"
        )));
    }
    Ok(())
}

fn lifetime(expires_in: Option<&str>) -> Result<Option<Duration>, ApiError> {
    Ok(expires_in.map(store::parse_lifetime).transpose()?)
}

/// Drops key `id` here at once, and tells the other gateways.
async fn forget_everywhere(state: &AppState, id: i64) -> bool {
    state.inner.keys.forget(id);
    match &state.inner.nats {
        Some(nats) => revocation::announce(nats, &state.inner.subjects, id).await,
        None => false,
    }
}

/// A JSON answer holding a secret: no cache, shared or private, may keep it.
fn secret_answer<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
