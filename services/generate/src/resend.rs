//! Corrected re-sends: a provider sends a day again, days later, with some amounts corrected,
//! some rows removed and a few late rows added, as real providers do. A re-send restates every
//! transaction posted on its day that the provider has sent so far (the day's own file and the
//! late rows of the files after it, up to the one it is sent with): those files are regenerated
//! (generation is deterministic), the day's valid unique rows rewritten with the changes, and
//! the summary's truth restated. The provider restates whole days (its profile says
//! `restates = "day"`, written to `_profiles/`), so removed rows are retracted.

use crate::day::{generate_day, RunParams};
use crate::error::GenerateError;
use crate::world::World;
use altdata_common::Shutdown;
use altdata_domain::parse_dollars_to_cents;
use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet};

/// Share of a re-sent day's rows whose amount is corrected.
const CORRECTED: f64 = 0.02;
/// Share of the rows dated on the re-sent day that the re-send leaves out (retracted).
const REMOVED: f64 = 0.01;
/// Late rows added, per row of the day.
const ADDED: f64 = 0.005;
/// How many days after a day its re-send arrives.
const LAG_DAYS: u32 = 2;

/// Which days are sent again, and with which day's file: `count` days spread over the run.
pub(crate) fn plan(days: u32, count: u32) -> Vec<(u32, u32)> {
    if days < 2 || count == 0 {
        return Vec::new();
    }
    let count = count.min(days - 1);
    (0..count)
        .map(|i| {
            let day = (u64::from(i) * u64::from(days - 1) / u64::from(count)) as u32;
            (day, (day + LAG_DAYS).min(days - 1))
        })
        .collect()
}

/// What a re-sent day's file holds beside the original.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResendStats {
    pub rows: u64,
    /// Valid rows sent again unchanged.
    pub duplicates: u64,
    pub corrected: u64,
    /// Rows of the re-sent day left out.
    pub retracted: u64,
    pub added: u64,
    /// Net cents the day changes by.
    pub net_delta_cents: i64,
    /// Of it, at local merchants (not in the catalogue).
    pub local_net_delta_cents: i64,
    /// Added minus retracted local rows.
    pub local_rows_delta: i64,
}

/// The re-send of one day: its CSV bytes, its truth detail lines, and what it changes.
pub(crate) struct Resend {
    pub bytes: Vec<u8>,
    pub detail: Vec<u8>,
    pub stats: ResendStats,
}

