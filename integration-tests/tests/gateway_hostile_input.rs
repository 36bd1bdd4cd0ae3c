//! Hostile input: SQL injection in every query parameter, oversized parameters and bodies,
//! and path traversal on static files. Every answer is a clear 4xx or a harmless 200; no
//! 5xx, and the tables are intact afterwards.

use axum::http::Method;
use integration_tests::gateway::spawn_gateway;
use integration_tests::scalar;

const INJECTIONS: [&str; 6] = [
    "' OR '1'='1",
    "1; DROP TABLE dim_merchants; --",
    "coffee_shop' UNION SELECT key_sha256 FROM api_keys --",
    "%27%20OR%201%3D1%20--",
    "\\'; SELECT pg_sleep(5); --",
    "CA')) OR ((1=1",
];

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn sql_injection_in_any_parameter_is_rejected_or_harmless() {
    // Many requests in a row: lift the rate limit, which has its own test.
    let app = spawn_gateway(&[
        ("ALTDATA_RATE_LIMIT_PER_SECOND", "100000"),
        ("ALTDATA_RATE_LIMIT_BURST", "100000"),
    ])
    .await;
    app.merchant(1, "Starbucks", "coffee_shop", "starbucks")
        .await;
    let routes: [(&str, &[&str]); 6] = [
        (
            "/v1/timeseries?metric=spend&granularity=day&from=2026-10-01&to=2026-10-31",
            &[
                "metric",
                "category",
                "merchant",
                "brand",
                "state",
                "granularity",
                "from",
                "to",
            ],
        ),
        (
            "/v1/growth?metric=spend&category=coffee_shop&period=wow&as_of=2026-10-31",
            &[
                "metric", "category", "merchant", "brand", "state", "period", "as_of",
            ],
        ),
        (
            "/v1/growth/states?metric=spend&category=coffee_shop&period=wow&as_of=2026-10-31",
            &[
                "metric", "category", "merchant", "brand", "state", "period", "as_of",
            ],
        ),
        (
            "/v1/top?category=coffee_shop&by=spend&as_of=2026-10-31",
            &["category", "state", "by", "period", "as_of", "limit"],
        ),
        (
            "/v1/merchants?limit=5",
            &["q", "category", "limit", "offset"],
        ),
        ("/v1/admin/review?limit=5", &["limit", "offset", "part"]),
    ];
    let mut tried = 0;
    for (base, params) in routes {
        for param in params {
            for injection in INJECTIONS {
                let path = format!("{base}&{param}={}", encode(injection));
                let answer = app
                    .request(Method::GET, &path, Some(&app.admin_key), &[], None)
                    .await;
                assert!(
                    answer.status.is_success() || answer.status.as_u16() == 400,
                    "{path}: {} {}",
                    answer.status,
                    answer.text()
                );
                if answer.status.as_u16() == 400 {
                    assert!(answer.json()["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()));
                }
                tried += 1;
            }
        }
    }
    assert!(tried > 100);
    // A search for an injection finds nothing rather than everything.
    let answer = app
        .get(&format!("/v1/merchants?q={}", encode("' OR '1'='1")))
        .await;
    assert_eq!(answer.status.as_u16(), 200);
    assert_eq!(
        answer.json()["merchants"].as_array().map(Vec::len),
        Some(0),
        "{}",
        answer.text()
    );
    let merchants: i64 = scalar(
        &app.db().await,
        "SELECT count(*) FROM dim_merchants WHERE NOT unattributed",
    )
    .await;
    assert_eq!(merchants, 1, "tables intact");
}

#[tokio::test]
async fn oversized_parameters_and_bodies_get_clear_errors() {
    let app = spawn_gateway(&[]).await;
    let long = "x".repeat(20_000);
    let answer = app.get(&format!("/v1/merchants?q={long}")).await;
    assert_eq!(answer.status.as_u16(), 400, "{}", answer.text());
    let answer = app
        .get("/v1/timeseries?metric=spend&category=coffee_shop&granularity=day&from=1990-01-01&to=2026-01-01")
        .await;
    assert_eq!(
        answer.status.as_u16(),
        400,
        "range too long: {}",
        answer.text()
    );
    let huge: Vec<String> = (0..20_000)
        .map(|i| format!("DESCRIPTOR NUMBER {i}"))
        .collect();
    let answer = app
        .admin_post(
            "/v1/admin/review/assign",
            serde_json::json!({"normalized_descriptors": huge, "merchant_id": 1}),
        )
        .await;
    assert_eq!(answer.status.as_u16(), 413, "{}", answer.text());
    assert!(answer.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn static_files_cannot_be_escaped_by_path_traversal() {
    let app = spawn_gateway(&[]).await;
    for path in [
        "/../Cargo.toml",
        "/..%2fCargo.toml",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/web/../../etc/passwd",
    ] {
        let answer = app.request(Method::GET, path, None, &[], None).await;
        assert!(
            !answer.text().contains("root:"),
            "{path} leaked /etc/passwd"
        );
        assert!(
            !answer.text().contains("[workspace]"),
            "{path} leaked Cargo.toml"
        );
        assert!(answer.status.as_u16() < 500, "{path}: {}", answer.status);
    }
}
