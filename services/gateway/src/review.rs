//! The review queue: descriptors ingest could not resolve, grouped and ranked by money at
//! stake, and what an admin can do with them (assign, ignore, add a rule, undo an assign),
//! with the audit trail of every decision and the share of spend that is mapped.
//!
//! An assign is one transaction: create the merchant if asked, alias the descriptors to it,
//! mark the group's pending rows assigned, add their contribution to the aggregates (replay),
//! write the audit rows and the outbox rows (cache invalidation and aggregate updates, which
//! the aggregator's relay publishes), then, after commit, tell ingest to reload its aliases.
//!
//! Replays write the merchant rows (additive upserts that commute with the aggregator's own)
//! and the category rows of the reserved shard **-1**, which only review transactions write,
//! serialised by an advisory lock, so the "one writer per category row" rule holds. Readers
//! sum over all shards, so -1 is counted like any other.
//!
//! Undo subtracts the replayed sums and counts again, puts the rows back in the queue and
//! restores the alias. Distinct customers are HyperLogLog sketches, which cannot subtract:
//! after an undo, `customers` of the affected cells may over-count by up to the customers
//! the undone rows added.

use crate::auth::Principal;
use crate::error::{database_error_is_retryable, ApiError, ErrorBody};
use crate::query::{
    self, check_range, parse_bounded, parse_category, parse_date, PageParams, RangeParams,
    MAX_OFFSET,
};
use crate::AppState;
use altdata_common::domain::{date_to_epoch_days, Category};
use altdata_proto::v1::{AggregateUpdate, AggregateUpdateBatch, CacheInvalidation, MappingChanged};
use altdata_proto::{Message, SCHEMA_VERSION};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use utoipa::ToSchema;

/// At most this many descriptors in one assign or ignore.
pub const MAX_DESCRIPTORS: usize = 100;
/// Serialises review transactions (the only writers of shard -1 category rows).
const REVIEW_LOCK: i64 = 0x7265_7669_6577; // "review"
/// The category rows' shard reserved for review replays.
pub const REVIEW_SHARD: i32 = -1;
/// Attempts of a review transaction that lost a deadlock or serialisation race.
const ATTEMPTS: usize = 3;

/// A JSON body extractor whose rejections are [`ApiError`]s (400, or 413 past the limit).
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

// ---------------------------------------------------------------------------------------
// GET /v1/admin/review
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQueue {
    pub groups: Vec<ReviewGroup>,
    /// Pending groups in all pages.
    pub total_groups: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewGroup {
    pub normalized_descriptor: String,
    pub transactions: i64,
    /// Sum of |amount| in dollars: what ranking is by.
    pub at_stake: f64,
    /// Sales minus refunds, in dollars.
    pub net_spend: f64,
    /// Up to 3 raw descriptors as the providers sent them.
    pub samples: Vec<String>,
    /// The resolver's candidates, from the latest row.
    #[schema(value_type = Object)]
    pub candidates: serde_json::Value,
    #[schema(value_type = String, format = Date)]
    pub first_date: NaiveDate,
    #[schema(value_type = String, format = Date)]
    pub last_date: NaiveDate,
}

/// Pending unresolved descriptors, grouped and ranked by money at stake.
#[utoipa::path(
    get, path = "/v1/admin/review", tag = "admin", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending groups", body = ReviewQueue),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn list_queue(
    State(state): State<AppState>,
    query::ApiQuery(params): query::ApiQuery<PageParams>,
) -> Result<Json<ReviewQueue>, ApiError> {
    let max = state.inner.settings.limits.max_page_size;
    let limit = parse_bounded("limit", params.limit.as_deref(), 50, 1, max)?;
    let offset = parse_bounded("offset", params.offset.as_deref(), 0, 0, MAX_OFFSET)?;
    let client = state.inner.db.get().await?;
    let rows = client
        .query(
            "WITH g AS (
                 SELECT normalized_descriptor, count(*) AS n,
                        sum(abs(amount_cents))::bigint AS at_stake,
                        sum(amount_cents)::bigint AS net,
                        min(metric_date) AS first_date, max(metric_date) AS last_date,
                        count(*) OVER () AS total
                 FROM unmapped_transactions WHERE status = 'pending'
                 GROUP BY normalized_descriptor
                 ORDER BY at_stake DESC, normalized_descriptor
                 LIMIT $1 OFFSET $2)
             SELECT g.normalized_descriptor, g.n, g.at_stake, g.net, g.first_date, g.last_date,
                    g.total,
                    coalesce((SELECT array_agg(s.raw_descriptor) FROM (
                        SELECT DISTINCT u.raw_descriptor FROM unmapped_transactions u
                        WHERE u.status = 'pending' AND u.normalized_descriptor = g.normalized_descriptor
                        ORDER BY u.raw_descriptor LIMIT 3) s), '{}') AS samples,
                    coalesce((SELECT u.candidates FROM unmapped_transactions u
                        WHERE u.status = 'pending' AND u.normalized_descriptor = g.normalized_descriptor
                        ORDER BY u.created_at DESC, u.id DESC LIMIT 1), '[]'::jsonb) AS candidates
             FROM g ORDER BY g.at_stake DESC, g.normalized_descriptor",
            &[&limit, &offset],
        )
        .await?;
    let total_groups = rows.first().map_or(0, |row| row.get::<_, i64>(6));
    Ok(Json(ReviewQueue {
        groups: rows
            .iter()
            .map(|row| ReviewGroup {
                normalized_descriptor: row.get(0),
                transactions: row.get(1),
                at_stake: dollars(row.get(2)),
                net_spend: dollars(row.get(3)),
                first_date: row.get(4),
                last_date: row.get(5),
                samples: row.get(7),
                candidates: row.get(8),
            })
            .collect(),
        total_groups,
        limit,
        offset,
    }))
}

