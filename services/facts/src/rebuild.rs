//! Rebuilding one shard's aggregates from the identity record, when events expired from the
//! stream before the shard applied them (`altdata recover-shard`). The identity record holds
//! every accepted row's current version, and the held rows say where review moved their
//! spend, so the shard's rows can be computed again without the stream:
//!
//! - the daily rows of the shard's merchants from `from` on: each row's current contribution
//!   (its event's merchant; for a held row, the brand review assigned it to, or the
//!   unattributed merchant it counts under while it waits);
//! - then every rollup, from the daily cells at the current k (`rebuild_released_rollups`,
//!   schema/0008): the rollups hold released cells only, and which cells those are is not a
//!   matter of one shard.
//!
//! The fact tables are locked against writers first (readers go on), in the order writers take
//! them, so a flush of another shard waits and then adds its change on top. Days before `from`
//! (older than the restatement horizon, whose identities are purged) keep their rows. Sums and
//! counts are exact; the rebuilt sketches are exact too, and hold no customer of a retracted
//! version (the incremental ones could not take those out).

/// The current contribution of every identity from `$1` on.
const CURRENT: &str = "
current AS (
    SELECT CASE WHEN NOT i.held THEN i.merchant_id
                WHEN u.status = 'assigned' THEN u.merchant_id
                WHEN u.status IN ('pending', 'ignored') THEN u.counted_merchant_id
           END AS merchant_id,
           coalesce(u.region, i.region) AS region,
           coalesce(u.metric_date, i.metric_date) AS metric_date,
           coalesce(u.amount_cents, i.amount_cents) AS amount,
           coalesce(u.customer_key, i.customer_key) AS customer_key
    FROM txn_identity i
    LEFT JOIN unmapped_transactions u
      ON i.held AND u.provider = i.provider AND u.txn_id = i.txn_id
    WHERE i.retracted_at IS NULL AND i.metric_date >= $1
)";

/// Sums of a set of amounts, as the fact tables keep them.
const SUMS: &str = "
    coalesce(sum(amount) FILTER (WHERE amount >= 0), 0)::bigint,
    count(*) FILTER (WHERE amount >= 0),
    coalesce(sum(-amount) FILTER (WHERE amount < 0), 0)::bigint,
    count(*) FILTER (WHERE amount < 0),
    hll_add_agg_packed(hll_hash_bigint(customer_key))";

/// Locks the fact tables against writers in the order writers take them (readers go on).
const LOCK_FACT_TABLES: &str = "LOCK TABLE agg_daily_merchant_spend, agg_weekly_merchant_spend,
    agg_monthly_merchant_spend, agg_daily_category_region, agg_weekly_category_region,
    agg_monthly_category_region, agg_daily_category_national, agg_weekly_category_national,
    agg_daily_merchant_national, agg_weekly_merchant_national IN EXCLUSIVE MODE";

/// What a rebuild rewrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    /// Daily cells of the shard's merchants written again.
    pub merchant_days: u64,
    /// Daily cells every rollup was computed again from.
    pub cells: u64,
}

/// Rebuilds the daily cells of `merchants` (a shard's) from `from` on, then every rollup, in
/// the caller's transaction; the daily partitions from `from` on must exist.
pub async fn rebuild_shard(
    transaction: &deadpool_postgres::Transaction<'_>,
    merchants: &[i64],
    from: chrono::NaiveDate,
) -> Result<Rebuilt, tokio_postgres::Error> {
    transaction.batch_execute(LOCK_FACT_TABLES).await?;
    transaction
        .execute(
            "DELETE FROM agg_daily_merchant_spend WHERE merchant_id = ANY($2) AND metric_date >= $1",
            &[&from, &merchants],
        )
        .await?;
    let merchant_days = transaction
        .execute(
            &format!(
                "WITH {CURRENT}
                 INSERT INTO agg_daily_merchant_spend (merchant_id, region, metric_date,
                     total_spend_cents, transaction_count, refund_cents, refund_count, customers)
                 SELECT merchant_id, region, metric_date, {SUMS}
                 FROM current WHERE merchant_id = ANY($2)
                 GROUP BY 1, 2, 3"
            ),
            &[&from, &merchants],
        )
        .await?;
    let row = transaction
        .query_one("SELECT rebuild_released_rollups()", &[])
        .await?;
    let cells: i64 = row.get(0);
    Ok(Rebuilt {
        merchant_days,
        cells: cells as u64,
    })
}

