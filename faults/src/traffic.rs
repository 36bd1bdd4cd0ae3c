//! Load during the fault phase: provider files moved into the landing zone over time, and
//! analysts' queries against the gateway (which also fill the cache with answers that later
//! flushes must invalidate).

use crate::http;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The staged provider files, in day order.
pub fn staged_files(staging: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = staging.join("provider=default");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".csv") || n.ends_with(".csv.gz"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Moves each staged file into the landing zone at its time (a rename: ingest never sees a
/// half-written file), announcing the count of dropped files.
pub async fn drop_files(
    files: Vec<PathBuf>,
    landing: PathBuf,
    times: Vec<Duration>,
    started: Instant,
    dropped: Rc<RefCell<Vec<PathBuf>>>,
    announce: watch::Sender<usize>,
) -> anyhow::Result<()> {
    let target_dir = landing.join("provider=default");
    for (i, (file, at)) in files.into_iter().zip(times).enumerate() {
        tokio::time::sleep_until((started + at).into()).await;
        let name = file.file_name().map(|n| n.to_owned()).unwrap_or_default();
        let target = target_dir.join(&name);
        std::fs::rename(&file, &target)?;
        crate::say!(
            "dropped file {} of the landing zone: {}",
            i + 1,
            name.to_string_lossy()
        );
        dropped.borrow_mut().push(target);
        let _ = announce.send(i + 1);
    }
    Ok(())
}

/// What a gateway answer is about.
#[derive(Debug, Clone)]
pub enum Target {
    Merchant(i64),
    Category(String),
    All,
}

impl Target {
    pub fn query(&self, metric: &str, from: &str, to: &str) -> String {
        let scope = match self {
            Target::Merchant(id) => format!("&merchant={id}"),
            Target::Category(c) => format!("&category={c}"),
            Target::All => String::new(),
        };
        format!("/v1/timeseries?metric={metric}&granularity=day&from={from}&to={to}{scope}")
    }
}

#[derive(Debug, Default)]
pub struct ProbeStats {
    /// X-Cache value (or "error") -> count.
    pub outcomes: BTreeMap<String, u64>,
}

/// Asks the gateway the targets' questions round-robin until `stop` turns true.
pub async fn probe_gateway(
    port: u16,
    key: String,
    paths: Vec<String>,
    mut stop: watch::Receiver<bool>,
    stats: Rc<RefCell<ProbeStats>>,
) {
    let auth = format!("Bearer {key}");
    let mut i = 0usize;
    while !*stop.borrow() {
        if let Some(path) = paths.get(i % paths.len().max(1)) {
            let outcome = match http::get(
                port,
                path,
                &[("Authorization", auth.as_str())],
                Duration::from_secs(5),
            )
            .await
            {
                Ok(r) if r.status == 200 => r.header("x-cache").to_owned(),
                Ok(r) => format!("http {}", r.status),
                Err(_) => "unreachable".to_owned(),
            };
            *stats.borrow_mut().outcomes.entry(outcome).or_default() += 1;
        }
        i += 1;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(400)) => {}
            _ = stop.changed() => {}
        }
    }
}