fn dollars(cents: i64) -> f64 {
    cents as f64 / 100.0
}

// ---------------------------------------------------------------------------------------
// POST /v1/admin/review/assign
// ---------------------------------------------------------------------------------------

/// Assign descriptor groups to an existing merchant (`merchant_id`) or a new one
/// (`new_merchant`); exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// 1 to 100 normalised descriptors, as listed by the queue.
    pub normalized_descriptors: Vec<String>,
    pub merchant_id: Option<i64>,
    pub new_merchant: Option<NewMerchant>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMerchant {
    pub name: String,
    pub category: String,
    pub ticker_symbol: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignAnswer {
    pub merchant_id: i64,
    pub merchant_created: bool,
    pub category: String,
    pub descriptors: Vec<DescriptorOutcome>,
    /// Rows moved from the queue into the aggregates.
    pub transactions: i64,
    pub net_spend: f64,
    /// Whether ingest was told to reload its aliases (it also reloads periodically).
    pub mapping_change_published: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DescriptorOutcome {
    pub normalized_descriptor: String,
    /// The audit row of this decision (pass it to undo).
    pub audit_id: i64,
    pub transactions: i64,
    pub gross_spend: f64,
    pub refunds: f64,
}

fn check_descriptors(descriptors: &[String]) -> Result<Vec<String>, ApiError> {
    if descriptors.is_empty() || descriptors.len() > MAX_DESCRIPTORS {
        return Err(ApiError::invalid(format!(
            "normalized_descriptors must list 1 to {MAX_DESCRIPTORS} descriptors"
        )));
    }
    let mut list: Vec<String> = Vec::with_capacity(descriptors.len());
    for descriptor in descriptors {
        let trimmed = descriptor.trim();
        // PostgreSQL text cannot hold NUL, and descriptors never contain control characters.
        if trimmed.is_empty() || trimmed.len() > 200 || trimmed.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "each normalized descriptor must be 1 to 200 bytes of printable text",
            ));
        }
        list.push(trimmed.to_owned());
    }
    list.sort();
    list.dedup();
    Ok(list)
}

enum Target {
    Existing(i64),
    New {
        name: String,
        category: Category,
        ticker_symbol: Option<String>,
    },
}

/// Moves descriptor groups into the aggregates under a merchant.
#[utoipa::path(
    post, path = "/v1/admin/review/assign", tag = "admin", request_body = AssignRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Assigned", body = AssignAnswer),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "Unknown merchant", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn assign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<AssignRequest>,
) -> Result<Json<AssignAnswer>, ApiError> {
    let descriptors = check_descriptors(&request.normalized_descriptors)?;
    let target = match (request.merchant_id, request.new_merchant) {
        (Some(id), None) if id > 0 => Target::Existing(id),
        (None, Some(new)) => {
            let name = new.name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    "new_merchant.name must be 1 to 200 printable characters",
                ));
            }
            let ticker_symbol = new
                .ticker_symbol
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty());
            if ticker_symbol
                .as_ref()
                .is_some_and(|t| t.len() > 16 || t.chars().any(char::is_control))
            {
                return Err(ApiError::invalid(
                    "new_merchant.ticker_symbol is at most 16 printable bytes",
                ));
            }
            Target::New {
                name,
                category: parse_category(&new.category)?,
                ticker_symbol,
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of merchant_id (a positive id) and new_merchant",
            ))
        }
    };
    let actor = principal.actor();
    let mut client = state.inner.db.get().await?;
    let mut attempt = 0;
    let mut answer = loop {
        attempt += 1;
        match assign_once(&mut client, &descriptors, &target, &actor).await {
            Err(Failure::Database(error))
                if attempt < ATTEMPTS
                    && database_error_is_retryable(&error)
                    && !error.is_closed() =>
            {
                tracing::info!(error = %error, attempt, "review assign lost a race, retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
            }
            other => break other?,
        }
    };
    answer.mapping_change_published = publish_mapping_changed(&state, "review assign").await;
    tracing::info!(actor = %actor, merchant_id = answer.merchant_id, descriptors = answer.descriptors.len(), transactions = answer.transactions, "descriptors assigned");
    Ok(Json(answer))
}

