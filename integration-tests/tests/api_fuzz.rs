//! Schemathesis (PyPI) against the running gateway's own OpenAPI document: every route, with
//! generated and boundary inputs, must answer without a 5xx and within its documented schema.

use altdata_common::Shutdown;
use altdata_gateway::{GatewaySettings, Role};
use integration_tests::spawn_app;
use std::process::Command;

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let schemathesis = format!("{root}/.stack/venv/bin/schemathesis");
    assert!(
        std::path::Path::new(&schemathesis).exists(),
        "{schemathesis} is missing: run `make stack`"
    );
    let app = spawn_app().await;
    // A little data so that answers are not all empty.
    app.client()
        .await
        .batch_execute(
            "SELECT ensure_daily_partitions(DATE '2026-10-01', DATE '2026-11-30');
             INSERT INTO agg_daily_merchant_spend (merchant_id, region, metric_date, total_spend_cents, transaction_count, customers)
             SELECT 1, 'CA', d::date, 10000, 20, (SELECT hll_add_agg(hll_hash_bigint(k)) FROM generate_series(1, 30) k)
               FROM generate_series(DATE '2026-10-20', DATE '2026-11-20', interval '1 day') d;
             INSERT INTO agg_daily_category_region (category, region, metric_date, shard, total_spend_cents, transaction_count, customers)
             SELECT 'coffee_shop', 'CA', d::date, 0, 10000, 20, (SELECT hll_add_agg(hll_hash_bigint(k)) FROM generate_series(1, 30) k)
               FROM generate_series(DATE '2026-10-20', DATE '2026-11-20', interval '1 day') d;",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut env = app.env_reader(&[
        ("ALTDATA_HTTP_ADDR", "127.0.0.1:0"),
        ("ALTDATA_RATE_LIMIT_PER_SECOND", "100000"),
        ("ALTDATA_RATE_LIMIT_BURST", "100000"),
    ]);
    let settings = GatewaySettings::read(&mut env);
    env.finish().unwrap_or_else(|e| panic!("{e}"));
    let gateway = altdata_gateway::build(settings)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = gateway.addr;
    let shutdown = Shutdown::new();
    let server = tokio::spawn(gateway.run_until_stopped(shutdown.clone()));
    let key = altdata_gateway::create_key(&app.pool, Role::Admin, "schemathesis")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .args(["run", &format!("http://{addr}/openapi.json")])
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance,content_type_conformance",
            ])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args([
                "--max-examples",
                "25",
                "--seed",
                "7",
                "--workers",
                "2",
                "--max-time",
                "40",
            ])
            .args(["--header", &format!("Authorization: Bearer {key}")])
            .args(["--suppress-health-check", "all"])
            .output()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|e| panic!("{e}"));
    shutdown.trigger();
    let _ = server.await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let tail: String = stdout
        .lines()
        .rev()
        .take(60)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    println!("{tail}");
    assert!(
        output.status.success(),
        "schemathesis failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
