//! Settings of a run: `--short`, `FAULTS_SEED`, `FAULTS_DURATION`, `FAULTS_DAYS`,
//! `FAULTS_CARDS`, `FAULTS_KEEP`.

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub short: bool,
    /// The cluster run (`--cluster`): the local cluster's servers, three kills with failover times.
    pub cluster: bool,
    pub seed: u64,
    /// Length of the fault phase (full mode).
    pub duration: Duration,
    pub days: u32,
    pub cards: u64,
    /// The repository root (has .stack/venv/bin/nats-server, profiles/ and web/dist).
    pub repo: PathBuf,
    /// The `altdata` binary the roles run as (`ALTDATA_BIN`, default target/release/altdata).
    pub altdata: PathBuf,
}

const USAGE: &str = "usage: altdata-faults [--short | --cluster]

Runs the whole pipeline as child processes of `altdata` against its own
nats-server, PostgreSQL and Redis, injects faults, then checks every guarantee.

  --short            one kill of each role, one restart of each server (~60-90 s)
  --cluster          on the local cluster (`make cluster`, .stack/cluster.env): shards over
                     3 R3 streams, 2 aggregators, 2 gateways on Redis Cluster; kills the
                     nats-server leading a stream, a Redis master and an aggregator, restarts
                     each, prints the failover times (`make cluster-test`, ~3-5 min)
  FAULTS_SEED=N      replay a run (default: random, printed)
  FAULTS_DURATION=D  fault phase of the full run, e.g. 240s or 4m (default 4m)
  FAULTS_DAYS=N      days of generated data (default 6 short, 12 full)
  FAULTS_CARDS=N     cards of generated data (default 4000 short, 6000 full)
  FAULTS_KEEP=1      keep the run's temp dir (logs, data) afterwards
  ALTDATA_BIN=PATH   the altdata binary (default target/release/altdata)";

fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .with_context(|| format!("FAULTS_DURATION={text:?}: expected e.g. 240s or 4m"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => bail!("FAULTS_DURATION={text:?}: expected e.g. 240s or 4m"),
    })
}

fn env_number<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={text:?} is not a number")),
        _ => Ok(None),
    }
}

impl Settings {
    pub fn read() -> anyhow::Result<Settings> {
        let mut short = false;
        let mut cluster = false;
        for arg in std::env::args().skip(1) {
            match arg.as_str() {
                "--short" => short = true,
                "--cluster" => cluster = true,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        if short && cluster {
            bail!("--short and --cluster are two different runs: choose one\n{USAGE}");
        }
        // The cluster run is as small as the short one: its point is the failovers.
        let small = short || cluster;
        let seed = match env_number::<u64>("FAULTS_SEED")? {
            Some(seed) => seed,
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(7);
                (nanos ^ u64::from(std::process::id()).rotate_left(32)) % 1_000_000
            }
        };
        let duration = match std::env::var("FAULTS_DURATION") {
            Ok(text) if !text.trim().is_empty() => parse_duration(&text)?,
            _ => Duration::from_secs(240),
        };
        if duration < Duration::from_secs(30) {
            bail!("FAULTS_DURATION must be at least 30s");
        }
        let repo = match std::env::var("FAULTS_REPO") {
            Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => std::env::current_dir()?,
        };
        let repo = std::path::absolute(repo)?;
        let altdata = match std::env::var("ALTDATA_BIN") {
            Ok(path) if !path.is_empty() => std::path::absolute(path)?,
            _ => repo.join("target/release/altdata"),
        };
        if !altdata.is_file() {
            bail!(
                "no altdata binary at {} (build it, or set ALTDATA_BIN)",
                altdata.display()
            );
        }
        Ok(Settings {
            short,
            cluster,
            seed,
            duration,
            days: env_number("FAULTS_DAYS")?.unwrap_or(if small { 6 } else { 12 }),
            cards: env_number("FAULTS_CARDS")?.unwrap_or(if small { 4000 } else { 6000 }),
            repo,
            altdata,
        })
    }
}
