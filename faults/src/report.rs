//! The end of a run: what was injected, what was checked, and the last line.

use crate::checks::Check;
use crate::config::Settings;
use crate::inject::Injected;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// One kill of the cluster run and its failover.
#[derive(Debug, Clone)]
pub struct Failover {
    pub what: String,
    /// Seconds since the suite started.
    pub at: f64,
    pub survived: bool,
    /// Kill to recovery (the headline number of `what`).
    pub seconds: Option<f64>,
    pub note: String,
}

#[derive(Default)]
pub struct Report {
    pub injected: Vec<Injected>,
    /// The cluster run's kills.
    pub failovers: Vec<Failover>,
    pub checks: Vec<Check>,
    /// A phase that could not complete (setup, settle), with why.
    pub aborted: Option<String>,
    pub notes: Vec<String>,
    /// (phase, seconds)
    pub timings: Vec<(&'static str, f64)>,
}

impl Report {
    pub fn aborted(why: &str) -> Report {
        Report {
            aborted: Some(why.to_owned()),
            ..Report::default()
        }
    }

    pub fn print(&self, settings: &Settings) -> ExitCode {
        if settings.cluster {
            return self.print_cluster(settings);
        }
        println!();
        println!(
            "faults: seed {} ({} run; replay with FAULTS_SEED={}{})",
            settings.seed,
            if settings.short { "short" } else { "full" },
            settings.seed,
            if settings.short {
                " make faults-short"
            } else {
                " make faults"
            }
        );
        if !self.timings.is_empty() {
            let parts: Vec<String> = self
                .timings
                .iter()
                .map(|(phase, secs)| format!("{phase} {secs:.1}s"))
                .collect();
            println!("faults: times: {}", parts.join(", "));
        }
        let mut kinds: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for injected in &self.injected {
            let entry = kinds.entry(injected.fault.describe()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(injected.survived);
        }
        if !kinds.is_empty() {
            println!("faults: injected:");
            for (kind, (count, ok)) in &kinds {
                println!(
                    "  {count:>3} x {kind}{}",
                    if ok == count {
                        String::new()
                    } else {
                        format!(" ({} not recovered)", count - ok)
                    }
                );
            }
        }
        for injected in self.injected.iter().filter(|i| !i.survived) {
            println!(
                "faults: NOT RECOVERED at +{:.1}s: {}: {}",
                injected.at,
                injected.fault.describe(),
                injected.note
            );
        }
        for note in &self.notes {
            println!("faults: note: {note}");
        }
        if !self.checks.is_empty() {
            println!("faults: checks:");
            for check in &self.checks {
                println!(
                    "  [{}] {}: {}",
                    if check.ok { " ok " } else { "FAIL" },
                    check.name,
                    check.detail
                );
            }
        }
        let failed: Vec<&str> = self
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect();
        let unrecovered = self.injected.iter().filter(|i| !i.survived).count();
        let mut problems: Vec<String> = failed.iter().map(|f| (*f).to_owned()).collect();
        if let Some(why) = &self.aborted {
            problems.insert(0, why.clone());
        }
        if unrecovered > 0 {
            problems.push(format!(
                "{unrecovered} fault(s) the pipeline did not recover from"
            ));
        }
        let injected = self.injected.len();
        let survived = if problems.is_empty() {
            self.injected.iter().filter(|i| i.survived).count()
        } else {
            0
        };
        if !problems.is_empty() {
            println!("faults: FAILED: {}", problems.join("; "));
        }
        println!("faults: {injected} injected, {survived} survived");
        if problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// The cluster run's summary: failovers, checks, and the last line
    /// `cluster: ... conserved ...`.
    fn print_cluster(&self, settings: &Settings) -> ExitCode {
        println!();
        println!(
            "cluster: seed {} (replay with FAULTS_SEED={} make cluster-test)",
            settings.seed, settings.seed
        );
        if !self.timings.is_empty() {
            let parts: Vec<String> = self
                .timings
                .iter()
                .map(|(phase, secs)| format!("{phase} {secs:.1}s"))
                .collect();
            println!("cluster: times: {}", parts.join(", "));
        }
        for failover in &self.failovers {
            println!(
                "cluster: failover at +{:.1}s, {}: {}{}",
                failover.at,
                failover.what,
                if failover.survived {
                    ""
                } else {
                    "NOT RECOVERED: "
                },
                failover.note
            );
        }
        for note in &self.notes {
            println!("cluster: note: {note}");
        }
        if !self.checks.is_empty() {
            println!("cluster: checks:");
            for check in &self.checks {
                println!(
                    "  [{}] {}: {}",
                    if check.ok { " ok " } else { "FAIL" },
                    check.name,
                    check.detail
                );
            }
        }
        let is_freshness = |name: &str| {
            name.starts_with("no cache answer") || name.starts_with("the new file changed")
        };
        let failed = |freshness: bool| -> Vec<&str> {
            self.checks
                .iter()
                .filter(|c| !c.ok && is_freshness(c.name) == freshness)
                .map(|c| c.name)
                .collect()
        };
        let (unconserved, stale) = (failed(false), failed(true));
        let checked = !self.checks.is_empty();
        let conserved = if !checked {
            "conservation NOT checked".to_owned()
        } else if unconserved.is_empty() {
            "conserved exact (ledger, stream and aggregates against the generator's truth)"
                .to_owned()
        } else {
            format!("NOT conserved ({})", unconserved.join("; "))
        };
        let fresh = if !checked {
            "freshness NOT checked".to_owned()
        } else if stale.is_empty() {
            "no stale answer after an invalidation (2 gateways)".to_owned()
        } else {
            format!("STALE answers ({})", stale.join("; "))
        };
        let times: Vec<String> = self
            .failovers
            .iter()
            .map(|f| match (f.survived, f.seconds) {
                (true, Some(s)) => format!("{} {s:.1}s", f.what),
                _ => format!("{} NOT RECOVERED", f.what),
            })
            .collect();
        let recovered = self.failovers.iter().filter(|f| f.survived).count();
        let ok = checked
            && unconserved.is_empty()
            && stale.is_empty()
            && recovered == self.failovers.len()
            && self.failovers.len() == 3
            && self.aborted.is_none();
        if let Some(why) = &self.aborted {
            println!("cluster: FAILED: {why}");
        }
        println!(
            "cluster: {} kills, {recovered} recovered; failover {}; {conserved}; {fresh}{}",
            self.failovers.len(),
            if times.is_empty() {
                "none measured".to_owned()
            } else {
                times.join(", ")
            },
            if ok { "" } else { " -- FAILED" }
        );
        if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
