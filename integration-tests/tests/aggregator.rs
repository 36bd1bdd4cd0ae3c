//! Aggregator against the real NATS and PostgreSQL: exact totals, redelivery, crashes,
//! fencing, poison and the outbox. Events are published directly.

use altdata_aggregator::{AggregatorError, AggregatorSettings, ShardExit};
use altdata_common::Shutdown;
use altdata_domain::shard_of;
use altdata_proto::v1::{TransactionBatch, TransactionEvent};
use altdata_proto::Message;
use integration_tests::{publish_events, scalar, spawn_app, wait_for, TestApp};
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// (merchant, region, epoch day) -> (gross, sales, refund cents, refunds, customers)
type Expected = BTreeMap<(i64, String, i32), (i64, i64, i64, i64, HashSet<u64>)>;

fn settings(app: &TestApp, extra: &[(&str, &str)]) -> AggregatorSettings {
    // Short windows, pins and ack waits keep crash-and-restart tests quick.
    let mut vars: Vec<(&str, &str)> = vec![
        ("ALTDATA_AGG_WINDOW_AGE", "200ms"),
        ("ALTDATA_AGG_WINDOW_EVENTS", "500"),
        ("ALTDATA_AGG_PIN_TTL", "2s"),
        ("ALTDATA_AGG_ACK_WAIT", "2s"),
    ];
    vars.extend_from_slice(extra);
    let mut env = app.env_reader(&vars);
    let settings = AggregatorSettings::from_env(&mut env);
    env.finish().unwrap_or_else(|e| panic!("{e}"));
    settings
}

async fn run_until_idle(
    mut settings: AggregatorSettings,
) -> Result<Vec<(u32, ShardExit)>, AggregatorError> {
    settings.until_idle = true;
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        altdata_aggregator::run(settings, Shutdown::new()),
    )
    .await
    .unwrap_or_else(|_| panic!("aggregator did not become idle within 60s"))?;
    Ok(report.shards)
}

fn random_events(count: usize, seed: u64, merchants: &[i64]) -> Vec<TransactionEvent> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let regions = ["CA", "NY", "TX", ""];
    (0..count)
        .map(|i| {
            let refund = rng.gen_ratio(1, 20);
            let cents = rng.gen_range(100..20_000);
            TransactionEvent {
                schema_version: 1,
                provider: "test".into(),
                txn_id: format!("t{seed}-{i}"),
                metric_date: 20_400 + rng.gen_range(0..40),
                amount_cents: if refund { -cents } else { cents },
                customer_key: rng.gen_range(0..300u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                merchant_id: merchants[rng.gen_range(0..merchants.len())],
                region: regions[rng.gen_range(0..regions.len())].into(),
                mcc: "5814".into(),
                resolution: 1,
                confidence: 1.0,
                retraction: false,
            }
        })
        .collect()
}

fn expected(events: &[TransactionEvent]) -> Expected {
    let mut cells = Expected::new();
    for e in events {
        let region = if e.region.is_empty() {
            "XX".to_owned()
        } else {
            e.region.clone()
        };
        let cell = cells
            .entry((e.merchant_id, region, e.metric_date))
            .or_default();
        if e.amount_cents < 0 {
            cell.2 += -e.amount_cents;
            cell.3 += 1;
        } else {
            cell.0 += e.amount_cents;
            cell.1 += 1;
        }
        cell.4.insert(e.customer_key);
    }
    cells
}

