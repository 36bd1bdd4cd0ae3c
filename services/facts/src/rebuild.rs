//! Rebuilding one shard's aggregates from the identity record, when events expired from the
//! stream before the shard applied them (`altdata recover-shard`). The identity record holds
//! every accepted row's current version, and the held rows say where review moved their
//! spend, so the shard's rows can be computed again without the stream:
//!
//! - the daily rows of the shard's merchants from `from` on: each row's current contribution
//!   (its event's merchant; for a held row, the brand review assigned it to, or the
//!   unattributed merchant it counts under while it waits);
//! - the shard's daily category rows from `from` on: the rows whose event went to one of the
//!   shard's merchants (review's moves live in the review shard's rows, untouched);
//! - every weekly and monthly row of both, again from the daily rows.
//!
//! Days before `from` (older than the restatement horizon, whose identities are purged) keep
//! their rows. Sums and counts are exact; the sketches are exact too, and hold no customer of a
//! retracted version (the incremental ones could not take those out).

/// The current contribution of every identity from `$1` on.
const CURRENT: &str = "
current AS (
    SELECT i.merchant_id AS event_merchant,
           CASE WHEN NOT i.held THEN i.merchant_id
                WHEN u.status = 'assigned' THEN u.merchant_id
                WHEN u.status IN ('pending', 'ignored') THEN u.counted_merchant_id
           END AS merchant_id,
           coalesce(u.region, i.region) AS region,
           coalesce(u.metric_date, i.metric_date) AS metric_date,
           coalesce(u.amount_cents, i.amount_cents) AS amount,
           coalesce(u.customer_key, i.customer_key) AS customer_key,
           i.region AS event_region, i.metric_date AS event_date, i.amount_cents AS event_amount,
           i.customer_key AS event_key
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

/// What a rebuild rewrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    pub merchant_days: u64,
    pub category_days: u64,
}

/// Rebuilds the aggregates of `merchants` (the shard's) and the category rows of `shard`, in
/// the caller's transaction; the daily partitions from `from` on must exist.
pub async fn rebuild_shard(
    transaction: &deadpool_postgres::Transaction<'_>,
    shard: i32,
    merchants: &[i64],
    from: chrono::NaiveDate,
) -> Result<Rebuilt, tokio_postgres::Error> {
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
    for (table, period) in [
        ("agg_weekly_merchant_spend", "week_start"),
        ("agg_monthly_merchant_spend", "month_start"),
    ] {
        let unit = if period == "week_start" {
            "week"
        } else {
            "month"
        };
        transaction
            .execute(
                &format!("DELETE FROM {table} WHERE merchant_id = ANY($1)"),
                &[&merchants],
            )
            .await?;
        transaction
            .execute(
                &format!(
                    "INSERT INTO {table} (merchant_id, region, {period}, total_spend_cents,
                         transaction_count, refund_cents, refund_count, customers)
                     SELECT merchant_id, region, date_trunc('{unit}', metric_date::timestamp)::date,
                            sum(total_spend_cents), sum(transaction_count), sum(refund_cents),
                            sum(refund_count), hll_union_agg_packed(customers)
                     FROM agg_daily_merchant_spend WHERE merchant_id = ANY($1)
                     GROUP BY 1, 2, 3"
                ),
                &[&merchants],
            )
            .await?;
    }
    transaction
        .execute(
            "DELETE FROM agg_daily_category_region WHERE shard = $2 AND metric_date >= $1",
            &[&from, &shard],
        )
        .await?;
    let category_days = transaction
        .execute(
            &format!(
                "WITH {CURRENT}
                 INSERT INTO agg_daily_category_region (category, region, metric_date, shard,
                     total_spend_cents, transaction_count, refund_cents, refund_count, customers)
                 SELECT coalesce(m.category, 'other'), c.event_region, c.event_date, $3,
                        coalesce(sum(c.event_amount) FILTER (WHERE c.event_amount >= 0), 0)::bigint,
                        count(*) FILTER (WHERE c.event_amount >= 0),
                        coalesce(sum(-c.event_amount) FILTER (WHERE c.event_amount < 0), 0)::bigint,
                        count(*) FILTER (WHERE c.event_amount < 0),
                        hll_add_agg_packed(hll_hash_bigint(c.event_key))
                 FROM current c LEFT JOIN dim_merchants m ON m.id = c.event_merchant
                 WHERE c.event_merchant = ANY($2)
                 GROUP BY 1, 2, 3"
            ),
            &[&from, &merchants, &shard],
        )
        .await?;
    for (table, period) in [
        ("agg_weekly_category_region", "week_start"),
        ("agg_monthly_category_region", "month_start"),
    ] {
        let unit = if period == "week_start" {
            "week"
        } else {
            "month"
        };
        transaction
            .execute(&format!("DELETE FROM {table} WHERE shard = $1"), &[&shard])
            .await?;
        transaction
            .execute(
                &format!(
                    "INSERT INTO {table} (category, region, {period}, shard, total_spend_cents,
                         transaction_count, refund_cents, refund_count, customers)
                     SELECT category, region, date_trunc('{unit}', metric_date::timestamp)::date,
                            $1, sum(total_spend_cents), sum(transaction_count), sum(refund_cents),
                            sum(refund_count), hll_union_agg_packed(customers)
                     FROM agg_daily_category_region WHERE shard = $1
                     GROUP BY 1, 2, 3"
                ),
                &[&shard],
            )
            .await?;
    }
    Ok(Rebuilt {
        merchant_days,
        category_days,
    })
}