/// A failed review transaction: a decision for the caller, or a database error that may be
/// worth retrying.
enum Failure {
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

/// The rows a review decision moves, kept for the rest of its transaction.
const MOVED_TABLE: &str = "CREATE TEMP TABLE review_moved (
        normalized_descriptor text NOT NULL, amount_cents bigint NOT NULL,
        metric_date date NOT NULL, region text NOT NULL, customer_key bigint NOT NULL
    ) ON COMMIT DROP";

/// Sums of the moved rows per (region, day), as the aggregator computes them.
const MOVED_CELLS: &str = "cell AS MATERIALIZED (
    SELECT coalesce(nullif(region, ''), 'XX') AS region, metric_date,
           coalesce(sum(amount_cents) FILTER (WHERE amount_cents >= 0), 0)::bigint AS gross,
           count(*) FILTER (WHERE amount_cents >= 0) AS sales,
           coalesce(sum(-amount_cents) FILTER (WHERE amount_cents < 0), 0)::bigint AS refund,
           count(*) FILTER (WHERE amount_cents < 0) AS refunds,
           hll_add_agg(hll_hash_bigint(customer_key)) AS customers
    FROM review_moved GROUP BY 1, 2)";

fn upsert_rollup(
    table: &str,
    key: &str,
    period: &str,
    scope_columns: &str,
    scope_values: &str,
) -> String {
    format!(
        "INSERT INTO {table} AS t ({scope_columns}, region, {key}, total_spend_cents,
             transaction_count, refund_cents, refund_count, customers)
         SELECT {scope_values}, region, {period}, sum(gross), sum(sales), sum(refund),
                sum(refunds), hll_union_agg(customers)
         FROM cell GROUP BY region, {period}
         ON CONFLICT ({scope_columns}, region, {key}) DO UPDATE SET
             total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
             transaction_count = t.transaction_count + excluded.transaction_count,
             refund_cents = t.refund_cents + excluded.refund_cents,
             refund_count = t.refund_count + excluded.refund_count,
             customers = hll_union(t.customers, excluded.customers)"
    )
}

fn subtract_rollup(table: &str, key: &str, period: &str, scope_clause: &str) -> String {
    format!(
        "UPDATE {table} AS t SET
             total_spend_cents = t.total_spend_cents - c.gross,
             transaction_count = t.transaction_count - c.sales,
             refund_cents = t.refund_cents - c.refund,
             refund_count = t.refund_count - c.refunds
         FROM (SELECT region, {period} AS period, sum(gross) AS gross, sum(sales) AS sales,
                      sum(refund) AS refund, sum(refunds) AS refunds
               FROM cell GROUP BY 1, 2) c
         WHERE {scope_clause} AND t.region = c.region AND t.{key} = c.period"
    )
}

const WEEK: &str = "date_trunc('week', metric_date::timestamp)::date";
const MONTH: &str = "date_trunc('month', metric_date::timestamp)::date";

/// Adds the moved rows to every aggregate ($1 merchant, $2 category); returns the new daily
/// totals.
fn replay_sql() -> String {
    let merchant = ("merchant_id", "$1::bigint");
    let category = ("category, shard", "$2::text, -1");
    format!(
        "WITH {MOVED_CELLS},
         daily AS (
             INSERT INTO agg_daily_merchant_spend AS t
                 (merchant_id, region, metric_date, total_spend_cents, transaction_count,
                  refund_cents, refund_count, customers, updated_at)
             SELECT $1::bigint, region, metric_date, gross, sales, refund, refunds, customers, now()
             FROM cell
             ON CONFLICT (merchant_id, region, metric_date) DO UPDATE SET
                 total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
                 transaction_count = t.transaction_count + excluded.transaction_count,
                 refund_cents = t.refund_cents + excluded.refund_cents,
                 refund_count = t.refund_count + excluded.refund_count,
                 customers = hll_union(t.customers, excluded.customers),
                 updated_at = now()
             RETURNING t.region, t.metric_date, t.total_spend_cents, t.transaction_count,
                       t.refund_cents, t.refund_count, hll_cardinality(t.customers)::bigint AS customers),
         weekly AS ({}), monthly AS ({}),
         category_daily AS ({}), category_weekly AS ({}), category_monthly AS ({})
         SELECT * FROM daily",
        upsert_rollup("agg_weekly_merchant_spend", "week_start", WEEK, merchant.0, merchant.1),
        upsert_rollup("agg_monthly_merchant_spend", "month_start", MONTH, merchant.0, merchant.1),
        upsert_rollup("agg_daily_category_region", "metric_date", "metric_date", category.0, category.1),
        upsert_rollup("agg_weekly_category_region", "week_start", WEEK, category.0, category.1),
        upsert_rollup("agg_monthly_category_region", "month_start", MONTH, category.0, category.1),
    )
}

