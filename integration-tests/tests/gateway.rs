//! Gateway integration tests against the real PostgreSQL, Redis and (for invalidation) the
//! project's nats-server. Each test has its own database, prefix and keys
//! ([`integration_tests::gateway::spawn_gateway`]).

use altdata_gateway::Role;
use altdata_proto::v1::{AggregateUpdateBatch, CacheInvalidation};
use altdata_proto::{Message, SCHEMA_VERSION};
use axum::http::{Method, StatusCode};
use integration_tests::gateway::{settings_from, spawn_gateway, GatewayApp};
use integration_tests::{scalar, wait_for};
use serde_json::{json, Value};
use std::time::Duration;

const COFFEE: i64 = 101;
const COFFEE_2: i64 = 102;
const BURGER: i64 = 201;
const EDGE: i64 = 901;

/// Two coffee shops and a burger place, CA and NY, the weeks around 2026-03-15 (a Sunday).
async fn seeded_app(overrides: &[(&str, &str)]) -> GatewayApp {
    let app = spawn_gateway(overrides).await;
    app.merchant(COFFEE, "Blue Bean Coffee", "coffee_shop", "blue_bean")
        .await;
    app.merchant(COFFEE_2, "Daily Grind", "coffee_shop", "daily_grind")
        .await;
    app.merchant(BURGER, "Burger Barn", "fast_food", "burger_barn")
        .await;
    // Previous week (2026-03-02..08) and current week (2026-03-09..15), CA and NY.
    for (day, gross, customers_from) in [
        ("2026-03-03", 100_000, 0),
        ("2026-03-05", 50_000, 1000),
        ("2026-03-10", 120_000, 0),
        ("2026-03-14", 60_500, 2000),
    ] {
        app.cell(COFFEE, "CA", day, gross, 40, 500, customers_from, 30, 3)
            .await;
        app.cell(
            COFFEE_2,
            "CA",
            day,
            gross / 2,
            20,
            0,
            customers_from + 500,
            25,
            7,
        )
        .await;
        app.cell(COFFEE, "NY", day, 10_000, 5, 0, customers_from, 12, 3)
            .await;
        app.cell(BURGER, "CA", day, 70_000, 30, 1_000, customers_from, 40, 5)
            .await;
    }
    // The panel's edges: data on 2026-03-01 and 2026-03-22 (another category, no state), so
    // the weeks above are wholly inside the panel and their growth is defined.
    app.merchant(EDGE, "Corner Grocer", "grocery", "corner_grocer")
        .await;
    for day in ["2026-03-01", "2026-03-22"] {
        app.cell(EDGE, "XX", day, 1_000, 1, 0, 9000, 12, 2).await;
    }
    app.commit_marker(3, "2026-03-16T01:02:03.456Z").await;
    app.commit_marker(5, "2026-03-16T00:00:00Z").await;
    app
}

async fn sql_net_cents(app: &GatewayApp, sql: &str) -> i64 {
    scalar(&app.db().await, sql).await
}

fn number(value: &Value) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"))
}

#[tokio::test]
async fn timeseries_answers_equal_direct_sql() {
    let app = seeded_app(&[]).await;

    // A merchant, by day, in CA.
    let answer = app
        .get("/v1/timeseries?merchant=101&state=CA&from=2026-03-09&to=2026-03-15")
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let points = body["points"].as_array().cloned().unwrap_or_default();
    assert_eq!(points.len(), 7);
    let on_tenth = points
        .iter()
        .find(|p| p["period_start"] == "2026-03-10")
        .cloned()
        .unwrap_or_default();
    let expected = sql_net_cents(
        &app,
        "SELECT sum(total_spend_cents - refund_cents)::bigint FROM agg_daily_merchant_spend
         WHERE merchant_id = 101 AND region = 'CA' AND metric_date = '2026-03-10'",
    )
    .await;
    assert_eq!(number(&on_tenth["value"]), expected as f64 / 100.0);
    assert_eq!(on_tenth["suppressed"], false);
    assert_eq!(body["subject"]["merchant_name"], "Blue Bean Coffee");
    assert_eq!(body["unit"], "usd");
    // Days without data are zero, not suppressed.
    assert_eq!(points[0]["value"], 0.0);
    assert_eq!(
        answer.header("x-data-as-of"),
        Some("2026-03-16T01:02:03.456Z")
    );
    assert_eq!(answer.header("x-cache"), Some("miss"));
    assert_eq!(answer.header("age"), Some("0"));

    // The same question again is a hit; a brand resolves to the same merchant.
    let again = app
        .get("/v1/timeseries?state=CA&merchant=101&to=2026-03-15&from=2026-03-09&metric=spend")
        .await;
    assert_eq!(again.header("x-cache"), Some("hit"));
    assert_eq!(again.json()["points"], body["points"]);
    let brand = app
        .get("/v1/timeseries?brand=blue_bean&state=CA&from=2026-03-09&to=2026-03-15")
        .await;
    assert_eq!(brand.json()["points"], body["points"]);

    // A category, by week, every region: summed over shards.
    let answer = app
        .get("/v1/timeseries?category=coffee_shop&granularity=week&from=2026-03-02&to=2026-03-15")
        .await;
    let body = answer.json();
    let expected = sql_net_cents(
        &app,
        "SELECT sum(total_spend_cents - refund_cents)::bigint FROM agg_daily_merchant_spend a
         JOIN dim_merchants m ON m.id = a.merchant_id
         WHERE m.category = 'coffee_shop' AND metric_date BETWEEN '2026-03-09' AND '2026-03-15'",
    )
    .await;
    assert_eq!(body["points"][1]["period_start"], "2026-03-09");
    assert_eq!(number(&body["points"][1]["value"]), expected as f64 / 100.0);

    // Everything, by month, transactions and customers.
    let answer = app
        .get("/v1/timeseries?metric=transactions&granularity=month&from=2026-03-01&to=2026-03-31")
        .await;
    let expected = sql_net_cents(
        &app,
        "SELECT sum(transaction_count)::bigint FROM agg_daily_merchant_spend",
    )
    .await;
    assert_eq!(
        number(&answer.json()["points"][0]["value"]),
        expected as f64
    );
    let answer = app
        .get("/v1/timeseries?metric=customers&merchant=101&granularity=month&from=2026-03-01&to=2026-03-31")
        .await;
    let expected: f64 = scalar(&app.db().await, "SELECT round(hll_cardinality(hll_union_agg(customers)))::float8 FROM agg_daily_merchant_spend WHERE merchant_id = 101").await;
    assert_eq!(number(&answer.json()["points"][0]["value"]), expected);
}

