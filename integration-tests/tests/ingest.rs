//! Ingest against the real NATS and PostgreSQL: validation and rejects, file idempotency,
//! crash and resume, pseudonymisation, and the conservation of rows.

use altdata_common::Shutdown;
use altdata_ingest::{FileOutcome, IngestSettings};
use altdata_proto::Message;
use integration_tests::{
    assert_stream_holds_each_once, scalar, spawn_app, stream_events, wait_for, TestApp,
};
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

fn temp_dir(app: &TestApp) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("altdata-{}", app.prefix));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// `n` good rows at big brands with distinct ids and cards.
fn good_rows(n: usize, first_id: usize) -> String {
    let day = today() - chrono::Duration::days(3);
    let brands = [
        ("STARBUCKS #1234 SEATTLE WA", "5814", "WA"),
        ("SQ *STARBUCKS STORE 88", "5814", "CA"),
        ("MCDONALD'S F1234", "5814", "TX"),
        ("TARGET 00012345", "5310", "MN"),
        ("NETFLIX.COM", "4899", "CA"),
    ];
    let mut text = String::new();
    for i in 0..n {
        let (descriptor, mcc, state) = brands[i % brands.len()];
        text.push_str(&format!(
            "g{},{day} 10:{:02}:00,41110000{:08},{descriptor},{}.{:02},USD,{mcc},,{state},\n",
            first_id + i,
            i % 60,
            first_id + i,
            3 + i % 40,
            i % 100
        ));
    }
    text
}