/// Subtracts the moved rows from every aggregate ($1 merchant, $2 category); returns the new
/// daily totals. Sketches are left alone: HyperLogLog cannot subtract.
fn unreplay_sql() -> String {
    let merchant = "t.merchant_id = $1::bigint";
    let category = "t.category = $2::text AND t.shard = -1";
    format!(
        "WITH {MOVED_CELLS},
         daily AS (
             UPDATE agg_daily_merchant_spend AS t SET
                 total_spend_cents = t.total_spend_cents - c.gross,
                 transaction_count = t.transaction_count - c.sales,
                 refund_cents = t.refund_cents - c.refund,
                 refund_count = t.refund_count - c.refunds,
                 updated_at = now()
             FROM cell c
             WHERE t.merchant_id = $1::bigint AND t.region = c.region AND t.metric_date = c.metric_date
             RETURNING t.region, t.metric_date, t.total_spend_cents, t.transaction_count,
                       t.refund_cents, t.refund_count, hll_cardinality(t.customers)::bigint AS customers),
         weekly AS ({}), monthly AS ({}),
         category_daily AS ({}), category_weekly AS ({}), category_monthly AS ({})
         SELECT * FROM daily",
        subtract_rollup("agg_weekly_merchant_spend", "week_start", WEEK, merchant),
        subtract_rollup("agg_monthly_merchant_spend", "month_start", MONTH, merchant),
        subtract_rollup("agg_daily_category_region", "metric_date", "metric_date", category),
        subtract_rollup("agg_weekly_category_region", "week_start", WEEK, category),
        subtract_rollup("agg_monthly_category_region", "month_start", MONTH, category),
    )
}

/// Per-descriptor sums of the moved rows, for the audit trail.
struct MovedGroup {
    descriptor: String,
    transactions: i64,
    gross_cents: i64,
    refund_cents: i64,
    first_date: Option<NaiveDate>,
    last_date: Option<NaiveDate>,
}

async fn moved_groups(
    transaction: &tokio_postgres::Transaction<'_>,
) -> Result<Vec<MovedGroup>, tokio_postgres::Error> {
    let rows = transaction
        .query(
            "SELECT normalized_descriptor, count(*),
                    coalesce(sum(amount_cents) FILTER (WHERE amount_cents >= 0), 0)::bigint,
                    coalesce(sum(-amount_cents) FILTER (WHERE amount_cents < 0), 0)::bigint,
                    min(metric_date), max(metric_date)
             FROM review_moved GROUP BY 1",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| MovedGroup {
            descriptor: row.get(0),
            transactions: row.get(1),
            gross_cents: row.get(2),
            refund_cents: row.get(3),
            first_date: row.get(4),
            last_date: row.get(5),
        })
        .collect())
}

/// The new daily totals as `AggregateUpdate`s, and the matching cache invalidation.
fn outbox_messages(
    rows: &[tokio_postgres::Row],
    merchant_id: i64,
    category: &str,
    cause: &str,
) -> (CacheInvalidation, AggregateUpdateBatch) {
    let committed_at_ms = Utc::now().timestamp_millis();
    let updates: Vec<AggregateUpdate> = rows
        .iter()
        .map(|row| {
            let date: NaiveDate = row.get(1);
            AggregateUpdate {
                schema_version: SCHEMA_VERSION,
                merchant_id,
                region: row.get(0),
                metric_date: date_to_epoch_days(date),
                total_spend_cents: row.get(2),
                transaction_count: row.get(3),
                refund_cents: row.get(4),
                refund_count: row.get(5),
                customers: row.get(6),
                committed_at_ms,
                category: category.to_owned(),
            }
        })
        .collect();
    let mut regions: Vec<String> = updates.iter().map(|u| u.region.clone()).collect();
    regions.sort();
    regions.dedup();
    let invalidation = CacheInvalidation {
        schema_version: SCHEMA_VERSION,
        merchant_ids: vec![merchant_id],
        categories: vec![category.to_owned()],
        regions,
        first_date: updates.iter().map(|u| u.metric_date).min().unwrap_or(0),
        last_date: updates.iter().map(|u| u.metric_date).max().unwrap_or(0),
        committed_at_ms,
        cause: cause.to_owned(),
    };
    (
        invalidation,
        AggregateUpdateBatch {
            schema_version: SCHEMA_VERSION,
            updates,
        },
    )
}

async fn write_outbox(
    transaction: &tokio_postgres::Transaction<'_>,
    invalidation: &CacheInvalidation,
    batch: &AggregateUpdateBatch,
) -> Result<(), tokio_postgres::Error> {
    transaction
        .execute(
            "INSERT INTO outbox (kind, payload) VALUES ('cache_invalidation', $1), ('aggregate_updates', $2)",
            &[&invalidation.encode_to_vec(), &batch.encode_to_vec()],
        )
        .await?;
    Ok(())
}

