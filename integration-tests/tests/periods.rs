//! No invented zeros and one meaning of a period: days outside the panel are null with a
//! reason, a real zero stays zero, periods are calendar periods clipped to from/to, growth
//! against missing history is null with a reason; the per-customer metrics, top movers both
//! ways with a size floor, and CSV files that say what they hold. Every number is checked
//! against direct SQL over the test's own database
//! ([`integration_tests::gateway::spawn_gateway`]).

use axum::http::StatusCode;
use integration_tests::gateway::{spawn_gateway, GatewayApp};
use integration_tests::scalar;
use serde_json::Value;

const BEAN: i64 = 101;
const GRIND: i64 = 102;
const TINY: i64 = 103;

/// Blue Bean and Daily Grind in CA, and a tiny shop, on a few days from 2026-03-03 (the
/// panel's first day) to 2026-03-14 (its last); nothing on 2026-03-04 (a real zero).
async fn panel_app() -> GatewayApp {
    let app = spawn_gateway(&[("ALTDATA_K_ANONYMITY", "5")]).await;
    app.merchant(BEAN, "Blue Bean Coffee", "coffee_shop", "blue_bean")
        .await;
    app.merchant(GRIND, "Daily Grind", "coffee_shop", "daily_grind")
        .await;
    app.merchant(TINY, "Tiny Cup", "coffee_shop", "tiny_cup")
        .await;
    // (day, Blue Bean cents, Daily Grind cents, Tiny Cup cents)
    for (day, bean, grind, tiny) in [
        ("2026-03-03", 100_000, 80_000, 1_000),
        ("2026-03-05", 50_000, 90_000, 1_000),
        ("2026-03-10", 120_000, 40_000, 3_000),
        ("2026-03-14", 60_500, 30_000, 3_000),
    ] {
        app.cell(BEAN, "CA", day, bean, 40, 500, 0, 30, 3).await;
        app.cell(GRIND, "CA", day, grind, 20, 0, 500, 25, 7).await;
        app.cell(TINY, "CA", day, tiny, 6, 0, 900, 6, 1).await;
    }
    app.commit_marker(3, "2026-03-16T01:02:03.456Z").await;
    app
}

async fn sql_i64(app: &GatewayApp, sql: &str) -> i64 {
    scalar(&app.db().await, sql).await
}

/// Net spend in dollars of `merchant` over the days `from..=to`, by direct SQL.
async fn net_dollars(app: &GatewayApp, merchant: i64, from: &str, to: &str) -> f64 {
    let cents = sql_i64(
        app,
        &format!(
            "SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint
             FROM agg_daily_merchant_spend
             WHERE merchant_id = {merchant} AND metric_date BETWEEN '{from}' AND '{to}'"
        ),
    )
    .await;
    cents as f64 / 100.0
}

async fn json(app: &GatewayApp, path: &str) -> Value {
    let answer = app.get(path).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
    answer.json()
}

