//! How long resolution takes per row on a real file, cold cache, one thread:
//! `cargo run --release -p altdata-resolver --example resolve_speed -- FILE.csv`
//! (canonical layout: descriptor in column 4, MCC in column 7). `CHECK=1` also compares every
//! cached resolution with an uncached one and counts the rows that differ (must be 0).

use altdata_domain::catalogue::Catalogue;
use altdata_resolver::{normalize, ResolutionCache, Resolver};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: resolve_speed FILE.csv")?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(&path)?;
    let mut rows: Vec<(String, String)> = Vec::new();
    for record in reader.records() {
        let Ok(record) = record else { continue };
        if let (Some(descriptor), Some(mcc)) = (record.get(3), record.get(6)) {
            rows.push((descriptor.to_owned(), mcc.to_owned()));
        }
    }
    let catalogue = Catalogue::embedded()?;
    let resolver = Resolver::new(&catalogue, Vec::new(), Vec::new(), Vec::new());

    let started = Instant::now();
    let mut length = 0usize;
    let mut distinct = std::collections::HashSet::new();
    for (descriptor, mcc) in &rows {
        let n = normalize(descriptor);
        length += n.text.len();
        distinct.insert((n.text, n.city, mcc.clone()));
    }
    if std::env::var("CHECK").is_ok() {
        // A digest of every normalised form, to compare two builds of the normaliser.
        use std::hash::{Hash, Hasher};
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        for (descriptor, _) in &rows {
            let n = normalize(descriptor);
            (n.text, n.state.map(|s| s.as_str().to_owned()), n.city).hash(&mut digest);
        }
        println!("digest of normalised forms: {:016x}", digest.finish());
    }
    let texts: std::collections::HashSet<&String> = distinct.iter().map(|d| &d.0).collect();
    println!(
        "distinct (normalised, city, MCC): {}; distinct normalised texts: {}",
        distinct.len(),
        texts.len()
    );
    let normalize_s = started.elapsed().as_secs_f64();

    let capacity = std::env::var("CAPACITY")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(500_000);
    let mut cache = ResolutionCache::new(capacity);
    let started = Instant::now();
    let mut auto = 0u64;
    for (descriptor, mcc) in &rows {
        if cache
            .get_or_resolve(&resolver, descriptor, mcc)
            .merchant_id()
            .is_some()
        {
            auto += 1;
        }
    }
    let resolve_s = started.elapsed().as_secs_f64();
    if std::env::var("CHECK").is_ok() {
        let mut cache = ResolutionCache::new(500_000);
        let mut differ = 0;
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        for (descriptor, mcc) in &rows {
            let cached = cache.get_or_resolve(&resolver, descriptor, mcc);
            let fresh = resolver.resolve(descriptor, mcc);
            {
                use std::hash::Hash;
                format!("{:?}", fresh.decision).hash(&mut digest);
            }
            if *cached != fresh {
                differ += 1;
                if differ <= 5 {
                    println!(
                        "DIFFER {descriptor:?} {mcc}: cached {:?} fresh {:?}",
                        cached.decision, fresh.decision
                    );
                }
            }
        }
        println!("cached vs uncached: {differ} rows differ");
        println!(
            "digest of decisions: {:016x}",
            std::hash::Hasher::finish(&digest)
        );
    }
    let n = rows.len() as f64;
    println!(
        "{} rows: normalize {:.0} ns/row ({length} chars); cached resolve {:.0} ns/row ({:.2}s), hits {} misses {}, auto {auto}",
        rows.len(),
        normalize_s * 1e9 / n,
        resolve_s * 1e9 / n,
        resolve_s,
        cache.hits(),
        cache.misses()
    );
    Ok(())
}