#[tokio::test]
async fn every_kind_of_bad_row_is_rejected_with_its_line_and_the_rest_goes_on() {
    let app = spawn_app().await;
    let dir = temp_dir(&app);
    let day = today() - chrono::Duration::days(2);
    let future = today() + chrono::Duration::days(30);
    let long = "X".repeat(300);
    let bad = [
        format!("b1,{day} 10:00:00,4111000011112222,STARBUCKS,4.50,USD,5814,,CA"),
        format!("b2,{day} 10:00:00,4111000011112222,STARBUCKS,12;34,USD,5814,,CA,"),
        "b3,not-a-date,4111000011112222,STARBUCKS,4.50,USD,5814,,CA,".to_owned(),
        format!("b4,{future} 10:00:00,4111000011112222,STARBUCKS,4.50,USD,5814,,CA,"),
        format!("b5,{day} 10:00:00,4111000011112222,STARBUCKS,4.50,EUR,5814,,CA,"),
        format!(",{day} 10:00:00,4111000011112222,STARBUCKS,4.50,USD,5814,,CA,"),
        format!("b7,{day} 10:00:00,4111000011112222,{long},4.50,USD,5814,,CA,"),
        format!("b8,{day} 10:00:00,4111000011112222,STARBUCKS,4.50,USD,5814,,ZZ,"),
    ];
    let mut text = format!("{HEADER}\n");
    text.push_str(&good_rows(10, 0));
    for row in &bad {
        text.push_str(row);
        text.push('\n');
    }
    text.push_str(&good_rows(10, 100));
    let path = dir.join("provider=acmebad/day.csv");
    write(&path, &text);

    let reports = altdata_ingest::run_once(
        settings(&app, &[]),
        &[dir.display().to_string()],
        Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reports.len(), 1);
    let counts = reports[0].counts;
    assert_eq!(reports[0].outcome, FileOutcome::Done);
    assert_eq!(counts.rows_read, 28);
    assert_eq!(counts.rejected, 8);
    assert!(counts.conserved(), "{counts:?}");
    assert_eq!(counts.published + counts.unmapped, 20);

    let client = app.client().await;
    let rejects = client
        .query(
            "SELECT line, reason, raw_row FROM ingest_rejects ORDER BY line",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = [
        (12, "wrong column count"),
        (13, "bad amount"),
        (14, "bad posted_at"),
        (15, "in the future"),
        (16, "only USD"),
        (17, "txn_id is empty"),
        (18, "descriptor is too long"),
        (19, "unknown state code"),
    ];
    assert_eq!(rejects.len(), expected.len());
    for (row, (line, reason)) in rejects.iter().zip(expected) {
        assert_eq!(row.get::<_, i64>(0), line);
        let got: String = row.get(1);
        assert!(got.contains(reason), "line {line}: {got}");
        let raw: String = row.get(2);
        assert!(!raw.contains("4111000011112222"), "card id masked in {raw}");
        assert!(raw.len() <= 512);
    }
    let events = stream_events(&app).await;
    assert_eq!(events.len() as u64, counts.published);
    // Msg-Id: b:<file hash>:<chunk's lines>:<shard>, nothing of the row in it.
    assert!(events
        .iter()
        .all(|(id, e)| id.starts_with("b:") && !id.contains(&e.txn_id) && e.provider == "acmebad"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_same_content_again_is_skipped_under_any_name() {
    let app = spawn_app().await;
    let dir = temp_dir(&app);
    let text = format!("{HEADER}\n{}", good_rows(50, 0));
    write(&dir.join("a/first.csv"), &text);
    let first = altdata_ingest::run_once(
        settings(&app, &[]),
        &[dir.join("a").display().to_string()],
        Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first[0].outcome, FileOutcome::Done);
    write(&dir.join("b/renamed.csv"), &text);
    let again = altdata_ingest::run_once(
        settings(&app, &[]),
        &[dir.display().to_string()],
        Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.len(), 2);
    assert!(
        again
            .iter()
            .all(|r| matches!(r.outcome, FileOutcome::Skipped { .. })),
        "{again:?}"
    );
    let events = stream_events(&app).await;
    assert_eq!(events.len() as u64, first[0].counts.published);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_restarted_watcher_reads_no_finished_file_again_and_takes_new_ones() {
    let app = spawn_app().await;
    let dir = temp_dir(&app);
    let day1 = dir.join("provider=default/day1.csv");
    write(&day1, &format!("{HEADER}\n{}", good_rows(50, 1000)));
    let first = altdata_ingest::run_once(
        settings(&app, &[]),
        &[dir.display().to_string()],
        Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first[0].outcome, FileOutcome::Done);

    // Same path, same size, other content: a watcher that hashed day1 again would ingest it
    // as new content. The ledger says day1 is done, so it must not even open it.
    write(&day1, &format!("{HEADER}\n{}", good_rows(50, 2000)));
    write(
        &dir.join("provider=default/day2.csv"),
        &format!("{HEADER}\n{}", good_rows(20, 3000)),
    );
    let landing = dir.display().to_string();
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
    wait_for(
        "day2 to be ingested by the watcher",
        Duration::from_secs(30),
        || async {
            let done: i64 = client
            .query_one(
                "SELECT count(*) FROM ingest_files WHERE path LIKE '%day2.csv' AND status = 'done'",
                &[],
            )
            .await
            .ok()?
            .get(0);
            (done == 1).then_some(())
        },
    )
    .await;
    shutdown.trigger();
    watcher
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let files: i64 = scalar(&client, "SELECT count(*) FROM ingest_files").await;
    assert_eq!(files, 2, "day1 was read again");
    assert_eq!(stream_events(&app).await.len(), 70);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn rows_repeated_within_and_across_files_count_once() {
    let app = spawn_app().await;
    let dir = temp_dir(&app);
    let rows = good_rows(30, 0);
    // The first file repeats its rows; the second file repeats some of the first's
    // identities with other content (corrections: the row numbering sets the amounts).
    write(&dir.join("d1.csv"), &format!("{HEADER}\n{rows}{rows}"));
    write(
        &dir.join("d2.csv"),
        &format!("{HEADER}\n{}{}", good_rows(10, 20), good_rows(5, 500)),
    );
    let reports = altdata_ingest::run_once(
        settings(&app, &[]),
        &[dir.display().to_string()],
        Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let duplicates: u64 = reports.iter().map(|r| r.counts.duplicates).sum();
    let corrected: u64 = reports.iter().map(|r| r.counts.corrected).sum();
    assert_eq!((duplicates, corrected), (30, 10));
    assert!(reports.iter().all(|r| r.counts.conserved()));
    assert_stream_holds_each_once(&app).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_ingest_killed_mid_file_resumes_and_the_stream_holds_each_msg_id_once() {
    let app = spawn_app().await;
    let dir = temp_dir(&app);
    let rows = 20_000;
    write(
        &dir.join("big.csv"),
        &format!("{HEADER}\n{}", good_rows(rows, 0)),
    );
    let killed = {
        let settings = settings(
            &app,
            &[
                ("ALTDATA_CHECKPOINT_ROWS", "1000"),
                ("ALTDATA_PUBLISH_WINDOW", "64"),
            ],
        );
        let locations = vec![dir.display().to_string()];
        tokio::spawn(async move {
            altdata_ingest::run_once(settings, &locations, Shutdown::new()).await
        })
    };
    let client = app.client().await;
    wait_for("a checkpoint mid-file", Duration::from_secs(60), || async {
        let row = client
            .query_opt("SELECT checkpoint_line FROM ingest_files", &[])
            .await
            .ok()??;
        (row.get::<_, i64>(0) > 2_000).then_some(())
    })
    .await;
    // SIGKILL-like: the task and its connections vanish without a final checkpoint.
    killed.abort();
    let _ = killed.await;
    let status: String = scalar(&client, "SELECT status FROM ingest_files").await;
    assert_eq!(status, "processing");

    let reports = wait_for(
        "the resumed run (after the old connection's lock is gone)",
        Duration::from_secs(30),
        || {
            let settings = settings(&app, &[]);
            let locations = vec![dir.display().to_string()];
            async move {
                let reports = altdata_ingest::run_once(settings, &locations, Shutdown::new())
                    .await
                    .ok()?;
                (reports[0].outcome != FileOutcome::Busy).then_some(reports)
            }
        },
    )
    .await;
    assert_eq!(reports[0].outcome, FileOutcome::Resumed);
    let counts = reports[0].counts;
    assert_eq!(counts.rows_read, rows as u64);
    assert!(counts.conserved(), "{counts:?}");
    assert_stream_holds_each_once(&app).await;
    let events = stream_events(&app).await;
    assert_eq!(
        events.len() as u64 + counts.unmapped,
        rows as u64,
        "every row published or held once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn raw_card_ids_appear_in_no_payload_and_no_table() {
    let app = spawn_app().await;
    let dir = temp_dir(&app);
    let day = today() - chrono::Duration::days(1);
    let mut text = format!("{HEADER}\n{}", good_rows(40, 0));
    // A held row and a rejected row carry card ids too.
    text.push_str(&format!(
        "u1,{day} 09:00:00,4111000099990001,JOES CORNER DINER,12.00,USD,5812,,CA,\n"
    ));
    text.push_str(&format!(
        "r1,{day} 09:00:00,4111000099990002,STARBUCKS,bad,USD,5814,,CA,\n"
    ));
    write(&dir.join("cards.csv"), &text);
    altdata_ingest::run_once(
        settings(&app, &[]),
        &[dir.display().to_string()],
        Shutdown::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let card_ids: Vec<String> = (0..40)
        .map(|i| format!("41110000{i:08}"))
        .chain(["4111000099990001".into(), "4111000099990002".into()])
        .collect();
    for (_, event) in stream_events(&app).await {
        let bytes = event.encode_to_vec();
        for card in &card_ids {
            assert!(
                !bytes.windows(card.len()).any(|w| w == card.as_bytes()),
                "card id in a payload"
            );
        }
    }
    let client = app.client().await;
    let dump: String = scalar(
        &client,
        "SELECT concat_ws('|',
                 (SELECT string_agg(t::text, '|') FROM ingest_rejects t),
                 (SELECT string_agg(t::text, '|') FROM unmapped_transactions t),
                 (SELECT string_agg(t::text, '|') FROM ingest_files t))",
    )
    .await;
    assert!(dump.contains("JOES CORNER DINER"), "the held row is there");
    for card in &card_ids {
        assert!(!dump.contains(card.as_str()), "card id {card} in a table");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stream at its size limit refuses events (DiscardPolicy::New); ingest waits and sends
/// them again, and once there is room every event is stored, once.
#[tokio::test]
async fn a_full_stream_makes_ingest_wait_and_drops_nothing() {
    let app = spawn_app().await;
    let dir = temp_dir(&app);
    // ~75 bytes an event stored in batches: 20,000 events need about 1.5 MiB, the stream
    // gets 1 MiB.
    let rows = 20_000;
    write(
        &dir.join("big.csv"),
        &format!("{HEADER}\n{}", good_rows(rows, 0)),
    );
    let ingest = {
        // The default window: every batch of the file in flight when the limit is hit, each
        // sent several times while the stream refuses (docs/ARCHITECTURE.md, "Publishing").
        let settings = settings(
            &app,
            &[
                ("ALTDATA_TXN_MAX_MB", "1"),
                ("ALTDATA_PUBLISH_WINDOW", "4096"),
            ],
        );
        let locations = vec![dir.display().to_string()];
        tokio::spawn(async move {
            altdata_ingest::run_once(settings, &locations, Shutdown::new()).await
        })
    };
    let mut stream = wait_for("the transaction stream", Duration::from_secs(30), || {
        let (jetstream, name) = (app.jetstream.clone(), app.subjects.txn_stream_of(0));
        async move { jetstream.get_stream(name).await.ok() }
    })
    .await;
    let full = wait_for("the stream at its limit", Duration::from_secs(60), || {
        let mut stream = stream.clone();
        async move {
            let info = stream.info().await.ok()?;
            (info.config.max_bytes == 1024 * 1024
                && info.state.bytes + 1_000 >= info.config.max_bytes as u64)
                .then_some(info.state.messages)
        }
    })
    .await;
    assert!(full > 0, "the stream holds the batches that fitted");
    assert!(
        !ingest.is_finished(),
        "ingest must wait for room, not finish or fail"
    );

    let mut config = stream
        .info()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .config
        .clone();
    config.max_bytes = 64 * 1024 * 1024;
    app.jetstream
        .update_stream(config)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let reports = tokio::time::timeout(Duration::from_secs(60), ingest)
        .await
        .unwrap_or_else(|_| panic!("ingest did not finish once the stream had room"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let counts = reports[0].counts;
    assert!(counts.conserved(), "{counts:?}");
    assert_eq!((counts.rows_read, counts.duplicates), (rows as u64, 0));
    assert_stream_holds_each_once(&app).await;
    let events = stream_events(&app).await;
    assert_eq!(events.len() as u64, counts.published);
    assert_eq!(counts.published + counts.unmapped, rows as u64);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Held rows are copied in; a batch that meets an identity already held (a resumed file's rows
/// written before its crash) is inserted again with the check, and counts only its new rows.
#[tokio::test]
async fn held_rows_already_stored_are_skipped_and_not_counted_again() {
    use altdata_ingest::reader::UnmappedRow;
    let app = spawn_app().await;
    let client = app.client().await;
    let held = |txn_id: &str, counted: Option<i64>| UnmappedRow {
        txn_id: txn_id.to_owned(),
        raw_descriptor: format!("ZQXV {txn_id}"),
        normalized_descriptor: "ZQXV".to_owned(),
        amount_cents: 1250,
        metric_date: today(),
        region: "CA".to_owned(),
        mcc: String::new(),
        customer_key: 7,
        candidates: "[{\"merchant_id\": 1, \"score\": 0.4}]".into(),
        counted_merchant_id: counted,
        replaces: false,
        correction: false,
    };
    let (a, b, c) = (held("a", None), held("b", Some(-1)), held("c", None));
    let first = altdata_ingest::store::insert_unmapped(&client, 1, "p", &[&a, &b])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first, 1, "one held-only row (b is counted by its event)");
    let again = altdata_ingest::store::insert_unmapped(&client, 1, "p", &[&a, &b, &c])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, 1, "only c is new");
    let stored: i64 = scalar(
        &client,
        "SELECT count(*) FROM unmapped_transactions
         WHERE candidates -> 0 ->> 'score' = '0.4' AND status = 'pending'",
    )
    .await;
    assert_eq!(stored, 3);
}
