//! What a prefix holds on the shared servers (`altdata_common::prefixes`, behind
//! `altdata prefixes` and every clean-up): its streams are found by subject, with their
//! reservation, and removing the prefix deletes them and its Redis keys and nothing else.

use altdata_common::prefixes;
use altdata_common::Prefix;
use async_nats::jetstream::stream;
use fred::prelude::*;
use integration_tests::spawn_app;

#[tokio::test]
async fn a_prefix_is_listed_with_its_reservation_and_removed_with_its_keys() {
    let app = spawn_app().await;
    let js = &app.jetstream;
    // A stream whose name looks like the prefix's but whose subjects are another prefix's.
    let lookalike = Prefix::parse(&format!("{}_txn", app.prefix)).expect("prefix");
    js.create_stream(stream::Config {
        name: lookalike.stream("X"),
        subjects: vec![lookalike.subject("x.>")],
        max_bytes: 1024 * 1024,
        ..Default::default()
    })
    .await
    .expect("look-alike stream");

    let all = prefixes::list(js).await.expect("list");
    let mine = all
        .iter()
        .find(|p| p.prefix == app.prefix.as_str())
        .expect("the app's prefix is listed");
    let mut names: Vec<&str> = mine.streams.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            app.subjects.agg_stream().as_str(),
            app.subjects.cache_stream().as_str(),
            app.subjects.txn_stream_of(0).as_str()
        ]
    );
    // spawn_app's budget: 256 + 32 + 16 MiB.
    assert_eq!(mine.reserved_bytes(), 304 * 1024 * 1024);

    let redis =
        Builder::from_config(Config::from_url(&app.connections.redis_url).expect("REDIS_URL"))
            .build()
            .expect("client");
    redis.init().await.expect("Redis");
    let key = app.prefix.redis_key("{all}:gen");
    let () = redis.set(&key, 1, None, None, false).await.expect("SET");

    let removed = prefixes::remove_streams(js, &app.prefix).await;
    assert_eq!(removed.len(), 3, "{removed:?}");
    let keys = prefixes::remove_redis_keys(&app.connections.redis_url, &app.prefix)
        .await
        .expect("remove keys");
    assert_eq!(keys, 1);
    let exists: i64 = redis.exists(&key).await.expect("EXISTS");
    assert_eq!(exists, 0);

    let after = prefixes::list(js).await.expect("list");
    assert!(after.iter().all(|p| p.prefix != app.prefix.as_str()));
    assert!(
        after.iter().any(|p| p.prefix == lookalike.as_str()),
        "the look-alike prefix is untouched"
    );
    let _ = js.delete_stream(lookalike.stream("X")).await;
    let _ = redis.quit().await;
}
