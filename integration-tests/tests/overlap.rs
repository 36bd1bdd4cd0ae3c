//! `GET /v1/overlap` (issue #22) on generated data through the whole pipeline: the customers
//! of two groups, of either and of both (inclusion–exclusion over the HLL sketches) equal the
//! exact distinct customers of the same released cells, counted from the identity record,
//! within the error bound the answer states; and no count under k is published.

use altdata_common::Shutdown;
use altdata_domain::catalogue::Catalogue;
use integration_tests::gateway::{gateway_over, GatewayApp};
use integration_tests::spawn_app;

const FROM: &str = "2026-03-02";
const TO: &str = "2026-03-08";

fn date(text: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn number(answer: &serde_json::Value, field: &str) -> f64 {
    answer[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number: {answer}"))
}

/// A week of 4,000 cards, read at k = 3: at the default k = 10 a panel this small releases no
/// cell of a mid-sized brand such as Dunkin' (each state's day has fewer than ten of its
/// customers), and there would be nothing to compare.
async fn generated_week() -> GatewayApp {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("altdata-overlap-{}", app.prefix));
    let config = altdata_generate::GenerateConfig {
        days: 7,
        cards: 4_000,
        seed: 23,
        start: date(FROM),
        out: dir.display().to_string(),
        gzip: true,
        provider: "panel".into(),
        progress: false,
        truth_detail: false,
        resends: 0,
        panel_growth: 0.0,
        panel_growth_day: None,
    };
    let catalogue = Catalogue::embedded().unwrap_or_else(|e| panic!("{e}"));
    altdata_generate::run(&config, &catalogue, &Shutdown::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    app.run_pipeline(&[dir.display().to_string()]).await;
    let _ = std::fs::remove_dir_all(&dir);
    gateway_over(app, &[("ALTDATA_K_ANONYMITY", "3")]).await
}

/// Exact distinct customers of group a, of group b and of both, over the released daily
/// cells of the week (the cells every answer is made of), from the identity record. A group
/// is a SQL condition on the transaction's merchant `t.merchant_id` and category `t.category`.
async fn exact(app: &GatewayApp, a: &str, b: &str) -> (f64, f64, f64) {
    let sql = format!(
        "WITH t AS (
             SELECT i.merchant_id, m.category, i.customer_key
             FROM txn_identity i
             JOIN dim_merchants m ON m.id = i.merchant_id
             JOIN agg_daily_merchant_spend d
               ON d.merchant_id = i.merchant_id AND d.metric_date = i.metric_date AND d.released
              AND d.region = CASE WHEN i.region ~ '^[A-Za-z]{{2}}$' THEN upper(i.region) ELSE 'XX' END
             WHERE i.retracted_at IS NULL AND i.metric_date BETWEEN $1 AND $2),
         a AS (SELECT DISTINCT customer_key FROM t WHERE {a}),
         b AS (SELECT DISTINCT customer_key FROM t WHERE {b})
         SELECT (SELECT count(*) FROM a)::float8, (SELECT count(*) FROM b)::float8,
                (SELECT count(*) FROM a JOIN b USING (customer_key))::float8"
    );
    let row = app
        .db()
        .await
        .query_one(&sql, &[&date(FROM), &date(TO)])
        .await
        .unwrap_or_else(|e| panic!("exact overlap: {e}"));
    (row.get(0), row.get(1), row.get(2))
}

async fn overlap(app: &GatewayApp, a: &str, b: &str) -> serde_json::Value {
    let path = format!("/v1/overlap?a={a}&b={b}&from={FROM}&to={TO}");
    let answer = app.get(&path).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    answer.json()
}

/// The answer's counts against the exact ones: each group within three standard errors,
/// customers of both and the shares within the bounds the answer states.
fn assert_within_the_stated_bounds(answer: &serde_json::Value, exact: (f64, f64, f64)) {
    let (a, b, both) = exact;
    let r = number(answer, "relative_standard_error");
    for (field, truth) in [("customers_a", a), ("customers_b", b)] {
        let estimate = number(answer, field);
        assert!(
            (estimate - truth).abs() <= 3.0 * r * truth,
            "{field}: estimate {estimate}, exact {truth}"
        );
    }
    let estimate = number(answer, "customers_both");
    let bound = number(answer, "customers_both_error");
    assert!(
        (estimate - both).abs() <= bound,
        "customers_both: estimate {estimate} ± {bound}, exact {both}"
    );
    for (field, truth) in [("share_of_a_in_b", both / a), ("share_of_b_in_a", both / b)] {
        let estimate = number(answer, field);
        let bound = number(answer, &format!("{field}_error"));
        assert!(
            (estimate - truth).abs() <= bound,
            "{field}: estimate {estimate} ± {bound}, exact {truth}"
        );
    }
}

#[tokio::test]
async fn overlap_equals_the_exact_shared_customers_within_the_stated_bound() {
    let app = generated_week().await;
    let starbucks: i64 = 2628;
    let dunkin: i64 = 853;

    let brands = overlap(&app, "starbucks", "dunkin").await;
    let truth = exact(
        &app,
        &format!("t.merchant_id = {starbucks}"),
        &format!("t.merchant_id = {dunkin}"),
    )
    .await;
    println!("starbucks × dunkin: exact {truth:?}, answer {brands}");
    assert_eq!(brands["a"]["merchant_id"], starbucks);
    assert_eq!(brands["b"]["brand"], "dunkin");
    assert_within_the_stated_bounds(&brands, truth);
    // The same question by merchant id is the same answer.
    let by_id = overlap(&app, &starbucks.to_string(), &dunkin.to_string()).await;
    assert_eq!(by_id["customers_both"], brands["customers_both"]);

    let categories = overlap(&app, "coffee_shop", "fast_food").await;
    let truth = exact(
        &app,
        "t.category = 'coffee_shop'",
        "t.category = 'fast_food'",
    )
    .await;
    println!("coffee_shop × fast_food: exact {truth:?}, answer {categories}");
    assert_within_the_stated_bounds(&categories, truth);

    // A brand inside its category: the customers of the brand outside it are fewer than k, so
    // the shared count, which would reveal them by subtraction, is withheld.
    let inside = overlap(&app, "starbucks", "coffee_shop").await;
    assert!(inside["customers_a"].as_f64().is_some(), "{inside}");
    assert!(inside["customers_both"].is_null(), "{inside}");
    assert!(inside["customers_either"].is_null(), "{inside}");
    assert!(inside["share_of_a_in_b"].is_null(), "{inside}");
    assert!(inside["suppression"].as_str().is_some(), "{inside}");

    let csv = app
        .get(&format!(
            "/v1/overlap?a=starbucks&b=dunkin&from={FROM}&to={TO}&format=csv"
        ))
        .await
        .text();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap_or_default()
        .starts_with("from,to,states,a,b,customers_a"));
    assert!(
        lines
            .next()
            .unwrap_or_default()
            .contains(",Starbucks,Dunkin',"),
        "{csv}"
    );
}