#[tokio::test]
async fn growth_week_over_week_for_coffee_shops_in_california() {
    let app = seeded_app(&[]).await;
    let answer = app
        .get("/v1/growth?metric=spend&category=coffee_shop&state=CA&period=wow&as_of=2026-03-15")
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let net = |from: &str, to: &str| {
        format!(
            "SELECT sum(total_spend_cents - refund_cents)::bigint FROM agg_daily_merchant_spend a
             JOIN dim_merchants m ON m.id = a.merchant_id
             WHERE m.category = 'coffee_shop' AND region = 'CA' AND metric_date BETWEEN '{from}' AND '{to}'"
        )
    };
    let current = sql_net_cents(&app, &net("2026-03-09", "2026-03-15")).await as f64 / 100.0;
    let previous = sql_net_cents(&app, &net("2026-03-02", "2026-03-08")).await as f64 / 100.0;
    assert_eq!(number(&body["current"]), current);
    assert_eq!(number(&body["previous"]), previous);
    let growth = number(&body["growth"]);
    assert!(
        ((current - previous) / previous - growth).abs() < 1e-6,
        "{growth}"
    );
    assert_eq!(
        body["current_period"],
        json!({"from": "2026-03-09", "to": "2026-03-15"})
    );
    assert_eq!(
        body["previous_period"],
        json!({"from": "2026-03-02", "to": "2026-03-08"})
    );
    assert_eq!(body["as_of_data"], "2026-03-16T01:02:03.456Z");

    // Year over year: a year earlier is before the panel starts: no data, not $0, so no growth.
    let body = app
        .get("/v1/growth?category=coffee_shop&state=CA&period=yoy&as_of=2026-03-15")
        .await
        .json();
    assert_eq!(body["previous"], Value::Null);
    assert_eq!(body["previous_reason"], "before_panel_start");
    assert_eq!(body["growth"], Value::Null);
    assert_eq!(body["growth_reason"], "before_panel_start");
    assert_eq!(body["previous_period"]["to"], "2025-03-16");

    // Top merchants by spend and by growth in the category.
    let top = app
        .get("/v1/top?category=coffee_shop&state=CA&by=spend&period=wow&as_of=2026-03-15&limit=5")
        .await
        .json();
    let merchants = top["merchants"].as_array().cloned().unwrap_or_default();
    assert_eq!(merchants.len(), 2, "{top}");
    assert_eq!(merchants[0]["merchant_id"], COFFEE);
    assert_eq!(merchants[0]["rank"], 1);
    let top = app.get("/v1/top?by=growth&as_of=2026-03-15").await.json();
    assert!(
        top["merchants"].as_array().is_some_and(|m| m.len() == 3),
        "{top}"
    );
}

#[tokio::test]
async fn small_cells_are_suppressed() {
    let app = seeded_app(&[("ALTDATA_K_ANONYMITY", "20")]).await;
    // Blue Bean in NY has 12 customers a day: below 20.
    let body = app
        .get("/v1/timeseries?merchant=101&state=NY&from=2026-03-10&to=2026-03-10")
        .await
        .json();
    assert_eq!(body["points"][0]["value"], Value::Null);
    assert_eq!(body["points"][0]["suppressed"], true);
    assert!(
        body["suppression"]
            .as_str()
            .is_some_and(|s| s.contains("fewer than 20")),
        "{body}"
    );
    // In CA it has 30.
    let body = app
        .get("/v1/timeseries?merchant=101&state=CA&from=2026-03-10&to=2026-03-10")
        .await
        .json();
    assert_eq!(body["points"][0]["suppressed"], false);
    assert!(body.get("suppression").is_none());
    // A week of withheld days is withheld too, although its two days together cover 24
    // customers (keys 0..12 and 2000..2012): a week that released them would give each day
    // away as the week minus the other.
    let body = app
        .get("/v1/growth?merchant=101&state=NY&as_of=2026-03-15")
        .await
        .json();
    assert_eq!(body["current_suppressed"], true, "{body}");
    assert_eq!(body["current"], Value::Null);
    assert_eq!(body["growth"], Value::Null);
    assert_eq!(body["withheld_cells"], 4, "{body}");
}

/// Compares one `/v1/growth/states` answer with `/v1/growth?state=XX` (computed afresh) for
/// each state it lists, field by field; returns the states listed.
async fn assert_states_equal_growth(app: &GatewayApp, scope_and_period: &str) -> Vec<String> {
    let answer = app
        .get(&format!("/v1/growth/states?{scope_and_period}"))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let states = body["states"].as_array().cloned().unwrap_or_default();
    let mut codes = Vec::new();
    for row in &states {
        let code = row["state"].as_str().unwrap_or_default().to_owned();
        let one = app
            .get_with(
                &format!("/v1/growth?{scope_and_period}&state={code}"),
                &[("cache-control", "no-cache")],
            )
            .await;
        assert_eq!(one.status, StatusCode::OK, "{}", one.text());
        let one = one.json();
        for field in [
            "current",
            "previous",
            "growth",
            "current_suppressed",
            "previous_suppressed",
        ] {
            assert_eq!(
                row[field], one[field],
                "{scope_and_period}, {code}, {field}: {row} vs {one}"
            );
        }
        let either = one["current_suppressed"] == true || one["previous_suppressed"] == true;
        assert_eq!(row["suppressed"], either, "{row}");
        for field in ["unit", "current_period", "previous_period", "subject"] {
            assert_eq!(body[field], one[field], "{scope_and_period}: {field}");
        }
        codes.push(code);
    }
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(codes, sorted, "states are listed by code");
    codes
}