fn points(body: &Value) -> Vec<Value> {
    body["points"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn days_outside_the_panel_are_null_with_a_reason_and_a_quiet_day_is_zero() {
    let app = panel_app().await;
    let body = json(
        &app,
        "/v1/timeseries?merchant=101&from=2026-03-01&to=2026-03-16",
    )
    .await;
    assert_eq!(body["panel"]["first_day"], "2026-03-03");
    assert_eq!(body["panel"]["last_day"], "2026-03-14");
    let points = points(&body);
    assert_eq!(points.len(), 16);
    for point in &points {
        let day = point["period_start"].as_str().unwrap_or_default();
        let reason = point["reason"].as_str();
        if day < "2026-03-03" {
            assert_eq!(point["value"], Value::Null, "{point}");
            assert_eq!(reason, Some("before_panel_start"), "{point}");
        } else if day > "2026-03-14" {
            assert_eq!(point["value"], Value::Null, "{point}");
            assert_eq!(reason, Some("after_last_delivery"), "{point}");
        } else {
            // Inside the panel every day has a number: the SQL sum, zero on a quiet day.
            assert_eq!(reason, None, "{point}");
            let expected = net_dollars(&app, BEAN, day, day).await;
            assert_eq!(point["value"].as_f64(), Some(expected), "{point}");
        }
        assert_eq!(point["partial"], false, "a whole day: {point}");
    }
    let quiet = points
        .iter()
        .find(|p| p["period_start"] == "2026-03-04")
        .cloned()
        .unwrap_or_default();
    assert_eq!(quiet["value"], 0.0);
}

#[tokio::test]
async fn weeks_count_only_the_days_asked_for_and_say_so() {
    let app = panel_app().await;
    // Wednesday 2026-03-04 to Tuesday 2026-03-10: two Monday weeks, both clipped.
    let body = json(
        &app,
        "/v1/timeseries?merchant=101&granularity=week&from=2026-03-04&to=2026-03-10",
    )
    .await;
    let points = points(&body);
    assert_eq!(points.len(), 2, "{body}");
    let first = &points[0];
    assert_eq!(first["period_start"], "2026-03-02");
    assert_eq!(first["period_end"], "2026-03-08");
    assert_eq!(first["counted"]["from"], "2026-03-04");
    assert_eq!(first["counted"]["to"], "2026-03-08");
    assert_eq!(
        (first["clipped"].clone(), first["partial"].clone()),
        (true.into(), true.into())
    );
    // The 3rd (before from) is left out: only the 5th counts.
    let expected = net_dollars(&app, BEAN, "2026-03-04", "2026-03-08").await;
    assert_eq!(first["value"].as_f64(), Some(expected));
    assert!(expected < net_dollars(&app, BEAN, "2026-03-02", "2026-03-08").await);
    let second = &points[1];
    assert_eq!(second["counted"]["to"], "2026-03-10");
    assert_eq!(
        second["value"].as_f64(),
        Some(net_dollars(&app, BEAN, "2026-03-09", "2026-03-10").await)
    );

    // A whole week inside the panel is neither clipped nor partial; the week the panel ends
    // in is partial but not clipped.
    let body = json(
        &app,
        "/v1/timeseries?merchant=101&granularity=week&from=2026-03-09&to=2026-03-15",
    )
    .await;
    let week = &body["points"][0];
    assert_eq!(week["clipped"], false, "{week}");
    assert_eq!(week["partial"], true, "the panel ends on the 14th: {week}");
    assert_eq!(
        week["value"].as_f64(),
        Some(net_dollars(&app, BEAN, "2026-03-09", "2026-03-15").await)
    );
}

#[tokio::test]
async fn calendar_months_and_quarters_sum_their_days() {
    let app = panel_app().await;
    let body = json(
        &app,
        "/v1/timeseries?category=coffee_shop&granularity=quarter&from=2026-01-01&to=2026-06-30",
    )
    .await;
    let points = points(&body);
    assert_eq!(points.len(), 2, "{body}");
    assert_eq!(points[0]["period_start"], "2026-01-01");
    assert_eq!(points[0]["period_end"], "2026-03-31");
    let expected = sql_i64(
        &app,
        "SELECT sum(total_spend_cents - refund_cents)::bigint FROM agg_daily_merchant_spend
         WHERE metric_date BETWEEN '2026-01-01' AND '2026-03-31'",
    )
    .await as f64
        / 100.0;
    assert_eq!(points[0]["value"].as_f64(), Some(expected));
    assert_eq!(points[0]["partial"], true, "the panel starts in March");
    assert_eq!(points[1]["value"], Value::Null);
    assert_eq!(points[1]["reason"], "after_last_delivery");

    let month = json(
        &app,
        "/v1/timeseries?merchant=102&granularity=month&from=2026-03-01&to=2026-03-31&metric=transactions",
    )
    .await;
    let expected = sql_i64(
        &app,
        "SELECT sum(transaction_count)::bigint FROM agg_daily_merchant_spend WHERE merchant_id = 102",
    )
    .await;
    assert_eq!(points_value(&month, 0), Some(expected as f64));
}

fn points_value(body: &Value, index: usize) -> Option<f64> {
    body["points"][index]["value"].as_f64()
}

#[tokio::test]
async fn growth_against_missing_history_is_null_with_a_reason() {
    let app = panel_app().await;
    // A year back is before the panel: no previous value, not $0.
    let body = json(&app, "/v1/growth?merchant=101&period=yoy&as_of=2026-03-14").await;
    assert_eq!(body["previous"], Value::Null);
    assert_eq!(body["previous_reason"], "before_panel_start");
    assert_eq!(body["growth"], Value::Null);
    assert_eq!(body["growth_reason"], "before_panel_start");
    assert_eq!(
        body["current"].as_f64(),
        Some(net_dollars(&app, BEAN, "2026-03-08", "2026-03-14").await)
    );

    // The previous week starts before the panel: both values shown, the growth withheld.
    let body = json(&app, "/v1/growth?merchant=101&period=wow&as_of=2026-03-14").await;
    assert_eq!(body["previous_partial"], true, "{body}");
    assert_eq!(body["current_partial"], false, "{body}");
    assert_eq!(
        body["previous"].as_f64(),
        Some(net_dollars(&app, BEAN, "2026-03-01", "2026-03-07").await)
    );
    assert_eq!(body["growth"], Value::Null);
    assert_eq!(body["growth_reason"], "partial_period");

    // Two periods wholly inside the panel: growth from the SQL sums.
    let body = json(
        &app,
        "/v1/growth?merchant=101&period=month&as_of=2026-03-14",
    )
    .await;
    assert_eq!(body["current_period"]["from"], "2026-03-01");
    assert_eq!(
        body["previous_reason"], "before_panel_start",
        "February: {body}"
    );
    let shorter = app
        .get("/v1/growth?merchant=101&period=wow&as_of=2026-03-13")
        .await
        .json();
    assert_eq!(shorter["growth_reason"], "partial_period", "{shorter}");
    let nothing = json(&app, "/v1/growth?merchant=101&period=wow&as_of=2026-04-30").await;
    assert_eq!(
        nothing["current_reason"], "after_last_delivery",
        "{nothing}"
    );
}

#[tokio::test]
async fn growth_between_two_covered_periods_equals_direct_sql() {
    let app = panel_app().await;
    // Cover 2026-02-23..2026-03-22 with a cell in another category so the weeks are whole.
    app.merchant(901, "Corner Grocer", "grocery", "corner_grocer")
        .await;
    for day in ["2026-02-23", "2026-03-22"] {
        app.cell(901, "XX", day, 1_000, 1, 0, 9000, 12, 2).await;
    }
    let body = json(&app, "/v1/growth?merchant=101&period=wow&as_of=2026-03-15").await;
    let current = net_dollars(&app, BEAN, "2026-03-09", "2026-03-15").await;
    let previous = net_dollars(&app, BEAN, "2026-03-02", "2026-03-08").await;
    assert_eq!(body["growth_reason"], Value::Null, "{body}");
    let growth = body["growth"].as_f64().unwrap_or(f64::NAN);
    assert!(
        ((current - previous) / previous - growth).abs() < 1e-6,
        "{body}"
    );
}

#[tokio::test]
async fn per_customer_metrics_divide_by_distinct_customers() {
    let app = panel_app().await;
    let body = json(
        &app,
        "/v1/timeseries?merchant=101&granularity=month&from=2026-03-01&to=2026-03-31&metric=spend_per_customer",
    )
    .await;
    assert_eq!(body["unit"], "usd");
    let db = app.db().await;
    let expected: f64 = scalar(
        &db,
        "SELECT round((sum(total_spend_cents - refund_cents) / 100.0
                / hll_cardinality(hll_union_agg(customers)))::numeric, 2)::float8
         FROM agg_daily_merchant_spend WHERE merchant_id = 101",
    )
    .await;
    assert_eq!(points_value(&body, 0), Some(expected));
    let body = json(
        &app,
        "/v1/timeseries?merchant=101&granularity=month&from=2026-03-01&to=2026-03-31&metric=transactions_per_customer",
    )
    .await;
    assert_eq!(body["unit"], "count");
    let expected: f64 = scalar(
        &db,
        "SELECT round((sum(transaction_count) / hll_cardinality(hll_union_agg(customers)))::numeric, 4)::float8
         FROM agg_daily_merchant_spend WHERE merchant_id = 101",
    )
    .await;
    assert_eq!(points_value(&body, 0), Some(expected));
    // A day inside the panel without customers has no per-customer value, and says why.
    let quiet = json(
        &app,
        "/v1/timeseries?merchant=101&from=2026-03-04&to=2026-03-04&metric=spend_per_customer",
    )
    .await;
    assert_eq!(quiet["points"][0]["value"], Value::Null);
    assert_eq!(quiet["points"][0]["reason"], "no_customers");
}

