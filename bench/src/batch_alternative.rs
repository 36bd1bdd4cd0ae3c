//! What a user might run instead of streaming: DuckDB building the same daily merchant × state
//! aggregates from the same files in one batch, given the resolution our run made (its
//! identity record's txn_id → merchant). `e2e_vs_batch_ratio` is our end-to-end time over the
//! batch time: the price of streaming, exactly-once and review. No goal.

use crate::sandbox::Sandbox;
use anyhow::{anyhow, Context};
use futures::{pin_mut, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchAlternative {
    pub engine: String,
    /// From a fresh connection to the aggregate table built (reading the files included).
    pub seconds: f64,
    /// Daily (merchant, region, day) cells it built.
    pub cells: i64,
    /// Transactions with a merchant in the exported mapping.
    pub mapped_transactions: u64,
}

/// Exports the main run's mapping and times DuckDB over its files.
pub async fn measure(
    sandbox: &Sandbox,
    python: &Path,
    script: &Path,
    files: &[PathBuf],
    work_dir: &Path,
) -> anyhow::Result<BatchAlternative> {
    let mapping = work_dir.join("batch-alternative-mapping.csv");
    let mapped_transactions = export_mapping(sandbox, &mapping).await?;
    let args = work_dir.join("batch-alternative.json");
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    std::fs::write(
        &args,
        serde_json::to_vec(&serde_json::json!({
            "files": files,
            "mapping": mapping.display().to_string(),
        }))?,
    )?;
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(&args)
        .output()
        .context("running the batch alternative")?;
    let _ = std::fs::remove_file(&mapping);
    let _ = std::fs::remove_file(&args);
    if !output.status.success() {
        return Err(anyhow!(
            "the batch alternative failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    #[derive(Deserialize)]
    struct Printed {
        version: String,
        seconds: f64,
        cells: i64,
    }
    let printed: Printed =
        serde_json::from_slice(&output.stdout).context("reading the batch alternative's answer")?;
    Ok(BatchAlternative {
        engine: format!("DuckDB {}", printed.version),
        seconds: printed.seconds,
        cells: printed.cells,
        mapped_transactions,
    })
}

/// Writes `txn_id,merchant_id` of every live row our run counted under a merchant.
async fn export_mapping(sandbox: &Sandbox, path: &Path) -> anyhow::Result<u64> {
    let client = sandbox.client().await?;
    let stream = client
        .copy_out(
            "COPY (SELECT txn_id, merchant_id FROM txn_identity
                    WHERE merchant_id IS NOT NULL AND retracted_at IS NULL)
             TO STDOUT WITH (FORMAT csv, HEADER true)",
        )
        .await?;
    pin_mut!(stream);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut lines = 0u64;
    while let Some(bytes) = stream.try_next().await? {
        lines += bytes.iter().filter(|b| **b == b'\n').count() as u64;
        out.write_all(&bytes)?;
    }
    out.flush()?;
    Ok(lines.saturating_sub(1))
}
