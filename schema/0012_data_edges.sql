-- The first and last day with any fact, per writer shard (the category rows' `shard`): what
-- every answer reads to tell "no data" from zero (gateway `query::coverage`). One row per shard,
-- widened by the fact writer in each flush transaction, so no flush waits on another's row and
-- an answer reads a handful of rows instead of an index descent per category and state.
CREATE TABLE IF NOT EXISTS data_edges (
    shard integer PRIMARY KEY,
    first_day date NOT NULL,
    last_day date NOT NULL
);

INSERT INTO data_edges (shard, first_day, last_day)
SELECT shard, min(metric_date), max(metric_date) FROM agg_daily_category_region GROUP BY shard
ON CONFLICT (shard) DO NOTHING;

GRANT SELECT ON data_edges TO altdata_reader;