#[tokio::test]
async fn overlap_refuses_unknown_groups_and_bad_ranges() {
    let app = gateway_over(spawn_app().await, &[]).await;
    let answer = app.get("/v1/overlap?a=starbucks&b=no_such_brand").await;
    assert_eq!(answer.status, 404, "{}", answer.text());
    let answer = app.get("/v1/overlap?a=starbucks").await;
    assert_eq!(answer.status, 400, "b is required");
    let answer = app
        .get("/v1/overlap?a=starbucks&b=dunkin&from=2026-03-09&to=2026-03-02")
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["code"], "conflicting_parameters");
    // Without data, nothing is published, and the answer says why.
    let empty = app
        .get("/v1/overlap?a=starbucks&b=coffee_shop&from=2026-03-02&to=2026-03-08")
        .await
        .json();
    assert!(empty["customers_a"].is_null() && empty["customers_both"].is_null());
    assert!(empty["suppression"].as_str().is_some());

    // The document describes every parameter, by the types that parse them.
    let doc = app
        .request(axum::http::Method::GET, "/openapi.json", None, &[], None)
        .await
        .json();
    let operation = &doc["paths"]["/v1/overlap"]["get"];
    let mut names: Vec<&str> = operation["parameters"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    names.sort_unstable();
    assert_eq!(names, ["a", "b", "format", "from", "state", "to"]);
    let growth = &doc["paths"]["/v1/growth"]["get"]["parameters"];
    let normalize = growth
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "normalize"))
        .cloned()
        .unwrap_or_default();
    assert!(normalize["description"].as_str().is_some(), "{normalize}");
}
