//! Spend at shops whose brand is not known, end to end: counted in its category under the
//! category's unattributed merchant (so category answers include every shop, with
//! `attributed_share` saying how much of it is at named brands), held for review, and moved to
//! the brand exactly, cents and counts, when a person assigns it (and back on undo).

use axum::http::StatusCode;
use integration_tests::gateway::spawn_gateway;
use integration_tests::scalar;
use serde_json::json;

const HEADER: &str =
    "txn_id,posted_at,card_id,descriptor,amount,currency,mcc,city,state,postal_code";

/// The test's own directory for the files it ingests.
fn data_dir(app: &integration_tests::gateway::GatewayApp) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("altdata-{}", app.test_app.prefix))
}

/// Writes `rows` (CSV lines after the header) to `name` in [`data_dir`] and runs the pipeline
/// over that file.
async fn ingest(
    app: &integration_tests::gateway::GatewayApp,
    name: &str,
    rows: &str,
) -> altdata_ingest::FileReport {
    let dir = data_dir(app);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join(name);
    std::fs::write(&file, format!("{HEADER}\n{rows}")).unwrap_or_else(|e| panic!("{e}"));
    let mut reports = app
        .test_app
        .run_pipeline(&[file.to_string_lossy().into_owned()])
        .await;
    reports.remove(0)
}

