//! Small helpers: the run clock, progress lines, free ports, polling with deadlines, log tails.

use anyhow::{bail, Context};
use std::future::Future;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static START: OnceLock<Instant> = OnceLock::new();

/// Seconds since the suite started.
pub fn elapsed() -> f64 {
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Starts the run clock.
pub fn start_clock() {
    let _ = START.get_or_init(Instant::now);
}

/// A progress line, stamped with the run clock.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        println!("[faults {:>6.1}s] {}", $crate::util::elapsed(), format!($($arg)*))
    };
}

/// Ports the suite must never use: the machine's shared servers and `make stack`'s NATS.
const FORBIDDEN_PORTS: &[u16] = &[4222, 5432, 6379, 8222, 14222, 18222, 55432, 56379];

/// A free TCP port on 127.0.0.1, never one of the shared servers' ports nor one in `taken`.
pub fn free_port(taken: &[u16]) -> anyhow::Result<u16> {
    for _ in 0..100 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding port 0")?;
        let port = listener.local_addr()?.port();
        if !FORBIDDEN_PORTS.contains(&port) && !taken.contains(&port) {
            return Ok(port);
        }
    }
    bail!("no free port found")
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub async fn port_open(port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(("127.0.0.1", port))
        )
        .await,
        Ok(Ok(_))
    )
}

/// Polls `check` every `every` until it is true, or fails naming `what` after `deadline`.
pub async fn wait_until<F, Fut>(
    what: &str,
    deadline: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    loop {
        if check().await {
            return Ok(());
        }
        if Instant::now() >= until {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// The last `lines` lines of a log file (ANSI colour codes removed).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read(path) else {
        return format!("(no log at {})", path.display());
    };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|line| format!("    | {}", strip_ansi(line)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
