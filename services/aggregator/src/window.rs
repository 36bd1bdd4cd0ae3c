//! The in-memory fold of one shard's events between two flushes, keyed by
//! (merchant, region, day). Rollups (week, month, category) are derived from these cells in
//! the flush statement, so the window holds each event's contribution exactly once.

use altdata_proto::v1::TransactionEvent;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// One (merchant, region, day) cell of the daily aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    pub merchant_id: i64,
    /// Two-letter region, `XX` when unknown.
    pub region: [u8; 2],
    /// Days since 1970-01-01.
    pub metric_date: i32,
}

/// What a window adds to one cell.
#[derive(Debug, Default, Clone)]
pub struct CellTotals {
    pub gross_cents: i64,
    pub sale_count: i64,
    /// Refunds as positive cents.
    pub refund_cents: i64,
    pub refund_count: i64,
    /// Distinct customer keys seen in this window (folded into the HLL at flush).
    pub customers: HashSet<u64>,
}

/// Events folded since the last flush, and the stream position they reach.
#[derive(Debug, Default)]
pub struct Window {
    pub cells: HashMap<CellKey, CellTotals>,
    /// Events folded (poison and skipped messages excluded).
    pub events: usize,
    /// Highest stream sequence covered, including skipped and dead-lettered messages.
    pub last_stream_seq: u64,
    pub opened_at: Option<Instant>,
}

impl Window {
    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.last_stream_seq == 0
    }

    /// Adds one decoded event.
    pub fn fold(&mut self, event: &TransactionEvent, stream_seq: u64) {
        let region = region_bytes(&event.region);
        let key = CellKey {
            merchant_id: event.merchant_id,
            region,
            metric_date: event.metric_date,
        };
        let cell = self.cells.entry(key).or_default();
        if event.amount_cents < 0 {
            cell.refund_cents += -event.amount_cents;
            cell.refund_count += 1;
        } else {
            cell.gross_cents += event.amount_cents;
            cell.sale_count += 1;
        }
        cell.customers.insert(event.customer_key);
        self.events += 1;
        self.cover(stream_seq);
    }

    /// Marks a message as covered by this window without folding it (poison, skipped).
    pub fn cover(&mut self, stream_seq: u64) {
        self.last_stream_seq = self.last_stream_seq.max(stream_seq);
        self.opened_at.get_or_insert_with(Instant::now);
    }

    /// Empties the window for the next batch, keeping allocated capacity.
    pub fn clear(&mut self) {
        self.cells.clear();
        self.events = 0;
        self.last_stream_seq = 0;
        self.opened_at = None;
    }
}

fn region_bytes(region: &str) -> [u8; 2] {
    match region.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            [a.to_ascii_uppercase(), b.to_ascii_uppercase()]
        }
        _ => *b"XX",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(merchant_id: i64, amount_cents: i64, customer_key: u64) -> TransactionEvent {
        TransactionEvent {
            schema_version: 1,
            merchant_id,
            amount_cents,
            customer_key,
            region: "ca".into(),
            metric_date: 20_000,
            ..Default::default()
        }
    }

    #[test]
    fn refunds_are_kept_apart_as_positive_cents() {
        let mut window = Window::default();
        window.fold(&event(1, 500, 7), 10);
        window.fold(&event(1, -200, 7), 11);
        let cell = &window.cells[&CellKey {
            merchant_id: 1,
            region: *b"CA",
            metric_date: 20_000,
        }];
        assert_eq!((cell.gross_cents, cell.sale_count), (500, 1));
        assert_eq!((cell.refund_cents, cell.refund_count), (200, 1));
        assert_eq!(cell.customers.len(), 1);
        assert_eq!(window.last_stream_seq, 11);
    }

    #[test]
    fn unknown_regions_fold_under_xx() {
        let mut window = Window::default();
        let mut e = event(1, 1, 1);
        e.region = String::new();
        window.fold(&e, 1);
        assert!(window.cells.keys().all(|k| &k.region == b"XX"));
    }
}
