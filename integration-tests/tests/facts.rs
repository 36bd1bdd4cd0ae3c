//! The fact writer (`altdata-facts`) against PostgreSQL: what it adds it can take back exactly,
//! and the sketches it writes are byte for byte the reference `hll_add_agg` of the same keys.

use altdata_domain::date_to_epoch_days;
use altdata_facts::{CategoryShard, CellKey, Cells};
use chrono::NaiveDate;
use integration_tests::{spawn_app, TestApp};
use std::collections::BTreeMap;

/// Every table's rows as (key text, sums and counts), zero rows left out: a table "as it was"
/// has the same map.
async fn sums(app: &TestApp) -> BTreeMap<String, [i64; 4]> {
    let client = app.client().await;
    let mut all = BTreeMap::new();
    for (table, key) in [
        (
            "agg_daily_merchant_spend",
            "merchant_id::text, region, metric_date::text",
        ),
        (
            "agg_weekly_merchant_spend",
            "merchant_id::text, region, week_start::text",
        ),
        (
            "agg_monthly_merchant_spend",
            "merchant_id::text, region, month_start::text",
        ),
        (
            "agg_daily_category_region",
            "category, region, metric_date::text, shard::text",
        ),
        (
            "agg_weekly_category_region",
            "category, region, week_start::text, shard::text",
        ),
        (
            "agg_monthly_category_region",
            "category, region, month_start::text, shard::text",
        ),
        (
            "agg_daily_category_national",
            "category, metric_date::text, shard::text",
        ),
        (
            "agg_weekly_category_national",
            "category, week_start::text, shard::text",
        ),
        (
            "agg_daily_merchant_national",
            "merchant_id::text, metric_date::text",
        ),
        (
            "agg_weekly_merchant_national",
            "merchant_id::text, week_start::text",
        ),
    ] {
        let rows = client
            .query(
                &format!(
                    "SELECT concat_ws('|', '{table}', {key}), total_spend_cents, transaction_count,
                            refund_cents, refund_count FROM {table}"
                ),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        for row in rows {
            let values = [row.get(1), row.get(2), row.get(3), row.get(4)];
            if values != [0; 4] {
                all.insert(row.get::<_, String>(0), values);
            }
        }
    }
    all
}

fn day(text: &str) -> i32 {
    date_to_epoch_days(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default())
}

/// Transactions over two merchants, three regions and days across a week and a month boundary.
fn transactions(merchants: [i64; 2]) -> Vec<(CellKey, i64, u64)> {
    let days = [
        "2026-10-30",
        "2026-10-31",
        "2026-11-01",
        "2026-11-02",
        "2026-11-09",
    ];
    let mut list = Vec::new();
    for n in 0..400u64 {
        let merchant = merchants[(n % 2) as usize];
        let region = ["CA", "NY", ""][(n % 3) as usize];
        let key = CellKey::new(merchant, region, day(days[(n % 5) as usize]));
        let amount = if n % 7 == 0 {
            -((n as i64) * 13 + 5)
        } else {
            (n as i64) * 101 + 99
        };
        list.push((key, amount, n % 37));
    }
    list
}

async fn apply(app: &TestApp, cells: &Cells, shard: CategoryShard) {
    let mut client = app.client().await;
    let transaction = client.transaction().await.unwrap_or_else(|e| panic!("{e}"));
    altdata_facts::apply(&transaction, cells, shard, "test")
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    transaction.commit().await.unwrap_or_else(|e| panic!("{e}"));
}

async fn catalogue_ids(app: &TestApp) -> [i64; 2] {
    let client = app.client().await;
    let id = |brand: &'static str| {
        let client = &client;
        async move {
            integration_tests::scalar::<i64>(
                client,
                &format!("SELECT id FROM dim_merchants WHERE brand_id = '{brand}'"),
            )
            .await
        }
    };
    [id("starbucks").await, id("chevron").await]
}

/// A fresh app whose daily partitions hold [`transactions`]' days, and its two merchants.
async fn spawn_with_days() -> (TestApp, [i64; 2]) {
    let app = spawn_app().await;
    app.client()
        .await
        .batch_execute("SELECT ensure_daily_partitions('2026-10-01', '2026-11-30')")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let merchants = catalogue_ids(&app).await;
    (app, merchants)
}

async fn compact(app: &TestApp) -> altdata_facts::Compacted {
    let client = app.pool.get().await.unwrap_or_else(|e| panic!("{e}"));
    altdata_facts::compact(&client)
        .await
        .unwrap_or_else(|e| panic!("compact: {e}"))
}

