-- Category rows are written per writer shard (schema/0002): sixteen flushes adding to one
-- (category, state, day) row would queue on its lock. Readers sum over every shard, so without
-- compaction a question about a category in a state over two weeks reads up to 14 × 16 rows
-- and unions as many sketches. Compaction folds the writers' rows of a table into the shard -2
-- rows that rebuild_released_rollups writes (sums added, sketches unioned): after it, a period
-- is one row per category (and state) until writers add to it again, and the next compaction
-- folds those. Answers do not change: a sum over all shards is the same before and after, and
-- a union of sketches is associative and idempotent. The aggregator compacts every
-- ALTDATA_AGG_COMPACT_INTERVAL (altdata_facts::compact); `altdata compact` does it once.
--
-- One table and one range of periods per call, each call its own transaction. It locks that
-- table against writers (readers go on), so a flush waiting on it adds its change afterwards,
-- to a row of its own shard; it holds one lock at a time, so it cannot deadlock with a writer.
-- It waits at most 2 s for the lock and gives up (SQLSTATE 55P03) rather than queue every
-- flush behind a long writer transaction; the next interval tries again. Finding the writers'
-- rows reads the table (an index on `shard` would cost every writer's insert); a range of a
-- month bounds how long writers wait after a backlog. A call that finds another compacting
-- (two aggregator replicas) returns at once.
CREATE OR REPLACE FUNCTION compact_category_rows(target text, first_day date, last_day date)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    key text;
    day_column text;
    moved bigint;
BEGIN
    SELECT k, d INTO key, day_column FROM (VALUES
        ('agg_daily_category_region', 'category, region, metric_date', 'metric_date'),
        ('agg_weekly_category_region', 'category, region, week_start', 'week_start'),
        ('agg_monthly_category_region', 'category, region, month_start', 'month_start'),
        ('agg_daily_category_national', 'category, metric_date', 'metric_date'),
        ('agg_weekly_category_national', 'category, week_start', 'week_start')
    ) AS tables (t, k, d) WHERE t = target;
    IF key IS NULL THEN
        RAISE EXCEPTION 'compact_category_rows: % is not a category table', target;
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtext('compact_category_rows'), hashtext(target)) THEN
        RETURN 0;
    END IF;
    PERFORM set_config('lock_timeout', '2s', true);
    EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', target);
    -- A data-modifying WITH runs to completion whether or not the query reads it.
    EXECUTE format(
        'WITH gone AS (
             DELETE FROM %1$I WHERE shard <> -2 AND %3$I BETWEEN $1 AND $2 RETURNING *),
         folded AS (
             INSERT INTO %1$I AS t (%2$s, shard, total_spend_cents, transaction_count,
                 refund_cents, refund_count, customers, withheld_cells)
             SELECT %2$s, -2, sum(total_spend_cents), sum(transaction_count),
                    sum(refund_cents), sum(refund_count), hll_union_agg_packed(customers),
                    sum(withheld_cells)
             FROM gone GROUP BY %2$s
             ON CONFLICT (%2$s, shard) DO UPDATE SET
                 total_spend_cents = t.total_spend_cents + excluded.total_spend_cents,
                 transaction_count = t.transaction_count + excluded.transaction_count,
                 refund_cents = t.refund_cents + excluded.refund_cents,
                 refund_count = t.refund_count + excluded.refund_count,
                 customers = hll_union(t.customers, excluded.customers),
                 withheld_cells = t.withheld_cells + excluded.withheld_cells)
         SELECT count(*) FROM gone',
        target, key, day_column) INTO moved USING first_day, last_day;
    RETURN moved;
END;
$$;
