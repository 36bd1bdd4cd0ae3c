//! Carrying out one step of the plan against the harness, and checking the victim came back.

use crate::harness::Harness;
use crate::pipeline::{Role, SHARDS};
use crate::plan::{Fault, Step};
use crate::poison::{self, Published};
use crate::say;
use anyhow::Context;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::watch;

/// What happened to one injected fault.
#[derive(Debug, Clone)]
pub struct Injected {
    pub at: f64,
    pub fault: Fault,
    pub survived: bool,
    pub note: String,
}

/// State the injector shares with the file dropper.
pub struct Shared {
    pub dropped: Rc<RefCell<Vec<PathBuf>>>,
    pub drops: watch::Receiver<usize>,
    pub poison: Vec<Published>,
    pub redeliveries: usize,
    /// The hostile provider's staged files.
    pub hostile: crate::hostile::Hostile,
}

pub async fn inject(
    harness: &mut Harness,
    step: &Step,
    shared: &mut Shared,
    rng: &mut ChaCha8Rng,
) -> Injected {
    let at = crate::util::elapsed();
    let result = run(harness, step, shared, rng).await;
    let (survived, note) = match result {
        Ok(note) => (true, note),
        Err(error) => (false, format!("{error:#}")),
    };
    let mark = if survived { "ok" } else { "NOT RECOVERED" };
    say!("  -> {mark}: {note}");
    Injected {
        at,
        fault: step.fault,
        survived,
        note,
    }
}

async fn run(
    harness: &mut Harness,
    step: &Step,
    shared: &mut Shared,
    rng: &mut ChaCha8Rng,
) -> anyhow::Result<String> {
    match step.fault {
        Fault::SecondAggregator => {
            say!("FAULT {}", step.fault.describe());
            let pid = harness.pipeline.start(Role::AggregatorB)?;
            role_up(harness, Role::AggregatorB).await?;
            Ok(format!("aggregator-b running (pid {pid})"))
        }
        Fault::Kill(role) => {
            if role == Role::Ingest {
                // Aim at the interesting moment: ingest reading a file it just found.
                let mut drops = shared.drops.clone();
                drops.borrow_and_update();
                let _ = tokio::time::timeout(Duration::from_secs(10), drops.changed()).await;
                tokio::time::sleep(step.after_drop).await;
            }
            if !harness.pipeline.is_running(role) {
                harness.pipeline.start(role)?;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let pid = harness.pipeline.pid(role).unwrap_or(0);
            say!(
                "FAULT {} (pid {pid}), down for {:.1}s",
                step.fault.describe(),
                step.down.as_secs_f64()
            );
            let status = harness.pipeline.kill(role).await;
            tokio::time::sleep(step.down).await;
            let pid = harness.pipeline.start(role)?;
            role_up(harness, role).await?;
            Ok(format!(
                "{} killed ({}), restarted as pid {pid}",
                role.name(),
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "was not running".into())
            ))
        }
        Fault::RestartNats(how) => {
            say!(
                "FAULT {}, down for {:.1}s",
                step.fault.describe(),
                step.down.as_secs_f64()
            );
            let nats = harness
                .nats
                .as_mut()
                .context("no nats-server of the suite's own")?;
            nats.stop(how).await;
            tokio::time::sleep(step.down).await;
            nats.start().await?;
            Ok("nats-server back, JetStream healthy".into())
        }
        Fault::RestartPostgres(how) => {
            say!(
                "FAULT {}, down for {:.1}s",
                step.fault.describe(),
                step.down.as_secs_f64()
            );
            harness.postgres.stop(how).await;
            tokio::time::sleep(step.down).await;
            harness.postgres.start().await?;
            Ok("PostgreSQL back, accepting connections".into())
        }
        Fault::RestartRedis(how) => {
            say!(
                "FAULT {}, down for {:.1}s",
                step.fault.describe(),
                step.down.as_secs_f64()
            );
            let redis = harness
                .redis
                .as_mut()
                .context("no redis-server of the suite's own")?;
            redis.stop(how).await;
            tokio::time::sleep(step.down).await;
            redis.start().await?;
            Ok("redis-server back (empty: no persistence)".into())
        }
        Fault::Redeliver => {
            let dropped = shared.dropped.borrow().clone();
            if dropped.is_empty() {
                anyhow::bail!("no file dropped yet to re-deliver");
            }
            let source = &dropped[rng.gen_range(0..dropped.len())];
            shared.redeliveries += 1;
            let stem = source
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("file.csv")
                .trim_end_matches(".csv");
            let dir = source.parent().map(PathBuf::from).unwrap_or_default();
            let name = format!("{stem}-redelivered-{}.csv", shared.redeliveries);
            say!(
                "FAULT {}: {} as {name}",
                step.fault.describe(),
                source.display()
            );
            // Copy under a hidden name (ingest skips dot files), then rename into view.
            let hidden = dir.join(format!(".{name}.partial"));
            std::fs::copy(source, &hidden)?;
            std::fs::rename(&hidden, dir.join(&name))?;
            Ok(format!("{name} is in the landing zone"))
        }
        Fault::HostileProvider => {
            say!("FAULT {}", step.fault.describe());
            let moved = shared.hostile.drop_into(&harness.landing)?;
            Ok(format!("{moved} files in provider=hostile/"))
        }
        Fault::Poison(kind) => {
            let shard = rng.gen_range(0..SHARDS);
            let n = shared.poison.len() + 1;
            say!("FAULT {} (shard {shard})", step.fault.describe());
            let published =
                poison::publish(&harness.jetstream, &harness.pipeline.prefix, kind, shard, n)
                    .await?;
            let note = format!(
                "stored at stream seq {} on {}",
                published.seq, published.subject
            );
            shared.poison.push(published);
            Ok(note)
        }
    }
}

/// The role's process is alive a moment after its start (and the gateway answers).
async fn role_up(harness: &mut Harness, role: Role) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(700)).await;
    if !harness.pipeline.is_running(role) {
        anyhow::bail!(
            "{} exited right after its restart:\n{}",
            role.name(),
            crate::util::tail(&harness.pipeline.log(role), 15)
        );
    }
    if role == Role::Gateway {
        let port = harness.pipeline.http_port;
        crate::util::wait_until(
            "the gateway's /healthz",
            Duration::from_secs(30),
            Duration::from_millis(100),
            || async move {
                crate::http::get(port, "/healthz", &[], Duration::from_secs(1))
                    .await
                    .is_ok_and(|r| r.status == 200)
            },
        )
        .await?;
    }
    Ok(())
}
