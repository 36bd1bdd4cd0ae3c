//! Safe review: every decision can be undone, a rule is previewed before it is saved, and a
//! group shows what decides it (MCC mix, states, samples, near ties). Against the real
//! PostgreSQL and Redis ([`integration_tests::gateway::spawn_gateway`]).

use axum::http::StatusCode;
use integration_tests::gateway::{spawn_gateway, GatewayApp};
use integration_tests::scalar;
use serde_json::{json, Value};

/// Holds rows for review: (txn id, raw, normalised, cents, state, mcc, candidates).
async fn hold(app: &GatewayApp, rows: &[(&str, &str, &str, i64, &str, &str, Value)]) {
    let db = app.db().await;
    for (txn, raw, normalized, cents, state, mcc, candidates) in rows {
        db.execute(
            "INSERT INTO unmapped_transactions
                 (txn_id, provider, raw_descriptor, normalized_descriptor, amount_cents,
                  metric_date, region, customer_key, mcc, candidates)
             VALUES ($1, 'p', $2, $3, $4, '2026-03-14', $5, 1, $6, $7)",
            &[txn, raw, normalized, cents, state, mcc, candidates],
        )
        .await
        .unwrap_or_else(|e| panic!("hold {txn}: {e}"));
    }
}

fn audit_id_of(answer: &Value) -> i64 {
    answer["descriptors"][0]["audit_id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no audit id in {answer}"))
}

#[tokio::test]
async fn a_group_shows_its_mcc_mix_states_samples_and_near_ties() {
    let app = spawn_gateway(&[]).await;
    let tie = json!([
        {"merchant_id": 1, "name": "BJ's Wholesale Club", "score": 1.0},
        {"merchant_id": 2, "name": "BJ's Restaurant", "score": 0.99}
    ]);
    hold(
        &app,
        &[
            (
                "a",
                "BJS #0123 NATICK MA",
                "BJS",
                5_000,
                "MA",
                "5300",
                tie.clone(),
            ),
            (
                "b",
                "BJS #0456 NASHUA NH",
                "BJS",
                4_000,
                "NH",
                "5300",
                tie.clone(),
            ),
            (
                "c",
                "BJS #0789 BOSTON MA",
                "BJS",
                3_000,
                "MA",
                "5300",
                tie.clone(),
            ),
            ("d", "BJS RESTAURANT", "BJS", 2_000, "MA", "5812", tie),
        ],
    )
    .await;
    let queue = app.admin_get("/v1/admin/review").await.json();
    let group = &queue["groups"][0];
    assert_eq!(group["near_tie"], true, "{group}");
    assert_eq!(
        group["mcc_mix"],
        json!([{"value": "5300", "transactions": 3}, {"value": "5812", "transactions": 1}])
    );
    assert_eq!(
        group["states"],
        json!([{"value": "MA", "transactions": 3}, {"value": "NH", "transactions": 1}])
    );
    assert_eq!(group["samples"].as_array().map(Vec::len), Some(4));
}

