//! A full run of the real binary (generate, migrate, ingest, aggregate, keys, gateway with
//! requests) at debug log level: its logs contain no secret, no API key and no raw card id.

use integration_tests::spawn_app;
use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "log-test-secret-6f1d2a9b7c";

fn altdata(app_env: &HashMap<String, String>, args: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_altdata"))
        .args(args)
        .envs(app_env)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "altdata {args:?} failed:\n{stderr}"
    );
    (stdout, stderr)
}

#[tokio::test]
async fn logs_of_a_full_run_hold_no_secret_key_or_card_id() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("altdata-logs-{}", app.prefix));
    let landing = dir.display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut env = app.env();
    env.insert("ALTDATA_CUSTOMER_KEY_SECRET".into(), SECRET.into());
    env.insert("ALTDATA_HTTP_ADDR".into(), format!("127.0.0.1:{port}"));
    env.insert("ALTDATA_AGG_WINDOW_AGE".into(), "100ms".into());

    let mut logs = String::new();
    let start = (chrono::Utc::now().date_naive() - chrono::Duration::days(3)).to_string();
    for args in [
        vec![
            "generate",
            "--days",
            "2",
            "--cards",
            "300",
            "--seed",
            "9",
            "--start",
            start.as_str(),
            "--out",
            landing.as_str(),
        ],
        vec!["migrate"],
        vec!["ingest", "--once", landing.as_str()],
        vec!["aggregate", "--until-idle"],
    ] {
        logs.push_str(&altdata(&env, &args).1);
    }
    let (key_out, key_err) = altdata(&env, &["keys", "create", "--role", "admin"]);
    logs.push_str(&key_err);
    let key = key_out.lines().last().unwrap_or_default().trim().to_owned();
    assert!(key.len() > 20, "a key was printed: {key_out}");

    let mut gateway = Command::new(env!("CARGO_BIN_EXE_altdata"))
        .arg("gateway")
        .envs(&env)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answered = 0;
    while Instant::now() < deadline && answered < 3 {
        for path in [
            "/v1/categories",
            "/v1/growth?metric=spend&category=coffee_shop&state=CA&period=wow",
            "/v1/admin/review",
        ] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n");
            if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let _ = stream.write_all(request.as_bytes()).await;
                let mut response = Vec::new();
                let _ = stream.read_to_end(&mut response).await;
                if response.starts_with(b"HTTP/1.1 200") {
                    answered += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status();
    let _ = gateway.wait();
    if let Some(mut stderr) = gateway.stderr.take() {
        let _ = stderr.read_to_string(&mut logs);
    }
    assert!(answered >= 3, "the gateway answered");

    assert!(
        !logs.contains(SECRET),
        "the customer-key secret is in the logs"
    );
    assert!(!logs.contains(&key), "an API key is in the logs");
    let mut card_ids = std::collections::HashSet::new();
    for entry in walk(&dir) {
        if entry.extension().is_some_and(|e| e == "csv")
            && !entry.display().to_string().contains("_truth")
        {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_path(&entry)
                .unwrap_or_else(|e| panic!("{e}"));
            for record in reader.records().flatten() {
                if let Some(card) = record.get(2).filter(|c| c.len() >= 12) {
                    card_ids.insert(card.to_owned());
                }
            }
        }
    }
    assert!(card_ids.len() > 100, "read the card ids back");
    let leaked: Vec<&String> = card_ids
        .iter()
        .filter(|c| logs.contains(c.as_str()))
        .take(3)
        .collect();
    assert!(leaked.is_empty(), "raw card ids in the logs: {leaked:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}
