//! Deliberate failures, to prove the guarantees under the crashes they protect against. Only
//! in builds with the `fault-injection` feature, which the integration tests enable; the
//! release binary has none of it.

use crate::error::AggregatorError;
use altdata_common::EnvReader;

/// Which failures to inject; all off by default.
#[derive(Debug, Clone, Default)]
pub struct FaultInjection {
    /// Each shard worker dies (without acking) right after this many commits
    /// (`ALTDATA_FAULT_CRASH_AFTER_COMMITS`).
    pub crash_after_commits: Option<u32>,
    /// Run without the outbox relay, as if the process died between commit and publish
    /// (`ALTDATA_FAULT_NO_RELAY`).
    pub relay_disabled: bool,
}

impl FaultInjection {
    pub fn from_env(env: &mut EnvReader) -> FaultInjection {
        FaultInjection {
            crash_after_commits: match env.integer(
                "ALTDATA_FAULT_CRASH_AFTER_COMMITS",
                0u32,
                0,
                1_000_000,
            ) {
                0 => None,
                n => Some(n),
            },
            relay_disabled: env.parsed("ALTDATA_FAULT_NO_RELAY", false, "true or false"),
        }
    }
}

/// Called after a flush committed and before its ack, with the commits made before it: fails
/// the worker there when asked to.
pub fn after_commit(
    faults: &FaultInjection,
    shard: u32,
    commits_before: u32,
) -> Result<(), AggregatorError> {
    match faults.crash_after_commits {
        Some(n) if commits_before + 1 >= n => Err(AggregatorError::InjectedCrash { shard }),
        _ => Ok(()),
    }
}