#[tokio::test]
async fn top_movers_rank_both_ways_above_a_size_floor() {
    let app = panel_app().await;
    // Before the previous week is wholly inside the panel, nobody has a growth, and the
    // answer says why.
    let early = json(
        &app,
        "/v1/top?by=growth&period=wow&as_of=2026-03-14&limit=5",
    )
    .await;
    assert_eq!(early["growth_reason"], "partial_period", "{early}");
    assert_eq!(early["merchants"], serde_json::json!([]));
    // Cover 2026-02-23..2026-03-22 with a cell in another category, outside both weeks.
    app.merchant(901, "Corner Grocer", "grocery", "corner_grocer")
        .await;
    for day in ["2026-02-23", "2026-03-22"] {
        app.cell(901, "XX", day, 1_000, 1, 0, 9000, 12, 2).await;
    }
    // Week over week to 2026-03-14: Tiny Cup triples from a $20 base, Blue Bean grows,
    // Daily Grind falls.
    let path = "/v1/top?by=growth&period=wow&as_of=2026-03-14";
    let up = json(&app, path).await;
    assert_eq!(up["growth_reason"], Value::Null, "{up}");
    let ids = |body: &Value| -> Vec<i64> {
        body["merchants"]
            .as_array()
            .map(|m| m.iter().filter_map(|m| m["merchant_id"].as_i64()).collect())
            .unwrap_or_default()
    };
    // Growth by direct SQL: current 03-08..14, previous 03-01..07.
    let mut growth = Vec::new();
    for id in [BEAN, GRIND, TINY] {
        let current = net_dollars(&app, id, "2026-03-08", "2026-03-14").await;
        let previous = net_dollars(&app, id, "2026-03-01", "2026-03-07").await;
        growth.push(((current - previous) / previous, id));
    }
    growth.sort_by(|a, b| b.0.total_cmp(&a.0));
    let expected_up: Vec<i64> = growth.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids(&up), expected_up, "{up}");
    assert_eq!(up["direction"], "up");
    assert_eq!(up["min_spend"], 0);
    let down = json(&app, &format!("{path}&direction=down")).await;
    let expected_down: Vec<i64> = expected_up.iter().rev().copied().collect();
    assert_eq!(ids(&down), expected_down, "{down}");
    // Tiny Cup's base is $20: a floor of $100 leaves it out, in both directions.
    let floored = json(&app, &format!("{path}&min_spend=100")).await;
    assert!(!ids(&floored).contains(&TINY), "{floored}");
    assert_eq!(ids(&floored).len(), 2);
    assert_eq!(floored["min_spend"], 100);
    let csv = app
        .get(&format!("{path}&direction=down&format=csv"))
        .await
        .text();
    let header = csv.lines().next().unwrap_or_default();
    assert!(
        header.ends_with("by,direction,min_spend,unit,subject,period_from,period_to,as_of_data"),
        "{header}"
    );
    assert!(
        csv.lines()
            .nth(1)
            .unwrap_or_default()
            .contains(",growth,down,0,usd,all,2026-03-08,2026-03-14,"),
        "{csv}"
    );
}

