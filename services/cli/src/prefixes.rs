//! `altdata prefixes`: what each pipeline prefix reserves on the JetStream server, and the
//! removal of prefixes left behind (an interrupted test or benchmark keeps its streams, and
//! with them its reservation of the server's store).

use altdata_common::prefixes::{self, PrefixStreams};
use altdata_common::{connect, ConnectionSettings, Prefix};
use anyhow::{bail, Context};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MIB: f64 = 1024.0 * 1024.0;

/// Prints one line per prefix: streams, reservation, stored bytes, last activity.
pub async fn list(connections: &ConnectionSettings) -> anyhow::Result<()> {
    let client = connect::nats(&connections.nats_url).await?;
    let js = async_nats::jetstream::new(client);
    let all = prefixes::list(&js)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = unix_now();
    println!(
        "{:<24} {:>7} {:>14} {:>12} {:>12}  {:<14} streams",
        "prefix", "streams", "reserved MiB", "stored MiB", "messages", "idle"
    );
    for prefix in &all {
        let replicas = prefix.streams.iter().map(|s| s.replicas).max().unwrap_or(1);
        println!(
            "{:<24} {:>7} {:>14} {:>12.1} {:>12}  {:<14} {}",
            prefix.prefix,
            prefix.streams.len(),
            format!(
                "{:.0}{}",
                prefix.reserved_bytes() as f64 / MIB,
                if replicas > 1 {
                    format!(" xR{replicas}")
                } else {
                    String::new()
                }
            ),
            prefix.streams.iter().map(|s| s.bytes).sum::<u64>() as f64 / MIB,
            prefix.streams.iter().map(|s| s.messages).sum::<u64>(),
            humantime::format_duration(idle(prefix, now)).to_string(),
            prefix
                .streams
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    let reserved: i64 = all.iter().map(PrefixStreams::reserved_bytes).sum();
    println!(
        "{} prefixes reserve {:.0} MiB per server holding their replicas (a stream reserves its max_bytes when created)",
        all.len(),
        reserved as f64 / MIB
    );
    Ok(())
}

/// Removes the named prefixes, or with `leftovers_idle` every test (`t_…`) and benchmark
/// (`bench_…`) prefix idle at least that long: their streams and Redis keys. The prefix of
/// this environment (`ALTDATA_PREFIX`) is never removed.
pub async fn remove(
    connections: &ConnectionSettings,
    names: &[String],
    leftovers_idle: Option<Duration>,
) -> anyhow::Result<()> {
    let client = connect::nats(&connections.nats_url).await?;
    let js = async_nats::jetstream::new(client);
    let mut targets: Vec<Prefix> = names
        .iter()
        .map(|name| Prefix::parse(name).map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<anyhow::Result<_>>()?;
    if let Some(min_idle) = leftovers_idle {
        let now = unix_now();
        for prefix in prefixes::list(&js)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
        {
            if is_test_or_bench(&prefix.prefix) && idle(&prefix, now) >= min_idle {
                targets.push(Prefix::parse(&prefix.prefix).map_err(|e| anyhow::anyhow!("{e}"))?);
            }
        }
    }
    if targets.is_empty() {
        bail!("nothing to remove: name prefixes, or pass --leftovers");
    }
    for prefix in targets {
        if prefix == connections.prefix {
            eprintln!("{prefix}: skipped, it is this environment's ALTDATA_PREFIX");
            continue;
        }
        let streams = prefixes::remove_streams(&js, &prefix).await;
        let keys = prefixes::remove_redis_keys(&connections.redis_url, &prefix)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("Redis")?;
        println!(
            "{prefix}: removed {} stream(s) [{}] and {keys} Redis key(s)",
            streams.len(),
            streams.join(",")
        );
    }
    Ok(())
}

/// The names the test harness (`t_` + 10 letters) and the benchmark (`bench_` + 10
/// letters) give their prefixes.
fn is_test_or_bench(prefix: &str) -> bool {
    let random = |rest: &str| rest.len() == 10 && rest.bytes().all(|b| b.is_ascii_lowercase());
    prefix.strip_prefix("t_").is_some_and(random)
        || prefix.strip_prefix("bench_").is_some_and(random)
}

fn idle(prefix: &PrefixStreams, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(now - prefix.last_activity()).unwrap_or(0))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harness_names_count_as_leftovers() {
        assert!(is_test_or_bench("t_abcdefghij"));
        assert!(is_test_or_bench("bench_abcdefghij"));
        assert!(!is_test_or_bench("altdata"));
        assert!(!is_test_or_bench("t_short"));
        assert!(!is_test_or_bench("disc"));
    }
}