async fn assert_aggregates_equal(app: &TestApp, expected: &Expected) {
    let client = app.client().await;
    let rows = client
        .query(
            "SELECT merchant_id, region, (metric_date - DATE '1970-01-01')::int, total_spend_cents,
                    transaction_count, refund_cents, refund_count, hll_cardinality(customers)::bigint
               FROM agg_daily_merchant_spend ORDER BY 1, 2, 3",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), expected.len(), "number of daily cells");
    for row in rows {
        let key = (
            row.get::<_, i64>(0),
            row.get::<_, String>(1),
            row.get::<_, i32>(2),
        );
        let want = expected
            .get(&key)
            .unwrap_or_else(|| panic!("unexpected cell {key:?}"));
        let got = (
            row.get::<_, i64>(3),
            row.get::<_, i64>(4),
            row.get::<_, i64>(5),
            row.get::<_, i64>(6),
        );
        assert_eq!(got, (want.0, want.1, want.2, want.3), "cell {key:?}");
        // Small sets are exact in the HLL's explicit representation.
        assert_eq!(
            row.get::<_, i64>(7),
            want.4.len() as i64,
            "customers of {key:?}"
        );
    }
    // Every rollup sums to the grand totals of the released cells (at least k customers), and
    // counts the others as withheld.
    let k: i32 = scalar(&client, "SELECT k FROM disclosure").await;
    let released = |c: &&(i64, i64, i64, i64, HashSet<u64>)| c.4.len() as i64 >= i64::from(k);
    let gross: i64 = expected.values().filter(released).map(|c| c.0).sum();
    let refunds: i64 = expected.values().filter(released).map(|c| c.2).sum();
    let withheld = expected.values().filter(|c| !released(c)).count() as i64;
    if k == 2 {
        assert!(
            gross > 0 && withheld > 0,
            "released {gross}, withheld {withheld}"
        );
    }
    for table in [
        "agg_weekly_merchant_spend",
        "agg_monthly_merchant_spend",
        "agg_daily_category_region",
        "agg_weekly_category_region",
        "agg_monthly_category_region",
        "agg_daily_category_national",
        "agg_weekly_category_national",
        "agg_daily_merchant_national",
        "agg_weekly_merchant_national",
    ] {
        let row = client
            .query_one(
                &format!("SELECT coalesce(sum(total_spend_cents), 0)::bigint, coalesce(sum(refund_cents), 0)::bigint,
                                 coalesce(sum(withheld_cells), 0)::bigint FROM {table}"),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                row.get::<_, i64>(0),
                row.get::<_, i64>(1),
                row.get::<_, i64>(2)
            ),
            (gross, refunds, withheld),
            "{table}"
        );
    }
}

#[tokio::test]
async fn aggregates_equal_the_events_to_the_cent() {
    let app = spawn_app().await;
    // Most cells here hold one customer: at k = 2 some are released and some withheld.
    app.set_disclosure_k(2).await;
    let events = random_events(3_000, 1, &(1..=40).collect::<Vec<_>>());
    publish_events(&app, &events).await;
    let exits = run_until_idle(settings(&app, &[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        exits.iter().all(|(_, exit)| *exit == ShardExit::Idle),
        "{exits:?}"
    );
    assert_aggregates_equal(&app, &expected(&events)).await;
}

#[tokio::test]
async fn old_messages_redelivered_after_commit_are_skipped() {
    let app = spawn_app().await;
    let events = random_events(1_000, 2, &(1..=20).collect::<Vec<_>>());
    publish_events(&app, &events).await;
    run_until_idle(settings(&app, &[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Recreating the consumers redelivers every message, as a lost ack would.
    for shard in 0..app.connections.shard_count {
        let stream = app
            .jetstream
            .get_stream(app.subjects.txn_stream_of(shard))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = stream
            .delete_consumer(&format!("aggregate-shard-{shard}"))
            .await;
    }
    run_until_idle(settings(&app, &[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_aggregates_equal(&app, &expected(&events)).await;
}

#[tokio::test]
async fn a_crash_after_commit_and_before_ack_changes_nothing() {
    let app = spawn_app().await;
    let events = random_events(2_000, 3, &(1..=20).collect::<Vec<_>>());
    publish_events(&app, &events).await;
    let crashed = run_until_idle(settings(
        &app,
        &[("ALTDATA_FAULT_CRASH_AFTER_COMMITS", "1")],
    ))
    .await;
    assert!(
        matches!(crashed, Err(AggregatorError::InjectedCrash { .. })),
        "{crashed:?}"
    );
    let client = app.client().await;
    let committed: i64 = scalar(
        &client,
        "SELECT coalesce(sum(applied_events), 0)::bigint FROM shard_offsets",
    )
    .await;
    assert!(committed > 0, "the crash came after at least one commit");
    run_until_idle(settings(&app, &[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_aggregates_equal(&app, &expected(&events)).await;
}

#[tokio::test]
async fn a_second_owner_fences_the_first_and_totals_stay_exact() {
    let app = spawn_app().await;
    let shard0: Vec<i64> = (1..200)
        .filter(|m| shard_of(*m, app.connections.shard_count) == 0)
        .take(10)
        .collect();
    let first = random_events(500, 4, &shard0);
    publish_events(&app, &first).await;
    let mut owner_a = settings(&app, &[("ALTDATA_AGG_SHARDS", "0")]);
    owner_a.instance = "a".into();
    let shutdown = Shutdown::new();
    let running = tokio::spawn(altdata_aggregator::run(owner_a, shutdown.clone()));
    let client = app.client().await;
    wait_for(
        "instance a to commit its first batch",
        Duration::from_secs(30),
        || async {
            let row = client
                .query_opt(
                    "SELECT applied_events FROM shard_offsets WHERE shard = 0",
                    &[],
                )
                .await
                .ok()??;
            (row.get::<_, i64>(0) == first.len() as i64).then_some(())
        },
    )
    .await;
    // Instance b takes the shard: its epoch supersedes a's.
    let pool = app.pool.clone();
    let b_client = pool.get().await.unwrap_or_else(|e| panic!("{e}"));
    altdata_aggregator::offsets::acquire(&b_client, 0, "b")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let second = random_events(300, 5, &shard0);
    publish_events(&app, &second).await;
    let report = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap_or_else(|_| panic!("instance a did not stop on the fence"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.shards, vec![(0, ShardExit::Fenced)]);
    // Nothing of the second batch was applied by a.
    let applied: i64 = scalar(
        &client,
        "SELECT applied_events FROM shard_offsets WHERE shard = 0",
    )
    .await;
    assert_eq!(applied, first.len() as i64);
    let mut owner_b = settings(&app, &[("ALTDATA_AGG_SHARDS", "0")]);
    owner_b.instance = "b".into();
    run_until_idle(owner_b)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let all: Vec<TransactionEvent> = first.into_iter().chain(second).collect();
    assert_aggregates_equal(&app, &expected(&all)).await;
}

#[tokio::test]
async fn poison_goes_to_the_dlq_with_a_reason_and_the_rest_is_processed() {
    let app = spawn_app().await;
    let events = random_events(200, 6, &[1, 2, 3]);
    publish_events(&app, &events).await;
    let shard = shard_of(1, app.connections.shard_count);
    let subject = app.subjects.txn_shard(shard);
    let future_version = TransactionBatch {
        schema_version: 99,
        events: vec![TransactionEvent {
            schema_version: 99,
            merchant_id: 1,
            ..Default::default()
        }],
    };
    // A batch of this version holding one event of another: poison as a whole.
    let future_event = TransactionBatch {
        schema_version: 1,
        events: vec![
            events[0].clone(),
            TransactionEvent {
                schema_version: 99,
                merchant_id: 1,
                ..Default::default()
            },
        ],
    };
    for payload in [
        b"\xff\xff not protobuf".to_vec(),
        future_version.encode_to_vec(),
        future_event.encode_to_vec(),
    ] {
        app.jetstream
            .publish(subject.clone(), payload.into())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    run_until_idle(settings(&app, &[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_aggregates_equal(&app, &expected(&events)).await;
    let stream = app
        .jetstream
        .get_stream(app.subjects.txn_dlq_stream())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let info = stream
        .info_with_subjects(app.subjects.txn_dlq())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut subjects = info;
    use futures::StreamExt;
    let mut dead = 0;
    while let Some(Ok((_, count))) = subjects.next().await {
        dead += count;
    }
    assert_eq!(dead, 3);
    let last = stream
        .get_last_raw_message_by_subject(&app.subjects.txn_dlq())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let reason = last
        .headers
        .get(altdata_aggregator::consumer::DLQ_REASON_HEADER)
        .map(|v| v.to_string())
        .unwrap_or_default();
    assert!(reason.contains("unsupported schema_version 99"), "{reason}");
}

#[tokio::test]
async fn an_invalidation_written_before_a_crash_is_published_after_restart() {
    let app = spawn_app().await;
    publish_events(&app, &random_events(100, 7, &[1, 2])).await;
    run_until_idle(settings(&app, &[("ALTDATA_FAULT_NO_RELAY", "true")]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = app.client().await;
    let pending: i64 = scalar(
        &client,
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
    )
    .await;
    assert!(
        pending >= 2,
        "the commit wrote outbox rows that were not published"
    );
    let mut cache = app
        .jetstream
        .get_stream(app.subjects.cache_stream())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        cache
            .info()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .state
            .messages,
        0
    );
    // Restart with the relay: the pending invalidation goes out.
    run_until_idle(settings(&app, &[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the invalidation on the cache stream",
        Duration::from_secs(10),
        || {
            let mut cache = cache.clone();
            async move { (cache.info().await.ok()?.state.messages >= 1).then_some(()) }
        },
    )
    .await;
    let pending: i64 = scalar(
        &client,
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
    )
    .await;
    assert_eq!(pending, 0);
}

#[tokio::test]
async fn a_stream_behind_the_stored_offset_is_refused() {
    let app = spawn_app().await;
    let client = app.client().await;
    client
        .execute(
            "INSERT INTO shard_offsets (shard, stream_seq) VALUES (0, 1000000)",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let merchant = (1..200)
        .find(|m| shard_of(*m, app.connections.shard_count) == 0)
        .unwrap_or(1);
    publish_events(&app, &random_events(5, 8, &[merchant])).await;
    let exits = run_until_idle(settings(&app, &[("ALTDATA_AGG_SHARDS", "0")]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exits, vec![(0, ShardExit::Refused)]);
    let cells: i64 = scalar(&client, "SELECT count(*) FROM agg_daily_merchant_spend").await;
    assert_eq!(
        cells, 0,
        "nothing applied from a stream that went backwards"
    );
}

#[tokio::test]
async fn a_flush_touching_thousands_of_cells_is_relayed_in_full() {
    let app = spawn_app().await;
    // 6,000 distinct cells in one window: more than the client's 5,000 in-flight publishes.
    let events: Vec<TransactionEvent> = (0..6_000)
        .map(|i| TransactionEvent {
            schema_version: 1,
            provider: "wide".into(),
            txn_id: format!("w{i}"),
            metric_date: 20_400 + (i % 60),
            amount_cents: 100,
            customer_key: i as u64,
            merchant_id: 1 + (i / 60) as i64,
            region: "CA".into(),
            ..Default::default()
        })
        .collect();
    publish_events(&app, &events).await;
    run_until_idle(settings(
        &app,
        &[
            ("ALTDATA_AGG_WINDOW_EVENTS", "20000"),
            ("ALTDATA_AGG_WINDOW_AGE", "2s"),
        ],
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let client = app.client().await;
    let pending: i64 = scalar(
        &client,
        "SELECT count(*) FROM outbox WHERE published_at IS NULL",
    )
    .await;
    assert_eq!(pending, 0, "every outbox row published");
    let mut agg = app
        .jetstream
        .get_stream(app.subjects.agg_stream())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        agg.info()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .state
            .messages,
        6_000,
        "one update per changed cell"
    );
}

#[tokio::test]
async fn events_that_expire_before_they_are_applied_stop_the_shard_and_recovery_rebuilds_it() {
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("altdata-retention-{}", app.prefix));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    let rows: String = (0..40)
        .map(|i| {
            let descriptor = [
                "STARBUCKS STORE 01234",
                "WALMART SUPERCENTER 0123",
                "ZQXV HOLDINGS 77",
            ][i % 3];
            format!(
                "r{i},{day} 10:00:00,41110000{i:08},{descriptor},{}.25,USD,,,CA,\n",
                3 + i
            )
        })
        .collect();
    let file = dir.join("d.csv");
    std::fs::write(
        &file,
        format!("txn_id,posted_at,card_id,descriptor,amount,currency,mcc,city,state,postal_code\n{rows}"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // A one-second retention: the events expire before any aggregator runs.
    let retention = [
        ("ALTDATA_TXN_MAX_AGE", "1s"),
        ("ALTDATA_DUPLICATE_WINDOW", "1s"),
    ];
    let mut env = app.env_reader(&retention);
    let ingest = altdata_ingest::IngestSettings::from_env(&mut env);
    altdata_ingest::run_once(ingest, &[file.display().to_string()], Shutdown::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    wait_for(
        "the stream to expire every event",
        Duration::from_secs(30),
        || async {
            let mut stream = app
                .jetstream
                .get_stream(app.subjects.txn_stream_of(0))
                .await
                .ok()?;
            let state = stream.info().await.ok()?.state.clone();
            (state.messages == 0 && state.last_sequence > 0).then_some(())
        },
    )
    .await;

    // Every shard that had events refuses, loudly, and applies nothing.
    let exits = run_until_idle(settings(&app, &retention))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let refused: Vec<u32> = exits
        .iter()
        .filter(|(_, exit)| *exit == ShardExit::Refused)
        .map(|(shard, _)| *shard)
        .collect();
    assert!(!refused.is_empty(), "{exits:?}");
    let client = app.client().await;
    let applied: i64 = scalar(&client, "SELECT count(*) FROM agg_daily_merchant_spend").await;
    assert_eq!(applied, 0);

    // Recovery rebuilds each refused shard from the identity record; the aggregates then hold
    // exactly what ingest accepted (named and unattributed events; held rows stay held).
    for shard in &refused {
        altdata_aggregator::recover::recover_shard(settings(&app, &retention), *shard, None)
            .await
            .unwrap_or_else(|e| panic!("recover shard {shard}: {e}"));
    }
    let exits = run_until_idle(settings(&app, &retention))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        exits.iter().all(|(_, exit)| *exit != ShardExit::Refused),
        "{exits:?}"
    );
    let aggregated: i64 = scalar(
        &client,
        "SELECT sum(total_spend_cents)::bigint FROM agg_daily_merchant_spend",
    )
    .await;
    let accepted: i64 = scalar(
        &client,
        "SELECT sum(amount_cents)::bigint FROM txn_identity WHERE merchant_id IS NOT NULL",
    )
    .await;
    assert!(accepted > 0);
    assert_eq!(aggregated, accepted);
    let rollups: i64 = scalar(
        &client,
        "SELECT sum(total_spend_cents)::bigint FROM agg_monthly_category_region",
    )
    .await;
    assert_eq!(rollups, accepted);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn shards_spread_over_several_streams_aggregate_exactly() {
    let app = integration_tests::spawn_app_with_txn_streams(2).await;
    let streams = app.subjects.txn_streams();
    assert_eq!(streams.len(), 2);
    let events = random_events(2_000, 11, &[1, 2, 3, 4, 5, 6, 7, 8]);
    publish_events(&app, &events).await;
    // Each stream holds its own shards' subjects and messages, and only those.
    for (name, subjects) in &streams {
        let mut stream = app
            .jetstream
            .get_stream(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let info = stream.info().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&info.config.subjects, subjects);
        assert!(info.state.messages > 0, "{name} holds no batch");
    }
    run_until_idle(settings(&app, &[]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_aggregates_equal(&app, &expected(&events)).await;
}
