//! An S3 landing zone, served by a local S3-compatible server (moto, started by this test on
//! a port of its own), works like a local directory: the generator writes to it, ingest reads
//! from it, and the same content again is skipped.
//!
//! This file is its own test binary, so the `AWS_*` variables it sets touch no other test.

use altdata_common::Shutdown;
use altdata_domain::catalogue::Catalogue;
use altdata_ingest::{FileOutcome, IngestSettings};
use integration_tests::{spawn_app, wait_for};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct MotoServer(Child);

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn an_s3_landing_zone_works_like_a_local_one() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let moto = format!("{root}/.stack/venv/bin/moto_server");
    assert!(
        std::path::Path::new(&moto).exists(),
        "{moto} is missing: run `make stack`"
    );
    let port = free_port();
    let _server = MotoServer(
        Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_for("moto to listen", Duration::from_secs(30), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    // Credentials are moto's defaults; nothing leaves this machine.
    for (name, value) in [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false"),
    ] {
        // SAFETY: this test binary has one test, so no other thread reads the environment.
        unsafe { std::env::set_var(name, value) };
    }
    let python = format!("{root}/.stack/venv/bin/python");
    let created = Command::new(&python)
        .args([
            "-c",
            &format!("import boto3; boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing').create_bucket(Bucket='landing')"),
        ])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(created.success(), "bucket creation failed");

    let app = spawn_app().await;
    let config = altdata_generate::GenerateConfig {
        days: 2,
        cards: 500,
        seed: 3,
        start: chrono::Utc::now().date_naive() - chrono::Duration::days(3),
        out: "s3://landing/drops".into(),
        gzip: true,
        provider: "s3panel".into(),
        progress: false,
        truth_detail: false,
        resends: 0,
        panel_growth: 0.0,
        panel_growth_day: None,
    };
    let catalogue = Catalogue::embedded().unwrap_or_else(|e| panic!("{e}"));
    let generated = altdata_generate::run(&config, &catalogue, &Shutdown::new())
        .await
        .unwrap_or_else(|e| panic!("generate to S3: {e}"));

    let settings = || {
        let mut env = app.env_reader(&[]);
        let settings = IngestSettings::from_env(&mut env);
        env.finish().unwrap_or_else(|e| panic!("{e}"));
        settings
    };
    let reports = altdata_ingest::run_once(
        settings(),
        &["s3://landing/drops".to_owned()],
        Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("ingest from S3: {e}"));
    assert_eq!(reports.len(), 2, "one file per day");
    assert!(reports
        .iter()
        .all(|r| r.outcome == FileOutcome::Done && r.provider == "s3panel"));
    let rows: u64 = reports.iter().map(|r| r.counts.rows_read).sum();
    let rejected: u64 = reports.iter().map(|r| r.counts.rejected).sum();
    let duplicates: u64 = reports.iter().map(|r| r.counts.duplicates).sum();
    assert_eq!(rows, generated.rows);
    assert_eq!(rejected, generated.broken_rows);
    assert_eq!(duplicates, generated.duplicate_rows);
    assert!(reports.iter().all(|r| r.counts.conserved()));

    let again = altdata_ingest::run_once(
        settings(),
        &["s3://landing/drops".to_owned()],
        Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(again
        .iter()
        .all(|r| matches!(r.outcome, FileOutcome::Skipped { .. })));
}