async fn assign_once(
    client: &mut deadpool_postgres::Client,
    descriptors: &[String],
    target: &Target,
    actor: &str,
) -> Result<AssignAnswer, Failure> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&REVIEW_LOCK])
        .await?;
    let (merchant_id, category, created) = match target {
        Target::Existing(id) => {
            let row = transaction
                .query_opt("SELECT category FROM dim_merchants WHERE id = $1", &[id])
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no merchant {id}")))?;
            (*id, row.get::<_, String>(0), false)
        }
        Target::New {
            name,
            category,
            ticker_symbol,
        } => {
            let row = transaction
                .query_one(
                    "INSERT INTO dim_merchants (name, category, ticker_symbol) VALUES ($1, $2, $3) RETURNING id",
                    &[name, &category.as_str(), ticker_symbol],
                )
                .await?;
            (row.get::<_, i64>(0), category.as_str().to_owned(), true)
        }
    };
    let range = transaction
        .query_one(
            "SELECT min(metric_date), max(metric_date) FROM unmapped_transactions
             WHERE status = 'pending' AND normalized_descriptor = ANY($1)",
            &[&descriptors],
        )
        .await?;
    let first: Option<NaiveDate> = range.get(0);
    let last: Option<NaiveDate> = range.get(1);
    transaction.batch_execute(MOVED_TABLE).await?;
    let mut replayed = Vec::new();
    if let (Some(first), Some(last)) = (first, last) {
        transaction
            .execute("SELECT ensure_daily_partitions($1, $2)", &[&first, &last])
            .await?;
        // Rows that arrive for these descriptors later, or outside the range whose partitions
        // exist, stay pending and show up in the queue again.
        transaction
            .execute(
                "WITH moved AS (
                     UPDATE unmapped_transactions
                        SET status = 'assigned', merchant_id = $1, resolved_by = $2, resolved_at = now()
                      WHERE status = 'pending' AND normalized_descriptor = ANY($3)
                        AND metric_date BETWEEN $4 AND $5
                     RETURNING normalized_descriptor, amount_cents, metric_date, region, customer_key)
                 INSERT INTO review_moved SELECT * FROM moved",
                &[&merchant_id, &actor, &descriptors, &first, &last],
            )
            .await?;
        replayed = transaction
            .query(&replay_sql(), &[&merchant_id, &category])
            .await?;
    }
    let groups = moved_groups(&transaction).await?;
    let previous_aliases = transaction
        .query(
            "SELECT alias, merchant_id FROM merchant_aliases WHERE alias = ANY($1) FOR UPDATE",
            &[&descriptors],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO merchant_aliases (alias, merchant_id, source, created_by)
             SELECT unnest($1::text[]), $2, 'review', $3
             ON CONFLICT (alias) DO UPDATE SET merchant_id = excluded.merchant_id,
                 source = 'review', created_by = excluded.created_by, created_at = now()",
            &[&descriptors, &merchant_id, &actor],
        )
        .await?;
    let mut outcomes = Vec::with_capacity(descriptors.len());
    for descriptor in descriptors {
        let group = groups.iter().find(|g| &g.descriptor == descriptor);
        let previous: Option<i64> = previous_aliases
            .iter()
            .find(|row| row.get::<_, &str>(0) == descriptor)
            .map(|row| row.get(1));
        let (transactions, gross, refund) = group.map_or((0, 0, 0), |g| {
            (g.transactions, g.gross_cents, g.refund_cents)
        });
        let detail = json!({
            "transactions": transactions,
            "gross_cents": gross,
            "refund_cents": refund,
            "net_cents": gross - refund,
            "first_date": group.and_then(|g| g.first_date),
            "last_date": group.and_then(|g| g.last_date),
            "category": category,
            "merchant_created": created,
            "previous_alias_merchant_id": previous,
        });
        let row = transaction
            .query_one(
                "INSERT INTO mapping_audit (actor, action, normalized_descriptor, merchant_id, detail)
                 VALUES ($1, 'assign', $2, $3, $4) RETURNING id",
                &[&actor, descriptor, &merchant_id, &detail],
            )
            .await?;
        outcomes.push(DescriptorOutcome {
            normalized_descriptor: descriptor.clone(),
            audit_id: row.get(0),
            transactions,
            gross_spend: dollars(gross),
            refunds: dollars(refund),
        });
    }
    if !replayed.is_empty() {
        let (invalidation, batch) = outbox_messages(&replayed, merchant_id, &category, "review");
        write_outbox(&transaction, &invalidation, &batch).await?;
    }
    transaction.commit().await?;
    let transactions = groups.iter().map(|g| g.transactions).sum();
    let net: i64 = groups.iter().map(|g| g.gross_cents - g.refund_cents).sum();
    Ok(AssignAnswer {
        merchant_id,
        merchant_created: created,
        category,
        descriptors: outcomes,
        transactions,
        net_spend: dollars(net),
        mapping_change_published: false,
    })
}

