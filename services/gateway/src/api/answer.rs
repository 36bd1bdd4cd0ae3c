//! What every data answer shares: the output format, the cache-aside path every cacheable
//! answer takes (lookup by canonical query and generations, compute from one read-only
//! snapshot on a miss, store, and say which in `X-Cache`, `Age`, `X-Data-As-Of`), the subject
//! of an answer and the note that says what is withheld.

use crate::cache::{CacheStatus, CachedAnswer, Dependency};
use crate::csv::{render_csv, CsvTable};
use crate::error::ApiError;
use crate::query::{OutputFormat, Scope, ScopeParam};
use crate::{header_value, AppState};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::future::Future;
use utoipa::ToSchema;

/// The format of an answer: `?format=` wins; otherwise `Accept: text/csv` selects CSV.
pub fn negotiate(param: Option<OutputFormat>, headers: &HeaderMap) -> OutputFormat {
    param.unwrap_or_else(|| {
        let wants_csv = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv"));
        if wants_csv {
            OutputFormat::Csv
        } else {
            OutputFormat::Json
        }
    })
}

/// An answer with what the cache did and how fresh it is.
pub struct Answer<T> {
    pub body: T,
    pub cache: CacheStatus,
    pub data_as_of: Option<DateTime<Utc>>,
    pub age_seconds: i64,
}

impl<T: Serialize + CsvTable> Answer<T> {
    pub fn respond(self, format: OutputFormat) -> Response {
        let mut response = match format {
            OutputFormat::Json => Json(&self.body).into_response(),
            OutputFormat::Csv => render_csv(&self.body),
        };
        let headers = response.headers_mut();
        headers.insert("x-cache", header_value(self.cache.as_str()));
        headers.insert(
            header::AGE,
            header_value(&self.age_seconds.max(0).to_string()),
        );
        if let Some(as_of) = self.data_as_of {
            headers.insert(
                "x-data-as-of",
                header_value(&as_of.to_rfc3339_opts(SecondsFormat::Millis, true)),
            );
        }
        response
    }
}

pub(crate) fn wants_fresh(headers: &HeaderMap) -> bool {
    let says_no_cache = |name: header::HeaderName| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("no-cache"))
    };
    says_no_cache(header::CACHE_CONTROL) || says_no_cache(header::PRAGMA)
}

/// The version of the disclosure rule (`query::read`), part of every cache key.
const DISCLOSURE_RULE: &str = "released-cells-1";

/// The cache-aside path. Generations are read before computing, so an answer computed from
/// data older than an invalidation is stored under the old fingerprint and never served
/// after it.
pub async fn cached<T, F, Fut>(
    state: &AppState,
    headers: &HeaderMap,
    canonical: String,
    dependency: Dependency,
    compute: F,
) -> Result<Answer<T>, ApiError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(T, Option<DateTime<Utc>>), ApiError>>,
{
    let metrics = &state.inner.metrics;
    let cache = &state.inner.cache;
    let bypass = wants_fresh(headers);
    // The disclosure rule and its k decide what an answer holds: an answer computed under
    // another k (or rule) is another answer.
    let canonical = format!(
        "{canonical}&disclosure={DISCLOSURE_RULE}&k={}",
        state
            .inner
            .disclosure_k
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    let slot = match cache.lookup(&canonical, &dependency, bypass).await {
        Ok((slot, Some(hit))) => match serde_json::from_value::<T>(hit.body) {
            Ok(body) => {
                metrics.cache_hit.increment(1);
                let age = (Utc::now().timestamp_millis() - hit.computed_at_ms) / 1000;
                return Ok(Answer {
                    body,
                    cache: CacheStatus::Hit,
                    data_as_of: hit.data_as_of,
                    age_seconds: age,
                });
            }
            Err(error) => {
                tracing::warn!(error = %error, "cached answer has an old shape; recomputing");
                Some(slot)
            }
        },
        Ok((slot, None)) => Some(slot),
        Err(()) => None,
    };
    let (body, data_as_of) = compute().await?;
    let status = match &slot {
        None => CacheStatus::Unavailable,
        Some(_) if bypass => CacheStatus::Bypass,
        Some(_) => CacheStatus::Miss,
    };
    match status {
        CacheStatus::Bypass => metrics.cache_bypass.increment(1),
        CacheStatus::Miss => metrics.cache_miss.increment(1),
        _ => {}
    }
    if let Some(slot) = slot {
        match serde_json::to_value(&body) {
            Ok(value) => {
                let answer = CachedAnswer {
                    computed_at_ms: Utc::now().timestamp_millis(),
                    data_as_of,
                    body: value,
                };
                cache.store(&slot, &answer).await;
            }
            Err(error) => tracing::error!(error = %error, "cannot serialise an answer"),
        }
    }
    Ok(Answer {
        body,
        cache: status,
        data_as_of,
        age_seconds: 0,
    })
}

/// Who or what an answer is about.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Subject {
    /// all, category or merchant.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
}

