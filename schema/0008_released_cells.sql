-- The disclosure rule, kept at write time (docs/PRIVACY.md). A cell is one merchant in one
-- state on one day (agg_daily_merchant_spend); it is *released* once its sketch counts at
-- least k distinct customers. Every rollup (weekly and monthly merchant rows, daily, weekly
-- and monthly category rows) holds the sums of released cells only, and counts the withheld
-- ones, so every answer read from them is a sum of released cells and no difference of
-- answers reaches a withheld cell. The fact writer (altdata_facts::apply) keeps this as cells
-- change: a sketch never loses customers, so a cell is released at most once, and from then on
-- its changes flow into the rollups like any other.

-- k, for the whole deployment: the writer and the gateway read it here. Changing it
-- (`altdata disclosure --k N`) rebuilds every rollup.
CREATE TABLE IF NOT EXISTS disclosure (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    k integer NOT NULL CHECK (k BETWEEN 1 AND 10000),
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO disclosure (k) VALUES (10) ON CONFLICT DO NOTHING;

ALTER TABLE agg_daily_merchant_spend ADD COLUMN IF NOT EXISTS released boolean NOT NULL DEFAULT false;
-- What the cell's last upsert did to the rollups, written by that upsert so that the same
-- statement can read it back (RETURNING sees only the new row): 0 nothing (a withheld cell
-- changed), 1 a new withheld cell (counted as withheld), 2 its change added (a cell released
-- before, or a new cell released at once), 3 released now (all of it added, no longer counted
-- as withheld).
ALTER TABLE agg_daily_merchant_spend ADD COLUMN IF NOT EXISTS last_change smallint NOT NULL DEFAULT 0;
ALTER TABLE agg_weekly_merchant_spend ADD COLUMN IF NOT EXISTS withheld_cells integer NOT NULL DEFAULT 0;
ALTER TABLE agg_monthly_merchant_spend ADD COLUMN IF NOT EXISTS withheld_cells integer NOT NULL DEFAULT 0;
ALTER TABLE agg_daily_category_region ADD COLUMN IF NOT EXISTS withheld_cells integer NOT NULL DEFAULT 0;
ALTER TABLE agg_weekly_category_region ADD COLUMN IF NOT EXISTS withheld_cells integer NOT NULL DEFAULT 0;
ALTER TABLE agg_monthly_category_region ADD COLUMN IF NOT EXISTS withheld_cells integer NOT NULL DEFAULT 0;

-- The daily cells as every reader must see them: a withheld cell's sums are zero, its sketch
-- absent, and it counts as one withheld cell (the rollups' withheld_cells).
CREATE OR REPLACE VIEW released_daily_merchant_spend AS
SELECT merchant_id, region, metric_date,
       CASE WHEN released THEN total_spend_cents ELSE 0 END AS total_spend_cents,
       CASE WHEN released THEN transaction_count ELSE 0 END AS transaction_count,
       CASE WHEN released THEN refund_cents ELSE 0 END AS refund_cents,
       CASE WHEN released THEN refund_count ELSE 0 END AS refund_count,
       CASE WHEN released THEN customers END AS customers,
       CASE WHEN released THEN 0 ELSE 1 END AS withheld_cells
FROM agg_daily_merchant_spend;

-- Every rollup computed again from the daily cells at the current k: after k changes, after a
-- shard's daily cells are rebuilt (recovery), and once here for existing data. It locks the
-- fact tables against writers (readers go on) in the order writers take them, so a flush
-- waiting on it adds its change on top of the rebuilt rows. Category rows are written under
-- shard -2; writers go on adding to their own shards' rows, and readers sum over all.
CREATE OR REPLACE FUNCTION rebuild_released_rollups() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    threshold integer;
    cells bigint;
BEGIN
    LOCK TABLE agg_daily_merchant_spend, agg_weekly_merchant_spend, agg_monthly_merchant_spend,
               agg_daily_category_region, agg_weekly_category_region,
               agg_monthly_category_region IN EXCLUSIVE MODE;
    SELECT k INTO threshold FROM disclosure;
    UPDATE agg_daily_merchant_spend SET released = hll_cardinality(customers) >= threshold
     WHERE released IS DISTINCT FROM (hll_cardinality(customers) >= threshold);
    DELETE FROM agg_weekly_merchant_spend;
    DELETE FROM agg_monthly_merchant_spend;
    DELETE FROM agg_daily_category_region;
    DELETE FROM agg_weekly_category_region;
    DELETE FROM agg_monthly_category_region;
    INSERT INTO agg_weekly_merchant_spend (merchant_id, region, week_start, total_spend_cents,
        transaction_count, refund_cents, refund_count, customers, withheld_cells)
    SELECT merchant_id, region, date_trunc('week', metric_date::timestamp)::date,
           coalesce(sum(total_spend_cents) FILTER (WHERE released), 0),
           coalesce(sum(transaction_count) FILTER (WHERE released), 0),
           coalesce(sum(refund_cents) FILTER (WHERE released), 0),
           coalesce(sum(refund_count) FILTER (WHERE released), 0),
           coalesce(hll_union_agg_packed(customers) FILTER (WHERE released), hll_empty()),
           count(*) FILTER (WHERE NOT released)
    FROM agg_daily_merchant_spend GROUP BY 1, 2, 3;
    INSERT INTO agg_monthly_merchant_spend (merchant_id, region, month_start, total_spend_cents,
        transaction_count, refund_cents, refund_count, customers, withheld_cells)
    SELECT merchant_id, region, date_trunc('month', metric_date::timestamp)::date,
           coalesce(sum(total_spend_cents) FILTER (WHERE released), 0),
           coalesce(sum(transaction_count) FILTER (WHERE released), 0),
           coalesce(sum(refund_cents) FILTER (WHERE released), 0),
           coalesce(sum(refund_count) FILTER (WHERE released), 0),
           coalesce(hll_union_agg_packed(customers) FILTER (WHERE released), hll_empty()),
           count(*) FILTER (WHERE NOT released)
    FROM agg_daily_merchant_spend GROUP BY 1, 2, 3;
    INSERT INTO agg_daily_category_region (category, region, metric_date, shard,
        total_spend_cents, transaction_count, refund_cents, refund_count, customers,
        withheld_cells)
    SELECT coalesce(m.category, 'other'), d.region, d.metric_date, -2,
           coalesce(sum(d.total_spend_cents) FILTER (WHERE d.released), 0),
           coalesce(sum(d.transaction_count) FILTER (WHERE d.released), 0),
           coalesce(sum(d.refund_cents) FILTER (WHERE d.released), 0),
           coalesce(sum(d.refund_count) FILTER (WHERE d.released), 0),
           coalesce(hll_union_agg_packed(d.customers) FILTER (WHERE d.released), hll_empty()),
           count(*) FILTER (WHERE NOT d.released)
    FROM agg_daily_merchant_spend d LEFT JOIN dim_merchants m ON m.id = d.merchant_id
    GROUP BY 1, 2, 3;
    INSERT INTO agg_weekly_category_region (category, region, week_start, shard,
        total_spend_cents, transaction_count, refund_cents, refund_count, customers,
        withheld_cells)
    SELECT category, region, date_trunc('week', metric_date::timestamp)::date, -2,
           sum(total_spend_cents), sum(transaction_count), sum(refund_cents), sum(refund_count),
           hll_union_agg_packed(customers), sum(withheld_cells)
    FROM agg_daily_category_region GROUP BY 1, 2, 3;
    INSERT INTO agg_monthly_category_region (category, region, month_start, shard,
        total_spend_cents, transaction_count, refund_cents, refund_count, customers,
        withheld_cells)
    SELECT category, region, date_trunc('month', metric_date::timestamp)::date, -2,
           sum(total_spend_cents), sum(transaction_count), sum(refund_cents), sum(refund_count),
           hll_union_agg_packed(customers), sum(withheld_cells)
    FROM agg_daily_category_region GROUP BY 1, 2, 3;
    SELECT count(*) INTO cells FROM agg_daily_merchant_spend;
    RETURN cells;
END;
$$;

SELECT rebuild_released_rollups();
