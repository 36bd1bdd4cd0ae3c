use altdata_domain::catalogue::Catalogue;
use altdata_resolver::{Decision, Resolver};
fn main() {
    let catalogue = Catalogue::embedded().unwrap();
    let resolver = Resolver::new(&catalogue, vec![], vec![], vec![]);
    for line in std::env::args().skip(1) {
        let (d, mcc) = line.split_once('|').unwrap_or((&line, ""));
        let r = resolver.resolve(d, mcc);
        println!(
            "{d:?} -> normalized {:?} group {:?}",
            r.normalized,
            r.group()
        );
        match &r.decision {
            Decision::Auto {
                merchant_id,
                confidence,
                ..
            } => println!("  auto {merchant_id} {confidence}"),
            Decision::Review {
                candidates,
                category,
            } => {
                for c in candidates.iter() {
                    println!(
                        "  cand {} {} {:.3} {}",
                        c.merchant_id, c.name, c.score, c.why
                    );
                }
                println!("  category {category:?}");
            }
        }
    }
}