/// Tells ingest (core NATS) that aliases or rules changed. Best effort: ingest also reloads
/// on its own schedule, so a failure here delays, never loses, the change.
async fn publish_mapping_changed(state: &AppState, cause: &str) -> bool {
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

// ---------------------------------------------------------------------------------------
// POST /v1/admin/review/ignore
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IgnoreRequest {
    /// 1 to 100 normalised descriptors.
    pub normalized_descriptors: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IgnoreAnswer {
    /// Rows taken out of the queue.
    pub transactions: i64,
}

/// Takes descriptor groups out of the queue without counting them anywhere.
#[utoipa::path(
    post, path = "/v1/admin/review/ignore", tag = "admin", request_body = IgnoreRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Ignored", body = IgnoreAnswer),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn ignore(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<IgnoreRequest>,
) -> Result<Json<IgnoreAnswer>, ApiError> {
    let descriptors = check_descriptors(&request.normalized_descriptors)?;
    let actor = principal.actor();
    let mut client = state.inner.db.get().await?;
    let transaction = client.transaction().await?;
    let rows = transaction
        .query(
            "WITH ignored AS (
                 UPDATE unmapped_transactions SET status = 'ignored', resolved_by = $1, resolved_at = now()
                 WHERE status = 'pending' AND normalized_descriptor = ANY($2)
                 RETURNING normalized_descriptor, amount_cents)
             SELECT d, count(i.amount_cents), coalesce(sum(i.amount_cents), 0)::bigint
             FROM unnest($2::text[]) AS d LEFT JOIN ignored i ON i.normalized_descriptor = d
             GROUP BY d",
            &[&actor, &descriptors],
        )
        .await?;
    let mut total = 0;
    for row in &rows {
        let descriptor: String = row.get(0);
        let count: i64 = row.get(1);
        let net: i64 = row.get(2);
        total += count;
        transaction
            .execute(
                "INSERT INTO mapping_audit (actor, action, normalized_descriptor, detail)
                 VALUES ($1, 'ignore', $2, $3)",
                &[
                    &actor,
                    &descriptor,
                    &json!({"transactions": count, "net_cents": net}),
                ],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(Json(IgnoreAnswer {
        transactions: total,
    }))
}

// ---------------------------------------------------------------------------------------
// POST /v1/admin/rules
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    /// prefix or regex, over the normalised descriptor.
    pub kind: String,
    /// 1 to 200 bytes; a regex must compile (Rust `regex` syntax).
    pub pattern: String,
    pub merchant_id: i64,
    /// Lower runs first; default 100.
    pub priority: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleAnswer {
    pub rule_id: i64,
    pub mapping_change_published: bool,
}

/// Adds a prefix or regex rule mapping descriptors to a merchant.
#[utoipa::path(
    post, path = "/v1/admin/rules", tag = "admin", request_body = RuleRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rule added", body = RuleAnswer),
        (status = 400, description = "Invalid body or regex", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "Unknown merchant", body = ErrorBody),
        (status = 409, description = "The same rule exists", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn add_rule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<RuleRequest>,
) -> Result<Json<RuleAnswer>, ApiError> {
    if !matches!(request.kind.as_str(), "prefix" | "regex") {
        return Err(ApiError::invalid(format!(
            "kind={:?} is not valid: expected prefix or regex",
            request.kind
        )));
    }
    if request.pattern.is_empty() || request.pattern.len() > 200 || request.pattern.contains('\0') {
        return Err(ApiError::invalid(
            "pattern must be 1 to 200 bytes without NUL",
        ));
    }
    if request.kind == "regex" {
        regex::RegexBuilder::new(&request.pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|error| ApiError::invalid(format!("pattern is not a valid regex: {error}")))?;
    }
    let priority = request.priority.unwrap_or(100);
    if !(0..=10_000).contains(&priority) {
        return Err(ApiError::invalid("priority must be from 0 to 10000"));
    }
    let actor = principal.actor();
    let mut client = state.inner.db.get().await?;
    let transaction = client.transaction().await?;
    let exists = transaction
        .query_opt(
            "SELECT 1 FROM dim_merchants WHERE id = $1",
            &[&request.merchant_id],
        )
        .await?;
    if exists.is_none() {
        return Err(ApiError::NotFound(format!(
            "no merchant {}",
            request.merchant_id
        )));
    }
    let row = transaction
        .query_opt(
            "INSERT INTO merchant_rules (kind, pattern, merchant_id, priority, created_by)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, pattern) DO NOTHING RETURNING id",
            &[
                &request.kind,
                &request.pattern,
                &request.merchant_id,
                &priority,
                &actor,
            ],
        )
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!("a {} rule with this pattern exists", request.kind))
        })?;
    let rule_id: i64 = row.get(0);
    transaction
        .execute(
            "INSERT INTO mapping_audit (actor, action, merchant_id, detail) VALUES ($1, 'rule', $2, $3)",
            &[
                &actor,
                &request.merchant_id,
                &json!({"rule_id": rule_id, "kind": request.kind, "pattern": request.pattern, "priority": priority}),
            ],
        )
        .await?;
    transaction.commit().await?;
    Ok(Json(RuleAnswer {
        rule_id,
        mapping_change_published: publish_mapping_changed(&state, "rule added").await,
    }))
}

