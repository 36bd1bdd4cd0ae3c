//! Provider files written to hurt, against the real NATS and PostgreSQL: card numbers in any
//! field, control characters and NUL bytes, records too long to hold (a gzip bomb), a file
//! that cannot be finished, and names no object path can hold. No card number reaches a table
//! or an event; every file ends `done` or `failed` (never an endless `processing`) with its
//! conservation line; and the rest of the landing zone is ingested.

use altdata_common::Shutdown;
use altdata_ingest::{FileOutcome, FileReport, IngestSettings};
use altdata_proto::Message;
use integration_tests::gateway::spawn_gateway;
use integration_tests::{spawn_app, stream_events, wait_for, TestApp};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const HEADER: &str =
    "txn_id,posted_at,card_id,descriptor,amount,currency,mcc,city,state,postal_code";

fn settings(app: &TestApp, extra: &[(&str, &str)]) -> IngestSettings {
    let mut env = app.env_reader(extra);
    let settings = IngestSettings::from_env(&mut env);
    env.finish().unwrap_or_else(|e| panic!("{e}"));
    settings
}

/// A landing directory of the test's own, removed when dropped (even on panic).
struct TempDir(PathBuf);

impl TempDir {
    fn new(app: &TestApp, name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("altdata-{}-{name}", app.prefix));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        TempDir(dir)
    }

    fn write(&self, relative: impl AsRef<Path>, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    fn location(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn day() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() - chrono::Duration::days(2)
}

/// `n` good rows at big brands.
fn good_rows(n: usize, first_id: usize) -> String {
    let day = day();
    (0..n)
        .map(|i| {
            format!(
                "g{},{day} 11:{:02}:00,c{},TARGET 00012345,{}.25,USD,5310,,MN,\n",
                first_id + i,
                i % 60,
                first_id + i,
                5 + i % 20
            )
        })
        .collect()
}

async fn ingest_once(
    app: &TestApp,
    locations: &[String],
    extra: &[(&str, &str)],
) -> Vec<FileReport> {
    altdata_ingest::run_once(settings(app, extra), locations, Shutdown::new())
        .await
        .unwrap_or_else(|e| panic!("ingest: {e}"))
}

/// Every row of every table (partitions included), as text.
async fn every_table_as_text(app: &TestApp) -> String {
    let client = app.client().await;
    let tables = client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND c.relkind = 'r'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut dump = String::new();
    for table in tables {
        let name: String = table.get(0);
        let rows: String = client
            .query_one(
                &format!("SELECT coalesce(string_agg(t::text, '|'), '') FROM \"{name}\" t"),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .get(0);
        dump.push_str(&rows);
        dump.push('\n');
    }
    dump
}

fn assert_conserved(report: &FileReport) {
    assert!(
        report.counts.conserved(),
        "{}",
        altdata_ingest::summary_line(report)
    );
}

#[tokio::test]
async fn card_numbers_in_any_field_reach_no_table_and_no_event() {
    let app = spawn_app().await;
    let dir = TempDir::new(&app, "pans");
    let day = day();
    let rows = [
        // Held (no brand, no category), a spaced card number in the descriptor.
        format!("p1,{day} 10:00:00,k1,ZQXV PAYMENT 4111 1111 1111 1111,9.99,USD,,,CA,"),
        // A brand with a dashed card number, and the same brand without one.
        format!("p2,{day} 10:01:00,k2,STARBUCKS 4111-1111-1111-1111 SEATTLE WA,4.50,USD,5814,,WA,"),
        format!("p3,{day} 10:02:00,k3,STARBUCKS SEATTLE WA,4.60,USD,5814,,WA,"),
        // A 13-digit card number as the transaction id.
        format!("4222222222222,{day} 10:03:00,k4,TARGET 00012345,20.00,USD,5310,,MN,"),
        // Plain 16 digits in a held descriptor.
        format!("p5,{day} 10:04:00,k5,ACME WIDGETS 5555555555554444,3.00,USD,,,CA,"),
        // Rejected rows: a spaced card number in the city, 19 digits as the amount.
        format!("p6,{day} 10:05:00,k6,STARBUCKS,bad,USD,5814,6011 0009 9013 9424,CA,"),
        format!("p7,{day} 10:06:00,k7,STARBUCKS,4000000000000000006,USD,5814,,CA,"),
        // 16 digits that fail the Luhn check: a reference, left as it is.
        format!("p8,{day} 10:07:00,k8,ZQXV STORE 4111111111111112,5.00,USD,,,CA,"),
    ];
    let text = format!("{HEADER}\n{}\n{}", rows.join("\n"), good_rows(4, 0));
    dir.write("provider=pans/day1.csv", text.as_bytes());

    let reports = ingest_once(&app, &[dir.location()], &[]).await;
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(
        report.outcome,
        FileOutcome::Done,
        "{}",
        altdata_ingest::summary_line(report)
    );
    assert_eq!(report.counts.rows_read, 12);
    assert_eq!(report.counts.rejected, 2);
    assert_conserved(report);

    let pans = [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4222222222222",
        "5555555555554444",
        "6011000990139424",
        "6011 0009 9013 9424",
        "4000000000000000006",
    ];
    let dump = every_table_as_text(&app).await;
    for pan in pans {
        assert!(!dump.contains(pan), "{pan} is in a table");
    }
    assert!(
        dump.contains("ZQXV PAYMENT XXXXXXXXXXXX1111"),
        "the held row, masked"
    );
    assert!(dump.contains("ACME WIDGETS XXXXXXXXXXXX4444"));
    assert!(
        dump.contains("ZQXV STORE 4111111111111112"),
        "no card number, left alone"
    );

    let events = stream_events(&app).await;
    for (msg_id, event) in &events {
        let payload = event.encode_to_vec();
        for pan in pans {
            assert!(!msg_id.contains(pan), "{pan} in a Msg-Id");
            assert!(
                !payload.windows(pan.len()).any(|w| w == pan.as_bytes()),
                "{pan} in an event"
            );
        }
    }
    // The card number in a descriptor changes no resolution.
    let merchant_of = |txn_id: &str| {
        events
            .iter()
            .find(|(_, e)| e.txn_id == txn_id)
            .map(|(_, e)| e.merchant_id)
            .unwrap_or_else(|| panic!("no event for {txn_id}"))
    };
    assert_eq!(merchant_of("p2"), merchant_of("p3"));
    assert!(altdata_domain::Category::of_unattributed_merchant(merchant_of("p2")).is_none());
    // The transaction id that is a card number is published under a keyed pseudonym.
    assert!(
        events.iter().any(|(_, e)| e.txn_id.starts_with("pan-")),
        "no pseudonymised transaction id"
    );

    // The pseudonym is the same every time: the row sent again is a duplicate.
    let again = format!("{HEADER}\n{}\n{}", rows[3], good_rows(1, 100));
    dir.write("provider=pans/day2.csv", again.as_bytes());
    let reports = ingest_once(&app, &[dir.location()], &[]).await;
    let second = reports
        .iter()
        .find(|r| r.path.ends_with("day2.csv"))
        .unwrap_or_else(|| panic!("day2 not ingested"));
    assert_eq!((second.counts.duplicates, second.counts.published), (1, 1));
}

#[tokio::test]
async fn control_characters_and_nul_bytes_never_jam_a_file() {
    let app = spawn_app().await;
    let dir = TempDir::new(&app, "nul");
    let day = day();
    let rows = [
        format!("n1,{day} 10:00:00,k1,STARBUCKS\0 SEATTLE WA,4.50,USD,5814,,WA,"),
        format!(
            "n2,{day} 10:01:00,k2,ZQXV\0CORNER\u{7f}SHOP\u{9b},7.00,USD,,SEA\0TTLE,CA,9\u{1}4107"
        ),
        format!("n\03,{day} 10:02:00,k3,STARBUCKS,4.50,USD,5814,,CA,"),
        format!("n4,{day} 10:03:00\0,k4,TARGET 00012345,4.50\u{0},USD,5310,,MN,"),
        format!("n5,{day} 10:04:00,k5\0,TARGET 00012345,1.00,USD,5310\u{1b},,MN,"),
    ];
    let text = format!("{HEADER}\n{}\n{}", rows.join("\n"), good_rows(3, 0));
    dir.write("provider=nul/day.csv", text.as_bytes());

    let reports = ingest_once(&app, &[dir.location()], &[]).await;
    let report = &reports[0];
    assert_eq!(
        report.outcome,
        FileOutcome::Done,
        "{}",
        altdata_ingest::summary_line(report)
    );
    assert_eq!((report.counts.rows_read, report.counts.rejected), (8, 1));
    assert_conserved(report);

    let client = app.client().await;
    let ledger = client
        .query_one(
            "SELECT status, rows_read, rejected FROM ingest_files WHERE path LIKE '%day.csv'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ledger.get::<_, &str>(0), "done");
    assert_eq!(ledger.get::<_, i64>(1), 8);
    let reject = client
        .query_one("SELECT line, reason FROM ingest_rejects", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reject.get::<_, i64>(0), 4);
    assert!(reject
        .get::<_, &str>(1)
        .contains("txn_id holds a control character"));
    let held: String = client
        .query_one(
            "SELECT raw_descriptor FROM unmapped_transactions WHERE txn_id = 'n2'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(held, "ZQXV CORNER SHOP");
    let events = stream_events(&app).await;
    let n1 = events.iter().find(|(_, e)| e.txn_id == "n1");
    assert!(n1.is_some_and(|(_, e)| e.region == "WA" && e.amount_cents == 450));
}

#[tokio::test]
async fn a_record_too_long_to_hold_is_rejected_with_its_line_and_the_rest_goes_on() {
    let app = spawn_app().await;
    let dir = TempDir::new(&app, "bomb");
    let day = day();
    // A gzip bomb: one 32 MiB descriptor, compressed to a few kB.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut write = |bytes: &[u8]| gzip.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
    write(format!("{HEADER}\n{}", good_rows(3, 0)).as_bytes());
    write(format!("bomb,{day} 10:00:00,k1,").as_bytes());
    let block = vec![b'A'; 1 << 20];
    for _ in 0..32 {
        write(&block);
    }
    write(b",4.50,USD,5814,,CA,\n");
    // A quoted field of short lines, longer than the limit as a whole.
    write(
        format!(
            "lines,{day} 10:00:00,k2,\"{}\",1.00,USD,,,CA,\n",
            "AB\n".repeat(30_000)
        )
        .as_bytes(),
    );
    write(good_rows(3, 100).as_bytes());
    let bytes = gzip.finish().unwrap_or_else(|e| panic!("{e}"));
    assert!(bytes.len() < 200_000, "{} bytes", bytes.len());
    dir.write("provider=bomb/day.csv.gz", &bytes);

    let reports = ingest_once(&app, &[dir.location()], &[]).await;
    let report = &reports[0];
    assert_eq!(
        report.outcome,
        FileOutcome::Done,
        "{}",
        altdata_ingest::summary_line(report)
    );
    assert_eq!((report.counts.rows_read, report.counts.rejected), (8, 2));
    assert_eq!(report.counts.published, 6);
    assert_conserved(report);
    let rejects = app
        .client()
        .await
        .query(
            "SELECT line, reason, raw_row FROM ingest_rejects ORDER BY line",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<i64> = rejects.iter().map(|r| r.get(0)).collect();
    assert_eq!(lines, [5, 6]);
    for reject in &rejects {
        assert!(reject
            .get::<_, &str>(1)
            .contains("too long: more than 65536 bytes"));
        assert!(reject.get::<_, &str>(2).len() <= 512);
    }
    assert!(rejects[0].get::<_, &str>(2).starts_with("bomb,"));
}

#[tokio::test]
async fn a_file_that_cannot_be_finished_is_marked_failed_shown_and_retried_on_request() {
    let gateway = spawn_gateway(&[]).await;
    let app = &gateway.test_app;
    let dir = TempDir::new(app, "failed");
    let profiles = TempDir::new(app, "profiles");
    profiles.write("brokenprof.toml", b"[format\nthis is not toml");
    let profiles_dir = profiles.location();
    let extra = [("ALTDATA_PROFILES_DIR", profiles_dir.as_str())];
    let rows = format!("{HEADER}\n{}", good_rows(5, 0));
    dir.write("provider=brokenprof/day.csv", rows.as_bytes());
    let other_rows = format!("{HEADER}\n{}", good_rows(6, 0));
    dir.write("provider=fine/day.csv", other_rows.as_bytes());
    // A gzip whose bytes stop making sense after its first rows.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(format!("{HEADER}\n{}", good_rows(50, 200)).as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut corrupt = gzip.finish().unwrap_or_else(|e| panic!("{e}"));
    let middle = corrupt.len() / 2;
    corrupt.truncate(middle);
    corrupt.extend_from_slice(&[0xff; 64]);
    dir.write("provider=fine/zz-corrupt.csv.gz", &corrupt);

    let reports = ingest_once(app, &[dir.location()], &extra).await;
    let outcome = |reports: &[FileReport], name: &str| {
        reports
            .iter()
            .find(|r| r.path.ends_with(name))
            .map(|r| r.outcome.clone())
            .unwrap_or_else(|| panic!("{name} not reported"))
    };
    assert!(matches!(
        outcome(&reports, "brokenprof/day.csv"),
        FileOutcome::Failed { reason } if reason.contains("provider profile")
    ));
    assert!(matches!(
        outcome(&reports, "fine/zz-corrupt.csv.gz"),
        FileOutcome::Failed { .. }
    ));
    assert_eq!(outcome(&reports, "fine/day.csv"), FileOutcome::Done);

    let client = app.client().await;
    let failed = client
        .query(
            "SELECT path, error, finished_at IS NOT NULL, rows_read = published + unattributed + unmapped + rejected + duplicates + corrected
               FROM ingest_files WHERE status = 'failed' ORDER BY path",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(failed.len(), 2);
    for row in &failed {
        assert!(
            !row.get::<_, &str>(1).is_empty(),
            "{}: no error",
            row.get::<_, &str>(0)
        );
        assert!(row.get::<_, bool>(2) && row.get::<_, bool>(3));
    }
    assert_eq!(
        client
            .query_one(
                "SELECT count(*) FROM ingest_files WHERE status = 'processing'",
                &[]
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .get::<_, i64>(0),
        0,
        "never an endless processing"
    );

    // The review tool's file list shows them, with why.
    let files_of = |key: &str| {
        let key = key.to_owned();
        let gateway = &gateway;
        async move {
            gateway
                .request(
                    axum::http::Method::GET,
                    "/v1/admin/files?status=failed",
                    Some(&key),
                    &[],
                    None,
                )
                .await
        }
    };
    assert_eq!(
        files_of(&gateway.analyst_key).await.status,
        403,
        "admins only"
    );
    let answer = files_of(&gateway.admin_key).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let files = answer.json()["files"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(files.len(), 2);
    assert!(files
        .iter()
        .all(|f| f["status"] == "failed" && f["error"].is_string()));

    // Met again, a failed file is skipped with its reason; with --retry-failed, once its
    // profile is fixed, it resumes and finishes.
    let reports = ingest_once(app, &[dir.location()], &extra).await;
    assert!(matches!(
        outcome(&reports, "brokenprof/day.csv"),
        FileOutcome::FailedBefore { reason, .. } if reason.contains("provider profile")
    ));
    std::fs::remove_file(profiles.0.join("brokenprof.toml")).unwrap_or_else(|e| panic!("{e}"));
    let mut retry = settings(app, &extra);
    retry.retry_failed = true;
    let reports = altdata_ingest::run_once(retry, &[dir.location()], Shutdown::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        outcome(&reports, "brokenprof/day.csv"),
        FileOutcome::Resumed
    );
    assert!(matches!(
        outcome(&reports, "fine/zz-corrupt.csv.gz"),
        FileOutcome::Failed { .. }
    ));
}

#[tokio::test]
async fn names_no_object_path_can_hold_are_skipped_and_the_rest_is_ingested() {
    use std::os::unix::ffi::OsStrExt;
    let app = spawn_app().await;
    let dir = TempDir::new(&app, "names");
    let rows = format!("{HEADER}\n{}", good_rows(3, 0));
    dir.write("provider=names/bad\nname.csv", rows.as_bytes());
    dir.write(
        Path::new("provider=names").join(std::ffi::OsStr::from_bytes(b"\xff\xfe.csv")),
        rows.as_bytes(),
    );
    dir.write(
        "provider=names/good.csv",
        format!("{HEADER}\n{}", good_rows(2, 10)).as_bytes(),
    );

    let reports = ingest_once(&app, &[dir.location()], &[]).await;
    assert_eq!(reports.len(), 1, "only the good file");
    assert_eq!(reports[0].outcome, FileOutcome::Done);

    // The watcher too lists past them, and goes on with a file dropped later.
    dir.write(
        "provider=names/later.csv",
        format!("{HEADER}\n{}", good_rows(2, 20)).as_bytes(),
    );
    let landing = dir.location();
    let shutdown = Shutdown::new();
    let watcher = tokio::spawn(altdata_ingest::run(
        settings(
            &app,
            &[
                ("ALTDATA_LANDING", landing.as_str()),
                ("ALTDATA_INGEST_POLL", "100ms"),
            ],
        ),
        shutdown.clone(),
    ));
    let client = app.client().await;
    wait_for("later.csv done", Duration::from_secs(30), || async {
        let done: i64 = client
            .query_one(
                "SELECT count(*) FROM ingest_files WHERE path LIKE '%later.csv' AND status = 'done'",
                &[],
            )
            .await
            .ok()?
            .get(0);
        (done == 1).then_some(())
    })
    .await;
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(30), watcher)
        .await
        .unwrap_or_else(|_| panic!("the watcher did not stop"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let files: i64 = client
        .query_one("SELECT count(*) FROM ingest_files", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0);
    assert_eq!(files, 2);
}
