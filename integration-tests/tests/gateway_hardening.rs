//! The gateway against hostile clients: pages that cannot be framed or made to run injected
//! script, keys only in the `Authorization` header, CSV cells that a spreadsheet will not
//! evaluate, connections that never finish their headers, and floods of bad keys.

use axum::http::{Method, StatusCode};
use integration_tests::gateway::{http, spawn_gateway};
use integration_tests::scalar;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MERCHANT: i64 = 901;
const FORMULA_NAME: &str = "=HYPERLINK(\"http://evil.example/x\",\"Evil Coffee\")";

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A well-formed key that no one holds, distinct for each `n`.
fn unknown_key(n: usize) -> String {
    format!("adx_{n:032}")
}

#[tokio::test]
async fn pages_and_answers_carry_the_security_headers() {
    let dir = std::env::temp_dir().join(format!("gw-headers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("web dir");
    std::fs::write(dir.join("index.html"), "<html>dashboard</html>").expect("index");
    std::fs::write(dir.join("review.html"), "<html>review</html>").expect("review");
    let dir_text = dir.to_string_lossy().into_owned();
    let app = spawn_gateway(&[("ALTDATA_WEB_DIR", &dir_text)]).await;
    for (path, key) in [
        ("/", None),
        ("/review.html", None),
        ("/openapi.json", None),
        ("/v1/categories", Some(app.analyst_key.as_str())),
        ("/v1/categories", None),
        ("/v1/nowhere", None),
    ] {
        let answer = app.request(Method::GET, path, key, &[], None).await;
        let policy = answer.header("content-security-policy").unwrap_or("");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(answer.header("referrer-policy"), Some("no-referrer"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_key_is_read_from_the_bearer_header_only_in_any_case() {
    let app = spawn_gateway(&[]).await;
    let key = &app.analyst_key;
    for path in [
        format!("/v1/categories?key={key}"),
        format!("/v1/categories?api_key={key}&access_token={key}"),
    ] {
        let answer = app.request(Method::GET, &path, None, &[], None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let value = format!("{scheme} {key}");
        let answer = app
            .request(
                Method::GET,
                "/v1/categories",
                None,
                &[("authorization", &value)],
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{scheme}");
    }
    for value in [format!("Basic {key}"), key.clone(), format!("Token {key}")] {
        let answer = app
            .request(
                Method::GET,
                "/v1/categories",
                None,
                &[("authorization", &value)],
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{value}");
    }
}

#[tokio::test]
async fn csv_cells_that_start_a_formula_are_neutralised_and_negative_numbers_stay_numbers() {
    let app = spawn_gateway(&[("ALTDATA_K_ANONYMITY", "1")]).await;
    app.merchant(MERCHANT, FORMULA_NAME, "coffee_shop", "evil_coffee")
        .await;
    // Refunds exceed sales that day: net spend is -$40.00.
    app.cell(MERCHANT, "CA", "2026-03-10", 1_000, 1, 5_000, 0, 3, 0)
        .await;

    let merchants = app.get("/v1/merchants?q=HYPERLINK&format=csv").await;
    assert_eq!(merchants.status, StatusCode::OK, "{}", merchants.text());
    let rows = csv_rows(&merchants.text());
    assert_eq!(rows[0][1], "name");
    assert_eq!(rows[1][1], format!("'{FORMULA_NAME}"));

    let series = app
        .get(&format!(
            "/v1/timeseries?metric=spend&merchant={MERCHANT}&granularity=day\
             &from=2026-03-10&to=2026-03-10&format=csv"
        ))
        .await;
    assert_eq!(series.status, StatusCode::OK, "{}", series.text());
    let rows = csv_rows(&series.text());
    let value = rows[0].iter().position(|c| c == "value").expect("value");
    assert_eq!(rows[1][value], "-40", "a negative number stays a number");
    // The JSON answer is data, not a spreadsheet: the name is returned as it is.
    let json = app.get("/v1/merchants?q=HYPERLINK").await.json();
    assert_eq!(json["merchants"][0]["name"], FORMULA_NAME);
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|record| {
            record
                .expect("CSV record")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    let app = spawn_gateway(&[]).await;
    let timeout = Duration::from_millis(400);
    let served = app.serve(&[("ALTDATA_HEADER_READ_TIMEOUT", "400ms")]).await;
    for (what, sent) in [
        ("a partial request line", "GET /v1/categories HT"),
        (
            "a request head without its end",
            "GET /healthz HTTP/1.1\r\nHost: x\r\n",
        ),
        ("nothing", ""),
    ] {
        let started = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(served.addr)
            .await
            .expect("connect");
        stream.write_all(sent.as_bytes()).await.expect("write");
        let mut rest = Vec::new();
        // The server closes the connection: the read ends (EOF or reset) well before 5 s.
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("{what}: still open after 5 s"));
        let elapsed = started.elapsed();
        assert!(read.is_err() || rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"));
        assert!(
            elapsed >= timeout && elapsed < timeout * 5,
            "{what}: closed after {elapsed:?}, expected about {timeout:?}"
        );
    }
    // A client that sends its request in time is answered.
    let health = http(served.addr, loopback(1), "GET", "/healthz", &[]).await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn failed_authentications_are_limited_per_address_and_valid_keys_keep_working() {
    let app = spawn_gateway(&[]).await;
    let served = app
        .serve(&[("ALTDATA_AUTH_FAILURES_PER_MINUTE", "5")])
        .await;
    let analyst = format!("Bearer {}", app.analyst_key);
    let analyst_id: i64 = scalar(
        &app.db().await,
        "SELECT id FROM api_keys WHERE name = 'test analyst'",
    )
    .await;
    let get = |from: u8, authorization: String| {
        let addr = served.addr;
        async move {
            http(
                addr,
                loopback(from),
                "GET",
                "/v1/categories",
                &[("Authorization", &authorization)],
            )
            .await
        }
    };
    // A legitimate client, before the flood: its key is now known valid.
    assert_eq!(get(3, analyst.clone()).await.status, 200);

    // The flood from 127.0.0.2: five failures are answered 401, the rest 429 with a wait.
    let mut statuses = Vec::new();
    for n in 0..60 {
        let answer = get(2, format!("Bearer {}", unknown_key(n))).await;
        if answer.status == 429 {
            let wait: u64 = answer
                .header("retry-after")
                .and_then(|v| v.parse().ok())
                .expect("Retry-After");
            assert!((1..=12).contains(&wait), "Retry-After {wait}");
            assert!(
                answer.body.contains("failed authentications"),
                "{}",
                answer.body
            );
        }
        statuses.push(answer.status);
    }
    assert_eq!(statuses[..5], [401; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // Malformed keys count too.
    assert_eq!(get(2, "Bearer hunter2".to_owned()).await.status, 429);

    // Other addresses are not affected, and the valid key still works from every address,
    // the flooding one included: it is known valid, so it costs no lookup.
    assert_eq!(get(3, analyst.clone()).await.status, 200);
    assert_eq!(get(2, analyst.clone()).await.status, 200);
    assert_eq!(
        get(4, format!("Bearer {}", unknown_key(999))).await.status,
        401,
        "another address has its own budget"
    );
    // A key the gateway does not know yet is looked up only within the address's budget.
    let admin = format!("Bearer {}", app.admin_key);
    assert_eq!(get(2, admin.clone()).await.status, 429);
    assert_eq!(get(4, admin).await.status, 200);
    // Refused keys never entered the cache: the valid ones are all it holds.
    let keys = &served.state.inner.keys;
    assert!(
        keys.holds(analyst_id),
        "the valid key's cache entry survived"
    );
    assert_eq!(keys.len(), 2, "only the analyst and admin keys are cached");
}

#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_per_forwarded_client_and_known_keys_pass() {
    let app = spawn_gateway(&[]).await;
    // Every cached key is stale at once: each request reads its key again.
    let served = app
        .serve(&[
            ("ALTDATA_AUTH_FAILURES_PER_MINUTE", "3"),
            ("ALTDATA_TRUSTED_PROXIES", "127.0.0.5"),
            ("ALTDATA_API_KEY_CACHE_TTL", "1ms"),
        ])
        .await;
    let proxy = loopback(5);
    let via_proxy = |client: &'static str, key: String| {
        let addr = served.addr;
        async move {
            let authorization = format!("Bearer {key}");
            http(
                addr,
                proxy,
                "GET",
                "/v1/categories",
                &[
                    ("Authorization", &authorization),
                    // What the client claimed, then what the proxy saw.
                    ("X-Forwarded-For", &format!("198.51.100.1, {client}")),
                ],
            )
            .await
            .status
        }
    };
    assert_eq!(via_proxy("203.0.113.1", app.analyst_key.clone()).await, 200);
    let statuses: Vec<u16> =
        futures::future::join_all((0..6).map(|n| via_proxy("203.0.113.66", unknown_key(n)))).await;
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [401, 401, 401, 429, 429, 429], "{statuses:?}");
    // Another client behind the same proxy has its own budget.
    assert_eq!(via_proxy("203.0.113.77", unknown_key(7)).await, 401);
    // A key found valid before is read again without the budget, even from the client that
    // spent it; a key never seen is not.
    assert_eq!(
        via_proxy("203.0.113.66", app.analyst_key.clone()).await,
        200
    );
    assert_eq!(via_proxy("203.0.113.66", app.admin_key.clone()).await, 429);
}