#[tokio::test]
async fn growth_by_state_equals_growth_for_each_state() {
    let app = seeded_app(&[]).await;
    // A row without a location belongs to no state and is not listed.
    app.cell(COFFEE, "XX", "2026-03-12", 9_000, 3, 0, 7000, 15, 3)
        .await;
    for scope in [
        "",
        "category=coffee_shop&",
        "category=fast_food&",
        "merchant=101&",
        "brand=daily_grind&",
    ] {
        for (metric, period) in [
            ("spend", "wow"),
            ("customers", "mom"),
            ("avg_ticket", "wow"),
            ("refunds", "yoy"),
        ] {
            let query = format!("{scope}metric={metric}&period={period}&as_of=2026-03-15");
            let states = assert_states_equal_growth(&app, &query).await;
            let expected: &[&str] = match scope {
                "category=fast_food&" | "brand=daily_grind&" => &["CA"],
                _ => &["CA", "NY"],
            };
            assert_eq!(states, expected, "{query}");
        }
    }

    // The dates, unit and headers of the canonical question.
    let path = "/v1/growth/states?metric=spend&category=coffee_shop&period=wow&as_of=2026-03-15";
    let answer = app.get(path).await;
    assert_eq!(answer.header("x-cache"), Some("hit"), "asked above");
    let answer = app
        .get("/v1/growth/states?as_of=2026-03-15&category=coffee_shop")
        .await;
    assert_eq!(
        answer.header("x-cache"),
        Some("hit"),
        "defaults are canonical"
    );
    assert_eq!(
        answer.header("x-data-as-of"),
        Some("2026-03-16T01:02:03.456Z")
    );
    assert!(answer.header("age").is_some());
    let body = answer.json();
    assert_eq!(body["unit"], "usd");
    assert_eq!(
        body["current_period"],
        json!({"from": "2026-03-09", "to": "2026-03-15"})
    );
    assert_eq!(
        body["previous_period"],
        json!({"from": "2026-03-02", "to": "2026-03-08"})
    );
    assert_eq!(body["query"]["period"], "wow");
    assert_eq!(body["as_of_data"], "2026-03-16T01:02:03.456Z");
    assert!(body.get("suppression").is_none(), "{body}");
    let ca = &body["states"][0];
    let net = sql_net_cents(
        &app,
        "SELECT sum(total_spend_cents - refund_cents)::bigint FROM agg_daily_merchant_spend a
         JOIN dim_merchants m ON m.id = a.merchant_id
         WHERE m.category = 'coffee_shop' AND region = 'CA'
           AND metric_date BETWEEN '2026-03-09' AND '2026-03-15'",
    )
    .await;
    assert_eq!(ca["state"], "CA");
    assert_eq!(number(&ca["current"]), net as f64 / 100.0);
    assert_eq!(ca["suppressed"], false);

    // No activity at all: no state listed. An unknown merchant is a 404, as for /v1/growth.
    let empty = app
        .get("/v1/growth/states?category=grocery&as_of=2026-03-15")
        .await
        .json();
    assert_eq!(empty["states"], json!([]));
    let unknown = app.get("/v1/growth/states?merchant=999999").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["code"], "not_found");
}

#[tokio::test]
async fn growth_by_state_flags_suppressed_states() {
    // Blue Bean in NY: 12 customers a day, 24 over two days; below 30 in either week.
    let app = seeded_app(&[("ALTDATA_K_ANONYMITY", "30")]).await;
    let query = "merchant=101&period=wow&as_of=2026-03-15";
    let states = assert_states_equal_growth(&app, query).await;
    assert_eq!(states, ["CA", "NY"]);
    let body = app.get(&format!("/v1/growth/states?{query}")).await.json();
    let ny = &body["states"][1];
    assert_eq!(ny["state"], "NY");
    assert_eq!(ny["suppressed"], true, "{ny}");
    assert_eq!(ny["current_suppressed"], true, "{ny}");
    assert_eq!(ny["previous_suppressed"], true, "{ny}");
    assert_eq!(ny["current"], Value::Null);
    assert_eq!(ny["previous"], Value::Null);
    assert_eq!(ny["growth"], Value::Null);
    let ca = &body["states"][0];
    assert_eq!(ca["suppressed"], false, "{ca}");
    assert!(ca["growth"].is_number(), "{ca}");
    assert_eq!(body["k_anonymity"], 30);
    let note = body["suppression"].as_str().unwrap_or_default();
    assert!(
        note.contains("1 of 2 states") && note.contains("fewer than 30"),
        "{note}"
    );

    // Only the previous week too small: the current value is shown, the growth is not.
    app.cell(COFFEE, "NY", "2026-03-11", 1_000, 1, 0, 5000, 30, 3)
        .await;
    let body = app
        .get_with(
            &format!("/v1/growth/states?{query}"),
            &[("cache-control", "no-cache")],
        )
        .await
        .json();
    let ny = &body["states"][1];
    assert_eq!(ny["current_suppressed"], false, "{ny}");
    assert_eq!(ny["previous_suppressed"], true, "{ny}");
    assert_eq!(ny["suppressed"], true, "{ny}");
    assert!(ny["current"].is_number(), "{ny}");
    assert_eq!(ny["growth"], Value::Null);
    assert_states_equal_growth(&app, query).await;
}