#[tokio::test]
async fn every_data_csv_says_its_unit_subject_period_and_as_of() {
    let app = panel_app().await;
    for (path, subject, from, to) in [
        (
            "/v1/timeseries?brand=daily_grind&from=2026-03-01&to=2026-03-16&format=csv",
            "merchant 102 Daily Grind",
            "2026-03-01",
            "2026-03-16",
        ),
        (
            "/v1/growth?category=coffee_shop&as_of=2026-03-14&format=csv",
            "category coffee_shop",
            "2026-03-08",
            "2026-03-14",
        ),
        (
            "/v1/growth/states?as_of=2026-03-14&format=csv",
            "all",
            "2026-03-08",
            "2026-03-14",
        ),
    ] {
        let text = app.get(path).await.text();
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        assert!(
            header.ends_with(",unit,subject,period_from,period_to,as_of_data"),
            "{path}: {header}"
        );
        let about = format!(",usd,{subject},{from},{to},2026-03-16T01:02:03.456Z");
        let rows: Vec<&str> = lines.collect();
        assert!(!rows.is_empty(), "{path}");
        for row in rows {
            assert!(row.ends_with(&about), "{path}: {row}");
        }
    }
    // Days before the panel say why in the file too.
    let text = app
        .get("/v1/timeseries?merchant=101&from=2026-03-02&to=2026-03-02&format=csv")
        .await
        .text();
    assert!(
        text.lines().nth(1).unwrap_or_default().starts_with(
            "2026-03-02,spend,,false,0,,2026-03-02,2026-03-02,2026-03-02,before_panel_start,"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn freshness_gives_the_last_transaction_day_beside_the_last_aggregation() {
    let app = panel_app().await;
    let body = json(&app, "/v1/freshness").await;
    assert_eq!(body["last_transaction_day"], "2026-03-14");
    assert_eq!(body["panel"]["first_day"], "2026-03-03");
    assert_eq!(body["as_of"], "2026-03-16T01:02:03.456Z");
    let newest: chrono::NaiveDate = scalar(
        &app.db().await,
        "SELECT max(metric_date) FROM agg_daily_merchant_spend",
    )
    .await;
    assert_eq!(body["last_transaction_day"], newest.to_string());
}

#[tokio::test]
async fn top_movers_over_weeks_across_a_month_boundary_list_every_merchant_with_released_cells() {
    let app = spawn_gateway(&[("ALTDATA_K_ANONYMITY", "5")]).await;
    // Week over week to 2026-04-03: current 03-28..04-03, previous 03-21..03-27.
    app.merchant(701, "March Then April", "fast_food", "march_then_april")
        .await;
    app.merchant(702, "March Only", "fast_food", "march_only")
        .await;
    app.merchant(703, "April Only", "fast_food", "april_only")
        .await;
    app.merchant(704, "Withheld In April", "fast_food", "withheld_in_april")
        .await;
    app.merchant(705, "Other State", "fast_food", "other_state")
        .await;
    for (id, day, cents, customers) in [
        (701, "2026-03-22", 10_000, 8),
        (701, "2026-04-02", 30_000, 8),
        (702, "2026-03-23", 20_000, 8),
        (702, "2026-03-30", 10_000, 8),
        (703, "2026-03-24", 5_000, 8),
        (703, "2026-04-01", 15_000, 8),
        // Under k = 5 in the current week: withheld, so not ranked.
        (704, "2026-03-25", 9_000, 8),
        (704, "2026-04-01", 99_000, 2),
    ] {
        app.cell(id, "TX", day, cents, customers, 0, id * 1000, customers, 0)
            .await;
    }
    app.cell(705, "NV", "2026-04-01", 50_000, 8, 0, 9000, 8, 0)
        .await;
    // The panel covers both weeks.
    for day in ["2026-03-01", "2026-04-10"] {
        app.cell(705, "NV", day, 1_000, 8, 0, 9000, 8, 0).await;
    }
    app.commit_marker(0, "2026-04-11T00:00:00Z").await;
    let body = json(
        &app,
        "/v1/top?category=fast_food&state=TX&by=spend&period=wow&as_of=2026-04-03&limit=10",
    )
    .await;
    let listed: Vec<(i64, f64)> = body["merchants"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| Some((m["merchant_id"].as_i64()?, m["current_spend"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        listed,
        vec![(701, 300.0), (703, 150.0), (702, 100.0)],
        "{body}"
    );
}
