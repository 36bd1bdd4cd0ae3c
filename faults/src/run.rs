//! The phases of a run: set up, fault phase, settle, check. Returns the report; the harness
//! (children, servers, temp dir) is dropped before this returns, whatever happened.

use crate::checks;
use crate::config::Settings;
use crate::harness::Harness;
use crate::inject::{self, Shared};
use crate::pipeline::Role;
use crate::plan;
use crate::report::Report;
use crate::say;
use crate::traffic::{self, ProbeStats, Target};
use anyhow::Context;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub async fn run(settings: &Settings) -> Report {
    let mut report = Report::default();
    let mut harness: Option<Harness> = None;
    let result = if settings.cluster {
        crate::cluster::phases(settings, &mut report, &mut harness).await
    } else {
        phases(settings, &mut report, &mut harness).await
    };
    if let Err(error) = result {
        say!("run failed: {error:#}");
        if let Some(harness) = &harness {
            harness.print_tails(
                &[
                    "ingest",
                    "aggregator-a",
                    "aggregator-b",
                    "gateway",
                    "gateway-b",
                    "nats-server",
                    "postgres",
                ],
                25,
            );
        }
        report.aborted = Some(format!("{error:#}"));
    }
    if let Some(mut harness) = harness.take() {
        // Graceful stop first (flush and ack), so a role that hangs on SIGTERM is noticed.
        for role in Harness::all_roles().into_iter().rev() {
            if harness.pipeline.is_running(role) {
                let started = Instant::now();
                let status = harness
                    .pipeline
                    .terminate(role, Duration::from_secs(25))
                    .await;
                if !status.is_some_and(|s| s.success()) {
                    report.notes.push(format!(
                        "{} did not stop cleanly on SIGTERM ({:?} after {:.1}s)",
                        role.name(),
                        status,
                        started.elapsed().as_secs_f64()
                    ));
                }
            }
        }
        if settings.cluster {
            crate::cluster::clean_up(&harness, &settings.repo).await;
        }
        drop(harness);
        say!("cleaned up: children and servers stopped");
    }
    report
}

