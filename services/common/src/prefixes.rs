//! What each pipeline prefix holds on the shared servers, and its removal.
//!
//! A prefix (`ALTDATA_PREFIX`) owns the JetStream streams whose subjects all start with
//! `<prefix>.` and the Redis keys that start with `<prefix>:`. Streams are found by their
//! subjects, not their names: a prefix may contain `_`, so `T_TXN` could be prefix `t`'s
//! transaction stream or the start of prefix `t_txn`'s names, while subjects are separated by
//! dots, which a prefix never contains. The same rule therefore finds however many streams a
//! prefix has.
//!
//! Every stream reserves its `max_bytes` of the server's `max_file_store` when it is created
//! (on each server that holds a replica), whether or not it is ever filled: prefixes left
//! behind by interrupted tests or benchmarks keep that reservation until they are removed
//! (`altdata prefixes`, docs/SCALING.md).

use crate::settings::Prefix;
use async_nats::jetstream;
use futures::TryStreamExt;

/// One stream of a prefix, as the server reports it.
#[derive(Debug, Clone)]
pub struct StreamUsage {
    pub name: String,
    pub replicas: usize,
    /// The reservation on each server holding a replica (-1: unlimited, reserves nothing).
    pub max_bytes: i64,
    pub bytes: u64,
    pub messages: u64,
    /// Unix seconds of the stream's creation and of its last message (0 when empty).
    pub created: i64,
    pub last_message: i64,
}

/// The streams one prefix owns.
#[derive(Debug, Clone)]
pub struct PrefixStreams {
    pub prefix: String,
    pub streams: Vec<StreamUsage>,
}

impl PrefixStreams {
    /// Bytes reserved on each server that holds a replica of every stream.
    pub fn reserved_bytes(&self) -> i64 {
        self.streams.iter().map(|s| s.max_bytes.max(0)).sum()
    }

    /// Unix seconds of the latest activity: the last message, or the creation when none.
    pub fn last_activity(&self) -> i64 {
        self.streams
            .iter()
            .map(|s| s.last_message.max(s.created))
            .max()
            .unwrap_or(0)
    }
}

/// The prefix that owns a stream with these subjects: the first token, when every subject
/// starts with the same one.
pub fn owner(subjects: &[String]) -> Option<String> {
    let mut owners = subjects
        .iter()
        .map(|subject| subject.split('.').next().unwrap_or_default());
    let first = owners.next()?;
    (!first.is_empty() && owners.all(|other| other == first)).then(|| first.to_owned())
}

/// Every stream on the server, grouped by the prefix that owns it (by prefix name).
pub async fn list(js: &jetstream::Context) -> Result<Vec<PrefixStreams>, String> {
    let infos: Vec<jetstream::stream::Info> = js
        .streams()
        .try_collect()
        .await
        .map_err(|e| format!("cannot list streams: {e}"))?;
    let mut by_prefix: std::collections::BTreeMap<String, Vec<StreamUsage>> = Default::default();
    for info in infos {
        let prefix = owner(&info.config.subjects).unwrap_or_else(|| "(other)".to_owned());
        by_prefix.entry(prefix).or_default().push(StreamUsage {
            name: info.config.name.clone(),
            replicas: info.config.num_replicas,
            max_bytes: info.config.max_bytes,
            bytes: info.state.bytes,
            messages: info.state.messages,
            created: info.created.unix_timestamp(),
            last_message: if info.state.messages > 0 {
                info.state.last_timestamp.unix_timestamp()
            } else {
                0
            },
        });
    }
    Ok(by_prefix
        .into_iter()
        .map(|(prefix, mut streams)| {
            streams.sort_by(|a, b| a.name.cmp(&b.name));
            PrefixStreams { prefix, streams }
        })
        .collect())
}

/// Deletes every stream `prefix` owns; returns their names.
pub async fn remove_streams(js: &jetstream::Context, prefix: &Prefix) -> Vec<String> {
    let owned = match list(js).await {
        Ok(all) => all
            .into_iter()
            .filter(|p| p.prefix == prefix.as_str())
            .flat_map(|p| p.streams)
            .map(|s| s.name)
            .collect::<Vec<_>>(),
        Err(error) => {
            tracing::warn!(error, prefix = %prefix, "cannot list streams to remove");
            Vec::new()
        }
    };
    let mut removed = Vec::new();
    for name in owned {
        match js.delete_stream(&name).await {
            Ok(_) => removed.push(name),
            Err(error) => tracing::warn!(error = %error, stream = %name, "cannot delete stream"),
        }
    }
    removed
}

/// Deletes every Redis key of `prefix` (`<prefix>:*`), on a single server or on every master
/// of a Redis Cluster; returns how many were deleted.
pub async fn remove_redis_keys(redis_url: &str, prefix: &Prefix) -> Result<usize, String> {
    use fred::prelude::*;
    let config = Config::from_url(redis_url).map_err(|e| e.to_string())?;
    let clustered = config.server.is_clustered();
    let client = Builder::from_config(config)
        .build()
        .map_err(|e| e.to_string())?;
    client.init().await.map_err(|e| e.to_string())?;
    let pattern = format!("{}:*", prefix.as_str());
    let keys: Result<Vec<Key>, _> = if clustered {
        client
            .scan_cluster_buffered(pattern, Some(1000), None)
            .try_collect()
            .await
    } else {
        client
            .scan_buffered(pattern, Some(1000), None)
            .try_collect()
            .await
    };
    let keys = keys.map_err(|e| e.to_string())?;
    // One DEL per key, pipelined: a multi-key DEL across slots is refused by a cluster.
    let mut deleted = 0;
    for chunk in keys.chunks(500) {
        let pipeline = client.pipeline();
        for key in chunk {
            let () = pipeline.del(key.clone()).await.map_err(|e| e.to_string())?;
        }
        let counts: Vec<i64> = pipeline.all().await.map_err(|e| e.to_string())?;
        deleted += counts.iter().filter(|&&n| n > 0).count();
    }
    let _ = client.quit().await;
    Ok(deleted)
}

/// Removes everything `prefix` holds on NATS and Redis, best effort (for clean-ups that
/// must not fail): returns the streams deleted and the Redis keys deleted.
pub async fn remove(nats_url: &str, redis_url: &str, prefix: &Prefix) -> (Vec<String>, usize) {
    let streams = match async_nats::connect(crate::connect::nats_servers(nats_url).as_slice()).await
    {
        Ok(client) => remove_streams(&jetstream::new(client), prefix).await,
        Err(error) => {
            tracing::warn!(error = %error, prefix = %prefix, "cannot reach NATS to remove streams");
            Vec::new()
        }
    };
    let keys = remove_redis_keys(redis_url, prefix)
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(error, prefix = %prefix, "cannot remove Redis keys");
            0
        });
    (streams, keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_belongs_to_the_first_token_of_all_its_subjects() {
        let subjects = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(owner(&subjects(&["t_txn.txn.v1.>"])), Some("t_txn".into()));
        assert_eq!(
            owner(&subjects(&["t.cache.v1.invalidate"])),
            Some("t".into())
        );
        assert_eq!(owner(&subjects(&["a.x", "b.y"])), None);
        assert_eq!(owner(&subjects(&[])), None);
    }
}
