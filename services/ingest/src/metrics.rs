//! Ingest metrics; handles made once per service, outside the row loop.

use metrics::{counter, Counter};

#[derive(Clone)]
pub struct IngestMetrics {
    pub rows: Counter,
    pub published: Counter,
    pub unmapped: Counter,
    pub rejected: Counter,
    pub duplicates: Counter,
    pub files: Counter,
    /// Files marked failed on the ledger (or unreadable before they could be).
    pub files_failed: Counter,
    /// Names in the landing zone that cannot be listed as objects (a newline, invalid UTF-8).
    pub names_skipped: Counter,
    /// Valid rows resolved from the per-descriptor cache, and resolved anew (hit rate =
    /// hits / (hits + misses)).
    pub resolution_cache_hits: Counter,
    pub resolution_cache_misses: Counter,
}

impl IngestMetrics {
    pub fn new() -> IngestMetrics {
        IngestMetrics {
            rows: counter!("altdata_ingest_rows_total"),
            published: counter!("altdata_ingest_published_total"),
            unmapped: counter!("altdata_ingest_unmapped_total"),
            rejected: counter!("altdata_ingest_rejected_total"),
            duplicates: counter!("altdata_ingest_duplicates_total"),
            files: counter!("altdata_ingest_files_total"),
            files_failed: counter!("altdata_ingest_files_failed_total"),
            names_skipped: counter!("altdata_ingest_landing_names_skipped_total"),
            resolution_cache_hits: counter!("altdata_ingest_resolution_cache_hits_total"),
            resolution_cache_misses: counter!("altdata_ingest_resolution_cache_misses_total"),
        }
    }
}

impl Default for IngestMetrics {
    fn default() -> IngestMetrics {
        IngestMetrics::new()
    }
}