#[tokio::test]
async fn growth_by_state_refuses_state_and_bad_parameters() {
    let app = seeded_app(&[]).await;
    let cases = [
        ("/v1/growth/states?state=CA", "state is not accepted here"),
        (
            "/v1/growth/states?category=coffee_shop&state=CA,NY&as_of=2026-03-15",
            "state is not accepted here",
        ),
        (
            "/v1/growth/states?period=qoq",
            "period=\"qoq\" is not valid",
        ),
        (
            "/v1/growth/states?metric=profit",
            "metric=\"profit\" is not valid",
        ),
        (
            "/v1/growth/states?as_of=2026-02-30",
            "as_of=\"2026-02-30\" is not valid",
        ),
        (
            "/v1/growth/states?category=coffee_shop&brand=blue_bean",
            "at most one of category, merchant and brand",
        ),
        ("/v1/growth/states?colour=red", "unknown field `colour`"),
        (
            "/v1/growth/states?format=xml",
            "format=\"xml\" is not valid",
        ),
    ];
    for (path, message) in cases {
        let answer = app.get(path).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            answer.text()
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        let body = answer.json();
        let text = body["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{path}: {text}");
        // A combination of parameters each valid alone has a code of its own (the document
        // cannot state rules between parameters; `make contract` tells them apart by it).
        let code = if message.starts_with("at most one of") {
            "conflicting_parameters"
        } else {
            "invalid_parameter"
        };
        assert_eq!(body["error"]["code"], code, "{path}");
    }
    let no_key = app
        .request(Method::GET, "/v1/growth/states", None, &[], None)
        .await;
    assert_eq!(no_key.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn growth_by_state_as_csv() {
    let app = seeded_app(&[("ALTDATA_K_ANONYMITY", "30")]).await;
    let path = "/v1/growth/states?merchant=101&as_of=2026-03-15";
    let answer = app.get_with(path, &[("accept", "text/csv")]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(answer.header("x-cache"), Some("miss"));
    assert_eq!(
        answer.header("x-data-as-of"),
        Some("2026-03-16T01:02:03.456Z")
    );
    let text = answer.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "state,metric,period,current_from,current_to,current,previous_from,previous_to,previous,growth,suppressed,attributed_share,growth_reason,unit,subject,period_from,period_to,as_of_data"
    );
    let about = "usd,merchant 101 Blue Bean Coffee,2026-03-09,2026-03-15,2026-03-16T01:02:03.456Z";
    let json = app.get(path).await;
    assert_eq!(json.header("x-cache"), Some("hit"));
    let body = json.json();
    let ca = &body["states"][0];
    assert_eq!(
        lines[1],
        format!(
            "CA,spend,wow,2026-03-09,2026-03-15,{},2026-03-02,2026-03-08,{},{},false,,,{about}",
            number(&ca["current"]),
            number(&ca["previous"]),
            number(&ca["growth"]),
        )
    );
    // A suppressed state has empty cells, not numbers.
    assert_eq!(
        lines[2],
        format!(
            "NY,spend,wow,2026-03-09,2026-03-15,,2026-03-02,2026-03-08,,,true,,withheld,{about}"
        )
    );
    assert_eq!(lines.len(), 3);
    let again = app.get(&format!("{path}&format=csv")).await;
    assert_eq!(again.header("x-cache"), Some("hit"));
    assert_eq!(again.text(), text);
}

#[tokio::test]
async fn growth_by_state_is_invalidated_with_growth_of_the_same_scope() {
    let app = seeded_app(&[]).await;
    let coffee_states = "/v1/growth/states?category=coffee_shop&as_of=2026-03-15";
    let coffee_growth = "/v1/growth?category=coffee_shop&state=CA&as_of=2026-03-15";
    let merchant_states = "/v1/growth/states?brand=blue_bean&as_of=2026-03-15";
    let burger_states = "/v1/growth/states?category=fast_food&as_of=2026-03-15";
    for path in [coffee_states, coffee_growth, merchant_states, burger_states] {
        assert_eq!(
            app.get(path).await.header("x-cache"),
            Some("miss"),
            "{path}"
        );
        assert_eq!(app.get(path).await.header("x-cache"), Some("hit"), "{path}");
    }
    let before = app.get(coffee_states).await.json();
    // A flush to Blue Bean in CA, and its invalidation applied (as the invalidator would).
    app.cell(COFFEE, "CA", "2026-03-15", 500_000, 10, 0, 9000, 10, 3)
        .await;
    let invalidation = CacheInvalidation {
        schema_version: SCHEMA_VERSION,
        merchant_ids: vec![COFFEE],
        categories: vec!["coffee_shop".into()],
        regions: vec!["CA".into()],
        first_date: 0,
        last_date: 0,
        committed_at_ms: 0,
        cause: "flush".into(),
    };
    let prefix = &app.state.inner.settings.connections.prefix;
    let keys = altdata_gateway::invalidation::generation_keys(prefix, &invalidation);
    app.state
        .inner
        .cache_handle()
        .bump(&keys)
        .await
        .expect("bump generations");
    for path in [coffee_states, coffee_growth, merchant_states] {
        assert_eq!(
            app.get(path).await.header("x-cache"),
            Some("miss"),
            "{path}"
        );
    }
    assert_eq!(app.get(burger_states).await.header("x-cache"), Some("hit"));
    let after = app.get(coffee_states).await.json();
    assert_eq!(
        number(&after["states"][0]["current"]),
        number(&before["states"][0]["current"]) + 5000.0
    );
    assert_eq!(after["states"][1], before["states"][1], "NY unchanged");
}

#[tokio::test]
async fn keys_roles_and_rate_limits_are_enforced() {
    let app = seeded_app(&[
        ("ALTDATA_RATE_LIMIT_PER_SECOND", "1"),
        ("ALTDATA_RATE_LIMIT_BURST", "3"),
    ])
    .await;
    let path = "/v1/categories";
    let none = app.request(Method::GET, path, None, &[], None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json()["error"]["code"], "unauthorized");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let wrong = app
        .request(
            Method::GET,
            path,
            Some("adx_00000000000000000000000000000000"),
            &[],
            None,
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let garbage = app
        .request(Method::GET, path, Some("hunter2"), &[], None)
        .await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);

    let revoked = altdata_gateway::create_key(&app.test_app.pool, Role::Analyst, "to revoke")
        .await
        .expect("key");
    let revoked_id = altdata_gateway::auth::store::find(&app.test_app.pool, &revoked[..8])
        .await
        .expect("key id");
    altdata_gateway::auth::store::revoke(&app.test_app.pool, revoked_id, "test")
        .await
        .expect("revoke");
    let answer = app
        .request(Method::GET, path, Some(&revoked), &[], None)
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);

    let forbidden = app
        .request(
            Method::GET,
            "/v1/admin/review",
            Some(&app.analyst_key),
            &[],
            None,
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(forbidden.json()["error"]["code"], "forbidden");

    // The analyst spent one token on the 403; two left of the burst, then 429.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let answer = app.get(path).await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(answer.header("retry-after"), Some("1"));
            assert_eq!(answer.json()["error"]["code"], "rate_limited");
        }
        statuses.push(answer.status.as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 429, 429]);
    // Another key has its own bucket; health and the OpenAPI need no key.
    let admin = app
        .request(Method::GET, path, Some(&app.admin_key), &[], None)
        .await;
    assert_eq!(admin.status, StatusCode::OK);
    let health = app.request(Method::GET, "/healthz", None, &[], None).await;
    assert_eq!(health.status, StatusCode::OK);
    let metrics = app.request(Method::GET, "/metrics", None, &[], None).await;
    assert_eq!(metrics.status, StatusCode::OK);
}