/// Net cents and transactions of a merchant's daily rows.
async fn merchant_sums(
    app: &integration_tests::gateway::GatewayApp,
    merchant_id: i64,
) -> (i64, i64) {
    let row = app
        .db()
        .await
        .query_one(
            "SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint,
                    coalesce(sum(transaction_count + refund_count), 0)::bigint
             FROM agg_daily_merchant_spend WHERE merchant_id = $1",
            &[&merchant_id],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (row.get(0), row.get(1))
}

/// The pending groups of one part of the review queue (`review` or `local`):
/// (group, transactions), in rank order.
async fn part_groups_counted(
    app: &integration_tests::gateway::GatewayApp,
    part: &str,
) -> Vec<(String, i64)> {
    let queue = app
        .admin_get(&format!("/v1/admin/review?part={part}"))
        .await
        .json();
    queue["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|group| {
            (
                group["normalized_descriptor"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                group["transactions"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

/// The pending groups of one part of the review queue.
async fn part_groups(app: &integration_tests::gateway::GatewayApp, part: &str) -> Vec<String> {
    let groups = part_groups_counted(app, part).await;
    groups.into_iter().map(|(group, _)| group).collect()
}

/// The pending groups of both parts of the review queue: (group, transactions).
async fn queue_groups(app: &integration_tests::gateway::GatewayApp) -> Vec<(String, i64)> {
    let mut groups = part_groups_counted(app, "review").await;
    groups.extend(part_groups_counted(app, "local").await);
    groups.sort();
    groups
}

#[tokio::test]
async fn unattributed_spend_counts_in_its_category_and_review_moves_it_to_the_brand() {
    let app = spawn_gateway(&[("ALTDATA_K_ANONYMITY", "1")]).await;
    // The gateway harness empties the catalogue; ingest resolves against the embedded one.
    let catalogue =
        altdata_domain::catalogue::Catalogue::embedded().unwrap_or_else(|e| panic!("{e}"));
    let starbucks = catalogue
        .merchants
        .iter()
        .find(|m| m.brand_id == "starbucks")
        .map(|m| m.id)
        .unwrap_or_else(|| panic!("starbucks is in the catalogue"));
    app.merchant(starbucks, "Starbucks", "coffee_shop", "starbucks")
        .await;
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    // Two cafes nobody named (MCC 5814 and the word COFFEE), one brand, and a shop whose
    // category cannot be told (held only).
    let counts = ingest(
        &app,
        "cafes.csv",
        &format!(
            "u1,{day} 08:00:00,4111000000000001,SQ *MOONLIGHT COFFEE ROASTERS,4.50,USD,5814,,CA,\n\
             u2,{day} 08:10:00,4111000000000002,SQ *MOONLIGHT COFFEE ROASTERS,5.25,USD,5814,,CA,\n\
             u3,{day} 08:20:00,4111000000000003,MOONLIGHT COFFEE ROASTERS,-1.00,USD,5814,,CA,\n\
             s1,{day} 09:00:00,4111000000000004,STARBUCKS STORE 01234,6.00,USD,5814,,CA,\n\
             h1,{day} 09:30:00,4111000000000005,ZQXV HOLDINGS 77,20.00,USD,,,CA,\n"
        ),
    )
    .await
    .counts;
    assert!(counts.conserved(), "{counts:?}");
    assert_eq!(
        (counts.published, counts.unattributed, counts.unmapped),
        (1, 3, 1),
        "{counts:?}"
    );
    let coffee = altdata_domain::Category::CoffeeShop.unattributed_merchant_id();
    assert_eq!(merchant_sums(&app, coffee).await, (875, 3));

    // The category answer counts every cafe and says how much is at named brands.
    let path = format!("/v1/growth?category=coffee_shop&state=CA&period=wow&as_of={day}");
    let growth = app.get(&path).await.json();
    assert_eq!(growth["current"], 14.75, "{growth}");
    let share = growth["attributed_share"].as_f64().unwrap_or(-1.0);
    assert!((share - 600.0 / 1475.0).abs() < 1e-4, "{growth}");
    // Unattributed merchants are not merchants an analyst can rank or find.
    let top = app
        .get(&format!(
            "/v1/top?category=coffee_shop&state=CA&as_of={day}"
        ))
        .await
        .json();
    let names: Vec<&str> = top["merchants"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["Starbucks"], "{top}");
    let search = app.get("/v1/merchants?q=unattributed").await.json();
    assert_eq!(search["total"], 0, "{search}");

    // Both groups stay held. The cafe, counted in its category with no brand in sight, is
    // listed with the local shops, not in the part that needs a person; assigning it moves its
    // spend to the new brand.
    let local = part_groups(&app, "local").await;
    assert!(
        local.contains(&"MOONLIGHT COFFEE ROASTERS".to_owned()),
        "{local:?}"
    );
    let review = part_groups(&app, "review").await;
    assert!(
        !review.contains(&"MOONLIGHT COFFEE ROASTERS".to_owned()),
        "{review:?}"
    );
    assert!(review.iter().any(|g| g.starts_with("ZQXV")), "{review:?}");
    let assigned = app
        .admin_post(
            "/v1/admin/review/assign",
            json!({"normalized_descriptors": ["MOONLIGHT COFFEE ROASTERS"],
                   "new_merchant": {"name": "Moonlight Coffee Roasters", "category": "coffee_shop"}}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text());
    let assigned = assigned.json();
    let brand = assigned["merchant_id"].as_i64().unwrap_or_default();
    assert_eq!(merchant_sums(&app, coffee).await, (0, 0));
    assert_eq!(merchant_sums(&app, brand).await, (875, 3));
    let fresh = app
        .get_with(&path, &[("cache-control", "no-cache")])
        .await
        .json();
    assert_eq!(
        fresh["current"], 14.75,
        "the category total does not change: {fresh}"
    );
    assert_eq!(fresh["attributed_share"], 1.0, "{fresh}");

    // Undo puts it back under the unattributed merchant.
    let audit_id = assigned["descriptors"][0]["audit_id"]
        .as_i64()
        .unwrap_or_default();
    let undone = app
        .admin_post("/v1/admin/review/undo", json!({"audit_id": audit_id}))
        .await;
    assert_eq!(undone.status, StatusCode::OK, "{}", undone.text());
    assert_eq!(merchant_sums(&app, coffee).await, (875, 3));
    assert_eq!(merchant_sums(&app, brand).await, (0, 0));

    // An unattributed merchant is not a target.
    let refused = app
        .admin_post(
            "/v1/admin/review/assign",
            json!({"normalized_descriptors": ["MOONLIGHT COFFEE ROASTERS"], "merchant_id": coffee}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );

    // Named + unattributed + held only = the valid input, to the cent.
    let db = app.db().await;
    let aggregated: i64 = scalar(
        &db,
        "SELECT sum(total_spend_cents - refund_cents)::bigint FROM agg_daily_merchant_spend",
    )
    .await;
    let held_only: i64 = scalar(&db, "SELECT coalesce(sum(amount_cents), 0)::bigint FROM unmapped_transactions WHERE counted_merchant_id IS NULL").await;
    assert_eq!(aggregated + held_only, 450 + 525 - 100 + 600 + 2000);
    let _ = std::fs::remove_dir_all(data_dir(&app));
}

#[tokio::test]
async fn one_shop_from_many_branches_and_cut_towns_waits_as_one_group_and_its_alias_covers_new_towns(
) {
    let app = spawn_gateway(&[("ALTDATA_K_ANONYMITY", "1")]).await;
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    // Printed to Mastercard's 22-character name field: the town cut short, or the branch after
    // a store number.
    let counts = ingest(
        &app,
        "bistro-1.csv",
        &format!(
            "b1,{day} 12:00:00,4111000000000001,2ND ST BISTRO ALLENTOW,31.00,USD,5812,,,\n\
             b2,{day} 12:10:00,4111000000000002,2ND ST BISTRO LOS ANGE,42.00,USD,5812,,,\n\
             b3,{day} 12:20:00,4111000000000003,2ND ST BISTRO #4 COLUM,27.00,USD,5812,,,\n"
        ),
    )
    .await
    .counts;
    assert_eq!(
        (counts.unattributed, counts.published),
        (3, 0),
        "{counts:?}"
    );
    let groups = queue_groups(&app).await;
    assert_eq!(groups, vec![("2ND ST BISTRO".to_owned(), 3)], "{groups:?}");

    let assigned = app
        .admin_post(
            "/v1/admin/review/assign",
            json!({"normalized_descriptors": ["2ND ST BISTRO"],
                   "new_merchant": {"name": "2nd St Bistro", "category": "restaurant"}}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text());
    let brand = assigned.json()["merchant_id"].as_i64().unwrap_or_default();
    assert_eq!(merchant_sums(&app, brand).await, (10_000, 3));

    // The next file's rows from another town resolve through the group's alias.
    let counts = ingest(
        &app,
        "bistro-2.csv",
        &format!("b4,{day} 13:00:00,4111000000000004,2ND ST BISTRO CHARLOTT,19.00,USD,5812,,,\n"),
    )
    .await
    .counts;
    assert_eq!(
        (counts.published, counts.unmapped, counts.unattributed),
        (1, 0, 0),
        "{counts:?}"
    );
    assert_eq!(merchant_sums(&app, brand).await, (11_900, 4));
    let _ = std::fs::remove_dir_all(data_dir(&app));
}

#[tokio::test]
async fn the_queue_resolved_again_after_a_resolver_change_regroups_and_assigns_exactly() {
    let app = spawn_gateway(&[("ALTDATA_K_ANONYMITY", "1")]).await;
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    let counts = ingest(
        &app,
        "again-1.csv",
        &format!(
            "a1,{day} 08:00:00,4111000000000001,QWZ COFFEE 0421 OAKLAND CA,4.50,USD,5814,,CA,\n\
             a2,{day} 08:10:00,4111000000000002,QWZ COFFEE 0421 OAKLAND CA,-1.25,USD,5814,,CA,\n\
             a3,{day} 08:20:00,4111000000000003,ZORP NOODLE HOUSE,12.00,USD,5812,,CA,\n"
        ),
    )
    .await
    .counts;
    assert_eq!(
        (counts.unattributed, counts.published),
        (3, 0),
        "{counts:?}"
    );
    let coffee = altdata_domain::Category::CoffeeShop.unattributed_merchant_id();
    assert_eq!(merchant_sums(&app, coffee).await, (325, 2));
    let before = queue_groups(&app).await;
    assert_eq!(before.len(), 2, "{before:?}");
    let noodle = before
        .iter()
        .find(|(g, _)| g.starts_with("ZORP"))
        .map(|(g, _)| g.clone())
        .unwrap_or_default();
    // A row held by an older resolver, under a key today's resolver does not make.
    app.db()
        .await
        .execute(
            "UPDATE unmapped_transactions SET normalized_descriptor = $1 WHERE txn_id = 'a3'",
            &[&format!("{noodle} OLD KEY")],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Today's catalogue has a brand the rows did not find when they arrived.
    app.merchant(900_101, "Qwz Coffee", "coffee_shop", "qwz-coffee")
        .await;

    let again = |dry_run: bool| {
        let app = &app;
        async move {
            let resolver = altdata_ingest::load_resolver(&app.test_app.pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut client = app.db().await;
            altdata_gateway::review::again::resolve_again(&mut client, &resolver, "test", dry_run)
                .await
                .map_err(altdata_gateway::error::ApiError::from)
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let dry = again(true).await;
    assert_eq!(
        (
            dry.groups_examined,
            dry.groups_regrouped,
            dry.rows_regrouped
        ),
        (2, 1, 1),
        "{dry:?}"
    );
    assert_eq!(
        (dry.groups_assigned, dry.rows_assigned, dry.cents_assigned),
        (1, 2, 575),
        "{dry:?}"
    );
    assert_eq!(
        merchant_sums(&app, 900_101).await,
        (0, 0),
        "a dry run moves nothing"
    );
    assert_eq!(queue_groups(&app).await.len(), 2);

    let done = again(false).await;
    assert_eq!(done, dry, "the pass does what the dry run said");
    // The spend moved from the unattributed coffee merchant to the brand, to the cent.
    assert_eq!(merchant_sums(&app, 900_101).await, (325, 2));
    assert_eq!(merchant_sums(&app, coffee).await, (0, 0));
    assert_eq!(queue_groups(&app).await, vec![(noodle, 1)]);
    let audit: i64 = app
        .db()
        .await
        .query_one(
            "SELECT id FROM mapping_audit WHERE action = 'assign' AND actor = 'test' AND merchant_id = 900101",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);

    // A second pass with the same resolver finds nothing to do.
    let idle = again(false).await;
    assert_eq!(
        (
            idle.groups_examined,
            idle.groups_regrouped,
            idle.groups_assigned
        ),
        (1, 0, 0),
        "{idle:?}"
    );
    // It was an ordinary assign: the review tool's undo puts the rows back.
    let undone = app
        .admin_post("/v1/admin/review/undo", json!({"audit_id": audit}))
        .await;
    assert_eq!(undone.status, StatusCode::OK, "{}", undone.text());
    assert_eq!(merchant_sums(&app, 900_101).await, (0, 0));
    assert_eq!(merchant_sums(&app, coffee).await, (325, 2));
    let _ = std::fs::remove_dir_all(data_dir(&app));
}