// ---------------------------------------------------------------------------------------
// POST /v1/admin/review/undo
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UndoRequest {
    /// The audit id of an assign (one descriptor).
    pub audit_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UndoAnswer {
    pub audit_id: i64,
    /// Rows put back in the queue.
    pub transactions: i64,
    pub net_spend: f64,
    /// Distinct-customer sketches cannot subtract: they may over-count after an undo.
    pub note: String,
    pub mapping_change_published: bool,
}

/// Reverses one assign: subtracts its replayed sums, puts its rows back in the queue and
/// restores the descriptor's previous alias.
#[utoipa::path(
    post, path = "/v1/admin/review/undo", tag = "admin", request_body = UndoRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Undone", body = UndoAnswer),
        (status = 400, description = "Not an assign", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "Unknown audit id", body = ErrorBody),
        (status = 409, description = "Already undone", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn undo(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<UndoRequest>,
) -> Result<Json<UndoAnswer>, ApiError> {
    let actor = principal.actor();
    let mut client = state.inner.db.get().await?;
    let mut attempt = 0;
    let mut answer = loop {
        attempt += 1;
        match undo_once(&mut client, request.audit_id, &actor).await {
            Err(Failure::Database(error))
                if attempt < ATTEMPTS
                    && database_error_is_retryable(&error)
                    && !error.is_closed() =>
            {
                tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
            }
            other => break other?,
        }
    };
    answer.mapping_change_published = publish_mapping_changed(&state, "review undo").await;
    Ok(Json(answer))
}

async fn undo_once(
    client: &mut deadpool_postgres::Client,
    audit_id: i64,
    actor: &str,
) -> Result<UndoAnswer, Failure> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&REVIEW_LOCK])
        .await?;
    let audit = transaction
        .query_opt(
            "SELECT action, normalized_descriptor, merchant_id, detail, undone_at
             FROM mapping_audit WHERE id = $1 FOR UPDATE",
            &[&audit_id],
        )
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no audit entry {audit_id}")))?;
    let action: String = audit.get(0);
    let descriptor: Option<String> = audit.get(1);
    let merchant_id: Option<i64> = audit.get(2);
    let detail: serde_json::Value = audit.get(3);
    let undone_at: Option<DateTime<Utc>> = audit.get(4);
    let (Some(descriptor), Some(merchant_id)) = (descriptor, merchant_id) else {
        return Err(ApiError::invalid("only an assign can be undone").into());
    };
    if action != "assign" {
        return Err(ApiError::invalid(format!(
            "audit entry {audit_id} is a {action:?}; only an assign can be undone"
        ))
        .into());
    }
    if undone_at.is_some() {
        return Err(ApiError::Conflict(format!("audit entry {audit_id} is already undone")).into());
    }
    let category = match detail.get("category").and_then(|c| c.as_str()) {
        Some(category) => category.to_owned(),
        None => transaction
            .query_one(
                "SELECT category FROM dim_merchants WHERE id = $1",
                &[&merchant_id],
            )
            .await?
            .get(0),
    };
    transaction.batch_execute(MOVED_TABLE).await?;
    transaction
        .execute(
            "WITH moved AS (
                 UPDATE unmapped_transactions
                    SET status = 'pending', merchant_id = NULL, resolved_by = NULL, resolved_at = NULL
                  WHERE status = 'assigned' AND normalized_descriptor = $1 AND merchant_id = $2
                 RETURNING normalized_descriptor, amount_cents, metric_date, region, customer_key)
             INSERT INTO review_moved SELECT * FROM moved",
            &[&descriptor, &merchant_id],
        )
        .await?;
    let groups = moved_groups(&transaction).await?;
    let updated = transaction
        .query(&unreplay_sql(), &[&merchant_id, &category])
        .await?;
    match detail
        .get("previous_alias_merchant_id")
        .and_then(|v| v.as_i64())
    {
        Some(previous) => {
            transaction
                .execute(
                    "UPDATE merchant_aliases SET merchant_id = $2, created_by = $3, created_at = now()
                     WHERE alias = $1",
                    &[&descriptor, &previous, &actor],
                )
                .await?;
        }
        None => {
            transaction
                .execute(
                    "DELETE FROM merchant_aliases WHERE alias = $1 AND merchant_id = $2",
                    &[&descriptor, &merchant_id],
                )
                .await?;
        }
    }
    let (transactions, gross, refund) = groups.first().map_or((0, 0, 0), |g| {
        (g.transactions, g.gross_cents, g.refund_cents)
    });
    transaction
        .execute(
            "UPDATE mapping_audit SET undone_at = now() WHERE id = $1",
            &[&audit_id],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO mapping_audit (actor, action, normalized_descriptor, merchant_id, detail)
             VALUES ($1, 'undo', $2, $3, $4)",
            &[
                &actor,
                &descriptor,
                &merchant_id,
                &json!({"undoes": audit_id, "transactions": transactions, "gross_cents": gross,
                        "refund_cents": refund, "net_cents": gross - refund, "category": category}),
            ],
        )
        .await?;
    if !updated.is_empty() {
        let (invalidation, batch) = outbox_messages(&updated, merchant_id, &category, "review");
        write_outbox(&transaction, &invalidation, &batch).await?;
    }
    transaction.commit().await?;
    Ok(UndoAnswer {
        audit_id,
        transactions,
        net_spend: dollars(gross - refund),
        note: "distinct-customer counts cannot be subtracted (HyperLogLog): the affected cells \
               may over-count customers"
            .to_owned(),
        mapping_change_published: false,
    })
}

