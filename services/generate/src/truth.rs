//! The ground-truth sidecar: per (brand, region, sale date) totals over the valid, unique
//! rows of catalogue brands, and a run summary. Late rows can add to a date up to
//! [`MAX_LATE_DAYS`] files later, so a date is written only once no later file can touch it.

use crate::day::{BrokenReason, DayStats, TruthRecord, MAX_LATE_DAYS};
use crate::geo::region_code;
use crate::util::push_u64;
use crate::world::World;
use altdata_domain::epoch_days_to_date;
use std::collections::BTreeMap;

pub(crate) const TRUTH_HEADER: &str =
    "brand_id,merchant_id,state,date,gross_cents,refund_cents,sale_count,refund_count,distinct_cards\n";

/// Dates still open to late rows: the sorted truth records each file gave them.
#[derive(Default)]
pub(crate) struct TruthWindow {
    open: BTreeMap<i32, Vec<Vec<TruthRecord>>>,
    pub keys_written: u64,
}

impl TruthWindow {
    pub fn merge(&mut self, day: Vec<(i32, Vec<TruthRecord>)>) {
        for (date, records) in day {
            self.open.entry(date).or_default().push(records);
        }
    }

    /// Writes every date that the file of `file_epoch_day` closes (all dates when `None`),
    /// in date order, then catalogue order, then state-table order.
    pub fn drain(&mut self, file_epoch_day: Option<i32>, world: &World, out: &mut Vec<u8>) {
        while let Some(entry) = self.open.first_entry() {
            let date = *entry.key();
            if file_epoch_day.is_some_and(|file| i64::from(date) > i64::from(file) - MAX_LATE_DAYS)
            {
                break;
            }
            let mut runs = entry.remove();
            let records = if runs.len() == 1 {
                runs.pop().unwrap_or_default()
            } else {
                let mut all: Vec<TruthRecord> = runs.concat();
                all.sort_unstable();
                all
            };
            let date_text = epoch_days_to_date(date).format("%Y-%m-%d").to_string();
            for group in records.chunk_by(|a, b| a.0 >> 32 == b.0 >> 32) {
                let brand = (group[0].0 >> 40) as usize;
                let region = ((group[0].0 >> 32) & 0xff) as u8;
                let (mut gross, mut refund, mut sales, mut refunds, mut cards) =
                    (0i64, 0i64, 0i64, 0i64, 0i64);
                let mut last_card = None;
                for &(key, cents) in group {
                    if cents >= 0 {
                        gross += cents;
                        sales += 1;
                    } else {
                        refund -= cents;
                        refunds += 1;
                    }
                    let card = key & 0xffff_ffff;
                    if last_card != Some(card) {
                        cards += 1;
                        last_card = Some(card);
                    }
                }
                let model = &world.brands[brand];
                out.extend_from_slice(model.brand_id.as_bytes());
                out.push(b',');
                push_i64(out, model.merchant_id);
                out.push(b',');
                out.extend_from_slice(region_code(region).as_bytes());
                out.push(b',');
                out.extend_from_slice(date_text.as_bytes());
                for value in [gross, refund, sales, refunds, cards] {
                    out.push(b',');
                    push_i64(out, value);
                }
                out.push(b'\n');
                self.keys_written += 1;
            }
        }
    }
}

fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_u64(out, value.unsigned_abs());
}

/// `_truth/summary.json`: run totals and per-file row counts. It holds no paths outside the
/// output and no timings, so two runs of the same config give identical bytes.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct Summary {
    pub provider: String,
    pub seed: u64,
    pub start: String,
    pub days: u32,
    pub cards: u64,
    pub gzip: bool,
    pub rows: u64,
    pub valid_rows: u64,
    pub broken_rows: u64,
    pub broken_by_reason: BTreeMap<String, u64>,
    pub duplicate_rows: u64,
    pub local_rows: u64,
    pub local_net_cents: i64,
    pub valid_net_cents: i64,
    /// `valid_net_cents - local_net_cents`: what the ground truth adds up to.
    pub brand_net_cents: i64,
    pub refund_rows: u64,
    pub late_rows: u64,
    pub truth_rows: u64,
    /// Rows of re-sent days whose amount a re-send corrected, and rows of re-sent days it
    /// left out (retracted by a provider that restates days). `valid_rows` and the net cents
    /// are the truth after the re-sends.
    #[serde(default)]
    pub corrected_rows: u64,
    #[serde(default)]
    pub retracted_rows: u64,
    /// Days sent again (`YYYY-MM-DD`); `ground_truth.csv` gives those days as first sent.
    #[serde(default)]
    pub restated_days: Vec<String>,
    pub files: Vec<FileSummary>,
}

/// One provider file of the run.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct FileSummary {
    /// Relative to the output location.
    pub path: String,
    pub rows: u64,
    pub valid_rows: u64,
    pub broken_rows: u64,
    pub duplicate_rows: u64,
    pub bytes: u64,
}

impl Summary {
    /// Adds a re-sent day's file and restates the totals it changes.
    pub(crate) fn add_resend(
        &mut self,
        path: String,
        day: String,
        stats: &crate::resend::ResendStats,
        bytes: u64,
    ) {
        self.rows += stats.rows;
        self.duplicate_rows += stats.duplicates;
        self.corrected_rows += stats.corrected;
        self.retracted_rows += stats.retracted;
        self.valid_rows = self.valid_rows + stats.added - stats.retracted;
        self.valid_net_cents += stats.net_delta_cents;
        self.local_net_cents += stats.local_net_delta_cents;
        self.local_rows = (self.local_rows as i64 + stats.local_rows_delta).max(0) as u64;
        self.brand_net_cents = self.valid_net_cents - self.local_net_cents;
        self.restated_days.push(day);
        self.files.push(FileSummary {
            path,
            rows: stats.rows,
            valid_rows: stats.rows,
            broken_rows: 0,
            duplicate_rows: stats.duplicates,
            bytes,
        });
    }

    pub(crate) fn add_file(&mut self, path: String, stats: &DayStats, bytes: u64) {
        self.rows += stats.rows;
        self.valid_rows += stats.valid_rows;
        self.broken_rows += stats.broken_rows();
        for reason in BrokenReason::ALL {
            *self
                .broken_by_reason
                .entry(reason.as_str().to_owned())
                .or_default() += stats.broken[reason as usize];
        }
        self.duplicate_rows += stats.duplicate_rows;
        self.local_rows += stats.local_rows;
        self.local_net_cents += stats.local_net_cents;
        self.valid_net_cents += stats.valid_net_cents;
        self.brand_net_cents = self.valid_net_cents - self.local_net_cents;
        self.refund_rows += stats.refund_rows;
        self.late_rows += stats.late_rows;
        self.files.push(FileSummary {
            path,
            rows: stats.rows,
            valid_rows: stats.valid_rows,
            broken_rows: stats.broken_rows(),
            duplicate_rows: stats.duplicate_rows,
            bytes,
        });
    }
}
