//! The held rows a review decision moves, folded into the fact writer's cells (added for an
//! assign, subtracted for an undo) and summed per descriptor for the audit trail.

use altdata_domain::date_to_epoch_days;
use altdata_facts::{CellKey, Cells};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// The columns every moving statement returns, in this order.
pub const MOVED_COLUMNS: &str =
    "normalized_descriptor, amount_cents, metric_date, region, customer_key";

/// Per-descriptor sums of the moved rows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MovedGroup {
    pub transactions: i64,
    pub gross_cents: i64,
    pub refund_cents: i64,
    pub first_date: Option<NaiveDate>,
    pub last_date: Option<NaiveDate>,
}

impl MovedGroup {
    pub fn net_cents(&self) -> i64 {
        self.gross_cents - self.refund_cents
    }
}

/// Which way the moved rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Into the aggregates (assign).
    Add,
    /// Out of them (undo).
    Subtract,
}

/// The moved rows of one decision.
#[derive(Debug, Default)]
pub struct Moved {
    pub cells: Cells,
    pub groups: BTreeMap<String, MovedGroup>,
}

impl Moved {
    /// Folds rows of [`MOVED_COLUMNS`] for `merchant_id`.
    pub fn fold(rows: &[tokio_postgres::Row], merchant_id: i64, direction: Direction) -> Moved {
        let mut moved = Moved::default();
        for row in rows {
            let descriptor: &str = row.get(0);
            let amount_cents: i64 = row.get(1);
            let date: NaiveDate = row.get(2);
            let region: &str = row.get(3);
            let customer_key: i64 = row.get(4);
            moved.add_row(
                descriptor,
                amount_cents,
                date,
                region,
                customer_key,
                merchant_id,
                direction,
            );
        }
        moved
    }

    #[allow(clippy::too_many_arguments)]
    fn add_row(
        &mut self,
        descriptor: &str,
        amount_cents: i64,
        date: NaiveDate,
        region: &str,
        customer_key: i64,
        merchant_id: i64,
        direction: Direction,
    ) {
        let key = CellKey::new(merchant_id, region, date_to_epoch_days(date));
        match direction {
            // Customer keys are 64 opaque bits, stored as bigint.
            Direction::Add => self.cells.add(key, amount_cents, customer_key as u64),
            Direction::Subtract => self.cells.subtract(key, amount_cents),
        }
        let group = self.groups.entry(descriptor.to_owned()).or_default();
        group.transactions += 1;
        if amount_cents < 0 {
            group.refund_cents += -amount_cents;
        } else {
            group.gross_cents += amount_cents;
        }
        group.first_date = Some(group.first_date.map_or(date, |d| d.min(date)));
        group.last_date = Some(group.last_date.map_or(date, |d| d.max(date)));
    }

    pub fn transactions(&self) -> i64 {
        self.groups.values().map(|g| g.transactions).sum()
    }

    pub fn net_cents(&self) -> i64 {
        self.groups.values().map(MovedGroup::net_cents).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or_default()
    }

    #[test]
    fn groups_sum_sales_and_refunds_per_descriptor() {
        let mut moved = Moved::default();
        moved.add_row("A", 1000, day(3), "CA", 1, 9, Direction::Add);
        moved.add_row("A", -250, day(1), "CA", 2, 9, Direction::Add);
        moved.add_row("B", 500, day(2), "", 3, 9, Direction::Add);
        let a = &moved.groups["A"];
        assert_eq!(
            (a.transactions, a.gross_cents, a.refund_cents),
            (2, 1000, 250)
        );
        assert_eq!((a.first_date, a.last_date), (Some(day(1)), Some(day(3))));
        assert_eq!(moved.transactions(), 3);
        assert_eq!(moved.net_cents(), 1250);
        assert_eq!(moved.cells.len(), 3);
    }

    #[test]
    fn an_undo_subtracts_exactly_what_the_assign_added() {
        let rows = [
            ("A", 1000, 3, "CA"),
            ("A", -250, 3, "CA"),
            ("B", 500, 2, "NY"),
        ];
        let mut both = Moved::default();
        for (descriptor, amount, d, region) in rows {
            both.add_row(descriptor, amount, day(d), region, 1, 9, Direction::Add);
            both.add_row(
                descriptor,
                amount,
                day(d),
                region,
                1,
                9,
                Direction::Subtract,
            );
        }
        for delta in both.cells.cells.values() {
            assert_eq!(
                (
                    delta.gross_cents,
                    delta.sale_count,
                    delta.refund_cents,
                    delta.refund_count
                ),
                (0, 0, 0, 0)
            );
        }
    }
}
