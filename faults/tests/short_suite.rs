//! The short fault suite as a test, so `cargo test --workspace` (and so `make test`) runs it on
//! the debug binaries that build already made: one SIGKILL of each role, one restart of each
//! server, poison and a re-delivered file, on servers the suite starts itself.
//!
//! It needs the `altdata` binary next to `altdata-faults` (cargo builds it for the cli's
//! integration tests in the same run) and `.stack/venv/bin/nats-server` (`make stack`).
//! `FAULTS_SEED` replays another seed; the default is the one that once found a real bug
//! (ingest stuck after a nats-server crash mid-file).

use std::path::{Path, PathBuf};
use std::process::Command;

const DEFAULT_SEED: &str = "479253";

#[test]
fn the_short_fault_suite_survives_every_fault() {
    let faults = PathBuf::from(env!("CARGO_BIN_EXE_altdata-faults"));
    let altdata = faults.with_file_name(format!("altdata{}", std::env::consts::EXE_SUFFIX));
    assert!(
        altdata.is_file(),
        "{} is missing: run the whole workspace's tests (`cargo test --workspace`) or `cargo build --bin altdata` first",
        altdata.display()
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("faults/ lives in the repository root");
    let seed = std::env::var("FAULTS_SEED").unwrap_or_else(|_| DEFAULT_SEED.to_owned());
    let output = Command::new(&faults)
        .arg("--short")
        .env("ALTDATA_BIN", &altdata)
        .env("FAULTS_SEED", &seed)
        .env("FAULTS_REPO", repo)
        .current_dir(repo)
        .output()
        .expect("altdata-faults starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        output.status.success() && last.contains("survived"),
        "fault suite (seed {seed}) failed with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    println!("{last}");
}
