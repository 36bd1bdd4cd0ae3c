//! The whole pipeline on generated data: generate → ingest → aggregate, checked against the
//! generator's ground truth. Aggregates must equal a fold of the published events exactly
//! (each counted once), net spend must be conserved (aggregates + held = valid input), and
//! resolution must agree with the truth for at least 98% of published rows.

use altdata_common::Shutdown;
use altdata_domain::catalogue::Catalogue;
use altdata_domain::Category;
use integration_tests::{scalar, spawn_app, TestApp};
use std::collections::HashMap;

/// (merchant, region, epoch day), the key of a daily cell.
type CellKey = (i64, String, i32);

async fn generate(dir: &std::path::Path) -> serde_json::Value {
    generate_with(dir, 0).await
}

async fn generate_with(dir: &std::path::Path, resends: u32) -> serde_json::Value {
    let config = altdata_generate::GenerateConfig {
        days: 4,
        cards: 3_000,
        seed: 11,
        start: chrono::Utc::now().date_naive() - chrono::Duration::days(6),
        out: dir.display().to_string(),
        gzip: true,
        provider: "panel".into(),
        progress: false,
        truth_detail: true,
        resends,
        panel_growth: 0.0,
        panel_growth_day: None,
    };
    let catalogue = Catalogue::embedded().unwrap_or_else(|e| panic!("{e}"));
    altdata_generate::run(&config, &catalogue, &Shutdown::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let summary =
        std::fs::read_to_string(dir.join("_truth/summary.json")).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&summary).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn corrected_resends_restate_their_days_to_the_cent() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("altdata-resends-{}", app.prefix));
    let summary = generate_with(&dir, 2).await;
    let profiles = dir.join("_profiles").display().to_string();
    let reports = app
        .run_pipeline_with(
            &[dir.display().to_string()],
            &[("ALTDATA_PROFILES_DIR", profiles.as_str())],
        )
        .await;
    let number = |key: &str| summary[key].as_i64().unwrap_or(-1);
    let sum = |f: fn(&altdata_ingest::store::FileCounts) -> u64| {
        reports.iter().map(|r| f(&r.counts)).sum::<u64>() as i64
    };
    assert!(reports.iter().all(|r| r.counts.conserved()));
    assert_eq!(sum(|c| c.rows_read), number("rows"));
    assert_eq!(sum(|c| c.rejected), number("broken_rows"));
    assert_eq!(sum(|c| c.duplicates), number("duplicate_rows"));
    assert!(
        number("corrected_rows") > 0 && number("retracted_rows") > 0,
        "{summary}"
    );
    assert_eq!(sum(|c| c.corrected), number("corrected_rows"));
    assert_eq!(sum(|c| c.retracted), number("retracted_rows"));
    assert_eq!(
        sum(|c| c.published) + sum(|c| c.unattributed) + sum(|c| c.unmapped) - sum(|c| c.retracted),
        number("valid_rows"),
        "live rows after the re-sends"
    );
    let client = app.client().await;
    let aggregated_net: i64 = scalar(&client, "SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint FROM agg_daily_merchant_spend").await;
    let held_only_net: i64 = scalar(
        &client,
        "SELECT coalesce(sum(amount_cents), 0)::bigint FROM unmapped_transactions
         WHERE counted_merchant_id IS NULL AND status IN ('pending', 'ignored')",
    )
    .await;
    assert_eq!(
        aggregated_net + held_only_net,
        number("valid_net_cents"),
        "net spend conserved against the restated truth"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn generated_data_flows_through_exactly_once_and_matches_the_ground_truth() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("altdata-pipeline-{}", app.prefix));
    let summary = generate(&dir).await;
    let reports = app.run_pipeline(&[dir.display().to_string()]).await;

    // Every row accounted for, file by file and in total.
    let rows: u64 = reports.iter().map(|r| r.counts.rows_read).sum();
    let rejected: u64 = reports.iter().map(|r| r.counts.rejected).sum();
    let duplicates: u64 = reports.iter().map(|r| r.counts.duplicates).sum();
    let published: u64 = reports.iter().map(|r| r.counts.published).sum();
    let unattributed: u64 = reports.iter().map(|r| r.counts.unattributed).sum();
    let unmapped: u64 = reports.iter().map(|r| r.counts.unmapped).sum();
    assert!(reports.iter().all(|r| r.counts.conserved()));
    assert_eq!(rows, summary["rows"].as_u64().unwrap_or(0));
    assert_eq!(
        rejected,
        summary["broken_rows"].as_u64().unwrap_or(0),
        "rejects exact"
    );
    assert_eq!(
        duplicates,
        summary["duplicate_rows"].as_u64().unwrap_or(0),
        "duplicates exact"
    );
    assert_eq!(
        published + unattributed + unmapped,
        summary["valid_rows"].as_u64().unwrap_or(0)
    );
    assert!(unattributed > 0, "no row was counted by its category alone");

    let client = app.client().await;
    // Net spend conserved to the cent: named + unattributed (both in the aggregates) + held
    // only = valid input.
    let aggregated_net: i64 = scalar(&client, "SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint FROM agg_daily_merchant_spend").await;
    let held_only_net: i64 = scalar(
        &client,
        "SELECT coalesce(sum(amount_cents), 0)::bigint FROM unmapped_transactions
         WHERE counted_merchant_id IS NULL",
    )
    .await;
    assert_eq!(
        aggregated_net + held_only_net,
        summary["valid_net_cents"].as_i64().unwrap_or(0),
        "net spend conserved"
    );

    // Resolution against the truth: which brand each transaction was meant to be.
    let intended = read_intended(&dir);
    let catalogue = Catalogue::embedded().unwrap_or_else(|e| panic!("{e}"));
    let brand_ids: HashMap<&str, i64> = catalogue
        .merchants
        .iter()
        .map(|m| (m.brand_id.as_str(), m.id))
        .collect();
    let events = published_events(&app).await;
    assert_eq!(
        events.len() as u64,
        published + unattributed,
        "each published row is in the stream once"
    );
    let mut wrong = 0usize;
    let mut named = 0usize;
    let mut expected: HashMap<CellKey, (i64, i64, i64, i64)> = HashMap::new();
    for event in &events {
        let meant = intended
            .get(&event.txn_id)
            .and_then(|b| brand_ids.get(b.as_str()))
            .copied();
        // Rows counted by category alone are not brand decisions.
        if Category::of_unattributed_merchant(event.merchant_id).is_none() {
            named += 1;
            if meant != Some(event.merchant_id) {
                wrong += 1;
            }
        }
        let cell = expected
            .entry((event.merchant_id, event.region.clone(), event.metric_date))
            .or_default();
        if event.amount_cents < 0 {
            cell.2 += -event.amount_cents;
            cell.3 += 1;
        } else {
            cell.0 += event.amount_cents;
            cell.1 += 1;
        }
    }
    let precision = 1.0 - wrong as f64 / named.max(1) as f64;
    println!(
        "published {} events ({named} of named brands); resolution agrees with the truth for {:.2}%",
        events.len(),
        precision * 100.0
    );
    assert!(
        precision >= 0.98,
        "resolution precision {precision:.4} below 0.98"
    );

    // Every (merchant, region, day) equals the fold of its events, to the cent.
    let stored = client
        .query(
            "SELECT merchant_id, region, (metric_date - DATE '1970-01-01')::int, total_spend_cents,
                    transaction_count, refund_cents, refund_count FROM agg_daily_merchant_spend",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored.len(), expected.len());
    for row in stored {
        let key = (
            row.get::<_, i64>(0),
            row.get::<_, String>(1),
            row.get::<_, i32>(2),
        );
        let got = (
            row.get::<_, i64>(3),
            row.get::<_, i64>(4),
            row.get::<_, i64>(5),
            row.get::<_, i64>(6),
        );
        assert_eq!(Some(&got), expected.get(&key), "cell {key:?}");
    }

    // Cells whose every transaction resolved to its brand equal the ground truth exactly,
    // distinct customers included (within the HLL's bound; exact for small sets).
    let truth = read_truth(&dir);
    let mut checked = 0;
    for ((merchant, region, date), (gross, refund, sales, refunds, cards)) in &truth {
        let Some(cell) = expected.get(&(*merchant, region.clone(), *date)) else {
            continue;
        };
        if cell != &(*gross, *sales, *refund, *refunds) {
            continue; // some of its rows were held for review or resolved elsewhere
        }
        let customers: i64 = client
            .query_one(
                "SELECT hll_cardinality(customers)::bigint FROM agg_daily_merchant_spend
                  WHERE merchant_id = $1 AND region = $2 AND metric_date = DATE '1970-01-01' + $3::integer",
                &[merchant, region, date],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .get(0);
        let bound = (*cards as f64 * 0.05).ceil() as i64;
        assert!(
            (customers - cards).abs() <= bound,
            "customers of {merchant}/{region}/{date}: {customers} vs {cards}"
        );
        checked += 1;
    }
    assert!(
        checked as f64 >= truth.len() as f64 * 0.8,
        "{checked} of {} truth cells matched exactly",
        truth.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over every state the gateway reads the national rollups (schema/0013) instead of summing
/// the states' rows. On a real run with corrections and retractions, at a k that withholds
/// cells, and again after every rollup is rebuilt at another k: each national row is the sum of
/// its states' rows (released cells only, withheld ones counted), and every series read from
/// them equals the same series read from the states' rows, all of them named.
#[tokio::test]
async fn national_rows_answer_exactly_as_the_states_rows_do() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("altdata-national-{}", app.prefix));
    let summary = generate_with(&dir, 2).await;
    assert!(
        summary["corrected_rows"].as_i64() > Some(0)
            && summary["retracted_rows"].as_i64() > Some(0),
        "{summary}"
    );
    let profiles = dir.join("_profiles").display().to_string();
    app.run_pipeline_with(
        &[dir.display().to_string()],
        &[("ALTDATA_PROFILES_DIR", profiles.as_str())],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let client = app.client().await;
    let withheld: i64 = scalar(
        &client,
        "SELECT count(*) FROM agg_daily_merchant_spend WHERE NOT released",
    )
    .await;
    let released: i64 = scalar(
        &client,
        "SELECT count(*) FROM agg_daily_merchant_spend WHERE released",
    )
    .await;
    assert!(
        withheld > 0 && released > 0,
        "{withheld} withheld, {released} released"
    );
    assert_national_rows_equal_the_states(&app).await;
    app.set_disclosure_k(3).await;
    assert_national_rows_equal_the_states(&app).await;
}

async fn assert_national_rows_equal_the_states(app: &TestApp) {
    use altdata_gateway::query::{self, DateRange, Granularity, PeriodSpan, RowSet, Scope};
    let mut client = app.client().await;
    let sums = |table: &str, key: &str| {
        format!(
            "SELECT {key}, sum(total_spend_cents)::bigint AS gross,
                    sum(transaction_count)::bigint AS sales, sum(refund_cents)::bigint AS refund,
                    sum(refund_count)::bigint AS refunds, sum(withheld_cells)::bigint AS withheld,
                    coalesce(hll_cardinality(hll_union_agg(customers)), 0) AS customers
             FROM {table} GROUP BY {key}"
        )
    };
    for (national, states, key) in [
        (
            "agg_daily_category_national",
            "agg_daily_category_region",
            "category, metric_date",
        ),
        (
            "agg_weekly_category_national",
            "agg_weekly_category_region",
            "category, week_start",
        ),
        (
            "agg_daily_merchant_national",
            "released_daily_merchant_spend",
            "merchant_id, metric_date",
        ),
        (
            "agg_weekly_merchant_national",
            "agg_weekly_merchant_spend",
            "merchant_id, week_start",
        ),
    ] {
        let compared: i64 = scalar(&client, &format!("SELECT count(*) FROM {national}")).await;
        assert!(compared > 0, "{national} is empty");
        let differing: i64 = scalar(
            &client,
            &format!(
                "WITH n AS ({}), s AS ({})
                 SELECT count(*) FROM n FULL JOIN s USING ({key})
                 WHERE (n.gross, n.sales, n.refund, n.refunds, n.withheld, n.customers)
                       IS DISTINCT FROM (s.gross, s.sales, s.refund, s.refunds, s.withheld, s.customers)",
                sums(national, key),
                sums(states, key)
            ),
        )
        .await;
        assert_eq!(differing, 0, "{national} against {states}");
    }

    // The gateway's reads: every state asked as none (the national rows) and all named.
    let transaction = client.transaction().await.unwrap_or_else(|e| panic!("{e}"));
    let row = transaction
        .query_one(
            "SELECT min(metric_date), max(metric_date), array_agg(DISTINCT region)
             FROM agg_daily_merchant_spend",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (first, last, regions): (chrono::NaiveDate, chrono::NaiveDate, Vec<String>) =
        (row.get(0), row.get(1), row.get(2));
    let busiest: i64 = transaction
        .query_one(
            "SELECT merchant_id FROM agg_daily_merchant_spend
             GROUP BY 1 ORDER BY sum(transaction_count) DESC, 1 LIMIT 1",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    // From the second day to the last: the first week is clipped, so whole and clipped
    // periods are both read.
    let (from, to) = (first + chrono::Days::new(1), last);
    let mut row_sets = vec![
        RowSet::of(&Scope::All),
        RowSet::of(&Scope::Merchant(busiest)),
    ];
    for category in [Category::Grocery, Category::CoffeeShop] {
        row_sets.push(RowSet::of(&Scope::Category(category)));
        row_sets.extend(RowSet::unattributed_of(&Scope::Category(category)));
    }
    let mut with_released = 0;
    for granularity in [Granularity::Day, Granularity::Week] {
        let spans: Vec<PeriodSpan> = granularity
            .period_starts(from, to)
            .into_iter()
            .map(|start| {
                let whole = granularity.period(start);
                PeriodSpan {
                    whole,
                    counted: whole.intersect(DateRange { from, to }).unwrap_or(whole),
                }
            })
            .collect();
        for (index, rows) in row_sets.iter().enumerate() {
            let national = query::series(&transaction, rows, granularity, &spans, &[])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let named = query::series(&transaction, rows, granularity, &spans, &regions)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(national, named, "row set {index} by {granularity:?}");
            if national.iter().any(|t| t.released()) {
                with_released += 1;
            }
        }
    }
    assert!(
        with_released >= 6,
        "{with_released} series hold a released cell"
    );

    // Top movers: the same merchants with the same spend in both periods.
    let middle = from + chrono::Days::new(u64::try_from((to - from).num_days() / 2).unwrap_or(0));
    let previous = DateRange {
        from,
        to: middle - chrono::Days::new(1),
    };
    let current = DateRange { from: middle, to };
    let mut ranked = Vec::new();
    for states in [&[][..], &regions[..]] {
        let rows = query::merchant_periods(&transaction, None, states, current, previous)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut spend: Vec<(i64, i64, bool, i64, bool)> = rows
            .iter()
            .map(|m| {
                let (c, p) = (m.current, m.previous);
                (
                    m.merchant_id,
                    c.net_cents,
                    c.released(),
                    p.net_cents,
                    p.released(),
                )
            })
            .collect();
        spend.sort_unstable();
        ranked.push(spend);
    }
    assert!(ranked[0].len() > 3, "{} merchants ranked", ranked[0].len());
    assert_eq!(
        ranked[0], ranked[1],
        "top movers over every state against all named"
    );
}

fn read_intended(dir: &std::path::Path) -> HashMap<String, String> {
    let mut reader = csv::Reader::from_path(dir.join("_truth/transactions.csv"))
        .unwrap_or_else(|e| panic!("{e}"));
    reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .map(|r| (r[1].to_owned(), r[2].to_owned()))
        .collect()
}

/// (merchant, region, day) -> (gross, refunds, sales, refund count, distinct cards)
fn read_truth(dir: &std::path::Path) -> HashMap<CellKey, (i64, i64, i64, i64, i64)> {
    let mut reader = csv::Reader::from_path(dir.join("_truth/ground_truth.csv"))
        .unwrap_or_else(|e| panic!("{e}"));
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    reader
        .records()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .map(|r| {
            let date = chrono::NaiveDate::parse_from_str(&r[3], "%Y-%m-%d").unwrap_or_default();
            let number = |i: usize| r[i].parse::<i64>().unwrap_or_default();
            (
                (number(1), r[2].to_owned(), (date - epoch).num_days() as i32),
                (number(4), number(5), number(6), number(7), number(8)),
            )
        })
        .collect()
}

async fn published_events(app: &TestApp) -> Vec<altdata_proto::v1::TransactionEvent> {
    integration_tests::stream_events(app)
        .await
        .into_iter()
        .map(|(_, event)| event)
        .collect()
}