#[tokio::test]
async fn csv_on_request() {
    let app = seeded_app(&[]).await;
    let answer = app
        .get_with(
            "/v1/timeseries?merchant=101&state=CA&from=2026-03-09&to=2026-03-10",
            &[("accept", "text/csv")],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let text = answer.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "period_start,metric,value,suppressed,withheld_cells,attributed_share,period_end,\
         counted_from,counted_to,reason,clipped,partial,unit,subject,period_from,period_to,\
         as_of_data"
    );
    let about = "usd,merchant 101 Blue Bean Coffee,2026-03-09,2026-03-10,2026-03-16T01:02:03.456Z";
    assert_eq!(
        lines[1],
        format!(
            "2026-03-09,spend,0,false,0,,2026-03-09,2026-03-09,2026-03-09,,false,false,{about}"
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "2026-03-10,spend,1195,false,0,,2026-03-10,2026-03-10,2026-03-10,,false,false,{about}"
        )
    );
    // The cached JSON answer renders as CSV too, and format=csv works without Accept.
    let again = app
        .get("/v1/timeseries?merchant=101&state=CA&from=2026-03-09&to=2026-03-10&format=csv")
        .await;
    assert_eq!(again.header("x-cache"), Some("hit"));
    assert_eq!(again.text(), text);
    let growth = app
        .get("/v1/growth?category=coffee_shop&as_of=2026-03-15&format=csv")
        .await
        .text();
    assert!(growth.starts_with("metric,period,current_from"), "{growth}");
    let merchants = app.get("/v1/merchants?q=grind&format=csv").await.text();
    assert_eq!(
        merchants,
        "id,name,category,brand_id,ticker_symbol\n102,Daily Grind,coffee_shop,daily_grind,\n"
    );
}

