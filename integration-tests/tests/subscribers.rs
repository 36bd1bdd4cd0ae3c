//! Downstream subscribers: a Python program (nats-py + protobuf) decodes the aggregate updates
//! the outbox relay publishes, and they agree with PostgreSQL.

use altdata_aggregator::AggregatorSettings;
use altdata_common::Shutdown;
use altdata_proto::v1::TransactionEvent;
use altdata_proto::Message;
use integration_tests::{publish_events, spawn_app};
use std::process::Command;

#[tokio::test]
async fn a_python_subscriber_decodes_aggregate_updates() {
    let app = spawn_app().await;
    // Three merchants, two days: six cells, so six updates.
    let events: Vec<TransactionEvent> = [(1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (3, 1)]
        .into_iter()
        .enumerate()
        .map(|(i, (merchant, day))| TransactionEvent {
            schema_version: 1,
            provider: "p".into(),
            txn_id: format!("t{i}"),
            metric_date: 20_500 + day,
            amount_cents: 1_000 * (i as i64 + 1),
            customer_key: i as u64,
            merchant_id: merchant,
            region: "CA".into(),
            ..Default::default()
        })
        .collect();
    publish_events(&app, &events).await;
    let mut env = app.env_reader(&[("ALTDATA_AGG_WINDOW_AGE", "100ms")]);
    let mut settings = AggregatorSettings::from_env(&mut env);
    settings.until_idle = true;
    altdata_aggregator::run(settings, Shutdown::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let set = protox::compile(["altdata/v1/events.proto"], [format!("{root}/proto")])
        .unwrap_or_else(|e| panic!("{e}"));
    let descriptors = std::env::temp_dir().join(format!("{}-descriptors.pb", app.prefix));
    std::fs::write(&descriptors, set.encode_to_vec()).unwrap_or_else(|e| panic!("{e}"));
    let python = format!("{root}/.stack/venv/bin/python");
    assert!(
        std::path::Path::new(&python).exists(),
        "run `make stack` first: it installs nats-py and protobuf"
    );
    let output = Command::new(&python)
        .arg(format!("{root}/integration-tests/python/agg_subscriber.py"))
        .args([
            app.connections.nats_url.as_str(),
            app.subjects.agg_stream().as_str(),
            app.prefix.subject("agg.v1.daily.>").as_str(),
        ])
        .arg(&descriptors)
        .arg("6")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&descriptors);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 6);
    let client = app.client().await;
    for update in lines {
        let merchant: i64 = update["merchant_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        let subject = update["subject"].as_str().unwrap_or_default();
        assert_eq!(subject, app.subjects.agg_daily(merchant));
        let day: i32 = update["metric_date"].as_i64().unwrap_or(-1) as i32;
        let total: i64 = update["total_spend_cents"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        let stored: i64 = client
            .query_one(
                "SELECT total_spend_cents FROM agg_daily_merchant_spend
                  WHERE merchant_id = $1 AND region = 'CA' AND metric_date = DATE '1970-01-01' + $2::integer",
                &[&merchant, &day],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .get(0);
        assert_eq!(total, stored, "merchant {merchant} day {day}");
    }
}