async fn phases(
    settings: &Settings,
    report: &mut Report,
    slot: &mut Option<Harness>,
) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    say!(
        "seed {} ({} run), {} days x {} cards",
        settings.seed,
        if settings.short { "short" } else { "full" },
        settings.days,
        settings.cards
    );
    let setup_started = Instant::now();
    let harness =
        slot.insert(Harness::start(&settings.repo, &settings.altdata, settings.seed).await?);

    // Data: generated into staging, moved into the landing zone over time.
    let staging = harness.staging.display().to_string();
    harness
        .pipeline
        .run(
            &[
                "generate",
                "--days",
                &settings.days.to_string(),
                "--cards",
                &settings.cards.to_string(),
                "--seed",
                &settings.seed.to_string(),
                "--out",
                &staging,
                "--truth-detail",
                // Corrected re-sends, interleaved with the kills like every other file.
                "--resends",
                &(settings.days / 3).max(1).to_string(),
            ],
            "generate.log",
        )
        .await?;
    let mut summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(harness.staging.join("_truth/summary.json")).context("summary.json")?,
    )?;
    let files = traffic::staged_files(&harness.staging)?;
    say!(
        "generated {} rows in {} files: {} valid, {} broken, {} duplicates; re-sends restate {} (corrected {}, retracted {})",
        summary["rows"],
        files.len(),
        summary["valid_rows"],
        summary["broken_rows"],
        summary["duplicate_rows"],
        summary["restated_days"],
        summary["corrected_rows"],
        summary["retracted_rows"]
    );
    let targets = targets(&harness.staging, &mut rng)?;
    let start = summary["start"].as_str().unwrap_or("2025-01-01").to_owned();
    let hostile = crate::hostile::stage(
        &harness.dir.path.join("hostile"),
        chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d")? + chrono::Duration::days(1),
        if settings.short { 100 } else { 400 },
    )?;
    let expected = hostile.expected;
    add_to_truth(&mut summary, &expected);
    say!(
        "hostile provider staged: {} rows ({} valid, {} rejected), {} files to finish, {} to fail, 2 unlistable names",
        expected.rows,
        expected.valid_rows,
        expected.rejected,
        expected.done_files,
        expected.failed_files
    );
    let from = chrono::NaiveDate::parse_from_str(&start, "%Y-%m-%d")? - chrono::Duration::days(7);
    let from = from.format("%Y-%m-%d").to_string();
    let to = (chrono::Utc::now().date_naive() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();

    for role in [Role::Ingest, Role::AggregatorA, Role::Gateway] {
        let pid = harness.pipeline.start(role)?;
        say!("started {} (pid {pid})", role.name());
    }
    let port = harness.pipeline.http_port;
    crate::util::wait_until(
        "the gateway",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async move {
            crate::http::get(port, "/healthz", &[], Duration::from_secs(1))
                .await
                .is_ok_and(|r| r.status == 200)
        },
    )
    .await?;
    report
        .timings
        .push(("setup", setup_started.elapsed().as_secs_f64()));

    // ---------------------------------------------------------------- fault phase
    let plan = if settings.short {
        plan::short(&mut rng, files.len())
    } else {
        plan::full(&mut rng, files.len(), settings.duration)
    };
    say!(
        "fault phase: {} files over {:.0}s, {} faults planned",
        files.len(),
        plan.drops.last().map(|d| d.as_secs_f64()).unwrap_or(0.0),
        plan.steps.len()
    );
    let phase_started = Instant::now();
    let dropped = Rc::new(RefCell::new(Vec::new()));
    let (drop_tx, drop_rx) = watch::channel(0usize);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Rc::new(RefCell::new(ProbeStats::default()));
    let probe_paths: Vec<String> = targets
        .iter()
        .flat_map(|t| {
            [
                t.query("spend", &from, &to),
                t.query("transactions", &from, &to),
            ]
        })
        .collect();
    let mut shared = Shared {
        dropped: dropped.clone(),
        drops: drop_rx,
        poison: Vec::new(),
        redeliveries: 0,
        hostile,
    };
    let dropper = traffic::drop_files(
        files.clone(),
        harness.landing.clone(),
        plan.drops.clone(),
        phase_started,
        dropped,
        drop_tx,
    );
    let prober = traffic::probe_gateway(
        port,
        harness.api_key.clone(),
        probe_paths,
        stop_rx,
        stats.clone(),
    );
    let injector = async {
        let mut injected = Vec::new();
        for step in &plan.steps {
            supervise_until(harness, phase_started + step.at).await;
            injected.push(inject::inject(harness, step, &mut shared, &mut rng).await);
        }
        supervise_until(harness, phase_started + plan.length).await;
        let _ = stop_tx.send(true);
        injected
    };
    let (dropped_result, (), injected) = tokio::join!(dropper, prober, injector);
    dropped_result.context("dropping files")?;
    report.injected = injected;
    report
        .timings
        .push(("fault phase", phase_started.elapsed().as_secs_f64()));
    let outcomes = stats.borrow().outcomes.clone();
    report.notes.push(format!(
        "gateway answers during the fault phase (X-Cache or error): {outcomes:?}"
    ));

    // ---------------------------------------------------------------- settle
    let settle_started = Instant::now();
    say!("faults stopped; waiting for the pipeline to settle");
    let deadline = Duration::from_secs(if settings.short { 90 } else { 180 });
    let expect_files = crate::settle::Files {
        done: files.len() + expected.done_files,
        failed: expected.failed_files,
    };
    let status = crate::settle::settle(harness, expect_files, shared.poison.len(), deadline).await;
    report
        .timings
        .push(("settle", settle_started.elapsed().as_secs_f64()));
    status?;
    say!("settled in {:.1}s", settle_started.elapsed().as_secs_f64());

    // ---------------------------------------------------------------- checks
    let checks_started = Instant::now();
    let stream = checks::read_stream(harness, &shared.poison).await?;
    let mut results = checks::check_all(harness, &summary, &shared.poison, &stream).await?;
    let port = harness.pipeline.http_port;
    results.push(checks::check_gateway(harness, port, &targets, &from, &to).await?);
    results.extend(crate::hostile::check(harness, &stream).await?);
    report
        .timings
        .push(("checks", checks_started.elapsed().as_secs_f64()));
    report.timings.push(("total", crate::util::elapsed()));
    let failed_any = results.iter().any(|c| !c.ok);
    report.checks = results;
    for exit in &harness.pipeline.unexpected_exits {
        report.notes.push(format!("unexpected exit: {exit}"));
    }
    report.notes.push(format!(
        "{} re-deliveries, {} poison messages, {} role restarts in all",
        shared.redeliveries,
        shared.poison.len(),
        harness
            .pipeline
            .procs
            .values()
            .map(|p| p.starts.saturating_sub(1))
            .sum::<u32>()
    ));
    if failed_any {
        harness.print_tails(&["ingest", "aggregator-a", "aggregator-b", "gateway"], 30);
    }
    Ok(())
}

/// The hostile provider's rows join the generator's ground truth: the checks count them like
/// every other row.
fn add_to_truth(summary: &mut serde_json::Value, expected: &crate::hostile::Expected) {
    for (key, add) in [
        ("rows", expected.rows),
        ("valid_rows", expected.valid_rows),
        ("broken_rows", expected.rejected),
        ("valid_net_cents", expected.valid_net_cents),
    ] {
        summary[key] = (summary[key].as_i64().unwrap_or(0) + add).into();
    }
}

/// Sleeps until `until`, restarting any role that died on its own meanwhile.
async fn supervise_until(harness: &mut Harness, until: Instant) {
    loop {
        harness.pipeline.supervise();
        let now = Instant::now();
        if now >= until {
            return;
        }
        tokio::time::sleep((until - now).min(Duration::from_millis(250))).await;
    }
}

/// What the gateway is asked: the three biggest merchants of the ground truth and a random
/// one, two categories, and everything.
pub(crate) fn targets(staging: &Path, rng: &mut ChaCha8Rng) -> anyhow::Result<Vec<Target>> {
    let text = std::fs::read_to_string(staging.join("_truth/ground_truth.csv"))?;
    let mut gross: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if let (Some(id), Some(cents)) = (fields.get(1), fields.get(4)) {
            if let (Ok(id), Ok(cents)) = (id.parse::<i64>(), cents.parse::<i64>()) {
                *gross.entry(id).or_default() += cents;
            }
        }
    }
    let mut ranked: Vec<(i64, i64)> = gross.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut targets: Vec<Target> = ranked
        .iter()
        .take(3)
        .map(|(id, _)| Target::Merchant(*id))
        .collect();
    if ranked.len() > 3 {
        targets.push(Target::Merchant(ranked[rng.gen_range(3..ranked.len())].0));
    }
    targets.push(Target::Category("coffee_shop".into()));
    targets.push(Target::Category("grocery".into()));
    targets.push(Target::All);
    Ok(targets)
}
