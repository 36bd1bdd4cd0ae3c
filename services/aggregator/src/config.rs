//! Aggregator settings, read from the environment and validated once at start.

use altdata_common::{ConnectionSettings, EnvReader, SettingsError};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AggregatorSettings {
    pub connections: ConnectionSettings,
    /// The shards this instance consumes.
    pub shards: Vec<u32>,
    /// Flush when the window holds this many events...
    pub window_max_events: usize,
    /// ...or when its oldest event is this old.
    pub window_max_age: Duration,
    /// Messages (batches of events) requested from the server per pull.
    pub pull_batch: usize,
    /// How long an unacknowledged message waits before the server redelivers it. Must be longer
    /// than the slowest flush.
    pub ack_wait: Duration,
    /// How long the server keeps a shard pinned to a silent client before failing over.
    pub pin_ttl: Duration,
    /// Exit once every owned shard has caught up (`--until-idle`).
    pub until_idle: bool,
    /// Bound on the graceful drain at shutdown.
    pub drain_timeout: Duration,
    /// How often the writers' category rows are folded into one row per period
    /// (`compact.rs`); `None` (`0s`) leaves them to `altdata compact`.
    pub compact_interval: Option<Duration>,
    /// Health, readiness and metrics; `None` for no listener (tests, `demo`).
    pub ops_addr: Option<SocketAddr>,
    /// Names this instance in `shard_offsets.owner` and in logs.
    pub instance: String,
    /// Deliberate failures for tests; only in builds with the `fault-injection` feature.
    #[cfg(feature = "fault-injection")]
    pub faults: crate::faults::FaultInjection,
}

impl AggregatorSettings {
    pub fn from_env(env: &mut EnvReader) -> AggregatorSettings {
        let connections = ConnectionSettings::read(env);
        let shard_text = env.string("ALTDATA_AGG_SHARDS", "");
        let ordinal_text = env.string("ALTDATA_AGG_ORDINAL", "");
        let replicas = env.integer("ALTDATA_AGG_REPLICAS", 1u32, 1, 1024);
        let shards = if !shard_text.is_empty() {
            parse_shard_list(&shard_text, connections.shard_count).unwrap_or_else(|p| {
                env.problem(p);
                Vec::new()
            })
        } else if !ordinal_text.is_empty() {
            // In a StatefulSet the ordinal is the suffix of the pod name (`aggregator-2`).
            let ordinal = ordinal_text
                .rsplit('-')
                .next()
                .and_then(|o| o.parse::<u32>().ok());
            match ordinal {
                Some(ordinal) if ordinal < replicas => {
                    shards_for_ordinal(ordinal, replicas, connections.shard_count)
                }
                _ => {
                    env.problem(format!(
                        "ALTDATA_AGG_ORDINAL={ordinal_text:?} is not valid: expected a pod name ending in an ordinal below ALTDATA_AGG_REPLICAS={replicas}"
                    ));
                    Vec::new()
                }
            }
        } else {
            (0..connections.shard_count).collect()
        };
        let ops_addr = env.string("ALTDATA_AGG_OPS_ADDR", "");
        let ops_addr = if ops_addr.is_empty() {
            None
        } else {
            ops_addr.parse().map(Some).unwrap_or_else(|_| {
                env.problem(format!(
                    "ALTDATA_AGG_OPS_ADDR={ops_addr:?} is not valid: expected host:port"
                ));
                None
            })
        };
        AggregatorSettings {
            shards,
            window_max_events: env.integer("ALTDATA_AGG_WINDOW_EVENTS", 50_000usize, 1, 1_000_000),
            window_max_age: env.duration("ALTDATA_AGG_WINDOW_AGE", Duration::from_secs(1)),
            pull_batch: env.integer("ALTDATA_AGG_PULL_BATCH", 256usize, 1, 100_000),
            ack_wait: env.duration("ALTDATA_AGG_ACK_WAIT", Duration::from_secs(60)),
            pin_ttl: env.duration("ALTDATA_AGG_PIN_TTL", Duration::from_secs(3)),
            until_idle: false,
            drain_timeout: env.duration("ALTDATA_DRAIN_TIMEOUT", Duration::from_secs(20)),
            compact_interval: Some(
                env.duration("ALTDATA_AGG_COMPACT_INTERVAL", Duration::from_secs(60)),
            )
            .filter(|interval| !interval.is_zero()),
            ops_addr,
            instance: env.string("HOSTNAME", "aggregator"),
            #[cfg(feature = "fault-injection")]
            faults: crate::faults::FaultInjection::from_env(env),
            connections,
        }
    }
}

/// Parses `0-7`, `3`, or `0-3,8,10-11` into shard numbers below `shard_count`.
pub fn parse_shard_list(text: &str, shard_count: u32) -> Result<Vec<u32>, String> {
    let mut shards = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let range: RangeInclusive<u32> = match part.split_once('-') {
            Some((a, b)) => match (a.trim().parse(), b.trim().parse()) {
                (Ok(a), Ok(b)) if a <= b => a..=b,
                _ => {
                    return Err(format!(
                        "shard range {part:?} is not valid: expected e.g. 0-7"
                    ))
                }
            },
            None => match part.parse() {
                Ok(n) => n..=n,
                Err(_) => return Err(format!("shard {part:?} is not a number")),
            },
        };
        if *range.end() >= shard_count {
            return Err(format!(
                "shard {} is out of range: this deployment has {shard_count} shards (0-{})",
                range.end(),
                shard_count - 1
            ));
        }
        shards.extend(range);
    }
    shards.sort_unstable();
    shards.dedup();
    if shards.is_empty() {
        return Err("the shard list is empty".to_owned());
    }
    Ok(shards)
}

/// Shards of one StatefulSet replica: every `replicas`-th shard starting at its ordinal.
pub fn shards_for_ordinal(ordinal: u32, replicas: u32, shard_count: u32) -> Vec<u32> {
    (0..shard_count)
        .filter(|s| s % replicas == ordinal)
        .collect()
}

pub type SettingsResult = Result<AggregatorSettings, SettingsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_lists_accept_ranges_and_singles() {
        assert_eq!(parse_shard_list("0-3,8", 16), Ok(vec![0, 1, 2, 3, 8]));
        assert!(parse_shard_list("12-20", 16).is_err());
        assert!(parse_shard_list("x", 16).is_err());
    }

    #[test]
    fn ordinals_split_shards_without_overlap() {
        let all: Vec<u32> = (0..3).flat_map(|o| shards_for_ordinal(o, 3, 16)).collect();
        assert_eq!(all.len(), 16);
    }
}
