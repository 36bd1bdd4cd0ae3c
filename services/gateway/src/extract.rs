//! Request extractors whose rejections are [`ApiError`]s (one JSON error shape) rather than
//! axum's plain-text ones.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer};

/// Query-string parameters, typed; a rejection is a 400 that names the parameter.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Reads a query string into `T`. A value refused by its parser (`query::values`) says
/// `"<text>" is not valid: ...`, and the parameter's name goes in front of it; serde's own
/// refusals (an unknown or repeated parameter) name it themselves.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        if message.starts_with('"') && path != "." {
            ApiError::invalid(format!("{path}={message}"))
        } else {
            ApiError::invalid(message)
        }
    })
}

/// Path parameters; a rejection is a 400 that names the problem.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// A JSON body; a rejection is a 400, or a 413 past the body limit.
pub struct ApiJson<T>(pub T);

impl<T> FromRequest<AppState> for ApiJson<T>
where
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge {
                    limit_bytes: state.inner.settings.request_body_limit_bytes,
                })
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::invalid(
                "send the body as JSON with Content-Type: application/json",
            )),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// An integer field of a JSON body, read as JSON Schema reads `integer`: any number with no
/// fractional part, so `5.0` is 5 (serde alone refuses it). Use with
/// `#[serde(deserialize_with = "integer")]`.
pub fn integer<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|value| value.fract() == 0.0 && value.abs() < 9.0e18)
            .map(|value| value as i64)
    });
    whole
        .and_then(|value| T::try_from(value).ok())
        .ok_or_else(|| de::Error::custom(format!("{number} is not valid: expected an integer")))
}

/// [`integer`] for an optional field: `null` or absent is `None`. Use with
/// `#[serde(default, deserialize_with = "optional_integer")]`.
pub fn optional_integer<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    match Option::<serde_json::Number>::deserialize(deserializer)? {
        None => Ok(None),
        Some(number) => integer(number).map(Some).map_err(de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        #[serde(deserialize_with = "integer")]
        id: i64,
        #[serde(default, deserialize_with = "optional_integer")]
        priority: Option<i32>,
    }

    fn body(json: &str) -> Result<Body, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_are_read_as_json_schema_reads_them() {
        assert_eq!(
            body(r#"{"id": 5.0, "priority": 7.0}"#),
            Ok(Body {
                id: 5,
                priority: Some(7)
            })
        );
        assert_eq!(
            body(r#"{"id": -3, "priority": null}"#),
            Ok(Body {
                id: -3,
                priority: None
            })
        );
        assert_eq!(
            body(r#"{"id": 1}"#),
            Ok(Body {
                id: 1,
                priority: None
            })
        );
        assert!(body(r#"{"id": 1.5}"#).is_err());
        assert!(body(r#"{"id": "1"}"#).is_err());
        assert!(body(r#"{"id": 1, "priority": 3000000000}"#).is_err());
        assert!(body(r#"{"id": 1e300}"#).is_err());
    }
}
