-- Category rows are written per writer shard (schema/0003): sixteen flushes adding to one
-- (category, state, day) row would queue on its lock. Readers sum over every shard, so a
-- question about a category in a state over two weeks read 14 × 16 rows and unioned as many
-- sketches. Compaction folds every writer's row of a table into the shard -2 row that
-- rebuild_released_rollups writes (sums added, sketches unioned), so a settled period is one
-- row per category (and state); writers go on adding to their own shards' rows, and the next
-- compaction folds those. Answers do not change: a sum over all shards is the same before and
-- after, and a union of sketches is associative and idempotent. The aggregator compacts every
-- ALTDATA_AGG_COMPACT_INTERVAL (altdata_facts::compact); `altdata compact` does it once.
--
-- One table per call, each call its own transaction: it locks that table against writers
-- (readers go on), so a flush waiting on it adds its change afterwards, to a row of its own
-- shard, and waits at most for one table's compaction. Holding one table's lock at a time, it
-- cannot deadlock with a writer, whatever order the writer takes the tables in.
CREATE OR REPLACE FUNCTION compact_category_rows(target text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    key text;
    moved bigint;
BEGIN
    key := CASE target
        WHEN 'agg_daily_category_region' THEN 'category, region, metric_date'
        WHEN 'agg_weekly_category_region' THEN 'category, region, week_start'
        WHEN 'agg_monthly_category_region' THEN 'category, region, month_start'
        WHEN 'agg_daily_category_national' THEN 'category, metric_date'
        WHEN 'agg_weekly_category_national' THEN 'category, week_start'
    END;
    IF key IS NULL THEN
        RAISE EXCEPTION 'compact_category_rows: % is not a category table', target;
    END IF;
    EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', target);
    -- A data-modifying WITH runs to completion whether or not the query reads it.
    EXECUTE format(
        'WITH gone AS (DELETE FROM %1$I WHERE shard <> -2 RETURNING *),
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
        target, key) INTO moved;
    RETURN moved;
END;
$$;
