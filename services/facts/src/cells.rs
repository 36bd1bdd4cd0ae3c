//! The signed contributions of a batch of transactions, keyed by (merchant, region, day).
//! Rollups (week, month, category) are derived from these cells by [`crate::write`], so a
//! batch holds each transaction's contribution exactly once.

use std::collections::{HashMap, HashSet};

/// One (merchant, region, day) cell of the daily table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    pub merchant_id: i64,
    /// Two-letter region, `XX` when unknown.
    pub region: [u8; 2],
    /// Days since 1970-01-01.
    pub metric_date: i32,
}

impl CellKey {
    /// A key with the region normalised: two ASCII letters upper-cased, anything else `XX`.
    pub fn new(merchant_id: i64, region: &str, metric_date: i32) -> CellKey {
        CellKey {
            merchant_id,
            region: region_bytes(region),
            metric_date,
        }
    }

    pub fn region_str(&self) -> &str {
        std::str::from_utf8(&self.region).unwrap_or("XX")
    }
}

/// What a batch changes in one cell: signed sums and counts, and the customers it adds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CellDelta {
    /// Gross sales in cents.
    pub gross_cents: i64,
    pub sale_count: i64,
    /// Refunds as positive cents.
    pub refund_cents: i64,
    pub refund_count: i64,
    /// Distinct customer keys added (folded into the HyperLogLog sketch).
    pub customers: HashSet<u64>,
}

/// A (region, day) of a provider's panel: two-letter region (`XX` unknown), days since 1970.
pub type PanelDay = ([u8; 2], i32);

/// The cells of a batch.
#[derive(Debug, Default, Clone)]
pub struct Cells {
    pub cells: HashMap<CellKey, CellDelta>,
    /// The panel (`agg_daily_panel`, schema/0011): by provider, the cards each (region, day)
    /// gains. A card stays in the panel when its transaction is retracted: a sketch cannot
    /// subtract, and the card was active.
    pub panel: HashMap<String, HashMap<PanelDay, HashSet<u64>>>,
    /// Transactions folded in (added or subtracted).
    pub transactions: usize,
}

impl Cells {
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Adds one transaction: a sale when `amount_cents >= 0`, a refund otherwise.
    pub fn add(&mut self, key: CellKey, amount_cents: i64, customer_key: u64) {
        let cell = self.cells.entry(key).or_default();
        if amount_cents < 0 {
            cell.refund_cents += -amount_cents;
            cell.refund_count += 1;
        } else {
            cell.gross_cents += amount_cents;
            cell.sale_count += 1;
        }
        cell.customers.insert(customer_key);
        self.transactions += 1;
    }

    /// Takes one transaction's contribution back out: the exact inverse of [`Cells::add`] for
    /// sums and counts; the customer stays in the sketch.
    pub fn subtract(&mut self, key: CellKey, amount_cents: i64) {
        let cell = self.cells.entry(key).or_default();
        if amount_cents < 0 {
            cell.refund_cents -= -amount_cents;
            cell.refund_count -= 1;
        } else {
            cell.gross_cents -= amount_cents;
            cell.sale_count -= 1;
        }
        self.transactions += 1;
    }

    /// Counts a card as active for its provider in a region on a day (its transaction was
    /// accepted).
    pub fn add_card(&mut self, provider: &str, key: CellKey, customer_key: u64) {
        // Looked up by `&str` first: one allocation per provider and batch, not per event.
        if !self.panel.contains_key(provider) {
            self.panel.insert(provider.to_owned(), HashMap::new());
        }
        if let Some(days) = self.panel.get_mut(provider) {
            days.entry((key.region, key.metric_date))
                .or_default()
                .insert(customer_key);
        }
    }

    /// Empties the batch, keeping allocated capacity.
    pub fn clear(&mut self) {
        self.cells.clear();
        self.panel.clear();
        self.transactions = 0;
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

    #[test]
    fn refunds_are_kept_apart_as_positive_cents() {
        let mut cells = Cells::default();
        let key = CellKey::new(1, "ca", 20_000);
        cells.add(key, 500, 7);
        cells.add(key, -200, 7);
        let cell = &cells.cells[&CellKey::new(1, "CA", 20_000)];
        assert_eq!((cell.gross_cents, cell.sale_count), (500, 1));
        assert_eq!((cell.refund_cents, cell.refund_count), (200, 1));
        assert_eq!(cell.customers.len(), 1);
        assert_eq!(cells.transactions, 2);
    }

    #[test]
    fn unknown_regions_fold_under_xx() {
        assert_eq!(CellKey::new(1, "", 1).region, *b"XX");
        assert_eq!(CellKey::new(1, "C1", 1).region, *b"XX");
        assert_eq!(CellKey::new(1, "CAL", 1).region_str(), "XX");
    }

    #[test]
    fn subtracting_what_was_added_leaves_zero_sums() {
        let mut cells = Cells::default();
        let key = CellKey::new(3, "NY", 19_000);
        for (amount, customer) in [(1250, 1), (-300, 2), (99, 3)] {
            cells.add(key, amount, customer);
        }
        for amount in [1250, -300, 99] {
            cells.subtract(key, amount);
        }
        let cell = &cells.cells[&key];
        assert_eq!(
            (
                cell.gross_cents,
                cell.sale_count,
                cell.refund_cents,
                cell.refund_count
            ),
            (0, 0, 0, 0)
        );
    }
}
