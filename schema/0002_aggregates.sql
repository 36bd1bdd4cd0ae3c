-- Pre-aggregates. No raw transaction lives here. Every key starts with its distribution
-- column (merchant_id or category) so the schema runs unchanged on Citus.
--
-- total_spend_cents is gross sales; refunds are kept apart as positive cents; net spend is
-- total_spend_cents - refund_cents. customers is a HyperLogLog of customer keys.

CREATE TABLE IF NOT EXISTS agg_daily_merchant_spend (
    merchant_id bigint NOT NULL,
    region text NOT NULL,
    metric_date date NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, region, metric_date)
) PARTITION BY RANGE (metric_date);

CREATE TABLE IF NOT EXISTS agg_weekly_merchant_spend (
    merchant_id bigint NOT NULL,
    region text NOT NULL,
    week_start date NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    PRIMARY KEY (merchant_id, region, week_start)
);

CREATE TABLE IF NOT EXISTS agg_monthly_merchant_spend (
    merchant_id bigint NOT NULL,
    region text NOT NULL,
    month_start date NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    PRIMARY KEY (merchant_id, region, month_start)
);

-- Category by region, written per shard so that no two aggregators contend for one row;
-- readers sum over shards (and union the sketches).
CREATE TABLE IF NOT EXISTS agg_daily_category_region (
    category text NOT NULL,
    region text NOT NULL,
    metric_date date NOT NULL,
    shard integer NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    PRIMARY KEY (category, region, metric_date, shard)
);

CREATE TABLE IF NOT EXISTS agg_weekly_category_region (
    category text NOT NULL,
    region text NOT NULL,
    week_start date NOT NULL,
    shard integer NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    PRIMARY KEY (category, region, week_start, shard)
);

CREATE TABLE IF NOT EXISTS agg_monthly_category_region (
    category text NOT NULL,
    region text NOT NULL,
    month_start date NOT NULL,
    shard integer NOT NULL,
    total_spend_cents bigint NOT NULL DEFAULT 0,
    transaction_count bigint NOT NULL DEFAULT 0,
    refund_cents bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    customers hll NOT NULL DEFAULT hll_empty(),
    PRIMARY KEY (category, region, month_start, shard)
);

-- Creates the monthly partitions of agg_daily_merchant_spend covering [first_day, last_day].
-- Safe to call concurrently (an advisory lock serialises creators) and repeatedly.
CREATE OR REPLACE FUNCTION ensure_daily_partitions(first_day date, last_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month date := date_trunc('month', first_day)::date;
    created integer := 0;
    partition_name text;
BEGIN
    IF last_day < first_day THEN
        RETURN 0;
    END IF;
    IF last_day - first_day > 3660 THEN
        RAISE EXCEPTION 'partition range % to % is longer than ten years', first_day, last_day;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('ensure_daily_partitions'));
    WHILE month <= last_day LOOP
        partition_name := format('agg_daily_merchant_spend_%s', to_char(month, 'YYYY_MM'));
        IF to_regclass(partition_name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF agg_daily_merchant_spend FOR VALUES FROM (%L) TO (%L)',
                partition_name, month, (month + interval '1 month')::date);
            created := created + 1;
        END IF;
        month := (month + interval '1 month')::date;
    END LOOP;
    RETURN created;
END;
$$;

-- Months ahead of today, so the usual day never waits for DDL.
SELECT ensure_daily_partitions((date_trunc('month', now()) - interval '1 month')::date,
                               (date_trunc('month', now()) + interval '3 months')::date);
