//! The machine and the versions a result was measured on.

use crate::sandbox::{pg_connect, Servers};
use serde::Serialize;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub memory_gib: f64,
    pub cpu_model: String,
    pub kernel: String,
    pub loadavg_at_start: String,
    pub loadavg_at_end: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Versions {
    pub rustc: String,
    pub nats_server: String,
    pub nats_sync_interval: String,
    pub postgresql: String,
    pub hll: String,
    pub redis: String,
    pub git_commit: String,
    pub git_dirty_files: usize,
    pub duckdb: String,
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

pub fn machine() -> Machine {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        cpu_model,
        kernel: command_output("uname", &["-r"]),
        loadavg_at_start: loadavg(),
        loadavg_at_end: String::new(),
    }
}

pub async fn versions(servers: &Servers, nats: &async_nats::Client) -> Versions {
    let mut versions = Versions {
        rustc: command_output("rustc", &["--version"]),
        nats_server: nats.server_info().version,
        git_commit: command_output("git", &["rev-parse", "--short=12", "HEAD"]),
        git_dirty_files: command_output("git", &["status", "--porcelain"])
            .lines()
            .filter(|l| !l.is_empty())
            .count(),
        ..Versions::default()
    };
    versions.nats_sync_interval = nats_sync_interval().await;
    if let Ok(client) = pg_connect(&servers.admin_url()).await {
        if let Ok(row) = client.query_one("SHOW server_version", &[]).await {
            versions.postgresql = row.get(0);
        }
        if let Ok(row) = client
            .query_one(
                "SELECT coalesce(default_version, '') FROM pg_available_extensions WHERE name = 'hll'",
                &[],
            )
            .await
        {
            versions.hll = row.get(0);
        }
    }
    versions.redis = redis_version(&servers.redis_url)
        .await
        .unwrap_or_else(|| "unknown".to_owned());
    versions
}

/// JetStream's fsync interval from the monitoring endpoint of `make stack`'s server.
async fn nats_sync_interval() -> String {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    else {
        return "unknown".to_owned();
    };
    let Ok(response) = client.get("http://127.0.0.1:18222/varz").send().await else {
        return "unknown".to_owned();
    };
    let Ok(text) = response.text().await else {
        return "unknown".to_owned();
    };
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    match value["jetstream"]["config"]["sync_interval"].as_f64() {
        Some(ns) => format!("{}s", ns / 1e9),
        None => "default (2m)".to_owned(),
    }
}

/// `redis_version` from `INFO server`, over a plain connection.
async fn redis_version(url: &str) -> Option<String> {
    let authority = url.split("://").nth(1)?.split('/').next()?;
    let authority = authority.rsplit('@').next()?;
    let mut stream = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(authority),
    )
    .await
    .ok()?
    .ok()?;
    stream.write_all(b"INFO server\r\n").await.ok()?;
    let mut buffer = vec![0u8; 16 * 1024];
    let mut filled = 0;
    while filled < buffer.len() {
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer[filled..]))
            .await
            .ok()?
            .ok()?;
        if read == 0 {
            break;
        }
        filled += read;
        let text = String::from_utf8_lossy(&buffer[..filled]);
        if let Some(line) = text.lines().find(|l| l.starts_with("redis_version:")) {
            if text.contains("\r\n\r\n") || text.matches("\r\n").count() > 5 {
                return Some(line.trim_start_matches("redis_version:").trim().to_owned());
            }
        }
    }
    None
}
