//! The end of a run: what was injected, what was checked, and the last line.

use crate::checks::Check;
use crate::config::Settings;
use crate::inject::Injected;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Default)]
pub struct Report {
    pub injected: Vec<Injected>,
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
}