#[tokio::test]
async fn bad_parameters_get_a_clear_400() {
    let app = seeded_app(&[]).await;
    let cases = [
        (
            "/v1/timeseries?metric=profit",
            "metric=\"profit\" is not valid",
        ),
        (
            "/v1/timeseries?from=2026-13-01",
            "from=\"2026-13-01\" is not valid",
        ),
        (
            "/v1/timeseries?from=2020-01-01&to=2026-01-01",
            "at most 1098 are allowed",
        ),
        ("/v1/timeseries?from=2026-02-01&to=2026-01-01", "is after"),
        (
            "/v1/timeseries?category=coffee_shop&merchant=1",
            "at most one of category, merchant and brand",
        ),
        ("/v1/timeseries?state=CA,XY", "state=\"XY\" is not valid"),
        ("/v1/timeseries?colour=red", "unknown field `colour`"),
        ("/v1/growth?period=qoq", "period=\"qoq\" is not valid"),
        (
            "/v1/top?limit=1000",
            "limit=\"1000\" is not valid: expected an integer from 1 to 100",
        ),
        ("/v1/merchants?limit=501", "from 1 to 500"),
        ("/v1/merchants?format=xml", "format=\"xml\" is not valid"),
    ];
    for (path, message) in cases {
        let answer = app.get(path).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            answer.text()
        );
        let body = answer.json();
        let text = body["error"]["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{path}: {text}");
        assert!(body["error"]["code"].is_string());
    }
    let unknown = app.get("/v1/timeseries?merchant=999999").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let unknown = app.get("/v1/no-such-route").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["code"], "not_found");
    let huge = serde_json::json!({"normalized_descriptors": vec!["X".repeat(1000); 80]});
    let answer = app.admin_post("/v1/admin/review/ignore", huge).await;
    assert_eq!(
        answer.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        answer.text()
    );
    assert_eq!(answer.json()["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn redis_unreachable_answers_from_postgres() {
    let app = seeded_app(&[("REDIS_URL", "redis://127.0.0.1:1")]).await;
    for _ in 0..2 {
        let answer = app
            .get("/v1/growth?category=coffee_shop&state=CA&as_of=2026-03-15")
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.header("x-cache"), Some("unavailable"));
        assert!(answer.json()["growth"].is_number());
    }
    let flush = app
        .request(
            Method::POST,
            "/v1/admin/cache/flush",
            Some(&app.admin_key),
            &[],
            None,
        )
        .await;
    assert_eq!(flush.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn postgres_down_is_a_503_with_retry_after() {
    let app = spawn_gateway(&[]).await;
    let mut env = app.env.clone();
    env.insert(
        "DATABASE_URL".into(),
        "postgres://postgres@127.0.0.1:1/nothing".into(),
    );
    let state = altdata_gateway::AppState::connect(settings_from(&env), None)
        .await
        .expect("state builds while PostgreSQL is down");
    let router = altdata_gateway::app(state);
    let request = axum::http::Request::builder()
        .uri("/v1/categories")
        .header("authorization", format!("Bearer {}", app.analyst_key))
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(router, request)
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["error"]["code"], "database_unavailable");
}

#[tokio::test]
async fn no_cache_bypasses_and_refreshes_and_flush_empties() {
    let app = seeded_app(&[]).await;
    let path = "/v1/growth?merchant=101&as_of=2026-03-15";
    assert_eq!(app.get(path).await.header("x-cache"), Some("miss"));
    assert_eq!(app.get(path).await.header("x-cache"), Some("hit"));
    app.cell(COFFEE, "CA", "2026-03-15", 1_000_000, 30, 0, 0, 30, 3)
        .await;
    let stale = app.get(path).await;
    assert_eq!(stale.header("x-cache"), Some("hit"));
    let fresh = app.get_with(path, &[("cache-control", "no-cache")]).await;
    assert_eq!(fresh.header("x-cache"), Some("bypass"));
    assert_ne!(fresh.json()["current"], stale.json()["current"]);
    // The refreshed answer replaced the cached one.
    let after = app.get(path).await;
    assert_eq!(after.header("x-cache"), Some("hit"));
    assert_eq!(after.json()["current"], fresh.json()["current"]);
    let flush = app
        .request(
            Method::POST,
            "/v1/admin/cache/flush",
            Some(&app.admin_key),
            &[],
            None,
        )
        .await;
    assert_eq!(flush.status, StatusCode::OK);
    assert_eq!(app.get(path).await.header("x-cache"), Some("miss"));
}

#[tokio::test]
async fn an_invalidation_on_jetstream_makes_the_next_answer_fresh() {
    let app = seeded_app(&[]).await;
    let gateway = altdata_gateway::build(settings_from(&app.env))
        .await
        .expect("gateway builds (is the project's nats-server up? bash scripts/stack.sh up)");
    let addr = gateway.addr;
    assert_ne!(addr.port(), 0);
    let state = gateway.state.clone();
    let shutdown = altdata_common::Shutdown::new();
    let running = tokio::spawn(gateway.run_until_stopped(shutdown.clone()));
    let router = altdata_gateway::app(state);

    // The socket answers too.
    let health = raw_get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");

    let get = |path: &'static str| cache_and_body(router.clone(), app.analyst_key.clone(), path);
    let merchant_path = "/v1/growth?merchant=102&as_of=2026-03-15";
    let category_path = "/v1/growth?category=fast_food&as_of=2026-03-15";
    let (cache, before) = get(merchant_path).await;
    assert_eq!(cache, "miss");
    assert_eq!(get(merchant_path).await.0, "hit");
    assert_eq!(get(category_path).await.0, "miss");
    assert_eq!(get(category_path).await.0, "hit");

    // A flush commits (simulated) and its invalidation goes through JetStream.
    app.cell(COFFEE_2, "CA", "2026-03-15", 500_000, 10, 0, 5000, 10, 7)
        .await;
    let (cache, stale) = get(merchant_path).await;
    assert_eq!(cache, "hit");
    assert_eq!(stale["current"], before["current"]);
    let js = &app.test_app.jetstream;
    let invalidation = CacheInvalidation {
        schema_version: SCHEMA_VERSION,
        merchant_ids: vec![COFFEE_2],
        categories: vec!["coffee_shop".into()],
        regions: vec!["CA".into()],
        first_date: 0,
        last_date: 0,
        committed_at_ms: 0,
        cause: "flush".into(),
    };
    let subject = app.test_app.subjects.cache_invalidate();
    js.publish(subject.clone(), b"not protobuf".to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    js.publish(subject, invalidation.encode_to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("stored");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let fresh = loop {
        let (cache, body) = get(merchant_path).await;
        if cache != "hit" {
            assert_eq!(cache, "miss");
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the invalidation was never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let expected = number(&before["current"]) + 5000.0;
    assert_eq!(number(&fresh["current"]), expected);
    // The fast-food answer did not depend on that change and is still cached.
    assert_eq!(get(category_path).await.0, "hit");

    shutdown.trigger();
    let stopped = tokio::time::timeout(Duration::from_secs(15), running)
        .await
        .expect("stops within the drain");
    assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
}

/// One request through the router: the `X-Cache` header and the JSON body.
async fn cache_and_body(router: axum::Router, key: String, path: &str) -> (String, Value) {
    let request = axum::http::Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let response = tower::ServiceExt::oneshot(router, request)
        .await
        .expect("infallible");
    let cache = response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (cache, serde_json::from_slice(&body).expect("json"))
}

async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("write");
    let mut text = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut text)).await;
    text
}

#[tokio::test]
async fn review_assign_moves_a_group_into_the_aggregates() {
    // Two customers only: turn k-anonymity down so the new merchant's series is visible.
    let app = seeded_app(&[("ALTDATA_K_ANONYMITY", "1")]).await;
    let db = app.db().await;
    // Three pending rows for one descriptor (one a refund), one for another.
    db.batch_execute(
        "INSERT INTO unmapped_transactions
             (txn_id, provider, raw_descriptor, normalized_descriptor, amount_cents, metric_date, region, customer_key, candidates)
         VALUES
             ('t1', 'p', 'SQ *NEW CAFE #12 SF', 'NEW CAFE', 2500, '2026-03-14', 'CA', 1, '[{\"merchant_id\": 101, \"score\": 0.6}]'),
             ('t2', 'p', 'SQ *NEW CAFE #13 SF', 'NEW CAFE', 1500, '2026-03-14', 'CA', 2, '[]'),
             ('t3', 'p', 'NEW CAFE SF', 'NEW CAFE', -500, '2026-03-15', 'CA', 1, '[]'),
             ('t4', 'p', 'MYSTERY 1', 'MYSTERY', 900, '2026-03-15', 'NY', 3, '[]')",
    )
    .await
    .expect("seed queue");

    let queue = app.admin_get("/v1/admin/review").await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.text());
    let queue = queue.json();
    assert_eq!(queue["total_groups"], 2);
    let group = &queue["groups"][0];
    assert_eq!(group["normalized_descriptor"], "NEW CAFE");
    assert_eq!(group["transactions"], 3);
    assert_eq!(number(&group["at_stake"]), 45.0, "{queue}");
    assert_eq!(group["samples"].as_array().map(Vec::len), Some(3));
    assert_eq!(group["first_date"], "2026-03-14");

    // The seeding wrote outbox rows of its own (it goes through the fact writer too).
    let outbox_before: i64 = scalar(&db, "SELECT coalesce(max(id), 0) FROM outbox").await;
    let answer = app
        .admin_post(
            "/v1/admin/review/assign",
            json!({"normalized_descriptors": ["NEW CAFE"], "new_merchant": {"name": "New Cafe", "category": "coffee_shop"}}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let assigned = answer.json();
    let merchant_id = assigned["merchant_id"].as_i64().unwrap_or_default();
    assert!(merchant_id >= 1_000_000);
    assert_eq!(assigned["transactions"], 3);
    assert_eq!(number(&assigned["net_spend"]), 35.0);

    let sums = db
        .query_one(
            "SELECT sum(total_spend_cents)::bigint, sum(transaction_count)::bigint, sum(refund_cents)::bigint,
                    sum(refund_count)::bigint, round(hll_cardinality(hll_union_agg(customers)))::bigint
             FROM agg_daily_merchant_spend WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await
        .expect("daily");
    assert_eq!(
        (
            sums.get::<_, i64>(0),
            sums.get::<_, i64>(1),
            sums.get::<_, i64>(2),
            sums.get::<_, i64>(3),
            sums.get::<_, i64>(4)
        ),
        (4000, 2, 500, 1, 2)
    );
    let category: i64 = scalar(
        &db,
        "SELECT sum(total_spend_cents - refund_cents)::bigint FROM agg_weekly_category_region
             WHERE shard = -1 AND category = 'coffee_shop'",
    )
    .await;
    assert_eq!(category, 3500);
    let pending: i64 = scalar(
        &db,
        "SELECT count(*) FROM unmapped_transactions WHERE status = 'pending'",
    )
    .await;
    assert_eq!(pending, 1);
    let alias: i64 = scalar(
        &db,
        "SELECT merchant_id FROM merchant_aliases WHERE alias = 'NEW CAFE'",
    )
    .await;
    assert_eq!(alias, merchant_id);
    let outbox = db
        .query(
            "SELECT kind, payload FROM outbox WHERE id > $1 ORDER BY id",
            &[&outbox_before],
        )
        .await
        .expect("outbox");
    assert_eq!(outbox.len(), 2);
    let invalidation = CacheInvalidation::decode(outbox[0].get::<_, &[u8]>(1)).expect("decodes");
    assert_eq!(invalidation.merchant_ids, vec![merchant_id]);
    assert_eq!(invalidation.cause, "review");
    let updates = AggregateUpdateBatch::decode(outbox[1].get::<_, &[u8]>(1)).expect("decodes");
    assert_eq!(updates.updates.len(), 2);
    let audit_id = assigned["descriptors"][0]["audit_id"]
        .as_i64()
        .unwrap_or_default();
    let audit = db
        .query_one(
            "SELECT actor, action, detail FROM mapping_audit WHERE id = $1",
            &[&audit_id],
        )
        .await
        .expect("audit");
    assert!(audit.get::<_, String>(0).contains("test admin"));
    assert_eq!(audit.get::<_, String>(1), "assign");
    assert_eq!(audit.get::<_, Value>(2)["net_cents"], 3500);

    // The API sees the new merchant.
    let series = app
        .get(&format!(
            "/v1/timeseries?merchant={merchant_id}&from=2026-03-14&to=2026-03-15&metric=gross"
        ))
        .await
        .json();
    assert_eq!(number(&series["points"][0]["value"]), 40.0);

    // Undo puts everything back (customers excepted: sketches cannot subtract).
    let undo = app
        .admin_post("/v1/admin/review/undo", json!({"audit_id": audit_id}))
        .await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.text());
    assert_eq!(undo.json()["transactions"], 3);
    let net: i64 = scalar(
        &db,
        "SELECT sum(total_spend_cents - refund_cents + transaction_count + refund_count)::bigint
             FROM agg_monthly_category_region WHERE shard = -1",
    )
    .await;
    assert_eq!(net, 0);
    let again = app
        .admin_post("/v1/admin/review/undo", json!({"audit_id": audit_id}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let alias = db
        .query_opt(
            "SELECT 1 FROM merchant_aliases WHERE alias = 'NEW CAFE'",
            &[],
        )
        .await
        .expect("alias query");
    assert!(alias.is_none());

    // Ignore, rules, audit, mapped share.
    let ignored = app
        .admin_post(
            "/v1/admin/review/ignore",
            json!({"normalized_descriptors": ["MYSTERY"]}),
        )
        .await;
    assert_eq!(ignored.json()["transactions"], 1);
    let bad_rule = app
        .admin_post(
            "/v1/admin/rules",
            json!({"kind": "regex", "pattern": "(unclosed", "merchant_id": 101}),
        )
        .await;
    assert_eq!(bad_rule.status, StatusCode::UNPROCESSABLE_ENTITY);
    let rule = app
        .admin_post(
            "/v1/admin/rules",
            json!({"kind": "prefix", "pattern": "BLUE BEAN", "merchant_id": 101}),
        )
        .await;
    assert_eq!(rule.status, StatusCode::OK, "{}", rule.text());
    let duplicate = app
        .admin_post(
            "/v1/admin/rules",
            json!({"kind": "prefix", "pattern": "BLUE BEAN", "merchant_id": 101}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let audit = app
        .request(
            Method::GET,
            "/v1/admin/audit?limit=10",
            Some(&app.admin_key),
            &[],
            None,
        )
        .await
        .json();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(actions, vec!["rule", "ignore", "undo", "assign"]);
    let share = app
        .request(
            Method::GET,
            "/v1/admin/mapped-share?from=2026-03-01&to=2026-03-31",
            Some(&app.admin_key),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(number(&share["unmapped_net_spend"]), 35.0, "{share}");
    assert!(number(&share["mapped_share"]) > 0.99);

    let too_many: Vec<String> = (0..101).map(|i| format!("D{i}")).collect();
    let answer = app
        .admin_post(
            "/v1/admin/review/assign",
            json!({"normalized_descriptors": too_many, "merchant_id": 101}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = app
        .admin_post(
            "/v1/admin/review/assign",
            json!({"normalized_descriptors": ["NEW CAFE"], "merchant_id": 424242}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_gateway(&[]).await;
    let answer = app
        .request(Method::GET, "/openapi.json", None, &[], None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/v1/timeseries",
        "/v1/growth",
        "/v1/growth/states",
        "/v1/top",
        "/v1/merchants",
        "/v1/categories",
        "/v1/freshness",
        "/v1/admin/review",
        "/v1/admin/review/assign",
        "/v1/admin/review/ignore",
        "/v1/admin/review/undo",
        "/v1/admin/rules",
        "/v1/admin/audit",
        "/v1/admin/mapped-share",
        "/v1/admin/files",
        "/v1/admin/cache/flush",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // The per-state growth takes /v1/growth's parameters but `state`, with a key.
    let by_state = &doc["paths"]["/v1/growth/states"]["get"];
    let mut names: Vec<&str> = by_state["parameters"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "as_of",
            "brand",
            "category",
            "format",
            "merchant",
            "metric",
            "normalize",
            "period"
        ]
    );
    assert_eq!(by_state["security"], json!([{"bearer": []}]));
    assert!(by_state["responses"]["200"]["headers"]
        .get("X-Cache")
        .is_some());
    // Parameters are described by the types that parse them.
    let parameter = |name: &str| {
        by_state["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .map(|p| p["schema"].clone())
            .unwrap_or_default()
    };
    assert_eq!(parameter("metric")["$ref"], "#/components/schemas/Metric");
    assert_eq!(parameter("as_of")["format"], "date");
    assert_eq!(parameter("merchant")["minimum"], 1);
    for status in ["400", "401", "429", "503"] {
        assert!(by_state["responses"].get(status).is_some(), "{status}");
    }
    assert!(by_state["responses"]["200"]["content"]
        .get("text/csv")
        .is_some());
    // Missing data, partial periods and the ranking's direction and floor are documented.
    let schemas = &doc["components"]["schemas"];
    for field in ["reason", "partial", "clipped", "counted", "period_end"] {
        assert!(
            schemas["Point"]["properties"].get(field).is_some(),
            "Point.{field}"
        );
    }
    assert!(schemas["Missing"]["enum"]
        .as_array()
        .is_some_and(|reasons| reasons.contains(&json!("before_panel_start"))));
    let top: Vec<&str> = doc["paths"]["/v1/top"]["get"]["parameters"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        top.contains(&"direction") && top.contains(&"min_spend"),
        "{top:?}"
    );
    let candidates = &doc["components"]["schemas"]["ReviewGroup"]["properties"]["candidates"];
    assert_eq!(candidates["type"], "array", "{candidates}");
    let home = app.request(Method::GET, "/", None, &[], None).await;
    assert!(home.text().contains("/openapi.json"));
    let freshness = app.get("/v1/freshness").await.json();
    assert_eq!(freshness["shards"], json!([]));
    // The scheme name of `Authorization` is case-insensitive.
    for scheme in ["bearer", "BEARER"] {
        let authorization = format!("{scheme} {}", app.analyst_key);
        let answer = app
            .request(
                Method::GET,
                "/v1/freshness",
                None,
                &[("authorization", &authorization)],
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn the_dashboard_is_served_without_path_traversal() {
    let dir = std::env::temp_dir().join(format!("gw-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("web dir");
    std::fs::write(dir.join("index.html"), "<html>dashboard</html>").expect("index");
    let dir_text = dir.to_string_lossy().into_owned();
    let app = spawn_gateway(&[("ALTDATA_WEB_DIR", &dir_text)]).await;
    let home = app.request(Method::GET, "/", None, &[], None).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text().contains("dashboard"));
    for path in ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/..%2fCargo.toml"] {
        let answer = app.request(Method::GET, path, None, &[], None).await;
        assert!(
            !answer.text().contains("[package]"),
            "{path} escaped the web dir"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every answer says "no data" past the last delivered day, whatever its subject: a change
/// that delivers a new last day (here for a grocery) reaches a cached fast-food series too.
#[tokio::test]
async fn a_new_last_day_reaches_the_cached_answers_of_every_subject() {
    let app = seeded_app(&[]).await;
    let served = app.serve(&[]).await;
    let get =
        |path: &'static str| cache_and_body(served.router.clone(), app.analyst_key.clone(), path);
    let path = "/v1/timeseries?merchant=201&state=CA&from=2026-03-20&to=2026-03-24";
    let day = |body: &Value, date: &str| {
        body["points"]
            .as_array()
            .and_then(|points| points.iter().find(|p| p["period_start"] == date).cloned())
            .unwrap_or_else(|| panic!("no point for {date}: {body}"))
    };
    let (cache, before) = get(path).await;
    assert_eq!(cache, "miss");
    assert!(day(&before, "2026-03-23")["value"].is_null());
    assert_eq!(day(&before, "2026-03-23")["reason"], "after_last_delivery");
    assert_eq!(get(path).await.0, "hit");

    // A grocery's sale on 2026-03-23 commits; its invalidation names only the grocery.
    app.cell(EDGE, "XX", "2026-03-23", 1_000, 1, 0, 9100, 12, 2)
        .await;
    let day_23 = altdata_domain::date_to_epoch_days(
        chrono::NaiveDate::from_ymd_opt(2026, 3, 23).expect("date"),
    );
    let invalidation = CacheInvalidation {
        schema_version: SCHEMA_VERSION,
        merchant_ids: vec![EDGE],
        categories: vec!["grocery".into()],
        regions: vec!["XX".into()],
        first_date: day_23,
        last_date: day_23,
        committed_at_ms: 0,
        cause: "flush".into(),
    };
    app.test_app
        .jetstream
        .publish(
            app.test_app.subjects.cache_invalidate(),
            invalidation.encode_to_vec().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    let after = wait_for(
        "the fast-food series to see the new last day",
        Duration::from_secs(15),
        || async {
            let (cache, body) = get(path).await;
            (cache == "miss").then_some(body)
        },
    )
    .await;
    // Inside the data now, and no sale of the burger chain that day: a real zero.
    assert_eq!(day(&after, "2026-03-23")["value"], 0.0);
}
