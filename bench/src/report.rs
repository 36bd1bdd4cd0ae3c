//! The markdown report (printed and written to `bench/results/latest.md`) and the ratios.

use crate::stats::thousands;
use crate::Results;
use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    /// `altdata ingest --once` rows/s ÷ bare JetStream publish alone (Msg-Id), same run. Goal ≥ 0.8.
    pub ingest_vs_publish_ratio: Option<f64>,
    /// Pipeline end to end (main run) ÷ bare JetStream publish + consume of one event per
    /// message. Goal ≥ 1.0: the pipeline outruns what the broker could move an event at a time.
    pub e2e_vs_jetstream_ratio: Option<f64>,
    /// Aggregator alone ÷ one upsert per event. Goal ≥ 40.
    pub write_path_vs_per_event_ratio: Option<f64>,
    /// DuckDB over the raw CSV ÷ our uncached p50, canonical question. Goal ≥ 100.
    pub query_vs_duckdb_ratio: Option<f64>,
    /// The same against the cached p50.
    pub query_vs_duckdb_ratio_cached: Option<f64>,
    /// The same against the uncached p50 of one request at a time (no queueing).
    pub query_vs_duckdb_ratio_one_at_a_time: Option<f64>,
    /// Our end-to-end time (main run) ÷ DuckDB building the same daily cells from the same
    /// files in one batch. No goal: the price of streaming, exactly-once and review.
    pub e2e_vs_batch_ratio: Option<f64>,
}

pub fn ratios(results: &Results) -> Ratios {
    let main = results.main_run.and_then(|i| results.e2e.get(i));
    let canonical = results.queries.as_ref().and_then(|q| q.results.first());
    let duckdb = canonical.and_then(|c| c.duckdb_median_s);
    Ratios {
        ingest_vs_publish_ratio: results.ingest_alone.as_ref().map(|a| a.ratio()),
        e2e_vs_jetstream_ratio: main
            .zip(results.jetstream.as_ref())
            .map(|(m, j)| m.events_per_s / j.together_msgs_per_s.max(1e-9)),
        write_path_vs_per_event_ratio: results
            .write_batched
            .as_ref()
            .zip(results.write_per_event.as_ref())
            .map(|(b, p)| {
                b.steady_events_per_s.unwrap_or(b.events_per_s) / p.events_per_s.max(1e-9)
            }),
        query_vs_duckdb_ratio: duckdb
            .zip(canonical)
            .map(|(d, c)| d * 1e3 / c.uncached.latency.p50_ms.max(1e-9)),
        query_vs_duckdb_ratio_cached: duckdb
            .zip(canonical)
            .map(|(d, c)| d * 1e3 / c.cached.latency.p50_ms.max(1e-9)),
        query_vs_duckdb_ratio_one_at_a_time: duckdb
            .zip(canonical)
            .map(|(d, c)| d * 1e3 / c.uncached_one_at_a_time.latency.p50_ms.max(1e-9)),
        e2e_vs_batch_ratio: main
            .zip(results.batch_alternative.as_ref())
            .map(|(m, b)| m.seconds / b.seconds.max(1e-9)),
    }
}

fn ratio(value: Option<f64>) -> String {
    value.map_or("n/a".to_owned(), |v| {
        if v >= 10.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    })
}

fn verdict(value: Option<f64>, goal: f64) -> &'static str {
    match value {
        Some(v) if v >= goal => "met",
        Some(_) => "**not met**",
        None => "n/a",
    }
}

