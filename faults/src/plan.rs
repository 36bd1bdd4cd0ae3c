//! The fault schedule: when files are dropped into the landing zone and which fault happens
//! when, all drawn from one seeded RNG so a failing seed can be replayed.

use crate::pipeline::Role;
use crate::servers::Stop;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    /// Bytes that are not a TransactionEvent.
    Garbage,
    /// A well-formed event of a schema version this build cannot read.
    FutureVersion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Start aggregator B on shards aggregator A also owns.
    SecondAggregator,
    /// SIGKILL a role (ingest right after a file drop, while it reads it), restart it later.
    Kill(Role),
    RestartNats(Stop),
    RestartPostgres(Stop),
    RestartRedis(Stop),
    /// Copy an already dropped file into the landing zone under another name.
    Redeliver,
    Poison(Poison),
    /// Drop the hostile provider's files (NUL bytes, card numbers, a gzip bomb, a file that
    /// fails, names with a newline or invalid UTF-8) into the landing zone.
    HostileProvider,
}

impl Fault {
    pub fn describe(self) -> String {
        match self {
            Fault::SecondAggregator => format!(
                "second aggregator on shards {} (also owned by aggregator-a)",
                crate::pipeline::AGG_B_SHARDS
            ),
            Fault::Kill(role) => format!("kill -9 {}", role.name()),
            Fault::RestartNats(how) => format!(
                "restart nats-server ({})",
                stop_word(how, "SIGKILL", "SIGTERM")
            ),
            Fault::RestartPostgres(how) => format!(
                "restart PostgreSQL ({})",
                stop_word(how, "immediate: SIGQUIT, crash recovery", "fast: SIGINT")
            ),
            Fault::RestartRedis(how) => format!(
                "restart redis-server ({})",
                stop_word(how, "SIGKILL", "SIGTERM")
            ),
            Fault::Redeliver => "re-deliver a file under another name".to_owned(),
            Fault::Poison(Poison::Garbage) => "publish garbage bytes to a shard subject".to_owned(),
            Fault::Poison(Poison::FutureVersion) => {
                "publish a schema_version 99 event to a shard subject".to_owned()
            }
            Fault::HostileProvider => {
                "drop the hostile provider's files (NUL bytes, card numbers, a gzip bomb, failing files, unlistable names)".to_owned()
            }
        }
    }
}

fn stop_word(how: Stop, kill: &'static str, graceful: &'static str) -> &'static str {
    match how {
        Stop::Kill => kill,
        Stop::Graceful => graceful,
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    /// Offset from the start of the fault phase.
    pub at: Duration,
    pub fault: Fault,
    /// How long the victim stays down (roles, servers).
    pub down: Duration,
    /// For ingest kills: delay after the next file drop.
    pub after_drop: Duration,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// When each staged file is moved into the landing zone.
    pub drops: Vec<Duration>,
    pub steps: Vec<Step>,
    /// The fault phase ends here (at the earliest).
    pub length: Duration,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn step(rng: &mut ChaCha8Rng, at: f64, fault: Fault) -> Step {
    let down = match fault {
        Fault::Kill(_) => rng.gen_range(0.2..2.5),
        Fault::RestartNats(_) | Fault::RestartPostgres(_) | Fault::RestartRedis(_) => {
            rng.gen_range(0.5..3.0)
        }
        _ => 0.0,
    };
    Step {
        at: secs(at),
        fault,
        down: secs(down),
        after_drop: secs(rng.gen_range(0.05..0.8)),
    }
}

/// Every kind of fault once (servers both ways in the full run), in random order.
fn one_of_each(rng: &mut ChaCha8Rng, full: bool) -> Vec<Fault> {
    let mut faults = vec![
        Fault::Kill(Role::Ingest),
        Fault::Kill(Role::AggregatorA),
        Fault::Kill(Role::Gateway),
        Fault::RestartNats(Stop::Kill),
        Fault::RestartPostgres(Stop::Kill),
        Fault::RestartRedis(Stop::Kill),
        Fault::Redeliver,
        Fault::Poison(Poison::Garbage),
        Fault::Poison(Poison::FutureVersion),
    ];
    if full {
        faults.extend([
            Fault::Kill(Role::AggregatorB),
            Fault::RestartNats(Stop::Graceful),
            Fault::RestartPostgres(Stop::Graceful),
            Fault::RestartRedis(Stop::Graceful),
        ]);
    }
    faults.shuffle(rng);
    faults
}

fn random_fault(rng: &mut ChaCha8Rng) -> Fault {
    let how = if rng.gen_bool(0.5) {
        Stop::Kill
    } else {
        Stop::Graceful
    };
    match rng.gen_range(0..100) {
        0..=21 => Fault::Kill(Role::Ingest),
        22..=33 => Fault::Kill(Role::AggregatorA),
        34..=41 => Fault::Kill(Role::AggregatorB),
        42..=49 => Fault::Kill(Role::Gateway),
        50..=59 => Fault::RestartNats(how),
        60..=69 => Fault::RestartPostgres(how),
        70..=76 => Fault::RestartRedis(how),
        77..=86 => Fault::Redeliver,
        87..=93 => Fault::Poison(Poison::Garbage),
        _ => Fault::Poison(Poison::FutureVersion),
    }
}

/// The hostile provider's files arrive early, at a fixed time and without drawing from the
/// RNG, so every seed's schedule of the other faults stays what it was.
fn hostile_step() -> Step {
    Step {
        at: secs(2.0),
        fault: Fault::HostileProvider,
        down: Duration::ZERO,
        after_drop: Duration::ZERO,
    }
}

/// The short plan: one kill of each role, one restart of each server, one of everything else,
/// six-ish files over ~25 s.
pub fn short(rng: &mut ChaCha8Rng, files: usize) -> Plan {
    let drops = (0..files).map(|i| secs(i as f64 * 4.0)).collect();
    let mut steps = vec![step(rng, 1.0, Fault::SecondAggregator), hostile_step()];
    for (i, fault) in one_of_each(rng, false).into_iter().enumerate() {
        let at = 2.5 + i as f64 * 3.0 + rng.gen_range(0.0..1.0);
        steps.push(step(rng, at, fault));
    }
    Plan {
        drops,
        steps,
        length: secs(files as f64 * 4.0),
    }
}

/// The full plan: files spread over the first three quarters of `duration`, a fault every
/// 3-7 s (every kind at least once), until `duration` minus a margin.
pub fn full(rng: &mut ChaCha8Rng, files: usize, duration: Duration) -> Plan {
    let total = duration.as_secs_f64().max(60.0);
    let spread = total * 0.75;
    let drops = (0..files)
        .map(|i| secs(i as f64 * spread / files.max(1) as f64))
        .collect();
    let mut steps = vec![step(rng, 1.0, Fault::SecondAggregator), hostile_step()];
    let mut at = 2.5;
    let mut mandatory = one_of_each(rng, true).into_iter();
    while at < total - 8.0 {
        let fault = mandatory.next().unwrap_or_else(|| random_fault(rng));
        steps.push(step(rng, at, fault));
        at += rng.gen_range(3.0..7.0);
    }
    // Whatever did not fit (a very short duration) still happens once.
    for fault in mandatory {
        steps.push(step(rng, at, fault));
        at += 3.0;
    }
    Plan {
        drops,
        steps,
        length: secs(total),
    }
}