#[tokio::test]
async fn adding_then_subtracting_leaves_every_table_as_it_was() {
    let (app, merchants) = spawn_with_days().await;
    // Something there before, written by a stream shard.
    let mut before = Cells::default();
    for (key, amount, customer) in transactions(merchants).into_iter().step_by(3) {
        before.add(key, amount, customer);
    }
    apply(&app, &before, CategoryShard::Stream(2)).await;
    let as_it_was = sums(&app).await;
    assert!(!as_it_was.is_empty());

    let mut added = Cells::default();
    let mut subtracted = Cells::default();
    for (key, amount, customer) in transactions(merchants) {
        added.add(key, amount, customer);
        subtracted.subtract(key, amount);
    }
    apply(&app, &added, CategoryShard::Review).await;
    assert_ne!(sums(&app).await, as_it_was, "the addition changed nothing");
    apply(&app, &subtracted, CategoryShard::Review).await;
    assert_eq!(sums(&app).await, as_it_was);
}

#[tokio::test]
async fn sketches_are_the_reference_aggregate_of_the_same_keys() {
    let (app, merchants) = spawn_with_days().await;
    // Two flushes of one shard, as the aggregator would write them.
    let list = transactions(merchants);
    let (first, second) = list.split_at(150);
    let mut expected_keys: BTreeMap<CellKey, Vec<i64>> = BTreeMap::new();
    for part in [first, second] {
        let mut cells = Cells::default();
        for &(key, amount, customer) in part {
            cells.add(key, amount, customer);
            expected_keys.entry(key).or_default().push(customer as i64);
        }
        apply(&app, &cells, CategoryShard::Stream(0)).await;
    }
    let client = app.client().await;
    for (key, customers) in &expected_keys {
        let date = altdata_domain::epoch_days_to_date(key.metric_date);
        let same: bool = client
            .query_one(
                "SELECT t.customers = (SELECT hll_add_agg(hll_hash_bigint(k)) FROM unnest($4::bigint[]) k)
                 FROM agg_daily_merchant_spend t
                 WHERE merchant_id = $1 AND region = $2 AND metric_date = $3",
                &[&key.merchant_id, &key.region_str(), &date, customers],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .get(0);
        assert!(
            same,
            "sketch of {key:?} differs from the reference aggregate"
        );
    }
    // The monthly category rows: the union of their days' keys.
    let same_monthly: bool = client
        .query_one(
            "SELECT bool_and(t.customers = r.customers)
             FROM agg_monthly_category_region t
             JOIN (SELECT m.category, d.region, date_trunc('month', d.metric_date)::date AS month_start,
                          hll_union_agg(d.customers) AS customers
                   FROM agg_daily_merchant_spend d JOIN dim_merchants m ON m.id = d.merchant_id
                   GROUP BY 1, 2, 3) r
               ON r.category = t.category AND r.region = t.region AND r.month_start = t.month_start",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert!(
        same_monthly,
        "monthly category sketches differ from the union of their days"
    );
}

/// What every answer reads from each table: per key, over every writer shard, the sums, the
/// withheld cells and the customers of the union of the sketches.
async fn answers(app: &TestApp) -> BTreeMap<String, (Vec<i64>, f64)> {
    let client = app.client().await;
    let mut all = BTreeMap::new();
    for (table, key, withheld) in [
        (
            "agg_daily_merchant_spend",
            "merchant_id::text, region, metric_date::text",
            "0",
        ),
        (
            "agg_weekly_merchant_spend",
            "merchant_id::text, region, week_start::text",
            "withheld_cells",
        ),
        (
            "agg_daily_category_region",
            "category, region, metric_date::text",
            "withheld_cells",
        ),
        (
            "agg_weekly_category_region",
            "category, region, week_start::text",
            "withheld_cells",
        ),
        (
            "agg_monthly_category_region",
            "category, region, month_start::text",
            "withheld_cells",
        ),
        (
            "agg_daily_category_national",
            "category, metric_date::text",
            "withheld_cells",
        ),
        (
            "agg_weekly_category_national",
            "category, week_start::text",
            "withheld_cells",
        ),
    ] {
        let rows = client
            .query(
                &format!(
                    "SELECT concat_ws('|', '{table}', {key}), sum(total_spend_cents)::bigint,
                            sum(transaction_count)::bigint, sum(refund_cents)::bigint,
                            sum(refund_count)::bigint, sum({withheld})::bigint,
                            hll_cardinality(hll_union_agg(customers))::float8
                     FROM {table} GROUP BY {key}"
                ),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        for row in rows {
            let sums = (1..=5).map(|i| row.get::<_, i64>(i)).collect();
            all.insert(row.get::<_, String>(0), (sums, row.get::<_, f64>(6)));
        }
    }
    all
}

/// Rows of the category tables written by a writer's shard rather than folded (shard -2).
async fn unfolded_rows(app: &TestApp) -> i64 {
    let client = app.client().await;
    let mut rows = 0;
    for (table, _) in altdata_facts::compact::CATEGORY_TABLES {
        rows += integration_tests::scalar::<i64>(
            &client,
            &format!("SELECT count(*) FROM {table} WHERE shard <> -2"),
        )
        .await;
    }
    rows
}

#[tokio::test]
async fn compaction_folds_every_writers_category_rows_and_changes_no_answer() {
    let (app, merchants) = spawn_with_days().await;
    // Three writers (two stream shards and review) add to the same categories and days.
    let list = transactions(merchants);
    for (part, shard) in list.chunks(150).zip([
        CategoryShard::Stream(0),
        CategoryShard::Stream(1),
        CategoryShard::Review,
    ]) {
        let mut cells = Cells::default();
        for &(key, amount, customer) in part {
            cells.add(key, amount, customer);
        }
        apply(&app, &cells, shard).await;
    }
    let before = answers(&app).await;
    let unfolded = unfolded_rows(&app).await;
    assert!(unfolded > 0);

    let done = compact(&app).await;
    assert_eq!(done.folded, unfolded as u64, "every writer's row is folded");
    assert!(done.skipped.is_empty());
    assert_eq!(unfolded_rows(&app).await, 0);
    assert_eq!(answers(&app).await, before, "compaction changed an answer");

    // A writer goes on adding to its own shard's rows; the sum over all of them is the answer,
    // and the next compaction folds them too.
    let mut more = Cells::default();
    for &(key, amount, customer) in list.iter().step_by(4) {
        more.add(key, amount, customer + 1000);
    }
    apply(&app, &more, CategoryShard::Stream(0)).await;
    let grown = answers(&app).await;
    assert_ne!(grown, before, "the addition changed nothing");
    assert!(unfolded_rows(&app).await > 0);
    compact(&app).await;
    assert_eq!(unfolded_rows(&app).await, 0);
    assert_eq!(
        answers(&app).await,
        grown,
        "the second compaction changed an answer"
    );
}

#[tokio::test]
async fn compaction_while_writers_flush_loses_nothing_and_deadlocks_nothing() {
    let (app, merchants) = spawn_with_days().await;
    let list = transactions(merchants);
    // Four writers flush twenty times each while compaction runs as often as it can.
    let writers: Vec<_> = (0..4u32)
        .map(|shard| {
            let (app_pool, list) = (app.pool.clone(), list.clone());
            tokio::spawn(async move {
                for round in 0..20u64 {
                    let mut cells = Cells::default();
                    for &(key, amount, customer) in
                        list.iter().skip((round % 5) as usize).step_by(5)
                    {
                        cells.add(key, amount, customer + 100 * u64::from(shard));
                    }
                    let mut client = app_pool.get().await.unwrap_or_else(|e| panic!("{e}"));
                    let transaction = client.transaction().await.unwrap_or_else(|e| panic!("{e}"));
                    altdata_facts::apply(
                        &transaction,
                        &cells,
                        CategoryShard::Stream(shard),
                        "test",
                    )
                    .await
                    .unwrap_or_else(|e| panic!("apply: {e}"));
                    transaction.commit().await.unwrap_or_else(|e| panic!("{e}"));
                }
            })
        })
        .collect();
    // Compactions that folded rows while writers were still flushing.
    let mut overlapping = 0;
    while !writers.iter().all(|writer| writer.is_finished()) {
        let done = compact(&app).await;
        if done.folded > 0 && !writers.iter().all(|writer| writer.is_finished()) {
            overlapping += 1;
        }
    }
    for writer in writers {
        writer.await.unwrap_or_else(|e| panic!("writer: {e}"));
    }
    assert!(
        overlapping > 0,
        "no compaction folded rows while writers flushed"
    );
    let written = answers(&app).await;
    // Every rollup computed again from the daily cells: what the writers should have left, the
    // customers included (nothing was subtracted).
    app.client()
        .await
        .batch_execute("SELECT rebuild_released_rollups()")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written, answers(&app).await);
}

#[tokio::test]
async fn a_table_a_writer_holds_past_the_lock_timeout_is_left_for_the_next_compaction() {
    let (app, merchants) = spawn_with_days().await;
    let mut cells = Cells::default();
    for (key, amount, customer) in transactions(merchants) {
        cells.add(key, amount, customer);
    }
    apply(&app, &cells, CategoryShard::Stream(0)).await;
    let before = answers(&app).await;
    // A flush of another shard, not yet committed, holds every fact table.
    let mut writer = app.client().await;
    let flush = writer.transaction().await.unwrap_or_else(|e| panic!("{e}"));
    altdata_facts::apply(&flush, &cells, CategoryShard::Stream(1), "test")
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));

    let done = compact(&app).await;
    assert_eq!(
        done.skipped,
        altdata_facts::compact::CATEGORY_TABLES
            .iter()
            .map(|(table, _)| *table)
            .collect::<Vec<_>>(),
        "compaction waited on the writer instead of leaving its tables"
    );
    assert_eq!(done.folded, 0);
    flush.commit().await.unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(answers(&app).await, before, "the flush was lost");

    // The next compaction folds both writers' rows.
    let grown = answers(&app).await;
    let done = compact(&app).await;
    assert!(done.skipped.is_empty() && done.folded > 0);
    assert_eq!(unfolded_rows(&app).await, 0);
    assert_eq!(answers(&app).await, grown);
}
