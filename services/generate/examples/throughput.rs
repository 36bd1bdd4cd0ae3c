//! Measures generation speed on the embedded catalogue:
//! `cargo run --release -p altdata-generate --example throughput -- [DAYS] [CARDS] [OUT] [gzip]`.

use altdata_common::Shutdown;
use altdata_domain::catalogue::Catalogue;
use altdata_generate::{run, GenerateConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let days: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(30);
    let cards: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let out = args.next().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("altdata-generate-throughput")
            .to_string_lossy()
            .into_owned()
    });
    let gzip = args.next().as_deref() == Some("gzip");
    let catalogue = Catalogue::embedded()?;
    let mut config = GenerateConfig::new(out);
    config.days = days;
    config.cards = cards;
    config.gzip = gzip;
    config.progress = true;
    let report = run(&config, &catalogue, &Shutdown::new()).await?;
    println!(
        "{} rows, {} files, {:.1} MB in {:.2?}: {:.0} rows/s (valid {}, broken {}, duplicate {}, local {})",
        report.rows,
        report.files.len(),
        report.bytes as f64 / 1e6,
        report.elapsed,
        report.rows_per_second(),
        report.valid_rows,
        report.broken_rows,
        report.duplicate_rows,
        report.local_rows,
    );
    Ok(())
}