/// Builds the re-send of `day_index`, sent with the file of `sent_index`.
pub(crate) fn build(
    world: &World,
    params: &RunParams,
    day_index: u32,
    sent_index: u32,
) -> Result<Resend, GenerateError> {
    let with_detail = RunParams {
        truth_detail: true,
        ..params.clone()
    };
    // The files sent so far that can hold rows of the day, and their valid unique rows (with
    // whether each is at a catalogue brand).
    let mut original = Vec::new();
    let mut valid: HashMap<String, (String, String)> = HashMap::new();
    for index in day_index..=sent_index {
        let mut file = Vec::new();
        let result = generate_day(
            world,
            &with_detail,
            index,
            &mut |chunk| {
                file.extend_from_slice(&chunk);
                Ok(())
            },
            &Shutdown::new(),
        )?;
        // Every file starts with the header; keep the first only.
        let body = if original.is_empty() {
            &file[..]
        } else {
            file.iter()
                .position(|&b| b == b'\n')
                .map_or(&file[..0], |end| &file[end + 1..])
        };
        original.extend_from_slice(body);
        for line in String::from_utf8_lossy(&result.detail).lines() {
            let mut parts = line.split(',');
            let (Some(_), Some(txn), Some(brand), Some(category)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            valid.insert(txn.to_owned(), (brand.to_owned(), category.to_owned()));
        }
    }
    let day = params.start + Duration::days(i64::from(day_index));
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ 0x7e5e_0d00 ^ u64::from(day_index));
    let mut resend = Resend {
        bytes: Vec::with_capacity(original.len()),
        detail: Vec::new(),
        stats: ResendStats::default(),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(original.as_slice());
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    let header = reader
        .byte_headers()
        .map_err(|e| GenerateError::InvalidConfig(e.to_string()))?
        .clone();
    let _ = writer.write_byte_record(&header);
    let mut seen = HashSet::new();
    for record in reader.records() {
        let Ok(record) = record else { continue };
        let txn = record.get(0).unwrap_or_default().to_owned();
        let Some((brand, category)) = valid.get(&txn) else {
            continue; // broken on purpose: not part of the truth
        };
        if !seen.insert(txn.clone()) {
            continue;
        }
        let cents = parse_dollars_to_cents(record.get(4).unwrap_or_default()).unwrap_or(0);
        let local = brand.is_empty();
        let dated_on_day = record
            .get(1)
            .and_then(|posted| posted.get(..10))
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            == Some(day);
        if !dated_on_day {
            continue; // another day's row: not restated
        }
        let stats = &mut resend.stats;
        if rng.gen_bool(REMOVED) {
            stats.retracted += 1;
            stats.net_delta_cents -= cents;
            if local {
                stats.local_net_delta_cents -= cents;
                stats.local_rows_delta -= 1;
            }
            continue;
        }
        let mut fields: Vec<String> = record.iter().map(str::to_owned).collect();
        if rng.gen_bool(CORRECTED) {
            let corrected = corrected_amount(cents, &mut rng);
            fields[4] = dollars(corrected);
            stats.corrected += 1;
            stats.net_delta_cents += corrected - cents;
            if local {
                stats.local_net_delta_cents += corrected - cents;
            }
        } else {
            stats.duplicates += 1;
        }
        let _ = writer.write_record(&fields);
        if rng.gen_bool(ADDED) {
            let late = rng.gen_range(100..20_000i64);
            fields[0] = format!("{txn}R");
            fields[4] = dollars(late);
            let _ = writer.write_record(&fields);
            stats.added += 1;
            stats.net_delta_cents += late;
            if local {
                stats.local_net_delta_cents += late;
                stats.local_rows_delta += 1;
            }
            resend.detail.extend_from_slice(
                format!("{},{}R,{brand},{category}\n", params.provider, txn).as_bytes(),
            );
        }
    }
    resend.bytes = writer
        .into_inner()
        .map_err(|e| GenerateError::InvalidConfig(e.to_string()))?;
    let stats = &mut resend.stats;
    stats.rows = stats.duplicates + stats.corrected + stats.added;
    Ok(resend)
}

/// A corrected amount: the same sign, changed by 5% to 50% (at least a cent).
fn corrected_amount(cents: i64, rng: &mut ChaCha8Rng) -> i64 {
    let factor = 1.0 + rng.gen_range(0.05..0.5) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
    let corrected = (cents as f64 * factor).round() as i64;
    if corrected == cents || corrected == 0 {
        cents + cents.signum().max(1)
    } else {
        corrected
    }
}

fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

/// The profile of a provider whose files restate whole days.
pub(crate) fn restating_profile(provider: &str) -> String {
    format!(
        "# Written by `altdata generate --resends`: this provider's files restate whole days.\n\
         provider = \"{provider}\"\nrestates = \"day\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_are_spread_over_the_run_and_come_days_later() {
        assert_eq!(plan(10, 3), vec![(0, 2), (3, 5), (6, 8)]);
        assert_eq!(plan(3, 5), vec![(0, 2), (1, 2)]);
        assert!(plan(1, 3).is_empty());
    }

    #[test]
    fn a_corrected_amount_keeps_its_sign_and_changes() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for cents in [1, 250, -399, 10_000] {
            let corrected = corrected_amount(cents, &mut rng);
            assert_ne!(corrected, cents);
            assert_eq!(corrected.signum(), cents.signum());
        }
        assert_eq!(dollars(-1205), "-12.05");
        assert_eq!(dollars(7), "0.07");
    }
}
