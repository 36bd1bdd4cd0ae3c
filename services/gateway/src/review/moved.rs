//! The held rows a review decision moves, folded into the fact writer's cells (added for an
//! assign, subtracted for an undo) and summed per descriptor for the audit trail. A row whose
//! spend already counts under its category's unattributed merchant moves from that merchant
//! to the brand (and back on undo): sums and counts exactly; the unattributed merchant's
//! customer sketch keeps the customer (sketches cannot subtract). A row that counted nowhere
//! until assigned also brings its card into the panel of active cards (schema/0011); a row
//! that counted under its category's merchant was in the panel already.

use altdata_domain::date_to_epoch_days;
use altdata_facts::{CellKey, Cells};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// The columns every moving statement returns, in this order.
pub const MOVED_COLUMNS: &str =
    "normalized_descriptor, amount_cents, metric_date, region, customer_key, counted_merchant_id,
     provider";

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

/// One held row as a moving statement returns it.
struct HeldRow<'a> {
    descriptor: &'a str,
    amount_cents: i64,
    date: NaiveDate,
    region: &'a str,
    customer_key: i64,
    /// The unattributed merchant it counts under meanwhile, if any.
    counted: Option<i64>,
    provider: &'a str,
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
            let held = HeldRow {
                descriptor,
                amount_cents,
                date,
                region,
                customer_key: row.get(4),
                counted: row.get(5),
                provider: row.get(6),
            };
            moved.add_row(&held, merchant_id, direction);
        }
        moved
    }

    fn add_row(&mut self, row: &HeldRow<'_>, merchant_id: i64, direction: Direction) {
        let day = date_to_epoch_days(row.date);
        let brand = CellKey::new(merchant_id, row.region, day);
        let counted = row
            .counted
            .map(|counted| CellKey::new(counted, row.region, day));
        // Customer keys are 64 opaque bits, stored as bigint.
        let customer = row.customer_key as u64;
        let (amount_cents, date) = (row.amount_cents, row.date);
        match direction {
            Direction::Add => {
                self.cells.add(brand, amount_cents, customer);
                match counted {
                    Some(counted) => self.cells.subtract(counted, amount_cents),
                    None => self.cells.add_card(row.provider, brand, customer),
                }
            }
            Direction::Subtract => {
                self.cells.subtract(brand, amount_cents);
                if let Some(counted) = counted {
                    self.cells.add(counted, amount_cents, customer);
                }
            }
        }
        let group = self.groups.entry(row.descriptor.to_owned()).or_default();
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

    fn held<'a>(descriptor: &'a str, amount_cents: i64, d: u32, region: &'a str) -> HeldRow<'a> {
        HeldRow {
            descriptor,
            amount_cents,
            date: day(d),
            region,
            customer_key: 1,
            counted: None,
            provider: "p",
        }
    }

    #[test]
    fn groups_sum_sales_and_refunds_per_descriptor() {
        let mut moved = Moved::default();
        moved.add_row(&held("A", 1000, 3, "CA"), 9, Direction::Add);
        moved.add_row(&held("A", -250, 1, "CA"), 9, Direction::Add);
        moved.add_row(&held("B", 500, 2, ""), 9, Direction::Add);
        let a = &moved.groups["A"];
        assert_eq!(
            (a.transactions, a.gross_cents, a.refund_cents),
            (2, 1000, 250)
        );
        assert_eq!((a.first_date, a.last_date), (Some(day(1)), Some(day(3))));
        assert_eq!(moved.transactions(), 3);
        assert_eq!(moved.net_cents(), 1250);
        assert_eq!(moved.cells.len(), 3);
        // Rows that counted nowhere bring their card into the panel.
        assert_eq!(moved.cells.panel["p"].len(), 3);
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
            let mut row = held(descriptor, amount, d, region);
            row.counted = (descriptor == "A").then_some(999_001);
            both.add_row(&row, 9, Direction::Add);
            both.add_row(&row, 9, Direction::Subtract);
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

    #[test]
    fn an_assign_moves_unattributed_spend_to_the_brand() {
        let mut moved = Moved::default();
        let mut row = held("A", 1000, 3, "CA");
        row.counted = Some(999_001);
        moved.add_row(&row, 9, Direction::Add);
        let brand = &moved.cells.cells[&CellKey::new(9, "CA", date_to_epoch_days(day(3)))];
        let unattributed =
            &moved.cells.cells[&CellKey::new(999_001, "CA", date_to_epoch_days(day(3)))];
        assert_eq!((brand.gross_cents, brand.sale_count), (1000, 1));
        assert_eq!(
            (unattributed.gross_cents, unattributed.sale_count),
            (-1000, -1)
        );
        assert!(unattributed.customers.is_empty());
    }
}
