//! The `altdata resolve` filter: a CSV with a `descriptor` column (and optionally `mcc`) in,
//! `descriptor,merchant_id,merchant,category,confidence,decision` out, in input order.
//!
//! For a `review` row the merchant columns hold the best candidate, if there is one, so a reader
//! sees the suggestion; `decision` says it was not accepted. `confidence` is the resolution's
//! confidence for `auto` rows and the best candidate's score for `review` rows (0 with none).

use crate::cache::ResolutionCache;
use crate::error::ResolverError;
use crate::{Decision, Resolver};
use std::io::{Read, Write};

/// Distinct descriptors remembered while filtering one input.
const CSV_CACHE_CAPACITY: usize = 100_000;

/// What a run of [`resolve_csv`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolveCsvReport {
    pub rows: u64,
    pub auto: u64,
    pub review: u64,
}

/// Resolves every row of `input` and writes one output row per input row.
pub fn resolve_csv<R: Read, W: Write>(
    resolver: &Resolver,
    input: R,
    output: W,
) -> Result<ResolveCsvReport, ResolverError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let descriptor_column =
        column("descriptor").ok_or_else(|| ResolverError::MissingDescriptorColumn {
            found: headers.iter().collect::<Vec<_>>().join(","),
        })?;
    let mcc_column = column("mcc");

    let mut writer = csv::Writer::from_writer(output);
    writer.write_record([
        "descriptor",
        "merchant_id",
        "merchant",
        "category",
        "confidence",
        "decision",
    ])?;
    let mut cache = ResolutionCache::new(CSV_CACHE_CAPACITY);
    let mut report = ResolveCsvReport::default();
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        let descriptor = record.get(descriptor_column).unwrap_or("");
        let mcc = mcc_column.and_then(|c| record.get(c)).unwrap_or("");
        let resolution = cache.get_or_resolve(resolver, descriptor, mcc);
        report.rows += 1;
        let (merchant_id, confidence, decision) = match &resolution.decision {
            Decision::Auto {
                merchant_id,
                confidence,
                ..
            } => {
                report.auto += 1;
                (Some(*merchant_id), *confidence, "auto")
            }
            Decision::Review { candidates, .. } => {
                report.review += 1;
                let best = candidates.first();
                (
                    best.map(|c| c.merchant_id),
                    best.map_or(0.0, |c| c.score),
                    "review",
                )
            }
        };
        let merchant = merchant_id.and_then(|id| resolver.merchant(id));
        writer.write_record([
            descriptor,
            &merchant_id.map(|id| id.to_string()).unwrap_or_default(),
            merchant.map_or("", |m| m.name.as_str()),
            merchant.map_or("", |m| m.category.as_str()),
            &format!("{confidence:.3}"),
            decision,
        ])?;
    }
    writer.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use altdata_domain::catalogue::Catalogue;

    fn resolver() -> Resolver {
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n1,Starbucks,coffee_shop,starbucks,,,5814\n",
        )
        .unwrap_or_default();
        Resolver::new(&catalogue, vec![], vec![], vec![])
    }

    fn run(input: &str) -> Result<(String, ResolveCsvReport), ResolverError> {
        let mut out = Vec::new();
        let report = resolve_csv(&resolver(), input.as_bytes(), &mut out)?;
        Ok((String::from_utf8_lossy(&out).into_owned(), report))
    }

    #[test]
    fn rows_come_out_in_input_order_with_decisions() {
        let (out, report) =
            run("id,descriptor,mcc\n1,SQ *STARBUCKS #12,5814\n2,JOES DINER,5812\n3,STARBUCKS,\n")
                .unwrap_or_else(|e| panic!("{e}"));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "descriptor,merchant_id,merchant,category,confidence,decision"
        );
        assert!(
            lines[1].starts_with("SQ *STARBUCKS #12,1,Starbucks,coffee_shop,"),
            "{}",
            lines[1]
        );
        assert!(lines[1].ends_with(",auto"));
        assert!(lines[2].starts_with("JOES DINER,"));
        assert!(lines[2].ends_with(",review"));
        assert!(lines[3].ends_with(",auto"));
        assert_eq!(
            report,
            ResolveCsvReport {
                rows: 3,
                auto: 2,
                review: 1
            }
        );
    }

    #[test]
    fn missing_descriptor_column_is_a_clear_error() {
        let error = run("name,mcc\nSTARBUCKS,5814\n").err();
        assert!(matches!(
            error,
            Some(ResolverError::MissingDescriptorColumn { .. })
        ));
        assert!(error
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("no `descriptor` column"));
    }
}
