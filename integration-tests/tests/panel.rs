//! The panel of active cards and `normalize=panel` (issue #22): generated data with planted
//! panel growth (a quarter more cards join mid-way, with the same habits) goes through the
//! whole pipeline; raw spend grows by about the quarter, spend per active card does not, and
//! the panel counts equal the exact distinct cards of the identity record within the sketch's
//! error. Panel cells under k are withheld like every other cell.

use altdata_common::Shutdown;
use altdata_domain::catalogue::Catalogue;
use altdata_facts::{CategoryShard, CellKey, Cells};
use integration_tests::gateway::{gateway_over, spawn_gateway, GatewayApp};
use integration_tests::spawn_app;

/// A Monday: the generated fortnight is two ISO weeks.
const START: &str = "2026-03-02";
const AS_OF: &str = "2026-03-15";
/// The relative standard error of a panel count (schema/0011).
const PANEL_ERROR: f64 = 0.0081;

fn date(text: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn number(answer: &serde_json::Value, field: &str) -> f64 {
    answer[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number: {answer}"))
}

/// Two weeks of a panel that grows by a quarter on day 7, through ingest and aggregation, read
/// at k = `k`.
async fn growing_panel(k: &str) -> GatewayApp {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("altdata-panel-{}", app.prefix));
    let config = altdata_generate::GenerateConfig {
        days: 14,
        cards: 2_500,
        seed: 5,
        start: date(START),
        out: dir.display().to_string(),
        gzip: true,
        provider: "panel".into(),
        progress: false,
        truth_detail: false,
        resends: 0,
        panel_growth: 0.25,
        panel_growth_day: Some(7),
    };
    let catalogue = Catalogue::embedded().unwrap_or_else(|e| panic!("{e}"));
    altdata_generate::run(&config, &catalogue, &Shutdown::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    app.run_pipeline(&[dir.display().to_string()]).await;
    let _ = std::fs::remove_dir_all(&dir);
    gateway_over(app, &[("ALTDATA_K_ANONYMITY", k)]).await
}

/// The distinct cards of the released panel cells (at least k cards per provider, state and
/// day) of a range, counted exactly from the identity record.
async fn exact_panel(app: &GatewayApp, from: &str, to: &str, state: Option<&str>) -> f64 {
    let states: Vec<String> = state.map(str::to_owned).into_iter().collect();
    let row = app
        .db()
        .await
        .query_one(
            "WITH card AS (
                 SELECT provider, metric_date, customer_key,
                        CASE WHEN region ~ '^[A-Za-z]{2}$' THEN upper(region) ELSE 'XX' END AS region
                 FROM txn_identity
                 WHERE merchant_id IS NOT NULL AND metric_date BETWEEN $1 AND $2),
             released AS (
                 SELECT provider, region, metric_date FROM card GROUP BY 1, 2, 3
                 HAVING count(DISTINCT customer_key) >= (SELECT k FROM disclosure))
             SELECT count(DISTINCT customer_key)::float8
             FROM card JOIN released USING (provider, region, metric_date)
             WHERE cardinality($3::text[]) = 0 OR region = ANY($3::text[])",
            &[&date(from), &date(to), &states],
        )
        .await
        .unwrap_or_else(|e| panic!("exact panel: {e}"));
    row.get(0)
}

/// At k = 1, so that what is measured is the panel's change alone: on a panel this small (2,500
/// cards over 51 states), a quarter more cards also carries many merchant × state × day cells
/// across k = 10, and released spend grows by more than the panel (a further +9 points,
/// measured), an effect of the disclosure rule the answer reports in `withheld_cells`.
#[tokio::test]
async fn planted_panel_growth_shows_in_raw_spend_and_not_per_active_card() {
    let app = growing_panel("1").await;
    let growth = |query: String| {
        let app = &app;
        async move {
            let answer = app.get(&query).await;
            assert_eq!(answer.status, 200, "{query}: {}", answer.text());
            answer.json()
        }
    };
    let normalized = growth(format!(
        "/v1/growth?period=wow&as_of={AS_OF}&normalize=panel"
    ))
    .await;
    let raw = growth(format!("/v1/growth?period=wow&as_of={AS_OF}")).await;
    let raw_growth = number(&raw, "growth");
    let normalized_growth = number(&normalized, "growth");
    let panel_growth =
        number(&normalized, "panel_current") / number(&normalized, "panel_previous") - 1.0;
    println!(
        "raw growth {:+.2} %, panel growth {:+.2} %, growth per active card {:+.2} %",
        raw_growth * 100.0,
        panel_growth * 100.0,
        normalized_growth * 100.0
    );
    assert!(
        (0.20..=0.30).contains(&raw_growth),
        "raw growth {raw_growth}"
    );
    assert!(
        normalized_growth.abs() <= 0.02,
        "growth per active card {normalized_growth}"
    );
    assert_eq!(normalized["query"]["normalize"], "panel");
    assert_eq!(raw["query"].get("normalize"), None);

    // The raw values are those of the answer without normalize, and the normalised ones their
    // quotients by the panel.
    assert_eq!(normalized["raw_current"], raw["current"]);
    assert_eq!(normalized["raw_previous"], raw["previous"]);
    assert!(raw["raw_current"].is_null() && raw["panel_current"].is_null());
    for (value, raw_value, panel) in [
        ("current", "raw_current", "panel_current"),
        ("previous", "raw_previous", "panel_previous"),
    ] {
        let expected = number(&normalized, raw_value) / number(&normalized, panel);
        assert!(
            (number(&normalized, value) - expected).abs() <= 1e-4,
            "{value} = {raw_value} / {panel}: {normalized}"
        );
    }

    // The panel counts are the exact distinct cards of the released panel cells, within three
    // standard errors of the sketch.
    let current = normalized["current_period"].clone();
    let previous = normalized["previous_period"].clone();
    for (field, period) in [("panel_current", &current), ("panel_previous", &previous)] {
        let from = period["from"].as_str().unwrap_or_default();
        let to = period["to"].as_str().unwrap_or_default();
        let exact = exact_panel(&app, from, to, None).await;
        let estimate = number(&normalized, field);
        println!("{field}: estimate {estimate}, exact {exact}");
        assert!(exact > 1_000.0, "{field}: {exact} cards");
        assert!(
            (estimate - exact).abs() <= 3.0 * PANEL_ERROR * exact,
            "{field}: estimate {estimate}, exact {exact}"
        );
    }

    // One state: /v1/growth/states says what /v1/growth?state= says.
    let by_state = growth(format!(
        "/v1/growth/states?period=wow&as_of={AS_OF}&normalize=panel"
    ))
    .await;
    let ca = growth(format!(
        "/v1/growth?period=wow&as_of={AS_OF}&normalize=panel&state=CA"
    ))
    .await;
    let listed = by_state["states"]
        .as_array()
        .and_then(|states| states.iter().find(|s| s["state"] == "CA"))
        .cloned()
        .unwrap_or_else(|| panic!("CA not listed: {by_state}"));
    for field in [
        "current",
        "previous",
        "growth",
        "raw_current",
        "raw_previous",
        "panel_current",
        "panel_previous",
        "panel_withheld_cells",
    ] {
        assert_eq!(listed[field], ca[field], "{field}");
    }
    let ca_exact = exact_panel(&app, AS_OF_WEEK.0, AS_OF_WEEK.1, Some("CA")).await;
    let ca_estimate = number(&ca, "panel_current");
    assert!(
        (ca_estimate - ca_exact).abs() <= 3.0 * PANEL_ERROR * ca_exact,
        "CA: estimate {ca_estimate}, exact {ca_exact}"
    );

    // The weekly series: the same two weeks, the same panel counts.
    let series = growth(format!(
        "/v1/timeseries?granularity=week&from={START}&to={AS_OF}&normalize=panel"
    ))
    .await;
    let points = series["points"].as_array().cloned().unwrap_or_default();
    assert_eq!(points.len(), 2, "{series}");
    assert_eq!(points[0]["panel_cards"], normalized["panel_previous"]);
    assert_eq!(points[1]["panel_cards"], normalized["panel_current"]);
    assert_eq!(points[0]["raw_value"], normalized["raw_previous"]);
    assert_eq!(points[1]["value"], normalized["current"]);

    // Per card meets the null and period rules: a week before the data is null with its
    // reason (nothing divided), the week the data starts in is partial, and a clipped quarter
    // divides its counted days' spend by the active cards of the same days.
    let early = growth(format!(
        "/v1/timeseries?granularity=week&from=2026-02-16&to={AS_OF}&normalize=panel"
    ))
    .await;
    let before = &early["points"][0];
    assert_eq!(before["value"], serde_json::Value::Null, "{early}");
    assert_eq!(before["reason"], "before_panel_start", "{early}");
    assert!(before.get("raw_value").is_none(), "{early}");
    let first_day = early["panel"]["first_day"].as_str().unwrap_or_default();
    if first_day > "2026-02-23" {
        assert_eq!(early["points"][1]["partial"], true, "{early}");
    }
    let quarter = growth(format!(
        "/v1/timeseries?granularity=quarter&from={START}&to={AS_OF}&normalize=panel"
    ))
    .await;
    let points = quarter["points"].as_array().cloned().unwrap_or_default();
    assert_eq!(points.len(), 1, "{quarter}");
    let q = &points[0];
    assert_eq!(q["clipped"], true, "{quarter}");
    assert_eq!(q["counted"]["from"], START, "{quarter}");
    assert_eq!(q["counted"]["to"], AS_OF, "{quarter}");
    let (raw, cards) = (number(q, "raw_value"), number(q, "panel_cards"));
    assert!(
        (number(q, "value") - (raw / cards * 1e4).round() / 1e4).abs() < 1e-9,
        "{quarter}"
    );
    let exact = exact_panel(&app, START, AS_OF, None).await;
    assert!(
        (cards - exact).abs() <= 3.0 * PANEL_ERROR * exact,
        "quarter: estimate {cards}, exact {exact}"
    );

    assert_recovery_rebuilds_the_same_panel(&app).await;

    // CSV carries the panel columns, before the columns every data file ends with.
    let csv = app
        .get(&format!(
            "/v1/growth?period=wow&as_of={AS_OF}&normalize=panel&format=csv"
        ))
        .await
        .text();
    assert!(
        csv.lines().next().unwrap_or_default().ends_with(
            ",raw_current,raw_previous,panel_current,panel_previous,panel_withheld_cells,\
             unit,subject,period_from,period_to,as_of_data"
        ),
        "{csv}"
    );
}

/// Every panel row, its sketch as text, in key order.
async fn panel_rows(
    client: &impl tokio_postgres::GenericClient,
) -> Vec<(String, String, String, i32, String)> {
    client
        .query(
            "SELECT provider, region, metric_date::text, shard, cards::text FROM agg_daily_panel
             ORDER BY provider, region, metric_date, shard",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("panel rows: {e}"))
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
        .collect()
}

/// Recovery (`altdata recover-shard`) rebuilds each shard's panel rows from the identity record
/// byte for byte as the flushes wrote them: the incremental panel holds exactly the cards of
/// the accepted transactions, each once.
async fn assert_recovery_rebuilds_the_same_panel(app: &GatewayApp) {
    let mut client = app.db().await;
    let before = panel_rows(&**client).await;
    assert!(!before.is_empty());
    let merchants: Vec<i64> = client
        .query(
            "SELECT DISTINCT merchant_id FROM txn_identity WHERE merchant_id IS NOT NULL",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|row| row.get(0))
        .collect();
    let shards = app.test_app.connections.shard_count;
    let transaction = client.transaction().await.unwrap_or_else(|e| panic!("{e}"));
    for shard in 0..shards {
        let mine: Vec<i64> = merchants
            .iter()
            .copied()
            .filter(|&id| altdata_domain::shard_of(id, shards) == shard)
            .collect();
        altdata_facts::rebuild_shard_panel(&transaction, shard, &mine, date("2000-01-01"))
            .await
            .unwrap_or_else(|e| panic!("rebuild shard {shard}: {e}"));
    }
    let after = panel_rows(&*transaction).await;
    // Dropping the transaction rolls the rebuild back.
    drop(transaction);
    assert_eq!(before.len(), after.len());
    assert!(
        before == after,
        "the rebuilt panel differs from the flushed one"
    );
}

/// The current week of the growth answers above.
const AS_OF_WEEK: (&str, &str) = ("2026-03-09", AS_OF);

#[tokio::test]
async fn panel_cells_under_k_are_withheld_and_sketched_like_the_reference_aggregate() {
    let app = spawn_gateway(&[]).await;
    app.merchant(101, "Daily Grind", "coffee_shop", "daily_grind")
        .await;
    let day = altdata_domain::date_to_epoch_days(date("2026-03-12"));
    let mut cells = Cells::default();
    // NY: 16 customers, released as a spend cell, but 8 cards from each of two providers:
    // both panel cells are under k = 10.
    let ny = CellKey::new(101, "NY", day);
    for customer in 1..=16u64 {
        cells.add(ny, 1_000, customer);
        cells.add_card(if customer <= 8 { "a" } else { "b" }, ny, customer);
    }
    // CA: 12 customers of one provider, released everywhere.
    let ca = CellKey::new(101, "CA", day);
    for customer in 101..=112u64 {
        cells.add(ca, 2_000, customer);
        cells.add_card("a", ca, customer);
    }
    let mut client = app.db().await;
    let transaction = client.transaction().await.unwrap_or_else(|e| panic!("{e}"));
    altdata_facts::apply(&transaction, &cells, CategoryShard::Stream(2), "seed")
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    transaction.commit().await.unwrap_or_else(|e| panic!("{e}"));

    let ask = |state: &str| {
        let app = &app;
        let path =
            format!("/v1/growth?merchant=101&period=wow&as_of=2026-03-14&normalize=panel{state}");
        async move {
            let answer = app.get(&path).await;
            assert_eq!(answer.status, 200, "{path}: {}", answer.text());
            answer.json()
        }
    };
    let ny_answer = ask("&state=NY").await;
    assert_eq!(ny_answer["raw_current"], 160.0, "{ny_answer}");
    assert!(ny_answer["panel_current"].is_null(), "{ny_answer}");
    assert!(ny_answer["current"].is_null(), "{ny_answer}");
    assert_eq!(ny_answer["panel_withheld_cells"], 2);
    let ca_answer = ask("&state=CA").await;
    assert_eq!(ca_answer["panel_current"], 12.0, "{ca_answer}");
    assert_eq!(ca_answer["current"], 20.0, "{ca_answer}");
    assert_eq!(ca_answer["panel_withheld_cells"], 0);
    // Every state: the withheld NY cards are in no count.
    let all = ask("").await;
    assert_eq!(all["panel_current"], 12.0, "{all}");
    assert_eq!(all["panel_withheld_cells"], 2);

    // The stored sketches are the extension's own aggregate of the same keys, at log2m 14.
    let same: bool = app
        .db()
        .await
        .query_one(
            "SELECT hll_union_agg(cards) = (SELECT hll_add_agg(hll_hash_bigint(k), 14, 5)
                                            FROM generate_series(101, 112) AS k)
             FROM agg_daily_panel WHERE provider = 'a' AND region = 'CA'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert!(same, "the CA panel sketch is hll_add_agg of its cards");
}

#[tokio::test]
async fn normalize_panel_refuses_metrics_that_are_not_sums() {
    let app = spawn_gateway(&[]).await;
    for path in [
        "/v1/growth?metric=customers&normalize=panel",
        "/v1/growth/states?metric=avg_ticket&normalize=panel",
        "/v1/timeseries?metric=customers&normalize=panel",
    ] {
        let answer = app.get(path).await;
        assert_eq!(answer.status, 400, "{path}");
        assert_eq!(
            answer.json()["error"]["code"],
            "conflicting_parameters",
            "{path}"
        );
    }
    let answer = app.get("/v1/growth?normalize=none&as_of=2026-03-14").await;
    assert_eq!(answer.status, 200);
    assert!(answer.json()["panel_current"].is_null());
}

#[tokio::test]
async fn a_held_row_assigned_in_review_brings_its_card_into_the_panel() {
    let app = spawn_gateway(&[("ALTDATA_K_ANONYMITY", "1")]).await;
    app.db()
        .await
        .batch_execute(
            "INSERT INTO unmapped_transactions
                 (txn_id, provider, raw_descriptor, normalized_descriptor, amount_cents,
                  metric_date, region, customer_key, candidates)
             VALUES ('t1', 'p', 'NEW CAFE SF', 'NEW CAFE', 2500, '2026-03-14', 'CA', 7, '[]'),
                    ('t2', 'p', 'NEW CAFE SF', 'NEW CAFE', 1500, '2026-03-14', 'CA', 8, '[]'),
                    ('t3', 'p', 'NEW CAFE SF', 'NEW CAFE', 1000, '2026-03-13', 'CA', 7, '[]')",
        )
        .await
        .unwrap_or_else(|e| panic!("hold: {e}"));
    let assigned = app
        .admin_post(
            "/v1/admin/review/assign",
            serde_json::json!({"normalized_descriptors": ["NEW CAFE"],
                               "new_merchant": {"name": "New Cafe", "category": "coffee_shop"}}),
        )
        .await;
    assert_eq!(assigned.status, 200, "{}", assigned.text());
    let merchant = assigned.json()["merchant_id"].as_i64().unwrap_or_default();
    let answer = app
        .get(&format!(
            "/v1/growth?merchant={merchant}&state=CA&as_of=2026-03-14&normalize=panel"
        ))
        .await
        .json();
    assert_eq!(answer["panel_current"], 2.0, "{answer}");
    assert_eq!(answer["raw_current"], 50.0, "{answer}");
    assert_eq!(answer["current"], 25.0, "{answer}");
}