/// Machine, versions and settings: printed first, repeated in the report.
pub fn header(results: &Results, budget: Duration) -> String {
    let m = &results.machine;
    let v = &results.versions;
    let mut out = String::new();
    let scale = results.scale.as_ref().map_or("?", |s| s.name.as_str());
    let _ = writeln!(
        out,
        "Machine: {} CPUs ({}), {} GiB memory, Linux {}; load average at start {}{}",
        m.nproc,
        m.cpu_model,
        m.memory_gib,
        m.kernel,
        m.loadavg_at_start,
        if m.loadavg_at_end.is_empty() {
            String::new()
        } else {
            format!(", at end {}", m.loadavg_at_end)
        }
    );
    let _ = writeln!(
        out,
        "Versions: {}; nats-server {} (JetStream sync_interval {}); PostgreSQL {} (hll {}); Redis {}{}; git {}{}",
        v.rustc,
        v.nats_server,
        v.nats_sync_interval,
        v.postgresql,
        v.hll,
        v.redis,
        if v.duckdb.is_empty() {
            String::new()
        } else {
            format!("; DuckDB {}", v.duckdb)
        },
        v.git_commit,
        if v.git_dirty_files > 0 {
            format!(" (+{} uncommitted files)", v.git_dirty_files)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "Scale: {scale} (budget {}s after the build)",
        budget.as_secs()
    );
    let settings: Vec<String> = results
        .settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let _ = writeln!(out, "Settings: {}", settings.join("; "));
    out
}

pub fn markdown(results: &Results, budget: Duration) -> String {
    let mut out = String::new();
    let scale = results.scale.as_ref().map_or("?", |s| s.name.as_str());
    let _ = writeln!(
        out,
        "# Altdata Explorer benchmark: {scale} scale, {}\n",
        results.started_at.get(..16).unwrap_or(&results.started_at)
    );
    for line in header(results, budget).lines() {
        let _ = writeln!(out, "- {line}");
    }
    for line in &results.chosen {
        let _ = writeln!(out, "- Chosen: {line}");
    }
    let _ = writeln!(
        out,
        "- Data: {} generated rows in {} day files ({:.0} MB); took {:.0}s in all\n",
        thousands(results.generated_rows as f64),
        results.generated_files,
        results.generated_bytes as f64 / 1e6,
        results.total_seconds
    );

    let r = &results.ratios;
    let main = results.main_run.and_then(|i| results.e2e.get(i));
    let canonical = results.queries.as_ref().and_then(|q| q.results.first());
    let _ = writeln!(out, "## Results\n");
    let _ = writeln!(out, "| measurement | result | goal |");
    let _ = writeln!(out, "| --- | ---: | --- |");
    if let Some(j) = &results.jetstream {
        let _ = writeln!(
            out,
            "| bare JetStream, publish (Msg-Id, {} acks outstanding) + pull consume (ack) together | {} msg/s | ceiling |",
            j.publish_window,
            thousands(j.together_msgs_per_s)
        );
    }
    if let Some(c) = &results.csv {
        let _ = writeln!(
            out,
            "| CSV parse (csv ByteRecord, one thread) | {} rows/s ({:.0} MB/s) | ceiling |",
            thousands(c.rows_per_s),
            c.mb_per_s
        );
    }
    if let Some(a) = &results.ingest_alone {
        let _ = writeln!(
            out,
            "| bare JetStream publish alone (Msg-Id, {} acks outstanding), {} messages, before and after ingest alone | {} msg/s | ceiling |",
            a.publish_window,
            thousands(a.counts.rows_read as f64),
            a.publish_alone_msgs_per_s
                .iter()
                .map(|r| thousands(*r))
                .collect::<Vec<_>>()
                .join(" and ")
        );
        let _ = writeln!(
            out,
            "| `altdata ingest --once`, {} rows in {} day files, nothing consuming (read {} = published {} + unattributed {} + unmapped {} + rejected {} + duplicates {}) | {} rows/s ({:.1} CPU s, {:.0} MB peak RSS; nats-server {:.1} CPU s) | |",
            thousands(a.counts.rows_read as f64),
            a.files,
            thousands(a.counts.rows_read as f64),
            thousands(a.counts.published as f64),
            thousands(a.counts.unattributed as f64),
            thousands(a.counts.unmapped as f64),
            thousands(a.counts.rejected as f64),
            thousands(a.counts.duplicates as f64),
            thousands(a.rows_per_s),
            a.ingest.cpu_s(),
            a.ingest.max_rss_mb,
            a.nats_cpu_s
        );
        let i = &a.identity;
        let _ = writeln!(
            out,
            "| the identity record (`txn_identity`) that run wrote: {} rows | {:.0} MB per million rows; {:.0} GiB per year at 5M rows/day ({:.0} GiB held for the 400-day horizon); PostgreSQL {:.1} CPU s per million rows | |",
            thousands(i.rows as f64),
            i.bytes_per_million_rows / 1e6,
            i.gib_per_year_at_5m_rows_a_day,
            i.gib_at_5m_rows_a_day_for_400_days,
            i.postgres_cpu_s_per_million_rows
        );
    }
    let _ = writeln!(
        out,
        "| `ingest_vs_publish_ratio` (ingest rows/s ÷ the mean bare publish) | {} | ≥ 0.8: {} |",
        ratio(r.ingest_vs_publish_ratio),
        verdict(r.ingest_vs_publish_ratio, 0.8)
    );
    if let Some(m) = main {
        let _ = writeln!(
            out,
            "| end to end, {} events, {} shards (ingest → JetStream → aggregate, to completion) | {} events/s | |",
            thousands(m.counts.events() as f64),
            m.shards,
            thousands(m.events_per_s)
        );
        let _ = writeln!(
            out,
            "| … of which ingest alone (its own wall time) | {} rows/s | |",
            thousands(m.ingest_rows_per_s)
        );
    }
    let _ = writeln!(
        out,
        "| `e2e_vs_jetstream_ratio` (bare JetStream moves one event per message) | {} | ≥ 1.0: {} |",
        ratio(r.e2e_vs_jetstream_ratio),
        verdict(r.e2e_vs_jetstream_ratio, 1.0)
    );
    if let (Some(m), Some(b)) = (main, &results.batch_alternative) {
        let _ = writeln!(
            out,
            "| batch alternative: {} building the same daily cells from the same files, given our run's resolution | {:.1} s ({} cells; ours {:.1} s end to end, {} cells) | |",
            b.engine,
            b.seconds,
            thousands(b.cells as f64),
            m.seconds,
            thousands(m.daily_cells as f64)
        );
    }
    let _ = writeln!(
        out,
        "| `e2e_vs_batch_ratio` (our end-to-end time ÷ the batch time) | {} | no goal |",
        ratio(r.e2e_vs_batch_ratio)
    );
    if let (Some(b), Some(p)) = (&results.write_batched, &results.write_per_event) {
        let _ = writeln!(
            out,
            "| write path: aggregator alone, {} events, 16 shards, from its first commit (from its start) | {} events/s ({}) | |",
            thousands(b.events as f64),
            b.steady_events_per_s.map_or("n/a".to_owned(), thousands),
            thousands(b.events_per_s)
        );
        let _ = writeln!(
            out,
            "| write path: one autocommit `INSERT … ON CONFLICT` + `hll_add` per event, first {} of them | {} events/s | |",
            thousands(p.events as f64),
            thousands(p.events_per_s)
        );
    }
    let _ = writeln!(
        out,
        "| `write_path_vs_per_event_ratio` | {} | ≥ 40: {} |",
        ratio(r.write_path_vs_per_event_ratio),
        verdict(r.write_path_vs_per_event_ratio, 40.0)
    );
    if let Some(f) = &results.freshness {
        let _ = writeln!(
            out,
            "| freshness, publish → visible through `/v1/timeseries` (cached path), at {} events/s | p50 {:.0} ms, p99 {:.0} ms | |",
            thousands(f.achieved_rate),
            f.latency.p50_ms,
            f.latency.p99_ms
        );
    }
    if let Some(c) = canonical {
        let _ = writeln!(
            out,
            "| canonical question, uncached, concurrency 32 | p50 {:.1} ms, p99 {:.1} ms, {} req/s | |",
            c.uncached.latency.p50_ms,
            c.uncached.latency.p99_ms,
            thousands(c.uncached.req_per_s)
        );
        let _ = writeln!(
            out,
            "| canonical question, cached, concurrency 32 | p50 {:.1} ms, p99 {:.1} ms, {} req/s | |",
            c.cached.latency.p50_ms,
            c.cached.latency.p99_ms,
            thousands(c.cached.req_per_s)
        );
        let _ = writeln!(
            out,
            "| canonical question, uncached, one request at a time | p50 {:.1} ms, p99 {:.1} ms | |",
            c.uncached_one_at_a_time.latency.p50_ms,
            c.uncached_one_at_a_time.latency.p99_ms
        );
        if let Some(d) = c.duckdb_median_s {
            let _ = writeln!(
                out,
                "| canonical question, DuckDB over the raw CSV (median of {}) | {:.2} s | |",
                c.duckdb_seconds.len(),
                d
            );
        }
    }
    let _ = writeln!(
        out,
        "| `query_vs_duckdb_ratio` (DuckDB ÷ our uncached p50) | {} | ≥ 100: {} |",
        ratio(r.query_vs_duckdb_ratio),
        verdict(r.query_vs_duckdb_ratio, 100.0)
    );
    let _ = writeln!(
        out,
        "| `query_vs_duckdb_ratio_cached` (DuckDB ÷ our cached p50) | {} | |",
        ratio(r.query_vs_duckdb_ratio_cached)
    );
    let _ = writeln!(
        out,
        "| `query_vs_duckdb_ratio_one_at_a_time` (DuckDB ÷ our uncached p50 without queueing) | {} | |",
        ratio(r.query_vs_duckdb_ratio_one_at_a_time)
    );

    if let Some(d) = &results.disclosure {
        for q in &d.questions {
            let _ = writeln!(
                out,
                "| disclosure rule (k = {}): net spend withheld, {} | {:.2}% (${:.2} of ${:.2}; {} of {} cells) | price |",
                d.k,
                q.question,
                q.withheld_share * 100.0,
                (q.net_cents - q.released_cents) as f64 / 100.0,
                q.net_cents as f64 / 100.0,
                thousands(q.withheld_cells as f64),
                thousands(q.cells as f64)
            );
        }
    }
    if let Some(q) = &results.review_queue {
        let _ = writeln!(
            out,
            "| review queue after the main run: groups waiting for a person per million rows read | {:.0} ({} groups, {} rows; beside them {} local shops counted in their category; the waiting groups hold {:.3} of the held spend) | |",
            q.groups_per_million_rows,
            thousands(q.groups_waiting as f64),
            thousands(q.rows_read as f64),
            thousands(q.local_groups as f64),
            q.waiting_share_of_held_spend
        );
        let _ = writeln!(
            out,
            "| share of catalogue-brand spend attributed automatically (not held for review) | {:.4} | ≥ 0.97: {} |",
            q.brand_spend_attributed_automatically,
            verdict(Some(q.brand_spend_attributed_automatically), 0.97)
        );
        let _ = writeln!(
            out,
            "| share of the waiting spend covered by the 50 largest groups (over every held group, local shops included: {:.4}) | {:.4} | ≥ 0.8: {} |",
            q.top50_share_of_held_spend,
            q.top50_share_of_waiting_spend,
            verdict(Some(q.top50_share_of_waiting_spend), 0.8)
        );
        let c = &q.coffee_ca;
        let pct = |g: Option<f64>| g.map_or("n/a".to_owned(), |g| format!("{:+.1}%", g * 100.0));
        let _ = writeln!(
            out,
            "| coffee shops in CA, {} to {}: what the pipeline counted (every cell, named and unattributed shops) beside the true spend at every coffee shop | ${:.2} vs ${:.2} ({:+.1}%); WoW growth {} vs {}; attributed share {} | |",
            c.week_from,
            c.week_to,
            c.counted_cents as f64 / 100.0,
            c.truth_cents as f64 / 100.0,
            c.counted_gap * 100.0,
            pct(c.counted_growth),
            pct(c.truth_growth),
            c.attributed_share.map_or("n/a".to_owned(), |s| format!("{s:.3}"))
        );
        let _ = writeln!(
            out,
            "| … the same week as the gateway answers it (released cells: the disclosure rule withholds the rest) | ${:.2} ({:.1}% of the counted spend); WoW growth {} | price |",
            c.answer_cents as f64 / 100.0,
            c.answer_cents as f64 / (c.counted_cents as f64).max(1.0) * 100.0,
            pct(c.answer_growth),
        );
    }

    let cores = results.machine.nproc.max(1);
    let _ = writeln!(out, "\n## End to end and growth of cost\n");
    let _ = writeln!(
        out,
        "Each run: fresh database and prefix; `altdata aggregate` (service mode) started first, then `altdata ingest --once` over the first N day files; done when `sum(shard_offsets.applied_events)` equals what ingest published. CPU and peak RSS of each role from `wait4`; nats-server and PostgreSQL CPU from /proc over the same interval; \"busy\" is the whole machine's non-idle CPU over the run against its capacity ({cores} CPUs × wall).\n"
    );
    let _ = writeln!(
        out,
        "| run | shards | rows read | events | merchants | wall s | events/s | ingest rows/s | aggregator tail s | ingest CPU s / RSS MB | aggregator CPU s / RSS MB | nats-server CPU s | PostgreSQL CPU s | machine busy |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut runs: Vec<&crate::e2e::E2eRun> = results.e2e.iter().collect();
    runs.sort_by_key(|r| (r.shards != 16, r.counts.events()));
    for run in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.1} | {} | {} | {:.1} | {:.1} / {:.0} | {:.1} / {:.0} | {:.1} | {:.1} | {:.0} of {:.0} s ({:.0}%) |",
            run.label,
            run.shards,
            thousands(run.counts.rows_read as f64),
            thousands(run.counts.events() as f64),
            run.merchants,
            run.seconds,
            thousands(run.events_per_s),
            thousands(run.ingest_rows_per_s),
            run.aggregator_tail_seconds,
            run.ingest.cpu_s(),
            run.ingest.max_rss_mb,
            run.aggregator.cpu_s(),
            run.aggregator.max_rss_mb,
            run.nats_cpu_s,
            run.postgres_cpu_s,
            run.machine_busy_s,
            run.cpu_capacity_s(cores),
            run.machine_busy_s / run.cpu_capacity_s(cores).max(1e-9) * 100.0
        );
    }
    if let Some(m) = main {
        let per_million = |cpu: f64| cpu / (m.counts.events() as f64 / 1e6).max(1e-9);
        let _ = writeln!(
            out,
            "\nCPU seconds per million events (main run): ingest {:.0}, aggregator {:.0}, PostgreSQL {:.0}, nats-server {:.0}; rows unmapped {} and rejected {} (of {} read), duplicates {}.",
            per_million(m.ingest.cpu_s()),
            per_million(m.aggregator.cpu_s()),
            per_million(m.postgres_cpu_s),
            per_million(m.nats_cpu_s),
            thousands(m.counts.unmapped as f64),
            thousands(m.counts.rejected as f64),
            thousands(m.counts.rows_read as f64),
            thousands(m.counts.duplicates as f64)
        );
    }

    let _ = writeln!(out, "\n## Limits\n");
    if let Some(j) = &results.jetstream {
        let _ = writeln!(
            out,
            "- Bare JetStream: {} messages of {} bytes over {} subjects, one publisher ({} outstanding acks, `Nats-Msg-Id` on every message) and one consumer ({}) on separate connections, together: {} msg/s; the publisher had all its acks at {} msg/s.",
            thousands(j.messages as f64),
            j.payload_bytes,
            j.subjects,
            j.publish_window,
            j.consumer,
            thousands(j.together_msgs_per_s),
            thousands(j.publish_msgs_per_s)
        );
    }
    if !results.publish_sweep.is_empty() {
        let cells: Vec<String> = results
            .publish_sweep
            .iter()
            .map(|p| format!("{}: {} msg/s", p.publish_window, thousands(p.msgs_per_s)))
            .collect();
        let _ = writeln!(
            out,
            "- Publish alone by window of outstanding acks ({} messages each): {}.",
            thousands(results.publish_sweep[0].messages as f64),
            cells.join(", ")
        );
    }
    if let Some(c) = &results.csv {
        let _ = writeln!(
            out,
            "- CSV: {} rows ({:.0} MB, {} files) in {:.2} s: {} rows/s.",
            thousands(c.rows as f64),
            c.bytes as f64 / 1e6,
            c.files,
            c.seconds,
            thousands(c.rows_per_s)
        );
    }

    let _ = writeln!(out, "\n## Write path\n");
    if let (Some(b), Some(p)) = (&results.write_batched, &results.write_per_event) {
        let _ = writeln!(
            out,
            "The same events (the main run's, read back from its stream). Batched: a fresh stream holding them, `altdata aggregate` started, timed until all are applied (start-up included); it writes the daily table, five rollups, offsets and the outbox. Per event (the original design): one connection, sequential autocommit `INSERT … ON CONFLICT DO UPDATE` into `agg_daily_merchant_spend` with `hll_add` of the customer, daily table only, on the first {} events.\n",
            thousands(p.events as f64)
        );
        let _ = writeln!(
            out,
            "| path | events | s from start | first commit at s | events/s from the first commit | events/s from start | aggregator CPU s / RSS MB | PostgreSQL CPU s |"
        );
        let _ = writeln!(
            out,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        let first = |b: &crate::writepath::BatchedRun| {
            b.first_commit_s
                .map_or("n/a".to_owned(), |s| format!("{s:.1}"))
        };
        let steady = |b: &crate::writepath::BatchedRun| {
            b.steady_events_per_s.map_or("n/a".to_owned(), thousands)
        };
        let _ = writeln!(
            out,
            "| aggregator, default window (50,000 events / 1 s) | {} | {:.1} | {} | {} | {} | {:.1} / {:.0} | {:.1} |",
            thousands(b.events as f64),
            b.seconds,
            first(b),
            steady(b),
            thousands(b.events_per_s),
            b.aggregator.cpu_s(),
            b.aggregator.max_rss_mb,
            b.postgres_cpu_s
        );
        for s in &results.window_sweep {
            let window = s
                .extra_env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            let _ = writeln!(
                out,
                "| aggregator, {window} | {} | {:.1} | {} | {} | {} | {:.1} / {:.0} | {:.1} |",
                thousands(s.events as f64),
                s.seconds,
                first(s),
                steady(s),
                thousands(s.events_per_s),
                s.aggregator.cpu_s(),
                s.aggregator.max_rss_mb,
                s.postgres_cpu_s
            );
        }
        let _ = writeln!(
            out,
            "| one upsert per event | {} | {:.1} | | {} | {} | | {:.1} |",
            thousands(p.events as f64),
            p.seconds,
            thousands(p.events_per_s),
            thousands(p.events_per_s),
            p.postgres_cpu_s
        );
    }

    if let Some(f) = &results.freshness {
        let _ = writeln!(out, "\n## Freshness\n");
        let _ = writeln!(
            out,
            "{} events/s published straight to the stream for {:.0} s ({:.0} s of it warm-up before the first marker; {} events; target {} ev/s: {}), an aggregator (16 shards) and a gateway as child processes; a marker event for a dedicated merchant and day every 200 ms, its publish-to-visible time measured by polling `/v1/timeseries` every {} ms through the normal cached path ({} polls, {} cache hits).\n",
            thousands(f.achieved_rate),
            f.seconds,
            f.warm_up_s,
            thousands(f.published as f64),
            thousands(f.target_rate as f64),
            f.rate_note,
            f.poll_interval_ms,
            thousands(f.polls as f64),
            thousands(f.cache_hits as f64)
        );
        let _ = writeln!(
            out,
            "| markers | visible | p50 ms | p90 ms | p99 ms | max ms | backlog when the load stopped | kept up | aggregator CPU s | gateway CPU s |"
        );
        let _ = writeln!(
            out,
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"
        );
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} events | {} | {:.1} | {:.1} |",
            f.markers,
            f.visible,
            f.latency.p50_ms,
            f.latency.p90_ms,
            f.latency.p99_ms,
            f.latency.max_ms,
            thousands(f.lag_events_at_end as f64),
            if f.kept_up { "yes" } else { "no" },
            f.aggregator.cpu_s(),
            f.gateway.cpu_s()
        );
    }

    if let Some(q) = &results.queries {
        let _ = writeln!(out, "\n## Queries\n");
        let _ = writeln!(
            out,
            "Gateway (child process, pool {}) on the main run's database; as_of {}, from {}; merchant {} ({}). Concurrency {}, at most {} uncached / {} cached requests or {:.0} s per row; uncached = `Cache-Control: no-cache`. DuckDB {}: a fresh in-memory connection per run over the raw day files + `_truth/transactions.csv` + `data/merchants.csv`.\n",
            q.gateway_pool_size,
            q.as_of,
            q.start,
            q.merchant_id,
            q.merchant_brand,
            q.concurrency,
            q.max_requests,
            q.max_requests * 4,
            q.max_seconds,
            if q.duckdb_version.is_empty() { "(not run)".to_owned() } else { q.duckdb_version.clone() }
        );
        let _ = writeln!(
            out,
            "| question | uncached p50 / p99 ms | uncached req/s | cached p50 / p99 ms | cached req/s | uncached one at a time p50 ms | errors | DuckDB s | DuckDB ÷ uncached p50 | DuckDB ÷ cached p50 |"
        );
        let _ = writeln!(
            out,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for row in &q.results {
            let duck = row.duckdb_median_s;
            let _ = writeln!(
                out,
                "| {} | {:.1} / {:.1} | {} | {:.2} / {:.2} | {} | {:.1} | {} | {} | {} | {} |",
                row.name,
                row.uncached.latency.p50_ms,
                row.uncached.latency.p99_ms,
                thousands(row.uncached.req_per_s),
                row.cached.latency.p50_ms,
                row.cached.latency.p99_ms,
                thousands(row.cached.req_per_s),
                row.uncached_one_at_a_time.latency.p50_ms,
                row.uncached.errors + row.cached.errors,
                duck.map_or("n/a".to_owned(), |d| format!("{d:.2}")),
                ratio(duck.map(|d| d * 1e3 / row.uncached.latency.p50_ms.max(1e-9))),
                ratio(duck.map(|d| d * 1e3 / row.cached.latency.p50_ms.max(1e-9)))
            );
        }
        for (pool, load) in &results.pool_probe {
            let _ = writeln!(
                out,
                "\nUncached canonical question with the gateway's `ALTDATA_DB_POOL_SIZE={pool}`: p50 {:.1} ms, p99 {:.1} ms, {} req/s.",
                load.latency.p50_ms,
                load.latency.p99_ms,
                thousands(load.req_per_s)
            );
        }
        if let Some(c) = q.results.first() {
            let _ = writeln!(
                out,
                "\nAnswers (sanity): ours {}; DuckDB (from the generator's ground truth, not the resolver) {}.",
                c.our_answer, c.duckdb_answer
            );
        }
    }
    if !results.notes.is_empty() {
        let _ = writeln!(out, "\n## Notes\n");
        for note in &results.notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}
