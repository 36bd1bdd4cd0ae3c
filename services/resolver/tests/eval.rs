//! Accuracy of the resolver on a hand-labelled set of realistic descriptors
//! (`eval/labelled.csv`: `descriptor,mcc,expected_brand_id`, empty brand for "a person should
//! decide"), against the embedded catalogue with no aliases or rules, plus a throughput check.
//!
//! Definitions:
//! - **precision**: of all rows resolved `auto`, the share resolved to the expected brand (an
//!   `auto` on a row labelled for review counts as wrong);
//! - **coverage**: of the rows labelled with a brand, the share resolved `auto` to that brand;
//! - **review rate**: of the rows labelled for review, the share that went to review.

use altdata_domain::catalogue::Catalogue;
use altdata_resolver::{Decision, Resolver};
use std::collections::HashMap;
use std::time::Instant;

const LABELLED: &str = include_str!("../eval/labelled.csv");

struct Row {
    descriptor: String,
    mcc: String,
    expected: Option<i64>,
    expected_brand: String,
}

fn setup() -> (Resolver, Vec<Row>) {
    let catalogue = Catalogue::embedded().unwrap_or_else(|e| panic!("catalogue: {e}"));
    let by_brand: HashMap<&str, i64> = catalogue
        .merchants
        .iter()
        .map(|m| (m.brand_id.as_str(), m.id))
        .collect();
    let mut reader = csv::Reader::from_reader(LABELLED.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.unwrap_or_else(|e| panic!("labelled.csv: {e}"));
        let brand = record.get(2).unwrap_or("").trim().to_owned();
        let expected = if brand.is_empty() {
            None
        } else {
            Some(
                *by_brand
                    .get(brand.as_str())
                    .unwrap_or_else(|| panic!("unknown brand {brand:?}")),
            )
        };
        rows.push(Row {
            descriptor: record.get(0).unwrap_or("").to_owned(),
            mcc: record.get(1).unwrap_or("").to_owned(),
            expected,
            expected_brand: brand,
        });
    }
    let resolver = Resolver::new(&catalogue, vec![], vec![], vec![]);
    (resolver, rows)
}

#[test]
fn labelled_descriptors_resolve_precisely() {
    let (resolver, rows) = setup();
    let (
        mut auto,
        mut auto_right,
        mut branded,
        mut branded_right,
        mut unlabelled,
        mut unlabelled_review,
    ) = (0, 0, 0, 0, 0, 0);
    // Calibration: auto decisions by confidence band, (decisions, right).
    let mut bands: [(u32, u32); 3] = [(0, 0); 3];
    for row in &rows {
        let resolution = resolver.resolve(&row.descriptor, &row.mcc);
        let name = |id: i64| {
            resolver
                .merchant(id)
                .map_or("?".to_owned(), |m| m.name.clone())
        };
        match (&resolution.decision, row.expected) {
            (
                Decision::Auto {
                    merchant_id,
                    confidence,
                    ..
                },
                expected,
            ) => {
                auto += 1;
                let right = expected == Some(*merchant_id);
                let band = if *confidence >= 0.97 {
                    2
                } else if *confidence >= 0.93 {
                    1
                } else {
                    0
                };
                bands[band].0 += 1;
                if right {
                    auto_right += 1;
                    bands[band].1 += 1;
                } else {
                    println!(
                        "WRONG AUTO  {:<55} -> {} ({confidence:.3}) expected {:?} [{}]",
                        row.descriptor,
                        name(*merchant_id),
                        row.expected_brand,
                        resolution.normalized
                    );
                }
            }
            (Decision::Review { candidates, .. }, Some(_)) => {
                let top = candidates.first().map_or("-".to_owned(), |c| {
                    format!("{} {:.3} ({})", c.name, c.score, c.why)
                });
                println!(
                    "MISSED      {:<55} expected {} [{}] top {top}",
                    row.descriptor, row.expected_brand, resolution.normalized
                );
            }
            (Decision::Review { .. }, None) => {}
        }
        match row.expected {
            Some(expected) => {
                branded += 1;
                if resolution.merchant_id() == Some(expected) {
                    branded_right += 1;
                }
            }
            None => {
                unlabelled += 1;
                if resolution.merchant_id().is_none() {
                    unlabelled_review += 1;
                }
            }
        }
    }
    let precision = f64::from(auto_right) / f64::from(auto.max(1));
    let coverage = f64::from(branded_right) / f64::from(branded.max(1));
    let review_rate = f64::from(unlabelled_review) / f64::from(unlabelled.max(1));
    println!(
        "rows {}: {branded} labelled with a brand, {unlabelled} for review",
        rows.len()
    );
    println!("precision of auto {precision:.4} ({auto_right}/{auto})");
    println!("coverage {coverage:.4} ({branded_right}/{branded})");
    println!("unresolvable sent to review {review_rate:.4} ({unlabelled_review}/{unlabelled})");
    for (band, (count, right)) in ["0.90-0.93", "0.93-0.97", "0.97-1.00"].iter().zip(bands) {
        println!("auto confidence {band}: {right}/{count} right");
    }
    assert!(rows.len() >= 460, "the labelled set shrank");
    assert!(precision >= 0.98, "precision {precision:.4}");
    assert!(coverage >= 0.90, "coverage {coverage:.4}");
    assert!(review_rate >= 0.90, "review rate {review_rate:.4}");
}

