//! Why a number changed: the deltas that corrections and retractions move into published
//! aggregates, per merchant × region × day, collected while a file is read and written with its
//! checkpoint (`aggregate_changes`), so that an analyst can ask which file restated a point.

use crate::identity::{region_text, Contribution};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// What moved a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    Correction,
    Retraction,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Correction => "correction",
            Cause::Retraction => "retraction",
        }
    }
}

/// Deltas of one cell for one cause: rows, net spend cents, transactions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub rows: i64,
    pub spend_cents: i64,
    pub transactions: i64,
}

/// The changes of a file since its last checkpoint.
#[derive(Debug, Default)]
pub struct ChangeLog {
    cells: BTreeMap<(Cause, i64, [u8; 2], NaiveDate), Delta>,
}

impl ChangeLog {
    /// A contribution added (`sign` 1) or taken out (`sign` -1) for `cause`.
    pub fn record(
        &mut self,
        cause: Cause,
        contribution: &Contribution,
        sign: i64,
        counts_row: bool,
    ) {
        let key = (
            cause,
            contribution.merchant_id,
            contribution.region,
            contribution.metric_date,
        );
        let delta = self.cells.entry(key).or_default();
        delta.rows += i64::from(counts_row);
        delta.spend_cents += sign * contribution.amount_cents;
        delta.transactions += sign;
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Writes the changes inside the checkpoint's transaction and forgets them.
    pub async fn write(
        &mut self,
        transaction: &deadpool_postgres::Transaction<'_>,
        provider: &str,
        file_id: i64,
        file: &str,
    ) -> Result<(), tokio_postgres::Error> {
        if self.cells.is_empty() {
            return Ok(());
        }
        let n = self.cells.len();
        let (mut causes, mut merchants, mut regions, mut dates) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut rows, mut spend, mut transactions) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for ((cause, merchant, region, date), delta) in &self.cells {
            causes.push(cause.as_str());
            merchants.push(*merchant);
            regions.push(region_text(*region));
            dates.push(*date);
            rows.push(delta.rows);
            spend.push(delta.spend_cents);
            transactions.push(delta.transactions);
        }
        transaction
            .execute(
                "INSERT INTO aggregate_changes (cause, provider, file_id, file, merchant_id, region,
                     metric_date, rows_changed, delta_spend_cents, delta_transactions)
                 SELECT c, $1, $2, $3, m, r, d, n, s, t
                 FROM unnest($4::text[], $5::bigint[], $6::text[], $7::date[], $8::bigint[],
                             $9::bigint[], $10::bigint[]) AS u(c, m, r, d, n, s, t)",
                &[
                    &provider, &file_id, &file, &causes, &merchants, &regions, &dates, &rows,
                    &spend, &transactions,
                ],
            )
            .await?;
        self.cells.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_logs_both_versions_in_their_cells() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default();
        let old = Contribution {
            merchant_id: 1,
            region: *b"CA",
            metric_date: day,
            amount_cents: 1000,
            customer_key: 5,
        };
        let new = Contribution {
            amount_cents: 1250,
            ..old
        };
        let mut log = ChangeLog::default();
        log.record(Cause::Correction, &old, -1, false);
        log.record(Cause::Correction, &new, 1, true);
        let delta = log.cells[&(Cause::Correction, 1, *b"CA", day)];
        assert_eq!(
            delta,
            Delta {
                rows: 1,
                spend_cents: 250,
                transactions: 0
            }
        );
    }
}
