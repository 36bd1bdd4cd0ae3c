//! The review queue: descriptors ingest could not resolve, grouped and ranked by money at
//! stake, and what an admin can do with them, with the audit trail of every decision.
//!
//! - [`queue`]: the pending groups.
//! - [`assign`]: a group to a merchant, its held rows replayed into the aggregates.
//! - [`again`]: the queue resolved again with today's resolver (regrouped, and assigned where
//!   it now decides by itself).
//! - [`undo`]: an assign reversed, its rows subtracted and put back in the queue.
//! - [`ignore`]: a group taken out of the queue without counting it.
//! - [`rules`]: prefix and regex rules, validated by the resolver's own code.
//! - [`audit`]: who mapped what, and the share of spend that is mapped.
//! - [`files`]: the ingest ledger, failed files and why.
//! - [`moved`]: the held rows a decision moves, as the fact writer's cells.
//!
//! Every decision is one transaction under [`REVIEW_LOCK`], so review transactions are the one
//! writer of the category rows of shard -1 (`altdata_facts::CategoryShard::Review`); readers
//! sum over all shards, so -1 is counted like any other. After commit, ingest is told to
//! reload its aliases and rules.

pub mod again;
pub mod assign;
pub mod audit;
pub mod files;
pub mod ignore;
pub mod moved;
pub mod queue;
pub mod rules;
pub mod undo;

use crate::error::{database_error_is_retryable, ApiError};
use crate::AppState;
use altdata_proto::v1::MappingChanged;
use altdata_proto::{Message, SCHEMA_VERSION};
use chrono::Utc;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::Schema;

/// At most this many descriptors in one assign or ignore.
pub const MAX_DESCRIPTORS: usize = 100;
/// The longest descriptor, in characters.
pub const MAX_DESCRIPTOR_CHARS: usize = 200;
/// Printable text (see [`crate::query::PRINTABLE_PATTERN`]) with at least one character that is not white
/// space: what is left after trimming is not empty.
pub const NON_BLANK_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";
/// Serialises review transactions (the only writers of shard -1 category rows).
pub const REVIEW_LOCK: i64 = 0x7265_7669_6577; // "review"
/// Attempts of a review transaction that lost a deadlock or serialisation race.
const ATTEMPTS: usize = 3;

/// A failed review transaction: a decision for the caller, or a database error that may be
/// worth retrying.
pub enum Failure {
    Api(ApiError),
    Database(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Failure {
        Failure::Database(error)
    }
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure::Api(error)
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> ApiError {
        match failure {
            Failure::Api(error) => error,
            Failure::Database(error) => ApiError::from(error),
        }
    }
}

/// A review transaction's body, given the connection it runs on.
pub type Attempt<'a, T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 'a>>;

/// Runs a review transaction, again after a short pause when it lost a deadlock or
/// serialisation race (up to [`ATTEMPTS`] times).
pub async fn with_retries<T>(
    state: &AppState,
    what: &str,
    mut attempt: impl for<'a> FnMut(&'a mut deadpool_postgres::Client) -> Attempt<'a, T>,
) -> Result<T, ApiError> {
    let mut client = state.inner.db.get().await?;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(&mut client).await {
            Err(Failure::Database(error))
                if tries < ATTEMPTS
                    && database_error_is_retryable(&error)
                    && !error.is_closed() =>
            {
                tracing::info!(error = %error, tries, "review {what} lost a race, retrying");
                tokio::time::sleep(Duration::from_millis(50 * tries as u64)).await;
            }
            other => return other.map_err(ApiError::from),
        }
    }
}