#[test]
fn the_cache_changes_no_resolution() {
    // Store numbers and cities vary, so raw strings miss the first level of the cache while
    // their normalised forms repeat and hit the second (decisions): both must give exactly
    // what the resolver gives uncached.
    let (resolver, rows) = setup();
    let cities = ["SEATTLE WA", "AUSTIN TX", "", "NEW YORK NY"];
    let mut cache = altdata_resolver::ResolutionCache::new(100_000);
    for n in 0..4 * rows.len() {
        let row = &rows[n % rows.len()];
        let descriptor = format!(
            "{} #{} {}",
            row.descriptor,
            1000 + n,
            cities[n % cities.len()]
        );
        let cached = cache.get_or_resolve(&resolver, &descriptor, &row.mcc);
        assert_eq!(
            *cached,
            resolver.resolve(&descriptor, &row.mcc),
            "{descriptor:?}"
        );
    }
    assert_eq!(cache.hits(), 0, "every raw string was distinct");
}

#[test]
fn cold_resolution_throughput() {
    let (resolver, rows) = setup();
    // Distinct descriptors: the labelled ones with varying store numbers and cities, so that no
    // two strings are equal (the resolver keeps no cache of its own).
    let cities = [
        "SEATTLE WA",
        "AUSTIN TX",
        "SMALLVILLE KS",
        "",
        "DENVER CO",
        "NEW YORK NY",
    ];
    let mut descriptors = Vec::new();
    for n in 0..20_000usize {
        let row = &rows[n % rows.len()];
        descriptors.push((
            format!(
                "{} #{} {}",
                row.descriptor,
                1000 + n,
                cities[n % cities.len()]
            ),
            row.mcc.clone(),
        ));
    }
    let started = Instant::now();
    let cpu_started = thread_cpu_nanos();
    let mut auto = 0usize;
    for (descriptor, mcc) in &descriptors {
        if resolver.resolve(descriptor, mcc).merchant_id().is_some() {
            auto += 1;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    // Time on the CPU, so a busy machine (parallel builds) does not skew the figure.
    let cpu = match (cpu_started, thread_cpu_nanos()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => wall,
    };
    let rate = descriptors.len() as f64 / cpu.max(1e-9);
    println!(
        "cold resolution: {} distinct descriptors, {cpu:.3}s on the CPU ({wall:.3}s wall) = {rate:.0}/s on one core ({auto} auto){}",
        descriptors.len(),
        if cfg!(debug_assertions) { " [debug build; use --release for the real figure]" } else { "" }
    );
    if !cfg!(debug_assertions) {
        assert!(rate >= 50_000.0, "throughput {rate:.0}/s");
    }
}

/// Nanoseconds this thread has run on a CPU (Linux), if the kernel says.
fn thread_cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