// ---------------------------------------------------------------------------------------
// GET /v1/admin/audit, GET /v1/admin/mapped-share
// ---------------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub normalized_descriptor: Option<String>,
    pub merchant_id: Option<i64>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub undone_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Who mapped what, newest first.
#[utoipa::path(
    get, path = "/v1/admin/audit", tag = "admin", params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Audit entries", body = AuditLog),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn audit_log(
    State(state): State<AppState>,
    query::ApiQuery(params): query::ApiQuery<PageParams>,
) -> Result<Json<AuditLog>, ApiError> {
    let max = state.inner.settings.limits.max_page_size;
    let limit = parse_bounded("limit", params.limit.as_deref(), 50, 1, max)?;
    let offset = parse_bounded("offset", params.offset.as_deref(), 0, 0, MAX_OFFSET)?;
    let client = state.inner.db.get().await?;
    let rows = client
        .query(
            "SELECT id, actor, action, normalized_descriptor, merchant_id, detail, undone_at, created_at
             FROM mapping_audit ORDER BY id DESC LIMIT $1 OFFSET $2",
            &[&limit, &offset],
        )
        .await?;
    Ok(Json(AuditLog {
        entries: rows
            .iter()
            .map(|row| AuditEntry {
                id: row.get(0),
                actor: row.get(1),
                action: row.get(2),
                normalized_descriptor: row.get(3),
                merchant_id: row.get(4),
                detail: row.get(5),
                undone_at: row.get(6),
                created_at: row.get(7),
            })
            .collect(),
        limit,
        offset,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MappedShare {
    pub range: query::DateRange,
    /// Net spend in the aggregates, dollars.
    pub mapped_net_spend: f64,
    /// Net spend still waiting in the review queue, dollars.
    pub unmapped_net_spend: f64,
    pub unmapped_transactions: i64,
    /// mapped / (mapped + unmapped), as a fraction; null without any spend.
    pub mapped_share: Option<f64>,
}

/// The share of spend that is mapped to merchants over a range.
#[utoipa::path(
    get, path = "/v1/admin/mapped-share", tag = "admin", params(RangeParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Mapped share", body = MappedShare),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing or invalid key", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn mapped_share(
    State(state): State<AppState>,
    query::ApiQuery(params): query::ApiQuery<RangeParams>,
) -> Result<Json<MappedShare>, ApiError> {
    let today = Utc::now().date_naive();
    let to = match params.to.as_deref() {
        Some(text) => parse_date("to", text)?,
        None => today,
    };
    let from = match params.from.as_deref() {
        Some(text) => parse_date("from", text)?,
        None => to - Days::new(29),
    };
    check_range(from, to, &state.inner.settings.limits)?;
    let categories: Vec<String> = Category::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    let mut client = state.inner.read_db.get().await?;
    let snapshot = query::read_snapshot(&mut client).await?;
    let mapped: i64 = snapshot
        .query_one(
            "SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint
             FROM agg_daily_category_region
             WHERE category = ANY($3) AND metric_date BETWEEN $1 AND $2",
            &[&from, &to, &categories],
        )
        .await?
        .get(0);
    let unmapped = snapshot
        .query_one(
            "SELECT coalesce(sum(amount_cents), 0)::bigint, count(*)
             FROM unmapped_transactions
             WHERE status = 'pending' AND metric_date BETWEEN $1 AND $2",
            &[&from, &to],
        )
        .await?;
    snapshot.commit().await?;
    let unmapped_cents: i64 = unmapped.get(0);
    let total = mapped + unmapped_cents;
    Ok(Json(MappedShare {
        range: query::DateRange { from, to },
        mapped_net_spend: dollars(mapped),
        unmapped_net_spend: dollars(unmapped_cents),
        unmapped_transactions: unmapped.get(1),
        mapped_share: (total > 0).then(|| ((mapped as f64 / total as f64) * 1e6).round() / 1e6),
    }))
}
