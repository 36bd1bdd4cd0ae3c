//! Why the resolver decides what it does, for descriptors given as arguments (`TEXT` or
//! `TEXT|MCC`), over the embedded catalogue: the normalised text, the review group, and the
//! automatic decision or the candidates with their scores and reasons.
//!
//! `cargo run --release -p altdata-resolver --example why -- "MINTMOBILE 26|4814"`

use altdata_domain::catalogue::Catalogue;
use altdata_resolver::{Decision, Resolver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let catalogue = Catalogue::embedded()?;
    let resolver = Resolver::new(&catalogue, vec![], vec![], vec![]);
    for argument in std::env::args().skip(1) {
        let (descriptor, mcc) = argument.split_once('|').unwrap_or((&argument, ""));
        let resolution = resolver.resolve(descriptor, mcc);
        println!(
            "{descriptor:?} -> normalised {:?}, group {:?}",
            resolution.normalized,
            resolution.group()
        );
        match &resolution.decision {
            Decision::Auto {
                merchant_id,
                confidence,
                source,
            } => {
                let name = resolver.merchant(*merchant_id).map_or("?", |m| &m.name);
                println!("  auto: {merchant_id} {name} ({confidence:.3}, {source:?})");
            }
            Decision::Review {
                candidates,
                category,
            } => {
                for c in candidates.iter() {
                    println!(
                        "  candidate {} {} {:.3}: {}",
                        c.merchant_id, c.name, c.score, c.why
                    );
                }
                println!("  category meanwhile: {category:?}");
            }
        }
    }
    Ok(())
}
