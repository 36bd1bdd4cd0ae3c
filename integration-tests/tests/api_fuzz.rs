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
    // A little data so that answers are not all empty: a coffee shop in California, every day.
    app.client()
        .await
        .batch_execute("SELECT ensure_daily_partitions(DATE '2026-10-01', DATE '2026-11-30')")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let starbucks: i64 = integration_tests::scalar(
        &app.client().await,
        "SELECT id FROM dim_merchants WHERE brand_id = 'starbucks'",
    )
    .await;
    let days: Vec<String> = (20..=31)
        .map(|d| format!("2026-10-{d}"))
        .chain((1..=20).map(|d| format!("2026-11-{d:02}")))
        .collect();
    let cells: Vec<integration_tests::SeedCell> = days
        .iter()
        .map(|day| integration_tests::SeedCell {
            merchant_id: starbucks,
            region: "CA",
            day,
            gross_cents: 10_000,
            sales: 20,
            refund_cents: 0,
            refunds: 0,
            customers: 1..31,
        })
        .collect();
    app.seed(&cells, 0).await;
    let mut env = app.env_reader(&[
        ("ALTDATA_HTTP_ADDR", "127.0.0.1:0"),
        ("ALTDATA_RATE_LIMIT_PER_SECOND", "100000"),
        ("ALTDATA_RATE_LIMIT_BURST", "100000"),
        ("ALTDATA_AUTH_FAILURES_PER_MINUTE", "1000000"),
    ]);
    let settings = GatewaySettings::read(&mut env);
    env.finish().unwrap_or_else(|e| panic!("{e}"));
    let gateway = altdata_gateway::build(settings)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = gateway.addr;
    let shutdown = Shutdown::new();
    let server = tokio::spawn(gateway.run_until_stopped(shutdown.clone()));
    // The fuzzer revokes and rotates keys by id (/v1/admin/keys/{id}/...) and favours small
    // ids: give its own key a large one, so that it keeps its key for the whole run.
    app.client()
        .await
        .batch_execute("SELECT setval('api_keys_id_seq', 987654321987)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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
            // One worker: with two, the coverage phase of an integer path parameter
            // (/v1/admin/keys/{id}/...) makes hypothesis describe a filter lambda with
            // `ast.parse` on two threads at once, which CPython 3.11 answers with
            // "SystemError: AST constructor recursion depth mismatch" (a runtime error of the
            // fuzzer, not a finding). The run is bounded by --max-time either way.
            .args([
                "--max-examples",
                "25",
                "--seed",
                "7",
                "--workers",
                "1",
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