/// The groups of one part of the queue, and the part's count as the answer gives it.
async fn part(app: &GatewayApp, part: &str) -> (Vec<String>, Value) {
    let queue = app
        .admin_get(&format!("/v1/admin/review?part={part}"))
        .await
        .json();
    let groups = queue["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|g| g["normalized_descriptor"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (groups, queue)
}

#[tokio::test]
async fn local_shops_counted_in_their_category_are_listed_apart_from_what_needs_a_person() {
    let app = spawn_gateway(&[]).await;
    let candidate = |score: f64, at_start: Option<bool>| {
        let mut c = json!({"merchant_id": 1, "name": "Chevron", "score": score});
        if let Some(at_start) = at_start {
            c["name_at_start"] = json!(at_start);
        }
        json!([c])
    };
    hold(
        &app,
        &[
            // The brand's whole name starts the descriptor: a suspect, however low its score.
            (
                "a",
                "CHEVRON 0095006 TAHOE",
                "CHEVRON TAHOE",
                900,
                "CA",
                "5541",
                candidate(0.62, Some(true)),
            ),
            // A name met after the shop's own words (a town): not a suspect at that score.
            (
                "b",
                "ROSAS GRILL COLUMBUS OH",
                "ROSAS GRILL COLUMBUS",
                800,
                "OH",
                "5812",
                candidate(0.6, Some(false)),
            ),
            // Anywhere in the text, a score at the automatic threshold is a suspect.
            (
                "c",
                "PAYLESS 0123",
                "PAYLESS",
                700,
                "VA",
                "",
                candidate(0.95, Some(false)),
            ),
            // Written before the flag: a suspect from 0.5.
            (
                "d",
                "OLD ROW 1",
                "OLD ROW",
                600,
                "VA",
                "5812",
                candidate(0.55, None),
            ),
            // Neither brand nor category: held only.
            (
                "e",
                "ZQXV HOLDINGS",
                "ZQXV HOLDINGS",
                500,
                "NY",
                "",
                json!([]),
            ),
            // A local shop with no candidate at all.
            (
                "f",
                "LUCYS DINER",
                "LUCYS DINER",
                400,
                "AZ",
                "5812",
                json!([]),
            ),
        ],
    )
    .await;
    let restaurant = altdata_domain::Category::Restaurant.unattributed_merchant_id();
    let db = app.db().await;
    db.execute(
        "UPDATE unmapped_transactions SET counted_merchant_id = $1 WHERE txn_id <> 'e'",
        &[&restaurant],
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    let (review, answer) = part(&app, "review").await;
    assert_eq!(
        review,
        vec!["CHEVRON TAHOE", "PAYLESS", "OLD ROW", "ZQXV HOLDINGS"],
        "{answer}"
    );
    assert_eq!(answer["part"], "review");
    assert_eq!(answer["groups"][0]["brand_suspected"], true);
    assert_eq!(answer["groups"][3]["brand_suspected"], false);
    assert_eq!(
        (
            &answer["total_groups"],
            &answer["review_groups"],
            &answer["local_groups"]
        ),
        (&json!(4), &json!(4), &json!(2))
    );
    let (local, answer) = part(&app, "local").await;
    assert_eq!(
        local,
        vec!["ROSAS GRILL COLUMBUS", "LUCYS DINER"],
        "{answer}"
    );
    assert_eq!(answer["counted_category"], Value::Null);
    assert_eq!(answer["groups"][0]["counted_category"], "restaurant");
    // The default part is the one that needs a person; an unknown part is a clear 400.
    let default = app.admin_get("/v1/admin/review").await.json();
    assert_eq!(default["part"], "review");
    let wrong = app.admin_get("/v1/admin/review?part=all").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
    assert!(
        wrong.text().contains("expected review or local"),
        "{}",
        wrong.text()
    );
    // Past the last page the counts still come.
    let (_, past) = part(&app, "local").await;
    let past_end = app
        .admin_get("/v1/admin/review?part=local&offset=10")
        .await
        .json();
    assert_eq!(past_end["groups"], json!([]));
    assert_eq!(
        (&past_end["total_groups"], &past_end["review_groups"]),
        (&past["local_groups"], &json!(4))
    );
}

#[tokio::test]
async fn an_ignore_is_undone_exactly() {
    let app = spawn_gateway(&[]).await;
    hold(
        &app,
        &[
            ("a", "MYSTERY 1", "MYSTERY", 900, "NY", "", json!([])),
            ("b", "MYSTERY 2", "MYSTERY", -100, "NY", "", json!([])),
        ],
    )
    .await;
    let db = app.db().await;
    let aggregates = "SELECT count(*) FROM outbox";
    let outbox_before: i64 = scalar(&db, aggregates).await;
    let ignored = app
        .admin_post(
            "/v1/admin/review/ignore",
            json!({"normalized_descriptors": ["MYSTERY"]}),
        )
        .await;
    assert_eq!(ignored.status, StatusCode::OK, "{}", ignored.text());
    let audit_id: i64 = scalar(
        &db,
        "SELECT id FROM mapping_audit WHERE action = 'ignore' AND normalized_descriptor = 'MYSTERY'",
    )
    .await;
    assert_eq!(
        ignored.json()["audit_ids"],
        json!([audit_id]),
        "the answer names its decision"
    );
    let undo = app
        .admin_post("/v1/admin/review/undo", json!({"audit_id": audit_id}))
        .await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.text());
    let undo = undo.json();
    assert_eq!(undo["action"], "ignore");
    assert_eq!(undo["transactions"], 2);
    assert_eq!(undo["net_spend"], 8.0);
    let pending: i64 = scalar(
        &db,
        "SELECT count(*) FROM unmapped_transactions WHERE status = 'pending' AND resolved_by IS NULL",
    )
    .await;
    assert_eq!(pending, 2);
    // Ignoring moved no spend, so undoing it writes no aggregate.
    assert_eq!(scalar::<i64>(&db, aggregates).await, outbox_before);
    let again = app
        .admin_post("/v1/admin/review/undo", json!({"audit_id": audit_id}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // The undo itself is audited, and cannot be undone.
    let undo_entry: i64 = scalar(
        &db,
        "SELECT id FROM mapping_audit WHERE action = 'undo' AND (detail->>'undoes')::bigint = (SELECT id FROM mapping_audit WHERE action = 'ignore')",
    )
    .await;
    let refused = app
        .admin_post("/v1/admin/review/undo", json!({"audit_id": undo_entry}))
        .await;
    // A well-formed request about an entry that cannot be undone: a conflict, like undoing twice.
    assert_eq!(refused.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_rule_is_previewed_before_it_is_saved_and_can_be_undone() {
    let app = spawn_gateway(&[]).await;
    app.merchant(301, "Floor & Decor", "home_improvement", "floor_decor")
        .await;
    app.merchant(302, "Fleet Farm", "home_improvement", "fleet_farm")
        .await;
    app.merchant(303, "Flo Coffee", "coffee_shop", "flo_coffee")
        .await;
    hold(
        &app,
        &[
            (
                "a",
                "FLO COFFEE 12",
                "FLO COFFEE",
                700,
                "CA",
                "5814",
                json!([]),
            ),
            (
                "b",
                "FLO COFFEE 13",
                "FLO COFFEE",
                500,
                "CA",
                "5814",
                json!([]),
            ),
            (
                "c",
                "FL STATE PARKS",
                "FL STATE PARKS",
                1_200,
                "FL",
                "7996",
                json!([]),
            ),
            ("d", "MYSTERY", "MYSTERY", 100, "FL", "", json!([])),
        ],
    )
    .await;
    app.db()
        .await
        .execute(
            "INSERT INTO merchant_aliases (alias, merchant_id) VALUES ('FLOWERS BY SUE', 302)",
            &[],
        )
        .await
        .expect("alias");

    let rule = json!({"kind": "prefix", "pattern": "FL", "merchant_id": 303});
    let preview = app
        .admin_post("/v1/admin/rules/preview", rule.clone())
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.text());
    let preview = preview.json();
    assert_eq!(preview["pending_groups"], 2, "{preview}");
    assert_eq!(preview["pending_transactions"], 3);
    assert_eq!(preview["pending_net_spend"], 24.0);
    assert_eq!(
        preview["examples"][0]["normalized_descriptor"],
        "FL STATE PARKS"
    );
    let rerouted: Vec<String> = preview["reroutes_brands"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|b| b["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(rerouted, ["Fleet Farm", "Floor & Decor"], "{preview}");
    assert_eq!(preview["aliases_kept"], 1);
    // Nothing was saved.
    let db = app.db().await;
    assert_eq!(
        scalar::<i64>(&db, "SELECT count(*) FROM merchant_rules").await,
        0
    );
    let bad = app
        .admin_post(
            "/v1/admin/rules/preview",
            json!({"kind": "regex", "pattern": "(", "merchant_id": 303}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Saved, then undone: inactive, and ingest's loader skips inactive rules.
    let saved = app.admin_post("/v1/admin/rules", rule).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.text());
    let audit_id: i64 = scalar(&db, "SELECT id FROM mapping_audit WHERE action = 'rule'").await;
    assert_eq!(
        saved.json()["audit_id"],
        audit_id,
        "the answer names its decision"
    );
    let undo = app
        .admin_post("/v1/admin/review/undo", json!({"audit_id": audit_id}))
        .await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.text());
    assert_eq!(undo.json()["action"], "rule");
    let active: bool = scalar(&db, "SELECT active FROM merchant_rules").await;
    assert!(!active);
    let rules = app
        .request(
            axum::http::Method::GET,
            "/v1/admin/rules",
            Some(&app.admin_key),
            &[],
            None,
        )
        .await
        .json();
    assert_eq!(rules["rules"][0]["active"], false);
}

#[tokio::test]
async fn an_assign_is_undone_through_the_same_endpoint() {
    let app = spawn_gateway(&[]).await;
    app.merchant(303, "Flo Coffee", "coffee_shop", "flo_coffee")
        .await;
    hold(
        &app,
        &[(
            "a",
            "FLO COFFEE 12",
            "FLO COFFEE",
            700,
            "CA",
            "5814",
            json!([]),
        )],
    )
    .await;
    let assigned = app
        .admin_post(
            "/v1/admin/review/assign",
            json!({"normalized_descriptors": ["FLO COFFEE"], "merchant_id": 303}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text());
    let undo = app
        .admin_post(
            "/v1/admin/review/undo",
            json!({"audit_id": audit_id_of(&assigned.json())}),
        )
        .await
        .json();
    assert_eq!(undo["action"], "assign");
    assert_eq!(undo["transactions"], 1);
    assert!(undo["note"]
        .as_str()
        .is_some_and(|n| n.contains("over-count")));
}