/// Checks and normalises a list of descriptors (see [`descriptors_schema`]): 1 to
/// [`MAX_DESCRIPTORS`], each 1 to [`MAX_DESCRIPTOR_CHARS`] characters of printable text, not
/// blank; trimmed, sorted, without duplicates.
pub fn check_descriptors(descriptors: &[String]) -> Result<Vec<String>, ApiError> {
    if descriptors.is_empty() || descriptors.len() > MAX_DESCRIPTORS {
        return Err(ApiError::invalid(format!(
            "normalized_descriptors must list 1 to {MAX_DESCRIPTORS} descriptors"
        )));
    }
    let mut list: Vec<String> = Vec::with_capacity(descriptors.len());
    for descriptor in descriptors {
        // PostgreSQL text cannot hold NUL, and descriptors never contain control characters.
        if !is_short_printable_text(descriptor, MAX_DESCRIPTOR_CHARS) {
            return Err(ApiError::invalid(format!(
                "each normalized descriptor must be 1 to {MAX_DESCRIPTOR_CHARS} characters of \
                 printable text, not blank"
            )));
        }
        list.push(descriptor.trim().to_owned());
    }
    list.sort();
    list.dedup();
    Ok(list)
}

/// At most `max` characters, none a control character, not blank: [`text_schema`].
pub fn is_short_printable_text(text: &str, max: usize) -> bool {
    !text.trim().is_empty() && text.chars().count() <= max && !text.chars().any(char::is_control)
}

/// The schema of a text [`is_short_printable_text`] accepts.
pub fn text_schema(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(NON_BLANK_PATTERN))
}

/// The schema of the descriptor lists [`check_descriptors`] accepts.
pub fn descriptors_schema() -> Schema {
    ArrayBuilder::new()
        .items(text_schema(MAX_DESCRIPTOR_CHARS))
        .min_items(Some(1))
        .max_items(Some(MAX_DESCRIPTORS))
        .into()
}

pub fn dollars(cents: i64) -> f64 {
    cents as f64 / 100.0
}

/// Tells ingest (core NATS) that aliases or rules changed. Best effort: ingest also reloads
/// on its own schedule, so a failure here delays, never loses, the change.
pub async fn publish_mapping_changed(state: &AppState, cause: &str) -> bool {
    let Some(nats) = &state.inner.nats else {
        return false;
    };
    let message = MappingChanged {
        schema_version: SCHEMA_VERSION,
        changed_at_ms: Utc::now().timestamp_millis(),
        cause: cause.to_owned(),
    };
    let subject = state.inner.subjects.mapping_changed();
    let published = async {
        nats.publish(subject, message.encode_to_vec().into())
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(Duration::from_secs(2), nats.flush())
            .await
            .map_err(|_| "flush timed out".to_owned())?
            .map_err(|e| e.to_string())
    }
    .await;
    match published {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(error = %error, "cannot publish mapping.v1.changed; ingest will pick the change up on its next reload");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_lists_are_trimmed_sorted_and_deduplicated() {
        let list = check_descriptors(&[" B ".into(), "A".into(), "B".into()]).ok();
        assert_eq!(list, Some(vec!["A".to_owned(), "B".to_owned()]));
    }

    #[test]
    fn the_non_blank_pattern_is_the_check() {
        let pattern = regex::Regex::new(NON_BLANK_PATTERN).unwrap_or_else(|e| panic!("{e}"));
        for text in ["A", " SQ COFFEE ", "é", "a\u{a0}b"] {
            assert!(pattern.is_match(text), "{text:?}");
            assert!(is_short_printable_text(text, 200), "{text:?}");
        }
        for text in ["", "   ", "\u{a0}", "A\tB", "A\u{85}", "A\n"] {
            assert!(!pattern.is_match(text), "{text:?}");
            assert!(!is_short_printable_text(text, 200), "{text:?}");
        }
    }

    #[test]
    fn empty_long_or_control_descriptors_are_refused() {
        assert!(check_descriptors(&[]).is_err());
        assert!(check_descriptors(&["  ".into()]).is_err());
        assert!(check_descriptors(&["A\u{0}B".into()]).is_err());
        assert!(check_descriptors(&["x".repeat(201)]).is_err());
        assert!(check_descriptors(&["é".repeat(200)]).is_ok());
        let too_many: Vec<String> = (0..=MAX_DESCRIPTORS).map(|i| i.to_string()).collect();
        assert!(check_descriptors(&too_many).is_err());
    }
}
