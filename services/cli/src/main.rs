//! `altdata`: the one binary of Altdata Explorer, a subcommand per role.

mod commands;
mod keys;
mod prefixes;

use clap::Parser;

/// Ingest's row path allocates on its blocking thread and frees on the async side; glibc
/// malloc spent a fifth of ingest's CPU consolidating that (docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    altdata_common::telemetry::init();
    let cli = commands::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
