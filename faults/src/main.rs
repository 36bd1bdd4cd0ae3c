//! `altdata-faults`: the fault suite (`make faults`, `make faults-short`).
//!
//! Starts its own nats-server, PostgreSQL and Redis on ports of its own, runs every role as a
//! child process of the `altdata` binary, drops generated provider files into the landing
//! zone over time while it SIGKILLs roles, restarts servers, re-delivers files, publishes
//! poison and runs two aggregators on one shard; then lets the pipeline settle and checks the
//! guarantees against the generator's ground truth and the stream itself. The last line is
//! `faults: N injected, M survived`; the exit status is non-zero when any check failed.
//! `--cluster` runs the pipeline on the local cluster of `make cluster` instead and kills a
//! stream leader, a Redis master and an aggregator (`cluster`); its last line is `cluster: ...`.
//!
//! Layout: `config` (settings), `harness` (temp dir, servers, cleanup), `servers`, `proc`
//! (child processes), `pipeline` (the roles), `plan` (the seeded schedule), `inject` (one
//! fault), `traffic` (file drops, gateway queries), `poison`, `hostile`, `cluster` (the cluster run) (the hostile
//! provider's files and checks), `settle`, `checks`, `report`, `run` (the phases), `http`,
//! `util`.

mod checks;
mod cluster;
mod config;
mod harness;
mod hostile;
mod http;
mod inject;
mod pipeline;
mod plan;
mod poison;
mod proc;
mod report;
mod run;
mod servers;
mod settle;
mod traffic;
mod util;

use std::process::ExitCode;

fn main() -> ExitCode {
    util::start_clock();
    let settings = match config::Settings::read() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("faults: {error:#}");
            return ExitCode::from(2);
        }
    };
    // One thread: every child is forked by the main thread, which outlives them all, so
    // their parent-death signal fires only when the suite itself dies.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("faults: cannot start the runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let report = runtime.block_on(async {
        tokio::select! {
            report = run::run(&settings) => report,
            _ = tokio::signal::ctrl_c() => report::Report::aborted("interrupted (Ctrl-C)"),
        }
    });
    // The harness (children, servers, temp dir) was dropped with the run's future.
    report.print(&settings)
}
