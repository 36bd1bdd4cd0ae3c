-- Analyst-grade numbers (issue #22): the panel of active cards, so that spend can be read per
-- active card (`normalize=panel`) and panel change told apart from consumer behaviour.
--
-- The panel: distinct customer keys with at least one accepted transaction, per provider, state
-- and day, as a HyperLogLog sketch. Written by the fact writer (altdata_facts::apply) in the
-- flush transaction, so it is exactly-once like every other aggregate. A card shops at
-- merchants of many shards, so the rows are written per writer (`shard`, as the category rows)
-- and unioned at read time; the union of sketches is idempotent and exact as a union.
--
-- Precision: log2m 14 (16,384 registers, 5-bit), a relative standard error of
-- 1.04 / sqrt(16384) = 0.81 % on a period's count, and exact below ~1,600 cards per row (the
-- explicit representation). The customers sketches of the spend tables keep the extension's
-- default (log2m 11, 2.3 %): a ratio of two panel counts must be finer than the panel changes
-- it measures. The distribution column is `provider`, first in the key.
CREATE TABLE IF NOT EXISTS agg_daily_panel (
    provider text NOT NULL,
    region text NOT NULL,
    metric_date date NOT NULL,
    shard integer NOT NULL,
    cards hll NOT NULL DEFAULT hll_empty(14, 5),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, region, metric_date, shard)
);
ALTER TABLE agg_daily_panel SET (fillfactor = 50);
CREATE INDEX IF NOT EXISTS agg_daily_panel_day ON agg_daily_panel (metric_date, region);

-- hll_add_agg_packed (schema/0003) at the panel's precision.
DO $$
BEGIN
    EXECUTE format(
        'CREATE OR REPLACE AGGREGATE hll_add_agg_panel(hll_hashval) '
        '(SFUNC = hll_add, STYPE = hll, INITCOND = %L, PARALLEL = SAFE)',
        hll_empty(14, 5)::text);
END
$$;

-- The disclosure rule for the panel (docs/PRIVACY.md): a panel cell is one provider's cards in
-- one state on one day; it is released when the union over writers counts at least k cards.
-- A withheld cell's sketch is absent and it counts as one withheld cell. The gateway reads the
-- panel only through this view (it is granted nothing else of the panel), so every published
-- panel count is a union of released cells.
CREATE OR REPLACE VIEW released_daily_panel AS
SELECT provider, region, metric_date,
       CASE WHEN released THEN cards END AS cards,
       CASE WHEN released THEN 0 ELSE 1 END AS withheld_cells
FROM (
    SELECT provider, region, metric_date, hll_union_agg(cards) AS cards,
           hll_cardinality(hll_union_agg(cards)) >= (SELECT k FROM disclosure) AS released
    FROM agg_daily_panel
    GROUP BY provider, region, metric_date
) AS cell;

GRANT SELECT ON released_daily_panel TO altdata_reader;
