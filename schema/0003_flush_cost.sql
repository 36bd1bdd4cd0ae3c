-- Cheaper flushes (services/aggregator/src/flush.rs), with byte-identical results.
--
-- 1. HLL aggregates whose state is the packed `hll` value. `hll_add_agg` and `hll_union_agg`
--    keep an unpacked multiset of ~128 KiB per group (`hll_add_agg` zeroes all of it), so
--    grouping the thousands of small groups of a flush (most hold one to three customers) costs
--    far more than the additions themselves, and a hash aggregate, sized for 8 MiB, spills to
--    disk after ~60 groups. These apply the same per-value steps (`hll_add`, `hll_union`) to a
--    packed value; the representation is canonical (sorted explicit set or registers), so the
--    results are the same bytes. `hll_add_agg_packed`'s initial value is `hll_empty()` with the
--    extension's defaults, taken when this migration runs, as `hll_add_agg(hll_hashval)` does.
DO $$
BEGIN
    EXECUTE format(
        'CREATE OR REPLACE AGGREGATE hll_add_agg_packed(hll_hashval) '
        '(SFUNC = hll_add, STYPE = hll, INITCOND = %L, PARALLEL = SAFE)',
        hll_empty()::text);
END
$$;
CREATE OR REPLACE AGGREGATE hll_union_agg_packed(hll) (
    SFUNC = hll_union, STYPE = hll, PARALLEL = SAFE
);

-- 2. Room on each page of the rollups for the next version of its rows. Every flush rewrites
--    many rollup rows (the week's and month's merchant rows, the category rows of every
--    flush, dense HLLs of ~1.3 kB); with full pages the new version goes to another page,
--    which adds an entry to the primary key (a second B-tree descent, more WAL, a bigger index
--    for every later upsert to search). With free space the update is HOT: same page, no new
--    index entry, the old version pruned on a later visit. The daily partitions keep the
--    default: their rows go cold after their day, and measured, the free space bought little
--    there for twice the size of the largest table. Existing pages keep their fill until
--    rewritten; new pages use the setting.
ALTER TABLE agg_weekly_merchant_spend SET (fillfactor = 50);
ALTER TABLE agg_monthly_merchant_spend SET (fillfactor = 50);
ALTER TABLE agg_daily_category_region SET (fillfactor = 50);
ALTER TABLE agg_weekly_category_region SET (fillfactor = 50);
ALTER TABLE agg_monthly_category_region SET (fillfactor = 50);