impl Subject {
    /// One cell's worth: `all`, `category coffee_shop`, `merchant 101 Blue Bean Coffee`.
    pub fn describe(&self) -> String {
        match (&self.merchant_id, &self.category) {
            (Some(id), _) => format!(
                "merchant {id} {}",
                self.merchant_name.as_deref().unwrap_or_default()
            )
            .trim_end()
            .to_owned(),
            (None, Some(category)) => format!("category {category}"),
            (None, None) => "all".to_owned(),
        }
    }
}

/// Resolves a brand to its merchant (remembered: brands never move).
pub(crate) async fn resolve_scope(state: &AppState, scope: &ScopeParam) -> Result<Scope, ApiError> {
    Ok(match scope {
        ScopeParam::All => Scope::All,
        ScopeParam::Category(category) => Scope::Category(*category),
        ScopeParam::Merchant(id) => Scope::Merchant(*id),
        ScopeParam::Brand(brand) => {
            let known = state
                .inner
                .brands
                .lock()
                .ok()
                .and_then(|brands| brands.get(brand).copied());
            let id = match known {
                Some(id) => id,
                None => {
                    let client = state.inner.read_db.get().await?;
                    let row = client
                        .query_opt("SELECT id FROM dim_merchants WHERE brand_id = $1", &[brand])
                        .await?
                        .ok_or_else(|| ApiError::NotFound(format!("no brand {brand:?}")))?;
                    let id: i64 = row.get(0);
                    if let Ok(mut brands) = state.inner.brands.lock() {
                        if brands.len() < 100_000 {
                            brands.insert(brand.clone(), id);
                        }
                    }
                    id
                }
            };
            Scope::Merchant(id)
        }
    })
}

pub(crate) fn dependency_of(scope: &Scope) -> Dependency {
    match scope {
        Scope::All => Dependency::All,
        Scope::Category(category) => Dependency::Category(*category),
        Scope::Merchant(id) => Dependency::Merchant(*id),
    }
}

/// The subject of an answer; a merchant must exist (404 otherwise).
pub(crate) async fn subject_of(
    client: &deadpool_postgres::Transaction<'_>,
    asked: &ScopeParam,
    scope: &Scope,
) -> Result<Subject, ApiError> {
    let brand = match asked {
        ScopeParam::Brand(brand) => Some(brand.clone()),
        _ => None,
    };
    Ok(match scope {
        Scope::All => Subject {
            kind: "all".to_owned(),
            category: None,
            merchant_id: None,
            merchant_name: None,
            brand,
        },
        Scope::Category(category) => Subject {
            kind: "category".to_owned(),
            category: Some(category.as_str().to_owned()),
            merchant_id: None,
            merchant_name: None,
            brand,
        },
        Scope::Merchant(id) => {
            let statement = client
                .prepare_cached("SELECT name, category FROM dim_merchants WHERE id = $1")
                .await?;
            let row = client
                .query_opt(&statement, &[id])
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no merchant {id}")))?;
            Subject {
                kind: "merchant".to_owned(),
                merchant_id: Some(*id),
                merchant_name: Some(row.get(0)),
                category: Some(row.get(1)),
                brand,
            }
        }
    })
}

/// What an answer leaves out under the disclosure rule (docs/PRIVACY.md), if anything.
pub(crate) fn suppression_note(
    suppressed: usize,
    total: usize,
    withheld_cells: i64,
    k: u32,
) -> Option<String> {
    (withheld_cells > 0).then(|| {
        let values = if suppressed > 0 {
            format!(
                "{suppressed} of {total} values are withheld (value null, suppressed true): all \
                 their activity is in such cells. "
            )
        } else {
            String::new()
        };
        format!(
            "{values}{withheld_cells} cells (one merchant, state and day) with fewer than {k} \
             distinct customers (the k-anonymity threshold) are left out of every value; each \
             value is the sum of the cells with at least {k}"
        )
    })
}

pub(crate) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// An answer computed without the cache (small, cheap lists).
pub fn uncached<T>(body: T, data_as_of: Option<DateTime<Utc>>) -> Answer<T> {
    Answer {
        body,
        cache: CacheStatus::Bypass,
        data_as_of,
        age_seconds: 0,
    }
}
