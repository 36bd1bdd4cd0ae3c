//! The in-memory fold of one shard's events between two flushes: their contributions as
//! [`Cells`] (the fact writer's input) and the stream position they reach.

use altdata_facts::{CellKey, Cells};
use altdata_proto::v1::TransactionEvent;
use std::time::Instant;

/// Events folded since the last flush, and the stream position they reach.
#[derive(Debug, Default)]
pub struct Window {
    pub cells: Cells,
    /// Highest stream sequence covered, including skipped and dead-lettered messages.
    pub last_stream_seq: u64,
    pub opened_at: Option<Instant>,
}

impl Window {
    pub fn is_empty(&self) -> bool {
        self.events() == 0 && self.last_stream_seq == 0
    }

    /// Events folded (poison and skipped messages excluded).
    pub fn events(&self) -> usize {
        self.cells.transactions
    }

    /// Adds one decoded event, or takes a retracted one back out.
    pub fn fold(&mut self, event: &TransactionEvent, stream_seq: u64) {
        let key = CellKey::new(event.merchant_id, &event.region, event.metric_date);
        if event.retraction {
            self.cells.subtract(key, event.amount_cents);
        } else {
            self.cells.add(key, event.amount_cents, event.customer_key);
            self.cells
                .add_card(&event.provider, key, event.customer_key);
        }
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
        self.last_stream_seq = 0;
        self.opened_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_covers_the_stream_position() {
        let mut window = Window::default();
        let event = TransactionEvent {
            schema_version: 1,
            merchant_id: 1,
            amount_cents: 500,
            customer_key: 7,
            region: "ca".into(),
            metric_date: 20_000,
            ..Default::default()
        };
        window.fold(&event, 10);
        window.cover(11);
        assert_eq!(window.events(), 1);
        assert_eq!(window.last_stream_seq, 11);
        assert!(window
            .cells
            .cells
            .contains_key(&CellKey::new(1, "CA", 20_000)));
    }
}
