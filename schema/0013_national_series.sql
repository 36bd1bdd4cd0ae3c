-- Every state at once, precomputed. A question over all states (no `state`) summed every
-- state's rows at read time: ~1,000 category × state × week rows with their sketches for a
-- weekly category series, a merchant's ~50 states per day for its daily series. These rollups
-- hold the same sums over all regions (the `XX` rows without a location included), so such a
-- question reads one row per period (per writer shard for a category).
--
-- Like every rollup (schema/0008) they hold released cells only and count the withheld ones,
-- and they are written only by the fact writer (altdata_facts::apply) from the same released
-- changes as the per-state rollups, in the same statement: each is exactly the sum of the
-- per-state rows it stands for, so an answer read from it is the same answer, and no
-- difference of answers reaches a withheld cell. Category rows are per writer shard, like
-- agg_*_category_region: every shard writes each category.

CREATE TABLE IF NOT EXISTS agg_daily_category_national (
    category text NOT NULL,
    metric_date date NOT NULL,
    shard integer NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    withheld_cells integer NOT NULL DEFAULT 0,
    PRIMARY KEY (category, metric_date, shard)
) WITH (fillfactor = 50);

CREATE TABLE IF NOT EXISTS agg_weekly_category_national (
    category text NOT NULL,
    week_start date NOT NULL,
    shard integer NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    withheld_cells integer NOT NULL DEFAULT 0,
    PRIMARY KEY (category, week_start, shard)
) WITH (fillfactor = 50);

CREATE TABLE IF NOT EXISTS agg_daily_merchant_national (
    merchant_id bigint NOT NULL,
    metric_date date NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    withheld_cells integer NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, metric_date)
) WITH (fillfactor = 50);

CREATE TABLE IF NOT EXISTS agg_weekly_merchant_national (
    merchant_id bigint NOT NULL,
    week_start date NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    withheld_cells integer NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, week_start)
) WITH (fillfactor = 50);

GRANT SELECT ON agg_daily_category_national, agg_weekly_category_national,
    agg_daily_merchant_national, agg_weekly_merchant_national TO altdata_reader;

-- Every rollup computed again from the daily cells at the current k (schema/0008), these
-- included: after k changes, after a shard's daily cells are rebuilt, and once here for the
-- data already written. The national rows are computed from the per-state ones, which are
-- their definition.
CREATE OR REPLACE FUNCTION rebuild_released_rollups() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    threshold integer;
    cells bigint;
BEGIN
    LOCK TABLE agg_daily_merchant_spend, agg_weekly_merchant_spend, agg_monthly_merchant_spend,
               agg_daily_category_region, agg_weekly_category_region,
               agg_monthly_category_region, agg_daily_category_national,
               agg_weekly_category_national, agg_daily_merchant_national,
               agg_weekly_merchant_national IN EXCLUSIVE MODE;
    SELECT k INTO threshold FROM disclosure;
    UPDATE agg_daily_merchant_spend SET released = hll_cardinality(customers) >= threshold
     WHERE released IS DISTINCT FROM (hll_cardinality(customers) >= threshold);
    DELETE FROM agg_weekly_merchant_spend;
    DELETE FROM agg_monthly_merchant_spend;
    DELETE FROM agg_daily_category_region;
    DELETE FROM agg_weekly_category_region;
    DELETE FROM agg_monthly_category_region;
    DELETE FROM agg_daily_category_national;
    DELETE FROM agg_weekly_category_national;
    DELETE FROM agg_daily_merchant_national;
    DELETE FROM agg_weekly_merchant_national;
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
    INSERT INTO agg_daily_merchant_national (merchant_id, metric_date, total_spend_cents,
        transaction_count, refund_cents, refund_count, customers, withheld_cells)
    SELECT merchant_id, metric_date,
           coalesce(sum(total_spend_cents) FILTER (WHERE released), 0),
           coalesce(sum(transaction_count) FILTER (WHERE released), 0),
           coalesce(sum(refund_cents) FILTER (WHERE released), 0),
           coalesce(sum(refund_count) FILTER (WHERE released), 0),
           coalesce(hll_union_agg_packed(customers) FILTER (WHERE released), hll_empty()),
           count(*) FILTER (WHERE NOT released)
    FROM agg_daily_merchant_spend GROUP BY 1, 2;
    INSERT INTO agg_weekly_merchant_national (merchant_id, week_start, total_spend_cents,
        transaction_count, refund_cents, refund_count, customers, withheld_cells)
    SELECT merchant_id, date_trunc('week', metric_date::timestamp)::date,
           sum(total_spend_cents), sum(transaction_count), sum(refund_cents), sum(refund_count),
           hll_union_agg_packed(customers), sum(withheld_cells)
    FROM agg_daily_merchant_national GROUP BY 1, 2;
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
    INSERT INTO agg_daily_category_national (category, metric_date, shard, total_spend_cents,
        transaction_count, refund_cents, refund_count, customers, withheld_cells)
    SELECT category, metric_date, -2,
           sum(total_spend_cents), sum(transaction_count), sum(refund_cents), sum(refund_count),
           hll_union_agg_packed(customers), sum(withheld_cells)
    FROM agg_daily_category_region GROUP BY 1, 2;
    INSERT INTO agg_weekly_category_national (category, week_start, shard, total_spend_cents,
        transaction_count, refund_cents, refund_count, customers, withheld_cells)
    SELECT category, date_trunc('week', metric_date::timestamp)::date, -2,
           sum(total_spend_cents), sum(transaction_count), sum(refund_cents), sum(refund_count),
           hll_union_agg_packed(customers), sum(withheld_cells)
    FROM agg_daily_category_national GROUP BY 1, 2;
    SELECT count(*) INTO cells FROM agg_daily_merchant_spend;
    RETURN cells;
END;
$$;

SELECT rebuild_released_rollups();
