//! The gateway's cache on a Redis Cluster. Opt-in: it runs when `REDIS_URL` is a
//! `redis-cluster://` URL, which `.stack/cluster.env` (written by `make cluster`) sets:
//!
//! ```text
//! make cluster
//! set -a; . .stack/env; . .stack/cluster.env; set +a
//! cargo test -p integration-tests --test redis_cluster --test gateway
//! ```
//!
//! Otherwise (`make test`, a single Redis) it prints why it skipped and passes. With those
//! variables the whole gateway suite also runs on the NATS cluster and the Redis Cluster.

use altdata_gateway::cache::{Cache, Dependency};
use altdata_proto::v1::CacheInvalidation;
use altdata_proto::SCHEMA_VERSION;
use axum::http::StatusCode;
use fred::prelude::*;
use fred::types::{ClusterHash, CustomCommand};
use futures::TryStreamExt;
use integration_tests::gateway::{spawn_gateway, GatewayApp};
use std::collections::{BTreeMap, BTreeSet};

const COFFEE: i64 = 101;
const COFFEE_2: i64 = 102;
const BURGER: i64 = 201;

/// The cluster URL, or `None` after printing why the test does not run.
fn cluster_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_default();
    if url.starts_with("redis-cluster://") || url.starts_with("rediss-cluster://") {
        Some(url)
    } else {
        eprintln!(
            "skipped: REDIS_URL is not a redis-cluster:// URL; run `make cluster` and \
             source .stack/cluster.env to run this test against the local Redis Cluster"
        );
        None
    }
}

async fn seeded(app: &GatewayApp) {
    app.merchant(COFFEE, "Blue Bean Coffee", "coffee_shop", "blue_bean")
        .await;
    app.merchant(COFFEE_2, "Daily Grind", "coffee_shop", "daily_grind")
        .await;
    app.merchant(BURGER, "Burger Barn", "fast_food", "burger_barn")
        .await;
    for day in ["2026-03-03", "2026-03-10"] {
        for merchant in [COFFEE, COFFEE_2, BURGER] {
            app.cell(merchant, "CA", day, 100_000, 40, 0, merchant * 100, 30, 3)
                .await;
        }
    }
}

async fn cluster_client(url: &str) -> Client {
    let client = Builder::from_config(Config::from_url(url).expect("cluster URL"))
        .build()
        .expect("client");
    client.init().await.expect("connect to the Redis Cluster");
    client
}

/// The hash slot Redis itself computes for `key` (`CLUSTER KEYSLOT`).
async fn slot_of(client: &Client, key: &str) -> i64 {
    client
        .custom(
            CustomCommand::new_static("CLUSTER", ClusterHash::Random, false),
            vec!["KEYSLOT", key],
        )
        .await
        .expect("CLUSTER KEYSLOT")
}

#[tokio::test]
async fn answers_share_their_generations_slot_and_invalidation_works_across_the_cluster() {
    let Some(url) = cluster_url() else {
        return;
    };
    let app = spawn_gateway(&[("REDIS_URL", url.as_str())]).await;
    seeded(&app).await;
    let prefix = app.state.inner.settings.connections.prefix.clone();
    let merchant =
        |id: i64| format!("/v1/timeseries?merchant={id}&state=CA&from=2026-03-01&to=2026-03-14");
    let category = "/v1/growth?category=coffee_shop&state=CA&as_of=2026-03-15";
    let everything = "/v1/top?by=growth&as_of=2026-03-15";
    let paths = [
        merchant(COFFEE),
        merchant(BURGER),
        category.to_owned(),
        everything.to_owned(),
    ];
    for path in &paths {
        let first = app.get(path).await;
        assert_eq!(first.status, StatusCode::OK, "{path}: {}", first.text());
        assert_eq!(first.header("x-cache"), Some("miss"), "{path}");
        assert_eq!(app.get(path).await.header("x-cache"), Some("hit"), "{path}");
    }

    // Every answer key is in the slot of its dependency's generation counter, and the four
    // dependencies use four slots.
    let client = cluster_client(&url).await;
    let keys: Vec<Key> = client
        .scan_cluster_buffered(format!("{}:*", prefix.as_str()), Some(1000), None)
        .try_collect()
        .await
        .expect("scan the cluster");
    let answers: Vec<String> = keys
        .iter()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .filter(|k| k.contains(":q:"))
        .collect();
    assert_eq!(answers.len(), paths.len(), "{answers:?}");
    let mut slots_by_dependency = BTreeMap::new();
    for dependency in [
        Dependency::Merchant(COFFEE),
        Dependency::Merchant(BURGER),
        Dependency::Category(altdata_domain::Category::parse("coffee_shop").expect("category")),
        Dependency::All,
    ] {
        let generation = Cache::generation_key(&prefix, &dependency);
        let tag = generation.trim_end_matches(":gen").to_owned();
        let answer = answers
            .iter()
            .find(|a| a.starts_with(&format!("{tag}:q:")))
            .unwrap_or_else(|| panic!("no answer under {tag} in {answers:?}"));
        let slot = slot_of(&client, &generation).await;
        assert_eq!(
            slot_of(&client, answer).await,
            slot,
            "{answer} vs {generation}"
        );
        slots_by_dependency.insert(tag, slot);
    }
    let distinct: BTreeSet<i64> = slots_by_dependency.values().copied().collect();
    assert_eq!(distinct.len(), 4, "{slots_by_dependency:?}");

    // An invalidation of one merchant (and its category) bumps counters on several nodes in
    // one pipeline: exactly the answers that depend on them miss.
    let invalidation = CacheInvalidation {
        schema_version: SCHEMA_VERSION,
        merchant_ids: vec![COFFEE],
        categories: vec!["coffee_shop".into()],
        ..Default::default()
    };
    let bumped = altdata_gateway::invalidation::generation_keys(&prefix, &invalidation);
    app.state
        .inner
        .cache_handle()
        .bump(&bumped)
        .await
        .expect("bump generations on the cluster");
    let after: Vec<Option<String>> = {
        let mut found = Vec::new();
        for path in &paths {
            found.push(app.get(path).await.header("x-cache").map(str::to_owned));
        }
        found
    };
    assert_eq!(
        after,
        vec![
            Some("miss".to_owned()), // COFFEE: its merchant counter moved
            Some("hit".to_owned()),  // BURGER: untouched
            Some("miss".to_owned()), // coffee_shop: its category counter moved
            Some("miss".to_owned()), // everything: gen:all moves with every invalidation
        ]
    );

    // An admin flush reaches every answer, whichever node holds it.
    let flush = app
        .admin_post("/v1/admin/cache/flush", serde_json::json!({}))
        .await;
    assert_eq!(flush.status, StatusCode::OK, "{}", flush.text());
    for path in &paths {
        assert_eq!(
            app.get(path).await.header("x-cache"),
            Some("miss"),
            "{path}"
        );
    }
    let _ = client.quit().await;
}
