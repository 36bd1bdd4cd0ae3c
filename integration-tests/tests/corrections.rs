//! Corrections and re-sends against the identity record, end to end (ingest → JetStream →
//! aggregate): an identical re-send long after the stream's duplicate window counts nothing
//! again; a corrected row retracts its old version and applies the new one (held rows
//! included); a provider that restates whole days has the rows it no longer sends retracted;
//! and a correction that races its original's aggregation still ends exact.

use altdata_ingest::FileReport;
use integration_tests::{scalar, spawn_app, TestApp};
use std::path::PathBuf;
use std::time::Duration;

const HEADER: &str =
    "txn_id,posted_at,card_id,descriptor,amount,currency,mcc,city,state,postal_code";

fn day(back: i64) -> chrono::NaiveDate {
    chrono::Utc::now().date_naive() - chrono::Duration::days(back)
}

/// One canonical row.
fn row(id: &str, back: i64, card: u32, descriptor: &str, amount: &str, mcc: &str) -> String {
    format!(
        "{id},{} 10:00:00,41110000{card:08},{descriptor},{amount},USD,{mcc},,CA,\n",
        day(back)
    )
}

struct Landing {
    dir: PathBuf,
}

impl Landing {
    fn new(app: &TestApp, provider: &str) -> Landing {
        let dir = std::env::temp_dir()
            .join(format!("altdata-{}", app.prefix))
            .join(format!("provider={provider}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        Landing { dir }
    }

    fn write(&self, name: &str, rows: &[String]) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, format!("{HEADER}\n{}", rows.concat()))
            .unwrap_or_else(|e| panic!("{e}"));
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        if let Some(root) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

/// A profiles directory whose `provider` restates whole days.
fn restating_profiles(app: &TestApp, provider: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("altdata-profiles-{}", app.prefix));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join(format!("{provider}.toml")),
        format!("provider = \"{provider}\"\nrestates = \"day\"\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// Net cents and transactions (sales + refunds) over every merchant, or one merchant.
async fn totals(app: &TestApp, merchant: Option<i64>) -> (i64, i64) {
    let row = app
        .client()
        .await
        .query_one(
            "SELECT coalesce(sum(total_spend_cents - refund_cents), 0)::bigint,
                    coalesce(sum(transaction_count + refund_count), 0)::bigint
             FROM agg_daily_merchant_spend WHERE $1::bigint IS NULL OR merchant_id = $1",
            &[&merchant],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (row.get(0), row.get(1))
}

/// Every held row: txn_id, cents, status.
async fn held_rows(app: &TestApp) -> Vec<(String, i64, String)> {
    let rows = app
        .client()
        .await
        .query(
            "SELECT txn_id, amount_cents, status FROM unmapped_transactions ORDER BY txn_id",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    rows.iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn brand(app: &TestApp, brand_id: &str) -> i64 {
    scalar(
        &app.client().await,
        &format!("SELECT id FROM dim_merchants WHERE brand_id = '{brand_id}'"),
    )
    .await
}

fn only(reports: Vec<FileReport>) -> FileReport {
    assert_eq!(reports.len(), 1, "one file");
    let report = reports
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("a report"));
    assert!(report.counts.conserved(), "{:?}", report.counts);
    report
}

#[tokio::test]
async fn an_identical_resend_after_the_duplicate_window_counts_nothing_again() {
    let app = spawn_app().await;
    let landing = Landing::new(&app, "p1");
    let rows: Vec<String> = (0..6)
        .map(|i| {
            row(
                &format!("t{i}"),
                3,
                i,
                "STARBUCKS STORE 01234",
                "4.50",
                "5814",
            )
        })
        .collect();
    // A one-second duplicate window: the stream alone would take the re-send for new rows.
    let window = [("ALTDATA_DUPLICATE_WINDOW", "1s")];
    let first = only(
        app.run_pipeline_with(&[landing.write("d1.csv", &rows)], &window)
            .await,
    );
    assert_eq!(first.counts.published, 6);
    let before = totals(&app, None).await;
    assert_eq!(before, (2700, 6));
    // Waiting out the stream's window is the point of this test (not a synchronisation).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The same rows in a file with other bytes (a trailer row that is rejected).
    let mut again = rows.clone();
    again.push("bad,not-a-date,x,y,1,USD,,,CA,\n".to_owned());
    let second = only(
        app.run_pipeline_with(&[landing.write("d1-again.csv", &again)], &window)
            .await,
    );
    assert_eq!(
        (
            second.counts.published,
            second.counts.duplicates,
            second.counts.rejected
        ),
        (0, 6, 1),
        "{:?}",
        second.counts
    );
    assert_eq!(totals(&app, None).await, before, "counted once for good");
}

#[tokio::test]
async fn a_corrected_resend_retracts_the_old_version_and_applies_the_new() {
    let app = spawn_app().await;
    let landing = Landing::new(&app, "p2");
    let starbucks = brand(&app, "starbucks").await;
    let coffee = altdata_domain::Category::CoffeeShop.unattributed_merchant_id();
    let original = [
        row("s1", 3, 1, "STARBUCKS STORE 01234", "4.50", "5814"),
        row("s2", 3, 2, "STARBUCKS STORE 01234", "5.00", "5814"),
        row("s3", 3, 3, "STARBUCKS STORE 01234", "6.00", "5814"),
        row("h1", 3, 4, "ZQXV HOLDINGS 77", "20.00", ""),
        row("u1", 3, 5, "SQ *MOONLIGHT COFFEE ROASTERS", "3.00", "5814"),
    ];
    let first = only(app.run_pipeline(&[landing.write("d.csv", &original)]).await);
    assert_eq!(
        (
            first.counts.published,
            first.counts.unattributed,
            first.counts.unmapped
        ),
        (3, 1, 1)
    );
    assert_eq!(totals(&app, Some(starbucks)).await, (1550, 3));
    assert_eq!(totals(&app, Some(coffee)).await, (300, 1));

    // The provider's correction: s1's amount, the held row's amount, the unattributed cafe's
    // descriptor (now a brand), s2 not sent again (this provider does not restate days), a late row.
    let corrected = [
        row("s1", 3, 1, "STARBUCKS STORE 01234", "6.50", "5814"),
        row("s3", 3, 3, "STARBUCKS STORE 01234", "6.00", "5814"),
        row("h1", 3, 4, "ZQXV HOLDINGS 77", "25.00", ""),
        row("u1", 3, 5, "STARBUCKS STORE 01234", "3.00", "5814"),
        row("s4", 3, 6, "STARBUCKS STORE 01234", "1.00", "5814"),
    ];
    let second = only(
        app.run_pipeline(&[landing.write("d-corrected.csv", &corrected)])
            .await,
    );
    let c = second.counts;
    assert_eq!(
        (
            c.rows_read,
            c.duplicates,
            c.corrected,
            c.published,
            c.retracted
        ),
        (5, 1, 3, 1, 0),
        "{c:?}"
    );
    // s1 6.50 + s2 5.00 + s3 6.00 + u1 3.00 + s4 1.00
    assert_eq!(totals(&app, Some(starbucks)).await, (2150, 5));
    assert_eq!(totals(&app, Some(coffee)).await, (0, 0));
    let db = app.client().await;
    assert_eq!(
        held_rows(&app).await,
        vec![
            ("h1".to_owned(), 2500, "pending".to_owned()),
            ("u1".to_owned(), 300, "superseded".to_owned())
        ]
    );
    // Why the number changed: the corrections, cell by cell.
    let changes = db
        .query(
            "SELECT merchant_id, sum(delta_spend_cents)::bigint, sum(delta_transactions)::bigint
             FROM aggregate_changes WHERE cause = 'correction' GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let changes: Vec<(i64, i64, i64)> = changes
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(changes.contains(&(starbucks, 200 + 300, 1)), "{changes:?}");
    assert!(changes.contains(&(coffee, -300, -1)), "{changes:?}");
}

#[tokio::test]
async fn a_restated_day_retracts_the_rows_the_provider_no_longer_sends() {
    let app = spawn_app().await;
    let landing = Landing::new(&app, "p3");
    let profiles = restating_profiles(&app, "p3");
    let profiles_dir = profiles.to_string_lossy().into_owned();
    let settings = [("ALTDATA_PROFILES_DIR", profiles_dir.as_str())];
    let starbucks = brand(&app, "starbucks").await;
    let original = [
        row("a", 3, 1, "STARBUCKS STORE 01234", "1.00", "5814"),
        row("b", 3, 2, "STARBUCKS STORE 01234", "2.00", "5814"),
        row("c", 3, 3, "STARBUCKS STORE 01234", "4.00", "5814"),
        row("h", 3, 4, "ZQXV HOLDINGS 77", "8.00", ""),
        // A late row of the day before: another day, not restated by this day's files.
        row("late", 4, 5, "STARBUCKS STORE 01234", "16.00", "5814"),
    ];
    only(
        app.run_pipeline_with(&[landing.write("d.csv", &original)], &settings)
            .await,
    );
    assert_eq!(totals(&app, Some(starbucks)).await, (2300, 4));
    let restated = [
        row("a", 3, 1, "STARBUCKS STORE 01234", "1.00", "5814"),
        row("b", 3, 2, "STARBUCKS STORE 01234", "2.00", "5814"),
    ];
    let second = only(
        app.run_pipeline_with(&[landing.write("d-restated.csv", &restated)], &settings)
            .await,
    );
    assert_eq!(
        (second.counts.duplicates, second.counts.retracted),
        (2, 2),
        "{:?}",
        second.counts
    );
    assert_eq!(
        totals(&app, Some(starbucks)).await,
        (1900, 3),
        "c retracted, late kept"
    );
    let status: String = scalar(
        &app.client().await,
        "SELECT status FROM unmapped_transactions WHERE txn_id = 'h'",
    )
    .await;
    assert_eq!(status, "retracted");
    // The provider sends the retracted row again: it counts anew, over its retracted identity.
    let again = [
        row("a", 3, 1, "STARBUCKS STORE 01234", "1.00", "5814"),
        row("b", 3, 2, "STARBUCKS STORE 01234", "2.00", "5814"),
        row("c", 3, 3, "STARBUCKS STORE 01234", "4.00", "5814"),
    ];
    let third = only(
        app.run_pipeline_with(&[landing.write("d-again.csv", &again)], &settings)
            .await,
    );
    assert_eq!(
        (third.counts.duplicates, third.counts.retracted),
        (2, 0),
        "{:?}",
        third.counts
    );
    assert_eq!(totals(&app, Some(starbucks)).await, (2300, 4), "c back");
    let _ = std::fs::remove_dir_all(&profiles);
}

#[tokio::test]
async fn a_correction_racing_its_originals_aggregation_ends_exact() {
    let app = spawn_app().await;
    let landing = Landing::new(&app, "p4");
    let starbucks = brand(&app, "starbucks").await;
    let walmart = brand(&app, "walmart").await;
    // Both deliveries reach the stream before anything is aggregated; the correction moves
    // the row to another merchant (another shard).
    let original = landing.write(
        "d.csv",
        &[row("r1", 3, 1, "STARBUCKS STORE 01234", "4.00", "5814")],
    );
    let corrected = landing.write(
        "e.csv",
        &[row("r1", 3, 1, "WALMART SUPERCENTER 0123", "9.00", "5311")],
    );
    let mut env = app.env_reader(&[]);
    let settings = altdata_ingest::IngestSettings::from_env(&mut env);
    let reports = altdata_ingest::run_once(
        settings,
        &[original, corrected],
        altdata_common::Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reports[1].counts.corrected, 1, "{:?}", reports[1].counts);
    app.run_pipeline(&[]).await;
    assert_eq!(totals(&app, Some(starbucks)).await, (0, 0));
    assert_eq!(totals(&app, Some(walmart)).await, (900, 1));
}

/// A day of two Starbucks rows and their correction (one row's amount), under a gateway with
/// `k`; returns the gateway and Starbucks' id.
async fn corrected_starbucks(k: &str) -> (integration_tests::gateway::GatewayApp, i64) {
    let app = integration_tests::gateway::spawn_gateway(&[("ALTDATA_K_ANONYMITY", k)]).await;
    let catalogue =
        altdata_domain::catalogue::Catalogue::embedded().unwrap_or_else(|e| panic!("{e}"));
    let starbucks = catalogue
        .merchants
        .iter()
        .find(|m| m.brand_id == "starbucks")
        .map(|m| m.id)
        .unwrap_or_default();
    app.merchant(starbucks, "Starbucks", "coffee_shop", "starbucks")
        .await;
    let landing = Landing::new(&app.test_app, "p5");
    let original = [
        row("a", 3, 1, "STARBUCKS STORE 01234", "4.00", "5814"),
        row("b", 3, 2, "STARBUCKS STORE 01234", "5.00", "5814"),
    ];
    app.test_app
        .run_pipeline(&[landing.write("d.csv", &original)])
        .await;
    let corrected = [
        row("a", 3, 1, "STARBUCKS STORE 01234", "4.75", "5814"),
        row("b", 3, 2, "STARBUCKS STORE 01234", "5.00", "5814"),
    ];
    app.test_app
        .run_pipeline(&[landing.write("d-corrected.csv", &corrected)])
        .await;
    (app, starbucks)
}

#[tokio::test]
async fn why_a_number_changed_is_answered_by_the_api() {
    let (app, starbucks) = corrected_starbucks("1").await;
    let answer = app
        .get(&format!("/v1/changes?merchant={starbucks}&state=CA"))
        .await;
    assert_eq!(
        answer.status,
        axum::http::StatusCode::OK,
        "{}",
        answer.text()
    );
    let body = answer.json();
    let changes = body["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(changes.len(), 1, "{body}");
    let change = &changes[0];
    assert_eq!(change["cause"], "correction");
    assert_eq!(change["file"], "d-corrected.csv");
    assert_eq!(change["day"], day(3).to_string());
    assert_eq!(change["delta_spend"], 0.75);
    assert_eq!(change["delta_transactions"], 0);
    assert_eq!(change["rows"], 1);
    assert_eq!(change["withheld"], false);
    let csv = app
        .get(&format!("/v1/changes?merchant={starbucks}&format=csv"))
        .await
        .text();
    assert!(
        csv.lines()
            .nth(1)
            .is_some_and(|l| l.contains(",correction,")),
        "{csv}"
    );
}

#[tokio::test]
async fn a_change_to_a_thin_cell_is_withheld_like_the_cell() {
    // Two customers in the cell, k = 3: the one-row correction would show a transaction.
    let (app, starbucks) = corrected_starbucks("3").await;
    let body = app
        .get(&format!("/v1/changes?merchant={starbucks}"))
        .await
        .json();
    let change = &body["changes"][0];
    assert_eq!(change["withheld"], true, "{body}");
    assert!(
        change["delta_spend"].is_null() && change["rows"].is_null(),
        "{body}"
    );
}

/// A checkpoint's transaction commits while the next rows are read: a row corrected across
/// checkpoints of one file, twice, is classified against the version the file decided last,
/// not the one the record had before, and its held rows end as the last version says.
#[tokio::test]
async fn a_row_corrected_across_checkpoints_of_one_file_ends_as_its_last_version() {
    let app = spawn_app().await;
    let landing = Landing::new(&app, "p5");
    let starbucks = brand(&app, "starbucks").await;
    let coffee = altdata_domain::Category::CoffeeShop.unattributed_merchant_id();
    let filler = |from: u32| -> Vec<String> {
        (from..from + 1_100)
            .map(|n| {
                row(
                    &format!("f{n}"),
                    2,
                    n,
                    "STARBUCKS STORE 01234",
                    "1.00",
                    "5814",
                )
            })
            .collect()
    };
    let mut rows = vec![row(
        "u1",
        2,
        1,
        "SQ *MOONLIGHT COFFEE ROASTERS",
        "3.00",
        "5814",
    )];
    // Checkpoints fall between chunks of 1,024 rows: each version is in a chunk of its own.
    rows.extend(filler(10_000));
    // Named now: its held row is superseded.
    rows.push(row("u1", 2, 1, "STARBUCKS STORE 01234", "3.00", "5814"));
    rows.extend(filler(20_000));
    // Held again, for another amount: a held row replaces the superseded one.
    rows.push(row(
        "u1",
        2,
        1,
        "SQ *MOONLIGHT COFFEE ROASTERS",
        "4.00",
        "5814",
    ));
    rows.extend(filler(30_000));
    let report = only(
        app.run_pipeline_with(
            &[landing.write("d.csv", &rows)],
            &[("ALTDATA_CHECKPOINT_ROWS", "100")],
        )
        .await,
    );
    let c = report.counts;
    assert_eq!(
        (c.rows_read, c.corrected, c.duplicates),
        (3_303, 2, 0),
        "{c:?}"
    );
    assert_eq!(totals(&app, Some(starbucks)).await, (3_300 * 100, 3_300));
    assert_eq!(totals(&app, Some(coffee)).await, (400, 1));
    assert_eq!(
        held_rows(&app).await,
        vec![("u1".to_owned(), 400, "pending".to_owned())]
    );
    let checkpoint_line: i64 = scalar(
        &app.client().await,
        "SELECT checkpoint_line FROM ingest_files",
    )
    .await;
    assert_eq!(
        checkpoint_line, 3_305,
        "the last checkpoint is past every line"
    );
}
