//! Merchant rules from the review API to ingest, end to end: the API refuses a rule the
//! resolver could not use (422, with the reason), a bad rule stored by other means never stops
//! ingest and is listed with its reason, and a rule added through the API resolves the next
//! file's descriptors.

use altdata_common::Shutdown;
use altdata_ingest::IngestSettings;
use altdata_proto::v1::ResolutionSource;
use axum::http::{Method, StatusCode};
use integration_tests::gateway::spawn_gateway;
use integration_tests::stream_events;
use serde_json::json;

const HEADER: &str =
    "txn_id,posted_at,card_id,descriptor,amount,currency,mcc,city,state,postal_code";

#[tokio::test]
async fn a_rule_added_through_the_api_resolves_the_next_file() {
    let app = spawn_gateway(&[]).await;
    app.merchant(
        900_001,
        "Corner Market Co-op",
        "grocery",
        "corner_market_coop",
    )
    .await;

    // What normalises to nothing is refused with the reason, not stored.
    let refused = app
        .admin_post(
            "/v1/admin/rules",
            json!({"kind": "prefix", "pattern": "123456789 #12 03/14", "merchant_id": 900_001}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text()
    );
    assert!(
        refused.text().contains("normalises to"),
        "{}",
        refused.text()
    );
    let refused = app
        .admin_post(
            "/v1/admin/rules",
            json!({"kind": "regex", "pattern": "X*", "merchant_id": 900_001}),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text()
    );

    // A bad rule that reached the table another way (an older version, by hand).
    app.db()
        .await
        .execute(
            "INSERT INTO merchant_rules (kind, pattern, merchant_id) VALUES ('prefix', '#12 03/14', 900001)",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let added = app
        .admin_post(
            "/v1/admin/rules",
            json!({"kind": "prefix", "pattern": "QWZ GROCER", "merchant_id": 900_001}),
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text());
    assert_eq!(added.json()["matches"], "QWZ GROCER");

    let listed = app
        .request(
            Method::GET,
            "/v1/admin/rules",
            Some(&app.admin_key),
            &[],
            None,
        )
        .await
        .json();
    let rules = listed["rules"].as_array().cloned().unwrap_or_default();
    assert_eq!(rules.len(), 2, "{listed}");
    let bad = rules.iter().find(|r| r["pattern"] == "#12 03/14");
    assert!(
        bad.and_then(|r| r["problem"].as_str())
            .is_some_and(|p| p.contains("normalises to")),
        "{listed}"
    );
    let good = rules.iter().find(|r| r["pattern"] == "QWZ GROCER");
    assert!(good.is_some_and(|r| r["problem"].is_null()), "{listed}");

    // Ingest starts despite the bad rule and resolves the new descriptor by the good one.
    let dir = std::env::temp_dir().join(format!("altdata-{}", app.test_app.prefix));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    let file = dir.join("rules.csv");
    std::fs::write(
        &file,
        format!(
            "{HEADER}\nr1,{day} 09:00:00,4111000000000001,QWZ GROCER 4471 AUSTIN TX,12.50,USD,5411,,TX,\n\
             r2,{day} 09:05:00,4111000000000002,QWZ GROCER #88,7.25,USD,5411,,TX,\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut env = app.test_app.env_reader(&[]);
    let settings = IngestSettings::from_env(&mut env);
    env.finish().unwrap_or_else(|e| panic!("{e}"));
    let reports = altdata_ingest::run_once(
        settings,
        &[file.to_string_lossy().into_owned()],
        Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("ingest refused to run: {e}"));
    assert_eq!(reports[0].counts.published, 2, "{:?}", reports[0].counts);
    let events = stream_events(&app.test_app).await;
    assert_eq!(events.len(), 2);
    for (_, event) in &events {
        assert_eq!(event.merchant_id, 900_001);
        assert_eq!(event.resolution, ResolutionSource::Rule as i32);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