/// Rebuilds the shard's panel rows (`agg_daily_panel`, schema/0011) from `from` on, in the
/// caller's transaction: the cards of every identity whose event counted under one of
/// `merchants` (the shard's), retracted ones included, since the incremental panel keeps a
/// card whose transaction was retracted (it was active). Only this shard writes these rows.
pub async fn rebuild_shard_panel(
    transaction: &deadpool_postgres::Transaction<'_>,
    shard: u32,
    merchants: &[i64],
    from: chrono::NaiveDate,
) -> Result<u64, tokio_postgres::Error> {
    let shard = i32::try_from(shard).unwrap_or(i32::MAX);
    transaction
        .execute(
            "DELETE FROM agg_daily_panel WHERE shard = $2 AND metric_date >= $1",
            &[&from, &shard],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO agg_daily_panel (provider, region, metric_date, shard, cards)
             SELECT provider,
                    CASE WHEN region ~ '^[A-Za-z]{2}$' THEN upper(region) ELSE 'XX' END,
                    metric_date, $2, hll_add_agg_panel(hll_hash_bigint(customer_key))
             FROM txn_identity
             WHERE metric_date >= $1 AND merchant_id = ANY($3)
             GROUP BY 1, 2, 3",
            &[&from, &shard, &merchants],
        )
        .await
}

/// The cause of the cache invalidation [`set_disclosure_k`] writes: gateways make every cached
/// answer unreachable on it.
pub const DISCLOSURE_CHANGED: &str = "disclosure";

/// What the database holds for the disclosure rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disclosure {
    pub k: u32,
    /// Daily cells, and those released at k.
    pub cells: i64,
    pub released_cells: i64,
}

/// The disclosure rule's k and how many daily cells it releases.
pub async fn disclosure(
    client: &impl tokio_postgres::GenericClient,
) -> Result<Disclosure, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT (SELECT k FROM disclosure), count(*), count(*) FILTER (WHERE released)
             FROM agg_daily_merchant_spend",
            &[],
        )
        .await?;
    Ok(Disclosure {
        k: u32::try_from(row.get::<_, i32>(0)).unwrap_or(u32::MAX),
        cells: row.get(1),
        released_cells: row.get(2),
    })
}

/// Sets k and recomputes every rollup at it (`rebuild_released_rollups`), in the caller's
/// transaction, with a cache invalidation that reaches every cached answer.
pub async fn set_disclosure_k(
    transaction: &deadpool_postgres::Transaction<'_>,
    k: u32,
) -> Result<Disclosure, tokio_postgres::Error> {
    let k = i32::try_from(k).unwrap_or(i32::MAX);
    transaction
        .execute("UPDATE disclosure SET k = $1, changed_at = now()", &[&k])
        .await?;
    transaction
        .query_one("SELECT rebuild_released_rollups()", &[])
        .await?;
    let invalidation = altdata_proto::v1::CacheInvalidation {
        schema_version: altdata_proto::SCHEMA_VERSION,
        categories: altdata_domain::Category::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        committed_at_ms: chrono::Utc::now().timestamp_millis(),
        cause: DISCLOSURE_CHANGED.to_owned(),
        ..Default::default()
    };
    transaction
        .execute(
            "INSERT INTO outbox (kind, payload) VALUES ('cache_invalidation', $1)",
            &[&altdata_proto::Message::encode_to_vec(&invalidation)],
        )
        .await?;
    disclosure(&**transaction).await
}
